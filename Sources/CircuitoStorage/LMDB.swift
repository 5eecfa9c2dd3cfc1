import CLMDB
import CircuitoCore
import Glibc
import Synchronization

/// An LMDB environment (one per ledger directory) with its named databases, opened once at start.
///
/// Transactions exist only inside `read` and `write` closures, which are synchronous: a transaction and its cursors
/// stay on one thread and can never cross an `await`. The environment is opened with `MDB_NOTLS` so read
/// transactions may run on any thread of a pool.
public final class LMDBEnvironment: @unchecked Sendable {
    // @unchecked: an MDB_env is safe to share between threads; transactions are confined to closures.
    let handle: OpaquePointer
    private let databases: [String: MDB_dbi]
    /// The state tables' handles by `StateTable.ordinal` (nil where this environment has no such database): the
    /// rules read and write these on every event, and an index costs less than hashing a name.
    private let stateTableDatabases: [MDB_dbi?]
    public let path: String
    /// `Options.freeSpace`.
    private let freeSpace: (path: String, name: String)?
    /// A shared lock on the ledger's `writer.lock`, held while this reader reads without LMDB's lock file, so that no
    /// writer starts meanwhile (`openLockFree`); closed with the environment.
    private let writerHoldOff: Int32?
    /// The data file, recorded open for this process until it is closed (nil if its descriptor could not be read).
    private let fileIdentity: OpenEnvironments.FileIdentity?
    /// Uses of `handle` in progress (transactions, copies, questions to LMDB): `close` waits for them to end.
    private let usesInProgress = Atomic<Int>(0)
    /// Set when `close` begins: a use that starts later is refused, so none can start on a closed handle.
    private let closing = Atomic<Bool>(false)
    /// Set once `mdb_env_close` has run, by `close` or `deinit`, so that it runs once.
    private let closed = Atomic<Bool>(false)

    /// How large a map (the address space LMDB reserves for the file; the file holds only what is written) to open
    /// the environment with. The data can never outgrow it: a commit that would is refused with `map_full`.
    public enum MapSize: Sendable, Equatable {
        /// The size the file records (the largest any writer of it has used): what readers open with, so that they
        /// map all a writer may write while they run.
        case recorded
        /// The size the file records, and at least `bytes`: what writers open with unless told a size.
        case atLeast(bytes: Int)
        /// Exactly `bytes`, or the size of the data already written when that is larger (LMDB's own rule): an
        /// operator's `--map-size`, and tests that fill a small map.
        case exactly(bytes: Int)
    }

    /// Largest map `--map-size` takes: a quarter of x86-64's 128 TiB of user address space.
    public static let maximumMapSizeBytes = 32 << 40

    /// Reads an operator's `--map-size`: a whole number of `MiB`, `GiB` or `TiB` (`32GiB`), from 1 MiB to 32 TiB;
    /// whole mebibytes, so always whole pages. Anything else is `invalid_range`.
    public static func mapSize(parsing text: String) throws(LedgerError) -> MapSize {
        let units: [(suffix: String, shift: Int)] = [("MiB", 20), ("GiB", 30), ("TiB", 40)]
        guard let unit = units.first(where: { text.hasSuffix($0.suffix) }) else {
            throw LedgerError(.invalidRange, "--map-size takes a whole number of MiB, GiB or TiB (such as 32GiB), not \"\(text)\"")
        }
        let digits = text.dropLast(unit.suffix.count)
        // At most 8 digits: no overflow before the range check below.
        guard !digits.isEmpty, digits.count <= 8, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let count = Int(digits), count > 0,
            count <= maximumMapSizeBytes >> unit.shift
        else {
            throw LedgerError(.invalidRange, "--map-size takes a whole number of MiB, GiB or TiB from 1MiB to 32TiB, not \"\(text)\"")
        }
        return .exactly(bytes: count << unit.shift)
    }

    /// The map a ledger's writer opens with unless told otherwise: room for about ten million records of the bench's mix
    /// (a bench ledger of 1.04 M records takes 1.6 GB).
    public static let defaultMapSizeBytes = 16 << 30

    public struct Options: Sendable {
        public var mapSize: MapSize
        public var maximumReaders: UInt32
        /// When false, commits are not fsync'd (MDB_NOSYNC): only for scratch environments that are thrown away.
        public var durable: Bool
        /// When false (MDB_NORDAHEAD), the kernel reads and maps only the pages LMDB touches, not their neighbours
        /// as well (read-ahead and fault-around). A server's B-tree lookups land on pages all over the file, so
        /// read-ahead only grows its resident size; a scan of the log in order (verify, export) gains from it.
        public var readAhead: Bool
        /// A reader's: when the ledger's files may be read but not written (a read-only file system, or an auditor
        /// given read access only), read without LMDB's lock file, holding off writers instead (`openLockFree`).
        public var readsWithoutWriteAccess: Bool
        /// Where a commit cut short looks for free space, and what it calls that place in its error: by default the
        /// environment's own folder, "the ledger's". A replay's scratch folder is removed once opened, so it names the
        /// temporary folder that holds it.
        public var freeSpace: (path: String, name: String)? = nil
        public init(
            mapSize: MapSize = .atLeast(bytes: LMDBEnvironment.defaultMapSizeBytes), maximumReaders: UInt32 = 256, durable: Bool = true,
            readAhead: Bool = true, readsWithoutWriteAccess: Bool = false
        ) {
            self.mapSize = mapSize
            self.maximumReaders = maximumReaders
            self.durable = durable
            self.readAhead = readAhead
            self.readsWithoutWriteAccess = readsWithoutWriteAccess
        }

        /// What a server opens its ledger with: lookups in random order, so no read-ahead.
        public static let server = Options(readAhead: false)
        /// What a reader opens a ledger with: the map its writers recorded.
        public static let reading = Options(mapSize: .recorded, readsWithoutWriteAccess: true)
        /// What a reader that copies or scans a ledger a server may be writing opens it with: the map its writers
        /// recorded, without read-ahead, which would leave the file in large page-cache folios that slow the server's
        /// commits (`Specs/ledger.md` 10.4); such a reader asks for the pages itself (`PageCache`).
        public static let readingBesideAServer = Options(mapSize: .recorded, readAhead: false, readsWithoutWriteAccess: true)
    }

    /// Opens (and with `create`, creates) the environment at `path` and the named databases.
    ///
    /// Before any of them, the ledger format stamp (`LedgerFormat`) is read: a version newer than this binary's is
    /// refused (`ledger_format_too_new`), and a missing one (a ledger from before the stamp) reads as version 1.
    /// `writing` (implied by `create`) is for the ledger's one writer, which holds its writer lock: its opening stores
    /// the stamp when there is none, in the transaction that opens the databases.
    ///
    /// A data file this process already has open is refused (`ledger_locked`): LMDB allows one environment per file
    /// and process (`OpenEnvironments`).
    public init(path: String, databaseNames: [String], create: Bool, writing: Bool = false, options: Options = Options()) throws(LedgerError) {
        let (opened, fileIdentity) = try OpenEnvironments.opening(directory: path) { () throws(LedgerError) in
            let opened = try LMDBEnvironment.open(path: path, databaseNames: databaseNames, create: create, writing: create || writing, options: options)
            var descriptor: Int32 = -1
            let identity = mdb_env_get_fd(opened.environment, &descriptor) == 0 ? OpenEnvironments.identity(ofDescriptor: descriptor) : nil
            return (opened, identity)
        }
        self.handle = opened.environment
        self.writerHoldOff = opened.writerHoldOff
        self.path = path
        self.freeSpace = options.freeSpace
        self.databases = opened.databases
        self.stateTableDatabases = StateTable.all.map { opened.databases[$0.name] }
        self.fileIdentity = fileIdentity
        var openFlags: UInt32 = 0
        // mdb_env_get_flags fails only for a null environment, which this one is not.
        self.openFlags = mdb_env_get_flags(opened.environment, &openFlags) == 0 ? openFlags : 0
    }

    /// The environment and its databases' handles, opened; closed again if any step fails.
    private static func open(
        path: String, databaseNames: [String], create: Bool, writing: Bool, options: Options, extraFlags: UInt32 = 0
    ) throws(LedgerError) -> (environment: OpaquePointer, databases: [String: MDB_dbi], writerHoldOff: Int32?) {
        // Opening an environment that is there: LMDB would make a missing or empty data file a new environment (its
        // meta pages written into a folder that held no ledger), so those are refused before it is asked.
        let lockFileWasThere = access(path + "/lock.mdb", F_OK) == 0
        if !create {
            var status = stat()
            guard stat(path + "/data.mdb", &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_size > 0 else {
                let what = access(path + "/data.mdb", F_OK) != 0 ? "no data.mdb" : "its data.mdb is empty or not a file"
                throw LedgerError(.notFound, "\(path) holds no ledger (\(what))")
            }
        }
        var environment: OpaquePointer?
        try LMDBEnvironment.check(mdb_env_create(&environment), "mdb_env_create")
        guard let environment else { throw LedgerError(.storage, "mdb_env_create returned no environment") }
        // Closed here on any failure; the initializer stores it only once all has opened, since an initializer that
        // throws after every stored property is set runs `deinit`, which would close it a second time (a double free).
        var databases: [String: MDB_dbi] = [:]
        // Set when the files can be read but not written (a failed mdb_env_open, whose handle is closed below).
        var readOnlyAccess: LedgerError?
        do throws(LedgerError) {
            try LMDBEnvironment.check(mdb_env_set_assert(environment, reportDamagedFile), "mdb_env_set_assert")
            // The databases asked for, the format stamp's, and one to spare.
            try LMDBEnvironment.check(mdb_env_set_maxdbs(environment, MDB_dbi(databaseNames.count + 2)), "mdb_env_set_maxdbs")
            // 0 before opening: LMDB takes the size the file records (1 MiB for a new file), raised below if asked.
            let requestedBytes: Int
            switch options.mapSize {
            case .recorded, .atLeast: requestedBytes = 0
            case .exactly(let bytes): requestedBytes = bytes
            }
            try LMDBEnvironment.check(mdb_env_set_mapsize(environment, requestedBytes), "mdb_env_set_mapsize")
            try LMDBEnvironment.check(mdb_env_set_maxreaders(environment, options.maximumReaders), "mdb_env_set_maxreaders")
            let flags = UInt32(MDB_NOTLS) | (options.durable ? 0 : UInt32(MDB_NOSYNC) | UInt32(MDB_NOMETASYNC))
                | (options.readAhead ? 0 : UInt32(MDB_NORDAHEAD)) | extraFlags
            if extraFlags & UInt32(MDB_NOLOCK) == 0 {
                do throws(LedgerError) {
                    try reserveLockFile(directory: path, maximumReaders: options.maximumReaders)
                } catch {
                    // A reader on a full disk reads as one without write access does: without the lock file,
                    // holding writers off meanwhile (a backup on a full disk stays readable).
                    if !create && options.readsWithoutWriteAccess { readOnlyAccess = error }
                    throw error
                }
            }
            let openResult = mdb_env_open(environment, path, flags, 0o600)
            if (openResult == EACCES || openResult == EROFS) && !create && options.readsWithoutWriteAccess {
                let failure = LedgerError(.storage, "opening LMDB environment at \(path): \(String(cString: mdb_strerror(openResult)))")
                readOnlyAccess = failure
                throw failure
            }
            if (openResult == MDB_INVALID || openResult == MDB_VERSION_MISMATCH) && !lockFileWasThere {
                // Not an LMDB file (or not this LMDB's): nobody can use it, so the lock file this open made goes.
                unlink(path + "/lock.mdb")
            }
            if openResult == ENOMEM {
                // The whole map is reserved as address space at once: a process limit below it refuses it.
                throw LedgerError(
                    .storage,
                    "opening LMDB environment at \(path): cannot map the ledger (\(String(cString: mdb_strerror(openResult)))): LMDB reserves its whole map as address space at once (16 GiB by default, or the --map-size its writers recorded); is the process's address space limited (ulimit -v) below that?")
            }
            try LMDBEnvironment.check(openResult, "opening LMDB environment at \(path)")
            try checkFileHoldsItsPages(environment, path: path)
            if case .atLeast(let bytes) = options.mapSize, LMDBEnvironment.mapSizeBytes(of: environment) < bytes {
                // No transaction is active yet, as mdb_env_set_mapsize requires after opening; a writer's next
                // commit records the new size in the file.
                try LMDBEnvironment.check(mdb_env_set_mapsize(environment, bytes), "mdb_env_set_mapsize")
            }
            // Open every named database once, in one transaction; the handles then serve every later transaction.
            let transaction: OpaquePointer
            if writing {
                var begun: OpaquePointer?
                try LMDBEnvironment.check(mdb_txn_begin(environment, nil, 0, &begun), "mdb_txn_begin")
                guard let begun else { throw LedgerError(.storage, "mdb_txn_begin returned no transaction") }
                transaction = begun
            } else {
                transaction = try beginReadTransaction(environment, path: path, "opening the databases")
            }
            // The format stamp first: a ledger of a newer format is refused before anything else of it is read.
            do throws(LedgerError) {
                if let database = try checkFormat(transaction, path: path, writing: writing) { databases[LedgerFormat.databaseName] = database }
            } catch {
                mdb_txn_abort(transaction)
                throw error
            }
            for name in databaseNames {
                var database = MDB_dbi()
                let result = mdb_dbi_open(transaction, name, create ? UInt32(MDB_CREATE) : 0, &database)
                if result != 0 {
                    mdb_txn_abort(transaction)
                    if result == MDB_NOTFOUND {
                        throw LedgerError(.notFound, "\(path) is not a Circuito ledger (no database \"\(name)\")")
                    }
                    try LMDBEnvironment.check(result, "opening database \(name)")
                }
                databases[name] = database
            }
            // Commit (not abort) so the database handles stay valid; a failed commit has already freed the transaction.
            let committed = mdb_txn_commit(transaction)
            try LMDBEnvironment.check(
                committed, "committing database handles" + (committed == EIO ? fileSystemSpaceNote(ledgerPath: path, freeSpace: options.freeSpace) : ""))
        } catch {
            mdb_env_close(environment)
            // The reader opens again without the lock file, on a handle of its own.
            if let readOnlyAccess { return try openLockFree(path: path, databaseNames: databaseNames, options: options, after: readOnlyAccess) }
            throw error
        }
        return (environment, databases, nil)
    }

    /// A reader that may read the ledger's files but not write them: LMDB's lock file cannot be created or written
    /// (a read-only file system, files shared read-only with an auditor). It opens the environment read-only and
    /// without the lock file (`MDB_RDONLY | MDB_NOLOCK`), which is safe only while nothing writes the ledger: so it
    /// takes a shared lock on `writer.lock`, which every writer holds exclusively for as long as it writes (a writer
    /// then refuses to start with `ledger_locked` until this reader is done), and refuses to read beside a writer
    /// that holds it. A folder without `writer.lock` (a backup's copy) has never been written in place.
    private static func openLockFree(
        path: String, databaseNames: [String], options: Options, after failure: LedgerError
    ) throws(LedgerError) -> (environment: OpaquePointer, databases: [String: MDB_dbi], writerHoldOff: Int32?) {
        precondition(options.readsWithoutWriteAccess, "only a reader reads without the lock file")
        var holdOff: Int32?
        let lockPath = path + "/" + LedgerFiles.writerLock
        let descriptor = Glibc.open(lockPath, O_RDONLY | O_CLOEXEC)
        if descriptor >= 0 {
            guard flock(descriptor, LOCK_SH | LOCK_NB) == 0 else {
                Glibc.close(descriptor)
                throw LedgerError(
                    .locked,
                    "\(failure.message); this process may read the ledger but not write its lock file, and a writer has it open: reading beside a writer needs write access to \(path)/lock.mdb (or read a backup, `circuito backup`)")
            }
            holdOff = descriptor
        } else if errno != ENOENT {
            throw LedgerError(.storage, "\(failure.message); cannot open \(lockPath): \(String(cString: strerror(errno)))")
        }
        var lockFree = options
        lockFree.readsWithoutWriteAccess = false
        do throws(LedgerError) {
            let opened = try open(
                path: path, databaseNames: databaseNames, create: false, writing: false, options: lockFree, extraFlags: UInt32(MDB_RDONLY) | UInt32(MDB_NOLOCK))
            assert(opened.writerHoldOff == nil, "the lock-free open does not fall back again")
            return (opened.environment, opened.databases, holdOff)
        } catch {
            if let holdOff { Glibc.close(holdOff) }
            throw error
        }
    }

    /// Reads the format stamp in the transaction that opens the databases, refuses a newer version than this binary's,
    /// and for a writer stores this binary's where there is none (then committed with that transaction). Returns the
    /// stamp database's handle, or nil when a reader finds none (a ledger from before the stamp: version 1).
    private static func checkFormat(_ transaction: OpaquePointer, path: String, writing: Bool) throws(LedgerError) -> MDB_dbi? {
        var database = MDB_dbi()
        let opened = mdb_dbi_open(transaction, LedgerFormat.databaseName, writing ? UInt32(MDB_CREATE) : 0, &database)
        if opened == MDB_NOTFOUND && !writing { return nil }
        try LMDBEnvironment.check(opened, "opening database \(LedgerFormat.databaseName)")
        let label = "the ledger format version"
        if let stored = try LMDBTransaction.get(transaction, database, LedgerFormat.versionKey, label: label) {
            try LedgerFormat.requireReadable(storedVersion: try LedgerFormat.decode(stored, path: path), path: path)
        } else if writing {
            try LMDBTransaction.put(transaction, database, LedgerFormat.versionKey, LedgerFormat.encode(LedgerFormat.version), appending: false, label: label)
        }
        return database
    }

    /// A file shorter than its own last page (cut short by an interrupted copy, say) is refused before anything reads
    /// it: LMDB maps past the file's end, and the first read there would stop the process with SIGBUS.
    private static func checkFileHoldsItsPages(_ environment: OpaquePointer, path: String) throws(LedgerError) {
        var information = MDB_envinfo()
        var statistics = MDB_stat()
        var descriptor: Int32 = -1
        try LMDBEnvironment.check(mdb_env_info(environment, &information), "mdb_env_info")
        try LMDBEnvironment.check(mdb_env_stat(environment, &statistics), "mdb_env_stat")
        try LMDBEnvironment.check(mdb_env_get_fd(environment, &descriptor), "mdb_env_get_fd")
        var fileStatus = Glibc.stat()
        guard fstat(descriptor, &fileStatus) == 0 else {
            throw LedgerError(.storage, "cannot read the size of \(path)/data.mdb: \(String(cString: strerror(errno)))")
        }
        // A writer grows the file before it records a new last page, so a sound file is never shorter than this.
        // The last page is the meta page's own word, damaged or not: counted without overflow (a page number near
        // 2^64 reaches past any file).
        let lastPage = UInt64(UInt(bitPattern: information.me_last_pgno))
        let (pageCount, countOverflows) = lastPage.addingReportingOverflow(1)
        let (neededBytes, bytesOverflow) = pageCount.multipliedReportingOverflow(by: UInt64(statistics.ms_psize))
        guard !countOverflows, !bytesOverflow else {
            throw LedgerError(
                .integrity,
                "\(path)/data.mdb is damaged: its meta page records last page \(lastPage) of \(statistics.ms_psize) bytes, past the end of any file; use a backup")
        }
        guard UInt64(max(0, fileStatus.st_size)) >= neededBytes else {
            throw LedgerError(
                .integrity,
                "\(path)/data.mdb is \(fileStatus.st_size) bytes, but its pages reach \(neededBytes): the file was cut short (an interrupted copy?); use a backup")
        }
    }

    deinit {
        // No use can be in progress: each holds a reference.
        closeHandle()
    }

    /// Closes the environment now, rather than when its last reference goes, and forgets its file
    /// (`OpenEnvironments`), so that this process may open the ledger again at once: what a server's shutdown does,
    /// since a late task of it may keep a reference for a while. Every use that starts afterwards fails with
    /// `storage_error`; the uses in progress (a read transaction, a commit, a copy) are waited for, at most
    /// `timeoutMilliseconds`. Returns whether the environment is closed; when it is not (a use outlasted the wait, or
    /// another thread's `close` is still waiting), it stays refused to new uses and the last use in progress closes
    /// it as that use ends.
    @discardableResult
    public func close(timeoutMilliseconds: Int = 30_000) -> Bool {
        precondition(timeoutMilliseconds >= 0, "a wait is not negative")
        closing.store(true, ordering: .sequentiallyConsistent)
        // Polled every millisecond: a shutdown waits for the few uses still running, and only once.
        for _ in 0...timeoutMilliseconds {
            if closed.load(ordering: .sequentiallyConsistent) { return true }
            if usesInProgress.load(ordering: .sequentiallyConsistent) == 0 {
                closeHandle()
                return true
            }
            usleep(1_000)
        }
        return closed.load(ordering: .sequentiallyConsistent)
    }

    /// Whether `close` has begun: every later use is refused.
    public var isClosing: Bool { closing.load(ordering: .sequentiallyConsistent) }

    /// Runs `mdb_env_close` and forgets the file, once, with no use in progress: from `close`, from the last use a
    /// timed-out `close` waited for, or from `deinit`.
    private func closeHandle() {
        guard !closed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        let handle = handle
        // After the environment: no read of it may run once writers can start again.
        defer { if let writerHoldOff { Glibc.close(writerHoldOff) } }
        guard let fileIdentity else { return mdb_env_close(handle) }
        OpenEnvironments.closing(fileIdentity) { mdb_env_close(handle) }
    }

    /// Runs `body` with the handle, counted as a use (see `close`); refused once `close` has begun.
    private func using<Result>(_ what: @autoclosure () -> String, _ body: () throws(LedgerError) -> Result) throws(LedgerError) -> Result {
        usesInProgress.add(1, ordering: .sequentiallyConsistent)
        defer {
            // A `close` that gave up waiting left the handle to the uses it waited for: the last one closes it, so
            // that the file is released when that use ends, not whenever the last reference goes. A use that starts
            // later sees `closing` before it touches the handle, and `closeHandle` runs once.
            let remaining = usesInProgress.subtract(1, ordering: .sequentiallyConsistent).newValue
            if remaining == 0 && closing.load(ordering: .sequentiallyConsistent) { closeHandle() }
        }
        // Checked after counting the use: `close` sets `closing` before it reads the count, so either it sees this
        // use and waits for it, or this use sees `closing` and stops here (both sides sequentially consistent).
        guard !closing.load(ordering: .sequentiallyConsistent) else {
            throw LedgerError(.storage, "\(what()): the ledger at \(path) has been closed")
        }
        return try body()
    }

    func database(_ name: String) -> MDB_dbi {
        guard let database = databases[name] else {
            // Every name used by the code is opened at start; a missing one is a programming error.
            preconditionFailure("database \(name) was not opened at start")
        }
        return database
    }

    func database(_ table: StateTable) -> MDB_dbi {
        guard let database = stateTableDatabases[table.ordinal] else {
            preconditionFailure("database \(table.name) was not opened at start")
        }
        return database
    }

    /// Frees the reader slots of processes that died inside a read transaction (`mdb_reader_check`) and returns how
    /// many. LMDB cannot reuse pages a reader may still see, and a killed process's slot keeps its snapshot
    /// forever: without this, one `circuito verify` killed mid-run would make the file grow with every commit
    /// until the next restart.
    public func clearStaleReaders() throws(LedgerError) -> Int {
        try using("checking for stale readers") { () throws(LedgerError) -> Int in try clearStaleReadersInUse() }
    }

    /// Begins a read transaction on `environment` (the ledger at `path`). Every one takes a slot of the reader table
    /// in `lock.mdb` (256), and the slot of a process that died inside its transaction (killed, or a `circuito export
    /// | head` ended by SIGPIPE) stays taken until someone checks: so a full table is first cleared of dead processes'
    /// slots (`mdb_reader_check`) and the transaction tried once more. Left to the writers' commits, a table filled
    /// by dead readers refused every read of a server, its submits included, so it never committed again.
    static func beginReadTransaction(_ environment: OpaquePointer, path: String, _ what: @autoclosure () -> String) throws(LedgerError) -> OpaquePointer {
        var transaction: OpaquePointer?
        var result = mdb_txn_begin(environment, nil, UInt32(MDB_RDONLY), &transaction)
        if result == MDB_READERS_FULL, clearedStaleReaders(environment) {
            result = mdb_txn_begin(environment, nil, UInt32(MDB_RDONLY), &transaction)
        }
        if result == MDB_READERS_FULL { throw readersFull(path: path, what()) }
        try check(result, what())
        guard let transaction else { throw LedgerError(.storage, "\(what()): mdb_txn_begin returned no transaction") }
        return transaction
    }

    /// Whether `mdb_reader_check` freed at least one dead process's reader slot.
    static func clearedStaleReaders(_ environment: OpaquePointer) -> Bool {
        var cleared: Int32 = 0
        return mdb_reader_check(environment, &cleared) == 0 && cleared > 0
    }

    /// A reader table full of live readers' slots: a bound of LMDB's, not damage or a fault of the disk.
    static func readersFull(path: String, _ what: String) -> LedgerError {
        LedgerError(
            .storage,
            "\(what): every reader slot of \(path)/lock.mdb is taken by a running process that reads the ledger (MDB_READERS_FULL); run the command again once fewer of them read it")
    }

    /// `clearStaleReaders` inside a use already counted (a commit's), so that it is not counted twice.
    private func clearStaleReadersInUse() throws(LedgerError) -> Int {
        var cleared: Int32 = 0
        try LMDBEnvironment.check(mdb_reader_check(handle, &cleared), "checking for stale readers")
        return Int(cleared)
    }

    /// The process ids of the reader slots in use (`mdb_reader_list`), for diagnostics and tests (none once closed).
    public func readerProcessIDs() -> [Int32] {
        final class Lines { var text = "" }
        let lines = Lines()
        _ = try? using("listing the readers") {
            withExtendedLifetime(lines) {
                mdb_reader_list(handle, { message, context in
                    guard let message, let context else { return 0 }
                    Unmanaged<Lines>.fromOpaque(context).takeUnretainedValue().text += String(cString: message)
                    return 0
                }, Unmanaged.passUnretained(lines).toOpaque())
            }
        }
        // "    pid     thread     txnid" then one line per slot: pid, thread, txnid ("-" when idle).
        return lines.text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[2] != "-" else { return nil }
            return Int32(fields[0])
        }
    }

    /// The size of this process's map of the environment (0 once closed).
    public var mapSizeBytes: Int { (try? using("reading the map size") { LMDBEnvironment.mapSizeBytes(of: handle) }) ?? 0 }

    private static func mapSizeBytes(of environment: OpaquePointer) -> Int {
        var information = MDB_envinfo()
        // mdb_env_info fails only for a null environment, which `environment` never is.
        guard mdb_env_info(environment, &information) == 0 else { return 0 }
        return information.me_mapsize
    }

    /// Whether the environment was opened with the kernel's read-ahead (`Options.readAhead`).
    public var readsAhead: Bool { openFlags & UInt32(MDB_NORDAHEAD) == 0 }

    /// The flags the environment was opened with, read once at opening (`mdb_env_get_flags`).
    private let openFlags: UInt32

    /// Writes a consistent copy of the environment (one read snapshot, `mdb_env_copyfd2`) as `directory`/data.mdb;
    /// `directory` must exist and hold no data.mdb. A writer may keep appending meanwhile. `compacting` leaves out the
    /// free pages and numbers the pages in use anew, one after the other (`MDB_CP_COMPACT`); otherwise the copy is
    /// page for page the source's file up to its last page in use.
    public func copy(to directory: String, compacting: Bool = false) throws(LedgerError) {
        guard access(directory + "/data.mdb", F_OK) != 0 else {
            throw LedgerError(.storage, "\(directory) already holds a data.mdb")
        }
        let flags = compacting ? UInt32(MDB_CP_COMPACT) : 0
        // Written under another name, private from its first byte, and renamed only once whole and synced: a copy
        // that is interrupted never looks like a ledger. O_DIRECT as on LMDB's own copy's file: the copy does not
        // fill the page cache (LMDB writes it in aligned pages for that).
        let partial = directory + "/data.mdb.partial"
        // Counted as a use of the environment from the start: a copy on a closed environment creates nothing.
        try using("copying the LMDB environment to \(directory)") { () throws(LedgerError) in
            let descriptor = Glibc.open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                throw LedgerError(.storage, "cannot create \(partial): \(String(cString: strerror(errno)))")
            }
            defer { Glibc.close(descriptor) }
            // As LMDB sets it on its own copy's file: asked for after opening, and a file system without it (tmpfs
            // on older kernels) copies through the page cache instead of failing.
            let statusFlags = fcntl(descriptor, F_GETFL)
            if statusFlags != -1 { _ = fcntl(descriptor, F_SETFL, statusFlags | circuito_open_direct) }
            do throws(LedgerError) {
                var copied = mdb_env_copyfd2(handle, descriptor, flags)
                // As for a read transaction (`beginReadTransaction`): LMDB's copy begins with one, before it writes.
                if copied == MDB_READERS_FULL, LMDBEnvironment.clearedStaleReaders(handle) {
                    copied = mdb_env_copyfd2(handle, descriptor, flags)
                }
                if copied == MDB_READERS_FULL { throw LMDBEnvironment.readersFull(path: path, "copying the LMDB environment to \(directory)") }
                try LMDBEnvironment.check(copied, "copying the LMDB environment to \(directory)")
                guard fsync(descriptor) == 0 else { throw LedgerError(.storage, "cannot sync \(partial): \(String(cString: strerror(errno)))") }
                guard rename(partial, directory + "/data.mdb") == 0 else {
                    throw LedgerError(.storage, "cannot rename \(partial): \(String(cString: strerror(errno)))")
                }
                try FileIO.synchronise(directory)
            } catch {
                unlink(partial)
                throw error
            }
        }
    }

    /// Runs `body` in a read transaction, which ends when `body` returns.
    public func read<Result>(_ body: (LMDBTransaction) throws(LedgerError) -> Result) throws(LedgerError) -> Result {
        try using("beginning a read transaction") { () throws(LedgerError) -> Result in
            let transaction = try LMDBEnvironment.beginReadTransaction(handle, path: path, "beginning a read transaction")
            defer { mdb_txn_abort(transaction) }
            return try body(LMDBTransaction(environment: self, handle: transaction))
        }
    }

    /// Whether LMDB has marked this environment failed (`MDB_PANIC`: a write of a meta page failed), after which it
    /// refuses every transaction, read or write, until the process opens the ledger again. A closed one has not.
    public var hasFailed: Bool {
        do throws(LedgerError) {
            return try using("probing the environment") { () -> Bool in
                var transaction: OpaquePointer?
                let result = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &transaction)
                if result == 0, let transaction { mdb_txn_abort(transaction) }
                return result == MDB_PANIC
            }
        } catch {
            return false
        }
    }

    /// Runs `body` in the write transaction and commits when it returns; aborts when it throws.
    ///
    /// Every write first clears the slots of dead readers (`clearStaleReaders`), so that no writer of any kind (the
    /// ledger, a replica) lets a killed `verify` or `export` make its file grow. At full load the file grew by about
    /// 30 KB per event until the slot was cleared; a check every 10 s still let it reach 286 MB. The check skips
    /// this process's own readers, so with no other process it makes no system call. A failure of the check is not
    /// the write's: it is retried at the next one.
    public func write<Result>(_ body: (LMDBTransaction) throws(LedgerError) -> Result) throws(LedgerError) -> Result {
        try timedWrite(body).result
    }

    /// `write`, also telling how long `mdb_txn_commit` took: LMDB's page writes and its syncs, the part of a
    /// durable commit that waits on the disk.
    public func timedWrite<Result>(
        _ body: (LMDBTransaction) throws(LedgerError) -> Result
    ) throws(LedgerError) -> (result: Result, commitNanoseconds: UInt64) {
        try using("beginning the write transaction") { () throws(LedgerError) -> (result: Result, commitNanoseconds: UInt64) in
            try timedWriteInUse(body)
        }
    }

    private func timedWriteInUse<Result>(
        _ body: (LMDBTransaction) throws(LedgerError) -> Result
    ) throws(LedgerError) -> (result: Result, commitNanoseconds: UInt64) {
        _ = try? clearStaleReadersInUse()
        var transaction: OpaquePointer?
        try LMDBEnvironment.check(mdb_txn_begin(handle, nil, 0, &transaction), "beginning the write transaction")
        guard let transaction else { throw LedgerError(.storage, "mdb_txn_begin returned no transaction") }
        let result: Result
        do throws(LedgerError) {
            result = try body(LMDBTransaction(environment: self, handle: transaction))
        } catch {
            mdb_txn_abort(transaction)
            throw error
        }
        // mdb_txn_commit frees the transaction whether or not it succeeds: never abort after it.
        let commitStart = monotonicNanoseconds()
        let committed = mdb_txn_commit(transaction)
        let commitNanoseconds = monotonicNanoseconds() - commitStart
        try LMDBEnvironment.check(committed, "committing" + (committed == EIO ? Self.fileSystemSpaceNote(ledgerPath: path, freeSpace: freeSpace) : ""))
        return (result, commitNanoseconds)
    }

    /// LMDB reports a page write cut short as EIO, also when the file system is full: the free space says which, of
    /// `freeSpace`'s file system when the options name one (`Options.freeSpace`), else of the ledger's.
    private static func fileSystemSpaceNote(ledgerPath: String, freeSpace: (path: String, name: String)?) -> String {
        var space = statvfs()
        guard statvfs(freeSpace?.path ?? ledgerPath, &space) == 0 else { return "" }
        return fullFileSystemNote(availableBlocks: UInt64(space.f_bavail), blockBytes: UInt64(space.f_frsize), name: freeSpace?.name ?? "the ledger's")
    }

    /// The note for a file system with `availableBlocks` of `blockBytes` free, "" unless next to nothing is left (a
    /// write cut short by a full disk has taken what there was): the likely cause, not a failing disk. With more free,
    /// EIO is the disk's. The figures are whatever the file system reports (a network or FUSE one may report any):
    /// more than 2^64 bytes free is room, not a trap while the commit's error is being reported.
    static func fullFileSystemNote(availableBlocks: UInt64, blockBytes: UInt64, name: String) -> String {
        let (freeBytes, overflow) = availableBlocks.multipliedReportingOverflow(by: blockBytes)
        guard !overflow, freeBytes < 1 << 20 else { return "" }
        return " (\(name) file system has \(freeBytes >> 10) KiB free: probably full)"
    }

    /// The bytes of LMDB's lock file for `maximumReaders` readers, with room to spare: LMDB sizes it as its header
    /// (three 64-byte cache lines on 64-bit Linux) and one 64-byte slot per reader after the first.
    static func lockFileBytes(maximumReaders: UInt32) -> Int {
        let bytes = 4 * 64 + Int(maximumReaders) * 64
        return (bytes + 4095) / 4096 * 4096
    }

    /// LMDB keeps its reader table and mutexes in `lock.mdb`, a sparse file it sizes with `ftruncate` and writes
    /// through a shared map: on a full file system the first write to a page with no block behind it (a new reader's
    /// slot, the header of a new file) ends the process with SIGBUS, and on a copy-on-write one (btrfs) so does any
    /// write to a page already written back. So the file's blocks are reserved before LMDB maps it (copy-on-write
    /// turned off first while the file is still empty), and a full disk is `storage_error` here, as is one with no
    /// inode left for a new lock file (which LMDB would report only as its open failing). A file system
    /// without `fallocate` keeps LMDB's own sizing; a file this process may not write is left for LMDB to report.
    private static func reserveLockFile(directory: String, maximumReaders: UInt32) throws(LedgerError) {
        let path = directory + "/lock.mdb"
        // Exclusively first, so that only a file this call made is ever removed again.
        var made = true
        var descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if descriptor < 0 && errno == EEXIST {
            made = false
            descriptor = Glibc.open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
        }
        guard descriptor >= 0 else {
            // No room for the file itself (a file system out of inodes, a quota on them): as for its blocks below,
            // so that a reader reads without it. Another refusal is left for LMDB to report.
            let reason = errno
            guard made, reason == ENOSPC || reason == EDQUOT else { return }
            throw LedgerError(
                .storage,
                "cannot create LMDB's lock file \(path): \(String(cString: strerror(reason))); free space (or inodes) on its file system and run the command again")
        }
        defer { Glibc.close(descriptor) }
        var status = stat()
        if fstat(descriptor, &status) == 0, status.st_size == 0 { _ = circuito_disable_copy_on_write(descriptor) }
        let bytes = lockFileBytes(maximumReaders: maximumReaders)
        guard circuito_reserve_file_blocks(descriptor, Int64(bytes)) != 0 else { return }
        let reason = errno
        guard reason == ENOSPC || reason == EDQUOT else { return }
        // Only a file this call made: another process's lock file may be in use.
        if made { unlink(path) }
        throw LedgerError(
            .storage,
            "cannot reserve \(bytes >> 10) KiB for LMDB's lock file \(path): \(String(cString: strerror(reason))); free space on its file system and run the command again")
    }

    static func check(_ result: Int32, _ what: @autoclosure () -> String) throws(LedgerError) {
        guard result != 0 else { return }
        let reason = String(cString: mdb_strerror(result))
        if result == MDB_MAP_FULL {
            throw LedgerError(
                .mapFull, "\(what()): the ledger's LMDB map is full (\(reason)); open it again with a larger --map-size (Specs/ledger.md 10.1)")
        }
        if result == MDB_MAP_RESIZED {
            // Another process wrote past this one's map (a writer restarted with a larger --map-size); growing this
            // map would need every transaction of this process ended, so the command is run again instead.
            throw LedgerError(.storage, "\(what()): another process has grown the ledger beyond this process's map (\(reason)); run the command again")
        }
        if result == MDB_CORRUPTED || result == MDB_PAGE_NOTFOUND {
            // LMDB's own word that the file is damaged (a page of the wrong kind, one past the end): the stored data,
            // not the operation, is at fault.
            throw LedgerError(
                .integrity, "\(what()): the ledger's data.mdb is damaged (\(reason)); restore it from a backup (circuito backup) or a follower")
        }
        if result == MDB_PANIC {
            // Set by a failed write of a meta page (a disk error, a full copy-on-write volume): the data file holds
            // every commit before the failed one, but this process's environment is unusable.
            throw LedgerError(
                .storage,
                "\(what()): an earlier write of the ledger's storage failed and LMDB refuses every transaction in this process (\(reason)); the commits before it are intact: the program must be started again")
        }
        if result == MDB_INVALID {
            // At opening: the meta pages of data.mdb, or the header of lock.mdb, are not LMDB's.
            throw LedgerError(
                .integrity,
                "\(what()): data.mdb is not an LMDB file, or its lock.mdb is not LMDB's (\(reason)): not a ledger this program wrote, or one damaged at its start")
        }
        throw LedgerError(.storage, "\(what()): \(reason)")
    }
}

/// A transaction, valid only inside the closure that received it. Not Sendable: it stays on its thread.
public struct LMDBTransaction {
    let environment: LMDBEnvironment
    let handle: OpaquePointer

    /// The value under `key`, copied out (LMDB's own pointer is valid only until the transaction ends).
    public func get(_ databaseName: String, _ key: [UInt8]) throws(LedgerError) -> [UInt8]? {
        try get(environment.database(databaseName), key, label: databaseName)
    }

    public func get(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> [UInt8]? {
        try get(environment.database(table), key, label: table.name)
    }

    private func get(_ database: MDB_dbi, _ key: [UInt8], label databaseName: String) throws(LedgerError) -> [UInt8]? {
        try Self.get(handle, database, key, label: databaseName)
    }

    /// `get` on a transaction handle itself: also for the opening's transaction, before the environment exists.
    static func get(_ handle: OpaquePointer, _ database: MDB_dbi, _ key: [UInt8], label databaseName: String) throws(LedgerError) -> [UInt8]? {
        // LMDB only reads a key it is given: the caller's buffer is passed as it is (a mutable copy would allocate).
        let (result, bytes) = key.withUnsafeBytes { keyBuffer -> (Int32, [UInt8]?) in
            var keyValue = MDB_val(mv_size: keyBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: keyBuffer.baseAddress))
            var value = MDB_val()
            let result = mdb_get(handle, database, &keyValue, &value)
            return (result, result == 0 ? Self.bytes(of: value) : nil)
        }
        if result == MDB_NOTFOUND { return nil }
        try LMDBEnvironment.check(result, "reading \(databaseName)")
        return bytes
    }

    public func put(_ databaseName: String, _ key: [UInt8], _ value: [UInt8], appending: Bool = false) throws(LedgerError) {
        try put(environment.database(databaseName), key, value, appending: appending, label: databaseName)
    }

    public func put(_ table: StateTable, _ key: [UInt8], _ value: [UInt8]) throws(LedgerError) {
        try put(environment.database(table), key, value, appending: false, label: table.name)
    }

    private func put(_ database: MDB_dbi, _ key: [UInt8], _ value: [UInt8], appending: Bool, label databaseName: String) throws(LedgerError) {
        try Self.put(handle, database, key, value, appending: appending, label: databaseName)
    }

    /// `put` on a transaction handle itself: also for the opening's transaction, before the environment exists.
    static func put(
        _ handle: OpaquePointer, _ database: MDB_dbi, _ key: [UInt8], _ value: [UInt8], appending: Bool, label databaseName: String
    ) throws(LedgerError) {
        // MDB_APPEND skips the search and keeps pages full when keys arrive in order (the log).
        let flags = appending ? UInt32(MDB_APPEND) : 0
        // Without MDB_RESERVE, LMDB only reads the key and the value (it copies them into its pages).
        let result = key.withUnsafeBytes { keyBuffer in
            value.withUnsafeBytes { valueBuffer in
                var keyValue = MDB_val(mv_size: keyBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: keyBuffer.baseAddress))
                var valueValue = MDB_val(mv_size: valueBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: valueBuffer.baseAddress))
                return mdb_put(handle, database, &keyValue, &valueValue, flags)
            }
        }
        try LMDBEnvironment.check(result, "writing \(databaseName)")
    }

    /// Removes `key`; removing a missing key is not an error.
    public func delete(_ databaseName: String, _ key: [UInt8]) throws(LedgerError) {
        try delete(environment.database(databaseName), key, label: databaseName)
    }

    public func delete(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) {
        try delete(environment.database(table), key, label: table.name)
    }

    private func delete(_ database: MDB_dbi, _ key: [UInt8], label databaseName: String) throws(LedgerError) {
        let result = key.withUnsafeBytes { keyBuffer in
            var keyValue = MDB_val(mv_size: keyBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: keyBuffer.baseAddress))
            return mdb_del(handle, database, &keyValue, nil)
        }
        if result == MDB_NOTFOUND { return }
        try LMDBEnvironment.check(result, "deleting from \(databaseName)")
    }

    /// Entries whose key starts with `prefix`, in key order, at most `limit`.
    public func entries(_ databaseName: String, prefix: [UInt8], limit: Int) throws(LedgerError) -> [(key: [UInt8], value: [UInt8])] {
        var found: [(key: [UInt8], value: [UInt8])] = []
        guard limit > 0 else { return found }
        try forEach(databaseName, from: prefix) { (key, value) throws(LedgerError) -> Bool in
            guard key.starts(with: prefix) else { return false }
            found.append(([UInt8](key), [UInt8](value)))
            return found.count < limit
        }
        return found
    }

    /// Entry count of a database.
    public func count(_ databaseName: String) throws(LedgerError) -> Int {
        var statistics = MDB_stat()
        try LMDBEnvironment.check(mdb_stat(handle, environment.database(databaseName), &statistics), "mdb_stat")
        return statistics.ms_entries
    }

    /// The last entry (highest key) of a database.
    public func last(_ databaseName: String) throws(LedgerError) -> (key: [UInt8], value: [UInt8])? {
        try positioned(databaseName, key: nil, operation: MDB_LAST)
    }

    /// The first entry whose key is ≥ `key`.
    public func first(_ databaseName: String, atOrAfter key: [UInt8]) throws(LedgerError) -> (key: [UInt8], value: [UInt8])? {
        try positioned(databaseName, key: key, operation: MDB_SET_RANGE)
    }

    /// Walks `databaseName` of this transaction and `otherDatabaseName` of `other` side by side in key order: `body`
    /// gets the n-th entry of each (nil once that side has no more) until both run out or it returns false. Nothing
    /// is copied; the buffers are valid only during the call. Both transactions must belong to this thread.
    public func forEachSideBySide(
        _ databaseName: String, with other: LMDBTransaction, _ otherDatabaseName: String,
        _ body: (_ entry: (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)?,
                 _ otherEntry: (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)?) throws(LedgerError) -> Bool
    ) throws(LedgerError) {
        let cursor = try openCursor(databaseName)
        defer { mdb_cursor_close(cursor) }
        let otherCursor = try other.openCursor(otherDatabaseName)
        defer { mdb_cursor_close(otherCursor) }
        func step(_ cursor: OpaquePointer, _ operation: MDB_cursor_op, _ name: String) throws(LedgerError) -> (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? {
            var key = MDB_val()
            var value = MDB_val()
            let result = mdb_cursor_get(cursor, &key, &value, operation)
            if result == MDB_NOTFOUND { return nil }
            try LMDBEnvironment.check(result, "iterating \(name)")
            return (UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size), UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
        }
        var entry = try step(cursor, MDB_FIRST, databaseName)
        var otherEntry = try step(otherCursor, MDB_FIRST, otherDatabaseName)
        // Bounded by the two databases' entries: each turn moves both cursors on, and a cursor past its end stays there.
        while entry != nil || otherEntry != nil {
            guard try body(entry, otherEntry) else { return }
            if entry != nil { entry = try step(cursor, MDB_NEXT, databaseName) }
            if otherEntry != nil { otherEntry = try step(otherCursor, MDB_NEXT, otherDatabaseName) }
        }
    }

    /// Whether two byte buffers hold the same bytes.
    public static func sameBytes(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        guard first.count == second.count else { return false }
        guard let firstBytes = first.baseAddress, let secondBytes = second.baseAddress else { return first.count == 0 }
        return memcmp(firstBytes, secondBytes, first.count) == 0
    }

    private func openCursor(_ databaseName: String) throws(LedgerError) -> OpaquePointer {
        var cursor: OpaquePointer?
        try LMDBEnvironment.check(mdb_cursor_open(handle, environment.database(databaseName), &cursor), "mdb_cursor_open")
        guard let cursor else { throw LedgerError(.storage, "mdb_cursor_open returned no cursor") }
        return cursor
    }

    private func positioned(_ databaseName: String, key: [UInt8]?, operation: MDB_cursor_op) throws(LedgerError) -> (key: [UInt8], value: [UInt8])? {
        let cursor = try openCursor(databaseName)
        defer { mdb_cursor_close(cursor) }
        var keyBytes = key ?? []
        let (result, entry) = keyBytes.withUnsafeMutableBytes { keyBuffer -> (Int32, (key: [UInt8], value: [UInt8])?) in
            var keyValue = MDB_val(mv_size: keyBuffer.count, mv_data: keyBuffer.baseAddress)
            var value = MDB_val()
            let result = mdb_cursor_get(cursor, &keyValue, &value, operation)
            return (result, result == 0 ? (Self.bytes(of: keyValue), Self.bytes(of: value)) : nil)
        }
        if result == MDB_NOTFOUND { return nil }
        try LMDBEnvironment.check(result, "positioning a cursor on \(databaseName)")
        return entry
    }

    /// Calls `body` for each entry with key ≥ `startKey` in key order, until it returns false. The buffers are
    /// valid only during the call.
    public func forEach(
        _ databaseName: String, from startKey: [UInt8],
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(LedgerError) -> Bool
    ) throws(LedgerError) {
        let cursor = try openCursor(databaseName)
        defer { mdb_cursor_close(cursor) }
        // The start key is copied into memory that lives across the loop; LMDB reads it only in the first call.
        let startBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(startKey.count, 1), alignment: 1)
        defer { startBuffer.deallocate() }
        startBuffer.copyBytes(from: startKey)
        var keyValue = MDB_val(mv_size: startKey.count, mv_data: startBuffer.baseAddress)
        var value = MDB_val()
        // LMDB refuses a zero-length key for MDB_SET_RANGE: an empty start means the first entry.
        var result = mdb_cursor_get(cursor, &keyValue, &value, startKey.isEmpty ? MDB_FIRST : MDB_SET_RANGE)
        while result == 0 {
            let keepGoing = try body(
                UnsafeRawBufferPointer(start: keyValue.mv_data, count: keyValue.mv_size),
                UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
            if !keepGoing { return }
            result = mdb_cursor_get(cursor, &keyValue, &value, MDB_NEXT)
        }
        if result != MDB_NOTFOUND { try LMDBEnvironment.check(result, "iterating \(databaseName)") }
    }

    static func bytes(of value: MDB_val) -> [UInt8] {
        guard let data = value.mv_data, value.mv_size > 0 else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: data, count: value.mv_size))
    }
}

/// 8-byte big-endian keys, so that LMDB's byte order is numeric order.
public enum BigEndianKey {
    public static func encode(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
    }

    public static func decode(_ bytes: some Collection<UInt8>) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// Monotonic time in nanoseconds, for durations (commits, latencies, rates).
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// LMDB's own consistency checks fail on a damaged file (a page zeroed or overwritten inside it, which the size
/// check at opening cannot see), and LMDB then aborts the process: an auditor's `verify` died with a crash report.
/// This callback runs before that abort; it says what happened, as every command states an error, and ends the
/// process with exit status 1. Nothing can be answered instead: LMDB's state is undefined after a failed check, and
/// nothing of the file was changed.
private func reportDamagedFile(_ environment: OpaquePointer?, _ message: UnsafePointer<CChar>?) {
    var pathPointer: UnsafePointer<CChar>?
    let path = environment.flatMap { mdb_env_get_path($0, &pathPointer) == 0 ? pathPointer : nil }.map { String(cString: $0) } ?? "the ledger"
    let detail = message.map { String(cString: $0) } ?? "a consistency check failed"
    let text = "error: \(LedgerError.Code.integrity.name): \(path)/data.mdb is damaged: LMDB found a page that is not what its B-tree says (\(detail)); nothing was changed; restore the ledger from a backup (circuito backup) or a follower (circuito follow)\n"
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    _exit(1)
}
