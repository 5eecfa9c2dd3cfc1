import CircuitoCore
import CircuitoCrypto

/// The named databases of a ledger environment (DESIGN.md: the log is `log`, key = seq as 8-byte big-endian).
public enum LedgerDatabase {
    /// seq (8-byte big-endian) → leaf bytes (JCS of the record).
    public static let log = "log"
    /// level (1 byte) ‖ index (8-byte big-endian) → 32-byte hash of that complete subtree.
    public static let tree = "tree"
    /// tree size (8-byte big-endian) → signed checkpoint note committed at that size.
    public static let checkpoints = "checkpoints"

    /// The log's own databases; the state tables (projections) come from `StateTable.all`.
    public static let logDatabases = [log, tree, checkpoints]
    public static let all = logDatabases + StateTable.all.map(\.name)
}

/// The ledger state read and written inside one LMDB transaction: the rulebook's view for live writes, replay and
/// rebuild.
public struct TransactionLedgerState: LedgerStateReader {
    let transaction: LMDBTransaction
    /// Parsed JSON values read in this transaction, when enabled (see `init`).
    private let parsedValues: ParsedValueCache?
    /// False for a replay that only checks the rules (`verify`): `apply` leaves out the changes to the tables no rule
    /// reads (`StateTable.queryOnly`), which `verify` need not write, and reading one of them is a broken
    /// invariant, since the rules would then see them empty.
    private let keepsQueryOnlyTables: Bool

    /// `cachingParsedValues`: keep the JSON values the rules read (actors, merchants, policy, cases…), so that the
    /// events of one replay chunk (thousands of records in one transaction) parse each once. Only for a state that is
    /// the sole writer of its transaction's state tables: `apply` forgets what it changes, and nothing else may
    /// change them. Live commits are too small for it to pay (an A/B run of the server showed no gain).
    public init(transaction: LMDBTransaction, cachingParsedValues: Bool = false) {
        self.transaction = transaction
        self.parsedValues = cachingParsedValues ? ParsedValueCache() : nil
        self.keepsQueryOnlyTables = true
    }

    /// A state whose parsed values outlive its transaction: a replay keeps one cache over all its transactions,
    /// since it is the only writer of its scratch environment and stops at the first transaction that fails.
    /// `keepingQueryOnlyTables`: false when the replay's state serves only the rules (see `keepsQueryOnlyTables`).
    init(transaction: LMDBTransaction, parsedValues: ParsedValueCache, keepingQueryOnlyTables: Bool) {
        self.transaction = transaction
        self.parsedValues = parsedValues
        self.keepsQueryOnlyTables = keepingQueryOnlyTables
    }

    public func value(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> [UInt8]? {
        requireKept(table)
        return try transaction.get(table, key)
    }

    /// A read of a table this state leaves out would answer from an empty table: a rule that reads one breaks
    /// `StateTable.queryOnly`, and the replay must not go on with a wrong answer.
    private func requireKept(_ table: StateTable) {
        precondition(keepsQueryOnlyTables || !table.isQueryOnly, "a rule read \(table), which StateTable.queryOnly says no rule reads")
    }

    public func json(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> JSONValue? {
        guard let parsedValues else {
            return try value(table, key).map { (bytes) throws(LedgerError) in try StoredJSON.parse(bytes, table: table) }
        }
        let cacheKey = ParsedValueCache.Key(table: table, key: key)
        if let known = parsedValues.values[cacheKey] { return known }
        let parsed = try value(table, key).map { (bytes) throws(LedgerError) in try StoredJSON.parse(bytes, table: table) }
        parsedValues.remember(parsed, for: cacheKey)
        return parsed
    }

    public func actor(_ id: String) throws(LedgerError) -> ActorRecord? {
        let cacheKey = ParsedValueCache.Key(table: .actors, key: Array(id.utf8))
        if let known = parsedValues?.actors[cacheKey] { return known }
        guard let json = try json(.actors, cacheKey.key) else { return nil }
        let record = try ActorRecord(json: json)
        parsedValues?.remember(record, for: cacheKey)
        return record
    }

    public func entries(_ table: StateTable, prefix: [UInt8], limit: Int) throws(LedgerError) -> [(key: [UInt8], value: [UInt8])] {
        requireKept(table)
        return try transaction.entries(table.name, prefix: prefix, limit: limit)
    }

    public func apply(_ changes: [StateChange]) throws(LedgerError) {
        for change in changes {
            switch change {
            case .put(let table, let key, let value):
                if !keepsQueryOnlyTables && table.isQueryOnly { continue }
                parsedValues?.forget(ParsedValueCache.Key(table: table, key: key))
                try transaction.put(table, key, value)
            case .delete(let table, let key):
                if !keepsQueryOnlyTables && table.isQueryOnly { continue }
                parsedValues?.forget(ParsedValueCache.Key(table: table, key: key))
                try transaction.delete(table, key)
            }
        }
    }
}

/// Parsed state values of one transaction (or of one replay, over its transactions), bounded: when full it starts over.
final class ParsedValueCache {
    typealias Key = StateEntryKey

    static let maximumEntries = 16_384
    /// A missing value is remembered as `.some(nil)`.
    private(set) var values: [Key: JSONValue?] = [:]

    /// Actor records decoded from the values above (every event reads its signer's).
    private(set) var actors: [Key: ActorRecord] = [:]

    func remember(_ value: JSONValue?, for key: Key) {
        if values.count >= Self.maximumEntries { values.removeAll(keepingCapacity: true) }
        values[key] = .some(value)
    }

    func remember(_ actor: ActorRecord, for key: Key) {
        precondition(key.table == .actors, "only actor records are kept decoded")
        if actors.count >= Self.maximumEntries { actors.removeAll(keepingCapacity: true) }
        actors[key] = actor
    }

    func forget(_ key: Key) {
        values[key] = nil
        if key.table == .actors { actors[key] = nil }
    }
}

/// Tree nodes read from the `tree` database.
struct TransactionMerkleNodes: MerkleNodeSource {
    let transaction: LMDBTransaction

    static func key(level: Int, index: UInt64) -> [UInt8] {
        [UInt8(truncatingIfNeeded: level)] + BigEndianKey.encode(index)
    }

    func completeSubtreeHash(level: Int, index: UInt64) throws(LedgerError) -> [UInt8] {
        guard let hash = try transaction.get(LedgerDatabase.tree, Self.key(level: level, index: index)),
            hash.count == SHA256.byteCount
        else {
            throw LedgerError(.integrity, "tree node (level \(level), index \(index)) is missing or damaged")
        }
        return hash
    }
}
