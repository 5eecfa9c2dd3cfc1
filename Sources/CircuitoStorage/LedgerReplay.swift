import CircuitoCore
import CircuitoCrypto
import Dispatch
import Glibc

/// Replays a ledger's log through the rulebook into a fresh, throw-away LMDB environment: the offline audit behind
/// `circuito verify`, and with `compareProjections` the check behind `circuito rebuild`.
///
/// Everything is read from one read snapshot of the live environment, so a writer may keep appending. Checked, in
/// seq order: each record's canonical form, seq and `recorded_at` (the ledger's form, never going back); each
/// event's signature (and embedded payment authorisation), on all cores; the rulebook against the replayed state;
/// the tree rebuilt from the leaves against the stored tree nodes and against every stored checkpoint (signature
/// with the key named in the genesis *record*, size, root); and that the latest checkpoint covers the whole log.
public enum LedgerReplay {
    public struct Report: Sendable {
        public let recordCount: UInt64
        public let checkpointCount: UInt64
        /// Event signatures and the payment authorisations embedded in events that were checked (none when trusting
        /// the checkpoints); the checkpoints' own signatures are one per `checkpointCount`. What a verification
        /// bound over the same signatures is compared with.
        public let eventSignaturesChecked: UInt64
        public let rootHash: [UInt8]
        /// Rows compared per state table (rebuild only).
        public let comparedRows: Int
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// The first bad record, when the failure is about one.
        public let sequenceNumber: UInt64?
        public let error: LedgerError

        public var description: String {
            if let sequenceNumber { return "seq \(sequenceNumber): \(error)" }
            return error.description
        }

        /// What a replay that stops at a record the rules refuse should add (`verify`, `rebuild`), or nil.
        public var olderRulesNote: String? {
            sequenceNumber == nil ? nil : LedgerReplay.olderRulesNote(error)
        }
    }

    /// The note for a record the ledger holds and this binary's rulebook refuses (an event's refusal: codes 1000 to
    /// 3999 and 5000 to 5999, not the operating errors of 4000 to 4999, among them integrity_failure): a ledger
    /// written by an older `circuito` can hold records that its rules accepted and a later rule refuses (the version 1
    /// payment authorisations of ledgers made before 9e22cf6), which reads as a forged or damaged ledger unless the
    /// refusal says so (`Specs/ledger.md` 8). `verify`, `rebuild` and a follower add it to their refusal.
    public static func olderRulesNote(_ error: LedgerError) -> String? {
        let number = error.code.number
        guard (1000..<4000).contains(number) || (5000..<6000).contains(number) else { return nil }
        return "this circuito's rules refuse a record the ledger holds: if an older circuito wrote it, that version's rules accepted the record and a later rule refuses it (Specs/ledger.md 8); audit the ledger with the version that wrote it and keep that version for it"
    }

    /// Which event signatures a replay checks.
    public enum SignatureChecks: Sendable {
        /// Every event's signature and embedded payment authorisation, on all cores (`verify`, `rebuild`).
        case everyEvent
        /// None: each record's leaf is still hashed into the tree and every stored checkpoint's signature and root
        /// are checked, so any change to a record is still found unless the checkpoint key was stolen; what is
        /// trusted is that the ledger checked each signature when it appended the record (`rebuild
        /// --trust-checkpoints`).
        case attestedByCheckpoints
    }

    /// Records read, parsed and signature-checked together; bounds the memory of a replay.
    public static let chunkRecordCount = 4096

    /// Where the records of a replayed chunk are freed.
    static let releaseQueue = DispatchQueue(label: "circuito.replay.release", qos: .utility)

    /// Replays `reader`'s ledger. The scratch environment lives in a new folder under `scratchParent` and is
    /// removed afterwards.
    public static func run(
        _ reader: LedgerReader, compareProjections: Bool = false, signatureChecks: SignatureChecks = .everyEvent,
        scratchParent: String = temporaryDirectory(), progress: (_ checked: UInt64, _ total: UInt64) -> Void = { _, _ in }
    ) throws(Failure) -> Report {
        try run(
            reader, compareProjections: compareProjections, signatureChecks: signatureChecks, scratchParent: scratchParent,
            chunkRecordCount: chunkRecordCount, progress: progress)
    }

    /// Opens the ledger a replay reads (`circuito verify`, `circuito rebuild`) as `export` and `report` open theirs
    /// (`LedgerReader.openForScan`): mapped without read-ahead, the whole file asked for ahead in single pages. Its log
    /// and tree are read in order but lie on pages spread over the file among the state tables', so read-ahead around
    /// each fault read up to the disk's read_ahead_kb (8 MiB on this machine) of pages mostly not needed. Where memory
    /// was limited that evicted the pages the replay needed next: a verify of 312 k records (a 489 MB file), whose own
    /// memory peaked at 77 MB and which ends in about 45 s, read 11 GB in its first 40 s and had not ended after 15
    /// minutes under a cgroup limit of 110 MB; opened this way, with its scratch environment also without read-ahead,
    /// it ended in 55 s, having read 0.9 GB. With only one of the two changes it read 133 to 155 GB in 4 to 5 minutes
    /// and had not ended.
    public static func openLedger(directory: String) throws(LedgerError) -> LedgerReader {
        try LedgerReader.openForScan(directory: directory)
    }

    /// Address space reserved for the scratch environment (LMDB maps it; only what is written takes disk): the
    /// ledger's own map, which holds the state the replay writes again and the log besides, and at least this.
    static let minimumScratchMapSizeBytes = 64 << 20

    /// `run` with another chunk size (tests use small chunks to cross chunk boundaries with a few records) or
    /// another scratch map size (a test makes the scratch environment fail to open); `scratchOpened` is shown the
    /// scratch environment once it is open (a test reads how it was opened).
    static func run(
        _ reader: LedgerReader, compareProjections: Bool, signatureChecks: SignatureChecks, scratchParent: String,
        chunkRecordCount: Int, scratchMapSizeBytes: Int? = nil, scratchOpened: (LMDBEnvironment) -> Void = { _ in },
        progress: (_ checked: UInt64, _ total: UInt64) -> Void
    ) throws(Failure) -> Report {
        precondition(chunkRecordCount > 0, "a chunk holds at least one record")
        let scratchPath: String
        do {
            scratchPath = try makeScratchDirectory(in: scratchParent)
        } catch {
            throw Failure(sequenceNumber: nil, error: error)
        }
        // Removed however the replay ends, also when its environment cannot be opened.
        defer { removeScratchDirectory(scratchPath) }
        let scratch: LMDBEnvironment
        do {
            // Without read-ahead: the rules look up state all over the scratch file, and each fault would also read
            // its neighbours (up to the disk's read_ahead_kb, 8 MiB on this machine), which under a memory limit (a
            // container, a cgroup) evict the pages the replay needs next (`openLedger`, Specs/ledger.md 10.1).
            var options = LMDBEnvironment.Options(
                mapSize: .exactly(bytes: scratchMapSizeBytes ?? max(reader.environment.mapSizeBytes, minimumScratchMapSizeBytes)), durable: false,
                readAhead: false)
            // Its own folder is gone once it is open (below): a full disk is the temporary folder's.
            options.freeSpace = (scratchParent, "the replay's scratch database in \(scratchParent) ($TMPDIR): that")
            scratch = try LMDBEnvironment(path: scratchPath, databaseNames: LedgerDatabase.all, create: true, options: options)
        } catch {
            throw Failure(sequenceNumber: nil, error: error)
        }
        scratchOpened(scratch)
        // Its files stay open (and mapped) until it closes, nameless: a replay killed or interrupted leaves nothing in
        // the temporary folder, where each would otherwise keep up to the ledger's size of disk (or memory, on tmpfs).
        removeScratchDirectory(scratchPath)
        do {
            return try reader.environment.read { (live) throws(LedgerError) -> Result<Report, Failure> in
                do {
                    return .success(
                        try replay(
                            live: live, scratch: scratch, compareProjections: compareProjections, signatureChecks: signatureChecks,
                            chunkRecordCount: chunkRecordCount, progress: progress))
                } catch let failure as Failure {
                    return .failure(failure)
                } catch {
                    return .failure(Failure(sequenceNumber: nil, error: LedgerError(.storage, "\(error)")))
                }
            }.get()
        } catch let failure as Failure {
            throw failure
        } catch let error as LedgerError {
            throw Failure(sequenceNumber: nil, error: error)
        } catch {
            throw Failure(sequenceNumber: nil, error: LedgerError(.storage, "\(error)"))
        }
    }

    static func replay(
        live: LMDBTransaction, scratch: LMDBEnvironment, compareProjections: Bool, signatureChecks: SignatureChecks,
        chunkRecordCount: Int, progress: (UInt64, UInt64) -> Void
    ) throws -> Report {
        func failing<T>(_ sequenceNumber: UInt64?, _ body: () throws(LedgerError) -> T) throws(Failure) -> T {
            do { return try body() } catch { throw Failure(sequenceNumber: sequenceNumber, error: error) }
        }
        let total = try failing(nil) { () throws(LedgerError) in UInt64(try live.count(LedgerDatabase.log)) }
        let latestCheckpointSize = try failing(nil) { () throws(LedgerError) in
            try live.last(LedgerDatabase.checkpoints).flatMap { BigEndianKey.decode($0.key) } ?? 0
        }
        var replayer = RecordReplayer(
            frontier: MerkleFrontier(), lastRecordedAtMilliseconds: 0, verifier: nil, origin: "",
            verifierOfGenesis: { (genesis) throws(LedgerError) in try RecordReplayer.verifier(of: genesis) })
        var checkpointCount: UInt64 = 0
        var eventSignaturesChecked: UInt64 = 0
        // The checkpoint key as the live ledger's stored genesis names it, so that the checkpoints' signatures are
        // checked on the other cores with the records' (one per commit: on a quiet ledger as many as the records).
        // It is not trusted: the rule thread uses such a result only when the genesis it replays from the log gives
        // this same verifier, and opens the note again itself otherwise.
        let storedGenesisVerifier = try? TransactionLedgerState(transaction: live).genesis().map { (genesis) throws(LedgerError) in
            try RecordReplayer.verifier(of: genesis)
        }
        // One cache of parsed state values for the whole replay: the replay is the scratch environment's only
        // writer, and a failed transaction ends the replay.
        let parsedValues = ParsedValueCache()
        let releaseSlots = DispatchSemaphore(value: 2)
        // A pipeline of two chunks: while the rules run over one chunk on this thread (they need the state the
        // previous records left), the next chunk is parsed and its signatures checked on the other cores. LMDB is
        // read only on this thread, the one that owns the read transaction.
        func prepare(from start: UInt64) throws(Failure) -> PreparedChunk? {
            guard start < total else { return nil }
            let end = min(start + UInt64(chunkRecordCount), total)
            let read = try failing(start) { () throws(LedgerError) in try readChunk(live, from: start, to: end) }
            return PreparedChunk(
                start: start, leaves: read.leaves, storedLeafHashes: read.storedLeafHashes, checkpoints: read.checkpoints,
                checkpointVerifier: storedGenesisVerifier, readFailure: read.failure, signatureChecks: signatureChecks)
        }
        var current = try prepare(from: 0)
        while let chunk = current {
            // A damaged log further on is reported only after this chunk, so the first bad seq is the one named.
            let next = chunk.readFailure == nil ? Result { () throws(Failure) in try prepare(from: chunk.end) } : .success(nil)
            let checked = chunk.checked.wait()
            let openedCheckpoints = chunk.openedCheckpoints.wait()
            var newNodes: [MerkleNode] = []
            // A rule failure aborts the scratch transaction; its seq is kept here to report it.
            var failedSequenceNumber: UInt64?
            do throws(LedgerError) {
                try scratch.write { (transaction) throws(LedgerError) in
                    // Only `rebuild` compares the tables no rule reads: `verify` leaves them out.
                    let state = TransactionLedgerState(
                        transaction: transaction, parsedValues: parsedValues, keepingQueryOnlyTables: compareProjections)
                    for (offset, item) in checked.enumerated() {
                        let sequenceNumber = chunk.start + UInt64(offset)
                        do throws(LedgerError) {
                            // Every check of a record before the next record's, so the first bad seq is the one named.
                            // First its leaf against the leaf hash stored when it was appended: a changed record is
                            // named by its own seq even when the change keeps its signature valid (recorded_at is
                            // outside the event signature).
                            guard offset < chunk.storedLeafHashes.count, chunk.storedLeafHashes[offset].count == SHA256.byteCount else {
                                throw LedgerError(.integrity, "tree node (level 0, index \(sequenceNumber)) is missing or damaged")
                            }
                            guard chunk.storedLeafHashes[offset] == item.leafHash else {
                                throw LedgerError(.integrity, "the record's bytes do not hash to the leaf hash stored when it was appended")
                            }
                            let (record, verifiedEvent) = try item.outcome.get()
                            if case .everyEvent = signatureChecks {
                                eventSignaturesChecked += UInt64(verifiedEvent.signatureCount)
                            }
                            newNodes += try replayer.replay(record, verifiedEvent, leafHash: item.leafHash, at: sequenceNumber, state: state)
                            if let note = chunk.checkpoints[replayer.frontier.size] {
                                try replayer.checkCheckpoint(
                                    note, opened: openedCheckpoints[replayer.frontier.size], openedWith: chunk.checkpointVerifier)
                                checkpointCount += 1
                            }
                        } catch {
                            failedSequenceNumber = sequenceNumber
                            throw error
                        }
                    }
                }
            } catch {
                throw Failure(sequenceNumber: failedSequenceNumber, error: error)
            }
            try failing(nil) { () throws(LedgerError) in try compareStoredNodes(live, newNodes) }
            // The records before a gap were checked first: the gap is named now, at its own seq.
            if let readFailure = chunk.readFailure {
                throw Failure(sequenceNumber: readFailure.sequenceNumber, error: readFailure.error)
            }
            progress(chunk.end, total)
            // The chunk's parsed records are thousands of small objects: they are freed on another core, not on
            // this one, which the rules of the next chunk wait for; at most two chunks wait there, so memory stays
            // bounded if freeing falls behind.
            releaseSlots.wait()
            releaseQueue.async {
                withExtendedLifetime((chunk, checked, openedCheckpoints)) {}
                releaseSlots.signal()
            }
            current = try next.get()
        }
        guard total > 0, latestCheckpointSize == total else {
            throw Failure(sequenceNumber: nil, error: LedgerError(.integrity, "the latest checkpoint covers \(latestCheckpointSize) records but the log holds \(total)"))
        }
        var comparedRows = 0
        if compareProjections {
            comparedRows = try failing(nil) { () throws(LedgerError) in try compareTables(live: live, rebuilt: scratch) }
        }
        return Report(
            recordCount: total, checkpointCount: checkpointCount, eventSignaturesChecked: eventSignaturesChecked, rootHash: replayer.frontier.root,
            comparedRows: comparedRows)
    }

    /// One chunk of leaves read from the log, being hashed, parsed and signature-checked on the other cores.
    final class PreparedChunk: Sendable {
        struct Item: Sendable {
            let leafHash: [UInt8]
            let outcome: Result<(Record, VerifiedEvent), LedgerError>
        }

        let start: UInt64
        let end: UInt64
        /// The leaf hashes stored when the records were appended (level 0 of the `tree` database), in seq order
        /// from `start`, as far as they are stored without a gap.
        let storedLeafHashes: [[UInt8]]
        let checkpoints: [UInt64: String]
        /// The verifier the checkpoints were opened with on the other cores (nil: none were).
        let checkpointVerifier: NoteVerifier?
        /// Where reading stopped early (a gap or damaged key in the log), reported once the leaves before it are checked.
        let readFailure: ChunkRead.Failure?
        let checked: Pending<[Item]>
        /// Each checkpoint's note opened (signature checked, text parsed) with `checkpointVerifier`, by tree size.
        let openedCheckpoints: Pending<[UInt64: Result<Checkpoint, LedgerError>]>

        init(
            start: UInt64, leaves: [[UInt8]], storedLeafHashes: [[UInt8]], checkpoints: [UInt64: String],
            checkpointVerifier: NoteVerifier?, readFailure: ChunkRead.Failure?, signatureChecks: SignatureChecks
        ) {
            self.start = start
            self.end = start + UInt64(leaves.count)
            self.storedLeafHashes = storedLeafHashes
            self.checkpoints = checkpoints
            self.checkpointVerifier = checkpointVerifier
            self.readFailure = readFailure
            openedCheckpoints = Pending {
                guard let checkpointVerifier else { return [:] }
                let notes = checkpoints.sorted { $0.key < $1.key }
                let outcomes = Parallel.map(notes.map(\.value)) { note in
                    Result { () throws(LedgerError) in try LedgerReplay.openCheckpoint(note, verifier: checkpointVerifier) }
                }
                var opened: [UInt64: Result<Checkpoint, LedgerError>] = [:]
                opened.reserveCapacity(notes.count)
                for (note, outcome) in zip(notes, outcomes) { opened[note.key] = outcome }
                return opened
            }
            checked = Pending {
                Parallel.map(leaves) { leafBytes -> Item in
                    let outcome = Result { () throws(LedgerError) -> (Record, VerifiedEvent) in
                        let record = try Record(leafBytes: leafBytes)
                        switch signatureChecks {
                        case .everyEvent: return (record, try record.signedEvent.verified())
                        case .attestedByCheckpoints: return (record, record.signedEvent.attestedByCheckpoint())
                        }
                    }
                    return Item(leafHash: MerkleHash.leaf(leafBytes), outcome: outcome)
                }
            }
        }
    }

    static func checkCheckpoint(_ note: String, size: UInt64, root: [UInt8], origin: String, verifier: NoteVerifier) throws(LedgerError) {
        try checkOpenedCheckpoint(try openCheckpoint(note, verifier: verifier), size: size, root: root, origin: origin)
    }

    /// A checkpoint note's signature by `verifier` checked and its text parsed: the part of checking a checkpoint
    /// that does not depend on the replay's state, so it can run on any core.
    static func openCheckpoint(_ note: String, verifier: NoteVerifier) throws(LedgerError) -> Checkpoint {
        try Checkpoint(parsing: try SignedNote.open(note, verifier: verifier))
    }

    /// An opened checkpoint against the replayed tree: origin, size and root.
    static func checkOpenedCheckpoint(_ checkpoint: Checkpoint, size: UInt64, root: [UInt8], origin: String) throws(LedgerError) {
        guard checkpoint.origin == origin, checkpoint.size == size else {
            throw LedgerError(.integrity, "checkpoint stored for size \(size) says \(checkpoint.origin) size \(checkpoint.size)")
        }
        guard checkpoint.rootHash == root else {
            throw LedgerError(.integrity, "checkpoint at size \(size) has root \(Base64.encode(checkpoint.rootHash)), the log gives \(Base64.encode(root))")
        }
    }

    /// The leaves of records `start..<end` as far as the log holds them in order, the checkpoints in that range,
    /// and where reading stopped early if it did.
    struct ChunkRead {
        struct Failure: Sendable {
            let sequenceNumber: UInt64
            let error: LedgerError
        }
        var leaves: [[UInt8]] = []
        var storedLeafHashes: [[UInt8]] = []
        var checkpoints: [UInt64: String] = [:]
        var failure: Failure?
    }

    static func readChunk(_ transaction: LMDBTransaction, from start: UInt64, to end: UInt64) throws(LedgerError) -> ChunkRead {
        var read = ChunkRead()
        read.leaves.reserveCapacity(Int(end - start))
        var expected = start
        try transaction.forEach(LedgerDatabase.log, from: BigEndianKey.encode(start)) { (key, value) throws(LedgerError) -> Bool in
            guard expected < end else { return false }
            guard BigEndianKey.decode(key) == expected else {
                read.failure = .init(sequenceNumber: expected, error: LedgerError(.integrity, "the log has a gap or a damaged key at seq \(expected)"))
                return false
            }
            read.leaves.append([UInt8](value))
            expected += 1
            return true
        }
        if read.failure == nil && expected != end {
            read.failure = .init(sequenceNumber: expected, error: LedgerError(.integrity, "the log ends at seq \(expected), before \(end)"))
        }
        // The stored leaf hashes in one cursor walk (a lookup per record showed in profiles).
        read.storedLeafHashes.reserveCapacity(read.leaves.count)
        var expectedLeaf = start
        let leafEnd = start + UInt64(read.leaves.count)
        try transaction.forEach(LedgerDatabase.tree, from: TransactionMerkleNodes.key(level: 0, index: start)) { (key, value) throws(LedgerError) -> Bool in
            guard expectedLeaf < leafEnd, key.count == 9, key[0] == 0, BigEndianKey.decode(key[1...]) == expectedLeaf else { return false }
            read.storedLeafHashes.append([UInt8](value))
            expectedLeaf += 1
            return true
        }
        var checkpoints: [UInt64: String] = [:]
        try transaction.forEach(LedgerDatabase.checkpoints, from: BigEndianKey.encode(start + 1)) { (key, value) throws(LedgerError) -> Bool in
            guard let size = BigEndianKey.decode(key) else { throw LedgerError(.integrity, "a checkpoint key is damaged") }
            guard size <= end else { return false }
            checkpoints[size] = String(decoding: value, as: UTF8.self)
            return true
        }
        read.checkpoints = checkpoints
        return read
    }

    /// The tree nodes stored at append time must be the ones the leaves give.
    static func compareStoredNodes(_ transaction: LMDBTransaction, _ nodes: [MerkleNode]) throws(LedgerError) {
        let stored = TransactionMerkleNodes(transaction: transaction)
        for node in nodes where try stored.completeSubtreeHash(level: node.level, index: node.index) != node.hash {
            throw LedgerError(.integrity, "stored tree node (level \(node.level), index \(node.index)) differs from the one the log gives")
        }
    }

    /// Compares every state table of the live ledger with the rebuilt one, in key order; the first difference is
    /// reported with its table and key.
    static func compareTables(live: LMDBTransaction, rebuilt: LMDBEnvironment) throws(LedgerError) -> Int {
        var compared = 0
        try rebuilt.read { (fresh) throws(LedgerError) in
            for table in StateTable.all {
                let liveCount = try live.count(table.name)
                let freshCount = try fresh.count(table.name)
                // Both walked side by side in key order and compared in place.
                try live.forEachSideBySide(table.name, with: fresh, table.name) { (liveEntry, freshEntry) throws(LedgerError) -> Bool in
                    if let liveEntry, let freshEntry, LMDBTransaction.sameBytes(liveEntry.key, freshEntry.key),
                        LMDBTransaction.sameBytes(liveEntry.value, freshEntry.value) {
                        compared += 1
                        return true
                    }
                    let detail: String
                    // Copied only here, to name the difference.
                    func copied(_ entry: (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)?) -> (key: [UInt8], value: [UInt8])? {
                        entry.map { (key: [UInt8]($0.key), value: [UInt8]($0.value)) }
                    }
                    switch (copied(liveEntry), copied(freshEntry)) {
                    case (let live?, let fresh?) where live.key == fresh.key:
                        detail = "key \(printable(live.key)): live value \(printable(live.value)), rebuilt \(printable(fresh.value))"
                    case (let live?, let fresh?):
                        let first = live.key.lexicographicallyPrecedes(fresh.key) ? live.key : fresh.key
                        detail = "key \(printable(first)) is only in the \(first == live.key ? "live" : "rebuilt") table"
                    case (let live?, nil):
                        detail = "key \(printable(live.key)) is only in the live table"
                    case (nil, let fresh?):
                        detail = "key \(printable(fresh.key)) is only in the rebuilt table"
                    case (nil, nil):
                        detail = "no entry"
                    }
                    throw LedgerError(.integrity, "projection \(table) differs at \(detail) (live \(liveCount) rows, rebuilt \(freshCount))")
                }
            }
        }
        return compared
    }

    static func printable(_ key: [UInt8]) -> String {
        String(decoding: key.map { $0 == 0 ? UInt8(ascii: "/") : ($0 < 0x20 || $0 > 0x7e ? UInt8(ascii: "?") : $0) }, as: UTF8.self)
    }

    /// `$TMPDIR`, or `/tmp` when it is unset or empty.
    public static func temporaryDirectory() -> String {
        temporaryDirectory(environmentValue: getenv("TMPDIR").map { String(cString: $0) })
    }

    /// The folder for scratch files given `TMPDIR`'s value: an empty one counts as unset, as for mktemp(1) and
    /// glibc, and is not the path "" (which put the scratch folder at `/circuito-…`, in the root folder).
    static func temporaryDirectory(environmentValue value: String?) -> String {
        guard let value, !value.isEmpty else { return "/tmp" }
        return value
    }

    static func makeScratchDirectory(in parent: String) throws(LedgerError) -> String {
        try makeUniqueDirectory(named: "circuito-replay", in: parent)
    }

    /// A new folder `parent/name-??????` (mode 0700) that no other process has, made with `mkdtemp`, whose
    /// template ends in six `X`s that it replaces.
    public static func makeUniqueDirectory(named name: String, in parent: String) throws(LedgerError) -> String {
        var template = Array((parent + "/" + name + "-" + String(repeating: "X", count: 6)).utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let base = buffer.baseAddress, let result = mkdtemp(base) else { return nil }
            return String(cString: result)
        }
        guard let made else {
            throw LedgerError(.storage, "cannot create a folder in \(parent): \(String(cString: strerror(errno)))")
        }
        return made
    }

    static func removeScratchDirectory(_ path: String) {
        for name in ["data.mdb", "lock.mdb"] { unlink(path + "/" + name) }
        rmdir(path)
    }
}
