import CircuitoCrypto

/// The test vectors published in `Specs/vectors/`, generated from fixed seeds so that anyone can check them and
/// the project's tests can check that the committed files are what the code produces.
public enum SpecVectors {
    /// A deterministic Ed25519 key: seed = SHA-256("circuito spec vector key: " ‖ label).
    public static func key(_ label: String) -> Ed25519PrivateKey {
        guard let key = Ed25519PrivateKey(seed: SHA256.hash(Array("circuito spec vector key: \(label)".utf8))) else {
            preconditionFailure("SHA-256 gives 32 bytes, an Ed25519 seed")
        }
        return key
    }

    public static let origin = "circuito.example/spec-ledger"
    static let baseMilliseconds: Int64 = 1_795_000_000_000  // 2026-11-18T…Z

    /// File name → content.
    public static func generate() throws(LedgerError) -> [String: String] {
        [
            "canonical-json.json": pretty(canonicalJSONCases()),
            "keys.json": pretty(keyCases()),
            "events.json": pretty(try eventCases()),
            "merkle.json": pretty(try merkleCases()),
            "checkpoint.json": pretty(try checkpointCase()),
            "sample-ledger.jsonl": try sampleLedger().records,
            "sample-ledger.json": pretty(try sampleLedger().summary),
        ]
    }

    /// Canonical JSON, one member per line at the top level so that diffs stay readable.
    static func pretty(_ value: JSONValue) -> String {
        switch value {
        case .array(let elements):
            return "[\n" + elements.map { "  " + CanonicalJSON.encodeString($0) }.joined(separator: ",\n") + "\n]\n"
        case .object(let members):
            let keys = members.keys.sorted { Array($0.utf16).lexicographicallyPrecedes(Array($1.utf16)) }
            return "{\n" + keys.map { "  " + CanonicalJSON.encodeString(.string($0)) + ": " + CanonicalJSON.encodeString(members[$0] ?? .null) }
                .joined(separator: ",\n") + "\n}\n"
        default:
            return CanonicalJSON.encodeString(value) + "\n"
        }
    }

    // MARK: Canonical JSON

    static let canonicalInputs: [(String, String)] = [
        ("key order by UTF-16 code units", #"{"\u20ac":"euro","\r":"cr","\ufb33":"hebrew","1":"one","\ud83d\ude00":"emoji","\u0080":"control","\u00f6":"o-umlaut"}"#),
        ("string escapes", #"{"s":"\u0000\u0001\b\t\n\f\r\u001f \"\\ / \u007f \u2028 é 😀"}"#),
        ("nested objects and arrays, whitespace removed", "{ \"b\" : [ 1 , { \"z\" : true , \"a\" : null } ] , \"a\" : { } , \"c\" : [ ] }"),
        ("integers", #"{"zero":0,"minus_zero":-0,"negative":-42,"largest_exact":9007199254740991,"smallest_exact":-9007199254740991}"#),
        ("numbers that are not integers (printed as ECMAScript does; refused inside events)", #"[1.0,1.5e1,1e21,1e-7,0.000001,333333333.33333329,1E30,4.50,2e-3]"#),
    ]

    static let refusedInputs: [(String, String)] = [
        ("duplicate key", #"{"a":1,"a":2}"#),
        ("lone surrogate", #"{"a":"\ud800"}"#),
        ("trailing comma", #"[1,2,]"#),
        ("leading zero", #"[01]"#),
        ("two values", #"{} {}"#),
        ("number overflowing a double", #"[1e400]"#),
    ]

    static func canonicalJSONCases() -> JSONValue {
        var cases: [JSONValue] = []
        for (name, input) in canonicalInputs {
            // The inputs above are fixed and valid; a failure here is a bug in the parser.
            guard let value = try? JSONParser.parse(input) else { preconditionFailure("vector input \(name) must parse") }
            let canonical = CanonicalJSON.encode(value)
            cases.append(.object([
                "name": .string(name), "input": .string(input), "canonical": .string(String(decoding: canonical, as: UTF8.self)),
                "canonical_sha256_hex": .string(SHA256.hash(canonical).hexString),
            ]))
        }
        for (name, input) in refusedInputs {
            cases.append(.object(["name": .string(name), "input": .string(input), "refused": .bool(true)]))
        }
        return .array(cases)
    }

    // MARK: Keys

    static let keyLabels = ["authority", "organisation", "staff", "merchant", "beneficiary", "checkpoint"]

    static func keyCases() -> JSONValue {
        .array(keyLabels.map { label in
            let key = key(label)
            return .object([
                "label": .string(label), "seed_hex": .string(key.seed.hexString),
                "public_key_hex": .string(key.publicKey.bytes.hexString),
                "publicKeyMultibase": .string(key.publicKey.multikey),
                "privateKeyMultibase": .string(Multikey.encodeSecret(key)),
                "did": .string("did:key:" + key.publicKey.multikey),
            ])
        })
    }

    // MARK: Events and records

    static func timestamp(_ offsetSeconds: Int64) -> String {
        Timestamp.format(millisecondsSince1970: baseMilliseconds + offsetSeconds * 1000)
    }

    /// The sample ledger's events, in order: genesis, registrations, a key rotation and a suspension.
    static func sampleEvents() throws(LedgerError) -> [SignedEvent] {
        let authority = key("authority"), organisation = key("organisation"), staff = key("staff")
        let merchant = key("merchant"), beneficiary = key("beneficiary"), checkpoint = key("checkpoint")
        let rotated = key("beneficiary rotated")
        func event(_ id: String, _ type: String, _ actor: String, _ signer: Ed25519PrivateKey, _ second: Int64, _ body: [String: JSONValue]) throws(LedgerError) -> SignedEvent {
            SignedEvent(signing: try Event(id: id, type: type, actor: actor, key: signer.publicKey.multikey, timestamp: timestamp(second), body: body), with: signer)
        }
        return [
            try event("genesis", "ledger.genesis", "pis-torino", authority, 0, [
                "origin": .string(origin),
                "authority": .object(["actor": "pis-torino", "name": "Città di Torino, Piano di Inclusione Sociale", "keys": .array([.string(authority.publicKey.multikey)])]),
                "checkpoint_key": .string(checkpoint.publicKey.multikey),
                "currency": .object(["code": "TOC", "decimals": 2]),
            ]),
            try event("evt-0001", "actor.registered", "pis-torino", authority, 10, [
                "actor": "casa-quartiere-san-salvario", "role": "organisation", "name": "Casa del Quartiere di San Salvario",
                "keys": .array([.string(organisation.publicKey.multikey)]),
            ]),
            try event("evt-0002", "actor.registered", "casa-quartiere-san-salvario", organisation, 20, [
                "actor": "operatore-giulia", "role": "staff", "name": "Operatrice sportello 1",
                "keys": .array([.string(staff.publicKey.multikey)]), "organisation": "casa-quartiere-san-salvario",
            ]),
            try event("evt-0003", "actor.registered", "pis-torino", authority, 30, [
                "actor": "bottega-via-nizza", "role": "merchant", "name": "Bottega di via Nizza",
                "keys": .array([.string(merchant.publicKey.multikey)]),
            ]),
            try event("evt-0004", "actor.registered", "operatore-giulia", staff, 40, [
                "actor": "ben-7f3a", "role": "beneficiary", "name": "ben-7f3a",
                "keys": .array([.string(beneficiary.publicKey.multikey)]), "organisation": "casa-quartiere-san-salvario",
            ]),
            try event("evt-0005", "actor.key_added", "ben-7f3a", beneficiary, 50, [
                "actor": "ben-7f3a", "key": .string(rotated.publicKey.multikey),
            ]),
            try event("evt-0006", "actor.key_revoked", "operatore-giulia", staff, 60, [
                "actor": "ben-7f3a", "key": .string(beneficiary.publicKey.multikey), "reason": "wallet card lost",
            ]),
            try event("evt-0007", "actor.suspended", "pis-torino", authority, 70, [
                "actor": "bottega-via-nizza", "reason": "enrolment withdrawn",
            ]),
        ]
    }

    /// Events that must be refused after the sample ledger, each with the stable error code.
    static func refusedEvents() throws(LedgerError) -> [(String, SignedEvent, LedgerError.Code)] {
        let beneficiary = key("beneficiary"), merchant = key("merchant"), staff = key("staff"), stranger = key("stranger")
        func event(_ id: String, _ type: String, _ actor: String, _ signer: Ed25519PrivateKey, _ body: [String: JSONValue]) throws(LedgerError) -> SignedEvent {
            SignedEvent(signing: try Event(id: id, type: type, actor: actor, key: signer.publicKey.multikey, timestamp: timestamp(100), body: body), with: signer)
        }
        return [
            ("signed with a revoked key", try event("bad-1", "actor.key_added", "ben-7f3a", beneficiary, ["actor": "ben-7f3a", "key": .string(stranger.publicKey.multikey)]), .keyNotActive),
            ("signed by a suspended actor", try event("bad-2", "actor.key_added", "bottega-via-nizza", merchant, ["actor": "bottega-via-nizza", "key": .string(stranger.publicKey.multikey)]), .actorSuspended),
            ("role may not sign this type", try event("bad-3", "actor.registered", "operatore-giulia", staff, ["actor": "new-merchant", "role": "merchant", "name": "Shop", "keys": .array([.string(stranger.publicKey.multikey)])]), .roleNotPermitted),
            ("unknown actor", try event("bad-4", "actor.key_added", "nobody", stranger, ["actor": "nobody", "key": .string(stranger.publicKey.multikey)]), .unknownActor),
            ("same id, other content", try event("evt-0001", "actor.suspended", "operatore-giulia", staff, ["actor": "ben-7f3a", "reason": "test"]), .idConflict),
        ]
    }

    static func eventCases() throws(LedgerError) -> JSONValue {
        let events = try sampleEvents()
        var cases: [JSONValue] = []
        for (index, signed) in events.prefix(3).enumerated() {
            let record = Record(sequenceNumber: UInt64(index), recordedAt: timestamp(Int64(index) * 10 + 1), signedEvent: signed)
            let leaf = record.leafBytes
            cases.append(.object([
                "event": signed.event.json,
                "canonical_event": .string(String(decoding: signed.event.canonicalBytes, as: UTF8.self)),
                "signing_input_base64": .string(Base64.encode(signed.event.signingBytes)),
                "sig": .string(Base64.encode(signed.signature)),
                "signed_event": .string(CanonicalJSON.encodeString(signed.json)),
                "record": .string(String(decoding: leaf, as: UTF8.self)),
                "leaf_hash_hex": .string(MerkleHash.leaf(leaf).hexString),
                "leaf_hash_base64": .string(Base64.encode(MerkleHash.leaf(leaf))),
            ]))
        }
        return .array(cases)
    }

    // MARK: Merkle tree

    /// RFC 6962's reference leaves (hex).
    public static let referenceLeavesHex = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]

    static func merkleCases() throws(LedgerError) -> JSONValue {
        var nodes = InMemoryMerkleNodes()
        var frontier = MerkleFrontier()
        var roots: [JSONValue] = []
        for hex in referenceLeavesHex {
            nodes.store(frontier.append(leafHash: MerkleHash.leaf([UInt8](hexString: hex) ?? [])))
            roots.append(.object(["tree_size": .integer(Int64(frontier.size)), "root_hex": .string(frontier.root.hexString)]))
        }
        var inclusion: [JSONValue] = []
        for (leafIndex, treeSize) in [(0, 1), (0, 8), (5, 8), (2, 3), (1, 5)] as [(UInt64, UInt64)] {
            let proof = try MerkleProofs.inclusionProof(leafIndex: leafIndex, treeSize: treeSize, source: nodes)
            inclusion.append(.object(["leaf_index": .integer(Int64(leafIndex)), "tree_size": .integer(Int64(treeSize)), "hashes_hex": .array(proof.map { .string($0.hexString) })]))
        }
        var consistency: [JSONValue] = []
        for (first, second) in [(1, 1), (1, 8), (6, 8), (2, 5), (3, 7)] as [(UInt64, UInt64)] {
            let proof = try MerkleProofs.consistencyProof(firstSize: first, secondSize: second, source: nodes)
            consistency.append(.object(["first_size": .integer(Int64(first)), "second_size": .integer(Int64(second)), "hashes_hex": .array(proof.map { .string($0.hexString) })]))
        }
        return .object([
            "leaves_hex": .array(referenceLeavesHex.map { .string($0) }), "empty_root_hex": .string(MerkleHash.emptyRoot.hexString),
            "roots": .array(roots), "inclusion_proofs": .array(inclusion), "consistency_proofs": .array(consistency),
        ])
    }

    // MARK: Checkpoints

    static func checkpointCase() throws(LedgerError) -> JSONValue {
        let signer = try NoteSigner(name: origin, privateKey: key("checkpoint"))
        let checkpoint = try Checkpoint(origin: origin, size: 8, rootHash: SHA256.hash(Array("example root".utf8)))
        let note = try SignedNote.sign(text: checkpoint.body, signer: signer)
        return .object([
            "origin": .string(origin), "key_seed_hex": .string(key("checkpoint").seed.hexString),
            "key_id_hex": .string(StateKey.number(UInt64(signer.keyID)).suffix(4).map { $0 }.hexString), "verifier_key": .string(signer.verifier.verifierKey),
            "body": .string(checkpoint.body), "signed_note": .string(note),
        ])
    }

    // MARK: Sample ledger

    /// A whole small ledger: its records (JSON Lines, each the leaf bytes), the final checkpoint, and events that
    /// must then be refused. Built with the same rulebook as the ledger itself.
    static func sampleLedger() throws(LedgerError) -> (records: String, summary: JSONValue) {
        var state = MemoryLedgerState()
        var frontier = MerkleFrontier()
        var lines: [String] = []
        for (index, signed) in try sampleEvents().enumerated() {
            let position = LogPosition(sequenceNumber: UInt64(index), recordedAt: timestamp(Int64(index) * 10 + 1))
            state.apply(try Rulebook.check(try signed.verified(), at: position, state: state))
            let record = Record(sequenceNumber: position.sequenceNumber, recordedAt: position.recordedAt, signedEvent: signed)
            _ = frontier.append(leafHash: MerkleHash.leaf(record.leafBytes))
            lines.append(String(decoding: record.leafBytes, as: UTF8.self))
        }
        let signer = try NoteSigner(name: origin, privateKey: key("checkpoint"))
        let note = try SignedNote.sign(text: try Checkpoint(origin: origin, size: frontier.size, rootHash: frontier.root).body, signer: signer)
        var refused: [JSONValue] = []
        for (name, signed, code) in try refusedEvents() {
            let verified = try signed.verified()
            do throws(LedgerError) {
                _ = try Rulebook.check(verified, at: LogPosition(sequenceNumber: frontier.size, recordedAt: timestamp(100)), state: state)
                preconditionFailure("sample refusal \(name) was accepted")
            } catch {
                precondition(error.code == code, "sample refusal \(name) gave \(error.code), expected \(code)")
            }
            refused.append(.object(["name": .string(name), "signed_event": .string(CanonicalJSON.encodeString(signed.json)), "error_code": .string(code.name)]))
        }
        let summary: JSONValue = .object([
            "records_file": "sample-ledger.jsonl", "tree_size": .integer(Int64(frontier.size)),
            "root_hex": .string(frontier.root.hexString), "verifier_key": .string(signer.verifier.verifierKey),
            "checkpoint": .string(note), "refused_after_last_record": .array(refused),
        ])
        return (lines.joined(separator: "\n") + "\n", summary)
    }
}
