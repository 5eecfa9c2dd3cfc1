import CircuitoCore
import Foundation
import CircuitoCrypto
import Testing

@Suite("Rulebook: genesis")
struct GenesisRuleTests {
    func genesisBody(authority: Ed25519PrivateKey, checkpoint: Ed25519PrivateKey, currency: JSONValue = ["code": "TOC", "decimals": 2]) -> JSONObject {
        [
            "origin": "test.example/ledger",
            "authority": .object(["actor": "city", "name": "City", "keys": .array([.string(authority.publicKey.multikey)])]),
            "checkpoint_key": .string(checkpoint.publicKey.multikey), "currency": currency,
        ]
    }

    func check(_ event: VerifiedEvent, at sequenceNumber: UInt64 = 0, state: MemoryLedgerState = MemoryLedgerState()) -> LedgerError.Code? {
        do {
            _ = try Rulebook.check(event, at: LogPosition(sequenceNumber: sequenceNumber, recordedAt: "2026-11-22T10:00:00.000Z"), state: state)
            return nil
        } catch {
            return error.code
        }
    }

    @Test("genesis is accepted only at seq 0, signed by the authority it names, with TOC/2")
    func genesis() throws {
        var factory = EventFactory()
        let authority = Ed25519PrivateKey(), checkpoint = Ed25519PrivateKey()
        let good = try factory.make("ledger.genesis", by: "city", key: authority, genesisBody(authority: authority, checkpoint: checkpoint))
        #expect(check(good) == nil)
        #expect(check(good, at: 1) == .genesisAlreadyWritten)
        #expect(check(try factory.make("ledger.genesis", by: "other", key: authority, genesisBody(authority: authority, checkpoint: checkpoint))) == .invalidBody)
        #expect(check(try factory.make("ledger.genesis", by: "city", key: Ed25519PrivateKey(), genesisBody(authority: authority, checkpoint: checkpoint))) == .keyNotActive)
        #expect(check(try factory.make("ledger.genesis", by: "city", key: authority, genesisBody(authority: authority, checkpoint: checkpoint, currency: ["code": "EUR", "decimals": 2]))) == .invalidBody)
        #expect(check(try factory.make("ledger.genesis", by: "city", key: authority, genesisBody(authority: authority, checkpoint: authority))) == .keyInUse)
        var withExtra = genesisBody(authority: authority, checkpoint: checkpoint)
        withExtra["surprise"] = true
        #expect(check(try factory.make("ledger.genesis", by: "city", key: authority, withExtra)) == .invalidBody)
    }

    @Test("nothing is accepted before genesis, and genesis only once")
    func ordering() throws {
        var harness = try RuleHarness()
        #expect(try harness.submit("ledger.genesis", by: "city", key: harness.authority, genesisBody(authority: harness.authority, checkpoint: harness.checkpoint)) == .genesisAlreadyWritten)
        var factory = EventFactory()
        let early = try factory.make("actor.registered", by: "city", key: Ed25519PrivateKey(), ["actor": "a", "role": "merchant", "name": "A", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)])])
        #expect(check(early, at: 0) == .genesisRequired)
    }
}

@Suite("Rulebook: registration and permissions")
struct RegistrationRuleTests {
    func registration(_ id: String, _ role: String, key: Ed25519PrivateKey = Ed25519PrivateKey(), organisation: String? = nil) -> JSONObject {
        var body: JSONObject = ["actor": .string(id), "role": .string(role), "name": .string("Name of \(id)"), "keys": .array([.string(key.publicKey.multikey)])]
        if let organisation { body["organisation"] = .string(organisation) }
        return body
    }

    @Test("the authority registers every role but authority")
    func authorityRegisters() throws {
        var harness = try RuleHarness()
        for role in ["organisation", "merchant", "auditor", "beneficiary"] {
            #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("\(role)-1", role)) == nil)
        }
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("staff-1", "staff", organisation: "organisation-1")) == nil)
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("second-city", "authority")) == .roleNotPermitted)
        #expect(try harness.state.actor("staff-1")?.organisation == "organisation-1")
    }

    @Test("organisations register their own staff and beneficiaries; staff their organisation's beneficiaries")
    func delegatedRegistration() throws {
        var harness = try RuleHarness()
        let organisation = try harness.register("casa", role: "organisation")
        try harness.register("other-org", role: "organisation")
        #expect(try harness.submit("actor.registered", by: "casa", key: organisation, registration("op-1", "staff", organisation: "casa")) == nil)
        #expect(try harness.submit("actor.registered", by: "casa", key: organisation, registration("op-2", "staff", organisation: "other-org")) == .roleNotPermitted)
        #expect(try harness.submit("actor.registered", by: "casa", key: organisation, registration("shop", "merchant")) == .roleNotPermitted)
        let staff = try harness.register("op-3", role: "staff", organisation: "casa")
        #expect(try harness.submit("actor.registered", by: "op-3", key: staff, registration("ben-1", "beneficiary", organisation: "casa")) == nil)
        #expect(try harness.submit("actor.registered", by: "op-3", key: staff, registration("ben-2", "beneficiary", organisation: "other-org")) == .roleNotPermitted)
        #expect(try harness.submit("actor.registered", by: "op-3", key: staff, registration("ben-3", "beneficiary")) == .roleNotPermitted)
        #expect(try harness.submit("actor.registered", by: "op-3", key: staff, registration("op-4", "staff", organisation: "casa")) == .roleNotPermitted)
    }

    @Test("roles that may not sign a type are refused with role_not_permitted")
    func permissionMatrix() throws {
        var harness = try RuleHarness()
        let merchant = try harness.register("shop", role: "merchant")
        let auditor = try harness.register("auditor", role: "auditor")
        let beneficiary = try harness.register("ben", role: "beneficiary")
        for (actor, key) in [("shop", merchant), ("auditor", auditor), ("ben", beneficiary)] {
            #expect(try harness.submit("actor.registered", by: actor, key: key, registration("x-\(actor)", "beneficiary")) == .roleNotPermitted)
            #expect(try harness.submit("actor.suspended", by: actor, key: key, ["actor": "shop", "reason": "no"]) == .roleNotPermitted)
        }
        #expect(try harness.submit("no.such_type", by: "shop", key: merchant, [:]) == .unknownEventType)
    }

    @Test("registration body refusals")
    func bodyRefusals() throws {
        var harness = try RuleHarness()
        let shared = Ed25519PrivateKey()
        try harness.register("org", role: "organisation")
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("a", "merchant", key: shared)) == nil)
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("b", "merchant", key: shared)) == .keyInUse)
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("a", "merchant")) == .actorExists)
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("c", "wizard")) == .invalidBody)
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("d", "staff")) == .invalidBody)
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("e", "staff", organisation: "nowhere")) == .unknownOrganisation)
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, registration("e2", "merchant", organisation: "org")) == .invalidBody)
        var noKeys = registration("f", "merchant")
        noKeys["keys"] = .array([])
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, noKeys) == .invalidBody)
        var badKey = registration("g", "merchant")
        badKey["keys"] = .array(["z6MkNope"])
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, badKey) == .invalidKey)
        var emptyName = registration("h", "merchant")
        emptyName["name"] = ""
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, emptyName) == .invalidBody)
        var extra = registration("i", "merchant")
        extra["tax_code"] = "RSSMRA80A01L219X"
        #expect(try harness.submit("actor.registered", by: "city", key: harness.authority, extra) == .invalidBody)
    }

    @Test("unknown signers and keys that are not the signer's are refused")
    func signerChecks() throws {
        var harness = try RuleHarness()
        let stranger = Ed25519PrivateKey()
        #expect(try harness.submit("actor.registered", by: "ghost", key: stranger, registration("x", "merchant")) == .unknownActor)
        try harness.register("shop", role: "merchant")
        #expect(try harness.submit("actor.key_added", by: "shop", key: stranger, ["actor": "shop", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .keyNotActive)
        // The authority's key used under another actor's name.
        #expect(try harness.submit("actor.key_added", by: "shop", key: harness.authority, ["actor": "shop", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .keyNotActive)
    }
}

@Suite("Rulebook: keys and suspension")
struct KeyRuleTests {
    @Test("a key rotation: add, use the new key, revoke the old one, the old one no longer signs")
    func rotation() throws {
        var harness = try RuleHarness()
        let old = try harness.register("shop", role: "merchant")
        let new = Ed25519PrivateKey()
        #expect(try harness.submit("actor.key_added", by: "shop", key: old, ["actor": "shop", "key": .string(new.publicKey.multikey)]) == nil)
        #expect(try harness.submit("actor.key_revoked", by: "shop", key: new, ["actor": "shop", "key": .string(old.publicKey.multikey), "reason": "rotation"]) == nil)
        #expect(try harness.submit("actor.key_added", by: "shop", key: old, ["actor": "shop", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .keyNotActive)
        // A revoked key can never come back, for anyone.
        #expect(try harness.submit("actor.key_added", by: "shop", key: new, ["actor": "shop", "key": .string(old.publicKey.multikey)]) == .keyInUse)
        #expect(try harness.state.actor("shop")?.keys[old.publicKey.multikey] == .revoked)
        #expect(try harness.state.actor("shop")?.activeKeys == [new.publicKey.multikey])
    }

    @Test("the last active key cannot be revoked; only active keys can be")
    func lastKey() throws {
        var harness = try RuleHarness()
        let key = try harness.register("shop", role: "merchant")
        #expect(try harness.submit("actor.key_revoked", by: "shop", key: key, ["actor": "shop", "key": .string(key.publicKey.multikey)]) == .lastKey)
        #expect(try harness.submit("actor.key_revoked", by: "shop", key: key, ["actor": "shop", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .keyNotActive)
    }

    @Test("who manages whom: actors manage their own keys; staff their organisation's beneficiaries; no one else")
    func management() throws {
        var harness = try RuleHarness()
        let organisation = try harness.register("casa", role: "organisation")
        try harness.register("other", role: "organisation")
        let staff = try harness.register("op", role: "staff", organisation: "casa")
        let otherStaff = try harness.register("op-other", role: "staff", organisation: "other")
        try harness.register("ben", role: "beneficiary", by: "op", key: staff, organisation: "casa")
        let shop = try harness.register("shop", role: "merchant")
        let lostCard = Ed25519PrivateKey()
        #expect(try harness.submit("actor.key_added", by: "op", key: staff, ["actor": "ben", "key": .string(lostCard.publicKey.multikey)]) == nil)
        #expect(try harness.submit("actor.key_added", by: "op-other", key: otherStaff, ["actor": "ben", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .roleNotPermitted)
        #expect(try harness.submit("actor.key_added", by: "shop", key: shop, ["actor": "ben", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .roleNotPermitted)
        #expect(try harness.submit("actor.key_added", by: "casa", key: organisation, ["actor": "op", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == nil)
        #expect(try harness.submit("actor.key_added", by: "casa", key: organisation, ["actor": "shop", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .roleNotPermitted)
        #expect(try harness.submit("actor.key_added", by: "op", key: staff, ["actor": "nobody", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .unknownActor)
        // Staff manage their organisation's beneficiaries, not their colleagues: no key, revocation or suspension.
        let colleague = try harness.register("op-2", role: "staff", by: "casa", key: organisation, organisation: "casa")
        #expect(try harness.submit("actor.key_added", by: "op", key: staff, ["actor": "op-2", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .roleNotPermitted)
        #expect(try harness.submit("actor.suspended", by: "op", key: staff, ["actor": "op-2", "reason": "not theirs"]) == .roleNotPermitted)
        // Revoking is managed as adding is: the shop and the other organisation's staff may not take ben's keys away.
        #expect(try harness.submit("actor.key_revoked", by: "shop", key: shop, ["actor": "ben", "key": .string(lostCard.publicKey.multikey)]) == .roleNotPermitted)
        #expect(try harness.submit("actor.key_revoked", by: "op-other", key: otherStaff, ["actor": "ben", "key": .string(lostCard.publicKey.multikey)]) == .roleNotPermitted)
        #expect(try harness.submit("actor.key_revoked", by: "op-2", key: colleague, ["actor": "op", "key": .string(staff.publicKey.multikey)]) == .roleNotPermitted)
        #expect(try harness.state.actor("ben")?.keys[lostCard.publicKey.multikey] == .active)
        #expect(try harness.submit("actor.key_revoked", by: "op", key: staff, ["actor": "ben", "key": .string(lostCard.publicKey.multikey), "reason": "card found"]) == nil)
        #expect(try harness.state.actor("ben")?.keys[lostCard.publicKey.multikey] == .revoked)
    }

    @Test("an actor has had at most 64 keys, revoked ones counted")
    func keyBound() throws {
        var harness = try RuleHarness()
        var current = try harness.register("shop", role: "merchant")
        // 1 registered + 63 added, each revoking the one before: one key active, 64 had.
        for _ in 1..<64 {
            let next = Ed25519PrivateKey()
            #expect(try harness.submit("actor.key_added", by: "shop", key: current, ["actor": "shop", "key": .string(next.publicKey.multikey)]) == nil)
            #expect(try harness.submit("actor.key_revoked", by: "shop", key: next, ["actor": "shop", "key": .string(current.publicKey.multikey)]) == nil)
            current = next
        }
        #expect(try harness.state.actor("shop")?.keys.count == 64)
        #expect(try harness.state.actor("shop")?.activeKeys == [current.publicKey.multikey])
        #expect(try harness.submit("actor.key_added", by: "shop", key: current, ["actor": "shop", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .invalidBody)
        #expect(try harness.state.actor("shop")?.keys.count == 64)
    }

    @Test("a suspended actor can sign nothing; the authority cannot be suspended")
    func suspension() throws {
        var harness = try RuleHarness()
        let shop = try harness.register("shop", role: "merchant")
        let organisation = try harness.register("casa", role: "organisation")
        #expect(try harness.submit("actor.suspended", by: "casa", key: organisation, ["actor": "shop", "reason": "not ours"]) == .roleNotPermitted)
        #expect(try harness.submit("actor.suspended", by: "city", key: harness.authority, ["actor": "shop", "reason": "withdrawn"]) == nil)
        #expect(try harness.submit("actor.key_added", by: "shop", key: shop, ["actor": "shop", "key": .string(Ed25519PrivateKey().publicKey.multikey)]) == .actorSuspended)
        #expect(try harness.submit("actor.suspended", by: "city", key: harness.authority, ["actor": "shop", "reason": "again"]) == .actorSuspended)
        #expect(try harness.submit("actor.suspended", by: "city", key: harness.authority, ["actor": "city", "reason": "no"]) == .roleNotPermitted)
        #expect(try harness.submit("actor.suspended", by: "city", key: harness.authority, ["actor": "shop"]) == .invalidBody)
    }

    @Test("an event id is used once; a refused event leaves the state as it was")
    func idsAndNoTrace() throws {
        var harness = try RuleHarness()
        try harness.register("shop", role: "merchant")
        let before = harness.state
        #expect(try harness.submit("actor.suspended", by: "city", key: harness.authority, ["actor": "shop", "reason": "x"], id: "genesis") == .idConflict)
        #expect(try harness.submit("actor.suspended", by: "city", key: harness.authority, ["actor": "nobody", "reason": "x"]) == .unknownActor)
        #expect(harness.state.tables == before.tables)
    }
}

@Suite("Specification vectors")
struct SpecVectorTests {
    @Test("Specs/vectors holds exactly what the code generates (run `circuito vectors` after a format change)")
    func committedVectorsMatch() throws {
        let generated = try SpecVectors.generate()
        let folder = repositoryRoot.appendingPathComponent("Specs/vectors")
        for (name, content) in generated {
            let committed = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            #expect(committed == content, "Specs/vectors/\(name) differs from the generated vector")
        }
    }

    /// Specs/events.md quotes a record of the circuit sample for each event type: `**Example** (record N,
    /// `recorded_at` T…` and then the signed event on one line. A reader checks them against the sample, so they
    /// must be the sample's, and one per type that `circuit-sample.json`'s `examples` names.
    @Test("every example Specs/events.md quotes is the circuit sample's record it names, byte for byte")
    func eventExamplesAreTheSample() throws {
        let specs = repositoryRoot.appendingPathComponent("Specs")
        let lines = try String(contentsOf: specs.appendingPathComponent("events.md"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let records = try String(contentsOf: specs.appendingPathComponent("vectors/circuit-sample.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try Record(leafBytes: Array($0.utf8)) }
        let sample = try JSONParser.parse(try String(contentsOf: specs.appendingPathComponent("vectors/circuit-sample.json"), encoding: .utf8))
        var quoted: [String: Int64] = [:]
        for (index, line) in lines.enumerated() where line.hasPrefix("**Example** (record ") {
            let header = line.dropFirst("**Example** (record ".count)
            let number = try #require(Int(header.prefix { $0.isNumber }), "line \(index + 1): \(line)")
            let afterNumber = header.drop { $0.isNumber }
            #expect(afterNumber.hasPrefix(", `recorded_at` "), "line \(index + 1): \(line)")
            let recordedAt = String(afterNumber.dropFirst(", `recorded_at` ".count).prefix { !";,) ".contains($0) })
            let record = try #require(records.indices.contains(number) ? records[number] : nil, "line \(index + 1) names record \(number)")
            #expect(recordedAt == record.recordedAt, "line \(index + 1): record \(number) was recorded at \(record.recordedAt)")
            let quotedEvent = try #require(lines[(index + 1)...].prefix(6).first { $0.hasPrefix("{") }, "line \(index + 1): no event follows")
            #expect(quotedEvent == String(decoding: record.signedEvent.canonicalBytes, as: UTF8.self), "line \(index + 1): not record \(number)'s signed event")
            #expect(quoted.updateValue(Int64(number), forKey: record.signedEvent.event.type) == nil, "two examples of \(record.signedEvent.event.type)")
        }
        var named: [String: Int64] = [:]
        for (type, seq) in try #require(sample["examples"]?.objectValue) {
            guard case .integer(let number) = seq else { Issue.record("examples.\(type) is not a seq"); continue }
            named[type] = number
        }
        #expect(quoted == named)
    }

    /// The verifier is libsodium's, strict as Specs/ledger.md 3.1 says: were it swapped for a permissive one (as
    /// OpenSSL's is), the crafted signatures would pass and this would fail.
    @Test("the signature vectors: only the valid one verifies; S + L, a small-order R or key and a non-canonical key are refused")
    func signatureEdgeCases() throws {
        let file = try #require(try SpecVectors.generate()["signatures.json"])
        let cases = try #require(try JSONParser.parse(file).arrayValue)
        #expect(cases.map { $0["valid"] } == [true, false, false, false, false])
        #expect(cases.first?["signature_hex"]?.stringValue?.count == 128)
    }

    @Test("the RFC 6962 reference roots in the generated vectors are the published ones")
    func referenceRoots() throws {
        let merkle = try JSONParser.parse(try #require(SpecVectors.generate()["merkle.json"]))
        let roots = try #require(merkle["roots"]?.arrayValue).compactMap { $0["root_hex"]?.stringValue }
        // Published in RFC 6962 reference tests (Certificate Transparency, transparency-dev/merkle).
        #expect(roots.last == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
        #expect(roots.first == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    }
}

@Suite("Rulebook: the tables no rule reads")
struct QueryOnlyTableTests {
    @Test("over a generated demo year the rules read the tables they need, none of StateTable.queryOnly, which they write")
    func demoYearReadsNoQueryOnlyTable() throws {
        var circuit = try DemoCircuit(seed: 5, beneficiaryCount: 12)
        var state = MemoryLedgerState()
        var tablesRead: Set<StateTable> = []
        var size: UInt64 = 0
        func accept(_ event: VerifiedEvent, at recordedAt: String) throws {
            let view = RulesReadingView(state)
            defer { view.expectNoQueryOnlyRead(of: event) }
            state.apply(try Rulebook.check(event, at: LogPosition(sequenceNumber: size, recordedAt: recordedAt), state: view))
            tablesRead.formUnion(view.tablesRead)
            size += 1
        }
        try accept(try circuit.genesis.verified(), at: Timestamp.format(millisecondsSince1970: circuit.genesisMilliseconds))
        var steps = 0
        while let batches = try circuit.nextBatches(), steps <= circuit.stepCount {
            steps += 1
            for batch in batches {
                let recordedAt = Timestamp.format(millisecondsSince1970: batch.recordedAtMilliseconds)
                for signed in batch.events { try accept(try signed.verified(), at: recordedAt) }
            }
        }
        #expect(size > 500)
        #expect(tablesRead.isDisjoint(with: StateTable.queryOnly), "\(tablesRead.intersection(StateTable.queryOnly))")
        // The view sees the rules' reads (so the check above is about something), and the demo writes every
        // query-only table (so the rules that write them ran).
        #expect(tablesRead.isSuperset(of: [.meta, .eventIDs, .actors, .policy, .balances, .lots, .cases, .badgeClasses]))
        for table in StateTable.queryOnly { #expect(state.tables[table]?.isEmpty == false, "the demo wrote nothing in \(table)") }
    }

    @Test("the rule tests' view records every table read, and which of them no rule may read")
    func viewRecordsReads() throws {
        let view = RulesReadingView(MemoryLedgerState())
        _ = try view.value(.balances, [])
        #expect(view.tablesRead.isDisjoint(with: StateTable.queryOnly))
        _ = try view.value(.caseHistory, [])
        _ = try view.entries(.accountHistory, prefix: [], limit: 1)
        _ = try view.json(.catalogueIndex, [])
        _ = try view.actor("someone")
        #expect(view.tablesRead == [.balances, .caseHistory, .accountHistory, .catalogueIndex, .actors])
        #expect(view.tablesRead.intersection(StateTable.queryOnly) == Set(StateTable.queryOnly))
    }
}
