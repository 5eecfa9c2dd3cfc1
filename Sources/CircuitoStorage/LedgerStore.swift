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

    public init(transaction: LMDBTransaction) {
        self.transaction = transaction
    }

    public func value(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> [UInt8]? {
        try transaction.get(table.name, key)
    }

    public func entries(_ table: StateTable, prefix: [UInt8], limit: Int) throws(LedgerError) -> [(key: [UInt8], value: [UInt8])] {
        try transaction.entries(table.name, prefix: prefix, limit: limit)
    }

    public func apply(_ changes: [StateChange]) throws(LedgerError) {
        for change in changes {
            switch change {
            case .put(let table, let key, let value): try transaction.put(table.name, key, value)
            case .delete(let table, let key): try transaction.delete(table.name, key)
            }
        }
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
