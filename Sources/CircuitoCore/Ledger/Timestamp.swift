/// RFC 3339 timestamps in UTC (`2026-11-22T10:00:00Z`, optional fraction of 1 to 9 digits), as events carry them.
public enum Timestamp {
    /// Checks the form strictly: four-digit year, valid month, day of that month, hour, minute, second
    /// (leap second 60 allowed), an optional fraction, and `Z`. Offsets other than `Z` are refused so that
    /// text order is time order.
    public static func isValid(_ text: String) -> Bool {
        fields(of: text) != nil
    }

    /// What a valid timestamp says, read in one pass over its UTF-8 bytes. Every event, record and lot carries one,
    /// and the rules and replays read them per event: no copy of the text, no closure per field.
    struct Fields {
        var year: Int64
        var month: Int64
        var day: Int64
        var hour: Int64
        var minute: Int64
        var second: Int64
        /// The fraction's first three digits, zero-padded (the rest is truncated).
        var milliseconds: Int64
    }

    static func fields(of text: String) -> Fields? {
        if let fields = text.utf8.withContiguousStorageIfAvailable({ fields(of: $0) }) { return fields }
        // A string bridged from elsewhere may not be contiguous UTF-8.
        return Array(text.utf8).withUnsafeBufferPointer { fields(of: $0) }
    }

    static func fields(of bytes: UnsafeBufferPointer<UInt8>) -> Fields? {
        let count = bytes.count
        guard count >= 20, count <= 30, bytes[count - 1] == UInt8(ascii: "Z") else { return nil }
        // The digits of `start..<end` as a number; nil if one is not a digit.
        func number(_ start: Int, _ end: Int) -> Int64? {
            var value: Int64 = 0
            var index = start
            while index < end {
                let digit = bytes[index] &- 0x30
                guard digit <= 9 else { return nil }
                value = value * 10 + Int64(digit)
                index += 1
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0, 4), let month = number(5, 7), let day = number(8, 10),
            let hour = number(11, 13), let minute = number(14, 16), let second = number(17, 19)
        else { return nil }
        guard year >= 1, month >= 1, month <= 12, day >= 1, day <= Int64(daysIn(month: Int(month), year: Int(year))),
            hour <= 23, minute <= 59, second <= 60
        else { return nil }
        var milliseconds: Int64 = 0
        if count > 20 {
            // Fraction: '.', 1...9 digits, then 'Z'.
            guard bytes[19] == UInt8(ascii: "."), count >= 22, number(20, count - 1) != nil else { return nil }
            for index in 20..<23 {
                milliseconds = milliseconds * 10 + (index < count - 1 ? Int64(bytes[index] - 0x30) : 0)
            }
        }
        return Fields(year: year, month: month, day: day, hour: hour, minute: minute, second: second, milliseconds: milliseconds)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// 9999-12-31T23:59:59.999Z, the last time a four-digit year can write. The ledger records nothing after it
    /// (`clock_out_of_range`), and expiries that would fall after it are this time (Specs/events.md 1.5).
    public static let latestMillisecondsSince1970: Int64 = 253_402_300_799_999

    /// Refuses a clock reading outside 1970-01-01T00:00:00.000Z…`latestMillisecondsSince1970`: a `recorded_at` after
    /// it would have a five-digit year, which no reader accepts (and every later record would have to follow it), and
    /// one before 1970 is refused by every verifier (Specs/ledger.md 5.3).
    public static func requireRecordable(millisecondsSince1970: Int64) throws(LedgerError) {
        guard (0...latestMillisecondsSince1970).contains(millisecondsSince1970) else {
            throw LedgerError(.clockOutOfRange, "the system clock reads \(millisecondsSince1970) ms since 1970, outside 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z, where every recorded_at must be; nothing was written (set the clock right)")
        }
    }

    /// How far the writer's clock may read behind the last record's `recorded_at` and still commit, at that
    /// `recorded_at` (Specs/ledger.md 5.3). NTP's steps of a synchronised clock are far smaller; a clock further
    /// behind is wrong now (a dead RTC at boot), which would freeze the ledger's time and let authorisations be
    /// used after they lapsed, or was wrong at the last commit (a jump ahead), which only an operator can judge.
    public static let maximumClockBehindMilliseconds: Int64 = 60_000

    /// The `recorded_at`, in milliseconds since 1970, of a commit made when the clock reads `clockMilliseconds`
    /// after a last record at `lastRecordedAtMilliseconds` (0 before any): the later of the two, so that
    /// `recorded_at` never goes back. Refuses a clock outside what `recorded_at` can hold (`clock_out_of_range`),
    /// and one behind the last record by more than `maximumClockBehindMilliseconds` (`clock_behind`) unless
    /// `acceptingClockBehind`, the operator's word that the last record is the one whose time was wrong.
    public static func commitMilliseconds(
        clockMilliseconds: Int64, lastRecordedAtMilliseconds: Int64, acceptingClockBehind: Bool
    ) throws(LedgerError) -> Int64 {
        try requireRecordable(millisecondsSince1970: clockMilliseconds)
        let behind = lastRecordedAtMilliseconds - clockMilliseconds
        guard behind <= maximumClockBehindMilliseconds || acceptingClockBehind else {
            throw LedgerError(.clockBehind, "the system clock reads \(format(millisecondsSince1970: clockMilliseconds)), \(behind) ms before the last record's recorded_at \(format(millisecondsSince1970: lastRecordedAtMilliseconds)); nothing was written. Set the clock right; if it is right and the last record's time was wrong (a clock that ran ahead), the records can only follow that time: start the writer with --accept-clock-behind (Specs/ledger.md 5.3)")
        }
        return max(clockMilliseconds, lastRecordedAtMilliseconds)
    }

    /// Formats seconds and milliseconds since 1970 as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func format(millisecondsSince1970: Int64) -> String {
        let milliseconds = Int(((millisecondsSince1970 % 1000) + 1000) % 1000)
        let totalSeconds = (millisecondsSince1970 - Int64(milliseconds)) / 1000
        var days = Int(totalSeconds >= 0 ? totalSeconds / 86_400 : (totalSeconds - 86_399) / 86_400)
        let secondOfDay = Int(totalSeconds - Int64(days) * 86_400)
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(milliseconds, 3))Z"
    }
}

extension Timestamp {
    /// Milliseconds since 1970 of an RFC 3339 UTC timestamp (fraction truncated to milliseconds).
    public static func millisecondsSince1970(_ text: String) -> Int64? {
        guard let fields = fields(of: text) else { return nil }
        let (year, month, day) = (fields.year, fields.month, fields.day)
        // Days from civil date (Howard Hinnant's algorithm).
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + fields.hour * 3600 + fields.minute * 60 + fields.second
        return seconds * 1000 + fields.milliseconds
    }
}

extension Timestamp {
    /// The one form the ledger writes in `recorded_at`: `YYYY-MM-DDTHH:MM:SS.mmmZ` (24 bytes), never a leap second
    /// (it writes from milliseconds), so that in this form text order is time order.
    public static func isLedgerForm(_ text: String) -> Bool {
        guard text.utf8.count == 24, let fields = fields(of: text) else { return false }
        return fields.second <= 59
    }
}
