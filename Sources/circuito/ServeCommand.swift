import ArgumentParser
import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Dispatch
import Foundation

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the ledger over JSON-RPC 2.0 (one message per line) on TCP and a Unix socket.",
        discussion: """
            Prints one line per listener (`listening tcp HOST:PORT`, `listening unix PATH`) and the checkpoint \
            verifier key (`verifier-key …`) once it accepts connections. SIGINT, SIGTERM or SIGHUP (SIGHUP left \
            ignored when started so, as by nohup): stop accepting, commit what the writer has taken, answer it, close \
            connections and the ledger. The methods are in Specs/protocol.md. The server holds the ledger's \
            checkpoint key (and --issuer-key keys): it keeps itself out of core dumps, and debuggers of its user \
            out, unless --allow-core-dumps; it locks the keys in memory where the system allows (ulimit -l), and \
            says once when it could not.
            """)

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "TCP address HOST:PORT (port 0: any free port); \"none\" for no TCP listener.")
    var listen: String = "127.0.0.1:7411"
    @Option(name: .long, help: "Also listen on this Unix socket path (a socket file nobody listens on is replaced; one a running server listens on is refused).")
    var unix: String?
    @Option(name: .long, help: "Bytes of one message line (1024 to 1 GiB).")
    var maximumFrameBytes: Int = ServerLimits().maximumFrameBytes
    @Option(name: .long, help: "Open connections at once (1 to 1048576).")
    var maximumConnections: Int = ServerLimits().maximumConnections
    @Option(name: .long, help: "Close a connection that sends nothing for this many seconds while it waits for no answer and holds no subscription (0: never).")
    var idleTimeoutSeconds: Int = ServerLimits().idleTimeoutSeconds ?? 0
    @Option(name: .long, help: "Close a connection that leaves its answers or subscription messages unread (nothing written to it) for this many seconds (0: never).")
    var writeStallTimeoutSeconds: Int = ServerLimits().writeStallTimeoutSeconds ?? 0
    @Option(name: .long, help: "Check this often whether the memory allocator holds freed memory worth giving back to the system, and give it back (1 to 3600; 0: never).")
    var allocatorTrimIntervalSeconds: Int = ServerLimits().allocatorTrimIntervalSeconds ?? 0
    @Option(name: .long, help: "Requests of one connection waiting for answers.")
    var maximumInFlight: Int = ServerLimits().maximumInFlightPerConnection
    @Option(name: .long, help: "Events the writer takes into one commit (1 to \(Ledger.maximumBatchCount)).")
    var maximumCommitBatch: Int = ServerLimits().maximumCommitBatch
    @Option(
        name: .customLong("maximum-subscriber-buffer"),
        help: ArgumentHelp("Records a live subscriber may fall behind before it is cut off.", valueName: "maximum-subscriber-buffer"))
    var maximumSubscriberBufferRecords: Int = ServerLimits().maximumSubscriberBufferRecords
    @Option(name: .long, help: "An organisation's key file: the server then signs that organisation's badge credentials (badge.credential, badge.status_list). Repeatable.")
    var issuerKey: [String] = []
    @Option(name: .long, help: "The JSON-LD contexts directory for credentials (default: $CIRCUITO_CONTEXTS or shared/contexts).")
    var contexts: String?
    @Flag(name: .long, help: "Let this server leave a core dump when it crashes, and a debugger attach: the dump then holds the checkpoint key and every --issuer-key, so keep it as secret as those files. For finding a crash; off by default.")
    var allowCoreDumps = false
    @Flag(name: .long, help: "Go on recording while the clock reads more than a minute behind the last record's recorded_at, at that recorded_at (otherwise clock_behind): for a ledger whose last commit was made while the clock ran ahead, once the clock is right.")
    var acceptClockBehind = false
    @OptionGroup var storage: MapSizeOption

    /// The most connections asked for: Linux's own bound on a process's files (fs.nr_open), far below where the
    /// descriptors the server reserves beside them would overflow.
    static let maximumConnectionsBound = 1 << 20

    func validate() throws {
        // A bound of 0 would refuse everything, and a negative one means nothing: usage errors, not a server that
        // starts and serves no one. Past the most, the frame bound overflows when a partial line arrives and the
        // connection bound when the file limit is worked out: a crash of the server, not an error.
        for (name, value, least, most) in [
            ("--maximum-frame-bytes", maximumFrameBytes, 1024, 1 << 30),
            ("--maximum-connections", maximumConnections, 1, Self.maximumConnectionsBound),
            ("--maximum-in-flight", maximumInFlight, 1, Int.max), ("--maximum-commit-batch", maximumCommitBatch, 1, Ledger.maximumBatchCount),
            ("--maximum-subscriber-buffer", maximumSubscriberBufferRecords, 1, Int.max),
        ] {
            if value < least { throw ValidationError("\(name) must be at least \(least)") }
            if value > most { throw ValidationError("\(name) must be at most \(most)") }
        }
        guard (0...604_800).contains(writeStallTimeoutSeconds) else {
            throw ValidationError("--write-stall-timeout-seconds must be 0 (never) to 604800 (a week)")
        }
        guard (0...604_800).contains(idleTimeoutSeconds) else {
            throw ValidationError("--idle-timeout-seconds must be 0 (never) to 604800 (a week)")
        }
        guard (0...3600).contains(allocatorTrimIntervalSeconds) else {
            throw ValidationError("--allocator-trim-interval-seconds must be 0 (never) to 3600 (an hour)")
        }
    }

    func run() throws {
        DemoCommand.warnIfUnfinished(data: data)
        var configuration = ServerConfiguration(directory: data, tcpHost: nil, unixSocketPath: unix)
        if listen != "none" {
            do throws(LedgerError) {
                guard case .tcp(let host, let port) = try Endpoint(parsing: listen) else {
                    let looksLikePath = listen.hasPrefix("unix:") || listen.contains("/")
                    throw LedgerError(.invalidRange, "--listen takes HOST:PORT, not \"\(listen)\"" + (looksLikePath ? "; use --unix for a socket path" : ""))
                }
                configuration.tcpHost = host
                configuration.tcpPort = port
            } catch {
                throw failure(error)
            }
        }
        do throws(LedgerError) {
            configuration.storageOptions = try storage.options(configuration.storageOptions)
        } catch {
            throw failure(error)
        }
        configuration.acceptsClockBehind = acceptClockBehind
        configuration.limits.maximumFrameBytes = maximumFrameBytes
        configuration.limits.maximumConnections = Self.connectionsWithinDescriptorLimit(maximumConnections)
        configuration.limits.idleTimeoutSeconds = idleTimeoutSeconds == 0 ? nil : idleTimeoutSeconds
        configuration.limits.writeStallTimeoutSeconds = writeStallTimeoutSeconds == 0 ? nil : writeStallTimeoutSeconds
        configuration.limits.allocatorTrimIntervalSeconds = allocatorTrimIntervalSeconds == 0 ? nil : allocatorTrimIntervalSeconds
        configuration.limits.maximumInFlightPerConnection = maximumInFlight
        configuration.limits.maximumCommitBatch = maximumCommitBatch
        configuration.limits.maximumEventsPerBatchRequest = min(configuration.limits.maximumEventsPerBatchRequest, maximumCommitBatch)
        configuration.limits.maximumSubscriberBufferRecords = maximumSubscriberBufferRecords
        // Before any key is read: the writer reads the checkpoint key when the server starts.
        if !allowCoreDumps {
            do throws(LedgerError) { try excludeFromCoreDumps() } catch { throw failure(error) }
        }
        if !issuerKey.isEmpty {
            do throws(LedgerError) {
                configuration.credentialIssuerKeys = try issuerKey.map { (path) throws(LedgerError) in try KeyFile.read(path) }
                configuration.credentialContexts = try CredentialContexts.load(directory: contexts)
            } catch {
                throw failure(error)
            }
        }
        // Commits that fail for a full disk are answered with their error, and the server goes on: its own output says
        // when they start failing and when they succeed again, so that whoever runs it learns of it from its log, not
        // only from its clients. Written off the committer thread, which must not wait on standard error.
        let log = DispatchQueue(label: "circuito-serve-log")
        let directory = data
        configuration.onCommitFailureChange = { error in
            log.async {
                guard let error else {
                    printError("serve: commits succeed again")
                    return
                }
                printError(
                    "serve: commits fail: \(error.code.name): \(error.message); their writes are answered with that error and the server goes on (a full disk: free space on the file system of \(directory); map_full: serve it again with a larger --map-size)")
            }
        }
        configuration.onClockRefusalChange = { error in
            log.async {
                guard let error else {
                    printError("serve: the clock is taken again: writes are recorded")
                    return
                }
                printError("serve: writes refused: \(error.code.name): \(error.message)")
            }
        }
        signal(SIGPIPE, SIG_IGN)
        let stop = StopSignal()
        // What it has to say is written before the command ends (and before the line that it stopped).
        defer { log.sync {} }
        try serve(configuration, stop: stop)
        log.sync {}
        // Every reference to the server ended with `serve`: the ledger's LMDB environment is closed by now.
        printError("stopped: \(data) closed cleanly")
    }

    /// Descriptors the server needs beside its connections: the ledger's files, the listeners, the event loops' and
    /// threads' own, a connection being refused past the bound.
    static let reservedDescriptors = 256

    /// Each connection is a file descriptor. Past the process's limit `accept` fails without taking the connection,
    /// and the event loop would retry it at once for as long as the connection waits (one core spinning, nobody
    /// answered): so the soft limit is raised to what the connections need, and where the hard limit is lower the
    /// connections are bounded below it instead, with a warning.
    static func connectionsWithinDescriptorLimit(_ requested: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return requested }
        let needed = rlim_t(requested + reservedDescriptors)
        if limit.rlim_cur < needed {
            var raised = limit
            raised.rlim_cur = min(limit.rlim_max, needed)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        guard limit.rlim_cur < needed else { return requested }
        let allowed = max(1, Int(limit.rlim_cur) - reservedDescriptors)
        printError("serve: this process may open \(limit.rlim_cur) files (ulimit -n): at most \(allowed) connections, not \(requested)")
        return allowed
    }

    /// Runs the server until a stop signal has shut it down.
    private func serve(_ configuration: ServerConfiguration, stop: StopSignal) throws {
        let started = ResultBox<LedgerServer>()
        let finished = DispatchSemaphore(value: 0)
        let startConfiguration = configuration
        Task {
            do {
                let server = try await LedgerServer.start(startConfiguration)
                started.set(.success(server))
            } catch {
                started.set(.failure(error))
            }
        }
        let server: LedgerServer
        switch started.wait() {
        case .success(let value): server = value
        case .failure(let error as LedgerError): throw failure(error)
        case .failure(let error):
            printError("error: \(LedgerError.Code.storage.name): \(LedgerServer.listenFailure(error, configuration: configuration))")
            throw ExitCode(1)
        }
        let output = StandardOutput()
        if let port = server.tcpPort, let host = configuration.tcpHost {
            output.write("listening tcp \(Endpoint.tcp(host: host, port: port))\n")
        }
        if let path = server.unixSocketPath { output.write("listening unix \(path)\n") }
        output.write("verifier-key \(server.verifierKey)\n")
        // Every key is read by now. Said once, here only: a command that ends at once has little to swap out.
        if let lockError = SecretBytes.firstLockFailure {
            printError(
                "serve: note: the signing keys could not be locked in memory (mlock: \(String(cString: strerror(lockError)))) and may be written to swap; raise this process's locked-memory limit (ulimit -l, systemd LimitMEMLOCK=) or keep swap encrypted")
        }
        output.flush()
        // The ledger's storage failed (a failed write of a meta page): this process can commit nothing more, so it
        // stops, with a failure a supervisor restarts it on; what was committed before is intact.
        let storageFailure = ResultBox<LedgerError>()
        let shutDown: @Sendable () -> Void = {
            Task {
                await server.shutdown()
                finished.signal()
            }
        }
        server.onStorageFailure { error in
            storageFailure.set(.success(error))
            shutDown()
        }
        stop.onSignal(shutDown)
        finished.wait()
        started.clear()
        if let error = storageFailure.valueIfSet {
            printError("error: \(error.code.name): the server stopped: \(error.message)")
            throw ExitCode(1)
        }
    }
}

/// The stop signals (`stopSignals`: SIGINT, SIGTERM, and SIGHUP unless started under `nohup`) delivered to a handler
/// on a dispatch queue (never in a signal context), and a flag. A hangup stops the command as SIGTERM does, cleanly:
/// this server has no configuration to read again, and dying at once would lose the answers in flight.
final class StopSignal: @unchecked Sendable {
    // @unchecked: `requested` is guarded by `lock`; the sources are only touched in init.
    private let lock = NSLock()
    private var requested = false
    private var handlers: [@Sendable () -> Void] = []
    private var sources: [DispatchSourceSignal] = []

    init() {
        for (number, _) in stopSignals {
            sources.append(makeStopSignalSource(number) { [self] in self.fire() })
        }
    }

    private func fire() {
        let toRun: [@Sendable () -> Void] = lock.withLock {
            guard !requested else { return [] }
            requested = true
            // Run once; dropping them here releases what they hold (the server).
            defer { handlers = [] }
            return handlers
        }
        for handler in toRun { handler() }
    }

    var isRequested: Bool { lock.withLock { requested } }

    func onSignal(_ handler: @escaping @Sendable () -> Void) {
        let already = lock.withLock { () -> Bool in
            if !requested { handlers.append(handler) }
            return requested
        }
        if already { handler() }
    }
}

/// A result handed from a task to a thread that waits for it.
final class ResultBox<Value>: @unchecked Sendable {
    // @unchecked: `value` is written once under `lock` before `ready` is signalled, and read after.
    private let lock = NSLock()
    private let ready = DispatchSemaphore(value: 0)
    private var value: Result<Value, any Error>?

    func set(_ result: Result<Value, any Error>) {
        lock.withLock { value = result }
        ready.signal()
    }

    func clear() { lock.withLock { value = nil } }

    /// The value when one was set, without waiting.
    var valueIfSet: Value? {
        lock.withLock { () -> Value? in
            guard case .success(let value)? = value else { return nil }
            return value
        }
    }

    func wait() -> Result<Value, any Error> {
        ready.wait()
        return lock.withLock { value } ?? .failure(LedgerError(.storage, "no result"))
    }
}
