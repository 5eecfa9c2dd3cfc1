import Glibc

/// The machine's CPU time so far, all cores together, from the first line of `/proc/stat` (clock ticks since boot).
///
/// On a shared virtual machine the hypervisor runs other guests on the same physical cores; the time it takes away
/// from this one while it wanted to run is *steal*. A run with much steal measures a slower machine: the bench
/// reports the steal of each phase so that runs on a busy host can be told apart from changes in the code.
public struct HostCPUTimes: Sendable, Equatable {
    /// Every kind of time the kernel counts (user, nice, system, idle, iowait, irq, softirq, steal).
    public let totalTicks: UInt64
    public let stealTicks: UInt64

    public init(totalTicks: UInt64, stealTicks: UInt64) {
        self.totalTicks = totalTicks
        self.stealTicks = stealTicks
    }

    public static func read() -> HostCPUTimes? {
        ProcessMemory.readSmallFile("/proc/stat").flatMap { parse(stat: $0) }
    }

    /// Reads the aggregate `cpu` line: `cpu user nice system idle iowait irq softirq steal guest guest_nice`.
    /// Guest time is already counted in user and nice, so it is left out. Kernels without a steal column (before
    /// 2.6.11) give nil.
    static func parse(stat text: String) -> HostCPUTimes? {
        guard let line = text.split(separator: "\n", maxSplits: 1).first, line.hasPrefix("cpu ") else { return nil }
        let fields = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().prefix(8).map { UInt64($0) }
        guard fields.count == 8, fields.allSatisfy({ $0 != nil }) else { return nil }
        let ticks = fields.map { $0 ?? 0 }
        return HostCPUTimes(totalTicks: ticks.reduce(0, +), stealTicks: ticks[7])
    }

    /// What elapsed from `earlier` to this reading.
    public func since(_ earlier: HostCPUTimes) -> HostCPUInterval {
        // The counters only grow; a reading that went back (another boot, a broken file) counts as nothing.
        HostCPUInterval(
            totalTicks: totalTicks >= earlier.totalTicks ? totalTicks - earlier.totalTicks : 0,
            stealTicks: stealTicks >= earlier.stealTicks ? stealTicks - earlier.stealTicks : 0)
    }
}

/// The machine's CPU time over an interval (or several, added up).
public struct HostCPUInterval: Sendable, Equatable {
    public var totalTicks: UInt64
    public var stealTicks: UInt64

    public init(totalTicks: UInt64 = 0, stealTicks: UInt64 = 0) {
        self.totalTicks = totalTicks
        self.stealTicks = stealTicks
    }

    /// The share of the machine's CPU time that was stolen; nil when no tick elapsed (too short to tell).
    public var stealShare: Double? {
        guard totalTicks > 0 else { return nil }
        return Double(min(stealTicks, totalTicks)) / Double(totalTicks)
    }

    public static func + (first: HostCPUInterval, second: HostCPUInterval) -> HostCPUInterval {
        HostCPUInterval(totalTicks: first.totalTicks + second.totalTicks, stealTicks: first.stealTicks + second.stealTicks)
    }
}

/// How often a process's threads were switched off their core, from `/proc/<pid>/task/*/status`.
///
/// With one client, each request wakes several threads of the server in turn (the event loop, a server thread, the
/// writer's planner and committer), and on a virtual machine each wake-up of an idle core is expensive: switches per
/// event show how many hops a request takes.
public enum ProcessContextSwitches {
    /// Threads read at most; the server has a few dozen.
    static let maximumThreads = 4096

    /// Voluntary and involuntary switches of every thread the process has now (threads that have exited are not
    /// counted, so compare readings of long-lived threads).
    public static func read(pid: Int32) -> UInt64? {
        guard let threads = threadIdentifiers(pid: pid), !threads.isEmpty else { return nil }
        var total: UInt64 = 0
        for thread in threads {
            // A thread that exited since the listing has no status any more: it counts as nothing.
            if let text = ProcessMemory.readSmallFile("/proc/\(pid)/task/\(thread)/status"), let switches = parse(status: text) {
                total += switches
            }
        }
        return total
    }

    /// The ids of a process's threads now (at most `maximumThreads`), or nil when it has none to read.
    static func threadIdentifiers(pid: Int32) -> [Int32]? {
        guard let directory = opendir("/proc/\(pid)/task") else { return nil }
        defer { closedir(directory) }
        var threads: [Int32] = []
        while threads.count < maximumThreads, let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let thread = Int32(name) { threads.append(thread) }  // not "." and ".."
        }
        return threads
    }

    /// `voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches` of one status file.
    static func parse(status text: String) -> UInt64? {
        var voluntary: UInt64?
        var involuntary: UInt64?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let value = UInt64(parts[1].drop { $0 == " " || $0 == "\t" })
            if parts[0] == "voluntary_ctxt_switches" { voluntary = value }
            if parts[0] == "nonvoluntary_ctxt_switches" { involuntary = value }
        }
        guard let voluntary, let involuntary else { return nil }
        return voluntary + involuntary
    }
}

/// The CPU time of the server's threads by their part in it, from `/proc/<pid>/task/*/comm` and `stat`.
///
/// The server names its threads (`KernelThreadName`), so the share of each part shows where a request's CPU goes:
/// the committer (LMDB's commit, its page writes and syncs), the request threads (decoding, signature checks,
/// answers), the planner (the rules), the event loops (the sockets), and Dispatch's worker threads, where the
/// signature checks of a `submit_batch` (and of a follower's records) run in parallel.
public struct ServerThreadCPU: Sendable, Equatable {
    public enum Part: String, CaseIterable, Sendable {
        case committer, planner
        case requestThreads = "request_threads"
        case eventLoops = "event_loops"
        case dispatchWorkers = "dispatch_workers"
        case other
    }

    struct Thread: Sendable, Equatable {
        let part: Part
        /// User and system time, in clock ticks.
        let ticks: UInt64
    }

    /// By thread id: a thread id is not reused while the process lives long enough for the bench to compare.
    let threads: [Int32: Thread]

    public static func read(pid: Int32) -> ServerThreadCPU? {
        guard let identifiers = ProcessContextSwitches.threadIdentifiers(pid: pid), !identifiers.isEmpty else { return nil }
        var threads: [Int32: Thread] = [:]
        for thread in identifiers {
            // A thread that exited since the listing counts as nothing.
            guard let name = ProcessMemory.readSmallFile("/proc/\(pid)/task/\(thread)/comm"),
                let stat = ProcessMemory.readSmallFile("/proc/\(pid)/task/\(thread)/stat"),
                let ticks = parseTicks(stat: stat)
            else { continue }
            threads[thread] = Thread(part: part(ofThreadNamed: name.trimmingTrailingNewline()), ticks: ticks)
        }
        return ServerThreadCPU(threads: threads)
    }

    /// The part of a thread from the name the server gave it.
    static func part(ofThreadNamed name: String) -> Part {
        if name == ServerThreadName.committer { return .committer }
        if name == ServerThreadName.planner { return .planner }
        if name.hasPrefix(ServerThreadName.requestThreadPrefix) || name == ServerThreadName.lateRequest { return .requestThreads }
        if name.hasPrefix(ServerThreadName.eventLoopPrefix) { return .eventLoops }
        if ServerThreadName.isDispatchWorker(name) { return .dispatchWorkers }
        return .other
    }

    /// utime + stime of a thread's `stat` line, in clock ticks.
    static func parseTicks(stat text: String) -> UInt64? {
        ProcessCPUTimes.ticks(stat: text).map { $0.user + $0.system }
    }

    /// Each part's share of the CPU the threads used since `earlier` (a thread started since counts from zero);
    /// nil when not one tick elapsed.
    public func shares(since earlier: ServerThreadCPU) -> [Part: Double]? {
        var ticksByPart: [Part: UInt64] = [:]
        for (identifier, thread) in threads {
            let before = earlier.threads[identifier]?.ticks ?? 0
            ticksByPart[thread.part, default: 0] += thread.ticks >= before ? thread.ticks - before : 0
        }
        let total = ticksByPart.values.reduce(0, +)
        guard total > 0 else { return nil }
        return Dictionary(uniqueKeysWithValues: Part.allCases.map { ($0, Double(ticksByPart[$0] ?? 0) / Double(total)) })
    }
}

extension String {
    fileprivate func trimmingTrailingNewline() -> String {
        hasSuffix("\n") ? String(dropLast()) : self
    }
}
