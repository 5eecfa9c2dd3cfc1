import CircuitoCrypto

/// Limits on what one event may be. They bound memory per request and keep identifiers readable.
public enum EventLimits {
    /// Canonical bytes of one signed event.
    public static let maximumSignedEventBytes = 64 * 1024
    /// Event ids, actor ids and other identifiers.
    public static let maximumIdentifierBytes = 128
}

/// `{"v":1,"id":…,"type":…,"actor":…,"key":<Multikey>,"ts":<RFC 3339 UTC>,"body":{…}}` (DESIGN.md, fixed).
public struct Event: Sendable, Hashable {
    public static let version: Int64 = 1
    /// Prefix of the signed bytes: `circuito.event.v1` ‖ 0x0A ‖ JCS(event).
    public static let signingDomain: [UInt8] = Array("circuito.event.v1\n".utf8)

    public let id: String
    public let type: String
    public let actor: String
    public let key: String
    public let timestamp: String
    public let body: JSONObject
    /// The public key that `key` names, decoded once.
    public let publicKey: Ed25519PublicKey
    /// JCS(event), computed once: signatures, leaves and idempotency compare all use it.
    public let canonicalBytes: [UInt8]

    public init(
        id: String, type: String, actor: String, key: String, timestamp: String, body: JSONObject
    ) throws(LedgerError) {
        try self.init(id: id, type: type, actor: actor, key: key, timestamp: timestamp, body: body, knownCanonicalBytes: nil)
    }

    /// `knownCanonicalBytes`: the event's canonical form when the caller already holds it (a record's bytes, which
    /// `JSONParser.parseCanonical` has shown to be canonical), so that it is not encoded again.
    private init(
        id: String, type: String, actor: String, key: String, timestamp: String, body: JSONObject,
        knownCanonicalBytes: [UInt8]?
    ) throws(LedgerError) {
        guard Identifier.isValid(id) else { throw LedgerError(.invalidEvent, "event id \(quoted(id)) is not a valid identifier") }
        guard Identifier.isValidEventType(type) else {
            throw LedgerError(.invalidEvent, "event type \(quoted(type)) is not of the form word.word")
        }
        guard Identifier.isValid(actor) else {
            throw LedgerError(.invalidEvent, "actor \(quoted(actor)) is not a valid identifier")
        }
        guard let publicKey = Multikey.decodePublicKey(key) else {
            throw LedgerError(.invalidKey, "key \(quoted(key)) is not an Ed25519 Multikey (z6Mk…)")
        }
        guard Timestamp.isValid(timestamp) else {
            throw LedgerError(.invalidTimestamp, "ts \(quoted(timestamp)) is not an RFC 3339 UTC timestamp ending in Z")
        }
        let bodyValue = JSONValue.object(body)
        guard !bodyValue.containsNonIntegerNumber else {
            throw LedgerError(.nonIntegerNumber, "event body contains a number that is not an integer within ±(2^53 − 1); amounts and counts are integers in that range")
        }
        self.id = id
        self.type = type
        self.actor = actor
        self.key = key
        self.timestamp = timestamp
        self.body = body
        self.publicKey = publicKey
        if let knownCanonicalBytes {
            self.canonicalBytes = knownCanonicalBytes
            assert(
                knownCanonicalBytes == Self.canonicalBytes(id: id, type: type, actor: actor, key: key, timestamp: timestamp, body: bodyValue),
                "the bytes handed in are the event's canonical form")
        } else {
            self.canonicalBytes = Self.canonicalBytes(
                id: id, type: type, actor: actor, key: key, timestamp: timestamp, body: bodyValue)
        }
    }

    /// JCS of the event, written member by member in RFC 8785 key order (actor, body, id, key, ts, type, v) rather
    /// than through a seven-member object built for each event; equal to `CanonicalJSON.encode(json)`.
    static func canonicalBytes(
        id: String, type: String, actor: String, key: String, timestamp: String, body: JSONValue
    ) -> [UInt8] {
        var writer = CanonicalJSON.ObjectWriter(reservingCapacity: 1024)
        writer.member("actor", .string(actor))
        writer.member("body", body)
        writer.member("id", .string(id))
        writer.member("key", .string(key))
        writer.member("ts", .string(timestamp))
        writer.member("type", .string(type))
        writer.member("v", .integer(version))
        return writer.finish()
    }

    public init(json: JSONValue) throws(LedgerError) {
        try self.init(json: json, knownCanonicalBytes: nil)
    }

    /// From a parsed event; `knownCanonicalBytes` as for the member-wise initialiser.
    init(json: JSONValue, knownCanonicalBytes: [UInt8]?) throws(LedgerError) {
        guard case .object(let members) = json else { throw LedgerError(.invalidEvent, "an event is a JSON object") }
        try requireExactKeys(members, ["v", "id", "type", "actor", "key", "ts", "body"], what: "event")
        guard case .integer(let version)? = members["v"] else {
            throw LedgerError(.invalidEvent, "event field v must be the integer 1")
        }
        guard version == Self.version else {
            throw LedgerError(.unsupportedVersion, "event version \(version) is not supported; this ledger reads version 1")
        }
        guard case .object(let body)? = members["body"] else {
            throw LedgerError(.invalidEvent, "event field body must be a JSON object")
        }
        try self.init(
            id: try requireString(members, "id", what: "event"),
            type: try requireString(members, "type", what: "event"),
            actor: try requireString(members, "actor", what: "event"),
            key: try requireString(members, "key", what: "event"),
            timestamp: try requireString(members, "ts", what: "event"),
            body: body, knownCanonicalBytes: knownCanonicalBytes)
    }

    public var json: JSONValue {
        .object([
            "v": .integer(Self.version), "id": .string(id), "type": .string(type), "actor": .string(actor),
            "key": .string(key), "ts": .string(timestamp), "body": .object(body),
        ])
    }

    /// The bytes the signature covers.
    public var signingBytes: [UInt8] { Self.signingDomain + canonicalBytes }
}

/// `{"event":{…},"sig":<base64>}`.
public struct SignedEvent: Sendable, Hashable {
    public let event: Event
    public let signature: [UInt8]

    public init(event: Event, signature: [UInt8]) {
        self.event = event
        self.signature = signature
    }

    /// Signs `event` with `privateKey`. The caller makes sure `event.key` names that key's public half.
    public init(signing event: Event, with privateKey: Ed25519PrivateKey) {
        precondition(event.publicKey == privateKey.publicKey, "an event is signed with the key it names")
        self.init(event: event, signature: privateKey.signature(for: event.signingBytes))
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard case .object(let members) = json else { throw LedgerError(.invalidEvent, "a signed event is a JSON object") }
        try requireExactKeys(members, ["event", "sig"], what: "signed event")
        try self.init(members: members)
    }

    /// From the `event` and `sig` members of a signed event or a record (their other members checked by the caller);
    /// `eventCanonicalBytes` as for `Event`'s member-wise initialiser.
    init(members: JSONObject, eventCanonicalBytes: [UInt8]? = nil) throws(LedgerError) {
        let signatureText = try requireString(members, "sig", what: "signed event")
        guard let signature = Base64.decode(signatureText), signature.count == Ed25519.signatureByteCount else {
            throw LedgerError(.invalidSignature, "sig must be a 64-byte Ed25519 signature in padded standard base64")
        }
        guard let eventJSON = members["event"] else { throw LedgerError(.invalidEvent, "signed event has no event") }
        self.init(event: try Event(json: eventJSON, knownCanonicalBytes: eventCanonicalBytes), signature: signature)
    }

    /// A signed event that arrived already parsed (a JSON-RPC parameter): bounded by the size of its canonical
    /// form, the text it would have as an input line.
    public init(submitted json: JSONValue) throws(LedgerError) {
        try self.init(json: json)
        guard Self.canonicalByteCount(eventByteCount: event.canonicalBytes.count) <= EventLimits.maximumSignedEventBytes else {
            throw LedgerError(.tooLarge, "a signed event is at most \(EventLimits.maximumSignedEventBytes) bytes in canonical form")
        }
    }

    /// `{"event":` E `,"sig":"` 88 base64 characters `"}`: the canonical size of a signed event whose event is E bytes.
    static func canonicalByteCount(eventByteCount: Int) -> Int { eventByteCount + 107 }

    /// JCS of the signed event, assembled around the event's cached canonical bytes.
    public var canonicalBytes: [UInt8] {
        var writer = CanonicalJSON.ObjectWriter(reservingCapacity: Self.canonicalByteCount(eventByteCount: event.canonicalBytes.count))
        writer.member("event", canonicalBytes: event.canonicalBytes)
        writer.member("sig", .string(Base64.encode(signature)))
        return writer.finish()
    }

    /// Parses one signed event from its JSON text, bounding its size first.
    public init(jsonBytes: [UInt8]) throws(LedgerError) {
        guard jsonBytes.count <= EventLimits.maximumSignedEventBytes else {
            throw LedgerError(.tooLarge, "a signed event is at most \(EventLimits.maximumSignedEventBytes) bytes")
        }
        try self.init(json: try JSONParser.parse(jsonBytes))
    }

    public var json: JSONValue { .object(["event": event.json, "sig": .string(Base64.encode(signature))]) }

    /// Checks the Ed25519 signature over the domain-prefixed canonical event. Only this makes a `VerifiedEvent`.
    public func verified() throws(LedgerError) -> VerifiedEvent {
        guard event.publicKey.isValidSignature(signature, for: event.signingBytes) else {
            throw LedgerError(.invalidSignature, "the signature does not verify for event \(quoted(event.id)) with key \(event.key)")
        }
        // Signatures embedded in the body are checked here too, off the single writer; the rule reuses what was read.
        if event.type == "payment.redeemed" {
            return VerifiedEvent(signedEvent: self, paymentAuthorisation: try PaymentAuthorisation.verified(paymentBody: event.body))
        }
        return VerifiedEvent(signedEvent: self, paymentAuthorisation: nil)
    }

    /// A record's event whose signatures are not checked again because the ledger's checkpoint key attests its
    /// leaf: only for a replay that hashes every leaf into the tree and fails unless each signed checkpoint's root
    /// matches (`circuito rebuild --trust-checkpoints`). A changed record, signature included, changes its leaf and
    /// so is still found; what is trusted is that the ledger checked the signatures when it appended the record.
    package func attestedByCheckpoint() -> VerifiedEvent {
        // A payment's authorisation is read here, off the replay's rule thread, as `verified()` reads it; one that
        // does not read is left to the rule, which reads it again and refuses it as it would have.
        guard event.type == "payment.redeemed" else { return VerifiedEvent(signedEvent: self, paymentAuthorisation: nil) }
        let authorisation = try? PaymentAuthorisation.read(paymentBody: BodyReader(event.body, type: event.type))
        return VerifiedEvent(signedEvent: self, paymentAuthorisation: authorisation)
    }
}

/// A signed event whose signature has been checked. The rulebook accepts only these, so no path (live write,
/// replay, follower) can apply an event whose signature was not checked.
public struct VerifiedEvent: Sendable, Hashable {
    public let signedEvent: SignedEvent
    public var event: Event { signedEvent.event }
    /// A `payment.redeemed`'s wallet authorisation as read when its signature was checked (nil when not checked
    /// here: the rule then reads it from the body, as it would have been read).
    let paymentAuthorisation: PaymentAuthorisation?

    /// Signatures the event carries that `SignedEvent.verified()` checks: its own, and a payment's authorisation
    /// (counted when it was read with the event).
    package var signatureCount: Int { paymentAuthorisation == nil ? 1 : 2 }

    fileprivate init(signedEvent: SignedEvent, paymentAuthorisation: PaymentAuthorisation?) {
        self.signedEvent = signedEvent
        self.paymentAuthorisation = paymentAuthorisation
    }
}

/// `{"seq":n,"recorded_at":<RFC 3339 UTC>,"event":{…},"sig":…}`; its canonical bytes are the Merkle leaf.
public struct Record: Sendable, Hashable {
    public let sequenceNumber: UInt64
    public let recordedAt: String
    public let signedEvent: SignedEvent

    public init(sequenceNumber: UInt64, recordedAt: String, signedEvent: SignedEvent) {
        self.sequenceNumber = sequenceNumber
        self.recordedAt = recordedAt
        self.signedEvent = signedEvent
    }

    public var json: JSONValue {
        .object([
            "seq": .integer(Int64(sequenceNumber)), "recorded_at": .string(recordedAt),
            "event": signedEvent.event.json, "sig": .string(Base64.encode(signedEvent.signature)),
        ])
    }

    /// JCS of the record (keys in order event, recorded_at, seq, sig), assembled around the event's cached
    /// canonical bytes; equal to `CanonicalJSON.encode(json)`.
    public var leafBytes: [UInt8] {
        var writer = CanonicalJSON.ObjectWriter(reservingCapacity: signedEvent.event.canonicalBytes.count + 180)
        writer.member("event", canonicalBytes: signedEvent.event.canonicalBytes)
        writer.member("recorded_at", .string(recordedAt))
        writer.member("seq", .integer(Int64(sequenceNumber)))
        writer.member("sig", .string(Base64.encode(signedEvent.signature)))
        return writer.finish()
    }

    /// Parses stored leaf bytes, refusing anything that is not exactly the canonical form of a record.
    ///
    /// The parse itself refuses bytes that are not canonical JSON; with the fields checked (the signature's base64 is
    /// strict), nothing else could give other bytes, so the event's canonical form is the bytes its member spans and
    /// nothing is encoded again (debug builds still encode and compare). Bytes that are not canonical are read again
    /// as plain JSON so that a bad field is refused with its own code first, as `Specs/ledger.md` 5.1 and 5.2 order
    /// the checks.
    public init(leafBytes: [UInt8]) throws(LedgerError) {
        let document: JSONParser.CanonicalDocument
        do throws(LedgerError) {
            document = try JSONParser.parseCanonical(leafBytes)
        } catch where error.code == .integrity {
            _ = try Self.fields(of: try JSONParser.parse(leafBytes), eventCanonicalBytes: { _ in nil })
            throw LedgerError(.integrity, "record bytes are \(error.message)")
        }
        let (sequenceNumber, recordedAt, signedEvent) = try Self.fields(of: document.value) { members in
            // Exactly four members, so the top-level ranges are theirs, in key order.
            guard let eventIndex = members.keys.firstIndex(of: "event") else { preconditionFailure("the record's keys were checked") }
            return Array(leafBytes[document.memberValueRanges[eventIndex]])
        }
        self.init(sequenceNumber: sequenceNumber, recordedAt: recordedAt, signedEvent: signedEvent)
        assert(self.leafBytes == leafBytes, "a record read from canonical bytes gives back those bytes")
    }

    /// A record's members, checked in the order of `Specs/ledger.md` 5.1; `eventCanonicalBytes` gives the event's
    /// canonical form when the caller holds it.
    private static func fields(
        of json: JSONValue, eventCanonicalBytes: (JSONObject) -> [UInt8]?
    ) throws(LedgerError) -> (UInt64, String, SignedEvent) {
        guard case .object(let members) = json else { throw LedgerError(.invalidEvent, "a record is a JSON object") }
        try requireExactKeys(members, ["seq", "recorded_at", "event", "sig"], what: "record")
        guard case .integer(let sequenceNumber)? = members["seq"], sequenceNumber >= 0 else {
            throw LedgerError(.invalidEvent, "record seq must be a non-negative integer")
        }
        let recordedAt = try requireString(members, "recorded_at", what: "record")
        guard Timestamp.isValid(recordedAt) else {
            throw LedgerError(.invalidTimestamp, "record recorded_at \(quoted(recordedAt)) is not an RFC 3339 UTC timestamp")
        }
        let signedEvent = try SignedEvent(members: members, eventCanonicalBytes: eventCanonicalBytes(members))
        return (UInt64(sequenceNumber), recordedAt, signedEvent)
    }
}

/// A write's proof of acceptance: where the record sits, when it was recorded, the signature it holds, its leaf
/// hash, and a signed checkpoint covering it. With `recordedAt` and `signature` the submitter rebuilds the record's
/// leaf from its own event, so it need not take the leaf hash on trust (Specs/ledger.md 7.4). The signature is the
/// stored one: a resubmission signed again (by a signer that does not sign deterministically) gets the first one.
public struct Receipt: Sendable, Hashable {
    public let eventID: String
    public let sequenceNumber: UInt64
    public let recordedAt: String
    public let signature: [UInt8]
    public let leafHash: [UInt8]
    public let checkpoint: String

    public init(eventID: String, sequenceNumber: UInt64, recordedAt: String, signature: [UInt8], leafHash: [UInt8], checkpoint: String) {
        self.eventID = eventID
        self.sequenceNumber = sequenceNumber
        self.recordedAt = recordedAt
        self.signature = signature
        self.leafHash = leafHash
        self.checkpoint = checkpoint
    }

    public var json: JSONValue {
        .object([
            "id": .string(eventID), "seq": .integer(Int64(sequenceNumber)), "recorded_at": .string(recordedAt),
            "sig": .string(Base64.encode(signature)), "leaf_hash": .string(Base64.encode(leafHash)), "checkpoint": .string(checkpoint),
        ])
    }
}

/// Identifiers chosen by clients: 1 to 128 bytes of letters, digits and `.` `_` `:` `-`.
public enum Identifier {
    public static func isValid(_ text: String) -> Bool {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= EventLimits.maximumIdentifierBytes else { return false }
        return bytes.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":")
                || byte == UInt8(ascii: "-")
        }
    }

    /// Event types: lowercase words joined by one dot, `_` inside words (`actor.key_added`).
    public static func isValidEventType(_ text: String) -> Bool {
        // One pass over the bytes (every record parsed runs this): word characters, exactly one dot, no empty word.
        let bytes = text.utf8
        guard bytes.count <= 64 else { return false }
        var dots = 0
        var wordLength = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard wordLength > 0 else { return false }
                dots += 1
                wordLength = 0
            } else if (0x61...0x7a).contains(byte) || byte == UInt8(ascii: "_") {
                wordLength += 1
            } else {
                return false
            }
        }
        return dots == 1 && wordLength > 0
    }
}

func quoted(_ text: String) -> String {
    let shown = text.count > 80 ? String(text.prefix(80)) + "…" : text
    return "\"" + shown + "\""
}

/// `keys` are few and distinct: an array searched in order costs less than building a set on every record.
func requireExactKeys(_ members: JSONObject, _ keys: [String], what: String) throws(LedgerError) {
    for key in keys where members[key] == nil {
        throw LedgerError(.invalidEvent, "\(what) has no field \(quoted(key))")
    }
    // Every one of `keys` is present, so any more members are unknown ones.
    guard members.count > keys.count else { return }
    if let extra = members.keys.first(where: { !keys.contains($0) }) {
        throw LedgerError(.invalidEvent, "\(what) has an unknown field \(quoted(extra))")
    }
}

func requireString(_ members: JSONObject, _ key: String, what: String) throws(LedgerError) -> String {
    guard case .string(let value)? = members[key] else {
        throw LedgerError(.invalidEvent, "\(what) field \(quoted(key)) must be a string")
    }
    return value
}
