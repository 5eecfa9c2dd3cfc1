/// RFC 8785 JSON Canonicalization Scheme (JCS): the one byte sequence that hashes and signatures are computed over.
///
/// - Object members are sorted by their keys' UTF-16 code units (RFC 8785 section 3.2.3), recursively; array order
///   is kept.
/// - No whitespace is written.
/// - Strings are escaped as ECMAScript's `JSON.stringify` does (section 3.2.2.2): `\"`, `\\`, `\b`, `\t`, `\n`,
///   `\f`, `\r`, other controls below U+0020 as `\u00xx` in lowercase hex; everything else is literal UTF-8.
/// - Numbers use ECMAScript's Number.prototype.toString (section 3.2.2.3).
public enum CanonicalJSON {
    /// The canonical UTF-8 bytes of `value`.
    public static func encode(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        // Most ledger documents fit; larger ones grow geometrically from here.
        output.reserveCapacity(1024)
        write(value, into: &output)
        return output
    }

    /// Whether two values have the same canonical bytes: equality as the ledger stores and hashes values. Unlike
    /// `JSONValue`'s `==`, whose strings compare as Swift's `String` does (canonically equivalent Unicode texts are
    /// equal), two texts in different Unicode normalisations differ here.
    public static func sameBytes(_ first: JSONValue, _ second: JSONValue) -> Bool {
        encode(first) == encode(second)
    }

    /// The canonical form of `value` as a string (the same bytes as `encode`).
    public static func encodeString(_ value: JSONValue) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    /// Writes one object member by member, for documents whose members are fixed (events, records, lots): no
    /// object is built. The caller writes the members in RFC 8785 order; their names are plain ASCII, for which that
    /// order is byte order (checked in debug builds).
    public struct ObjectWriter {
        private var output: [UInt8] = []
        private var previousName: StaticString?
        private var finished = false

        public init(reservingCapacity capacity: Int) {
            output.reserveCapacity(capacity)
            output.append(0x7B)  // {
        }

        public mutating func member(_ name: StaticString, _ value: JSONValue) {
            writeName(name)
            CanonicalJSON.write(value, into: &output)
        }

        /// A member whose value is already in canonical form.
        public mutating func member(_ name: StaticString, canonicalBytes: [UInt8]) {
            writeName(name)
            output += canonicalBytes
        }

        /// The object's bytes; nothing may be written after. `mutating`, not `consuming`: a caller's `var` passed to a
        /// consuming method is copied, and the closing brace appended to the shared copy then copied the whole
        /// buffer, one more allocation per object (four micro-benchmarks counted it).
        public mutating func finish() -> [UInt8] {
            assert(!finished, "an object is finished once")
            finished = true
            output.append(0x7D)  // }
            return output
        }

        private mutating func writeName(_ name: StaticString) {
            assert(!finished, "no member after the object is finished")
            assert(previousName.map { Self.precedes($0, name) } ?? true, "members are written in canonical order")
            if previousName != nil { output.append(0x2C) }  // ,
            previousName = name
            output.append(0x22)  // "
            name.withUTF8Buffer { output += $0 }
            output += #"":"#.utf8
        }

        private static func precedes(_ first: StaticString, _ second: StaticString) -> Bool {
            first.withUTF8Buffer { firstBytes in
                second.withUTF8Buffer { secondBytes in firstBytes.lexicographicallyPrecedes(secondBytes) }
            }
        }
    }

    // MARK: Values

    private static func write(_ value: JSONValue, into output: inout [UInt8]) {
        switch value {
        case .null:
            appendASCII("null", to: &output)
        case .bool(let flag):
            appendASCII(flag ? "true" : "false", to: &output)
        case .integer(let integer):
            writeInteger(integer, into: &output)
        case .number(let number):
            writeNumber(number, into: &output)
        case .string(let string):
            writeString(string, into: &output)
        case .array(let elements):
            output.append(0x5B)  // [
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(0x2C) }  // ,
                write(element, into: &output)
            }
            output.append(0x5D)  // ]
        case .object(let members):
            output.append(0x7B)  // {
            // Members are kept in canonical order (JSONObject), so nothing is sorted here.
            for index in members.keys.indices {
                if index > 0 { output.append(0x2C) }  // ,
                writeString(members.keys[index], into: &output)
                output.append(0x3A)  // :
                write(members.values[index], into: &output)
            }
            output.append(0x7D)  // }
        }
    }

    private static func appendASCII(_ text: StaticString, to output: inout [UInt8]) {
        output.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    // MARK: Key order

    /// True when `first` sorts before `second` by UTF-16 code units, as RFC 8785 section 3.2.3 requires.
    ///
    /// Swift's `<` on strings is not that order (it follows Unicode canonical equivalence), and transcoding every key
    /// to UTF-16 is slow, so this compares UTF-8 bytes, which order like code points, and fixes the one place where
    /// code point order and UTF-16 order disagree: U+E000...U+FFFF (one UTF-16 unit, 0xE000 or more) sort *after*
    /// U+10000 and above (surrogates 0xD800...0xDFFF). At the first differing byte both strings are at the same
    /// position inside a character, so if both bytes are lead bytes of those two ranges (EE/EF versus F0...F4),
    /// the supplementary character comes first. Everywhere else byte order already equals UTF-16 order.
    static func precedesInUTF16Order(_ first: String, _ second: String) -> Bool {
        JSONObject.order(first, second) < 0
    }

    /// The order of two UTF-8 strings by their UTF-16 code units: negative, zero (the same bytes) or positive.
    static func compareInUTF16Order(_ firstBytes: UnsafeBufferPointer<UInt8>, _ secondBytes: UnsafeBufferPointer<UInt8>) -> Int {
        let sharedCount = min(firstBytes.count, secondBytes.count)
        var index = 0
        while index < sharedCount {
            let firstByte = firstBytes[index]
            let secondByte = secondBytes[index]
            if firstByte != secondByte {
                if firstByte >= 0xEE && secondByte >= 0xEE {
                    let firstIsSupplementary = firstByte >= 0xF0
                    let secondIsSupplementary = secondByte >= 0xF0
                    if firstIsSupplementary != secondIsSupplementary { return firstIsSupplementary ? -1 : 1 }
                }
                return firstByte < secondByte ? -1 : 1
            }
            index += 1
        }
        return firstBytes.count - secondBytes.count
    }

    // MARK: Strings

    private static func writeString(_ string: String, into output: inout [UInt8]) {
        output.append(0x22)  // "
        var string = string
        string.withUTF8 { bytes in
            // Copy runs of bytes that need no escape in one append each.
            var runStart = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                appendEscape(for: byte, to: &output)
                runStart = index + 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        output.append(0x22)  // "
    }

    private static func appendEscape(for byte: UInt8, to output: inout [UInt8]) {
        output.append(0x5C)  // \
        switch byte {
        case 0x22: output.append(0x22)  // \"
        case 0x5C: output.append(0x5C)  // \\
        case 0x08: output.append(UInt8(ascii: "b"))
        case 0x09: output.append(UInt8(ascii: "t"))
        case 0x0A: output.append(UInt8(ascii: "n"))
        case 0x0C: output.append(UInt8(ascii: "f"))
        case 0x0D: output.append(UInt8(ascii: "r"))
        default:
            // Other controls: \u00xx with lowercase hex, as ECMAScript writes them.
            let hexDigits: StaticString = "0123456789abcdef"
            output.append(UInt8(ascii: "u"))
            output.append(UInt8(ascii: "0"))
            output.append(UInt8(ascii: "0"))
            output.append(hexDigits.utf8Start[Int(byte >> 4)])
            output.append(hexDigits.utf8Start[Int(byte & 0x0F)])
        }
    }

    // MARK: Numbers

    /// Integers within ±(2^53 − 1) (everything the parser makes) print as plain decimal, which is also what
    /// ECMAScript prints for them. A larger `.integer` can only be built in code; JCS numbers are IEEE 754 doubles,
    /// so it is written as the double it rounds to, exactly as any other JCS implementation would write it.
    private static func writeInteger(_ value: Int64, into output: inout [UInt8]) {
        guard value.magnitude <= JSONValue.maximumExactInteger.magnitude else {
            writeNumber(Double(value), into: &output)
            return
        }
        if value < 0 { output.append(0x2D) }  // -
        var remaining = value.magnitude
        var digitCount = 1
        while remaining >= 10 {
            remaining /= 10
            digitCount += 1
        }
        // Reserve the digits' places, then fill them from the right.
        let start = output.count
        output.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digitCount))
        remaining = value.magnitude
        var position = start + digitCount - 1
        while remaining > 0 {
            output[position] = UInt8(ascii: "0") + UInt8(remaining % 10)
            remaining /= 10
            position -= 1
        }
    }

    /// ECMAScript Number.prototype.toString (ECMA-262 Number::toString, RFC 8785 section 3.2.2.3).
    ///
    /// ECMAScript picks the shortest digit string that reads back as the same double (the nearest one, ties to even);
    /// Swift's `description` produces the same digits, so only the layout has to be redone: with digits d1...dk and
    /// the value 0.d1...dk × 10^n,
    /// - k ≤ n ≤ 21: the digits then n − k zeros ("1e+21" starts at n = 22);
    /// - 0 < n ≤ 21: a decimal point after n digits;
    /// - −6 < n ≤ 0: "0." then −n zeros then the digits ("0.000001" is the smallest);
    /// - otherwise: d1[.d2...dk]e±(n − 1).
    private static func writeNumber(_ value: Double, into output: inout [UInt8]) {
        precondition(value.isFinite, "CanonicalJSON: NaN and Infinity have no JSON form; JSONParser never makes them")
        if value == 0 {
            output.append(UInt8(ascii: "0"))  // Both 0 and -0 print as "0".
            return
        }
        if value < 0 { output.append(0x2D) }  // -
        let (digits, pointPosition) = shortestDigits(of: value.magnitude)
        let digitCount = digits.count
        let zero = UInt8(ascii: "0")
        if digitCount <= pointPosition && pointPosition <= 21 {
            output.append(contentsOf: digits)
            output.append(contentsOf: repeatElement(zero, count: pointPosition - digitCount))
        } else if 0 < pointPosition && pointPosition <= 21 {
            output.append(contentsOf: digits[0..<pointPosition])
            output.append(UInt8(ascii: "."))
            output.append(contentsOf: digits[pointPosition...])
        } else if -6 < pointPosition && pointPosition <= 0 {
            output.append(zero)
            output.append(UInt8(ascii: "."))
            output.append(contentsOf: repeatElement(zero, count: -pointPosition))
            output.append(contentsOf: digits)
        } else {
            output.append(digits[0])
            if digitCount > 1 {
                output.append(UInt8(ascii: "."))
                output.append(contentsOf: digits[1...])
            }
            let exponent = pointPosition - 1
            output.append(UInt8(ascii: "e"))
            output.append(exponent < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            writeInteger(Int64(exponent.magnitude), into: &output)
        }
    }

    /// The shortest round-trip decimal digits of a positive finite double, without leading or trailing zeros, and
    /// n such that the value is 0.digits × 10^n. Read back from Swift's `description`, which has the forms
    /// "123.45", "0.001", "1e-07", "1.5e+300" and "9007199254740992.0".
    private static func shortestDigits(of value: Double) -> (digits: [UInt8], pointPosition: Int) {
        var digits: [UInt8] = []
        digits.reserveCapacity(20)
        var digitsBeforePoint: Int?
        var exponent = 0
        var exponentIsNegative = false
        var readingExponent = false
        for byte in value.description.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if readingExponent {
                    exponent = exponent * 10 + Int(byte - UInt8(ascii: "0"))
                } else {
                    digits.append(byte)
                }
            case UInt8(ascii: "."):
                digitsBeforePoint = digits.count
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                readingExponent = true
                if digitsBeforePoint == nil { digitsBeforePoint = digits.count }
            case UInt8(ascii: "-"):
                exponentIsNegative = true  // Only an exponent's sign: the value is positive.
            default:
                break  // "+" of the exponent.
            }
        }
        var pointPosition = (digitsBeforePoint ?? digits.count) + (exponentIsNegative ? -exponent : exponent)
        // Leading zeros ("0.001") move the point; trailing zeros ("…992.0") carry no information.
        let leadingZeros = digits.prefix { $0 == UInt8(ascii: "0") }.count
        pointPosition -= leadingZeros
        digits.removeFirst(leadingZeros)
        while digits.last == UInt8(ascii: "0") { digits.removeLast() }
        return (digits, pointPosition)
    }
}
