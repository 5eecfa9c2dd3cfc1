import CSodium

/// libsodium must be initialised once before use; a global `let` is initialised lazily and atomically.
private let sodiumInitialised: Bool = sodium_init() >= 0

@inline(__always)
func ensureSodium() {
    // sodium_init fails only when the system has no usable randomness source: nothing can run then.
    precondition(sodiumInitialised, "libsodium could not be initialised")
}

public enum SHA256 {
    public static let byteCount = 32

    public static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        ensureSodium()
        var output = [UInt8](repeating: 0, count: byteCount)
        let input = Array(bytes)
        input.withUnsafeBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                _ = crypto_hash_sha256(outputBuffer.baseAddress!, inputBuffer.baseAddress, UInt64(inputBuffer.count))
            }
        }
        return output
    }

    /// Hash of several byte runs laid end to end, without joining them first.
    public static func hash(parts: [UInt8]...) -> [UInt8] {
        ensureSodium()
        var state = crypto_hash_sha256_state()
        crypto_hash_sha256_init(&state)
        for part in parts {
            part.withUnsafeBufferPointer { buffer in
                _ = crypto_hash_sha256_update(&state, buffer.baseAddress, UInt64(buffer.count))
            }
        }
        var output = [UInt8](repeating: 0, count: byteCount)
        output.withUnsafeMutableBufferPointer { buffer in
            _ = crypto_hash_sha256_final(&state, buffer.baseAddress!)
        }
        return output
    }
}

public enum SecureRandom {
    public static func bytes(count: Int) -> [UInt8] {
        ensureSodium()
        var output = [UInt8](repeating: 0, count: count)
        output.withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress { randombytes_buf(base, buffer.count) }
        }
        return output
    }
}
