import CircuitoCore
import CircuitoCrypto
@testable import CircuitoServer
import CircuitoStorage
import Testing

/// Replays against a real server: signed reads at the edge of their window, signed events and payment
/// authorisations taken to another ledger, and ids of refused events. In ProtocolTests' serialized suite, since its
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

    @Test("a signed event or read names no ledger: another ledger that registers the signer's key accepts it too (Specs/ledger.md 4.2); a payment authorisation names its origin and does not pass")
    func signaturesTakenToAnotherLedger() async throws {
        let home = try CircuitFixture(origin: "test.example/home")
        let other = try CircuitFixture(origin: "test.example/other")
        let homeServer = try await home.startServer()
        let otherServer = try await other.startServer()
        let homeClient = try homeServer.client()
        let otherClient = try otherServer.client()
        // One wallet card and one till for both programmes: the other ledger gives its bene-1 and shop the home keys.
        for (actor, key) in [("bene-1", home.actors.beneficiary), ("shop", home.actors.merchant)] {
            let added = try other.signed("actor.key_added", by: "city", other.actors.authority, ["actor": .string(actor), "key": .string(key.publicKey.multikey)])
            _ = try otherClient.result("submit", added.params)
        }
        _ = try otherClient.result("submit", try other.payment(amount: 300).params)

        // The payment's authorisation names the home ledger: refused elsewhere, though every key in it is active there.
        let payment = try home.payment(amount: 100)
        _ = try homeClient.result("submit", payment.params)
        #expect(try otherClient.error("submit", payment.params).name == "authorisation_invalid")

        // The merchant's own event names no ledger: the other one records it as the shop's too.
        let settlement = try home.signed("settlement.requested", by: "shop", home.actors.merchant, ["amount": 50])
        _ = try homeClient.result("submit", settlement.params)
        let replayed = try otherClient.result("submit", settlement.params)
        #expect(replayed["id"] == .string(settlement.event.id))
        // So does a signed read, within its window: each server keeps its own nonces.
        let read = home.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"])
        #expect(try homeClient.result("account.balance", read)["balance"] == .integer(home.initialBalance - 100))
        #expect(try otherClient.result("account.balance", read)["balance"] == .integer(other.initialBalance - 300))
        await homeServer.shutdown()
        await otherServer.shutdown()
    }

    @Test("ids: a refused event's id stays free and its signed event valid for whoever holds it; any key learns whether an id is recorded")
    func idsOfRefusedAndForeignEvents() async throws {
        let fixture = try CircuitFixture(initialBalance: 100)
        let server = try await fixture.startServer()
        let client = try server.client()
        let payment = try fixture.payment(amount: 150)
        #expect(try client.error("submit", payment.params).name == "insufficient_funds")
        // Once the money is there, the same bytes, sent by someone else on another connection, pay: the wallet's
        // consent lasts until its authorisation expires (Specs/ledger.md 9).
        let dote = try fixture.signed("dote.granted", by: "anna", fixture.actors.staff, ["beneficiary": "bene-1", "category": "food", "amount": 100])
        _ = try client.result("submit", dote.params)
        let bystander = try server.client()
        #expect(try bystander.result("submit", payment.params)["id"] == .string(payment.event.id))
        // A key nobody registered is told id_conflict for a recorded id, before any check of its signer.
        let stranger = Ed25519PrivateKey()
        let probe = try fixture.signed("settlement.requested", by: "nobody", stranger, ["amount": 1], id: payment.event.id)
        #expect(try bystander.error("submit", probe.params).name == "id_conflict")
        let fresh = try fixture.signed("settlement.requested", by: "nobody", stranger, ["amount": 1])
        #expect(try bystander.error("submit", fresh.params).name == "unknown_actor")
        await server.shutdown()
    }
}
