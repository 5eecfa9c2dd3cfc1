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

    /// Records of one `append`; bounds the memory of a commit.
    public static let maximumRecordsPerAppend = 8192

    /// Opens the replica in `directory`, creating an empty one (no genesis yet) when there is none.
    public static func open(directory: String, pinnedVerifierKey: String? = nil, options: LMDBEnvironment.Options = .init()) throws(LedgerError) -> ReplicaLedger {
        if let pinnedVerifierKey { _ = try NoteVerifier(parsing: pinnedVerifierKey) }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw LedgerError(.storage, "cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        if access(directory + "/" + LedgerFiles.checkpointKey, F_OK) == 0 {
            throw LedgerError(.invalidRange, "\(directory) holds a checkpoint key: it is a leader's ledger, not a replica")
        }
        let lock = try FileLock(path: directory + "/" + LedgerFiles.writerLock)
        let environment = try LMDBEnvironment(path: directory, databaseNames: LedgerDatabase.all, create: true, options: options)
        let replica = try ReplicaLedger(directory: directory, environment: environment, lock: lock, pinnedVerifierKey: pinnedVerifierKey)
        return replica
    }

    private init(directory: String, environment: LMDBEnvironment, lock: FileLock, pinnedVerifierKey: String?) throws(LedgerError) {
        self.directory = directory
        self.environment = environment
        self.writerLock = lock
        self.pinnedVerifierKey = pinnedVerifierKey
        let (frontier, lastRecordedAt, latestCheckpoint, genesis) = try environment.read {
            (transaction) throws(LedgerError) -> (MerkleFrontier, Int64, (size: UInt64, note: String)?, GenesisInfo?) in
            let size = UInt64(try transaction.count(LedgerDatabase.log))
            let frontier = try MerkleFrontier(size: size, source: TransactionMerkleNodes(transaction: transaction))
            var lastRecordedAt: Int64 = 0
            if let last = try transaction.last(LedgerDatabase.log) {
                lastRecordedAt = Timestamp.millisecondsSince1970(try Record(leafBytes: last.value).recordedAt) ?? 0
            }
            var latest: (size: UInt64, note: String)?
            if let last = try transaction.last(LedgerDatabase.checkpoints), let checkpointSize = BigEndianKey.decode(last.key) {
                latest = (checkpointSize, String(decoding: last.value, as: UTF8.self))
            }
            return (frontier, lastRecordedAt, latest, try TransactionLedgerState(transaction: transaction).genesis())
        }
        guard latestCheckpoint?.size ?? 0 == frontier.size else {
            throw LedgerError(.integrity, "\(directory): the latest checkpoint does not cover the whole log; it is not a replica this program wrote")
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
        guard let key = Multikey.decodePublicKey(genesis.checkpointKey) else {
            throw LedgerError(.integrity, "genesis names a checkpoint key that is not a Multikey")
        }
        let verifier = try NoteVerifier(name: genesis.origin, publicKey: key)
        if let pinned, verifier.verifierKey != pinned {
            throw LedgerError(.integrity, "the leader's genesis names checkpoint key \(verifier.verifierKey), not the pinned \(pinned)")
        }
        return verifier
    }

    /// A reader over the replica (nil before its genesis arrived).
    public var reader: LedgerReader? {
        guard let genesis = try? environment.read({ (transaction) throws(LedgerError) in try TransactionLedgerState(transaction: transaction).genesis() }) else {
            return nil
        }
        return LedgerReader(environment: environment, genesis: genesis)
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
        var working = frontier
        var lastRecordedAt = lastRecordedAtMilliseconds
        var verifier = self.verifier
        var origin = self.origin
        var failedSequenceNumber: UInt64?
        do throws(LedgerError) {
            try environment.write { (transaction) throws(LedgerError) in
                let state = TransactionLedgerState(transaction: transaction)
                for (offset, result) in checked.enumerated() {
                    let sequenceNumber = start + UInt64(offset)
                    failedSequenceNumber = sequenceNumber
                    let (record, verifiedEvent) = try result.get()
                    guard record.sequenceNumber == sequenceNumber else {
                        throw LedgerError(.integrity, "the record that should be seq \(sequenceNumber) says seq \(record.sequenceNumber)")
                    }
                    guard Timestamp.isLedgerForm(record.recordedAt), let recordedAt = Timestamp.millisecondsSince1970(record.recordedAt) else {
                        throw LedgerError(.integrity, "recorded_at \(record.recordedAt) is not in the ledger's form YYYY-MM-DDTHH:MM:SS.mmmZ")
                    }
                    guard recordedAt >= lastRecordedAt else {
                        throw LedgerError(.integrity, "recorded_at \(record.recordedAt) is earlier than the record before it")
                    }
                    lastRecordedAt = recordedAt
                    let position = LogPosition(sequenceNumber: sequenceNumber, recordedAt: record.recordedAt)
                    try state.apply(try Rulebook.check(verifiedEvent, at: position, state: state))
                    if sequenceNumber == 0 {
                        // The trust root: the checkpoint key and origin named in the genesis record itself.
                        guard let genesis = try state.genesis() else {
                            throw LedgerError(.genesisRequired, "the record at seq 0 is not a genesis")
                        }
                        verifier = try Self.verifier(of: genesis, pinned: pinnedVerifierKey)
                        origin = genesis.origin
                    }
                    let leafBytes = leaves[offset]
                    try transaction.put(LedgerDatabase.log, BigEndianKey.encode(sequenceNumber), leafBytes, appending: true)
                    for node in working.append(leafHash: MerkleHash.leaf(leafBytes)) {
                        try transaction.put(LedgerDatabase.tree, TransactionMerkleNodes.key(level: node.level, index: node.index), node.hash)
                    }
                    if let note = checkpointsBySize[working.size] {
                        guard let verifier else { throw LedgerError(.genesisRequired, "a checkpoint arrived before the genesis record") }
                        try LedgerReplay.checkCheckpoint(note, size: working.size, root: working.root, origin: origin, verifier: verifier)
                        try transaction.put(LedgerDatabase.checkpoints, BigEndianKey.encode(working.size), Array(note.utf8), appending: true)
                    }
                }
                failedSequenceNumber = nil
            }
        } catch {
            throw LedgerReplay.Failure(sequenceNumber: failedSequenceNumber, error: error)
        }
        frontier = working
        lastRecordedAtMilliseconds = lastRecordedAt
        latestCheckpoint = lastCheckpoint
        self.verifier = verifier
        self.origin = origin
    }
}
