/// A strict RFC 8259 JSON parser that also enforces what RFC 8785 (JCS) and I-JSON (RFC 7493) need from their input.
///
/// It reads exactly one value with optional surrounding whitespace and refuses: trailing commas, comments, leading
/// zeros, `NaN`/`Infinity`, numbers that overflow a Double, invalid UTF-8, invalid escapes, lone surrogates, unescaped
/// control characters in strings, duplicate object keys, and trailing data. Nesting deeper than `maximumDepth` is
/// refused with `.tooLarge`; every other refusal is `.invalidJSON`. Messages name the problem and its byte offset.
///
/// Numbers written without a fraction or exponent and within ±(2^53 − 1) become `.integer`; every other number becomes
/// `.number(Double)`, rounded to the nearest double as JCS requires.
///
/// Object keys are compared as code unit sequences, as JSON and JCS do: two keys that differ only in Unicode
/// normalization (for example "é" written as U+00E9 and as U+0065 U+0301) are two different keys.
public enum JSONParser {
    /// The default nesting limit: deep enough for any ledger document, shallow enough to bound the recursion.
    public static let defaultMaximumDepth = 64

    /// Parses one JSON document from its UTF-8 bytes.
    ///
    /// - Parameter maximumDepth: how many arrays and objects may be nested inside each other. It also bounds the
    ///   parser's recursion, so callers should keep it modest.
    public static func parse(_ bytes: [UInt8], maximumDepth: Int = defaultMaximumDepth) throws(LedgerError)
        -> JSONValue
    {
        try bytes.withUnsafeBufferPointer { (buffer) throws(LedgerError) -> JSONValue in
            var cursor = Cursor(input: buffer, maximumDepth: maximumDepth)
            return try cursor.parseDocument()
        }
    }

    /// Parses one JSON document from a string (through its UTF-8 form, without copying when it is contiguous).
    public static func parse(_ text: String, maximumDepth: Int = defaultMaximumDepth) throws(LedgerError)
        -> JSONValue
    {
        var text = text
        // `withUTF8` only rethrows untyped errors, so the outcome travels out as a `Result`.
        let outcome = text.withUTF8 { buffer -> Result<JSONValue, LedgerError> in
            var cursor = Cursor(input: buffer, maximumDepth: maximumDepth)
            do throws(LedgerError) {
                return .success(try cursor.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }
}

extension JSONParser {
    /// ASCII bytes the grammar cares about, named so the parser reads like the grammar.
    private enum Byte {
        static let quote: UInt8 = 0x22  // "
        static let backslash: UInt8 = 0x5C  // \
        static let slash: UInt8 = 0x2F  // /
        static let comma: UInt8 = 0x2C  // ,
        static let colon: UInt8 = 0x3A  // :
        static let openBracket: UInt8 = 0x5B  // [
        static let closeBracket: UInt8 = 0x5D  // ]
        static let openBrace: UInt8 = 0x7B  // {
        static let closeBrace: UInt8 = 0x7D  // }
        static let minus: UInt8 = 0x2D  // -
        static let plus: UInt8 = 0x2B  // +
        static let dot: UInt8 = 0x2E  // .
        static let zero: UInt8 = 0x30  // 0
        static let nine: UInt8 = 0x39  // 9
        static let lowercaseE: UInt8 = 0x65  // e
        static let uppercaseE: UInt8 = 0x45  // E
        static let space: UInt8 = 0x20
        static let tab: UInt8 = 0x09
        static let lineFeed: UInt8 = 0x0A
        static let carriageReturn: UInt8 = 0x0D
    }

    /// The parsing state: the input, a read position and the current nesting depth.
    ///
    /// The input is an `UnsafeBufferPointer` that only lives inside `withUnsafeBufferPointer`/`withUTF8`; the cursor
    /// never escapes those closures. Reads past the end are always guarded by `offset < input.count` first.
    private struct Cursor {
        let input: UnsafeBufferPointer<UInt8>
        let maximumDepth: Int
        var offset = 0
        var depth = 0
        /// Reused for strings that contain escapes, so each such string does not allocate a fresh buffer.
        var scratch: [UInt8] = []

        init(input: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
            self.input = input
            self.maximumDepth = maximumDepth
        }

        // MARK: Document and values

        mutating func parseDocument() throws(LedgerError) -> JSONValue {
            let value = try parseValue()
            skipWhitespace()
            if offset < input.count {
                throw invalid("unexpected \(describe(input[offset])) after the JSON value", at: offset)
            }
            return value
        }

        mutating func parseValue() throws(LedgerError) -> JSONValue {
            skipWhitespace()
            guard offset < input.count else {
                throw invalid("unexpected end of input, expected a value", at: offset)
            }
            switch input[offset] {
            case Byte.openBrace:
                return try parseObject()
            case Byte.openBracket:
                return try parseArray()
            case Byte.quote:
                return .string(try parseString())
            case Byte.minus, Byte.zero...Byte.nine:
                return try parseNumber()
            case UInt8(ascii: "t"):
                try consumeLiteral("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try consumeLiteral("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try consumeLiteral("null")
                return .null
            case let byte:
                throw invalid("unexpected \(describe(byte)), expected a value", at: offset)
            }
        }

        /// Matches `true`, `false` or `null` exactly (so `nul`, `True` and `NaN` are refused here or before).
        mutating func consumeLiteral(_ literal: StaticString) throws(LedgerError) {
            let start = offset
            let count = literal.utf8CodeUnitCount
            guard input.count - offset >= count else {
                throw invalid("truncated literal, expected \(literal)", at: start)
            }
            let expected = UnsafeBufferPointer(start: literal.utf8Start, count: count)
            for index in 0..<count where input[offset + index] != expected[index] {
                throw invalid("invalid literal, expected \(literal)", at: start)
            }
            offset += count
        }

        // MARK: Containers

        /// Counts one more level of nesting; refusing here, before recursing, is what keeps hostile input from
        /// exhausting the stack.
        mutating func enterContainer() throws(LedgerError) {
            depth += 1
            if depth > maximumDepth {
                throw LedgerError(
                    .tooLarge, "JSON nesting deeper than \(maximumDepth) levels at byte offset \(offset)")
            }
        }

        mutating func parseArray() throws(LedgerError) -> JSONValue {
            let start = offset
            try enterContainer()
            offset += 1  // [
            var elements: [JSONValue] = []
            skipWhitespace()
            if offset < input.count, input[offset] == Byte.closeBracket {
                offset += 1
                depth -= 1
                return .array(elements)
            }
            while true {
                elements.append(try parseValue())
                skipWhitespace()
                guard offset < input.count else {
                    throw invalid("unexpected end of input in the array opened at byte offset \(start)", at: offset)
                }
                switch input[offset] {
                case Byte.comma:
                    offset += 1
                    skipWhitespace()
                    if offset < input.count, input[offset] == Byte.closeBracket {
                        throw invalid("trailing comma in array", at: offset)
                    }
                case Byte.closeBracket:
                    offset += 1
                    depth -= 1
                    return .array(elements)
                case let byte:
                    throw invalid("unexpected \(describe(byte)) in array, expected ',' or ']'", at: offset)
                }
            }
        }

        static let expectedObjectMemberCount = 8

        mutating func parseObject() throws(LedgerError) -> JSONValue {
            let start = offset
            try enterContainer()
            offset += 1  // {
            // Canonical input (everything the ledger stores and signs) arrives sorted: it is kept as read, and a
            // duplicate can only equal the key before it. Unsorted input is sorted once at the end.
            var keys: [String] = []
            var values: [JSONValue] = []
            var arrivedSorted = true
            // Room for a typical ledger object at once, instead of growing through 1, 2, 4 and 8 members.
            keys.reserveCapacity(Self.expectedObjectMemberCount)
            values.reserveCapacity(Self.expectedObjectMemberCount)
            skipWhitespace()
            if offset < input.count, input[offset] == Byte.closeBrace {
                offset += 1
                depth -= 1
                return .object(JSONObject())
            }
            while true {
                skipWhitespace()
                guard offset < input.count else {
                    throw invalid("unexpected end of input in the object opened at byte offset \(start)", at: offset)
                }
                guard input[offset] == Byte.quote else {
                    throw invalid("unexpected \(describe(input[offset])) in object, expected a string key", at: offset)
                }
                let keyOffset = offset
                let key = try parseString()
                skipWhitespace()
                guard offset < input.count, input[offset] == Byte.colon else {
                    let found = offset < input.count ? describe(input[offset]) : "end of input"
                    throw invalid("unexpected \(found) after object key, expected ':'", at: offset)
                }
                offset += 1
                let value = try parseValue()
                if arrivedSorted, let previous = keys.last {
                    let comparison = JSONObject.order(previous, key)
                    // I-JSON and JCS need unique names: a duplicate would make the canonical form ambiguous.
                    if comparison == 0 { throw invalid("duplicate object key \(quoted(key))", at: keyOffset) }
                    if comparison > 0 { arrivedSorted = false }
                }
                keys.append(key)
                values.append(value)
                skipWhitespace()
                guard offset < input.count else {
                    throw invalid("unexpected end of input in the object opened at byte offset \(start)", at: offset)
                }
                switch input[offset] {
                case Byte.comma:
                    offset += 1
                    skipWhitespace()
                    if offset < input.count, input[offset] == Byte.closeBrace {
                        throw invalid("trailing comma in object", at: offset)
                    }
                case Byte.closeBrace:
                    offset += 1
                    depth -= 1
                    if arrivedSorted { return .object(JSONObject(sortedKeys: keys, values: values)) }
                    return .object(try sortedObject(keys: keys, values: values, objectOffset: start))
                case let byte:
                    throw invalid("unexpected \(describe(byte)) in object, expected ',' or '}'", at: offset)
                }
            }
        }

        /// Sorts members that arrived out of order; a duplicate is reported at the object's opening brace.
        func sortedObject(keys: [String], values: [JSONValue], objectOffset: Int) throws(LedgerError) -> JSONObject {
            let order = keys.indices.sorted { first, second in
                let comparison = JSONObject.order(keys[first], keys[second])
                return comparison != 0 ? comparison < 0 : first < second
            }
            for (first, second) in zip(order, order.dropFirst()) where JSONObject.order(keys[first], keys[second]) == 0 {
                throw invalid("duplicate object key \(quoted(keys[second])) in the object opened here", at: objectOffset)
            }
            return JSONObject(sortedKeys: order.map { keys[$0] }, values: order.map { values[$0] })
        }

        // MARK: Strings

        /// Parses a string starting at its opening quote. Strings without escapes are decoded straight from the
        /// input; strings with escapes are assembled in `scratch`.
        mutating func parseString() throws(LedgerError) -> String {
            let openingQuote = offset
            offset += 1
            var segmentStart = offset
            var usesScratch = false
            while offset < input.count {
                let byte = input[offset]
                if byte >= 0x20 && byte < 0x80 && byte != Byte.quote && byte != Byte.backslash {
                    offset += 1  // The common case: plain printable ASCII.
                    continue
                }
                switch byte {
                case Byte.quote:
                    let segment = UnsafeBufferPointer(rebasing: input[segmentStart..<offset])
                    let result: String
                    if usesScratch {
                        scratch.append(contentsOf: segment)
                        result = String(decoding: scratch, as: UTF8.self)
                    } else {
                        result = String(decoding: segment, as: UTF8.self)
                    }
                    offset += 1
                    return result
                case Byte.backslash:
                    if !usesScratch {
                        scratch.removeAll(keepingCapacity: true)
                        usesScratch = true
                    }
                    scratch.append(contentsOf: UnsafeBufferPointer(rebasing: input[segmentStart..<offset]))
                    try parseEscape()
                    segmentStart = offset
                case 0x00..<0x20:
                    throw invalid("unescaped control character \(describe(byte)) in string", at: offset)
                default:
                    try skipMultibyteSequence()
                }
            }
            throw invalid("unterminated string opened at byte offset \(openingQuote)", at: offset)
        }

        /// Checks one multi-byte UTF-8 sequence against Unicode's table of well-formed sequences (no overlong forms,
        /// no encoded surrogates, nothing above U+10FFFF), so every string handed to `String` is already valid.
        mutating func skipMultibyteSequence() throws(LedgerError) {
            let lead = input[offset]
            let length: Int
            var secondLowest: UInt8 = 0x80
            var secondHighest: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF:
                length = 2
            case 0xE0:
                length = 3
                secondLowest = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF:
                length = 3
            case 0xED:
                length = 3
                secondHighest = 0x9F  // ED A0..BF would encode surrogates.
            case 0xF0:
                length = 4
                secondLowest = 0x90
            case 0xF1...0xF3:
                length = 4
            case 0xF4:
                length = 4
                secondHighest = 0x8F  // F4 90 and above would exceed U+10FFFF.
            default:
                throw invalid("invalid UTF-8 byte \(describe(lead)) in string", at: offset)
            }
            guard input.count - offset >= length else {
                throw invalid("truncated UTF-8 sequence in string", at: offset)
            }
            let second = input[offset + 1]
            guard second >= secondLowest && second <= secondHighest else {
                throw invalid("invalid UTF-8 sequence in string", at: offset)
            }
            for index in 2..<length where input[offset + index] & 0xC0 != 0x80 {
                throw invalid("invalid UTF-8 sequence in string", at: offset)
            }
            offset += length
        }

        /// Decodes one escape starting at its backslash and appends its UTF-8 form to `scratch`.
        mutating func parseEscape() throws(LedgerError) {
            let escapeOffset = offset
            guard input.count - offset >= 2 else {
                throw invalid("truncated escape in string", at: escapeOffset)
            }
            let letter = input[offset + 1]
            offset += 2
            switch letter {
            case Byte.quote, Byte.backslash, Byte.slash:
                scratch.append(letter)
            case UInt8(ascii: "b"):
                scratch.append(0x08)
            case UInt8(ascii: "f"):
                scratch.append(0x0C)
            case UInt8(ascii: "n"):
                scratch.append(0x0A)
            case UInt8(ascii: "r"):
                scratch.append(0x0D)
            case UInt8(ascii: "t"):
                scratch.append(0x09)
            case UInt8(ascii: "u"):
                let unit = try parseHexCodeUnit(escapeOffset: escapeOffset)
                switch unit {
                case 0xD800...0xDBFF:
                    // A high surrogate must be followed at once by an escaped low surrogate; together they are one
                    // scalar. Anything else would be a lone surrogate, which is not valid Unicode.
                    guard input.count - offset >= 2, input[offset] == Byte.backslash,
                        input[offset + 1] == UInt8(ascii: "u")
                    else {
                        throw invalid("lone high surrogate escape in string", at: escapeOffset)
                    }
                    let lowOffset = offset
                    offset += 2
                    let low = try parseHexCodeUnit(escapeOffset: lowOffset)
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw invalid("lone high surrogate escape in string", at: escapeOffset)
                    }
                    let scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    appendUTF8(scalar)
                case 0xDC00...0xDFFF:
                    throw invalid("lone low surrogate escape in string", at: escapeOffset)
                default:
                    appendUTF8(UInt32(unit))
                }
            default:
                throw invalid("invalid escape \\\(describeRaw(letter)) in string", at: escapeOffset)
            }
        }

        /// Reads the four hex digits of a `\u` escape (the cursor is just after the `u`).
        mutating func parseHexCodeUnit(escapeOffset: Int) throws(LedgerError) -> UInt16 {
            guard input.count - offset >= 4 else {
                throw invalid("truncated \\u escape in string", at: escapeOffset)
            }
            var unit: UInt16 = 0
            for _ in 0..<4 {
                let byte = input[offset]
                let digit: UInt8
                switch byte {
                case Byte.zero...Byte.nine: digit = byte - Byte.zero
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw invalid("invalid hex digit \(describe(byte)) in \\u escape", at: offset)
                }
                unit = unit << 4 | UInt16(digit)
                offset += 1
            }
            return unit
        }

        /// Appends a Unicode scalar value (never a surrogate, checked by the caller) as UTF-8.
        mutating func appendUTF8(_ scalar: UInt32) {
            switch scalar {
            case 0..<0x80:
                scratch.append(UInt8(scalar))
            case 0x80..<0x800:
                scratch.append(UInt8(0xC0 | (scalar >> 6)))
                scratch.append(UInt8(0x80 | (scalar & 0x3F)))
            case 0x800..<0x10000:
                scratch.append(UInt8(0xE0 | (scalar >> 12)))
                scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
                scratch.append(UInt8(0x80 | (scalar & 0x3F)))
            default:
                scratch.append(UInt8(0xF0 | (scalar >> 18)))
                scratch.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
                scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
                scratch.append(UInt8(0x80 | (scalar & 0x3F)))
            }
        }

        // MARK: Numbers

        /// Parses `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
        ///
        /// Plain integers are accumulated directly while they stay exact; everything else goes through the
        /// correctly rounded `Double(String)` conversion, which is what JCS's "nearest IEEE 754 double" needs.
        mutating func parseNumber() throws(LedgerError) -> JSONValue {
            let start = offset
            var isNegative = false
            if input[offset] == Byte.minus {
                isNegative = true
                offset += 1
            }
            guard offset < input.count, isDigit(input[offset]) else {
                throw invalid("expected a digit after '-'", at: offset)
            }
            var magnitude: Int64 = 0
            var isExactInteger = true
            if input[offset] == Byte.zero {
                offset += 1
                if offset < input.count, isDigit(input[offset]) {
                    throw invalid("leading zero in number", at: start)
                }
            } else {
                while offset < input.count, isDigit(input[offset]) {
                    // Stop accumulating once past 2^53 − 1 (the value then becomes a Double); this also keeps the
                    // arithmetic far from Int64 overflow.
                    if isExactInteger {
                        magnitude = magnitude * 10 + Int64(input[offset] - Byte.zero)
                        if magnitude > JSONValue.maximumExactInteger { isExactInteger = false }
                    }
                    offset += 1
                }
            }
            if offset < input.count, input[offset] == Byte.dot {
                isExactInteger = false
                offset += 1
                try consumeDigits(after: "'.'")
            }
            if offset < input.count, input[offset] == Byte.lowercaseE || input[offset] == Byte.uppercaseE {
                isExactInteger = false
                offset += 1
                if offset < input.count, input[offset] == Byte.plus || input[offset] == Byte.minus {
                    offset += 1
                }
                try consumeDigits(after: "the exponent marker")
            }
            if isExactInteger {
                return .integer(isNegative ? -magnitude : magnitude)  // "-0" becomes .integer(0).
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: input[start..<offset]), as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw invalid("number out of the range of an IEEE 754 double", at: start)
            }
            return .number(value)
        }

        mutating func consumeDigits(after what: String) throws(LedgerError) {
            guard offset < input.count, isDigit(input[offset]) else {
                throw invalid("expected a digit after \(what) in number", at: offset)
            }
            while offset < input.count, isDigit(input[offset]) { offset += 1 }
        }

        // MARK: Helpers

        func isDigit(_ byte: UInt8) -> Bool { byte >= Byte.zero && byte <= Byte.nine }

        /// RFC 8259 whitespace only: space, tab, line feed, carriage return.
        mutating func skipWhitespace() {
            while offset < input.count {
                switch input[offset] {
                case Byte.space, Byte.tab, Byte.lineFeed, Byte.carriageReturn: offset += 1
                default: return
                }
            }
        }

        func invalid(_ what: String, at position: Int) -> LedgerError {
            LedgerError(.invalidJSON, "\(what) at byte offset \(position)")
        }

        /// A byte as it appears in messages: printable ASCII quoted, anything else in hex.
        func describe(_ byte: UInt8) -> String {
            if byte > 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
            return "byte 0x" + hexadecimal(byte)
        }

        func describeRaw(_ byte: UInt8) -> String {
            if byte > 0x20 && byte < 0x7F { return String(Character(Unicode.Scalar(byte))) }
            return "(byte 0x" + hexadecimal(byte) + ")"
        }

        func hexadecimal(_ byte: UInt8) -> String {
            let digits = String(byte, radix: 16, uppercase: false)
            return digits.count == 1 ? "0" + digits : digits
        }

        /// A key for an error message, shortened so a hostile key cannot blow up logs.
        func quoted(_ key: String) -> String {
            let limit = 64
            return key.count > limit ? "\"\(key.prefix(limit))…\"" : "\"\(key)\""
        }
    }
}
