import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Foundation
import Glibc
import Testing

// `circuito bench --base`: a run that starts from a copy of an earlier bench ledger, so that the same run can be
// measured at several ledger sizes (Benchmarks/run-scenarios.sh compares 10k with 1M records this way).
@Suite(.serialized, OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10))) struct BenchCLITests {
    static func figures(_ result: CLIResult) throws -> JSONValue {
        try JSONParser.parse(result.stdoutBytes)
    }

    static func integer(_ figures: JSONValue, _ name: String) -> Int64? {
        if case .integer(let value)? = figures[name] { return value }
        return nil
    }

    /// A figure written with or without a fraction.
    static func number(_ figures: JSONValue, _ name: String) -> Double? {
        switch figures[name] {
        case .integer(let value)?: return Double(value)
        case .number(let value)?: return value
        default: return nil
        }
    }

    @Test("a run from --base appends a fresh circuit to a copy of the base, which stays as it was and verifies")
    func runFromBase() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let base = workspace.path("base")
        // --map-size: the bench creates the ledger and runs its server with that map (for valgrind, which cannot map 16 GiB).
        let first = try await circuito("bench", "--events", "200", "--connections", "4", "--data", base, "--map-size", "64MiB", "--json", timeout: 300)
        try #require(first.status == 0, "\(first.stderr)")
        #expect(try LedgerReader.open(directory: base).mapSizeBytes == 64 << 20)
        let firstFigures = try Self.figures(first)
        let baseSize = try #require(Self.integer(firstFigures, "ledger_size_after"))
        // The authority's key is kept beside the ledger, readable by its owner only.
        #expect(fileMode(base + "/bench-authority.key") == 0o600)
        let baseRoot = try await rootOf(base)

        let copy = workspace.path("copy")
        let second = try await circuito("bench", "--base", base, "--events", "150", "--connections", "4", "--data", copy, "--json", timeout: 300)
        try #require(second.status == 0, "\(second.stderr)")
        let secondFigures = try Self.figures(second)
        #expect(Self.integer(secondFigures, "accepted") == 150)
        #expect(Self.integer(secondFigures, "refused") == 0)
        #expect(secondFigures["complete"] == .bool(true) && secondFigures["stopped_by_deadline"] == .bool(false))
        #expect(Self.integer(secondFigures, "connections_failed") == 0)
        // Of its resident memory, the pages of its ledger file are counted apart (the rest: its own, the program's).
        let ledgerMapped = try #require(Self.number(secondFigures, "server_ledger_mapped_mb"))
        #expect(ledgerMapped > 0 && ledgerMapped < (Self.number(secondFigures, "server_rss_mb") ?? 0))
        // The writer's figures over the appends: every accepted event was written by one of its commits, and the
        // writer cannot be busy for longer than the phase it served (a little slack for two processes' clocks).
        let commits = try #require(Self.integer(secondFigures, "writer_commits"))
        #expect(commits >= 1 && commits <= 150)
        let perCommit = try #require(Self.number(secondFigures, "writer_events_per_commit"))
        #expect(abs(perCommit * Double(commits) - 150) < Double(commits) * 0.05 + 0.5)
        let busyShare = try #require(Self.number(secondFigures, "writer_busy_share"))
        #expect(busyShare > 0 && busyShare <= 1.05)
        let commitShare = try #require(Self.number(secondFigures, "writer_commit_share"))
        #expect(commitShare > 0 && commitShare <= 1)
        #expect(try #require(Self.number(secondFigures, "writer_commit_ms_mean")) > 0)
        // The planner checked every event with the rulebook, within the phase.
        let planningShare = try #require(Self.number(secondFigures, "writer_planning_share"))
        #expect(planningShare > 0 && planningShare <= 1.05)
        // Some of the requests may have found the server idle and been taken on an event loop: a share, never more.
        let onEventLoop = try #require(Self.number(secondFigures, "append_requests_on_event_loop_share"))
        #expect(onEventLoop >= 0 && onEventLoop <= 1)
        // The server's threads were switched at least once per request, and the host's steal is a share.
        #expect(try #require(Self.number(secondFigures, "server_context_switches_per_event")) >= 1)
        let appendSteal = try #require(Self.number(secondFigures, "host_steal_share"))
        #expect(appendSteal >= 0 && appendSteal <= 1)
        // The bound's two measurements of 150 events may end within one clock tick: then there is no share (null).
        if let boundSteal = Self.number(secondFigures, "verify_bound_host_steal_share") {
            #expect(boundSteal >= 0 && boundSteal <= 1)
        } else {
            #expect(secondFigures["verify_bound_host_steal_share"] == .null)
        }
        // The server's CPU by its threads' parts: shares that add up to one, almost all of it in the named threads.
        // 150 events may take less than one clock tick of the server's threads: then every share is null.
        let parts = ["committer", "planner", "request_threads", "event_loops", "other"]
        let shares = parts.map { Self.number(secondFigures, "server_cpu_share_\($0)") }
        if shares.allSatisfy({ $0 != nil }) {
            let values = shares.map { $0 ?? 0 }
            #expect(values.allSatisfy { $0 >= 0 && $0 <= 1 })
            #expect(abs(values.reduce(0, +) - 1) < 0.01, "shares \(values)")
            #expect(values[0] + values[1] + values[2] + values[3] > 0.5, "the named threads did the work: \(values)")
        } else {
            #expect(parts.allSatisfy { secondFigures["server_cpu_share_\($0)"] == .null }, "all or none: \(shares)")
        }
        // The kernel's share of the server's CPU (null when 150 events took less than a clock tick), and what the
        // ledger's disk wrote: every commit writes pages, and on tmpfs there is no disk to count.
        if let systemShare = Self.number(secondFigures, "server_system_cpu_share") {
            #expect(systemShare >= 0 && systemShare <= 1)
        } else {
            #expect(secondFigures["server_system_cpu_share"] == .null)
        }
        #expect(isOnTmpfs("/dev/shm") && !isOnTmpfs("/proc"), "the check of the copy's file system below tells them apart")
        if isOnTmpfs(copy) {
            #expect(secondFigures["disk_write_kb_per_event"] == .null)
        } else {
            let writtenKilobytes = try #require(Self.number(secondFigures, "disk_write_kb_per_event"))
            #expect(writtenKilobytes > 1, "a commit writes several 4 KiB pages for a few events: \(writtenKilobytes) KiB per event")
            #expect(try #require(Self.number(secondFigures, "disk_write_requests_per_event")) > 0)
        }
        // The disk under the ledger was measured before the appends.
        #expect(try #require(Self.number(secondFigures, "disk_random_page_sync_us")) > 0)
        #expect(try #require(Self.number(secondFigures, "disk_contiguous_page_sync_us")) > 0)
        // And a round trip over a loopback socket, the floor under one client's latency.
        let loopbackMedian = try #require(Self.number(secondFigures, "loopback_round_trip_p50_us"))
        let loopback99 = try #require(Self.number(secondFigures, "loopback_round_trip_p99_us"))
        #expect(loopbackMedian > 0 && loopbackMedian <= loopback99)
        // Its circuit was set up on top of every record of the base.
        let setupEvents = try #require(Self.integer(secondFigures, "setup_events"))
        #expect(Self.integer(secondFigures, "ledger_size_before") == baseSize + setupEvents)
        #expect(Self.integer(secondFigures, "ledger_size_after") == baseSize + setupEvents + 150)
        #expect(second.stderr.contains("copying the ledger of \(base)"))
        // The copy was read into the page cache before its server started (LMDB's copy leaves it out).
        #expect(second.stderr.contains("reading the copy into the page cache"))
        #expect(try #require(Self.number(secondFigures, "base_copy_mb")) > 0)
        #expect(try #require(Self.number(secondFigures, "base_copy_read_seconds")) >= 0)
        let afterCopy = try #require(Self.number(secondFigures, "base_copy_cached_share_after_copy"))
        #expect(afterCopy >= 0 && afterCopy <= 1)
        #expect(Self.number(secondFigures, "base_copy_cached_share_at_start") == 1)

        // The base is untouched, and the copy is a whole ledger: it holds the base's records under the same tree.
        await #expect(try rootOf(base) == baseRoot)
        let copyVerify = try await circuito("verify", "--data", copy)
        #expect(copyVerify.status == 0, "\(copyVerify.stderr)")
        await #expect(try rootOf(copy, size: UInt64(baseSize)) == baseRoot)
        // A copy is a base in turn; with --cold-base its copy is left as LMDB wrote it.
        #expect(fileMode(copy + "/bench-authority.key") == 0o600)
        let third = try await circuito("bench", "--base", copy, "--cold-base", "--events", "20", "--connections", "2", "--json", timeout: 300)
        try #require(third.status == 0, "\(third.stderr)")
        let thirdFigures = try Self.figures(third)
        #expect(Self.integer(thirdFigures, "accepted") == 20)
        #expect(!third.stderr.contains("reading the copy"))
        #expect(thirdFigures["base_copy_read_seconds"] == .null)
        let coldShare = try #require(Self.number(thirdFigures, "base_copy_cached_share_at_start"))
        #expect(coldShare >= 0 && coldShare <= 1)
        #expect(Self.number(thirdFigures, "base_copy_cached_share_after_copy") == coldShare)
        // A run without --base has no copy to report.
        #expect(firstFigures["base_copy_mb"] == nil)
    }

    @Test("--base refuses a folder without the bench's authority key, --connect, and its own --data folder")
    func baseRefusals() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let ledger = try await TestLedger()
        defer { ledger.remove() }

        let notBench = try await circuito("bench", "--base", ledger.directory, "--events", "10")
        #expect(notBench.status == 1)
        #expect(notBench.stderr.hasPrefix("error: not_found: "))
        #expect(notBench.stderr.contains("bench-authority.key"))

        let missing = try await circuito("bench", "--base", workspace.path("absent"), "--events", "10")
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: not_found: --base \(workspace.path("absent")) does not exist\n", "\(missing.stderr)")

        let withConnect = try await circuito("bench", "--base", ledger.directory, "--connect", "127.0.0.1:1", "--authority-key", "x", "--events", "10")
        #expect(withConnect.status == 1)
        #expect(withConnect.stderr.hasPrefix("error: invalid_range: "))

        let sameFolder = try await circuito("bench", "--base", ledger.directory, "--data", ledger.directory, "--events", "10")
        #expect(sameFolder.status == 1)
        #expect(sameFolder.stderr.hasPrefix("error: invalid_range: "))
        let coldWithoutBase = try await circuito("bench", "--cold-base", "--data", workspace.path("cold"), "--events", "10")
        #expect(coldWithoutBase.status == 1)
        #expect(coldWithoutBase.stderr == "error: invalid_range: --cold-base is about the copy of --base; it needs --base\n", "\(coldWithoutBase.stderr)")
        // Nothing was written: no key file appeared in the folders named.
        #expect(access(workspace.path("cold"), F_OK) != 0)
        #expect(access(ledger.directory + "/bench-authority.key", F_OK) != 0)
        #expect(access(workspace.path("absent"), F_OK) != 0)
    }

    @Test("--audit replays the ledger it appended to three times (verify, rebuild, rebuild trusting the checkpoints)")
    func auditReplaysTheWholeLedger() async throws {
        let run = try await circuito("bench", "--events", "120", "--connections", "3", "--audit", "--json", timeout: 300)
        try #require(run.status == 0, "\(run.stderr)")
        let figures = try Self.figures(run)
        #expect(Self.integer(figures, "refused") == 0)
        // Every record was replayed: the setup and the 120 events.
        let size = try #require(Self.integer(figures, "ledger_size_after"))
        #expect(Self.integer(figures, "audit_records") == size)
        for name in ["verify_events_per_second", "rebuild_events_per_second", "rebuild_trusting_checkpoints_events_per_second"] {
            #expect(try #require(Self.number(figures, name), "\(name)") > 0, "\(name)")
        }
        // The bound is compared over the ledger's own signatures: one per setup record, two per payment.
        let signaturesPerRecord = try #require(Self.number(figures, "verify_signatures_per_record"))
        #expect(signaturesPerRecord > 1 && signaturesPerRecord < 2, "\(signaturesPerRecord)")
        let verifyRate = try #require(Self.number(figures, "verify_events_per_second"))
        let boundSignatures = try #require(Self.number(figures, "verify_bound_signatures_per_second"))
        let ratio = try #require(Self.number(figures, "verify_ratio_to_bound"))
        #expect(abs(ratio - verifyRate * signaturesPerRecord / boundSignatures) < 0.002, "\(ratio)")
        for step in ["replaying the ledger (verify)", "replaying the ledger (rebuild)", "replaying the ledger (rebuild --trust-checkpoints)"] {
            #expect(run.stderr.contains(step), "\(step)")
        }
        // The replays take far longer than a clock tick: the host's steal over them is a share.
        let steal = try #require(Self.number(figures, "audit_host_steal_share"))
        #expect(steal >= 0 && steal <= 1)
    }

    @Test("options of a running server's run and of the bench's own server are not mixed, each refused by name")
    func optionsGoTogether() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let connect = ["--connect", "127.0.0.1:1", "--authority-key", workspace.path("no-key"), "--events", "10"]
        let ownServerOptions: [(arguments: [String], name: String)] = [
            (["--data", workspace.path("ledger")], "--data"), (["--keep"], "--keep"), (["--map-size", "1GiB"], "--map-size"),
            (["--maximum-commit-batch", "8"], "--maximum-commit-batch"), (["--cold-base"], "--cold-base"),
        ]
        for (arguments, name) in ownServerOptions {
            let run = try await circuito(["bench"] + connect + arguments)
            #expect(run.status == 1, "\(arguments)")
            #expect(run.stderr == "error: invalid_range: \(name) is for the bench's own server; it cannot go with --connect\n", "\(run.stderr)")
        }
        let runningServerOptions: [(arguments: [String], name: String)] = [
            (["--authority-key", workspace.path("no-key")], "--authority-key"), (["--authority-id", "city"], "--authority-id"),
            (["--server-pid", "1"], "--server-pid"),
        ]
        for (arguments, name) in runningServerOptions {
            let run = try await circuito(["bench", "--events", "10", "--data", workspace.path("ledger")] + arguments)
            #expect(run.status == 1, "\(arguments)")
            #expect(
                run.stderr == "error: invalid_range: \(name) goes with --connect: it describes a running server, and without --connect the bench starts its own\n",
                "\(run.stderr)")
        }
        // Refused before anything was signed or made.
        #expect(access(workspace.path("ledger"), F_OK) != 0)
    }

    @Test("--connect to a port where no server listens fails with connection_failed before anything is signed")
    func connectRefusedFirst() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let keyPath = workspace.path("authority.key")
        try KeyFile.write(Ed25519PrivateKey(), to: keyPath)
        // Port 1: nothing listens there on a test machine (the option tests use it too).
        let run = try await circuito("bench", "--connect", "127.0.0.1:1", "--authority-key", keyPath, "--events", "10")
        #expect(run.status == 1)
        #expect(run.stderr.contains("error: connection_failed: "), "\(run.stderr)")
        #expect(!run.stderr.contains("pre-signing"), "signed before finding the server missing: \(run.stderr)")
    }

    @Test("--export-only writes the mix's signed events, one per line, says only that, and refuses the options of a run")
    func exportOnly() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let path = workspace.path("events.jsonl")
        let text = try await circuito("bench", "--events", "40", "--export-events", path, "--export-only")
        try #require(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("exported: 40 signed events of the mix (payment "), "\(text.stdout)")
        #expect(text.stdout.contains(" to \(path), pre-signed in ") && text.stdout.hasSuffix(" s; nothing measured\n"), "\(text.stdout)")
        #expect(!text.stdout.contains("bound"), "an export measures nothing: \(text.stdout)")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 40)
        for line in lines {
            let signed = try SignedEvent(jsonBytes: Array(line.utf8))
            _ = try signed.verified()
        }
        let json = try await circuito("bench", "--events", "40", "--export-events", path, "--export-only", "--json")
        try #require(json.status == 0, "\(json.stderr)")
        let figures = try Self.figures(json)
        #expect(Self.integer(figures, "exported_events") == 40)
        #expect(figures["export_path"] == .string(path))
        #expect(figures["throughput_events_per_second"] == nil && figures["verify_bound_events_per_second"] == nil)
        let mixTotal = figures["mix"]?.objectValue.map { $0.values.compactMap { if case .integer(let count) = $0 { count } else { nil } }.reduce(0, +) }
        #expect(mixTotal == 40)
        // The --json run wrote the file again, as many events.
        #expect(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 40)

        let withoutFile = try await circuito("bench", "--events", "40", "--export-only")
        #expect(withoutFile.status == 1 && withoutFile.stderr == "error: invalid_range: --export-only needs --export-events FILE\n", "\(withoutFile.stderr)")
        let other = workspace.path("other.jsonl")
        let runOptions: [(arguments: [String], name: String)] = [
            (["--audit"], "--audit"), (["--data", workspace.path("ledger")], "--data"), (["--keep"], "--keep"),
            (["--prefill", "10"], "--prefill"), (["--balance-queries", "5"], "--balance-queries"), (["--proofs", "5"], "--proofs"),
            (["--map-size", "1GiB"], "--map-size"), (["--maximum-commit-batch", "8"], "--maximum-commit-batch"),
            (["--base", workspace.root], "--base"), (["--connect", "127.0.0.1:1", "--authority-key", path], "--connect"),
            (["--connections", "4"], "--connections"), (["--pipeline", "2"], "--pipeline"), (["--timeout", "60"], "--timeout"),
            (["--batch", "4"], "--batch"),
        ]
        for (arguments, name) in runOptions {
            let run = try await circuito(["bench", "--events", "40", "--export-events", other, "--export-only"] + arguments)
            #expect(run.status == 1, "\(arguments)")
            #expect(run.stderr == "error: invalid_range: \(name) is for a run against a server; --export-only only writes the events\n", "\(run.stderr)")
        }
        #expect(access(other, F_OK) != 0 && access(workspace.path("ledger"), F_OK) != 0)
    }

    @Test("--batch sends the mix in submit_batch requests, every event counted once; outside 1 to 256 it is refused before anything runs")
    func batchedSubmissions() async throws {
        let run = try await circuito("bench", "--events", "300", "--connections", "3", "--pipeline", "2", "--batch", "8", "--json", timeout: 300)
        try #require(run.status == 0, "\(run.stderr)")
        let figures = try Self.figures(run)
        #expect(Self.integer(figures, "events_per_request") == 8)
        #expect(Self.integer(figures, "accepted") == 300 && Self.integer(figures, "refused") == 0)
        let before = try #require(Self.integer(figures, "ledger_size_before"))
        #expect(Self.integer(figures, "ledger_size_after") == before + 300)
        for batch in ["0", "257"] {
            let refused = try await circuito("bench", "--events", "10", "--batch", batch)
            #expect(refused.status == 1 && refused.stderr == "error: invalid_range: --batch must be 1 to 256 events (a submit_batch's bound)\n", "\(refused.stderr)")
        }
    }

    @Test("--data refuses a folder that is there already, before signing anything, and writes nothing into it")
    func dataFolderThereAlready() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let filesBefore = try FileManager.default.contentsOfDirectory(atPath: ledger.directory).sorted()

        let run = try await circuito("bench", "--data", ledger.directory, "--events", "10")
        #expect(run.status == 1)
        #expect(run.stderr.contains("error: invalid_range: --data \(ledger.directory) is there already"))
        // Refused before the circuit was signed, and the ledger's folder holds what it held.
        #expect(!run.stderr.contains("pre-signing"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: ledger.directory).sorted() == filesBefore)

        let empty = try Workspace()
        defer { empty.remove() }
        let intoEmpty = try await circuito("bench", "--data", empty.root, "--events", "10")
        #expect(intoEmpty.status == 1)
        #expect(intoEmpty.stderr.contains("error: invalid_range: --data "))
    }

    /// The processes whose command line holds `text` (a server's holds its ledger's folder).
    static func processes(commandLineContaining text: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let bytes = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: bytes.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(text)
        }
    }

    @Test("SIGINT, SIGTERM or SIGHUP stops the server the bench started and removes its temporary ledger, then exits 128 + the signal")
    func interruptionUndoesTheRun() async throws {
        // SIGHUP: a terminal closed (or `kill -HUP`) left the server running and its ledger in TMPDIR.
        for (signalNumber, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")] {
            let workspace = try Workspace()
            defer { workspace.remove() }
            // Its temporary folders go under TMPDIR, so the workspace shows whatever it leaves.
            let child = try ChildProcess(
                ["bench", "--events", "5000", "--connections", "1"], environment: ["TMPDIR": workspace.root], unblockedSignals: true)
            // Interrupted while it appends: its server up, its ledger written.
            let deadline = Date().addingTimeInterval(240)
            while !String(decoding: child.stderr.bytes, as: UTF8.self).contains("bench: appending"), Date() < deadline, child.process.isRunning {
                try await Task.sleep(for: .milliseconds(50))
            }
            let servers = Self.processes(commandLineContaining: workspace.root)
            try #require(servers.count == 1, "no server of the bench's own: \(String(decoding: child.stderr.bytes, as: UTF8.self))")
            kill(child.pid, signalNumber)
            let result = await child.wait(timeout: 120)
            #expect(result.exitedNormally && result.status == 128 + signalNumber, "\(result.status) \(result.stderr)")
            #expect(result.stderr.contains("bench: interrupted by \(name)"), "\(result.stderr)")
            #expect(result.stderr.contains("bench: stopped the server (pid \(servers[0]))"), "\(result.stderr)")
            #expect(Self.processes(commandLineContaining: workspace.root).isEmpty, "the server outlived the bench")
            let left = try FileManager.default.contentsOfDirectory(atPath: workspace.root)
            #expect(left == [], "left behind: \(left) \(left.map { (try? FileManager.default.contentsOfDirectory(atPath: workspace.root + "/" + $0)) ?? [] })")
        }
    }

    @Test("a signal after the appends (its --data ledger whole, its server stopped, held in the --audit replay) removes the replay's folder and keeps the ledger, which verifies; one while it copies its --base (held at the copy's first write) removes the copy and leaves the base as it was")
    func interruptionAfterTheAppendsAndWhileCopyingTheBase() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let library = try await FaultInjection.compile(in: workspace)
        // The temporary folders go under TMPDIR, and the first file the run opens or writes there is where it is held.
        let temporary = URL(fileURLWithPath: workspace.path("tmp")).resolvingSymlinksInPath().path
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        func heldRun(_ arguments: [String], call: String, held: String) async throws -> ChildProcess {
            try await FaultInjection.startHeld(
                arguments, library: library, calls: [call], path: temporary + "/", held: held, environment: ["TMPDIR": temporary],
                timeoutSeconds: 120)
        }

        // Held opening the scratch environment of its first replay: the appends are done, the server stopped.
        let base = workspace.path("base")
        let audited = try await heldRun(["bench", "--data", base, "--events", "50", "--audit"], call: "open", held: workspace.path("held-replay"))
        // Its last line was written before it was held, but may not have been read from the pipe yet.
        let replayStarted = await audited.stderr.waitForText(timeout: 60) { $0.hasSuffix("bench: replaying the ledger (verify)\n") }
        #expect(replayStarted, "not held in the replay: \(String(decoding: audited.stderr.bytes, as: UTF8.self))")
        let scratch = try FileManager.default.contentsOfDirectory(atPath: temporary)
        #expect(scratch.count == 1 && scratch.allSatisfy { $0.hasPrefix("circuito-bench-replay-") }, "\(scratch)")
        kill(audited.pid, SIGINT)
        let stopped = await audited.wait(timeout: 60)
        #expect(stopped.exitedNormally && stopped.status == 128 + SIGINT, "\(stopped.status) \(stopped.stderr)")
        #expect(stopped.stderr.contains("bench: interrupted by SIGINT: stopped the run\nbench: removed \(temporary)/circuito-bench-replay-"), "\(stopped.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary) == [], "the replay's folder was left")
        // Its ledger was whole before the signal: kept, with the key a later --base needs.
        #expect(try await circuito("verify", "--data", base).succeeded, "the --data ledger of a run interrupted after its appends is gone or damaged")
        #expect(FileManager.default.fileExists(atPath: base + "/bench-authority.key"))
        #expect(Self.processes(commandLineContaining: workspace.root).isEmpty, "a server outlived the bench")

        // Held at the first write of its copy of the base, before any server started.
        let baseBytes = try #require(FileManager.default.contents(atPath: base + "/data.mdb"))
        let baseNames = try FileManager.default.contentsOfDirectory(atPath: base).sorted()
        let copying = try await heldRun(["bench", "--base", base, "--events", "50"], call: "write", held: workspace.path("held-copy"))
        let copyStarted = await copying.stderr.waitForText(timeout: 60) { $0.hasSuffix("bench: copying the ledger of \(base)\n") }
        #expect(copyStarted, "not held in the copy: \(String(decoding: copying.stderr.bytes, as: UTF8.self))")
        kill(copying.pid, SIGHUP)
        let interrupted = await copying.wait(timeout: 60)
        #expect(interrupted.exitedNormally && interrupted.status == 128 + SIGHUP, "\(interrupted.status) \(interrupted.stderr)")
        #expect(interrupted.stderr.contains("bench: interrupted by SIGHUP: stopped the run\nbench: removed \(temporary)/circuito-bench-"), "\(interrupted.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary) == [], "the copy of the base was left")
        #expect(FileManager.default.contents(atPath: base + "/data.mdb") == baseBytes, "the base's data.mdb changed")
        #expect(try FileManager.default.contentsOfDirectory(atPath: base).sorted() == baseNames, "the base's folder changed")
        #expect(Self.processes(commandLineContaining: workspace.root).isEmpty, "a server outlived the bench")
    }

    @Test("a --data ledger whose run ends before it is whole (its prefill stopped by --timeout) is removed, and the message says why")
    func unfinishedDataLedgerIsRemoved() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let folder = workspace.path("base")
        // A debug build appends a few thousand events a second in batches: 20 000 take longer than the second given.
        let run = try await circuito("bench", "--data", folder, "--prefill", "20000", "--events", "100", "--timeout", "1", timeout: 300)
        #expect(run.status == 1)
        // On a slow host (a sanitizer build, a busy machine) the second runs out in the circuit's setup already.
        let stopped = ["the prefill", "the circuit's setup"].contains { run.stderr.contains("error: integrity_failure: \($0): stopped by the --timeout of 1 s, ") }
        #expect(stopped, "\(run.stderr)")
        #expect(run.stderr.contains("bench: removed \(folder): the run ended before its ledger was whole"), "\(run.stderr)")
        // So no later run can take it for a base.
        #expect(access(folder, F_OK) != 0)
    }

    @Test("a run that does not append the whole mix (stopped by --timeout) says so in its figures and exits 1")
    func incompleteRunFails() async throws {
        // One connection of a debug build appends some hundreds of events a second: 3 000 take longer than 2 s.
        let run = try await circuito("bench", "--events", "3000", "--connections", "1", "--timeout", "2", "--json", timeout: 300)
        #expect(run.status == 1)
        #expect(run.stderr.contains("error: integrity_failure: the run is not complete: "), "\(run.stderr)")
        #expect(run.stderr.contains("the --timeout of 2 s stopped the sending"), "\(run.stderr)")
        // The figures are still printed, marked as not describing the load asked for.
        let figures = try Self.figures(run)
        #expect(figures["complete"] == .bool(false) && figures["stopped_by_deadline"] == .bool(true))
        #expect(try #require(Self.integer(figures, "accepted")) < 3000)
    }

    @Test("what can be checked before anything runs is: an --export-events path, beneficiaries fewer than connections; a server that cannot start says why")
    func refusedBeforeRunning() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let export = try await circuito("bench", "--events", "10", "--prefill", "20000", "--export-events", workspace.path("absent/events.jsonl"))
        #expect(export.status == 1)
        #expect(export.stderr.contains("error: storage_error: --export-events \(workspace.path("absent/events.jsonl")): cannot create a file in "), "\(export.stderr)")
        #expect(!export.stderr.contains("pre-signing"), "refused only after signing: \(export.stderr)")
        let folderAsFile = try await circuito("bench", "--events", "10", "--export-events", workspace.root)
        #expect(folderAsFile.status == 1 && folderAsFile.stderr.contains("is a folder, not a file"), "\(folderAsFile.stderr)")

        let fewBeneficiaries = try await circuito("bench", "--events", "10", "--connections", "32", "--beneficiaries", "16")
        #expect(fewBeneficiaries.status == 1)
        #expect(fewBeneficiaries.stderr == "error: invalid_range: --beneficiaries (16) must be at least --connections (32): each connection carries the events of its own beneficiaries\n", "\(fewBeneficiaries.stderr)")

        // A bound its server would refuse: refused before anything is signed.
        let badBound = try await circuito("bench", "--events", "10", "--maximum-commit-batch", "0", "--data", workspace.path("ledger"))
        #expect(badBound.status == 1 && badBound.stderr.hasPrefix("error: invalid_range: --maximum-commit-batch must be 1 to 4096"), "\(badBound.stderr)")
        #expect(!badBound.stderr.contains("pre-signing") && access(workspace.path("ledger"), F_OK) != 0, "\(badBound.stderr)")
        // A server that cannot start: its own usage error, not the hint that follows it in its log.
        let binary = try #require(CLI.binary)
        do {
            let server = try ServerProcess(
                executable: binary, directory: workspace.path("ledger"), extraArguments: ["--maximum-commit-batch", "0"],
                logPath: workspace.path("server.log"))
            server.stop()
            Issue.record("a server with a commit batch of 0 started")
        } catch {
            #expect(error.message.contains("circuito serve exited before listening: Error: --maximum-commit-batch must be at least 1"), "\(error)")
        }
    }
}

/// Whether `path` is on tmpfs, where nothing is written back to a disk: the type of the longest mount point in
/// `/proc/mounts` that holds it.
func isOnTmpfs(_ path: String) -> Bool {
    let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    guard let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return false }
    var best: (point: String, type: String) = ("", "")
    for line in mounts.split(separator: "\n") {
        let fields = line.split(separator: " ")
        guard fields.count >= 3 else { continue }
        let point = String(fields[1])
        let holds = point == "/" || resolved == point || resolved.hasPrefix(point + "/")
        if holds && point.count >= best.point.count { best = (point, String(fields[2])) }
    }
    return best.type == "tmpfs"
}
