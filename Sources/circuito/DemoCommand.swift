import ArgumentParser
import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import Glibc

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Build a realistic year of a Turin circuit into a new ledger and print its checkpoint verifier key.",
        discussion: """
            From the seed documents: the city's PIS programme as authority, the seeds' organisations (PIS \
            cooperatives, Case del Quartiere help desks, Piazza dei Mestieri, social-services hubs, partners) with \
            their staff, opportunities in PassoParola's categories across Turin districts, badge classes with credits, \
            enrolled merchants, and beneficiaries in households going through referral, intake, plan, activations, \
            badges, conversions, doti, payments, refunds, settlements, expiries and one erasure, over a year (2025 \
            unless --first-day says otherwise). Every event is signed by the actor the rules require, payments by the \
            merchant with the wallet's authorisation.

            The same --seed, --beneficiaries and --first-day give the same ledger byte for byte (keys, nonces and time \
            are derived from them; the ledger's clock follows the simulated calendar). ToCoin lots last 120 days, so \
            on a 2025 ledger every lot has expired by now: to try payments against a server, start the year a year \
            before today (--first-day, as scripts/run.sh does), and the last months' lots are still live.

            The actors' key files are written to DIR/keys/ (ID.key; a wallet replaced after a lost phone is ID.2.key, \
            its revoked first key stays in ID.key) and the beneficiaries' sealing keys to the key vault DIR/vault/ \
            (both mode 0700, files 0600); the erased beneficiary's vault key is overwritten and removed. Demo keys \
            come from the seed, so anyone with the seed makes them again, an erased beneficiary's included: they are \
            for trying the ledger out, never for real data.

            A demo stopped half-way leaves DIR/demo.partial (naming its checkpoint key) beside a shorter ledger \
            (verify and serve warn about it); demo on the same DIR then removes what it left (the ledger's files, \
            DIR/keys and DIR/vault, which must hold only .key files) and builds it again, refusing instead when the \
            ledger's key is not the one the marker names (one that cannot be read is removed only beside \
            init.partial: the demo's own init stopped while writing it) or a process (a server) writes the folder.
            """)

    @Option(name: .long, help: "The ledger directory (created if missing, in a folder that exists; must hold no ledger, keys or vault).")
    var data: String
    @Option(name: .long, help: "The seed: the same seed gives the same ledger.")
    var seed: UInt64 = 1
    @Option(name: .long, help: "How many beneficiaries (\(DemoCircuit.beneficiaryCountRange.lowerBound) to \(DemoCircuit.beneficiaryCountRange.upperBound)).")
    var beneficiaries: Int = DemoCircuit.defaultBeneficiaryCount
    @Option(name: .long, help: "The simulated year's first day, YYYY-MM-DD; it must end by today. (default: 2025-01-02)")
    var firstDay: String?

    /// The first day as milliseconds since 1970 (midnight UTC), checked: a date whose simulated year ends by now.
    static func firstDayMilliseconds(_ text: String?, nowMilliseconds: Int64) throws(ValidationError) -> Int64 {
        guard let text else { return DemoCircuit.defaultFirstDayMilliseconds }
        guard text.utf8.count == 10, let milliseconds = Timestamp.millisecondsSince1970(text + "T00:00:00Z"), milliseconds >= 0 else {
            throw ValidationError("--first-day must be a date, YYYY-MM-DD, from 1970 on (not \"\(text.prefix(40))\")")
        }
        // The ledger's clock must not run ahead of the machine's: the server would stamp its own records later.
        let lastMilliseconds = milliseconds + Int64(DemoCircuit.dayCount + 1) * DemoCircuit.dayMilliseconds
        guard lastMilliseconds <= nowMilliseconds else {
            let latest = Timestamp.format(millisecondsSince1970: (nowMilliseconds / DemoCircuit.dayMilliseconds - Int64(DemoCircuit.dayCount + 1)) * DemoCircuit.dayMilliseconds)
            throw ValidationError("--first-day \(text): the simulated year would end after today; the latest first day is \(latest.prefix(10))")
        }
        return milliseconds
    }

    func validate() throws {
        guard DemoCircuit.beneficiaryCountRange.contains(beneficiaries) else {
            throw ValidationError("--beneficiaries must be between \(DemoCircuit.beneficiaryCountRange.lowerBound) and \(DemoCircuit.beneficiaryCountRange.upperBound)")
        }
        _ = try Self.firstDayMilliseconds(firstDay, nowMilliseconds: Ledger.systemClockMilliseconds())
    }

    func run() throws {
        let onTerminal = isatty(2) == 1
        try reportingErrors { () throws(LedgerError) in
            let keysDirectory = data + "/keys"
            let vaultDirectory = data + "/vault"
            let markerPath = data + "/" + Self.unfinishedMarker
            let restarting = access(markerPath, F_OK) == 0
            // Refuse before writing anything: a demo never mixes with an existing ledger or its keys, except those
            // of a demo that did not finish here (its marker is there), which it removes and builds again.
            if !restarting && access(data + "/data.mdb", F_OK) == 0 {
                throw LedgerError(.genesisAlreadyWritten, "\(data) already holds a ledger; the demo needs a new directory")
            }
            for path in [keysDirectory, vaultDirectory] where !restarting && access(path, F_OK) == 0 {
                throw LedgerError(.alreadyExists, "\(path) already exists; the demo needs a new directory")
            }
            let started = Ledger.systemClockMilliseconds()
            let firstDayMilliseconds: Int64
            do throws(ValidationError) { firstDayMilliseconds = try Self.firstDayMilliseconds(firstDay, nowMilliseconds: started) } catch {
                throw LedgerError(.invalidRange, error.message)
            }
            var circuit = try DemoCircuit(seed: seed, beneficiaryCount: beneficiaries, firstDayMilliseconds: firstDayMilliseconds)
            let clock = DemoClock(milliseconds: circuit.genesisMilliseconds)
            if restarting {
                try removeUnfinishedDemo(markerPath: markerPath, keysDirectory: keysDirectory, vaultDirectory: vaultDirectory)
            }
            try FileIO.makeDirectory(data, mode: 0o700, existingIsFine: true)
            // The marker names the demo's checkpoint key, so that a restart removes only a ledger that is this demo's.
            try FileIO.writeSyncedFile(
                markerPath,
                text: "circuito demo started here and has not finished; run circuito demo on this folder again to build it anew\n"
                    + Self.markerKeyPrefix + circuit.checkpointKey.publicKey.multikey + "\n",
                directory: data)
            // Hundreds of commits of a new, reproducible ledger: they skip fsync (LMDB stays consistent if the process
            // dies) and the whole file is synced once at the end, before the verifier key is printed. Only a machine
            // crash during the run can spoil the directory, and then the demo is simply run again.
            let ledger: Ledger
            do throws(LedgerError) {
                ledger = try Ledger.create(
                    directory: data, genesis: try circuit.genesis.verified(), checkpointKey: circuit.checkpointKey,
                    options: LMDBEnvironment.Options(durable: false), clock: { clock.milliseconds })
            } catch {
                // Nothing of the demo was made (a refused creation leaves no ledger): no marker either, so that the
                // folder's own files never pass for a stopped demo's.
                unlink(markerPath)
                throw error
            }
            try makePrivateDirectory(keysDirectory)
            let vault = try KeyVault(directory: vaultDirectory)
            var recordCount: UInt64 = 1
            var commitCount = 1
            // Bounded: the circuit has stepCount steps, then returns nil.
            while let batches = try circuit.nextBatches() {
                for batch in batches {
                    for keyFile in batch.keyFiles { try KeyFile.write(keyFile.key, to: keysDirectory + "/" + keyFile.name) }
                    for vaultKey in batch.vaultKeys { try vault.store(vaultKey.key, for: vaultKey.subject) }
                    if !batch.events.isEmpty {
                        clock.milliseconds = batch.recordedAtMilliseconds
                        try append(batch, to: ledger)
                        recordCount += UInt64(batch.events.count)
                        commitCount += 1
                    }
                    // Crypto-shredding after the erasure is recorded and durable.
                    for subject in batch.erasedSubjects { try vault.erase(subject: subject) }
                }
                if onTerminal {
                    printErrorInPlace("demo: day \(circuit.step - 1)/\(DemoCircuit.dayCount), \(recordCount) records")
                }
            }
            if onTerminal { printErrorInPlace("") }
            try FileIO.synchronise(data + "/data.mdb")
            // The demo is whole: its marker goes, and one sync of the folder keeps that and its files' names.
            guard unlink(markerPath) == 0 else {
                throw LedgerError(.storage, "cannot remove \(markerPath): \(String(cString: strerror(errno)))")
            }
            try FileIO.synchronise(data)
            print(ledger.verifierKey)
            let seconds = Double(Ledger.systemClockMilliseconds() - started) / 1000
            printError("demo: \(recordCount) records in \(commitCount) commits (\(seconds) s); ledger \(data), keys \(keysDirectory), vault \(vaultDirectory)")
            for (type, count) in circuit.eventCounts.sorted(by: { $0.key < $1.key }) {
                printError("  \(type): \(count)")
            }
        }
    }

    /// Appends one batch and checks that every event got the seq the generator gave it.
    func append(_ batch: DemoBatch, to ledger: Ledger) throws(LedgerError) {
        // Signature checks on all cores, as `append` does.
        let checked = Parallel.map(batch.events) { signed in Result { () throws(LedgerError) in try signed.verified() } }
        var verified: [VerifiedEvent] = []
        verified.reserveCapacity(checked.count)
        for result in checked { verified.append(try result.get()) }
        for (offset, outcome) in try ledger.append(verified).enumerated() {
            let id = batch.events[offset].event.id
            switch outcome {
            case .success(let receipt):
                guard receipt.sequenceNumber == batch.firstSequenceNumber + UInt64(offset) else {
                    throw LedgerError(.integrity, "demo event \(id) got seq \(receipt.sequenceNumber), the generator expected \(batch.firstSequenceNumber + UInt64(offset))")
                }
            case .failure(let error):
                throw LedgerError(error.code, "demo event \(id) was refused: \(error.message)")
            }
        }
    }

    /// There from the demo's first write until it has finished: a demo stopped half-way (Ctrl-C, killed) leaves a
    /// shorter ledger that verifies, and this says it is not the whole demo. `demo` on the folder again removes what
    /// it left and starts over; `scripts/run.sh` does so, and `verify` and `serve` warn.
    static let unfinishedMarker = "demo.partial"

    /// A warning on standard error when `data` holds a demo that did not finish: its ledger verifies, but it is
    /// only the first part of the demo.
    static func warnIfUnfinished(data: String) {
        guard access(data + "/" + unfinishedMarker, F_OK) == 0 else { return }
        printError("warning: \(data) holds a demo that did not finish (\(unfinishedMarker)): its ledger is only the first part of the demo; run circuito demo --data \(data) again to build it anew")
    }

    /// The marker's line naming the stopped demo's checkpoint key.
    static let markerKeyPrefix = "checkpoint_key "
    /// The marker holds a line or two the demo wrote; a larger file is not a marker it made.
    static let maximumMarkerBytes = 4096

    /// Removes what a stopped demo made in `data`: the ledger's files, its keys folder and its vault. Only what is
    /// the demo's is removed, and nothing while a process writes the folder: a `ledger.key` that is not the one the
    /// marker names, a writer holding the lock, or anything but key files in those folders stops it with an error
    /// before anything is removed.
    func removeUnfinishedDemo(markerPath: String, keysDirectory: String, vaultDirectory: String) throws(LedgerError) {
        // Held while removing: `serve` on a stopped demo only warns, and must not see its files go under it.
        let lock = try FileLock(path: data + "/" + LedgerFiles.writerLock)
        defer { lock.release() }
        let markerText = String(decoding: try LocalFiles.read(markerPath, maximumBytes: Self.maximumMarkerBytes), as: UTF8.self)
        let markedKey = markerText.split(separator: "\n").first { $0.hasPrefix(Self.markerKeyPrefix) }.map { String($0.dropFirst(Self.markerKeyPrefix.count)) }
        let keyPath = data + "/" + LedgerFiles.checkpointKey
        if access(keyPath, F_OK) == 0 {
            let initialisationStopped = access(data + "/" + LedgerFiles.unfinishedInitialisation, F_OK) == 0
            do throws(LedgerError) {
                let key = try KeyFile.read(keyPath)
                guard let markedKey, key.publicKey.multikey == markedKey else {
                    throw LedgerError(
                        .alreadyExists,
                        "\(keyPath) is not the checkpoint key of the demo that \(Self.unfinishedMarker) names; nothing was removed: remove \(data) by hand to build the demo there")
                }
            } catch where error.code == .keyFile && initialisationStopped {
                // A key that cannot be read beside init's own marker is the demo's init stopped while writing it (a
                // power cut can leave it empty or partial): it signed nothing, and `init` would remove it too.
            }
        }
        // Both hold key files only: DIR/keys/ID.key, DIR/vault/SUBJECT.key.
        let folders = [keysDirectory, vaultDirectory]
        let filesInFolders = try folders.map { (folder) throws(LedgerError) in try keyFileNames(in: folder) }
        printError("demo: \(data) holds a demo that did not finish (\(Self.unfinishedMarker)); removing it and building it again")
        for file in ["data.mdb", "lock.mdb", LedgerFiles.checkpointKey, LedgerFiles.unfinishedInitialisation] {
            try removeFile(data + "/" + file)
        }
        for (folder, names) in zip(folders, filesInFolders) {
            guard let names else { continue }
            for name in names { try removeFile(folder + "/" + name) }
            guard rmdir(folder) == 0 else {
                throw LedgerError(.storage, "cannot remove \(folder): \(String(cString: strerror(errno)))")
            }
        }
    }

    private func removeFile(_ path: String) throws(LedgerError) {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw LedgerError(.storage, "cannot remove \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The names in a folder of key files (nil when there is no such folder); any other name is an error.
    private func keyFileNames(in directory: String) throws(LedgerError) -> [String]? {
        guard let stream = opendir(directory) else {
            if errno == ENOENT { return nil }
            throw LedgerError(.storage, "cannot open \(directory): \(String(cString: strerror(errno)))")
        }
        defer { closedir(stream) }
        var names: [String] = []
        // Bounded by the folder's entries; the demo writes a few thousand at most.
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name == "." || name == ".." { continue }
            var status = stat()
            guard name.hasSuffix(".key"), lstat(directory + "/" + name, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
                throw LedgerError(
                    .alreadyExists,
                    "\(directory)/\(name) is not a file the demo writes; nothing was removed: remove \(data) by hand to build the demo again")
            }
            names.append(name)
        }
        return names
    }

    func makePrivateDirectory(_ path: String) throws(LedgerError) {
        try FileIO.makeDirectory(path, mode: 0o700, existingIsFine: false)
        // The mode, whatever the umask took from it.
        guard chmod(path, 0o700) == 0 else {
            throw LedgerError(.storage, "cannot make \(path) private: \(String(cString: strerror(errno)))")
        }
    }
}

/// The ledger clock of the demo: the simulated time of the batch being appended (the ledger stamps `recorded_at`
/// from its clock once per commit).
final class DemoClock: @unchecked Sendable {
    // @unchecked: the value is read and written only under `lock`.
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Int64

    init(milliseconds: Int64) {
        lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
        value = milliseconds
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deinitialize(count: 1)
        lock.deallocate()
    }

    var milliseconds: Int64 {
        get {
            pthread_mutex_lock(lock)
            defer { pthread_mutex_unlock(lock) }
            return value
        }
        set {
            pthread_mutex_lock(lock)
            value = newValue
            pthread_mutex_unlock(lock)
        }
    }
}
