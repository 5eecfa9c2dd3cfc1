import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import Testing

@Suite("Socket API: case.list", .timeLimit(.minutes(5)))
struct CaseListTests {
    @Test("case.list: a Casa and its staff find the referrals made to it and its open cases, by status and page by page; the authority and auditors read any holder's; nobody else reads them")
    func casaFindsTheReferralsMadeToIt() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        // Another organisation's operator refers a person not registered yet to the Casa.
        let referral = try fixture.signed(
            "case.referred", by: "otto", fixture.actors.otherStaff,
            ["case": "case-2", "beneficiary": "walk-in-1", "household": "hh-9", "to": "casa",
             "sealed": SealedData.seal(["note": "rent arrears"], subject: "walk-in-1", key: SecretBox.newKey())])
        _ = try client.result("submit", referral.params)

        let all = try client.result("case.list", fixture.read("case.list", as: "anna", ["holder": "casa"]))
        let cases = try #require(all["cases"]?.arrayValue)
        #expect(cases.map { $0["case"] } == ["case-1", "case-2"] && all["next_after"] == .null, "\(all)")
        let waiting = try client.result("case.list", fixture.read("case.list", as: "casa", ["holder": "casa", "status": "referred"]))
        #expect(waiting["cases"]?.arrayValue?.map { $0["case"] } == ["case-2"], "\(waiting)")
        let referred = waiting["cases"]?.arrayValue?.first
        #expect(referred?["referred_by"] == "other-org" && referred?["beneficiary"] == "walk-in-1", "\(waiting)")
        // One case a page: the cursor goes on to the next.
        let first = try client.result("case.list", fixture.read("case.list", as: "anna", ["holder": "casa", "limit": 1]))
        #expect(first["cases"]?.arrayValue?.map { $0["case"] } == ["case-1"] && first["next_after"] == "case-1", "\(first)")
        let second = try client.result("case.list", fixture.read("case.list", as: "anna", ["holder": "casa", "after": "case-1"]))
        #expect(second["cases"]?.arrayValue?.map { $0["case"] } == ["case-2"] && second["next_after"] == .null, "\(second)")
        // The referrer holds none of them.
        let referrer = try client.result("case.list", fixture.read("case.list", as: "otto", ["holder": "other-org"]))
        #expect(referrer["cases"]?.arrayValue?.isEmpty == true, "\(referrer)")

        let allowed: Set = ["city", "audit", "casa", "anna"]
        for reader in ["city", "audit", "casa", "anna", "other-org", "otto", "bene-1", "bene-2", "shop", "shop-2"] {
            switch try client.call("case.list", fixture.read("case.list", as: reader, ["holder": "casa"])) {
            case .success(let result):
                #expect(allowed.contains(reader), "\(reader) read the Casa's cases")
                #expect(result["cases"]?.arrayValue?.count == 2)
            case .failure(let error):
                #expect(!allowed.contains(reader) && error.name == "not_authorised", "\(reader): \(error)")
            }
        }
        #expect(try client.error("case.list", fixture.read("case.list", as: "city", ["holder": "nobody"])).name == "not_found")
        #expect(try client.error("case.list", fixture.read("case.list", as: "city", ["holder": "shop"])).name == "not_found")
        #expect(try client.error("case.list", fixture.read("case.list", as: "anna", ["holder": "casa", "status": "pending"])).name == "invalid_params")
        #expect(try client.error("case.list", fixture.read("case.list", as: "anna", [:])).name == "invalid_params")
        #expect(try client.error("case.list", ["holder": "casa"]).name == "invalid_read_request")
        #expect(try client.result("server.info")["methods"]?.arrayValue?.contains("case.list") == true)
        await server.shutdown()
    }
}
