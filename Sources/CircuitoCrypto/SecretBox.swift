import CSodium

/// XChaCha20-Poly1305 (IETF) authenticated encryption, for personal data sealed under a subject's key.
///
/// Pointers passed to libsodium come from buffers that are never empty here (key 32 bytes, nonce 24, ciphertext
/// and output at least the 16-byte tag), which is why their base addresses are unwrapped.
public enum SecretBox {
    public static let keyByteCount = 32
    public static let nonceByteCount = 24
    public static let tagByteCount = 16

    public static func newKey() -> [UInt8] { SecureRandom.bytes(count: keyByteCount) }

    public static func seal(_ plaintext: [UInt8], nonce: [UInt8], additionalData: [UInt8], key: [UInt8]) -> [UInt8] {
        ensureSodium()
        precondition(key.count == keyByteCount && nonce.count == nonceByteCount, "callers pass a 32-byte key and a 24-byte nonce")
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + tagByteCount)
        var ciphertextLength: UInt64 = 0
        _ = ciphertext.withUnsafeMutableBufferPointer { output in
            plaintext.withUnsafeBufferPointer { input in
                additionalData.withUnsafeBufferPointer { data in
                    nonce.withUnsafeBufferPointer { nonceBuffer in
                        key.withUnsafeBufferPointer { keyBuffer in
                            crypto_aead_xchacha20poly1305_ietf_encrypt(
                                output.baseAddress!, &ciphertextLength, input.baseAddress, UInt64(input.count),
                                data.baseAddress, UInt64(data.count), nil, nonceBuffer.baseAddress!, keyBuffer.baseAddress!)
                        }
                    }
                }
            }
        }
        return Array(ciphertext.prefix(Int(ciphertextLength)))
    }

    /// nil when the key, nonce or additional data do not match, or the ciphertext was changed. The plaintext is
    /// returned in the array it was opened into (no copy left behind); it is the caller's to wipe once used.
    public static func open(_ ciphertext: [UInt8], nonce: [UInt8], additionalData: [UInt8], key: [UInt8]) -> [UInt8]? {
        ensureSodium()
        guard key.count == keyByteCount, nonce.count == nonceByteCount, ciphertext.count >= tagByteCount else { return nil }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count - tagByteCount)
        var plaintextLength: UInt64 = 0
        let result = plaintext.withUnsafeMutableBufferPointer { output in
            ciphertext.withUnsafeBufferPointer { input in
                additionalData.withUnsafeBufferPointer { data in
                    nonce.withUnsafeBufferPointer { nonceBuffer in
                        key.withUnsafeBufferPointer { keyBuffer in
                            crypto_aead_xchacha20poly1305_ietf_decrypt(
                                output.baseAddress, &plaintextLength, nil, input.baseAddress!, UInt64(input.count),
                                data.baseAddress, UInt64(data.count), nonceBuffer.baseAddress!, keyBuffer.baseAddress!)
                        }
                    }
                }
            }
        }
        guard result == 0 else {
            SecretBytes.wipe(&plaintext)
            return nil
        }
        // Always the whole of it (the ciphertext less its tag); shortened in place were it ever less.
        if Int(plaintextLength) < plaintext.count {
            plaintext.withUnsafeMutableBytes { buffer in sodium_memzero(buffer.baseAddress! + Int(plaintextLength), buffer.count - Int(plaintextLength)) }
            plaintext.removeLast(plaintext.count - Int(plaintextLength))
        }
        return plaintext
    }
}
