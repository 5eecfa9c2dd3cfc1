/// Italian personal tax codes (*codice fiscale*) in clear text.
///
/// Personal data goes into a signed record only sealed (`Specs/events.md` 1.6): what is in clear can never be
/// erased. The ledger cannot tell a name from a pseudonym, but it can tell a tax code, the one identifier of a
/// person that help desks type every day: 16 letters and digits of a fixed form whose last letter is a check
/// character. A value that holds one is refused (`Specs/events.md` 1.3), so that a tax code typed into an id, a
/// name or a reason by mistake never reaches the log.
public enum ItalianTaxCode {
    /// Letters that stand for the digits 0 to 9 in a code made unique among namesakes (*omocodia*).
    static let omocodeLetters: [UInt8] = Array("LMNPQRSTUV".utf8)
    /// The month letters, January to December.
    static let monthLetters: [UInt8] = Array("ABCDEHLMPRST".utf8)
    /// Positions (0-based) that hold a digit, or its omocode letter.
    static let digitPositions: Set<Int> = [6, 7, 9, 10, 12, 13, 14]
    /// The values of characters in odd positions (1st, 3rd, … counted from 1) for the check character: indexed by
    /// the digit's value for `0`–`9` and by the letter's for `A`–`Z` (the code's own table).
    static let oddPositionValues: [Int] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
    public static let characterCount = 16

    /// Whether `text` holds a tax code as a word of its own: a run of exactly 16 ASCII letters and digits, with no
    /// ASCII letter or digit just before or after it, that has the form of a personal tax code (upper or lower case)
    /// and its check character. Runs of any other length are not looked into, so long random ids and keys do not
    /// match by chance.
    public static func occurs(in text: String) -> Bool {
        let bytes = text.utf8
        var runStart = bytes.startIndex
        var runLength = 0
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if isASCIILetterOrDigit(bytes[index]) {
                if runLength == 0 { runStart = index }
                runLength += 1
            } else {
                if runLength == characterCount && isTaxCode(Array(bytes[runStart..<index])) { return true }
                runLength = 0
            }
            index = bytes.index(after: index)
        }
        return runLength == characterCount && isTaxCode(Array(bytes[runStart..<index]))
    }

    /// Whether 16 characters are a personal tax code: six letters (surname and name), the year, the month letter,
    /// the day (01–31, or 41–71 for women), a letter and three digits (the place of birth), and the check letter.
    static func isTaxCode(_ characters: [UInt8]) -> Bool {
        guard characters.count == characterCount else { return false }
        let upper = characters.map { byte in (0x61...0x7a).contains(byte) ? byte - 0x20 : byte }
        for (position, byte) in upper.enumerated() {
            let fits = digitPositions.contains(position) ? digitValue(byte) != nil : isUppercaseLetter(byte)
            guard fits else { return false }
        }
        guard monthLetters.contains(upper[8]), let dayTens = digitValue(upper[9]), let dayUnits = digitValue(upper[10]) else {
            return false
        }
        let day = dayTens * 10 + dayUnits
        guard (1...31).contains(day) || (41...71).contains(day) else { return false }
        var sum = 0
        for (position, byte) in upper.prefix(characterCount - 1).enumerated() {
            let value = isUppercaseLetter(byte) ? Int(byte - 0x41) : Int(byte - 0x30)
            sum += position % 2 == 0 ? oddPositionValues[value] : value
        }
        return upper[characterCount - 1] == UInt8(0x41 + sum % 26)
    }

    /// A digit's value, also when written as its omocode letter.
    static func digitValue(_ byte: UInt8) -> Int? {
        if (0x30...0x39).contains(byte) { return Int(byte - 0x30) }
        return omocodeLetters.firstIndex(of: byte)
    }

    static func isUppercaseLetter(_ byte: UInt8) -> Bool { (0x41...0x5a).contains(byte) }

    static func isASCIILetterOrDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
    }
}
