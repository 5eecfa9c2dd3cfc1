import CircuitoCore
import CircuitoCrypto
@testable import CircuitoStorage
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

/// A ledger in a fresh temporary directory, removed at the end of the test.
final class TemporaryLedger {
    let directory: String
    let authority = Ed25519PrivateKey()
    let checkpointKey = Ed25519PrivateKey()
    var counter = 0

    init() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("circuito-test-\(UUID().uuidString)").path
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func event(_ type: String, by actor: String = "city", key: Ed25519PrivateKey? = nil, _ body: JSONObject, id: String? = nil) throws -> VerifiedEvent {
        counter += 1
        let signer = key ?? authority
        let event = try Event(id: id ?? "evt-\(counter)", type: type, actor: actor, key: signer.publicKey.multikey, timestamp: "2026-11-22T10:00:00Z", body: body)
        return try SignedEvent(signing: event, with: signer).verified()
    }

    func genesis() throws -> VerifiedEvent {
        try event("ledger.genesis", [
            "origin": "test.example/ledger",
            "authority": .object(["actor": "city", "name": "City", "keys": .array([.string(authority.publicKey.multikey)])]),
            "checkpoint_key": .string(checkpointKey.publicKey.multikey), "currency": ["code": "TOC", "decimals": 2],
        ], id: "genesis")
    }

    func create(options: LMDBEnvironment.Options = .init(), clock: @escaping @Sendable () -> Int64 = Ledger.systemClockMilliseconds) throws -> Ledger {
        try Ledger.create(directory: directory, genesis: genesis(), checkpointKey: checkpointKey, options: options, clock: clock)
    }

    func registration(_ id: String, name: String? = nil) throws -> VerifiedEvent {
        try event("actor.registered", ["actor": .string(id), "role": "merchant", "name": .string(name ?? "Shop \(id)"), "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)])])
    }
}

extension Result {
    var failureCode: LedgerError.Code? {
        if case .failure(let error as LedgerError) = self { return error.code }
        return nil
    }
}

@Suite("Ledger on LMDB")
struct LedgerTests {
    @Test("append, receipts with covering checkpoints, reopen, and the tree continues")
    func appendAndReopen() throws {
        let temporary = TemporaryLedger()
        var lastReceipt: Receipt?
        do {
            let ledger = try temporary.create()
            #expect(ledger.frontier.size == 1)
            let results = try ledger.append([try temporary.registration("a"), try temporary.registration("b")])
            let receipts = try results.map { try $0.get() }
            #expect(receipts.map(\.sequenceNumber) == [1, 2])
            // Both receipts carry the one checkpoint of their commit, and it verifies with the genesis key.
            #expect(receipts[0].checkpoint == receipts[1].checkpoint)
            let verifier = try NoteVerifier(name: "test.example/ledger", publicKey: temporary.checkpointKey.publicKey)
            let checkpoint = try Checkpoint(parsing: try SignedNote.open(receipts[1].checkpoint, verifier: verifier))
            #expect(checkpoint.size == 3)
            #expect(checkpoint.rootHash == ledger.frontier.root)
            // Each leaf is in the checkpointed tree.
            for receipt in receipts {
                let proof = try ledger.reader.inclusionProof(leafIndex: receipt.sequenceNumber, treeSize: 3)
                #expect(MerkleProofs.verifyInclusion(leafHash: receipt.leafHash, leafIndex: receipt.sequenceNumber, treeSize: 3, proof: proof, root: checkpoint.rootHash))
                #expect(MerkleHash.leaf(try ledger.reader.leafBytes(sequenceNumber: receipt.sequenceNumber)) == receipt.leafHash)
            }
            lastReceipt = receipts.last
        }
        let reopened = try Ledger.open(directory: temporary.directory)
        #expect(reopened.frontier.size == 3)
        let more = try reopened.append([try temporary.registration("c")])
        #expect(try more[0].get().sequenceNumber == 3)
        #expect(try reopened.reader.checkpointCovering(sequenceNumber: 2) == lastReceipt?.checkpoint)
        let report = try LedgerReplay.run(reopened.reader)
        #expect(report.recordCount == 4)
        #expect(report.checkpointCount == 3)
        #expect(report.rootHash == reopened.frontier.root)
    }

    @Test("a ledger that fails to start leaves no key and no LMDB files, so the same create works once the cause is gone; an existing key file is never replaced")
    func failedCreateLeavesNothing() throws {
        let temporary = TemporaryLedger()
        let directory = temporary.directory
        let files = { (names: [String]) in names.filter { access(directory + "/" + $0, F_OK) == 0 } }
        // A map too small for the genesis commit (LMDB's map_full), and one too small to create the databases.
        for mapSizeBytes in [16 * 1024, 8 * 1024] {
            #expect(throws: LedgerError.self) { try temporary.create(options: LMDBEnvironment.Options(mapSize: .exactly(bytes: mapSizeBytes))) }
            #expect(files([LedgerFiles.checkpointKey, "data.mdb", "lock.mdb"]).isEmpty)
            #expect(access(directory, F_OK) != 0, "the folder this create made is left")
        }
        let ledger = try temporary.create()
        #expect(try ledger.reader.size() == 1)

        // A folder with a key file but no ledger: create refuses and leaves that key file as it was.
        let other = TemporaryLedger()
        #expect(mkdir(other.directory, 0o700) == 0)
        let existing = Ed25519PrivateKey()
        try KeyFile.write(existing, to: other.directory + "/" + LedgerFiles.checkpointKey)
        #expect(throws: LedgerError.self) { try other.create() }
        #expect(try KeyFile.read(other.directory + "/" + LedgerFiles.checkpointKey).publicKey == existing.publicKey)
        #expect(access(other.directory + "/data.mdb", F_OK) != 0)

        // A folder it made, whose files' paths are too long (the folder's own path is within PATH_MAX, its writer
        // lock's is not): the failure names the cause, and the folder goes again. Parents of 200-byte names.
        let deep = TemporaryLedger()
        var parent = deep.directory
        #expect(mkdir(parent, 0o700) == 0)
        while parent.utf8.count + 201 < Int(PATH_MAX) - 1 {
            parent += "/" + String(repeating: "p", count: 200)
            #expect(mkdir(parent, 0o700) == 0)
        }
        let tooDeep = parent + "/" + String(repeating: "l", count: Int(PATH_MAX) - 2 - parent.utf8.count)
        #expect(tooDeep.utf8.count == Int(PATH_MAX) - 1)
        let refused = #expect(throws: LedgerError.self) {
            try Ledger.create(directory: tooDeep, genesis: try deep.genesis(), checkpointKey: deep.checkpointKey)
        }
        #expect(refused?.code == .storage && refused?.message.contains("File name too long") == true, "\(String(describing: refused))")
        #expect(access(parent, F_OK) == 0 && access(tooDeep, F_OK) != 0, "the folder this create made is left")
    }

    @Test("LMDB's lock file has its blocks reserved before LMDB maps it (a page without one kills the process with SIGBUS on a full disk), for every reader slot")
    func lockFileBlocksAreReserved() throws {
        for maximumReaders: UInt32 in [126, 256, 1000] {
            let temporary = TemporaryLedger()
            #expect(mkdir(temporary.directory, 0o700) == 0)
            var options = LMDBEnvironment.Options()
            options.maximumReaders = maximumReaders
            let environment = try LMDBEnvironment(path: temporary.directory, databaseNames: ["other"], create: true, options: options)
            var status = stat()
            #expect(stat(temporary.directory + "/lock.mdb", &status) == 0)
            // LMDB sized the file for the readers (its header and a 64-byte slot each), and every byte has a block.
            #expect(Int(status.st_size) >= Int(maximumReaders) * 64)
            #expect(Int(status.st_blocks) * 512 >= Int(status.st_size), "\(maximumReaders) readers: \(status.st_blocks) blocks for \(status.st_size) bytes")
            #expect(LMDBEnvironment.lockFileBytes(maximumReaders: maximumReaders) >= Int(status.st_size))
            environment.close()
        }
    }

    @Test("the note on a commit's EIO names a full file system from its free space, and takes a file system that reports more than 2^64 bytes free as one with room, not as a trap")
    func fullFileSystemNoteFromAnyFigures() {
        #expect(LMDBEnvironment.fullFileSystemNote(availableBlocks: 3, blockBytes: 4096, name: "the ledger's") == " (the ledger's file system has 12 KiB free: probably full)")
        #expect(LMDBEnvironment.fullFileSystemNote(availableBlocks: 256, blockBytes: 4096, name: "the ledger's").isEmpty)
        // Before, the product of the two figures was taken unchecked, which traps past 2^64.
        #expect(LMDBEnvironment.fullFileSystemNote(availableBlocks: .max, blockBytes: 4096, name: "the ledger's").isEmpty)
        #expect(LMDBEnvironment.fullFileSystemNote(availableBlocks: 1 << 52, blockBytes: 1 << 12, name: "the ledger's").isEmpty)
    }

    @Test("an LMDB environment that is not a ledger, or a data file LMDB cannot read, is refused with an error, not a crash")
    func openingSomethingElse() throws {
        let temporary = TemporaryLedger()
        #expect(mkdir(temporary.directory, 0o700) == 0)
        // Some other program's LMDB environment: it lacks the ledger's databases.
        _ = try LMDBEnvironment(path: temporary.directory, databaseNames: ["other"], create: true)
        #expect(access(temporary.directory + "/data.mdb", F_OK) == 0)
        for _ in 0..<2 {
            do {
                _ = try LedgerReader.open(directory: temporary.directory)
                Issue.record("an environment without the ledger's databases opened as a ledger")
            } catch {
                #expect(error.code == .notFound)
            }
        }
        // A data file LMDB cannot use: garbage where its meta pages should be.
        let broken = TemporaryLedger()
        #expect(mkdir(broken.directory, 0o700) == 0)
        #expect(FileManager.default.createFile(atPath: broken.directory + "/data.mdb", contents: Data(repeating: 0x5A, count: 16_384)))
        #expect(throws: LedgerError.self) { try LedgerReader.open(directory: broken.directory) }
    }

    @Test("idempotency: the same event again returns the first receipt; other content under the same id is refused")
    func idempotency() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        let event = try temporary.registration("shop", name: "First")
        let first = try ledger.append([event])[0].get()
        _ = try ledger.append([try temporary.registration("other")])
        let again = try ledger.append([event])[0].get()
        #expect(again == first)
        let conflicting = try temporary.event("actor.registered", ["actor": "shop2", "role": "merchant", "name": "Second", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)])], id: event.event.id)
        let sizeBefore = try ledger.reader.size()
        let refused = try ledger.append([conflicting])
        #expect(refused[0].failureCode == .idConflict)
        #expect(try ledger.reader.size() == sizeBefore)
        // The same id twice inside one batch: the second is the same content, so it gets the first's receipt.
        let twice = try temporary.registration("twice")
        let batch = try ledger.append([twice, twice])
        #expect(try batch[0].get() == batch[1].get())
    }

    @Test("a batch with refusals: accepted events get one commit and one checkpoint, refused ones leave no trace")
    func mixedBatch() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        var checkpointsBefore = 0
        try ledger.reader.forEachCheckpoint { _, _ in checkpointsBefore += 1; return true }
        let stranger = Ed25519PrivateKey()
        let results = try ledger.append([
            try temporary.registration("ok-1"),
            try temporary.event("actor.registered", by: "ghost", key: stranger, ["actor": "x", "role": "merchant", "name": "X", "keys": .array([.string(stranger.publicKey.multikey)])]),
            try temporary.registration("ok-1"),  // same actor id again, other event id
            try temporary.registration("ok-2"),
        ])
        #expect(results.map(\.failureCode) == [nil, .unknownActor, .actorExists, nil])
        #expect(try results[3].get().sequenceNumber == 2)
        var checkpointsAfter = 0
        try ledger.reader.forEachCheckpoint { _, _ in checkpointsAfter += 1; return true }
        #expect(checkpointsAfter == checkpointsBefore + 1)
        // A batch of refusals only writes nothing at all, not even a checkpoint.
        let none = try ledger.append([try temporary.registration("ok-2")])
        #expect(none[0].failureCode == .actorExists)
        var checkpointsFinal = 0
        try ledger.reader.forEachCheckpoint { _, _ in checkpointsFinal += 1; return true }
        #expect(checkpointsFinal == checkpointsAfter)
        _ = try LedgerReplay.run(ledger.reader)
    }

    @Test("checkpoints come in pages by size: paging through them gives every one once, in order, whatever the page size")
    func checkpointPages() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        for index in 0..<5 { _ = try ledger.append([try temporary.registration("paged-\(index)")]) }
        var all: [UInt64] = []
        try ledger.reader.forEachCheckpoint { size, _ in all.append(size); return true }
        #expect(all == [1, 2, 3, 4, 5, 6])
        for limit in [1, 2, 4, 6, 7] {
            var paged: [UInt64] = []
            var next: UInt64 = 0
            for _ in 0..<all.count + 1 {
                let page = try ledger.reader.checkpoints(fromSize: next, limit: limit)
                paged += page.map(\.size)
                guard page.count == limit, let last = page.last?.size else { break }
                next = last + 1
            }
            #expect(paged == all, "pages of \(limit)")
        }
        // From the middle, and past the last.
        #expect(try ledger.reader.checkpoints(fromSize: 3, limit: 2).map(\.size) == [3, 4])
        #expect(try ledger.reader.checkpoints(fromSize: 7, limit: 2).isEmpty)
    }

    @Test("a records page holds at most its limit and its byte bound of records (always the first, whatever its size), and the checkpoints for the sizes in (its start, its end]: for every start, limit and bound")
    func recordsPageBounds() throws {
        let temporary = try AuditTests.ledgerOfTimedCommits()
        let (leaves, checkpoints) = try AuditTests.leavesAndCheckpoints(of: temporary)
        let reader = try LedgerReader.open(directory: temporary.directory)
        defer { _ = reader.close() }
        // Each run of records' bytes, one below and one above: every boundary of the byte bound from both sides.
        var bounds: Set<Int> = [1]
        for start in leaves.indices {
            var total = 0
            for leaf in leaves[start...] {
                total += leaf.count
                bounds.formUnion([total - 1, total, total + 1])
            }
        }
        for start in 0...leaves.count {
            let remaining = leaves.count - start
            for limit in 1...leaves.count + 1 {
                for maximumBytes in bounds.sorted() {
                    // The most records from `start` whose bytes together are within the bound; the first is taken anyway.
                    let fitting = (0...remaining).last { count in
                        leaves[start..<start + count].reduce(0) { $0 + $1.count } <= maximumBytes
                    } ?? 0
                    let count = min(remaining, limit, max(1, fitting))
                    let end = UInt64(start + count)
                    let page = try reader.recordsPage(from: UInt64(start), limit: limit, maximumBytes: maximumBytes)
                    let label = "from \(start), limit \(limit), \(maximumBytes) bytes"
                    #expect(page.records.map(\.sequenceNumber) == Array(UInt64(start)..<end), "\(label)")
                    #expect(page.records.map(\.leafBytes) == Array(leaves[start..<start + count]), "\(label)")
                    let covered = checkpoints.filter { $0.size > UInt64(start) && $0.size <= end }
                    #expect(page.checkpoints.map(\.size) == covered.map(\.size), "\(label)")
                    #expect(page.checkpoints.map(\.note) == covered.map(\.note), "\(label)")
                    #expect(page.size == UInt64(leaves.count), "\(label)")
                }
            }
        }
    }

    @Test("a root or a proof at a tree size past the ledger's, by one or more, is refused invalid_range; at its size it is served")
    func proofsPastTheLedger() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        _ = try ledger.append([try temporary.registration("a")]).map { try $0.get() }
        let reader = ledger.reader
        let size = try reader.size()
        func refusal(_ body: () throws -> Void) -> LedgerError.Code? {
            do {
                try body()
                return nil
            } catch {
                return (error as? LedgerError)?.code
            }
        }
        for past in [size + 1, size + 2] {
            #expect(refusal { _ = try reader.root(treeSize: past) } == .invalidRange)
            #expect(refusal { _ = try reader.inclusionProof(leafIndex: 0, treeSize: past) } == .invalidRange)
            #expect(refusal { _ = try reader.consistencyProof(firstSize: 1, secondSize: past) } == .invalidRange)
        }
        #expect(try reader.root(treeSize: size) == ledger.frontier.root)
        #expect(refusal { _ = try reader.consistencyProof(firstSize: 1, secondSize: size) } == nil)
    }

    @Test("proofs served from LMDB equal the in-memory tree's for every 0 < m ≤ n ≤ 64, and verify")
    func proofsFromStorage() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        // Appended one per commit so that a checkpoint exists at every size.
        for index in 1..<64 { _ = try ledger.append([try temporary.registration("shop-\(index)")]) }
        var memoryNodes = InMemoryMerkleNodes()
        var frontier = MerkleFrontier()
        var roots: [[UInt8]] = [MerkleHash.emptyRoot]
        var leafHashes: [[UInt8]] = []
        try ledger.reader.forEachRecord(from: 0) { (_, leaf) throws(LedgerError) -> Bool in
            let leafHash = MerkleHash.leaf([UInt8](leaf))
            leafHashes.append(leafHash)
            memoryNodes.store(frontier.append(leafHash: leafHash))
            roots.append(frontier.root)
            return true
        }
        #expect(leafHashes.count == 64)
        let reader = ledger.reader
        for second in UInt64(1)...64 {
            #expect(try reader.root(treeSize: second) == roots[Int(second)])
            for first in UInt64(1)...second {
                let proof = try reader.consistencyProof(firstSize: first, secondSize: second)
                #expect(proof == (try MerkleProofs.consistencyProof(firstSize: first, secondSize: second, source: memoryNodes)))
                #expect(MerkleProofs.verifyConsistency(firstSize: first, secondSize: second, firstRoot: roots[Int(first)], secondRoot: roots[Int(second)], proof: proof))
                let leafIndex = first - 1
                let inclusion = try reader.inclusionProof(leafIndex: leafIndex, treeSize: second)
                #expect(inclusion == (try MerkleProofs.inclusionProof(leafIndex: leafIndex, treeSize: second, source: memoryNodes)))
                #expect(MerkleProofs.verifyInclusion(leafHash: leafHashes[Int(leafIndex)], leafIndex: leafIndex, treeSize: second, proof: inclusion, root: roots[Int(second)]))
            }
        }
        #expect(throws: LedgerError.self) { try reader.inclusionProof(leafIndex: 0, treeSize: 65) }
        #expect(throws: LedgerError.self) { try reader.consistencyProof(firstSize: 5, secondSize: 4) }
        #expect(throws: LedgerError.self) { try reader.inclusionProof(leafIndex: 64, treeSize: 64) }
        let report = try LedgerReplay.run(reader)
        #expect(report.checkpointCount == 64)
    }

    @Test("the writer lock waits a moment for a copy of a released lock's descriptor (a child between fork and exec), not for a writer")
    func writerLockWaitsForAMoment() throws {
        let temporary = TemporaryLedger()
        try FileManager.default.createDirectory(atPath: temporary.directory, withIntermediateDirectories: true)
        let path = temporary.directory + "/writer.lock"
        // A writer's lock, and a copy of its descriptor as a spawned child holds one until its exec: the writer
        // lets go, the copy keeps the lock a moment more.
        let writer = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try #require(writer >= 0 && flock(writer, LOCK_EX | LOCK_NB) == 0)
        let childCopy = dup(writer)
        try #require(childCopy >= 0)
        close(writer)
        // The copy is closed once the lock, with its usual wait, has found it held and is about to try again (in
        // the lock's own thread: no other thread to be scheduled in time).
        var refusedWhileHeld = 0
        let lock = try FileLock(path: path, waitMilliseconds: FileLock.waitMilliseconds) {
            refusedWhileHeld += 1
            if refusedWhileHeld == 1 { close(childCopy) }
        }
        // It waited rather than refused, and took the lock at its next attempt, once the copy let go.
        #expect(refusedWhileHeld == 1, "the lock was taken while the copy held it, or not at once after")
        // Held now: another writer waits the whole wait, then is refused.
        let refusedStart = ContinuousClock.now
        do {
            _ = try FileLock(path: path)
            Issue.record("a second lock was taken")
        } catch {
            #expect(error.code == .locked)
        }
        #expect(ContinuousClock.now - refusedStart >= .milliseconds(FileLock.waitMilliseconds))
        // Without a wait, at once.
        #expect(throws: LedgerError.self) { try FileLock(path: path, waitMilliseconds: 0) }
        lock.release()
        _ = try FileLock(path: path, waitMilliseconds: 0)
    }

    @Test("a folder is made with its mode; an existing one only when allowed; a missing parent is named, never made")
    func makeDirectory() throws {
        let temporary = TemporaryLedger()
        try FileIO.makeDirectory(temporary.directory, mode: 0o700, existingIsFine: true)
        let folder = temporary.directory + "/made"
        try FileIO.makeDirectory(folder, mode: 0o700, existingIsFine: false)
        var status = stat()
        #expect(stat(folder, &status) == 0 && status.st_mode & 0o777 == 0o700)
        try FileIO.makeDirectory(folder, mode: 0o700, existingIsFine: true)
        #expect(throws: LedgerError(.storage, "cannot create key vault \(folder): File exists")) {
            try FileIO.makeDirectory(folder, mode: 0o700, existingIsFine: false, what: "key vault")
        }
        let missing = temporary.directory + "/missing"
        #expect(throws: LedgerError(.storage, "cannot create \(missing)/ledger: the folder it goes in, \(missing), does not exist (create it first)")) {
            try FileIO.makeDirectory(missing + "/ledger", mode: 0o700, existingIsFine: true)
        }
        #expect(access(missing, F_OK) != 0, "the missing parent was made")
        #expect(throws: LedgerError(.storage, "cannot create key vault: the path given is empty")) {
            try FileIO.makeDirectory("", mode: 0o700, existingIsFine: true, what: "key vault")
        }
        // Ledger.create says the same and leaves nothing behind.
        do {
            _ = try Ledger.create(directory: missing + "/ledger", genesis: try temporary.genesis(), checkpointKey: temporary.checkpointKey)
            Issue.record("a ledger was created under a missing folder")
        } catch {
            #expect("\(error)".contains("the folder it goes in, \(missing), does not exist"), "\(error)")
        }
        #expect(access(missing, F_OK) != 0)
    }

    @Test("an output file is replaced whole or left as it was: a write that fails leaves the old content and no partial file")
    func replaceFile() throws {
        let temporary = TemporaryLedger()
        try FileIO.makeDirectory(temporary.directory, mode: 0o700, existingIsFine: true)
        let path = temporary.directory + "/out.json"
        try FileIO.replaceFile(path, with: Array("first\n".utf8))
        #expect(try FileIO.readFile(path, maximumBytes: 64) == Array("first\n".utf8))
        try FileIO.replaceFile(path, with: Array("second\n".utf8))
        #expect(try FileIO.readFile(path, maximumBytes: 64) == Array("second\n".utf8))
        // Half written, then a failure (as a full disk gives): the old file stays, and nothing beside it.
        #expect(throws: LedgerError(.storage, "no space")) {
            try FileIO.replaceFile(path) { (descriptor) throws(LedgerError) in
                try FileIO.writeAll(descriptor, Array("thi".utf8), path: path)
                throw LedgerError(.storage, "no space")
            }
        }
        #expect(try FileIO.readFile(path, maximumBytes: 64) == Array("second\n".utf8))
        #expect(access(path + ".partial", F_OK) != 0)
        // Not a regular file: written in place, and its failure reported (/dev/full: no space left).
        #expect(throws: LedgerError.self) { try FileIO.replaceFile("/dev/full", with: Array("x".utf8)) }
        #expect(throws: LedgerError.self) { try FileIO.replaceFile(temporary.directory, with: Array("x".utf8)) }
    }

    @Test("the folder a path is in, which a new folder is synced into")
    func parentFolder() {
        #expect(FileIO.parentFolder(of: "/tmp/ledger") == "/tmp")
        #expect(FileIO.parentFolder(of: "/tmp/ledger/") == "/tmp")
        #expect(FileIO.parentFolder(of: "/ledger") == "/")
        #expect(FileIO.parentFolder(of: "ledger") == ".")
        #expect(FileIO.parentFolder(of: "data/ledger") == "data")
    }

    @Test("one writer at a time; the writer's own reader reads (readers in other processes: the CLI tests)")
    func writerLock() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        #expect(throws: LedgerError.self) { try Ledger.open(directory: temporary.directory) }
        do {
            _ = try Ledger.open(directory: temporary.directory)
        } catch {
            #expect(error.code == .locked)
        }
        #expect(try ledger.reader.size() == 1)
    }

    @Test("a data file is open in one environment per process: a second open, by any path, is refused until the first closes")
    func oneEnvironmentPerFile() throws {
        let temporary = TemporaryLedger()
        let other = TemporaryLedger()
        let link = temporary.directory + "-link"
        defer { unlink(link) }
        do {
            let ledger = try temporary.create()
            _ = try ledger.append([try temporary.registration("a")])
            #expect(symlink(temporary.directory, link) == 0)
            for path in [temporary.directory, link, temporary.directory + "/."] {
                do {
                    _ = try LedgerReader.open(directory: path)
                    Issue.record("a second environment on \(path) opened beside the writer's")
                } catch {
                    #expect(error.code == .locked)
                    #expect(error.message.contains("already has the LMDB environment"))
                }
            }
            // Refused before LMDB touched the lock file: the writer still commits and reads.
            _ = try ledger.append([try temporary.registration("b")])
            #expect(try ledger.reader.size() == 3)
            // Another ledger opens beside it.
            _ = try other.create()
        }
        // Closed: the file opens again, by either path, one at a time.
        #expect(try LedgerReader.open(directory: link).size() == 3)
        #expect(try Ledger.open(directory: temporary.directory).frontier.size == 3)

        // Eight threads open the same file at once and hold what they opened: exactly one gets it.
        let results = Mutex<[Result<LedgerReader, LedgerError>]>([])
        let directory = temporary.directory
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let result = Result { () throws(LedgerError) in try LedgerReader.open(directory: directory) }
            results.withLock { $0.append(result) }
        }
        let all = results.withLock { $0 }
        #expect(all.count == 8)
        #expect(all.filter { (try? $0.get()) != nil }.count == 1)
        #expect(all.compactMap(\.failureCode).allSatisfy { $0 == .locked })
    }

    @Test("close waits for the uses in progress, refuses later ones, and frees the file for another open at once")
    func closeWaitsThenRefuses() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        _ = try ledger.append([try temporary.registration("a")])
        let environment = ledger.reader.environment
        // A read in progress on another thread when close begins: close returns only after it has ended. What
        // close waits for is the transaction, so the end is marked as the transaction's last step (the thread
        // itself may run on after close has returned). The read lasts until close has begun, not a fixed time: a
        // test thread held off longer than that on a busy machine found the read ended before close began, and
        // close had nothing to wait for.
        let readStarted = DispatchSemaphore(value: 0)
        let readEnded = Atomic<Bool>(false)
        let closeBegan = Atomic<Bool>(false)
        let readSize = Mutex<UInt64?>(nil)
        let threadDone = DispatchSemaphore(value: 0)
        let reader = ledger.reader
        Thread {
            let size = try? environment.read { (transaction) throws(LedgerError) -> UInt64 in
                readStarted.signal()
                // Up to a minute before calling it a hang, which the check below then reports.
                var waitedMilliseconds = 0
                while !environment.isClosing && waitedMilliseconds < 60_000 {
                    usleep(1_000)
                    waitedMilliseconds += 1
                }
                closeBegan.store(environment.isClosing, ordering: .sequentiallyConsistent)
                let count = UInt64(try transaction.count(LedgerDatabase.log))
                readEnded.store(true, ordering: .sequentiallyConsistent)
                return count
            }
            readSize.withLock { $0 = size }
            threadDone.signal()
        }.start()
        readStarted.wait()
        #expect(environment.close(timeoutMilliseconds: 60_000))
        let endedBeforeClose = readEnded.load(ordering: .sequentiallyConsistent)
        #expect(endedBeforeClose, "close returned while a read was still running")
        threadDone.wait()
        let readSawClose = closeBegan.load(ordering: .sequentiallyConsistent)
        #expect(readSawClose, "the read ended before close began: close had nothing to wait for")
        #expect(readSize.withLock { $0 } == 2, "the read in progress was not cut short")
        // Every later use is refused, reads, writes and copies, with nothing written.
        let lateEvent = try temporary.registration("b")
        func expectRefused(_ what: String, _ use: () throws -> Void) {
            do {
                try use()
                Issue.record("\(what) after close was not refused")
            } catch let error as LedgerError {
                #expect(error.code == .storage)
                #expect(error.message.contains("has been closed"), "\(error.message)")
            } catch {
                Issue.record("\(what) after close: \(error)")
            }
        }
        expectRefused("a read") { _ = try reader.size() }
        expectRefused("a write") { _ = try ledger.append([lateEvent]) }
        expectRefused("a copy") { try environment.copy(to: temporary.directory + "-copy") }
        #expect(access(temporary.directory + "-copy/data.mdb", F_OK) != 0)
        #expect(environment.mapSizeBytes == 0)
        #expect(environment.close(), "a second close changes nothing")
        // The file opens again at once, while the closed environment is still referenced here, and holds what was
        // committed before.
        let reopened = try LedgerReader.open(directory: temporary.directory)
        #expect(try reopened.size() == 2)
        withExtendedLifetime(ledger) {}
    }

    @Test("close with a wait shorter than a use in progress leaves it refused to new uses, and that use closes it as it ends")
    func closeTimesOut() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        let environment = ledger.reader.environment
        let readStarted = DispatchSemaphore(value: 0)
        let mayEndRead = DispatchSemaphore(value: 0)
        let readEnded = DispatchSemaphore(value: 0)
        // The read lasts until the checks below are done, not a fixed time: a test thread held off that long on a
        // busy machine would find it ended and the environment closed.
        Thread {
            _ = try? environment.read { (_) throws(LedgerError) in
                readStarted.signal()
                mayEndRead.wait()
            }
            readEnded.signal()
        }.start()
        readStarted.wait()
        #expect(!environment.close(timeoutMilliseconds: 20))
        #expect(environment.isClosing)
        #expect(throws: LedgerError.self) { try ledger.reader.size() }
        // Still open for this process: a second environment is refused.
        #expect(throws: LedgerError.self) { try LedgerReader.open(directory: temporary.directory) }
        mayEndRead.signal()
        readEnded.wait()
        // The read closed the environment as it ended: the file opens again with no second close, while the
        // environment is still referenced here.
        #expect(try LedgerReader.open(directory: temporary.directory).size() == 1)
        #expect(environment.close(timeoutMilliseconds: 0), "a later close finds it closed")
        #expect(environment.mapSizeBytes == 0)
        withExtendedLifetime(ledger) {}
    }

    @Test("creating over an existing ledger or opening a missing one is refused")
    func createAndOpenRefusals() throws {
        let temporary = TemporaryLedger()
        #expect(throws: LedgerError.self) { try Ledger.open(directory: temporary.directory) }
        do { _ = try temporary.create() }
        do {
            _ = try temporary.create()
            Issue.record("a second create succeeded")
        } catch let error as LedgerError {
            #expect(error.code == .genesisAlreadyWritten || error.code == .keyFile)
        }
    }

    @Test("recorded_at never goes backwards: a clock up to a minute behind the last record takes its recorded_at")
    func recordedAtMonotonic() throws {
        let temporary = TemporaryLedger()
        let clock = ClockBox(1_795_000_000_000)
        let ledger = try temporary.create(clock: { clock.now() })
        clock.set(1_795_000_000_000 - Timestamp.maximumClockBehindMilliseconds)
        _ = try ledger.append([try temporary.registration("late")]).map { try $0.get() }
        let records = try (0..<2).map { try Record(leafBytes: try ledger.reader.leafBytes(sequenceNumber: UInt64($0))) }
        #expect(records[1].recordedAt == records[0].recordedAt)
        #expect(records[0].recordedAt == "2026-11-18T11:06:40.000Z")
    }

    @Test("a clock more than a minute behind the last record writes nothing (clock_behind), retries included, unless the operator accepts it; one before 1970 writes nothing (clock_out_of_range)")
    func clockFarBehindTheLastRecord() throws {
        let temporary = TemporaryLedger()
        let clock = ClockBox(1_795_000_000_000)
        let ledger = try temporary.create(clock: { clock.now() })
        let recorded = try ledger.append([try temporary.registration("on-time")])
        #expect(throws: Never.self) { try recorded[0].get() }
        // A dead RTC at boot, or a clock set back after a commit made while it ran ahead.
        for reading in [1_795_000_000_000 - Timestamp.maximumClockBehindMilliseconds - 1, 946_684_800_000, 0] {
            clock.set(reading)
            for id in ["frozen", "on-time"] {
                do {
                    _ = try ledger.append([try temporary.registration(id)])
                    Issue.record("an append \(1_795_000_000_000 - reading) ms behind the last record was answered")
                } catch let error as LedgerError {
                    #expect(error.code == .clockBehind, "\(error)")
                }
            }
        }
        clock.set(-1)
        do {
            _ = try ledger.append([try temporary.registration("frozen")])
            Issue.record("an append with the clock before 1970 was answered")
        } catch let error as LedgerError {
            #expect(error.code == .clockOutOfRange, "\(error)")
        }
        #expect(ledger.frontier.size == 2)
        #expect(try ledger.reader.size() == 2)
        // The operator's word that the last record's time was the wrong one: records follow it.
        clock.set(946_684_800_000)
        ledger.acceptsClockBehind = true
        _ = try ledger.append([try temporary.registration("accepted")]).map { try $0.get() }
        #expect(try Record(leafBytes: try ledger.reader.leafBytes(sequenceNumber: 2)).recordedAt == "2026-11-18T11:06:40.000Z")
        let report = try LedgerReplay.run(ledger.reader, compareProjections: true)
        #expect(report.recordCount == 3)
    }

    @Test("a clock past 9999-12-31T23:59:59.999Z writes nothing (clock_out_of_range); the ledger appends again once it is right")
    func clockPastYear9999() throws {
        let temporary = TemporaryLedger()
        let latest = Timestamp.latestMillisecondsSince1970
        let clock = ClockBox(latest + 1)
        do {
            _ = try temporary.create(clock: { clock.now() })
            Issue.record("a ledger was created past year 9999")
        } catch let error as LedgerError {
            #expect(error.code == .clockOutOfRange, "\(error)")
        }
        #expect(access(temporary.directory + "/data.mdb", F_OK) != 0, "a refused create left a data file")
        // Before 1970 no recorded_at is valid either (verify refuses it).
        clock.set(-1)
        do {
            _ = try temporary.create(clock: { clock.now() })
            Issue.record("a ledger was created before 1970")
        } catch let error as LedgerError {
            #expect(error.code == .clockOutOfRange, "\(error)")
        }
        clock.set(latest)
        let ledger = try temporary.create(clock: { clock.now() })
        #expect(try Record(leafBytes: try ledger.reader.leafBytes(sequenceNumber: 0)).recordedAt == "9999-12-31T23:59:59.999Z")
        clock.set(latest + 86_400_000)
        do {
            _ = try ledger.append([try temporary.registration("too-late")])
            Issue.record("an append past year 9999 was written")
        } catch let error as LedgerError {
            #expect(error.code == .clockOutOfRange, "\(error)")
        }
        #expect(ledger.frontier.size == 1)
        // recorded_at never goes back: at the latest time, the next record takes the latest time again.
        clock.set(latest - 5)
        let results = try ledger.append([try temporary.registration("on-time")])
        #expect(throws: Never.self) { try results[0].get() }
        #expect(try Record(leafBytes: try ledger.reader.leafBytes(sequenceNumber: 1)).recordedAt == "9999-12-31T23:59:59.999Z")
        let report = try LedgerReplay.run(ledger.reader, compareProjections: true)
        #expect(report.recordCount == 2)
    }

    @Test("a full LMDB map is an error value: the batch is not written and the ledger stays verifiable")
    func mapFull() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create(options: .init(mapSize: .exactly(bytes: 256 * 1024)))
        var appended: UInt64 = 1
        var sawMapFull = false
        for round in 0..<200 {
            let batch = try (0..<20).map { try temporary.registration("shop-\(round)-\($0)", name: String(repeating: "n", count: 180)) }
            do {
                let results = try ledger.append(batch)
                appended += UInt64(results.count)
            } catch {
                #expect(error.code == .mapFull)
                sawMapFull = true
                break
            }
        }
        #expect(sawMapFull)
        #expect(try ledger.reader.size() == appended)
        #expect(ledger.frontier.size == appended)
        let report = try LedgerReplay.run(ledger.reader)
        #expect(report.recordCount == appended)
    }

    @Test("a full map is cured as the error says: the ledger opened again with a larger map takes what was refused")
    func mapFullThenLargerMap() throws {
        let temporary = TemporaryLedger()
        var appended: UInt64 = 1
        var refused: [VerifiedEvent] = []
        do {
            let ledger = try temporary.create(options: .init(mapSize: .exactly(bytes: 256 * 1024)))
            for round in 0..<200 where refused.isEmpty {
                let batch = try (0..<20).map { try temporary.registration("shop-\(round)-\($0)", name: String(repeating: "n", count: 180)) }
                do {
                    appended += UInt64(try ledger.append(batch).count)
                } catch {
                    #expect(error.code == .mapFull)
                    #expect(error.message.contains("--map-size"), "the error names the option that cures it: \(error.message)")
                    refused = batch
                }
            }
        }
        try #require(!refused.isEmpty, "the small map never filled")
        let reopened = try Ledger.open(directory: temporary.directory, options: .init(mapSize: try LMDBEnvironment.mapSize(parsing: "4MiB")))
        #expect(reopened.environment.mapSizeBytes == 4 << 20)
        for result in try reopened.append(refused) { _ = try result.get() }
        #expect(try reopened.reader.size() == appended + UInt64(refused.count))
        #expect(try LedgerReplay.run(reopened.reader).recordCount == appended + UInt64(refused.count))
    }

    @Test("readers open the map the ledger's writers recorded; writers at least 16 GiB unless told a size")
    func mapSizeRecordedForReaders() throws {
        let temporary = TemporaryLedger()
        do {
            let ledger = try temporary.create(options: .init(mapSize: .exactly(bytes: 2 << 20)))
            #expect(ledger.environment.mapSizeBytes == 2 << 20)
        }
        #expect(try LedgerReader.open(directory: temporary.directory).environment.mapSizeBytes == 2 << 20)
        do {
            // A writer told nothing: the default, which its first commit records in the file.
            let ledger = try Ledger.open(directory: temporary.directory)
            #expect(ledger.environment.mapSizeBytes == LMDBEnvironment.defaultMapSizeBytes)
            for result in try ledger.append([try temporary.registration("a")]) { _ = try result.get() }
        }
        #expect(try LedgerReader.open(directory: temporary.directory).environment.mapSizeBytes == LMDBEnvironment.defaultMapSizeBytes)
        do {
            // A writer told a smaller size uses it; the file keeps the largest, so readers still map all of it.
            let ledger = try Ledger.open(directory: temporary.directory, options: .init(mapSize: .exactly(bytes: 4 << 20)))
            #expect(ledger.environment.mapSizeBytes == 4 << 20)
            for result in try ledger.append([try temporary.registration("b")]) { _ = try result.get() }
        }
        #expect(try LedgerReader.open(directory: temporary.directory).environment.mapSizeBytes == LMDBEnvironment.defaultMapSizeBytes)
        do {
            // A writer told a larger size than the default keeps it, and so does the next one told nothing.
            let ledger = try Ledger.open(directory: temporary.directory, options: .init(mapSize: .exactly(bytes: 32 << 30)))
            for result in try ledger.append([try temporary.registration("c")]) { _ = try result.get() }
        }
        #expect(try Ledger.open(directory: temporary.directory).environment.mapSizeBytes == 32 << 30)
        let reader = try LedgerReader.open(directory: temporary.directory)
        #expect(reader.environment.mapSizeBytes == 32 << 30)
        #expect(try LedgerReplay.run(reader).recordCount == 4)
    }

    @Test("--map-size reads whole MiB, GiB or TiB from 1 MiB to 32 TiB, and refuses anything else as invalid_range")
    func mapSizeParsing() throws {
        #expect(try LMDBEnvironment.mapSize(parsing: "1MiB") == .exactly(bytes: 1 << 20))
        #expect(try LMDBEnvironment.mapSize(parsing: "32GiB") == .exactly(bytes: 32 << 30))
        #expect(try LMDBEnvironment.mapSize(parsing: "32TiB") == .exactly(bytes: 32 << 40))
        #expect(try LMDBEnvironment.mapSize(parsing: "32768GiB") == .exactly(bytes: 32 << 40))
        for text in ["", "GiB", "0GiB", "16", "16G", "16gib", "16 GiB", " 16GiB", "+16GiB", "-1GiB", "1.5GiB", "33TiB", "32769GiB",
                     "99999999TiB", "999999999MiB", "１６GiB", "16KiB", "16GiBs"] {
            #expect(throws: LedgerError.self, "\(text)") { try LMDBEnvironment.mapSize(parsing: text) }
            do {
                _ = try LMDBEnvironment.mapSize(parsing: text)
            } catch {
                #expect(error.code == .invalidRange)
            }
        }
    }

    @Test("opened again, a ledger keeps its last recorded_at: a clock up to a minute behind it takes that time, one further behind writes nothing (clock_behind)")
    func lastRecordedAtSurvivesReopening() throws {
        let temporary = TemporaryLedger()
        let createdAt: Int64 = 1_795_000_000_000
        do { _ = try temporary.create(clock: { createdAt }) }
        let clock = ClockBox(createdAt - Timestamp.maximumClockBehindMilliseconds)
        let reopened = try Ledger.open(directory: temporary.directory, clock: { clock.now() })
        #expect(reopened.lastRecordedAtMilliseconds == createdAt)
        _ = try reopened.append([try temporary.registration("late")]).map { try $0.get() }
        #expect(try Record(leafBytes: try reopened.reader.leafBytes(sequenceNumber: 1)).recordedAt == "2026-11-18T11:06:40.000Z")
        clock.set(createdAt - Timestamp.maximumClockBehindMilliseconds - 1)
        do {
            _ = try reopened.append([try temporary.registration("frozen")])
            Issue.record("an append more than a minute behind the last record of a reopened ledger was answered")
        } catch let error as LedgerError {
            #expect(error.code == .clockBehind, "\(error)")
        }
        #expect(try reopened.reader.size() == 2)
        #expect(try LedgerReplay.run(reopened.reader).recordCount == 2)
    }

    @Test("a genesis naming another checkpoint key than the one given to create is refused (invalid_body) before anything is written")
    func genesisNamingAnotherCheckpointKey() throws {
        let temporary = TemporaryLedger()
        do {
            _ = try Ledger.create(directory: temporary.directory, genesis: temporary.genesis(), checkpointKey: Ed25519PrivateKey())
            Issue.record("a ledger was created whose genesis names another checkpoint key than the one that signs its checkpoints")
        } catch let error as LedgerError {
            #expect(error.code == .invalidBody, "\(error)")
        }
        #expect(access(temporary.directory, F_OK) != 0, "the refused create left its folder")
    }

    @Test("creating a ledger in a folder whose ledger a writer holds open is refused as one that holds a ledger (genesis_already_written), before the lock")
    func createBesideAWriter() throws {
        let temporary = TemporaryLedger()
        let writer = try temporary.create()
        do {
            _ = try temporary.create()
            Issue.record("a second create beside a writer succeeded")
        } catch let error as LedgerError {
            #expect(error.code == .genesisAlreadyWritten, "\(error)")
        }
        #expect(try writer.reader.size() == 1)
    }
}

/// A settable clock shared with the ledger.
final class ClockBox: @unchecked Sendable {
    // @unchecked: tests set it between appends on one thread.
    private var milliseconds: Int64
    init(_ milliseconds: Int64) { self.milliseconds = milliseconds }
    func now() -> Int64 { milliseconds }
    func set(_ value: Int64) { milliseconds = value }
}

@Suite("Audit finds damage")
struct AuditTests {
    /// Builds a ledger, closes it, then lets `damage` write into its LMDB environment directly.
    func damagedLedger(
        signatureChecks: LedgerReplay.SignatureChecks = .everyEvent, chunkRecordCount: Int = LedgerReplay.chunkRecordCount,
        _ damage: (LMDBTransaction, TemporaryLedger) throws -> Void
    ) throws -> (TemporaryLedger, LedgerReplay.Failure?) {
        let temporary = TemporaryLedger()
        do {
            let ledger = try temporary.create()
            for index in 0..<10 { _ = try ledger.append([try temporary.registration("shop-\(index)")]) }
        }
        do {
            let environment = try LMDBEnvironment(path: temporary.directory, databaseNames: LedgerDatabase.all, create: false)
            try environment.write { (transaction) throws(LedgerError) in
                do { try damage(transaction, temporary) } catch { throw LedgerError(.storage, "\(error)") }
            }
        }
        do {
            _ = try LedgerReplay.run(
                try LedgerReader.open(directory: temporary.directory), compareProjections: true, signatureChecks: signatureChecks,
                scratchParent: LedgerReplay.temporaryDirectory(), chunkRecordCount: chunkRecordCount, progress: { _, _ in })
            return (temporary, nil)
        } catch let failure as LedgerReplay.Failure {
            return (temporary, failure)
        }
    }

    @Test("the scratch folder's parent is $TMPDIR, or /tmp when it is unset or empty, not the path \"\" that put it in /")
    func scratchParentFromTMPDIR() {
        #expect(LedgerReplay.temporaryDirectory(environmentValue: nil) == "/tmp")
        #expect(LedgerReplay.temporaryDirectory(environmentValue: "") == "/tmp")
        #expect(LedgerReplay.temporaryDirectory(environmentValue: "/var/tmp") == "/var/tmp")
        #expect(LedgerReplay.temporaryDirectory(environmentValue: "scratch dir") == "scratch dir")
    }

    /// A replay whose scratch environment cannot be opened (here: a map larger than the address space) reports
    /// the error and leaves no scratch folder behind.
    @Test("a replay that cannot open its scratch environment leaves nothing in the scratch folder's parent")
    func scratchEnvironmentFails() throws {
        let temporary = TemporaryLedger()
        do {
            let ledger = try temporary.create()
            _ = try ledger.append([try temporary.registration("shop-0")])
        }
        let parent = temporary.directory + "/scratch-parent"
        #expect(mkdir(parent, 0o700) == 0)
        defer { rmdir(parent) }
        let reader = try LedgerReader.open(directory: temporary.directory)
        var failure: LedgerReplay.Failure?
        do {
            _ = try LedgerReplay.run(
                reader, compareProjections: true, signatureChecks: .everyEvent, scratchParent: parent,
                chunkRecordCount: LedgerReplay.chunkRecordCount, scratchMapSizeBytes: 1 << 62, progress: { _, _ in })
        } catch {
            failure = error
        }
        #expect(failure?.error.code == .storage)
        #expect(failure?.sequenceNumber == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty)
    }

    @Test("an undamaged ledger passes")
    func clean() throws {
        let (_, failure) = try damagedLedger { _, _ in }
        #expect(failure == nil)
    }

    @Test("a changed leaf hash in the tree is found at its record")
    func treeNode() throws {
        let (_, failure) = try damagedLedger { transaction, _ in
            try transaction.put(LedgerDatabase.tree, [0] + BigEndianKey.encode(4), [UInt8](repeating: 7, count: 32))
        }
        // The damaged leaf hash (level 0, index 4) names record 4.
        #expect(failure?.error.code == .integrity)
        #expect(failure?.sequenceNumber == 4)
    }

    @Test("a missing leaf hash in the tree is found at its record, in any chunk", arguments: [3, 4, 5, LedgerReplay.chunkRecordCount])
    func missingLeafHash(chunkRecordCount: Int) throws {
        let (_, failure) = try damagedLedger(chunkRecordCount: chunkRecordCount) { transaction, _ in
            try transaction.delete(LedgerDatabase.tree, [0] + BigEndianKey.encode(4))
        }
        #expect(failure?.error.code == .integrity)
        #expect(failure?.sequenceNumber == 4)
        #expect(failure?.error.message.contains("tree node (level 0, index 4) is missing or damaged") == true)
    }

    @Test("a changed interior tree node is found")
    func interiorTreeNode() throws {
        let (_, failure) = try damagedLedger { transaction, _ in
            try transaction.put(LedgerDatabase.tree, [1] + BigEndianKey.encode(1), [UInt8](repeating: 7, count: 32))
        }
        #expect(failure?.error.code == .integrity)
        #expect(failure?.error.message.contains("tree node") == true)
    }

    // Chunks of 3 and 4 records put the checkpoint in a later chunk than genesis, whose notes are opened on the
    // other cores while the chunk before is replayed.
    @Test("a checkpoint signed by another key is found, at its size, in any chunk", arguments: [3, 4, LedgerReplay.chunkRecordCount])
    func forgedCheckpoint(chunkRecordCount: Int) throws {
        let (_, failure) = try damagedLedger(chunkRecordCount: chunkRecordCount) { transaction, _ in
            let note = try SignedNote.sign(text: try Checkpoint(origin: "test.example/ledger", size: 5, rootHash: [UInt8](repeating: 1, count: 32)).body,
                                           signer: try NoteSigner(name: "test.example/ledger", privateKey: Ed25519PrivateKey()))
            try transaction.put(LedgerDatabase.checkpoints, BigEndianKey.encode(5), Array(note.utf8))
        }
        #expect(failure?.sequenceNumber == 4)
        #expect(failure?.error.code == .invalidSignature)
    }

    @Test("a checkpoint with the right key but a wrong root is found, in any chunk", arguments: [3, 4, LedgerReplay.chunkRecordCount])
    func wrongRoot(chunkRecordCount: Int) throws {
        let (_, failure) = try damagedLedger(chunkRecordCount: chunkRecordCount) { transaction, temporary in
            let note = try SignedNote.sign(text: try Checkpoint(origin: "test.example/ledger", size: 5, rootHash: [UInt8](repeating: 1, count: 32)).body,
                                           signer: try NoteSigner(name: "test.example/ledger", privateKey: temporary.checkpointKey))
            try transaction.put(LedgerDatabase.checkpoints, BigEndianKey.encode(5), Array(note.utf8))
        }
        #expect(failure?.sequenceNumber == 4)
        #expect(failure?.error.code == .integrity)
    }

    /// The replay opens the checkpoints on the other cores with the key the live ledger's stored genesis names;
    /// here that record names a stranger's key. The results opened with it must not count: every checkpoint is
    /// still checked with the key of the genesis record in the log, and the changed record is found where the
    /// tables are compared, not reported as bad checkpoint signatures.
    @Test("a stored genesis naming another checkpoint key changes no checkpoint's verdict", arguments: [.everyEvent, LedgerReplay.SignatureChecks.attestedByCheckpoints])
    func storedGenesisWithAnotherCheckpointKey(signatureChecks: LedgerReplay.SignatureChecks) throws {
        let (_, failure) = try damagedLedger(signatureChecks: signatureChecks, chunkRecordCount: 4) { transaction, _ in
            let key = Array("genesis".utf8)
            let stored = try GenesisInfo(json: try JSONParser.parse(try #require(try transaction.get(StateTable.meta.name, key))))
            let changed = GenesisInfo(origin: stored.origin, authority: stored.authority, checkpointKey: Ed25519PrivateKey().publicKey.multikey,
                                      currencyCode: stored.currencyCode, currencyDecimals: stored.currencyDecimals)
            try transaction.put(StateTable.meta.name, key, CanonicalJSON.encode(changed.json))
        }
        #expect(failure?.sequenceNumber == nil)
        #expect(failure?.error.code == .integrity)
        #expect(failure?.error.message.contains("meta") == true)
    }

    /// rebuild walks each live table beside the rebuilt one and names the first row that differs: a changed value,
    /// a row only the live table has (before the rebuilt rows or after all of them), a row only the rebuilt one has.
    @Test("rebuild names the first projection row that differs, and how", arguments: [
        ("meta", "aaa", "key aaa is only in the live table (live 2 rows, rebuilt 1)"),
        ("meta", "zzz", "key zzz is only in the live table (live 2 rows, rebuilt 1)"),
        ("actors", "shop-3", "key shop-3: live value {\"changed\":true}, rebuilt {"),
        ("actors", "", "key shop-3 is only in the rebuilt table (live 10 rows, rebuilt 11)"),
    ])
    func projectionDifference(tableName: String, key: String, expected: String) throws {
        let (_, failure) = try damagedLedger { transaction, _ in
            switch (tableName, key) {
            case ("actors", ""): try transaction.delete(StateTable.actors.name, Array("shop-3".utf8))
            case ("actors", _): try transaction.put(StateTable.actors.name, Array(key.utf8), Array(#"{"changed":true}"#.utf8))
            default: try transaction.put(StateTable.meta.name, Array(key.utf8), Array("{}".utf8))
            }
        }
        #expect(failure?.sequenceNumber == nil)
        #expect(failure?.error.code == .integrity)
        #expect(failure?.error.message.hasPrefix("projection \(tableName) differs at ") == true, "\(failure?.error.message ?? "no failure")")
        #expect(failure?.error.message.contains(expected) == true, "\(failure?.error.message ?? "no failure")")
    }

    /// A ledger of four commits a second apart: genesis, one record, two records (one commit, one `recorded_at`),
    /// one record; checkpoints at sizes 1, 2, 4 and 5.
    static func ledgerOfTimedCommits() throws -> TemporaryLedger {
        let temporary = TemporaryLedger()
        let clock = ClockBox(1_795_000_000_000)
        let ledger = try temporary.create(clock: { clock.now() })
        clock.set(1_795_000_001_000)
        _ = try ledger.append([try temporary.registration("shop-a")])
        clock.set(1_795_000_002_000)
        _ = try ledger.append([try temporary.registration("shop-b"), try temporary.registration("shop-c")])
        clock.set(1_795_000_003_000)
        _ = try ledger.append([try temporary.registration("shop-d")])
        #expect(try ledger.reader.checkpoints(fromSize: 1, limit: 10).map(\.size) == [1, 2, 4, 5])
        return temporary
    }

    @Test("opening a ledger to write refuses, as damaged, a log with a record missing or a last commit without its checkpoint, rather than appending past the damage")
    func openingRefusesALogThatDoesNotEndWhereItsCountSays() throws {
        func openingError(_ temporary: TemporaryLedger) -> LedgerError? {
            do throws(LedgerError) {
                _ = try Ledger.open(directory: temporary.directory)
                return nil
            } catch {
                return error
            }
        }
        let uncovered = try Self.ledgerOfTimedCommits()
        try Self.deleteCheckpoint(size: 5, of: uncovered)
        let uncoveredError = try #require(openingError(uncovered), "a ledger whose last commit has no checkpoint opened to write")
        #expect(uncoveredError.code == .integrity)
        #expect(uncoveredError.message.contains("its latest checkpoint covers 4 records, its log holds 5"), "\(uncoveredError)")
        // Seq 2 gone: four records, the last one under seq 4, so the next would go at seq 4 again.
        let gapped = try Self.ledgerOfTimedCommits()
        try Self.delete(records: [2], checkpoints: [], in: gapped.directory)
        let gappedError = try #require(openingError(gapped), "a ledger with a record missing opened to write")
        #expect(gappedError.code == .integrity)
        #expect(gappedError.message.contains("its log holds 4 records, the last stored under seq 4 as seq 4, where seq 3 was due"), "\(gappedError)")
        // A whole ledger still opens.
        let whole = try Self.ledgerOfTimedCommits()
        #expect(try Ledger.open(directory: whole.directory).frontier.size == 5)
    }

    @Test("opening a replica refuses, as damaged and writing nothing, a log with a record missing (its latest checkpoint covering the count) or whose last record names another seq than its key, as opening a ledger to write does")
    func replicaOpeningRefusesALogThatDoesNotEndWhereItsCountSays() throws {
        let temporary = try Self.ledgerOfTimedCommits()
        let (leaves, checkpoints) = try Self.leavesAndCheckpoints(of: temporary)
        /// A whole replica of the five records, then damaged by `damage` through LMDB, as a disk or a hand might.
        func damagedReplica(_ name: String, _ damage: (LMDBTransaction) throws(LedgerError) -> Void) throws -> String {
            let directory = temporary.directory + "/" + name
            let replica = try ReplicaLedger.open(directory: directory)
            try replica.append(leaves: leaves, checkpoints: checkpoints)
            replica.close()
            let environment = try LMDBEnvironment(path: directory, databaseNames: LedgerDatabase.all, create: false)
            try environment.write(damage)
            environment.close()
            return directory
        }
        func openingError(_ directory: String) throws -> LedgerError? {
            let before = try #require(FileManager.default.contents(atPath: directory + "/data.mdb"))
            defer { #expect(FileManager.default.contents(atPath: directory + "/data.mdb") == before, "the refused opening wrote to \(directory)") }
            do throws(LedgerError) {
                try ReplicaLedger.open(directory: directory).close()
                return nil
            } catch {
                return error
            }
        }
        // Seq 2 gone, and the last commit's checkpoint: four records and a checkpoint for size 4, which is what the
        // replica checked, but the last record is under seq 4, where the next commit would go.
        let gapped = try damagedReplica("gapped") { (transaction) throws(LedgerError) in
            try transaction.delete(LedgerDatabase.log, BigEndianKey.encode(2))
            try transaction.delete(LedgerDatabase.checkpoints, BigEndianKey.encode(5))
        }
        let gappedError = try #require(try openingError(gapped), "a replica with a record missing opened")
        #expect(gappedError.code == .integrity)
        #expect(gappedError.message.contains("\(gapped)/data.mdb is damaged: its log holds 4 records, the last stored under seq 4 as seq 4, where seq 3 was due"), "\(gappedError)")
        // The last record replaced by the one before it: five records under a checkpoint for size 5, the last naming seq 3.
        let misplaced = try damagedReplica("misplaced") { (transaction) throws(LedgerError) in
            try transaction.put(LedgerDatabase.log, BigEndianKey.encode(4), leaves[3])
        }
        let misplacedError = try #require(try openingError(misplaced), "a replica whose last record names another seq opened")
        #expect(misplacedError.code == .integrity)
        #expect(misplacedError.message.contains("its log holds 5 records, the last stored under seq 4 as seq 3, where seq 4 was due"), "\(misplacedError)")
        // The last record unreadable.
        let unreadable = try damagedReplica("unreadable") { (transaction) throws(LedgerError) in
            try transaction.put(LedgerDatabase.log, BigEndianKey.encode(4), Array("{".utf8))
        }
        let unreadableError = try #require(try openingError(unreadable), "a replica whose last record is not JSON opened")
        #expect(unreadableError.code == .integrity)
        #expect(unreadableError.message.contains("data.mdb is damaged: the last record of its log cannot be read"), "\(unreadableError)")
        // The last commit's checkpoint gone, as before this check.
        let uncovered = try damagedReplica("uncovered") { (transaction) throws(LedgerError) in
            try transaction.delete(LedgerDatabase.checkpoints, BigEndianKey.encode(5))
        }
        let uncoveredError = try #require(try openingError(uncovered), "a replica whose last commit has no checkpoint opened")
        #expect(uncoveredError.code == .integrity)
        #expect(uncoveredError.message.contains("its latest checkpoint covers 4 records, its log holds 5"), "\(uncoveredError)")
        // Every checkpoint gone: records without any checkpoint are no replica before its first commit.
        let unchecked = try damagedReplica("unchecked") { (transaction) throws(LedgerError) in
            for size in checkpoints.map(\.size) { try transaction.delete(LedgerDatabase.checkpoints, BigEndianKey.encode(size)) }
        }
        let uncheckedError = try #require(try openingError(unchecked), "a replica whose records have no checkpoint opened")
        #expect(uncheckedError.code == .integrity)
        #expect(uncheckedError.message.contains("its latest checkpoint covers no records, its log holds 5"), "\(uncheckedError)")
        // A whole replica still opens, at its size; an empty one (no genesis yet) too.
        let whole = try damagedReplica("whole") { (_) throws(LedgerError) in }
        let reopened = try ReplicaLedger.open(directory: whole)
        #expect(reopened.size == 5 && reopened.latestCheckpoint?.size == 5)
        reopened.close()
        let empty = try ReplicaLedger.open(directory: temporary.directory + "/empty")
        #expect(empty.size == 0)
        empty.close()
        #expect(try ReplicaLedger.open(directory: temporary.directory + "/empty").size == 0)
    }

    @Test("opening a ledger to write, or a replica, refuses as damaged a log whose last commits are gone, records and checkpoints, while the tree (and the state, written in the same commits) still holds them", arguments: [UInt64(4), 2])
    func openingRefusesALogCutBackToAnEarlierCommit(newSize: UInt64) throws {
        // Commits end at sizes 1, 2, 4 and 5: cut back to 4, the last commit goes; to 2, the last two.
        let temporary = try Self.ledgerOfTimedCommits()
        let (leaves, checkpoints) = try Self.leavesAndCheckpoints(of: temporary)
        let replicaDirectory = temporary.directory + "/replica"
        let replica = try ReplicaLedger.open(directory: replicaDirectory)
        try replica.append(leaves: leaves, checkpoints: checkpoints)
        replica.close()
        for directory in [temporary.directory, replicaDirectory] {
            // The records and checkpoints past `newSize` deleted, nothing else.
            try Self.delete(records: Array(newSize..<5), checkpoints: [4, 5].filter { $0 > newSize }, in: directory)
        }
        let expected = "data.mdb is damaged: its tree holds the leaf hash of seq \(newSize), past the end of its log of \(newSize) records"
        func refusal(_ directory: String, _ open: () throws(LedgerError) -> Void) throws -> LedgerError? {
            let before = try #require(FileManager.default.contents(atPath: directory + "/data.mdb"))
            defer { #expect(FileManager.default.contents(atPath: directory + "/data.mdb") == before, "the refused opening wrote to \(directory)") }
            do throws(LedgerError) {
                try open()
                return nil
            } catch {
                return error
            }
        }
        let ledgerError = try refusal(temporary.directory) { () throws(LedgerError) in _ = try Ledger.open(directory: temporary.directory) }
        let replicaError = try refusal(replicaDirectory) { () throws(LedgerError) in try ReplicaLedger.open(directory: replicaDirectory).close() }
        #expect(ledgerError != nil, "a ledger cut back to size \(newSize) opened to write")
        #expect(ledgerError?.code == .integrity)
        #expect(ledgerError?.message.contains(expected) == true, "\(String(describing: ledgerError))")
        #expect(ledgerError?.message.hasSuffix("restore it from a backup (circuito backup) or a follower") == true, "\(String(describing: ledgerError))")
        #expect(replicaError != nil, "a replica cut back to size \(newSize) opened")
        #expect(replicaError?.code == .integrity)
        #expect(replicaError?.message.contains(expected) == true, "\(String(describing: replicaError))")
        #expect(replicaError?.message.hasSuffix("follow the leader again into a new folder") == true, "\(String(describing: replicaError))")
        // The log alone is whole (a verify passes); its state is not its log's, as a rebuild finds.
        #expect(try LedgerReplay.run(
            try LedgerReader.open(directory: temporary.directory), compareProjections: false, signatureChecks: .everyEvent,
            scratchParent: LedgerReplay.temporaryDirectory(), progress: { _, _ in }).recordCount == newSize)
        let rebuildFailure = try Self.replay(temporary)
        #expect(rebuildFailure?.error.code == .integrity && rebuildFailure?.error.message.hasPrefix("projection ") == true, "\(String(describing: rebuildFailure))")
    }

    /// The five records of `ledgerOfTimedCommits` as a leader sends them, with its checkpoints.
    static func leavesAndCheckpoints(of temporary: TemporaryLedger) throws -> (leaves: [[UInt8]], checkpoints: [(size: UInt64, note: String)]) {
        let leader = try LedgerReader.open(directory: temporary.directory)
        return (try (0..<UInt64(5)).map { try leader.leafBytes(sequenceNumber: $0) }, try leader.checkpoints(fromSize: 1, limit: 10))
    }

    static func deleteCheckpoint(size: UInt64, of temporary: TemporaryLedger) throws {
        try delete(records: [], checkpoints: [size], in: temporary.directory)
    }

    /// Deletes the records of `records` and the checkpoints of sizes `checkpoints` in one raw LMDB write, as a hand
    /// with LMDB's tools might: nothing else of the file changes.
    static func delete(records: [UInt64], checkpoints: [UInt64], in directory: String) throws {
        let environment = try LMDBEnvironment(path: directory, databaseNames: LedgerDatabase.all, create: false)
        defer { environment.close() }
        try environment.write { (transaction) throws(LedgerError) in
            for sequenceNumber in records { try transaction.delete(LedgerDatabase.log, BigEndianKey.encode(sequenceNumber)) }
            for size in checkpoints { try transaction.delete(LedgerDatabase.checkpoints, BigEndianKey.encode(size)) }
        }
    }

    static func replay(_ temporary: TemporaryLedger, chunkRecordCount: Int = LedgerReplay.chunkRecordCount) throws -> LedgerReplay.Failure? {
        do {
            _ = try LedgerReplay.run(
                try LedgerReader.open(directory: temporary.directory), compareProjections: true, signatureChecks: .everyEvent,
                scratchParent: LedgerReplay.temporaryDirectory(), chunkRecordCount: chunkRecordCount, progress: { _, _ in })
            return nil
        } catch let failure as LedgerReplay.Failure {
            return failure
        }
    }

    @Test("a checkpoint deleted between two commits made at different times is found: one commit's records share one recorded_at",
          arguments: [UInt64(1), 2, 4], [1, 2, LedgerReplay.chunkRecordCount])
    func deletedCheckpointBetweenCommits(deletedSize: UInt64, chunkRecordCount: Int) throws {
        // Chunks of one and two records put the commits' ends on and off the chunks' boundaries.
        let temporary = try Self.ledgerOfTimedCommits()
        #expect(try Self.replay(temporary, chunkRecordCount: chunkRecordCount) == nil)
        try Self.deleteCheckpoint(size: deletedSize, of: temporary)
        let failure = try Self.replay(temporary, chunkRecordCount: chunkRecordCount)
        // The record after the deleted checkpoint is the first whose recorded_at differs from the one before it
        // with no checkpoint between them; after genesis, a checkpoint is needed whatever the times.
        #expect(failure?.sequenceNumber == deletedSize)
        #expect(failure?.error.code == .integrity)
        let expected = deletedSize == 1 ? "genesis is a commit of its own" : "the records of one commit share one recorded_at"
        #expect(failure?.error.message.contains(expected) == true, "\(String(describing: failure))")
    }

    @Test("a replica refuses the leader's records when a checkpoint between commits made at different times is left out")
    func replicaRefusesAMissingCheckpoint() throws {
        let temporary = try Self.ledgerOfTimedCommits()
        let (leaves, checkpoints) = try Self.leavesAndCheckpoints(of: temporary)
        // Inside the ledger's folder, so that it goes with it.
        let replicaDirectory = temporary.directory + "/replica"
        do {
            let replica = try ReplicaLedger.open(directory: replicaDirectory)
            defer { replica.close() }
            do {
                try replica.append(leaves: leaves, checkpoints: checkpoints.filter { $0.size != 2 })
                Issue.record("the replica took records 1 and 2 as one commit")
            } catch {
                #expect(error.sequenceNumber == 2)
                #expect(error.error.code == .integrity)
            }
            #expect(replica.size == 0)
            // With every checkpoint, the same records are taken.
            try replica.append(leaves: leaves, checkpoints: checkpoints)
            #expect(replica.size == 5)
        }
    }

    /// Checkpoints for `sizes` of `leaves`, signed anew with `key`: what someone holding the ledger's checkpoint key
    /// could hand a replica or an auditor along with records they changed.
    static func resealed(_ leaves: [[UInt8]], sizes: Set<UInt64>, key: Ed25519PrivateKey, origin: String = "test.example/ledger") throws -> [(size: UInt64, note: String)] {
        var frontier = MerkleFrontier()
        var checkpoints: [(size: UInt64, note: String)] = []
        for leaf in leaves {
            _ = frontier.append(leafHash: MerkleHash.leaf(leaf))
            guard sizes.contains(frontier.size) else { continue }
            let body = try Checkpoint(origin: origin, size: frontier.size, rootHash: frontier.root).body
            checkpoints.append((size: frontier.size, note: try SignedNote.sign(text: body, signer: try NoteSigner(name: "test.example/ledger", privateKey: key))))
        }
        return checkpoints
    }

    @Test("recorded_at never goes back, by as little as a millisecond, even with every checkpoint signed anew by the ledger's key")
    func timeGoingBack() throws {
        let temporary = try Self.ledgerOfTimedCommits()
        var leaves = try Self.leavesAndCheckpoints(of: temporary).leaves
        // Record 4 is a commit of its own; records 2 and 3 were recorded at 1_795_000_002_000.
        func retimed(_ milliseconds: Int64) throws -> [UInt8] {
            let record = try Record(leafBytes: leaves[4])
            return Record(sequenceNumber: 4, recordedAt: Timestamp.format(millisecondsSince1970: milliseconds), signedEvent: record.signedEvent).leafBytes
        }
        leaves[4] = try retimed(1_795_000_001_999)
        let replica = try ReplicaLedger.open(directory: temporary.directory + "/replica")
        defer { replica.close() }
        let resealed = try Self.resealed(leaves, sizes: [1, 2, 4, 5], key: temporary.checkpointKey)
        do {
            try replica.append(leaves: leaves, checkpoints: resealed)
            Issue.record("the replica took a record recorded before the one before it")
        } catch {
            #expect(error.sequenceNumber == 4)
            #expect(error.error.code == .integrity)
            #expect(error.error.message.contains("is earlier than the record before it"), "\(error)")
        }
        #expect(replica.size == 0)
        // At the same millisecond as the commit before it, the record is taken.
        leaves[4] = try retimed(1_795_000_002_000)
        try replica.append(leaves: leaves, checkpoints: try Self.resealed(leaves, sizes: [1, 2, 4, 5], key: temporary.checkpointKey))
        #expect(replica.size == 5)
    }

    @Test("a replica refuses a checkpoint for records it holds already among those for the records it is given, and writes nothing")
    func replicaRefusesAnOldCheckpoint() throws {
        let temporary = try Self.ledgerOfTimedCommits()
        let (leaves, checkpoints) = try Self.leavesAndCheckpoints(of: temporary)
        let replica = try ReplicaLedger.open(directory: temporary.directory + "/replica")
        defer { replica.close() }
        try replica.append(leaves: Array(leaves[0..<2]), checkpoints: checkpoints.filter { $0.size <= 2 })
        #expect(replica.size == 2)
        let withAnOldOne = checkpoints.filter { $0.size >= 2 }
        do {
            try replica.append(leaves: Array(leaves[2...]), checkpoints: withAnOldOne)
            Issue.record("the replica took the checkpoint for size 2 with records 2 to 4")
        } catch {
            #expect(error.sequenceNumber == nil)
            #expect(error.error.code == .integrity)
            #expect(error.error.message.contains("a checkpoint for size 2 does not belong to records 2..<5"), "\(error)")
        }
        #expect(replica.size == 2)
        try replica.append(leaves: Array(leaves[2...]), checkpoints: checkpoints.filter { $0.size > 2 })
        #expect(replica.size == 5)
    }

    @Test("a replica refuses a checkpoint for a size past the records it is given, among those for them, and writes nothing")
    func replicaRefusesACheckpointPastItsRecords() throws {
        let temporary = try Self.ledgerOfTimedCommits()
        let (leaves, checkpoints) = try Self.leavesAndCheckpoints(of: temporary)
        let replica = try ReplicaLedger.open(directory: temporary.directory + "/replica")
        defer { replica.close() }
        // The leader's own checkpoint for size 4, sent with records 0 and 1 before the one that ends them.
        let later = try #require(checkpoints.first { $0.size == 4 })
        do {
            try replica.append(leaves: Array(leaves[0..<2]), checkpoints: [later] + checkpoints.filter { $0.size <= 2 })
            Issue.record("the replica took the checkpoint for size 4 with records 0 and 1")
        } catch {
            #expect(error.sequenceNumber == nil)
            #expect(error.error.code == .integrity)
            #expect(error.error.message.contains("a checkpoint for size 4 does not belong to records 0..<2"), "\(error)")
        }
        #expect(replica.size == 0)
        try replica.append(leaves: Array(leaves[0..<2]), checkpoints: checkpoints.filter { $0.size <= 2 })
        #expect(replica.size == 2)
    }

    @Test("a replica refuses a commit that names one size twice, whichever of the two notes verifies, and writes nothing")
    func replicaRefusesACheckpointTwice() throws {
        let temporary = try Self.ledgerOfTimedCommits()
        let (leaves, checkpoints) = try Self.leavesAndCheckpoints(of: temporary)
        let replica = try ReplicaLedger.open(directory: temporary.directory + "/replica")
        defer { replica.close() }
        // The note of size 1 sent again as size 2's, before the real one: no checkpoint the leader sends goes unchecked.
        let first = try #require(checkpoints.first { $0.size == 1 })
        let second = try #require(checkpoints.first { $0.size == 2 })
        do {
            try replica.append(leaves: Array(leaves[0..<2]), checkpoints: [first, (2, first.note), second])
            Issue.record("the replica took two checkpoints for size 2")
        } catch {
            #expect(error.sequenceNumber == nil)
            #expect(error.error.code == .integrity)
            #expect(error.error.message.contains("a checkpoint for size 2 does not belong to records 0..<2"), "\(error)")
        }
        #expect(replica.size == 0)
        try replica.append(leaves: Array(leaves[0..<2]), checkpoints: [first, second])
        #expect(replica.size == 2)
    }

    @Test("a checkpoint with the ledger's key, size and root but another origin is found at its size")
    func checkpointOfAnotherOrigin() throws {
        let (_, failure) = try damagedLedger { transaction, temporary in
            let leaves = try (0..<UInt64(5)).map { try #require(try transaction.get(LedgerDatabase.log, BigEndianKey.encode($0))) }
            let forged = try #require(try Self.resealed(leaves, sizes: [5], key: temporary.checkpointKey, origin: "other.example/ledger").first)
            try transaction.put(LedgerDatabase.checkpoints, BigEndianKey.encode(5), Array(forged.note.utf8))
        }
        #expect(failure?.sequenceNumber == 4)
        #expect(failure?.error.code == .integrity)
        #expect(failure?.error.message.contains("says other.example/ledger size 5") == true, "\(String(describing: failure))")
    }

    @Test("a checkpoint with the ledger's key, origin and root whose text names another size than the one it is stored for is found at its size")
    func checkpointNamingAnotherSize() throws {
        let (_, failure) = try damagedLedger { transaction, temporary in
            var frontier = MerkleFrontier()
            for sequenceNumber in 0..<UInt64(5) {
                _ = frontier.append(leafHash: MerkleHash.leaf(try #require(try transaction.get(LedgerDatabase.log, BigEndianKey.encode(sequenceNumber)))))
            }
            let body = try Checkpoint(origin: "test.example/ledger", size: 6, rootHash: frontier.root).body
            let forged = try SignedNote.sign(text: body, signer: try NoteSigner(name: "test.example/ledger", privateKey: temporary.checkpointKey))
            try transaction.put(LedgerDatabase.checkpoints, BigEndianKey.encode(5), Array(forged.utf8))
        }
        #expect(failure?.sequenceNumber == 4)
        #expect(failure?.error.code == .integrity)
        #expect(failure?.error.message.contains("checkpoint stored for size 5 says test.example/ledger size 6") == true, "\(String(describing: failure))")
    }

    @Test("a log that goes on past its latest checkpoint (the last commit's checkpoint deleted) is refused")
    func lastCheckpointDeleted() throws {
        let temporary = try Self.ledgerOfTimedCommits()
        try Self.deleteCheckpoint(size: 5, of: temporary)
        let failure = try Self.replay(temporary)
        #expect(failure?.sequenceNumber == nil)
        #expect(failure?.error.code == .integrity)
        #expect(failure?.error.message == "the latest checkpoint covers 4 records but the log holds 5", "\(String(describing: failure))")
    }

    @Test("a log cut short is refused, rather than verified as the shorter log: its last record deleted while its checkpoint stays, or every record and checkpoint deleted while the state still names the genesis")
    func logCutShort() throws {
        func deleting(_ sequenceNumbers: [UInt64], checkpoints sizes: [UInt64]) throws -> LedgerReplay.Failure? {
            let temporary = try Self.ledgerOfTimedCommits()
            try Self.delete(records: sequenceNumbers, checkpoints: sizes, in: temporary.directory)
            return try Self.replay(temporary)
        }
        let lastGone = try deleting([4], checkpoints: [])
        #expect(lastGone?.sequenceNumber == nil)
        #expect(lastGone?.error.code == .integrity)
        #expect(lastGone?.error.message == "the latest checkpoint covers 5 records but the log holds 4", "\(String(describing: lastGone))")
        let allGone = try deleting(Array(0..<5), checkpoints: [1, 2, 4, 5])
        #expect(allGone?.error.code == .integrity)
        #expect(allGone?.error.message == "the latest checkpoint covers 0 records but the log holds 0", "\(String(describing: allGone))")
    }

    @Test("reading the records in order (export, report) stops at a gap in the log with integrity_failure, after the records before it, rather than passing over it")
    func recordsInOrderStopAtAGap() throws {
        let temporary = try Self.ledgerOfTimedCommits()
        try Self.delete(records: [2], checkpoints: [], in: temporary.directory)
        let reader = try LedgerReader.open(directory: temporary.directory)
        var seen: [UInt64] = []
        var code: LedgerError.Code?
        do throws(LedgerError) {
            try reader.forEachRecord(from: 0) { sequenceNumber, _ in
                seen.append(sequenceNumber)
                return true
            }
        } catch {
            code = error.code
        }
        #expect(code == .integrity)
        #expect(seen == [0, 1])
    }

    @Test("a record naming another seq than its place, or a recorded_at of the same instant not in the ledger's form, is refused at its seq, even with every checkpoint signed anew by the ledger's key")
    func recordOutOfTheLedgersForm() throws {
        let temporary = try Self.ledgerOfTimedCommits()
        let leaves = try Self.leavesAndCheckpoints(of: temporary).leaves
        let last = try Record(leafBytes: leaves[4])
        #expect(last.recordedAt == "2026-11-18T11:06:43.000Z")
        let changes: [(name: String, leaf: [UInt8], message: String)] = [
            ("seq", Record(sequenceNumber: 5, recordedAt: last.recordedAt, signedEvent: last.signedEvent).leafBytes, "should be seq 4 says seq 5"),
            ("form", Record(sequenceNumber: 4, recordedAt: "2026-11-18T11:06:43Z", signedEvent: last.signedEvent).leafBytes, "is not in the ledger's form"),
        ]
        for change in changes {
            var changed = leaves
            changed[4] = change.leaf
            let replica = try ReplicaLedger.open(directory: temporary.directory + "/replica-" + change.name)
            defer { replica.close() }
            let resealed = try Self.resealed(changed, sizes: [1, 2, 4, 5], key: temporary.checkpointKey)
            do throws(LedgerReplay.Failure) {
                try replica.append(leaves: changed, checkpoints: resealed)
                Issue.record("the replica took a record out of the ledger's form (\(change.name))")
            } catch {
                #expect(error.sequenceNumber == 4)
                #expect(error.error.code == .integrity)
                #expect(error.error.message.contains(change.message), "\(error)")
            }
            #expect(replica.size == 0)
        }
    }

    @Test("a record replaced by another validly signed event is found at its seq")
    func ruleBreakingRecord() throws {
        let (_, failure) = try damagedLedger { transaction, temporary in
            let stranger = Ed25519PrivateKey()
            let event = try Event(id: "forged", type: "actor.registered", actor: "ghost", key: stranger.publicKey.multikey, timestamp: "2026-11-22T10:00:00Z",
                                  body: ["actor": "x", "role": "merchant", "name": "X", "keys": .array([.string(stranger.publicKey.multikey)])])
            let old = try Record(leafBytes: try #require(try transaction.get(LedgerDatabase.log, BigEndianKey.encode(6))))
            let record = Record(sequenceNumber: 6, recordedAt: old.recordedAt, signedEvent: SignedEvent(signing: event, with: stranger))
            try transaction.put(LedgerDatabase.log, BigEndianKey.encode(6), record.leafBytes)
        }
        // The replaced record no longer hashes to the leaf stored at append time: found at its own seq.
        #expect(failure?.sequenceNumber == 6)
        #expect(failure?.error.code == .integrity)
    }

    /// The damage `rebuild --trust-checkpoints` is built to find without checking signatures: a record with another
    /// signature, its stored leaf hash rewritten to match. A full replay names the bad signature; the trusting one
    /// does not check it, but the tree the leaves give no longer matches the stored nodes and signed checkpoints.
    @Test("rebuild --trust-checkpoints skips signatures but still finds a changed record through the tree",
          arguments: [LedgerReplay.SignatureChecks.everyEvent, .attestedByCheckpoints])
    func changedSignatureWithItsLeafHash(signatureChecks: LedgerReplay.SignatureChecks) throws {
        let (_, failure) = try damagedLedger(signatureChecks: signatureChecks) { transaction, _ in
            let old = try Record(leafBytes: try #require(try transaction.get(LedgerDatabase.log, BigEndianKey.encode(4))))
            let resigned = SignedEvent(event: old.signedEvent.event, signature: Ed25519PrivateKey().signature(for: old.signedEvent.event.signingBytes))
            let record = Record(sequenceNumber: 4, recordedAt: old.recordedAt, signedEvent: resigned)
            try transaction.put(LedgerDatabase.log, BigEndianKey.encode(4), record.leafBytes)
            try transaction.put(LedgerDatabase.tree, [0] + BigEndianKey.encode(4), MerkleHash.leaf(record.leafBytes))
        }
        switch signatureChecks {
        case .everyEvent:
            #expect(failure?.sequenceNumber == 4)
            #expect(failure?.error.code == .invalidSignature)
        case .attestedByCheckpoints:
            #expect(failure?.error.code == .integrity)
            #expect(failure?.error.message.contains("tree node") == true || failure?.error.message.contains("root") == true, "\(String(describing: failure))")
        }
    }

    /// Damage that each check finds at one seq: a record re-signed by a stranger with its leaf hash rewritten
    /// (the signature check, or with `ghost`, the rules), a record whose bytes changed (the leaf hash), a record gone
    /// from the log (reading the chunk).
    enum Damage { case badSignature, unknownSigner, changedBytes, missing }

    static func damage(_ kind: Damage, at sequenceNumber: UInt64, _ transaction: LMDBTransaction) throws {
        let key = BigEndianKey.encode(sequenceNumber)
        let old = try Record(leafBytes: try #require(try transaction.get(LedgerDatabase.log, key)))
        let stranger = Ed25519PrivateKey()
        switch kind {
        case .badSignature, .unknownSigner:
            let signed: SignedEvent
            if kind == .badSignature {
                signed = SignedEvent(event: old.signedEvent.event, signature: stranger.signature(for: old.signedEvent.event.signingBytes))
            } else {
                let event = try Event(
                    id: "forged-\(sequenceNumber)", type: "actor.registered", actor: "ghost", key: stranger.publicKey.multikey,
                    timestamp: old.signedEvent.event.timestamp,
                    body: ["actor": "x", "role": "merchant", "name": "X", "keys": .array([.string(stranger.publicKey.multikey)])])
                signed = SignedEvent(signing: event, with: stranger)
            }
            let record = Record(sequenceNumber: sequenceNumber, recordedAt: old.recordedAt, signedEvent: signed)
            try transaction.put(LedgerDatabase.log, key, record.leafBytes)
            try transaction.put(LedgerDatabase.tree, [0] + key, MerkleHash.leaf(record.leafBytes))
        case .changedBytes:
            let record = Record(sequenceNumber: sequenceNumber, recordedAt: "2000-01-01T00:00:00Z", signedEvent: old.signedEvent)
            try transaction.put(LedgerDatabase.log, key, record.leafBytes)
        case .missing:
            try transaction.delete(LedgerDatabase.log, key)
        }
    }

    /// Two kinds of damage, the first at an earlier seq: whatever the chunks (one record, four, the default), the
    /// earlier one is named, although the later one's check may run first (the next chunk is read and checked while
    /// the rules run over this one; within a chunk, leaf hashes are at hand before the rules run).
    @Test("the first damaged record is the one named, within a chunk and across chunk boundaries",
          arguments: [1, 4, LedgerReplay.chunkRecordCount])
    func firstDamageIsNamed(chunkRecordCount: Int) throws {
        let cases: [(first: (Damage, UInt64), later: (Damage, UInt64))] = [
            ((.unknownSigner, 5), (.changedBytes, 7)),
            ((.badSignature, 2), (.changedBytes, 3)),
            ((.badSignature, 3), (.missing, 9)),
            ((.unknownSigner, 6), (.badSignature, 10)),
            ((.changedBytes, 4), (.unknownSigner, 8)),
        ]
        for (first, later) in cases {
            let (_, failure) = try damagedLedger(chunkRecordCount: chunkRecordCount) { transaction, _ in
                try Self.damage(later.0, at: later.1, transaction)
                try Self.damage(first.0, at: first.1, transaction)
            }
            #expect(failure?.sequenceNumber == first.1, "\(first) then \(later), chunks of \(chunkRecordCount): \(String(describing: failure))")
            // And each alone is named at its own seq.
            let (_, alone) = try damagedLedger(chunkRecordCount: chunkRecordCount) { transaction, _ in try Self.damage(later.0, at: later.1, transaction) }
            #expect(alone?.sequenceNumber == later.1, "\(later) alone, chunks of \(chunkRecordCount): \(String(describing: alone))")
        }
    }

    @Test("an undamaged ledger passes rebuild --trust-checkpoints")
    func cleanWhenTrustingCheckpoints() throws {
        let (_, failure) = try damagedLedger(signatureChecks: .attestedByCheckpoints) { _, _ in }
        #expect(failure == nil)
    }
}
