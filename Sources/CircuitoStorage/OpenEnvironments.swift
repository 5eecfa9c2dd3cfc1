import CircuitoCore
import Glibc
import Synchronization

/// The LMDB data files this process has open, so that none is opened twice.
///
/// LMDB allows one environment per file and process: its locks on `lock.mdb` belong to the process, so a second
/// open in the same process finds itself alone, initialises the lock file again under the first environment's readers
/// and writer, and closing it drops the first one's locks as well (`Specs/ledger.md` 10.1). A test that did this
/// while the first environment committed crashed in the lock file's mutexes. Refusing the second open turns that
/// into an error at the call that makes it.
enum OpenEnvironments {
    /// A data file by its device and inode, which survive renames and tell two paths to one file apart from two files.
    struct FileIdentity: Hashable, Sendable {
        let device: UInt64
        let inode: UInt64
    }

    /// Held while an environment opens, so that two threads opening the same file cannot both pass the check.
    private static let files = Mutex<Set<FileIdentity>>([])

    static func identity(ofPath path: String) -> FileIdentity? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    static func identity(ofDescriptor descriptor: Int32) -> FileIdentity? {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return nil }
        return FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// Runs `open` unless the data file in `directory` is already open in this process, and records the file it
    /// opened (`open` returns its identity, or nil when it has none to record).
    static func opening<Result>(
        directory: String, _ open: () throws(LedgerError) -> (Result, FileIdentity?)
    ) throws(LedgerError) -> (Result, FileIdentity?) {
        try files.withLock { (openFiles) throws(LedgerError) -> (Result, FileIdentity?) in
            if let existing = identity(ofPath: directory + "/data.mdb"), openFiles.contains(existing) {
                throw LedgerError(
                    .locked,
                    "this process already has the LMDB environment at \(directory) open; LMDB allows one per file and process")
            }
            let (result, identity) = try open()
            if let identity {
                let inserted = openFiles.insert(identity).inserted
                // The check above found no such file; a second entry would mean two environments on one file.
                precondition(inserted, "an LMDB data file was recorded open twice")
            }
            return (result, identity)
        }
    }

    /// Closes an environment (`close`) and forgets its file, under the lock that opening holds: once the file's
    /// last descriptor closes, its inode may be given to a new file, which must not be taken for this one.
    static func closing(_ identity: FileIdentity, _ close: () -> Void) {
        files.withLock { openFiles in
            close()
            let removed = openFiles.remove(identity)
            precondition(removed != nil, "an LMDB data file was closed that was not recorded open")
        }
    }
}
