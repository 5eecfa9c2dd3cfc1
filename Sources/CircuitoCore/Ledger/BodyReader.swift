import CircuitoCrypto

/// Typed, strict reads of an event body: every refusal names the event type and the field.
public struct BodyReader {
    let members: JSONObject
    let type: String

    public init(_ members: JSONObject, type: String) {
        self.members = members
        self.type = type
    }

    public func allowOnly(_ keys: Set<String>) throws(LedgerError) {
        // Keys are in canonical order, so the first unknown one named is always the same one.
        if let extra = members.keys.first(where: { !keys.contains($0) }) {
            throw LedgerError(.invalidBody, "\(type) body has an unknown field \(quoted(extra))")
        }
    }

    public func string(_ key: String) throws(LedgerError) -> String {
        guard case .string(let value)? = members[key] else {
            throw LedgerError(.invalidBody, "\(type) body needs \(quoted(key)) as a string")
        }
        return value
    }

    public func integer(_ key: String) throws(LedgerError) -> Int64 {
        guard case .integer(let value)? = members[key] else {
            throw LedgerError(.invalidBody, "\(type) body needs \(quoted(key)) as an integer")
        }
        return value
    }

    public func object(_ key: String) throws(LedgerError) -> JSONObject {
        guard case .object(let value)? = members[key] else {
            throw LedgerError(.invalidBody, "\(type) body needs \(quoted(key)) as an object")
        }
        return value
    }

    public func identifier(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard Identifier.isValid(value) else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must be 1 to 128 letters, digits or . _ : -")
        }
        try requireNoTaxCode(value, key)
        return value
    }

    public func optionalIdentifier(_ key: String) throws(LedgerError) -> String? {
        guard members[key] != nil else { return nil }
        return try identifier(key)
    }

    /// Free text shown to people: non-empty, bounded.
    public func name(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard !value.isEmpty, value.utf8.count <= Rulebook.maximumNameBytes else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must be 1 to \(Rulebook.maximumNameBytes) bytes of text")
        }
        try requireNoTaxCode(value, key)
        return value
    }

    public func optionalName(_ key: String) throws(LedgerError) -> String? {
        guard members[key] != nil else { return nil }
        return try name(key)
    }

    /// What is in clear stays in the signed log for good, beyond the reach of erasure: a person's tax code there
    /// is refused, never echoed back (the refusal may be logged where the sealed data could not be).
    func requireNoTaxCode(_ value: String, _ key: String) throws(LedgerError) {
        guard ItalianTaxCode.occurs(in: value) else { return }
        throw LedgerError(
            .invalidBody,
            "\(type) \(quoted(key)) holds an Italian tax code (codice fiscale) in clear: personal data goes only in a sealed member, and ids are pseudonyms (Specs/events.md 1.6)")
    }

    public func multikey(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard Multikey.decodePublicKey(value) != nil else {
            throw LedgerError(.invalidKey, "\(type) \(quoted(key)) must be an Ed25519 Multikey (z6Mk…)")
        }
        return value
    }

    public func keyList(_ key: String) throws(LedgerError) -> [String] {
        guard case .array(let elements)? = members[key], !elements.isEmpty,
            elements.count <= Rulebook.maximumKeysPerRegistration
        else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must list 1 to \(Rulebook.maximumKeysPerRegistration) Multikeys")
        }
        var keys: [String] = []
        for element in elements {
            guard case .string(let text) = element, Multikey.decodePublicKey(text) != nil else {
                throw LedgerError(.invalidKey, "\(type) \(quoted(key)) holds something that is not an Ed25519 Multikey")
            }
            guard !keys.contains(text) else {
                throw LedgerError(.invalidBody, "\(type) \(quoted(key)) names key \(text) twice")
            }
            keys.append(text)
        }
        return keys
    }
}

extension BodyReader {
    public func has(_ key: String) -> Bool { members[key] != nil }

    /// A strictly positive amount in cents (or a count), at most 10^12 so that sums stay far from overflow.
    public func positiveAmount(_ key: String) throws(LedgerError) -> Int64 {
        let value = try integer(key)
        guard value > 0, value <= Amounts.maximum else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must be an integer from 1 to \(Amounts.maximum)")
        }
        return value
    }

    public func optionalPositiveAmount(_ key: String) throws(LedgerError) -> Int64? {
        guard members[key] != nil else { return nil }
        return try positiveAmount(key)
    }

    public func optionalObject(_ key: String) throws(LedgerError) -> JSONObject? {
        guard members[key] != nil else { return nil }
        return try object(key)
    }

    /// Free text, bounded (descriptions, criteria); may be long, never empty.
    public func text(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard !value.isEmpty, value.utf8.count <= Rulebook.maximumTextBytes else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must be 1 to \(Rulebook.maximumTextBytes) bytes of text")
        }
        try requireNoTaxCode(value, key)
        return value
    }

    /// A lowercase slug (`eye_care`, `civic_utility`): letters, digits and `_`, 1 to 64 bytes.
    public func slug(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard Slug.isValid(value) else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must be a lowercase word (a-z, 0-9, _), got \(quoted(value))")
        }
        try requireNoTaxCode(value, key)
        return value
    }

    public func identifierList(_ key: String, maximumCount: Int, allowEmpty: Bool = false) throws(LedgerError) -> [String] {
        guard case .array(let elements)? = members[key], elements.count <= maximumCount, allowEmpty || !elements.isEmpty else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must list \(allowEmpty ? 0 : 1) to \(maximumCount) identifiers")
        }
        var values: [String] = []
        for element in elements {
            guard case .string(let text) = element, Identifier.isValid(text) else {
                throw LedgerError(.invalidBody, "\(type) \(quoted(key)) holds something that is not an identifier")
            }
            try requireNoTaxCode(text, key)
            guard !values.contains(text) else {
                throw LedgerError(.invalidBody, "\(type) \(quoted(key)) names \(quoted(text)) twice")
            }
            values.append(text)
        }
        return values
    }

    public func slugList(_ key: String, maximumCount: Int) throws(LedgerError) -> [String] {
        guard case .array(let elements)? = members[key], !elements.isEmpty, elements.count <= maximumCount else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must list 1 to \(maximumCount) lowercase words")
        }
        var values: [String] = []
        for element in elements {
            guard case .string(let text) = element, Slug.isValid(text) else {
                throw LedgerError(.invalidBody, "\(type) \(quoted(key)) holds something that is not a lowercase word")
            }
            try requireNoTaxCode(text, key)
            guard !values.contains(text) else {
                throw LedgerError(.invalidBody, "\(type) \(quoted(key)) names \(quoted(text)) twice")
            }
            values.append(text)
        }
        return values
    }

    /// A calendar date `YYYY-MM-DD`.
    public func date(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard value.utf8.count == 10, Timestamp.isValid(value + "T00:00:00Z") else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must be a date YYYY-MM-DD")
        }
        return value
    }

    public func timestamp(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard Timestamp.isValid(value) else {
            throw LedgerError(.invalidTimestamp, "\(type) \(quoted(key)) must be an RFC 3339 UTC timestamp ending in Z")
        }
        return value
    }
}

/// Lowercase words used as categories: a-z, 0-9 and `_`, 1 to 64 bytes.
public enum Slug {
    public static func isValid(_ text: String) -> Bool {
        let bytes = text.utf8
        return !bytes.isEmpty && bytes.count <= 64
            && bytes.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") }
    }
}

public enum Amounts {
    /// No single amount exceeds 10^12 cents (10 billion TOC): sums of up to millions of them stay within Int64.
    public static let maximum: Int64 = 1_000_000_000_000
}
