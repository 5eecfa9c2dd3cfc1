import CircuitoCore
import CircuitoServer
import Testing

@Suite("Socket API: policy.get", .timeLimit(.minutes(5)))
struct PolicyReadTests {
    @Test("policy.get answers anyone, unsigned, the policy in force: the categories a dote may be earmarked for, the rate, the monthly cap, the lot validity, since which seq; a new policy.updated replaces it")
    func policyIsPublic() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let first = try #require(try client.result("policy.get", [:])["policy"])
        #expect(first["categories"] == ["food", "rent"] && first["conversion_rate_cents_per_credit"] == 100, "\(first)")
        #expect(first["monthly_conversion_cap_cents"] == 100_000 && first["lot_validity_days"] == 365 && first["since"]?.integerValue != nil, "\(first)")
        let update: JSONObject = [
            "conversion_rate_cents_per_credit": 50, "monthly_conversion_cap_cents": 8000, "lot_validity_days": 90,
            "categories": ["food", "rent", "dental_care"],
        ]
        let receipt = try client.result("submit", try fixture.signed("policy.updated", by: "city", fixture.actors.authority, update).params)
        let second = try #require(try client.result("policy.get", [:])["policy"])
        #expect(second["categories"] == ["food", "rent", "dental_care"] && second["monthly_conversion_cap_cents"] == 8000, "\(second)")
        #expect(second["since"] == receipt["seq"], "\(second) \(receipt)")
        // It takes no params.
        #expect(try client.error("policy.get", ["beneficiary": "bene-1"]).name == "invalid_params")
        #expect(try client.result("server.info")["methods"]?.arrayValue?.contains("policy.get") == true)
        await server.shutdown()
    }

    @Test("account.balance of a beneficiary says what the month's conversions took of the monthly cap; other accounts do not")
    func balanceGivesTheMonthsConversions() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let month = String(Timestamp.format(millisecondsSince1970: fixture.now).prefix(7))
        let before = try client.result("account.balance", fixture.read("account.balance", as: "anna", ["account": "beneficiary:bene-1"]))
        #expect(before["conversions"] == ["month": .string(month), "cents": 0], "\(before)")
        // badge-1 carries 5 credits, at 100 cents each.
        _ = try client.result("submit", try fixture.signed("credits.converted", by: "anna", fixture.actors.staff, ["beneficiary": "bene-1", "badges": ["badge-1"]]).params)
        let after = try client.result("account.balance", fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"]))
        #expect(after["conversions"] == ["month": .string(month), "cents": 500], "\(after)")
        let shop = try client.result("account.balance", fixture.read("account.balance", as: "shop", ["account": "merchant:shop"]))
        #expect(shop["conversions"] == nil, "\(shop)")
        await server.shutdown()
    }
}
