import CircuitoCore
import CircuitoCrypto
import Glibc

/// The per-beneficiary keys that seal personal data (`SealedData`), kept outside the log: a directory (mode 0700)
/// with one file per subject, `<subject>.key` (mode 0600), holding
/// `{"alg":"xchacha20poly1305","key":<base64, 32 bytes>,"subject":<id>}`.
///
/// Erasing a subject (crypto-shredding) overwrites its file with zeros, syncs it, unlinks it and syncs the
/// directory: what the log holds sealed for that subject can then no longer be opened by anyone holding this vault.
public struct KeyVault: Sendable {
    public let directory: String
    static let fileSuffix = ".key"
    static let maximumFileBytes = 1024

    /// Opens (and creates, mode 0700, when missing) a vault directory.
    public init(directory: String) throws(LedgerError) {
        try FileIO.makeDirectory(directory, mode: 0o700, existingIsFine: true, what: "key vault")
        var status = stat()
        guard stat(directory, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw LedgerError(.storage, "key vault \(directory) is not a directory")
        }
        // Keys of people's data: nobody but the owner may list or read them.
        guard status.st_mode & 0o077 == 0 || chmod(directory, 0o700) == 0 else {
            throw LedgerError(.storage, "cannot set mode 0700 on key vault \(directory): \(String(cString: strerror(errno)))")
        }
        self.directory = directory
    }

    /// Opens a vault directory that is there, for reading, changing nothing on disk: `not_found` when it is missing,
    /// `key_file` when it is not a directory or group or others may read it (what `init(directory:)` would fix).
    public init(existingDirectory directory: String) throws(LedgerError) {
        var status = stat()
        guard stat(directory, &status) == 0 else {
            if errno == ENOENT { throw LedgerError(.notFound, "there is no key vault at \(directory)") }
            throw LedgerError(.keyFile, "cannot read key vault \(directory): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFDIR else { throw LedgerError(.keyFile, "key vault \(directory) is not a directory") }
        guard status.st_mode & 0o077 == 0 else {
            throw LedgerError(.keyFile, "key vault \(directory) is open to group or others; run: chmod 700 \(directory)")
        }
        self.directory = directory
    }

    /// The file of `subject`'s key. Subject ids are identifiers (letters, digits, `.` `_` `:` `-`), so with the
    /// suffix they are always one plain file name inside the vault.
    func path(for subject: String) throws(LedgerError) -> String {
        guard Identifier.isValid(subject) else {
            throw LedgerError(.invalidBody, "key vault subject \(subject.debugDescription) is not an identifier")
        }
        return directory + "/" + subject + Self.fileSuffix
    }

    /// Whether the vault holds a key file for `subject`, usable or not (nothing is read).
    public func holdsKeyFile(for subject: String) -> Bool {
        guard let path = try? path(for: subject) else { return false }
        return access(path, F_OK) == 0
    }

    /// The subject's key, or nil when the vault holds none (never created, or erased). The file's bytes are wiped
    /// once read; the key returned is the caller's to wipe once used (`SecretBytes.wipe`).
    public func key(for subject: String) throws(LedgerError) -> [UInt8]? {
        let path = try path(for: subject)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw LedgerError(.keyFile, "cannot open vault key \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw LedgerError(.keyFile, "vault key \(path) is not a regular file")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw LedgerError(.keyFile, "vault key \(path) is readable by group or others; run: chmod 600 \(path)")
        }
        let json = try Self.readVaultKeyJSON(descriptor, path: path, subject: subject)
        guard let keyText = json["key"]?.stringValue, let key = Base64.decode(keyText), key.count == SecretBox.keyByteCount else {
            throw LedgerError(.keyFile, "vault key \(path) is damaged (needs alg, subject \(subject) and a 32-byte key)")
        }
        return key
    }

    /// Reads a vault key file and checks that it says what it is (`alg`, and `subject` the one its name gives), so
    /// that a file of another kind under the same name (a wallet key, the ledger's key, in a folder given by
    /// mistake) is refused with `key_file`, never read as a vault key or erased as one.
    static func readVaultKeyJSON(_ descriptor: Int32, path: String, subject: String) throws(LedgerError) -> JSONValue {
        var bytes = try readVaultKeyBytes(descriptor, path: path)
        defer { SecretBytes.wipe(&bytes) }
        return try vaultKeyJSON(bytes, path: path, subject: subject)
    }

    private static func readVaultKeyBytes(_ descriptor: Int32, path: String) throws(LedgerError) -> [UInt8] {
        do throws(LedgerError) { return try FileIO.readAll(descriptor, maximumBytes: Self.maximumFileBytes, path: path, secret: true) } catch {
            throw LedgerError(.keyFile, "vault key \(path) is not a vault key: \(error.message)")
        }
    }

    private static func vaultKeyJSON(_ bytes: [UInt8], path: String, subject: String) throws(LedgerError) -> JSONValue {
        let json: JSONValue
        do throws(LedgerError) { json = try JSONParser.parse(bytes) } catch {
            throw LedgerError(.keyFile, "vault key \(path) is not JSON: \(error.message)")
        }
        guard json["alg"]?.stringValue == SealedData.algorithm, json["subject"]?.stringValue == subject else {
            throw LedgerError(
                .keyFile,
                "\(path) is not a vault key of \(subject) (needs alg \(SealedData.algorithm) and subject \(subject)): is this folder the key vault?")
        }
        return json
    }

    /// Creates a new random key for `subject`; refuses when the subject already has one.
    @discardableResult
    public func createKey(for subject: String) throws(LedgerError) -> [UInt8] {
        let key = SecretBox.newKey()
        try store(key, for: subject)
        return key
    }

    /// Stores a given key for `subject` (the demo derives its keys from its seed so that it is reproducible);
    /// refuses when the subject already has one.
    public func store(_ key: [UInt8], for subject: String) throws(LedgerError) {
        guard key.count == SecretBox.keyByteCount else {
            throw LedgerError(.keyFile, "a vault key is \(SecretBox.keyByteCount) bytes, not \(key.count)")
        }
        let path = try path(for: subject)
        let text = CanonicalJSON.encodeString(.object([
            "alg": .string(SealedData.algorithm), "key": .string(Base64.encode(key)), "subject": .string(subject),
        ])) + "\n"
        // Its name synced too: a power cut must not keep what was sealed with the key and lose the key.
        try KeyFile.createSecretFile(path, text: text, what: "vault key", folder: directory)
    }

    /// Crypto-shreds `subject`: overwrites the key file with zeros, syncs it, unlinks it and syncs the directory.
    /// Returns false when the vault held no key for the subject.
    @discardableResult
    public func erase(subject: String) throws(LedgerError) -> Bool {
        let path = try path(for: subject)
        // Non-blocking: a FIFO under the key's name must not hold the erasure waiting for a writer.
        let descriptor = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else {
            if errno == ENOENT { return false }
            throw LedgerError(.keyFile, "cannot open vault key \(path) to erase it: \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw LedgerError(.keyFile, "vault key \(path) is not a regular file")
        }
        // Overwrite in place first: on file systems that do not reuse blocks at once, an unlink alone leaves the key
        // on the disk. (Copy-on-write file systems and SSD wear levelling may still keep old blocks: real
        // deployments keep the vault on encrypted storage too.) Only a file that is this subject's vault key: the
        // key's own bytes may be damaged, but what it says it is must hold.
        do throws(LedgerError) {
            var bytes = try Self.readVaultKeyBytes(descriptor, path: path)
            defer { SecretBytes.wipe(&bytes) }
            // As many as were read, which is the whole file (at most `maximumFileBytes`): not `st_size`, which a
            // sparse file may put at terabytes, more than memory holds.
            let zeros = [UInt8](repeating: 0, count: bytes.count)
            // Nothing but zeros (or nothing) is what this erasure writes before its sync and unlink: one that
            // stopped there (a failed sync, a kill) is finished, not refused, or the key could never be erased.
            if bytes.contains(where: { $0 != 0 }) {
                _ = try Self.vaultKeyJSON(bytes, path: path, subject: subject)
            }
            guard lseek(descriptor, 0, SEEK_SET) == 0 else {
                throw LedgerError(.keyFile, "cannot overwrite vault key \(path): \(String(cString: strerror(errno)))")
            }
            do throws(LedgerError) {
                try FileIO.writeAll(descriptor, zeros, path: path)
            } catch {
                throw LedgerError(.keyFile, error.message)
            }
        } catch {
            close(descriptor)
            throw error
        }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard synced else { throw LedgerError(.keyFile, "cannot sync the overwritten vault key \(path)") }
        guard unlink(path) == 0 else {
            throw LedgerError(.keyFile, "cannot unlink vault key \(path): \(String(cString: strerror(errno)))")
        }
        // Make the unlink itself durable.
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            defer { close(directoryDescriptor) }
            guard fsync(directoryDescriptor) == 0 else {
                throw LedgerError(.keyFile, "cannot sync key vault \(directory) after erasing \(subject)")
            }
        }
        return true
    }

    /// Subjects that have a key in the vault, sorted (at most `limit`).
    public func subjects(limit: Int = 1_000_000) throws(LedgerError) -> [String] {
        guard let handle = opendir(directory) else {
            throw LedgerError(.storage, "cannot list key vault \(directory): \(String(cString: strerror(errno)))")
        }
        defer { closedir(handle) }
        var subjects: [String] = []
        while subjects.count < limit, let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasSuffix(Self.fileSuffix) else { continue }
            let subject = String(name.dropLast(Self.fileSuffix.count))
            if Identifier.isValid(subject) { subjects.append(subject) }
        }
        return subjects.sorted()
    }
}
