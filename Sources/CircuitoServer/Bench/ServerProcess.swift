import CircuitoCore
import CircuitoStorage
import Glibc

/// Resident memory of a process, from `/proc/<pid>/status` (Linux).
public struct ProcessMemory: Sendable, Equatable {
    /// VmRSS: resident now.
    public let residentBytes: UInt64
    /// VmHWM: the most it was ever resident.
    public let peakResidentBytes: UInt64
    /// RssAnon: the resident part that is the process's own (heap, stacks), without the pages of mapped files
    /// (LMDB's map), which the kernel may drop at any time.
    public let anonymousResidentBytes: UInt64

    public init(residentBytes: UInt64, peakResidentBytes: UInt64, anonymousResidentBytes: UInt64) {
        self.residentBytes = residentBytes
        self.peakResidentBytes = peakResidentBytes
        self.anonymousResidentBytes = anonymousResidentBytes
    }

    public static func read(pid: Int32) -> ProcessMemory? {
        guard let text = readSmallFile("/proc/\(pid)/status") else { return nil }
        return parse(status: text)
    }

    /// Reads `VmRSS`, `VmHWM` and `RssAnon` (in kB) from the text of a status file.
    static func parse(status text: String) -> ProcessMemory? {
        var resident: UInt64?
        var peak: UInt64?
        var anonymous: UInt64?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("VmRSS:") { resident = kilobytes(line) }
            if line.hasPrefix("VmHWM:") { peak = kilobytes(line) }
            if line.hasPrefix("RssAnon:") { anonymous = kilobytes(line) }
        }
        guard let resident else { return nil }
        return ProcessMemory(
            residentBytes: resident * 1024, peakResidentBytes: (peak ?? resident) * 1024, anonymousResidentBytes: (anonymous ?? resident) * 1024)
    }

    private static func kilobytes(_ line: Substring) -> UInt64? {
        line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { UInt64($0) }
    }

    /// CPU time of this process (every thread) so far, in seconds.
    public static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    /// The resident pages of every mapping of a file whose path ends with `pathSuffix` (the ledger's `/data.mdb`),
    /// from `/proc/<pid>/smaps`: the part of VmRSS that is that file's pages, beside the process's own memory and the
    /// pages of its program and libraries. Nil when smaps cannot be read.
    public static func mappedResidentBytes(pid: Int32, pathSuffix: String) -> UInt64? {
        // A server's smaps is some hundreds of kB (a few hundred mappings); the bound is far above it.
        guard let text = readSmallFile("/proc/\(pid)/smaps", maximumChunks: 4096) else { return nil }
        return parse(smaps: text, pathSuffix: pathSuffix)
    }

    /// Sums the `Rss:` lines of the mappings whose header names a path ending with `pathSuffix`. A mapping's header
    /// starts with its address range (hexadecimal); its fields start with a capitalised name and a colon.
    static func parse(smaps text: String, pathSuffix: String) -> UInt64 {
        var total: UInt64 = 0
        var inMatchingMapping = false
        for line in text.split(separator: "\n") {
            guard let first = line.first else { continue }
            if first.isHexDigit && !first.isUppercase {
                inMatchingMapping = line.split(separator: " ", omittingEmptySubsequences: true).count >= 6 && line.hasSuffix(pathSuffix)
            } else if inMatchingMapping, line.hasPrefix("Rss:") {
                total += (kilobytes(line) ?? 0) * 1024
            }
        }
        return total
    }

    static func readSmallFile(_ path: String, maximumChunks: Int = 64) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        // Status files are a few kB; the bound keeps a wrong path from reading forever.
        for _ in 0..<maximumChunks {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The CPU time a process has used so far in its own code (user) and in the kernel on its behalf (system).
public struct ProcessCPUTimes: Sendable, Equatable {
    public let userSeconds: Double
    public let systemSeconds: Double
    public var totalSeconds: Double { userSeconds + systemSeconds }

    public init(userSeconds: Double, systemSeconds: Double) {
        self.userSeconds = userSeconds
        self.systemSeconds = systemSeconds
    }

    public static func read(pid: Int32) -> ProcessCPUTimes? {
        guard let text = ProcessMemory.readSmallFile("/proc/\(pid)/stat") else { return nil }
        return parse(stat: text, ticksPerSecond: Double(max(1, sysconf(Int32(_SC_CLK_TCK)))))
    }

    /// utime and stime of a `stat` line (a process's or a thread's), converted from clock ticks.
    static func parse(stat text: String, ticksPerSecond: Double) -> ProcessCPUTimes? {
        guard let ticks = ticks(stat: text) else { return nil }
        return ProcessCPUTimes(userSeconds: Double(ticks.user) / ticksPerSecond, systemSeconds: Double(ticks.system) / ticksPerSecond)
    }

    /// utime and stime of a `stat` line, in clock ticks: fields 14 and 15, counted after the name, which is in
    /// parentheses and may hold spaces and parentheses itself (so the text is split after its last ")").
    static func ticks(stat text: String) -> (user: UInt64, system: UInt64)? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (the state), so utime (14) and stime (15) are fields[11] and fields[12].
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return (user, system)
    }

    /// The share of the CPU used between `earlier` and this reading that the kernel took, nil when none was used.
    public func systemShare(since earlier: ProcessCPUTimes) -> Double? {
        let user = userSeconds - earlier.userSeconds
        let system = systemSeconds - earlier.systemSeconds
        guard user >= 0, system >= 0, user + system > 0 else { return nil }
        return system / (user + system)
    }
}

/// The writes completed on the block device that holds a folder, from `/proc/diskstats`. The counters are the
/// machine's: every process's writes to that disk count, the file system's journal included, so a phase's difference
/// is what it cost the disk when nothing else writes there. (`write_bytes` of `/proc/<pid>/io` would be the process's
/// own, but kernels with large page-cache folios count a whole folio for each page made dirty: 4.5 GB for 0.6 GB
/// written, measured here.)
public struct BlockDeviceWrites: Sendable, Equatable {
    /// Write requests completed (after the block layer merged neighbours).
    public let requests: UInt64
    /// Bytes written (the counters count 512-byte sectors, whatever the disk's block size).
    public let bytes: UInt64

    public init(requests: UInt64, bytes: UInt64) {
        self.requests = requests
        self.bytes = bytes
    }

    /// Nil when the folder is not on a listed block device (tmpfs, for one: nothing is written to a disk).
    public static func read(folder: String) -> BlockDeviceWrites? {
        var status = stat()
        guard stat(folder, &status) == 0 else { return nil }
        let device = UInt64(status.st_dev)
        // glibc's major() and minor(), spelled out (the C macros are not imported).
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff))
        let minor = (device & 0xff) | ((device >> 12) & ~UInt64(0xff))
        guard major != 0, let text = ProcessMemory.readSmallFile("/proc/diskstats") else { return nil }
        return parse(diskstats: text, major: major, minor: minor)
    }

    /// The line of device `major`:`minor`: fields 1 and 2 name it, field 8 counts writes completed, field 10 sectors written.
    static func parse(diskstats text: String, major: UInt64, minor: UInt64) -> BlockDeviceWrites? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 10, UInt64(fields[0]) == major, UInt64(fields[1]) == minor else { continue }
            guard let requests = UInt64(fields[7]), let sectors = UInt64(fields[9]) else { return nil }
            return BlockDeviceWrites(requests: requests, bytes: sectors * 512)
        }
        return nil
    }
}

/// `circuito serve` run as a child process, so its memory is its own (the bench holds gigabytes of pre-signed
/// events). Its stdout is read until it reports its TCP port; its stderr goes to a log file.
public final class ServerProcess {
    public let pid: Int32
    public let endpoint: Endpoint
    public let logPath: String
    private var exited = false

    /// Adds "close every descriptor from `lowest` up" to `actions` (glibc 2.34 and later; looked up at run time,
    /// since Swift's Glibc module does not declare it). Without it the child keeps what it inherits.
    private static func closeDescriptorsFrom(_ lowest: Int32, in actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return }
        let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
        _ = closeFrom(&actions, lowest)
    }

    /// Starts `executable serve --data DIRECTORY --listen 127.0.0.1:0 --allow-core-dumps extraArguments…` and waits (at most
    /// `startTimeoutSeconds`) for its `listening tcp` line.
    public init(executable: String, directory: String, extraArguments: [String] = [], logPath: String, startTimeoutSeconds: Int = 120) throws(LedgerError) {
        self.logPath = logPath
        var pipeDescriptors: [Int32] = [0, 0]
        guard pipe(&pipeDescriptors) == 0 else {
            throw LedgerError(.storage, "pipe: \(String(cString: strerror(errno)))")
        }
        let (readEnd, writeEnd) = (pipeDescriptors[0], pipeDescriptors[1])
        let logDescriptor = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard logDescriptor >= 0 else {
            close(readEnd)
            close(writeEnd)
            throw LedgerError(.storage, "cannot create \(logPath): \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, logDescriptor, 2)
        posix_spawn_file_actions_addclose(&actions, readEnd)
        // Nothing else of this process reaches the server: a descriptor another thread has open at this moment
        // (say, the write end of a pipe it is about to hand to its own child) would otherwise stay open for as long
        // as the server runs, and whoever reads that pipe would wait for its end.
        Self.closeDescriptorsFrom(3, in: &actions)
        // Dumpable: the bench reads the server's /proc files (smaps, io, its threads' stat), which a process kept out
        // of core dumps closes to readers of the same user who are not root; the keys of a bench's ledger are its
        // own, made for the run.
        let allowCoreDumps = extraArguments.contains("--allow-core-dumps") ? [] : ["--allow-core-dumps"]
        let arguments = [executable, "serve", "--data", directory, "--listen", "127.0.0.1:0"] + allowCoreDumps + extraArguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for pointer in argv { free(pointer) } }
        var childPid: pid_t = 0
        let status = posix_spawn(&childPid, executable, &actions, nil, argv, environ)
        close(writeEnd)
        close(logDescriptor)
        guard status == 0 else {
            close(readEnd)
            throw LedgerError(.storage, "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        pid = childPid
        // Stopped by `BenchCleanup` if the bench is interrupted before it stops the server itself.
        BenchCleanup.register(process: childPid)
        defer { close(readEnd) }
        // Read its stdout until the listening line, within the start timeout.
        let deadline = monotonicNanoseconds() + UInt64(startTimeoutSeconds) * 1_000_000_000
        var output: [UInt8] = []
        var found: Endpoint?
        while found == nil {
            let now = monotonicNanoseconds()
            guard now < deadline else {
                Self.killAndReap(childPid)
                throw LedgerError(.connectionFailed, "circuito serve did not report its port within \(startTimeoutSeconds) s (log: \(logPath))")
            }
            var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(1000, (deadline - now) / 1_000_000 + 1)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                Self.killAndReap(childPid)
                let log = ProcessMemory.readSmallFile(logPath) ?? ""
                throw LedgerError(.connectionFailed, "circuito serve exited before listening: \(Self.reason(inLog: log))")
            }
            output += chunk[0..<count]
            guard output.count < 1 << 16 else { break }
            for line in String(decoding: output, as: UTF8.self).split(separator: "\n") where line.hasPrefix("listening tcp ") {
                found = try? Endpoint(parsing: String(line.dropFirst("listening tcp ".count)))
            }
        }
        guard let found else {
            Self.killAndReap(childPid)
            throw LedgerError(.connectionFailed, "circuito serve wrote no listening line")
        }
        endpoint = found
    }

    deinit {
        if !exited { Self.killAndReap(pid) }
    }

    /// Kills a child outright, waits for it (at most 5 s) and forgets it in `BenchCleanup`: a server that failed to
    /// start, or one dropped without `stop`.
    private static func killAndReap(_ child: Int32) {
        Glibc.kill(child, SIGKILL)
        _ = reap(child, waitSeconds: 5)
        BenchCleanup.unregister(process: child)
    }

    /// Why a server that exited at once did so: its log's first `error:` line (usage errors end with a hint after
    /// it), or its last line.
    static func reason(inLog log: String) -> String {
        let lines = log.split(separator: "\n").map { String($0.drop { $0 == " " }) }.filter { !$0.isEmpty }
        return lines.first { $0.hasPrefix("error:") || $0.hasPrefix("Error:") } ?? lines.last ?? "no message"
    }

    public var memory: ProcessMemory? { ProcessMemory.read(pid: pid) }

    /// SIGTERM (the server commits what it took and closes the ledger), then SIGKILL if it has not exited within
    /// `graceSeconds`. True when it exited by itself with status 0.
    @discardableResult
    public func stop(graceSeconds: Int = 60) -> Bool {
        guard !exited else { return true }
        kill(pid, SIGTERM)
        var status = Self.reap(pid, waitSeconds: graceSeconds)
        if status == nil {
            kill(pid, SIGKILL)
            status = Self.reap(pid, waitSeconds: 10)
        }
        exited = true
        BenchCleanup.unregister(process: pid)
        return status == 0
    }

    /// Waits for the child to exit, polling; its exit status, or nil if it is still running after the wait.
    static func reap(_ pid: Int32, waitSeconds: Int) -> Int32? {
        let deadline = monotonicNanoseconds() + UInt64(waitSeconds) * 1_000_000_000
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                // WIFEXITED / WEXITSTATUS, spelled out (the C macros are not imported).
                return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            }
            if result < 0 && errno != EINTR { return -1 }
            if monotonicNanoseconds() >= deadline { return nil }
            usleep(20_000)
        }
    }
}
