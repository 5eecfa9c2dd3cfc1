import CircuitoCore
import CircuitoCrypto
import CircuitoServer
@testable import CircuitoStorage
import CircuitoTestSupport
import Foundation
import Testing

/// A case as a test made it: what every page of `case.list` is compared with.
struct MadeCase: Sendable {
    let id: String
    let holder: String
    let referrer: String
    let status: String
    let erased: Bool
}

/// Which cases one `case.list` asks for: by holder or by referrer, and by status when given.
struct CaseFilter: Sendable, CustomStringConvertible {
    let member: String
    let organisation: String
    let status: String?

    func matches(_ made: MadeCase) -> Bool {
        (member == "holder" ? made.holder : made.referrer) == organisation && (status == nil || made.status == status)
    }

    var params: JSONObject {
        var params: JSONObject = [member: .string(organisation)]
        if let status { params["status"] = .string(status) }
        return params
    }

    var description: String { "\(member) \(organisation) \(status ?? "any status")" }
}

/// One page as a paged read gave it: the ids it lists, and its cursor (nil for null).
struct ReadPage: Equatable, CustomStringConvertible {
    let ids: [String]
    let next: String?

    var description: String { "\(ids.count) ids \(ids.first ?? "-")…\(ids.last ?? "-"), next \(next ?? "null")" }
}

/// Byte order, the order of the LMDB keys pages are read in.
func precedesInBytes(_ first: String, _ second: String) -> Bool {
    Array(first.utf8).lexicographicallyPrecedes(Array(second.utf8))
}

/// The pages a bounded scan gives, worked out from the whole table: every key in order, each page going on after the
/// cursor of the one before, looking at no more than `examiningAtMost` keys and listing no more than `limit`
/// matches, with a cursor (its last key looked at) only when a key is left after it. What Specs/protocol.md 5.21 and
/// 5.22 say a page is.
func expectedPages<Key>(
    _ keys: [Key], limit: Int, examiningAtMost: Int, name: (Key) -> String, matches: (Key) -> Bool
) -> [ReadPage] {
    var pages: [ReadPage] = []
    var start = 0
    while true {
        var ids: [String] = []
        var examined = 0
        var index = start
        while index < keys.count, ids.count < limit, examined < examiningAtMost {
            if matches(keys[index]) { ids.append(name(keys[index])) }
            examined += 1
            index += 1
        }
        let next = index < keys.count ? name(keys[index - 1]) : nil
        pages.append(ReadPage(ids: ids, next: next))
        guard next != nil else { return pages }
        start = index
    }
}

/// Every page of a paged read from the start, each asked for with the cursor of the one before, until a null
/// cursor; no more than `maximumPages` (a cursor that went round would otherwise read for ever).
func walkPages(maximumPages: Int = 10_000, _ read: (String?) throws -> ReadPage) throws -> [ReadPage] {
    var pages: [ReadPage] = []
    var after: String?
    for _ in 0..<maximumPages {
        let page = try read(after)
        pages.append(page)
        guard let next = page.next else { return pages }
        after = next
    }
    Issue.record("more than \(maximumPages) pages")
    return pages
}

extension CircuitFixture {
    /// Refers `count` people, none registered, each in a case of their own whose id `cases` gives, through the
    /// ledger's rulebook (`Ledger.append`, in batches): to the holder and by the referrer `shape` gives for each,
    /// closed as not eligible by the holder, or the person erased by the holder (when another organisation referred
    /// them), when it says so. The fixture's own
    /// case-1 (bene-1's, held and referred by the Casa, open) is first in the list returned.
    func appendCases(
        count: Int, seed: UInt64, shape: (Int) -> (holder: String, referrer: String, closed: Bool, erased: Bool)
    ) throws -> [MadeCase] {
        var made = [MadeCase(id: "case-1", holder: "casa", referrer: "casa", status: "open", erased: false)]
        // Ids of several lengths in no order of their making, so that byte order is not the order appended.
        var generator = SplitMix64(seed: seed)
        var ids: Set<String> = ["case-1"]
        let staffOf = ["casa": ("anna", actors.staff), "other-org": ("otto", actors.otherStaff)]
        var events: [VerifiedEvent] = []
        for index in 0..<count {
            var id = ""
            repeat { id = "k" + String(generator.next() >> UInt64(generator.next() % 40), radix: 36) } while !ids.insert(id).inserted
            let (holder, referrer, closed, erased) = shape(index)
            let person = "walk-in-\(index)"
            let (referrerStaff, referrerKey) = try #require(staffOf[referrer])
            let sealed = SealedData.seal(["note": "referral"], subject: person, key: SecretBox.newKey())
            events.append(try event("case.referred", by: referrerStaff, referrerKey, [
                "case": .string(id), "beneficiary": .string(person), "household": "hh-9", "to": .string(holder), "sealed": sealed,
            ]))
            let (holderStaff, holderKey) = try #require(staffOf[holder])
            // An organisation's referral to itself gives it no standing to erase (Specs/events.md 1.4).
            let erasing = erased && !closed && holder != referrer
            if closed {
                events.append(try event("case.closed", by: holderStaff, holderKey, ["case": .string(id), "outcome": "not_eligible"]))
            } else if erasing {
                events.append(try event("subject.erased", by: holderStaff, holderKey, ["beneficiary": .string(person), "case": .string(id)]))
            }
            made.append(MadeCase(id: id, holder: holder, referrer: referrer, status: closed ? "closed" : "referred", erased: erasing))
        }
        try appendAll(events, to: try Ledger.open(directory: directory))
        return made.sorted { precedesInBytes($0.id, $1.id) }
    }
}

extension CircuitFixture {
    /// Registers `beneficiaries` people with the Casa (beneficiaries "person-<n>") and grants each `earlier` lots
    /// in one commit at `start` and `later` lots in another 200 days on, as anna (the Casa's staff), through the
    /// ledger's rulebook: at `start` + 366 days the earlier lots (and bene-1's dote of the fixture) have expired,
    /// the later ones not. Returns the time 366 days on.
    func appendLots(beneficiaries: Int, earlier: Int, later: Int) throws -> Int64 {
        let start = now + 1000
        var registrations: [VerifiedEvent] = []
        for index in 0..<beneficiaries {
            registrations.append(try event("actor.registered", by: "casa", actors.organisation, [
                "actor": .string("person-\(index)"), "role": "beneficiary", "name": .string("P\(index)"),
                "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]), "organisation": "casa",
            ]))
        }
        func grants(_ count: Int) throws -> [VerifiedEvent] {
            var events: [VerifiedEvent] = []
            for _ in 0..<count {
                for index in 0..<beneficiaries {
                    events.append(try event("dote.granted", by: "anna", actors.staff, ["beneficiary": .string("person-\(index)"), "category": "food", "amount": 1]))
                }
            }
            return events
        }
        let commits = [(registrations + (try grants(earlier)), start), (try grants(later), start + 200 * 86_400_000)]
        for (events, at) in commits {
            try appendAll(events, to: try Ledger.open(directory: directory, clock: { at }))
        }
        return start + 366 * 86_400_000
    }

    /// Every live lot, in the lots table's (beneficiary, lot) order.
    func liveLots(_ reader: LedgerReader, beneficiaries: [String]) throws -> [Lot] {
        var lots: [Lot] = []
        for beneficiary in beneficiaries { lots += try reader.accountBalance("beneficiary:" + beneficiary).lots ?? [] }
        return lots.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }
}

/// An opportunity as a test published it: what every page of `catalogue.search` is compared with.
struct MadeOpportunity: Sendable {
    let id: String
    let category: String
    let district: String
    let provider: String
    /// The words of its title and description, as the index holds them.
    let words: [String]
    let published: Bool

    /// Whether a search for these facets and words lists it.
    func matches(_ query: CatalogueQuery) -> Bool {
        published && (query.category ?? category) == category && (query.district ?? district) == district
            && (query.provider ?? provider) == provider && query.words.allSatisfy(words.contains)
    }
}

extension CircuitFixture {
    /// Publishes `count` opportunities, each with the facets and title `shape` gives for it (by anna for the Casa,
    /// by otto for the other organisation), withdrawing those it says, through the ledger's rulebook in batches. The
    /// fixture's own opp-garden is in the list returned, which is in id (byte) order.
    func appendOpportunities(
        count: Int, seed: UInt64, shape: (Int) -> (category: String, district: String, provider: String, title: String, withdrawn: Bool)
    ) throws -> [MadeOpportunity] {
        let gardenText = "Community garden Weekly gardening in the courtyard"
        var made = [MadeOpportunity(
            id: "opp-garden", category: "civic_utility", district: "san-salvario", provider: "casa", words: CatalogueIndex.words(gardenText), published: true)]
        // Ids of several lengths in no order of their making, so that byte order is not the order published.
        var generator = SplitMix64(seed: seed)
        var ids: Set<String> = ["opp-garden"]
        let staffOf = ["casa": ("anna", actors.staff), "other-org": ("otto", actors.otherStaff)]
        var events: [VerifiedEvent] = []
        for index in 0..<count {
            var id = ""
            repeat { id = "o" + String(generator.next() >> UInt64(generator.next() % 40), radix: 36) } while !ids.insert(id).inserted
            let (category, district, provider, title, withdrawn) = shape(index)
            let (staff, key) = try #require(staffOf[provider])
            let description = "Opportunity \(index)"
            events.append(try event("opportunity.published", by: staff, key, [
                "opportunity": .string(id), "title": .string(title), "description": .string(description), "category": .string(category),
                "district": .string(district),
            ]))
            if withdrawn { events.append(try event("opportunity.withdrawn", by: staff, key, ["opportunity": .string(id)])) }
            made.append(MadeOpportunity(
                id: id, category: category, district: district, provider: provider, words: CatalogueIndex.words(title + " " + description),
                published: !withdrawn))
        }
        try appendAll(events, to: try Ledger.open(directory: directory))
        return made.sorted { precedesInBytes($0.id, $1.id) }
    }
}

/// The keys a catalogue search of opportunities walks: with a filter, the index entries of its first one (the facets
/// in the order category, district, provider, then the words), which hold only published opportunities; without one,
/// every opportunity the table holds, withdrawn ones included. And whether each is listed.
func catalogueScan(_ made: [MadeOpportunity], _ query: CatalogueQuery) -> (keys: [MadeOpportunity], matches: (MadeOpportunity) -> Bool) {
    let driver: ((MadeOpportunity) -> Bool)?
    if let category = query.category {
        driver = { $0.category == category }
    } else if let district = query.district {
        driver = { $0.district == district }
    } else if let provider = query.provider {
        driver = { $0.provider == provider }
    } else if let word = query.words.first {
        driver = { $0.words.contains(word) }
    } else {
        driver = nil
    }
    guard let driver else { return (made, { $0.matches(query) }) }
    return (made.filter { $0.published && driver($0) }, { $0.matches(query) })
}

/// A lots.expired cursor as next_after writes it.
func lotCursor(_ lot: Lot) -> String { "\(lot.beneficiary)/\(lot.id)" }

/// Appends `events` in batches of at most `Ledger.maximumBatchCount`, each event accepted (or the error thrown).
func appendAll(_ events: [VerifiedEvent], to ledger: Ledger) throws {
    var start = 0
    while start < events.count {
        let batch = Array(events[start..<min(start + Ledger.maximumBatchCount, events.count)])
        for result in try ledger.append(batch) { _ = try result.get() }
        start += batch.count
    }
}

@Suite("Paged reads past their bound: case.list, lots.expired and catalogue.search", .timeLimit(.minutes(10)))
struct PagingBoundTests {
    /// The filters every case test walks: common ones, which fill pages, and rare ones, which come back short.
    static func filters(_ statuses: [String?] = [nil, "referred", "closed", "open"]) -> [CaseFilter] {
        var filters: [CaseFilter] = []
        for member in ["holder", "referred_by"] {
            for organisation in ["casa", "other-org"] {
                for status in statuses { filters.append(CaseFilter(member: member, organisation: organisation, status: status)) }
            }
        }
        return filters
    }

    @Test("case.list with a small bound of cases examined a page: for every bound, limit and filter, each page is the one the bound gives (short with a cursor, full, or last with none), and the pages together list every matching case once, in case id order")
    func casePagesWithASmallBound() throws {
        let fixture = try CircuitFixture()
        let made = try fixture.appendCases(count: 60, seed: 7) { index in
            (holder: index % 7 == 3 ? "other-org" : "casa", referrer: index % 2 == 0 ? "other-org" : "casa", closed: index % 5 == 0, erased: index % 11 == 4)
        }
        let reader = try LedgerReader.open(directory: fixture.directory)
        defer { _ = reader.close() }
        for filter in Self.filters() {
            let matching = made.filter(filter.matches)
            for examiningAtMost in [1, 2, 3, 7, 16, 61, 62, 10_000] {
                for limit in [1, 2, 3, 5, 500] {
                    let pages = try walkPages { (after) throws in
                        let page = filter.member == "holder"
                            ? try reader.casesHeld(by: filter.organisation, status: filter.status, after: after, limit: limit, examiningAtMost: examiningAtMost)
                            : try reader.casesReferred(by: filter.organisation, status: filter.status, after: after, limit: limit, examiningAtMost: examiningAtMost)
                        for entry in page.entries {
                            let id = entry.record["case"]?.stringValue
                            #expect(entry.record[filter.member]?.stringValue == filter.organisation && (filter.status == nil || entry.record["status"]?.stringValue == filter.status), "\(filter): \(entry.record)")
                            #expect(entry.subjectErased == made.first(where: { $0.id == id })?.erased, "\(filter): \(id ?? "no id")")
                        }
                        return ReadPage(ids: page.entries.compactMap { $0.record["case"]?.stringValue }, next: page.nextAfter)
                    }
                    let context = "\(filter), \(examiningAtMost) examined, limit \(limit)"
                    #expect(pages.flatMap(\.ids) == matching.map(\.id), "\(context)")
                    #expect(pages == expectedPages(made, limit: limit, examiningAtMost: examiningAtMost, name: \.id, matches: filter.matches), "\(context): \(pages)")
                    #expect(pages.last?.next == nil && pages.dropLast().allSatisfy { $0.next != nil }, "\(context)")
                }
            }
        }
    }

    @Test("case.list past the real bound (more than 10 000 cases, through the socket API): each filter's pages list every matching case once in order, a page that looked at 10 000 cases comes back short with a cursor that goes on, the last page has none, and holder, status and referred_by hold on every page")
    func casePagesPastTheRealBound() async throws {
        let fixture = try CircuitFixture()
        let count = LedgerQueryLimits.maximumExaminedEntries + 500
        let made = try fixture.appendCases(count: count, seed: 11) { index in
            // Cases the other organisation holds are rare: a page of them looks at 10 000 cases and comes back short.
            (holder: index % 400 == 7 ? "other-org" : "casa", referrer: index % 2 == 0 ? "other-org" : "casa", closed: index % 5 == 0, erased: index % 97 == 3)
        }
        let erased = Set(made.filter(\.erased).map(\.id))
        #expect(!erased.isEmpty && made.count > LedgerQueryLimits.maximumExaminedEntries)
        let server = try await fixture.startServer()
        let client = try server.client()
        var shortPagesWithCursor = 0
        for filter in Self.filters([nil, "referred", "closed"]) {
            for limit in [100, LedgerQueryLimits.maximumPageEntries] {
                let reader = filter.organisation == "casa" ? "anna" : "otto"
                let pages = try walkPages { (after) throws in
                    var params = filter.params
                    params["limit"] = .integer(Int64(limit))
                    if let after { params["after"] = .string(after) }
                    let result = try client.result("case.list", fixture.read("case.list", as: reader, .object(params)))
                    let cases = result["cases"]?.arrayValue ?? []
                    for listed in cases {
                        #expect(listed[filter.member]?.stringValue == filter.organisation && (filter.status == nil || listed["status"]?.stringValue == filter.status), "\(filter): \(listed)")
                        #expect(listed["erased"] == .bool(erased.contains(listed["case"]?.stringValue ?? "")), "\(listed)")
                    }
                    return ReadPage(ids: cases.compactMap { $0["case"]?.stringValue }, next: result["next_after"]?.stringValue)
                }
                let context = "\(filter), limit \(limit)"
                #expect(pages.flatMap(\.ids) == made.filter(filter.matches).map(\.id), "\(context)")
                #expect(Set(pages.flatMap(\.ids)).count == pages.flatMap(\.ids).count, "\(context): a case listed twice")
                let expected = expectedPages(made, limit: limit, examiningAtMost: LedgerQueryLimits.maximumExaminedEntries, name: \.id, matches: filter.matches)
                #expect(pages == expected, "\(context): \(pages)")
                #expect(pages.last?.next == nil, "\(context)")
                shortPagesWithCursor += pages.filter { $0.ids.count < limit && $0.next != nil }.count
            }
        }
        // The rare filters did come back short, with the cursor of the 10 000th case looked at.
        #expect(shortPagesWithCursor > 0)
        let rare = try client.result("case.list", fixture.read("case.list", as: "otto", ["holder": "other-org"]))
        #expect(rare["next_after"]?.stringValue == made[LedgerQueryLimits.maximumExaminedEntries - 1].id, "\(rare)")
        #expect((rare["cases"]?.arrayValue?.count ?? 0) < 100, "\(rare)")
        await server.shutdown()
    }

    @Test("lots.expired with a small bound of lots examined a page: for every bound and limit, each page is the one the bound gives (short with a cursor, full, or last with none), and the pages together list every expired lot once, in (beneficiary, lot) order, across beneficiaries")
    func expiredLotPagesWithASmallBound() throws {
        let fixture = try CircuitFixture()
        let at = Timestamp.format(millisecondsSince1970: try fixture.appendLots(beneficiaries: 4, earlier: 3, later: 2))
        let reader = try LedgerReader.open(directory: fixture.directory)
        defer { _ = reader.close() }
        let lots = try fixture.liveLots(reader, beneficiaries: ["bene-1", "bene-2"] + (0..<4).map { "person-\($0)" })
        let expired = lots.filter { $0.isExpired(at: at) }
        #expect(lots.count == 21 && expired.count == 13, "\(lots.count) lots, \(expired.count) expired")
        for examiningAtMost in [1, 2, 3, 5, 20, 21, 22, 10_000] {
            for limit in [1, 2, 4, 500] {
                let pages = try walkPages { (after) throws in
                    let cursor = after.flatMap { (text) -> (beneficiary: String, lot: UInt64)? in
                        let parts = text.split(separator: "/")
                        return UInt64(parts[1]).map { (String(parts[0]), $0) }
                    }
                    let page = try reader.expiredLots(at: at, after: cursor, limit: limit, examiningAtMost: examiningAtMost)
                    #expect(page.lots.allSatisfy { $0.isExpired(at: at) })
                    return ReadPage(ids: page.lots.map(lotCursor), next: page.nextAfter.map { "\($0.beneficiary)/\($0.lot)" })
                }
                let context = "\(examiningAtMost) examined, limit \(limit)"
                #expect(pages.flatMap(\.ids) == expired.map(lotCursor), "\(context)")
                #expect(pages == expectedPages(lots, limit: limit, examiningAtMost: examiningAtMost, name: lotCursor) { $0.isExpired(at: at) }, "\(context): \(pages)")
                #expect(pages.last?.next == nil && pages.dropLast().allSatisfy { $0.next != nil }, "\(context)")
            }
        }
    }

    @Test("lots.expired past the real bound (more than 10 000 live lots, through the socket API): the pages list every expired lot once in order, a page that looked at 10 000 lots comes back short with a cursor that goes on, and the last page has none")
    func expiredLotPagesPastTheRealBound() async throws {
        let fixture = try CircuitFixture()
        let beneficiaries = 110
        let ahead = try fixture.appendLots(beneficiaries: beneficiaries, earlier: 3, later: 97)
        do {
            // A commit at the time asked about: the ledger's time, which lots.expired judges expiry at.
            let ledger = try Ledger.open(directory: fixture.directory, clock: { ahead })
            _ = try ledger.append([try fixture.registration().verified()])
        }
        let at = Timestamp.format(millisecondsSince1970: ahead)
        let lots = try {
            let reader = try LedgerReader.open(directory: fixture.directory)
            defer { _ = reader.close() }
            return try fixture.liveLots(reader, beneficiaries: ["bene-1", "bene-2"] + (0..<beneficiaries).map { "person-\($0)" })
        }()
        #expect(lots.count > LedgerQueryLimits.maximumExaminedEntries)
        let expired = lots.filter { $0.isExpired(at: at) }
        let server = try await fixture.startServer()
        let client = try server.client()
        for limit in [100, LedgerQueryLimits.maximumPageEntries] {
            let pages = try walkPages { (after) throws in
                var params: JSONObject = ["limit": .integer(Int64(limit))]
                if let after { params["after"] = .string(after) }
                let result = try client.result("lots.expired", fixture.read("lots.expired", as: "city", .object(params)))
                #expect(result["at"]?.stringValue == at, "\(result["at"] ?? .null)")
                let listed = result["lots"]?.arrayValue ?? []
                return ReadPage(
                    ids: listed.compactMap { lot in lot["beneficiary"]?.stringValue.flatMap { b in lot["lot"]?.integerValue.map { "\(b)/\($0)" } } },
                    next: result["next_after"]?.stringValue)
            }
            #expect(pages.flatMap(\.ids) == expired.map(lotCursor), "limit \(limit)")
            #expect(pages == expectedPages(lots, limit: limit, examiningAtMost: LedgerQueryLimits.maximumExaminedEntries, name: lotCursor) { $0.isExpired(at: at) }, "limit \(limit): \(pages)")
            #expect(pages.last?.next == nil, "limit \(limit)")
        }
        // With the most a page holds, the first page looks at 10 000 lots and comes back short, its cursor the last.
        let first = try client.result("lots.expired", fixture.read("lots.expired", as: "city", ["limit": 500]))
        #expect(first["next_after"]?.stringValue == lotCursor(lots[LedgerQueryLimits.maximumExaminedEntries - 1]), "\(first["next_after"] ?? .null)")
        #expect((first["lots"]?.arrayValue?.count ?? 0) < 500)
        await server.shutdown()
    }

    @Test("catalogue.search with a small bound of entries examined a page: for every bound, limit and filter (none, one facet, facets and words), each page is the one the bound gives (short with a cursor, full, or last with none), and the pages together list every matching opportunity once, in id order")
    func cataloguePagesWithASmallBound() throws {
        let fixture = try CircuitFixture()
        let categories = ["training", "sport", "civic_utility"]
        let made = try fixture.appendOpportunities(count: 60, seed: 5) { index in
            (category: categories[index % 3], district: index % 4 == 1 ? "aurora" : "san-salvario", provider: index % 5 == 2 ? "other-org" : "casa",
             title: index % 7 == 3 ? "Lantern repair" : "Kitchen help", withdrawn: index % 6 == 5)
        }
        let reader = try LedgerReader.open(directory: fixture.directory)
        defer { _ = reader.close() }
        let queries = [
            CatalogueQuery(kind: "opportunity"), CatalogueQuery(kind: "opportunity", category: "sport"),
            CatalogueQuery(kind: "opportunity", district: "aurora", words: ["lantern"]),
            CatalogueQuery(kind: "opportunity", provider: "other-org", words: ["kitchen", "help"]),
            CatalogueQuery(kind: "opportunity", category: "training", district: "san-salvario", provider: "casa"),
            CatalogueQuery(kind: "opportunity", words: ["repair"]),
        ]
        for query in queries {
            let (keys, matches) = catalogueScan(made, query)
            #expect(keys.contains(where: matches), "\(query) lists nothing")
            for examiningAtMost in [1, 2, 3, 7, 16, 61, 62, 10_000] {
                for limit in [1, 2, 3, 5, 500] {
                    let pages = try walkPages { (after) throws in
                        var paged = query
                        paged.after = after
                        paged.limit = limit
                        let page = try reader.catalogueSearch(paged, examiningAtMost: examiningAtMost)
                        return ReadPage(ids: page.entries.compactMap { $0["opportunity"]?.stringValue }, next: page.nextAfter)
                    }
                    let context = "\(query), \(examiningAtMost) examined, limit \(limit)"
                    #expect(pages.flatMap(\.ids) == made.filter(matches).map(\.id), "\(context)")
                    #expect(pages == expectedPages(keys, limit: limit, examiningAtMost: examiningAtMost, name: \.id, matches: matches), "\(context): \(pages)")
                    #expect(pages.last?.next == nil && pages.dropLast().allSatisfy { $0.next != nil }, "\(context)")
                }
            }
        }
    }

    @Test("catalogue.search at its real bound (Specs/protocol.md 5.11: 10 000 index entries a call): a filter over exactly 10 000 entries is one page with no cursor; over 10 001, a page that looked at 10 000 comes back short with the 10 000th as its cursor, and the next page lists the rest")
    func cataloguePagesAtTheRealBound() async throws {
        // The number the specification gives, not the constant: a bound changed by one fails here.
        let bound = 10_000
        let fixture = try CircuitFixture()
        // Every made opportunity is in aurora (10 001), all but the first are training (10 000); few are lanterns.
        let made = try fixture.appendOpportunities(count: bound + 1, seed: 13) { index in
            (category: index == 0 ? "sport" : "training", district: "aurora", provider: "casa",
             title: index % 2500 == 1 ? "Lantern repair" : "Kitchen help", withdrawn: false)
        }
        let reader = try LedgerReader.open(directory: fixture.directory)
        let pastTheBound = CatalogueQuery(kind: "opportunity", district: "aurora", words: ["lantern"], limit: 100)
        let atTheBound = CatalogueQuery(kind: "opportunity", category: "training", words: ["lantern"], limit: 100)
        #expect(catalogueScan(made, pastTheBound).keys.count == bound + 1 && catalogueScan(made, atTheBound).keys.count == bound)
        for query in [pastTheBound, atTheBound] {
            let (keys, matches) = catalogueScan(made, query)
            let pages = try walkPages { (after) throws in
                var paged = query
                paged.after = after
                let page = try reader.catalogueSearch(paged)
                return ReadPage(ids: page.entries.compactMap { $0["opportunity"]?.stringValue }, next: page.nextAfter)
            }
            #expect(pages.flatMap(\.ids) == made.filter(matches).map(\.id), "\(query)")
            #expect(pages == expectedPages(keys, limit: query.limit, examiningAtMost: bound, name: \.id, matches: matches), "\(query): \(pages)")
        }
        let lanterns = made.filter { $0.words.contains("lantern") }.count
        // Exactly at the bound: every entry looked at, none left, so no cursor.
        let whole = try reader.catalogueSearch(atTheBound)
        #expect(whole.nextAfter == nil && whole.entries.count == lanterns, "\(whole.nextAfter ?? "null"), \(whole.entries.count) entries")
        // One past it, through the socket API: the 10 000th entry is the cursor, and the 10 001st is left to the next page.
        let aurora = catalogueScan(made, pastTheBound).keys
        // The server opens the ledger in this process: one environment per file and process.
        _ = reader.close()
        let server = try await fixture.startServer()
        let client = try server.client()
        let first = try client.result("catalogue.search", ["kind": "opportunity", "district": "aurora", "text": "lantern", "limit": 100])
        #expect(first["next_after"]?.stringValue == aurora[bound - 1].id, "\(first["next_after"] ?? .null)")
        let listed = first["entries"]?.arrayValue?.compactMap { $0["opportunity"]?.stringValue } ?? []
        #expect(listed == aurora.prefix(bound).filter { $0.words.contains("lantern") }.map(\.id), "\(listed)")
        let second = try client.result("catalogue.search", ["kind": "opportunity", "district": "aurora", "text": "lantern", "limit": 100, "after": .string(aurora[bound - 1].id)])
        #expect(second["next_after"] == .null, "\(second["next_after"] ?? .null)")
        #expect(second["entries"]?.arrayValue?.compactMap { $0["opportunity"]?.stringValue } == (aurora[bound].words.contains("lantern") ? [aurora[bound].id] : []))
        await server.shutdown()
    }
}
