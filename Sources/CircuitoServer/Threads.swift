import CircuitoCore
import Foundation

/// Names the calling thread where the kernel shows it: `top -H`, `perf report --sort comm`, `/proc/PID/task/*/comm`.
///
/// Foundation's `Thread.name` stays inside Foundation on Linux (the kernel keeps the name of the queue the thread
/// came from, "user-initiated-qos" cut to 15 bytes), and glibc's `pthread_setname_np` is not visible to Swift without
/// `_GNU_SOURCE`; a thread may write its own name to `/proc/thread-self/comm`. Best effort: the name is for the
/// people reading a profile, so without `/proc` nothing else changes.
enum KernelThreadName {
    /// The kernel keeps at most 15 bytes of a thread's name (16 with its terminating zero).
    static let maximumBytes = 15

    /// Sets the calling thread's name, cut to `maximumBytes`; false when the kernel did not take it.
    @discardableResult
    static func setForCurrentThread(_ name: String) -> Bool {
        precondition(name.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "thread names are printable ASCII")
        let bytes = Array(name.utf8.prefix(maximumBytes))
        let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } == bytes.count
    }
}

/// The names the server gives its threads; the bench's per-thread shares (`ServerThreadCPU`) read them back.
enum ServerThreadName {
    static let committer = "circuito-commit"
    static let planner = "circuito-plan"
    static let requestThreadPrefix = "circuito-srv-"
    /// A job that arrives after the server's executor stopped runs on a thread of its own.
    static let lateRequest = "circuito-late"
    /// SwiftNIO names its event loop threads so.
    static let eventLoopPrefix = "NIO-ELT-"

    /// Whether a thread is one of Dispatch's workers: libdispatch names them after their root queue
    /// ("com.apple.root.default-qos", "….user-initiated-qos.overcommit"), of which the kernel shows the last 15 bytes
    /// ("oot.default-qos", "-qos.overcommit"). The server runs no queue of its own on them, only `Parallel.map`.
    static func isDispatchWorker(_ name: String) -> Bool {
        name.hasSuffix("-qos") || name.hasSuffix(".overcommit")
    }
}

/// Starts the server's and the bench's named threads, and says when one could not be started.
///
/// Foundation's `Thread.start()` ignores a failed `pthread_create` on Linux (EAGAIN when the process is at a limit of
/// threads: a cgroup's `pids.max`, `ulimit -u`, `kernel.threads-max`): the thread's body never runs and nobody is
/// told, so a writer without its committer or a request without its thread waits forever. Here each thread is made
/// with `pthread_create` itself (detached, as Foundation's are, with the stack size asked for), and a failure is a
/// `thread_start_failed` error naming the thread and errno. The thread names itself in the kernel
/// (`KernelThreadName`) before it runs its body. Tests give a starter whose chosen start fails.
struct ThreadStarter: Sendable {
    /// Makes a thread that runs `body`: 0, or the errno of why no thread was made (then `body` never runs).
    let create: @Sendable (_ stackSizeBytes: Int?, _ body: @escaping @Sendable () -> Void) -> Int32

    /// Threads of the operating system (`pthread_create`).
    static let system = ThreadStarter(create: PosixThread.create)

    /// Starts a thread named `name` (in the kernel, cut to 15 bytes) that runs `body`; throws `thread_start_failed`
    /// when the system makes no thread, and then `body` never runs.
    func start(_ name: String, stackSizeBytes: Int? = nil, _ body: @escaping @Sendable () -> Void) throws(LedgerError) {
        let code = create(stackSizeBytes) {
            KernelThreadName.setForCurrentThread(name)
            body()
        }
        guard code == 0 else { throw Self.failure(name, errno: code) }
    }

    /// The error for thread `name` not started, `pthread_create` having returned `code`.
    static func failure(_ name: String, errno code: Int32) -> LedgerError {
        let symbol = [EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EPERM: "EPERM", EINVAL: "EINVAL"][code].map { "\($0), " } ?? ""
        var message = "cannot start the thread \(name): pthread_create failed with errno \(code) (\(symbol)\(String(cString: strerror(code))))"
        if code == EAGAIN {
            message += "; the process is at a limit of threads (a cgroup's pids.max, ulimit -u, kernel.threads-max) or of memory for their stacks"
        }
        return LedgerError(.threadStartFailed, message)
    }
}

/// A detached POSIX thread.
enum PosixThread {
    /// What the new thread runs, handed to it retained.
    private final class Entry {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Makes a detached thread with the default stack size, or `stackSizeBytes`, that runs `body`: 0, or the errno of
    /// `pthread_create` (or of setting up its attributes), and then `body` never runs.
    static func create(stackSizeBytes: Int?, body: @escaping @Sendable () -> Void) -> Int32 {
        var attributes = pthread_attr_t()
        var code = pthread_attr_init(&attributes)
        guard code == 0 else { return code }
        defer { pthread_attr_destroy(&attributes) }
        code = pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        guard code == 0 else { return code }
        if let stackSizeBytes {
            code = pthread_attr_setstacksize(&attributes, stackSizeBytes)
            guard code == 0 else { return code }
        }
        let argument = Unmanaged.passRetained(Entry(body)).toOpaque()
        var thread = pthread_t()
        code = pthread_create(
            &thread, &attributes,
            { argument in
                guard let argument else { return nil }
                Unmanaged<Entry>.fromOpaque(argument).takeRetainedValue().body()
                return nil
            }, argument)
        // No thread took it: released here.
        if code != 0 { Unmanaged<Entry>.fromOpaque(argument).release() }
        return code
    }
}
