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

    /// Parses a document that must already be exactly in canonical form (RFC 8785): what the ledger stores and hashes.
    ///
    /// It accepts the same documents as `parse` followed by a check that `CanonicalJSON.encode` gives back the very
    /// same bytes, without encoding the document (only a number that is not an integer, rare in the ledger, is
    /// encoded again to compare): whitespace, members out of order, an escape JCS would not write (`\/`, `\u0041`,
    /// uppercase hex), `-0` and a number not in ECMAScript's shortest form are refused as `.integrity`, at their byte
    /// offset. Not encoding is what makes a record's parse cheap (item 9 of `Benchmarks/NOTES.md`).
    public static func parseCanonical(_ bytes: [UInt8], maximumDepth: Int = defaultMaximumDepth) throws(LedgerError)
        -> CanonicalDocument
    {
        try bytes.withUnsafeBufferPointer { (buffer) throws(LedgerError) -> CanonicalDocument in
            var cursor = Cursor(input: buffer, maximumDepth: maximumDepth, requiresCanonical: true)
            let value = try cursor.parseDocument()
            return CanonicalDocument(value: value, memberValueRanges: cursor.topLevelMemberValueRanges)
        }
    }

    /// A document read by `parseCanonical`, with where each member value of its top-level object lies in its bytes:
    /// since the document is canonical, those bytes are that value's canonical form.
    public struct CanonicalDocument: Sendable {
        public let value: JSONValue
        /// The byte ranges of the top-level object's member values, in the order of its keys (empty for any other
        /// document).
        public let memberValueRanges: [Range<Int>]
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
        /// `parseCanonical`: anything `CanonicalJSON.encode` would not have written is refused.
        let requiresCanonical: Bool
        var offset = 0
        var depth = 0
        /// Reused for strings that contain escapes, so each such string does not allocate a fresh buffer.
        var scratch: [UInt8] = []
        /// Filled only when `requiresCanonical`: where the top-level object's member values lie.
        var topLevelMemberValueRanges: [Range<Int>] = []

        init(input: UnsafeBufferPointer<UInt8>, maximumDepth: Int, requiresCanonical: Bool = false) {
            self.input = input
            self.maximumDepth = maximumDepth
            self.requiresCanonical = requiresCanonical
        }

        // MARK: Document and values

        mutating func parseDocument() throws(LedgerError) -> JSONValue {
            let value = try parseValue()
            try skipWhitespace()
            if offset < input.count {
                throw invalid("unexpected \(describe(input[offset])) after the JSON value", at: offset)
            }
            return value
        }

        mutating func parseValue() throws(LedgerError) -> JSONValue {
            try skipWhitespace()
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
            try skipWhitespace()
            if offset < input.count, input[offset] == Byte.closeBracket {
                offset += 1
                depth -= 1
                return .array(elements)
            }
            while true {
                elements.append(try parseValue())
                try skipWhitespace()
                guard offset < input.count else {
                    throw invalid("unexpected end of input in the array opened at byte offset \(start)", at: offset)
                }
                switch input[offset] {
                case Byte.comma:
                    offset += 1
                    try skipWhitespace()
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
            try skipWhitespace()
            if offset < input.count, input[offset] == Byte.closeBrace {
                offset += 1
                depth -= 1
                return .object(JSONObject())
            }
            while true {
                try skipWhitespace()
                guard offset < input.count else {
                    throw invalid("unexpected end of input in the object opened at byte offset \(start)", at: offset)
                }
                guard input[offset] == Byte.quote else {
                    throw invalid("unexpected \(describe(input[offset])) in object, expected a string key", at: offset)
                }
                let keyOffset = offset
                let key = try parseString()
                try skipWhitespace()
                guard offset < input.count, input[offset] == Byte.colon else {
                    let found = offset < input.count ? describe(input[offset]) : "end of input"
                    throw invalid("unexpected \(found) after object key, expected ':'", at: offset)
                }
                offset += 1
                let valueStart = offset
                let value = try parseValue()
                if requiresCanonical && depth == 1 { topLevelMemberValueRanges.append(valueStart..<offset) }
                if arrivedSorted, let previous = keys.last {
                    let comparison = JSONObject.order(previous, key)
                    // I-JSON and JCS need unique names: a duplicate would make the canonical form ambiguous.
                    if comparison == 0 { throw invalid("duplicate object key \(quoted(key))", at: keyOffset) }
                    if comparison > 0 {
                        if requiresCanonical { throw notCanonical("key \(quoted(key)) out of order", at: keyOffset) }
                        arrivedSorted = false
                    }
                }
                keys.append(key)
                values.append(value)
                try skipWhitespace()
                guard offset < input.count else {
                    throw invalid("unexpected end of input in the object opened at byte offset \(start)", at: offset)
                }
                switch input[offset] {
                case Byte.comma:
                    offset += 1
                    try skipWhitespace()
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
                // The common case, plain printable ASCII, scanned with a local position and eight bytes at a time:
                // byte by byte, with `self.offset` stored on every byte, it took about 14 instructions per byte
                // (callgrind, item 9 of Benchmarks/NOTES.md). The byte loop after it finds where the run ends.
                var position = offset
                if let base = input.baseAddress {
                    while input.count - position >= 8 {
                        let word = UInt64(littleEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                        if JSONParser.containsNonPlainByte(word) { break }
                        position += 8
                    }
                }
                while position < input.count {
                    let byte = input[position]
                    guard byte >= 0x20 && byte < 0x80 && byte != Byte.quote && byte != Byte.backslash else { break }
                    position += 1
                }
                offset = position
                guard offset < input.count else { break }
                let byte = input[offset]
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
            case Byte.slash where requiresCanonical:
                throw notCanonical("an escaped '/'", at: escapeOffset)
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
                if requiresCanonical { try checkCanonicalUnicodeEscape(unit, escapeOffset: escapeOffset) }
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

        /// JCS writes `\u` only for the controls that have no short escape, as `\u00` and two lowercase hex digits.
        func checkCanonicalUnicodeEscape(_ unit: UInt16, escapeOffset: Int) throws(LedgerError) {
            let hasShortEscape = unit == 0x08 || unit == 0x09 || unit == 0x0A || unit == 0x0C || unit == 0x0D
            guard unit < 0x20, !hasShortEscape else {
                throw notCanonical("a \\u escape JCS writes otherwise", at: escapeOffset)
            }
            // The cursor is just after the four digits; the first two are zeros, so only the last two can be upper case.
            for digit in input[(offset - 2)..<offset] where digit >= UInt8(ascii: "A") && digit <= UInt8(ascii: "F") {
                throw notCanonical("an upper case hex digit in a \\u escape", at: escapeOffset)
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
                if requiresCanonical && isNegative && magnitude == 0 { throw notCanonical("-0", at: start) }
                return .integer(isNegative ? -magnitude : magnitude)  // "-0" becomes .integer(0).
            }
            let token = UnsafeBufferPointer(rebasing: input[start..<offset])
            let text = String(decoding: token, as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw invalid("number out of the range of an IEEE 754 double", at: start)
            }
            // Ledger documents hold integers; any other number is rare, so it is simply encoded again and compared.
            if requiresCanonical && !CanonicalJSON.encode(.number(value)).elementsEqual(token) {
                throw notCanonical("a number not in its shortest ECMAScript form", at: start)
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

        /// RFC 8259 whitespace only: space, tab, line feed, carriage return. Canonical form has none.
        mutating func skipWhitespace() throws(LedgerError) {
            while offset < input.count {
                switch input[offset] {
                case Byte.space, Byte.tab, Byte.lineFeed, Byte.carriageReturn:
                    if requiresCanonical { throw notCanonical("whitespace", at: offset) }
                    offset += 1
                default: return
                }
            }
        }

        func invalid(_ what: String, at position: Int) -> LedgerError {
            LedgerError(.invalidJSON, "\(what) at byte offset \(position)")
        }

        /// Valid JSON, but not the bytes its canonical encoding would be: stored bytes that were changed.
        func notCanonical(_ what: String, at position: Int) -> LedgerError {
            LedgerError(.integrity, "not in canonical form (RFC 8785): \(what) at byte offset \(position)")
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

extension JSONParser {
    /// True when one of the eight bytes is not plain printable ASCII (a control, a quote, a backslash, or any
    /// byte of 0x80 and above). Each test is exact about whether some byte matches (a borrow can only mark bytes
    /// above one that matched), which is all the caller needs.
    static func containsNonPlainByte(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        func hasZeroByte(_ value: UInt64) -> Bool { (value &- ones) & ~value & highBits != 0 }
        let hasNonASCII = word & highBits != 0
        let hasControl = (word &- ones &* 0x20) & ~word & highBits != 0
        return hasNonASCII || hasControl || hasZeroByte(word ^ (ones &* 0x22))
            || hasZeroByte(word ^ (ones &* 0x5C))
    }
}
