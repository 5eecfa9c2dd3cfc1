/// Accounts of the double-entry ledger, in integer cents of TOC.
///
/// ToCoin is issued from `issuance` into the programme `fund` (`program.funded`), leaves the fund to beneficiaries
/// (`credits.converted`, `dote.granted`), goes from beneficiaries to merchants (`payment.redeemed`) and back
/// (`payment.refunded`), from merchants to `settlement` (`settlement.requested`) and back to `issuance` when the
/// euros are paid (`settlement.paid`); expired lots return to the fund (`tocoin.expired`). Every movement is one
/// transfer between two accounts, so the sum of all accounts is always zero. Only `issuance` may be negative.
public enum Account {
    public static let issuance = "issuance"
    public static let fund = "fund"
    public static let settlement = "settlement"

    public static func beneficiary(_ id: String) -> String { "beneficiary:" + id }
    public static func merchant(_ id: String) -> String { "merchant:" + id }

    public static func encode(_ balance: Int64) -> [UInt8] { StateKey.number(UInt64(bitPattern: balance)) }

    public static func decode(_ bytes: [UInt8]) -> Int64? {
        StateKey.decodeNumber(bytes).map { Int64(bitPattern: $0) }
    }
}

/// A beneficiary's parcel of ToCoin: general (from converted credits) or earmarked for one spending category (a
/// dote), with an expiry. Its id is the seq of the event that created it.
public struct Lot: Sendable, Hashable {
    public static let general = "general"
    /// Bounds the lots a grant or conversion may bring a beneficiary to (spent and collected lots are removed).
    public static let maximumPerBeneficiary = 256
    /// Bounds the live lots of a beneficiary at all: refunds may revive emptied lots up to it, and every read of
    /// a beneficiary's lots reads them all.
    public static let maximumLive = 1024

    public let id: UInt64
    public let beneficiary: String
    public let category: String
    public let amount: Int64
    public var remaining: Int64
    public let expiresAt: String
    public let source: String

    public init(id: UInt64, beneficiary: String, category: String, amount: Int64, remaining: Int64, expiresAt: String, source: String) {
        self.id = id
        self.beneficiary = beneficiary
        self.category = category
        self.amount = amount
        self.remaining = remaining
        self.expiresAt = expiresAt
        self.source = source
    }

    public var key: [UInt8] { StateKey.prefix(beneficiary) + StateKey.number(id) }

    public var json: JSONValue {
        .object([
            "lot": .integer(Int64(id)), "beneficiary": .string(beneficiary), "category": .string(category),
            "amount": .integer(amount), "remaining": .integer(remaining), "expires_at": .string(expiresAt),
            "source": .string(source),
        ])
    }

    /// `CanonicalJSON.encode(json)`, written member by member (every payment rewrites the lots it spends).
    public var canonicalBytes: [UInt8] {
        var writer = CanonicalJSON.ObjectWriter(reservingCapacity: 160 + beneficiary.utf8.count + category.utf8.count + source.utf8.count)
        writer.member("amount", .integer(amount))
        writer.member("beneficiary", .string(beneficiary))
        writer.member("category", .string(category))
        writer.member("expires_at", .string(expiresAt))
        writer.member("lot", .integer(Int64(id)))
        writer.member("remaining", .integer(remaining))
        writer.member("source", .string(source))
        return writer.finish()
    }

    /// Reads a stored lot. The ledger stores lots as `canonicalBytes`, which are read here directly when every
    /// text is printable ASCII without escapes; anything else goes through the JSON parser, with the same result
    /// or the same error (every payment reads all the lots of its beneficiary).
    public init(storedBytes bytes: [UInt8]) throws(LedgerError) {
        if let lot = StoredLotReader.read(bytes) {
            guard lot.holdsWhatTheRulesAllow else { throw Self.damaged(lot.id) }
            self = lot
        } else {
            try self.init(json: try JSONParser.parseStored(bytes))
        }
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard case .integer(let id)? = json["lot"], id >= 0, case .string(let beneficiary)? = json["beneficiary"],
            case .string(let category)? = json["category"], case .integer(let amount)? = json["amount"],
            case .integer(let remaining)? = json["remaining"], case .string(let expiresAt)? = json["expires_at"],
            case .string(let source)? = json["source"]
        else { throw LedgerError(.integrity, "stored lot is damaged") }
        self.init(id: UInt64(id), beneficiary: beneficiary, category: category, amount: amount, remaining: remaining, expiresAt: expiresAt, source: source)
        guard holdsWhatTheRulesAllow else { throw Self.damaged(self.id) }
    }

    /// 0 < amount ≤ 10^12 and 0 ≤ remaining ≤ amount, as every rule leaves a lot: a grant or conversion creates it
    /// within `Amounts.maximum`; a payment moves cents from `remaining` to its debits, a refund moves at most those
    /// back, and expiry empties it. Anything else in a stored lot is a damaged file, which the rules must not spend.
    var holdsWhatTheRulesAllow: Bool {
        amount > 0 && amount <= Amounts.maximum && remaining >= 0 && remaining <= amount
    }

    private static func damaged(_ id: UInt64) -> LedgerError {
        LedgerError(.integrity, "stored lot \(id) is damaged: it holds what no rule leaves in a lot")
    }

    /// Expired when the ledger's time has reached its expiry (RFC 3339 UTC texts of one form compare as times).
    public func isExpired(at recordedAt: String) -> Bool {
        (Timestamp.millisecondsSince1970(expiresAt) ?? 0) <= (Timestamp.millisecondsSince1970(recordedAt) ?? 0)
    }
}

extension LedgerStateReader {
    public func balance(_ account: String) throws(LedgerError) -> Int64 {
        guard let bytes = try value(.balances, Array(account.utf8)) else { return 0 }
        guard let balance = Account.decode(bytes) else {
            throw LedgerError(.integrity, "the balance of \(account) is damaged")
        }
        return balance
    }

    public func lots(of beneficiary: String) throws(LedgerError) -> [Lot] {
        var lots: [Lot] = []
        for entry in try entries(.lots, prefix: StateKey.prefix(beneficiary), limit: Lot.maximumLive) {
            lots.append(try Lot(storedBytes: entry.value))
        }
        return lots
    }

    public func policy() throws(LedgerError) -> Policy? {
        guard let json = try json(.policy, "current") else { return nil }
        return try Policy(json: json)
    }
}

extension JSONParser {
    /// Parses bytes the ledger itself stored; a failure means damage, not bad input.
    static func parseStored(_ bytes: [UInt8]) throws(LedgerError) -> JSONValue {
        do {
            return try parse(bytes)
        } catch {
            throw LedgerError(.integrity, "stored state is damaged: \(error.message)")
        }
    }
}

extension RuleContext {
    /// Moves `amount` cents between two accounts. Every account but `issuance` must stay at zero or above.
    mutating func transfer(from source: String, to destination: String, amount: Int64) throws(LedgerError) {
        precondition(amount > 0 && amount <= Amounts.maximum, "transfers are of validated positive amounts")
        precondition(source != destination, "a transfer moves money between two accounts")
        let sourceBalance = try balance(source)
        let destinationBalance = try balance(destination)
        guard source == Account.issuance || sourceBalance >= amount else {
            throw LedgerError(.insufficientFunds, "\(source) holds \(sourceBalance) cents, \(amount) are needed")
        }
        let (newSource, sourceOverflow) = sourceBalance.subtractingReportingOverflow(amount)
        let (newDestination, destinationOverflow) = destinationBalance.addingReportingOverflow(amount)
        guard !sourceOverflow, !destinationOverflow else {
            throw LedgerError(.invalidBody, "the amount would overflow an account balance")
        }
        changes.put(.balances, Array(source.utf8), Account.encode(newSource))
        changes.put(.balances, Array(destination.utf8), Account.encode(newDestination))
        // Each account's history: account ‖ 0 ‖ seq → the signed movement (negative out, positive in).
        changes.put(.accountHistory, StateKey.prefix(source) + StateKey.number(position.sequenceNumber), Account.encode(-amount))
        changes.put(.accountHistory, StateKey.prefix(destination) + StateKey.number(position.sequenceNumber), Account.encode(amount))
    }

    /// Creates a lot for a beneficiary and moves its amount from the fund into the beneficiary's account.
    mutating func grantLot(beneficiary: String, category: String, amount: Int64, validityDays: Int64) throws(LedgerError) -> Lot {
        let existing = try lots(of: beneficiary)
        guard existing.count < Lot.maximumPerBeneficiary else {
            throw LedgerError(.tooManyLots, "beneficiary \(quoted(beneficiary)) holds \(existing.count) lots; expire or spend some first")
        }
        try transfer(from: Account.fund, to: Account.beneficiary(beneficiary), amount: amount)
        let now = Timestamp.millisecondsSince1970(position.recordedAt) ?? 0
        let lot = Lot(
            id: position.sequenceNumber, beneficiary: beneficiary, category: category, amount: amount, remaining: amount,
            expiresAt: Timestamp.format(millisecondsSince1970: min(now + validityDays * 86_400_000, Timestamp.latestMillisecondsSince1970)), source: event.id)
        changes.put(.lots, lot.key, lot.canonicalBytes)
        return lot
    }

    /// Writes a lot back. An empty lot moves to `spent_lots` (a refund may bring it back) so that a beneficiary's
    /// live lots, scanned on every payment, stay few.
    mutating func store(_ lot: Lot) {
        if lot.remaining == 0 {
            changes.delete(.lots, lot.key)
            changes.put(.spentLots, lot.key, lot.canonicalBytes)
        } else {
            changes.put(.lots, lot.key, lot.canonicalBytes)
            changes.delete(.spentLots, lot.key)
        }
    }
}

/// Reads a lot in exactly its canonical layout, `{"amount":…,"beneficiary":"…","category":"…","expires_at":"…",
/// "lot":…,"remaining":…,"source":"…"}`, with integers in canonical form and texts of printable ASCII without
/// escapes, and nothing else: nil for anything else, which the JSON parser then reads.
enum StoredLotReader {
    static func read(_ bytes: [UInt8]) -> Lot? {
        var cursor = Cursor(bytes: bytes)
        guard cursor.expect(#"{"amount":"#), let amount = cursor.integer(),
            cursor.expect(#","beneficiary":"#), let beneficiary = cursor.text(),
            cursor.expect(#","category":"#), let category = cursor.text(),
            cursor.expect(#","expires_at":"#), let expiresAt = cursor.text(),
            cursor.expect(#","lot":"#), let id = cursor.integer(), id >= 0,
            cursor.expect(#","remaining":"#), let remaining = cursor.integer(),
            cursor.expect(#","source":"#), let source = cursor.text(),
            cursor.expect("}"), cursor.offset == bytes.count
        else { return nil }
        return Lot(id: UInt64(id), beneficiary: beneficiary, category: category, amount: amount, remaining: remaining, expiresAt: expiresAt, source: source)
    }

    struct Cursor {
        let bytes: [UInt8]
        var offset = 0

        mutating func expect(_ literal: StaticString) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - offset >= count else { return false }
            let matches = literal.withUTF8Buffer { expected in
                for index in 0..<count where bytes[offset + index] != expected[index] { return false }
                return true
            }
            if matches { offset += count }
            return matches
        }

        /// `0` or `-?[1-9][0-9]*` within ±(2^53 − 1), as the parser reads integers; anything else is left to it.
        mutating func integer() -> Int64? {
            var index = offset
            let negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
            if negative { index += 1 }
            let digitsStart = index
            var value: Int64 = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9"), index - digitsStart < 18 {
                value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                index += 1
            }
            let digitCount = index - digitsStart
            guard digitCount > 0 else { return nil }
            // A leading zero, "-0", or a 19th digit: not canonical here.
            if bytes[digitsStart] == UInt8(ascii: "0") && (digitCount > 1 || negative) { return nil }
            if index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { return nil }
            // Beyond ±(2^53 − 1) the parser makes a Double, not an integer: left to it.
            guard value <= JSONValue.maximumExactInteger else { return nil }
            offset = index
            return negative ? -value : value
        }

        /// A quoted text of printable ASCII (0x20–0x7E) without `"` or `\\` inside.
        mutating func text() -> String? {
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { return nil }
            let start = offset + 1
            var index = start
            while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                let byte = bytes[index]
                guard byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "\\") else { return nil }
                index += 1
            }
            guard index < bytes.count else { return nil }
            offset = index + 1
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
    }
}
