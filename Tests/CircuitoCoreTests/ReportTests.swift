@testable import CircuitoCore
import CircuitoCrypto
import Testing

/// Records made by running events through the rulebook at chosen ledger times, as the ledger would store them.
struct RecordedLedger {
    var state = MemoryLedgerState()
    var records: [Record] = []
    /// The ledger's time for the next event (`recorded_at`).
    var now = "2026-01-05T09:00:00.000Z"
    var counter = 0

    @discardableResult
    mutating func append(_ type: String, by actor: String, key: Ed25519PrivateKey, _ body: JSONObject) throws -> String {
        counter += 1
        let id = type == "ledger.genesis" ? "genesis" : "e-\(counter)"
        let event = try Event(id: id, type: type, actor: actor, key: key.publicKey.multikey, timestamp: now, body: body)
        try append(try SignedEvent(signing: event, with: key).verified(), at: now)
        return id
    }

    mutating func append(_ verified: VerifiedEvent, at recordedAt: String) throws {
        let sequenceNumber = UInt64(records.count)
        let view = RulesReadingView(state)
        defer { view.expectNoQueryOnlyRead(of: verified) }
        let changes = try Rulebook.check(verified, at: LogPosition(sequenceNumber: sequenceNumber, recordedAt: recordedAt), state: view)
        state.apply(changes)
        records.append(Record(sequenceNumber: sequenceNumber, recordedAt: recordedAt, signedEvent: verified.signedEvent))
    }

    func report() throws -> FundingReport { try report(into: FundingReport()) }

    func report(into empty: FundingReport) throws -> FundingReport {
        var report = empty
        for record in records { try report.add(record, state: state) }
        return report
    }
}

@Suite("Funding report")
struct ReportTests {
    let city = Ed25519PrivateKey()
    let casa = Ed25519PrivateKey()
    let operatore = Ed25519PrivateKey()
    let wallet = Ed25519PrivateKey()
    let grocer = Ed25519PrivateKey()
    let bookshop = Ed25519PrivateKey()

    /// A small circuit with one of every money event:
    /// 01-10 doti food 50.00 and books 30.00, 20 credits converted (20.00 general), all expiring 02-09;
    /// 01-12 a payment of 60.00 at the grocer (food 50.00, general 10.00) and 10.00 at the bookshop (books);
    /// 01-15 the grocer refunds 15.00 (general 10.00 back, then food 5.00); 01-20 it asks to settle 45.00, paid 02-03;
    /// 02-15 the rest of the three lots expires (food 5.00, books 20.00, general 20.00) and a transport dote of 38.00.
    /// `splitPayment`: the grocer is paid 50.00 (the food lot) and then 10.00 (general) in two payments, and the refund
    /// of 15.00 is of the first. `splitRefund`: the refund of 15.00 is made as 8.00 and then 7.00.
    func smallCircuit(
        splitPayment: Bool = false, splitRefund: Bool = false, authority: String = "city", organisation: String = "casa", district: String = "san_salvario"
    ) throws -> RecordedLedger {
        var ledger = RecordedLedger()
        func multikey(_ key: Ed25519PrivateKey) -> JSONValue { .array([.string(key.publicKey.multikey)]) }
        try ledger.append("ledger.genesis", by: authority, key: city, [
            "origin": "report.test/ledger",
            "authority": .object(["actor": .string(authority), "name": "City", "keys": multikey(city)]),
            "checkpoint_key": .string(Ed25519PrivateKey().publicKey.multikey),
            "currency": .object(["code": "TOC", "decimals": 2]),
        ])
        try ledger.append("actor.registered", by: authority, key: city, [
            "actor": .string(organisation), "role": "organisation", "name": "Casa del Quartiere", "district": .string(district), "keys": multikey(casa),
        ])
        try ledger.append("actor.registered", by: organisation, key: casa, [
            "actor": "op", "role": "staff", "name": "Operatrice", "organisation": .string(organisation), "keys": multikey(operatore),
        ])
        try ledger.append("actor.registered", by: "op", key: operatore, [
            "actor": "ben", "role": "beneficiary", "name": "Portafoglio ben", "organisation": .string(organisation), "keys": multikey(wallet),
        ])
        try ledger.append("actor.registered", by: authority, key: city, ["actor": "grocer", "role": "merchant", "name": "Grocer", "keys": multikey(grocer)])
        try ledger.append("actor.registered", by: authority, key: city, ["actor": "bookshop", "role": "merchant", "name": "Bookshop", "keys": multikey(bookshop)])
        try ledger.append("policy.updated", by: authority, key: city, [
            "conversion_rate_cents_per_credit": 100, "monthly_conversion_cap_cents": 50_000, "lot_validity_days": 30,
            "categories": ["food", "books", "transport"],
        ])
        try ledger.append("program.funded", by: authority, key: city, ["amount": 100_000, "reference": "Delibera 2026/1"])
        try ledger.append("merchant.enrolled", by: authority, key: city, ["merchant": "grocer", "categories": ["food"], "district": "san_salvario"])
        try ledger.append("merchant.enrolled", by: authority, key: city, ["merchant": "bookshop", "categories": ["books"], "district": "centro"])
        // A case with one activation and a badge of 20 credits.
        try ledger.append("case.referred", by: "op", key: operatore, [
            "case": "case-1", "beneficiary": "ben", "household": "nucleo-1", "to": .string(organisation),
            "sealed": SealedData.seal(["nome": "Anna"], subject: "ben", key: SecretBox.newKey()),
        ])
        try ledger.append("case.opened", by: "op", key: operatore, ["case": "case-1"])
        try ledger.append("opportunity.published", by: "op", key: operatore, [
            "opportunity": "orto", "title": "Orto", "description": "Orto comunitario", "category": "civic_utility", "district": "san_salvario",
        ])
        try ledger.append("badge_class.defined", by: organisation, key: casa, [
            "badge_class": "verde", "name": "Verde", "description": "Cura del verde", "criteria": "Dieci ore", "credits": 20,
        ])
        try ledger.append("activation.recorded", by: "op", key: operatore, [
            "activation": "act-1", "case": "case-1", "opportunity": "orto", "hours": 10, "date": "2026-01-08",
        ])
        try ledger.append("badge.issued", by: "op", key: operatore, ["badge": "badge-1", "badge_class": "verde", "beneficiary": "ben", "activations": ["act-1"]])

        ledger.now = "2026-01-10T09:00:00.000Z"
        try ledger.append("dote.granted", by: "op", key: operatore, ["beneficiary": "ben", "category": "food", "amount": 5_000])
        try ledger.append("dote.granted", by: "op", key: operatore, ["beneficiary": "ben", "category": "books", "amount": 3_000])
        // Converted by the organisation itself (not staff): same organisation, same district.
        try ledger.append("credits.converted", by: organisation, key: casa, ["beneficiary": "ben", "badges": ["badge-1"]])

        ledger.now = "2026-01-12T16:00:00.000Z"
        let payment: String
        if splitPayment {
            payment = try ledger.append("payment.redeemed", by: "grocer", key: grocer, paymentBody(amount: 5_000, merchant: "grocer", nonce: "n1", now: ledger.now))
            try ledger.append("payment.redeemed", by: "grocer", key: grocer, paymentBody(amount: 1_000, merchant: "grocer", nonce: "n3", now: ledger.now))
        } else {
            payment = try ledger.append("payment.redeemed", by: "grocer", key: grocer, paymentBody(amount: 6_000, merchant: "grocer", nonce: "n1", now: ledger.now))
        }
        try ledger.append("payment.redeemed", by: "bookshop", key: bookshop, paymentBody(amount: 1_000, merchant: "bookshop", nonce: "n2", now: ledger.now))
        ledger.now = "2026-01-15T16:00:00.000Z"
        for amount: Int64 in splitRefund ? [800, 700] : [1_500] {
            try ledger.append("payment.refunded", by: "grocer", key: grocer, ["payment": .string(payment), "amount": .integer(amount), "reason": "Reso"])
        }
        ledger.now = "2026-01-20T16:00:00.000Z"
        let settlement = try ledger.append("settlement.requested", by: "grocer", key: grocer, ["amount": 4_500])
        ledger.now = "2026-02-03T09:00:00.000Z"
        try ledger.append("settlement.paid", by: authority, key: city, ["settlement": .string(settlement), "reference": "Mandato 1"])

        ledger.now = "2026-02-15T09:00:00.000Z"
        // Lots are named by the seq of the event that made them: the two doti and the conversion.
        for lot in try ledger.state.lots(of: "ben").map(\.id) {
            try ledger.append("tocoin.expired", by: authority, key: city, ["beneficiary": "ben", "lot": .integer(Int64(lot))])
        }
        try ledger.append("dote.granted", by: "op", key: operatore, ["beneficiary": "ben", "category": "transport", "amount": 3_800])
        return ledger
    }

    func paymentBody(amount: Int64, merchant: String, nonce: String, now: String) -> JSONObject {
        let expiresAt = Timestamp.format(millisecondsSince1970: (Timestamp.millisecondsSince1970(now) ?? 0) + 600_000)
        let authorisation = PaymentAuthorisation(
            origin: "report.test/ledger", beneficiary: "ben", merchant: merchant, amount: amount, expiresAt: expiresAt, nonce: nonce, key: wallet.publicKey.multikey)
        return ["authorisation": authorisation.json, "signature": .string(Base64.encode(PaymentAuthorisation.sign(authorisation, with: wallet)))]
    }

    func figures(funded: Int64 = 0, converted: Int64 = 0, granted: Int64 = 0, spent: Int64 = 0, refunded: Int64 = 0, settled: Int64 = 0, expired: Int64 = 0) -> FundingReport.Figures {
        var figures = FundingReport.Figures()
        figures.funded = funded
        figures.converted = converted
        figures.granted = granted
        figures.spent = spent
        figures.refunded = refunded
        figures.settled = settled
        figures.expired = expired
        return figures
    }

    func key(_ month: String, _ category: String) -> FundingReport.RowKey {
        FundingReport.RowKey(month: month, district: "san_salvario", category: category, organisation: "casa")
    }

    @Test("every movement lands in its month, district, category and organisation")
    func attribution() throws {
        let report = try smallCircuit().report()
        let expected: [FundingReport.RowKey: FundingReport.Figures] = [
            FundingReport.RowKey(month: "2026-01", district: "-", category: "-", organisation: "city"): figures(funded: 100_000),
            key("2026-01", "books"): figures(granted: 3_000, spent: 1_000),
            key("2026-01", "food"): figures(granted: 5_000, spent: 5_000, refunded: 500),
            key("2026-01", "general"): figures(converted: 2_000, spent: 1_000, refunded: 1_000),
            key("2026-02", "books"): figures(expired: 2_000),
            // The grocer's takings were food 50.00 and general 10.00; the refund took back the general 10.00 and
            // 5.00 of food, so the settlement of 45.00 is all food money.
            key("2026-02", "food"): figures(settled: 4_500, expired: 500),
            key("2026-02", "general"): figures(expired: 2_000),
            key("2026-02", "transport"): figures(granted: 3_800),
        ]
        #expect(report.rows == expected)
        // The total adds up every column.
        #expect(report.total == figures(funded: 100_000, converted: 2_000, granted: 11_800, spent: 7_000, refunded: 1_500, settled: 4_500, expired: 4_500))
        #expect(report.recordCount == UInt64(try smallCircuit().records.count))
        #expect(report.origin == "report.test/ledger")
    }

    @Test("a payment refunded in two parts is attributed as one refund of the sum: each part takes back what the earlier left")
    func refundInParts() throws {
        #expect(try smallCircuit(splitRefund: true).report().rows == (try smallCircuit().report().rows))
    }

    @Test("a refund takes back the refunded row's takings from the merchant, not the latest takings of another row")
    func refundTakesItsOwnRow() throws {
        // The grocer took 50.00 of food money, then 10.00 of general money, and refunds 15.00 of the food payment: it
        // keeps 35.00 of food and the 10.00 of general money, which the settlement of 45.00 takes, oldest first.
        let report = try smallCircuit(splitPayment: true).report()
        #expect(report.rows[key("2026-01", "food")]?.refunded == 1_500)
        #expect(report.rows[key("2026-02", "food")]?.settled == 3_500)
        #expect(report.rows[key("2026-02", "general")]?.settled == 1_000)
    }

    @Test("outstanding reconciles with beneficiary, merchant and settlement balances")
    func reconciliation() throws {
        let ledger = try smallCircuit()
        let report = try ledger.report()
        let balances = try FundingReport.CirculatingBalances(state: ledger.state)
        // The transport dote is still held, and the bookshop has not settled its 10.00.
        #expect(balances == FundingReport.CirculatingBalances(beneficiaries: 3_800, merchants: 1_000, settlement: 0))
        #expect(report.total.outstanding == balances.total)
        #expect(report.totals(by: .category).first { $0.value == "transport" }?.figures.outstanding == 3_800)
        #expect(report.table(balances: balances).contains("reconciled."))
        #expect(report.table(balances: FundingReport.CirculatingBalances(beneficiaries: 0, merchants: 0, settlement: 0)).contains("NOT reconciled"))
        // Balances as damaged as Int64 allows: the difference does not fit in 64 bits, and the table says so.
        let farOff = FundingReport.CirculatingBalances(beneficiaries: .min, merchants: 0, settlement: 0)
        #expect(report.table(balances: farOff).contains("NOT reconciled (difference beyond 64 bits of cents)"))

        // Before the settlement is paid, what was requested still counts as outstanding: at the end of January the
        // wallet held 45.00, the bookshop 10.00 and the settlement account 45.00.
        var january = FundingReport()
        for record in ledger.records.prefix(while: { $0.recordedAt < "2026-02" }) { try january.add(record, state: ledger.state) }
        #expect(january.total.outstanding == 10_000)
    }

    @Test("CSV: a header row, one row per key, amounts in TOC with two decimals")
    func csv() throws {
        let report = try smallCircuit().report()
        let lines = report.csv().split(separator: "\n").map(String.init)
        #expect(lines.first == "month,district,category,organisation,funded,converted,granted,spent,refunded,settled,expired,outstanding")
        #expect(lines.count == 1 + report.rows.count)
        #expect(lines.contains("2026-01,san_salvario,food,casa,0.00,0.00,50.00,50.00,5.00,0.00,0.00,50.00"))
        #expect(lines.contains("2026-02,san_salvario,food,casa,0.00,0.00,0.00,0.00,0.00,45.00,5.00,-50.00"))
        #expect(lines.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 12 })
        #expect(FundingReport.toc(0) == "0.00")
        #expect(FundingReport.toc(5) == "0.05")
        #expect(FundingReport.toc(-5) == "-0.05")
        #expect(FundingReport.toc(123_456) == "1234.56")
    }

    @Test("CSV: an authority, organisation or district id a spreadsheet would run as a formula is written quoted after a ', amounts and the lone - stay as they are")
    func csvFormulaInjection() throws {
        // Identifiers may start with `-`: in a spreadsheet `-A1` shows (minus) another cell, `-2-3` computes -5.
        let report = try smallCircuit(authority: "-city", organisation: "-A1", district: "-2-3").report()
        let lines = report.csv().split(separator: "\n").map(String.init)
        #expect(lines.contains(#"2026-01,-,-,"'-city",1000.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00"#), "\(lines)")
        #expect(lines.contains(#"2026-01,"'-2-3",food,"'-A1",0.00,0.00,50.00,50.00,5.00,0.00,0.00,50.00"#), "\(lines)")
        #expect(lines.contains(#"2026-02,"'-2-3",food,"'-A1",0.00,0.00,0.00,0.00,0.00,45.00,5.00,-50.00"#), "\(lines)")
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            #expect(fields.count == 12, "\(line)")
            // No text field a spreadsheet reads as a formula; every amount a number (negative ones included).
            for field in fields.prefix(4) {
                #expect(field == "-" || !(field.unicodeScalars.first.map { FundingReport.formulaStarts.contains($0) } ?? true), "\(line)")
            }
            #expect(fields.dropFirst(4).allSatisfy { Double($0) != nil }, "\(line)")
        }
        // The other two text columns cannot start so: a month is the digits of recorded_at, a category a slug (or
        // "general", or "-").
        #expect(Identifier.isValid("-A1"))
        for start in FundingReport.formulaStarts {
            #expect(!Slug.isValid(String(start) + "food"))
        }
        #expect(FundingReport.csvField("\r\nx") == "\"'\r\nx\"")
        #expect(FundingReport.csvField("=1+1") == "\"'=1+1\"")
        #expect(FundingReport.csvField("@x\"y") == "\"'@x\"\"y\"")
        #expect(FundingReport.csvField("a\r\nb") == "\"a\r\nb\"")
    }

    @Test("records must be folded in seq order, with the state of the same ledger")
    func refusals() throws {
        let ledger = try smallCircuit()
        var report = FundingReport()
        var outOfOrder: LedgerError?
        do { try report.add(ledger.records[1], state: ledger.state) } catch { outOfOrder = error }
        #expect(outOfOrder?.code == .invalidRange)
        // A payment the state does not know: the records and the state come from different ledgers.
        var other = FundingReport()
        let empty = MemoryLedgerState()
        var failure: LedgerError?
        for record in ledger.records {
            do {
                try other.add(record, state: empty)
            } catch {
                failure = error
                break
            }
        }
        #expect(failure?.code == .notFound)
    }

    /// The default year, and one that starts in December and crosses into the next year (its months, funding
    /// tranches and the policy change computed from the first day).
    @Test("a generated demo year is accepted by the rulebook and its report reconciles", arguments: ["2025-01-02", "2025-12-04"])
    func demoYear(firstDay: String) throws {
        let firstDayMilliseconds = try #require(Timestamp.millisecondsSince1970(firstDay + "T00:00:00Z"))
        var circuit = try DemoCircuit(seed: 3, beneficiaryCount: 12, firstDayMilliseconds: firstDayMilliseconds)
        #expect(circuit.genesis.event.timestamp.hasPrefix(firstDay + "T08:00:00"))
        var ledger = RecordedLedger()
        try ledger.append(try circuit.genesis.verified(), at: Timestamp.format(millisecondsSince1970: circuit.genesisMilliseconds))
        var steps = 0
        while let batches = try circuit.nextBatches(), steps <= circuit.stepCount {
            steps += 1
            for batch in batches {
                #expect(batch.firstSequenceNumber == UInt64(ledger.records.count))
                let recordedAt = Timestamp.format(millisecondsSince1970: batch.recordedAtMilliseconds)
                for signed in batch.events { try ledger.append(try signed.verified(), at: recordedAt) }
            }
        }
        #expect(steps == circuit.stepCount)
        let counts = circuit.eventCounts
        for type in [
            "case.referred", "case.opened", "case.plan_agreed", "activation.recorded", "badge.issued", "credits.converted",
            "dote.granted", "payment.redeemed", "settlement.requested", "settlement.paid", "tocoin.expired", "subject.erased",
        ] {
            #expect((counts[type] ?? 0) > 0, "the demo has no \(type)")
        }
        #expect(counts["subject.erased"] == 1)
        // The setup's policy and the raised cap six months on; the first tranche and those of April, July, October.
        #expect(counts["policy.updated"] == 2 && counts["program.funded"] == 4)
        #expect(counts.values.reduce(0, +) == ledger.records.count)
        let report = try ledger.report()
        #expect(report.total.outstanding == (try FundingReport.CirculatingBalances(state: ledger.state)).total)
        #expect(report.total.spent > 0 && report.total.expired > 0 && report.total.settled > 0)
        #expect(!report.rows.keys.contains { $0.organisation == FundingReport.unattributed && $0.category != FundingReport.unattributed })
    }

    @Test("the demo's first day is a date: any other time of day is refused")
    func demoFirstDayIsADate() throws {
        #expect(throws: LedgerError.self) { try DemoCircuit(seed: 3, beneficiaryCount: 12, firstDayMilliseconds: DemoCircuit.defaultFirstDayMilliseconds + 1) }
        #expect(throws: LedgerError.self) { try DemoCircuit(seed: 3, beneficiaryCount: 12, firstDayMilliseconds: -DemoCircuit.dayMilliseconds) }
    }

    @Test("a stored movement no transfer makes (Int64.min, whose negation traps) is integrity_failure")
    func damagedMovement() throws {
        var ledger = try smallCircuit()
        let expiry = try #require(ledger.records.first { $0.signedEvent.event.type == "tocoin.expired" })
        let key = StateKey.prefix(Account.beneficiary("ben")) + StateKey.number(expiry.sequenceNumber)
        ledger.state.apply([.put(.accountHistory, key: key, value: Account.encode(.min))])
        let error = #expect(throws: LedgerError.self) { _ = try ledger.report() }
        #expect(error?.code == .integrity)
    }

    @Test("a stored payment whose debits no payment makes (1,100 of 2^53 − 1 cents, whose sum overflows) is integrity_failure")
    func damagedDebits() throws {
        var ledger = try smallCircuit()
        let payment = try #require(ledger.records.first { $0.signedEvent.event.type == "payment.redeemed" }?.signedEvent.event.id)
        var stored = try #require(try ledger.state.json(.payments, payment)?.objectValue)
        let debit = try #require(stored["debits"]?.arrayValue?.first?.objectValue)
        var large = debit
        large["amount"] = .integer(JSONValue.maximumExactInteger)
        stored["debits"] = .array(Array(repeating: .object(large), count: 1_100))
        ledger.state.apply([.put(.payments, key: Array(payment.utf8), value: CanonicalJSON.encode(.object(stored)))])
        let error = #expect(throws: LedgerError.self) { _ = try ledger.report() }
        #expect(error?.code == .integrity)
    }

    @Test("a stored conversion that debits, or an expiry that credits, is integrity_failure", arguments: ["credits.converted", "tocoin.expired"])
    func movementOfTheWrongSign(type: String) throws {
        var ledger = try smallCircuit()
        let record = try #require(ledger.records.first { $0.signedEvent.event.type == type })
        let key = StateKey.prefix(Account.beneficiary("ben")) + StateKey.number(record.sequenceNumber)
        let stored = try #require(ledger.state.value(.accountHistory, key).flatMap(Account.decode))
        ledger.state.apply([.put(.accountHistory, key: key, value: Account.encode(-stored))])
        let error = #expect(throws: LedgerError.self) { _ = try ledger.report() }
        #expect(error?.code == .integrity)
        #expect(error?.message.contains("at seq \(record.sequenceNumber) is damaged") == true, "\(String(describing: error))")
    }

    /// Money can circulate again and again (funded, spent, settled, funded again), so a column's sum has no bound
    /// from the rules; no test can sign the millions of events that reach the real bound, so this lowers it.
    @Test("a column whose total would pass the report's bound is too_large; at the bound the report is made")
    func columnTotalsAreBounded() throws {
        let ledger = try smallCircuit()
        let total = try ledger.report().total
        let largest = try #require(FundingReport.Figures.columnKeyPaths.map { total[keyPath: $0] }.max())
        #expect(largest == 100_000, "the small circuit's largest column is its funding")
        let atTheBound = try ledger.report(into: FundingReport(maximumColumnTotal: largest))
        #expect(atTheBound.total == total)
        #expect(atTheBound.rows == (try ledger.report().rows))
        let error = #expect(throws: LedgerError.self) { _ = try ledger.report(into: FundingReport(maximumColumnTotal: largest - 1)) }
        #expect(error?.code == .tooLarge)
        #expect(error?.message.contains("funded column would pass 99999 cents") == true, "\(String(describing: error))")
        #expect(FundingReport.Figures.maximumColumnTotal == Int64.max / 4)
    }

    @Test("the bound is on a column's total over every row: two fundings of 600.00 in two months pass a bound of 1000.00 each and not together")
    func columnBoundIsOnTheTotal() throws {
        var ledger = RecordedLedger()
        try ledger.append("ledger.genesis", by: "city", key: city, [
            "origin": "report.test/ledger",
            "authority": .object(["actor": "city", "name": "City", "keys": .array([.string(city.publicKey.multikey)])]),
            "checkpoint_key": .string(Ed25519PrivateKey().publicKey.multikey),
            "currency": .object(["code": "TOC", "decimals": 2]),
        ])
        try ledger.append("program.funded", by: "city", key: city, ["amount": 60_000, "reference": "Delibera 2026/1"])
        ledger.now = "2026-02-05T09:00:00.000Z"
        try ledger.append("program.funded", by: "city", key: city, ["amount": 60_000, "reference": "Delibera 2026/2"])
        let report = try ledger.report(into: FundingReport(maximumColumnTotal: 120_000))
        #expect(report.rows.count == 2)
        #expect(report.total.funded == 120_000)
        let error = #expect(throws: LedgerError.self) { _ = try ledger.report(into: FundingReport(maximumColumnTotal: 100_000)) }
        #expect(error?.code == .tooLarge)
        #expect(error?.message.contains("at seq 2") == true, "\(String(describing: error))")
    }

    @Test("stored balances whose sums overflow Int64 are integrity_failure", arguments: [
        // Two merchants: their own sum overflows. The beneficiary and settlement: only the three-way total does.
        [Account.merchant("grocer"), Account.merchant("other")], [Account.beneficiary("ben"), Account.settlement],
    ])
    func damagedBalances(accounts: [String]) throws {
        var ledger = try smallCircuit()
        for account in accounts {
            ledger.state.apply([.put(.balances, key: Array(account.utf8), value: Account.encode(.max))])
        }
        let error = #expect(throws: LedgerError.self) { _ = try FundingReport.CirculatingBalances(state: ledger.state) }
        #expect(error?.code == .integrity)
    }
}
