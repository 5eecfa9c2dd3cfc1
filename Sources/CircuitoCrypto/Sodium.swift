import CSHA256
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

    /// Read once: whether this processor has the SHA extensions. Then SHA-256 runs on them (`CSHA256`: a record's
    /// leaf hash in a quarter of the time of libsodium's portable code, which runs 36 instructions per byte; item 9 of
    /// `Benchmarks/NOTES.md`); otherwise on libsodium. Both give the same digests (tested).
    static let usesProcessorExtensions: Bool = circuito_sha256_hardware_available() == 1

    public static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let input = Array(bytes)
        guard usesProcessorExtensions else { return libsodiumHash(parts: [input]) }
        return ProcessorSHA256.hash { stream in input.withUnsafeBufferPointer { stream.update($0) } }
    }

    /// Hash of several byte runs laid end to end, without joining them first.
    public static func hash(parts: [UInt8]...) -> [UInt8] {
        usesProcessorExtensions ? processorHash(parts: parts) : libsodiumHash(parts: parts)
    }

    static func processorHash(parts: [[UInt8]]) -> [UInt8] {
        precondition(usesProcessorExtensions, "the SHA extensions are used only where the processor has them")
        return ProcessorSHA256.hash { stream in
            for part in parts { part.withUnsafeBufferPointer { stream.update($0) } }
        }
    }

    static func libsodiumHash(parts: [[UInt8]]) -> [UInt8] {
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

/// SHA-256 (FIPS 180-4) with the padding done here and the compression function in `CSHA256`, over a state and a
/// block buffer on the stack: no allocation but the digest.
private struct ProcessorSHA256 {
    /// FIPS 180-4 section 5.3.3.
    private static let initialState: [UInt32] = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
    ]
    private static let blockByteCount = 64

    private let state: UnsafeMutablePointer<UInt32>
    /// Room for two blocks: the padding of the last one can spill into a second.
    private let pending: UnsafeMutablePointer<UInt8>
    private var pendingCount = 0
    private var totalByteCount: UInt64 = 0

    static func hash(_ feed: (inout ProcessorSHA256) -> Void) -> [UInt8] {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 8) { state in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * blockByteCount) { pending in
                guard let stateStart = state.baseAddress, let pendingStart = pending.baseAddress else {
                    preconditionFailure("temporary allocations of a fixed non-zero size have an address")
                }
                _ = state.initialize(from: initialState)
                pending.initialize(repeating: 0)
                var stream = ProcessorSHA256(state: stateStart, pending: pendingStart)
                feed(&stream)
                return [UInt8](unsafeUninitializedCapacity: SHA256.byteCount) { digest, initializedCount in
                    stream.finish(into: digest)
                    initializedCount = SHA256.byteCount
                }
            }
        }
    }

    private init(state: UnsafeMutablePointer<UInt32>, pending: UnsafeMutablePointer<UInt8>) {
        self.state = state
        self.pending = pending
    }

    mutating func update(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard var source = bytes.baseAddress, !bytes.isEmpty else { return }
        var remaining = bytes.count
        totalByteCount += UInt64(remaining)
        if pendingCount > 0 {
            let taken = min(Self.blockByteCount - pendingCount, remaining)
            (pending + pendingCount).update(from: source, count: taken)
            pendingCount += taken
            source += taken
            remaining -= taken
            guard pendingCount == Self.blockByteCount else { return }
            circuito_sha256_compress(state, pending, 1)
            pendingCount = 0
        }
        let wholeBlocks = remaining / Self.blockByteCount
        if wholeBlocks > 0 {
            circuito_sha256_compress(state, source, wholeBlocks)
            source += wholeBlocks * Self.blockByteCount
            remaining -= wholeBlocks * Self.blockByteCount
        }
        if remaining > 0 {
            pending.update(from: source, count: remaining)
            pendingCount = remaining
        }
    }

    /// FIPS 180-4 section 5.1.1: a one bit, zeros, then the message's length in bits as 64 big-endian bits.
    fileprivate mutating func finish(into digest: UnsafeMutableBufferPointer<UInt8>) {
        assert(pendingCount < Self.blockByteCount, "a whole block is compressed as soon as it is filled")
        let bitCount = totalByteCount &* 8
        pending[pendingCount] = 0x80
        let paddedCount = pendingCount + 1 + 8 <= Self.blockByteCount ? Self.blockByteCount : 2 * Self.blockByteCount
        (pending + pendingCount + 1).update(repeating: 0, count: paddedCount - 8 - (pendingCount + 1))
        for index in 0..<8 {
            pending[paddedCount - 8 + index] = UInt8(truncatingIfNeeded: bitCount >> (56 - 8 * UInt64(index)))
        }
        circuito_sha256_compress(state, pending, paddedCount / Self.blockByteCount)
        for word in 0..<8 {
            for byte in 0..<4 {
                digest[4 * word + byte] = UInt8(truncatingIfNeeded: state[word] >> (24 - 8 * UInt32(byte)))
            }
        }
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
