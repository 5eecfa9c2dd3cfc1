import CircuitoCore
import CircuitoCrypto
import Glibc

/// Files of a ledger directory besides LMDB's own `data.mdb` and `lock.mdb`.
public enum LedgerFiles {
    /// The ledger's checkpoint signing key (mode 0600).
    public static let checkpointKey = "ledger.key"
    /// Held (flock) by the one process that writes.
    public static let writerLock = "writer.lock"
    /// There from the start of `init` until its genesis is committed (`Specs/ledger.md` 10.1): an `init` stopped
    /// half-way (killed, the power cut) leaves it beside the files it made, so that the next `init` in the folder
    /// knows them for its own, removes them and starts over, and readers say what happened.
    public static let unfinishedInitialisation = "init.partial"

    /// Whether `directory` holds a `data.mdb` that is a regular file (a folder by that name is no ledger).
    static func holdsDataFile(_ directory: String) -> Bool {
        var status = stat()
        return stat(directory + "/data.mdb", &status) == 0 && status.st_mode & S_IFMT == S_IFREG
    }

    /// Runs `body` (an open of the ledger in `directory`); when it fails and the folder holds an `init` that did not
    /// finish, the error says so and what to do.
    static func explainingUnfinishedInitialisation<Result>(
        in directory: String, _ body: () throws(LedgerError) -> Result
    ) throws(LedgerError) -> Result {
        do { return try body() } catch {
            // Beside a writer (an init still running) the lock's own message says what is going on.
            guard error.code != .locked, access(directory + "/" + unfinishedInitialisation, F_OK) == 0 else { throw error }
            throw LedgerError(
                error.code,
                "\(error.message) (\(directory) holds an init that did not finish, \(unfinishedInitialisation): run circuito init on it again, which starts over)")
        }
    }
}

/// The writer side of a ledger directory: one per directory at a time (an exclusive lock keeps others out).
///
/// `append` is group commit: every event of a batch is checked by the rulebook against the state left by the
/// events before it, accepted ones are appended with their projections and tree nodes, and the batch ends in one
/// LMDB commit with one signed checkpoint.
public final class Ledger {
    public let directory: String
    let environment: LMDBEnvironment
    private let writerLock: FileLock
    private let checkpointSigner: NoteSigner
    public let genesis: GenesisInfo
    /// The tree as of the last commit.
    public private(set) var frontier: MerkleFrontier
    /// The `recorded_at` of the last record, in milliseconds since 1970 (0 before any).
    public private(set) var lastRecordedAtMilliseconds: Int64
    /// Where the time comes from; tests may fix it.
    private let clock: @Sendable () -> Int64
    /// Whether appends go on, at the last record's `recorded_at`, while the clock reads more than
    /// `Timestamp.maximumClockBehindMilliseconds` behind it (the operator's `--accept-clock-behind`); otherwise they
    /// are refused with `clock_behind` (Specs/ledger.md 5.3).
    public var acceptsClockBehind = false
    /// Refuses appends while the clock has been set ahead since an earlier one (`clock_jumped`); off by default, as
    /// tests move the clock by hand: `circuito append` turns it on.
    public var clockJumpCheck: ClockJumpCheck?
    /// What this ledger's appends have cost since it was opened (see `AppendStatistics`).
    public private(set) var statistics = AppendStatistics()

    /// Upper bound of events in one `append` call (one LMDB transaction).
    public static let maximumBatchCount = 4096

    /// Creates a ledger in `directory` (made if missing, must hold no ledger yet) and writes its genesis. When it fails
    /// it leaves no file of its own but the writer lock's, and no folder it made.
    public static func create(
        directory: String, genesis: VerifiedEvent, checkpointKey: Ed25519PrivateKey,
        options: LMDBEnvironment.Options = .init(), clock: @escaping @Sendable () -> Int64 = Ledger.systemClockMilliseconds
    ) throws(LedgerError) -> Ledger {
        guard genesis.event.type == "ledger.genesis" else {
            throw LedgerError(.genesisRequired, "a ledger starts with ledger.genesis, not \(genesis.event.type)")
        }
        guard genesis.event.body["checkpoint_key"]?.stringValue == checkpointKey.publicKey.multikey else {
            throw LedgerError(.invalidBody, "genesis checkpoint_key must be the public key of the ledger's checkpoint key")
        }
        // Check genesis against the rulebook before anything touches the disk, so a refused genesis leaves nothing.
        let createdAt = clock()
        try Timestamp.requireRecordable(millisecondsSince1970: createdAt)
        let position = LogPosition(sequenceNumber: 0, recordedAt: Timestamp.format(millisecondsSince1970: createdAt))
        _ = try Rulebook.check(genesis, at: position, state: MemoryLedgerState())
        let madeFolder = try FileIO.makeDirectory(directory, mode: 0o700, existingIsFine: true)
        do throws(LedgerError) {
            return try create(inFolder: directory, genesis: genesis, checkpointKey: checkpointKey, options: options, clock: clock)
        } catch {
            // The steps below remove every file they made but the writer lock's. In a folder this create made, that
            // file goes too, and then the folder (rmdir: only while empty), so that a failed init leaves nothing.
            if madeFolder {
                unlink(directory + "/" + LedgerFiles.writerLock)
                rmdir(directory)
            }
            throw error
        }
    }

    /// The steps of `create` once its folder is there.
    private static func create(
        inFolder directory: String, genesis: VerifiedEvent, checkpointKey: Ed25519PrivateKey,
        options: LMDBEnvironment.Options, clock: @escaping @Sendable () -> Int64
    ) throws(LedgerError) -> Ledger {
        let markerPath = directory + "/" + LedgerFiles.unfinishedInitialisation
        if access(markerPath, F_OK) != 0 && access(directory + "/data.mdb", F_OK) == 0 {
            throw LedgerError(.genesisAlreadyWritten, "\(directory) already holds a ledger")
        }
        let lock = try FileLock(path: directory + "/" + LedgerFiles.writerLock)
        // Under the lock, so that no other create or writer is half-way through this folder.
        if access(markerPath, F_OK) == 0 {
            try clearUnfinishedInitialisation(in: directory)
        } else if access(directory + "/data.mdb", F_OK) == 0 {
            throw LedgerError(.genesisAlreadyWritten, "\(directory) already holds a ledger")
        }
        // Synced with its folder before the first file the init makes: after any stop, the marker is there whenever
        // one of those files is.
        try FileIO.writeSyncedFile(
            markerPath, text: "circuito init started here and has not finished; run circuito init on this folder again to start over\n",
            directory: directory)
        // Refuses to replace a key file already there (O_EXCL): then nothing below ran, and only the marker is removed.
        do throws(LedgerError) {
            try KeyFile.write(checkpointKey, to: directory + "/" + LedgerFiles.checkpointKey)
        } catch {
            unlink(markerPath)
            throw error
        }
        var started: Ledger?
        do throws(LedgerError) {
            let ledger = try startLedger(in: directory, genesis: genesis, checkpointKey: checkpointKey, lock: lock, options: options, clock: clock)
            started = ledger
            // Genesis is committed (and synced): the ledger is whole. The folder is synced before the marker goes, so
            // that LMDB's files are there under their names whenever the marker is not (a file system need not keep
            // its names in the order they were made; the key's name was synced when it was written), and again after.
            try FileIO.synchronise(directory)
            unlink(markerPath)
            try FileIO.synchronise(directory)
            return ledger
        } catch {
            // Any step after the key (Specs/ledger.md 10.1): a ledger that failed to start (its environment is closed
            // by now), or one whose names may not be durable (closed here), leaves neither its key nor LMDB's files
            // (there was no data.mdb before), still under the writer lock, so the same command can run again.
            _ = started?.environment.close()
            for file in [LedgerFiles.checkpointKey, "data.mdb", "lock.mdb", LedgerFiles.unfinishedInitialisation] {
                unlink(directory + "/" + file)
            }
            throw error
        }
    }

    /// The files an `init` stopped half-way left (its marker is there, and the caller holds the writer lock): its
    /// key, which has signed nothing, and an LMDB environment without a committed genesis are removed, so that this
    /// create starts over. An environment whose genesis was committed (the `init` stopped between its commit and the
    /// marker's removal) is a whole ledger: the marker goes, and the folder is refused as holding a ledger.
    private static func clearUnfinishedInitialisation(in directory: String) throws(LedgerError) {
        let markerPath = directory + "/" + LedgerFiles.unfinishedInitialisation
        if access(directory + "/data.mdb", F_OK) == 0, try environmentHoldsRecords(in: directory) {
            unlink(markerPath)
            try FileIO.synchronise(directory)
            // That init stopped before it printed the verifier key: say where it is found.
            throw LedgerError(
                .genesisAlreadyWritten,
                "\(directory) already holds a ledger: an earlier init committed its genesis and stopped before it finished; the ledger is whole, and circuito serve prints its verifier key")
        }
        for file in [LedgerFiles.checkpointKey, "data.mdb", "lock.mdb"] {
            let path = directory + "/" + file
            guard unlink(path) == 0 || errno == ENOENT else {
                throw LedgerError(.storage, "cannot remove \(path), left by an init that did not finish: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Whether the environment in `directory` holds a committed record. One that never committed has no named
    /// databases (`not_found` on opening them) or an empty log. One that LMDB cannot read at all (`integrity_failure`:
    /// meta pages that are not LMDB's, zeroed by a power cut, or a file cut short) counts as none too: with the
    /// marker there no writer ever opened it, so it held at most the genesis, and it is unreadable. Any other failure
    /// is reported, and nothing removed.
    private static func environmentHoldsRecords(in directory: String) throws(LedgerError) -> Bool {
        let environment: LMDBEnvironment
        do throws(LedgerError) {
            environment = try LMDBEnvironment(path: directory, databaseNames: LedgerDatabase.all, create: false)
        } catch where error.code == .notFound || error.code == .integrity {
            return false
        }
        defer { _ = environment.close() }
        return try environment.read { (transaction) throws(LedgerError) in try transaction.count(LedgerDatabase.log) > 0 }
    }

    /// The part of `create` after the key file: the LMDB environment and the genesis record.
    private static func startLedger(
        in directory: String, genesis: VerifiedEvent, checkpointKey: Ed25519PrivateKey, lock: FileLock,
        options: LMDBEnvironment.Options, clock: @escaping @Sendable () -> Int64
    ) throws(LedgerError) -> Ledger {
        let environment = try LMDBEnvironment(path: directory, databaseNames: LedgerDatabase.all, create: true, options: options)
        // Genesis goes through the same rulebook and commit path as every later event.
        let genesisInfo = GenesisInfo(
            origin: genesis.event.body["origin"]?.stringValue ?? "", authority: genesis.event.actor,
            checkpointKey: checkpointKey.publicKey.multikey, currencyCode: Rulebook.currencyCode,
            currencyDecimals: Rulebook.currencyDecimals)
        let ledger = try Ledger(
            directory: directory, environment: environment, lock: lock, checkpointKey: checkpointKey,
            genesis: genesisInfo, frontier: MerkleFrontier(), lastRecordedAtMilliseconds: 0, clock: clock)
        guard case .failure(let error) = try ledger.append([genesis])[0] else { return ledger }
        throw error
    }

    /// Opens an existing ledger for writing.
    public static func open(
        directory: String, options: LMDBEnvironment.Options = .init(),
        clock: @escaping @Sendable () -> Int64 = Ledger.systemClockMilliseconds
    ) throws(LedgerError) -> Ledger {
        let ledger = try LedgerFiles.explainingUnfinishedInitialisation(in: directory) { () throws(LedgerError) in
            try openWritable(directory: directory, options: options, clock: clock)
        }
        // It opened with its genesis: an init stopped between its commit and removing its marker made a whole ledger.
        let markerPath = directory + "/" + LedgerFiles.unfinishedInitialisation
        if access(markerPath, F_OK) == 0 {
            unlink(markerPath)
            try FileIO.synchronise(directory)
        }
        return ledger
    }

    private static func openWritable(
        directory: String, options: LMDBEnvironment.Options, clock: @escaping @Sendable () -> Int64
    ) throws(LedgerError) -> Ledger {
        guard LedgerFiles.holdsDataFile(directory) else {
            throw LedgerError(.notFound, "\(directory) holds no ledger (run circuito init first)")
        }
        // Before the lock, which creates its file: a backup (Specs/ledger.md 10.4) holds no key, and refusing to
        // write it leaves its folder as it was.
        guard access(directory + "/" + LedgerFiles.checkpointKey, F_OK) == 0 else {
            throw LedgerError(
                .keyFile,
                "\(directory) holds a ledger but not its \(LedgerFiles.checkpointKey), the key that signs its checkpoints: a backup holds none; to write to this copy, put a copy of the ledger's \(LedgerFiles.checkpointKey) beside its data.mdb")
        }
        let lock = try FileLock(path: directory + "/" + LedgerFiles.writerLock)
        let checkpointKey = try KeyFile.read(directory + "/" + LedgerFiles.checkpointKey)
        // `writing`: under the writer lock, the opening stamps the ledger's format version if it has none.
        let environment = try LMDBEnvironment(path: directory, databaseNames: LedgerDatabase.all, create: false, writing: true, options: options)
        let (genesis, frontier, lastRecordedAt) = try environment.read { (transaction) throws(LedgerError) in
            let state = TransactionLedgerState(transaction: transaction)
            guard let genesis = try state.genesis() else {
                throw LedgerError(.genesisRequired, "\(directory) has no genesis record")
            }
            let end = try Self.checkedLogEnd(
                transaction, directory: directory, restore: "restore it from a backup (circuito backup) or a follower", emptyIsWhole: false)
            let frontier = try MerkleFrontier(size: end.size, source: TransactionMerkleNodes(transaction: transaction))
            return (genesis, frontier, end.lastRecordedAtMilliseconds)
        }
        guard genesis.checkpointKey == checkpointKey.publicKey.multikey else {
            throw LedgerError(.keyFile, "\(directory)/\(LedgerFiles.checkpointKey) is not the checkpoint key named in genesis")
        }
        return try Ledger(
            directory: directory, environment: environment, lock: lock, checkpointKey: checkpointKey, genesis: genesis,
            frontier: frontier, lastRecordedAtMilliseconds: lastRecordedAt, clock: clock)
    }

    /// The end of a log opened for writing (a ledger's, or a replica's by its follower), checked: the next record goes
    /// at seq `size`, after the tree of `size` leaves and the latest checkpoint, so a log whose records are not 0 to
    /// size − 1 (the last key, and the seq its record names), or whose last commit has no checkpoint, is damaged, and
    /// would be extended past the damage (every append failing, or records `verify` refuses) instead of refused here;
    /// so is a tree holding a leaf past the log's end (a later commit's records and checkpoint deleted, its state
    /// changes kept). Only the last keys, and one tree node, are read: `verify` checks the rest. `emptyIsWhole`: whether a log of no record and no
    /// checkpoint is whole (a replica before its leader's genesis arrived; a ledger always holds its genesis).
    /// `restore` says, in the refusal, how to get a whole copy again.
    static func checkedLogEnd(
        _ transaction: LMDBTransaction, directory: String, restore: String, emptyIsWhole: Bool
    ) throws(LedgerError) -> (size: UInt64, lastRecordedAtMilliseconds: Int64, latestCheckpoint: (size: UInt64, note: String)?) {
        let damaged = "\(directory)/data.mdb is damaged"
        let size = UInt64(try transaction.count(LedgerDatabase.log))
        var lastRecordedAt: Int64 = 0
        if let last = try transaction.last(LedgerDatabase.log) {
            let record: Record
            do throws(LedgerError) { record = try Record(leafBytes: last.value) } catch {
                throw LedgerError(.integrity, "\(damaged): the last record of its log cannot be read (\(error.message)); \(restore)")
            }
            guard let lastKey = BigEndianKey.decode(last.key), lastKey == size - 1, record.sequenceNumber == lastKey else {
                throw LedgerError(
                    .integrity,
                    "\(damaged): its log holds \(size) records, the last stored under \(BigEndianKey.decode(last.key).map { "seq \($0)" } ?? "a damaged key") as seq \(record.sequenceNumber), where seq \(size - 1) was due (a record missing or misplaced); \(restore)")
            }
            lastRecordedAt = Timestamp.millisecondsSince1970(record.recordedAt) ?? 0
        }
        let latest = try transaction.last(LedgerDatabase.checkpoints)
        let latestCheckpointSize = latest.map { BigEndianKey.decode($0.key) }
        guard latestCheckpointSize == size || (emptyIsWhole && size == 0 && latest == nil) else {
            let covered = latestCheckpointSize.map { $0.map { "\($0)" } ?? "a damaged number of" } ?? "no"
            throw LedgerError(
                .integrity,
                "\(damaged): its latest checkpoint covers \(covered) records, its log holds \(size) (every commit ends with its checkpoint); \(restore)")
        }
        // The tree is written in the same commit as the records and the state they change: a leaf hash past the log's
        // end is a later commit whose records and checkpoint are gone while its state changes stay, which the next
        // commit would build on. One lookup; a commit removed with its tree nodes too is left to `rebuild` (`verify`
        // reads no state table).
        guard try transaction.get(LedgerDatabase.tree, TransactionMerkleNodes.key(level: 0, index: size)) == nil else {
            throw LedgerError(
                .integrity,
                "\(damaged): its tree holds the leaf hash of seq \(size), past the end of its log of \(size) records: the records and checkpoint of a later commit are gone, and the state tables still hold what it changed; \(restore)")
        }
        return (size, lastRecordedAt, latest.map { (size, String(decoding: $0.value, as: UTF8.self)) })
    }

    /// Whether the ledger's storage failed so that this process can commit nothing more (LMDB's `MDB_PANIC`, after a
    /// write of a meta page failed): only opening the ledger again, in a new process, clears it.
    public var storageHasFailed: Bool { environment.hasFailed }

    private init(
        directory: String, environment: LMDBEnvironment, lock: FileLock, checkpointKey: Ed25519PrivateKey,
        genesis: GenesisInfo, frontier: MerkleFrontier, lastRecordedAtMilliseconds: Int64,
        clock: @escaping @Sendable () -> Int64
    ) throws(LedgerError) {
        self.directory = directory
        self.environment = environment
        self.writerLock = lock
        self.checkpointSigner = try NoteSigner(name: genesis.origin, privateKey: checkpointKey)
        self.genesis = genesis
        self.frontier = frontier
        self.lastRecordedAtMilliseconds = lastRecordedAtMilliseconds
        self.clock = clock
        // Dead readers' slots are cleared when the writer opens, and before every commit by `environment.write`.
        _ = try? environment.clearStaleReaders()
    }

    public static let systemClockMilliseconds: @Sendable () -> Int64 = { clockMilliseconds(CLOCK_REALTIME) }

    /// A reader over the same environment.
    public var reader: LedgerReader { LedgerReader(environment: environment, genesis: genesis) }

    /// The note verifier key of this ledger's checkpoints, in Go note form `NAME+KEYID+BASE64`.
    public var verifierKey: String { checkpointSigner.verifier.verifierKey }

    private enum Outcome {
        case appended(sequenceNumber: UInt64, recordedAt: String, leafHash: [UInt8])
        /// `signature` is the stored record's, which a resubmission signed again does not replace.
        /// `checkpoint` is nil when the earlier copy is in this same batch: this commit's checkpoint covers it.
        case repeated(sequenceNumber: UInt64, recordedAt: String, signature: [UInt8], leafHash: [UInt8], checkpoint: String?)
        case refused(LedgerError)
    }

    /// Appends a batch in one commit. Each event gets its receipt or its refusal; a refused event writes nothing.
    /// Throws only for operating errors (storage, map full, a clock outside what recorded_at can hold or behind the last record), in which case nothing of the batch is written.
    public func append(_ events: [VerifiedEvent]) throws(LedgerError) -> [Result<Receipt, LedgerError>] {
        precondition(events.count <= Self.maximumBatchCount, "a batch is at most \(Self.maximumBatchCount) events")
        guard !events.isEmpty else { return [] }
        var working = frontier
        let reading = clock()
        // A reading refused as out of range or behind is not one a jump is measured from.
        let now = try Timestamp.commitMilliseconds(
            clockMilliseconds: reading, lastRecordedAtMilliseconds: lastRecordedAtMilliseconds, acceptingClockBehind: acceptsClockBehind)
        try clockJumpCheck?.check(wallMilliseconds: reading)
        let recordedAt = Timestamp.format(millisecondsSince1970: now)
        let ((outcomes, checkpointNote), commitNanoseconds) = try environment.timedWrite { (transaction) throws(LedgerError) -> ([Outcome], String?) in
            let state = TransactionLedgerState(transaction: transaction)
            var outcomes: [Outcome] = []
            outcomes.reserveCapacity(events.count)
            for verifiedEvent in events {
                let event = verifiedEvent.event
                if let earlier = try state.sequenceNumber(ofEventID: event.id) {
                    outcomes.append(try Self.repeatedOutcome(of: event, earlier: earlier, committedSize: frontier.size, transaction: transaction))
                    continue
                }
                let sequenceNumber = working.size
                let changes: [StateChange]
                do throws(LedgerError) {
                    changes = try Rulebook.check(verifiedEvent, at: LogPosition(sequenceNumber: sequenceNumber, recordedAt: recordedAt), state: state)
                } catch {
                    outcomes.append(.refused(error))
                    continue
                }
                let record = PlannedRecord(verifiedEvent, sequenceNumber: sequenceNumber, recordedAt: recordedAt, changes: changes, frontier: &working)
                try Self.write(record, transaction: transaction, state: state)
                outcomes.append(.appended(sequenceNumber: sequenceNumber, recordedAt: recordedAt, leafHash: record.leafHash))
            }
            guard working.size > frontier.size else { return (outcomes, nil) }
            return (outcomes, try writeCheckpoint(of: working, transaction: transaction))
        }
        if checkpointNote != nil { committed(tree: working, recordedAtMilliseconds: now, commitNanoseconds: commitNanoseconds) }
        // Nothing below reads the store: once the commit succeeded, every event gets its answer.
        var receipts: [Result<Receipt, LedgerError>] = []
        receipts.reserveCapacity(events.count)
        for (verifiedEvent, outcome) in zip(events, outcomes) {
            switch outcome {
            case .appended(let sequenceNumber, let recordedAt, let leafHash):
                // Every append above produced a checkpoint for this commit.
                receipts.append(.success(Receipt(
                    eventID: verifiedEvent.event.id, sequenceNumber: sequenceNumber, recordedAt: recordedAt, signature: verifiedEvent.signedEvent.signature,
                    leafHash: leafHash, checkpoint: checkpointNote ?? "")))
            case .repeated(let sequenceNumber, let recordedAt, let signature, let leafHash, let checkpoint):
                // A repeat of a record of this batch exists only if this batch appended, so it has a checkpoint.
                guard let note = checkpoint ?? checkpointNote else {
                    preconditionFailure("a repeat of seq \(sequenceNumber) in a batch that appended nothing")
                }
                receipts.append(.success(Receipt(
                    eventID: verifiedEvent.event.id, sequenceNumber: sequenceNumber, recordedAt: recordedAt, signature: signature, leafHash: leafHash,
                    checkpoint: note)))
            case .refused(let error):
                receipts.append(.failure(error))
            }
        }
        return receipts
    }

    /// Writes records the rulebook accepted elsewhere (the server's planner, against a snapshot of the state with
    /// the changes of the commits before laid over it), in one commit with one signed checkpoint; returns the
    /// checkpoint note. The records must continue the log exactly, and `frontierAfter` must be the tree with them;
    /// a mismatch is a broken invariant of the caller. Throws only for operating errors (storage, map full), in
    /// which case nothing was written.
    public func write(_ records: [PlannedRecord], frontierAfter: MerkleFrontier, recordedAtMilliseconds: Int64) throws(LedgerError) -> String {
        precondition(!records.isEmpty && records.count <= Self.maximumBatchCount, "a planned commit holds 1 to \(Self.maximumBatchCount) records")
        precondition(records.first?.sequenceNumber == frontier.size, "planned records continue the log")
        precondition(frontierAfter.size == frontier.size + UInt64(records.count), "the planned tree holds the planned records")
        precondition(recordedAtMilliseconds >= lastRecordedAtMilliseconds, "recorded_at never goes back")
        let (note, commitNanoseconds) = try environment.timedWrite { (transaction) throws(LedgerError) -> String in
            let state = TransactionLedgerState(transaction: transaction)
            for (offset, record) in records.enumerated() {
                precondition(record.sequenceNumber == frontier.size + UInt64(offset), "planned records are consecutive")
                try Self.write(record, transaction: transaction, state: state)
            }
            return try writeCheckpoint(of: frontierAfter, transaction: transaction)
        }
        committed(tree: frontierAfter, recordedAtMilliseconds: recordedAtMilliseconds, commitNanoseconds: commitNanoseconds)
        return note
    }

    /// After a commit that wrote records: the new tree, the last `recorded_at`, and the counters.
    private func committed(tree: MerkleFrontier, recordedAtMilliseconds: Int64, commitNanoseconds: UInt64) {
        assert(tree.size > frontier.size, "a counted commit wrote records")
        statistics.commits += 1
        statistics.records += tree.size - frontier.size
        statistics.commitNanoseconds += commitNanoseconds
        frontier = tree
        lastRecordedAtMilliseconds = recordedAtMilliseconds
    }

    /// One record, its state changes and its tree nodes, in the commit's transaction (every append path).
    private static func write(_ record: PlannedRecord, transaction: LMDBTransaction, state: TransactionLedgerState) throws(LedgerError) {
        try transaction.put(LedgerDatabase.log, BigEndianKey.encode(record.sequenceNumber), record.leafBytes, appending: true)
        try state.apply(record.changes)
        for node in record.treeNodes {
            try transaction.put(LedgerDatabase.tree, TransactionMerkleNodes.key(level: node.level, index: node.index), node.hash)
        }
    }

    /// The signed checkpoint of a commit, stored under its tree size.
    private func writeCheckpoint(of tree: MerkleFrontier, transaction: LMDBTransaction) throws(LedgerError) -> String {
        let checkpoint = try Checkpoint(origin: genesis.origin, size: tree.size, rootHash: tree.root)
        let note = try SignedNote.sign(text: checkpoint.body, signer: checkpointSigner)
        try transaction.put(LedgerDatabase.checkpoints, BigEndianKey.encode(tree.size), Array(note.utf8), appending: true)
        return note
    }

    /// The same id again: the first receipt when the content is the same, a refusal otherwise.
    private static func repeatedOutcome(
        of event: Event, earlier: UInt64, committedSize: UInt64, transaction: LMDBTransaction
    ) throws(LedgerError) -> Outcome {
        guard let leafBytes = try transaction.get(LedgerDatabase.log, BigEndianKey.encode(earlier)) else {
            throw LedgerError(.integrity, "the id index names seq \(earlier), which is not in the log")
        }
        let record = try Record(leafBytes: leafBytes)
        // Compare canonical bytes: Swift's String equality treats canonically equivalent texts as equal.
        guard record.signedEvent.event.canonicalBytes == event.canonicalBytes else {
            return .refused(LedgerError(.idConflict, "event id \"\(event.id)\" is already recorded at seq \(earlier) with other content"))
        }
        guard earlier < committedSize else {
            return .repeated(sequenceNumber: earlier, recordedAt: record.recordedAt, signature: record.signedEvent.signature, leafHash: MerkleHash.leaf(leafBytes), checkpoint: nil)
        }
        let checkpoint = try LedgerReader.checkpointCovering(sequenceNumber: earlier, in: transaction)
        return .repeated(sequenceNumber: earlier, recordedAt: record.recordedAt, signature: record.signedEvent.signature, leafHash: MerkleHash.leaf(leafBytes), checkpoint: checkpoint)
    }
}

/// An event the rulebook accepted at `sequenceNumber`: its record's leaf bytes and hash, the state changes it makes
/// and the tree nodes it completes. Made without I/O, so a planner can make it while an earlier commit syncs.
public struct PlannedRecord: Sendable {
    public let sequenceNumber: UInt64
    public let recordedAt: String
    public let signature: [UInt8]
    public let leafBytes: [UInt8]
    public let leafHash: [UInt8]
    public let changes: [StateChange]
    let treeNodes: [MerkleNode]

    /// Builds the record and adds its leaf to `frontier`, which must hold exactly the records before it.
    public init(_ event: VerifiedEvent, sequenceNumber: UInt64, recordedAt: String, changes: [StateChange], frontier: inout MerkleFrontier) {
        precondition(frontier.size == sequenceNumber, "a record's leaf goes at the end of the tree")
        self.sequenceNumber = sequenceNumber
        self.recordedAt = recordedAt
        self.signature = event.signedEvent.signature
        self.leafBytes = Record(sequenceNumber: sequenceNumber, recordedAt: recordedAt, signedEvent: event.signedEvent).leafBytes
        self.leafHash = MerkleHash.leaf(leafBytes)
        self.changes = changes
        self.treeNodes = frontier.append(leafHash: leafHash)
        assert(frontier.size == sequenceNumber + 1, "the tree grows by one leaf per record")
    }
}

/// Counters of a ledger's appends that wrote records, since it was opened: how many commits, how many records they
/// wrote, and how long LMDB's commit took in all (its page writes and syncs). Commits that only answered repeats
/// write nothing and are not counted.
public struct AppendStatistics: Sendable, Hashable {
    public var commits: UInt64 = 0
    public var records: UInt64 = 0
    public var commitNanoseconds: UInt64 = 0

    public init() {}
}

/// A reading of `clock` in milliseconds (the wall clock for `recorded_at`, the boot clock for jumps of it).
func clockMilliseconds(_ clock: clockid_t) -> Int64 {
    var now = timespec()
    clock_gettime(clock, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
