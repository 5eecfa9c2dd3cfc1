import CircuitoCore
import Dispatch
import Glibc

/// A hot backup of a ledger's database (`circuito backup`, `Specs/ledger.md` 10.4): a consistent copy of one read
/// snapshot, made while a writer may keep appending, into a new directory.
///
/// Why not `cp`: a file copied while a writer commits can mix pages of different commits, and on a kernel that caches
/// files in large folios (Linux 6.x with ext4) anything that reads the live file with read-ahead (`cp`, `cat`,
/// `mdb_copy`) leaves it cached in large folios; every 4 KiB page a later commit writes into one then costs the kernel a
/// walk over the whole folio, and the server appends more slowly until those folios leave the page cache
/// (`Benchmarks/NOTES.md` item 8). So the source is first read into the page cache without read-ahead, in single
/// pages, as the server's own faults and writes leave it, and then copied by LMDB (`mdb_env_copyfd2`, into a file
/// with `O_DIRECT`) through a map opened without read-ahead.
public enum LedgerBackup {
    public struct Report: Sendable {
        /// Records in the copy (its tree size): those of the snapshot the copy was made from.
        public let recordCount: UInt64
        /// The copy's root hash at that size.
        public let rootHash: [UInt8]
        /// The copy's `data.mdb`.
        public let bytes: UInt64
    }

    /// What the backup is doing, for a progress line.
    public enum Step: Sendable, Equatable {
        /// Reading the source's file into the page cache: bytes read of the length it had.
        case reading(readBytes: UInt64, totalBytes: UInt64)
        /// Writing the copy: its bytes so far, of the source's file (the copy is at most that long, shorter when
        /// compacted, longer only if a writer grew the file since the read).
        case copying(writtenBytes: UInt64, sourceBytes: UInt64)
    }

    /// How often the copy's length is reported while LMDB writes it.
    static let copyProgressIntervalMilliseconds = 250

    /// Copies the ledger in `source` into `destination`, a directory that must not exist yet (it is created with mode
    /// 0700; the copy's `data.mdb` has mode 0600, and it is the directory's only file). Only the database is copied:
    /// not the checkpoint key (`ledger.key`, a secret that never changes) and not the personal-data key vault, whose
    /// keys erasure deletes. `compacting` leaves out the source file's free pages. On failure nothing of
    /// `destination` is left. For a process that has not opened this ledger itself (`circuito backup`, the bench's
    /// `--base`); see the reader's `run` for one that has. `makingDirectory` runs the creation of `destination` it is
    /// given: a command that removes the copy when a signal stops it makes the creation and its own check of the
    /// signal one step, so that a folder is never made just after the check found none to remove.
    public static func run(
        from source: String, to destination: String, compacting: Bool = false,
        makingDirectory: (_ make: () throws(LedgerError) -> Void) throws(LedgerError) -> Void = { make throws(LedgerError) in try make() },
        progress: (Step) -> Void = { _ in }
    ) throws(LedgerError) -> Report {
        try run(from: source, to: destination, makingDirectory: makingDirectory, progress: progress, copy: copying(compacting: compacting))
    }

    /// How a backup writes its copy: LMDB's copy of one read snapshot, compacted or page for page.
    static func copying(compacting: Bool) -> @Sendable (LedgerReader, String) throws(LedgerError) -> Void {
        { (reader, directory) throws(LedgerError) in try reader.copyDatabase(to: directory, compacting: compacting) }
    }

    /// How the source is opened: the map its writers recorded, without read-ahead.
    static let sourceOptions = LMDBEnvironment.Options.readingBesideAServer

    /// `run` with another way of writing the copy (a test makes it fail halfway).
    static func run(
        from source: String, to destination: String,
        makingDirectory: (_ make: () throws(LedgerError) -> Void) throws(LedgerError) -> Void = { make throws(LedgerError) in try make() },
        progress: (Step) -> Void, copy: @escaping @Sendable (LedgerReader, String) throws(LedgerError) -> Void
    ) throws(LedgerError) -> Report {
        try refuseExisting(destination)
        // Opened first, so that a directory that is not a ledger is refused before anything is read or created.
        let reader = try LedgerReader.open(directory: source, options: sourceOptions)
        return try run(from: reader, to: destination, makingDirectory: makingDirectory, progress: progress, copy: copy)
    }

    /// The backup of a ledger through a reader of it this process has already opened. LMDB allows one environment
    /// per file and process: a second one opened in the same process initialises the lock file's mutexes again under
    /// the first, so a process that writes a ledger backs it up through its own environment, never by its path.
    static func run(
        from reader: LedgerReader, to destination: String,
        makingDirectory: (_ make: () throws(LedgerError) -> Void) throws(LedgerError) -> Void = { make throws(LedgerError) in try make() },
        progress: (Step) -> Void,
        copy: @escaping @Sendable (LedgerReader, String) throws(LedgerError) -> Void = copying(compacting: false)
    ) throws(LedgerError) -> Report {
        try refuseExisting(destination)
        let sourceBytes = try PageCache.read(path: reader.environment.path + "/data.mdb") { readBytes, totalBytes in
            progress(.reading(readBytes: readBytes, totalBytes: totalBytes))
        }
        try makingDirectory { () throws(LedgerError) in
            do throws(LedgerError) {
                try FileIO.makeDirectory(destination, mode: 0o700, existingIsFine: false)
            } catch {
                // Made since `refuseExisting` checked (another backup into the same path): the same refusal.
                try refuseExisting(destination)
                throw error
            }
        }
        do throws(LedgerError) {
            let copied = destination + "/data.mdb"
            try copyReportingProgress(reader, to: destination, copy: copy) {
                progress(.copying(writtenBytes: fileBytes(copied), sourceBytes: sourceBytes))
            }
            // `LMDBEnvironment.copy` creates it 0600; made so again where the backup promises it, whatever `copy` made it:
            // the ledger's own is 0600 (it holds sealed personal data).
            guard chmod(copied, 0o600) == 0 else {
                throw LedgerError(.storage, "cannot make \(copied) private: \(String(cString: strerror(errno)))")
            }
            var status = stat()
            guard stat(copied, &status) == 0 else {
                throw LedgerError(.storage, "cannot read the size of \(copied): \(String(cString: strerror(errno)))")
            }
            let (recordCount, rootHash) = try sizeAndRoot(ofCopy: destination)
            // Opening the copy made its lock file; nobody else can have it open yet, and the copy is its data file alone.
            // On a file system the copy filled, the lock file could not be made and the copy was read without it.
            guard unlink(destination + "/lock.mdb") == 0 || errno == ENOENT else {
                throw LedgerError(.storage, "cannot remove \(destination)/lock.mdb: \(String(cString: strerror(errno)))")
            }
            return Report(recordCount: recordCount, rootHash: rootHash, bytes: UInt64(max(0, status.st_size)))
        } catch {
            removeCopy(destination)
            throw error
        }
    }

    /// Runs `copy` on a thread of its own and calls `report` before it starts, every
    /// `copyProgressIntervalMilliseconds` while it runs, and once more when it has finished.
    private static func copyReportingProgress(
        _ reader: LedgerReader, to destination: String,
        copy: @escaping @Sendable (LedgerReader, String) throws(LedgerError) -> Void, report: () -> Void
    ) throws(LedgerError) {
        let outcome = CopyOutcome()
        let finished = DispatchSemaphore(value: 0)
        report()
        DispatchQueue.global().async {
            do throws(LedgerError) { try copy(reader, destination) } catch { outcome.set(error) }
            finished.signal()
        }
        // Bounded by the copy itself: LMDB's copy ends, with its result, once it has written the snapshot.
        while finished.wait(timeout: .now() + .milliseconds(copyProgressIntervalMilliseconds)) == .timedOut { report() }
        report()
        if let error = outcome.error { throw error }
    }

    /// The error of a copy that ran on another thread, read once that thread has signalled.
    private final class CopyOutcome: @unchecked Sendable {
        // @unchecked: written by the copying thread before it signals, read by the waiting one after.
        private(set) var error: LedgerError?
        func set(_ error: LedgerError) { self.error = error }
    }

    /// The length of the file at `path`, 0 while it is not there.
    private static func fileBytes(_ path: String) -> UInt64 {
        var status = stat()
        guard stat(path, &status) == 0 else { return 0 }
        return UInt64(max(0, status.st_size))
    }

    /// Opens the copy as a ledger (every named database, the genesis) and reads its size and root; the environment is
    /// closed again on return, before its lock file is removed.
    private static func sizeAndRoot(ofCopy directory: String) throws(LedgerError) -> (UInt64, [UInt8]) {
        let copy = try LedgerReader.open(directory: directory, options: sourceOptions)
        defer { copy.close() }
        let recordCount = try copy.size()
        return (recordCount, try copy.root(treeSize: recordCount))
    }

    static func refuseExisting(_ destination: String) throws(LedgerError) {
        guard access(destination, F_OK) != 0 else {
            throw LedgerError(.invalidRange, "\(destination) is there already: a backup goes into a directory that does not exist yet")
        }
    }

    /// Removes what a failed or interrupted backup wrote: the copy's LMDB files and its directory (only when nothing
    /// else is in it).
    public static func removeCopy(_ directory: String) {
        for name in ["data.mdb", "data.mdb.partial", "lock.mdb"] { unlink(directory + "/" + name) }
        rmdir(directory)
    }
}
