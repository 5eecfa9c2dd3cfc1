import CircuitoCore

/// Multibase base64url (prefix "u", RFC 4648 section 5 alphabet, no padding), the encoding of a status list's
/// `encodedList`.
public enum MultibaseBase64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let values: [Int8] = {
        var values = [Int8](repeating: -1, count: 256)
        for (index, character) in alphabet.enumerated() { values[Int(character)] = Int8(index) }
        return values
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var text: [UInt8] = [UInt8(ascii: "u")]
        text.reserveCapacity(1 + (bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let remaining = min(3, bytes.count - index)
            var group = 0
            for offset in 0..<3 { group = group << 8 | (offset < remaining ? Int(bytes[index + offset]) : 0) }
            for position in 0...remaining { text.append(alphabet[group >> (18 - 6 * position) & 0x3F]) }
            index += 3
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The bytes of a "u…" string; nil when the prefix or a character is wrong. Trailing "=" padding is tolerated
    /// (some encoders write it), other characters are not.
    public static func decode(_ text: String) -> [UInt8]? {
        var characters = Array(text.utf8)
        guard characters.first == UInt8(ascii: "u") else { return nil }
        characters.removeFirst()
        while characters.last == UInt8(ascii: "=") { characters.removeLast() }
        guard characters.count % 4 != 1 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count * 3 / 4)
        var accumulator = 0
        var bitCount = 0
        for character in characters {
            let value = values[Int(character)]
            guard value >= 0 else { return nil }
            accumulator = (accumulator << 6 | Int(value)) & 0xFFFFFF
            bitCount += 6
            if bitCount >= 8 {
                bitCount -= 8
                bytes.append(UInt8(truncatingIfNeeded: accumulator >> bitCount))
            }
        }
        return bytes
    }
}

/// A W3C Bitstring Status List: one bit per credential, index 0 the left-most (most significant) bit of the first
/// byte; a set bit means the credential's status (here: revoked) applies.
public struct BitstringStatusList: Sendable, Hashable {
    /// The specification's minimum length (16 KiB): enough entries that one credential's bit does not reveal which
    /// credential a verifier checks ("herd privacy").
    public static let minimumEntryCount = 131_072
    /// The longest list a verifier accepts (16 MiB of bits), so that a hostile list cannot exhaust memory.
    public static let maximumEntryCount = 1 << 27

    public private(set) var bytes: [UInt8]

    public var entryCount: Int { bytes.count * 8 }

    /// An empty list of at least `minimumEntryCount` entries, grown in steps of `minimumEntryCount` so that it holds
    /// `entryCount` (lists never shrink, and their length says little about the issuer's volume).
    public init(holding entryCount: Int) {
        let steps = max(1, (entryCount + Self.minimumEntryCount - 1) / Self.minimumEntryCount)
        bytes = [UInt8](repeating: 0, count: steps * Self.minimumEntryCount / 8)
    }

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The bit at `index`, or nil when the list is shorter.
    public func isSet(_ index: Int) -> Bool? {
        guard index >= 0, index < entryCount else { return nil }
        return bytes[index / 8] & (0x80 >> UInt8(index % 8)) != 0
    }

    public mutating func set(_ index: Int) throws(LedgerError) {
        guard index >= 0, index < entryCount else {
            throw LedgerError(.statusListInvalid, "status list index \(index) is outside the list (\(entryCount) entries)")
        }
        bytes[index / 8] |= 0x80 >> UInt8(index % 8)
    }

    /// `encodedList`: "u" + base64url(GZIP(bits)).
    public var encodedList: String { MultibaseBase64URL.encode(GZip.compress(bytes)) }

    /// Decodes an `encodedList` made by any issuer (real DEFLATE compression included).
    public init(encodedList: String) throws(LedgerError) {
        guard let compressed = MultibaseBase64URL.decode(encodedList) else {
            throw LedgerError(.statusListInvalid, "encodedList is not multibase base64url (\"u\" + base64url, no padding)")
        }
        let bytes: [UInt8]
        do {
            bytes = try GZip.decompress(compressed, maximumOutputBytes: Self.maximumEntryCount / 8)
        } catch {
            throw LedgerError(.statusListInvalid, "encodedList does not decompress: \(error.message)")
        }
        guard bytes.count * 8 >= Self.minimumEntryCount else {
            throw LedgerError(
                .statusListInvalid,
                "the status list has \(bytes.count * 8) entries; the minimum is \(Self.minimumEntryCount)")
        }
        self.bytes = bytes
    }
}
