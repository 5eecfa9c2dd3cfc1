/// Standard base64 with padding (RFC 4648 section 4), strict on input: the text must be exactly what encoding
/// its bytes gives, so that every byte string has one text form.
///
/// Written out rather than through Foundation's `Data`: every record read and written carries a signature in it, and
/// Foundation's decoder, checked by encoding its result again, took about 5 k more instructions per record than this
/// one (callgrind, item 9 of `Benchmarks/NOTES.md`).
public enum Base64 {
    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    private static let padding = UInt8(ascii: "=")

    public static func encode(_ bytes: [UInt8]) -> String {
        let textCount = (bytes.count + 2) / 3 * 4
        return String(unsafeUninitializedCapacity: textCount) { text in
            let symbols = alphabet.utf8Start
            var written = 0
            var index = 0
            while index + 3 <= bytes.count {
                let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
                text[written] = symbols[Int(group >> 18)]
                text[written + 1] = symbols[Int(group >> 12 & 0x3F)]
                text[written + 2] = symbols[Int(group >> 6 & 0x3F)]
                text[written + 3] = symbols[Int(group & 0x3F)]
                written += 4
                index += 3
            }
            let remaining = bytes.count - index
            if remaining > 0 {
                let group = UInt32(bytes[index]) << 16 | (remaining == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
                text[written] = symbols[Int(group >> 18)]
                text[written + 1] = symbols[Int(group >> 12 & 0x3F)]
                text[written + 2] = remaining == 2 ? symbols[Int(group >> 6 & 0x3F)] : padding
                text[written + 3] = padding
                written += 4
            }
            assert(written == textCount, "base64 writes four characters per three bytes or part of them")
            return written
        }
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode(utf8: $0) }
    }

    /// Refuses, with nil, any length but a multiple of four, a character outside the alphabet, padding anywhere but
    /// in the last one or two places, and bits set below the last whole byte (which encoding never writes).
    private static func decode(utf8 text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        guard !text.isEmpty else { return [] }
        let paddingCount = text[text.count - 1] != padding ? 0 : (text[text.count - 2] != padding ? 1 : 2)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 4 * 3 - paddingCount)
        var index = 0
        while index < text.count {
            let isLastGroup = index + 4 == text.count
            let symbolCount = isLastGroup ? 4 - paddingCount : 4
            var group: UInt32 = 0
            for offset in 0..<4 {
                var value: UInt32 = 0
                if offset < symbolCount {
                    guard let symbolValue = Self.value(of: text[index + offset]) else { return nil }
                    value = symbolValue
                }
                group = group << 6 | value
            }
            switch symbolCount {
            case 4:
                bytes.append(UInt8(group >> 16))
                bytes.append(UInt8(group >> 8 & 0xFF))
                bytes.append(UInt8(group & 0xFF))
            case 3:
                guard group & 0xFF == 0 else { return nil }
                bytes.append(UInt8(group >> 16))
                bytes.append(UInt8(group >> 8 & 0xFF))
            default:
                guard group & 0xFFFF == 0 else { return nil }
                bytes.append(UInt8(group >> 16))
            }
            index += 4
        }
        return bytes
    }

    private static func value(of symbol: UInt8) -> UInt32? {
        switch symbol {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(symbol - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(symbol - UInt8(ascii: "a")) + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(symbol - UInt8(ascii: "0")) + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}

extension Array where Element == UInt8 {
    /// Lowercase hexadecimal.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(count * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    public init?(hexString: String) {
        let characters = Array(hexString.utf8)
        guard characters.count % 2 == 0 else { return nil }
        func value(_ character: UInt8) -> UInt8? {
            switch character {
            case 0x30...0x39: return character - 0x30
            case 0x61...0x66: return character - 0x61 + 10
            case 0x41...0x46: return character - 0x41 + 10
            default: return nil
            }
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(characters.count / 2)
        var index = 0
        while index < characters.count {
            guard let high = value(characters[index]), let low = value(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }
}
