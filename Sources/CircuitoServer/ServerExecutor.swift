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
        let late = condition.withLock { () -> Bool in
            guard !stopping else { return true }
            jobs.append(job)
            condition.signal()
            return false
        }
        if late { runLate(job) }
    }

    /// A straggler after shutdown (a late continuation) still runs, on a thread of its own. When that thread cannot
    /// be started (the process is at a limit of threads), the job runs on one of Dispatch's worker threads: a job is
    /// a part of a task, and one that never runs leaves its request unanswered and its task hanging for good. Not
    /// here, on the thread that enqueued it: that is whichever thread resumed the task (an event loop, the writer's
    /// committer, another task's), which must not run a request's work in the middle of its own. Dispatch runs it
    /// on a worker it has, or starts one: at a limit of threads it retries that (on the calling thread) until the
    /// process may, so the job runs late rather than never.
    private func runLate(_ job: UnownedJob) {
        do throws(LedgerError) {
            try threads.start(ServerThreadName.lateRequest) { [self] in job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        } catch {
            FileHandle.standardError.write(Data("circuito: \(error.message); a late request runs on a Dispatch worker instead\n".utf8))
            DispatchQueue.global().async { [self] in job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        }
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
