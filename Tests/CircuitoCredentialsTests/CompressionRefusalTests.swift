import CircuitoCore
import Testing

@testable import CircuitoCredentials

/// Status lists and PNG text chunks arrive from anyone: every header flag of GZIP and zlib, and every way a DEFLATE
/// stream can be malformed, is driven here with a crafted input. Each refusal is `compressed_data_invalid` with a
/// message naming what was wrong, never a trap.
@Suite("OpenBadges: GZIP, zlib and DEFLATE refusals of crafted input")
struct CompressionRefusalTests {
    // MARK: Crafting

    /// A GZIP member around our DEFLATE of `data`, with the header fields the flags ask for.
    static func gzipMember(
        _ data: [UInt8], flags: UInt8 = 0, extraField: [UInt8] = [], name: [UInt8] = [], comment: [UInt8] = [],
        method: UInt8 = 8
    ) -> [UInt8] {
        var header: [UInt8] = [0x1F, 0x8B, method, flags, 0, 0, 0, 0, 0, 0xFF]
        if flags & 0x04 != 0 { header += GZip.littleEndian(UInt32(extraField.count)).prefix(2) + extraField }
        if flags & 0x08 != 0 { header += name + [0] }
        if flags & 0x10 != 0 { header += comment + [0] }
        if flags & 0x02 != 0 { header += GZip.littleEndian(CRC32.checksum(header)).prefix(2) }
        return header + Deflate.deflate(data) + GZip.littleEndian(CRC32.checksum(data))
            + GZip.littleEndian(UInt32(data.count))
    }

    /// The refusal `work` throws, or nil (recorded as an issue) when it returns.
    static func refusal<Result>(
        _ work: () throws -> Result, sourceLocation: SourceLocation = #_sourceLocation
    ) -> LedgerError? {
        do {
            let result = try work()
            Issue.record("accepted, gave \(result)", sourceLocation: sourceLocation)
            return nil
        } catch let error as LedgerError {
            return error
        } catch {
            Issue.record("refused with \(error), not a LedgerError", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Expects `work` to be refused as `compressed_data_invalid` with a message containing `detail`.
    static func expectRefused<Result>(
        _ detail: String, sourceLocation: SourceLocation = #_sourceLocation, _ work: () throws -> Result
    ) {
        guard let error = refusal(work, sourceLocation: sourceLocation) else { return }
        #expect(error.code == .compressedDataInvalid, "\(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(detail), "\(error.message)", sourceLocation: sourceLocation)
    }

    static func inflate(_ stream: [UInt8], maximumOutputBytes: Int = 1000) throws(LedgerError) -> [UInt8] {
        try Deflate.inflate(stream[...], maximumOutputBytes: maximumOutputBytes).output
    }

    // MARK: GZIP

    @Test("GZIP: FTEXT, FEXTRA, FNAME, FCOMMENT and FHCRC fields are read past, alone and all together")
    func gzipOptionalHeaderFields() throws {
        let data = Array("a status list's bits".utf8)
        let fields: (UInt8) -> [UInt8] = { flags in
            Self.gzipMember(
                data, flags: flags, extraField: [0x41, 0x70, 2, 0, 0, 0x1F], name: Array("list.bin".utf8),
                comment: Array("made elsewhere".utf8))
        }
        for flags: UInt8 in [0x01, 0x02, 0x04, 0x08, 0x10, 0x1F] {
            #expect(try GZip.decompress(fields(flags), maximumOutputBytes: 100) == data, "flags \(flags)")
        }
        // An empty extra field and empty strings are fields too.
        let empty = Self.gzipMember(data, flags: 0x1E)
        #expect(try GZip.decompress(empty, maximumOutputBytes: 100) == data)
    }

    @Test("GZIP: a method other than DEFLATE and reserved flag bits are refused")
    func gzipMethodAndReservedFlags() throws {
        let data = Array("hello".utf8)
        Self.expectRefused("compression method 7 is not DEFLATE (8)") {
            try GZip.decompress(Self.gzipMember(data, method: 7), maximumOutputBytes: 100)
        }
        for flag: UInt8 in [0x20, 0x40, 0x80] {
            Self.expectRefused("reserved flag bits are set") {
                try GZip.decompress(Self.gzipMember(data, flags: flag), maximumOutputBytes: 100)
            }
        }
    }

    @Test("GZIP: header fields running past the end of the input are refused")
    func gzipHeaderFieldsCutShort() throws {
        let head: (UInt8) -> [UInt8] = { flags in [0x1F, 0x8B, 8, flags, 0, 0, 0, 0, 0, 0xFF] }
        // FEXTRA whose length (0xFFFF) runs past the input, alone or followed by other fields.
        let longExtra = head(0x04) + [0xFF, 0xFF] + [UInt8](repeating: 0x61, count: 10)
        Self.expectRefused("the header is cut short") { try GZip.decompress(longExtra, maximumOutputBytes: 100) }
        var withName = longExtra
        withName[3] = 0x0C
        Self.expectRefused("a header string is not terminated") { try GZip.decompress(withName, maximumOutputBytes: 100) }
        var withHeaderCRC = longExtra
        withHeaderCRC[3] = 0x06
        Self.expectRefused("the header CRC is cut short") {
            try GZip.decompress(withHeaderCRC, maximumOutputBytes: 100)
        }
        // FNAME and FCOMMENT with no zero byte anywhere after them.
        for flag: UInt8 in [0x08, 0x10] {
            Self.expectRefused("a header string is not terminated") {
                try GZip.decompress(head(flag) + [UInt8](repeating: 0x61, count: 20), maximumOutputBytes: 100)
            }
        }
        // A name ending on the last byte leaves no room for the header CRC.
        Self.expectRefused("the header CRC is cut short") {
            try GZip.decompress(head(0x0A) + [UInt8](repeating: 0x61, count: 9) + [0], maximumOutputBytes: 100)
        }
    }

    @Test("GZIP: a header CRC that does not match the header is refused")
    func gzipHeaderCRCMismatch() throws {
        var member = Self.gzipMember(Array("hello".utf8), flags: 0x0A, name: Array("n".utf8))
        member[10] ^= 0x01  // the name changes; the header CRC after it was computed over the old one
        Self.expectRefused("the header CRC does not match") { try GZip.decompress(member, maximumOutputBytes: 100) }
    }

    @Test("GZIP: CRC-32, ISIZE and a trailer cut short are each refused by name")
    func gzipTrailer() throws {
        let member = Self.gzipMember(Array("hello, world".utf8))
        var badCRC = member
        badCRC[member.count - 8] ^= 0x01
        Self.expectRefused("the CRC-32 does not match the data") { try GZip.decompress(badCRC, maximumOutputBytes: 100) }
        var badSize = member
        badSize[member.count - 1] ^= 0x80
        Self.expectRefused("the size does not match the data") { try GZip.decompress(badSize, maximumOutputBytes: 100) }
        Self.expectRefused("the trailer is cut short") {
            try GZip.decompress(Array(member.dropLast(3)), maximumOutputBytes: 100)
        }
        Self.expectRefused("too short for a GZIP member") {
            try GZip.decompress(Array(member.prefix(17)), maximumOutputBytes: 100)
        }
    }

    @Test("GZIP: concatenated members are joined; what follows a member must be another whole member")
    func gzipConcatenatedMembers() throws {
        let first = Self.gzipMember(Array("first ".utf8))
        let second = Self.gzipMember(Array("second".utf8), flags: 0x08, name: Array("2".utf8))
        #expect(try GZip.decompress(first + second, maximumOutputBytes: 100) == Array("first second".utf8))
        // Trailing bytes: too few for a member, or zero padding as some writers add.
        Self.expectRefused("too short for a GZIP member") { try GZip.decompress(first + [0, 0, 0, 0], maximumOutputBytes: 100) }
        Self.expectRefused("no GZIP magic number") {
            try GZip.decompress(first + [UInt8](repeating: 0, count: 18), maximumOutputBytes: 100)
        }
        // The output bound holds over all members together, not each alone.
        let sixHundred = Self.gzipMember([UInt8](repeating: 7, count: 600))
        Self.expectRefused("expands beyond") { try GZip.decompress(sixHundred + sixHundred, maximumOutputBytes: 1000) }
        #expect(try GZip.decompress(sixHundred + sixHundred, maximumOutputBytes: 1200).count == 1200)
    }

    /// A GZIP member holding `data` in one stored DEFLATE block.
    static func storedGZIPMember(_ data: [UInt8]) -> [UInt8] {
        let length = UInt16(data.count)
        return [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF, 0x01] + GZip.littleEndian(UInt32(length)).prefix(2)
            + GZip.littleEndian(UInt32(~length)).prefix(2) + data + GZip.littleEndian(CRC32.checksum(data))
            + GZip.littleEndian(UInt32(data.count))
    }

    /// The bound is the caller's, over every member: a refusal names it, not what was left of it when the member that
    /// crossed it began (600 + 600 against 1000 said "beyond 400 bytes").
    @Test("GZIP: a refusal past the bound names the bound given, whichever member crosses it, by literals, matches or a stored block")
    func gzipBoundNamedWhole() throws {
        let matches = Self.gzipMember([UInt8](repeating: 7, count: 600))
        let literals = Self.gzipMember((0...255).map { UInt8($0) })
        let stored = Self.storedGZIPMember([UInt8](repeating: 9, count: 600))
        #expect(try GZip.decompress(stored, maximumOutputBytes: 600) == [UInt8](repeating: 9, count: 600))
        for (members, what) in [
            ([matches, matches], "a match in the second member"), ([literals, literals, literals, literals], "a literal in the fourth"),
            ([stored, stored], "a stored block in the second"), ([literals, stored, matches], "a stored block in the second of three"),
        ] {
            Self.expectRefused("compressed data expands beyond 1000 bytes") {
                try GZip.decompress([UInt8](members.joined()), maximumOutputBytes: 1000)
            }
            let total = members.count == 4 ? 1024 : (members.count == 3 ? 1456 : 1200)
            #expect(try GZip.decompress([UInt8](members.joined()), maximumOutputBytes: total).count == total, "\(what)")
        }
    }

    // MARK: zlib

    /// A zlib header with a valid check (FCHECK) for `methodAndInfo` (CMF) and the given flag bits.
    static func zlibHeader(methodAndInfo: UInt8, flagBits: UInt8) -> [UInt8] {
        let remainder = (Int(methodAndInfo) << 8 | Int(flagBits)) % 31
        return [methodAndInfo, flagBits | UInt8((31 - remainder) % 31)]
    }

    @Test("zlib: a crafted header with a valid check decodes; method, window, check, dictionary and trailer refusals")
    func zlibHeaderRefusals() throws {
        let data = Array("an iTXt chunk's text".utf8)
        let body = Deflate.deflate(data) + ZLib.compress(data).suffix(4)
        // Our own header, rebuilt by the helper, is accepted: the refusals below are for the field each changes.
        #expect(try ZLib.decompress(Self.zlibHeader(methodAndInfo: 0x78, flagBits: 0) + body, maximumOutputBytes: 100) == data)
        #expect(try ZLib.decompress(Self.zlibHeader(methodAndInfo: 0x08, flagBits: 0xC0) + body, maximumOutputBytes: 100) == data)
        let notDeflate = "the header is not DEFLATE with a valid check"
        Self.expectRefused(notDeflate) {
            try ZLib.decompress(Self.zlibHeader(methodAndInfo: 0x77, flagBits: 0) + body, maximumOutputBytes: 100)
        }
        // CINFO 8 asks for a 64 KiB window, more than DEFLATE allows.
        Self.expectRefused(notDeflate) {
            try ZLib.decompress(Self.zlibHeader(methodAndInfo: 0x88, flagBits: 0) + body, maximumOutputBytes: 100)
        }
        var badCheck = Self.zlibHeader(methodAndInfo: 0x78, flagBits: 0)
        badCheck[1] ^= 0x01
        Self.expectRefused(notDeflate) { try ZLib.decompress(badCheck + body, maximumOutputBytes: 100) }
        Self.expectRefused("preset dictionaries are not supported") {
            try ZLib.decompress(Self.zlibHeader(methodAndInfo: 0x78, flagBits: 0x20) + [1, 2, 3, 4] + body, maximumOutputBytes: 100)
        }
        Self.expectRefused("too short") { try ZLib.decompress([0x78, 0x01, 0x03, 0x00, 0x00], maximumOutputBytes: 100) }
        let stream = ZLib.compress(data)
        Self.expectRefused("the Adler-32 trailer is cut short") {
            try ZLib.decompress(Array(stream.dropLast(2)), maximumOutputBytes: 100)
        }
        Self.expectRefused("expands beyond 10 bytes") { try ZLib.decompress(stream, maximumOutputBytes: 10) }
    }

    // MARK: DEFLATE

    @Test("DEFLATE: block type 3, an empty or cut stream, and a missing final block are refused")
    func deflateBlockTypes() throws {
        Self.expectRefused("block type 3 is reserved") { try Self.inflate([0x07]) }
        Self.expectRefused("the stream ends too early") { try Self.inflate([]) }
        // A complete stored block that is not the last one, then nothing.
        Self.expectRefused("the stream ends too early") { try Self.inflate([0x00, 0x01, 0x00, 0xFE, 0xFF, 0x61]) }
        // A fixed block cut inside its first code.
        Self.expectRefused("the stream ends too early") { try Self.inflate([0x03]) }
    }

    @Test("DEFLATE: stored blocks cut short or beyond the output bound are refused")
    func deflateStoredBlocks() throws {
        Self.expectRefused("a stored block header is cut short") { try Self.inflate([0x01, 0x03, 0x00, 0xFC]) }
        Self.expectRefused("stored block length check fails") { try Self.inflate([0x01, 0x03, 0x00, 0x00, 0x00, 0x61, 0x62, 0x63]) }
        Self.expectRefused("a stored block is cut short") { try Self.inflate([0x01, 0x03, 0x00, 0xFC, 0xFF, 0x61, 0x62]) }
        Self.expectRefused("expands beyond 2 bytes") {
            try Self.inflate([0x01, 0x03, 0x00, 0xFC, 0xFF, 0x61, 0x62, 0x63], maximumOutputBytes: 2)
        }
        // Two stored blocks: the bound counts what the first produced.
        let two: [UInt8] = [0x00, 0x02, 0x00, 0xFD, 0xFF, 0x61, 0x62, 0x01, 0x02, 0x00, 0xFD, 0xFF, 0x63, 0x64]
        #expect(try Self.inflate(two) == Array("abcd".utf8))
        Self.expectRefused("expands beyond 3 bytes") { try Self.inflate(two, maximumOutputBytes: 3) }
    }

    /// A final fixed-Huffman block made by `body`, with the end-of-block code after it.
    static func fixedBlock(_ body: (inout Deflate.BitWriter) -> Void) -> [UInt8] {
        var writer = Deflate.BitWriter()
        writer.write(1, count: 1)
        writer.write(1, count: 2)
        body(&writer)
        Deflate.writeFixedLiteralLength(256, to: &writer)
        return writer.finish()
    }

    @Test("DEFLATE fixed blocks: length symbols 286 and 287, distance codes 30 and 31, distances before the start, the output bound")
    func deflateFixedBlockRefusals() throws {
        // A literal, then a match of 3 at distance 1, decodes: the crafting is right.
        let good = Self.fixedBlock { writer in
            Deflate.writeFixedLiteralLength(0x61, to: &writer)
            Deflate.writeMatch(length: 3, distance: 1, to: &writer)
        }
        #expect(try Self.inflate(good) == Array("aaaa".utf8))
        for symbol in [286, 287] {
            Self.expectRefused("length symbol \(symbol)") {
                try Self.inflate(Self.fixedBlock { Deflate.writeFixedLiteralLength(symbol, to: &$0) })
            }
        }
        // The fixed distance code has 30 symbols of 5 bits: codes 30 and 31 are in no table.
        for distanceCode in [30, 31] {
            let stream = Self.fixedBlock { writer in
                Deflate.writeFixedLiteralLength(0x61, to: &writer)
                Deflate.writeFixedLiteralLength(257, to: &writer)
                writer.writeCode(distanceCode, length: 5)
            }
            // Padded, so that the decoder reads all 15 bits of a code before it gives up.
            Self.expectRefused("a code is not in the Huffman table") { try Self.inflate(stream + [0, 0]) }
        }
        let tooFarBack = Self.fixedBlock { writer in
            Deflate.writeFixedLiteralLength(0x61, to: &writer)
            Deflate.writeMatch(length: 3, distance: 2, to: &writer)
        }
        Self.expectRefused("a distance reaches before the start") { try Self.inflate(tooFarBack) }
        let noOutputYet = Self.fixedBlock { Deflate.writeMatch(length: 3, distance: 1, to: &$0) }
        Self.expectRefused("a distance reaches before the start") { try Self.inflate(noOutputYet) }
        let longMatch = Self.fixedBlock { writer in
            Deflate.writeFixedLiteralLength(0x61, to: &writer)
            Deflate.writeMatch(length: 258, distance: 1, to: &writer)
        }
        Self.expectRefused("expands beyond 100 bytes") { try Self.inflate(longMatch, maximumOutputBytes: 100) }
        #expect(try Self.inflate(longMatch, maximumOutputBytes: 259).count == 259)
        Self.expectRefused("expands beyond 0 bytes") { try Self.inflate(good, maximumOutputBytes: 0) }
    }

    /// The start of a final dynamic block: the counts, then the code-length code's lengths in the order DEFLATE lists
    /// them (as many as `codeLengthLengths` reaches in that order, at least four).
    static func dynamicHeader(
        literalLengthCount: Int, distanceCount: Int, codeLengthLengths: [Int: Int], to writer: inout Deflate.BitWriter
    ) {
        writer.write(1, count: 1)
        writer.write(2, count: 2)
        writer.write(literalLengthCount - 257, count: 5)
        writer.write(distanceCount - 1, count: 5)
        let lastListed = Deflate.codeLengthOrder.lastIndex { codeLengthLengths[$0] != nil } ?? 0
        let listedCount = max(4, lastListed + 1)
        writer.write(listedCount - 4, count: 4)
        for symbol in Deflate.codeLengthOrder.prefix(listedCount) { writer.write(codeLengthLengths[symbol] ?? 0, count: 3) }
    }

    /// A final dynamic block with 257 literal/length codes and `distanceCount` distance codes of one bit: symbols
    /// 0…254 unused, 255 and 256 of one bit each; the code-length code gives 1 (code 0) and 18 (code 1) one bit each.
    static func dynamicBlock(distanceCount: Int, body: (inout Deflate.BitWriter) -> Void) -> [UInt8] {
        var writer = Deflate.BitWriter()
        dynamicHeader(literalLengthCount: 257, distanceCount: distanceCount, codeLengthLengths: [1: 1, 18: 1], to: &writer)
        // 255 zeros: 138 and 117 (code 18 with 7 extra bits, value − 11).
        writer.writeCode(1, length: 1)
        writer.write(138 - 11, count: 7)
        writer.writeCode(1, length: 1)
        writer.write(117 - 11, count: 7)
        writer.writeCode(0, length: 1)  // 255: length 1
        writer.writeCode(0, length: 1)  // 256: length 1
        for _ in 0..<distanceCount { writer.writeCode(0, length: 1) }
        body(&writer)
        return writer.finish()
    }

    @Test("DEFLATE dynamic blocks: a crafted block decodes; counts, code-length codes, repeats and tables are checked")
    func deflateDynamicBlockRefusals() throws {
        // Literal 255 is code 0, end-of-block code 1; one distance code of one bit (allowed alone).
        let good = Self.dynamicBlock(distanceCount: 1) { writer in
            writer.writeCode(0, length: 1)
            writer.writeCode(1, length: 1)
        }
        #expect(try Self.inflate(good) == [255])
        Self.expectRefused("over-subscribed Huffman code lengths") {
            try Self.inflate(Self.dynamicBlock(distanceCount: 3) { _ in })
        }

        func header(literalLengthCount: Int = 257, distanceCount: Int = 1, _ lengths: [Int: Int]) -> Deflate.BitWriter {
            var writer = Deflate.BitWriter()
            Self.dynamicHeader(literalLengthCount: literalLengthCount, distanceCount: distanceCount, codeLengthLengths: lengths, to: &writer)
            return writer
        }
        // HLIT 30 and 31 (287, 288 codes) and HDIST 30 and 31 (31, 32 codes) are beyond the alphabets.
        for (literalLengthCount, distanceCount) in [(287, 1), (288, 1), (257, 31), (257, 32)] {
            var writer = header(literalLengthCount: literalLengthCount, distanceCount: distanceCount, [1: 1, 18: 1])
            let stream = writer.finish()
            Self.expectRefused("too many length or distance codes") { try Self.inflate(stream) }
        }
        var overSubscribed = header([16: 1, 17: 1, 18: 1])
        Self.expectRefused("over-subscribed Huffman code lengths") { try Self.inflate(overSubscribed.finish()) }
        var incomplete = header([16: 2, 17: 2, 18: 2])
        Self.expectRefused("incomplete Huffman code lengths") { try Self.inflate(incomplete.finish()) }
        // Code-length code: 0 is code 0, 16 code 1. A repeat first has no length to repeat.
        var repeatFirst = header([0: 1, 16: 1])
        repeatFirst.writeCode(1, length: 1)
        repeatFirst.write(0, count: 2)
        Self.expectRefused("a length repeat with no previous length") { try Self.inflate(repeatFirst.finish()) }
        // Code-length code: 0 is code 0, 18 code 1. Two runs of 138 zeros are more than the 258 lengths.
        var tooMany = header([0: 1, 18: 1])
        for _ in 0..<2 {
            tooMany.writeCode(1, length: 1)
            tooMany.write(127, count: 7)
        }
        Self.expectRefused("too many code lengths") { try Self.inflate(tooMany.finish()) }
        // Exactly 258 zeros: no code for end-of-block.
        var noEnd = header([0: 1, 18: 1])
        noEnd.writeCode(1, length: 1)
        noEnd.write(127, count: 7)
        noEnd.writeCode(1, length: 1)
        noEnd.write(120 - 11, count: 7)
        Self.expectRefused("the block has no end-of-block code") { try Self.inflate(noEnd.finish()) }
        // Code-length code: 2 is code 0, 18 code 1. Only end-of-block, of two bits: an incomplete literal code.
        var incompleteLiterals = header([2: 1, 18: 1])
        incompleteLiterals.writeCode(1, length: 1)
        incompleteLiterals.write(127, count: 7)
        incompleteLiterals.writeCode(1, length: 1)
        incompleteLiterals.write(118 - 11, count: 7)
        incompleteLiterals.writeCode(0, length: 1)  // 256: length 2
        incompleteLiterals.writeCode(0, length: 1)  // the distance: length 2
        Self.expectRefused("incomplete Huffman code lengths") { try Self.inflate(incompleteLiterals.finish()) }
        // A code-length code with no code at all is incomplete too (it could decode nothing).
        var noCodes = header([:])
        noCodes.write(0, count: 16)
        Self.expectRefused("incomplete Huffman code lengths") { try Self.inflate(noCodes.finish()) }
    }

    /// The canonical Huffman code of each used symbol (RFC 1951 section 3.2.2): (code, length).
    static func canonicalCodes(_ lengths: [Int: Int]) -> [Int: (code: Int, length: Int)] {
        var countOfLength = [Int](repeating: 0, count: 16)
        for length in lengths.values where length > 0 { countOfLength[length] += 1 }
        var nextCode = [Int](repeating: 0, count: 16)
        var code = 0
        for length in 1...15 {
            code = (code + countOfLength[length - 1]) << 1
            nextCode[length] = code
        }
        var codes: [Int: (code: Int, length: Int)] = [:]
        for (symbol, length) in lengths.sorted(by: { $0.key < $1.key }) where length > 0 {
            codes[symbol] = (nextCode[length], length)
            nextCode[length] += 1
        }
        return codes
    }

    enum BlockItem {
        case literalLength(Int), distance(Int), bits(Int, count: Int)
    }

    /// A final dynamic block whose literal/length code (257 or more symbols) and distance code have the given lengths
    /// (at most 2 bits, so that one code-length code writes them all: 0, 1, 2 and 18, two bits each), then `items`
    /// written with those codes. The code lengths are not checked here: that is what the decoder is tested for.
    static func dynamicBlock(literalLengthLengths: [Int: Int], distanceLengths: [Int], items: [BlockItem]) -> [UInt8] {
        let literalLengthCount = max(257, (literalLengthLengths.keys.max() ?? 0) + 1)
        var writer = Deflate.BitWriter()
        dynamicHeader(
            literalLengthCount: literalLengthCount, distanceCount: distanceLengths.count,
            codeLengthLengths: [0: 2, 1: 2, 2: 2, 18: 2], to: &writer)
        let codeLengthCodes = canonicalCodes([0: 2, 1: 2, 2: 2, 18: 2])
        func writeCodeLength(_ symbol: Int) {
            guard let code = codeLengthCodes[symbol] else { return }
            writer.writeCode(code.code, length: code.length)
        }
        let lengths = (0..<literalLengthCount).map { literalLengthLengths[$0] ?? 0 } + distanceLengths
        var index = 0
        while index < lengths.count {
            let zeros = lengths[index...].prefix { $0 == 0 }.count
            if zeros >= 11 {
                let run = min(zeros, 138)
                writeCodeLength(18)
                writer.write(run - 11, count: 7)
                index += run
            } else {
                writeCodeLength(lengths[index])
                index += 1
            }
        }
        let literalLengthCodes = canonicalCodes(literalLengthLengths)
        let distanceCodes = canonicalCodes(Dictionary(uniqueKeysWithValues: distanceLengths.enumerated().map { ($0.offset, $0.element) }))
        for item in items {
            switch item {
            case .literalLength(let symbol):
                if let code = literalLengthCodes[symbol] { writer.writeCode(code.code, length: code.length) }
            case .distance(let symbol):
                if let code = distanceCodes[symbol] { writer.writeCode(code.code, length: code.length) }
            case .bits(let value, let count):
                writer.write(value, count: count)
            }
        }
        return writer.finish()
    }

    /// zlib refuses an incomplete code-length code ("invalid code lengths set"): inflate_table accepts an incomplete
    /// code only for the literal/length and distance codes, and only a lone one-bit code (or, for distances, none).
    @Test("DEFLATE dynamic blocks: a code-length code of one one-bit code is incomplete and refused, whichever symbol")
    func deflateLoneCodeLengthCode() throws {
        for symbol in Deflate.codeLengthOrder {
            var writer = Deflate.BitWriter()
            Self.dynamicHeader(literalLengthCount: 257, distanceCount: 1, codeLengthLengths: [symbol: 1], to: &writer)
            // Enough zero bits (symbol's code) for every length and more: the stream fails at the header, not short.
            for _ in 0..<300 { writer.write(0, count: 8) }
            Self.expectRefused("incomplete Huffman code lengths") { try Self.inflate(writer.finish()) }
        }
        // Two one-bit codes (1 and 18) are complete, and the block is read: the crafting is right.
        #expect(try Self.inflate(Self.dynamicBlock(distanceCount: 1) { $0.writeCode(1, length: 1) }) == [])
    }

    @Test("DEFLATE dynamic blocks: a literal/length code may be incomplete only as a lone one-bit code, end-of-block")
    func deflateIncompleteLiteralLengthCode() throws {
        // End-of-block alone, one bit: an empty block, as zlib reads it.
        let loneEnd = Self.dynamicBlock(literalLengthLengths: [256: 1], distanceLengths: [0], items: [.literalLength(256)])
        #expect(try Self.inflate(loneEnd) == [])
        // Its unused code (bit 1) is in no table.
        let unusedCode = Self.dynamicBlock(literalLengthLengths: [256: 1], distanceLengths: [0], items: [.bits(1, count: 1), .bits(0, count: 16)])
        Self.expectRefused("a code is not in the Huffman table") { try Self.inflate(unusedCode) }
        // Incomplete otherwise: one code of two bits, or a one-bit and a two-bit code.
        for lengths: [Int: Int] in [[256: 2], [97: 1, 256: 2], [97: 2, 98: 2, 256: 2]] {
            let stream = Self.dynamicBlock(literalLengthLengths: lengths, distanceLengths: [0], items: [.literalLength(256)])
            Self.expectRefused("incomplete Huffman code lengths") { try Self.inflate(stream) }
        }
        // Complete: two, or four, codes.
        let four = Self.dynamicBlock(literalLengthLengths: [97: 2, 98: 2, 99: 2, 256: 2], distanceLengths: [0], items: [
            .literalLength(99), .literalLength(97), .literalLength(98), .literalLength(256),
        ])
        #expect(try Self.inflate(four) == Array("cab".utf8))
    }

    @Test("DEFLATE dynamic blocks: a distance code may be incomplete only as a lone one-bit code, or have no code at all")
    func deflateIncompleteDistanceCode() throws {
        // 'a' is 0, end-of-block 10, length 3 (symbol 257) 11.
        let literalLengthLengths = [97: 1, 256: 2, 257: 2]
        func block(_ distanceLengths: [Int], _ items: [BlockItem]) -> [UInt8] {
            Self.dynamicBlock(literalLengthLengths: literalLengthLengths, distanceLengths: distanceLengths, items: items)
        }
        // No distance code: a block of literals (RFC 1951 3.2.7: "the data is all literals").
        #expect(try Self.inflate(block([0], [.literalLength(97), .literalLength(97), .literalLength(256)])) == Array("aa".utf8))
        #expect(try Self.inflate(block([0, 0, 0], [.literalLength(97), .literalLength(256)])) == Array("a".utf8))
        // … and a match in such a block has no distance to decode.
        Self.expectRefused("a code is not in the Huffman table") {
            try Self.inflate(block([0], [.literalLength(97), .literalLength(257), .bits(0, count: 16)]))
        }
        // One distance code of one bit (RFC 1951 3.2.7: "one distance code … is encoded using one bit"): a match.
        let match: [BlockItem] = [.literalLength(97), .literalLength(257), .distance(0), .literalLength(256)]
        #expect(try Self.inflate(block([1], match)) == Array("aaaa".utf8))
        let distanceThree: [BlockItem] = [.literalLength(97), .literalLength(97), .literalLength(97), .literalLength(257), .distance(2), .literalLength(256)]
        #expect(try Self.inflate(block([0, 0, 1], distanceThree)) == Array("aaaaaa".utf8))
        // Its unused code (bit 1) is in no table.
        Self.expectRefused("a code is not in the Huffman table") {
            try Self.inflate(block([1], [.literalLength(97), .literalLength(257), .bits(1, count: 1), .bits(0, count: 16)]))
        }
        // Incomplete otherwise: one code of two bits, or a one-bit and a two-bit code.
        for distanceLengths in [[2], [1, 2], [0, 2, 0, 1], [2, 2, 2]] {
            Self.expectRefused("incomplete Huffman code lengths") { try Self.inflate(block(distanceLengths, match)) }
        }
        // Complete: two one-bit codes.
        #expect(try Self.inflate(block([1, 1], match)) == Array("aaaa".utf8))
    }

    @Test("DEFLATE dynamic blocks: code 16 repeats the previous length (no other test stream uses it)")
    func deflateRepeatPreviousLength() throws {
        // Code-length code of four 2-bit codes: 1 → 00, 2 → 01, 16 → 10, 18 → 11.
        var writer = Deflate.BitWriter()
        Self.dynamicHeader(literalLengthCount: 257, distanceCount: 1, codeLengthLengths: [1: 2, 2: 2, 16: 2, 18: 2], to: &writer)
        writer.writeCode(3, length: 2)
        writer.write(138 - 11, count: 7)
        writer.writeCode(3, length: 2)
        writer.write(115 - 11, count: 7)  // 253 zeros in all
        writer.writeCode(1, length: 2)  // 253: length 2
        writer.writeCode(2, length: 2)
        writer.write(0, count: 2)  // repeated 3 times: 254, 255 and 256 of length 2 too
        writer.writeCode(0, length: 2)  // the distance code: length 1
        // Literal/length code: 253 → 00, 254 → 01, 255 → 10, 256 → 11.
        writer.writeCode(2, length: 2)
        writer.writeCode(0, length: 2)
        writer.writeCode(3, length: 2)
        #expect(try Self.inflate(writer.finish()) == [255, 253])
    }

    // MARK: Status lists

    /// Expects `encodedList` refused as `status_list_invalid` with a message containing `detail`.
    static func expectListRefused(_ encodedList: String, _ detail: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error = refusal({ try BitstringStatusList(encodedList: encodedList) }, sourceLocation: sourceLocation) else { return }
        #expect(error.code == .statusListInvalid, "\(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(detail), "\(error.message)", sourceLocation: sourceLocation)
    }

    @Test("status lists: not multibase base64url, not GZIP, shorter than 131,072 entries; other issuers' GZIP headers read")
    func statusListRefusals() throws {
        let minimumBytes = BitstringStatusList.minimumEntryCount / 8
        let member = Self.gzipMember([UInt8](repeating: 0, count: minimumBytes))
        let notMultibase = "encodedList is not multibase base64url"
        Self.expectListRefused("z" + MultibaseBase64URL.encode(member).dropFirst(), notMultibase)
        Self.expectListRefused("uH4sI+AAA", notMultibase)
        Self.expectListRefused("uH4sIA", notMultibase)
        Self.expectListRefused("", notMultibase)
        var badCRC = member
        badCRC[badCRC.count - 8] ^= 0x01
        Self.expectListRefused(
            MultibaseBase64URL.encode(badCRC), "encodedList does not decompress: invalid GZIP data: the CRC-32 does not match")
        Self.expectListRefused(MultibaseBase64URL.encode(Array(member.dropLast())), "encodedList does not decompress")
        Self.expectListRefused(
            MultibaseBase64URL.encode(Self.gzipMember([UInt8](repeating: 0, count: minimumBytes - 1))),
            "the status list has 131064 entries; the minimum is 131072")
        // A list whose GZIP header names a file and carries a header CRC, as other tools write it, is read; so is
        // one split over two members.
        var bytes = [UInt8](repeating: 0, count: minimumBytes)
        bytes[1] = 0x40
        let named = Self.gzipMember(bytes, flags: 0x0A, name: Array("status.bin".utf8))
        let list = try BitstringStatusList(encodedList: MultibaseBase64URL.encode(named))
        #expect(list.isSet(9) == true && list.isSet(8) == false && list.entryCount == 131_072)
        let split = Self.gzipMember(Array(bytes.prefix(100))) + Self.gzipMember(Array(bytes.dropFirst(100)))
        #expect(try BitstringStatusList(encodedList: MultibaseBase64URL.encode(split)) == list)
    }

    /// 2^27 entries is 16 MiB of bits: seventeen members of 1 MiB each, 700 bytes of GZIP apiece, go beyond.
    @Test("status lists: more than 2^27 entries (16 MiB), even spread over GZIP members, are refused")
    func statusListBound() throws {
        let mebibyte = Self.gzipMember([UInt8](repeating: 0, count: 1 << 20))
        let bound = BitstringStatusList.maximumEntryCount / 8
        Self.expectListRefused(
            MultibaseBase64URL.encode([UInt8]((0..<17).map { _ in mebibyte }.joined())),
            "encodedList does not decompress: compressed data expands beyond 16777216 bytes")
        #expect(try BitstringStatusList(encodedList: MultibaseBase64URL.encode([UInt8]((0..<16).map { _ in mebibyte }.joined()))).bytes.count == bound)
    }
}
