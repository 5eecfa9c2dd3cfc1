import CircuitoStorage
import Dispatch
import Testing

@Suite("Parallel map")
struct ParallelTests {
    @Test("keeps order and fills every slot, also when several maps run at once")
    func concurrentMaps() {
        let items = Array(0..<20_000)
        let outcomes = ParallelOutcomes()
        // Several maps at once, each itself on all cores: the case of a replay preparing its next chunk.
        DispatchQueue.concurrentPerform(iterations: 8) { round in
            let mapped = Parallel.map(items) { $0 &* 31 &+ round }
            outcomes.record(mapped == items.map { $0 &* 31 &+ round })
        }
        #expect(outcomes.all == Array(repeating: true, count: 8))
        #expect(Parallel.map([Int]()) { $0 } == [])
        #expect(Parallel.map([7]) { $0 + 1 } == [8])
    }

    @Test("hands each result over once: the results alone hold their objects, which are freed with them")
    func resultsHandedOverOnce() {
        let live = LiveCount()
        do {
            var mapped = Parallel.map(Array(0..<5_000)) { Tracked(number: $0, live: live) }
            #expect(mapped.count == 5_000)
            #expect(mapped.indices.allSatisfy { mapped[$0].number == $0 })
            #expect(live.count == 5_000)
            let heldElsewhere = mapped.indices.filter { !isKnownUniquelyReferenced(&mapped[$0]) }
            #expect(heldElsewhere.isEmpty)
        }
        #expect(live.count == 0)
    }
}

private final class Tracked: Sendable {
    let number: Int
    let live: LiveCount
    init(number: Int, live: LiveCount) {
        self.number = number
        self.live = live
        live.add(1)
    }
    deinit { live.add(-1) }
}

private final class LiveCount: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLockLike()
    private var value = 0
    func add(_ delta: Int) { lock.withLock { value += delta } }
    var count: Int { lock.withLock { value } }
}

private final class ParallelOutcomes: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLockLike()
    private var outcomes: [Bool] = []
    func record(_ outcome: Bool) { lock.withLock { outcomes.append(outcome) } }
    var all: [Bool] { lock.withLock { outcomes } }
}

/// A tiny lock over a dispatch semaphore, to keep this test free of Foundation.
private final class NSLockLike: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 1)
    func withLock<Result>(_ body: () -> Result) -> Result {
        semaphore.wait()
        defer { semaphore.signal() }
        return body()
    }
}
