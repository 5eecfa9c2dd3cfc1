import CircuitoCore
import CircuitoStorage
import Dispatch
import Foundation
import Glibc
import Testing

@testable import CircuitoServer

/// The writer's queue is bounded in requests and in events (`ServerLimits.maximumQueuedWrites`,
/// `maximumQueuedEvents`): past either, a write is refused `overloaded` at once, and nothing of it is written. Whether
/// the queue is full otherwise depends on how fast the planner takes requests, so here the planner's thread is held
/// back until the queue has been filled: the refusal is then certain, not a race.
@Suite("Writer: the queue's bounds", .timeLimit(.minutes(5)))
struct WriterQueueBoundTests {
    /// A starter that makes real threads, but holds the planner's body until `release` is called.
    final class HeldPlanner: @unchecked Sendable {
        // @unchecked: `count` is guarded by `lock`; the semaphore is thread-safe.
        private let lock = NSLock()
        private var count = 0
        private let gate = DispatchSemaphore(value: 0)

        var starter: ThreadStarter {
            ThreadStarter { [self] stackSizeBytes, body in
                let number = lock.withLock { () -> Int in
                    count += 1
                    return count
                }
                // The writer starts its committer first, then its planner (LedgerWriter.start).
                guard number == 2 else { return PosixThread.create(stackSizeBytes: stackSizeBytes, body: body) }
                return PosixThread.create(stackSizeBytes: stackSizeBytes) { [gate] in
                    gate.wait()
                    body()
                }
            }
        }

        func release() { gate.signal() }
    }

    @Test("past the queue's bound in requests or in events a write is refused overloaded at once and nothing of it is written; what was queued is committed once the planner runs, and the queue takes writes again")
    func aFullQueueRefusesOverloaded() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumQueuedWrites = 3
        limits.maximumQueuedEvents = 4
        let planner = HeldPlanner()
        let writer = try LedgerWriter.start(directory: fixture.directory, limits: limits, threads: planner.starter) { _ in }
        let sizeBefore = try writer.reader.size()
        let answers = Locked<[Int: Result<[Receipt], WriteRefusal>]>([:])
        func submit(_ number: Int, _ request: WriteRequest) {
            writer.submit(request) { result in answers.withLock { $0[number] = result } }
        }
        func refusal(_ number: Int) -> LedgerError? {
            guard case .failure(let refusal)? = answers.withLock({ $0[number] }) else { return nil }
            return refusal.error
        }
        // Two requests of one event and one of two: three requests and four events queued, the planner held.
        submit(1, .single(try fixture.registration().verified(), expectedSize: nil))
        submit(2, .single(try fixture.registration().verified(), expectedSize: nil))
        submit(3, .batch([try fixture.registration().verified(), try fixture.registration().verified()], expectedSize: nil))
        #expect(answers.withLock { $0.isEmpty }, "nothing is answered while the planner is held")
        // A fourth request: past the bound in requests, and in events. Refused at once, on this thread.
        submit(4, .single(try fixture.registration().verified(), expectedSize: nil))
        let full = try #require(refusal(4), "a write past the queue's bound is refused at once")
        #expect(full.code == .overloaded)
        #expect(full.message.contains("3 requests (4 events) waiting"), "\(full.message)")
        try #require(answers.withLock { $0.count } == 1)

        planner.release()
        let deadline = ContinuousClock.now + .seconds(60)
        while answers.withLock({ $0.count }) < 4 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        var receipts: [Receipt] = []
        for number in 1...3 {
            guard case .success(let received)? = answers.withLock({ $0[number] }) else {
                Issue.record("queued write \(number) was not committed: \(String(describing: answers.withLock { $0[number] }))")
                continue
            }
            receipts += received
        }
        #expect(receipts.count == 4)
        // The queue is empty again: a request of two events fits the bound in events again, and is committed.
        let again = await writer.submit(.batch([try fixture.registration().verified(), try fixture.registration().verified()], expectedSize: nil))
        guard case .success(let later) = again else {
            Issue.record("a write after the queue emptied is refused: \(again)")
            return
        }
        receipts += later
        // One request alone over the bound in events is refused whatever the queue holds.
        let tooMany = await writer.submit(.batch(try (0..<5).map { _ in try fixture.registration().verified() }, expectedSize: nil))
        guard case .failure(let tooManyRefusal) = tooMany else {
            Issue.record("a request of more events than the queue holds was taken")
            return
        }
        #expect(tooManyRefusal.error.code == .overloaded)
        await writer.stop()
        // Exactly the receipts' records: nothing of the refused writes.
        let reader = writer.reader
        #expect(try reader.size() == sizeBefore + UInt64(receipts.count))
        #expect(Set(receipts.map(\.sequenceNumber)) == Set(sizeBefore..<sizeBefore + UInt64(receipts.count)))
    }

    @Test("a request of exactly the commit's bound in events (maximumCommitBatch) is planned and committed")
    func aRequestAsLargeAsACommit() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumCommitBatch = 3
        let writer = try LedgerWriter.start(directory: fixture.directory, limits: limits) { _ in }
        let sizeBefore = try writer.reader.size()
        let answer = Locked<Result<[Receipt], WriteRefusal>?>(nil)
        writer.submit(.batch(try (0..<3).map { _ in try fixture.registration().verified() }, expectedSize: nil)) { result in
            answer.withLock { $0 = result }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while answer.withLock({ $0 == nil }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        guard case .success(let receipts)? = answer.withLock({ $0 }) else {
            // A writer that never plans the request would not stop either (stop waits for the queue): it is left.
            Issue.record("a request of maximumCommitBatch events was not committed: \(String(describing: answer.withLock { $0 }))")
            return
        }
        #expect(receipts.map(\.sequenceNumber) == Array(sizeBefore..<sizeBefore + 3))
        await writer.stop()
    }
}
