import CircuitoCore
import CircuitoServer
import CircuitoStorage
import Testing

@Suite("Socket API: lots.expired", .timeLimit(.minutes(5)))
struct ExpiredLotsTests {
    @Test("lots.expired: the authority and auditors list the live lots past their expiry at the ledger's time, page by page, for tocoin.expired to collect; nobody else reads them")
    func authorityFindsTheLotsToCollect() async throws {
        let fixture = try CircuitFixture(initialBalance: 500)
        do {
            // Nothing has expired yet: bene-1's dote is kept 365 days.
            let server = try await fixture.startServer()
            let client = try server.client()
            let none = try client.result("lots.expired", fixture.read("lots.expired", as: "city", [:]))
            #expect(none["lots"] == [] && none["next_after"] == .null, "\(none)")
            await server.shutdown()
        }
        // A commit made while the clock ran 366 days ahead: the ledger's time is past the dote's expiry.
        let ahead = fixture.now + 366 * 86_400_000
        do {
            let ledger = try Ledger.open(directory: fixture.directory, clock: { ahead })
            _ = try ledger.append([try fixture.registration().verified()])
        }
        let server = try await fixture.startServer()
        let client = try server.client()
        let page = try client.result("lots.expired", fixture.read("lots.expired", as: "city", [:]))
        let lots = try #require(page["lots"]?.arrayValue)
        #expect(lots.count == 1 && lots.first?["beneficiary"] == "bene-1" && lots.first?["remaining"] == 500 && lots.first?["category"] == "food", "\(page)")
        #expect(page["next_after"] == .null && page["at"]?.stringValue.flatMap(Timestamp.millisecondsSince1970) == ahead, "\(page)")
        // After that lot, nothing: the cursor is <beneficiary>/<lot>.
        let lot = try #require(lots.first?["lot"]?.integerValue)
        let after = try client.result("lots.expired", fixture.read("lots.expired", as: "audit", ["after": .string("bene-1/\(lot)")]))
        #expect(after["lots"] == [] && after["next_after"] == .null, "\(after)")
        let allowed: Set = ["city", "audit"]
        for reader in ["city", "audit", "casa", "anna", "other-org", "otto", "bene-1", "bene-2", "shop", "shop-2"] {
            switch try client.call("lots.expired", fixture.read("lots.expired", as: reader, [:])) {
            case .success(let result):
                #expect(allowed.contains(reader) && result["lots"]?.arrayValue?.count == 1, "\(reader) read the expired lots")
            case .failure(let error):
                #expect(!allowed.contains(reader) && error.name == "not_authorised", "\(reader): \(error)")
            }
        }
        for cursor in ["bene-1", "bene-1/x", "bene 1/3", "bene-1/3/4", "/3"] {
            #expect(try client.error("lots.expired", fixture.read("lots.expired", as: "city", ["after": .string(cursor)])).name == "invalid_params", "\(cursor)")
        }
        #expect(try client.error("lots.expired", fixture.read("lots.expired", as: "city", ["limit": 0])).name == "invalid_params")
        #expect(try client.error("lots.expired", [:]).name == "invalid_read_request")
        #expect(try client.result("server.info")["methods"]?.arrayValue?.contains("lots.expired") == true)
        await server.shutdown()
    }

    @Test("lots.expired: a cursor's lot is read only as next_after writes it, in plain decimal digits: with a sign or a leading zero it is invalid_params, not another spelling of the same position")
    func cursorLotIsPlainDecimal() async throws {
        let fixture = try CircuitFixture(initialBalance: 500)
        let server = try await fixture.startServer()
        let client = try server.client()
        for cursor in ["bene-1/+3", "bene-1/03", "bene-1/-0", "bene-1/00", "bene-1/", "bene-1/3 ", "bene-1/\u{0663}"] {
            #expect(try client.error("lots.expired", fixture.read("lots.expired", as: "city", ["after": .string(cursor)])).name == "invalid_params", "\(cursor)")
        }
        for cursor in ["bene-1/0", "bene-1/30", "bene-1/\(JSONValue.maximumExactInteger)"] {
            #expect(try client.result("lots.expired", fixture.read("lots.expired", as: "city", ["after": .string(cursor)]))["lots"] == [], "\(cursor)")
        }
        await server.shutdown()
    }
}
