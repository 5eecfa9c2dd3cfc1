import CircuitoCore
import CircuitoCrypto

/// Reading personal data back: the sealed fields of events, opened with the subject's key from the vault.
public enum PersonalData {
    /// What a reader sees in place of a sealed field.
    public enum Opened: Sendable, Hashable {
        case clear(JSONValue)
        /// The subject was erased (`subject.erased`): the key is gone for good.
        case erased
        /// The vault holds no key for the subject (another vault, or a key never issued here).
        case unavailable
        /// The key does not open the data (changed ciphertext or a different key).
        case undecryptable

        public var json: JSONValue {
            switch self {
            case .clear(let value): return value
            case .erased: return "erased"
            case .unavailable: return "unavailable"
            case .undecryptable: return "undecryptable"
            }
        }
    }

    /// Replaces every sealed object in `body` (an object whose `alg` is the sealing algorithm) by what its
    /// subject's key opens, or by "erased" / "unavailable" / "undecryptable". A key file that is there but cannot be
    /// used (readable by others, damaged, another subject's) is `key_file`, not "unavailable": read as missing, it
    /// would lead someone to make a new key and lose the data sealed under the old one.
    public static func open(body: JSONValue, subject: String, vault: KeyVault?, erased: Bool) throws(LedgerError) -> JSONValue {
        var key: [UInt8]?
        if !erased, let vault { key = try vault.key(for: subject) }
        defer {
            // Dropped from the optional first, so that the array wiped is the only holder of the key's bytes.
            if var held = key {
                key = nil
                SecretBytes.wipe(&held)
            }
        }
        return open(body: body, subject: subject, key: key, erased: erased)
    }

    /// The same with the subject's key already read from the vault (nil: the vault holds none), for a reader that
    /// opens many events of one subject.
    public static func open(body: JSONValue, subject: String, key: [UInt8]?, erased: Bool) -> JSONValue {
        replaceSealed(in: body, depth: 0) { sealed in
            if erased { return Opened.erased.json }
            guard let key else { return Opened.unavailable.json }
            guard let value = SealedData.open(sealed, subject: subject, key: key) else { return Opened.undecryptable.json }
            return Opened.clear(value).json
        }
    }

    static func replaceSealed(in value: JSONValue, depth: Int, _ replacement: (JSONValue) -> JSONValue) -> JSONValue {
        // Event bodies are at most 64 levels deep (the parser's bound); this never recurses further.
        guard depth < JSONParser.defaultMaximumDepth else { return value }
        switch value {
        case .object(let members):
            if members["alg"] == .string(SealedData.algorithm), members["ciphertext"] != nil { return replacement(value) }
            return .object(members.mapValues { replaceSealed(in: $0, depth: depth + 1, replacement) })
        case .array(let elements):
            return .array(elements.map { replaceSealed(in: $0, depth: depth + 1, replacement) })
        default:
            return value
        }
    }
}

extension LedgerReader {
    /// Whether the ledger records `subject`'s erasure (`subject.erased`).
    public func isErased(subject: String) throws(LedgerError) -> Bool {
        try withState { (state) throws(LedgerError) in try state.json(.subjects, subject) != nil }
    }

    /// The most events one `caseHistory` page holds: each is read from the log and its sealed fields opened.
    public static let maximumCaseHistoryEntries = 1000

    /// A page of the events that concern `beneficiary` (its case history), in seq order from `after` (exclusive),
    /// each as `{"seq","recorded_at","type","actor","body"}` with sealed fields opened from `vault`; `limit` is
    /// taken within 1 to `maximumCaseHistoryEntries`.
    public func caseHistory(beneficiary: String, vault: KeyVault?, after: UInt64? = nil, limit: Int) throws(LedgerError) -> [JSONValue] {
        let boundedLimit = max(1, min(limit, Self.maximumCaseHistoryEntries))
        let (sequenceNumbers, erased) = try withState { (state) throws(LedgerError) -> ([UInt64], Bool) in
            let prefix = StateKey.prefix(beneficiary)
            var numbers: [UInt64] = []
            let start = after.map { prefix + StateKey.number($0 + 1) } ?? prefix
            try state.transaction.forEach(StateTable.caseHistory.name, from: start) { (key, _) throws(LedgerError) -> Bool in
                guard key.starts(with: prefix), let number = StateKey.decodeNumber(key.dropFirst(prefix.count)) else { return false }
                numbers.append(number)
                return numbers.count < boundedLimit
            }
            return (numbers, try state.json(.subjects, beneficiary) != nil)
        }
        var entries: [JSONValue] = []
        for sequenceNumber in sequenceNumbers {
            let record = try Record(leafBytes: try leafBytes(sequenceNumber: sequenceNumber))
            let event = record.signedEvent.event
            entries.append(.object([
                "seq": .integer(Int64(sequenceNumber)), "recorded_at": .string(record.recordedAt), "type": .string(event.type),
                "actor": .string(event.actor),
                "body": try PersonalData.open(body: .object(event.body), subject: beneficiary, vault: vault, erased: erased),
            ]))
        }
        return entries
    }
}
