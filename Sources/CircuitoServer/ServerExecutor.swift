import CircuitoCore
import Foundation

/// The server's own threads for its tasks (connections, requests, subscriptions).
///
/// Request handling must not depend on Swift's shared cooperative pool: a host process (a test, an embedding
/// program) that blocks those few threads with synchronous work would otherwise stall every connection. One queue,
/// `threadCount` worker threads; the queue holds only jobs of tasks that exist, so it is bounded by the server's own
/// bounds (connections × in-flight requests).
final class ServerExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs`, `head` and `stopping` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0
    private var stopping = false
    private let threads: ThreadStarter

    /// Starts `threadCount` worker threads (at least one) with `threads`; when one cannot be started, those already
    /// started are stopped and it throws `thread_start_failed`: a server short of its threads does not start.
    init(threadCount: Int, threads: ThreadStarter = .system) throws(LedgerError) {
        self.threads = threads
        for index in 0..<max(1, threadCount) {
            do throws(LedgerError) {
                try threads.start(ServerThreadName.requestThreadPrefix + String(index)) { [self] in self.work() }
            } catch {
                stop()
                throw error
            }
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else {
            // A straggler after shutdown (a late continuation) still runs, on a thread of its own.
            try? threads.start(ServerThreadName.lateRequest) { [self] in job.runSynchronously(on: self.asUnownedTaskExecutor()) }
            return
        }
        jobs.append(job)
        condition.signal()
    }

    /// Lets the workers finish the queue and exit.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count && !stopping { condition.wait() }
            guard head < jobs.count else {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
