import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import Dispatch
import Foundation
import Glibc

/// What `circuito bench` does and against which server.
public struct BenchConfiguration: Sendable {
    public enum Target: Sendable {
        /// A new ledger (in `directory`, or a temporary folder removed afterwards unless `keep`) served by
        /// `executable serve` as a child process. With `base`, the new ledger starts as a copy of that earlier bench
        /// ledger (its authority key is kept beside it) and the run registers a fresh circuit on it: the same run
        /// can then be measured at several ledger sizes.
        case spawn(executable: String, directory: String?, keep: Bool, base: String? = nil)
        /// A running server; the bench registers its circuit with the authority's key. `serverPid` lets it read the
        /// server's memory.
        case connect(Endpoint, authorityID: String, authorityKey: Ed25519PrivateKey, serverPid: Int32?)
    }

    public var target: Target
    /// Events of the measured mix.
    public var events: Int
    /// Events of the same mix appended before the measurement (unmeasured), to measure at a given ledger size.
    public var prefill: Int = 0
    public var connections: Int = 32
    public var pipelineDepth: Int = 1
    /// Events per write request of the measured mix: 1 sends each with `submit`; more sends up to that many
    /// consecutive events of a connection as one `submit_batch` (all or nothing, consecutive records of one commit).
    public var eventsPerRequest: Int = 1
    /// Beneficiaries of the circuit; nil: one per 100 events of the run, at least 64.
    public var beneficiaries: Int?
    /// Signed `account.balance` queries after the appends (0: none).
    public var balanceQueries: Int = 0
    /// `proof.inclusion` requests after the appends (0: none).
    public var proofs: Int = 0
    /// Replay the ledger after the run, as `circuito verify`, `rebuild` and `rebuild --trust-checkpoints` do (own ledger only).
    public var audit = false
    public var seed: UInt64
    /// Every phase stops sending after this.
    public var timeoutSeconds: Int = 600
    /// Write the measured mix's signed events here, one per line (for the PostgreSQL peer).
    public var exportEventsPath: String?
    /// Only generate (and export) the events; start no server.
    public var exportOnly = false
    /// Extra arguments for the spawned `circuito serve` (its limits).
    public var serverArguments: [String] = []
    /// The map of the ledger the bench creates and of its server (`--map-size`); nil: the default.
    public var mapSize: LMDBEnvironment.MapSize?
    /// With a `base`: leave its copy out of the page cache, as LMDB's copy wrote it (`BaseCopyCache`).
    public var coldBase = false

    public init(target: Target, events: Int, seed: UInt64) {
        self.target = target
        self.events = events
        self.seed = seed
    }

    /// Bounds of the options, checked before anything runs.
    public func validate() throws(LedgerError) {
        guard (1...10_000_000).contains(events) else { throw LedgerError(.invalidRange, "--events must be 1 to 10000000") }
        guard (0...10_000_000).contains(prefill) else { throw LedgerError(.invalidRange, "--prefill must be 0 to 10000000") }
        guard (1...1024).contains(connections) else { throw LedgerError(.invalidRange, "--connections must be 1 to 1024") }
        guard (1...64).contains(pipelineDepth) else { throw LedgerError(.invalidRange, "--pipeline must be 1 to 64 (the server's in-flight bound)") }
        guard (1...BenchRunner.batchEvents).contains(eventsPerRequest) else {
            throw LedgerError(.invalidRange, "--batch must be 1 to \(BenchRunner.batchEvents) events (a submit_batch's bound)")
        }
        guard (0...10_000_000).contains(balanceQueries), (0...10_000_000).contains(proofs) else {
            throw LedgerError(.invalidRange, "--balance-queries and --proofs must be 0 to 10000000")
        }
        guard (1...86_400).contains(timeoutSeconds) else { throw LedgerError(.invalidRange, "--timeout must be 1 to 86400 seconds") }
        if let beneficiaries, !BenchCircuit.beneficiaryCountRange.contains(beneficiaries) {
            throw LedgerError(.invalidRange, "--beneficiaries must be \(BenchCircuit.beneficiaryCountRange.lowerBound) to \(BenchCircuit.beneficiaryCountRange.upperBound)")
        }
        if let beneficiaries, beneficiaries < connections {
            // A beneficiary's events travel on one connection, so fewer beneficiaries would leave connections idle
            // while the report counted them.
            throw LedgerError(.invalidRange, "--beneficiaries (\(beneficiaries)) must be at least --connections (\(connections)): each connection carries the events of its own beneficiaries")
        }
        if audit, case .connect = target { throw LedgerError(.invalidRange, "--audit replays the bench's own ledger; it needs --events without --connect") }
        if case .spawn(_, let directory, _, let base?) = target {
            guard base != directory else { throw LedgerError(.invalidRange, "--base must be another folder than --data") }
        } else if coldBase {
            throw LedgerError(.invalidRange, "--cold-base is about the copy of --base; it needs --base")
        }
    }

    /// One beneficiary per 100 events, at least 64 and at least one per connection.
    var beneficiaryCount: Int {
        beneficiaries ?? min(100_000, max(64, connections, (events + prefill) / 100))
    }
}

/// The single writer's work over a phase: the differences of `server.info`'s `writer` counters.
public struct WriterFigures: Sendable {
    public var commits: Int64
    public var records: Int64
    /// Time the writer's committer spent on groups of requests (the transaction, its commit, the answers).
    public var busyMicroseconds: Int64
    /// Time the writer's planner spent checking requests with the rulebook (nil: a server that does not report it).
    public var planningMicroseconds: Int64?
    /// Time inside LMDB's commit: its page writes and syncs.
    public var commitMicroseconds: Int64
    /// The phase's length, measured by the bench.
    public var phaseMicroseconds: Int64

    public var recordsPerCommit: Double { commits > 0 ? Double(records) / Double(commits) : 0 }
    public var commitMillisecondsMean: Double { commits > 0 ? Double(commitMicroseconds) / Double(commits) / 1000 : 0 }
    /// The share of the phase the writer was busy: near 1, the writer is the limit.
    public var busyShare: Double { phaseMicroseconds > 0 ? Double(busyMicroseconds) / Double(phaseMicroseconds) : 0 }
    /// The share of the phase the planner was busy (it runs while the committer commits).
    public var planningShare: Double? {
        guard let planningMicroseconds, phaseMicroseconds > 0 else { return nil }
        return Double(planningMicroseconds) / Double(phaseMicroseconds)
    }
    /// The share of the writer's busy time spent inside LMDB's commit.
    public var commitShare: Double { busyMicroseconds > 0 ? Double(commitMicroseconds) / Double(busyMicroseconds) : 0 }

    /// The difference of two `server.info` `writer` objects over a phase of `phaseMicroseconds`; nil when either
    /// lacks one (a server that does not report it). They come from the server (`--connect`): counters that no
    /// server counts (negative, or going back) give no figures.
    static func difference(from before: JSONValue?, to after: JSONValue?, phaseMicroseconds: Int64) -> WriterFigures? {
        func delta(_ name: String) -> Int64? {
            guard let first = before?[name]?.integerValue, let second = after?[name]?.integerValue, first >= 0, second >= first else { return nil }
            return second - first
        }
        guard let commits = delta("commits"), let records = delta("records"), let busy = delta("busy_microseconds"),
            let commit = delta("commit_microseconds")
        else { return nil }
        return WriterFigures(
            commits: commits, records: records, busyMicroseconds: busy, planningMicroseconds: delta("planning_microseconds"),
            commitMicroseconds: commit, phaseMicroseconds: phaseMicroseconds)
    }
}

/// One phase's figures.
public struct PhaseReport: Sendable {
    public let name: String
    /// Items the phase was given to send.
    public let asked: Int
    public let requests: Int
    public let accepted: Int
    public let refusals: [String: Int]
    public let failures: [String]
    public let perSecond: Double
    /// Accepted items per second while every connection still had requests to send, and that part's share of the
    /// phase (`LoadOutcome.allConnectionsBusyNanoseconds`): after it the phase runs on fewer connections than asked.
    public let perSecondWhileAllConnectionsBusy: Double?
    public let allConnectionsBusyShare: Double?
    public let latency: LatencyHistogram
    public let stoppedByDeadline: Bool
    /// Every item asked for accepted, none refused or unsent, no connection failed (`LoadOutcome.whole`).
    public let whole: Bool
    /// Of a read phase: the share of its requests the server answered on an event loop because nothing else was in
    /// flight (`BenchRunner.readShare`), when the server says.
    public var requestsOnEventLoopShare: Double?

    /// The text output's ending for that share (empty without one).
    var eventLoopText: String {
        requestsOnEventLoopShare.map { ", " + BenchReport.format($0 * 100, decimals: 1) + " % answered on an event loop" } ?? ""
    }

    init(name: String, outcome: LoadOutcome) {
        self.name = name
        asked = outcome.asked
        requests = outcome.sent
        accepted = outcome.accepted
        refusals = outcome.refusals
        failures = outcome.failures
        perSecond = outcome.acceptedPerSecond
        perSecondWhileAllConnectionsBusy = outcome.acceptedPerSecondWhileAllConnectionsBusy
        allConnectionsBusyShare = outcome.allConnectionsBusyShare
        latency = outcome.latency
        stoppedByDeadline = outcome.stoppedByDeadline
        whole = outcome.whole
    }

    /// Why the phase is not whole, in words (empty when it is).
    public var shortfall: [String] {
        var reasons: [String] = []
        let refused = refusals.values.reduce(0, +)
        if refused > 0 { reasons.append("\(refused) refused (\(refusals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))") }
        if stoppedByDeadline { reasons.append("the deadline stopped the sending after \(requests) of \(asked)") }
        if !failures.isEmpty { reasons.append("\(failures.count) connections failed") }
        if reasons.isEmpty, accepted != asked { reasons.append("\(accepted) of \(asked) accepted") }
        return reasons
    }
}

/// Everything a run measured.
public struct BenchReport: Sendable {
    public var events = 0
    public var connections = 0
    public var pipelineDepth = 0
    public var eventsPerRequest = 1
    public var beneficiaries = 0
    public var setupEvents = 0
    public var prefillEvents = 0
    public var mix: [BenchEventKind: Int] = [:]
    /// Where an `--export-only` run wrote the mix's signed events; such a run measures nothing, and its report says
    /// only what it wrote.
    public var exportedOnlyTo: String?
    public var ledgerSizeBefore: UInt64 = 0
    public var ledgerSizeAfter: UInt64 = 0
    public var presignSeconds = 0.0
    /// The bound: the mean of two measurements, before and after the appends (the machine is shared; its load
    /// changes during a run).
    public var verifyBoundEventsPerSecond = 0.0
    public var verifyBoundSignaturesPerSecond = 0.0
    public var verifyBoundBeforeEventsPerSecond = 0.0
    public var verifyBoundAfterEventsPerSecond = 0.0
    /// Events whose signatures the two measurements checked (each at least `boundMinimumSeconds` long, passing over
    /// the mix as often as it takes).
    public var verifyBoundEventsChecked = 0
    /// CPU time the signature checks of one event take (from the bound's measurement).
    public var verifyCPUMicrosecondsPerEvent = 0.0
    /// CPU time per accepted event during the appends, of the server and of the bench's own connections.
    public var serverCPUMicrosecondsPerEvent: Double?
    public var clientCPUMicrosecondsPerEvent: Double?
    /// The kernel's share of the server's CPU during the appends (system time against user and system; when the
    /// bench started it): page writes, syncs, sockets and thread wake-ups.
    public var serverSystemCPUShare: Double?
    /// What the ledger's disk wrote per accepted event during the appends (the device's counters, journal included),
    /// when the bench has the ledger's folder and it is on a block device (not tmpfs).
    public var diskWriteBytesPerEvent: Double?
    public var diskWriteRequestsPerEvent: Double?
    /// Context switches of the server's threads per accepted event during the appends (when the bench started it).
    public var serverContextSwitchesPerEvent: Double?
    /// Each part of the server's share of its CPU during the appends, by its threads' names (when the bench started it).
    public var serverThreadCPUShares: [ServerThreadCPU.Part: Double]?
    /// The machine's CPU time during the appends, and during the two measurements of the bound (added up): the
    /// share the hypervisor stole tells a busy host from a slow change.
    public var appendHostCPU: HostCPUInterval?
    public var boundHostCPU: HostCPUInterval?
    /// The machine's CPU time during the three replays of `--audit`.
    public var auditHostCPU: HostCPUInterval?
    public var cores = 0
    public var append: PhaseReport?
    public var balance: PhaseReport?
    /// The same queries, unsigned, on connections that opened a read session first.
    public var sessionBalance: PhaseReport?
    public var proof: PhaseReport?
    public var serverMemory: ProcessMemory?
    /// Of the server's VmRSS at the end, the pages of its ledger file (`data.mdb`) it has mapped.
    public var serverLedgerMappedBytes: UInt64?
    /// With `--base`: what the page cache held of the copy when the server started.
    public var baseCopyCache: BaseCopyCache?
    /// The most the server was resident while the appends ran (sampled every 100 ms).
    public var serverResidentDuringAppendBytes: UInt64?
    /// The server's single writer over the append phase (from `server.info` before and after it), when it says.
    public var writer: WriterFigures?
    /// The share of the append phase's requests that the server took on an event loop, because nothing else was in
    /// flight (`server.info`'s `writes_taken_on_event_loop` before and after), when it says.
    public var appendRequestsOnEventLoopShare: Double?
    /// What a durable page write costs on the ledger's disk, measured before the appends, when the bench has the
    /// ledger's folder.
    public var disk: DiskProbe?
    /// The file system of the ledger's folder, when the bench has it (`DiskProbe.fileSystem`).
    public var ledgerFileSystem: String?
    /// What a round trip over a loopback socket costs on the bench's machine, measured before the appends: the floor
    /// under one client's latency.
    public var loopback: LoopbackProbe?
    public var auditVerifyEventsPerSecond: Double?
    /// Event signatures (a payment's authorisation included) `verify` checked per record of the audited ledger: its
    /// records are not the mix alone (the circuit's setup events, a base ledger's records), so the bound is taken
    /// over the signatures, not the events.
    public var auditSignaturesPerRecord: Double?
    /// `verify`'s records per second against the bound's signatures per second over this ledger's signatures per
    /// record: the share of the bound `verify` reaches.
    public var auditVerifyRatioToBound: Double? {
        guard let auditVerifyEventsPerSecond, let auditSignaturesPerRecord, verifyBoundSignaturesPerSecond > 0 else { return nil }
        return auditVerifyEventsPerSecond * auditSignaturesPerRecord / verifyBoundSignaturesPerSecond
    }
    public var auditRebuildEventsPerSecond: Double?
    /// `rebuild --trust-checkpoints`: the same replay without the event signature checks.
    public var auditTrustingRebuildEventsPerSecond: Double?
    public var auditRecords: UInt64?
    public var notes: [String] = []

    public var throughput: Double { append?.perSecond ?? 0 }
    /// Whether the measured phase appended the whole mix (no refusal, nothing left unsent at the deadline, no
    /// connection failed) and every read phase that ran answered all it was asked. The figures of a run that is not
    /// complete describe another load than the one asked for.
    public var complete: Bool {
        guard let append else { return false }
        guard append.accepted == events && !append.stoppedByDeadline && append.failures.isEmpty else { return false }
        return readPhases.allSatisfy { $0.phase.whole }
    }

    /// The read phases that ran, with the prefix of their JSON fields.
    public var readPhases: [(prefix: String, phase: PhaseReport)] {
        [("balance", balance), ("session_balance", sessionBalance), ("proof", proof)].compactMap { prefix, phase in phase.map { (prefix, $0) } }
    }
    public var ratioToBound: Double { verifyBoundEventsPerSecond > 0 ? throughput / verifyBoundEventsPerSecond : 0 }
    /// The share of the server's CPU per event that signature checks take: the ratio to the bound this server could
    /// reach with every core to itself (no client, no neighbours), whatever the machine's load during the run.
    public var cpuRatioToBound: Double? {
        guard let server = serverCPUMicrosecondsPerEvent, server > 0 else { return nil }
        return verifyCPUMicrosecondsPerEvent / server
    }

    /// The `_mb` figures and "MB" in the text are megabytes of 10^6 bytes, the unit of the memory target (until
    /// 5 December 2026 they were MiB, 4.9 % smaller numbers for the same memory).
    static let bytesPerMegabyte = 1_000_000.0

    static func format(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (value * scale).rounded()
        // Figures made of a server's counters (`--connect`: any server) can pass 2^63 once scaled; such a double is a
        // whole number, written in full.
        guard let integer = Int64(exactly: scaled) else { return String(format: "%.\(decimals)f", value) }
        let sign = integer < 0 ? "-" : ""
        let magnitude = integer.magnitude
        let whole = magnitude / UInt64(scale)
        let fraction = magnitude % UInt64(scale)
        guard decimals > 0 else { return sign + String(whole) }
        let digits = String(fraction)
        return sign + String(whole) + "." + String(repeating: "0", count: decimals - digits.count) + digits
    }

    /// A latency percentile in milliseconds for the JSON (100: the maximum), or null when no answer was accepted:
    /// an empty set has no percentile, and 0 would read as a measured (and perfect) latency.
    static func latencyField(_ histogram: LatencyHistogram?, percentile: Double) -> String {
        guard let histogram, histogram.count > 0 else { return "null" }
        return format(histogram.milliseconds(atPercentile: percentile), decimals: 3)
    }

    /// The report as JSON text (numbers with fractions are written as JSON numbers).
    public var jsonText: String {
        if let path = exportedOnlyTo {
            return "{" + [
                ("exported_events", String(mixEventCount)), ("export_path", CanonicalJSON.encodeString(.string(path))),
                ("mix", mixJSON), ("presign_seconds", Self.format(presignSeconds, decimals: 1)),
            ].map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }
        var fields: [(String, String)] = [
            ("throughput_events_per_second", Self.format(throughput, decimals: 0)),
            ("verify_bound_events_per_second", Self.format(verifyBoundEventsPerSecond, decimals: 0)),
            ("ratio_to_bound", Self.format(ratioToBound, decimals: 3)),
            ("throughput_all_connections_busy_events_per_second", append?.perSecondWhileAllConnectionsBusy.map { Self.format($0, decimals: 0) } ?? "null"),
            ("all_connections_busy_share", append?.allConnectionsBusyShare.map { Self.format($0, decimals: 3) } ?? "null"),
            ("latency_p50_ms", Self.latencyField(append?.latency, percentile: 50)),
            ("latency_p90_ms", Self.latencyField(append?.latency, percentile: 90)),
            ("latency_p99_ms", Self.latencyField(append?.latency, percentile: 99)),
            ("latency_max_ms", Self.latencyField(append?.latency, percentile: 100)),
            ("server_rss_mb", serverMemory.map { Self.format(Double($0.residentBytes) / Self.bytesPerMegabyte, decimals: 1) } ?? "null"),
            ("server_peak_rss_mb", serverMemory.map { Self.format(Double($0.peakResidentBytes) / Self.bytesPerMegabyte, decimals: 1) } ?? "null"),
            ("server_rss_during_append_mb", serverResidentDuringAppendBytes.map { Self.format(Double($0) / Self.bytesPerMegabyte, decimals: 1) } ?? "null"),
            ("server_anonymous_rss_mb", serverMemory.map { Self.format(Double($0.anonymousResidentBytes) / Self.bytesPerMegabyte, decimals: 1) } ?? "null"),
            ("server_ledger_mapped_mb", serverLedgerMappedBytes.map { Self.format(Double($0) / Self.bytesPerMegabyte, decimals: 1) } ?? "null"),
            ("verify_bound_before_events_per_second", Self.format(verifyBoundBeforeEventsPerSecond, decimals: 0)),
            ("verify_bound_after_events_per_second", Self.format(verifyBoundAfterEventsPerSecond, decimals: 0)),
            ("verify_bound_events_checked", String(verifyBoundEventsChecked)),
            ("verify_cpu_us_per_event", Self.format(verifyCPUMicrosecondsPerEvent, decimals: 1)),
            ("server_cpu_us_per_event", serverCPUMicrosecondsPerEvent.map { Self.format($0, decimals: 1) } ?? "null"),
            ("client_cpu_us_per_event", clientCPUMicrosecondsPerEvent.map { Self.format($0, decimals: 1) } ?? "null"),
            ("cpu_ratio_to_bound", cpuRatioToBound.map { Self.format($0, decimals: 3) } ?? "null"),
            ("server_context_switches_per_event", serverContextSwitchesPerEvent.map { Self.format($0, decimals: 2) } ?? "null"),
            ("server_system_cpu_share", serverSystemCPUShare.map { Self.format($0, decimals: 3) } ?? "null"),
            ("disk_write_kb_per_event", diskWriteBytesPerEvent.map { Self.format($0 / 1000, decimals: 2) } ?? "null"),
            ("disk_write_requests_per_event", diskWriteRequestsPerEvent.map { Self.format($0, decimals: 3) } ?? "null"),
            ("host_steal_share", appendHostCPU?.stealShare.map { Self.format($0, decimals: 3) } ?? "null"),
            ("verify_bound_host_steal_share", boundHostCPU?.stealShare.map { Self.format($0, decimals: 3) } ?? "null"),
            ("events", String(events)), ("accepted", String(append?.accepted ?? 0)),
            ("complete", complete ? "true" : "false"),
            ("stopped_by_deadline", append?.stoppedByDeadline == true ? "true" : "false"),
            ("connections_failed", String(append?.failures.count ?? 0)),
            ("refused", String(append?.refusals.values.reduce(0, +) ?? 0)),
            ("refusals", CanonicalJSON.encodeString(.object(JSONObject((append?.refusals ?? [:]).mapValues { JSONValue.integer(Int64($0)) })))),
            ("failures", CanonicalJSON.encodeString(.array((append?.failures ?? []).map { .string($0) }))),
            ("connections", String(connections)), ("pipeline", String(pipelineDepth)), ("events_per_request", String(eventsPerRequest)),
            ("cores", String(cores)),
            ("beneficiaries", String(beneficiaries)), ("setup_events", String(setupEvents)), ("prefill_events", String(prefillEvents)),
            ("ledger_size_before", String(ledgerSizeBefore)), ("ledger_size_after", String(ledgerSizeAfter)),
            ("mix", mixJSON),
            ("verify_bound_signatures_per_second", Self.format(verifyBoundSignaturesPerSecond, decimals: 0)),
            ("presign_seconds", Self.format(presignSeconds, decimals: 1)),
        ]
        for part in ServerThreadCPU.Part.allCases {
            fields.append(("server_cpu_share_\(part.rawValue)", serverThreadCPUShares?[part].map { Self.format($0, decimals: 3) } ?? "null"))
        }
        if let writer {
            fields += [
                ("writer_commits", String(writer.commits)),
                ("writer_events_per_commit", Self.format(writer.recordsPerCommit, decimals: 1)),
                ("writer_commit_ms_mean", Self.format(writer.commitMillisecondsMean, decimals: 3)),
                ("writer_busy_share", Self.format(writer.busyShare, decimals: 3)),
                ("writer_commit_share", Self.format(writer.commitShare, decimals: 3)),
            ]
            if let planningShare = writer.planningShare { fields.append(("writer_planning_share", Self.format(planningShare, decimals: 3))) }
        }
        if let appendRequestsOnEventLoopShare {
            fields.append(("append_requests_on_event_loop_share", Self.format(appendRequestsOnEventLoopShare, decimals: 3)))
        }
        if let ledgerFileSystem { fields.append(("ledger_file_system", CanonicalJSON.encodeString(.string(ledgerFileSystem)))) }
        if let disk {
            fields += [
                ("disk_random_page_sync_us", Self.format(disk.randomPageMicroseconds, decimals: 1)),
                ("disk_contiguous_page_sync_us", Self.format(disk.contiguousPageMicroseconds, decimals: 1)),
            ]
        }
        if let baseCopyCache {
            fields += [
                ("base_copy_mb", Self.format(Double(baseCopyCache.bytes) / Self.bytesPerMegabyte, decimals: 1)),
                ("base_copy_cached_share_after_copy", Self.format(baseCopyCache.cachedShareAfterCopy, decimals: 3)),
                ("base_copy_read_seconds", baseCopyCache.readSeconds.map { Self.format($0, decimals: 2) } ?? "null"),
                ("base_copy_cached_share_at_start", Self.format(baseCopyCache.cachedShareAtStart, decimals: 3)),
            ]
        }
        if let loopback {
            fields += [
                ("loopback_round_trip_p50_us", Self.format(loopback.medianMicroseconds, decimals: 1)),
                ("loopback_round_trip_p99_us", Self.format(loopback.percentile99Microseconds, decimals: 1)),
            ]
        }
        // Balance queries, signed and in read sessions: the same four figures under two prefixes.
        for (prefix, phase) in [("balance", balance), ("session_balance", sessionBalance)] {
            guard let phase else { continue }
            fields += [
                ("\(prefix)_queries_per_second", Self.format(phase.perSecond, decimals: 0)),
                ("\(prefix)_latency_p50_ms", Self.latencyField(phase.latency, percentile: 50)),
                ("\(prefix)_latency_p99_ms", Self.latencyField(phase.latency, percentile: 99)),
                ("\(prefix)_refused", String(phase.refusals.values.reduce(0, +))),
                ("\(prefix)_connections_failed", String(phase.failures.count)),
                ("\(prefix)_stopped_by_deadline", phase.stoppedByDeadline ? "true" : "false"),
            ]
            if let share = phase.requestsOnEventLoopShare {
                fields.append(("\(prefix)_requests_on_event_loop_share", Self.format(share, decimals: 3)))
            }
        }
        if let proof {
            fields += [
                ("proofs_per_second", Self.format(proof.perSecond, decimals: 0)),
                ("proof_latency_p50_ms", Self.latencyField(proof.latency, percentile: 50)),
                ("proof_latency_p99_ms", Self.latencyField(proof.latency, percentile: 99)),
                ("proof_refused", String(proof.refusals.values.reduce(0, +))),
                ("proof_connections_failed", String(proof.failures.count)),
                ("proof_stopped_by_deadline", proof.stoppedByDeadline ? "true" : "false"),
            ]
            if let share = proof.requestsOnEventLoopShare {
                fields.append(("proof_requests_on_event_loop_share", Self.format(share, decimals: 3)))
            }
        }
        if let auditVerifyEventsPerSecond { fields.append(("verify_events_per_second", Self.format(auditVerifyEventsPerSecond, decimals: 0))) }
        if let auditSignaturesPerRecord { fields.append(("verify_signatures_per_record", Self.format(auditSignaturesPerRecord, decimals: 4))) }
        if let auditVerifyRatioToBound { fields.append(("verify_ratio_to_bound", Self.format(auditVerifyRatioToBound, decimals: 3))) }
        if let auditRebuildEventsPerSecond { fields.append(("rebuild_events_per_second", Self.format(auditRebuildEventsPerSecond, decimals: 0))) }
        if let auditTrustingRebuildEventsPerSecond {
            fields.append(("rebuild_trusting_checkpoints_events_per_second", Self.format(auditTrustingRebuildEventsPerSecond, decimals: 0)))
        }
        if let auditRecords { fields.append(("audit_records", String(auditRecords))) }
        if let steal = auditHostCPU?.stealShare { fields.append(("audit_host_steal_share", Self.format(steal, decimals: 3))) }
        fields.append(("notes", CanonicalJSON.encodeString(.array(notes.map { .string($0) }))))
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// The events of the measured mix by kind, as a JSON object.
    private var mixJSON: String {
        CanonicalJSON.encodeString(.object(JSONObject(mix.filter { $0.key != .setup }.map { ($0.key.rawValue, JSONValue.integer(Int64($0.value))) })))
    }

    private var mixEventCount: Int { mix.filter { $0.key != .setup }.values.reduce(0, +) }

    /// A readable summary, each line `printable`: refusal codes, connection failures and notes quote what the
    /// server sent (with `--connect`, any server), which must not drive the terminal or forge lines of the report.
    public var text: String { summaryLines.map { printable($0) }.joined(separator: "\n") }

    private var summaryLines: [String] {
        var lines: [String] = []
        func number(_ value: Double) -> String { Self.format(value, decimals: 0) }
        func milliseconds(_ value: Double) -> String { Self.format(value, decimals: 3) + " ms" }
        let mixText = BenchEventKind.allCases.filter { $0 != .setup }.map { "\($0.rawValue) \(mix[$0] ?? 0)" }.joined(separator: ", ")
        if let path = exportedOnlyTo {
            return ["exported: \(mixEventCount) signed events of the mix (\(mixText)) to \(path), pre-signed in \(Self.format(presignSeconds, decimals: 1)) s; nothing measured"]
        }
        lines.append("circuit: \(beneficiaries) beneficiaries, \(setupEvents) setup events, \(prefillEvents) prefilled; ledger \(ledgerSizeBefore) → \(ledgerSizeAfter) records")
        lines.append("mix: \(events) events (\(mixText)), pre-signed in \(Self.format(presignSeconds, decimals: 1)) s")
        lines.append("bound: \(number(verifyBoundEventsPerSecond)) events/s (\(number(verifyBoundSignaturesPerSecond)) Ed25519 verifications/s on \(cores) cores; \(number(verifyBoundBeforeEventsPerSecond)) before the appends, \(number(verifyBoundAfterEventsPerSecond)) after, over \(verifyBoundEventsChecked) events), \(Self.format(verifyCPUMicrosecondsPerEvent, decimals: 1)) µs of CPU per event")
        if let append {
            let batching = eventsPerRequest == 1 ? "" : ", up to \(eventsPerRequest) events per request (submit_batch)"
            lines.append("append: \(number(append.perSecond)) events/s over \(connections) connections × \(pipelineDepth) in flight\(batching) = \(Self.format(ratioToBound * 100, decimals: 1)) % of the bound")
            if let busyShare = append.allConnectionsBusyShare, let busyRate = append.perSecondWhileAllConnectionsBusy, connections > 1 {
                lines.append("  every connection busy for \(Self.format(busyShare * 100, decimals: 1)) % of the phase, at \(number(busyRate)) events/s; the rest ran on fewer connections (their shares of the mix differ)")
            }
            if append.latency.count == 0 {
                lines.append("  latency: no answer accepted")
            } else {
                lines.append("  latency p50 \(milliseconds(append.latency.milliseconds(atPercentile: 50))), p90 \(milliseconds(append.latency.milliseconds(atPercentile: 90))), p99 \(milliseconds(append.latency.milliseconds(atPercentile: 99))), max \(milliseconds(append.latency.maximumMilliseconds))")
            }
            lines.append("  accepted \(append.accepted), refused \(append.refusals.values.reduce(0, +))\(append.refusals.isEmpty ? "" : " " + append.refusals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))\(append.stoppedByDeadline ? ", stopped by the deadline" : "")")
            for failure in append.failures.prefix(5) { lines.append("  connection failure: \(failure)") }
            if let server = serverCPUMicrosecondsPerEvent, let client = clientCPUMicrosecondsPerEvent, let ratio = cpuRatioToBound {
                lines.append("  CPU per event: server \(Self.format(server, decimals: 1)) µs, bench client \(Self.format(client, decimals: 1)) µs; signature checks are \(Self.format(ratio * 100, decimals: 1)) % of the server's")
            }
            if let share = serverSystemCPUShare {
                lines.append("  the kernel took \(Self.format(share * 100, decimals: 1)) % of the server's CPU")
            }
            if let bytes = diskWriteBytesPerEvent, let requests = diskWriteRequestsPerEvent {
                lines.append("  the ledger's disk wrote \(Self.format(bytes / 1000, decimals: 2)) kB per event in \(Self.format(requests, decimals: 3)) write requests (the device's counters, journal included)")
            }
            if let switches = serverContextSwitchesPerEvent {
                lines.append("  the server's threads were switched \(Self.format(switches, decimals: 2)) times per event")
            }
            if let shares = serverThreadCPUShares {
                let parts = ServerThreadCPU.Part.allCases.map { "\($0.rawValue.replacingOccurrences(of: "_", with: " ")) \(Self.format((shares[$0] ?? 0) * 100, decimals: 1)) %" }
                lines.append("  the server's CPU by thread: " + parts.joined(separator: ", "))
            }
            if let writer {
                lines.append("  writer: \(writer.commits) commits of \(Self.format(writer.recordsPerCommit, decimals: 1)) events on average; committer busy \(Self.format(writer.busyShare * 100, decimals: 1)) % of the phase, \(Self.format(writer.commitShare * 100, decimals: 1)) % of that inside LMDB's commit (\(Self.format(writer.commitMillisecondsMean, decimals: 2)) ms per commit)" + (writer.planningShare.map { "; planner busy \(Self.format($0 * 100, decimals: 1)) %" } ?? ""))
            }
            if let appendRequestsOnEventLoopShare {
                lines.append("  requests taken on an event loop (nothing else in flight): \(Self.format(appendRequestsOnEventLoopShare * 100, decimals: 1)) %")
            }
        }
        if let appendSteal = appendHostCPU?.stealShare {
            let boundSteal = boundHostCPU?.stealShare.map { ", \(Self.format($0 * 100, decimals: 1)) % while the bound was measured" } ?? ""
            lines.append("host: the hypervisor took \(Self.format(appendSteal * 100, decimals: 1)) % of the machine's CPU time (steal) during the appends\(boundSteal)")
        }
        if let loopback {
            lines.append("loopback: a round trip between two threads over a loopback TCP socket takes \(Self.format(loopback.medianMicroseconds, decimals: 1)) µs at the median, \(Self.format(loopback.percentile99Microseconds, decimals: 1)) µs at p99 (\(loopback.roundTrips) round trips; the floor under one client's latency)")
        }
        if let baseCopyCache {
            let afterCopy = "\(Self.format(baseCopyCache.cachedShareAfterCopy * 100, decimals: 1)) % of its pages in the page cache after LMDB's copy"
            let read = baseCopyCache.readSeconds.map {
                "read once in \(Self.format($0, decimals: 2)) s, \(Self.format(baseCopyCache.cachedShareAtStart * 100, decimals: 1)) % cached when the server started"
            } ?? "left so (--cold-base): the server reads each page from the disk the first time"
            lines.append("base copy: \(Self.format(Double(baseCopyCache.bytes) / Self.bytesPerMegabyte, decimals: 1)) MB, \(afterCopy); \(read)")
        }
        if let disk {
            lines.append("disk\(ledgerFileSystem.map { " (\($0))" } ?? ""): a 4 KiB page written and synced costs \(Self.format(disk.randomPageMicroseconds, decimals: 1)) µs at a random place of a file, \(Self.format(disk.contiguousPageMicroseconds, decimals: 1)) µs one after the other (rounds of \(DiskProbe.pagesPerRound) pages)")
        }
        if let balance {
            lines.append("balance queries: \(number(balance.perSecond))/s, p50 \(milliseconds(balance.latency.milliseconds(atPercentile: 50))), p99 \(milliseconds(balance.latency.milliseconds(atPercentile: 99))), refused \(balance.refusals.values.reduce(0, +))\(balance.eventLoopText)")
        }
        if let sessionBalance {
            lines.append("balance queries in read sessions: \(number(sessionBalance.perSecond))/s, p50 \(milliseconds(sessionBalance.latency.milliseconds(atPercentile: 50))), p99 \(milliseconds(sessionBalance.latency.milliseconds(atPercentile: 99))), refused \(sessionBalance.refusals.values.reduce(0, +))\(sessionBalance.eventLoopText)")
        }
        if let proof {
            lines.append("inclusion proofs: \(number(proof.perSecond))/s, p50 \(milliseconds(proof.latency.milliseconds(atPercentile: 50))), p99 \(milliseconds(proof.latency.milliseconds(atPercentile: 99))), refused \(proof.refusals.values.reduce(0, +))\(proof.eventLoopText)")
        }
        for (_, phase) in readPhases where !phase.whole {
            lines.append("  \(phase.name) is not whole, its figures describe another load: \(phase.shortfall.joined(separator: "; "))")
            for failure in phase.failures.prefix(5) { lines.append("  connection failure: \(failure)") }
        }
        if let serverMemory {
            let ledger = serverLedgerMappedBytes.map { ", \(Self.format(Double($0) / Self.bytesPerMegabyte, decimals: 1)) MB the ledger file's mapped pages" } ?? ""
            var memoryLine = "server memory: \(Self.format(Double(serverMemory.residentBytes) / Self.bytesPerMegabyte, decimals: 1)) MB resident at the end (\(Self.format(Double(serverMemory.anonymousResidentBytes) / Self.bytesPerMegabyte, decimals: 1)) MB its own\(ledger), the rest mapped files: the program, its libraries\(serverLedgerMappedBytes == nil ? " and the ledger" : "")), peak \(Self.format(Double(serverMemory.peakResidentBytes) / Self.bytesPerMegabyte, decimals: 1)) MB"
            if let during = serverResidentDuringAppendBytes { memoryLine += ", at most \(Self.format(Double(during) / Self.bytesPerMegabyte, decimals: 1)) MB during the appends" }
            lines.append(memoryLine)
        }
        if let auditVerifyEventsPerSecond, let auditRecords, let auditSignaturesPerRecord {
            let ratio = (auditVerifyRatioToBound ?? 0) * 100
            lines.append("verify: \(number(auditVerifyEventsPerSecond)) events/s over \(auditRecords) records, \(Self.format(auditSignaturesPerRecord, decimals: 3)) event signatures per record = \(Self.format(ratio, decimals: 1)) % of the bound's \(number(verifyBoundSignaturesPerSecond)) verifications/s")
        }
        if let auditRebuildEventsPerSecond { lines.append("rebuild: \(number(auditRebuildEventsPerSecond)) events/s") }
        if let auditTrustingRebuildEventsPerSecond {
            lines.append("rebuild --trust-checkpoints: \(number(auditTrustingRebuildEventsPerSecond)) events/s")
        }
        if let steal = auditHostCPU?.stealShare {
            lines.append("  the hypervisor took \(Self.format(steal * 100, decimals: 1)) % of the machine's CPU time during the three replays")
        }
        for note in notes { lines.append("note: \(note)") }
        return lines
    }
}

/// `circuito bench`: builds a circuit, pre-signs a realistic mix, measures the machine's verification bound on it,
/// drives a server over K connections and reports throughput, latency, memory and the ratio to the bound.
public enum BenchRunner {
    /// Events per `submit_batch` while setting up and prefilling (the server's default bound).
    static let batchEvents = 256
    /// Connections that prefill the ledger (beneficiaries split among them, batches in order on each).
    static let prefillConnections = 4
    /// Prefill is generated, signed and sent in chunks of this many events, so memory stays bounded.
    static let prefillChunkEvents = 65_536

    public static func run(_ configuration: BenchConfiguration, progress: @escaping @Sendable (String) -> Void) throws(LedgerError) -> BenchReport {
        try configuration.validate()
        // Checked before anything is signed or appended: with --prefill the file would otherwise be refused an hour in.
        if let path = configuration.exportEventsPath { try checkCanWrite(path, option: "--export-events") }
        var report = BenchReport()
        report.events = configuration.events
        report.connections = configuration.connections
        report.pipelineDepth = configuration.pipelineDepth
        report.eventsPerRequest = configuration.eventsPerRequest
        report.cores = ProcessInfo.processInfo.activeProcessorCount
        report.beneficiaries = configuration.beneficiaryCount
        report.prefillEvents = configuration.prefill
        let start = Ledger.systemClockMilliseconds()

        // Who signs the circuit, and where the ledger is.
        let tag: String
        let authority: BenchSigner
        // The ledger's origin, which payment authorisations name: the bench's own, a base's, or the server's.
        var origin = BenchCircuit.defaultOrigin
        var ownDirectory: String?
        var removeDirectory = false
        // The folder this run made for its ledger (`--data`, or the temporary one around `ledger`). It goes if the run
        // fails or is interrupted before its ledger is whole, since a later `--base` would take a partial ledger for a
        // base; a temporary one goes in any case unless `--keep`.
        var madeFolder: String?
        var ledgerComplete = false
        switch configuration.target {
        case .spawn(_, let directory, let keep, let base):
            if let base {
                // A fresh tag, so that the circuit's ids are new to the copied ledger; its authority is the base's.
                tag = "bench-" + SecureRandom.bytes(count: 4).hexString
                authority = BenchSigner(id: authorityID, key: try readAuthorityKey(ofBase: base))
                origin = try ledgerOrigin(ofBase: base)
            } else {
                tag = "bench"
                authority = BenchSigner(id: authorityID, key: try BenchCircuit.actorKey(seed: configuration.seed, tag: tag, actor: "authority"))
            }
            if !configuration.exportOnly {
                if let directory {
                    // Checked before anything is signed (with --prefill, the circuit alone can take a while): the
                    // bench makes a new ledger there, and a folder already there would be refused only afterwards.
                    guard access(directory, F_OK) != 0 else {
                        throw LedgerError(.invalidRange, "--data \(directory) is there already: the bench makes a new ledger in a folder that does not exist yet")
                    }
                    ownDirectory = directory
                    madeFolder = directory
                } else {
                    let temporary = try makeTemporaryDirectory()
                    ownDirectory = temporary
                    madeFolder = String(temporary.dropLast("/ledger".count))
                    removeDirectory = !keep
                }
                if let madeFolder { BenchCleanup.register(folder: madeFolder) }
            }
        case .connect(let endpoint, let authorityID, let authorityKey, _):
            // A fresh tag per run, so that several runs can share one ledger.
            tag = "bench-" + SecureRandom.bytes(count: 4).hexString
            authority = BenchSigner(id: authorityID, key: authorityKey)
            if !configuration.exportOnly {
                // Asked before anything is signed (the circuit and the mix can take a while): a server that is not
                // there is reported at once.
                progress("asking \(endpoint) for server.info")
                // The first contact is bounded by --timeout too (at least 5 s), so a port that accepts and never
                // answers is reported within it.
                guard let served = try serverInfo(endpoint, timeoutSeconds: min(serverInfoTimeoutSeconds, max(5, configuration.timeoutSeconds))).origin else {
                    throw LedgerError(.integrity, "server.info of \(endpoint) names no origin, which payment authorisations must name")
                }
                origin = served
            }
        }
        defer {
            if let madeFolder {
                if removeDirectory || !ledgerComplete {
                    BenchCleanup.removeUnlessInterrupted(folder: madeFolder)
                    if !removeDirectory && !BenchCleanup.interrupted { progress("removed \(madeFolder): the run ended before its ledger was whole") }
                } else {
                    BenchCleanup.unregister(folder: madeFolder)
                }
            }
        }

        var circuit = try BenchCircuit(
            options: BenchCircuit.Options(
                seed: configuration.seed, tag: tag, beneficiaryCount: configuration.beneficiaryCount,
                expectedMixEvents: configuration.events + configuration.prefill, startMilliseconds: start, origin: origin),
            authority: authority)

        // Pre-sign the setup; the mix is signed after the prefill (it continues the same circuit).
        progress("pre-signing the circuit (\(configuration.beneficiaryCount) beneficiaries)")
        let signStart = monotonicNanoseconds()
        let setup = try circuit.sign(try circuit.setup())
        report.setupEvents = setup.count

        if configuration.exportOnly {
            let mix = try circuit.sign(try circuit.mix(count: configuration.events))
            report.presignSeconds = seconds(since: signStart)
            report.mix = circuit.counts
            guard let path = configuration.exportEventsPath else {
                throw LedgerError(.invalidRange, "--export-only needs --export-events FILE")
            }
            try export(mix, to: path)
            report.exportedOnlyTo = path
            return report
        }

        // The server.
        var server: ServerProcess?
        let endpoint: Endpoint
        var serverPid: Int32?
        switch configuration.target {
        case .spawn(let executable, _, _, let base):
            guard let directory = ownDirectory else { throw LedgerError(.integrity, "the bench has no ledger directory") }
            if let base {
                progress("copying the ledger of \(base)")
                try copyLedger(from: base, to: directory)
                report.baseCopyCache = try prepareCopyCache(directory + "/data.mdb", cold: configuration.coldBase, progress: progress)
            } else {
                try createLedger(directory: directory, authority: authority, mapSize: configuration.mapSize)
            }
            // Kept beside the ledger, so that a later run can start from a copy of it (`--base`).
            try KeyFile.write(authority.key, to: directory + "/" + authorityKeyFile)
            progress("starting circuito serve on \(directory)")
            let process = try ServerProcess(
                executable: executable, directory: directory, extraArguments: configuration.serverArguments,
                logPath: directory + "/serve.log")
            server = process
            endpoint = process.endpoint
            serverPid = process.pid
        case .connect(let given, _, _, let pid):
            endpoint = given
            serverPid = pid
        }
        defer { server?.stop() }

        // The circuit, then the prefill: unmeasured, in batches, in order per connection.
        progress("setting up the circuit: \(setup.count) events")
        do {
            try appendInBatches(setup, connections: 1, endpoint: endpoint, timeoutSeconds: configuration.timeoutSeconds, what: "the circuit's setup")
        } catch {
            // The setup is the first thing the authority signs: a wrong id or key shows here first.
            if case .connect(_, let authorityID, _, _) = configuration.target,
                error.message.contains("unknown_actor") || error.message.contains("key_not_active")
            {
                throw LedgerError(
                    error.code,
                    error.message + "; is \(authorityID) the ledger's authority and --authority-key its key? (--authority-id names it; a ledger made by `circuito bench` names \(Self.authorityID))")
            }
            throw error
        }
        var prefilled = 0
        while prefilled < configuration.prefill {
            let chunk = min(prefillChunkEvents, configuration.prefill - prefilled)
            let events = try circuit.sign(try circuit.mix(count: chunk))
            try appendInBatches(events, connections: prefillConnections, endpoint: endpoint, timeoutSeconds: configuration.timeoutSeconds, what: "the prefill")
            prefilled += chunk
            progress("prefilled \(prefilled)/\(configuration.prefill) events")
        }
        let countsBeforeMix = circuit.counts

        // The measured mix, signed before anything is measured.
        progress("pre-signing \(configuration.events) events of the mix")
        let mixStart = monotonicNanoseconds()
        let mix = try circuit.sign(try circuit.mix(count: configuration.events))
        report.presignSeconds = seconds(since: mixStart)
        for (kind, count) in circuit.counts { report.mix[kind] = count - (countsBeforeMix[kind] ?? 0) }
        if let path = configuration.exportEventsPath { try export(mix, to: path) }

        // What a durable page write costs on the ledger's disk (the other limit of a commit), before any load.
        if let directory = ownDirectory {
            report.ledgerFileSystem = DiskProbe.fileSystem(of: directory)
            if let fileSystem = report.ledgerFileSystem, ["tmpfs", "ramfs"].contains(fileSystem) {
                report.notes.append("the ledger is on \(fileSystem), in memory: its commits are not durable, and the appends measure no disk")
            }
            progress("measuring durable page writes on the ledger's disk")
            do {
                report.disk = try DiskProbe.measure(directory: directory)
            } catch {
                report.notes.append("the disk was not measured: \(error)")
            }
        }

        // What waking a thread across a socket costs on this machine (the floor under one client's latency).
        progress("measuring round trips over a loopback socket")
        do {
            report.loopback = try LoopbackProbe.measure()
        } catch {
            report.notes.append("the loopback round trip was not measured: \(error)")
        }

        // The machine's bound: every signature of the same events, on all cores.
        progress("measuring the verification bound on \(report.cores) cores")
        let boundBefore = verificationBound(mix)
        guard boundBefore.allValid else { throw LedgerError(.integrity, "a pre-signed event does not verify") }

        let infoBefore = try serverInfo(endpoint)
        report.ledgerSizeBefore = infoBefore.size
        progress("appending \(mix.count) events over \(configuration.connections) connections (ledger at \(report.ledgerSizeBefore) records)")
        let requests = batched(split(mix, connections: configuration.connections), eventsPerRequest: configuration.eventsPerRequest)
        var sampler: MemorySampler?
        if let serverPid {
            do throws(LedgerError) {
                sampler = try MemorySampler(pid: serverPid)
            } catch {
                report.notes.append("the server's resident memory during the appends was not sampled: \(error)")
            }
        }
        let serverCPUBefore = serverPid.flatMap { ProcessCPUTimes.read(pid: $0) }
        let diskWritesBefore = ownDirectory.flatMap { BlockDeviceWrites.read(folder: $0) }
        let serverSwitchesBefore = serverPid.flatMap { ProcessContextSwitches.read(pid: $0) }
        let serverThreadsBefore = serverPid.flatMap { ServerThreadCPU.read(pid: $0) }
        let clientCPUBefore = ProcessMemory.ownCPUSeconds()
        let hostBefore = HostCPUTimes.read()
        let appendStart = monotonicNanoseconds()
        let appendOutcome = LoadDriver.run(
            requests,
            options: .init(
                endpoint: endpoint, method: configuration.eventsPerRequest == 1 ? "submit" : "submit_batch",
                pipelineDepth: configuration.pipelineDepth, deadlineSeconds: configuration.timeoutSeconds))
        let appendMicroseconds = Int64((monotonicNanoseconds() - appendStart) / 1000)
        // The ledger is whole from here on (what was accepted is in it): an interruption keeps a `--data` ledger.
        ledgerComplete = true
        if !removeDirectory, let madeFolder { BenchCleanup.unregister(folder: madeFolder) }
        if let hostBefore, let hostAfter = HostCPUTimes.read() { report.appendHostCPU = hostAfter.since(hostBefore) }
        let serverSwitchesAfter = serverPid.flatMap { ProcessContextSwitches.read(pid: $0) }
        if let before = serverThreadsBefore, let after = serverPid.flatMap({ ServerThreadCPU.read(pid: $0) }) {
            report.serverThreadCPUShares = after.shares(since: before)
        }
        let infoAfterAppend = try serverInfo(endpoint)
        report.writer = WriterFigures.difference(from: infoBefore.writer, to: infoAfterAppend.writer, phaseMicroseconds: appendMicroseconds)
        report.appendRequestsOnEventLoopShare = Self.eventLoopShare(
            from: infoBefore.connections, to: infoAfterAppend.connections, counter: "writes_taken_on_event_loop", requests: appendOutcome.requestsSent)
        let clientCPU = ProcessMemory.ownCPUSeconds() - clientCPUBefore
        let serverCPUAfter = serverPid.flatMap { ProcessCPUTimes.read(pid: $0) }
        let diskWritesAfter = ownDirectory.flatMap { BlockDeviceWrites.read(folder: $0) }
        report.serverResidentDuringAppendBytes = sampler?.stop()
        report.append = PhaseReport(name: "append", outcome: appendOutcome)
        if appendOutcome.accepted > 0 {
            let accepted = Double(appendOutcome.accepted)
            report.clientCPUMicrosecondsPerEvent = clientCPU * 1e6 / accepted
            if let before = serverCPUBefore, let after = serverCPUAfter {
                report.serverCPUMicrosecondsPerEvent = (after.totalSeconds - before.totalSeconds) * 1e6 / accepted
                report.serverSystemCPUShare = after.systemShare(since: before)
            }
            if let before = diskWritesBefore, let after = diskWritesAfter, after.bytes >= before.bytes, after.requests >= before.requests {
                report.diskWriteBytesPerEvent = Double(after.bytes - before.bytes) / accepted
                report.diskWriteRequestsPerEvent = Double(after.requests - before.requests) / accepted
            }
            if let before = serverSwitchesBefore, let after = serverSwitchesAfter, after >= before {
                report.serverContextSwitchesPerEvent = Double(after - before) / accepted
            }
        }
        // The bound again, after the load: the mean of both is the run's bound.
        let boundAfter = verificationBound(mix)
        report.verifyBoundBeforeEventsPerSecond = boundBefore.eventsPerSecond
        report.verifyBoundAfterEventsPerSecond = boundAfter.eventsPerSecond
        report.verifyBoundEventsPerSecond = (boundBefore.eventsPerSecond + boundAfter.eventsPerSecond) / 2
        report.verifyBoundSignaturesPerSecond = (boundBefore.signaturesPerSecond + boundAfter.signaturesPerSecond) / 2
        report.verifyBoundEventsChecked = boundBefore.eventsChecked + boundAfter.eventsChecked
        report.verifyCPUMicrosecondsPerEvent = (boundBefore.cpuSeconds + boundAfter.cpuSeconds) * 1e6 / Double(max(1, report.verifyBoundEventsChecked))
        if let before = boundBefore.host, let after = boundAfter.host { report.boundHostCPU = before + after }
        report.ledgerSizeAfter = infoAfterAppend.size
        if appendOutcome.refused * 100 > max(1, appendOutcome.sent) {
            report.notes.append("more than 1 % of the events were refused: the throughput figure does not describe a valid load")
        }

        // Each read phase ends with a `server.info`, the start of the next: the counters between two tell how many of
        // the phase's requests were answered on an event loop.
        var readsInfo = infoAfterAppend
        func readShareSinceLastInfo(_ outcome: LoadOutcome) throws(LedgerError) -> Double? {
            let info = try serverInfo(endpoint)
            defer { readsInfo = info }
            return Self.readShare(from: readsInfo.connections, to: info.connections, outcome: outcome)
        }
        if configuration.balanceQueries > 0 {
            progress("signing \(configuration.balanceQueries) balance queries")
            let queries = balanceQueries(configuration.balanceQueries, wallets: circuit.beneficiaryWallets, seed: configuration.seed, connections: configuration.connections)
            progress("querying balances over \(configuration.connections) connections")
            let outcome = LoadDriver.run(queries, options: .init(endpoint: endpoint, method: "account.balance", pipelineDepth: configuration.pipelineDepth, deadlineSeconds: configuration.timeoutSeconds))
            report.balance = PhaseReport(name: "account.balance", outcome: outcome)
            report.balance?.requestsOnEventLoopShare = try readShareSinceLastInfo(outcome)
            // The same number of queries, each connection reading as one beneficiary in a read session.
            let wallets = circuit.beneficiaryWallets
            let sessionQueries = sessionBalanceQueries(configuration.balanceQueries, wallets: wallets, connections: configuration.connections)
            progress("querying balances in read sessions over \(configuration.connections) connections")
            var sessionOptions = LoadDriver.Options(endpoint: endpoint, method: "account.balance", pipelineDepth: configuration.pipelineDepth, deadlineSeconds: configuration.timeoutSeconds)
            sessionOptions.sessionOpen = { number, challenge in
                let wallet = wallets[number % wallets.count]
                return ReadAuthorisation.sign(
                    method: "session.open", params: .object([:]), actor: wallet.id, key: wallet.key, nowMilliseconds: Ledger.systemClockMilliseconds(),
                    nonce: challenge)
            }
            let sessionOutcome = LoadDriver.run(sessionQueries, options: sessionOptions)
            report.sessionBalance = PhaseReport(name: "account.balance in sessions", outcome: sessionOutcome)
            report.sessionBalance?.requestsOnEventLoopShare = try readShareSinceLastInfo(sessionOutcome)
        }
        if configuration.proofs > 0, report.ledgerSizeAfter > 0 {
            progress("asking for \(configuration.proofs) inclusion proofs")
            var random = DemoRandom(seed: configuration.seed ^ 0x5052_4F4F_4653)
            var requests = [[BenchRequest]](repeating: [], count: configuration.connections)
            for number in 0..<configuration.proofs {
                let sequenceNumber = random.below(Int(report.ledgerSizeAfter))
                requests[number % configuration.connections].append(BenchRequest(params: Array("{\"seq\":\(sequenceNumber)}".utf8)))
            }
            let outcome = LoadDriver.run(requests, options: .init(endpoint: endpoint, method: "proof.inclusion", pipelineDepth: configuration.pipelineDepth, deadlineSeconds: configuration.timeoutSeconds))
            report.proof = PhaseReport(name: "proof.inclusion", outcome: outcome)
            report.proof?.requestsOnEventLoopShare = try readShareSinceLastInfo(outcome)
        }
        if let serverPid {
            report.serverMemory = ProcessMemory.read(pid: serverPid)
            report.serverLedgerMappedBytes = ProcessMemory.mappedResidentBytes(pid: serverPid, pathSuffix: "/data.mdb")
        }
        if let server {
            progress("stopping the server")
            if !server.stop() { report.notes.append("the server did not stop cleanly (log: \(server.logPath))") }
        }

        if configuration.audit, let directory = ownDirectory {
            let hostBeforeAudit = HostCPUTimes.read()
            let reader = try LedgerReader.open(directory: directory)
            // The replays' scratch environments live in a folder of the bench's own, removed if it is interrupted.
            let scratchParent = try LedgerReplay.makeUniqueDirectory(named: "circuito-bench-replay", in: LedgerReplay.temporaryDirectory())
            BenchCleanup.register(folder: scratchParent)
            defer { BenchCleanup.removeUnlessInterrupted(folder: scratchParent) }
            /// One replay of the whole ledger as `verb` names it, with its progress; its records per second.
            func replay(_ verb: String, compareProjections: Bool, signatureChecks: LedgerReplay.SignatureChecks) throws(LedgerError) -> (
                report: LedgerReplay.Report, eventsPerSecond: Double
            ) {
                progress("replaying the ledger (\(verb))")
                var replayProgress = ReplayProgress(verb: verb, report: progress)
                let start = monotonicNanoseconds()
                do throws(LedgerReplay.Failure) {
                    let replayed = try LedgerReplay.run(
                        reader, compareProjections: compareProjections, signatureChecks: signatureChecks, scratchParent: scratchParent
                    ) {
                        replayProgress.advance(checked: $0, total: $1)
                    }
                    return (replayed, Double(replayed.recordCount) / max(seconds(since: start), 1e-9))
                } catch {
                    throw LedgerError(error.error.code, "\(verb) failed: \(error.description)")
                }
            }
            let verified = try replay("verify", compareProjections: false, signatureChecks: .everyEvent)
            report.auditRecords = verified.report.recordCount
            report.auditVerifyEventsPerSecond = verified.eventsPerSecond
            report.auditSignaturesPerRecord = Double(verified.report.eventSignaturesChecked) / Double(max(1, verified.report.recordCount))
            report.auditRebuildEventsPerSecond = try replay("rebuild", compareProjections: true, signatureChecks: .everyEvent).eventsPerSecond
            report.auditTrustingRebuildEventsPerSecond = try replay(
                "rebuild --trust-checkpoints", compareProjections: true, signatureChecks: .attestedByCheckpoints
            ).eventsPerSecond
            if let hostBeforeAudit, let hostAfterAudit = HostCPUTimes.read() { report.auditHostCPU = hostAfterAudit.since(hostBeforeAudit) }
        }
        if case .spawn(_, let directory, let keep, _) = configuration.target, directory != nil || keep, let ownDirectory {
            report.notes.append("the ledger is kept in \(ownDirectory)")
        }
        return report
    }

    // MARK: Steps

    static func seconds(since start: UInt64) -> Double { Double(monotonicNanoseconds() - start) / 1e9 }

    static func makeTemporaryDirectory() throws(LedgerError) -> String {
        try LedgerReplay.makeUniqueDirectory(named: "circuito-bench", in: LedgerReplay.temporaryDirectory()) + "/ledger"
    }

    /// Refuses a path the run could not create or write a file at, before anything runs.
    static func checkCanWrite(_ path: String, option: String) throws(LedgerError) {
        var status = stat()
        if stat(path, &status) == 0 {
            guard (status.st_mode & S_IFMT) != S_IFDIR else { throw LedgerError(.invalidRange, "\(option) \(path) is a folder, not a file") }
            guard access(path, W_OK) == 0 else { throw LedgerError(.storage, "\(option) \(path): \(String(cString: strerror(errno)))") }
            return
        }
        let parent = FileIO.parentFolder(of: path)
        guard access(parent, W_OK | X_OK) == 0 else {
            throw LedgerError(.storage, "\(option) \(path): cannot create a file in \(parent): \(String(cString: strerror(errno)))")
        }
    }

    /// The actor id of the bench's authority in the ledgers it creates.
    static let authorityID = "citta-di-torino"
    /// The authority's secret key file in every ledger folder the bench creates.
    public static let authorityKeyFile = "bench-authority.key"

    /// The origin a base ledger's genesis gives (read and closed again before the bench copies it).
    static func ledgerOrigin(ofBase base: String) throws(LedgerError) -> String {
        let reader = try LedgerReader.open(directory: base)
        defer { reader.close() }
        return reader.genesis.origin
    }

    static func readAuthorityKey(ofBase base: String) throws(LedgerError) -> Ed25519PrivateKey {
        guard access(base, F_OK) == 0 else { throw LedgerError(.notFound, "--base \(base) does not exist") }
        guard access(base + "/" + authorityKeyFile, F_OK) == 0 else {
            throw LedgerError(.notFound, "\(base) holds no \(authorityKeyFile): only a ledger made by `circuito bench --data` or --keep can be a --base")
        }
        return try KeyFile.read(base + "/" + authorityKeyFile)
    }

    /// Reads the copy's file into the page cache unless `cold` (`BaseCopyCache`), and measures what it holds.
    static func prepareCopyCache(_ path: String, cold: Bool, progress: @Sendable (String) -> Void) throws(LedgerError) -> BaseCopyCache {
        let afterCopy = try PageCache.cachedShare(path: path)
        var readSeconds: Double?
        if !cold {
            progress("reading the copy into the page cache (\(afterCopy.bytes >> 20) MB)")
            let start = monotonicNanoseconds()
            let read = try PageCache.read(path: path)
            assert(read == afterCopy.bytes, "the copy does not change while the bench reads it")
            readSeconds = seconds(since: start)
        }
        let atStart = cold ? afterCopy : try PageCache.cachedShare(path: path)
        return BaseCopyCache(
            bytes: afterCopy.bytes, cachedShareAfterCopy: afterCopy.share, readSeconds: readSeconds, cachedShareAtStart: atStart.share)
    }

    /// A new ledger folder `directory` holding a consistent copy of `base`'s ledger (as `circuito backup` makes it,
    /// which leaves no large folios of the base in the page cache) and its checkpoint key.
    static func copyLedger(from base: String, to directory: String) throws(LedgerError) {
        _ = try LedgerBackup.run(from: base, to: directory)
        try KeyFile.write(try KeyFile.read(base + "/" + LedgerFiles.checkpointKey), to: directory + "/" + LedgerFiles.checkpointKey)
    }

    /// A new ledger whose genesis names the bench's authority; closed again before the server opens it.
    static func createLedger(directory: String, authority: BenchSigner, mapSize: LMDBEnvironment.MapSize? = nil) throws(LedgerError) {
        let checkpointKey = Ed25519PrivateKey()
        let event = try Event(
            id: "genesis", type: "ledger.genesis", actor: authority.id, key: authority.key.publicKey.multikey,
            timestamp: Timestamp.format(millisecondsSince1970: Ledger.systemClockMilliseconds()),
            body: [
                "origin": .string(BenchCircuit.defaultOrigin),
                "authority": .object([
                    "actor": .string(authority.id), "name": "Città di Torino — Piano di Inclusione Sociale (bench)",
                    "keys": .array([.string(authority.key.publicKey.multikey)]),
                ]),
                "checkpoint_key": .string(checkpointKey.publicKey.multikey),
                "currency": .object(["code": .string(Rulebook.currencyCode), "decimals": .integer(Rulebook.currencyDecimals)]),
            ])
        let genesis = try SignedEvent(signing: event, with: authority.key).verified()
        // The Ledger (its LMDB environment and writer lock) closes when it goes out of scope here.
        var options = LMDBEnvironment.Options()
        if let mapSize { options.mapSize = mapSize }
        _ = try Ledger.create(directory: directory, genesis: genesis, checkpointKey: checkpointKey, options: options)
    }

    /// Appends events with `submit_batch`, beneficiaries split over `connections`, batches in order on each; any
    /// refusal stops the bench (the circuit must hold for the measured mix to be valid).
    static func appendInBatches(_ events: [PresignedEvent], connections: Int, endpoint: Endpoint, timeoutSeconds: Int, what: String) throws(LedgerError) {
        var perConnection = [[PresignedEvent]](repeating: [], count: connections)
        for event in events { perConnection[(event.beneficiary ?? 0) % connections].append(event) }
        // Each connection sends one batch at a time, in order, so the events' dependencies are met without naming them.
        let requests = batched(perConnection.map { $0.map { BenchRequest(params: $0.signedEvent) } }, eventsPerRequest: batchEvents)
        let outcome = LoadDriver.run(requests, options: .init(endpoint: endpoint, method: "submit_batch", pipelineDepth: 1, deadlineSeconds: timeoutSeconds))
        if let failure = outcome.failures.first { throw LedgerError(.connectionFailed, "\(what): \(failure)") }
        if outcome.stoppedByDeadline, outcome.refused == 0 {
            throw LedgerError(.integrity, "\(what): stopped by the --timeout of \(timeoutSeconds) s, \(outcome.accepted) of \(events.count) events appended")
        }
        guard outcome.refused == 0, outcome.accepted == events.count else {
            let codes = outcome.refusals.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", ")
            throw LedgerError(.integrity, "\(what): the server refused batches (\(codes.isEmpty ? "unanswered" : codes))")
        }
    }

    /// The params of a `submit_batch` of these signed events, in order.
    private static func batchParams(_ signedEvents: some Collection<[UInt8]>) -> [UInt8] {
        var params = Array("{\"events\":[".utf8)
        for (offset, signedEvent) in signedEvents.enumerated() {
            if offset > 0 { params.append(UInt8(ascii: ",")) }
            params += signedEvent
        }
        params += Array("]}".utf8)
        return params
    }

    /// Each connection's requests grouped, in order, into `submit_batch` requests of up to `eventsPerRequest`
    /// events (unchanged when it is 1). A group with an event that waits for another waits for every group up to the
    /// one holding it (the driver waits for all requests up to a dependency), or, when that event is in the group
    /// itself, for every group before it: what came before the dependency must be accepted too.
    public static func batched(_ lists: [[BenchRequest]], eventsPerRequest: Int) -> [[BenchRequest]] {
        precondition(eventsPerRequest >= 1, "a batch holds at least one event")
        guard eventsPerRequest > 1 else { return lists }
        return lists.map { requests in
            stride(from: 0, to: requests.count, by: eventsPerRequest).map { start in
                let group = requests[start..<min(start + eventsPerRequest, requests.count)]
                let groupIndex = start / eventsPerRequest
                let dependency = group.compactMap(\.dependency).map { min($0 / eventsPerRequest, groupIndex - 1) }.filter { $0 >= 0 }.max()
                return BenchRequest(params: batchParams(group.map(\.params)), dependency: dependency, itemCount: group.count)
            }
        }
    }

    /// Events split by beneficiary over the connections, each connection's in generation order, with each
    /// dependency turned into an index within its connection. The beneficiaries are spread so that the connections
    /// carry as nearly the same number of events as whole beneficiaries allow (`connectionOfBeneficiary`).
    public static func split(_ events: [PresignedEvent], connections: Int) -> [[BenchRequest]] {
        var lists = [[BenchRequest]](repeating: [], count: connections)
        let connectionOf = connectionOfBeneficiary(events, connections: connections)
        // Where each event went: (connection, position), to translate dependencies.
        var placement: [Int: (connection: Int, position: Int)] = [:]
        placement.reserveCapacity(events.count)
        for event in events {
            let connection = connectionOf[event.beneficiary ?? 0] ?? 0
            var dependency: Int?
            if let index = event.dependency, let placed = placement[index] {
                // Same beneficiary, so same connection; an event outside this list is already in the ledger.
                dependency = placed.connection == connection ? placed.position : nil
            }
            placement[event.index] = (connection, lists[connection].count)
            lists[connection].append(BenchRequest(params: event.signedEvent, dependency: dependency))
        }
        return lists
    }

    /// The connection of each beneficiary of `events`: the beneficiary with the most events first, each to the
    /// connection with the fewest events so far (the lowest-numbered of equals), so that every connection has
    /// requests to send until near the end of the phase. Each event's beneficiary is drawn at random, and beneficiary
    /// i on connection i mod K left the connections unequal: of 30 000 events, the heaviest of 32 connections
    /// carried 1 043 against a mean of 938, the heaviest of 64 545 against 469, and the phase ended on fewer
    /// connections than it was named for.
    static func connectionOfBeneficiary(_ events: [PresignedEvent], connections: Int) -> [Int: Int] {
        var counts: [Int: Int] = [:]
        for event in events { counts[event.beneficiary ?? 0, default: 0] += 1 }
        let heaviestFirst = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        var load = [Int](repeating: 0, count: connections)
        var assignment: [Int: Int] = [:]
        assignment.reserveCapacity(counts.count)
        for (beneficiary, count) in heaviestFirst {
            // The least loaded connection; `indices.min` keeps the first of equals.
            let connection = load.indices.min { load[$0] < load[$1] } ?? 0
            assignment[beneficiary] = connection
            load[connection] += count
        }
        return assignment
    }

    /// The bound is measured for at least this long: passes over the mix repeat until then. One pass over a few hundred
    /// events takes milliseconds, too short to average out the start of the worker threads and the host's moment to
    /// moment load (in one scripted run the bounds of 200-event runs spread from 11.7 k to 27.1 k events/s, those of
    /// 30 000-event runs, whose one pass takes over a second, from 19.1 k to 27.4 k).
    public static let boundMinimumSeconds = 1.0
    /// Passes over the mix at most, whatever the time: a bound for a mix of one event on a very fast machine.
    static let boundMaximumPasses = 100_000

    /// One measurement of the bound.
    public struct VerificationBound: Sendable {
        public var eventsPerSecond: Double
        public var signaturesPerSecond: Double
        /// Events checked, over all the passes.
        public var eventsChecked: Int
        public var passes: Int
        /// This process's CPU time over the measurement.
        public var cpuSeconds: Double
        public var host: HostCPUInterval?
        /// Whether every signature verified, in every pass.
        public var allValid: Bool
    }

    /// Verifies every signature of `events` on all cores, pass after pass until `minimumSeconds` have gone by: the
    /// rate a ledger that checks each event cannot pass.
    public static func verificationBound(
        _ events: [PresignedEvent], minimumSeconds: Double = boundMinimumSeconds
    ) -> VerificationBound {
        guard !events.isEmpty else {
            return VerificationBound(
                eventsPerSecond: 0, signaturesPerSecond: 0, eventsChecked: 0, passes: 0, cpuSeconds: 0, host: nil,
                allValid: true)
        }
        let cpuBefore = ProcessMemory.ownCPUSeconds()
        let hostBefore = HostCPUTimes.read()
        let start = monotonicNanoseconds()
        var passes = 0
        var allValid = true
        repeat {
            let results = Parallel.map(events) { $0.verifySignatures() }
            allValid = allValid && results.allSatisfy { $0 }
            passes += 1
        } while allValid && passes < boundMaximumPasses && seconds(since: start) < minimumSeconds
        let elapsed = max(seconds(since: start), 1e-9)
        let cpu = ProcessMemory.ownCPUSeconds() - cpuBefore
        let host = hostBefore.flatMap { before in HostCPUTimes.read()?.since(before) }
        let signatures = events.reduce(0) { $0 + $1.signatureCount } * passes
        let eventsChecked = events.count * passes
        return VerificationBound(
            eventsPerSecond: Double(eventsChecked) / elapsed, signaturesPerSecond: Double(signatures) / elapsed,
            eventsChecked: eventsChecked, passes: passes, cpuSeconds: cpu, host: host, allValid: allValid)
    }

    /// Unsigned `account.balance` requests for read sessions: connection i reads as beneficiary i (modulo their
    /// number) and asks for its own balance.
    static func sessionBalanceQueries(_ count: Int, wallets: [BenchSigner], connections: Int) -> [[BenchRequest]] {
        var requests = [[BenchRequest]](repeating: [], count: connections)
        guard !wallets.isEmpty else { return requests }
        for number in 0..<count {
            let connection = number % connections
            let params = CanonicalJSON.encode(.object(["account": .string(Account.beneficiary(wallets[connection % wallets.count].id))]))
            requests[connection].append(BenchRequest(params: params))
        }
        return requests
    }

    /// Signed `account.balance` requests: each beneficiary asks for its own balance with its wallet key.
    static func balanceQueries(_ count: Int, wallets: [BenchSigner], seed: UInt64, connections: Int) -> [[BenchRequest]] {
        let now = Ledger.systemClockMilliseconds()
        let items = (0..<count).map { number in (number, wallets[number % wallets.count]) }
        let signed = Parallel.map(items) { number, wallet -> [UInt8] in
            let params = ReadAuthorisation.sign(
                method: "account.balance", params: .object(["account": .string(Account.beneficiary(wallet.id))]), actor: wallet.id,
                key: wallet.key, nowMilliseconds: now, nonce: "bench-\(seed)-\(number)")
            return CanonicalJSON.encode(params)
        }
        var requests = [[BenchRequest]](repeating: [], count: connections)
        for (number, params) in signed.enumerated() { requests[number % connections].append(BenchRequest(params: params)) }
        return requests
    }

    /// The share of a read phase's requests answered on an event loop (`reads_answered_on_event_loop`), between the
    /// `server.info` before the phase and the one after it. Each counts itself when it is answered on a loop, so the
    /// requests counted are the phase's queries, the sessions' `session.challenge` and `session.open`, and the
    /// `server.info` that closes the phase: all answered on an event loop gives exactly 1.
    static func readShare(from before: JSONValue?, to after: JSONValue?, outcome: LoadOutcome) -> Double? {
        eventLoopShare(from: before, to: after, counter: "reads_answered_on_event_loop", requests: outcome.sent + outcome.setupRequests + 1)
    }

    /// What share of `requests` a `server.info` `connections` counter grew by between two answers; nil when either
    /// lacks it (or holds what no server counts: a negative count, or one going back), or for no requests. The two
    /// `server.info`s themselves are reads, so a counter of writes counts none of them.
    static func eventLoopShare(from before: JSONValue?, to after: JSONValue?, counter: String, requests: Int) -> Double? {
        guard requests > 0, let first = before?[counter]?.integerValue, let second = after?[counter]?.integerValue, first >= 0, second >= first else {
            return nil
        }
        return Double(second - first) / Double(requests)
    }

    /// How long a `server.info` may take: between phases the server may still be committing the last one's work.
    static let serverInfoTimeoutSeconds = 60

    /// The ledger's size and the writer's counters (nil from a server that does not report them).
    static func serverInfo(
        _ endpoint: Endpoint, timeoutSeconds: Int = serverInfoTimeoutSeconds
    ) throws(LedgerError) -> (size: UInt64, writer: JSONValue?, connections: JSONValue?, origin: String?) {
        let client = try LineClient(endpoint, timeoutSeconds: timeoutSeconds)
        switch try client.call("server.info") {
        case .success(let info):
            guard case .integer(let size)? = info["size"], size >= 0 else { throw LedgerError(.integrity, "server.info has no size") }
            return (UInt64(size), info["writer"], info["connections"], info["origin"]?.stringValue)
        case .failure(let error):
            throw LedgerError(.connectionFailed, "server.info: \(error)")
        }
    }

    /// One signed event per line, exactly as sent. Synced before it returns: a measured run exports before the disk
    /// probe and the appends, and the kernel writing back tens of megabytes in the middle of them would be measured
    /// as the ledger's disk.
    static func export(_ events: [PresignedEvent], to path: String) throws(LedgerError) {
        // Whole or not at all: a file cut short by a full disk would be a different mix to the next run.
        try FileIO.replaceFile(path) { (descriptor) throws(LedgerError) in
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 20)
            for event in events {
                buffer += event.signedEvent
                buffer.append(0x0A)
                if buffer.count >= 1 << 20 {
                    try FileIO.writeAll(descriptor, buffer, path: path)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try FileIO.writeAll(descriptor, buffer, path: path)
        }
    }
}

/// A replay's progress as lines, one per tenth of the records (a replay of 1 M records takes minutes).
struct ReplayProgress {
    let verb: String
    let report: (String) -> Void
    private var tenthsReported: UInt64 = 0

    init(verb: String, report: @escaping (String) -> Void) {
        self.verb = verb
        self.report = report
    }

    mutating func advance(checked: UInt64, total: UInt64) {
        guard total > 0 else { return }
        let tenths = min(checked, total) * 10 / total
        guard tenths > tenthsReported, tenths < 10 else { return }
        tenthsReported = tenths
        report("\(verb): \(checked)/\(total) records")
    }
}

/// Samples a process's resident memory every 100 ms on its own thread until stopped; returns the most seen.
final class MemorySampler: @unchecked Sendable {
    // @unchecked: `state` is guarded by `lock`.
    private let lock = NSLock()
    private var state: (stopped: Bool, peak: UInt64) = (false, 0)
    private let done = DispatchSemaphore(value: 0)

    /// Starts sampling; `thread_start_failed` when its thread cannot be started (the process is at a limit of threads).
    init(pid: Int32, threads: ThreadStarter = .system) throws(LedgerError) {
        try threads.start("bench-memory") { [self] in
            // Bounded by `stop`; at most one read every 100 ms.
            while true {
                let resident = ProcessMemory.read(pid: pid)?.residentBytes ?? 0
                let stopped = lock.withLock { () -> Bool in
                    state.peak = max(state.peak, resident)
                    return state.stopped
                }
                if stopped { break }
                usleep(100_000)
            }
            done.signal()
        }
    }

    func stop() -> UInt64 {
        lock.withLock { state.stopped = true }
        done.wait()
        return lock.withLock { state.peak }
    }
}
