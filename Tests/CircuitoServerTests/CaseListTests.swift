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

@Suite("Socket API: case.list by referrer", .timeLimit(.minutes(5)))
struct ReferredCaseListTests {
    @Test("case.list with referred_by: a hub and its staff follow the referrals they made (taken in charge, closed and how, the person erased), by status and page by page, without the plan's goals; the authority and auditors read any referrer's; nobody else, whatever the id")
    func hubFollowsItsReferrals() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let actors = fixture.actors
        func submit(_ type: String, by actor: String, _ key: Ed25519PrivateKey, _ body: JSONObject) throws {
            _ = try client.result("submit", try fixture.signed(type, by: actor, key, body).params)
        }
        func refer(_ caseID: String, _ person: String) throws {
            let sealed = SealedData.seal(["note": "referral"], subject: person, key: SecretBox.newKey())
            try submit("case.referred", by: "otto", actors.otherStaff,
                       ["case": .string(caseID), "beneficiary": .string(person), "household": "hh-9", "to": "casa", "sealed": sealed])
        }
        // The other organisation (the hub) refers three people, not registered yet, to the Casa.
        try refer("case-2", "walk-in-1")
        try refer("case-3", "walk-in-2")
        try refer("case-4", "walk-in-3")
        // The Casa takes the first in charge and agrees a plan, closes the second, and keeps the third waiting.
        try submit("actor.registered", by: "anna", actors.staff,
                   ["actor": "walk-in-1", "role": "beneficiary", "name": "walk-in-1", "organisation": "casa", "keys": [.string(Ed25519PrivateKey().publicKey.multikey)]])
        try submit("case.opened", by: "anna", actors.staff, ["case": "case-2"])
        try submit("case.plan_agreed", by: "anna", actors.staff, ["case": "case-2", "goals": ["disability", "training"]])
        try submit("case.closed", by: "anna", actors.staff, ["case": "case-3", "outcome": "not_eligible"])

        func list(as reader: String, _ params: JSONObject) throws -> JSONValue {
            try client.result("case.list", fixture.read("case.list", as: reader, .object(params)))
        }
        let all = try list(as: "otto", ["referred_by": "other-org"])
        let cases = try #require(all["cases"]?.arrayValue)
        #expect(all["referred_by"] == "other-org" && all["holder"] == nil && all["next_after"] == .null, "\(all)")
        #expect(cases.map { $0["case"] } == ["case-2", "case-3", "case-4"], "\(all)")
        // What the referrer wrote, and how the referral went: not the plan's goals, which stay with the holder.
        #expect(cases[0].objectValue?.keys.sorted() == [
            "beneficiary", "case", "erased", "holder", "household", "opened_at", "plan_agreed_at", "referred_at", "referred_by", "status",
        ], "\(cases[0])")
        #expect(cases[0]["status"] == "open" && cases[0]["holder"] == "casa" && cases[0]["beneficiary"] == "walk-in-1" && cases[0]["erased"] == false)
        #expect(cases[1]["status"] == "closed" && cases[1]["outcome"] == "not_eligible" && cases[1]["closed_at"]?.integerValue != nil && cases[1]["erased"] == false)
        #expect(cases[2]["status"] == "referred" && cases[2]["opened_at"] == nil && cases[2]["erased"] == false)
        #expect(!CanonicalJSON.encodeString(all).contains("goals") && !CanonicalJSON.encodeString(all).contains("disability"))
        // The holder's own list still holds the plan's goals, and whether each person was erased.
        let held = try list(as: "anna", ["holder": "casa", "status": "open"])
        #expect(held["cases"]?.arrayValue?.first(where: { $0["case"] == "case-2" })?["goals"] == ["disability", "training"], "\(held)")
        #expect(held["cases"]?.arrayValue?.allSatisfy { $0["erased"] == false } == true, "\(held)")

        // By status, and one case a page.
        #expect(try list(as: "other-org", ["referred_by": "other-org", "status": "closed"])["cases"]?.arrayValue?.map { $0["case"] } == ["case-3"])
        #expect(try list(as: "other-org", ["referred_by": "other-org", "status": "referred"])["cases"]?.arrayValue?.map { $0["case"] } == ["case-4"])
        let first = try list(as: "otto", ["referred_by": "other-org", "limit": 1])
        #expect(first["cases"]?.arrayValue?.map { $0["case"] } == ["case-2"] && first["next_after"] == "case-2", "\(first)")
        let second = try list(as: "otto", ["referred_by": "other-org", "limit": 1, "after": "case-2"])
        #expect(second["cases"]?.arrayValue?.map { $0["case"] } == ["case-3"] && second["next_after"] == "case-3", "\(second)")
        let rest = try list(as: "otto", ["referred_by": "other-org", "after": "case-3"])
        #expect(rest["cases"]?.arrayValue?.map { $0["case"] } == ["case-4"] && rest["next_after"] == .null, "\(rest)")
        // The Casa referred case-1 to itself: its own referrals are its to read.
        #expect(try list(as: "anna", ["referred_by": "casa"])["cases"]?.arrayValue?.map { $0["case"] } == ["case-1"])

        // The Casa erases the person still waiting: the hub learns it, on every page that lists their case.
        try submit("subject.erased", by: "anna", actors.staff, ["beneficiary": "walk-in-3", "case": "case-4"])
        let afterErasure = try list(as: "otto", ["referred_by": "other-org"])
        #expect(afterErasure["cases"]?.arrayValue?.map { $0["erased"] } == [false, false, true], "\(afterErasure)")
        #expect(try list(as: "otto", ["referred_by": "other-org", "status": "referred"])["cases"]?.arrayValue?.first?["erased"] == true)
        // The holder learns it in its own list too (it was handed the person's key with the referral), also of a case
        // it closed, whose case.history is no longer its to read.
        let heldAfterErasure = try list(as: "anna", ["holder": "casa"])
        #expect(heldAfterErasure["cases"]?.arrayValue?.map { $0["case"] } == ["case-1", "case-2", "case-3", "case-4"], "\(heldAfterErasure)")
        #expect(heldAfterErasure["cases"]?.arrayValue?.map { $0["erased"] } == [false, false, false, true], "\(heldAfterErasure)")
        try submit("subject.erased", by: "city", actors.authority, ["beneficiary": "walk-in-2"])
        #expect(try client.error("case.history", fixture.read("case.history", as: "anna", ["beneficiary": "walk-in-2"])).name == "not_authorised")
        let closedErased = try list(as: "casa", ["holder": "casa", "status": "closed"])
        #expect(closedErased["cases"]?.arrayValue?.map { $0["case"] } == ["case-3"] && closedErased["cases"]?.arrayValue?.first?["erased"] == true, "\(closedErased)")

        // The permission row: the referrer and its staff, the authority and auditors; nobody else, and an id nobody
        // registered is refused to them the same way.
        let allowed: Set = ["city", "audit", "other-org", "otto"]
        for reader in ["city", "audit", "casa", "anna", "other-org", "otto", "bene-1", "bene-2", "shop", "shop-2"] {
            switch try client.call("case.list", fixture.read("case.list", as: reader, ["referred_by": "other-org"])) {
            case .success(let result):
                #expect(allowed.contains(reader), "\(reader) read the hub's referrals")
                #expect(result["cases"]?.arrayValue?.count == 3)
            case .failure(let error):
                #expect(!allowed.contains(reader) && error.name == "not_authorised", "\(reader): \(error)")
                #expect(error.message.contains("the cases referred by other-org"), "\(error)")
            }
            if !allowed.contains(reader) {
                let unknown = try client.error("case.list", fixture.read("case.list", as: reader, ["referred_by": "nobody"]))
                #expect(unknown.name == "not_authorised", "\(reader): \(unknown)")
            }
        }
        #expect(try client.error("case.list", fixture.read("case.list", as: "audit", ["referred_by": "nobody"])).name == "not_found")
        #expect(try client.error("case.list", fixture.read("case.list", as: "city", ["referred_by": "shop"])).name == "not_found")
        let both = try client.error("case.list", fixture.read("case.list", as: "city", ["holder": "casa", "referred_by": "other-org"]))
        #expect(both.name == "invalid_params" && both.message.contains("exactly one of"), "\(both)")
        #expect(try client.error("case.list", fixture.read("case.list", as: "otto", ["referred_by": "other-org", "status": "pending"])).name == "invalid_params")
        #expect(try client.error("case.list", fixture.read("case.list", as: "otto", ["referred_by": "not an id"])).name == "invalid_params")
        #expect(try client.error("case.list", ["referred_by": "other-org"]).name == "invalid_read_request")
        await server.shutdown()
    }
}
