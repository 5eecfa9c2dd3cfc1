import CircuitoCore
import CircuitoCrypto

/// The offline audit behind `circuito verify`: every record's canonical form and signature, key validity and
/// permission through the same rulebook as live writes, the tree rebuilt from the leaves against the stored tree
/// nodes and against every stored checkpoint (signature and root), and the latest checkpoint covering the log.
public enum LedgerAudit {
    public struct Report: Sendable {
        public let recordCount: UInt64
        public let checkpointCount: UInt64
        public let rootHash: [UInt8]
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// The first bad record, when the failure is about one.
        public let sequenceNumber: UInt64?
        public let error: LedgerError

        public var description: String {
            if let sequenceNumber { return "seq \(sequenceNumber): \(error)" }
            return error.description
        }
    }

    /// Records read, parsed and signature-checked together; bounds the memory of the audit.
    public static let chunkRecordCount = 4096

    public static func run(
        _ reader: LedgerReader, progress: (_ checked: UInt64, _ total: UInt64) -> Void = { _, _ in }
    ) throws(Failure) -> Report {
        let verifier: NoteVerifier
        let total: UInt64
        let latestCheckpointSize: UInt64
        do throws(LedgerError) {
            verifier = try reader.checkpointVerifier()
            (total, latestCheckpointSize) = try reader.environment.read { (transaction) throws(LedgerError) in
                let count = UInt64(try transaction.count(LedgerDatabase.log))
                let latest = try transaction.last(LedgerDatabase.checkpoints).flatMap { BigEndianKey.decode($0.key) } ?? 0
                return (count, latest)
            }
        } catch {
            throw Failure(sequenceNumber: nil, error: error)
        }
        var state = MemoryLedgerState()
        var frontier = MerkleFrontier()
        var lastRecordedAt = ""
        var checkpointCount: UInt64 = 0
        var next: UInt64 = 0
        while next < total {
            let end = min(next + UInt64(chunkRecordCount), total)
            let leaves: [[UInt8]]
            let checkpoints: [UInt64: String]
            do throws(LedgerError) {
                (leaves, checkpoints) = try readChunk(reader, from: next, to: end)
            } catch {
                throw Failure(sequenceNumber: next, error: error)
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
            var newNodes: [MerkleNode] = []
            for (offset, result) in checked.enumerated() {
                let sequenceNumber = next + UInt64(offset)
                do throws(LedgerError) {
                    let (record, verifiedEvent) = try result.get()
                    guard record.sequenceNumber == sequenceNumber else {
                        throw LedgerError(.integrity, "record under key \(sequenceNumber) says seq \(record.sequenceNumber)")
                    }
                    guard record.recordedAt >= lastRecordedAt else {
                        throw LedgerError(.integrity, "recorded_at \(record.recordedAt) is earlier than the record before it (\(lastRecordedAt))")
                    }
                    lastRecordedAt = record.recordedAt
                    let changes = try Rulebook.check(verifiedEvent, sequenceNumber: sequenceNumber, state: state)
                    state.apply(changes)
                    newNodes += frontier.append(leafHash: MerkleHash.leaf(leaves[offset]))
                    if let note = checkpoints[frontier.size] {
                        try checkCheckpoint(note, size: frontier.size, root: frontier.root, origin: reader.genesis.origin, verifier: verifier)
                        checkpointCount += 1
                    }
                } catch {
                    throw Failure(sequenceNumber: sequenceNumber, error: error)
                }
            }
            do throws(LedgerError) {
                try compareStoredNodes(reader, newNodes)
            } catch {
                throw Failure(sequenceNumber: nil, error: error)
            }
            next = end
            progress(next, total)
        }
        guard total > 0, latestCheckpointSize == total else {
            throw Failure(
                sequenceNumber: nil,
                error: LedgerError(.integrity, "the latest checkpoint covers \(latestCheckpointSize) records but the log holds \(total)"))
        }
        return Report(recordCount: total, checkpointCount: checkpointCount, rootHash: frontier.root)
    }

    static func checkCheckpoint(_ note: String, size: UInt64, root: [UInt8], origin: String, verifier: NoteVerifier) throws(LedgerError) {
        let text = try SignedNote.open(note, verifier: verifier)
        let checkpoint = try Checkpoint(parsing: text)
        guard checkpoint.origin == origin, checkpoint.size == size else {
            throw LedgerError(.integrity, "checkpoint stored for size \(size) says \(checkpoint.origin) size \(checkpoint.size)")
        }
        guard checkpoint.rootHash == root else {
            throw LedgerError(.integrity, "checkpoint at size \(size) has root \(Base64.encode(checkpoint.rootHash)), the log gives \(Base64.encode(root))")
        }
    }

    static func readChunk(_ reader: LedgerReader, from start: UInt64, to end: UInt64) throws(LedgerError) -> ([[UInt8]], [UInt64: String]) {
        try reader.environment.read { (transaction) throws(LedgerError) in
            var leaves: [[UInt8]] = []
            leaves.reserveCapacity(Int(end - start))
            var expected = start
            try transaction.forEach(LedgerDatabase.log, from: BigEndianKey.encode(start)) { (key, value) throws(LedgerError) -> Bool in
                guard expected < end else { return false }
                guard BigEndianKey.decode(key) == expected else {
                    throw LedgerError(.integrity, "the log has a gap or a damaged key at seq \(expected)")
                }
                leaves.append([UInt8](value))
                expected += 1
                return true
            }
            guard expected == end else {
                throw LedgerError(.integrity, "the log ends at seq \(expected), before \(end)")
            }
            var checkpoints: [UInt64: String] = [:]
            try transaction.forEach(LedgerDatabase.checkpoints, from: BigEndianKey.encode(start + 1)) { (key, value) throws(LedgerError) -> Bool in
                guard let size = BigEndianKey.decode(key) else { throw LedgerError(.integrity, "a checkpoint key is damaged") }
                guard size <= end else { return false }
                checkpoints[size] = String(decoding: value, as: UTF8.self)
                return true
            }
            return (leaves, checkpoints)
        }
    }

    /// The tree nodes stored at append time must be the ones the leaves give.
    static func compareStoredNodes(_ reader: LedgerReader, _ nodes: [MerkleNode]) throws(LedgerError) {
        try reader.environment.read { (transaction) throws(LedgerError) in
            let stored = TransactionMerkleNodes(transaction: transaction)
            for node in nodes where try stored.completeSubtreeHash(level: node.level, index: node.index) != node.hash {
                throw LedgerError(.integrity, "stored tree node (level \(node.level), index \(node.index)) differs from the one the log gives")
            }
        }
    }
}
