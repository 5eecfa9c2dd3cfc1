import CircuitoCrypto
import Foundation

// Checkpoints are C2SP tlog-checkpoint bodies in C2SP signed notes (the format of Go's golang.org/x/mod/sumdb/note),
// so that witnesses and verifiers written for Go's checksum database or Sigsum can check the ledger's tree heads.

/// A signed tree head: the C2SP tlog-checkpoint body, without extension lines.
public struct Checkpoint: Sendable, Hashable {
    public let origin: String
    public let size: UInt64
    public let rootHash: [UInt8]

    public init(origin: String, size: UInt64, rootHash: [UInt8]) throws(LedgerError) {
        guard !origin.isEmpty, !NoteText.hasControlCharacter(origin) else {
            throw LedgerError(.invalidBody, "a checkpoint origin is a non-empty line without control characters")
        }
        guard rootHash.count == MerkleHash.byteCount else {
            throw LedgerError(.invalidBody, "a checkpoint root hash has 32 bytes, not \(rootHash.count)")
        }
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
    }

    /// Parses a body strictly: exactly the three lines that `body` prints, so every checkpoint has one text form.
    public init(parsing body: String) throws(LedgerError) {
        let bytes = Array(body.utf8)
        guard bytes.last == NoteText.newline else {
            throw LedgerError(.invalidBody, "a checkpoint body ends with a newline")
        }
        let lines = bytes.dropLast().split(separator: NoteText.newline, omittingEmptySubsequences: false)
        guard lines.count == 3 else {
            throw LedgerError(.invalidBody, "a checkpoint body has exactly three lines, not \(lines.count)")
        }
        let sizeText = lines[1]
        // Digits only (UInt64(_:) would also take a sign), and no leading zero: one spelling per number.
        guard !sizeText.isEmpty, sizeText.allSatisfy({ (0x30...0x39).contains($0) }),
            sizeText.first != 0x30 || sizeText.count == 1,
            let size = UInt64(String(decoding: sizeText, as: UTF8.self))
        else {
            throw LedgerError(.invalidBody, "a checkpoint size is a decimal number without leading zeros")
        }
        guard let rootHash = Base64.decode(String(decoding: lines[2], as: UTF8.self)),
            rootHash.count == MerkleHash.byteCount
        else {
            throw LedgerError(.invalidBody, "a checkpoint root hash is 32 bytes in padded standard base64")
        }
        // The split was at ASCII newlines, so the origin is still valid UTF-8.
        try self.init(origin: String(decoding: lines[0], as: UTF8.self), size: size, rootHash: rootHash)
    }

    /// "<origin>\n<size>\n<base64 root hash>\n": the text to sign.
    public var body: String {
        "\(origin)\n\(size)\n\(Base64.encode(rootHash))\n"
    }
}

/// The public half of a note key: checks Ed25519 signatures by the key named `name`.
public struct NoteVerifier: Sendable, Hashable {
    public let name: String
    /// First four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key), big-endian: picks the key in a note.
    public let keyID: UInt32
    public let publicKey: Ed25519PublicKey

    public init(name: String, publicKey: Ed25519PublicKey) throws(LedgerError) {
        guard NoteText.isValidKeyName(name) else {
            throw LedgerError(.invalidKey, "a note key name is non-empty, without spaces, '+' or control characters")
        }
        self.name = name
        self.publicKey = publicKey
        self.keyID = NoteText.keyID(name: name, publicKey: publicKey)
    }

    /// Parses the verifier key text `<name>+<key id, 8 hex digits>+<base64(0x01 ‖ public key)>`.
    public init(parsing verifierKey: String) throws(LedgerError) {
        let fields = NoteText.splitKeyText(verifierKey, fieldCount: 3)
        guard fields.count == 3, let keyID = NoteText.parseKeyID(fields[1]),
            let material = Base64.decode(fields[2]), material.count == 1 + Ed25519PublicKey.byteCount,
            material[0] == NoteText.ed25519Algorithm,
            let publicKey = Ed25519PublicKey(bytes: Array(material.dropFirst()))
        else {
            // The text given is named: it comes from an option (--verifier-key of client submit and follow), which a
            // message without it left to guess.
            throw LedgerError(.invalidKey, "\(Self.quoted(verifierKey)) is not a note verifier key <name>+<8 hex digits>+<base64 Ed25519 key>")
        }
        try self.init(name: fields[0], publicKey: publicKey)
        guard self.keyID == keyID else {
            throw LedgerError(.invalidKey, "the note verifier key \(Self.quoted(verifierKey)) has a key id that does not match its name and key")
        }
    }

    /// `text` in quotes for a message, at most 100 characters of it.
    static func quoted(_ text: String) -> String {
        "\"" + (text.count > 100 ? text.prefix(100) + "…" : text) + "\""
    }

    /// The verifier key text, as Go's note package and C2SP signed-note print it.
    public var verifierKey: String {
        "\(name)+\(NoteText.hexKeyID(keyID))+\(Base64.encode([NoteText.ed25519Algorithm] + publicKey.bytes))"
    }
}

/// The private half of a note key.
public struct NoteSigner: Sendable {
    public let name: String
    public let keyID: UInt32
    public let privateKey: Ed25519PrivateKey

    public init(name: String, privateKey: Ed25519PrivateKey) throws(LedgerError) {
        let verifier = try NoteVerifier(name: name, publicKey: privateKey.publicKey)
        self.name = name
        self.keyID = verifier.keyID
        self.privateKey = privateKey
    }

    /// Parses Go's signer key text `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ 32-byte seed)>`.
    public init(parsing signerKey: String) throws(LedgerError) {
        let fields = NoteText.splitKeyText(signerKey, fieldCount: 5)
        // The decoded seed and its copy are wiped once the key holds it.
        var material = fields.count == 5 ? Base64.decode(fields[4]) ?? [] : []
        defer { SecretBytes.wipe(&material) }
        var seed = material.count == 1 + Ed25519PrivateKey.seedByteCount ? Array(material.dropFirst()) : []
        defer { SecretBytes.wipe(&seed) }
        guard fields.count == 5, fields[0] == "PRIVATE", fields[1] == "KEY",
            let keyID = NoteText.parseKeyID(fields[3]),
            material.count == 1 + Ed25519PrivateKey.seedByteCount, material[0] == NoteText.ed25519Algorithm,
            let privateKey = Ed25519PrivateKey(seed: seed)
        else {
            throw LedgerError(.invalidKey, "a note signer key is PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>")
        }
        try self.init(name: fields[2], privateKey: privateKey)
        guard self.keyID == keyID else {
            throw LedgerError(.invalidKey, "the note signer key's id does not match its name and key")
        }
    }

    /// The signer key text: secret, for key files only.
    public var signerKey: String {
        var seed = privateKey.seed
        var bytes = [NoteText.ed25519Algorithm] + seed
        // The text is a String, which cannot be wiped; the byte copies on the way are.
        defer {
            SecretBytes.wipe(&seed)
            SecretBytes.wipe(&bytes)
        }
        let material = Base64.encode(bytes)
        return "PRIVATE+KEY+\(name)+\(NoteText.hexKeyID(keyID))+\(material)"
    }

    public var verifier: NoteVerifier {
        // The name was checked when this signer was made, so the verifier's checks pass.
        guard let verifier = try? NoteVerifier(name: name, publicKey: privateKey.publicKey) else {
            preconditionFailure("a note signer's name is a valid key name")
        }
        return verifier
    }
}

/// Signed notes: a text ending in a newline, a blank line, then lines "— <key name> <base64(key id ‖ signature)>".
public enum SignedNote {
    /// Go's limit: a note with more signature lines than this is refused rather than parsed at length.
    public static let maximumSignatureCount = 100

    /// Signs `text` (which must end in a newline and hold no control characters but newlines).
    public static func sign(text: String, signer: NoteSigner) throws(LedgerError) -> String {
        guard text.utf8.last == NoteText.newline, !NoteText.hasControlCharacter(text, allowingNewline: true) else {
            throw LedgerError(
                .invalidSignature, "a note text ends in a newline and has no control characters but newlines")
        }
        let signature = signer.privateKey.signature(for: Array(text.utf8))
        let keyID = withUnsafeBytes(of: signer.keyID.bigEndian) { Array($0) }
        return text + "\n" + NoteText.signaturePrefix + signer.name + " " + Base64.encode(keyID + signature)
            + "\n"
    }

    /// Returns the text of `note` if it is well formed and signed by `verifier`'s key. Every signature line by
    /// that key must verify, and there must be at least one. Other keys' lines are ignored once well formed.
    public static func open(_ note: String, verifier: NoteVerifier) throws(LedgerError) -> String {
        let bytes = Array(note.utf8)
        guard !NoteText.hasControlCharacter(note, allowingNewline: true) else {
            throw malformed("it has control characters")
        }
        // The signature block follows the last blank line; signature lines cannot contain one.
        guard let split = NoteText.lastBlankLine(in: bytes) else { throw malformed("it has no signature block") }
        let text = bytes[..<(split + 1)]
        let block = bytes[(split + 2)...]
        guard block.last == NoteText.newline else { throw malformed("its signature block does not end a line") }

        let lines = block.dropLast().split(separator: NoteText.newline, omittingEmptySubsequences: false)
        guard lines.count <= maximumSignatureCount else {
            throw malformed("it has more than \(maximumSignatureCount) signatures")
        }
        let prefix = Array(NoteText.signaturePrefix.utf8)
        var verifiedCount = 0
        for line in lines {
            guard line.starts(with: prefix) else { throw malformed("a signature line does not start with \"— \"") }
            let rest = line.dropFirst(prefix.count)
            // Split at the first space: names have none, base64 has none.
            guard let space = rest.firstIndex(of: 0x20) else { throw malformed("a signature line has no space") }
            let name = String(decoding: rest[..<space], as: UTF8.self)
            guard NoteText.isValidKeyName(name),
                let decoded = Base64.decode(String(decoding: rest[(space + 1)...], as: UTF8.self)),
                decoded.count > 4
            else { throw malformed("a signature line is not \"— <name> <base64 key id and signature>\"") }
            let keyID = decoded.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard name == verifier.name, keyID == verifier.keyID else { continue }
            guard verifier.publicKey.isValidSignature(Array(decoded.dropFirst(4)), for: Array(text)) else {
                throw LedgerError(.invalidSignature, "the note's signature by \(verifier.name) does not verify")
            }
            verifiedCount += 1
        }
        guard verifiedCount > 0 else {
            throw LedgerError(.invalidSignature, "the note has no signature by \(verifier.verifierKeyPrefix)")
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func malformed(_ reason: String) -> LedgerError {
        LedgerError(.invalidSignature, "malformed signed note: \(reason)")
    }
}

extension NoteVerifier {
    /// "<name>+<key id>": how messages name the key without its material.
    fileprivate var verifierKeyPrefix: String { "\(name)+\(NoteText.hexKeyID(keyID))" }
}

/// Shared spelling rules of notes, keys and checkpoints.
private enum NoteText {
    static let newline = UInt8(ascii: "\n")
    static let ed25519Algorithm: UInt8 = 0x01
    /// U+2014 EM DASH and a space.
    static let signaturePrefix = "\u{2014} "

    /// Go's rule for key names: non-empty, no Unicode white space, no '+'; control characters would make the
    /// note unreadable, so they are refused too.
    static func isValidKeyName(_ name: String) -> Bool {
        !name.isEmpty && !hasControlCharacter(name)
            && !name.unicodeScalars.contains { $0.properties.isWhitespace || $0 == "+" }
    }

    /// ASCII control characters (below U+0020), which signed notes forbid except for the newline.
    static func hasControlCharacter(_ text: String, allowingNewline: Bool = false) -> Bool {
        text.utf8.contains { $0 < 0x20 && !(allowingNewline && $0 == newline) }
    }

    static func keyID(name: String, publicKey: Ed25519PublicKey) -> UInt32 {
        let digest = SHA256.hash(parts: Array(name.utf8), [newline, ed25519Algorithm], publicKey.bytes)
        return digest.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    static func hexKeyID(_ keyID: UInt32) -> String {
        let digits = String(keyID, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Exactly eight hexadecimal digits.
    static func parseKeyID(_ text: String) -> UInt32? {
        let isHexDigit = { (byte: UInt8) in
            (0x30...0x39).contains(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
        }
        guard text.utf8.count == 8, text.utf8.allSatisfy(isHexDigit) else { return nil }
        return UInt32(text, radix: 16)
    }

    /// Splits at the first `fieldCount - 1` pluses (base64 key material may itself hold '+').
    static func splitKeyText(_ text: String, fieldCount: Int) -> [String] {
        text.unicodeScalars.split(separator: "+", maxSplits: fieldCount - 1, omittingEmptySubsequences: false)
            .map { String($0) }
    }

    /// Byte offset of the last "\n\n".
    static func lastBlankLine(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        return (0..<(bytes.count - 1)).last { bytes[$0] == newline && bytes[$0 + 1] == newline }
    }
}
