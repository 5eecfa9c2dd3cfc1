import CircuitoCore
import CircuitoCrypto

/// The per-record step of every replay: `verify`, `rebuild` and verifying replicas run it on each record in seq
/// order, after the record was parsed and its signatures checked (on all cores). It checks the seq and
/// `recorded_at` (the ledger's form, never going back, one per commit), runs the rulebook against the replayed state and applies
/// its changes, takes the checkpoint key and origin from the genesis record itself, and grows the tree.
struct RecordReplayer {
    var frontier: MerkleFrontier
    var lastRecordedAtMilliseconds: Int64
    /// Known once the genesis record is replayed (or, for a replica that resumes, from its stored genesis).
    var verifier: NoteVerifier?
    var origin: String
    /// Makes the checkpoint verifier from genesis (a replica also compares it with a pinned key).
    let verifierOfGenesis: (GenesisInfo) throws(LedgerError) -> NoteVerifier
    /// Whether the record before the next one ended a commit: a checkpoint covers it, or there is none. Every
    /// commit ends with its checkpoint (Specs/ledger.md 7.3), so records with no checkpoint between them are one
    /// commit and share one `recorded_at` (5.3). A replay starts at a commit's end (seq 0, or a replica's last
    /// checkpoint).
    var atCommitBoundary = true

    /// Replays one record into `state`; returns the tree nodes it completes.
    mutating func replay(
        _ record: Record, _ verifiedEvent: VerifiedEvent, leafBytes: [UInt8], at sequenceNumber: UInt64,
        state: TransactionLedgerState
    ) throws(LedgerError) -> [MerkleNode] {
        try replay(record, verifiedEvent, leafHash: MerkleHash.leaf(leafBytes), at: sequenceNumber, state: state)
    }

    /// Replays one record whose leaf hash the caller has computed already (off this thread).
    mutating func replay(
        _ record: Record, _ verifiedEvent: VerifiedEvent, leafHash: [UInt8], at sequenceNumber: UInt64,
        state: TransactionLedgerState
    ) throws(LedgerError) -> [MerkleNode] {
        // The caller counts seqs from where the tree ends; out of step, every later check is against the wrong tree.
        precondition(frontier.size == sequenceNumber, "a replayed record's leaf goes at the end of the tree")
        guard record.sequenceNumber == sequenceNumber else {
            throw LedgerError(.integrity, "the record that should be seq \(sequenceNumber) says seq \(record.sequenceNumber)")
        }
        guard Timestamp.isLedgerForm(record.recordedAt), let recordedAt = Timestamp.millisecondsSince1970(record.recordedAt) else {
            throw LedgerError(.integrity, "recorded_at \(record.recordedAt) is not in the ledger's form YYYY-MM-DDTHH:MM:SS.mmmZ")
        }
        guard recordedAt >= lastRecordedAtMilliseconds else {
            throw LedgerError(.integrity, "recorded_at \(record.recordedAt) is earlier than the record before it")
        }
        guard sequenceNumber != 1 || atCommitBoundary else {
            throw LedgerError(.integrity, "no checkpoint is stored for size 1: genesis is a commit of its own")
        }
        guard atCommitBoundary || recordedAt == lastRecordedAtMilliseconds else {
            throw LedgerError(.integrity, "recorded_at \(record.recordedAt) differs from the record before it, and no checkpoint comes between them: the records of one commit share one recorded_at")
        }
        lastRecordedAtMilliseconds = recordedAt
        atCommitBoundary = false
        let position = LogPosition(sequenceNumber: sequenceNumber, recordedAt: record.recordedAt)
        try state.apply(try Rulebook.check(verifiedEvent, at: position, state: state))
        if sequenceNumber == 0 {
            // The trust root: the checkpoint key and origin named in the genesis record itself.
            guard let genesis = try state.genesis() else {
                throw LedgerError(.genesisRequired, "the record at seq 0 is not a genesis")
            }
            verifier = try verifierOfGenesis(genesis)
            origin = genesis.origin
        }
        return frontier.append(leafHash: leafHash)
    }

    /// Checks a checkpoint stored (or received) for the current tree size: signature, origin, size, root. It ends
    /// the commit of the records before it.
    mutating func checkCheckpoint(_ note: String) throws(LedgerError) {
        guard let verifier else {
            throw LedgerError(.genesisRequired, "a checkpoint comes before the genesis record")
        }
        try LedgerReplay.checkCheckpoint(note, size: frontier.size, root: frontier.root, origin: origin, verifier: verifier)
        atCommitBoundary = true
    }

    /// Checks a checkpoint whose note may have been opened already on another core (`opened`, with `openedWith`).
    /// That result counts only if `openedWith` is the verifier the replayed genesis gave; otherwise the note is
    /// opened again here, so a verifier taken from anywhere else can make the check slower, never weaker.
    mutating func checkCheckpoint(_ note: String, opened: Result<Checkpoint, LedgerError>?, openedWith: NoteVerifier?) throws(LedgerError) {
        guard let verifier else {
            throw LedgerError(.genesisRequired, "a checkpoint comes before the genesis record")
        }
        guard let opened, let openedWith, openedWith == verifier else {
            try checkCheckpoint(note)
            return
        }
        try LedgerReplay.checkOpenedCheckpoint(try opened.get(), size: frontier.size, root: frontier.root, origin: origin)
        atCommitBoundary = true
    }

    /// The verifier of the checkpoint key named in genesis.
    static func verifier(of genesis: GenesisInfo) throws(LedgerError) -> NoteVerifier {
        guard let key = Multikey.decodePublicKey(genesis.checkpointKey) else {
            throw LedgerError(.integrity, "genesis names a checkpoint key that is not a Multikey")
        }
        return try NoteVerifier(name: genesis.origin, publicKey: key)
    }
}
