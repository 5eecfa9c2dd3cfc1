import Dispatch
import Glibc
import Testing

@testable import CircuitoServer

@Suite("stop signal sources")
struct StopSignalSourceTests {
    @Test("a signal sent as soon as its source is returned reaches the handler: the source is registered by then, and the signal was never set to be ignored")
    func signalRightAfterTheSourceIsDelivered() async throws {
        // Real-time signals nothing else in the test process takes, one per round: a cancelled source leaves its
        // signal to libdispatch, so a signal is not reused.
        for number: Int32 in 50...57 {
            let delivered = Locked(0)
            let source = makeStopSignalSource(number) { delivered.withLock { $0 += 1 } }
            defer { source.cancel() }
            #expect(kill(getpid(), number) == 0)
            // Bounded wait for the handler, which runs on a global queue.
            for _ in 0..<500 where delivered.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(delivered.withLock { $0 } == 1, "signal \(number) was not delivered")
        }
    }
}
