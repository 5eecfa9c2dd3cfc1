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
}
