import CircuitoCore
import CircuitoCrypto
import Glibc

/// The ledger directory of a verifying replica (`circuito follow`): the leader's records and checkpoints, stored
/// exactly as the leader stores them, each checked the way `verify` checks it before it is written.
///
/// A replica holds no checkpoint key (it cannot sign: every checkpoint is the leader's) and so can never be
/// opened by `Ledger`. It commits only whole leader commits, ending at one of the leader's checkpoints, so the
/// directory always passes `verify` and a replica can itself be read and proved from like the leader.
public final class ReplicaLedger {
    public let directory: String
    let environment: LMDBEnvironment
    private let writerLock: FileLock
    /// The verifier key (`NAME+KEYID+BASE64`) the leader's genesis must name, when the operator pinned one.
    public let pinnedVerifierKey: String?
    /// The tree as of the last commit.
    public private(set) var frontier: MerkleFrontier
    public private(set) var latestCheckpoint: (size: UInt64, note: String)?
    private var lastRecordedAtMilliseconds: Int64
    private var verifier: NoteVerifier?
    private var origin: String

    /// Closes the replica now rather than with its last reference: its LMDB environment (waiting for a commit or read
    /// in progress, `LMDBEnvironment.close`) and its writer lock, so that it may be opened again at once. Every later
    /// use fails with `storage_error`.
    public func close() {
        environment.close()
        writerLock.release()
    }

    /// Records of one `append`; bounds the memory of a commit.
    public static let maximumRecordsPerAppend = 8192

    /// LMDB's files this process made in the replica's folder when it opened it (under the writer lock), removed
    /// again by `removeIfEmpty` when nothing was ever committed to them.
    private var filesMade: [String] = []

    /// Opens the replica in `directory`, creating an empty one (no genesis yet) when there is none. A folder that
    /// cannot be opened as a replica keeps what it held; only LMDB files this call made under the lock are removed
    /// again (the lock file stays: another process may be waiting on it).
    public static func open(directory: String, pinnedVerifierKey: String? = nil, options: LMDBEnvironment.Options = .init()) throws(LedgerError) -> ReplicaLedger {
        // In the form the ledger writes (lower-case key id), so that comparing texts compares keys.
        let pinnedVerifierKey = try pinnedVerifierKey.map { (text) throws(LedgerError) in try NoteVerifier(parsing: text).verifierKey }
        try FileIO.makeDirectory(directory, mode: 0o700, existingIsFine: true)
        if access(directory + "/" + LedgerFiles.checkpointKey, F_OK) == 0 {
            throw LedgerError(.invalidRange, "\(directory) holds a checkpoint key: it is a leader's ledger, not a replica")
        }
        // Refused here (another follower holds it), nothing is removed: the files are that follower's.
        let lock = try FileLock(path: directory + "/" + LedgerFiles.writerLock)
        let filesMade = ["data.mdb", "lock.mdb"].filter { access(directory + "/" + $0, F_OK) != 0 }
        do throws(LedgerError) {
            let environment = try LMDBEnvironment(path: directory, databaseNames: LedgerDatabase.all, create: true, options: options)
            let replica = try ReplicaLedger(directory: directory, environment: environment, lock: lock, pinnedVerifierKey: pinnedVerifierKey)
            // A replica with no record is a run's that never committed (killed before its first commit, where
            // `removeIfEmpty` could not run): its LMDB files are treated as this run's, removed if it commits nothing
            // either, so that no empty ledger stays for `verify` to refuse.
            replica.filesMade = replica.frontier.size == 0 ? ["data.mdb", "lock.mdb"] : filesMade
            return replica
        } catch {
            // The environment is closed by now (each failed step closes what it opened); the lock is still held.
            for file in filesMade { unlink(directory + "/" + file) }
            lock.release()
            throw error
        }
    }

    /// When nothing was ever committed to this replica (its first follow was refused, or stopped before the first
    /// commit), closes it and removes the LMDB files `open` made, still under the writer lock, so that no empty
    /// ledger is left that `verify` refuses. Whether it did.
    @discardableResult
    public func removeIfEmpty() -> Bool {
        guard frontier.size == 0, filesMade.contains("data.mdb") else { return false }
        _ = environment.close()
        for file in filesMade { unlink(directory + "/" + file) }
        writerLock.release()
        return true
    }

    private init(directory: String, environment: LMDBEnvironment, lock: FileLock, pinnedVerifierKey: String?) throws(LedgerError) {
        self.directory = directory
        self.environment = environment
        self.writerLock = lock
        self.pinnedVerifierKey = pinnedVerifierKey
        let (frontier, lastRecordedAt, latestCheckpoint, genesis) = try environment.read {
            (transaction) throws(LedgerError) -> (MerkleFrontier, Int64, (size: UInt64, note: String)?, GenesisInfo?) in
            // As a ledger opened for writing: the next commit goes at the log's count, so a gap, a misplaced last
            // record or a commit without its checkpoint is refused here rather than followed past.
            let end = try Ledger.checkedLogEnd(
                transaction, directory: directory, restore: "follow the leader again into a new folder", emptyIsWhole: true)
            let frontier = try MerkleFrontier(size: end.size, source: TransactionMerkleNodes(transaction: transaction))
            return (frontier, end.lastRecordedAtMilliseconds, end.latestCheckpoint, try TransactionLedgerState(transaction: transaction).genesis())
        }
        self.frontier = frontier
        self.lastRecordedAtMilliseconds = lastRecordedAt
        self.latestCheckpoint = latestCheckpoint
        self.origin = genesis?.origin ?? ""
        if let genesis {
            self.verifier = try Self.verifier(of: genesis, pinned: pinnedVerifierKey)
        }
    }

    private static func verifier(of genesis: GenesisInfo, pinned: String?) throws(LedgerError) -> NoteVerifier {
        let verifier = try RecordReplayer.verifier(of: genesis)
        if let pinned, verifier.verifierKey != pinned {
            throw LedgerError(.integrity, "the replica's genesis (its leader's) names checkpoint key \(verifier.verifierKey), not the pinned \(pinned)")
        }
        return verifier
    }

    public var size: UInt64 { frontier.size }

    /// The verifier of the leader's checkpoints, known once genesis is in.
    public var checkpointVerifier: NoteVerifier? { verifier }

    /// Checks the leader's records from seq `size` and the leader's checkpoints among them, and writes them in one
    /// commit. The last record must end exactly at a checkpoint. Checked, as `verify` does: canonical form, seq,
    /// `recorded_at` (the ledger's form, never going back), signatures (on all cores), the rulebook against the
    /// replica's state, and each checkpoint's signature (with the key named in the genesis record), size and root.
    /// Nothing is written when anything fails.
    public func append(leaves: [[UInt8]], checkpoints: [(size: UInt64, note: String)]) throws(LedgerReplay.Failure) {
        guard !leaves.isEmpty else { return }
        guard leaves.count <= Self.maximumRecordsPerAppend else {
            throw LedgerReplay.Failure(sequenceNumber: nil, error: LedgerError(.tooLarge, "a replica commit holds at most \(Self.maximumRecordsPerAppend) records"))
        }
        let start = frontier.size
        let end = start + UInt64(leaves.count)
        guard let lastCheckpoint = checkpoints.last, lastCheckpoint.size == end else {
            throw LedgerReplay.Failure(sequenceNumber: nil, error: LedgerError(.integrity, "records up to seq \(end - 1) arrived without the leader's checkpoint for size \(end)"))
        }
        var checkpointsBySize: [UInt64: String] = [:]
        for checkpoint in checkpoints {
            guard checkpoint.size > start, checkpoint.size <= end, checkpointsBySize[checkpoint.size] == nil else {
                throw LedgerReplay.Failure(sequenceNumber: nil, error: LedgerError(.integrity, "a checkpoint for size \(checkpoint.size) does not belong to records \(start)..<\(end)"))
            }
            checkpointsBySize[checkpoint.size] = checkpoint.note
        }
        // Parsing and Ed25519 checks are independent per record: run them on all cores.
        let checked = Parallel.map(leaves) { leafBytes -> Result<(Record, VerifiedEvent), LedgerError> in
            do throws(LedgerError) {
                let record = try Record(leafBytes: leafBytes)
                return .success((record, try record.signedEvent.verified()))
            } catch {
                return .failure(error)
            }
        }
        // The same per-record step as verify, on a copy: kept only when the whole commit is written.
        let pinned = pinnedVerifierKey
        var replayer = RecordReplayer(
            frontier: frontier, lastRecordedAtMilliseconds: lastRecordedAtMilliseconds, verifier: verifier, origin: origin,
            verifierOfGenesis: { (genesis) throws(LedgerError) in try Self.verifier(of: genesis, pinned: pinned) })
        var failedSequenceNumber: UInt64?
        do throws(LedgerError) {
            try environment.write { (transaction) throws(LedgerError) in
                let state = TransactionLedgerState(transaction: transaction, cachingParsedValues: true)
                for (offset, result) in checked.enumerated() {
                    let sequenceNumber = start + UInt64(offset)
                    failedSequenceNumber = sequenceNumber
                    let (record, verifiedEvent) = try result.get()
                    let leafBytes = leaves[offset]
                    let nodes = try replayer.replay(record, verifiedEvent, leafBytes: leafBytes, at: sequenceNumber, state: state)
                    try transaction.put(LedgerDatabase.log, BigEndianKey.encode(sequenceNumber), leafBytes, appending: true)
                    for node in nodes {
                        try transaction.put(LedgerDatabase.tree, TransactionMerkleNodes.key(level: node.level, index: node.index), node.hash)
                    }
                    if let note = checkpointsBySize[replayer.frontier.size] {
                        try replayer.checkCheckpoint(note)
                        try transaction.put(LedgerDatabase.checkpoints, BigEndianKey.encode(replayer.frontier.size), Array(note.utf8), appending: true)
                    }
                }
                failedSequenceNumber = nil
            }
        } catch {
            throw LedgerReplay.Failure(sequenceNumber: failedSequenceNumber, error: error)
        }
        // The commit ends at the leader's checkpoint for `end`, which the replica takes as its latest.
        precondition(replayer.frontier.size == end, "a replica commit's tree holds exactly its records")
        frontier = replayer.frontier
        lastRecordedAtMilliseconds = replayer.lastRecordedAtMilliseconds
        latestCheckpoint = lastCheckpoint
        self.verifier = replayer.verifier
        self.origin = replayer.origin
    }
}
