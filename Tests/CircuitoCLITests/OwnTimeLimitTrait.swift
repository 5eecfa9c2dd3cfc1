import Synchronization
import Testing

/// A time limit on what a test of this target does itself: its time less the time its commands waited for a slot of
/// `ChildProcessSlots`. Swift Testing's `.timeLimit` counts from the start of the test, and every test here starts at
/// once and queues each of its commands behind every other test's: each test then ran about as long as all of the
/// target's commands together (188 to 198 s in a full run with two busy loops beside it, 248 to 290 s with a second
/// test process as well, past the 300 s limit with four busy loops), a bound on the suite, not on the test. A test
/// whose own time passes the limit is named and cancelled, as with `.timeLimit`; a test is still named by the suite's
/// `.timeLimit` whatever it waited for, and each command is killed after its own timeout.
struct OwnTimeLimitTrait: SuiteTrait, TestTrait, TestScoping {
    let limit: Duration

    init(minutes: Int) { limit = .seconds(60 * minutes) }

    var isRecursive: Bool { true }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        // Each test case, not the suite around them.
        testCase == nil ? nil : self
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let waits = SlotWaits()
        let limit = limit
        // The group awaits both of its tasks before it returns: `function` does not outlive this call.
        try await withoutActuallyEscaping(function) { function in
            try await SlotWaits.$current.withValue(waits) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await function() }
                    group.addTask {
                        let started = ContinuousClock.now
                        while true {
                            let now = ContinuousClock.now
                            let waited = waits.total(at: now)
                            let own = now - started - waited
                            if own >= limit {
                                Issue.record(
                                    "the test's own time passed \(limit) (\(now - started) in all, \(waited) of it waiting for a slot to run a command)",
                                    sourceLocation: test.sourceLocation)
                                return
                            }
                            // Sleeps at least until the limit could be reached; a wait for a slot meanwhile moves it on.
                            try await Task.sleep(for: limit - own)
                        }
                    }
                    // The first to end: the test (its error is the test's), or the limit, which then cancels the test.
                    try await group.next()
                    group.cancelAll()
                }
            }
        }
    }
}

/// The time a test's commands spent waiting for a slot, counted once while several of them wait together.
final class SlotWaits: Sendable {
    @TaskLocal static var current: SlotWaits?

    private struct State {
        var waiting = 0
        var since = ContinuousClock.now
        var total = Duration.zero
    }
    private let state = Mutex(State())

    func began() {
        state.withLock {
            if $0.waiting == 0 { $0.since = .now }
            $0.waiting += 1
        }
    }

    func ended() {
        state.withLock {
            $0.waiting -= 1
            if $0.waiting == 0 { $0.total += ContinuousClock.now - $0.since }
        }
    }

    func total(at now: ContinuousClock.Instant) -> Duration {
        state.withLock { $0.total + ($0.waiting > 0 ? now - $0.since : .zero) }
    }
}
