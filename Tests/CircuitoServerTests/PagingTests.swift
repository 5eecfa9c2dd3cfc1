import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Foundation
import Testing

/// Pages that fill up to their `limit` (found by code coverage: no suite had read a catalogue search, a case history
/// or the expired lots past a full page). Read page by page with the cursor each page names, they give every entry
/// once, in order, as one page large enough would.
@Suite("Socket API: reads page by page past a full page", .serialized, .timeLimit(.minutes(5)))
struct PagingTests {
    /// Every page of a read from the first, following `next_after` (at most `maximumPages`); `signedAs` signs each.
    static func pages(
        _ client: LineClient, _ fixture: CircuitFixture, _ method: String, _ params: JSONObject, itemsKey: String, signedAs reader: String? = nil,
        maximumPages: Int = 20
    ) throws -> [[JSONValue]] {
        var pages: [[JSONValue]] = []
        var cursor: JSONValue = .null
        repeat {
            var members = params
            if cursor != .null { members["after"] = cursor }
            let answer = try client.result(method, reader.map { fixture.read(method, as: $0, .object(members)) } ?? .object(members))
            pages.append(answer[itemsKey]?.arrayValue ?? [])
            cursor = answer["next_after"] ?? .null
        } while cursor != .null && pages.count < maximumPages
        #expect(cursor == .null, "\(method) still had pages after \(maximumPages)")
        return pages
    }

    @Test("catalogue.search with and without a filter, 2 entries a page: every listed entry once, in id order, as one page of 100 gives them")
    func catalogueSearchPages() async throws {
        let fixture = try CircuitFixture()
        do {
            let ledger = try Ledger.open(directory: fixture.directory)
            var events: [VerifiedEvent] = []
            for suffix in ["a", "b", "c", "d", "e"] {
                events.append(try fixture.event("opportunity.published", by: "anna", fixture.actors.staff, [
                    "opportunity": .string("opp-\(suffix)"), "title": .string("Garden \(suffix)"), "description": "Weekly gardening in the courtyard",
                    "category": "civic_utility", "district": "san-salvario", "hours": 4,
                ]))
            }
            // One withdrawn: listed by no search, so a page may hold fewer entries than it examined.
            events.append(try fixture.event("opportunity.withdrawn", by: "anna", fixture.actors.staff, ["opportunity": "opp-c"]))
            for result in try ledger.append(events) { _ = try result.get() }
        }
        let server = try await fixture.startServer()
        let client = try server.client()
        for filters in [["kind": "opportunity"], ["kind": "opportunity", "category": "civic_utility"], ["kind": "opportunity", "text": "gardening courtyard"]] as [JSONObject] {
            var whole = filters
            whole["limit"] = 100
            let expected = try #require(try client.result("catalogue.search", .object(whole))["entries"]?.arrayValue)
            #expect(expected.compactMap { $0["opportunity"]?.stringValue } == ["opp-a", "opp-b", "opp-d", "opp-e", "opp-garden"], "\(filters)")
            var paged = filters
            paged["limit"] = 2
            let pages = try Self.pages(client, fixture, "catalogue.search", paged, itemsKey: "entries")
            #expect(pages.allSatisfy { $0.count <= 2 } && pages.count >= 3, "\(filters): \(pages)")
            #expect(pages.flatMap { $0 } == expected, "\(filters): \(pages)")
        }
        await server.shutdown()
    }

    @Test("case.history one record a page: every record of the beneficiary once, in seq order, as one page gives them")
    func caseHistoryPages() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let whole = try client.result("case.history", fixture.read("case.history", as: "audit", ["beneficiary": "bene-1", "limit": 500]))
        let expected = try #require(whole["records"]?.arrayValue)
        #expect(expected.count >= 5 && whole["next_after"] == .null, "\(whole)")
        let pages = try Self.pages(client, fixture, "case.history", ["beneficiary": "bene-1", "limit": 1], itemsKey: "records", signedAs: "audit")
        #expect(pages.flatMap { $0 } == expected)
        #expect(pages.allSatisfy { $0.count <= 1 })
        await server.shutdown()
    }

    @Test("lots.expired two lots a page: every expired lot once, in (beneficiary, lot) order")
    func expiredLotsPages() async throws {
        let fixture = try CircuitFixture(initialBalance: 500)
        let ahead = fixture.now + 366 * 86_400_000
        do {
            let ledger = try Ledger.open(directory: fixture.directory)
            var events: [VerifiedEvent] = []
            for (beneficiary, amount) in [("bene-1", 100), ("bene-2", 200), ("bene-1", 300), ("bene-2", 400)] {
                events.append(try fixture.event("dote.granted", by: "anna", fixture.actors.staff, ["beneficiary": .string(beneficiary), "category": "food", "amount": .integer(Int64(amount))]))
            }
            for result in try ledger.append(events) { _ = try result.get() }
        }
        // A commit made while the clock ran 366 days ahead: the ledger's time is past every lot's expiry.
        do {
            let ledger = try Ledger.open(directory: fixture.directory, clock: { ahead })
            _ = try ledger.append([try fixture.registration().verified()])
        }
        let server = try await fixture.startServer()
        let client = try server.client()
        let whole = try client.result("lots.expired", fixture.read("lots.expired", as: "city", ["limit": 500]))
        let expected = try #require(whole["lots"]?.arrayValue)
        #expect(expected.map { $0["remaining"] } == [500, 100, 300, 200, 400], "\(whole)")
        let pages = try Self.pages(client, fixture, "lots.expired", ["limit": 2], itemsKey: "lots", signedAs: "city")
        #expect(pages.flatMap { $0 } == expected, "\(pages)")
        #expect(pages.allSatisfy { $0.count <= 2 } && pages.count >= 3)
        await server.shutdown()
    }
}
