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

extension Thread {
    /// Starts a thread that carries `name` both in Foundation and in the kernel.
    static func startNamed(_ name: String, stackSizeBytes: Int? = nil, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            KernelThreadName.setForCurrentThread(name)
            body()
        }
        thread.name = name
        if let stackSizeBytes { thread.stackSize = stackSizeBytes }
        thread.start()
    }
}
