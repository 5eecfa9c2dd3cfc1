import CircuitoCore
import CircuitoServer
import Testing

@Suite("Socket API: settlement.get", .timeLimit(.minutes(5)))
struct SettlementReadTests {
    @Test("a merchant reads its own settlement, requested and then paid; the authority and auditors read any; no one else reads one; an unknown id is not_found")
    func settlementIsReadByItsMerchant() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        // The shop is paid 500 by bene-1, then asks to settle 300 of it.
        _ = try client.result("submit", try fixture.payment(amount: 500).params)
        _ = try client.result("submit", try fixture.signed("settlement.requested", by: "shop", fixture.actors.merchant, ["amount": 300], id: "settle-1").params)
        let requested = try client.result("settlement.get", fixture.read("settlement.get", as: "shop", ["settlement": "settle-1"]))["settlement"]
        #expect(requested?["merchant"] == "shop" && requested?["amount"] == 300 && requested?["status"] == "requested", "\(String(describing: requested))")
        #expect(requested?["paid_at"] == nil)
        // Whether it was paid is not in the shop's own history: the payment moves the settlement account.
        _ = try client.result("submit", try fixture.signed("settlement.paid", by: "city", fixture.actors.authority, ["settlement": "settle-1", "reference": "Bonifico 1"]).params)
        let paid = try client.result("settlement.get", fixture.read("settlement.get", as: "shop", ["settlement": "settle-1"]))["settlement"]
        #expect(paid?["status"] == "paid" && paid?["paid_at"]?.integerValue != nil, "\(String(describing: paid))")
        let history = try client.result("account.history", fixture.read("account.history", as: "shop", ["account": "merchant:shop"]))
        #expect(history["entries"]?.arrayValue?.contains { $0["type"] == "settlement.paid" } == false)

        let allowed: Set = ["city", "audit", "shop"]
        for reader in ["city", "audit", "casa", "anna", "other-org", "otto", "bene-1", "bene-2", "shop", "shop-2"] {
            switch try client.call("settlement.get", fixture.read("settlement.get", as: reader, ["settlement": "settle-1"])) {
            case .success(let result):
                #expect(allowed.contains(reader), "\(reader) read the settlement")
                #expect(result["settlement"] == paid)
            case .failure(let error):
                #expect(!allowed.contains(reader) && error.name == "not_authorised", "\(reader): \(error)")
            }
            // An unknown id: not_found to those who may read settlements, not_authorised to the others.
            let unknown = try client.error("settlement.get", fixture.read("settlement.get", as: reader, ["settlement": "settle-none"]))
            let mayRead = ["city", "audit", "shop", "shop-2"].contains(reader)
            #expect(unknown.name == (mayRead ? "not_found" : "not_authorised"), "\(reader): \(unknown)")
        }
        // Unsigned, or with params it does not take.
        #expect(try client.error("settlement.get", ["settlement": "settle-1"]).name == "invalid_read_request")
        #expect(try client.error("settlement.get", fixture.read("settlement.get", as: "shop", ["settlement": "settle-1", "extra": 1])).name == "invalid_params")
        #expect(try client.error("settlement.get", fixture.read("settlement.get", as: "shop", [:])).name == "invalid_params")
        #expect(try client.result("server.info")["methods"]?.arrayValue?.contains("settlement.get") == true)
        await server.shutdown()
    }
}
