import ArgumentParser
import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Dispatch
import Glibc

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load-test a server with a pre-signed, realistic mix and compare it with the machine's verification bound.",
        discussion: """
            Builds a circuit (organisations, staff, catalogue, merchants, beneficiaries with open cases and a dote), \
            pre-signs a mix of payments (with the wallet's authorisation), activations, badge issuances and credit \
            conversions, measures the Ed25519 verification rate of those same events on all cores (the bound, at \
            least a second before and after the load) and a round trip over a loopback socket (the floor under one \
            client's latency), then drives the server over --connections connections and reports throughput, \
            latency percentiles, refusals, the server's resident memory and the ratio to the bound.

            With only --events, the bench creates a temporary ledger and runs `circuito serve` on it as a child \
            process (its memory is read from /proc); with --base FOLDER that ledger starts as a copy of an earlier \
            bench ledger; with --connect HOST:PORT it drives a running server, registering its circuit there with \
            --authority-key (use a scratch ledger). Every phase stops sending after --timeout seconds.
            """)

    @Option(name: .long, help: "Events of the measured mix.")
    var events: Int = 20_000
    @Option(name: .long, help: "Drive this running server (HOST:PORT or a Unix socket path) instead of starting one.")
    var connect: String?
    @Option(name: .long, help: "With --connect: the secret key file of the ledger's authority (it registers the circuit).")
    var authorityKey: String?
    @Option(name: .long, help: "With --connect: the authority's actor id (default: authority).")
    var authorityID: String?
    @Option(name: .long, help: "With --connect: the server's process id, to report its memory.")
    var serverPid: Int32?
    // The options of a run with a default are optional here, so that --export-only can tell one given from one left
    // alone; the defaults are BenchConfiguration's.
    @Option(name: .long, help: "Connections that submit at once (default: 32).")
    var connections: Int?
    @Option(name: .long, help: "Requests each connection keeps waiting for an answer (default: 1, one at a time).")
    var pipeline: Int?
    @Option(name: .long, help: ArgumentHelp(
        "Events per write request (default: 1, each its own submit).",
        discussion: "More than 1 sends up to that many consecutive events of a connection as one submit_batch (all or nothing, one commit), at most 256; the latency is then per request. The server's writer queues at most 16 384 events; a batch that would pass that is refused as overloaded, so large batches on many connections can see refusals."))
    var batch: Int?
    @Option(name: .long, help: "Events of the same mix appended first, unmeasured (to measure at a ledger size).")
    var prefill: Int = 0
    @Option(name: .long, help: "Beneficiaries of the circuit (default: one per 100 events, at least 64).")
    var beneficiaries: Int?
    @Option(name: .long, help: "Signed account.balance queries after the appends.")
    var balanceQueries: Int = 0
    @Option(name: .long, help: "proof.inclusion requests after the appends.")
    var proofs: Int = 0
    @Flag(name: .long, help: "After the run, replay the ledger as verify, rebuild and rebuild --trust-checkpoints do and report their rates.")
    var audit = false
    @Option(name: .long, help: "Keep the ledger in this folder (must not exist yet) instead of a temporary one.")
    var data: String?
    @Option(name: .long, help: ArgumentHelp(
        "Start from a copy of this earlier bench ledger instead of an empty one.",
        discussion: "A folder made by a run with --data or --keep (it holds the authority's key); the run registers a fresh circuit on the copy, so the same run can be measured at several ledger sizes."))
    var base: String?
    @Flag(name: .long, help: ArgumentHelp(
        "With --base: leave the copy out of the page cache, as after a restart.",
        discussion: "LMDB's copy writes the new file past the page cache (O_DIRECT), and the server maps its file without read-ahead, so each page it touches first is read from the disk. Without this flag the bench reads the copy once before the server starts, so that a run at a ledger size finds its pages cached, as a server that has been running would."))
    var coldBase = false
    @Flag(name: .long, help: "Keep the temporary ledger after the run.")
    var keep = false
    @Option(name: .long, help: "Seed of the circuit and the mix.")
    var seed: UInt64 = 1
    @Option(name: .customLong("timeout"), help: ArgumentHelp("Seconds after which a phase sends nothing more (default: 600).", valueName: "timeout"))
    var timeoutSeconds: Int?
    @Option(name: .long, help: "Write the measured mix's signed events to this file, one per line.")
    var exportEvents: String?
    @Flag(name: .long, help: "With --export-events: only generate and write the events.")
    var exportOnly = false
    @Option(name: .long, help: "The spawned server's --maximum-commit-batch.")
    var maximumCommitBatch: Int?
    /// The ledger the bench creates and the server it starts (such as 4GiB, to run them under valgrind).
    @OptionGroup var storage: MapSizeOption
    @Flag(name: .long, help: "Print the figures as one JSON object.")
    var json = false

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let interruptions = Self.undoOnInterruption()
        defer { for source in interruptions { source.cancel() } }
        try reportingErrors { () throws(LedgerError) in
            let target: BenchConfiguration.Target
            try checkOptionsGoTogether()
            if let connect {
                guard let authorityKey else {
                    throw LedgerError(.invalidRange, "--connect needs --authority-key: the bench registers its circuit on that ledger")
                }
                target = .connect(
                    try Endpoint(parsing: connect), authorityID: authorityID ?? "authority", authorityKey: try readSigningKey(authorityKey),
                    serverPid: serverPid)
            } else {
                target = .spawn(executable: try Self.ownExecutable(), directory: data, keep: keep, base: base)
            }
            var configuration = BenchConfiguration(target: target, events: events, seed: seed)
            configuration.prefill = prefill
            if let connections { configuration.connections = connections }
            if let pipeline { configuration.pipelineDepth = pipeline }
            if let batch { configuration.eventsPerRequest = batch }
            configuration.beneficiaries = beneficiaries
            configuration.balanceQueries = balanceQueries
            configuration.proofs = proofs
            configuration.audit = audit
            configuration.coldBase = coldBase
            if let timeoutSeconds { configuration.timeoutSeconds = timeoutSeconds }
            configuration.exportEventsPath = exportEvents
            configuration.exportOnly = exportOnly
            if let maximumCommitBatch { configuration.serverArguments += ["--maximum-commit-batch", String(maximumCommitBatch)] }
            if let mapSize = storage.mapSize {
                configuration.mapSize = try LMDBEnvironment.mapSize(parsing: mapSize)
                configuration.serverArguments += ["--map-size", mapSize]
            }
            // Progress goes to stderr (the figures to stdout), so a long run shows where it is.
            let run = Result { () throws(LedgerError) in try BenchRunner.run(configuration) { message in printError("bench: " + message) } }
            // Stopping the server on a signal fails the run's requests: that is not the run's error to report.
            BenchCleanup.holdIfInterrupted()
            let report = try run.get()
            let output = StandardOutput()
            // The JSON quotes what the server sent (refusal codes, failures): on a terminal escaped, as the text is.
            if json { output.writeLine(json: Array(report.jsonText.utf8)) } else { output.write(report.text + "\n") }
            output.flush()
            if let refusals = report.append?.refusals, case let refused = refusals.values.reduce(0, +), refused > 0 {
                // By code: a full disk's storage_error is not the ledger's refusal of the mix.
                let codes = refusals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                throw LedgerError(.integrity, "\(refused) events of the mix were refused (\(codes)), so the run measured another load")
            }
            // A run that did not append the whole mix, or answer every read it asked, measured another load than the
            // one asked for.
            if report.exportedOnlyTo == nil, !report.complete, let append = report.append {
                var reasons: [String] = []
                if append.stoppedByDeadline { reasons.append("the --timeout of \(configuration.timeoutSeconds) s stopped the sending") }
                if !append.failures.isEmpty { reasons.append("\(append.failures.count) connections failed") }
                for (_, phase) in report.readPhases where !phase.whole {
                    reasons.append("\(phase.name): " + phase.shortfall.joined(separator: ", "))
                }
                throw LedgerError(
                    .integrity,
                    "the run is not complete: \(append.accepted) of \(report.events) events appended (\(reasons.joined(separator: "; ")))")
            }
        }
    }

    /// SIGINT, SIGTERM and SIGHUP (a terminal closed, `kill -HUP`; not under `nohup`: `stopSignals`) end the process
    /// without the run's own cleanup: each stops the server the bench started and removes the folders it made
    /// (`BenchCleanup`), then exits with 128 + the signal's number, as the shell would. Left to its default, SIGHUP ended the bench alone, its server running on.
    static func undoOnInterruption() -> [any DispatchSourceSignal] {
        onInterruption { number, name in
            guard let done = BenchCleanup.undoEverything() else {
                printError("bench: \(name) again: still stopping the server and removing what the run made")
                return
            }
            printError("bench: interrupted by \(name): stopped the run")
            for line in done { printError("bench: " + line) }
            _exit(128 + number)
        }
    }

    /// Options of a running server's run and of the bench's own server are not mixed: one given where it would be
    /// ignored is refused, before anything is signed or started.
    func checkOptionsGoTogether() throws(LedgerError) {
        if exportOnly {
            guard exportEvents != nil else { throw LedgerError(.invalidRange, "--export-only needs --export-events FILE") }
            let runOptions: [(name: String, given: Bool)] = [
                ("--connect", connect != nil), ("--base", base != nil), ("--cold-base", coldBase), ("--data", data != nil), ("--keep", keep),
                ("--map-size", storage.mapSize != nil), ("--maximum-commit-batch", maximumCommitBatch != nil), ("--audit", audit),
                ("--prefill", prefill != 0), ("--balance-queries", balanceQueries != 0), ("--proofs", proofs != 0),
                ("--connections", connections != nil), ("--pipeline", pipeline != nil), ("--batch", batch != nil),
                ("--timeout", timeoutSeconds != nil),
            ]
            if let option = runOptions.first(where: \.given) {
                throw LedgerError(.invalidRange, "\(option.name) is for a run against a server; --export-only only writes the events")
            }
        }
        if connect != nil {
            let ownServerOptions: [(name: String, given: Bool)] = [
                ("--base", base != nil), ("--cold-base", coldBase), ("--data", data != nil), ("--keep", keep),
                ("--map-size", storage.mapSize != nil), ("--maximum-commit-batch", maximumCommitBatch != nil),
            ]
            if let option = ownServerOptions.first(where: \.given) {
                throw LedgerError(.invalidRange, "\(option.name) is for the bench's own server; it cannot go with --connect")
            }
        } else {
            let runningServerOptions: [(name: String, given: Bool)] = [
                ("--authority-key", authorityKey != nil), ("--authority-id", authorityID != nil), ("--server-pid", serverPid != nil),
            ]
            if let option = runningServerOptions.first(where: \.given) {
                throw LedgerError(.invalidRange, "\(option.name) goes with --connect: it describes a running server, and without --connect the bench starts its own")
            }
        }
        // Its server would refuse it only once the events are signed and the server started.
        if let maximumCommitBatch, !(1...Ledger.maximumBatchCount).contains(maximumCommitBatch) {
            throw LedgerError(.invalidRange, "--maximum-commit-batch must be 1 to \(Ledger.maximumBatchCount)")
        }
    }

    /// This program's path, to start `circuito serve` as a child.
    static func ownExecutable() throws(LedgerError) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { throw LedgerError(.storage, "cannot find this program's path: \(String(cString: strerror(errno)))") }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
