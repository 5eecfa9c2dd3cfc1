import CircuitoCore
import CircuitoCrypto
import Glibc

/// Reads of a ledger: records, checkpoints, roots and proofs. Each call is one short read transaction, so a
/// reader may be used from any thread (the environment is opened with MDB_NOTLS) while a writer appends.
public struct LedgerReader: @unchecked Sendable {
    // @unchecked: LMDBEnvironment is thread-safe and GenesisInfo is a value.
    let environment: LMDBEnvironment
    public let genesis: GenesisInfo

    init(environment: LMDBEnvironment, genesis: GenesisInfo) {
        self.environment = environment
        self.genesis = genesis
    }

    /// Opens a ledger directory for reading only; no lock is taken, a writer may be running. The map is the one the
    /// ledger's writers recorded (`Options.reading`), so it covers all they may write while this reader runs.
    public static func open(directory: String, options: LMDBEnvironment.Options = .reading) throws(LedgerError) -> LedgerReader {
        try LedgerFiles.explainingUnfinishedInitialisation(in: directory) { () throws(LedgerError) in
            try openExisting(directory: directory, options: options)
        }
    }

    private static func openExisting(directory: String, options: LMDBEnvironment.Options) throws(LedgerError) -> LedgerReader {
        guard LedgerFiles.holdsDataFile(directory) else {
            throw LedgerError(.notFound, "\(directory) holds no ledger")
        }
        let environment = try LMDBEnvironment(path: directory, databaseNames: LedgerDatabase.all, create: false, options: options)
        let genesis = try environment.read { (transaction) throws(LedgerError) -> GenesisInfo in
            guard let genesis = try TransactionLedgerState(transaction: transaction).genesis() else {
                throw LedgerError(.genesisRequired, "\(directory) has no genesis record" + emptyLedgerHint(directory, transaction: transaction))
            }
            return genesis
        }
        return LedgerReader(environment: environment, genesis: genesis)
    }

    /// What an LMDB environment with no record at all and no checkpoint key beside it is: the files of a `circuito
    /// follow` stopped before its first commit (a writer's ledger has its `ledger.key`, and `init` leaves its own mark).
    private static func emptyLedgerHint(_ directory: String, transaction: LMDBTransaction) -> String {
        guard (try? transaction.count(LedgerDatabase.log)) == 0,
            access(directory + "/" + LedgerFiles.checkpointKey, F_OK) != 0,
            access(directory + "/" + LedgerFiles.unfinishedInitialisation, F_OK) != 0
        else { return "" }
        return " (it holds no record: a circuito follow into it stopped before its first commit; the next follow into it removes these files and starts the replica)"
    }

    /// Opens a ledger to read its records in order while a server may be writing it (`circuito export`, `circuito
    /// report`): mapped without read-ahead, which would leave the live file in large page-cache folios that slow the
    /// server's commits (`Specs/ledger.md` 10.4); from the first record, the whole file is asked for ahead
    /// (`PageCache.prefetch`), in single pages, so that the scan's faults find it cached or being read.
    public static func openForScan(directory: String, fromSequenceNumber: UInt64 = 0) throws(LedgerError) -> LedgerReader {
        let reader = try open(directory: directory, options: .readingBesideAServer)
        if fromSequenceNumber == 0 { _ = try PageCache.prefetch(path: directory + "/data.mdb") }
        return reader
    }

    /// Closes the ledger's environment now rather than with its last reference (`LMDBEnvironment.close`): it waits
    /// for the reads and commits in progress, at most `timeoutMilliseconds`, refuses every later one with
    /// `storage_error`, and lets this process open the ledger again; whether it closed.
    @discardableResult
    public func close(timeoutMilliseconds: Int = 30_000) -> Bool {
        environment.close(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// The size of this reader's map of the ledger: the largest its writers have recorded (`Options.reading`).
    public var mapSizeBytes: Int { environment.mapSizeBytes }

    /// Writes a consistent copy of the ledger's records and projections (one read snapshot) as `directory`/data.mdb;
    /// `directory` must exist and hold no ledger. The checkpoint key file is not copied. `compacting` leaves out the
    /// file's free pages (`LMDBEnvironment.copy`).
    public func copyDatabase(to directory: String, compacting: Bool = false) throws(LedgerError) {
        try environment.copy(to: directory, compacting: compacting)
    }

    /// The ledger's checkpoint verifier, from the key named in genesis.
    public func checkpointVerifier() throws(LedgerError) -> NoteVerifier {
        guard let key = Multikey.decodePublicKey(genesis.checkpointKey) else {
            throw LedgerError(.integrity, "genesis names a checkpoint key that is not a Multikey")
        }
        return try NoteVerifier(name: genesis.origin, publicKey: key)
    }

    /// Runs `body` against the ledger state (every projection table) in one short read transaction: a consistent
    /// snapshot. Do not keep anything from `body` but values it returns.
    public func withState<Result>(_ body: (TransactionLedgerState) throws(LedgerError) -> Result) throws(LedgerError) -> Result {
        try environment.read { (transaction) throws(LedgerError) in try body(TransactionLedgerState(transaction: transaction)) }
    }

    /// Number of records (the tree size).
    public func size() throws(LedgerError) -> UInt64 {
        try environment.read { (transaction) throws(LedgerError) in UInt64(try transaction.count(LedgerDatabase.log)) }
    }

    public func leafBytes(sequenceNumber: UInt64) throws(LedgerError) -> [UInt8] {
        try environment.read { (transaction) throws(LedgerError) in
            guard let bytes = try transaction.get(LedgerDatabase.log, BigEndianKey.encode(sequenceNumber)) else {
                throw LedgerError(.notFound, "there is no record at seq \(sequenceNumber)")
            }
            return bytes
        }
    }

    /// The first record whose `recorded_at` is later than `millisecondsSince1970`, found by bisection, since
    /// `recorded_at` never decreases along a log that verifies (Specs/ledger.md 5.3); nil when there is none. What
    /// `verify` reports of a ledger whose clock ran ahead: the rules acted on that time from this record on.
    public func firstRecord(recordedAfter millisecondsSince1970: Int64) throws(LedgerError) -> (sequenceNumber: UInt64, recordedAt: String)? {
        func recordedAt(_ sequenceNumber: UInt64) throws(LedgerError) -> (text: String, milliseconds: Int64) {
            let record = try Record(leafBytes: try leafBytes(sequenceNumber: sequenceNumber))
            guard let milliseconds = Timestamp.millisecondsSince1970(record.recordedAt) else {
                throw LedgerError(.integrity, "the record at seq \(sequenceNumber) has no valid recorded_at")
            }
            return (record.recordedAt, milliseconds)
        }
        let count = try size()
        guard count > 0, try recordedAt(count - 1).milliseconds > millisecondsSince1970 else { return nil }
        // Invariant: the record at `high` is later; none before `low` is.
        var low: UInt64 = 0
        var high = count - 1
        while low < high {
            let middle = low + (high - low) / 2
            if try recordedAt(middle).milliseconds > millisecondsSince1970 { high = middle } else { low = middle + 1 }
        }
        return (high, try recordedAt(high).text)
    }

    /// Calls `body` with the leaf bytes of each record from `start`, in seq order, in one read transaction,
    /// until it returns false.
    public func forEachRecord(
        from start: UInt64, _ body: (UInt64, UnsafeRawBufferPointer) throws(LedgerError) -> Bool
    ) throws(LedgerError) {
        try environment.read { (transaction) throws(LedgerError) in
            try Self.forEachRecord(in: transaction, from: start, body)
        }
    }

    /// `forEachRecord` over the snapshot of `state` (inside `withState`): the records are exactly those the state
    /// comes from, with no lookup per record to leave out the ones a writer appended after it.
    public func forEachRecord(
        in state: TransactionLedgerState, from start: UInt64, _ body: (UInt64, UnsafeRawBufferPointer) throws(LedgerError) -> Bool
    ) throws(LedgerError) {
        try Self.forEachRecord(in: state.transaction, from: start, body)
    }

    private static func forEachRecord(
        in transaction: LMDBTransaction, from start: UInt64, _ body: (UInt64, UnsafeRawBufferPointer) throws(LedgerError) -> Bool
    ) throws(LedgerError) {
        var expected = start
        try transaction.forEach(LedgerDatabase.log, from: BigEndianKey.encode(start)) { (key, value) throws(LedgerError) -> Bool in
            // No log reaches 2^64 − 1 records, so a record there is a damaged key too (and `expected` stays countable).
            guard let sequenceNumber = BigEndianKey.decode(key), sequenceNumber == expected, sequenceNumber < .max else {
                throw LedgerError(.integrity, "the log has a gap or a damaged key after seq \(expected)")
            }
            expected += 1
            return try body(sequenceNumber, value)
        }
    }

    /// The latest signed checkpoint note.
    public func latestCheckpoint() throws(LedgerError) -> String {
        try environment.read { (transaction) throws(LedgerError) in
            guard let last = try transaction.last(LedgerDatabase.checkpoints) else {
                throw LedgerError(.notFound, "the ledger has no checkpoint")
            }
            return String(decoding: last.value, as: UTF8.self)
        }
    }

    /// The first checkpoint whose tree contains `sequenceNumber`.
    public func checkpointCovering(sequenceNumber: UInt64) throws(LedgerError) -> String {
        try environment.read { (transaction) throws(LedgerError) in
            try Self.checkpointCovering(sequenceNumber: sequenceNumber, in: transaction)
        }
    }

    /// The first stored checkpoint whose tree holds seq `sequenceNumber`, read in `transaction` (also a write one).
    static func checkpointCovering(sequenceNumber: UInt64, in transaction: LMDBTransaction) throws(LedgerError) -> String {
        guard let entry = try transaction.first(LedgerDatabase.checkpoints, atOrAfter: BigEndianKey.encode(sequenceNumber + 1)) else {
            throw LedgerError(.notFound, "no checkpoint covers seq \(sequenceNumber)")
        }
        return String(decoding: entry.value, as: UTF8.self)
    }

    /// The stored checkpoints of tree size `firstSize` and up as (tree size, note), in size order, until `body`
    /// returns false; all in one read transaction.
    public func forEachCheckpoint(fromSize firstSize: UInt64 = 0, _ body: (UInt64, String) throws(LedgerError) -> Bool) throws(LedgerError) {
        try environment.read { (transaction) throws(LedgerError) in
            try transaction.forEach(LedgerDatabase.checkpoints, from: BigEndianKey.encode(firstSize)) { (key, value) throws(LedgerError) -> Bool in
                guard let size = BigEndianKey.decode(key) else {
                    throw LedgerError(.integrity, "a checkpoint key is damaged")
                }
                return try body(size, String(decoding: value, as: UTF8.self))
            }
        }
    }

    /// At most `limit` stored checkpoints of tree size `firstSize` and up, as (tree size, note) in size order: one
    /// page, read in one short transaction, to go through them all without holding a transaction open.
    public func checkpoints(fromSize firstSize: UInt64, limit: Int) throws(LedgerError) -> [(size: UInt64, note: String)] {
        precondition(limit > 0, "a page holds at least one checkpoint")
        var page: [(size: UInt64, note: String)] = []
        try forEachCheckpoint(fromSize: firstSize) { size, note in
            page.append((size, note))
            return page.count < limit
        }
        return page
    }

    /// Tree root at any size up to the current one.
    public func root(treeSize: UInt64) throws(LedgerError) -> [UInt8] {
        try withTree(size: treeSize) { (nodes) throws(LedgerError) in
            try MerkleProofs.root(treeSize: treeSize, source: nodes)
        }
    }

    public func inclusionProof(leafIndex: UInt64, treeSize: UInt64) throws(LedgerError) -> [[UInt8]] {
        try withTree(size: treeSize) { (nodes) throws(LedgerError) in
            try MerkleProofs.inclusionProof(leafIndex: leafIndex, treeSize: treeSize, source: nodes)
        }
    }

    public func consistencyProof(firstSize: UInt64, secondSize: UInt64) throws(LedgerError) -> [[UInt8]] {
        try withTree(size: secondSize) { (nodes) throws(LedgerError) in
            try MerkleProofs.consistencyProof(firstSize: firstSize, secondSize: secondSize, source: nodes)
        }
    }

    private func withTree<Result>(
        size: UInt64, _ body: (TransactionMerkleNodes) throws(LedgerError) -> Result
    ) throws(LedgerError) -> Result {
        try environment.read { (transaction) throws(LedgerError) in
            let current = UInt64(try transaction.count(LedgerDatabase.log))
            guard size <= current else {
                throw LedgerError(.invalidRange, "tree size \(size) is larger than the ledger (\(current) records)")
            }
            return try body(TransactionMerkleNodes(transaction: transaction))
        }
    }
}
