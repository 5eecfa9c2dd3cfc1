import CircuitoCore
import CircuitoCrypto
import CircuitoTestSupport
import Foundation
import Testing

/// A small circuit: the city, one organisation with staff, two merchants, one beneficiary with a wallet, a policy
/// and a funded programme.
struct Circuit {
    var harness: RuleHarness
    let organisation: Ed25519PrivateKey
    let staff: Ed25519PrivateKey
    let wallet: Ed25519PrivateKey
    let grocer: Ed25519PrivateKey
    let bookshop: Ed25519PrivateKey
    var authority: Ed25519PrivateKey { harness.authority }
    var nonceCounter = 0

    static let categories: [JSONValue] = ["rent", "food", "school", "books", "transport", "eye_care"]

    init(fund: Int64 = 1_000_000) throws {
        harness = try RuleHarness()
        let organisationKey = Ed25519PrivateKey()
        try harness.accept(try harness.factory.make("actor.registered", by: "city", key: harness.authority, [
            "actor": "casa", "role": "organisation", "name": "Casa del Quartiere", "district": "san_salvario",
            "keys": .array([.string(organisationKey.publicKey.multikey)]),
        ]))
        organisation = organisationKey
        staff = try harness.register("op", role: "staff", organisation: "casa")
        wallet = try harness.register("ben", role: "beneficiary", by: "op", key: staff, organisation: "casa")
        grocer = try harness.register("grocer", role: "merchant")
        bookshop = try harness.register("bookshop", role: "merchant")
        try harness.accept(try harness.factory.make("policy.updated", by: "city", key: harness.authority, [
            "conversion_rate_cents_per_credit": 100, "monthly_conversion_cap_cents": 50_000, "lot_validity_days": 30,
            "categories": .array(Self.categories),
        ]))
        try harness.accept(try harness.factory.make("program.funded", by: "city", key: harness.authority, ["amount": .integer(fund), "reference": "Delibera 2026/1"]))
        try harness.accept(try harness.factory.make("merchant.enrolled", by: "city", key: harness.authority, ["merchant": "grocer", "categories": ["food"], "district": "san_salvario"]))
        try harness.accept(try harness.factory.make("merchant.enrolled", by: "city", key: harness.authority, ["merchant": "bookshop", "categories": ["books", "school"], "district": "centro"]))
    }

    mutating func submit(_ type: String, by actor: String, key: Ed25519PrivateKey, _ body: JSONObject, id: String? = nil) throws -> LedgerError.Code? {
        try harness.submit(type, by: actor, key: key, body, id: id)
    }

    mutating func byStaff(_ type: String, _ body: JSONObject, id: String? = nil) throws -> LedgerError.Code? {
        try submit(type, by: "op", key: staff, body, id: id)
    }

    mutating func byCity(_ type: String, _ body: JSONObject) throws -> LedgerError.Code? {
        try submit(type, by: "city", key: authority, body)
    }

    func balance(_ account: String) throws -> Int64 { try harness.state.balance(account) }

    /// A payment body with a wallet-signed authorisation.
    mutating func paymentBody(
        amount: Int64, merchant: String = "grocer", expiresAt: String? = nil, nonce: String? = nil, wallet signer: Ed25519PrivateKey? = nil,
        beneficiary: String = "ben", origin: String = "test.example/ledger"
    ) -> JSONObject {
        nonceCounter += 1
        // By default valid for an hour from the ledger's present.
        let expiresAt = expiresAt ?? Timestamp.format(millisecondsSince1970: (Timestamp.millisecondsSince1970(harness.now) ?? 0) + 3_600_000)
        let key = signer ?? wallet
        let authorisation = PaymentAuthorisation(origin: origin, beneficiary: beneficiary, merchant: merchant, amount: amount, expiresAt: expiresAt, nonce: nonce ?? "n-\(nonceCounter)", key: key.publicKey.multikey)
        return ["authorisation": authorisation.json, "signature": .string(Base64.encode(PaymentAuthorisation.sign(authorisation, with: key)))]
    }

    mutating func pay(_ amount: Int64, at merchant: String = "grocer", id: String? = nil) throws -> LedgerError.Code? {
        let body = paymentBody(amount: amount, merchant: merchant)
        return try submit("payment.redeemed", by: merchant, key: merchant == "grocer" ? grocer : bookshop, body, id: id)
    }

    /// Sum of every balance: always zero in double entry.
    func totalOfAllAccounts() -> Int64 {
        (harness.state.tables[.balances] ?? [:]).values.reduce(0) { $0 + (Account.decode($1) ?? 0) }
    }

    /// Opens a case for "ben", records an activation and issues a badge; returns the badge id.
    mutating func earnBadge(_ badgeID: String, credits: Int64 = 5) throws -> String {
        if try harness.state.json(.cases, "case-ben") == nil {
            let sealed = SealedData.seal(["name": "Mario Rossi"], subject: "ben", key: SecretBox.newKey())
            #expect(try byStaff("case.referred", ["case": "case-ben", "beneficiary": "ben", "household": "hh-1", "to": "casa", "sealed": sealed]) == nil)
            #expect(try byStaff("case.opened", ["case": "case-ben"]) == nil)
            #expect(try byStaff("opportunity.published", ["opportunity": "garden", "title": "Community garden", "description": "Civic-utility work in the neighbourhood garden", "category": "civic_utility", "district": "san_salvario"]) == nil)
        }
        let classID = "class-\(credits)"
        if try harness.state.json(.badgeClasses, classID) == nil {
            #expect(try byStaff("badge_class.defined", ["badge_class": .string(classID), "name": "Garden keeper", "description": "Looked after the garden", "criteria": "10 hours of garden work", "credits": .integer(credits)]) == nil)
        }
        #expect(try byStaff("activation.recorded", ["activation": .string("act-\(badgeID)"), "case": "case-ben", "opportunity": "garden", "hours": 10, "date": "2026-11-20"]) == nil)
        #expect(try byStaff("badge.issued", ["badge": .string(badgeID), "badge_class": .string(classID), "beneficiary": "ben", "activations": .array([.string("act-\(badgeID)")])]) == nil)
        return badgeID
    }
}

@Suite("Circuit: money")
struct MoneyRuleTests {
    @Test("funding moves ToCoin from issuance to the fund; the sum of all accounts is zero")
    func funding() throws {
        var circuit = try Circuit(fund: 250_000)
        #expect(try circuit.balance(Account.fund) == 250_000)
        #expect(try circuit.balance(Account.issuance) == -250_000)
        #expect(circuit.totalOfAllAccounts() == 0)
        #expect(try circuit.byCity("program.funded", ["amount": 0, "reference": "x"]) == .invalidBody)
        #expect(try circuit.byCity("program.funded", ["amount": -5, "reference": "x"]) == .invalidBody)
        #expect(try circuit.byStaff("program.funded", ["amount": 5, "reference": "x"]) == .roleNotPermitted)
    }

    @Test("a dote is earmarked: spent only where its category is accepted")
    func earmarking() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "books", "amount": 3000]) == nil)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 3000)
        #expect(try circuit.pay(1000, at: "grocer") == .categoryNotAccepted)  // the grocer takes food, not books
        #expect(try circuit.pay(1000, at: "bookshop") == nil)
        #expect(try circuit.balance(Account.merchant("bookshop")) == 1000)
        // Holding exactly the amount, none of it spendable here: still the category, not the funds, that refuses.
        #expect(try circuit.pay(2000, at: "grocer") == .categoryNotAccepted)
        #expect(try circuit.pay(2001, at: "grocer") == .insufficientFunds)
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "jewellery", "amount": 10]) == .invalidBody)
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "grocer", "category": "food", "amount": 10]) == .unknownReference)
        #expect(circuit.totalOfAllAccounts() == 0)
    }

    @Test("the fund cannot go below zero")
    func fundBound() throws {
        var circuit = try Circuit(fund: 1000)
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1001]) == .insufficientFunds)
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == nil)
        #expect(try circuit.balance(Account.fund) == 0)
    }

    @Test("payments: exactly what is affordable succeeds, never a negative balance")
    func overspending() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == nil)
        var succeeded = 0
        for _ in 0..<5 { if try circuit.pay(300) == nil { succeeded += 1 } }
        #expect(succeeded == 3)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 100)
        #expect(try circuit.pay(100) == nil)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 0)
        #expect(try circuit.pay(1) == .insufficientFunds)
        #expect(circuit.totalOfAllAccounts() == 0)
    }

    @Test("lots are spent earliest expiry first; earmarked before general on the same expiry")
    func lotOrder() throws {
        var circuit = try Circuit()
        let badge = try circuit.earnBadge("b-1", credits: 5)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(badge)])]) == nil)  // general, 500
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 400]) == nil)  // same expiry day
        circuit.harness.now = "2026-11-25T10:00:00.000Z"
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 300]) == nil)  // later expiry
        #expect(try circuit.pay(600) == nil)
        let lots = try circuit.harness.state.lots(of: "ben")
        // First the food lot of the 22nd (400), then the general lot of the 22nd (200 of 500); the later food lot untouched.
        let remaining = Dictionary(uniqueKeysWithValues: lots.map { ("\($0.category)@\($0.expiresAt.prefix(10))", $0.remaining) })
        #expect(remaining["general@2026-12-22"] == 300)
        #expect(remaining["food@2026-12-25"] == 300)
        #expect(remaining["food@2026-12-22"] == nil)
    }

    @Test("expired lots cannot be spent and leave only through tocoin.expired, signed by the authority, after expiry")
    func expiry() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 700]) == nil)
        let lotID = try #require(try circuit.harness.state.lots(of: "ben").first?.id)
        #expect(try circuit.byCity("tocoin.expired", ["beneficiary": "ben", "lot": .integer(Int64(lotID))]) == .lotNotExpired)
        circuit.harness.now = "2026-12-22T10:00:00.000Z"  // 30 days later: expired
        #expect(try circuit.pay(100) == .insufficientFunds)
        #expect(try circuit.byStaff("tocoin.expired", ["beneficiary": "ben", "lot": .integer(Int64(lotID))]) == .roleNotPermitted)
        let fundBefore = try circuit.balance(Account.fund)
        #expect(try circuit.byCity("tocoin.expired", ["beneficiary": "ben", "lot": .integer(Int64(lotID))]) == nil)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 0)
        #expect(try circuit.balance(Account.fund) == fundBefore + 700)
        #expect(try circuit.byCity("tocoin.expired", ["beneficiary": "ben", "lot": .integer(Int64(lotID))]) == .unknownReference)
        #expect(circuit.totalOfAllAccounts() == 0)
    }

    @Test("conversion: the policy rate, each badge once, never a revoked badge, the monthly cap")
    func conversion() throws {
        var circuit = try Circuit()
        let first = try circuit.earnBadge("b-1", credits: 5)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(first)])]) == nil)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 500)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(first)])]) == .alreadyConverted)
        let revoked = try circuit.earnBadge("b-2", credits: 5)
        #expect(try circuit.byStaff("badge.revoked", ["badge": .string(revoked), "reason": "issued in error"]) == nil)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(revoked)])]) == .invalidState)
        // Cap 50,000 cents a month: 400 credits at 100 cents = 40,000 is fine, the next 200 credits are not.
        let big = try circuit.earnBadge("b-3", credits: 400)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(big)])]) == nil)
        let more = try circuit.earnBadge("b-4", credits: 200)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(more)])]) == .capExceeded)
        // Up to the cap exactly is within it (500 + 40,000 + 9,500 = 50,000 cents), one credit more is not.
        let toTheCap = try circuit.earnBadge("b-5", credits: 95)
        let pastTheCap = try circuit.earnBadge("b-6", credits: 1)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(toTheCap)])]) == nil)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(pastTheCap)])]) == .capExceeded)
        circuit.harness.now = "2026-12-01T09:00:00.000Z"  // a new month
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(more)])]) == nil)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 500 + 40_000 + 9_500 + 20_000)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": ["no-such-badge"]]) == .unknownReference)
        #expect(circuit.totalOfAllAccounts() == 0)
    }

    @Test("a conversion turns only the beneficiary's own badges into their ToCoin")
    func conversionOfAnothersBadge() throws {
        var circuit = try Circuit()
        let theirs = try circuit.earnBadge("b-ben", credits: 7)
        try circuit.harness.register("ann", role: "beneficiary", by: "op", key: circuit.staff, organisation: "casa")
        // Staff of the same organisation, who manage both people: ben's badge does not pay ann.
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ann", "badges": .array([.string(theirs)])]) == .invalidBody)
        #expect(try circuit.balance(Account.beneficiary("ann")) == 0)
        #expect(try circuit.harness.state.json(.badges, theirs)?.objectValue?["converted"] == false)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(theirs)])]) == nil)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 700)
    }

    @Test("money reaches a beneficiary only from their own organisation")
    func ownBeneficiaries() throws {
        var circuit = try Circuit()
        let other = try circuit.harness.register("other-org", role: "organisation")
        #expect(try circuit.submit("dote.granted", by: "other-org", key: other, ["beneficiary": "ben", "category": "food", "amount": 100]) == .roleNotPermitted)
        #expect(try circuit.submit("dote.granted", by: "casa", key: circuit.organisation, ["beneficiary": "ben", "category": "food", "amount": 100]) == nil)
        let badge = try circuit.earnBadge("b-own")
        #expect(try circuit.submit("credits.converted", by: "other-org", key: other, ["beneficiary": "ben", "badges": .array([.string(badge)])]) == .roleNotPermitted)
    }

    @Test("no conversion, dote or enrolment before a policy exists")
    func policyRequired() throws {
        var harness = try RuleHarness()
        let organisation = try harness.register("org", role: "organisation")
        try harness.register("ben", role: "beneficiary", by: "org", key: organisation, organisation: "org")
        try harness.register("shop", role: "merchant")
        #expect(try harness.submit("dote.granted", by: "org", key: organisation, ["beneficiary": "ben", "category": "food", "amount": 1]) == .policyMissing)
        #expect(try harness.submit("merchant.enrolled", by: "city", key: harness.authority, ["merchant": "shop", "categories": ["food"], "district": "x"]) == .policyMissing)
        #expect(try harness.submit("policy.updated", by: "city", key: harness.authority, ["conversion_rate_cents_per_credit": 1, "monthly_conversion_cap_cents": 1, "lot_validity_days": 1, "categories": ["general"]]) == .invalidBody)
        #expect(try harness.submit("policy.updated", by: "org", key: organisation, ["conversion_rate_cents_per_credit": 1, "monthly_conversion_cap_cents": 1, "lot_validity_days": 1, "categories": ["food"]]) == .roleNotPermitted)
    }

    @Test("payment authorisations: this ledger, the merchant named, the beneficiary's active key, before expiry, once")
    func authorisations() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 5000]) == nil)
        // For another ledger: the same wallet key, merchant id and nonce, signed for a ledger of another origin, are
        // refused here, and the nonce stays unused on this one.
        let elsewhere = circuit.paymentBody(amount: 100, nonce: "shared", origin: "other.example/ledger")
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, elsewhere) == .authorisationInvalid)
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, circuit.paymentBody(amount: 100, nonce: "shared")) == nil)
        // For another merchant.
        let forBookshop = circuit.paymentBody(amount: 100, merchant: "bookshop")
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, forBookshop) == .authorisationInvalid)
        // Signed by a key that is not the beneficiary's: the signature verifies, the key is not theirs.
        let stranger = circuit.paymentBody(amount: 100, wallet: Ed25519PrivateKey())
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, stranger) == .authorisationInvalid)
        // Expired.
        let expired = circuit.paymentBody(amount: 100, expiresAt: "2026-11-22T09:59:59Z")
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, expired) == .authorisationExpired)
        // It is valid until the millisecond it names, not at it.
        let expiringNow = circuit.paymentBody(amount: 100, expiresAt: circuit.harness.now)
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, expiringNow) == .authorisationExpired)
        let expiringNext = circuit.paymentBody(amount: 100, expiresAt: "2026-11-22T10:00:00.001Z")
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, expiringNext) == nil)
        // A nonce of 1 to 64 bytes.
        let longestNonce = String(repeating: "n", count: PaymentAuthorisation.maximumNonceBytes)
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, circuit.paymentBody(amount: 100, nonce: longestNonce)) == nil)
        let tooLong = circuit.paymentBody(amount: 100, nonce: longestNonce + "n")
        let tooLongAuthorisation = try #require(tooLong["authorisation"]?.objectValue)
        let tooLongRefusal = #expect(throws: LedgerError.self) { try PaymentAuthorisation(json: tooLongAuthorisation) }
        #expect(tooLongRefusal?.code == .invalidBody)
        // Once.
        let once = circuit.paymentBody(amount: 100, nonce: "once")
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, once) == nil)
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, once) == .nonceUsed)
        // A changed amount breaks the wallet's signature: refused before the rulebook, when the event is verified.
        var tampered = circuit.paymentBody(amount: 100)
        var authorisation = try #require(tampered["authorisation"]?.objectValue)
        authorisation["amount"] = 4000
        tampered["authorisation"] = .object(authorisation)
        let event = try Event(id: "tampered", type: "payment.redeemed", actor: "grocer", key: circuit.grocer.publicKey.multikey, timestamp: "2026-11-22T10:00:00Z", body: tampered)
        #expect(throws: LedgerError.self) { try SignedEvent(signing: event, with: circuit.grocer).verified() }
        // Only merchants redeem.
        #expect(try circuit.byStaff("payment.redeemed", circuit.paymentBody(amount: 1)) == .roleNotPermitted)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 4600)
    }

    @Test("a till that signs a redeemed authorisation again is told the seq of the payment that used it, and an expired one what to do")
    func refusalsTellTheTill() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 5000]) == nil)
        let body = circuit.paymentBody(amount: 100, nonce: "till-1")
        let paidAt = circuit.harness.size
        #expect(try circuit.submit("payment.redeemed", by: "grocer", key: circuit.grocer, body, id: "pay-1") == nil)
        // The answer was lost; the till signs the same authorisation again, under a new event id.
        let again = try circuit.harness.factory.make("payment.redeemed", by: "grocer", key: circuit.grocer, body, id: "pay-1-again")
        let refusal = #expect(throws: LedgerError.self) { try circuit.harness.accept(again) }
        #expect(refusal?.code == .nonceUsed)
        #expect(refusal?.message.contains("by the payment recorded at seq \(paidAt)") == true)
        let expired = try circuit.harness.factory.make(
            "payment.redeemed", by: "grocer", key: circuit.grocer, circuit.paymentBody(amount: 100, expiresAt: "2026-11-22T09:59:59Z"))
        let expiredRefusal = #expect(throws: LedgerError.self) { try circuit.harness.accept(expired) }
        #expect(expiredRefusal?.code == .authorisationExpired)
        #expect(expiredRefusal?.message.contains("ask the beneficiary's wallet for a new one") == true)
    }

    @Test("a suspended merchant, or one not enrolled, cannot redeem")
    func merchantStanding() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 5000]) == nil)
        let walkIn = try circuit.harness.register("walk-in", role: "merchant")
        #expect(try circuit.submit("payment.redeemed", by: "walk-in", key: walkIn, circuit.paymentBody(amount: 10, merchant: "walk-in")) == .merchantNotEnrolled)
        #expect(try circuit.byCity("merchant.suspended", ["merchant": "grocer", "reason": "closed"]) == nil)
        #expect(try circuit.pay(10) == .merchantNotEnrolled)
        #expect(try circuit.byCity("merchant.enrolled", ["merchant": "bookshop", "categories": ["books"], "district": "x"]) == .alreadyExists)
        #expect(try circuit.byCity("merchant.updated", ["merchant": "bookshop", "categories": ["books", "nonsense"]]) == .invalidBody)
        #expect(try circuit.byCity("merchant.updated", ["merchant": "bookshop", "categories": ["food"]]) == nil)
        #expect(try circuit.pay(10, at: "bookshop") == nil)
    }

    @Test("refunds never exceed what is left of the payment, go back into the same lots, and only by the merchant paid")
    func refunds() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == nil)
        #expect(try circuit.pay(1000, id: "pay-1") == nil)
        #expect(try circuit.harness.state.lots(of: "ben").isEmpty)
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-1", "amount": 1001]) == .refundExceedsPayment)
        #expect(try circuit.submit("payment.refunded", by: "bookshop", key: circuit.bookshop, ["payment": "pay-1", "amount": 1]) == .roleNotPermitted)
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-1", "amount": 600, "reason": "returned goods"]) == nil)
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-1", "amount": 401]) == .refundExceedsPayment)
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-1", "amount": 400]) == nil)
        let lots = try circuit.harness.state.lots(of: "ben")
        #expect(lots.count == 1 && lots.first?.category == "food" && lots.first?.remaining == 1000)
        #expect(try circuit.balance(Account.merchant("grocer")) == 0)
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "nope", "amount": 1]) == .unknownReference)
        #expect(circuit.totalOfAllAccounts() == 0)
    }

    @Test("a refund is bounded by what is left of its payment, also when the merchant holds more")
    func refundBoundedByPayment() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 3000]) == nil)
        #expect(try circuit.pay(1000, id: "pay-1") == nil)
        #expect(try circuit.pay(1000, id: "pay-2") == nil)
        func refund(_ amount: Int64) throws -> LedgerError.Code? {
            try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-1", "amount": .integer(amount)])
        }
        #expect(try refund(600) == nil)
        // The grocer holds 1400 cents, more than asked: the payment's 400 left is the bound.
        #expect(try refund(401) == .refundExceedsPayment)
        #expect(try circuit.balance(Account.merchant("grocer")) == 1400)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 1600)
        #expect(try refund(400) == nil)
        #expect(try refund(1) == .refundExceedsPayment)
        #expect(try circuit.balance(Account.merchant("grocer")) == 1000)
        #expect(try circuit.harness.state.json(.payments, "pay-1")?.objectValue?["refunded"] == 1000)
        #expect(circuit.totalOfAllAccounts() == 0)
    }

    @Test("a beneficiary gets at most 256 lots from grants, and refunds bring back emptied ones up to 1024 live lots")
    func lotBounds() throws {
        var circuit = try Circuit()
        let grant: JSONObject = ["beneficiary": "ben", "category": "food", "amount": 1]
        // Five rounds of 256 one-cent lots, each emptied by one payment: 1280 lots spent in five payments.
        for round in 0..<5 {
            for _ in 0..<Lot.maximumPerBeneficiary { #expect(try circuit.byStaff("dote.granted", grant) == nil) }
            if round == 0 { #expect(try circuit.byStaff("dote.granted", grant) == .tooManyLots) }
            #expect(try circuit.harness.state.lots(of: "ben").count == Lot.maximumPerBeneficiary)
            #expect(try circuit.pay(Int64(Lot.maximumPerBeneficiary), id: "pay-\(round)") == nil)
            #expect(try circuit.harness.state.lots(of: "ben").isEmpty)
        }
        // Refunds revive up to 1024 lots, not one lot more: one that would cross the bound is refused whole.
        func refund(_ payment: String, _ amount: Int) throws -> LedgerError.Code? {
            try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": .string(payment), "amount": .integer(Int64(amount))])
        }
        for round in 0..<3 { #expect(try refund("pay-\(round)", Lot.maximumPerBeneficiary) == nil) }
        #expect(try refund("pay-3", 200) == nil)
        #expect(try circuit.harness.state.lots(of: "ben").count == 968)
        #expect(try refund("pay-4", Lot.maximumPerBeneficiary) == .tooManyLots)
        #expect(try circuit.harness.state.lots(of: "ben").count == 968)
        #expect(try refund("pay-3", Lot.maximumPerBeneficiary - 200) == nil)
        #expect(try circuit.harness.state.lots(of: "ben").count == Lot.maximumLive)
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-4", "amount": 1]) == .tooManyLots)
        #expect(try circuit.harness.state.lots(of: "ben").count == Lot.maximumLive)
        #expect(try circuit.balance(Account.beneficiary("ben")) == Int64(Lot.maximumLive))
        // New grants wait until fewer than 256 lots are live.
        #expect(try circuit.byStaff("dote.granted", grant) == .tooManyLots)
        #expect(circuit.totalOfAllAccounts() == 0)
    }

    @Test("settlement: never more than the merchant holds; paid once, by the authority; retires the ToCoin")
    func settlement() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == nil)
        #expect(try circuit.pay(800) == nil)
        #expect(try circuit.submit("settlement.requested", by: "grocer", key: circuit.grocer, ["amount": 801]) == .settlementExceedsBalance)
        #expect(try circuit.submit("settlement.requested", by: "grocer", key: circuit.grocer, ["amount": 500], id: "settle-1") == nil)
        #expect(try circuit.balance(Account.settlement) == 500)
        #expect(try circuit.submit("settlement.paid", by: "grocer", key: circuit.grocer, ["settlement": "settle-1", "reference": "x"]) == .roleNotPermitted)
        let issuanceBefore = try circuit.balance(Account.issuance)
        #expect(try circuit.byCity("settlement.paid", ["settlement": "settle-1", "reference": "Bonifico 123"]) == nil)
        #expect(try circuit.byCity("settlement.paid", ["settlement": "settle-1", "reference": "again"]) == .invalidState)
        #expect(try circuit.balance(Account.settlement) == 0)
        #expect(try circuit.balance(Account.issuance) == issuanceBefore + 500)
        #expect(circuit.totalOfAllAccounts() == 0)
    }
}

@Suite("Circuit: catalogue, cases and activity")
struct ActivityRuleTests {
    @Test("opportunities: published by an organisation, updated and withdrawn only by it, indexed for search")
    func opportunities() throws {
        var circuit = try Circuit()
        let body: JSONObject = ["opportunity": "bike", "title": "Bicycle workshop", "description": "Learn to repair bicycles with volunteers", "category": "training", "district": "barriera", "hours": 20]
        #expect(try circuit.byStaff("opportunity.published", body) == nil)
        #expect(try circuit.byStaff("opportunity.published", body) == .alreadyExists)
        var wrong = body
        wrong["opportunity"] = "x"
        wrong["category"] = "skydiving"
        #expect(try circuit.byStaff("opportunity.published", wrong) == .invalidBody)
        let index = circuit.harness.state.entries(.catalogueIndex, prefix: CatalogueIndex.prefix(kind: "opportunity", facet: "word", value: "bicycles"), limit: 10)
        #expect(index.count == 1)
        let other = try circuit.harness.register("other-org", role: "organisation")
        #expect(try circuit.submit("opportunity.updated", by: "other-org", key: other, ["opportunity": "bike", "title": "Mine now"]) == .roleNotPermitted)
        #expect(try circuit.byStaff("opportunity.updated", ["opportunity": "bike", "district": "aurora"]) == nil)
        #expect(circuit.harness.state.entries(.catalogueIndex, prefix: CatalogueIndex.prefix(kind: "opportunity", facet: "district", value: "barriera"), limit: 10).isEmpty)
        #expect(circuit.harness.state.entries(.catalogueIndex, prefix: CatalogueIndex.prefix(kind: "opportunity", facet: "district", value: "aurora"), limit: 10).count == 1)
        #expect(try circuit.byStaff("opportunity.updated", ["opportunity": "bike", "district": "aurora"]) == .invalidBody)
        // Compared as the ledger stores it, byte for byte: the same title in another Unicode normalisation ("é" as
        // U+00E9, then as e and U+0301) is a change, though Swift's String calls the two equal.
        #expect(try circuit.byStaff("opportunity.updated", ["opportunity": "bike", "title": "Ciclofficina caf\u{E9}"]) == nil)
        #expect(try circuit.byStaff("opportunity.updated", ["opportunity": "bike", "title": "Ciclofficina caf\u{E9}"]) == .invalidBody)
        #expect(try circuit.byStaff("opportunity.updated", ["opportunity": "bike", "title": "Ciclofficina cafe\u{301}"]) == nil)
        #expect(try circuit.byStaff("opportunity.withdrawn", ["opportunity": "bike"]) == nil)
        #expect(try circuit.byStaff("opportunity.withdrawn", ["opportunity": "bike"]) == .invalidState)
        #expect(circuit.harness.state.entries(.catalogueIndex, prefix: CatalogueIndex.prefix(kind: "opportunity", facet: "district", value: "aurora"), limit: 10).isEmpty)
        #expect(try circuit.submit("opportunity.published", by: "grocer", key: circuit.grocer, ["opportunity": "y", "title": "t", "description": "d", "category": "sport", "district": "x"]) == .roleNotPermitted)
    }

    @Test("cases: referred to an organisation, opened, planned, noted and closed only by the holder; personal data only sealed")
    func cases() throws {
        var circuit = try Circuit()
        let sealed = SealedData.seal(["name": "Anna Bianchi", "tax_code": "BNCNNA80A41L219X"], subject: "ben", key: SecretBox.newKey())
        let other = try circuit.harness.register("other-org", role: "organisation")
        #expect(try circuit.submit("case.referred", by: "other-org", key: other, ["case": "c-1", "beneficiary": "ben", "household": "hh-1", "to": "casa", "sealed": sealed]) == nil)
        #expect(try circuit.submit("case.opened", by: "other-org", key: other, ["case": "c-1"]) == .notCaseHolder)
        #expect(try circuit.byStaff("case.plan_agreed", ["case": "c-1", "goals": ["training"]]) == .invalidState)
        #expect(try circuit.byStaff("case.opened", ["case": "c-1"]) == nil)
        #expect(try circuit.byStaff("case.opened", ["case": "c-1"]) == .invalidState)
        #expect(try circuit.byStaff("case.plan_agreed", ["case": "c-1", "goals": ["training", "work_placement"], "sealed": sealed]) == nil)
        #expect(try circuit.byStaff("case.note_added", ["case": "c-1", "sealed": sealed]) == nil)
        // Personal data in clear is not a field any case event has.
        #expect(try circuit.byStaff("case.note_added", ["case": "c-1", "note": "Anna is unwell"]) == .invalidBody)
        #expect(try circuit.byStaff("case.note_added", ["case": "c-1", "sealed": ["alg": "none", "nonce": "", "ciphertext": ""]]) == .invalidBody)
        #expect(try circuit.byStaff("case.referred", ["case": "c-2", "beneficiary": "ben", "household": "hh-1", "to": "grocer", "sealed": sealed]) == .unknownOrganisation)
        #expect(try circuit.byStaff("case.closed", ["case": "c-1", "outcome": "completed"]) == nil)
        #expect(try circuit.byStaff("case.note_added", ["case": "c-1", "sealed": sealed]) == .invalidState)
        let history = circuit.harness.state.entries(.caseHistory, prefix: StateKey.prefix("ben"), limit: 100)
        #expect(history.map { String(decoding: $0.value, as: UTF8.self) }.filter { $0.hasPrefix("case.") } == ["case.referred", "case.opened", "case.plan_agreed", "case.note_added", "case.closed"])
    }

    @Test("activations need an open case held by the signer's organisation and a published opportunity")
    func activations() throws {
        var circuit = try Circuit()
        _ = try circuit.earnBadge("b-1")
        #expect(try circuit.byStaff("activation.recorded", ["activation": "act-b-1", "case": "case-ben", "opportunity": "garden", "hours": 3, "date": "2026-11-21"]) == .alreadyExists)
        #expect(try circuit.byStaff("activation.recorded", ["activation": "a-2", "case": "case-ben", "opportunity": "nowhere", "hours": 3, "date": "2026-11-21"]) == .unknownReference)
        #expect(try circuit.byStaff("activation.recorded", ["activation": "a-3", "case": "case-ben", "opportunity": "garden", "hours": 3, "date": "2026-13-01"]) == .invalidBody)
        let otherOrganisation = try circuit.harness.register("other-org", role: "organisation")
        #expect(try circuit.submit("activation.recorded", by: "other-org", key: otherOrganisation, ["activation": "a-4", "case": "case-ben", "opportunity": "garden", "hours": 3, "date": "2026-11-21"]) == .notCaseHolder)
    }

    @Test("badges: only the class's issuer issues and revokes; evidence must be the beneficiary's activations")
    func badges() throws {
        var circuit = try Circuit()
        _ = try circuit.earnBadge("b-1")
        // The same hours earn credits once: an activation backs one badge.
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-again", "badge_class": "class-5", "beneficiary": "ben", "activations": ["act-b-1"]]) == .alreadyConverted)
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-1", "badge_class": "class-5", "beneficiary": "ben", "activations": ["act-b-1"]]) == .alreadyExists)
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-2", "badge_class": "class-5", "beneficiary": "someone-else", "activations": ["act-b-1"]]) == .invalidBody)
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-3", "badge_class": "nope", "beneficiary": "ben", "activations": ["act-b-1"]]) == .unknownReference)
        let other = try circuit.harness.register("other-org", role: "organisation")
        #expect(try circuit.submit("badge.issued", by: "other-org", key: other, ["badge": "b-4", "badge_class": "class-5", "beneficiary": "ben", "activations": ["act-b-1"]]) == .roleNotPermitted)
        #expect(try circuit.submit("badge.revoked", by: "other-org", key: other, ["badge": "b-1", "reason": "no"]) == .roleNotPermitted)
        // Nor with a class of its own on hours another organisation recorded: they stay casa's to certify.
        #expect(try circuit.submit("badge_class.defined", by: "other-org", key: other, ["badge_class": "other-class", "name": "n", "description": "d", "criteria": "c", "credits": 5]) == nil)
        #expect(try circuit.byStaff("activation.recorded", ["activation": "act-casa", "case": "case-ben", "opportunity": "garden", "hours": 3, "date": "2026-11-21"]) == nil)
        #expect(try circuit.submit("badge.issued", by: "other-org", key: other, ["badge": "b-other", "badge_class": "other-class", "beneficiary": "ben", "activations": ["act-casa"]]) == .roleNotPermitted)
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-casa", "badge_class": "class-5", "beneficiary": "ben", "activations": ["act-casa"]]) == nil)
        #expect(try circuit.byStaff("badge_class.retired", ["badge_class": "class-5"]) == nil)
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-5", "badge_class": "class-5", "beneficiary": "ben", "activations": ["act-b-1"]]) == .invalidState)
        #expect(try circuit.byStaff("badge_class.defined", ["badge_class": "c-x", "name": "n", "description": "d", "criteria": "c", "credits": 0]) == .invalidBody)
    }

    @Test("erasure: the holder or the authority; afterwards no new personal data for that subject")
    func erasure() throws {
        var circuit = try Circuit()
        _ = try circuit.earnBadge("b-1")
        #expect(try circuit.submit("subject.erased", by: "grocer", key: circuit.grocer, ["beneficiary": "ben"]) == .roleNotPermitted)
        #expect(try circuit.byStaff("subject.erased", ["beneficiary": "ben"]) == .invalidBody)  // staff name the case they hold
        #expect(try circuit.byStaff("subject.erased", ["beneficiary": "ben", "case": "case-ben"]) == nil)
        #expect(try circuit.byStaff("subject.erased", ["beneficiary": "ben", "case": "case-ben"]) == .subjectErased)
        let sealed = SealedData.seal(["note": "x"], subject: "ben", key: SecretBox.newKey())
        #expect(try circuit.byStaff("case.note_added", ["case": "case-ben", "sealed": sealed]) == .subjectErased)
        // Balances and badges stay: the money is still there.
        #expect(try circuit.harness.state.json(.badges, "b-1") != nil)
    }

    @Test("sealed data opens only with the subject's key and for that subject")
    func sealing() throws {
        let key = SecretBox.newKey()
        let sealed = SealedData.seal(["name": "Anna"], subject: "ben", key: key)
        #expect(SealedData.open(sealed, subject: "ben", key: key) == ["name": "Anna"])
        #expect(SealedData.open(sealed, subject: "other", key: key) == nil)
        #expect(SealedData.open(sealed, subject: "ben", key: SecretBox.newKey()) == nil)
        #expect(!CanonicalJSON.encodeString(sealed).contains("Anna"))
    }
}

@Suite("Circuit: standing over a person, suspended organisations, the end of time")
struct StandingRuleTests {
    /// The circuit with a second organisation "other-org" and its staff member "other-op".
    static func circuitWithAnotherOrganisation() throws -> (Circuit, organisation: Ed25519PrivateKey, staff: Ed25519PrivateKey) {
        var circuit = try Circuit()
        let organisation = try circuit.harness.register("other-org", role: "organisation")
        let staff = try circuit.harness.register("other-op", role: "staff", organisation: "other-org")
        return (circuit, organisation, staff)
    }

    static func referral(_ caseID: String, _ beneficiary: String, to holder: String) -> JSONObject {
        ["case": .string(caseID), "beneficiary": .string(beneficiary), "household": "hh-1", "to": .string(holder),
         "sealed": SealedData.seal(["name": "x"], subject: beneficiary, key: SecretBox.newKey())]
    }

    @Test("an organisation gets no standing over another organisation's beneficiary by referring them to itself")
    func noSelfReferral() throws {
        var (circuit, otherOrganisation, otherStaff) = try Self.circuitWithAnotherOrganisation()
        // "ben" belongs to casa: others refer them only to casa; casa refers them anywhere.
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-self", "ben", to: "other-org")) == .roleNotPermitted)
        #expect(try circuit.submit("case.referred", by: "other-org", key: otherOrganisation, Self.referral("c-self", "ben", to: "other-org")) == .roleNotPermitted)
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-to-casa", "ben", to: "casa")) == nil)
        #expect(try circuit.byStaff("case.referred", Self.referral("c-onward", "ben", to: "other-org")) == nil)
        // Only beneficiaries have cases.
        #expect(try circuit.byStaff("case.referred", Self.referral("c-shop", "grocer", to: "casa")) == .unknownReference)
        #expect(try circuit.byStaff("case.referred", Self.referral("c-city", "city", to: "casa")) == .unknownReference)
        #expect(try circuit.byStaff("case.referred", Self.referral("c-colleague", "other-op", to: "casa")) == .unknownReference)

        // Someone not registered yet may be referred by anyone, but a referral an organisation gives itself is no
        // standing: it can neither erase them nor, once casa registers them, go on recording about them.
        let sealed = SealedData.seal(["note": "x"], subject: "ben-new", key: SecretBox.newKey())
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-early", "ben-new", to: "other-org")) == nil)
        #expect(try circuit.submit("case.note_added", by: "other-op", key: otherStaff, ["case": "c-early", "sealed": sealed]) == nil)
        #expect(try circuit.submit("subject.erased", by: "other-op", key: otherStaff, ["beneficiary": "ben-new", "case": "c-early"]) == .notCaseHolder)
        // The walk-in's case reserves ben-new for other-org: casa does not take them in; the authority registers anyone.
        #expect(try circuit.byStaff("actor.registered", [
            "actor": "ben-new", "role": "beneficiary", "name": "ben-new", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]), "organisation": "casa",
        ]) == .notCaseHolder)
        _ = try circuit.harness.register("ben-new", role: "beneficiary", organisation: "casa")
        let early = try #require(try circuit.harness.state.json(.cases, "c-early")?.objectValue)
        #expect(try !Self.standing(early, "ben-new", circuit))
        #expect(try circuit.submit("case.note_added", by: "other-op", key: otherStaff, ["case": "c-early", "sealed": sealed]) == .notCaseHolder)
        #expect(try circuit.submit("case.opened", by: "other-op", key: otherStaff, ["case": "c-early"]) == .notCaseHolder)
        #expect(try circuit.submit("subject.erased", by: "other-op", key: otherStaff, ["beneficiary": "ben-new", "case": "c-early"]) == .notCaseHolder)
        // Closing needs no standing: the holder may always end its own case.
        #expect(try circuit.submit("case.closed", by: "other-op", key: otherStaff, ["case": "c-early", "outcome": "transferred"]) == nil)

        // Referred by another organisation while not registered: standing; and nobody but its holder registers the
        // person, so it keeps it.
        let third = try circuit.harness.register("third-org", role: "organisation")
        #expect(try circuit.submit("case.referred", by: "third-org", key: third, Self.referral("c-hub", "ben-hub", to: "other-org")) == nil)
        let hub = try #require(try circuit.harness.state.json(.cases, "c-hub")?.objectValue)
        #expect(try Self.standing(hub, "ben-hub", circuit))
        #expect(try circuit.byStaff("actor.registered", [
            "actor": "ben-hub", "role": "beneficiary", "name": "ben-hub", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]), "organisation": "casa",
        ]) == .notCaseHolder)
        _ = try circuit.harness.register("ben-hub", role: "beneficiary", by: "other-op", key: otherStaff, organisation: "other-org")
        #expect(try Self.standing(hub, "ben-hub", circuit))
        #expect(try circuit.submit("case.opened", by: "other-op", key: otherStaff, ["case": "c-hub"]) == nil)

        // A case casa referred onward does give the holder standing.
        let onward = try #require(try circuit.harness.state.json(.cases, "c-onward")?.objectValue)
        #expect(try Self.standing(onward, "ben", circuit))
        #expect(try circuit.submit("case.opened", by: "other-op", key: otherStaff, ["case": "c-onward"]) == nil)
        #expect(try circuit.submit("subject.erased", by: "other-op", key: otherStaff, ["beneficiary": "ben", "case": "c-onward"]) == nil)
    }

    @Test("a help desk that lost standing (someone else registered the person) issues no badge from its earlier hours")
    func noBadgeWithoutStanding() throws {
        var (circuit, otherOrganisation, otherStaff) = try Self.circuitWithAnotherOrganisation()
        // other-org takes in the walk-in "p1" through its own referral and certifies hours.
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-walk-in", "p1", to: "other-org")) == nil)
        #expect(try circuit.submit("case.opened", by: "other-op", key: otherStaff, ["case": "c-walk-in"]) == nil)
        #expect(try circuit.submit("opportunity.published", by: "other-op", key: otherStaff, ["opportunity": "o-1", "title": "Garden", "description": "Garden work", "category": "civic_utility", "district": "aurora"]) == nil)
        #expect(try circuit.submit("badge_class.defined", by: "other-org", key: otherOrganisation, ["badge_class": "k", "name": "n", "description": "d", "criteria": "c", "credits": 5]) == nil)
        #expect(try circuit.submit("activation.recorded", by: "other-op", key: otherStaff, ["activation": "a-1", "case": "c-walk-in", "opportunity": "o-1", "hours": 3, "date": "2026-11-21"]) == nil)
        #expect(try circuit.submit("activation.recorded", by: "other-op", key: otherStaff, ["activation": "a-2", "case": "c-walk-in", "opportunity": "o-1", "hours": 3, "date": "2026-11-21"]) == nil)
        // While p1 is not registered its holder issues badges for those hours.
        #expect(try circuit.submit("badge.issued", by: "other-op", key: otherStaff, ["badge": "b-1", "badge_class": "k", "beneficiary": "p1", "activations": ["a-1"]]) == nil)
        // The authority registers p1 as casa's (casa itself may not: other-org's walk-in case reserved p1):
        // other-org's case no longer gives standing, so no badge either.
        _ = try circuit.harness.register("p1", role: "beneficiary", organisation: "casa")
        #expect(try circuit.submit("badge.issued", by: "other-op", key: otherStaff, ["badge": "b-2", "badge_class": "k", "beneficiary": "p1", "activations": ["a-2"]]) == .notCaseHolder)
    }

    @Test("someone another organisation referred to a holder is registered by that holder only (or the authority), until its case closes")
    func registrationIsReservedForTheHolder() throws {
        var (circuit, otherOrganisation, otherStaff) = try Self.circuitWithAnotherOrganisation()
        let third = try circuit.harness.register("third-org", role: "organisation")
        // A hub (third-org) refers p1 to casa.
        #expect(try circuit.submit("case.referred", by: "third-org", key: third, Self.referral("c-hub", "p1", to: "casa")) == nil)
        // other-org can neither take p1 in as its beneficiary nor as its staff, even with a referral of its own.
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-grab", "p1", to: "other-org")) == nil)
        #expect(try circuit.submit("actor.registered", by: "other-op", key: otherStaff, Self.registration("p1", "other-org")) == .notCaseHolder)
        #expect(try circuit.submit("actor.registered", by: "other-org", key: otherOrganisation, Self.registration("p1", "other-org", role: "staff")) == .notCaseHolder)
        // Casa, the holder, registers them.
        #expect(try circuit.byStaff("actor.registered", Self.registration("p1", "casa")) == nil)
        // A case closed without registering frees the reservation: p2 was not taken on by casa.
        #expect(try circuit.submit("case.referred", by: "third-org", key: third, Self.referral("c-hub-2", "p2", to: "casa")) == nil)
        #expect(try circuit.submit("actor.registered", by: "other-op", key: otherStaff, Self.registration("p2", "other-org")) == .notCaseHolder)
        #expect(try circuit.byStaff("case.closed", ["case": "c-hub-2", "outcome": "not_eligible"]) == nil)
        #expect(try circuit.submit("actor.registered", by: "other-op", key: otherStaff, Self.registration("p2", "other-org")) == nil)
        // The authority registers anyone.
        #expect(try circuit.submit("case.referred", by: "third-org", key: third, Self.referral("c-hub-3", "p3", to: "casa")) == nil)
        #expect(try circuit.byCity("actor.registered", Self.registration("p3", "other-org")) == nil)
    }

    @Test("a case a third organisation referred gives its holder no standing once the person belongs to an organisation that acts")
    func referralByAThirdOrganisation() throws {
        var (circuit, _, otherStaff) = try Self.circuitWithAnotherOrganisation()
        try circuit.harness.register("third-org", role: "organisation")
        let thirdStaff = try circuit.harness.register("third-op", role: "staff", organisation: "third-org")
        let sealed = SealedData.seal(["note": "x"], subject: "ben-x", key: SecretBox.newKey())
        // Someone not registered yet, referred to other-org by a third organisation: other-org may record.
        #expect(try circuit.submit("case.referred", by: "third-op", key: thirdStaff, Self.referral("c-third", "ben-x", to: "other-org")) == nil)
        #expect(try circuit.submit("case.note_added", by: "other-op", key: otherStaff, ["case": "c-third", "sealed": sealed]) == nil)
        let record = try #require(try circuit.harness.state.json(.cases, "c-third")?.objectValue)
        #expect(try Self.standing(record, "ben-x", circuit))
        // The authority registers them with casa, which acts for them: the referral no longer gives standing.
        _ = try circuit.harness.register("ben-x", role: "beneficiary", organisation: "casa")
        #expect(try !Self.standing(record, "ben-x", circuit))
        #expect(try circuit.submit("case.note_added", by: "other-op", key: otherStaff, ["case": "c-third", "sealed": sealed]) == .notCaseHolder)
        // Once casa is suspended nobody acts for them, and the referral from another organisation counts again.
        #expect(try circuit.byCity("actor.suspended", ["actor": "casa", "reason": "closed"]) == nil)
        #expect(try Self.standing(record, "ben-x", circuit))
        #expect(try circuit.submit("case.note_added", by: "other-op", key: otherStaff, ["case": "c-third", "sealed": sealed]) == nil)
    }

    @Test("a walk-in's first case reserves their registration for its holder, who may pass it on by referring them")
    func walkInIsReservedForItsHelpDesk() throws {
        var (circuit, otherOrganisation, otherStaff) = try Self.circuitWithAnotherOrganisation()
        let third = try circuit.harness.register("third-org", role: "organisation")
        func reservation(_ person: String) throws -> PersonReservation? { try Self.reservation(person, circuit) }
        // other-org's help desk takes p4 in through its own referral: p4 is reserved for it.
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-walk-in", "p4", to: "other-org")) == nil)
        #expect(try reservation("p4") == PersonReservation(caseID: "c-walk-in", holder: "other-org"))
        // Casa takes p4 in too, a hub refers p4 to casa, and other-org takes them in again: none of these moves the
        // reservation, and casa cannot register p4 as its beneficiary or staff.
        #expect(try circuit.byStaff("case.referred", Self.referral("c-casa-walk-in", "p4", to: "casa")) == nil)
        #expect(try circuit.submit("case.referred", by: "third-org", key: third, Self.referral("c-hub", "p4", to: "casa")) == nil)
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-walk-in-again", "p4", to: "other-org")) == nil)
        #expect(try reservation("p4") == PersonReservation(caseID: "c-walk-in", holder: "other-org"))
        #expect(try circuit.byStaff("actor.registered", Self.registration("p4", "casa")) == .notCaseHolder)
        #expect(try circuit.submit("actor.registered", by: "casa", key: circuit.organisation, Self.registration("p4", "casa", role: "staff")) == .notCaseHolder)
        // other-org refers p4 on to casa: the reservation goes with the person, and only casa registers them now.
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-onward", "p4", to: "casa")) == nil)
        #expect(try reservation("p4") == PersonReservation(caseID: "c-onward", holder: "casa", previous: [.init(caseID: "c-walk-in", holder: "other-org")]))
        // other-org closing the case it took p4 in with changes nothing.
        #expect(try circuit.submit("case.closed", by: "other-op", key: otherStaff, ["case": "c-walk-in", "outcome": "transferred"]) == nil)
        #expect(try reservation("p4")?.holder == "casa")
        #expect(try circuit.submit("actor.registered", by: "other-org", key: otherOrganisation, Self.registration("p4", "other-org")) == .notCaseHolder)
        #expect(try circuit.byStaff("actor.registered", Self.registration("p4", "casa")) == nil)

        // A referral by someone other than the reservation's holder leaves it; closing the case that holds it frees it,
        // and the next referral reserves the person again.
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-walk-in-5", "p5", to: "other-org")) == nil)
        #expect(try circuit.byStaff("case.referred", Self.referral("c-casa-5", "p5", to: "other-org")) == nil)
        #expect(try reservation("p5") == PersonReservation(caseID: "c-walk-in-5", holder: "other-org"))
        #expect(try circuit.submit("case.closed", by: "other-op", key: otherStaff, ["case": "c-walk-in-5", "outcome": "unreachable"]) == nil)
        #expect(try reservation("p5") == nil)
        #expect(try circuit.submit("case.referred", by: "third-org", key: third, Self.referral("c-hub-5", "p5", to: "third-org")) == nil)
        #expect(try reservation("p5") == PersonReservation(caseID: "c-hub-5", holder: "third-org"))
        #expect(try circuit.byStaff("actor.registered", Self.registration("p5", "casa")) == .notCaseHolder)
        #expect(try circuit.submit("case.closed", by: "third-org", key: third, ["case": "c-hub-5", "outcome": "unreachable"]) == nil)
        #expect(try circuit.byStaff("actor.registered", Self.registration("p5", "casa")) == nil)
    }

    @Test("a reservation goes back to the latest earlier placement still open; the placing hub moves it; a suspended holder's binds nobody")
    func reservationFallsBackAndMoves() throws {
        var (circuit, _, otherStaff) = try Self.circuitWithAnotherOrganisation()
        let hub = try circuit.harness.register("hub", role: "organisation")
        func reservation(_ person: String) throws -> PersonReservation? { try Self.reservation(person, circuit) }
        // The hub places q1 with casa; casa refers q1 on to other-org, which finds them not eligible: q1 is casa's again.
        #expect(try circuit.submit("case.referred", by: "hub", key: hub, Self.referral("c-1", "q1", to: "casa")) == nil)
        #expect(try circuit.byStaff("case.referred", Self.referral("c-2", "q1", to: "other-org")) == nil)
        #expect(try reservation("q1")?.holder == "other-org")
        #expect(try circuit.submit("case.closed", by: "other-op", key: otherStaff, ["case": "c-2", "outcome": "not_eligible"]) == nil)
        #expect(try reservation("q1") == PersonReservation(caseID: "c-1", holder: "casa"))
        #expect(try circuit.submit("actor.registered", by: "hub", key: hub, Self.registration("q1", "hub")) == .notCaseHolder)
        // A placement whose case closed meanwhile is skipped: casa's c-1 closed, so closing c-4 frees q1.
        #expect(try circuit.byStaff("case.referred", Self.referral("c-4", "q1", to: "other-org")) == nil)
        #expect(try circuit.byStaff("case.closed", ["case": "c-1", "outcome": "transferred"]) == nil)
        #expect(try circuit.submit("case.closed", by: "other-op", key: otherStaff, ["case": "c-4", "outcome": "not_eligible"]) == nil)
        #expect(try reservation("q1") == nil)

        // The hub that placed q2 with casa moves them to other-org itself; casa closing its case changes nothing.
        #expect(try circuit.submit("case.referred", by: "hub", key: hub, Self.referral("c-5", "q2", to: "casa")) == nil)
        #expect(try circuit.submit("case.referred", by: "hub", key: hub, Self.referral("c-6", "q2", to: "other-org")) == nil)
        #expect(try reservation("q2") == PersonReservation(caseID: "c-6", holder: "other-org", previous: [.init(caseID: "c-5", holder: "casa")]))
        #expect(try circuit.byStaff("case.closed", ["case": "c-5", "outcome": "transferred"]) == nil)
        #expect(try reservation("q2")?.holder == "other-org")
        #expect(try circuit.byStaff("actor.registered", Self.registration("q2", "casa")) == .notCaseHolder)

        // A reservation remembers its last 16 placements.
        #expect(try circuit.byStaff("case.referred", Self.referral("c-q3-0", "q3", to: "casa")) == nil)
        for move in 1...20 {
            let (signer, key, to) = move % 2 == 1 ? ("op", circuit.staff, "other-org") : ("other-op", otherStaff, "casa")
            #expect(try circuit.submit("case.referred", by: signer, key: key, Self.referral("c-q3-\(move)", "q3", to: to)) == nil)
        }
        let remembered = try #require(try reservation("q3"))
        #expect(remembered.caseID == "c-q3-20")
        #expect(remembered.previous.map(\.caseID) == (4...19).map { "c-q3-\($0)" })
        #expect(remembered.previous.count == PersonReservation.maximumPreviousCount)

        // other-org, suspended, holds q2's and q4's reservations: they bind nobody, and the next referral reserves
        // the person anew.
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-8", "q4", to: "other-org")) == nil)
        #expect(try circuit.byStaff("actor.registered", Self.registration("q4", "casa")) == .notCaseHolder)
        #expect(try circuit.byCity("actor.suspended", ["actor": "other-org", "reason": "closed"]) == nil)
        #expect(try circuit.byStaff("actor.registered", Self.registration("q4", "casa")) == nil)
        #expect(try circuit.submit("case.referred", by: "hub", key: hub, Self.referral("c-7", "q2", to: "hub")) == nil)
        #expect(try reservation("q2") == PersonReservation(caseID: "c-7", holder: "hub"))
        #expect(try circuit.byStaff("actor.registered", Self.registration("q2", "casa")) == .notCaseHolder)
        #expect(try circuit.submit("actor.registered", by: "hub", key: hub, Self.registration("q2", "hub")) == nil)
    }

    /// An `actor.registered` body for `id` in `organisation`, with a new key.
    static func registration(_ id: String, _ organisation: String, role: String = "beneficiary") -> JSONObject {
        ["actor": .string(id), "role": .string(role), "name": .string(id), "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]), "organisation": .string(organisation)]
    }

    static func reservation(_ person: String, _ circuit: Circuit) throws -> PersonReservation? {
        try PersonReservation(try circuit.harness.state.json(.subjects, PersonReservation.key(person)))
    }

    static func standing(_ record: JSONObject, _ beneficiary: String, _ circuit: Circuit) throws -> Bool {
        try CaseStanding.givesStanding(record, person: try circuit.harness.state.actor(beneficiary), actor: { (id) throws(LedgerError) in try circuit.harness.state.actor(id) })
    }

    @Test("the people of a suspended organisation can be referred by anyone; a referral from another organisation gives standing over them")
    func peopleOfASuspendedOrganisation() throws {
        var (circuit, _, otherStaff) = try Self.circuitWithAnotherOrganisation()
        let third = try circuit.harness.register("third-org", role: "organisation")
        #expect(try circuit.byCity("actor.suspended", ["actor": "casa", "reason": "closed"]) == nil)
        // Casa's "ben": its organisation acts for them no more, so others may refer them.
        #expect(try circuit.submit("case.referred", by: "other-op", key: otherStaff, Self.referral("c-self", "ben", to: "other-org")) == nil)
        #expect(try circuit.submit("case.referred", by: "third-org", key: third, Self.referral("c-taken-on", "ben", to: "other-org")) == nil)
        let selfReferred = try #require(try circuit.harness.state.json(.cases, "c-self")?.objectValue)
        let takenOn = try #require(try circuit.harness.state.json(.cases, "c-taken-on")?.objectValue)
        #expect(try !Self.standing(selfReferred, "ben", circuit))
        #expect(try Self.standing(takenOn, "ben", circuit))
        #expect(try circuit.submit("case.opened", by: "other-op", key: otherStaff, ["case": "c-self"]) == .notCaseHolder)
        #expect(try circuit.submit("case.opened", by: "other-op", key: otherStaff, ["case": "c-taken-on"]) == nil)
        // Money still comes only from a beneficiary's own organisation.
        #expect(try circuit.submit("dote.granted", by: "other-op", key: otherStaff, ["beneficiary": "ben", "category": "food", "amount": 100]) == .roleNotPermitted)
    }

    @Test("a suspended organisation acts through none of its staff; nobody joins it or is referred to it")
    func suspendedOrganisation() throws {
        var (circuit, _, otherStaff) = try Self.circuitWithAnotherOrganisation()
        let opportunity: JSONObject = ["opportunity": "o-1", "title": "Garden", "description": "Garden work", "category": "civic_utility", "district": "aurora"]
        #expect(try circuit.byCity("actor.suspended", ["actor": "other-org", "reason": "closed"]) == nil)
        #expect(try circuit.submit("opportunity.published", by: "other-op", key: otherStaff, opportunity) == .actorSuspended)
        #expect(try circuit.submit("actor.registered", by: "other-op", key: otherStaff, [
            "actor": "ben-9", "role": "beneficiary", "name": "ben-9", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]), "organisation": "other-org",
        ]) == .actorSuspended)
        #expect(try circuit.byCity("actor.registered", [
            "actor": "new-op", "role": "staff", "name": "new-op", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]), "organisation": "other-org",
        ]) == .actorSuspended)
        #expect(try circuit.byStaff("case.referred", Self.referral("c-1", "ben", to: "other-org")) == .actorSuspended)
        // Another organisation's staff are not affected.
        #expect(try circuit.byStaff("opportunity.published", opportunity) == nil)
    }

    @Test("no dote or conversion reaches a suspended beneficiary, whose wallet can spend nothing")
    func noMoneyForASuspendedBeneficiary() throws {
        var circuit = try Circuit()
        let badge = try circuit.earnBadge("b-1")
        #expect(try circuit.byStaff("actor.suspended", ["actor": "ben", "reason": "wallet compromised"]) == nil)
        let fund = try circuit.balance(Account.fund)
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == .actorSuspended)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(badge)])]) == .actorSuspended)
        #expect(try circuit.balance(Account.fund) == fund)
        #expect(try circuit.pay(1) == .authorisationInvalid)
    }

    @Test("the ledger's checkpoint key is refused as such, not as a key of the authority")
    func checkpointKeyIsNamed() throws {
        var circuit = try Circuit()
        let checkpointKey = circuit.harness.checkpoint.publicKey.multikey
        do {
            try circuit.harness.accept(try circuit.harness.factory.make("actor.registered", by: "city", key: circuit.authority, [
                "actor": "shop-9", "role": "merchant", "name": "Shop", "keys": .array([.string(checkpointKey)]),
            ]))
            Issue.record("the checkpoint key was registered")
        } catch let error as LedgerError {
            #expect(error.code == .keyInUse && error.message.contains("is the ledger's checkpoint key"), "\(error)")
        }
        #expect(try circuit.byStaff("actor.key_added", ["actor": "ben", "key": .string(checkpointKey)]) == .keyInUse)
        #expect(try circuit.byStaff("actor.key_added", ["actor": "ben", "key": .string(circuit.grocer.publicKey.multikey)]) == .keyInUse)
    }

    @Test("an erased id stays closed: it cannot be registered afterwards")
    func erasedIdentifierIsNotRegistered() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("case.referred", Self.referral("c-ghost", "ghost", to: "casa")) == nil)
        #expect(try circuit.byCity("subject.erased", ["beneficiary": "ghost"]) == nil)
        #expect(try circuit.byStaff("actor.registered", [
            "actor": "ghost", "role": "beneficiary", "name": "ghost", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]), "organisation": "casa",
        ]) == .subjectErased)
    }

    @Test("badges go to beneficiaries: not to an id registered with another role after its case began")
    func badgesOnlyForBeneficiaries() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("case.referred", Self.referral("c-x", "x", to: "casa")) == nil)
        #expect(try circuit.byStaff("case.opened", ["case": "c-x"]) == nil)
        #expect(try circuit.byStaff("opportunity.published", ["opportunity": "garden", "title": "Garden", "description": "Garden work", "category": "civic_utility", "district": "aurora"]) == nil)
        #expect(try circuit.byStaff("badge_class.defined", ["badge_class": "k", "name": "n", "description": "d", "criteria": "c", "credits": 5]) == nil)
        #expect(try circuit.byStaff("activation.recorded", ["activation": "a-x", "case": "c-x", "opportunity": "garden", "hours": 3, "date": "2026-11-21"]) == nil)
        _ = try circuit.harness.register("x", role: "staff", organisation: "casa")
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-x", "badge_class": "k", "beneficiary": "x", "activations": ["a-x"]]) == .unknownReference)
    }

    @Test("a lot or a badge whose validity would end after year 9999 ends at 9999-12-31T23:59:59.999Z, not at once")
    func expiriesAtTheEndOfTime() throws {
        var circuit = try Circuit()
        #expect(try circuit.byCity("policy.updated", [
            "conversion_rate_cents_per_credit": 100, "monthly_conversion_cap_cents": 50_000, "lot_validity_days": 3660,
            "categories": .array(Circuit.categories),
        ]) == nil)
        circuit.harness.now = "9995-06-01T00:00:00.000Z"
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == nil)
        let lot = try #require(circuit.harness.state.entries(.lots, prefix: StateKey.prefix("ben"), limit: 10).first)
        #expect(try JSONParser.parse(lot.value)["expires_at"] == "9999-12-31T23:59:59.999Z")
        circuit.harness.now = "9995-06-01T00:00:01.000Z"
        #expect(try circuit.pay(400) == nil)
        #expect(try circuit.byCity("tocoin.expired", ["beneficiary": "ben", "lot": .integer(Int64(try #require(StateKey.decodeNumber(lot.key.suffix(8)))))]) == .lotNotExpired)
        #expect(try circuit.byStaff("badge_class.defined", ["badge_class": "long", "name": "n", "description": "d", "criteria": "c", "credits": 5, "valid_days": 36_600]) == nil)
        _ = try circuit.earnBadge("b-first")
        #expect(try circuit.byStaff("activation.recorded", ["activation": "a-long", "case": "case-ben", "opportunity": "garden", "hours": 3, "date": "9995-05-30"]) == nil)
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-long", "badge_class": "long", "beneficiary": "ben", "activations": ["a-long"]]) == nil)
        let badge = try #require(try circuit.harness.state.json(.badges, "b-long"))
        #expect(badge["valid_until"] == "9999-12-31T23:59:59.999Z")
    }
}


@Suite("Circuit: property")
struct CircuitPropertyTests {
    @Test("random valid and invalid money events: accounts sum to zero, nothing negative, lots equal balances", arguments: [1, 2, 3] as [UInt64])
    func randomSequences(seed: UInt64) throws {
        var generator = SplitMix64(seed: seed)
        var circuit = try Circuit(fund: 200_000)
        var payments: [String] = []
        for step in 0..<300 {
            let amount = Int64.random(in: -50...3000, using: &generator)
            switch Int.random(in: 0..<7, using: &generator) {
            case 0: _ = try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": .string(["food", "books", "rent"].randomElement(using: &generator) ?? "food"), "amount": .integer(amount)])
            case 1, 2:
                let id = "pay-\(step)"
                if try circuit.pay(amount > 0 ? amount : 1, at: Bool.random(using: &generator) ? "grocer" : "bookshop", id: id) == nil { payments.append(id) }
            case 3:
                if let payment = payments.randomElement(using: &generator) {
                    let merchant = try circuit.harness.state.json(.payments, payment)?["merchant"]?.stringValue ?? "grocer"
                    _ = try circuit.submit("payment.refunded", by: merchant, key: merchant == "grocer" ? circuit.grocer : circuit.bookshop, ["payment": .string(payment), "amount": .integer(max(1, amount / 3))])
                }
            case 4: _ = try circuit.submit("settlement.requested", by: "grocer", key: circuit.grocer, ["amount": .integer(amount)])
            case 5:
                circuit.harness.now = Timestamp.format(millisecondsSince1970: (Timestamp.millisecondsSince1970(circuit.harness.now) ?? 0) + Int64.random(in: 0...(10 * 86_400_000), using: &generator))
                for lot in try circuit.harness.state.lots(of: "ben") where lot.isExpired(at: circuit.harness.now) {
                    #expect(try circuit.byCity("tocoin.expired", ["beneficiary": "ben", "lot": .integer(Int64(lot.id))]) == nil)
                }
            default: _ = try circuit.byCity("program.funded", ["amount": .integer(amount), "reference": "top-up"])
            }
            #expect(circuit.totalOfAllAccounts() == 0, "step \(step)")
            for (account, bytes) in circuit.harness.state.tables[.balances] ?? [:] where account != Array(Account.issuance.utf8) {
                #expect((Account.decode(bytes) ?? -1) >= 0, "step \(step): \(String(decoding: account, as: UTF8.self)) is negative")
            }
            let lots = try circuit.harness.state.lots(of: "ben")
            #expect(lots.reduce(0) { $0 + $1.remaining } == (try circuit.balance(Account.beneficiary("ben"))), "step \(step)")
        }
    }
}

/// The rules read the stored state as the ledger's file holds it, which may be damaged: a value no rule could have
/// written is `integrity_failure`, never arithmetic that traps (an overflow, a negative seq, a transfer of nothing).
@Suite("Circuit: a damaged stored state")
struct DamagedStateRuleTests {
    /// Replaces `key` of `table` with `value` re-encoded, as a damaged file would hold it.
    static func damage(_ circuit: inout Circuit, _ table: StateTable, _ key: [UInt8], _ change: (inout JSONObject) -> Void) throws {
        var object = try #require(try circuit.harness.state.json(table, key)?.objectValue)
        change(&object)
        circuit.harness.state.apply([.put(table, key: key, value: CanonicalJSON.encode(.object(object)))])
    }

    @Test("settlement.paid of a stored request whose amount is 0 or past Amounts.maximum")
    func settlementAmount() throws {
        for amount: Int64 in [0, Amounts.maximum + 1] {
            var circuit = try Circuit()
            #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == nil)
            #expect(try circuit.pay(800) == nil)
            #expect(try circuit.submit("settlement.requested", by: "grocer", key: circuit.grocer, ["amount": 500], id: "settle-1") == nil)
            try Self.damage(&circuit, .settlements, Array("settle-1".utf8)) { $0["amount"] = .integer(amount) }
            #expect(try circuit.byCity("settlement.paid", ["settlement": "settle-1", "reference": "Bonifico 123"]) == .integrity)
        }
    }

    @Test("payment.refunded of a stored payment whose debit names a negative lot")
    func refundOfANegativeLot() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == nil)
        #expect(try circuit.pay(1000, id: "pay-1") == nil)
        try Self.damage(&circuit, .payments, Array("pay-1".utf8)) { payment in
            guard case .object(var debit)? = payment["debits"]?.arrayValue?.first else { return }
            debit["lot"] = -1
            payment["debits"] = .array([.object(debit)])
        }
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-1", "amount": 100]) == .integrity)
    }

    @Test("tocoin.expired of a stored lot holding more than Amounts.maximum")
    func expiryOfAnOverfullLot() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 700]) == nil)
        var lot = try #require(try circuit.harness.state.lots(of: "ben").first)
        lot.remaining = JSONValue.maximumExactInteger
        circuit.harness.state.apply([.put(.lots, key: lot.key, value: lot.canonicalBytes)])
        circuit.harness.now = "2026-12-22T10:00:00.000Z"  // 30 days later: expired
        #expect(try circuit.byCity("tocoin.expired", ["beneficiary": "ben", "lot": .integer(Int64(lot.id))]) == .integrity)
    }

    @Test("a payment from a stored lot holding what no rule leaves in a lot", arguments: [
        (700, 800), (0, 0), (700, -1), (Amounts.maximum + 1, 700),
    ] as [(Int64, Int64)])
    func paymentFromADamagedLot(amount: Int64, remaining: Int64) throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 700]) == nil)
        let lot = try #require(try circuit.harness.state.lots(of: "ben").first)
        let damaged = lot.with(amount: amount, remaining: remaining)
        circuit.harness.state.apply([.put(.lots, key: lot.key, value: damaged.canonicalBytes)])
        #expect(try circuit.pay(100) == .integrity)
        #expect(try circuit.harness.state.balance(Account.beneficiary("ben")) == 700)
    }

    @Test("a payment whose beneficiary's stored balance is not the sum of their lots")
    func paymentFromABalanceTheLotsDoNotHold() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 700]) == nil)
        circuit.harness.state.apply([.put(.balances, key: Array(Account.beneficiary("ben").utf8), value: Account.encode(900))])
        #expect(try circuit.pay(800) == .integrity)
        #expect(try circuit.pay(100) == .integrity)
    }

    @Test("payment.refunded of a stored payment whose debits hold less than its amount")
    func refundPastTheDebits() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == nil)
        #expect(try circuit.pay(500, id: "pay-1") == nil)
        #expect(try circuit.pay(400, id: "pay-2") == nil)
        // The grocer holds 900 cents, so the refund reaches the debits, which hold 500 of the 900 claimed.
        try Self.damage(&circuit, .payments, Array("pay-1".utf8)) { $0["amount"] = 900 }
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-1", "amount": 900]) == .integrity)
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-1", "amount": 500]) == nil)
        #expect(try circuit.harness.state.balance(Account.beneficiary("ben")) == 600)
    }

    @Test("payment.refunded of a stored debit that returns more than its lot held")
    func refundPastTheLot() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 1000]) == nil)
        let key = try #require(try circuit.harness.state.lots(of: "ben").first).key
        #expect(try circuit.pay(1000, id: "pay-1") == nil)
        // The emptied lot, damaged to a smaller amount: the refund's 1000 cents would not fit in it.
        try Self.damage(&circuit, .spentLots, key) { $0["amount"] = 500 }
        #expect(try circuit.submit("payment.refunded", by: "grocer", key: circuit.grocer, ["payment": "pay-1", "amount": 1000]) == .integrity)
        #expect(try circuit.harness.state.balance(Account.beneficiary("ben")) == 0)
    }

    @Test("credits.converted onto stored conversions of the month near Int64.max")
    func conversionsOfTheMonth() throws {
        var circuit = try Circuit()
        let badge = try circuit.earnBadge("b-1", credits: 5)
        circuit.harness.state.apply([.put(.conversions, key: StateKey.make("ben", "2026-11"), value: Account.encode(.max))])
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(badge)])]) == .integrity)
    }

    @Test("a grant under a stored policy whose lot_validity_days overflows as milliseconds")
    func policyValidity() throws {
        var circuit = try Circuit()
        try Self.damage(&circuit, .policy, Array("current".utf8)) { $0["lot_validity_days"] = .integer(JSONValue.maximumExactInteger) }
        #expect(try circuit.byStaff("dote.granted", ["beneficiary": "ben", "category": "food", "amount": 700]) == .integrity)
    }

    @Test("badge.issued of a stored badge class whose valid_days overflows as milliseconds")
    func badgeClassValidity() throws {
        var circuit = try Circuit()
        _ = try circuit.earnBadge("b-1", credits: 5)
        try Self.damage(&circuit, .badgeClasses, Array("class-5".utf8)) { $0["valid_days"] = .integer(JSONValue.maximumExactInteger) }
        #expect(try circuit.byStaff("activation.recorded", ["activation": "act-b-2", "case": "case-ben", "opportunity": "garden", "hours": 10, "date": "2026-11-20"]) == nil)
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-2", "badge_class": "class-5", "beneficiary": "ben", "activations": ["act-b-2"]]) == .integrity)
    }
}
