/// `text` with every control character (C0, DEL, C1) and every bidirectional override written as `\u{…}`, so
/// that it stays on its line and shows what it holds: for text meant for a person (a terminal, a log line) that may
/// quote input, which must not forge lines of its own, drive the terminal or reorder what is shown. `kept` are
/// written as they are (LF and TAB, for text shown over several lines).
public func printable(_ text: String, keeping kept: Set<Unicode.Scalar> = []) -> String {
    var result = ""
    result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars {
        if drivesATerminal(scalar) && !kept.contains(scalar) {
            result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}

/// JSON text (canonical or not) as a terminal should show it: inside its strings, what `printable` hides is written
/// as a JSON `\u` escape (lowercase hex, as RFC 8785 writes the C0 controls), so it is still JSON of the same value,
/// but no longer canonical bytes. Canonical JSON escapes only C0, `"` and `\`: a signer's DEL, C1 control (U+009B is
/// CSI to some terminals) or bidirectional override would otherwise reach the terminal raw. Outside strings, where
/// JSON holds none of them but white space, LF and TAB are kept and the rest escaped too (bytes that are not JSON, a
/// damaged record, must not drive the terminal either). Bytes that are not UTF-8 are shown as U+FFFD, as a UTF-8
/// terminal would show them, so that a lone C1 byte does not reach one that reads bytes.
public func printableJSON(_ json: some Collection<UInt8>) -> [UInt8] {
    var result: [UInt8] = []
    result.reserveCapacity(json.count)
    var inString = false
    var afterBackslash = false
    for scalar in String(decoding: json, as: UTF8.self).unicodeScalars {
        if drivesATerminal(scalar) && (inString || (scalar != "\n" && scalar != "\t")) {
            // Every such scalar is at most U+2069: four hex digits, no surrogate pair.
            let hex = String(scalar.value, radix: 16)
            result += Array("\\u".utf8) + Array(repeating: UInt8(ascii: "0"), count: 4 - hex.utf8.count) + Array(hex.utf8)
            afterBackslash = false
            continue
        }
        if inString {
            if afterBackslash {
                afterBackslash = false
            } else if scalar == "\\" {
                afterBackslash = true
            } else if scalar == "\"" {
                inString = false
            }
        } else if scalar == "\"" {
            inString = true
        }
        Unicode.UTF8.encode(scalar) { result.append($0) }
    }
    return result
}

/// Whether `scalar` acts on a terminal or on how text around it is shown when written raw: a control character (C0,
/// DEL, C1), a bidirectional mark, embedding, override or isolate, or a line or paragraph separator.
func drivesATerminal(_ scalar: Unicode.Scalar) -> Bool {
    let value = scalar.value
    return value < 0x20 || (0x7F...0x9F).contains(value) || (0x202A...0x202E).contains(value)
        || (0x2066...0x2069).contains(value) || value == 0x200E || value == 0x200F || value == 0x061C
        || value == 0x2028 || value == 0x2029
}
