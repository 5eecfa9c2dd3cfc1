import CircuitoCore
@testable import CircuitoCrypto
import Foundation
import Testing

@Suite("Keys and Multikey")
struct KeyTests {
    @Test("the W3C test key pair: privateKeyMultibase gives publicKeyMultibase")
    func w3cKeyPair() throws {
        let url = sharedFolder.appendingPathComponent("vectors/vc-di-eddsa/keyPair.json")
        let json = try JSONParser.parse(Array(try Data(contentsOf: url)))
        let secret = try #require(json["privateKeyMultibase"]?.stringValue)
        let key = try #require(Multikey.decodeSecretKey(secret))
        #expect(key.publicKey.multikey == json["publicKeyMultibase"]?.stringValue)
        #expect(Multikey.encodeSecret(key) == secret)
    }

    @Test("Multikey round trip and refusals")
    func multikey() throws {
        let key = Ed25519PrivateKey()
        let text = key.publicKey.multikey
        #expect(text.hasPrefix("z6Mk"))
        #expect(Multikey.decodePublicKey(text) == key.publicKey)
        #expect(Multikey.decodePublicKey("z6Mk") == nil)
        #expect(Multikey.decodePublicKey(String(text.dropFirst())) == nil)  // no multibase prefix
        #expect(Multikey.decodePublicKey(text + "1") == nil)  // one byte too many
        #expect(Multikey.decodePublicKey(text.replacingOccurrences(of: "6", with: "0")) == nil)  // 0 is not base58
        #expect(Multikey.decodePublicKey(Multikey.encodeSecret(key)) == nil)  // a secret is not a public key
    }

    @Test("decoded keys are cached by their exact text: a canonically equivalent text is still refused")
    func multikeyCacheIsByExactText() throws {
        // A key whose text has a "K", decoded once so that it is cached.
        var key = Ed25519PrivateKey()
        while !key.publicKey.multikey.contains("K") { key = Ed25519PrivateKey() }
        let text = key.publicKey.multikey
        #expect(Multikey.decodePublicKey(text) == key.publicKey)
        #expect(Multikey.decodePublicKey(text) == key.publicKey)
        // U+212A KELVIN SIGN is canonically equivalent to "K", so Swift's String == calls the two texts equal.
        let kelvin = text.replacingOccurrences(of: "K", with: "\u{212A}")
        #expect(kelvin == text)
        #expect(Multikey.decodePublicKey(kelvin) == nil)
        #expect(throws: LedgerError.self) {
            try Event(id: "evt-1", type: "test.event", actor: "city", key: kelvin, timestamp: "2026-11-22T10:00:00Z", body: [:])
        }
    }

    @Test("base58btc: leading zeros and known values")
    func base58() {
        #expect(Base58.encode([]) == "")
        #expect(Base58.encode([0, 0, 1]) == "112")
        #expect(Base58.encode(Array("hello world".utf8)) == "StV1DL6CwTryKyV")
        #expect(Base58.decode("StV1DL6CwTryKyV") == Array("hello world".utf8))
        #expect(Base58.decode("112") == [0, 0, 1])
        #expect(Base58.decode("0OIl") == nil)
        #expect(Base58.decode("") == [])
        #expect(Base58.decode("111") == [0, 0, 0])
        #expect(Base58.decode("1z") == [0, 57])
        // Round trips over lengths that cross the decoder's five-digit chunks and 32-bit limbs, with leading zeros.
        var generator = SystemRandomNumberGenerator()
        for length in 0...70 {
            for leadingZeros in [0, 1, 3] where leadingZeros <= length {
                let bytes = [UInt8](repeating: 0, count: leadingZeros)
                    + (leadingZeros..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let text = Base58.encode(bytes)
                #expect(Base58.decode(text) == bytes, "\(bytes)")
            }
            #expect(Base58.decode(Base58.encode([UInt8](repeating: 0xFF, count: length))) == [UInt8](repeating: 0xFF, count: length))
        }
    }

    @Test("signatures verify only for the signed bytes and key")
    func signatures() {
        let key = Ed25519PrivateKey()
        let message = Array("circuito".utf8)
        let signature = key.signature(for: message)
        #expect(key.publicKey.isValidSignature(signature, for: message))
        #expect(!key.publicKey.isValidSignature(signature, for: Array("circuitO".utf8)))
        #expect(!Ed25519PrivateKey().publicKey.isValidSignature(signature, for: message))
        #expect(!key.publicKey.isValidSignature(Array(signature.dropLast()), for: message))
    }

    /// The all-zero key is a point of order 4. With S = 0 the cofactorless equation asks R = −[h]A, one of the four
    /// points A generates, so about one in four of these (R, message) pairs satisfies it: a verifier that let keys or
    /// R of small order through would accept such forgeries by anyone. Specs/ledger.md 3.1 and 3.2.
    @Test("the all-zero key reads as a Multikey, but nothing it is said to sign verifies, not even the equation's own solutions")
    func allZeroKeySignsNothing() throws {
        let zero = try #require(Ed25519PublicKey(bytes: [UInt8](repeating: 0, count: 32)))
        #expect(Multikey.decodePublicKey(zero.multikey) == zero)
        let smallOrderPoints = [
            "0100000000000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000080",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ]
        for point in smallOrderPoints {
            let signature = try #require([UInt8](hexString: point)) + [UInt8](repeating: 0, count: 32)
            for index in 0..<16 {
                #expect(!zero.isValidSignature(signature, for: Array("circuito.event.v1\n{\"n\":\(index)}".utf8)), "R \(point), message \(index)")
            }
        }
    }

    @Test("SHA-256 of known inputs")
    func sha256() {
        #expect(SHA256.hash([UInt8]()).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Array("abc".utf8)).hexString == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hash(parts: Array("a".utf8), Array("bc".utf8)) == SHA256.hash(Array("abc".utf8)))
    }

    /// FIPS 180-4's examples (NIST's SHA-256 example values), through both implementations.
    static let nistExamples: [(message: [UInt8], digest: String)] = [
        ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8),
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        ([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ]

    @Test("SHA-256 through libsodium: NIST's examples")
    func sha256Libsodium() {
        for example in Self.nistExamples {
            #expect(SHA256.libsodiumHash(parts: [example.message]).hexString == example.digest)
        }
    }

    /// Runs only where the processor has the SHA extensions (the machines of this project's CI do); elsewhere the
    /// hashes are libsodium's, which the test above checks.
    @Test("SHA-256 with the processor's SHA extensions: NIST's examples, and libsodium's digests over every length and split",
          .enabled(if: SHA256.usesProcessorExtensions))
    func sha256ProcessorExtensions() {
        for example in Self.nistExamples {
            #expect(SHA256.processorHash(parts: [example.message]).hexString == example.digest)
            #expect(SHA256.hash(example.message).hexString == example.digest)
        }
        var generator = SystemRandomNumberGenerator()
        for length in 0...300 {
            let message = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = SHA256.libsodiumHash(parts: [message])
            #expect(SHA256.processorHash(parts: [message]) == expected, "length \(length)")
            // The same bytes in up to five parts cut at random places, empty parts included.
            var cuts = (0..<Int.random(in: 0...4, using: &generator)).map { _ in Int.random(in: 0...length, using: &generator) }
            cuts.sort()
            var parts: [[UInt8]] = []
            var start = 0
            for cut in cuts + [length] {
                parts.append(Array(message[start..<cut]))
                start = cut
            }
            #expect(SHA256.processorHash(parts: parts) == expected, "length \(length) cut at \(cuts)")
            #expect(SHA256.libsodiumHash(parts: parts) == expected)
        }
    }
}

@Suite("Events, signed events and records")
struct EventTests {
    let key = Ed25519PrivateKey()

    func eventJSON(_ overrides: JSONObject = [:], removing: String? = nil) -> JSONValue {
        var members: JSONObject = [
            "v": 1, "id": "evt-1", "type": "actor.suspended", "actor": "city", "key": .string(key.publicKey.multikey),
            "ts": "2026-11-22T10:00:00Z", "body": ["actor": "shop", "reason": "closed"],
        ]
        for (name, value) in overrides { members[name] = value }
        if let removing { members[removing] = nil }
        return .object(members)
    }

    func refusal(_ json: JSONValue) -> LedgerError.Code? {
        do {
            _ = try Event(json: json)
            return nil
        } catch {
            return error.code
        }
    }

    @Test("signing input is the domain, a newline, then the canonical event")
    func signingInput() throws {
        let event = try Event(json: eventJSON())
        let expected = Array("circuito.event.v1\n".utf8) + CanonicalJSON.encode(eventJSON())
        #expect(event.signingBytes == expected)
        let signed = SignedEvent(signing: event, with: key)
        #expect(key.publicKey.isValidSignature(signed.signature, for: expected))
        _ = try signed.verified()
    }

    @Test("event field refusals, each with its code")
    func eventRefusals() {
        #expect(refusal(eventJSON()) == nil)
        #expect(refusal(eventJSON(["v": 2])) == .unsupportedVersion)
        #expect(refusal(eventJSON(["v": "1"])) == .invalidEvent)
        #expect(refusal(eventJSON(removing: "ts")) == .invalidEvent)
        #expect(refusal(eventJSON(["extra": 1])) == .invalidEvent)
        #expect(refusal(eventJSON(["id": "has space"])) == .invalidEvent)
        #expect(refusal(eventJSON(["id": .string(String(repeating: "a", count: 129))])) == .invalidEvent)
        #expect(refusal(eventJSON(["id": .string(String(repeating: "a", count: 128))])) == nil)
        #expect(refusal(eventJSON(["actor": .string(String(repeating: "b", count: 128))])) != .invalidEvent)
        #expect(refusal(eventJSON(["actor": .string(String(repeating: "b", count: 129))])) == .invalidEvent)
        #expect(refusal(eventJSON(["type": "Actor.Suspended"])) == .invalidEvent)
        #expect(refusal(eventJSON(["key": "z6MkNotAKey"])) == .invalidKey)
        #expect(refusal(eventJSON(["ts": "2026-11-22T10:00:00+01:00"])) == .invalidTimestamp)
        #expect(refusal(eventJSON(["ts": "2026-02-30T10:00:00Z"])) == .invalidTimestamp)
        #expect(refusal(eventJSON(["body": "not an object"])) == .invalidEvent)
        #expect(refusal(eventJSON(["body": ["amount": .number(1.5)]])) == .nonIntegerNumber)
        #expect(refusal(eventJSON(["body": ["nested": [["amount": .number(100)]]]])) == .nonIntegerNumber)
    }

    @Test("a float in the event text is refused, an integer accepted")
    func floatsInText() throws {
        let good = #"{"event":{"v":1,"id":"e","type":"a.b","actor":"x","key":"\#(key.publicKey.multikey)","ts":"2026-11-22T10:00:00Z","body":{"amount":100}},"sig":"\#(Base64.encode([UInt8](repeating: 0, count: 64)))"}"#
        _ = try SignedEvent(jsonBytes: Array(good.utf8))
        for float in ["100.0", "1e2", "1.5", "9007199254740992", "-9007199254740992", "100000000000000000000"] {
            let bad = good.replacingOccurrences(of: "\"amount\":100", with: "\"amount\":\(float)")
            #expect(throws: LedgerError.self) { try SignedEvent(jsonBytes: Array(bad.utf8)) }
            // Past ±(2^53 − 1) an integer is no longer exact: the same refusal, and the message says so.
            let unsigned = try JSONParser.parse(Array(bad.utf8))["event"]
            #expect(throws: LedgerError(.nonIntegerNumber, "event body contains a number that is not an integer within ±(2^53 − 1); amounts and counts are integers in that range")) {
                try Event(json: try #require(unsigned))
            }
        }
        let largestExact = good.replacingOccurrences(of: "\"amount\":100", with: "\"amount\":-9007199254740991")
        _ = try SignedEvent(jsonBytes: Array(largestExact.utf8))
    }

    @Test("a changed event or signature does not verify")
    func tamperedSignature() throws {
        let signed = SignedEvent(signing: try Event(json: eventJSON()), with: key)
        var signature = signed.signature
        signature[10] ^= 1
        #expect(throws: LedgerError(.invalidSignature, "the signature does not verify for event \"evt-1\" with key \(key.publicKey.multikey)")) {
            try SignedEvent(event: signed.event, signature: signature).verified()
        }
        let other = SignedEvent(event: try Event(json: eventJSON(["id": "evt-2"])), signature: signed.signature)
        #expect(throws: LedgerError.self) { try other.verified() }
    }

    @Test("sig must be padded standard base64 of 64 bytes")
    func signatureEncoding() throws {
        let signed = SignedEvent(signing: try Event(json: eventJSON()), with: key)
        var json = signed.json.objectValue ?? [:]
        json["sig"] = .string(Base64.encode(signed.signature).replacingOccurrences(of: "=", with: ""))
        #expect(throws: LedgerError.self) { try SignedEvent(json: .object(json)) }
        json["sig"] = .string(Base64.encode(Array(signed.signature.prefix(63))))
        #expect(throws: LedgerError.self) { try SignedEvent(json: .object(json)) }
    }

    @Test("oversize signed events are refused before parsing")
    func oversize() {
        let bytes = [UInt8](repeating: 0x20, count: EventLimits.maximumSignedEventBytes + 1)
        #expect(throws: LedgerError.self) { try SignedEvent(jsonBytes: bytes) }
    }

    @Test("records: leaf bytes are canonical, and only canonical bytes parse back")
    func records() throws {
        let signed = SignedEvent(signing: try Event(json: eventJSON()), with: key)
        let record = Record(sequenceNumber: 7, recordedAt: "2026-11-22T10:00:01.000Z", signedEvent: signed)
        let leaf = record.leafBytes
        #expect(try Record(leafBytes: leaf) == record)
        let text = String(decoding: leaf, as: UTF8.self)
        #expect(text.hasPrefix(#"{"event":{"actor":"city","#))
        #expect(text.contains(#""recorded_at":"2026-11-22T10:00:01.000Z","seq":7,"sig":""#))
        // The same record with a space added is not canonical.
        let spaced = Array(text.replacingOccurrences(of: #""seq":7"#, with: #""seq": 7"#).utf8)
        #expect(throws: LedgerError.self) { try Record(leafBytes: spaced) }
        do { _ = try Record(leafBytes: spaced) } catch {
            #expect(error.code == .integrity)
            #expect(error.message.hasPrefix("record bytes are not in canonical form (RFC 8785): whitespace at byte offset"))
        }
    }

    /// A record's parse no longer encodes its event again to compare (item 9 of Benchmarks/NOTES.md): the parser
    /// refuses bytes that are not canonical, and the event's canonical form is the bytes its member spans. It must
    /// accept exactly what the old parse did (parse, read the fields, encode the record again, compare), kept here as
    /// the reference, over a payment's record and every one-byte change, deletion and insertion of it.
    @Test("records: the parse accepts exactly what parsing and encoding again accepted")
    func recordParseAgainstReference() throws {
        enum Outcome: Equatable {
            case success(Record)
            case failure(LedgerError.Code)
        }
        /// The record, or the code of its refusal, as the old parse gave them.
        func reference(_ bytes: [UInt8]) -> Outcome {
            do throws(LedgerError) {
                guard case .object(let members) = try JSONParser.parse(bytes) else { return .failure(.invalidEvent) }
                guard members.count == 4, members["seq"] != nil, members["recorded_at"] != nil, members["event"] != nil,
                    members["sig"] != nil
                else { return .failure(.invalidEvent) }
                guard case .integer(let sequenceNumber)? = members["seq"], sequenceNumber >= 0 else { return .failure(.invalidEvent) }
                guard case .string(let recordedAt)? = members["recorded_at"] else { return .failure(.invalidEvent) }
                guard Timestamp.isValid(recordedAt) else { return .failure(.invalidTimestamp) }
                let signedEvent = try SignedEvent(json: .object(members.filter { $0.key == "event" || $0.key == "sig" }))
                let record = Record(sequenceNumber: UInt64(sequenceNumber), recordedAt: recordedAt, signedEvent: signedEvent)
                return record.leafBytes == bytes ? .success(record) : .failure(.integrity)
            } catch {
                return .failure(error.code)
            }
        }
        let signer = Ed25519PrivateKey()
        let authorisation = PaymentAuthorisation(
            origin: "test.example/ledger", beneficiary: "ben-1", merchant: "shop", amount: 1250, expiresAt: "2026-11-23T10:00:00.000Z", nonce: "n-1", key: signer.publicKey.multikey)
        let body: JSONObject = [
            "authorisation": authorisation.json, "signature": .string(Base64.encode(PaymentAuthorisation.sign(authorisation, with: signer))),
            "note": "é \u{1F600} \"q\" \\ \n",
        ]
        let payment = try Event(id: "pay-1", type: "payment.redeemed", actor: "shop", key: key.publicKey.multikey, timestamp: "2026-11-22T10:00:00.000Z", body: body)
        let leaf = Record(sequenceNumber: 1_234, recordedAt: "2026-11-22T10:00:01.000Z", signedEvent: SignedEvent(signing: payment, with: key)).leafBytes
        let replacements: [UInt8] = Array(" \"\\/,:{}0159-.eAaZz+=".utf8) + [0x00, 0xC3]
        let variants = [leaf] + oneByteVariants(of: leaf, replacements: replacements, insertions: [UInt8(ascii: " ")])
        var acceptedCount = 0
        var refusalCodes: Set<LedgerError.Code> = []
        for variant in variants {
            let parsed: Outcome
            do throws(LedgerError) { parsed = .success(try Record(leafBytes: variant)) } catch { parsed = .failure(error.code) }
            #expect(parsed == reference(variant), "\(String(decoding: variant, as: UTF8.self))")
            switch parsed {
            case .success: acceptedCount += 1
            case .failure(let code): refusalCodes.insert(code)
            }
        }
        // Changed digits and letters inside strings stay canonical records (their signatures are not checked here);
        // the changes also reach each kind of refusal, whose codes must be the old ones.
        #expect(acceptedCount > 100)
        #expect(refusalCodes.isSuperset(of: [.invalidJSON, .invalidEvent, .invalidTimestamp, .integrity, .invalidSignature, .invalidKey]))
    }

    /// Base64 is written out instead of going through Foundation (item 9 of Benchmarks/NOTES.md); Foundation's
    /// decoder, checked by encoding again, is the reference, over random bytes and every one-character change.
    @Test("base64: encodes as Foundation does, and decodes exactly the texts encoding gives")
    func base64AgainstFoundation() {
        func referenceDecode(_ text: String) -> [UInt8]? {
            guard let data = Data(base64Encoded: text) else { return nil }
            let bytes = [UInt8](data)
            return Data(bytes).base64EncodedString() == text ? bytes : nil
        }
        var generator = SystemRandomNumberGenerator()
        var texts: [String] = ["", "=", "==", "A", "AA", "AAA", "AAAA", "AA==", "AB==", "AAA=", "AAB=", "A===", "====", "AA=A", "QQ==\n"]
        for count in 0...70 {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64.encode(bytes)
            #expect(encoded == Data(bytes).base64EncodedString(), "\(bytes)")
            #expect(Base64.decode(encoded) == bytes)
            texts.append(encoded)
        }
        let replacements = Array("A/+=a9_-. é".unicodeScalars).map(String.init)
        for text in texts.prefix(30) {
            let characters = Array(text)
            for index in characters.indices {
                for replacement in replacements {
                    var changed = characters.map(String.init)
                    changed[index] = replacement
                    texts.append(changed.joined())
                }
                var deleted = characters
                deleted.remove(at: index)
                texts.append(String(deleted))
            }
        }
        for text in texts {
            #expect(Base64.decode(text) == referenceDecode(text), "\(text)")
        }
    }

    @Test("assembled canonical forms equal the canonical encoding of the whole document", arguments: [
        ["note": "plain"], ["note": "é \u{1F600} \u{E000} \"quoted\" \\ \n\u{1}", "amount": 9_007_199_254_740_991, "list": [1, "a", ["b": true]]],
        [:],
    ] as [JSONObject])
    func assembledCanonicalForms(body: JSONObject) throws {
        let signed = SignedEvent(signing: try Event(json: eventJSON(["body": .object(body)])), with: key)
        #expect(signed.event.canonicalBytes == CanonicalJSON.encode(signed.event.json))
        #expect(signed.canonicalBytes == CanonicalJSON.encode(signed.json))
        #expect(signed.canonicalBytes.count == signed.event.canonicalBytes.count + 107)
        for sequenceNumber: UInt64 in [0, 7, 1 << 40] {
            let record = Record(sequenceNumber: sequenceNumber, recordedAt: "2026-11-22T10:00:01.000Z", signedEvent: signed)
            #expect(record.leafBytes == CanonicalJSON.encode(record.json))
        }
    }

    @Test("an already parsed signed event is bounded by the size of its canonical form")
    func canonicalSizeBound() throws {
        // The largest body whose signed event fits exactly, and one byte more.
        let empty = SignedEvent(signing: try Event(json: eventJSON(["body": ["pad": ""]])), with: key)
        let room = EventLimits.maximumSignedEventBytes - empty.canonicalBytes.count
        let fitting = SignedEvent(signing: try Event(json: eventJSON(["body": ["pad": .string(String(repeating: "a", count: room))]])), with: key)
        #expect(fitting.canonicalBytes.count == EventLimits.maximumSignedEventBytes)
        #expect(try SignedEvent(submitted: fitting.json) == fitting)
        let over = SignedEvent(signing: try Event(json: eventJSON(["body": ["pad": .string(String(repeating: "a", count: room + 1))]])), with: key)
        #expect((try? SignedEvent(submitted: over.json)) == nil)
        do { _ = try SignedEvent(submitted: over.json) } catch { #expect(error.code == .tooLarge) }
        // Records read back from the log have no such bound (Specs/ledger.md 4.4).
        #expect(try SignedEvent(json: over.json) == over)
    }

    @Test("timestamps: formatting and parsing agree")
    func timestamps() {
        #expect(Timestamp.format(millisecondsSince1970: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(millisecondsSince1970: 1_795_000_000_123) == "2026-11-18T11:06:40.123Z")
        #expect(Timestamp.format(millisecondsSince1970: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        for milliseconds: Int64 in [0, 1, 951_782_400_000, 1_795_000_000_123, 4_102_444_800_999] {
            #expect(Timestamp.millisecondsSince1970(Timestamp.format(millisecondsSince1970: milliseconds)) == milliseconds)
        }
        #expect(Timestamp.isValid("2024-02-29T23:59:60Z"))
        // A leap second is a valid timestamp, but never one the ledger writes in recorded_at.
        #expect(!Timestamp.isLedgerForm("2026-12-31T23:59:60.000Z") && Timestamp.isLedgerForm("2026-12-31T23:59:59.999Z"))
        #expect(Timestamp.isValid("2026-11-22T10:00:00.123456789Z"))
        #expect(!Timestamp.isValid("2023-02-29T00:00:00Z"))
        #expect(!Timestamp.isValid("2026-11-22T10:00:00.Z"))
        #expect(!Timestamp.isValid("2026-11-22 10:00:00Z"))
        #expect(!Timestamp.isValid("2026-11-22T24:00:00Z"))
    }

    /// The parser reads timestamps in one pass over their bytes (callgrind, item 9 of Benchmarks/NOTES.md, counted
    /// 2.2 k instructions per parse in the old one, which copied the text twice). It must answer exactly as the old one
    /// did, kept below as the reference, for valid texts and for every one-byte change, deletion and insertion.
    @Test("timestamps: the one-pass parser answers as the reference parser, valid or not")
    func timestampParserAgainstReference() {
        var generator = SystemRandomNumberGenerator()
        var texts: [String] = ["", "Z", "2026-11-22T10:00:00Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:60.999999999Z",
                               "2026-11-22T10:00:00.1234567890Z", "2026-11-22T10:00:00.1Z", "2026-11-22T10:00:00.12Z", "2100-02-29T00:00:00Z",
                               "2000-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-22T10:00:00+01:00", "２026-11-22T10:00:00Z", "2026-11-22t10:00:00z"]
        for _ in 0..<300 {
            let milliseconds = Int64.random(in: -62_135_596_800_000...253_402_300_799_999, using: &generator)
            let formatted = Timestamp.format(millisecondsSince1970: milliseconds)
            texts.append(formatted)
            texts.append(String(formatted.dropLast(5)) + "Z")                                      // no fraction
            texts.append(String(formatted.dropLast()) + String(repeating: "7", count: Int.random(in: 0...7, using: &generator)) + "Z")
        }
        let replacements: [UInt8] = Array("09:-TZ.a /".utf8) + [0x00, 0x7f, 0xc3]
        var variants: [String] = []
        for text in texts.prefix(40) {
            let bytes = Array(text.utf8)
            for index in bytes.indices {
                for replacement in replacements {
                    var changed = bytes
                    changed[index] = replacement
                    variants.append(String(decoding: changed, as: UTF8.self))
                }
                var deleted = bytes
                deleted.remove(at: index)
                variants.append(String(decoding: deleted, as: UTF8.self))
                var inserted = bytes
                inserted.insert(UInt8(ascii: "1"), at: index)
                variants.append(String(decoding: inserted, as: UTF8.self))
            }
        }
        var validCount = 0
        for text in texts + variants {
            let valid = Timestamp.isValid(text)
            #expect(valid == ReferenceTimestamp.isValid(text), "isValid(\(text))")
            #expect(Timestamp.millisecondsSince1970(text) == ReferenceTimestamp.millisecondsSince1970(text), "millisecondsSince1970(\(text))")
            // The ledger's form: 24 bytes, valid, and no leap second (the ledger writes from milliseconds).
            let bytes = Array(text.utf8)
            let isLeapSecond = bytes.count == 24 && bytes[17] == UInt8(ascii: "6") && bytes[18] == UInt8(ascii: "0")
            let ledgerForm = bytes.count == 24 && ReferenceTimestamp.isValid(text) && !isLeapSecond
            #expect(Timestamp.isLedgerForm(text) == ledgerForm, "isLedgerForm(\(text))")
            if valid { validCount += 1 }
        }
        // Both kinds were compared.
        #expect(validCount > 900)
        #expect(validCount < texts.count + variants.count - 1_000)
    }
}

/// The timestamp parser before the one-pass one, as it was: the reference for the test above.
private enum ReferenceTimestamp {
    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 30, bytes.last == UInt8(ascii: "Z") else { return false }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return false }
        guard year >= 1, (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
            hour <= 23, minute <= 59, second <= 60
        else { return false }
        if bytes.count == 20 { return true }
        guard bytes[19] == UInt8(ascii: "."), bytes.count >= 22, number(20..<(bytes.count - 1)) != nil else {
            return false
        }
        return true
    }

    static func millisecondsSince1970(_ text: String) -> Int64? {
        guard isValid(text) else { return nil }
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64 {
            range.reduce(0) { $0 * 10 + Int64(bytes[$1] - 0x30) }
        }
        let year = number(0..<4), month = number(5..<7), day = number(8..<10)
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + number(11..<13) * 3600 + number(14..<16) * 60 + number(17..<19)
        var milliseconds: Int64 = 0
        if bytes[19] == UInt8(ascii: ".") {
            let digits = Array(bytes[20..<(bytes.count - 1)].prefix(3))
            for index in 0..<3 { milliseconds = milliseconds * 10 + (index < digits.count ? Int64(digits[index] - 0x30) : 0) }
        }
        return seconds * 1000 + milliseconds
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
