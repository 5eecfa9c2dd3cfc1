import CircuitoCore
import CircuitoStorage
import Foundation
import Glibc
import Testing

@testable import CircuitoServer

/// Threads that cannot be started, as at a limit of threads (a cgroup's pids.max): `pthread_create` fails with EAGAIN
/// and the thread's body never runs. Foundation's `Thread.start()` ignored that, so a writer without its committer
/// waited forever; now each start says it failed, and the server does not start.
@Suite("threads that cannot be started")
struct ThreadStartTests {
    /// A starter whose `failing`-th start (counted from 1) makes no thread, with EAGAIN; every other start makes a real one.
    final class FailingStart: @unchecked Sendable {
        // @unchecked: `count` is guarded by `lock`.
        private let lock = NSLock()
        private var count = 0
        let failing: Int

        init(failing: Int) { self.failing = failing }

        var starter: ThreadStarter {
            ThreadStarter { [self] stackSizeBytes, body in
                let number = lock.withLock { () -> Int in
                    count += 1
                    return count
                }
                return number == failing ? EAGAIN : PosixThread.create(stackSizeBytes: stackSizeBytes, body: body)
            }
        }

        var starts: Int { lock.withLock { count } }
    }

    /// How long a test waits for what must finish (a start, a job, a shutdown) before it calls it a hang: a minute, as
    /// on a busy machine the test's own pool can stall for many seconds (a CI run saw a late job answered only after
    /// its 10 s); what never finishes fails after it all the same.
    static let patienceSeconds = 60

    /// What `body` returned or threw, or nil when it had not finished after `seconds` (it is left running).
    static func within<Value: Sendable>(seconds: Int, _ body: @escaping @Sendable () async throws -> Value) async -> Result<Value, any Error>? {
        let outcome = Locked<Result<Value, any Error>?>(nil)
        // The body's task runs on a thread of its own: on Swift's shared pool it waited behind the whole suite's jobs,
        // and a body that ends at once (the bench's load, with nothing to connect to) was not done after the minute
        // in one full run under load. The thread is let go once the body has finished.
        let executor: ServerExecutor
        do {
            executor = try ServerExecutor(threadCount: 1)
        } catch {
            return .failure(error)
        }
        Task.detached(executorPreference: executor) {
            let result: Result<Value, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            executor.stop()
        }
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let result = outcome.withLock({ $0 }) { return result }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return outcome.withLock { $0 }
    }

    /// `within`, for a body that blocks its thread: it runs on a thread of its own, not on the test's pool.
    static func onThread<Value: Sendable>(seconds: Int, _ body: @escaping @Sendable () throws -> Value) async -> Result<Value, any Error>? {
        await within(seconds: seconds) {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                Thread { continuation.resume(with: Result { try body() }) }.start()
            }
        }
    }

    /// The error must be `thread_start_failed`, naming `thread` and EAGAIN.
    static func expectThreadStartFailed<Success, Failure: Error>(
        _ result: Result<Success, Failure>?, thread: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        switch result {
        case nil:
            Issue.record("still waiting after the start of \(thread) failed", sourceLocation: sourceLocation)
        case .success:
            Issue.record("started although \(thread) could not be started", sourceLocation: sourceLocation)
        case .failure(let error):
            guard let error = error as? LedgerError else {
                Issue.record("not a LedgerError: \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(error.code == .threadStartFailed, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.hasPrefix("cannot start the thread \(thread): pthread_create failed with errno \(EAGAIN) (EAGAIN, "), "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains("pids.max"), "\(error)", sourceLocation: sourceLocation)
        }
    }

    /// Nothing was written and the ledger is free: a writer opens it (no `ledger_locked`) at the same size.
    static func expectLedgerUntouched(_ fixture: CircuitFixture, size: UInt64, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let writer = try LedgerWriter.start(directory: fixture.directory, limits: ServerLimits()) { _ in }
        #expect(try writer.reader.size() == size, sourceLocation: sourceLocation)
        await writer.stop()
        _ = writer.reader.close()
    }

    static func size(of fixture: CircuitFixture) throws -> UInt64 {
        let reader = try LedgerReader.open(directory: fixture.directory)
        defer { _ = reader.close() }
        return try reader.size()
    }

    @Test("the starter makes a thread that runs its body under its name in the kernel")
    func systemStarterRunsTheBody() async throws {
        let seen = Locked<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        try ThreadStarter.system.start("circuito-test", stackSizeBytes: 1 << 20) {
            let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            seen.withLock { $0 = name.trimmingCharacters(in: .whitespacesAndNewlines) }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + .seconds(Self.patienceSeconds)) == .success)
        #expect(seen.withLock { $0 } == "circuito-test")
    }

    @Test("a start that fails is thread_start_failed naming the thread and errno, and its body never runs")
    func failedStartIsAnError() throws {
        let ran = Locked(false)
        #expect(throws: LedgerError.self) {
            try FailingStart(failing: 1).starter.start("circuito-test") { ran.withLock { $0 = true } }
        }
        Self.expectThreadStartFailed(Result { try FailingStart(failing: 1).starter.start("circuito-test") {} }, thread: "circuito-test")
        // A stack size pthread refuses: that errno, and no thread either.
        do throws(LedgerError) {
            try ThreadStarter.system.start("circuito-test", stackSizeBytes: 1) { ran.withLock { $0 = true } }
            Issue.record("a 1-byte stack was taken")
        } catch {
            #expect(error.code == .threadStartFailed && error.message.contains("errno \(EINVAL) (EINVAL, "), "\(error)")
        }
        usleep(100_000)
        #expect(!ran.withLock { $0 })
    }

    @Test("a writer whose committer or planner thread cannot be started does not start: thread_start_failed, nothing written, the ledger free", .timeLimit(.minutes(10)))
    func writerThreads() async throws {
        for (failing, thread) in [(1, ServerThreadName.committer), (2, ServerThreadName.planner)] {
            let fixture = try CircuitFixture()
            let size = try Self.size(of: fixture)
            let starts = FailingStart(failing: failing)
            let event = try fixture.registration().verified()
            let outcome = await Self.onThread(seconds: Self.patienceSeconds) { () throws -> LedgerWriter in
                try LedgerWriter.start(directory: fixture.directory, limits: ServerLimits(), threads: starts.starter) { _ in }
            }
            Self.expectThreadStartFailed(outcome, thread: thread)
            if case .success(let writer)? = outcome {
                // What a writer without its planner did: it took the write and never answered it.
                let answer = await Self.within(seconds: 5) { await writer.submit(.single(event, expectedSize: nil)) }
                #expect(answer != nil, "a write to a writer without its \(thread) thread was never answered")
                continue
            }
            #expect(starts.starts == failing, "no thread is started after the one that failed")
            try await Self.expectLedgerUntouched(fixture, size: size)
        }
    }

    @Test("a server whose writer or request thread cannot be started does not start: thread_start_failed, nothing written, the ledger free", .timeLimit(.minutes(10)))
    func serverThreads() async throws {
        // The writer's committer and planner, then the request threads circuito-srv-0 and -1 (NIO's come after).
        let threads = [ServerThreadName.committer, ServerThreadName.planner, ServerThreadName.requestThreadPrefix + "0", ServerThreadName.requestThreadPrefix + "1"]
        for (index, thread) in threads.enumerated() {
            let fixture = try CircuitFixture()
            let size = try Self.size(of: fixture)
            var configuration = ServerConfiguration(
                directory: fixture.directory, tcpHost: "127.0.0.1", tcpPort: 0, unixSocketPath: fixture.folder.path + "/s.sock")
            configuration.eventLoopThreads = 2
            configuration.threads = FailingStart(failing: index + 1).starter
            let startConfiguration = configuration
            let outcome = await Self.within(seconds: Self.patienceSeconds) { try await LedgerServer.start(startConfiguration) }
            Self.expectThreadStartFailed(outcome, thread: thread)
            if case .success(let server)? = outcome {
                let stopped = await Self.within(seconds: Self.patienceSeconds) { await server.shutdown() }
                #expect(stopped != nil, "a server started without its \(thread) thread did not shut down")
                continue
            }
            #expect(!FileManager.default.fileExists(atPath: fixture.folder.path + "/s.sock"), "no listener was opened")
            try await Self.expectLedgerUntouched(fixture, size: size)
        }
    }

    /// The kernel's name of the calling thread.
    static func currentThreadName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("a job that arrives after the executor stopped runs on a thread of its own, or, when that thread cannot be started, on a Dispatch worker: its task finishes", .timeLimit(.minutes(5)))
    func lateJobs() async throws {
        // Start 1: the worker circuito-srv-0; start 2: the late job's thread.
        for failing in [3, 2] {
            let starts = FailingStart(failing: failing)
            let executor = try ServerExecutor(threadCount: 1, threads: starts.starter)
            executor.stop()
            let ran = await Self.within(seconds: Self.patienceSeconds) { await Task(executorPreference: executor) { Self.currentThreadName() }.value }
            #expect(starts.starts == 2)
            switch ran {
            case .success(let name)?:
                if failing == 2 {
                    #expect(name != ServerThreadName.lateRequest && !name.hasPrefix(ServerThreadName.requestThreadPrefix), "\(name)")
                } else {
                    #expect(name == ServerThreadName.lateRequest)
                }
            default:
                Issue.record("a late job whose thread \(failing == 2 ? "could not be started" : "started") never ran")
            }
        }
    }

    @Test("the bench: a connection, the memory sampler or the loopback probe whose thread cannot be started is thread_start_failed, not a wait", .timeLimit(.minutes(5)))
    func benchThreads() async throws {
        // Nothing listens on port 1: the connection that has its thread fails to connect; the other has no thread.
        var options = LoadDriver.Options(endpoint: .tcp(host: "127.0.0.1", port: 1), method: "server.info", socketTimeoutSeconds: 5, deadlineSeconds: 10)
        options.threads = FailingStart(failing: 1).starter
        let requests = [[BenchRequest(params: Array("{}".utf8))], [BenchRequest(params: Array("{}".utf8))]]
        let loadOptions = options
        switch await Self.onThread(seconds: Self.patienceSeconds, { LoadDriver.run(requests, options: loadOptions) }) {
        case .success(let outcome)?:
            #expect(outcome.failures.count == 2, "\(outcome.failures)")
            let failure = "thread_start_failed: cannot start the thread bench-conn-0: pthread_create failed with errno \(EAGAIN) (EAGAIN, "
            #expect(outcome.failures.contains { $0.hasPrefix(failure) }, "\(outcome.failures)")
        default:
            Issue.record("the load did not end: it waited for a connection whose thread was never started")
        }

        let sampled = await Self.onThread(seconds: Self.patienceSeconds) { () throws -> UInt64 in
            try MemorySampler(pid: getpid(), threads: FailingStart(failing: 1).starter).stop()
        }
        Self.expectThreadStartFailed(sampled, thread: "bench-memory")

        let probed = await Self.onThread(seconds: Self.patienceSeconds) { try LoopbackProbe.measure(maximumSeconds: 0.1, threads: FailingStart(failing: 1).starter) }
        Self.expectThreadStartFailed(probed, thread: "circuito-echo")
    }
}
