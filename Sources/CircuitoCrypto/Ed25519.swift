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

/// An Ed25519 signing key. Its secret half is held in `SecretBytes` (guarded memory, locked where the system allows,
/// wiped when the last copy of the key is released), never in an array, and signing reads it there in place.
public struct Ed25519PrivateKey: Sendable {
    public static let seedByteCount = 32
    public let publicKey: Ed25519PublicKey
    /// libsodium's 64-byte secret key (seed ‖ public key).
    let secretKey: SecretBytes

    /// A new random key, made in place: no copy of its seed is ever outside `secretKey`.
    public init(memory: SecretBytes.Memory = .guarded) {
        ensureSodium()
        var publicBytes = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var result: Int32 = -1
        secretKey = SecretBytes(count: Int(crypto_sign_SECRETKEYBYTES), memory: memory) { secret in
            result = publicBytes.withUnsafeMutableBufferPointer { publicBuffer in
                crypto_sign_keypair(publicBuffer.baseAddress!, secret.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        precondition(result == 0, "crypto_sign_keypair does not fail")
        // 32 bytes by construction.
        publicKey = Ed25519PublicKey(bytes: publicBytes)!
    }

    /// The key of a 32-byte seed; nil for another length. The seed array stays the caller's (to wipe where it is
    /// secret). `memory`: `.ordinary` only for keys derived from published seeds (`SecretBytes.Memory`).
    public init?(seed: [UInt8], memory: SecretBytes.Memory = .guarded) {
        guard seed.count == Self.seedByteCount else { return nil }
        ensureSodium()
        var publicBytes = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var result: Int32 = -1
        secretKey = SecretBytes(count: Int(crypto_sign_SECRETKEYBYTES), memory: memory) { secret in
            result = seed.withUnsafeBufferPointer { seedBuffer in
                publicBytes.withUnsafeMutableBufferPointer { publicBuffer in
                    crypto_sign_seed_keypair(
                        publicBuffer.baseAddress!, secret.baseAddress!.assumingMemoryBound(to: UInt8.self), seedBuffer.baseAddress!)
                }
            }
        }
        precondition(result == 0, "crypto_sign_seed_keypair cannot fail on a 32-byte seed")
        // 32 bytes by construction.
        publicKey = Ed25519PublicKey(bytes: publicBytes)!
    }

    /// A copy of the 32-byte seed, for the key's text forms (a key file, a note key): the copy is the caller's, to
    /// wipe once encoded (`SecretBytes.wipe`).
    public var seed: [UInt8] {
        secretKey.withUnsafeBytes { secret in Array(secret.prefix(Self.seedByteCount)) }
    }

    /// Whether the secret key's pages are locked in memory (`SecretBytes.isLockedInMemory`).
    public var isLockedInMemory: Bool { secretKey.isLockedInMemory }

    /// Signs with the secret key where it is held: no copy of it is made.
    public func signature(for message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Ed25519.signatureByteCount)
        let result = message.withUnsafeBufferPointer { messageBuffer in
            secretKey.withUnsafeBytes { secret in
                signature.withUnsafeMutableBufferPointer { signatureBuffer in
                    crypto_sign_detached(
                        signatureBuffer.baseAddress!, nil, messageBuffer.baseAddress, UInt64(messageBuffer.count),
                        secret.baseAddress!.assumingMemoryBound(to: UInt8.self))
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
