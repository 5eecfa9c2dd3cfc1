import CircuitoCore
import Testing

/// JSON shown on a terminal (`printableJSON`): what would drive the terminal is escaped inside strings, so the text is
/// still JSON of the same value; everything else is left byte for byte.
@Suite("printableJSON: JSON for a terminal")
struct PrintableJSONTests {
    static func shown(_ text: String) -> String { String(decoding: printableJSON(Array(text.utf8)), as: UTF8.self) }

    @Test("DEL, C1 controls, bidirectional controls and separators inside strings become \\u escapes of the same value; other text, multi-byte included, is kept")
    func escapesInsideStrings() throws {
        let value: JSONValue = [
            "name": .string("Città\u{9B}2J\u{202E}\u{7F}\u{200E}\u{200F}\u{061C}\u{2066}\u{2069}\u{2028}\u{2029}\u{85}🌍"),
            "note": .string("a \"quoted\u{202A}\" \\\u{9B} tab\t"),
        ]
        let canonical = CanonicalJSON.encode(value)
        let shown = String(decoding: printableJSON(canonical), as: UTF8.self)
        #expect(
            shown == #"{"name":"Città\u009b2J\u202e\u007f\u200e\u200f\u061c\u2066\u2069\u2028\u2029\u0085🌍","note":"a \"quoted\u202a\" \\\u009b tab\t"}"#,
            "\(shown)")
        #expect(try JSONParser.parse(shown) == value)
        // Nothing to escape: the canonical bytes as they are.
        let plain = CanonicalJSON.encode(["name": "Città di Torino 🌍", "keys": ["z6Mk"], "n": 5])
        #expect(printableJSON(plain) == plain)
    }

    @Test("text that is not JSON (a damaged record) reaches no terminal raw either: controls outside strings escaped but LF and TAB, bytes that are not UTF-8 shown as U+FFFD")
    func textThatIsNotJSON() {
        #expect(Self.shown("{}\r\u{1B}[2K\u{9B}\n\t[]") == #"{}\u000d\u001b[2K\u009b"# + "\n\t[]")
        // A lone C1 byte, and a sequence cut short, are never written as they are.
        #expect(printableJSON([0x22, 0x9B, 0x22, 0x5B, 0xE2, 0x80, 0x5D]) == Array("\"\u{FFFD}\"[\u{FFFD}]".utf8))
    }
}
