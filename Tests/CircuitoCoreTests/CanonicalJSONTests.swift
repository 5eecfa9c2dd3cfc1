import Foundation
import Testing

@testable import CircuitoCore

// Expected values in this file come from RFC 8785 (sections 3.2.2 to 3.2.4 and Appendix B) and from the W3C
// vc-di-eddsa test vectors on disk. Comparisons are on bytes, never on `String ==`, because Swift compares strings
// by canonical equivalence and JCS is about exact code points.

// MARK: - Helpers

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The code a refusal carries, or nil when the input parses.
private func refusalCode(_ input: [UInt8], maximumDepth: Int = JSONParser.defaultMaximumDepth) -> LedgerError.Code? {
    do {
        _ = try JSONParser.parse(input, maximumDepth: maximumDepth)
        return nil
    } catch {
        return error.code
    }
}

private func refusalMessage(_ input: String) -> String? {
    do {
        _ = try JSONParser.parse(input)
        return nil
    } catch {
        return error.message
    }
}

private func canonical(_ json: String) throws -> [UInt8] {
    CanonicalJSON.encode(try JSONParser.parse(json))
}

/// The shared test vectors folder: from this file up to the package root (the folder holding `Tests`), then
/// `../shared/vectors`. Works from /work/main and from /work/ws-json, which both sit next to /work/shared.
private func sharedVectorsFolder() -> URL {
    var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while folder.lastPathComponent != "Tests" && folder.path != "/" {
        folder = folder.deletingLastPathComponent()
    }
    return folder.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("shared").appendingPathComponent("vectors")
}

/// A vector file's bytes; a missing file fails the test (it must never be skipped silently).
private func vectorBytes(_ relativePath: String) throws -> [UInt8] {
    let url = sharedVectorsFolder().appendingPathComponent(relativePath)
    let data = try #require(FileManager.default.contents(atPath: url.path), "missing test vector \(url.path)")
    return [UInt8](data)
}

// MARK: - RFC 8785 examples

@Suite("RFC 8785 examples")
struct RFC8785ExampleTests {
    /// Section 3.2.2's input, written exactly as in the RFC.
    static let section322Input = #"""
        {
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }
        """#

    @Test("Section 3.2.2/3.2.3: canonical text of the primitive data types example")
    func primitiveDataTypesExample() throws {
        let expected = #"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"#
            + #""string":"\#u{20AC}$\u000f\nA'B\"\\\\\"/"}"#
        #expect(try canonical(Self.section322Input) == bytes(expected))
    }

    @Test("Section 3.2.4: exact UTF-8 bytes of the example")
    func utf8BytesOfExample() throws {
        let hex = """
            7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72
            75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a
            5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31
            65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37
            5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30
            30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d
            """
        let expected = hex.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt8($0, radix: 16) }
        #expect(expected.count == 118)
        #expect(try canonical(Self.section322Input) == expected)
    }

    @Test("Section 3.2.3: properties sorted by UTF-16 code units")
    func sortingExample() throws {
        let input = #"""
            {
              "\u20ac": "Euro Sign",
              "\r": "Carriage Return",
              "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One",
              "\ud83d\ude00": "Emoji: Grinning Face",
              "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"
            }
            """#
        // The RFC's expected order of the values.
        let expectedOrder = [
            "Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis", "Euro Sign",
            "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh",
        ]
        let expected =
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\","
            + "\"\u{F6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20AC}\":\"Euro Sign\","
            + "\"\u{1F600}\":\"Emoji: Grinning Face\",\"\u{FB33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        let output = try canonical(input)
        #expect(output == bytes(expected))

        // The same order read back from the output, independently of the expected text above.
        let reparsed = try JSONParser.parse(output)
        let members = try #require(reparsed.objectValue)
        let valueOrder = members.keys.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) }
            .compactMap { members[$0]?.stringValue }
        #expect(valueOrder == expectedOrder)
    }

    /// Appendix B: IEEE 754 bit patterns and their ECMAScript-compatible JSON form. (The NaN and Infinity rows have
    /// no JSON form: the parser refuses them, see `JSONParserRefusalTests`.)
    static let appendixB: [(bits: UInt64, expected: String)] = [
        (0x0000_0000_0000_0000, "0"),  // Zero
        (0x8000_0000_0000_0000, "0"),  // Minus zero
        (0x0000_0000_0000_0001, "5e-324"),  // Min pos number
        (0x8000_0000_0000_0001, "-5e-324"),  // Min neg number
        (0x7FEF_FFFF_FFFF_FFFF, "1.7976931348623157e+308"),  // Max pos number
        (0xFFEF_FFFF_FFFF_FFFF, "-1.7976931348623157e+308"),  // Max neg number
        (0x4340_0000_0000_0000, "9007199254740992"),  // Max pos int
        (0xC340_0000_0000_0000, "-9007199254740992"),  // Max neg int
        (0x4430_0000_0000_0000, "295147905179352830000"),  // ~2**68
        (0x44B5_2D02_C7E1_4AF5, "9.999999999999997e+22"),
        (0x44B5_2D02_C7E1_4AF6, "1e+23"),
        (0x44B5_2D02_C7E1_4AF7, "1.0000000000000001e+23"),
        (0x444B_1AE4_D6E2_EF4E, "999999999999999700000"),
        (0x444B_1AE4_D6E2_EF4F, "999999999999999900000"),
        (0x444B_1AE4_D6E2_EF50, "1e+21"),
        (0x3EB0_C6F7_A0B5_ED8C, "9.999999999999997e-7"),
        (0x3EB0_C6F7_A0B5_ED8D, "0.000001"),
        (0x41B3_DE43_5555_5553, "333333333.3333332"),
        (0x41B3_DE43_5555_5554, "333333333.33333325"),
        (0x41B3_DE43_5555_5555, "333333333.3333333"),
        (0x41B3_DE43_5555_5556, "333333333.3333334"),
        (0x41B3_DE43_5555_5557, "333333333.33333343"),
        (0xBECB_F647_612F_3696, "-0.0000033333333333333333"),
        (0x4314_3FF3_C1CB_0959, "1424953923781206.2"),  // Round to even
    ]

    @Test("Appendix B: number serialization samples", arguments: RFC8785ExampleTests.appendixB)
    func numberSerialization(bits: UInt64, expected: String) {
        #expect(CanonicalJSON.encodeString(.number(Double(bitPattern: bits))) == expected)
    }

    @Test("Appendix B values survive a parse of their own canonical text", arguments: RFC8785ExampleTests.appendixB)
    func numberReparse(bits: UInt64, expected: String) throws {
        let value = Double(bitPattern: bits)
        let reparsed = try JSONParser.parse(expected)
        switch reparsed {
        case .integer(let integer): #expect(Double(integer) == value)
        case .number(let number): #expect(number == value)
        default: Issue.record("\(expected) did not parse as a number")
        }
    }
}

// MARK: - W3C Data Integrity vectors

@Suite("W3C vc-di-eddsa eddsa-jcs-2022 vectors")
struct JCSDataIntegrityVectorTests {
    // The .txt files end without a newline (checked with xxd), so the bytes are compared as they are.

    @Test("unsigned credential canonicalizes to canonDocJCS.txt")
    func unsignedCredential() throws {
        let document = try JSONParser.parse(try vectorBytes("vc-di-eddsa/unsigned.json"))
        let expected = try vectorBytes("vc-di-eddsa/eddsa-jcs-2022/canonDocJCS.txt")
        #expect(CanonicalJSON.encode(document) == expected)
    }

    @Test("proof configuration canonicalizes to proofCanonJCS.txt")
    func proofConfiguration() throws {
        let configuration = try JSONParser.parse(try vectorBytes("vc-di-eddsa/eddsa-jcs-2022/proofConfigJCS.json"))
        let expected = try vectorBytes("vc-di-eddsa/eddsa-jcs-2022/proofCanonJCS.txt")
        #expect(CanonicalJSON.encode(configuration) == expected)
    }

    @Test("canonical output is a fixed point")
    func canonicalFormIsStable() throws {
        let expected = try vectorBytes("vc-di-eddsa/eddsa-jcs-2022/canonDocJCS.txt")
        #expect(CanonicalJSON.encode(try JSONParser.parse(expected)) == expected)
    }
}

// MARK: - Encoder details

@Suite("Canonical encoder")
struct CanonicalJSONEncoderTests {
    @Test("string escapes follow JCS exactly")
    func stringEscapes() {
        var controls = ""
        for scalar in 0..<0x20 { controls.unicodeScalars.append(Unicode.Scalar(UInt8(scalar))) }
        let expectedControls =
            #"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f"#
            + #"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"#
        #expect(CanonicalJSON.encode(.string(controls)) == bytes("\"" + expectedControls + "\""))

        // Quote and backslash are escaped; '/', U+007F, U+2028, U+2029 and non-ASCII are written literally.
        let literal = "\"\\/\u{7F}\u{2028}\u{2029}é€😀"
        #expect(CanonicalJSON.encode(.string(literal)) == bytes("\"\\\"\\\\/\u{7F}\u{2028}\u{2029}é€😀\""))
    }

    @Test("no whitespace, nested objects sorted, arrays kept in order")
    func structure() throws {
        let input = #" { "b" : [ 3 , 1 , { "z" : 1 , "a" : 2 } ] , "a" : { } , "c" : [ ] } "#
        #expect(try canonical(input) == bytes(#"{"a":{},"b":[3,1,{"a":2,"z":1}],"c":[]}"#))
    }

    @Test("integers print as decimal")
    func integers() {
        let cases: [(Int64, String)] = [
            (0, "0"), (7, "7"), (-7, "-7"), (10, "10"), (1_000_000, "1000000"),
            (9_007_199_254_740_991, "9007199254740991"), (-9_007_199_254_740_991, "-9007199254740991"),
        ]
        for (value, expected) in cases {
            #expect(CanonicalJSON.encodeString(.integer(value)) == expected)
        }
    }

    @Test("an integer built in code beyond 2^53 - 1 prints as the double it rounds to")
    func integerBeyondExactRange() {
        #expect(CanonicalJSON.encodeString(.integer(Int64.max)) == "9223372036854776000")
        #expect(CanonicalJSON.encodeString(.integer(9_007_199_254_740_993)) == "9007199254740992")
    }

    @Test("ECMAScript number layout around its boundaries")
    func numberLayout() {
        let cases: [(Double, String)] = [
            (1.0, "1"), (-1.5, "-1.5"), (0.1, "0.1"), (100, "100"), (1e20, "100000000000000000000"),
            (1e21, "1e+21"), (1.5e21, "1.5e+21"), (1e-6, "0.000001"), (1e-7, "1e-7"), (1.25e-7, "1.25e-7"),
            (123.456, "123.456"), (-0.0, "0"), (1e300, "1e+300"), (2.5e-300, "2.5e-300"),
        ]
        for (value, expected) in cases {
            #expect(CanonicalJSON.encodeString(.number(value)) == expected, "\(value)")
        }
    }

    @Test("key order is UTF-16 code unit order, also where it differs from code point order")
    func utf16KeyOrder() throws {
        let keys = [
            "", "a", "ab", "b", "A", "\u{7F}", "\u{80}", "\u{7FF}", "\u{800}", "\u{D7FF}", "\u{E000}", "\u{FFFD}",
            "\u{FFFF}", "\u{10000}", "\u{1F600}", "\u{10FFFF}", "a\u{FFFF}", "a\u{10000}", "\u{E000}a", "\u{10000}a",
        ]
        var members: JSONObject = [:]
        for (index, key) in keys.enumerated() { members[key] = .integer(Int64(index)) }
        #expect(members.count == keys.count)

        let sortedKeys = keys.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) }
        var expected = "{"
        for (index, key) in sortedKeys.enumerated() {
            if index > 0 { expected += "," }
            expected += "\"\(key)\":\(keys.firstIndex(of: key) ?? -1)"
        }
        expected += "}"
        #expect(CanonicalJSON.encode(.object(members)) == bytes(expected))

        for first in keys {
            for second in keys {
                #expect(
                    CanonicalJSON.precedesInUTF16Order(first, second)
                        == first.utf16.lexicographicallyPrecedes(second.utf16),
                    "\(first.unicodeScalars.map(\.value)) vs \(second.unicodeScalars.map(\.value))")
            }
        }
    }

    @Test("encodeString returns the same bytes as encode")
    func encodeStringMatchesEncode() throws {
        let value = try JSONParser.parse(RFC8785ExampleTests.section322Input)
        #expect(Array(CanonicalJSON.encodeString(value).utf8) == CanonicalJSON.encode(value))
    }
}

// MARK: - Parser acceptance and classification

@Suite("JSON parser")
struct JSONParserAcceptanceTests {
    @Test("integer and number classification")
    func classification() throws {
        #expect(try JSONParser.parse("9007199254740991") == .integer(9_007_199_254_740_991))
        #expect(try JSONParser.parse("-9007199254740991") == .integer(-9_007_199_254_740_991))
        #expect(try JSONParser.parse("9007199254740992") == .number(9_007_199_254_740_992))
        #expect(try JSONParser.parse("-9007199254740992") == .number(-9_007_199_254_740_992))
        #expect(try JSONParser.parse("123456789012345678901234567890") == .number(1.2345678901234568e29))
        #expect(try JSONParser.parse("1.0") == .number(1.0))
        #expect(try JSONParser.parse("1e2") == .number(100))
        #expect(try JSONParser.parse("1E+2") == .number(100))
        #expect(try JSONParser.parse("25e-1") == .number(2.5))
        #expect(try JSONParser.parse("0") == .integer(0))
        #expect(try JSONParser.parse("-0") == .integer(0))
        #expect(try JSONParser.parse("-0.0") == .number(-0.0))
        #expect(try JSONParser.parse("1e-400") == .number(0))  // Underflow rounds to zero; only overflow is refused.
        #expect(try JSONParser.parse("2.2250738585072014e-308") == .number(2.2250738585072014e-308))
    }

    @Test("literals, whitespace and containers")
    func acceptedDocuments() throws {
        #expect(try JSONParser.parse(" \t\r\n true \n") == .bool(true))
        #expect(try JSONParser.parse("false") == .bool(false))
        #expect(try JSONParser.parse("null") == .null)
        #expect(try JSONParser.parse("[]") == .array([]))
        #expect(try JSONParser.parse("{}") == .object([:]))
        #expect(try JSONParser.parse(#"[1, "a", null, [true], {"k": -2.5}]"#) == [1, "a", .null, [true], ["k": .number(-2.5)]])
        #expect(try JSONParser.parse(bytes(#"{"a":{"b":{"c":[]}}}"#)) == ["a": ["b": ["c": []]]])
    }

    @Test("string escapes and UTF-8 decode to the right scalars")
    func strings() throws {
        func scalars(_ json: String) throws -> [UInt32] {
            let value = try JSONParser.parse(json)
            return try #require(value.stringValue).unicodeScalars.map(\.value)
        }
        #expect(try scalars(#""\"\\\/\b\f\n\r\t""#) == [0x22, 0x5C, 0x2F, 0x08, 0x0C, 0x0A, 0x0D, 0x09])
        #expect(try scalars(#""\u0000\u001F\u00e9\u20AC\uFFFF""#) == [0x00, 0x1F, 0xE9, 0x20AC, 0xFFFF])
        #expect(try scalars(#""\uD83D\uDE00""#) == [0x1F600])
        #expect(try scalars(#""\udbff\udfff""#) == [0x10FFFF])
        #expect(try scalars("\"é€😀\u{7F}\"") == [0xE9, 0x20AC, 0x1F600, 0x7F])
        #expect(try scalars(#""a\u0301""#) == [0x61, 0x301])  // No normalization.
        // Bytes are preserved exactly through parse and encode.
        #expect(try canonical(#""\u0065\u0301 and \u00e9""#) == bytes("\"e\u{301} and \u{E9}\""))
    }

    @Test("String and byte entry points agree")
    func stringOverload() throws {
        let text = RFC8785ExampleTests.section322Input
        #expect(try JSONParser.parse(text) == (try JSONParser.parse(bytes(text))))
    }

    @Test("round trip: parse(encode(value)) == value")
    func roundTrip() throws {
        let values: [JSONValue] = [
            .null, true, 0, -42, .number(0.5), .number(-1.25e-9), .number(1e300), "",
            "quote \" backslash \\ controls \u{0}\u{1F} \t\n emoji 😀 \u{2028}",
            [1, [2, [3, [.number(4.5)]]], [:], []],
            [
                "z": ["nested": ["deeper": [.null, false, "x"]]], "a": .number(3.14159),
                "\u{1F600}": 9_007_199_254_740_991, "\u{E000}": -9_007_199_254_740_991, "": [],
            ],
        ]
        for value in values {
            let encoded = CanonicalJSON.encode(value)
            #expect(try JSONParser.parse(encoded) == value, "\(CanonicalJSON.encodeString(value))")
            // And the canonical form is a fixed point.
            #expect(CanonicalJSON.encode(try JSONParser.parse(encoded)) == encoded)
        }
        // Integral doubles are the one expected exception: 1.0 is written "1", which reads back as an integer.
        #expect(try JSONParser.parse(CanonicalJSON.encode(.number(1.0))) == .integer(1))
    }

    @Test("containsNonIntegerNumber")
    func nonIntegerDetection() throws {
        #expect(try JSONParser.parse(#"{"a":[1,{"b":2.5}]}"#).containsNonIntegerNumber)
        #expect(try !JSONParser.parse(#"{"a":[1,{"b":2}],"c":"2.5"}"#).containsNonIntegerNumber)
        #expect(try JSONParser.parse("[1e2]").containsNonIntegerNumber)
        #expect(try JSONParser.parse("9007199254740992").containsNonIntegerNumber)
        #expect(try !JSONParser.parse("-0").containsNonIntegerNumber)
    }

    @Test("nesting up to the limit is accepted")
    func depthLimitAccepted() throws {
        let deepest = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(refusalCode(bytes(deepest)) == nil)
        #expect(refusalCode(bytes("[[1]]"), maximumDepth: 2) == nil)
        #expect(refusalCode(bytes(#"{"a":{"b":1}}"#), maximumDepth: 2) == nil)
        #expect(refusalCode(bytes("1"), maximumDepth: 0) == nil)
    }
}

// MARK: - Refusals

@Suite("JSON parser refusals")
struct JSONParserRefusalTests {
    struct Malformed: CustomTestStringConvertible, Sendable {
        let reason: String
        let input: [UInt8]
        init(_ reason: String, _ text: String) {
            self.reason = reason
            self.input = Array(text.utf8)
        }
        init(_ reason: String, bytes: [UInt8]) {
            self.reason = reason
            self.input = bytes
        }
        var testDescription: String { reason }
    }

    static let malformed: [Malformed] = [
        // Document structure.
        Malformed("empty input", ""),
        Malformed("whitespace only", " \n\t "),
        Malformed("two values", "1 2"),
        Malformed("trailing garbage after object", "{} x"),
        Malformed("extra closing bracket", "[]]"),
        Malformed("trailing garbage after literal", "truex"),
        Malformed("byte order mark", bytes: [0xEF, 0xBB, 0xBF, 0x31]),
        Malformed("non-JSON whitespace (form feed)", "\u{0C}1"),
        Malformed("non-JSON whitespace (no-break space)", "\u{A0}1"),
        // Trailing commas and comments.
        Malformed("trailing comma in array", "[1,]"),
        Malformed("trailing comma in object", #"{"a":1,}"#),
        Malformed("leading comma", "[,1]"),
        Malformed("double comma", "[1,,2]"),
        Malformed("line comment", "// c\n1"),
        Malformed("block comment", "/* c */ 1"),
        Malformed("comment after value", "[1] // c"),
        // Containers.
        Malformed("unterminated array", "[1"),
        Malformed("unterminated object", #"{"a":1"#),
        Malformed("missing comma in array", "[1 2]"),
        Malformed("missing colon", #"{"a" 1}"#),
        Malformed("missing value", #"{"a":}"#),
        Malformed("unquoted key", "{a:1}"),
        Malformed("number key", "{1:1}"),
        Malformed("single-quoted string", "'a'"),
        Malformed("mismatched brackets", "[1}"),
        // Literals.
        Malformed("truncated null", "nul"),
        Malformed("capitalized literal", "True"),
        Malformed("NaN", "NaN"),
        Malformed("Infinity", "Infinity"),
        Malformed("negative Infinity", "-Infinity"),
        Malformed("undefined", "undefined"),
        // Numbers.
        Malformed("leading zero", "01"),
        Malformed("negative leading zero", "-01"),
        Malformed("double zero", "00"),
        Malformed("leading zero before fraction", "00.5"),
        Malformed("plus sign", "+1"),
        Malformed("lone minus", "-"),
        Malformed("missing integer part", ".5"),
        Malformed("missing fraction digits", "1."),
        Malformed("missing exponent digits", "1e"),
        Malformed("missing signed exponent digits", "1e+"),
        Malformed("hexadecimal", "0x10"),
        Malformed("overflowing exponent", "1e400"),
        Malformed("overflowing negative exponent", "-1e400"),
        Malformed("overflowing integer", String(repeating: "9", count: 400)),
        // Strings.
        Malformed("unterminated string", #""abc"#),
        Malformed("invalid escape", #""\x""#),
        Malformed("escaped apostrophe", #""\'""#),
        Malformed("short unicode escape", #""\u12""#),
        Malformed("non-hex unicode escape", #""\u12G4""#),
        Malformed("escape at end of input", #""\"#),
        Malformed("lone high surrogate", #""\uD83D""#),
        Malformed("lone low surrogate", #""\uDE00""#),
        Malformed("high surrogate then non-surrogate escape", #""\uD83D\u0041""#),
        Malformed("high surrogate then character", #""\uD83Dx""#),
        Malformed("two high surrogates", #""\uD83D\uD83D""#),
        Malformed("reversed surrogate pair", #""\uDE00\uD83D""#),
        Malformed("unescaped control character", "\"a\u{01}b\""),
        Malformed("unescaped tab", "\"a\tb\""),
        Malformed("unescaped newline", "\"a\nb\""),
        Malformed("unescaped NUL", bytes: [0x22, 0x00, 0x22]),
        // Invalid UTF-8.
        Malformed("invalid byte 0xFF", bytes: [0x22, 0xFF, 0x22]),
        Malformed("lone continuation byte", bytes: [0x22, 0x80, 0x22]),
        Malformed("overlong encoding of '/'", bytes: [0x22, 0xC0, 0xAF, 0x22]),
        Malformed("overlong three-byte encoding", bytes: [0x22, 0xE0, 0x80, 0xAF, 0x22]),
        Malformed("encoded surrogate", bytes: [0x22, 0xED, 0xA0, 0x80, 0x22]),
        Malformed("truncated sequence", bytes: [0x22, 0xE2, 0x82, 0x22]),
        Malformed("truncated sequence at end of input", bytes: [0x22, 0xE2, 0x82]),
        Malformed("beyond U+10FFFF", bytes: [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22]),
        Malformed("invalid byte outside a string", bytes: [0xFF]),
        // Duplicate keys.
        Malformed("duplicate key", #"{"a":1,"a":2}"#),
        Malformed("duplicate key with equal values", #"{"a":1,"a":1}"#),
        Malformed("duplicate key in nested object", #"[{"x":{"b":1,"c":2,"b":3}}]"#),
        Malformed("duplicate key through an escape", #"{"a":1,"\u0061":2}"#),
    ]

    @Test("malformed input is refused as invalid_json", arguments: JSONParserRefusalTests.malformed)
    func refused(_ malformedInput: Malformed) {
        #expect(refusalCode(malformedInput.input) == .invalidJSON)
    }

    @Test("nesting beyond the limit is refused as too_large")
    func depthLimitRefused() {
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(refusalCode(bytes(tooDeep)) == .tooLarge)
        #expect(refusalCode(bytes("[[[1]]]"), maximumDepth: 2) == .tooLarge)
        #expect(refusalCode(bytes(#"{"a":{"b":{"c":1}}}"#), maximumDepth: 2) == .tooLarge)
        #expect(refusalCode(bytes("[]"), maximumDepth: 0) == .tooLarge)
        // A hostile document is refused at the limit, long before the stack could be exhausted.
        #expect(refusalCode(Array(repeating: UInt8(ascii: "["), count: 1_000_000)) == .tooLarge)
    }

    @Test("messages say what went wrong and at which byte offset")
    func messages() {
        #expect(refusalMessage("[1,]") == "trailing comma in array at byte offset 3")
        #expect(refusalMessage("01") == "leading zero in number at byte offset 0")
        #expect(refusalMessage(#"{"a":1,"a":2}"#) == #"duplicate object key "a" at byte offset 7"#)
        #expect(refusalMessage(#"["\uDE00"]"#) == "lone low surrogate escape in string at byte offset 2")
        #expect(refusalMessage("1 x") == "unexpected 'x' after the JSON value at byte offset 2")
        #expect(refusalMessage("[1e400]") == "number out of the range of an IEEE 754 double at byte offset 1")
        let depthError = refusalMessage(String(repeating: "[", count: 65))
        #expect(depthError == "JSON nesting deeper than 64 levels at byte offset 64")
    }
}

// MARK: - Canonical parse

/// `parseCanonical` must accept exactly what `parse` followed by "encoding it again gives the same bytes" accepts
/// (that check is what it replaces in a record's parse), with the same value.
@Suite("Canonical parse")
struct CanonicalParseTests {
    /// The reference: parse, then encode again and compare.
    static func referenceValue(_ input: [UInt8]) -> JSONValue? {
        guard let value = try? JSONParser.parse(input), CanonicalJSON.encode(value) == input else { return nil }
        return value
    }

    static let documents: [JSONValue] = [
        .null, true, false, 0, -42, 9_007_199_254_740_991, .number(0.5), .number(-1.25e-9), .number(1e21), .number(1e300),
        .number(9_007_199_254_740_992), "", "plain", "quote \" backslash \\ slash / controls \u{0}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F} é 😀 \u{E000} \u{2028}",
        [1, [2, [3, [.number(4.5)]]], [:], []],
        ["z": ["nested": ["deeper": [.null, false, "x"]]], "a": .number(3.14159), "\u{1F600}": 1, "\u{E000}": -1, "": [], "b": "\u{1}"],
        ["event": ["actor": "city", "body": ["amount": 1250, "note": "a \"b\" c"], "v": 1], "recorded_at": "2026-11-22T10:00:01.000Z", "seq": 7, "sig": "AA=="],
    ]

    @Test("canonical documents are accepted, with their values and where each member value lies")
    func canonicalDocuments() throws {
        for value in Self.documents {
            let encoded = CanonicalJSON.encode(value)
            let document = try JSONParser.parseCanonical(encoded)
            #expect(document.value == (try JSONParser.parse(encoded)), "\(CanonicalJSON.encodeString(value))")
            if case .object(let members) = document.value {
                #expect(document.memberValueRanges.count == members.count)
                for (index, range) in document.memberValueRanges.enumerated() {
                    #expect(Array(encoded[range]) == CanonicalJSON.encode(members.values[index]))
                }
            } else {
                #expect(document.memberValueRanges.isEmpty)
            }
        }
    }

    @Test("what JCS would not write is refused as integrity, at its offset", arguments: [
        (" 1", "whitespace at byte offset 0"), ("1 ", "whitespace at byte offset 1"), (#"{"a": 1}"#, "whitespace at byte offset 5"),
        ("[1,\n2]", "whitespace at byte offset 3"), (#"{"b":1,"a":2}"#, #"key "a" out of order at byte offset 7"#),
        (#"["\/"]"#, "an escaped '/' at byte offset 2"), (#""\u0041""#, "a \\u escape JCS writes otherwise at byte offset 1"),
        (#""\u000a""#, "a \\u escape JCS writes otherwise at byte offset 1"), (#""\u001F""#, "an upper case hex digit in a \\u escape at byte offset 1"),
        (#""\ud83d\ude00""#, "a \\u escape JCS writes otherwise at byte offset 1"), ("-0", "-0 at byte offset 0"), ("[1.0]", "a number not in its shortest ECMAScript form at byte offset 1"),
        ("1e2", "a number not in its shortest ECMAScript form at byte offset 0"), ("9007199254740993", "a number not in its shortest ECMAScript form at byte offset 0"),
        ("0.10", "a number not in its shortest ECMAScript form at byte offset 0"), ("1E+21", "a number not in its shortest ECMAScript form at byte offset 0"),
    ])
    func refusals(input: String, message: String) {
        do {
            _ = try JSONParser.parseCanonical(Array(input.utf8))
            Issue.record("\(input) was accepted")
        } catch {
            #expect(error.code == .integrity, "\(input)")
            #expect(error.message == "not in canonical form (RFC 8785): " + message, "\(input)")
        }
        // Each of them is valid JSON: only its form is refused.
        #expect((try? JSONParser.parse(Array(input.utf8))) != nil, "\(input)")
    }

    @Test("invalid JSON keeps its own refusal")
    func invalidJSON() {
        for input in ["", "[1,]", #"{"a":1,"a":2}"#, "01", #""\x""#, "[1]x"] {
            #expect(throws: LedgerError.self) { try JSONParser.parseCanonical(Array(input.utf8)) }
            do { _ = try JSONParser.parseCanonical(Array(input.utf8)) } catch { #expect(error.code == .invalidJSON, "\(input)") }
        }
    }

    /// Every one-byte change, deletion and insertion of the documents: accepted exactly when the reference accepts,
    /// with the same value.
    @Test("accepts exactly what parsing and encoding again accepts, over every one-byte change")
    func againstReference() {
        let replacements: [UInt8] = Array(" \n\"\\/,:{}[]0159-.eEuaAfF".utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9]
        var variants: [[UInt8]] = []
        for value in Self.documents {
            let bytes = CanonicalJSON.encode(value)
            variants.append(bytes)
            variants += oneByteVariants(of: bytes, replacements: replacements, insertions: Array(" 0\\".utf8))
        }
        var acceptedCount = 0
        for variant in variants {
            let reference = Self.referenceValue(variant)
            let value = try? JSONParser.parseCanonical(variant).value
            #expect(value == reference, "\(String(decoding: variant, as: UTF8.self))")
            if value != nil { acceptedCount += 1 }
        }
        // Some changes are still canonical (another digit, another letter): both sides must have seen some.
        #expect(acceptedCount > 100)
        #expect(variants.count > 5_000)
    }
}

@Suite("JSON parser: strings scanned eight bytes at a time")
struct PlainRunScanTests {
    static func isPlain(_ byte: UInt8) -> Bool { byte >= 0x20 && byte < 0x80 && byte != 0x22 && byte != 0x5C }

    static func word(_ bytes: [UInt8]) -> UInt64 {
        bytes.enumerated().reduce(0) { word, element in word | UInt64(element.element) << (8 * UInt64(element.offset)) }
    }

    @Test("every byte value at every place, and random words, against the byte-wise rule")
    func againstByteRule() {
        for position in 0..<8 {
            for value in 0...255 {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 8)
                bytes[position] = UInt8(value)
                #expect(JSONParser.containsNonPlainByte(Self.word(bytes)) == !Self.isPlain(UInt8(value)), "byte \(value) at \(position)")
            }
        }
        var generator = SystemRandomNumberGenerator()
        // Mostly plain bytes with now and then one of the others, so that both answers are common.
        let others: [UInt8] = [0x00, 0x01, 0x1F, 0x22, 0x5C, 0x7F, 0x80, 0xC3, 0xFF]
        for _ in 0..<20_000 {
            let bytes = (0..<8).map { _ in
                Int.random(in: 0..<12, using: &generator) == 0 ? others.randomElement(using: &generator) ?? 0 : UInt8.random(in: 0x20...0x7F, using: &generator)
            }
            #expect(JSONParser.containsNonPlainByte(Self.word(bytes)) == !bytes.allSatisfy(Self.isPlain), "\(bytes)")
        }
    }

    @Test("strings of every length up to 40 end where they should, with the special byte at every place")
    func stringsOfEveryLength() throws {
        for length in 0...40 {
            let plain = String(repeating: "x", count: length)
            #expect(try JSONParser.parse(Array("\"\(plain)\"".utf8)) == .string(plain))
            for position in 0..<max(length, 1) where length > 0 {
                for special in ["\\\"", "\\\\", "é", "\\n"] {
                    var characters = Array(plain).map(String.init)
                    characters[position] = special
                    let text = "\"" + characters.joined() + "\""
                    let expected = try #require(try? JSONParser.parse(text))
                    #expect(try JSONParser.parse(Array(text.utf8)) == expected)
                    #expect(expected.stringValue?.count == length, "\(text)")
                }
                var unescaped = Array("\"\(plain)\"".utf8)
                unescaped[position + 1] = 0x0A
                #expect(throws: LedgerError.self) { try JSONParser.parse(unescaped) }
            }
        }
    }
}
