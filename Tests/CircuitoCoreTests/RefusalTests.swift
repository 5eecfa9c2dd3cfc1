import CircuitoCore
import CircuitoCrypto
import Foundation
import Testing

/// Refusals of the rulebook that no other suite reached (found by code coverage): each is what a signer gets for a
/// body the rules do not take, and the state stays as it was.
@Suite("Circuit: refusals of bodies the rules do not take")
struct RefusalRuleTests {
    @Test("an opportunity or badge class that does not exist is unknown_reference; another organisation's class is role_not_permitted")
    func unknownCatalogueEntries() throws {
        var circuit = try Circuit()
        #expect(try circuit.byStaff("opportunity.withdrawn", ["opportunity": "nowhere"]) == .unknownReference)
        #expect(try circuit.byStaff("opportunity.updated", ["opportunity": "nowhere", "title": "Somewhere"]) == .unknownReference)
        #expect(try circuit.byStaff("badge_class.retired", ["badge_class": "no-class"]) == .unknownReference)
        #expect(try circuit.byStaff("badge_class.defined", ["badge_class": "casa-class", "name": "n", "description": "d", "criteria": "c", "credits": 5]) == nil)
        let other = try circuit.harness.register("other-org", role: "organisation")
        #expect(try circuit.submit("badge_class.retired", by: "other-org", key: other, ["badge_class": "casa-class"]) == .roleNotPermitted)
        #expect(try circuit.harness.state.json(.badgeClasses, "casa-class")?["status"] == "active")
    }

    @Test("free text is 1 to 2000 bytes: an empty or longer description is invalid_body and publishes nothing")
    func textBounds() throws {
        var circuit = try Circuit()
        var body: JSONObject = ["opportunity": "walks", "title": "Walks", "description": "", "category": "sport", "district": "centro"]
        #expect(try circuit.byStaff("opportunity.published", body) == .invalidBody)
        body["description"] = .string(String(repeating: "a", count: Rulebook.maximumTextBytes + 1))
        #expect(try circuit.byStaff("opportunity.published", body) == .invalidBody)
        #expect(try circuit.harness.state.json(.opportunities, "walks") == nil)
        body["description"] = .string(String(repeating: "a", count: Rulebook.maximumTextBytes))
        #expect(try circuit.byStaff("opportunity.published", body) == nil)
    }

    @Test("a plan's goals are distinct opportunity categories; a case closes only with a known outcome")
    func planGoalsAndOutcomes() throws {
        var circuit = try Circuit()
        let sealed = SealedData.seal(["name": "Mario Rossi"], subject: "ben", key: SecretBox.newKey())
        #expect(try circuit.byStaff("case.referred", ["case": "c-1", "beneficiary": "ben", "household": "hh-1", "to": "casa", "sealed": sealed]) == nil)
        #expect(try circuit.byStaff("case.opened", ["case": "c-1"]) == nil)
        #expect(try circuit.byStaff("case.plan_agreed", ["case": "c-1", "goals": ["skydiving"]]) == .invalidBody)
        #expect(try circuit.byStaff("case.plan_agreed", ["case": "c-1", "goals": ["training", "training"]]) == .invalidBody)
        #expect(try circuit.byStaff("case.plan_agreed", ["case": "c-1", "goals": ["Training"]]) == .invalidBody)
        #expect(try circuit.harness.state.json(.cases, "c-1")?["goals"] == nil)
        #expect(try circuit.byStaff("case.closed", ["case": "c-1", "outcome": "vanished"]) == .invalidBody)
        #expect(try circuit.harness.state.json(.cases, "c-1")?["status"] == "open")
        #expect(try circuit.byStaff("case.closed", ["case": "c-1", "outcome": "unreachable"]) == nil)
    }

    @Test("an erasure names the subject's own case: another person's case is invalid_body, and so is a case that is no identifier, even from the authority")
    func erasureCase() throws {
        var circuit = try Circuit()
        let sealed = SealedData.seal(["name": "Lia"], subject: "ben-2", key: SecretBox.newKey())
        try circuit.harness.register("ben-2", role: "beneficiary", by: "op", key: circuit.staff, organisation: "casa")
        #expect(try circuit.byStaff("case.referred", ["case": "c-2", "beneficiary": "ben-2", "household": "hh-2", "to": "casa", "sealed": sealed]) == nil)
        #expect(try circuit.byStaff("case.opened", ["case": "c-2"]) == nil)
        #expect(try circuit.byStaff("subject.erased", ["beneficiary": "ben", "case": "c-2"]) == .invalidBody)
        #expect(try circuit.byCity("subject.erased", ["beneficiary": "ben", "case": "not an id"]) == .invalidBody)
        #expect(try circuit.harness.state.json(.subjects, "ben") == nil)
        #expect(try circuit.byCity("subject.erased", ["beneficiary": "ben"]) == nil)
    }

    @Test("an id registered with another role gives no standing: once the authority registers a referred person's id as a merchant, the case's holder may no longer add to it nor erase them")
    func standingEndsWithAnotherRole() throws {
        var circuit = try Circuit()
        let hub = try circuit.harness.register("hub", role: "organisation")
        let sealed = SealedData.seal(["name": "Walk-in"], subject: "walk-in", key: SecretBox.newKey())
        #expect(try circuit.submit("case.referred", by: "hub", key: hub, ["case": "c-w", "beneficiary": "walk-in", "household": "hh-w", "to": "casa", "sealed": sealed]) == nil)
        #expect(try circuit.byStaff("case.opened", ["case": "c-w"]) == nil)
        #expect(try circuit.byStaff("case.note_added", ["case": "c-w", "sealed": sealed]) == nil)
        #expect(try circuit.byCity("actor.registered", ["actor": "walk-in", "role": "merchant", "name": "Walk-in shop", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)])]) == nil)
        #expect(try circuit.byStaff("case.note_added", ["case": "c-w", "sealed": sealed]) == .notCaseHolder)
        #expect(try circuit.byStaff("subject.erased", ["beneficiary": "walk-in", "case": "c-w"]) == .notCaseHolder)
        #expect(try circuit.harness.state.json(.subjects, "walk-in") == nil)
        // Closing needs no standing.
        #expect(try circuit.byStaff("case.closed", ["case": "c-w", "outcome": "not_eligible"]) == nil)
    }

    @Test("a registration names each key once, and only an organisation has a district")
    func registrationBody() throws {
        var circuit = try Circuit()
        let key = Ed25519PrivateKey().publicKey.multikey
        #expect(try circuit.byCity("actor.registered", ["actor": "twice", "role": "merchant", "name": "Twice", "keys": .array([.string(key), .string(key)])]) == .invalidBody)
        #expect(try circuit.byCity("actor.registered", ["actor": "corner", "role": "merchant", "name": "Corner", "district": "centro", "keys": .array([.string(key)])]) == .invalidBody)
        #expect(try circuit.harness.state.actor("twice") == nil && circuit.harness.state.actor("corner") == nil)
        #expect(try circuit.byCity("actor.registered", ["actor": "corner", "role": "merchant", "name": "Corner", "keys": .array([.string(key)])]) == nil)
    }

    @Test("sealed personal data holds 16 to 16384 bytes of ciphertext: shorter than the tag or longer is invalid_body")
    func sealedCiphertextBounds() throws {
        var circuit = try Circuit()
        func sealed(ciphertextBytes: Int) -> JSONValue {
            ["alg": "xchacha20poly1305", "nonce": .string(Base64.encode([UInt8](repeating: 7, count: SecretBox.nonceByteCount))),
             "ciphertext": .string(Base64.encode([UInt8](repeating: 9, count: ciphertextBytes)))]
        }
        let body: (Int) -> JSONObject = { ["case": "c-1", "beneficiary": "ben", "household": "hh-1", "to": "casa", "sealed": sealed(ciphertextBytes: $0)] }
        #expect(try circuit.byStaff("case.referred", body(SecretBox.tagByteCount - 1)) == .invalidBody)
        #expect(try circuit.byStaff("case.referred", body(SealedData.maximumCiphertextBytes + 1)) == .invalidBody)
        #expect(try circuit.harness.state.json(.cases, "c-1") == nil)
        #expect(try circuit.byStaff("case.referred", body(SealedData.maximumCiphertextBytes)) == nil)
    }

    @Test("a conversion worth more than 10^12 cents at the policy's rate is invalid_body, and its badges stay unconverted")
    func conversionOutOfRange() throws {
        var circuit = try Circuit()
        let badge = try circuit.earnBadge("b-1", credits: 5)
        #expect(try circuit.byCity("policy.updated", [
            "conversion_rate_cents_per_credit": .integer(Amounts.maximum), "monthly_conversion_cap_cents": .integer(Amounts.maximum),
            "lot_validity_days": 30, "categories": .array(Circuit.categories),
        ]) == nil)
        #expect(try circuit.byStaff("credits.converted", ["beneficiary": "ben", "badges": .array([.string(badge)])]) == .invalidBody)
        #expect(try circuit.harness.state.json(.badges, badge)?["converted"] == false)
        #expect(try circuit.balance(Account.beneficiary("ben")) == 0)
    }

    @Test("a genesis whose origin has a space or a '+' is invalid_body: the origin is what payment authorisations name")
    func genesisOrigin() throws {
        let authority = Ed25519PrivateKey()
        var factory = EventFactory()
        for origin in ["city ledger", "city+ledger", ""] {
            let genesis = try factory.make("ledger.genesis", by: "city", key: authority, [
                "origin": .string(origin),
                "authority": .object(["actor": "city", "name": "City", "keys": .array([.string(authority.publicKey.multikey)])]),
                "checkpoint_key": .string(Ed25519PrivateKey().publicKey.multikey),
                "currency": .object(["code": "TOC", "decimals": 2]),
            ], id: "genesis")
            do throws(LedgerError) {
                _ = try Rulebook.check(genesis, at: LogPosition(sequenceNumber: 0, recordedAt: "2026-11-22T10:00:00.000Z"), state: MemoryLedgerState())
                Issue.record("a genesis with origin \(origin.debugDescription) was accepted")
            } catch {
                #expect(error.code == .invalidBody && error.message.contains("origin"), "origin \(origin.debugDescription): \(error)")
            }
        }
    }
}

@Suite("Events: members of the wrong type")
struct EventMemberTypeTests {
    @Test("an event whose id, type, actor, key or ts is not a string is invalid_event naming the member")
    func nonStringMembers() throws {
        var factory = EventFactory()
        let signed = try factory.make("program.funded", by: "city", key: Ed25519PrivateKey(), ["amount": 5, "reference": "r"])
        let json = signed.signedEvent.json
        var event = try #require(json["event"]?.objectValue)
        #expect(throws: Never.self) { _ = try SignedEvent(submitted: json) }
        for member in ["id", "type", "actor", "key", "ts"] {
            let original = event[member]
            for wrong: JSONValue in [5, .null, true, ["x"]] {
                event[member] = wrong
                do throws(LedgerError) {
                    _ = try SignedEvent(submitted: .object(["event": .object(event), "sig": json["sig"] ?? .null]))
                    Issue.record("an event with \(member) \(CanonicalJSON.encodeString(wrong)) was read")
                } catch {
                    #expect(error.code == .invalidEvent && error.message.contains("field \"\(member)\" must be a string"), "\(member): \(error)")
                }
            }
            event[member] = original
        }
    }
}
