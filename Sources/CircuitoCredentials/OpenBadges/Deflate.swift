import CircuitoCore

/// DEFLATE (RFC 1951) in pure Swift: a decoder for every block type (stored, fixed and dynamic Huffman), and an
/// encoder that writes one fixed-Huffman block with LZ77 matches.
///
/// Why our own: status lists made by any issuer arrive GZIP-compressed and must be read offline, and the package
/// links no zlib. The decoder is written after Mark Adler's `puff.c` (canonical Huffman codes decoded bit by bit):
/// small and easy to check rather than fast, which is plenty for status lists and PNG text chunks.
///
/// Every loop is bounded: each step consumes input bits or produces output, and output is capped by
/// `maximumOutputBytes` (a "zip bomb" stops there with an error instead of filling memory).
public enum Deflate {
    // MARK: Decoding

    /// Decompresses the raw DEFLATE stream at the start of `input`. Returns the output and how many bytes of
    /// `input` the stream occupied (the last partial byte counts), so containers can read their trailers.
    /// `precedingOutputBytes` is what a container already produced before this stream (earlier GZIP members): the
    /// bound holds for it and this output together, and a refusal names the whole bound, as the caller set it.
    public static func inflate(
        _ input: ArraySlice<UInt8>, maximumOutputBytes: Int, precedingOutputBytes: Int = 0
    ) throws(LedgerError) -> (output: [UInt8], consumedBytes: Int) {
        var state = InflateState(
            input: input, maximumOutputBytes: maximumOutputBytes, precedingOutputBytes: precedingOutputBytes)
        var isLastBlock = false
        while !isLastBlock {
            isLastBlock = try state.bits(1) == 1
            switch try state.bits(2) {
            case 0: try state.storedBlock()
            case 1: try state.codesBlock(literalLength: fixedTables.literalLength, distance: fixedTables.distance)
            case 2:
                let tables = try state.dynamicTables()
                try state.codesBlock(literalLength: tables.literalLength, distance: tables.distance)
            default: throw invalid("block type 3 is reserved")
            }
        }
        return (state.output, state.position - input.startIndex)
    }

    static func invalid(_ detail: String) -> LedgerError {
        LedgerError(.compressedDataInvalid, "invalid DEFLATE data: \(detail)")
    }

    /// A canonical Huffman code: how many symbols have each code length, and the symbols in code order.
    struct HuffmanCode: Sendable {
        static let maximumLength = 15
        var countOfLength: [Int]
        var symbols: [Int]

        /// Which incomplete codes a code may be. RFC 1951 asks for complete codes except a lone one-bit distance
        /// code or none; zlib (inflate_table) accepts exactly this, and a lone one-bit literal/length code too.
        enum IncompleteCodes {
            /// The code-length code of a dynamic block: complete or refused (zlib's "invalid code lengths set";
            /// any stream with another one fails later anyway).
            case refused
            /// The literal/length and distance codes: complete, a lone one-bit code, or no code at all.
            case loneOneBitCodeOrNone
            /// The fixed distance code: 30 of its 32 five-bit codes are used.
            case allowed
        }

        /// Builds the code from a code length per symbol (0 = unused). Over-subscribed lengths are always refused;
        /// incomplete ones as `incompleteCodes` says.
        init(lengths: [Int], incompleteCodes: IncompleteCodes = .loneOneBitCodeOrNone) throws(LedgerError) {
            countOfLength = [Int](repeating: 0, count: Self.maximumLength + 1)
            for length in lengths { countOfLength[length] += 1 }
            var left = 1
            for length in 1...Self.maximumLength {
                left <<= 1
                left -= countOfLength[length]
                guard left >= 0 else { throw Deflate.invalid("over-subscribed Huffman code lengths") }
            }
            let usedCount = lengths.count - countOfLength[0]
            let loneOneBitCode = usedCount == 1 && countOfLength[1] == 1
            let incompleteAccepted: Bool
            switch incompleteCodes {
            case .refused: incompleteAccepted = false
            case .loneOneBitCodeOrNone: incompleteAccepted = usedCount == 0 || loneOneBitCode
            case .allowed: incompleteAccepted = true
            }
            guard left == 0 || incompleteAccepted else { throw Deflate.invalid("incomplete Huffman code lengths") }
            var offsets = [Int](repeating: 0, count: Self.maximumLength + 2)
            for length in 1...Self.maximumLength { offsets[length + 1] = offsets[length] + countOfLength[length] }
            symbols = [Int](repeating: 0, count: usedCount)
            for (symbol, length) in lengths.enumerated() where length != 0 {
                symbols[offsets[length]] = symbol
                offsets[length] += 1
            }
            countOfLength[0] = 0
        }
    }

    static let lengthBases = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtraBits = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBases = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
        6145, 8193, 12289, 16385, 24577,
    ]
    static let distanceExtraBits = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    /// The order in which a dynamic block lists the code lengths of the code-length alphabet.
    static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    /// The fixed codes of block type 1 (RFC 1951 section 3.2.6).
    static let fixedLiteralLengthLengths: [Int] =
        [Int](repeating: 8, count: 144) + [Int](repeating: 9, count: 112) + [Int](repeating: 7, count: 24)
        + [Int](repeating: 8, count: 8)
    static let fixedTables: (literalLength: HuffmanCode, distance: HuffmanCode) = {
        // The fixed lengths are a complete code and a 30-symbol 5-bit code: construction cannot fail.
        let literalLength = try? HuffmanCode(lengths: fixedLiteralLengthLengths)
        let distance = try? HuffmanCode(lengths: [Int](repeating: 5, count: 30), incompleteCodes: .allowed)
        guard let literalLength, let distance else { preconditionFailure("the fixed Huffman codes are valid") }
        return (literalLength, distance)
    }()

    struct InflateState {
        let input: ArraySlice<UInt8>
        let maximumOutputBytes: Int
        /// What this stream may still produce: the bound less what came before it.
        let availableOutputBytes: Int
        var position: Int
        var bitBuffer: UInt32 = 0
        var bitCount = 0
        var output: [UInt8] = []

        init(input: ArraySlice<UInt8>, maximumOutputBytes: Int, precedingOutputBytes: Int) {
            self.input = input
            self.maximumOutputBytes = maximumOutputBytes
            self.availableOutputBytes = maximumOutputBytes - precedingOutputBytes
            self.position = input.startIndex
        }

        var tooLarge: LedgerError {
            LedgerError(.compressedDataInvalid, "compressed data expands beyond \(maximumOutputBytes) bytes")
        }

        /// The next `count` bits (at most 16), least significant first.
        mutating func bits(_ count: Int) throws(LedgerError) -> Int {
            while bitCount < count {
                guard position < input.endIndex else { throw Deflate.invalid("the stream ends too early") }
                bitBuffer |= UInt32(input[position]) << UInt32(bitCount)
                position += 1
                bitCount += 8
            }
            let value = Int(bitBuffer & ((1 << UInt32(count)) - 1))
            bitBuffer >>= UInt32(count)
            bitCount -= count
            return value
        }

        mutating func append(_ byte: UInt8) throws(LedgerError) {
            guard output.count < availableOutputBytes else { throw tooLarge }
            output.append(byte)
        }

        mutating func storedBlock() throws(LedgerError) {
            // Stored blocks start on a byte boundary: drop the rest of the current byte.
            bitBuffer = 0
            bitCount = 0
            guard input.endIndex - position >= 4 else { throw Deflate.invalid("a stored block header is cut short") }
            let length = Int(input[position]) | Int(input[position + 1]) << 8
            let complement = Int(input[position + 2]) | Int(input[position + 3]) << 8
            position += 4
            guard length == ~complement & 0xFFFF else { throw Deflate.invalid("stored block length check fails") }
            guard input.endIndex - position >= length else { throw Deflate.invalid("a stored block is cut short") }
            guard output.count + length <= availableOutputBytes else { throw tooLarge }
            output.append(contentsOf: input[position..<(position + length)])
            position += length
        }

        mutating func decode(_ code: HuffmanCode) throws(LedgerError) -> Int {
            var value = 0
            var first = 0
            var index = 0
            for length in 1...HuffmanCode.maximumLength {
                value |= try bits(1)
                let count = code.countOfLength[length]
                if value - count < first { return code.symbols[index + (value - first)] }
                index += count
                first = (first + count) << 1
                value <<= 1
            }
            throw Deflate.invalid("a code is not in the Huffman table")
        }

        mutating func codesBlock(literalLength: HuffmanCode, distance: HuffmanCode) throws(LedgerError) {
            // Ends at the end-of-block symbol; every turn consumes bits, so the input length bounds the loop.
            while true {
                let symbol = try decode(literalLength)
                if symbol < 256 {
                    try append(UInt8(symbol))
                    continue
                }
                if symbol == 256 { return }
                let lengthIndex = symbol - 257
                guard lengthIndex < Deflate.lengthBases.count else { throw Deflate.invalid("length symbol \(symbol)") }
                let length = Deflate.lengthBases[lengthIndex] + (try bits(Deflate.lengthExtraBits[lengthIndex]))
                let distanceSymbol = try decode(distance)
                guard distanceSymbol < Deflate.distanceBases.count else {
                    throw Deflate.invalid("distance symbol \(distanceSymbol)")
                }
                let back = Deflate.distanceBases[distanceSymbol] + (try bits(Deflate.distanceExtraBits[distanceSymbol]))
                guard back <= output.count else { throw Deflate.invalid("a distance reaches before the start") }
                guard output.count + length <= availableOutputBytes else { throw tooLarge }
                // Byte by byte: a match may overlap what it is copying (distance < length repeats a run).
                let start = output.count - back
                for offset in 0..<length { output.append(output[start + offset]) }
            }
        }

        mutating func dynamicTables() throws(LedgerError) -> (literalLength: HuffmanCode, distance: HuffmanCode) {
            let literalLengthCount = try bits(5) + 257
            let distanceCount = try bits(5) + 1
            let codeLengthCount = try bits(4) + 4
            guard literalLengthCount <= 286, distanceCount <= 30 else {
                throw Deflate.invalid("too many length or distance codes")
            }
            var codeLengthLengths = [Int](repeating: 0, count: 19)
            for index in 0..<codeLengthCount { codeLengthLengths[Deflate.codeLengthOrder[index]] = try bits(3) }
            let codeLengthCode = try HuffmanCode(lengths: codeLengthLengths, incompleteCodes: .refused)
            var lengths: [Int] = []
            let total = literalLengthCount + distanceCount
            lengths.reserveCapacity(total)
            while lengths.count < total {
                let symbol = try decode(codeLengthCode)
                if symbol < 16 {
                    lengths.append(symbol)
                    continue
                }
                var repeated = 0
                let repeatCount: Int
                switch symbol {
                case 16:
                    guard let previous = lengths.last else { throw Deflate.invalid("a length repeat with no previous length") }
                    repeated = previous
                    repeatCount = 3 + (try bits(2))
                case 17: repeatCount = 3 + (try bits(3))
                default: repeatCount = 11 + (try bits(7))
                }
                guard lengths.count + repeatCount <= total else { throw Deflate.invalid("too many code lengths") }
                lengths += [Int](repeating: repeated, count: repeatCount)
            }
            guard lengths[256] != 0 else { throw Deflate.invalid("the block has no end-of-block code") }
            let literalLength = try HuffmanCode(lengths: Array(lengths[0..<literalLengthCount]))
            let distance = try HuffmanCode(lengths: Array(lengths[literalLengthCount...]))
            return (literalLength, distance)
        }
    }

    // MARK: Encoding

    /// Compresses `input` as one final fixed-Huffman block with greedy LZ77 matching (one candidate per 3-byte hash,
    /// 32 KiB window). Long runs, such as the zeros of a status list, shrink to a few bytes per 258 input bytes.
    public static func deflate(_ input: [UInt8]) -> [UInt8] {
        var writer = BitWriter()
        writer.write(1, count: 1)  // BFINAL
        writer.write(1, count: 2)  // BTYPE 01: fixed Huffman
        let windowBytes = 32_768
        let hashBits = 15
        var head = [Int](repeating: -1, count: 1 << hashBits)
        func hash(_ index: Int) -> Int {
            let value = Int(input[index]) << 16 | Int(input[index + 1]) << 8 | Int(input[index + 2])
            return (value &* 2_654_435_761) >> 7 & ((1 << hashBits) - 1)
        }
        var index = 0
        while index < input.count {
            var matchLength = 0
            var matchDistance = 0
            if index + 3 <= input.count {
                let key = hash(index)
                let candidate = head[key]
                head[key] = index
                if candidate >= 0 && index - candidate <= windowBytes {
                    let limit = min(258, input.count - index)
                    var length = 0
                    while length < limit && input[candidate + length] == input[index + length] { length += 1 }
                    if length >= 3 {
                        matchLength = length
                        matchDistance = index - candidate
                    }
                }
            }
            if matchLength == 0 {
                writeFixedLiteralLength(Int(input[index]), to: &writer)
                index += 1
                continue
            }
            writeMatch(length: matchLength, distance: matchDistance, to: &writer)
            // Remember the positions inside the match too, so later data can refer back into it.
            let end = index + matchLength
            index += 1
            while index < end {
                if index + 3 <= input.count { head[hash(index)] = index }
                index += 1
            }
        }
        writeFixedLiteralLength(256, to: &writer)
        return writer.finish()
    }

    struct BitWriter {
        var bytes: [UInt8] = []
        var buffer: UInt32 = 0
        var count = 0

        /// Writes the low `count` bits of `value`, least significant first (DEFLATE's bit order for data).
        mutating func write(_ value: Int, count bitCount: Int) {
            buffer |= UInt32(value & ((1 << bitCount) - 1)) << UInt32(count)
            count += bitCount
            while count >= 8 {
                bytes.append(UInt8(buffer & 0xFF))
                buffer >>= 8
                count -= 8
            }
        }

        /// Writes a Huffman code: its bits go most significant first.
        mutating func writeCode(_ code: Int, length: Int) {
            var reversed = 0
            for bit in 0..<length { reversed |= (code >> bit & 1) << (length - 1 - bit) }
            write(reversed, count: length)
        }

        mutating func finish() -> [UInt8] {
            if count > 0 { bytes.append(UInt8(buffer & 0xFF)) }
            buffer = 0
            count = 0
            return bytes
        }
    }

    static func writeFixedLiteralLength(_ symbol: Int, to writer: inout BitWriter) {
        switch symbol {
        case 0...143: writer.writeCode(0x30 + symbol, length: 8)
        case 144...255: writer.writeCode(0x190 + symbol - 144, length: 9)
        case 256...279: writer.writeCode(symbol - 256, length: 7)
        default: writer.writeCode(0xC0 + symbol - 280, length: 8)
        }
    }

    static func writeMatch(length: Int, distance: Int, to writer: inout BitWriter) {
        // The last base not above the value; lengthBases and distanceBases are sorted.
        let lengthIndex = (lengthBases.lastIndex { $0 <= length }) ?? 0
        writeFixedLiteralLength(257 + lengthIndex, to: &writer)
        writer.write(length - lengthBases[lengthIndex], count: lengthExtraBits[lengthIndex])
        let distanceIndex = (distanceBases.lastIndex { $0 <= distance }) ?? 0
        writer.writeCode(distanceIndex, length: 5)
        writer.write(distance - distanceBases[distanceIndex], count: distanceExtraBits[distanceIndex])
    }
}

/// GZIP (RFC 1952) members around DEFLATE data.
public enum GZip {
    /// One GZIP member: no name, modification time 0 and OS "unknown", so the same input always gives the same bytes.
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]
        bytes += Deflate.deflate(input)
        bytes += littleEndian(CRC32.checksum(input))
        bytes += littleEndian(UInt32(truncatingIfNeeded: input.count))
        return bytes
    }

    /// Decompresses every member of `input` (RFC 1952 allows several, concatenated), checking each member's CRC-32
    /// and length. The total output is capped at `maximumOutputBytes`.
    public static func decompress(_ input: [UInt8], maximumOutputBytes: Int) throws(LedgerError) -> [UInt8] {
        var output: [UInt8] = []
        var position = 0
        // Each member consumes at least 18 bytes, so the input length bounds the loop.
        repeat {
            position = try member(input, at: position, into: &output, maximumOutputBytes: maximumOutputBytes)
        } while position < input.count
        return output
    }

    static func member(
        _ input: [UInt8], at start: Int, into output: inout [UInt8], maximumOutputBytes: Int
    ) throws(LedgerError) -> Int {
        func invalid(_ detail: String) -> LedgerError { LedgerError(.compressedDataInvalid, "invalid GZIP data: \(detail)") }
        guard input.count - start >= 18 else { throw invalid("too short for a GZIP member") }
        guard input[start] == 0x1F, input[start + 1] == 0x8B else { throw invalid("no GZIP magic number (1f 8b)") }
        guard input[start + 2] == 8 else { throw invalid("compression method \(input[start + 2]) is not DEFLATE (8)") }
        let flags = input[start + 3]
        guard flags & 0xE0 == 0 else { throw invalid("reserved flag bits are set") }
        var position = start + 10
        if flags & 0x04 != 0 {  // FEXTRA
            guard input.count - position >= 2 else { throw invalid("the extra field is cut short") }
            let length = Int(input[position]) | Int(input[position + 1]) << 8
            position += 2 + length
        }
        for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
            guard let end = input[min(position, input.count)...].firstIndex(of: 0) else {
                throw invalid("a header string is not terminated")
            }
            position = end + 1
        }
        if flags & 0x02 != 0 {  // FHCRC
            guard input.count - position >= 2 else { throw invalid("the header CRC is cut short") }
            let stored = UInt16(input[position]) | UInt16(input[position + 1]) << 8
            guard stored == UInt16(truncatingIfNeeded: CRC32.checksum(input[start..<position])) else {
                throw invalid("the header CRC does not match")
            }
            position += 2
        }
        guard position <= input.count else { throw invalid("the header is cut short") }
        let (data, consumed) = try Deflate.inflate(
            input[position...], maximumOutputBytes: maximumOutputBytes, precedingOutputBytes: output.count)
        position += consumed
        guard input.count - position >= 8 else { throw invalid("the trailer is cut short") }
        let storedCRC = readLittleEndian(input, at: position)
        let storedSize = readLittleEndian(input, at: position + 4)
        guard storedCRC == CRC32.checksum(data) else { throw invalid("the CRC-32 does not match the data") }
        guard storedSize == UInt32(truncatingIfNeeded: data.count) else { throw invalid("the size does not match the data") }
        output += data
        return position + 8
    }

    static func littleEndian(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) }
    }

    static func readLittleEndian(_ bytes: [UInt8], at position: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[position + $1]) << (8 * UInt32($1)) }
    }
}

/// zlib streams (RFC 1950): what PNG image data and compressed PNG text chunks hold.
public enum ZLib {
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        // CMF 0x78: DEFLATE with a 32 KiB window; FLG 0x01 makes CMF·256 + FLG a multiple of 31 (no dictionary).
        var bytes: [UInt8] = [0x78, 0x01]
        bytes += Deflate.deflate(input)
        let adler = Adler32.checksum(input)
        bytes += (0..<4).map { UInt8(truncatingIfNeeded: adler >> (24 - 8 * UInt32($0))) }
        return bytes
    }

    public static func decompress(_ input: [UInt8], maximumOutputBytes: Int) throws(LedgerError) -> [UInt8] {
        func invalid(_ detail: String) -> LedgerError { LedgerError(.compressedDataInvalid, "invalid zlib data: \(detail)") }
        guard input.count >= 6 else { throw invalid("too short") }
        let methodAndFlags = Int(input[0]) << 8 | Int(input[1])
        guard input[0] & 0x0F == 8, input[0] >> 4 <= 7, methodAndFlags % 31 == 0 else {
            throw invalid("the header is not DEFLATE with a valid check")
        }
        guard input[1] & 0x20 == 0 else { throw invalid("preset dictionaries are not supported") }
        let (data, consumed) = try Deflate.inflate(input[2...], maximumOutputBytes: maximumOutputBytes)
        let end = 2 + consumed
        guard input.count - end >= 4 else { throw invalid("the Adler-32 trailer is cut short") }
        let stored = (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(input[end + $1]) }
        guard stored == Adler32.checksum(data) else { throw invalid("the Adler-32 does not match the data") }
        return data
    }
}
