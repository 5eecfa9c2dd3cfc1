import CSodium

/// An Ed25519 public key (32 bytes).
public struct Ed25519PublicKey: Hashable, Sendable {
    public static let byteCount = 32
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// Checks a detached signature. Non-canonical signatures and small-order keys are refused by libsodium.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        ensureSodium()
        guard signature.count == Ed25519.signatureByteCount else { return false }
        return signature.withUnsafeBufferPointer { signatureBuffer in
            message.withUnsafeBufferPointer { messageBuffer in
                bytes.withUnsafeBufferPointer { keyBuffer in
                    crypto_sign_verify_detached(
                        signatureBuffer.baseAddress!, messageBuffer.baseAddress, UInt64(messageBuffer.count),
                        keyBuffer.baseAddress!) == 0
                }
            }
        }
    }

    /// The Multikey text: `z` + base58btc(0xed 0x01 ‖ key), as in `did:key:z6Mk…`.
    public var multikey: String { Multikey.encode(self) }
}

/// An Ed25519 signing key, kept as its 32-byte seed.
public struct Ed25519PrivateKey: Sendable {
    public static let seedByteCount = 32
    public let seed: [UInt8]
    public let publicKey: Ed25519PublicKey
    /// libsodium's 64-byte secret key (seed ‖ public key).
    private let secretKey: [UInt8]

    public init() {
        self.init(validSeed: SecureRandom.bytes(count: Self.seedByteCount))
    }

    public init?(seed: [UInt8]) {
        guard seed.count == Self.seedByteCount else { return nil }
        self.init(validSeed: seed)
    }

    private init(validSeed seed: [UInt8]) {
        ensureSodium()
        var publicBytes = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var secretBytes = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        let result = seed.withUnsafeBufferPointer { seedBuffer in
            publicBytes.withUnsafeMutableBufferPointer { publicBuffer in
                secretBytes.withUnsafeMutableBufferPointer { secretBuffer in
                    crypto_sign_seed_keypair(publicBuffer.baseAddress!, secretBuffer.baseAddress!, seedBuffer.baseAddress!)
                }
            }
        }
        precondition(result == 0, "crypto_sign_seed_keypair cannot fail on a 32-byte seed")
        self.seed = seed
        self.secretKey = secretBytes
        // 32 bytes by construction.
        self.publicKey = Ed25519PublicKey(bytes: publicBytes)!
    }

    public func signature(for message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Ed25519.signatureByteCount)
        let result = message.withUnsafeBufferPointer { messageBuffer in
            secretKey.withUnsafeBufferPointer { secretBuffer in
                signature.withUnsafeMutableBufferPointer { signatureBuffer in
                    crypto_sign_detached(
                        signatureBuffer.baseAddress!, nil, messageBuffer.baseAddress, UInt64(messageBuffer.count),
                        secretBuffer.baseAddress!)
                }
            }
        }
        precondition(result == 0, "crypto_sign_detached does not fail")
        return signature
    }
}

public enum Ed25519 {
    public static let signatureByteCount = 64
}
