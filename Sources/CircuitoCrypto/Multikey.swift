import Synchronization

/// Multikey text for Ed25519 keys, and the multibase form of Ed25519 secret seeds.
///
/// Public: `z` + base58btc(0xed 0x01 ‖ 32-byte key). Secret: `z` + base58btc(0x80 0x26 ‖ 32-byte seed), the
/// multicodec `ed25519-priv`, as in the W3C Data Integrity test vectors' `privateKeyMultibase`.
public enum Multikey {
    static let publicPrefix: [UInt8] = [0xed, 0x01]
    static let secretPrefix: [UInt8] = [0x80, 0x26]

    public static func encode(_ key: Ed25519PublicKey) -> String {
        "z" + Base58.encode(publicPrefix + key.bytes)
    }

    public static func decodePublicKey(_ text: String) -> Ed25519PublicKey? {
        // Only ASCII texts are cached: `String` equality follows Unicode canonical equivalence, under which a text
        // with, say, U+212A KELVIN SIGN would equal one with "K"; between ASCII texts it is byte equality.
        let cacheable = text.utf8.count <= 64 && text.utf8.allSatisfy { $0 < 0x80 }
        if cacheable, let known = decodedPublicKeys.key(for: text) { return known }
        guard let bytes = decode(text, prefix: publicPrefix), let key = Ed25519PublicKey(bytes: bytes) else { return nil }
        if cacheable { decodedPublicKeys.remember(key, for: text) }
        return key
    }

    /// Every event names its signer's key, and a ledger's events are signed by few keys again and again: decoding
    /// base58 is the costlier part of reading an event's envelope, so decoded keys are kept (bounded).
    private static let decodedPublicKeys = DecodedKeyCache()

    /// The text is a Swift `String`, which cannot be wiped; the byte copies made on the way are.
    public static func encodeSecret(_ key: Ed25519PrivateKey) -> String {
        var material = secretPrefix
        material.reserveCapacity(secretPrefix.count + Ed25519PrivateKey.seedByteCount)
        key.secretKey.withUnsafeBytes { secret in material.append(contentsOf: secret.prefix(Ed25519PrivateKey.seedByteCount)) }
        defer { SecretBytes.wipe(&material) }
        return "z" + Base58.encode(material)
    }

    public static func decodeSecretKey(_ text: String, memory: SecretBytes.Memory = .guarded) -> Ed25519PrivateKey? {
        guard var seed = decode(text, prefix: secretPrefix) else { return nil }
        defer { SecretBytes.wipe(&seed) }
        return Ed25519PrivateKey(seed: seed, memory: memory)
    }

    private static func decode(_ text: String, prefix: [UInt8]) -> [UInt8]? {
        // 34 bytes encode to at most 47 characters; anything much longer is not a key.
        guard text.utf8.count <= 64, text.first == "z", var bytes = Base58.decode(String(text.dropFirst())) else { return nil }
        // A secret key's seed is in these bytes too.
        defer { SecretBytes.wipe(&bytes) }
        guard bytes.count == prefix.count + 32, bytes.starts(with: prefix) else { return nil }
        return Array(bytes.dropFirst(prefix.count))
    }
}

/// Multikey texts and their decoded public keys, shared by every thread; when full it starts over.
final class DecodedKeyCache: Sendable {
    static let maximumEntries = 4096
    private let keys = Mutex<[String: Ed25519PublicKey]>([:])

    func key(for text: String) -> Ed25519PublicKey? {
        keys.withLock { $0[text] }
    }

    func remember(_ key: Ed25519PublicKey, for text: String) {
        keys.withLock { keys in
            if keys.count >= Self.maximumEntries { keys.removeAll(keepingCapacity: true) }
            keys[text] = key
        }
    }
}

/// Bitcoin's base58 alphabet (multibase `z`).
public enum Base58 {
    static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)
    static let digitValues: [Int8] = {
        var values = [Int8](repeating: -1, count: 128)
        for (index, character) in alphabet.enumerated() { values[Int(character)] = Int8(index) }
        return values
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        let leadingZeros = bytes.prefix(while: { $0 == 0 }).count
        // Little-endian base-58 digits of the big-endian number in `bytes`.
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count * 138 / 100 + 1)
        for byte in bytes.dropFirst(leadingZeros) {
            var carry = Int(byte)
            for index in digits.indices {
                carry += Int(digits[index]) << 8
                digits[index] = UInt8(carry % 58)
                carry /= 58
            }
            while carry > 0 {
                digits.append(UInt8(carry % 58))
                carry /= 58
            }
        }
        var text = [UInt8](repeating: alphabet[0], count: leadingZeros)
        text.append(contentsOf: digits.reversed().map { alphabet[Int($0)] })
        return String(decoding: text, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        let leadingOnes = characters.prefix(while: { $0 == alphabet[0] }).count
        // The number in little-endian 32-bit limbs, fed five digits at a time (58^5 < 2^30, so a limb times it plus
        // a carry stays below 2^63): every key and signature check decodes a Multikey, so this is kept cheap.
        var limbs: [UInt32] = []
        limbs.reserveCapacity(characters.count / 5 + 2)
        var index = leadingOnes
        while index < characters.count {
            let chunkEnd = min(index + 5, characters.count)
            var chunkValue: UInt64 = 0
            var multiplier: UInt64 = 1
            while index < chunkEnd {
                let character = characters[index]
                guard character < 128, digitValues[Int(character)] >= 0 else { return nil }
                chunkValue = chunkValue * 58 + UInt64(digitValues[Int(character)])
                multiplier *= 58
                index += 1
            }
            var carry = chunkValue
            for limbIndex in limbs.indices {
                let product = UInt64(limbs[limbIndex]) * multiplier + carry
                limbs[limbIndex] = UInt32(truncatingIfNeeded: product)
                carry = product >> 32
            }
            while carry > 0 {
                limbs.append(UInt32(truncatingIfNeeded: carry))
                carry >>= 32
            }
        }
        var bytes = [UInt8](repeating: 0, count: leadingOnes)
        bytes.reserveCapacity(leadingOnes + limbs.count * 4)
        var significant = false
        for limb in limbs.reversed() {
            for shift in stride(from: 24, through: 0, by: -8) {
                let byte = UInt8(truncatingIfNeeded: limb >> UInt32(shift))
                if byte != 0 { significant = true }
                if significant { bytes.append(byte) }
            }
        }
        return bytes
    }
}
