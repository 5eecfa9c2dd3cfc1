import CircuitoCore
import CircuitoCrypto
@testable import CircuitoStorage
import Foundation
import Glibc
import Testing

/// An `init` stopped half-way (killed, the power cut) leaves its marker beside the files it made; the next create
/// starts over, a whole ledger is never removed, and readers say what happened (`Specs/ledger.md` 10.1). Each
/// test lays out by hand the files one stopping point leaves; `init` killed at each of them with strace's fault
/// injection left these same files.
@Suite("An init that did not finish")
struct UnfinishedInitialisationTests {
    private static func path(_ temporary: TemporaryLedger, _ file: String) -> String { temporary.directory + "/" + file }

    private static func exists(_ temporary: TemporaryLedger, _ file: String) -> Bool {
        access(path(temporary, file), F_OK) == 0
    }

    /// The folder as an `init` left it once it had written its marker and, when `key`, its checkpoint key.
    private static func leaveMarker(in temporary: TemporaryLedger, key: Bool) throws {
        try FileIO.makeDirectory(temporary.directory, mode: 0o700, existingIsFine: true)
        let marker = path(temporary, LedgerFiles.unfinishedInitialisation)
        #expect(FileManager.default.createFile(atPath: marker, contents: Data("circuito init started here\n".utf8)))
        if key { try KeyFile.write(Ed25519PrivateKey(), to: path(temporary, LedgerFiles.checkpointKey)) }
    }

    /// Creating the ledger now succeeds, with the new checkpoint key, and leaves no marker.
    private static func expectCreateStartsOver(_ temporary: TemporaryLedger) throws {
        do {
            let ledger = try temporary.create()
            #expect(try ledger.reader.size() == 1)
        }
        #expect(!exists(temporary, LedgerFiles.unfinishedInitialisation))
        let key = try KeyFile.read(path(temporary, LedgerFiles.checkpointKey))
        #expect(key.publicKey.multikey == temporary.checkpointKey.publicKey.multikey, "the stale key was replaced")
        #expect(try LedgerReader.open(directory: temporary.directory).size() == 1)
    }

    /// `open` is refused with `code`, and its message says that an init did not finish and what to do.
    private static func expectRefusal(_ code: LedgerError.Code, _ open: () throws(LedgerError) -> Void) throws {
        do throws(LedgerError) {
            try open()
            Issue.record("the folder opened")
        } catch {
            #expect(error.code == code)
            #expect(error.message.contains("holds an init that did not finish"), "\(error.message)")
            #expect(error.message.contains("run circuito init on it again"), "\(error.message)")
        }
    }

    @Test("a ledger folder that is a plain file is refused as such, and the file is left as it was")
    func folderThatIsAFile() throws {
        let temporary = TemporaryLedger()
        #expect(FileManager.default.createFile(atPath: temporary.directory, contents: Data("notes\n".utf8)))
        #expect(throws: LedgerError(.storage, "cannot use \(temporary.directory): it exists and is not a folder")) { try temporary.create() }
        #expect(FileManager.default.contents(atPath: temporary.directory) == Data("notes\n".utf8))
    }

    @Test("a successful create leaves no marker")
    func createLeavesNoMarker() throws {
        let temporary = TemporaryLedger()
        do { _ = try temporary.create() }
        #expect(!Self.exists(temporary, LedgerFiles.unfinishedInitialisation))
        #expect(Self.exists(temporary, "data.mdb"))
    }

    @Test("stopped after its key, before LMDB's files: create starts over; a writer and a reader say why they cannot open")
    func stoppedAfterTheKey() throws {
        let temporary = TemporaryLedger()
        try Self.leaveMarker(in: temporary, key: true)
        try Self.expectRefusal(.notFound) { () throws(LedgerError) in _ = try Ledger.open(directory: temporary.directory) }
        try Self.expectRefusal(.notFound) { () throws(LedgerError) in _ = try LedgerReader.open(directory: temporary.directory) }
        try Self.expectCreateStartsOver(temporary)
    }

    @Test("stopped with an empty data.mdb: create starts over")
    func stoppedWithAnEmptyDataFile() throws {
        let temporary = TemporaryLedger()
        try Self.leaveMarker(in: temporary, key: true)
        #expect(FileManager.default.createFile(atPath: Self.path(temporary, "data.mdb"), contents: Data()))
        try Self.expectCreateStartsOver(temporary)
    }

    @Test("stopped with a data.mdb LMDB cannot read (zeroed by a power cut): create starts over")
    func stoppedWithAZeroedDataFile() throws {
        let temporary = TemporaryLedger()
        try Self.leaveMarker(in: temporary, key: true)
        #expect(FileManager.default.createFile(atPath: Self.path(temporary, "data.mdb"), contents: Data(count: 16384)))
        try Self.expectCreateStartsOver(temporary)
    }

    @Test("stopped with LMDB's databases made but no record committed: readers say why, create starts over")
    func stoppedBeforeGenesisWasCommitted() throws {
        let temporary = TemporaryLedger()
        try Self.leaveMarker(in: temporary, key: true)
        do {
            let environment = try LMDBEnvironment(path: temporary.directory, databaseNames: LedgerDatabase.all, create: true)
            #expect(environment.close())
        }
        try Self.expectRefusal(.genesisRequired) { () throws(LedgerError) in _ = try LedgerReader.open(directory: temporary.directory) }
        try Self.expectCreateStartsOver(temporary)
    }

    @Test("without a marker, a folder holding data.mdb is never cleared: create refuses it")
    func noMarkerNoClearing() throws {
        let temporary = TemporaryLedger()
        try FileIO.makeDirectory(temporary.directory, mode: 0o700, existingIsFine: true)
        #expect(FileManager.default.createFile(atPath: Self.path(temporary, "data.mdb"), contents: Data()))
        #expect(throws: LedgerError(.genesisAlreadyWritten, "\(temporary.directory) already holds a ledger")) { try temporary.create() }
        #expect(Self.exists(temporary, "data.mdb"))
    }

    @Test("stopped after genesis was committed, before the marker went: the ledger is whole and kept")
    func stoppedAfterGenesisWasCommitted() throws {
        let temporary = TemporaryLedger()
        do { _ = try temporary.create() }
        let keyBefore = try KeyFile.read(Self.path(temporary, LedgerFiles.checkpointKey)).publicKey.multikey
        try Self.leaveMarker(in: temporary, key: false)
        // Readers open it as it is.
        #expect(try LedgerReader.open(directory: temporary.directory).size() == 1)
        // A new create refuses it and removes the marker, saying where the verifier key it never printed is found; the
        // ledger and its key are untouched.
        #expect(
            throws: LedgerError(
                .genesisAlreadyWritten,
                "\(temporary.directory) already holds a ledger: an earlier init committed its genesis and stopped before it finished; the ledger is whole, and circuito serve prints its verifier key")
        ) { try temporary.create() }
        #expect(!Self.exists(temporary, LedgerFiles.unfinishedInitialisation))
        #expect(try KeyFile.read(Self.path(temporary, LedgerFiles.checkpointKey)).publicKey.multikey == keyBefore)
        #expect(try LedgerReader.open(directory: temporary.directory).size() == 1)
        // A writer that opens it finds it whole and removes the marker too.
        try Self.leaveMarker(in: temporary, key: false)
        do {
            let ledger = try Ledger.open(directory: temporary.directory)
            _ = try ledger.append([try temporary.registration("shop")])
        }
        #expect(!Self.exists(temporary, LedgerFiles.unfinishedInitialisation))
        #expect(try LedgerReader.open(directory: temporary.directory).size() == 2)
    }
}
