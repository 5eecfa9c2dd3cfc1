import CircuitoCore
import CircuitoCrypto
@testable import CircuitoServer
import CircuitoStorage
import Testing

/// Replays against a real server: signed reads at the edge of their window. In ProtocolTests' serialized suite, since its
/// clients block their thread on socket reads.
extension ProtocolTests {
    @Test("a signed read dated at the far edge of its window is still a replay at the last moment it is valid, and expired one millisecond later")
    func signedReadReplayedAtTheEdgeOfItsWindow() async throws {
        let fixture = try CircuitFixture()
        let wall = Locked<Int64>(fixture.now)
        let monotonic = Locked<Int64>(1_000_000)
        let server = try await fixture.startServer(readClockMilliseconds: { wall.withLock { $0 } }, monotonicMilliseconds: { monotonic.withLock { $0 } })
        let client = try server.client()
        let window: Int64 = 300_000
        // Signed with a clock 300 s ahead of the server's: valid from now until 600 s from now, both ends included.
        let forwardDated = fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"], at: wall.withLock { $0 } + window)
        _ = try client.result("account.balance", forwardDated)
        // 600 s later by both clocks its ts is exactly 300 s old: within the window, so its nonce must still be known.
        wall.withLock { $0 += 2 * window }
        monotonic.withLock { $0 += 2 * window }
        #expect(try client.error("account.balance", forwardDated).name == "request_replayed")
        wall.withLock { $0 += 1 }
        monotonic.withLock { $0 += 1 }
        #expect(try client.error("account.balance", forwardDated).name == "request_expired")
        await server.shutdown()
    }
}
