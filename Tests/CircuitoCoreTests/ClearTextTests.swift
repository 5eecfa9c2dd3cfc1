import CircuitoCore
import CircuitoCrypto
import Testing

/// What is in clear in a record stays there for good, beyond crypto-shredding: the one personal identifier the
/// ledger can recognise, an Italian tax code, is refused wherever a client could type one (Specs/events.md 1.3, 1.6).
@Suite("Clear text: no tax code in the log")
struct ClearTextTests {
    // Valid codes, check letter included: a man's, a woman's (day + 40) and one made unique among namesakes
    // (omocodia: a digit written as a letter).
    static let man = "RSSMRA80A01L219M"
    static let woman = "BNCNNA80A41L219J"
    static let omocode = "RSSMRA80A01L21VB"

    @Test("a tax code is found as a word of its own, in either case, with its check letter")
    func recognised() {
        for code in [Self.man, Self.woman, Self.omocode, "MRTMTT25D09F205Z"] {
            #expect(ItalianTaxCode.occurs(in: code), "\(code)")
            #expect(ItalianTaxCode.occurs(in: code.lowercased()), "\(code)")
            #expect(ItalianTaxCode.occurs(in: "ben-\(code)"), "\(code)")
            #expect(ItalianTaxCode.occurs(in: "Mario Rossi (C.F. \(code)), via Nizza"), "\(code)")
            #expect(ItalianTaxCode.occurs(in: "àè\(code)ì"), "\(code): non-ASCII letters end a word")
        }
    }

    @Test("pseudonyms, random ids, wrong check letters and longer runs are not tax codes")
    func notRecognised() {
        for text in [
            "ben-7f3a", "ben-0412", "case-7f3a", "hh-0412", "evt-0016", "ben-3f09c1d24e7a55b0",
            "RSSMRA80A01L219A",  // the check letter is M
            "RSSMRA80A32L219M",  // no 32nd day
            "RSSMRA80X01L219M",  // X is not a month
            "xRSSMRA80A01L219M", "RSSMRA80A01L219Mx", "RSSMRA80A01L219",  // not a word of 16
            "z6MkovXLybEi4mzRsefKQ6pLMCENrURWQj3CaBjm864atFvK", "info@casa-san-salvario.it", "+39 011 123 4567", "",
        ] {
            #expect(!ItalianTaxCode.occurs(in: text), "\(text)")
        }
    }

    @Test("a tax code in an id, a household, a name, a reason or a description is refused with invalid_body; the event id with invalid_event")
    func refusedInEvents() throws {
        var circuit = try Circuit()
        let sealed = SealedData.seal(["codice_fiscale": .string(Self.man)], subject: "ben", key: SecretBox.newKey())
        func referral(case caseID: String, beneficiary: String = "ben", household: String = "hh-1") -> JSONObject {
            ["case": .string(caseID), "beneficiary": .string(beneficiary), "household": .string(household), "to": "casa", "sealed": sealed]
        }
        #expect(try circuit.byStaff("case.referred", referral(case: "c-1", beneficiary: Self.man)) == .invalidBody)
        #expect(try circuit.byStaff("case.referred", referral(case: "c-1", beneficiary: "ben-" + Self.woman.lowercased())) == .invalidBody)
        #expect(try circuit.byStaff("case.referred", referral(case: Self.omocode)) == .invalidBody)
        #expect(try circuit.byStaff("case.referred", referral(case: "c-1", household: "hh-" + Self.man)) == .invalidBody)
        #expect(try circuit.byStaff("case.referred", referral(case: "c-1"), id: "evt-" + Self.man) == .invalidEvent)
        // Sealed, the same tax code is what the ledger expects.
        #expect(try circuit.byStaff("case.referred", referral(case: "c-1")) == nil)
        let wallet = Ed25519PrivateKey()
        #expect(try circuit.byStaff("actor.registered", [
            "actor": "ben-2", "role": "beneficiary", "organisation": "casa", "name": .string("Mario Rossi \(Self.man)"),
            "keys": .array([.string(wallet.publicKey.multikey)]),
        ]) == .invalidBody)
        #expect(try circuit.byStaff("opportunity.published", [
            "opportunity": "garden-2", "title": "Orto", "description": .string("Referente: \(Self.woman)"), "category": "civic_utility",
            "district": "san_salvario",
        ]) == .invalidBody)
        let badge = try circuit.earnBadge("b-1")
        #expect(try circuit.byStaff("badge.revoked", ["badge": .string(badge), "reason": .string("Issued to \(Self.man) by mistake")]) == .invalidBody)
        #expect(try circuit.byStaff("badge.issued", ["badge": "b-2", "badge_class": "class-5", "beneficiary": "ben", "activations": .array([.string(Self.man)])]) == .invalidBody)
        // An organisation's own contacts are not a person's tax code: guidance, not a refusal (Specs/events.md 1.6).
        #expect(try circuit.byStaff("badge.revoked", ["badge": .string(badge), "reason": "Duplicate: write to info@casa.example"]) == nil)
    }
}
