import CircuitoCore
import CircuitoCredentials
import CircuitoStorage
import Glibc

/// Where the CLI finds the JSON-LD contexts it signs and verifies with. They are files of the shared `contexts`
/// directory, never copied into the repository and never fetched: `--contexts DIR`, else `$CIRCUITO_CONTEXTS`,
/// else the first `shared/contexts` found walking up from the executable's folder, then from the current
/// directory (the repository sits next to `shared/`).
enum CredentialContexts {
    static let environmentVariable = "CIRCUITO_CONTEXTS"
    static let maximumContextBytes = 1 << 20
    /// Enough ancestors for any real path; the walk stops at "/" before that.
    static let maximumAncestors = 64

    static func load(directory given: String?) throws(LedgerError) -> JSONLDContextStore {
        let directory = try locate(given: given)
        var files: [String: [UInt8]] = [:]
        for fileName in JSONLDContextStore.bundledFileNames.values.sorted() {
            let path = directory + "/" + fileName
            do throws(LedgerError) {
                files[fileName] = try LocalFiles.read(path, maximumBytes: maximumContextBytes)
            } catch {
                // The read's own code: a file that is there but too large, or a folder in its place, is not missing.
                let what = error.code == .notFound ? "is missing from" : "cannot be read from"
                throw LedgerError(error.code, "JSON-LD context file \(fileName) \(what) \(directory): \(error.message)")
            }
        }
        return try JSONLDContextStore(bundledFiles: files)
    }

    static func locate(given: String?) throws(LedgerError) -> String {
        if let given {
            guard LocalFiles.isDirectory(given) else {
                throw LedgerError(.notFound, "--contexts \(given) is not a directory")
            }
            return given
        }
        if let variable = getenv(environmentVariable) {
            let path = String(cString: variable)
            guard LocalFiles.isDirectory(path) else {
                throw LedgerError(.notFound, "\(environmentVariable)=\(path) is not a directory")
            }
            return path
        }
        var starts: [String] = []
        if let executable = LocalFiles.executablePath() { starts.append(FileIO.parentFolder(of: executable)) }
        if let current = LocalFiles.currentDirectory() { starts.append(current) }
        for start in starts {
            var folder = start
            for _ in 0..<maximumAncestors {
                let candidate = (folder == "/" ? "" : folder) + "/shared/contexts"
                if LocalFiles.isDirectory(candidate) { return candidate }
                if folder == "/" || folder.isEmpty { break }
                folder = FileIO.parentFolder(of: folder)
            }
        }
        throw LedgerError(
            .notFound,
            "cannot find the JSON-LD contexts (shared/contexts): give --contexts DIR or set \(environmentVariable)")
    }
}

/// Small whole-file reads and writes for credentials, status lists and images.
enum LocalFiles {
    static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR
    }

    static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count)
        guard count > 0, count < buffer.count else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func read(_ path: String, maximumBytes: Int) throws(LedgerError) -> [UInt8] {
        try FileIO.readFile(path, maximumBytes: maximumBytes)
    }

    /// Writes `bytes` to `path` (mode 0644 less the umask), replacing the file there only once all of it is written.
    static func write(_ bytes: [UInt8], to path: String) throws(LedgerError) {
        try FileIO.replaceFile(path, with: bytes)
    }

    /// `bytes` to `path`, or to standard output when `path` is nil.
    static func emit(_ bytes: [UInt8], to path: String?) throws(LedgerError) {
        if let path {
            try write(bytes, to: path)
            return
        }
        let output = StandardOutput()
        output.write(bytes: bytes)
        output.flush()
    }

    /// `value` as canonical JSON and a LF to `path`, or as `StandardOutput.writeLine(_:)` writes it when `path` is nil
    /// (on a terminal, what would drive it escaped: a credential quotes names from the ledger).
    static func emitJSONLine(_ value: JSONValue, to path: String?) throws(LedgerError) {
        guard let path else {
            printJSONLine(value)
            return
        }
        try write(CanonicalJSON.encode(value) + [0x0A], to: path)
    }
}
