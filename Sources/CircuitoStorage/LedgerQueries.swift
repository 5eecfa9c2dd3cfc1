import CircuitoCore

/// The read queries of the socket API. Each runs in one short read transaction and returns a bounded page: a
/// caller passes the `next` cursor of one page as `after` of the next.
public enum LedgerQueryLimits {
    /// Entries one history or search page may hold.
    public static let maximumPageEntries = 500
    /// Index entries one catalogue search may look at before it returns a (possibly short) page with a cursor, so a
    /// search with filters that rarely match still costs a bounded amount of work.
    public static let maximumExaminedEntries = 10_000
    /// Records one `recordsPage` may hold, and their total bytes (also a `caseHistory` page's).
    public static let maximumRecordsPerPage = 1000
    public static let maximumRecordBytesPerPage = 4 << 20
    /// Referrals looked at to find the cases of one beneficiary (cases are few per person; beyond this, later
    /// referrals are not found: Specs/protocol.md 4.4).
    public static let maximumCaseLookups = 4096
    /// History entries walked past to find those referrals: the other entries (payments, notes, badges…) are read
    /// by key and value alone, a few bytes each, so a person's years of history are walked in milliseconds.
    public static let maximumCaseHistoryEntriesWalked = 1 << 20
}

/// A balance, with the lots that make it up for a beneficiary account.
public struct AccountBalance: Sendable, Hashable {
    public let account: String
    public let balance: Int64
    public let lots: [Lot]?
    /// A beneficiary's conversions in the month asked for (`YYYY-MM`): what the policy's monthly cap bounds.
    public let convertedCentsInMonth: Int64?
}

/// One movement of an account: the record that made it and the signed amount (negative out, positive in).
public struct AccountMovement: Sendable, Hashable {
    public let sequenceNumber: UInt64
    public let amount: Int64
    public let eventID: String
    public let eventType: String
}

/// A page of entries and the cursor after its last entry (nil when there is nothing more).
public struct LedgerPage<Entry: Sendable>: Sendable {
    public let entries: [Entry]
    public let nextAfter: String?
}

/// A record as stored: its seq and its leaf bytes (canonical JSON of the record).
public struct StoredRecord: Sendable, Hashable {
    public let sequenceNumber: UInt64
    public let leafBytes: [UInt8]
}

/// A run of consecutive records and the checkpoints stored for the tree sizes they reach.
public struct RecordsPage: Sendable {
    public let records: [StoredRecord]
    /// (tree size, signed note) for every checkpoint whose size is in (first seq, last seq + 1], in size order.
    public let checkpoints: [(size: UInt64, note: String)]
    /// The log's size when the page was read.
    public let size: UInt64
}

/// What `catalogue.search` asks for: one kind, optional facet values that must all match, optional words that
/// must all appear (each at least 3 letters, as the index holds them).
public struct CatalogueQuery: Sendable, Hashable {
    public var kind: String
    public var category: String?
    public var district: String?
    public var provider: String?
    public var words: [String]
    public var after: String?
    public var limit: Int

    public init(kind: String, category: String? = nil, district: String? = nil, provider: String? = nil, words: [String] = [], after: String? = nil, limit: Int = 50) {
        self.kind = kind
        self.category = category
        self.district = district
        self.provider = provider
        self.words = words
        self.after = after
        self.limit = limit
    }

    /// The state table holding the entries of `kind`, and the status an entry has while it is listed.
    static func table(of kind: String) -> (table: StateTable, statusField: String, listedStatus: String)? {
        switch kind {
        case "opportunity": return (.opportunities, "status", "published")
        case "merchant": return (.merchants, "status", "enrolled")
        case "badge_class": return (.badgeClasses, "status", "active")
        default: return nil
        }
    }
}

/// A case as `case.list` lists it, to its holder or its referrer: the case as the ledger holds it, and whether the
/// ledger records its beneficiary's `subject.erased` (what both must act on: each holds a copy of the person's key,
/// Specs/events.md 5.6).
public struct ListedCase: Sendable, Hashable {
    public let record: JSONValue
    public let subjectErased: Bool
}

/// Aggregate figures of the programme: no personal data.
public struct LedgerReport: Sendable, Hashable {
    public let size: UInt64
    public let systemBalances: [String: Int64]
    public let tableCounts: [String: Int]
}

extension TransactionLedgerState {
    /// The leaf bytes of the record at `sequenceNumber`, read in the same transaction as the state.
    public func logLeafBytes(sequenceNumber: UInt64) throws(LedgerError) -> [UInt8]? {
        try transaction.get(LedgerDatabase.log, BigEndianKey.encode(sequenceNumber))
    }
}

extension LedgerReader {
    /// The balance of `account` (`beneficiary:<id>`, `merchant:<id>`, `fund`, `issuance`, `settlement`); for a
    /// beneficiary also its lots and what it received from conversions in `conversionsMonth` (`YYYY-MM`), all from
    /// one snapshot.
    public func accountBalance(_ account: String, conversionsMonth: String? = nil) throws(LedgerError) -> AccountBalance {
        try withState { (state) throws(LedgerError) in
            let balance = try state.balance(account)
            var lots: [Lot]? = nil
            var convertedCents: Int64? = nil
            if account.hasPrefix("beneficiary:") {
                let beneficiary = String(account.dropFirst("beneficiary:".count))
                lots = try state.lots(of: beneficiary)
                if let conversionsMonth {
                    convertedCents = try state.value(.conversions, StateKey.make(beneficiary, conversionsMonth)).flatMap(Account.decode) ?? 0
                }
            }
            return AccountBalance(account: account, balance: balance, lots: lots, convertedCentsInMonth: convertedCents)
        }
    }

    /// Movements of `account` after seq `after` (exclusive), oldest first, at most `limit`.
    public func accountHistory(_ account: String, after: UInt64?, limit: Int) throws(LedgerError) -> LedgerPage<AccountMovement> {
        let limit = Self.clampedLimit(limit)
        let prefix = StateKey.prefix(account)
        return try environment.read { (transaction) throws(LedgerError) in
            var entries: [AccountMovement] = []
            var more = false
            try Self.scan(transaction, StateTable.accountHistory.name, prefix: prefix, after: after.map { StateKey.number($0) }) {
                (key, value) throws(LedgerError) -> Bool in
                guard entries.count < limit else {
                    more = true
                    return false
                }
                guard let sequenceNumber = StateKey.decodeNumber(key.dropFirst(prefix.count)), let amount = Account.decode(value) else {
                    throw LedgerError(.integrity, "an account history entry of \(account) is damaged")
                }
                let record = try Self.record(transaction, sequenceNumber)
                entries.append(AccountMovement(sequenceNumber: sequenceNumber, amount: amount, eventID: record.signedEvent.event.id, eventType: record.signedEvent.event.type))
                return true
            }
            return LedgerPage(entries: entries, nextAfter: more ? entries.last.map { String($0.sequenceNumber) } : nil)
        }
    }

    /// The records that concern `beneficiary` (its case history) after seq `after`, oldest first, at most `limit` and
    /// about `maximumBytes` (always at least one record when there is one).
    public func caseHistory(
        beneficiary: String, after: UInt64?, limit: Int, maximumBytes: Int = LedgerQueryLimits.maximumRecordBytesPerPage
    ) throws(LedgerError) -> LedgerPage<StoredRecord> {
        let limit = Self.clampedLimit(limit)
        let prefix = StateKey.prefix(beneficiary)
        return try environment.read { (transaction) throws(LedgerError) in
            var entries: [StoredRecord] = []
            var bytes = 0
            var more = false
            try Self.scan(transaction, StateTable.caseHistory.name, prefix: prefix, after: after.map { StateKey.number($0) }) {
                (key, _) throws(LedgerError) -> Bool in
                guard entries.count < limit else {
                    more = true
                    return false
                }
                guard let sequenceNumber = StateKey.decodeNumber(key.dropFirst(prefix.count)) else {
                    throw LedgerError(.integrity, "a case history entry of \(beneficiary) is damaged")
                }
                guard let leafBytes = try transaction.get(LedgerDatabase.log, BigEndianKey.encode(sequenceNumber)) else {
                    throw LedgerError(.integrity, "case history names seq \(sequenceNumber), which is not in the log")
                }
                // As an `events` page: records of up to 64 KiB each would make 500 of them a 32 MiB answer.
                guard entries.isEmpty || bytes + leafBytes.count <= maximumBytes else {
                    more = true
                    return false
                }
                bytes += leafBytes.count
                entries.append(StoredRecord(sequenceNumber: sequenceNumber, leafBytes: leafBytes))
                return true
            }
            return LedgerPage(entries: entries, nextAfter: more ? entries.last.map { String($0.sequenceNumber) } : nil)
        }
    }

    /// The cases of `beneficiary` (their current projections), found through its case history: every case starts
    /// with a `case.referred` that names it. Only referrals count toward `maximumCaseLookups`, so a long history of
    /// payments and notes hides no case.
    public func cases(of beneficiary: String) throws(LedgerError) -> [JSONValue] {
        let prefix = StateKey.prefix(beneficiary)
        return try environment.read { (transaction) throws(LedgerError) in
            var cases: [JSONValue] = []
            var referrals = 0
            var walked = 0
            try transaction.forEach(StateTable.caseHistory.name, from: prefix) { (key, value) throws(LedgerError) -> Bool in
                guard key.starts(with: prefix), walked < LedgerQueryLimits.maximumCaseHistoryEntriesWalked,
                    referrals < LedgerQueryLimits.maximumCaseLookups
                else { return false }
                walked += 1
                guard value.elementsEqual("case.referred".utf8), let sequenceNumber = StateKey.decodeNumber(key.dropFirst(prefix.count)) else {
                    return true
                }
                referrals += 1
                let record = try Self.record(transaction, sequenceNumber)
                guard case .string(let caseID)? = record.signedEvent.event.body["case"],
                    let stored = try TransactionLedgerState(transaction: transaction).json(.cases, caseID)
                else { return true }
                cases.append(stored)
                return true
            }
            return cases
        }
    }

    /// Catalogue entries of one kind matching every filter, in id order, after the id `query.after`.
    public func catalogueSearch(_ query: CatalogueQuery) throws(LedgerError) -> LedgerPage<JSONValue> {
        try catalogueSearch(query, examiningAtMost: LedgerQueryLimits.maximumExaminedEntries)
    }

    /// `catalogueSearch` looking at no more than `examiningAtMost` entries a page: tests page with a small bound.
    func catalogueSearch(_ query: CatalogueQuery, examiningAtMost: Int) throws(LedgerError) -> LedgerPage<JSONValue> {
        guard let listing = CatalogueQuery.table(of: query.kind) else {
            throw LedgerError(.invalidRange, "catalogue kind \"\(query.kind)\" is not one of \(CatalogueIndex.kinds.joined(separator: ", "))")
        }
        let (table, statusField, listedStatus) = listing
        let limit = Self.clampedLimit(query.limit)
        var filters: [[UInt8]] = []
        for (facet, value) in [("category", query.category), ("district", query.district), ("provider", query.provider)] {
            if let value { filters.append(CatalogueIndex.prefix(kind: query.kind, facet: facet, value: value)) }
        }
        for word in query.words { filters.append(CatalogueIndex.prefix(kind: query.kind, facet: "word", value: word)) }
        let after = query.after.map { Array($0.utf8) }
        return try environment.read { (transaction) throws(LedgerError) in
            let state = TransactionLedgerState(transaction: transaction)
            var entries: [JSONValue] = []
            var examined = 0
            var lastExamined: [UInt8]?
            var more = false
            if let driver = filters.first {
                // The first filter drives the scan; every other one is a point lookup of the same id.
                try Self.scan(transaction, StateTable.catalogueIndex.name, prefix: driver, after: after) { (key, _) throws(LedgerError) -> Bool in
                    guard entries.count < limit, examined < examiningAtMost else {
                        more = true
                        return false
                    }
                    examined += 1
                    let id = [UInt8](key.dropFirst(driver.count))
                    lastExamined = id
                    for filter in filters.dropFirst() where try transaction.get(StateTable.catalogueIndex.name, filter + id) == nil {
                        return true
                    }
                    if let entry = try state.json(table, id) { entries.append(entry) }
                    return true
                }
            } else {
                // No filter: every listed entry of the kind, from its own table.
                try Self.scan(transaction, table.name, prefix: [], after: after) { (key, value) throws(LedgerError) -> Bool in
                    guard entries.count < limit, examined < examiningAtMost else {
                        more = true
                        return false
                    }
                    examined += 1
                    lastExamined = [UInt8](key)
                    let entry: JSONValue
                    do throws(LedgerError) { entry = try JSONParser.parse([UInt8](value)) } catch {
                        throw LedgerError(.integrity, "state table \(table) holds damaged JSON: \(error.message)")
                    }
                    if entry[statusField]?.stringValue == listedStatus { entries.append(entry) }
                    return true
                }
            }
            return LedgerPage(entries: entries, nextAfter: more ? lastExamined.map { String(decoding: $0, as: UTF8.self) } : nil)
        }
    }

    /// The cases `holder` holds (optionally only those in `status`), each with whether its beneficiary's erasure is
    /// recorded, in case id order after the id `after`: how a help desk learns of the referrals made to it, and of
    /// the erasure of a person whose key it was handed with the referral, also once it closed their case. The cases
    /// table is keyed by case id, not by holder, so a page looks at no more than `maximumExaminedEntries` cases and
    /// may then come back short, with a cursor.
    public func casesHeld(by holder: String, status: String?, after: String?, limit: Int) throws(LedgerError) -> LedgerPage<ListedCase> {
        try casesHeld(by: holder, status: status, after: after, limit: limit, examiningAtMost: LedgerQueryLimits.maximumExaminedEntries)
    }

    /// `casesHeld` looking at no more than `examiningAtMost` cases a page: tests page with a small bound.
    func casesHeld(by holder: String, status: String?, after: String?, limit: Int, examiningAtMost: Int) throws(LedgerError) -> LedgerPage<ListedCase> {
        try casesPage(member: "holder", organisation: holder, status: status, after: after, limit: limit, examiningAtMost: examiningAtMost)
    }

    /// The cases `referrer` referred (optionally only those in `status`), each with whether its beneficiary's erasure
    /// is recorded: how a hub follows its referrals and learns which of the people it referred to erase from its own
    /// vault. Paged and bounded as `casesHeld`, by the same scan.
    public func casesReferred(by referrer: String, status: String?, after: String?, limit: Int) throws(LedgerError) -> LedgerPage<ListedCase> {
        try casesReferred(by: referrer, status: status, after: after, limit: limit, examiningAtMost: LedgerQueryLimits.maximumExaminedEntries)
    }

    /// `casesReferred` looking at no more than `examiningAtMost` cases a page: tests page with a small bound.
    func casesReferred(by referrer: String, status: String?, after: String?, limit: Int, examiningAtMost: Int) throws(LedgerError) -> LedgerPage<ListedCase> {
        try casesPage(member: "referred_by", organisation: referrer, status: status, after: after, limit: limit, examiningAtMost: examiningAtMost)
    }

    /// The cases whose `member` (`holder` or `referred_by`) is `organisation`, and in `status` when given, in case id
    /// order after the id `after`, each with whether its beneficiary's erasure is recorded, read in the page's
    /// transaction. The cases table is keyed by case id, so a page looks at no more than `examiningAtMost` cases,
    /// matching or not, and may come back short with a cursor.
    private func casesPage(
        member: String, organisation: String, status: String?, after: String?, limit: Int, examiningAtMost: Int
    ) throws(LedgerError) -> LedgerPage<ListedCase> {
        let limit = Self.clampedLimit(limit)
        return try environment.read { (transaction) throws(LedgerError) in
            let state = TransactionLedgerState(transaction: transaction)
            var entries: [ListedCase] = []
            var examined = 0
            var lastExamined: [UInt8]?
            var more = false
            try Self.scan(transaction, StateTable.cases.name, prefix: [], after: after.map { Array($0.utf8) }) { (key, value) throws(LedgerError) -> Bool in
                guard entries.count < limit, examined < examiningAtMost else {
                    more = true
                    return false
                }
                examined += 1
                lastExamined = key
                let entry: JSONValue
                do throws(LedgerError) { entry = try JSONParser.parse(value) } catch {
                    throw LedgerError(.integrity, "state table cases holds damaged JSON: \(error.message)")
                }
                guard entry[member]?.stringValue == organisation, status == nil || entry["status"]?.stringValue == status else { return true }
                // A case record always names its beneficiary; one that does not is damaged, not "not erased".
                guard let beneficiary = entry["beneficiary"]?.stringValue else {
                    throw LedgerError(.integrity, "state table cases holds a case without a beneficiary")
                }
                entries.append(ListedCase(record: entry, subjectErased: try state.json(.subjects, beneficiary) != nil))
                return true
            }
            return LedgerPage(entries: entries, nextAfter: more ? lastExamined.map { String(decoding: $0, as: UTF8.self) } : nil)
        }
    }

    /// Live lots that have expired at `now` (a timestamp), in (beneficiary, lot) order after `after`: what the
    /// authority's `tocoin.expired` collects, one lot per event. A collected lot leaves the lots table, so the next
    /// call from the start finds the ones left. A page looks at no more than `maximumExaminedEntries` lots and may
    /// then come back short, with a cursor.
    public func expiredLots(at now: String, after: (beneficiary: String, lot: UInt64)?, limit: Int) throws(LedgerError) -> (lots: [Lot], nextAfter: (beneficiary: String, lot: UInt64)?) {
        try expiredLots(at: now, after: after, limit: limit, examiningAtMost: LedgerQueryLimits.maximumExaminedEntries)
    }

    /// `expiredLots` looking at no more than `examiningAtMost` lots a page: tests page with a small bound.
    func expiredLots(
        at now: String, after: (beneficiary: String, lot: UInt64)?, limit: Int, examiningAtMost: Int
    ) throws(LedgerError) -> (lots: [Lot], nextAfter: (beneficiary: String, lot: UInt64)?) {
        let limit = Self.clampedLimit(limit)
        return try environment.read { (transaction) throws(LedgerError) in
            var lots: [Lot] = []
            var examined = 0
            var lastExamined: (beneficiary: String, lot: UInt64)?
            var more = false
            let start = after.map { StateKey.prefix($0.beneficiary) + StateKey.number($0.lot) }
            try Self.scan(transaction, StateTable.lots.name, prefix: [], after: start) { (_, value) throws(LedgerError) -> Bool in
                guard lots.count < limit, examined < examiningAtMost else {
                    more = true
                    return false
                }
                examined += 1
                let lot = try Lot(storedBytes: value)
                lastExamined = (lot.beneficiary, lot.id)
                if lot.isExpired(at: now) { lots.append(lot) }
                return true
            }
            return (lots, more ? lastExamined : nil)
        }
    }

    /// A badge and its class, as the ledger holds them.
    public func badge(_ id: String) throws(LedgerError) -> (badge: JSONValue, badgeClass: JSONValue?)? {
        try withState { (state) throws(LedgerError) in
            guard let badge = try state.json(.badges, id) else { return nil }
            guard let classID = badge["badge_class"]?.stringValue else { return (badge, nil) }
            return (badge, try state.json(.badgeClasses, classID))
        }
    }

    /// The policy in force as the ledger holds it (`policy.updated`), nil before the first.
    public func currentPolicy() throws(LedgerError) -> JSONValue? {
        try withState { (state) throws(LedgerError) in try state.json(.policy, "current") }
    }

    /// A settlement as the ledger holds it (`settlement.requested`, then `settlement.paid`).
    public func settlement(_ id: String) throws(LedgerError) -> JSONValue? {
        try withState { (state) throws(LedgerError) in try state.json(.settlements, id) }
    }

    /// An actor as the registry holds it now.
    public func actorRecord(_ id: String) throws(LedgerError) -> ActorRecord? {
        try withState { (state) throws(LedgerError) in try state.actor(id) }
    }

    /// Records from seq `start`, at most `limit` and about `maximumBytes` (always at least one record when there
    /// is one), with the checkpoints stored for the sizes they reach.
    public func recordsPage(from start: UInt64, limit: Int, maximumBytes: Int = LedgerQueryLimits.maximumRecordBytesPerPage) throws(LedgerError) -> RecordsPage {
        let limit = max(1, min(limit, LedgerQueryLimits.maximumRecordsPerPage))
        return try environment.read { (transaction) throws(LedgerError) in
            let size = UInt64(try transaction.count(LedgerDatabase.log))
            var records: [StoredRecord] = []
            var bytes = 0
            var expected = start
            if start < size {
                try transaction.forEach(LedgerDatabase.log, from: BigEndianKey.encode(start)) { (key, value) throws(LedgerError) -> Bool in
                    guard records.count < limit, records.isEmpty || bytes + value.count <= maximumBytes else { return false }
                    guard BigEndianKey.decode(key) == expected else {
                        throw LedgerError(.integrity, "the log has a gap or a damaged key at seq \(expected)")
                    }
                    records.append(StoredRecord(sequenceNumber: expected, leafBytes: [UInt8](value)))
                    bytes += value.count
                    expected += 1
                    return true
                }
            }
            var checkpoints: [(size: UInt64, note: String)] = []
            if !records.isEmpty {
                try transaction.forEach(LedgerDatabase.checkpoints, from: BigEndianKey.encode(start + 1)) { (key, value) throws(LedgerError) -> Bool in
                    guard let checkpointSize = BigEndianKey.decode(key) else { throw LedgerError(.integrity, "a checkpoint key is damaged") }
                    guard checkpointSize <= expected else { return false }
                    checkpoints.append((checkpointSize, String(decoding: value, as: UTF8.self)))
                    return true
                }
            }
            return RecordsPage(records: records, checkpoints: checkpoints, size: size)
        }
    }

    /// Aggregate figures: the log size, the system accounts and how many entries each public table holds.
    public func report() throws(LedgerError) -> LedgerReport {
        try environment.read { (transaction) throws(LedgerError) in
            let state = TransactionLedgerState(transaction: transaction)
            var balances: [String: Int64] = [:]
            for account in [Account.issuance, Account.fund, Account.settlement] { balances[account] = try state.balance(account) }
            var counts: [String: Int] = [:]
            for table in [StateTable.actors, .opportunities, .merchants, .badgeClasses, .badges, .cases, .activations, .payments, .settlements] {
                counts[table.name] = try transaction.count(table.name)
            }
            return LedgerReport(size: UInt64(try transaction.count(LedgerDatabase.log)), systemBalances: balances, tableCounts: counts)
        }
    }

    // MARK: Helpers

    static func clampedLimit(_ limit: Int) -> Int { max(1, min(limit, LedgerQueryLimits.maximumPageEntries)) }

    static func record(_ transaction: LMDBTransaction, _ sequenceNumber: UInt64) throws(LedgerError) -> Record {
        guard let leafBytes = try transaction.get(LedgerDatabase.log, BigEndianKey.encode(sequenceNumber)) else {
            throw LedgerError(.integrity, "a projection names seq \(sequenceNumber), which is not in the log")
        }
        return try Record(leafBytes: leafBytes)
    }

    /// Entries whose key is `prefix` ‖ suffix with suffix > `after` (all of them without `after`), in key order,
    /// until `body` returns false.
    static func scan(
        _ transaction: LMDBTransaction, _ database: String, prefix: [UInt8], after: [UInt8]?,
        _ body: ([UInt8], [UInt8]) throws(LedgerError) -> Bool
    ) throws(LedgerError) {
        let start = after.map { prefix + $0 } ?? prefix
        try transaction.forEach(database, from: start) { (key, value) throws(LedgerError) -> Bool in
            guard key.starts(with: prefix) else { return false }
            let keyBytes = [UInt8](key)
            // The start key itself was already returned on the page before.
            if after != nil && keyBytes == start { return true }
            return try body(keyBytes, [UInt8](value))
        }
    }
}
