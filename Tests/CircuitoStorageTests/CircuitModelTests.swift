import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import CircuitoTestSupport
import Testing

/// Model-based test of the rulebook: long random sequences of money and credit events, valid and deliberately
/// not (over-spending, expired authorisations, reused nonces, wrong categories, suspended merchants and actors,
/// revoked keys, wrong signers, caps), go through the real LMDB ledger and through `CircuitModel`; after every
/// commit both must have accepted the same events, refused the others with the same code, and hold the same
/// balances, lots, monthly conversions, payments and settlements. A failure names the seed and step to replay.
@Suite("Circuit on LMDB: model-based")
struct CircuitModelTests {
    @Test("the ledger and the reference model agree on every outcome and every money projection", arguments: [1, 2, 3, 4] as [UInt64])
    func ledgerAgreesWithModel(seed: UInt64) throws {
        let run = try ModelRun(seed: seed)
        try run.setUp()
        try run.randomSteps(1000)
        try run.finalComparison()
        // The sequence exercised both sides of the rules, and reached the refusals the model is there to check.
        #expect(run.acceptedCount >= 300, "seed \(seed): only \(run.acceptedCount) events were accepted")
        let codes = Set(run.refusalCounts.keys)
        for code in [
            "insufficient_funds", "nonce_used", "authorisation_expired", "authorisation_invalid", "key_not_active", "role_not_permitted",
            "refund_exceeds_payment", "lot_not_expired", "already_converted", "category_not_accepted", "merchant_not_enrolled",
            "settlement_exceeds_balance", "unknown_actor", "id_conflict",
        ] {
            #expect(codes.contains(code), "seed \(seed): no event was refused with \(code); refusals: \(run.refusalCounts)")
        }
    }

    @Test("the monthly conversion cap: up to it in one month, refused past it, open again in the next month")
    func monthlyCap() throws {
        let run = try ModelRun(seed: 98)
        try run.setUp()
        // Six badges of 30 credits (300 cents each at the set-up rate); the cap is 1500 cents a month.
        for index in 0..<6 {
            run.step = index
            try run.submit([try run.signed(by: "op-casa", .activation("cap-act-\(index)", caseID: "case-ben-0", opportunity: "garden"), faultPercent: 0)])
            try run.submit([try run.signed(by: "op-casa", .issueBadge("cap-badge-\(index)", badgeClass: "casa-class", beneficiary: "ben-0", activations: ["cap-act-\(index)"]), faultPercent: 0)])
        }
        func convert(_ badges: [String]) throws {
            try run.submit([try run.signed(by: "op-casa", .convert(beneficiary: "ben-0", badges: badges.map { "cap-badge-\($0)" }), faultPercent: 0)])
        }
        try convert(["0", "1", "2", "3"])  // 1200 of 1500
        try convert(["4", "5"])  // 1800: over the cap
        try convert(["4"])  // 1500: exactly the cap
        try convert(["5"])  // 1800 again
        run.moveToNextMonth()
        try convert(["5"])  // a new month
        try run.finalComparison()
        #expect(run.refusalCounts["cap_exceeded"] == 2, "refusals: \(run.refusalCounts)")
        #expect(run.acceptedCount >= 3)
    }

    @Test("the bounds on live lots: grants stop at 256, refunds that bring emptied lots back stop at 1024")
    func lotBounds() throws {
        let run = try ModelRun(seed: 99)
        try run.setUp()
        var payments: [String] = []
        // Each round grants 1-cent food doti in one commit until the bound refuses them, then spends every lot
        // in one payment, so the emptied lots pile up for the refunds to bring back.
        for round in 0..<5 {
            run.step = round
            try run.submit(try (0..<257).map { _ in try run.signed(by: "op-casa", .dote(beneficiary: "ben-0", category: "food", amount: 1), faultPercent: 0) })
            let spendable = run.model.liveLots(of: "ben-0").filter { $0.category == "food" }.reduce(0) { $0 + $1.remaining }
            let key = run.pick(run.model.actors["ben-0"]?.activeKeys ?? [])
            let authorisation = ModelEvent.Authorisation(
                origin: CircuitModel.origin, beneficiary: "ben-0", merchant: "shop-food", amount: spendable,
                expiresAt: run.now + 3_600_000, nonce: "bound-\(round)", key: key)
            var payment = try run.signed(by: "shop-food", .pay(authorisation), faultPercent: 0)
            payment.id = "pay-bound-\(round)"
            try run.submit([payment])
            payments.append(payment.id)
        }
        // Refund every payment whole: the lots come back, until 1024 live lots refuse the next one.
        run.step = 5
        try run.submit(try payments.map { payment in
            try run.signed(by: "shop-food", .refund(payment: payment, amount: run.model.payments[payment]?.amount ?? 1), faultPercent: 0)
        })
        try run.finalComparison()
        #expect(run.refusalCounts["too_many_lots", default: 0] >= 6, "refusals: \(run.refusalCounts)")
        #expect(run.model.liveLots(of: "ben-0").count > 256)
    }
}

/// One seeded run: the real ledger, the model, the keys, and the generator of events.
final class ModelRun {
    let seed: UInt64
    var random: SplitMix64
    let temporary: TemporaryLedger
    let clock: ClockBox
    let ledger: Ledger
    var model: CircuitModel
    var privateKeys: [String: Ed25519PrivateKey] = [:]
    var counter = 0
    var step = 0
    var acceptedCount = 0
    var refusalCounts: [String: Int] = [:]
    var submittedIDs: [String] = []
    /// What each recorded event carried and its seq: the same id with the same content is answered with the first receipt.
    var recorded: [String: (content: String, sequence: UInt64)] = [:]
    var paymentIDs: [String] = []
    var settlementIDs: [String] = []
    var noncesSeen: [String: [String]] = [:]
    /// Recent submissions and outcomes, printed with a failure.
    var journal: [String] = []

    static let organisations = ["casa", "hub"]
    static let staffOf = ["casa": ["op-casa", "op-casa-2", "casa"], "hub": ["op-hub", "hub"]]
    static let merchants = ["shop-food", "shop-books", "shop-late", "shop-gone"]
    static let beneficiaries = ["ben-0", "ben-1", "ben-2", "ben-3"]
    static let categoryPool = ["food", "books", "school", "rent", "transport", "dental_care"]

    struct Stop: Error, CustomStringConvertible {
        let description: String
    }

    init(seed: UInt64) throws {
        self.seed = seed
        random = SplitMix64(seed: seed)
        let temporary = TemporaryLedger(), clock = ClockBox(1_795_000_000_000)
        self.temporary = temporary
        self.clock = clock
        // Not fsync'd: a scratch ledger, thrown away; the rules under test do not depend on durability.
        ledger = try temporary.create(options: .init(durable: false), clock: { clock.now() })
        model = CircuitModel(authority: "city", keys: [temporary.authority.publicKey.multikey])
        privateKeys[temporary.authority.publicKey.multikey] = temporary.authority
    }

    // MARK: Keys and choices

    /// A new key drawn from the seeded generator, so a seed replays the same keys.
    func newKey() throws -> String {
        let seedBytes = (0..<4).flatMap { _ in StateKey.number(random.next()) }
        guard let key = Ed25519PrivateKey(seed: seedBytes) else { throw Stop(description: "no key from a 32-byte seed") }
        privateKeys[key.publicKey.multikey] = key
        return key.publicKey.multikey
    }

    func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
    func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &random)] }
    func amount(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &random) }

    func organisation(ofBeneficiary beneficiary: String) -> String { model.actors[beneficiary]?.organisation ?? "casa" }

    func staff(of organisation: String) -> String { pick(Self.staffOf[organisation] ?? [organisation]) }
    func otherOrganisation(than organisation: String) -> String { organisation == "casa" ? "hub" : "casa" }

    /// The intended signer with one of its active keys, or now and then a faulty signer: a revoked key, a key
    /// nobody owns, an auditor, an unknown actor or someone else.
    func signed(by intended: String, _ event: ModelEvent, faultPercent: Int = 8) throws -> CircuitModel.Submission {
        counter += 1
        // Now and then an id already used: refused (`id_conflict`) if it was recorded, free if it was refused.
        let id = faultPercent > 0 && chance(2) && !submittedIDs.isEmpty ? pick(submittedIDs) : "evt-\(counter)"
        var signer = intended
        var key = pick(model.actors[intended]?.activeKeys ?? [temporary.authority.publicKey.multikey])
        if chance(faultPercent) {
            switch Int.random(in: 0..<5, using: &random) {
            case 0:
                let revoked = (model.actors[intended]?.keys ?? [:]).filter { !$0.value }.map(\.key).sorted()
                key = revoked.isEmpty ? try newKey() : pick(revoked)
            case 1: key = try newKey()
            case 2: signer = "audit"; key = pick(model.actors["audit"]?.activeKeys ?? [key])
            case 3: signer = "nobody"; key = try newKey()
            default:
                signer = pick(["city", "casa", "op-casa", "op-hub", "shop-food", "ben-0"])
                key = pick(model.actors[signer]?.activeKeys ?? [key])
            }
        }
        return CircuitModel.Submission(id: id, signer: signer, key: key, event: event)
    }

    // MARK: Submitting

    var now: Int64 { clock.now() }
    var month: String { String(Timestamp.format(millisecondsSince1970: clock.now()).prefix(7)) }

    /// Appends the batch to the ledger in one commit, runs it through the model, and compares both.
    func submit(_ batch: [CircuitModel.Submission], expectAccepted: Bool = false) throws {
        let events = try batch.map(signedEvent)
        let results = try ledger.append(events)
        var touchedPayments: [String] = []
        for (submission, result) in zip(batch, results) {
            submittedIDs.append(submission.id)
            let content = "\(submission.signer) \(submission.key) \(submission.event)"
            var expectedSequence = model.nextSequence
            let expected: CircuitModel.Outcome
            if let earlier = recorded[submission.id], earlier.content == content {
                // An identical resubmission (DESIGN.md, Formats): the first receipt, nothing new.
                expected = .accepted
                expectedSequence = earlier.sequence
            } else {
                expected = model.submit(submission, now: now, month: month)
                if expected == .accepted { recorded[submission.id] = (content, expectedSequence) }
            }
            let actual: CircuitModel.Outcome
            var detail = ""
            switch result {
            case .success(let receipt):
                actual = .accepted
                if receipt.sequenceNumber != expectedSequence {
                    try fail("\(submission) was recorded at seq \(receipt.sequenceNumber), the model expected \(expectedSequence)")
                }
            case .failure(let error):
                actual = .refused(error.code.name)
                detail = " (\(error.message))"
            }
            journal.append("step \(step) at \(Timestamp.format(millisecondsSince1970: now)): \(submission) -> \(actual)\(detail)")
            if journal.count > 12 { journal.removeFirst() }
            if actual != expected {
                try fail("\(submission): the ledger \(actual)\(detail), the model \(expected)")
            }
            if expectAccepted && actual != .accepted { try fail("set-up event \(submission) was \(actual)\(detail)") }
            switch actual {
            case .accepted: acceptedCount += 1
            case .refused(let code): refusalCounts[code, default: 0] += 1
            }
            switch submission.event {
            case .pay: paymentIDs.append(submission.id); touchedPayments.append(submission.id)
            case .refund(let payment, _): touchedPayments.append(payment)
            case .settle: settlementIDs.append(submission.id)
            default: break
            }
        }
        try compareProjections(payments: touchedPayments)
    }

    func fail(_ message: String) throws -> Never {
        let text = "seed \(seed), step \(step): \(message)\nlast submissions:\n" + journal.joined(separator: "\n")
        Issue.record(Comment(rawValue: text))
        throw Stop(description: text)
    }

    /// The money projections the model predicts, read from the ledger's state.
    func compareProjections(payments: [String]) throws {
        let model = model
        let month = month
        var mismatches: [String] = []
        try ledger.reader.withState { (state) throws(LedgerError) in
            var stored: [String: Int64] = [:]
            for (key, value) in try state.entries(.balances, prefix: [], limit: 10_000) {
                stored[String(decoding: key, as: UTF8.self)] = Account.decode(value) ?? Int64.min
            }
            for account in Set(stored.keys).union(model.balances.keys).sorted() where (stored[account] ?? 0) != model.balance(account) {
                mismatches.append("balance of \(account): ledger \(stored[account] ?? 0), model \(model.balance(account))")
            }
            if stored.values.reduce(0, +) != 0 { mismatches.append("the ledger's accounts sum to \(stored.values.reduce(0, +))") }
            for beneficiary in Self.beneficiaries {
                let ledgerLots = try state.lots(of: beneficiary).map { "\($0.id):\($0.category):\($0.amount):\($0.remaining):\($0.expiresAt)" }
                let modelLots = model.liveLots(of: beneficiary).map {
                    "\($0.id):\($0.category):\($0.amount):\($0.remaining):\(Timestamp.format(millisecondsSince1970: $0.expiresAt))"
                }
                if ledgerLots != modelLots { mismatches.append("live lots of \(beneficiary): ledger \(ledgerLots), model \(modelLots)") }
                let converted = try state.value(.conversions, StateKey.make(beneficiary, month)).flatMap { StateKey.decodeNumber($0) }.map { Int64($0) } ?? 0
                let expected = model.conversions[beneficiary + "|" + month] ?? 0
                if converted != expected { mismatches.append("conversions of \(beneficiary) in \(month): ledger \(converted), model \(expected)") }
            }
            for payment in payments {
                let json = try state.json(.payments, payment)
                guard let expected = model.payments[payment] else {
                    if json != nil { mismatches.append("payment \(payment) is stored, the model has none") }
                    continue
                }
                let debits = (json?["debits"]?.arrayValue ?? []).map { debit in
                    "\(debit["lot"]?.integerValue ?? -1):\(debit["amount"]?.integerValue ?? -1):\(debit["refunded"]?.integerValue ?? -1)"
                }
                let expectedDebits = expected.debits.map { "\($0.lot):\($0.amount):\($0.refunded)" }
                if json?["refunded"]?.integerValue != expected.refunded || json?["amount"]?.integerValue != expected.amount || debits != expectedDebits {
                    mismatches.append("payment \(payment): ledger \(json.map { String(describing: $0) } ?? "none"), model refunded \(expected.refunded) of \(expected.amount), debits \(expectedDebits)")
                }
            }
        }
        if !mismatches.isEmpty { try fail(mismatches.joined(separator: "\n")) }
    }

    func finalComparison() throws {
        let model = model
        var mismatches: [String] = []
        try ledger.reader.withState { (state) throws(LedgerError) in
            for (id, settlement) in model.settlements {
                let json = try state.json(.settlements, id)
                if json?["status"]?.stringValue != (settlement.paid ? "paid" : "requested") || json?["amount"]?.integerValue != settlement.amount {
                    mismatches.append("settlement \(id): ledger \(json.map { String(describing: $0) } ?? "none"), model \(settlement)")
                }
            }
            for (id, badge) in model.badges {
                let json = try state.json(.badges, id)
                if json?["converted"] != .bool(badge.converted) || json?["status"]?.stringValue != (badge.revoked ? "revoked" : "issued") || json?["credits"]?.integerValue != badge.credits {
                    mismatches.append("badge \(id): ledger \(json.map { String(describing: $0) } ?? "none"), model \(badge)")
                }
            }
            for (key, total) in model.conversions {
                let parts = key.split(separator: "|").map(String.init)
                let stored = try state.value(.conversions, StateKey.make(parts[0], parts[1])).flatMap { StateKey.decodeNumber($0) }.map { Int64($0) }
                if stored != total { mismatches.append("conversions \(key): ledger \(stored.map(String.init) ?? "none"), model \(total)") }
            }
            for (beneficiary, nonces) in noncesSeen {
                for nonce in Set(nonces) {
                    let stored = try state.value(.nonces, StateKey.make(beneficiary, nonce)) != nil
                    if stored != model.usedNonces.contains(beneficiary + "|" + nonce) { mismatches.append("nonce \(nonce) of \(beneficiary): stored \(stored)") }
                }
            }
        }
        try compareProjections(payments: paymentIDs)
        if !mismatches.isEmpty { try fail(mismatches.joined(separator: "\n")) }
        // And the live projections equal a rebuild from the log.
        let report = try LedgerReplay.run(ledger.reader, compareProjections: true)
        #expect(report.recordCount == (try ledger.reader.size()), "seed \(seed)")
    }

    // MARK: The event as the ledger reads it

    func signedEvent(_ submission: CircuitModel.Submission) throws -> VerifiedEvent {
        guard let key = privateKeys[submission.key] else { throw Stop(description: "no private key for \(submission.key)") }
        let body: [String: JSONValue]
        func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
        switch submission.event {
        case .register(let actor, let role, let organisation, let keys):
            var members: [String: JSONValue] = ["actor": .string(actor), "role": .string(role), "name": .string(actor), "keys": strings(keys)]
            if let organisation { members["organisation"] = .string(organisation) }
            body = members
        case .publishOpportunity(let opportunity):
            body = ["opportunity": .string(opportunity), "title": "Orto", "description": "Lavori nell'orto", "category": "civic_utility", "district": "centro"]
        case .defineBadgeClass(let badgeClass, let credits):
            body = ["badge_class": .string(badgeClass), "name": "Custode", "description": "Ha curato l'orto", "criteria": "12 ore", "credits": .integer(credits)]
        case .referCase(let caseID, let beneficiary, let to):
            body = [
                "case": .string(caseID), "beneficiary": .string(beneficiary), "household": "hh-1", "to": .string(to),
                "sealed": ["alg": "xchacha20poly1305", "nonce": .string(Base64.encode([UInt8](repeating: 7, count: 24))), "ciphertext": .string(Base64.encode([UInt8](repeating: 9, count: 32)))],
            ]
        case .openCase(let caseID):
            body = ["case": .string(caseID)]
        case .funded(let amount):
            body = ["amount": .integer(amount), "reference": "Delibera"]
        case .policy(let rate, let cap, let validityDays, let categories):
            body = ["conversion_rate_cents_per_credit": .integer(rate), "monthly_conversion_cap_cents": .integer(cap), "lot_validity_days": .integer(validityDays), "categories": strings(categories)]
        case .enrol(let merchant, let categories):
            body = ["merchant": .string(merchant), "categories": strings(categories), "district": "centro"]
        case .updateMerchant(let merchant, let categories):
            body = ["merchant": .string(merchant), "categories": strings(categories)]
        case .suspendMerchant(let merchant):
            body = ["merchant": .string(merchant), "reason": "Convenzione scaduta"]
        case .dote(let beneficiary, let category, let amount):
            body = ["beneficiary": .string(beneficiary), "category": .string(category), "amount": .integer(amount)]
        case .activation(let activation, let caseID, let opportunity):
            body = ["activation": .string(activation), "case": .string(caseID), "opportunity": .string(opportunity), "hours": 4, "date": "2026-11-16"]
        case .issueBadge(let badge, let badgeClass, let beneficiary, let activations):
            body = ["badge": .string(badge), "badge_class": .string(badgeClass), "beneficiary": .string(beneficiary), "activations": strings(activations)]
        case .revokeBadge(let badge):
            body = ["badge": .string(badge), "reason": "Issued by mistake"]
        case .convert(let beneficiary, let badges):
            body = ["beneficiary": .string(beneficiary), "badges": strings(badges)]
        case .pay(let model):
            let authorisation = PaymentAuthorisation(
                origin: model.origin, beneficiary: model.beneficiary, merchant: model.merchant, amount: model.amount,
                expiresAt: Timestamp.format(millisecondsSince1970: model.expiresAt), nonce: model.nonce, key: model.key)
            guard let wallet = privateKeys[model.key] else { throw Stop(description: "no private key for the wallet key \(model.key)") }
            body = ["authorisation": authorisation.json, "signature": .string(Base64.encode(PaymentAuthorisation.sign(authorisation, with: wallet)))]
        case .refund(let payment, let amount):
            body = ["payment": .string(payment), "amount": .integer(amount)]
        case .settle(let amount):
            body = ["amount": .integer(amount)]
        case .paySettlement(let settlement):
            body = ["settlement": .string(settlement), "reference": "Bonifico"]
        case .expire(let beneficiary, let lot):
            body = ["beneficiary": .string(beneficiary), "lot": .integer(lot)]
        case .addKey(let target, let key):
            body = ["actor": .string(target), "key": .string(key)]
        case .revokeKey(let target, let key):
            body = ["actor": .string(target), "key": .string(key)]
        case .suspend(let target):
            body = ["actor": .string(target), "reason": "Left"]
        }
        return try temporary.event(submission.event.type, by: submission.signer, key: key, JSONObject(body), id: submission.id)
    }

    // MARK: The run

    func setUp() throws {
        func register(_ actor: String, _ role: String, by signer: String, organisation: String? = nil) throws {
            let key = try newKey()
            try submit([try signed(by: signer, .register(actor: actor, role: role, organisation: organisation, keys: [key]), faultPercent: 0)], expectAccepted: true)
        }
        for organisation in Self.organisations { try register(organisation, "organisation", by: "city") }
        try register("op-casa", "staff", by: "casa", organisation: "casa")
        try register("op-casa-2", "staff", by: "casa", organisation: "casa")
        try register("op-hub", "staff", by: "hub", organisation: "hub")
        for merchant in Self.merchants { try register(merchant, "merchant", by: "city") }
        try register("audit", "auditor", by: "city")
        for (index, beneficiary) in Self.beneficiaries.enumerated() {
            let organisation = index < 2 ? "casa" : "hub"
            try register(beneficiary, "beneficiary", by: index < 2 ? "op-casa" : "op-hub", organisation: organisation)
        }
        var setUp: [(String, ModelEvent)] = [
            ("city", .policy(rate: 10, cap: 1_500, validityDays: 30, categories: ["food", "books", "school", "rent"])),
            ("city", .funded(300_000)),
            ("city", .enrol("shop-food", categories: ["food"])),
            ("city", .enrol("shop-books", categories: ["books", "school"])),
            ("city", .enrol("shop-gone", categories: ["food", "books"])),
            ("op-casa", .publishOpportunity("garden")),
            ("op-casa", .defineBadgeClass("casa-class", credits: 30)),
            ("casa", .defineBadgeClass("casa-big", credits: 400)),
            ("op-hub", .defineBadgeClass("hub-class", credits: 45)),
        ]
        for beneficiary in Self.beneficiaries {
            let organisation = organisation(ofBeneficiary: beneficiary)
            setUp.append((staff(of: organisation), .referCase("case-\(beneficiary)", beneficiary: beneficiary, to: organisation)))
            setUp.append((staff(of: organisation), .openCase("case-\(beneficiary)")))
            setUp.append((staff(of: organisation), .dote(beneficiary: beneficiary, category: "food", amount: 20_000)))
            setUp.append((staff(of: organisation), .dote(beneficiary: beneficiary, category: "books", amount: 10_000)))
        }
        for (signer, event) in setUp { try submit([try signed(by: signer, event, faultPercent: 0)], expectAccepted: true) }
    }

    func randomSteps(_ count: Int) throws {
        for index in 0..<count {
            step = index
            // Time passes now and then: minutes to days, and sometimes past a month and every lot's expiry.
            if chance(15) { clock.set(now + amount(60_000...(CircuitModel.dayMilliseconds / 2))) }
            if chance(1) { clock.set(now + amount((20 * CircuitModel.dayMilliseconds)...(40 * CircuitModel.dayMilliseconds))) }
            // And now and then to a boundary: the very millisecond a live lot expires (or the one before), or a
            // new month's first millisecond (or the last of this one), where `≤` against `<` and caps tell.
            if chance(8) { moveToBoundary() }
            // Mostly one event per commit; sometimes a batch, whose events see each other and share recorded_at.
            let size = chance(15) ? Int.random(in: 2...3, using: &random) : 1
            var batch: [CircuitModel.Submission] = []
            for _ in 0..<size { batch.append(try randomSubmission()) }
            try submit(batch)
        }
    }

    /// To the first millisecond of the next calendar month.
    func moveToNextMonth() {
        let parts = month.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 2 else { return }
        let (year, next) = parts[1] == 12 ? (parts[0] + 1, 1) : (parts[0], parts[1] + 1)
        if let start = Timestamp.millisecondsSince1970("\(year)-\(next < 10 ? "0" : "")\(next)-01T00:00:00Z") { clock.set(start) }
    }

    func moveToBoundary() {
        let expiries = Self.beneficiaries.flatMap { model.liveLots(of: $0).map(\.expiresAt) }.filter { $0 > now }.sorted()
        // Only a boundary close ahead, so that time does not run away from the lots.
        let horizon = now + 3 * CircuitModel.dayMilliseconds
        if chance(70), let expiry = expiries.first {
            guard expiry <= horizon else { return }
            clock.set(chance(70) ? expiry : max(now, expiry - 1))
        } else {
            let here = now
            moveToNextMonth()
            let start = now
            clock.set(here)
            guard start <= horizon else { return }
            clock.set(chance(60) ? start : max(now, start - 1))
        }
    }

    func randomSubmission() throws -> CircuitModel.Submission {
        let roll = Int.random(in: 0..<1000, using: &random)
        let beneficiary = chance(4) ? pick(["ghost", "shop-food"]) : pick(Self.beneficiaries)
        let home = organisation(ofBeneficiary: beneficiary)
        switch roll {
        case 0..<25:
            let value: Int64 = switch Int.random(in: 0..<20, using: &random) {
            case 0: 0
            case 1: CircuitModel.maximumAmount + 1
            default: amount(1...100_000)
            }
            return try signed(by: "city", .funded(value))
        case 25..<30:
            // Food and books stay, so that the merchants enrolled for them keep meaning something.
            var categories = ["food", "books"] + Self.categoryPool.dropFirst(2).filter { _ in chance(50) }
            if chance(5) { categories.append("general") }
            return try signed(by: "city", .policy(rate: amount(1...50), cap: amount(1000...10_000), validityDays: amount(1...60), categories: categories))
        case 30..<40:
            let merchant = chance(5) ? "ben-0" : pick(Self.merchants)
            return try signed(by: "city", .enrol(merchant, categories: randomCategories()))
        case 40..<50:
            let merchant = pick(Self.merchants)
            let categories = chance(20) ? (model.enrolments[merchant]?.categories ?? ["food"]) : randomCategories()
            return try signed(by: "city", .updateMerchant(merchant, categories: categories))
        case 50..<52:
            return try signed(by: "city", .suspendMerchant(pick(Self.merchants)))
        case 52..<290:
            let category = chance(80) ? pick(model.policy?.categories ?? ["food"]) : pick(Self.categoryPool + ["general"])
            let value: Int64 = switch Int.random(in: 0..<20, using: &random) {
            case 0: 0
            case 1: -5
            case 2: amount(200_000...600_000)
            case 3: CircuitModel.maximumAmount + (chance(50) ? 0 : 1)
            default: amount(1...8000)
            }
            let signer = chance(85) ? staff(of: home) : staff(of: otherOrganisation(than: home))
            return try signed(by: signer, .dote(beneficiary: beneficiary, category: category, amount: value))
        case 290..<340:
            counter += 1
            let caseID = chance(5) ? "case-none" : "case-\(beneficiary)"
            let signer = chance(90) ? staff(of: home) : staff(of: otherOrganisation(than: home))
            return try signed(by: signer, .activation("act-\(counter)", caseID: caseID, opportunity: chance(95) ? "garden" : "orchard"))
        case 340..<390:
            let badgeClass = chance(90) ? (home == "casa" ? pick(["casa-class", "casa-class", "casa-big"]) : "hub-class") : pick(["casa-class", "hub-class", "no-class"])
            let mine = model.activations.filter { $0.value.beneficiary == beneficiary }.map(\.key).sorted()
            let unused = mine.filter { model.activations[$0]?.badge == nil }
            var evidence = Array(unused.prefix(Int.random(in: 1...2, using: &random)))
            if evidence.isEmpty || chance(10) { evidence.append(mine.isEmpty ? "act-missing" : pick(mine)) }
            if chance(5) { evidence.append(pick(model.activations.keys.sorted() + ["act-missing"])) }
            counter += 1
            let issuer = badgeClass == "hub-class" ? "hub" : "casa"
            return try signed(by: chance(90) ? staff(of: issuer) : staff(of: otherOrganisation(than: issuer)), .issueBadge("badge-\(counter)", badgeClass: badgeClass, beneficiary: beneficiary, activations: uniqued(evidence)))
        case 390..<400:
            let badge = pick(model.badges.keys.sorted() + ["badge-missing"])
            let issuer = model.badges[badge]?.issuer ?? "casa"
            return try signed(by: chance(85) ? staff(of: issuer) : staff(of: otherOrganisation(than: issuer)), .revokeBadge(badge))
        case 400..<480:
            let convertible = model.badges.filter { $0.value.beneficiary == beneficiary && !$0.value.converted && !$0.value.revoked }.map(\.key).sorted()
            // Some badges, or now and then all of them at once, which the monthly cap is likely to refuse.
            var badges = Array(convertible.shuffled(using: &random).prefix(chance(15) ? 64 : Int.random(in: 1...3, using: &random)))
            if badges.isEmpty || chance(8) { badges.append(pick(model.badges.keys.sorted() + ["badge-missing"])) }
            return try signed(by: chance(90) ? staff(of: home) : staff(of: otherOrganisation(than: home)), .convert(beneficiary: beneficiary, badges: uniqued(badges)))
        case 480..<740:
            return try randomPayment(beneficiary: beneficiary)
        case 740..<830:
            // Mostly a recorded payment; now and then a refused one, an unknown id or another event's.
            let recordedIDs = model.payments.keys.sorted()
            let payment = chance(85) && !recordedIDs.isEmpty ? pick(recordedIDs) : pick(paymentIDs + ["pay-missing", "evt-1"])
            let recorded = model.payments[payment]
            let merchant = chance(85) ? (recorded?.merchant ?? pick(Self.merchants)) : pick(Self.merchants)
            let left = (recorded?.amount ?? 100) - (recorded?.refunded ?? 0)
            let value: Int64 = switch Int.random(in: 0..<20, using: &random) {
            case 0: 0
            case 1...3: left + amount(1...500)
            case 4, 5: recorded?.amount ?? 100
            default: amount(1...max(1, left))
            }
            return try signed(by: merchant, .refund(payment: payment, amount: value))
        case 830..<880:
            let merchant = pick(Self.merchants)
            let held = model.balance(CircuitModel.account(merchant: merchant))
            let value: Int64 = switch Int.random(in: 0..<10, using: &random) {
            case 0: chance(50) ? 0 : -1
            case 1, 2: held + amount(1...1000)
            default: amount(1...max(1, held))
            }
            return try signed(by: merchant, .settle(value))
        case 880..<905:
            let settlement = chance(85) && !settlementIDs.isEmpty ? pick(settlementIDs) : pick(["settle-missing", "evt-2"])
            return try signed(by: "city", .paySettlement(settlement))
        case 905..<960:
            let target = chance(90) ? beneficiary : pick(Self.beneficiaries)
            let all = (model.lots[target] ?? [:]).values.sorted { $0.id < $1.id }
            let live = all.filter { $0.remaining > 0 }
            let lot: Int64 = switch Int.random(in: 0..<20, using: &random) {
            case 0...11 where !live.isEmpty: Int64(pick(live).id)
            case 12...14 where !all.isEmpty: Int64(pick(all).id)
            case 15, 16: Int64(pick(model.lots.values.flatMap(\.keys).sorted() + [12])) // maybe another beneficiary's
            case 17: -1
            default: 9999
            }
            return try signed(by: "city", .expire(beneficiary: target, lot: lot))
        case 960..<975:
            let target = pick(Self.beneficiaries + ["op-casa-2", "op-hub"])
            let signer = pick([target, target, staff(of: organisation(ofBeneficiary: target)), "op-hub"])
            let existing = model.keyOwners.keys.sorted()
            return try signed(by: signer, .addKey(target: target, key: chance(85) ? try newKey() : pick(existing)))
        case 975..<995:
            let target = pick(Self.beneficiaries + ["op-casa-2", "op-hub"])
            let signer = pick([target, staff(of: organisation(ofBeneficiary: target)), "op-hub", "city"])
            let own = (model.actors[target]?.keys ?? [:]).keys.sorted()
            let key = chance(85) && !own.isEmpty ? pick(own) : pick(model.keyOwners.keys.sorted())
            return try signed(by: signer, .revokeKey(target: target, key: key))
        default:
            // The hub (half the beneficiaries' organisation) only late in the run, so that its suspension's effects
            // are seen without ending the run's money for half its people.
            let target = pick(["ben-1", "ben-3", "op-casa-2", "shop-gone", step > 700 ? "hub" : "casa", "city", "shop-late", "audit"])
            return try signed(by: pick(["city", "casa", "op-casa", "hub", "op-hub"]), .suspend(target))
        }
    }

    func randomPayment(beneficiary: String) throws -> CircuitModel.Submission {
        // Mostly a merchant that may redeem; now and then one that is not (or no longer) enrolled.
        let open = Self.merchants.filter { model.enrolments[$0]?.suspended == false }
        let merchant = chance(80) && !open.isEmpty ? pick(open) : pick(Self.merchants)
        let named = chance(95) ? merchant : pick(Self.merchants)
        let held = model.balance(CircuitModel.account(beneficiary: beneficiary))
        let value = chance(70) ? amount(1...max(1, held)) : amount(1...20_000)
        let own = model.actors[beneficiary]?.keys ?? [:]
        let active = own.filter(\.value).map(\.key).sorted(), revoked = own.filter { !$0.value }.map(\.key).sorted()
        let key: String = switch Int.random(in: 0..<100, using: &random) {
        case 0..<8 where !revoked.isEmpty: pick(revoked)
        case 8..<15: pick(model.actors.filter { $0.value.role == "beneficiary" }.flatMap(\.value.activeKeys).sorted())
        default: active.isEmpty ? pick(model.keyOwners.keys.sorted()) : pick(active)
        }
        let expiresAt: Int64 = switch Int.random(in: 0..<20, using: &random) {
        case 0: now
        case 1: now - amount(1...CircuitModel.dayMilliseconds)
        default: now + amount(1...3_600_000)
        }
        var nonces = noncesSeen[beneficiary] ?? []
        let nonce: String
        let used = nonces.filter { model.usedNonces.contains(beneficiary + "|" + $0) }
        if chance(10) && !used.isEmpty {
            nonce = pick(used)
        } else if chance(5) && !nonces.isEmpty {
            nonce = pick(nonces)
        } else {
            counter += 1
            nonce = "n-\(counter)"
            nonces.append(nonce)
        }
        noncesSeen[beneficiary] = nonces
        let authorisation = ModelEvent.Authorisation(
            origin: chance(3) ? "other.example/ledger" : CircuitModel.origin, beneficiary: beneficiary, merchant: named,
            amount: value, expiresAt: expiresAt, nonce: nonce, key: key)
        var submission = try signed(by: merchant, .pay(authorisation), faultPercent: 5)
        // The event id is the payment id (section 8.2).
        submission.id = "pay-" + submission.id
        return submission
    }

    func randomCategories() -> [String] {
        var categories = Self.categoryPool.filter { _ in chance(35) }
        if categories.isEmpty { categories = [pick(Self.categoryPool)] }
        return categories
    }

    func uniqued(_ values: [String]) -> [String] {
        var seen: Set<String> = []
        return values.filter { seen.insert($0).inserted }
    }
}
