import CircuitoCrypto

/// The test vectors published in `Specs/vectors/`, generated from fixed seeds so that anyone can check them and
/// the project's tests can check that the committed files are what the code produces.
public enum SpecVectors {
    /// A deterministic Ed25519 key: seed = SHA-256("circuito spec vector key: " ‖ label); published, so in ordinary memory.
    public static func key(_ label: String) -> Ed25519PrivateKey {
        guard let key = Ed25519PrivateKey(seed: SHA256.hash(Array("circuito spec vector key: \(label)".utf8)), memory: .ordinary) else {
            preconditionFailure("SHA-256 gives 32 bytes, an Ed25519 seed")
        }
        return key
    }

    public static let origin = "circuito.example/spec-ledger"
    static let baseMilliseconds: Int64 = 1_795_000_000_000  // 2026-11-18T…Z

    /// File name → content.
    public static func generate() throws(LedgerError) -> [String: String] {
        let sample = try sampleLedger()
        let circuit = try circuitSample()
        return [
            "canonical-json.json": pretty(canonicalJSONCases()),
            "keys.json": pretty(keyCases()),
            "signatures.json": pretty(signatureCases()),
            "events.json": pretty(try eventCases()),
            "merkle.json": pretty(try merkleCases()),
            "checkpoint.json": pretty(try checkpointCase()),
            "sample-ledger.jsonl": sample.records,
            "sample-ledger.json": pretty(sample.summary),
            "circuit-sample.jsonl": circuit.records,
            "circuit-sample.json": pretty(circuit.summary),
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

    // MARK: Signatures at the edges of Ed25519 (Specs/ledger.md 3.1)

    /// The group order L, little-endian: S MUST be below it.
    static let groupOrder: [UInt8] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ]

    /// Signatures that libsodium refuses, each labelled with the rule of section 3.1 it breaks, beside a valid one.
    /// Three of them pass a more permissive verifier (OpenSSL 3's, checked when these were written), which is why
    /// an independent verifier needs them. The crafted bytes are constants, computed once from the formulas in
    /// their descriptions (`a` is the clamped scalar of the key's seed, `k = SHA-512(R ‖ A ‖ M) mod L`). `valid` is
    /// what this code's verifier says.
    static func signatureCases() -> JSONValue {
        let key = key("signature edge")
        let message = Array("circuito signature vector".utf8)
        let signature = key.signature(for: message)
        var shiftedScalar = Array(signature[32...])
        var carry = 0
        for index in 0..<32 {
            let sum = Int(shiftedScalar[index]) + Int(groupOrder[index]) + carry
            shiftedScalar[index] = UInt8(sum & 0xff)
            carry = sum >> 8
        }
        assert(carry == 0, "S + L fits in 32 bytes, since S < L < 2^253")
        let identity = "01" + String(repeating: "00", count: 31)
        let cases: [(String, String, String)] = [
            ("valid: a signature by the key's seed", key.publicKey.bytes.hexString, signature.hexString),
            ("non-canonical S: the valid signature with L added to S", key.publicKey.bytes.hexString, Array(signature[..<32]).hexString + shiftedScalar.hexString),
            (
                "R of small order: R is the identity and S = k·a mod L, so the cofactorless equation holds; R has small order",
                key.publicKey.bytes.hexString,
                identity + "3e00ea335b2da49fa9ebce972806e7d7b68df0882d1056d0da6d56263c54b308"
            ),
            ("public key of small order: A and R are the identity and S = 0, which satisfies the equation for any message", identity, identity + String(repeating: "00", count: 32)),
            (
                "public key not canonical: A is the identity encoded with y = p + 1, R the identity and S = 0",
                "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", identity + String(repeating: "00", count: 32)
            ),
        ]
        return .array(cases.map { description, publicKeyHex, signatureHex in
            let publicKey = [UInt8](hexString: publicKeyHex).flatMap(Ed25519PublicKey.init(bytes:))
            let signatureBytes = [UInt8](hexString: signatureHex) ?? []
            return .object([
                "description": .string(description), "public_key_hex": .string(publicKeyHex), "message_hex": .string(message.hexString),
                "signature_hex": .string(signatureHex), "valid": .bool(publicKey?.isValidSignature(signatureBytes, for: message) ?? false),
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
        func event(_ id: String, _ type: String, _ actor: String, _ signer: Ed25519PrivateKey, _ second: Int64, _ body: JSONObject) throws(LedgerError) -> SignedEvent {
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
        func event(_ id: String, _ type: String, _ actor: String, _ signer: Ed25519PrivateKey, _ body: JSONObject) throws(LedgerError) -> SignedEvent {
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
        // Where the refusals are checked, as the circuit sample says it too.
        let refusalPosition = LogPosition(sequenceNumber: frontier.size, recordedAt: timestamp(100))
        for (name, signed, code) in try refusedEvents() {
            let verified = try signed.verified()
            do throws(LedgerError) {
                _ = try Rulebook.check(verified, at: refusalPosition, state: state)
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
            "refusals_checked_at": .object([
                "seq": .integer(Int64(refusalPosition.sequenceNumber)), "recorded_at": .string(refusalPosition.recordedAt),
            ]),
        ])
        return (lines.joined(separator: "\n") + "\n", summary)
    }
}

// MARK: Circuit sample

extension SpecVectors {
    public static let circuitOrigin = "circuito.example/circuit-sample"

    /// Actor ids of the circuit sample and the labels of their keys (`key(label)`).
    static let circuitActors: [(actor: String, role: String, label: String)] = [
        ("pis-torino", "authority", "authority"),
        ("casa-quartiere-san-salvario", "organisation", "organisation"),
        ("ciss38", "organisation", "referring organisation"),
        ("operatore-giulia", "staff", "staff"),
        ("operatore-marco", "staff", "second staff"),
        ("bottega-via-nizza", "merchant", "merchant"),
        ("libreria-borgo-po", "merchant", "bookshop"),
        ("ben-7f3a", "beneficiary", "beneficiary"),
        ("ben-7f3a", "beneficiary", "beneficiary phone"),
        ("ben-2c91", "beneficiary", "second beneficiary"),
    ]

    /// A beneficiary's data key (kept outside the log in real life; published here so the sealed data can be
    /// checked): SHA-256("circuito spec vector subject key: " ‖ subject).
    static func subjectKey(_ subject: String) -> [UInt8] {
        SHA256.hash(Array("circuito spec vector subject key: \(subject)".utf8))
    }

    /// The nonce of one sealed value: the first 24 bytes of SHA-256("circuito spec vector sealed nonce: " ‖ event id).
    static func sealNonce(_ eventID: String) -> [UInt8] {
        Array(SHA256.hash(Array("circuito spec vector sealed nonce: \(eventID)".utf8)).prefix(SecretBox.nonceByteCount))
    }

    /// `SealedData.seal` with an explicit nonce, so that the vectors are reproducible. A nonce must never be used
    /// twice with one key; real clients use `SealedData.seal`, which draws a random one.
    static func seal(_ value: JSONValue, subject: String, key: [UInt8], nonce: [UInt8]) -> JSONValue {
        let ciphertext = SecretBox.seal(
            CanonicalJSON.encode(value), nonce: nonce, additionalData: SealedData.additionalData(subject: subject), key: key)
        let sealed: JSONValue = .object([
            "alg": .string(SealedData.algorithm), "nonce": .string(Base64.encode(nonce)), "ciphertext": .string(Base64.encode(ciphertext)),
        ])
        precondition(SealedData.open(sealed, subject: subject, key: key) == value, "sealed sample data opens again")
        return sealed
    }

    /// A wallet-signed payment authorisation as `payment.redeemed` carries it.
    static func paymentBody(
        origin: String = circuitOrigin, beneficiary: String = "ben-7f3a", merchant: String, amount: Int64, expiresAt: String, nonce: String,
        wallet: Ed25519PrivateKey
    ) -> JSONObject {
        let authorisation = PaymentAuthorisation(
            origin: origin, beneficiary: beneficiary, merchant: merchant, amount: amount, expiresAt: expiresAt, nonce: nonce,
            key: wallet.publicKey.multikey)
        return ["authorisation": authorisation.json, "signature": .string(Base64.encode(PaymentAuthorisation.sign(authorisation, with: wallet)))]
    }

    /// Builds the circuit sample record by record: each event is checked by the rulebook against the state left by
    /// the ones before it, and must be accepted.
    struct CircuitBuilder {
        var state = MemoryLedgerState()
        var frontier = MerkleFrontier()
        var lines: [String] = []
        /// Event type → seq of its first record (the example events.md quotes).
        var examples: [String: Int64] = [:]
        var sealed: [JSONValue] = []
        /// Days since the sample's start; records within a day are 10 s apart.
        var day: Int64 = 0

        /// Milliseconds of the event `ts` at `seq`; `recorded_at` is one second later.
        func milliseconds(_ sequenceNumber: UInt64) -> Int64 {
            SpecVectors.baseMilliseconds + day * 86_400_000 + Int64(sequenceNumber) * 10_000
        }

        func recordedAt(_ sequenceNumber: UInt64) -> String {
            Timestamp.format(millisecondsSince1970: milliseconds(sequenceNumber) + 1000)
        }

        /// `recorded_at` of the next record, plus `minutes`.
        func nextRecordedAt(plusMinutes minutes: Int64 = 0) -> String {
            Timestamp.format(millisecondsSince1970: milliseconds(frontier.size) + 1000 + minutes * 60_000)
        }

        func signed(_ id: String, _ type: String, _ actor: String, _ signer: Ed25519PrivateKey, _ body: JSONObject, at sequenceNumber: UInt64) throws(LedgerError) -> SignedEvent {
            let event = try Event(
                id: id, type: type, actor: actor, key: signer.publicKey.multikey,
                timestamp: Timestamp.format(millisecondsSince1970: milliseconds(sequenceNumber)), body: body)
            return SignedEvent(signing: event, with: signer)
        }

        /// Appends one event, which the rulebook must accept; returns its seq.
        @discardableResult
        mutating func add(_ id: String, _ type: String, _ actor: String, _ signer: Ed25519PrivateKey, _ body: JSONObject) throws(LedgerError) -> UInt64 {
            let sequenceNumber = frontier.size
            let signedEvent = try signed(id, type, actor, signer, body, at: sequenceNumber)
            let position = LogPosition(sequenceNumber: sequenceNumber, recordedAt: recordedAt(sequenceNumber))
            let changes: [StateChange]
            do throws(LedgerError) {
                changes = try Rulebook.check(try signedEvent.verified(), at: position, state: state)
            } catch {
                preconditionFailure("circuit sample event \(id) (\(type)) was refused: \(error)")
            }
            state.apply(changes)
            let record = Record(sequenceNumber: sequenceNumber, recordedAt: position.recordedAt, signedEvent: signedEvent)
            _ = frontier.append(leafHash: MerkleHash.leaf(record.leafBytes))
            lines.append(String(decoding: record.leafBytes, as: UTF8.self))
            if examples[type] == nil { examples[type] = Int64(sequenceNumber) }
            return sequenceNumber
        }

        /// Sealed personal data for `subject`, remembered with its plaintext for the summary.
        mutating func seal(_ value: JSONValue, subject: String, eventID: String) -> JSONValue {
            let nonce = SpecVectors.sealNonce(eventID)
            sealed.append(.object([
                "event": .string(eventID), "subject": .string(subject), "plaintext": .string(CanonicalJSON.encodeString(value)),
            ]))
            return SpecVectors.seal(value, subject: subject, key: SpecVectors.subjectKey(subject), nonce: nonce)
        }
    }

    /// A ledger that uses every event type: a referral from a social-services hub, intake and plan at a Casa del
    /// Quartiere, civic-utility activations certified with badges, credits converted to ToCoin, doti earmarked for
    /// food and books, payments with wallet-signed authorisations, a refund, a settlement, expiry of ToCoin lots, and
    /// the erasure of a person. Then events that must be refused against its final state, one per kind of refusal.
    static func circuitSample() throws(LedgerError) -> (records: String, summary: JSONValue) {
        let authority = key("authority"), casa = key("organisation"), ciss = key("referring organisation")
        let giulia = key("staff"), marco = key("second staff"), bottega = key("merchant"), libreria = key("bookshop")
        let card = key("beneficiary"), phone = key("beneficiary phone"), second = key("second beneficiary")
        let checkpoint = key("checkpoint")
        let casaID = "casa-quartiere-san-salvario", cissID = "ciss38", giuliaID = "operatore-giulia", marcoID = "operatore-marco"
        let bottegaID = "bottega-via-nizza", libreriaID = "libreria-borgo-po", benID = "ben-7f3a", secondID = "ben-2c91"
        var builder = CircuitBuilder()
        func keys(_ key: Ed25519PrivateKey) -> JSONValue { .array([.string(key.publicKey.multikey)]) }

        // Day 0 (2026-11-18). Governance: the authority, two organisations, staff, merchants, beneficiaries.
        try builder.add("genesis", "ledger.genesis", "pis-torino", authority, [
            "origin": .string(circuitOrigin),
            "authority": .object(["actor": "pis-torino", "name": "Città di Torino, Piano di Inclusione Sociale", "keys": keys(authority)]),
            "checkpoint_key": .string(checkpoint.publicKey.multikey),
            "currency": .object(["code": "TOC", "decimals": 2]),
        ])
        try builder.add("evt-0001", "actor.registered", "pis-torino", authority, [
            "actor": .string(casaID), "role": "organisation", "name": "Casa del Quartiere di San Salvario", "keys": keys(casa),
            "district": "san_salvario",
        ])
        try builder.add("evt-0002", "actor.registered", "pis-torino", authority, [
            "actor": .string(cissID), "role": "organisation", "name": "CISS38, Consorzio Intercomunale dei Servizi Sociali", "keys": keys(ciss),
            "district": "cirie",
        ])
        try builder.add("evt-0003", "actor.registered", casaID, casa, [
            "actor": .string(giuliaID), "role": "staff", "name": "Operatrice sportello 1", "keys": keys(giulia), "organisation": .string(casaID),
        ])
        try builder.add("evt-0004", "actor.registered", casaID, casa, [
            "actor": .string(marcoID), "role": "staff", "name": "Operatore sportello 2", "keys": keys(marco), "organisation": .string(casaID),
        ])
        try builder.add("evt-0005", "actor.registered", "pis-torino", authority, [
            "actor": .string(bottegaID), "role": "merchant", "name": "Bottega di via Nizza", "keys": keys(bottega),
        ])
        try builder.add("evt-0006", "actor.registered", "pis-torino", authority, [
            "actor": .string(libreriaID), "role": "merchant", "name": "Libreria di Borgo Po", "keys": keys(libreria),
        ])
        try builder.add("evt-0007", "actor.registered", giuliaID, giulia, [
            "actor": .string(benID), "role": "beneficiary", "name": .string(benID), "keys": keys(card), "organisation": .string(casaID),
        ])
        try builder.add("evt-0008", "actor.key_added", benID, card, ["actor": .string(benID), "key": .string(phone.publicKey.multikey)])
        try builder.add("evt-0009", "actor.key_revoked", giuliaID, giulia, [
            "actor": .string(benID), "key": .string(card.publicKey.multikey), "reason": "wallet card lost",
        ])
        try builder.add("evt-0010", "actor.registered", giuliaID, giulia, [
            "actor": .string(secondID), "role": "beneficiary", "name": .string(secondID), "keys": keys(second), "organisation": .string(casaID),
        ])
        // Policy, funding, merchants.
        try builder.add("evt-0011", "policy.updated", "pis-torino", authority, [
            "conversion_rate_cents_per_credit": 100, "monthly_conversion_cap_cents": 8000, "lot_validity_days": 30,
            "categories": ["rent", "food", "school", "utilities", "spid", "books", "devices", "transport", "eye_care", "dental_care"],
        ])
        try builder.add("evt-0012", "program.funded", "pis-torino", authority, ["amount": 1_000_000, "reference": "Delibera G.C. 2026/04127"])
        try builder.add("evt-0013", "merchant.enrolled", "pis-torino", authority, [
            "merchant": .string(bottegaID), "categories": ["food"], "district": "san_salvario",
        ])
        try builder.add("evt-0014", "merchant.enrolled", "pis-torino", authority, [
            "merchant": .string(libreriaID), "categories": ["books"], "district": "vanchiglia",
        ])
        try builder.add("evt-0015", "merchant.updated", "pis-torino", authority, ["merchant": .string(libreriaID), "categories": ["books", "school"]])
        // The catalogue.
        try builder.add("evt-0016", "opportunity.published", giuliaID, giulia, [
            "opportunity": "orto-via-saluzzo", "title": "Orto comunitario di via Saluzzo",
            "description": "Attività di civica utilità nell'orto del quartiere: semina, irrigazione, manutenzione.",
            "category": "civic_utility", "district": "san_salvario", "hours": 40,
        ])
        try builder.add("evt-0017", "opportunity.updated", giuliaID, giulia, ["opportunity": "orto-via-saluzzo", "hours": 60])
        try builder.add("evt-0018", "badge_class.defined", giuliaID, giulia, [
            "badge_class": "custode-orto", "name": "Custode dell'orto",
            "description": "Ha curato l'orto comunitario di via Saluzzo.",
            "criteria": "Almeno 12 ore di attività nell'orto, certificate da un operatore della Casa del Quartiere.",
            "credits": 50, "valid_days": 365,
        ])
        // Cases: two referrals from the social-services consortium; intake, plan and a note for the first.
        // Personal data only ever appears sealed under the subject's key.
        let referral = builder.seal(["name": "Mario Rossi", "tax_code": "RSSMRA80A01L219X", "referral": "Segnalazione del polo di inclusione"], subject: benID, eventID: "evt-0019")
        let secondReferral = builder.seal(["name": "Anna Bianchi", "tax_code": "BNCNNA85C41L219Z"], subject: secondID, eventID: "evt-0020")
        let plan = builder.seal(["plan": "Attività nell'orto tre mattine a settimana; corso di informatica di base."], subject: benID, eventID: "evt-0022")
        let note = builder.seal(["note": "Colloquio di verifica: frequenza regolare."], subject: benID, eventID: "evt-0023")
        try builder.add("evt-0019", "case.referred", cissID, ciss, [
            "case": "case-7f3a", "beneficiary": .string(benID), "household": "hh-0412", "to": .string(casaID),
            "sealed": referral,
        ])
        try builder.add("evt-0020", "case.referred", cissID, ciss, [
            "case": "case-2c91", "beneficiary": .string(secondID), "household": "hh-0977", "to": .string(casaID),
            "sealed": secondReferral,
        ])
        try builder.add("evt-0021", "case.opened", giuliaID, giulia, ["case": "case-7f3a"])
        try builder.add("evt-0022", "case.plan_agreed", giuliaID, giulia, [
            "case": "case-7f3a", "goals": ["civic_utility", "training"],
            "sealed": plan,
        ])
        try builder.add("evt-0023", "case.note_added", giuliaID, giulia, [
            "case": "case-7f3a",
            "sealed": note,
        ])
        // Activity: an activation, a badge, its credits converted; a food dote.
        try builder.add("evt-0024", "activation.recorded", giuliaID, giulia, [
            "activation": "act-0001", "case": "case-7f3a", "opportunity": "orto-via-saluzzo", "hours": 12, "date": "2026-11-16",
        ])
        try builder.add("evt-0025", "badge.issued", giuliaID, giulia, [
            "badge": "badge-0001", "badge_class": "custode-orto", "beneficiary": .string(benID), "activations": ["act-0001"],
        ])
        let foodLot = try builder.add("evt-0026", "dote.granted", giuliaID, giulia, ["beneficiary": .string(benID), "category": "food", "amount": 3000])
        let generalLot = try builder.add("evt-0027", "credits.converted", giuliaID, giulia, ["beneficiary": .string(benID), "badges": ["badge-0001"]])
        // Money: a payment at the grocer (food lot first, then general), a partial refund, a settlement.
        let firstPayment = paymentBody(merchant: bottegaID, amount: 4000, expiresAt: builder.nextRecordedAt(plusMinutes: 15), nonce: "n-0001", wallet: phone)
        try builder.add("pay-0001", "payment.redeemed", bottegaID, bottega, firstPayment)
        try builder.add("evt-0029", "payment.refunded", bottegaID, bottega, ["payment": "pay-0001", "amount": 1500, "reason": "Merce resa"])
        try builder.add("settle-0001", "settlement.requested", bottegaID, bottega, ["amount": 2000])
        try builder.add("evt-0031", "settlement.paid", "pis-torino", authority, ["settlement": "settle-0001", "reference": "Bonifico 2026/11/0042"])

        // Day 20 (2026-12-08): a second activation and badge, a badge issued twice by mistake and revoked, a
        // conversion in December, a books dote, a payment at the bookshop.
        builder.day = 20
        try builder.add("evt-0032", "activation.recorded", giuliaID, giulia, [
            "activation": "act-0002", "case": "case-7f3a", "opportunity": "orto-via-saluzzo", "hours": 14, "date": "2026-12-05",
        ])
        try builder.add("evt-0033", "badge.issued", giuliaID, giulia, [
            "badge": "badge-0002", "badge_class": "custode-orto", "beneficiary": .string(benID), "activations": ["act-0002"],
        ])
        // The same hours back one badge only, so the mistaken second badge cites another afternoon's activation.
        try builder.add("evt-0033b", "activation.recorded", giuliaID, giulia, [
            "activation": "act-0002b", "case": "case-7f3a", "opportunity": "orto-via-saluzzo", "hours": 3, "date": "2026-12-06",
        ])
        try builder.add("evt-0034", "badge.issued", giuliaID, giulia, [
            "badge": "badge-0003", "badge_class": "custode-orto", "beneficiary": .string(benID), "activations": ["act-0002b"],
        ])
        try builder.add("evt-0035", "badge.revoked", giuliaID, giulia, ["badge": "badge-0003", "reason": "Duplicate of badge-0002"])
        try builder.add("evt-0036", "credits.converted", giuliaID, giulia, ["beneficiary": .string(benID), "badges": ["badge-0002"]])
        let booksLot = try builder.add("evt-0037", "dote.granted", giuliaID, giulia, ["beneficiary": .string(benID), "category": "books", "amount": 2000])
        let secondPayment = paymentBody(merchant: libreriaID, amount: 1200, expiresAt: builder.nextRecordedAt(plusMinutes: 15), nonce: "n-0002", wallet: phone)
        try builder.add("pay-0002", "payment.redeemed", libreriaID, libreria, secondPayment)

        // Day 35 (2026-12-23): a third badge (not converted), expiry of the November lots, the end of the season,
        // the bookshop suspended from the circuit, the second case closed and its subject erased, a staff member gone.
        builder.day = 35
        try builder.add("evt-0039", "activation.recorded", giuliaID, giulia, [
            "activation": "act-0003", "case": "case-7f3a", "opportunity": "orto-via-saluzzo", "hours": 12, "date": "2026-12-20",
        ])
        try builder.add("evt-0040", "badge.issued", giuliaID, giulia, [
            "badge": "badge-0004", "badge_class": "custode-orto", "beneficiary": .string(benID), "activations": ["act-0003"],
        ])
        try builder.add("evt-0041", "tocoin.expired", "pis-torino", authority, ["beneficiary": .string(benID), "lot": .integer(Int64(foodLot))])
        try builder.add("evt-0042", "tocoin.expired", "pis-torino", authority, ["beneficiary": .string(benID), "lot": .integer(Int64(generalLot))])
        try builder.add("evt-0043", "opportunity.withdrawn", giuliaID, giulia, ["opportunity": "orto-via-saluzzo", "reason": "Fine della stagione"])
        try builder.add("evt-0044", "badge_class.retired", giuliaID, giulia, ["badge_class": "custode-orto", "reason": "Fine della stagione"])
        try builder.add("evt-0045", "merchant.suspended", "pis-torino", authority, ["merchant": .string(libreriaID), "reason": "Convenzione scaduta"])
        try builder.add("evt-0046", "case.closed", giuliaID, giulia, ["case": "case-2c91", "outcome": "withdrawn"])
        try builder.add("evt-0047", "subject.erased", giuliaID, giulia, ["beneficiary": .string(secondID), "case": "case-2c91"])
        try builder.add("evt-0048", "actor.suspended", casaID, casa, ["actor": .string(marcoID), "reason": "Left the organisation"])

        // Refusals, each checked on its own against the final state, as the next record.
        let refusalSequenceNumber = builder.frontier.size
        let refusalRecordedAt = builder.recordedAt(refusalSequenceNumber)
        let soon = builder.nextRecordedAt(plusMinutes: 15)
        let past = builder.nextRecordedAt(plusMinutes: -1)
        func pay(
            _ merchant: String, _ amount: Int64, nonce: String, expiresAt: String? = nil, wallet: Ed25519PrivateKey? = nil, named: String? = nil,
            origin: String = circuitOrigin
        ) -> JSONObject {
            paymentBody(origin: origin, merchant: named ?? merchant, amount: amount, expiresAt: expiresAt ?? soon, nonce: nonce, wallet: wallet ?? phone)
        }
        let refusals: [(String, String, String, Ed25519PrivateKey, JSONObject, LedgerError.Code)] = [
            ("payment above the beneficiary's balance", "payment.redeemed", bottegaID, bottega, pay(bottegaID, 9000, nonce: "n-0100"), .insufficientFunds),
            ("earmarked ToCoin at a merchant of another category (7000 held, 5000 spendable at a food shop)", "payment.redeemed", bottegaID, bottega, pay(bottegaID, 6000, nonce: "n-0101"), .categoryNotAccepted),
            ("a dote larger than the programme fund", "dote.granted", giuliaID, giulia, ["beneficiary": .string(benID), "category": "food", "amount": 2_000_000], .insufficientFunds),
            ("authorisation nonce already used", "payment.redeemed", bottegaID, bottega, pay(bottegaID, 100, nonce: "n-0001"), .nonceUsed),
            ("authorisation expired", "payment.redeemed", bottegaID, bottega, pay(bottegaID, 100, nonce: "n-0102", expiresAt: past), .authorisationExpired),
            ("authorisation names another merchant", "payment.redeemed", bottegaID, bottega, pay(bottegaID, 100, nonce: "n-0103", named: libreriaID), .authorisationInvalid),
            ("authorisation signed with the revoked wallet card key", "payment.redeemed", bottegaID, bottega, pay(bottegaID, 100, nonce: "n-0104", wallet: card), .authorisationInvalid),
            ("payment at a merchant suspended from the circuit", "payment.redeemed", libreriaID, libreria, pay(libreriaID, 100, nonce: "n-0105"), .merchantNotEnrolled),
            ("conversion above the monthly cap", "credits.converted", giuliaID, giulia, ["beneficiary": .string(benID), "badges": ["badge-0004"]], .capExceeded),
            ("badge already converted", "credits.converted", giuliaID, giulia, ["beneficiary": .string(benID), "badges": ["badge-0001"]], .alreadyConverted),
            ("revoked badge", "credits.converted", giuliaID, giulia, ["beneficiary": .string(benID), "badges": ["badge-0003"]], .invalidState),
            ("badge that was never issued", "credits.converted", giuliaID, giulia, ["beneficiary": .string(benID), "badges": ["badge-0999"]], .unknownReference),
            ("refund above what is left of the payment", "payment.refunded", bottegaID, bottega, ["payment": "pay-0001", "amount": 2501], .refundExceedsPayment),
            ("refund of a payment made to another merchant", "payment.refunded", bottegaID, bottega, ["payment": "pay-0002", "amount": 100], .roleNotPermitted),
            ("settlement above the merchant's balance", "settlement.requested", bottegaID, bottega, ["amount": 501], .settlementExceedsBalance),
            ("settlement paid twice", "settlement.paid", "pis-torino", authority, ["settlement": "settle-0001", "reference": "Bonifico 2026/12/0001"], .invalidState),
            ("expiry of a lot that has not expired", "tocoin.expired", "pis-torino", authority, ["beneficiary": .string(benID), "lot": .integer(Int64(booksLot))], .lotNotExpired),
            ("a note on a case held by another organisation", "case.note_added", cissID, ciss, [
                "case": "case-7f3a", "sealed": seal(["note": "x"], subject: benID, key: subjectKey(benID), nonce: sealNonce("refusal-note")),
            ], .notCaseHolder),
            ("a new case for an erased subject", "case.referred", cissID, ciss, [
                "case": "case-2c91-b", "beneficiary": .string(secondID), "household": "hh-0977", "to": .string(casaID),
                "sealed": seal(["name": "x"], subject: secondID, key: subjectKey(secondID), nonce: sealNonce("refusal-referral")),
            ], .subjectErased),
            ("a referral to an actor that is not an organisation", "case.referred", cissID, ciss, [
                "case": "case-9999", "beneficiary": .string(benID), "household": "hh-0412", "to": .string(bottegaID),
                "sealed": seal(["name": "x"], subject: benID, key: subjectKey(benID), nonce: sealNonce("refusal-referral-2")),
            ], .unknownOrganisation),
            ("a merchant may not sign dote.granted", "dote.granted", bottegaID, bottega, ["beneficiary": .string(benID), "category": "food", "amount": 100], .roleNotPermitted),
            ("revoking a badge issued by another organisation", "badge.revoked", cissID, ciss, ["badge": "badge-0002", "reason": "x"], .roleNotPermitted),
            ("an opportunity id already used", "opportunity.published", giuliaID, giulia, [
                "opportunity": "orto-via-saluzzo", "title": "Orto", "description": "Di nuovo", "category": "civic_utility", "district": "san_salvario",
            ], .alreadyExists),
            ("a dote category that is not in the policy", "dote.granted", giuliaID, giulia, ["beneficiary": .string(benID), "category": "jewellery", "amount": 100], .invalidBody),
            ("signed by a suspended staff member", "dote.granted", marcoID, marco, ["beneficiary": .string(benID), "category": "food", "amount": 100], .actorSuspended),
            ("authorisation for another ledger", "payment.redeemed", bottegaID, bottega, pay(bottegaID, 100, nonce: "n-0106", origin: "circuito.example/other-ledger"), .authorisationInvalid),
            ("an organisation referring another organisation's beneficiary to itself", "case.referred", cissID, ciss, [
                "case": "case-9998", "beneficiary": .string(benID), "household": "hh-0412", "to": .string(cissID),
                "sealed": seal(["name": "x"], subject: benID, key: subjectKey(benID), nonce: sealNonce("refusal-referral-3")),
            ], .roleNotPermitted),
            ("a referral of an id registered as a merchant", "case.referred", cissID, ciss, [
                "case": "case-9997", "beneficiary": .string(bottegaID), "household": "hh-0001", "to": .string(casaID),
                "sealed": seal(["name": "x"], subject: bottegaID, key: subjectKey(bottegaID), nonce: sealNonce("refusal-referral-4")),
            ], .unknownReference),
        ]
        var refused: [JSONValue] = []
        for (index, (name, type, actor, signer, body, code)) in refusals.enumerated() {
            let id = "bad-" + String(index + 1)
            let signedEvent = try builder.signed(id, type, actor, signer, body, at: refusalSequenceNumber)
            do throws(LedgerError) {
                _ = try Rulebook.check(try signedEvent.verified(), at: LogPosition(sequenceNumber: refusalSequenceNumber, recordedAt: refusalRecordedAt), state: builder.state)
                preconditionFailure("circuit refusal \(name) was accepted")
            } catch {
                precondition(error.code == code, "circuit refusal \(name) gave \(error.code): \(error.message), expected \(code)")
            }
            refused.append(.object(["name": .string(name), "signed_event": .string(CanonicalJSON.encodeString(signedEvent.json)), "error_code": .string(code.name)]))
        }

        // What the state holds at the end: every account's balance and the live lots.
        var balances: JSONObject = [:]
        var total: Int64 = 0
        for entry in builder.state.entries(.balances, prefix: [], limit: Int.max) {
            guard let balance = Account.decode(entry.value) else { preconditionFailure("balances are 8-byte integers") }
            balances[String(decoding: entry.key, as: UTF8.self)] = .integer(balance)
            total += balance
        }
        precondition(total == 0, "the accounts of the circuit sample sum to zero")
        let lots = builder.state.entries(.lots, prefix: [], limit: Int.max).map { entry in
            (try? JSONParser.parse(entry.value)) ?? .null
        }
        let signer = try NoteSigner(name: circuitOrigin, privateKey: checkpoint)
        let checkpointNote = try SignedNote.sign(text: try Checkpoint(origin: circuitOrigin, size: builder.frontier.size, rootHash: builder.frontier.root).body, signer: signer)
        let subjects = [benID, secondID]
        let summary: JSONValue = .object([
            "records_file": "circuit-sample.jsonl", "tree_size": .integer(Int64(builder.frontier.size)),
            "root_hex": .string(builder.frontier.root.hexString), "verifier_key": .string(signer.verifier.verifierKey),
            "checkpoint": .string(checkpointNote),
            "keys": .array(circuitActors.map { actor in
                .object(["actor": .string(actor.actor), "role": .string(actor.role), "label": .string(actor.label), "publicKeyMultibase": .string(key(actor.label).publicKey.multikey)])
            }),
            "examples": .object(JSONObject(builder.examples.mapValues { JSONValue.integer($0) })),
            "balances": .object(balances), "lots": .array(lots),
            "subject_keys": .array(subjects.map { .object(["subject": .string($0), "key_hex": .string(subjectKey($0).hexString)]) }),
            "sealed": .array(builder.sealed),
            "refusals_checked_at": .object(["seq": .integer(Int64(refusalSequenceNumber)), "recorded_at": .string(refusalRecordedAt)]),
            "refused_after_last_record": .array(refused),
        ])
        return (builder.lines.joined(separator: "\n") + "\n", summary)
    }
}
