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
    /// event id → seq (8-byte big-endian).
    public static let eventIDs = "ids"
    /// actor id → JCS of the actor record (projection).
    public static let actors = "actors"
    /// Multikey → actor id (projection; keys are never shared).
    public static let keys = "keys"
    /// "genesis" → JCS of the genesis information.
    public static let meta = "meta"

    public static let all = [log, tree, checkpoints, eventIDs, actors, keys, meta]
}

/// The ledger state read and written inside one LMDB transaction: the rulebook's view for live writes.
struct TransactionLedgerState: LedgerStateReader {
    let transaction: LMDBTransaction

    func genesis() throws(LedgerError) -> GenesisInfo? {
        guard let bytes = try transaction.get(LedgerDatabase.meta, Array("genesis".utf8)) else { return nil }
        return try GenesisInfo(json: try JSONParser.parse(bytes))
    }

    func actor(_ id: String) throws(LedgerError) -> ActorRecord? {
        guard let bytes = try transaction.get(LedgerDatabase.actors, Array(id.utf8)) else { return nil }
        return try ActorRecord(json: try JSONParser.parse(bytes))
    }

    func ownerOfKey(_ multikey: String) throws(LedgerError) -> String? {
        guard let bytes = try transaction.get(LedgerDatabase.keys, Array(multikey.utf8)) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    func sequenceNumber(ofEventID id: String) throws(LedgerError) -> UInt64? {
        guard let bytes = try transaction.get(LedgerDatabase.eventIDs, Array(id.utf8)) else { return nil }
        guard let sequenceNumber = BigEndianKey.decode(bytes) else {
            throw LedgerError(.integrity, "the id index entry for \(id) is damaged")
        }
        return sequenceNumber
    }

    func apply(_ changes: [StateChange]) throws(LedgerError) {
        for change in changes {
            switch change {
            case .setGenesis(let info):
                try transaction.put(LedgerDatabase.meta, Array("genesis".utf8), CanonicalJSON.encode(info.json))
            case .putActor(let record):
                try transaction.put(LedgerDatabase.actors, Array(record.id.utf8), CanonicalJSON.encode(record.json))
            case .claimKey(let multikey, let actor):
                try transaction.put(LedgerDatabase.keys, Array(multikey.utf8), Array(actor.utf8))
            case .recordEventID(let id, let sequenceNumber):
                try transaction.put(LedgerDatabase.eventIDs, Array(id.utf8), BigEndianKey.encode(sequenceNumber))
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
