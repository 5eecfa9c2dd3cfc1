import CircuitoCore
import CircuitoCrypto

/// Why a Data Integrity proof was not accepted.
public enum DataIntegrityVerificationFailure: Sendable, Equatable, CustomStringConvertible {
    /// The document is not a JSON object or has no `proof`.
    case missingProof
    /// The proof lacks a required field, has one of the wrong kind, or uses a feature this verifier refuses.
    case malformedProof(String)
    /// `proof.type` is not `DataIntegrityProof`.
    case unsupportedProofType(String)
    /// `proof.cryptosuite` is not one of `eddsa-rdfc-2022` and `eddsa-jcs-2022`.
    case unsupportedCryptosuite(String)
    /// `proof.proofPurpose` is not the purpose the verifier asked for.
    case proofPurposeMismatch(expected: String, actual: String)
    /// `proof.proofValue` is not a multibase base58btc (`z…`) string.
    case proofValueNotMultibaseBase58
    /// `proof.proofValue` does not decode to a 64-byte Ed25519 signature.
    case invalidSignatureLength(Int)
    /// The key resolver does not know `proof.verificationMethod`.
    case unknownVerificationMethod(String)
    /// eddsa-jcs-2022: the document's `@context` does not start with the proof's `@context`.
    case contextMismatch
    /// The document or proof options cannot be processed (unknown context, undefined term, invalid JSON-LD…).
    case documentNotProcessable(String)
    /// The signature does not match: the document or its proof options changed after signing, or another key
    /// signed it.
    case signatureMismatch

    public var description: String {
        switch self {
        case .missingProof: return "the document has no proof"
        case .malformedProof(let detail): return "malformed proof: \(detail)"
        case .unsupportedProofType(let type): return "unsupported proof type \"\(type)\" (expected DataIntegrityProof)"
        case .unsupportedCryptosuite(let suite):
            return "unsupported cryptosuite \"\(suite)\" (expected eddsa-rdfc-2022 or eddsa-jcs-2022)"
        case .proofPurposeMismatch(let expected, let actual):
            return "proof purpose is \"\(actual)\", expected \"\(expected)\""
        case .proofValueNotMultibaseBase58: return "proofValue is not a multibase base58btc string (\"z…\")"
        case .invalidSignatureLength(let count):
            return "proofValue holds \(count) bytes, not a 64-byte Ed25519 signature"
        case .unknownVerificationMethod(let method): return "unknown verification method \(method)"
        case .contextMismatch: return "the document's @context does not start with the proof's @context"
        case .documentNotProcessable(let detail): return "the document cannot be processed: \(detail)"
        case .signatureMismatch:
            return "bad signature: the document or its proof changed after signing, or another key signed it"
        }
    }
}

/// The outcome of verifying a Data Integrity proof.
public enum DataIntegrityVerificationResult: Sendable, Equatable {
    /// The proof is valid; `unsecuredDocument` is what it covers (the document without `proof`, with the
    /// `@context` the proof was made over). Use it, not the input, as the verified data.
    case verified(unsecuredDocument: JSONValue)
    case failed(DataIntegrityVerificationFailure)

    public var isVerified: Bool {
        if case .verified = self { return true }
        return false
    }

    public var failure: DataIntegrityVerificationFailure? {
        if case .failed(let failure) = self { return failure }
        return nil
    }
}

/// `did:key` identifiers for Ed25519 keys (W3C CCG did:key method): `did:key:z6Mk…`, whose only verification
/// method is `did:key:z6Mk…#z6Mk…`.
public enum DIDKey {
    /// `did:key:<multikey>` for `key`.
    public static func did(for key: Ed25519PublicKey) -> String { "did:key:" + Multikey.encode(key) }

    /// `did:key:<multikey>#<multikey>`, the verification method to put in a proof.
    public static func verificationMethod(for key: Ed25519PublicKey) -> String {
        let multikey = Multikey.encode(key)
        return "did:key:\(multikey)#\(multikey)"
    }

    /// The public key of a `did:key:z6Mk…#z6Mk…` verification method (or a bare `did:key:z6Mk…`). Returns nil
    /// for anything else, including a fragment that is not the DID's own key.
    public static func publicKey(fromVerificationMethod verificationMethod: String) -> Ed25519PublicKey? {
        let prefix = "did:key:"
        guard verificationMethod.hasPrefix(prefix) else { return nil }
        let identifier = verificationMethod.dropFirst(prefix.count)
        let parts = identifier.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        let multikey = String(parts[0])
        if parts.count == 2 && parts[1] != parts[0] { return nil }
        return Multikey.decodePublicKey(multikey)
    }
}

/// The lexical space of xsd:dateTime (XML Schema 1.1 Part 2). Data Integrity requires `created` to be an
/// xsd:dateTimeStamp: a dateTime with a time zone ("Z" or an offset).
enum XSDDateTime {
    static func isValidTimestamp(_ text: String) -> Bool { isValid(text, requiringTimeZone: true) }

    static func isValid(_ text: String, requiringTimeZone: Bool = false) -> Bool {
        var scanner = Array(text.utf8)[...]
        func digits(_ count: Int) -> Int? {
            guard scanner.count >= count else { return nil }
            var value = 0
            for byte in scanner.prefix(count) {
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            scanner = scanner.dropFirst(count)
            return value
        }
        func expect(_ character: Character) -> Bool {
            guard let byte = character.asciiValue, scanner.first == byte else { return false }
            scanner = scanner.dropFirst()
            return true
        }
        if scanner.first == UInt8(ascii: "-") { scanner = scanner.dropFirst() }
        // Year: four or more digits, no leading zero beyond four digits.
        let yearDigits = scanner.prefix { $0 >= 0x30 && $0 <= 0x39 }.count
        guard yearDigits >= 4, yearDigits == 4 || scanner.first != UInt8(ascii: "0"), yearDigits <= 9,
            let year = digits(yearDigits), expect("-"), let month = digits(2), expect("-"), let day = digits(2),
            expect("T"), let hour = digits(2), expect(":"), let minute = digits(2), expect(":"),
            let second = digits(2)
        else { return false }
        var fractionIsZero = true
        if expect(".") {
            let fractionDigits = scanner.prefix { $0 >= 0x30 && $0 <= 0x39 }
            guard !fractionDigits.isEmpty else { return false }
            fractionIsZero = fractionDigits.allSatisfy { $0 == 0x30 }
            scanner = scanner.dropFirst(fractionDigits.count)
        }
        if expect("Z") {
            // UTC.
        } else if scanner.first == UInt8(ascii: "+") || scanner.first == UInt8(ascii: "-") {
            scanner = scanner.dropFirst()
            guard let offsetHours = digits(2), expect(":"), let offsetMinutes = digits(2), offsetMinutes < 60,
                offsetHours < 14 || (offsetHours == 14 && offsetMinutes == 0)
            else { return false }
        } else if requiringTimeZone {
            return false
        }
        guard scanner.isEmpty, (1...12).contains(month), minute < 60, second < 60 else { return false }
        guard hour < 24 || (hour == 24 && minute == 0 && second == 0 && fractionIsZero) else { return false }
        let isLeapYear = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let daysInMonth = [31, isLeapYear ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return (1...daysInMonth).contains(day)
    }
}
