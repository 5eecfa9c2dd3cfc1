/// `text` with every control character (C0, DEL, C1) and every bidirectional override written as `\u{…}`, so
/// that it stays on its line and shows what it holds: for text meant for a person (a terminal, a log line) that may
/// quote input, which must not forge lines of its own, drive the terminal or reorder what is shown. `kept` are
/// written as they are (LF and TAB, for text shown over several lines).
public func printable(_ text: String, keeping kept: Set<Unicode.Scalar> = []) -> String {
    var result = ""
    result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars {
        let value = scalar.value
        let hidden = value < 0x20 || (0x7F...0x9F).contains(value) || (0x202A...0x202E).contains(value)
            || (0x2066...0x2069).contains(value) || value == 0x200E || value == 0x200F || value == 0x061C
            || value == 0x2028 || value == 0x2029
        if hidden && !kept.contains(scalar) {
            result += "\\u{" + String(value, radix: 16, uppercase: true) + "}"
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}
