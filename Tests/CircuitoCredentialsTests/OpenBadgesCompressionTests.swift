import CircuitoCore
import CircuitoCrypto
import Foundation
import Testing

@testable import CircuitoCredentials

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

@Suite("OpenBadges: checksums, DEFLATE, GZIP, multibase")
struct OpenBadgesCompressionTests {
    @Test("CRC-32 and Adler-32 give the standard check values")
    func checksums() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
        // Continuing a CRC over a second part equals the CRC of the whole.
        #expect(CRC32.checksum(Array("6789".utf8), continuing: CRC32.checksum(Array("12345".utf8))) == 0xCBF4_3926)
        #expect(Adler32.checksum(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(Adler32.checksum([]) == 1)
    }

    @Test("GZIP made by zlib (dynamic Huffman) decodes: a status list bitstring and a text")
    func zlibMadeGZIP() throws {
        // python3: gzip.compress(bits, compresslevel=9, mtime=0) with bits 0, 7, 8, 1000 and 131071 set.
        let list = try #require(Base64.decode("H4sIAAAAAAACA+3NQQEAAAQEMJrTXIzz2Apsp3KSNwAAAAAAAAAAAAAAAAAAAPzRB/LuFOIAQAAA"))
        #expect((list[10] >> 1) & 3 == 2, "the first block uses dynamic Huffman codes")
        let bits = try GZip.decompress(list, maximumOutputBytes: 1 << 20)
        #expect(bits.count == 16_384)
        let status = BitstringStatusList(bytes: bits)
        let set = (0..<status.entryCount).filter { status.isSet($0) == true }
        #expect(set == [0, 7, 8, 1000, 131_071])

        let text = try #require(Base64.decode(
            "H4sIAAAAAAACA+3NwQnDMAwF0FX+AKUDZAPfCp1AsdXwwZHAdnLoNN2li9VZoWed9EHSf6niQTFHIZLlenS6KZ6eKVXRmN28Z8WcWKVsOi83DqnE3MsYPDm+H/TT69AF+WiCosSqxvm1H8YbBttsvNLL2y7vC7kjBR544IEHHnjggQf+D/4DPfhbecQJAAA="))
        let plain = try GZip.decompress(text, maximumOutputBytes: 1 << 20)
        #expect(plain.count == 2500)
        #expect(SHA256.hash(plain).hexString == "9f911b8c9b70f3473531081b6cb04acde871754d8b52651595e7b4071af585e6")
    }

    @Test("the W3C Bitstring Status List example decodes to 131,072 clear bits")
    func w3cExample() throws {
        let list = try BitstringStatusList(encodedList: "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA")
        #expect(list.entryCount == 131_072)
        #expect(list.bytes.allSatisfy { $0 == 0 })
    }

    @Test("our DEFLATE round-trips runs, text and noise, and compresses runs well")
    func roundTrip() throws {
        let samples: [[UInt8]] = [
            [], [0], [1, 2, 3], [UInt8](repeating: 0, count: 16_384), [UInt8](repeating: 0xAB, count: 100_000),
            Array(String(repeating: "badge credential status list ", count: 500).utf8),
            pseudoRandomBytes(count: 70_000, seed: 42),
            pseudoRandomBytes(count: 3000, seed: 7).map { $0 & 0x03 },  // small alphabet: many short matches
        ]
        for sample in samples {
            let compressed = Deflate.deflate(sample)
            let (output, consumed) = try Deflate.inflate(compressed[...], maximumOutputBytes: sample.count)
            #expect(output == sample)
            #expect(consumed == compressed.count)
            #expect(try GZip.decompress(GZip.compress(sample), maximumOutputBytes: sample.count) == sample)
            #expect(try ZLib.decompress(ZLib.compress(sample), maximumOutputBytes: sample.count) == sample)
        }
        // 64 matches of 258 zeros, 13 bits each, plus the GZIP frame.
        #expect(GZip.compress([UInt8](repeating: 0, count: 16_384)).count < 200)
        // Deterministic: the same input always gives the same bytes.
        #expect(GZip.compress(samples[5]) == GZip.compress(samples[5]))
    }

    @Test("stored blocks decode; a bad length check is refused")
    func storedBlocks() throws {
        // BFINAL 1, BTYPE 00, LEN 3, NLEN ~3, "abc".
        let stored: [UInt8] = [0x01, 0x03, 0x00, 0xFC, 0xFF, 0x61, 0x62, 0x63]
        #expect(try Deflate.inflate(stored[...], maximumOutputBytes: 10).output == Array("abc".utf8))
        var broken = stored
        broken[3] = 0xFD
        #expect(throws: LedgerError.self) { try Deflate.inflate(broken[...], maximumOutputBytes: 10) }
    }

    @Test("decompression stops at the output bound (no zip bombs) and checks CRC, size and truncation")
    func refusals() throws {
        let zeros = GZip.compress([UInt8](repeating: 0, count: 1 << 20))
        #expect(zeros.count < 8000)
        do throws(LedgerError) {
            _ = try GZip.decompress(zeros, maximumOutputBytes: 1000)
            Issue.record("a 1 MiB expansion passed a 1000-byte bound")
        } catch {
            #expect(error.code == .compressedDataInvalid)
        }
        var badCRC = GZip.compress(Array("hello".utf8))
        badCRC[badCRC.count - 8] ^= 1
        #expect(throws: LedgerError.self) { try GZip.decompress(badCRC, maximumOutputBytes: 100) }
        // The trailer's ISIZE must be the data's length too (the CRC alone is not the whole check).
        var badSize = GZip.compress(Array("hello".utf8))
        badSize[badSize.count - 4] ^= 1
        #expect(throws: LedgerError.self) { try GZip.decompress(badSize, maximumOutputBytes: 100) }
        let good = GZip.compress(Array("hello, world".utf8))
        for length in [0, 5, 10, 12, good.count - 1] {
            #expect(throws: LedgerError.self) { try GZip.decompress(Array(good.prefix(length)), maximumOutputBytes: 100) }
        }
        #expect(throws: LedgerError.self) { try GZip.decompress([0x1F, 0x8C] + good.dropFirst(2), maximumOutputBytes: 100) }
        // Random garbage after a valid header never crashes and never over-produces.
        for seed in UInt64(1)...200 {
            let garbage = Array(good.prefix(10)) + pseudoRandomBytes(count: 64, seed: seed)
            if let output = try? GZip.decompress(garbage, maximumOutputBytes: 4096) { #expect(output.count <= 4096) }
            if let output = try? Deflate.inflate(pseudoRandomBytes(count: 200, seed: seed)[...], maximumOutputBytes: 4096) {
                #expect(output.output.count <= 4096)
            }
        }
    }

    @Test("zlib: a stream round-trips; a changed Adler-32 trailer is refused")
    func zlibChecksum() throws {
        let text = Array("an openbadgecredential chunk's text, compressed".utf8)
        let stream = ZLib.compress(text)
        #expect(try ZLib.decompress(stream, maximumOutputBytes: 1000) == text)
        var badAdler = stream
        badAdler[badAdler.count - 1] ^= 1
        #expect(throws: LedgerError.self) { try ZLib.decompress(badAdler, maximumOutputBytes: 1000) }
    }

    @Test("Huffman code lengths: over-subscribed and incomplete codes are refused, a complete one or a lone one-bit code taken")
    func huffmanCodeLengths() throws {
        #expect(throws: LedgerError.self) { try Deflate.HuffmanCode(lengths: [1, 1, 1]) }
        #expect(throws: LedgerError.self) { try Deflate.HuffmanCode(lengths: [1, 2]) }
        #expect(throws: LedgerError.self) { try Deflate.HuffmanCode(lengths: [2, 2, 2]) }
        _ = try Deflate.HuffmanCode(lengths: [1, 2, 2])
        _ = try Deflate.HuffmanCode(lengths: [0, 1])
        _ = try Deflate.HuffmanCode(lengths: [0, 0])
        // The code-length code must be complete: neither a lone one-bit code nor none.
        _ = try Deflate.HuffmanCode(lengths: [1, 2, 2], incompleteCodes: .refused)
        #expect(throws: LedgerError.self) { try Deflate.HuffmanCode(lengths: [0, 1], incompleteCodes: .refused) }
        #expect(throws: LedgerError.self) { try Deflate.HuffmanCode(lengths: [0, 0], incompleteCodes: .refused) }
        _ = try Deflate.HuffmanCode(lengths: [2, 0, 5], incompleteCodes: .allowed)
    }

    @Test("multibase base64url: prefix u, no padding, round trip; wrong prefix or characters refused")
    func multibase() {
        #expect(MultibaseBase64URL.encode(Array("hello".utf8)) == "uaGVsbG8")
        #expect(MultibaseBase64URL.encode([0xFB, 0xFF]) == "u-_8")
        #expect(MultibaseBase64URL.encode([]) == "u")
        for count in 0..<10 {
            let bytes = pseudoRandomBytes(count: count, seed: UInt64(count + 1))
            #expect(MultibaseBase64URL.decode(MultibaseBase64URL.encode(bytes)) == bytes)
        }
        #expect(MultibaseBase64URL.decode("uaGVsbG8=") == Array("hello".utf8))
        #expect(MultibaseBase64URL.decode("zaGVsbG8") == nil)
        #expect(MultibaseBase64URL.decode("uaGV+bG8") == nil)
        #expect(MultibaseBase64URL.decode("ua") == nil)
    }

    @Test("bitstring: index 0 is the most significant bit of the first byte; lists grow in 131,072-entry steps")
    func bitOrder() throws {
        var list = BitstringStatusList(holding: 0)
        #expect(list.entryCount == 131_072)
        try list.set(0)
        try list.set(9)
        #expect(list.bytes[0] == 0x80 && list.bytes[1] == 0x40)
        #expect(list.isSet(0) == true && list.isSet(1) == false && list.isSet(9) == true)
        #expect(list.isSet(131_072) == nil && list.isSet(-1) == nil)
        #expect(throws: LedgerError.self) { try list.set(131_072) }
        let decoded = try BitstringStatusList(encodedList: list.encodedList)
        #expect(decoded == list)
        #expect(list.encodedList.hasPrefix("uH4sI"))
        #expect(BitstringStatusList(holding: 131_072).entryCount == 131_072)
        #expect(BitstringStatusList(holding: 131_073).entryCount == 262_144)
        // A list shorter than the minimum is refused.
        let short = MultibaseBase64URL.encode(GZip.compress([UInt8](repeating: 0, count: 100)))
        #expect(throws: LedgerError.self) { try BitstringStatusList(encodedList: short) }
    }
}
