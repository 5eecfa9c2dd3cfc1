/// The checksums of the container formats Circuito writes and reads: CRC-32 (ISO 3309 / ITU-T V.42, as used by
/// PNG chunks and GZIP members) and Adler-32 (the zlib stream trailer, RFC 1950).
public enum CRC32 {
    /// The reflected polynomial 0xEDB88320, one entry per byte value.
    static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 {
            value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1
        }
        return value
    }

    /// CRC-32 of `bytes`, continuing from `previous` (the CRC of what came before; 0 to start).
    public static func checksum(_ bytes: some Sequence<UInt8>, continuing previous: UInt32 = 0) -> UInt32 {
        var crc = ~previous
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return ~crc
    }
}

public enum Adler32 {
    /// The largest prime below 2^16.
    static let modulus: UInt32 = 65_521

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var low: UInt32 = 1
        var high: UInt32 = 0
        // Reducing after every byte keeps both sums below 2^17: no overflow, whatever the length.
        for byte in bytes {
            low = (low + UInt32(byte)) % modulus
            high = (high + low) % modulus
        }
        return high << 16 | low
    }
}
