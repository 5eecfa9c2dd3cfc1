/// What a submitter checks of a receipt without reading the log (Specs/ledger.md 7.4): the checkpoint is signed by
/// the ledger's key and covers the receipt's seq, the leaf hash is that of the record rebuilt from the event the
/// submitter sent, and (with the inclusion proof, which the caller fetches) the leaf is in the checkpoint's tree.
/// Every failure is `integrity_failure`: the event was accepted, but the receipt does not prove it.
public struct ReceiptCheck: Sendable, Hashable {
    public let sequenceNumber: UInt64
    /// The checkpoint's tree size: the inclusion proof to fetch is of `sequenceNumber` at this size.
    public let treeSize: UInt64
    let leafHash: [UInt8]
    let rootHash: [UInt8]

    /// Opens the receipt's checkpoint and ties the receipt to `submitted`, the signed event that was sent.
    public init(receipt: JSONValue, submitted: JSONValue, verifier: NoteVerifier) throws(LedgerError) {
        func failure(_ why: String) -> LedgerError { LedgerError(.integrity, "the receipt does not check: \(why)") }
        // A server older than receipts with recorded_at and sig (5 December 2026) gives the rest: the event was
        // recorded, and what the check lacks is named as that, not as a damaged receipt.
        if receipt["recorded_at"] == nil, receipt["sig"] == nil, case .string? = receipt["id"], case .integer(let sequence)? = receipt["seq"],
            case .string? = receipt["leaf_hash"], case .string? = receipt["checkpoint"]
        {
            throw failure("it has no recorded_at and sig, as a server older than 5 December 2026 answers (Specs/protocol.md 5.1), so it cannot be tied to the event sent; the server says it recorded it at seq \(sequence): check it from the record there (proof inclusion, events), or submit to that server without --verifier-key")
        }
        guard case .string(let eventID)? = receipt["id"], case .integer(let sequence)? = receipt["seq"], sequence >= 0,
            case .string(let recordedAt)? = receipt["recorded_at"], case .string(let note)? = receipt["checkpoint"],
            case .string(let signatureText)? = receipt["sig"], let signature = Base64.decode(signatureText),
            case .string(let leafText)? = receipt["leaf_hash"], let leafHash = Base64.decode(leafText)
        else {
            throw failure("it needs id, seq, recorded_at, sig, leaf_hash and checkpoint")
        }
        let sent = try SignedEvent(json: submitted)
        guard eventID == sent.event.id else {
            throw failure("it is for event \"\(eventID)\", not \"\(sent.event.id)\"")
        }
        guard Timestamp.isValid(recordedAt) else { throw failure("recorded_at \"\(recordedAt)\" is not a timestamp") }
        // The record holds the first signature of this event, which is the sent one unless the event was sent before
        // under another (a signer that does not sign deterministically): either way it must sign the event sent.
        let stored = SignedEvent(event: sent.event, signature: signature)
        guard signature == sent.signature || (try? stored.verified()) != nil else {
            throw failure("its sig is not a signature of the event sent")
        }
        let sequenceNumber = UInt64(sequence)
        let record = Record(sequenceNumber: sequenceNumber, recordedAt: recordedAt, signedEvent: stored)
        guard MerkleHash.leaf(record.leafBytes) == leafHash else {
            throw failure("its leaf_hash is not that of the record of the event sent at seq \(sequenceNumber), recorded_at \(recordedAt)")
        }
        let checkpoint: Checkpoint
        do throws(LedgerError) {
            checkpoint = try Checkpoint(parsing: try SignedNote.open(note, verifier: verifier))
        } catch {
            throw failure("its checkpoint: \(error.message)")
        }
        guard checkpoint.size > sequenceNumber else {
            throw failure("its checkpoint's tree has \(checkpoint.size) records, so it does not cover seq \(sequenceNumber)")
        }
        // The proof is asked of the server at this size, and sizes travel as JSON integers (Specs/protocol.md 2).
        guard checkpoint.size <= UInt64(Int64.max) else {
            throw failure("its checkpoint's tree has \(checkpoint.size) records, past 2^63 − 1, the largest size a proof can be asked at")
        }
        self.sequenceNumber = sequenceNumber
        self.treeSize = checkpoint.size
        self.leafHash = leafHash
        self.rootHash = checkpoint.rootHash
    }

    /// Checks the RFC 9162 inclusion proof of `sequenceNumber` at `treeSize` against the checkpoint's root.
    public func verify(inclusionProof: [[UInt8]]) throws(LedgerError) {
        guard MerkleProofs.verifyInclusion(leafHash: leafHash, leafIndex: sequenceNumber, treeSize: treeSize, proof: inclusionProof, root: rootHash) else {
            throw LedgerError(.integrity, "the receipt does not check: the inclusion proof of seq \(sequenceNumber) at size \(treeSize) does not lead to the checkpoint's root")
        }
    }
}
