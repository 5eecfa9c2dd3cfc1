import CircuitoCore
import CircuitoCrypto
@testable import CircuitoStorage
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

/// A value handed to another thread that alone uses it from then on.
private final class HandedOver<Value>: @unchecked Sendable {
    // @unchecked: the receiving thread is the only user once it starts.
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// The code of the error `body` throws; nil when it throws none.
private func errorCode(_ body: () throws(LedgerError) -> LedgerBackup.Report) -> LedgerError.Code? {
    do {
        _ = try body()
        return nil
    } catch {
        return error.code
    }
}

/// A flag one thread raises and another reads.
private final class Flag: Sendable {
    private let raised = Mutex(false)
    func raise() { raised.withLock { $0 = true } }
    var isRaised: Bool { raised.withLock { $0 } }
}

private func fileMode(_ path: String) -> mode_t? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    return status.st_mode & 0o777
}

@Suite("Backups and the page cache", .timeLimit(.minutes(5)))
struct BackupTests {
    @Test("a backup taken while a writer appends is one consistent snapshot that verifies, and holds no key")
    func backupWhileAppending() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        _ = try ledger.append((0..<40).map { try temporary.registration("before-\($0)") })
        let sizeBefore = ledger.frontier.size
        // The writer appends commits of 5 on its own thread, before, during and after the backup on this one, until
        // told to stop (at most 200 commits).
        let events = try (0..<1000).map { try temporary.registration("during-\($0)") }
        let writer = HandedOver(ledger)
        let stop = Flag()
        let firstCommit = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            for batch in stride(from: 0, to: events.count, by: 5) where !stop.isRaised {
                _ = try? writer.value.append(Array(events[batch..<batch + 5]))
                if batch == 0 { firstCommit.signal() }
            }
            finished.signal()
        }
        firstCommit.wait()
        let destination = temporary.directory + "-backup"
        defer { try? FileManager.default.removeItem(atPath: destination) }
        var steps: [LedgerBackup.Step] = []
        // Through the writer's own environment: LMDB allows one per file and process (`circuito backup` is a process
        // of its own, tested in the CLI tests with a writer in another process).
        let report = try LedgerBackup.run(from: ledger.reader, to: destination, progress: { steps.append($0) })
        stop.raise()
        finished.wait()
        // The copy is its data file alone: the lock file that checking it made is gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: destination) == ["data.mdb"])
        let sizeAfter = ledger.frontier.size
        #expect(report.recordCount >= sizeBefore + 5 && report.recordCount <= sizeAfter)
        #expect((sizeAfter - sizeBefore) % 5 == 0)

        // The copy is the source's first recordCount records, with the source's root at that size.
        let copy = try LedgerReader.open(directory: destination)
        #expect(try copy.size() == report.recordCount)
        #expect(try copy.root(treeSize: report.recordCount) == report.rootHash)
        #expect(try ledger.reader.root(treeSize: report.recordCount) == report.rootHash)
        for sequenceNumber in [0, report.recordCount / 2, report.recordCount - 1] {
            #expect(try copy.leafBytes(sequenceNumber: sequenceNumber) == ledger.reader.leafBytes(sequenceNumber: sequenceNumber))
        }
        // A whole ledger: its latest checkpoint covers every record, and the audit passes.
        let audit = try LedgerReplay.run(copy)
        #expect(audit.recordCount == report.recordCount)
        #expect(audit.rootHash == report.rootHash)

        // Private, and without the checkpoint key.
        #expect(fileMode(destination) == 0o700)
        #expect(fileMode(destination + "/data.mdb") == 0o600)
        #expect(access(destination + "/" + LedgerFiles.checkpointKey, F_OK) != 0)
        var status = stat()
        #expect(stat(destination + "/data.mdb", &status) == 0 && UInt64(status.st_size) == report.bytes)

        // Progress: the source read to the length it had, then the copy from nothing to its whole length.
        let reading = steps.compactMap { step -> (UInt64, UInt64)? in
            guard case .reading(let readBytes, let totalBytes) = step else { return nil }
            return (readBytes, totalBytes)
        }
        let copying = steps.compactMap { step -> (UInt64, UInt64)? in
            guard case .copying(let writtenBytes, let sourceBytes) = step else { return nil }
            return (writtenBytes, sourceBytes)
        }
        #expect(steps.count == reading.count + copying.count)
        #expect(reading.count >= 1 && copying.count >= 2, "\(steps)")
        guard let read = reading.last, let copyStart = copying.first, let copyEnd = copying.last else { return }
        #expect(read.0 == read.1 && read.1 > 0)
        #expect(steps.firstIndex { if case .copying = $0 { true } else { false } } == reading.count)
        #expect(copyStart == (0, read.1))
        #expect(copyEnd == (report.bytes, read.1))
        #expect(zip(copying, copying.dropFirst()).allSatisfy { $0.0 <= $1.0 })
    }

    @Test("a compacting backup leaves out the free pages: a smaller file with the same records, root and tables")
    func compactingBackup() throws {
        let temporary = TemporaryLedger()
        do {
            let ledger = try temporary.create()
            // One commit each: every commit frees the pages it copied, and the last commits' freed pages stay free.
            for number in 0..<120 { _ = try ledger.append([try temporary.registration("shop-\(number)")]) }
        }
        let plain = temporary.directory + "-plain"
        let compacted = temporary.directory + "-compacted"
        defer {
            try? FileManager.default.removeItem(atPath: plain)
            try? FileManager.default.removeItem(atPath: compacted)
        }
        let plainReport = try LedgerBackup.run(from: temporary.directory, to: plain)
        let compactedReport = try LedgerBackup.run(from: temporary.directory, to: compacted, compacting: true)
        #expect(compactedReport.recordCount == 121 && plainReport.recordCount == 121)
        #expect(compactedReport.rootHash == plainReport.rootHash)
        #expect(compactedReport.bytes < plainReport.bytes)
        // Written past the page cache (O_DIRECT, as on LMDB's own copy's file) where the file system allows it: only
        // the few pages the backup reads back to report the copy's size and root are cached (on tmpfs every page is).
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        var holding: (point: String, type: String) = ("", "")
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 3, fields[1] == "/" || plain.hasPrefix(fields[1] + "/"), fields[1].count >= holding.point.count else { continue }
            holding = (fields[1], fields[2])
        }
        if holding.type != "tmpfs" {
            #expect(try PageCache.cachedShare(path: plain + "/data.mdb").share < 0.5)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: compacted) == ["data.mdb"])
        #expect(fileMode(compacted + "/data.mdb") == 0o600)
        // Every table the same: the replay of the compacted copy rebuilds exactly its projections.
        let copy = try LedgerReader.open(directory: compacted)
        let audit = try LedgerReplay.run(copy, compareProjections: true)
        #expect(audit.recordCount == 121)
        #expect(audit.rootHash == plainReport.rootHash)
        let source = try LedgerReader.open(directory: plain)
        for sequenceNumber: UInt64 in [0, 60, 120] {
            #expect(try copy.leafBytes(sequenceNumber: sequenceNumber) == source.leafBytes(sequenceNumber: sequenceNumber))
        }
    }

    @Test("the source is mapped without read-ahead, as a reader beside a server maps it, and so is a scan's (export, report)")
    func sourceWithoutReadAhead() throws {
        #expect(LedgerBackup.sourceOptions.readAhead == false)
        #expect(LMDBEnvironment.Options.readingBesideAServer.readAhead == false)
        let temporary = TemporaryLedger()
        _ = try temporary.create()
        do {
            let reader = try LedgerReader.open(directory: temporary.directory, options: LedgerBackup.sourceOptions)
            #expect(reader.environment.readsAhead == false)
        }
        for start: UInt64 in [0, 1] {
            let scanning = try LedgerReader.openForScan(directory: temporary.directory, fromSequenceNumber: start)
            #expect(scanning.environment.readsAhead == false)
            #expect(try scanning.size() == 1)
        }
        #expect(throws: LedgerError.self) { try LedgerReader.openForScan(directory: temporary.directory + "-missing") }
    }

    @Test("a destination that is there, a source that is no ledger, and a missing parent are refused, writing nothing")
    func refusals() throws {
        let temporary = TemporaryLedger()
        _ = try temporary.create()
        let taken = temporary.directory + "-taken"
        #expect(mkdir(taken, 0o700) == 0)
        defer { rmdir(taken) }
        #expect(errorCode { () throws(LedgerError) in try LedgerBackup.run(from: temporary.directory, to: taken) } == .invalidRange)
        #expect(try FileManager.default.contentsOfDirectory(atPath: taken).isEmpty)

        let notALedger = temporary.directory + "-empty"
        #expect(mkdir(notALedger, 0o700) == 0)
        defer { rmdir(notALedger) }
        let destination = temporary.directory + "-never"
        #expect(errorCode { () throws(LedgerError) in try LedgerBackup.run(from: notALedger, to: destination) } == .notFound)
        #expect(access(destination, F_OK) != 0)

        let orphan = temporary.directory + "-missing-parent/backup"
        #expect(errorCode { () throws(LedgerError) in try LedgerBackup.run(from: temporary.directory, to: orphan) } == .storage)
        #expect(access(orphan, F_OK) != 0)
    }

    @Test("the folder is made through the caller's makingDirectory, before anything is written in it: a caller that refuses (a signal came) gets its error back and no folder")
    func folderIsMadeThroughTheCaller() throws {
        let temporary = TemporaryLedger()
        _ = try temporary.create()
        let refused = temporary.directory + "-refused"
        // Only a failing run makes it.
        defer { try? FileManager.default.removeItem(atPath: refused) }
        let refusal = LedgerError(.storage, "the backup was interrupted")
        let code = errorCode { () throws(LedgerError) in
            try LedgerBackup.run(from: temporary.directory, to: refused, makingDirectory: { _ throws(LedgerError) in throw refusal })
        }
        #expect(code == .storage)
        #expect(access(refused, F_OK) != 0)
        // Taken: the folder is made inside the caller's step (`circuito backup` holds its stage's lock there), and
        // nothing of the copy is in it before.
        let taken = temporary.directory + "-taken-through-caller"
        defer { try? FileManager.default.removeItem(atPath: taken) }
        var seen: (before: Bool, after: Bool, files: [String])?
        let report = try LedgerBackup.run(from: temporary.directory, to: taken, makingDirectory: { make throws(LedgerError) in
            let before = access(taken, F_OK) == 0
            try make()
            seen = (before, access(taken, F_OK) == 0, (try? FileManager.default.contentsOfDirectory(atPath: taken)) ?? ["?"])
        })
        #expect(seen?.before == false && seen?.after == true && seen?.files == [], "\(String(describing: seen))")
        #expect(report.recordCount == 1)
    }

    @Test("a destination another backup makes after the check that it is not there is refused as one that was there (invalid_range), its folder left as it is")
    func destinationMadeMeanwhileIsInvalidRange() throws {
        let temporary = TemporaryLedger()
        _ = try temporary.create()
        let raced = temporary.directory + "-raced"
        defer { rmdir(raced) }
        // The other backup's folder, made between this one's check and its own mkdir.
        let code = errorCode { () throws(LedgerError) in
            try LedgerBackup.run(from: temporary.directory, to: raced, makingDirectory: { make throws(LedgerError) in
                #expect(mkdir(raced, 0o700) == 0)
                try make()
            })
        }
        // Before the fix: storage_error "cannot create …: File exists", where the same folder found a moment earlier is invalid_range.
        #expect(code == .invalidRange)
        #expect(try FileManager.default.contentsOfDirectory(atPath: raced).isEmpty)
    }

    @Test("a copy that fails halfway leaves no directory behind and reports its error")
    func failedCopyIsRemoved() throws {
        let temporary = TemporaryLedger()
        _ = try temporary.create()
        let destination = temporary.directory + "-half"
        defer { try? FileManager.default.removeItem(atPath: destination) }
        let failure = errorCode { () throws(LedgerError) in
            try LedgerBackup.run(from: temporary.directory, to: destination, progress: { _ in }) { (_, directory) throws(LedgerError) in
                // Half a file, as a full disk would leave it.
                _ = FileManager.default.createFile(atPath: directory + "/data.mdb", contents: Data(repeating: 1, count: 8192))
                throw LedgerError(.storage, "No space left on device")
            }
        }
        #expect(failure == .storage)
        #expect(access(destination, F_OK) != 0)
    }

    @Test("the page cache's share of a file counts its resident pages; reading the file in, or asking for it, caches all of it")
    func pageCacheShareAndReadingIn() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("circuito-page-cache-\(UUID().uuidString)").path
        #expect(mkdir(folder, 0o700) == 0)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pageBytes = sysconf(Int32(_SC_PAGESIZE))
        // Eight pages long, one written: the holes of a sparse file are no pages at all, cached or not.
        let sparse = folder + "/sparse"
        let descriptor = open(sparse, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        try #require(descriptor >= 0)
        #expect(ftruncate(descriptor, off_t(8 * pageBytes)) == 0)
        let page = [UInt8](repeating: 7, count: pageBytes)
        #expect(page.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, pageBytes, 0) } == pageBytes)
        close(descriptor)
        let partial = try PageCache.cachedShare(path: sparse)
        #expect(partial.bytes == UInt64(8 * pageBytes))
        #expect(partial.share == 1.0 / 8)

        // A file written in full through the page cache is held whole; read back in order, it is held whole again,
        // whatever the kernel let go of in between (a hint to drop it, which tmpfs ignores). Longer than the chunks
        // asked for ahead, so the reads catch up with the hints; progress ends at the whole length.
        let written = folder + "/written"
        let bytes = (PageCache.prefetchChunkCount + 3) * PageCache.readChunkBytes + 12_345
        try Data((0..<bytes).map { UInt8(truncatingIfNeeded: $0 * 31) }).write(to: URL(fileURLWithPath: written))
        #expect(try PageCache.cachedShare(path: written).share == 1)
        let reading = open(written, O_RDONLY | O_CLOEXEC)
        try #require(reading >= 0)
        _ = fdatasync(reading)
        _ = posix_fadvise(reading, 0, 0, POSIX_FADV_DONTNEED)
        close(reading)
        var reported: [(UInt64, UInt64)] = []
        #expect(try PageCache.read(path: written) { reported.append(($0, $1)) } == UInt64(bytes))
        #expect(reported.last.map { $0 == (UInt64(bytes), UInt64(bytes)) } == true)
        var afterReading = try PageCache.cachedShare(path: written)
        // Under memory pressure the kernel may reclaim a page between the read and the look (one run saw 0.993 on a
        // loaded machine); a read that leaves pages out leaves them out every time. Bounded: 3 more reads.
        for _ in 0..<3 where afterReading.share < 1 {
            #expect(try PageCache.read(path: written) == UInt64(bytes))
            afterReading = try PageCache.cachedShare(path: written)
        }
        #expect(afterReading.bytes == UInt64(bytes))
        #expect(afterReading.share == 1)

        // Dropped again, then asked for with hints only: the kernel reads it in while `prefetch` has long returned.
        let dropping = open(written, O_RDONLY | O_CLOEXEC)
        try #require(dropping >= 0)
        _ = posix_fadvise(dropping, 0, 0, POSIX_FADV_DONTNEED)
        close(dropping)
        #expect(try PageCache.prefetch(path: written) == UInt64(bytes))
        var prefetched = try PageCache.cachedShare(path: written).share
        // Bounded: 200 looks, 10 ms apart.
        for _ in 0..<200 where prefetched < 1 {
            usleep(10_000)
            prefetched = try PageCache.cachedShare(path: written).share
        }
        #expect(prefetched == 1)

        // An empty file lacks nothing; a missing one is an error, not a figure.
        let empty = folder + "/empty"
        #expect(FileManager.default.createFile(atPath: empty, contents: nil))
        let emptyShare = try PageCache.cachedShare(path: empty)
        #expect(emptyShare.bytes == 0 && emptyShare.share == 1)
        #expect(try PageCache.read(path: empty) == 0)
        #expect(try PageCache.prefetch(path: empty) == 0)
        #expect(throws: LedgerError.self) { try PageCache.prefetch(path: folder + "/missing") }
        #expect(throws: LedgerError.self) { try PageCache.cachedShare(path: folder + "/missing") }
        #expect(throws: LedgerError.self) { try PageCache.read(path: folder + "/missing") }
    }
}
