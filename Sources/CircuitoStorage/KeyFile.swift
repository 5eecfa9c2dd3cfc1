import CircuitoCore
import CircuitoCrypto
import CLMDB
import Glibc

/// Secret key files: JSON `{"publicKeyMultibase":"z6Mk…","privateKeyMultibase":"z3u2…"}` (the W3C test
/// vectors' form), mode 0600. Files readable by group or others are refused.
public enum KeyFile {
    static let maximumBytes = 4096

    /// Writes a new key file and syncs it and its folder, so that after a power cut the key is there under its
    /// name whenever anything made after it is (a file system may otherwise keep a later name and lose this one);
    /// refuses to overwrite an existing file.
    public static func write(_ key: Ed25519PrivateKey, to path: String) throws(LedgerError) {
        let text = CanonicalJSON.encodeString(.object([
            "publicKeyMultibase": .string(key.publicKey.multikey),
            "privateKeyMultibase": .string(Multikey.encodeSecret(key)),
        ])) + "\n"
        try createSecretFile(path, text: text, what: "key file", folder: FileIO.parentFolder(of: path))
    }

    /// Creates `path` exclusively with mode exactly 0600, writes `text` and syncs it and `folder` (where its name is).
    /// Failures are `key_file` (the folder's sync: `storage_error`), and the file, this call's own, is removed again: an
    /// empty or partial secret left there would be refused by every reader and by the next attempt. `what` names the
    /// file in messages.
    /// The secret is written into an unnamed file in `folder` (O_TMPFILE), synced, and only then given its name
    /// (linkat, which never replaces a file): a process interrupted before that (Ctrl-C, SIGTERM, SIGHUP, a kill)
    /// leaves nothing under the name, where an empty file made first and written after stayed (and kept the next
    /// `keygen` to that path out, "File exists"). A file system without unnamed files creates the file by its name.
    static func createSecretFile(_ path: String, text: String, what: String, folder: String) throws(LedgerError) {
        if circuito_open_temporary_file != 0, try createUnnamedThenLink(path, text: text, what: what, folder: folder) { return }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LedgerError(.keyFile, "cannot create \(what) \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        do throws(LedgerError) {
            try writeSecret(descriptor, path: path, text: text, what: what)
            try FileIO.synchronise(folder)
        } catch {
            unlink(path)
            throw error
        }
    }

    /// `createSecretFile` through an unnamed file; false when the folder's file system (or a missing /proc) does not
    /// allow it, and nothing was made.
    private static func createUnnamedThenLink(_ path: String, text: String, what: String, folder: String) throws(LedgerError) -> Bool {
        let descriptor = open(folder, circuito_open_temporary_file | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            // Not supported there (EOPNOTSUPP; EISDIR or EINVAL from older kernels): by name. Any other failure is the folder's.
            guard errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL else {
                throw LedgerError(.keyFile, "cannot create \(what) \(path): \(String(cString: strerror(errno)))")
            }
            return false
        }
        defer { close(descriptor) }
        // Refused before anything is written, as the exclusive creation by name refuses it.
        guard access(path, F_OK) != 0 else {
            throw LedgerError(.keyFile, "cannot create \(what) \(path): \(String(cString: strerror(EEXIST)))")
        }
        try writeSecret(descriptor, path: path, text: text, what: what)
        // The name is given last, never over a file there (EEXIST).
        guard linkat(AT_FDCWD, "/proc/self/fd/\(descriptor)", AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 else {
            // No /proc to name the unnamed file by: by name.
            if errno == ENOENT && access("/proc/self/fd", F_OK) != 0 { return false }
            throw LedgerError(.keyFile, "cannot create \(what) \(path): \(String(cString: strerror(errno)))")
        }
        do throws(LedgerError) { try FileIO.synchronise(folder) } catch {
            unlink(path)
            throw error
        }
        return true
    }

    /// Sets the mode of the open secret file to exactly 0600 (the umask may have narrowed it), writes `text` and syncs it.
    private static func writeSecret(_ descriptor: Int32, path: String, text: String, what: String) throws(LedgerError) {
        guard fchmod(descriptor, 0o600) == 0 else {
            throw LedgerError(.keyFile, "cannot set mode 0600 on \(path): \(String(cString: strerror(errno)))")
        }
        var bytes = Array(text.utf8)
        defer { SecretBytes.wipe(&bytes) }
        do throws(LedgerError) {
            try FileIO.writeAll(descriptor, bytes, path: path)
        } catch {
            throw LedgerError(.keyFile, error.message)
        }
        guard fsync(descriptor) == 0 else {
            throw LedgerError(.keyFile, "cannot sync \(what) \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The key is in guarded memory (`SecretBytes`).
    public static func read(_ path: String) throws(LedgerError) -> Ed25519PrivateKey {
        // Non-blocking: a FIFO at the path is refused as not a regular file, not waited on for a writer.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            throw LedgerError(.keyFile, "cannot open key file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw LedgerError(.keyFile, "cannot stat key file \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw LedgerError(.keyFile, "key file \(path) is not a regular file")
        }
        let permissions = status.st_mode & 0o777
        guard permissions & 0o077 == 0 else {
            throw LedgerError(
                .keyFile,
                "key file \(path) is readable by group or others (mode \(String(permissions, radix: 8))); run: chmod 600 \(path)")
        }
        var bytes = try FileIO.readAll(descriptor, maximumBytes: maximumBytes, path: path, secret: true)
        // The parsed text's strings cannot be wiped (Swift strings); the file's bytes can.
        defer { SecretBytes.wipe(&bytes) }
        let json: JSONValue
        do throws(LedgerError) { json = try JSONParser.parse(bytes) } catch {
            throw LedgerError(.keyFile, "key file \(path) is not JSON: \(error.message)")
        }
        guard case .string(let secretText)? = json["privateKeyMultibase"],
            let key = Multikey.decodeSecretKey(secretText)
        else {
            throw LedgerError(.keyFile, "key file \(path) has no valid privateKeyMultibase (z + base58btc of 0x80 0x26 ‖ 32-byte seed)")
        }
        if case .string(let publicText)? = json["publicKeyMultibase"], publicText != key.publicKey.multikey {
            throw LedgerError(.keyFile, "key file \(path): publicKeyMultibase does not match the private key")
        }
        return key
    }
}

/// An exclusive advisory lock (flock) held for the life of the object; keeps a second writer out of a ledger.
public final class FileLock {
    private let descriptor: Int32
    public let path: String

    /// How long a lock held by another open file description is waited for before `ledger_locked`. A lock is held
    /// for a moment by more than its writer: a child process that this one spawns holds a copy of every descriptor
    /// between its fork and its exec, including a lock's that is released meanwhile, and a writer that is exiting
    /// holds its lock until the kernel has closed its files. A second writer still gets `ledger_locked`, this much
    /// later.
    public static let waitMilliseconds = 500
    static let retryIntervalMilliseconds = 10

    public convenience init(path: String, waitMilliseconds: Int = FileLock.waitMilliseconds) throws(LedgerError) {
        try self.init(path: path, waitMilliseconds: waitMilliseconds, beforeEachRetry: {})
    }

    /// `beforeEachRetry` runs after each attempt that found the lock held, when another follows (for tests: what
    /// holds the lock can let go once the wait is known to be under way).
    init(path: String, waitMilliseconds: Int, beforeEachRetry: () -> Void) throws(LedgerError) {
        precondition(waitMilliseconds >= 0, "a wait is not negative")
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LedgerError(.storage, "cannot open lock file \(path): \(String(cString: strerror(errno)))")
        }
        var attempts = 0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            attempts += 1
            if reason == EWOULDBLOCK && attempts * Self.retryIntervalMilliseconds <= waitMilliseconds {
                beforeEachRetry()
                usleep(useconds_t(Self.retryIntervalMilliseconds * 1000))
                continue
            }
            close(descriptor)
            if reason == EWOULDBLOCK {
                throw LedgerError(.locked, "another process is writing this ledger, or reading it without write access to its files (lock \(path) is held)")
            }
            throw LedgerError(.storage, "cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        self.descriptor = descriptor
        self.path = path
    }

    private var released = false

    /// Releases the lock now rather than with the last reference (closing the descriptor releases it); once.
    public func release() {
        guard !released else { return }
        released = true
        close(descriptor)
    }

    deinit { release() }
}

/// Whole-file reads and writes with bounds, for small files (keys, credentials, images).
public enum FileIO {
    /// Creates the folder `path` with `mode`; one that is already there is accepted only when `existingIsFine`. Its
    /// parent is never created: a mistyped path leaves no folders behind, and the error names the parent that is
    /// missing. `what` names the folder in messages ("key vault").
    /// A folder made here is synced into its parent before this returns, so that it (and what is later synced
    /// into it) is still there after a crash; when that sync fails the folder is removed again. Returns whether the
    /// folder was made here (false: it was there), so that a caller whose later steps fail can remove what it made.
    @discardableResult
    public static func makeDirectory(_ path: String, mode: mode_t, existingIsFine: Bool, what: String? = nil) throws(LedgerError) -> Bool {
        let name = what.map { "\($0) \(path)" } ?? path
        guard !path.isEmpty else { throw LedgerError(.storage, "cannot create \(what ?? "a folder"): the path given is empty") }
        if mkdir(path, mode) == 0 {
            let parent = parentFolder(of: path)
            // A parent this user may write in but not read cannot be opened to sync: the folder stays unsynced.
            let descriptor = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard descriptor >= 0 else { return true }
            defer { close(descriptor) }
            guard fsync(descriptor) == 0 else {
                let failure = errno
                rmdir(path)
                throw LedgerError(.storage, "cannot create \(name): syncing \(parent): \(String(cString: strerror(failure)))")
            }
            return true
        }
        let failure = errno
        if failure == EEXIST && existingIsFine {
            var status = stat()
            guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                throw LedgerError(.storage, "cannot use \(name): it exists and is not a folder")
            }
            return false
        }
        if failure == ENOENT {
            throw LedgerError(.storage, "cannot create \(name): the folder it goes in, \(parentFolder(of: path)), does not exist (create it first)")
        }
        throw LedgerError(.storage, "cannot create \(name): \(String(cString: strerror(failure)))")
    }

    /// The folder `path` is in: "." for a bare name, "/" for one at the root and for "/" itself (a trailing "/" is
    /// not a level).
    public static func parentFolder(of path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        return trimmed.lastIndex(of: "/").map { String(trimmed[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
    }

    /// Writes a small file (mode 0600, replacing one there) and syncs it and its folder `directory`, so that it is
    /// there after a crash before the caller goes on; on failure it is removed. Markers of work under way use it.
    public static func writeSyncedFile(_ path: String, text: String, directory: String) throws(LedgerError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LedgerError(.storage, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        do throws(LedgerError) {
            try writeAll(descriptor, Array(text.utf8), path: path)
            guard fsync(descriptor) == 0 else {
                throw LedgerError(.storage, "cannot sync \(path): \(String(cString: strerror(errno)))")
            }
            try synchronise(directory)
        } catch {
            unlink(path)
            throw error
        }
    }

    /// Writes a whole output file so that `path` holds either what it held before or all of the new content, never
    /// a part (a full disk, a kill): `write` fills `path.partial` beside it (created with `mode`, less the umask),
    /// which is synced and renamed over `path`, and the folder synced; on failure the partial file is removed and
    /// `path` is left as it was. A path that is not a regular file (standard output, a FIFO, a device, a symlink) is
    /// written in place, as given.
    public static func replaceFile(_ path: String, mode: mode_t = 0o644, write: (Int32) throws(LedgerError) -> Void) throws(LedgerError) {
        var status = stat()
        if lstat(path, &status) == 0 {
            let kind = status.st_mode & S_IFMT
            guard kind != S_IFDIR else { throw LedgerError(.storage, "cannot write \(path): it is a folder") }
            if kind != S_IFREG {
                let descriptor = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
                guard descriptor >= 0 else { throw LedgerError(.storage, "cannot write \(path): \(String(cString: strerror(errno)))") }
                defer { close(descriptor) }
                try write(descriptor)
                return
            }
        }
        let partial = path + ".partial"
        let descriptor = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw LedgerError(.storage, "cannot create \(partial): \(String(cString: strerror(errno)))") }
        do throws(LedgerError) {
            try write(descriptor)
            guard fsync(descriptor) == 0 else { throw LedgerError(.storage, "cannot sync \(partial): \(String(cString: strerror(errno)))") }
            guard close(descriptor) == 0 else { throw LedgerError(.storage, "cannot write \(partial): \(String(cString: strerror(errno)))") }
        } catch {
            close(descriptor)
            unlink(partial)
            throw error
        }
        guard rename(partial, path) == 0 else {
            let failure = errno
            unlink(partial)
            throw LedgerError(.storage, "cannot rename \(partial) to \(path): \(String(cString: strerror(failure)))")
        }
        try synchronise(parentFolder(of: path))
    }

    /// `replaceFile` with the whole content at hand.
    public static func replaceFile(_ path: String, with bytes: [UInt8], mode: mode_t = 0o644) throws(LedgerError) {
        try replaceFile(path, mode: mode) { (descriptor) throws(LedgerError) in try writeAll(descriptor, bytes, path: path) }
    }

    /// Syncs a file or a folder by path (a folder: so that a file created, renamed or removed in it stays so after a
    /// crash; a file: every earlier write to it, whoever made it).
    public static func synchronise(_ path: String) throws(LedgerError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw LedgerError(.storage, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw LedgerError(.storage, "cannot sync \(path): \(String(cString: strerror(errno)))") }
    }

    public static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String) throws(LedgerError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw LedgerError(.storage, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// `secret`: the content is secret (a key, personal data), so no copy of it is left behind in freed memory: the
    /// result has its whole capacity from the start (never moved as it grows) and the read buffer is wiped. The
    /// result is the caller's to wipe (`SecretBytes.wipe`).
    public static func readAll(_ descriptor: Int32, maximumBytes: Int, path: String, secret: Bool = false) throws(LedgerError) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        if secret { bytes.reserveCapacity(maximumBytes + buffer.count) }
        defer { if secret { SecretBytes.wipe(&buffer) } }
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw LedgerError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            bytes += buffer[0..<count]
            guard bytes.count <= maximumBytes else {
                if secret { SecretBytes.wipe(&bytes) }
                throw LedgerError(.tooLarge, "\(path) is larger than \(maximumBytes) bytes")
            }
        }
    }

    /// Reads a whole small file by path (`secret`: as `readAll`'s).
    public static func readFile(_ path: String, maximumBytes: Int, secret: Bool = false) throws(LedgerError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw LedgerError(.notFound, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        return try readAll(descriptor, maximumBytes: maximumBytes, path: path, secret: secret)
    }
}
