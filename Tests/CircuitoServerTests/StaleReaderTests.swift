import CircuitoCore
import CircuitoCrypto
@testable import CircuitoStorage
import Foundation
import Glibc
import Testing

@Suite("LMDB: readers of dead processes", .serialized, .timeLimit(.minutes(5)))
struct StaleReaderTests {
    @Test("a reader killed inside its transaction is cleared: by the check itself, and by the writer's next append")
    func killedReaderIsCleared() throws {
        let fixture = try CircuitFixture()
        let ledger = try Self.ledgerForAnExportToBlockOn(fixture)

        // A dead reader: `circuito export` blocked inside its read transaction, then killed.
        let (pid, unread) = try Self.killedReader(directory: fixture.directory, environment: ledger.environment)
        // Dead, but its slot still holds a snapshot until someone checks.
        #expect(ledger.environment.readerProcessIDs().contains(pid))
        #expect(try ledger.environment.clearStaleReaders() == 1)
        #expect(ledger.environment.readerProcessIDs().contains(pid) == false)
        #expect(try ledger.environment.clearStaleReaders() == 0)

        // The writer's own check: a second killed reader is cleared by the next append.
        let (secondPID, secondUnread) = try Self.killedReader(directory: fixture.directory, environment: ledger.environment)
        #expect(ledger.environment.readerProcessIDs().contains(secondPID))
        for result in try ledger.append([try fixture.registration().verified()]) { _ = try result.get() }
        #expect(ledger.environment.readerProcessIDs().contains(secondPID) == false)
        withExtendedLifetime((unread, secondUnread)) {}
    }

    @Test("a reader of a replica killed inside its transaction is cleared by the replica's next commit")
    func killedReaderOfReplicaIsCleared() throws {
        let fixture = try CircuitFixture()
        let leader = try Self.ledgerForAnExportToBlockOn(fixture)

        // The replica takes the leader's records as `circuito follow` does: whole commits, each with its checkpoint.
        let replicaDirectory = fixture.folder.path + "/replica"
        let replica = try ReplicaLedger.open(directory: replicaDirectory)
        func catchUp() throws {
            let size = try leader.reader.size()
            let leaves = try (replica.size..<size).map { try leader.reader.leafBytes(sequenceNumber: $0) }
            let checkpoints = try leader.reader.checkpoints(fromSize: replica.size + 1, limit: max(1, leaves.count))
            try replica.append(leaves: leaves, checkpoints: checkpoints)
            #expect(replica.size == size)
        }
        try catchUp()

        let (pid, unread) = try Self.killedReader(directory: replicaDirectory, environment: replica.environment)
        #expect(replica.environment.readerProcessIDs().contains(pid))
        for result in try leader.append([try fixture.registration().verified()]) { _ = try result.get() }
        try catchUp()
        #expect(replica.environment.readerProcessIDs().contains(pid) == false, "the replica's commit left the dead reader's slot")
        withExtendedLifetime(unread) {}
    }

    @Test("a reader table full of dead readers' slots is cleared by the next read, not only by a commit; one full of live readers is named")
    func fullReaderTableOfDeadReadersIsCleared() throws {
        let fixture = try CircuitFixture()
        // A table of 4 slots, so that a few processes fill it: the first opener's lock file sets the size for all.
        let slots = 4
        #expect(unlink(fixture.directory + "/lock.mdb") == 0)
        let ledger = try Self.ledgerForAnExportToBlockOn(fixture, options: LMDBEnvironment.Options(maximumReaders: UInt32(slots)))
        // Dead readers in every slot: `circuito export | head` ended by SIGPIPE leaves its slot so, as SIGKILL does.
        var unread: [Pipe] = []
        for _ in 0..<slots { unread.append(try Self.killedReader(directory: fixture.directory, environment: ledger.environment).pipe) }
        #expect(ledger.environment.readerProcessIDs().count == slots)
        // No commit comes to clear them (a server's submit begins with a read): the read itself must.
        #expect(throws: Never.self) { try ledger.reader.size() }
        #expect(ledger.environment.readerProcessIDs().isEmpty)

        // Live readers in every slot: refused, saying which bound was reached.
        var live: [(pid: Int32, process: Process, pipe: Pipe)] = []
        for _ in 0..<slots { live.append(try Self.blockedReader(directory: fixture.directory, environment: ledger.environment)) }
        defer {
            for reader in live {
                kill(reader.pid, SIGKILL)
                reader.process.waitUntilExit()
            }
        }
        do {
            _ = try ledger.reader.size()
            Issue.record("a read with every slot taken by a live reader succeeded")
        } catch {
            #expect(error.code == .storage)
            #expect(error.message.contains("every reader slot of \(fixture.directory)/lock.mdb is taken by a running process"), "\(error.message)")
        }
        withExtendedLifetime(unread) {}
    }

    /// The fixture's ledger opened for writing, with enough records that `circuito export` fills a pipe nobody
    /// reads and blocks inside its read transaction.
    static func ledgerForAnExportToBlockOn(_ fixture: CircuitFixture, options: LMDBEnvironment.Options = .init()) throws -> Ledger {
        let ledger = try Ledger.open(directory: fixture.directory, options: options)
        let registrations = try (0..<300).map { _ in try fixture.registration().verified() }
        for result in try ledger.append(registrations) { _ = try result.get() }
        return ledger
    }

    /// Starts `circuito export` with a pipe nobody reads, waits (bounded) until its read transaction shows in the
    /// reader table, kills it with SIGKILL and returns its pid (and the pipe, kept open until the test ends).
    static func killedReader(directory: String, environment: LMDBEnvironment) throws -> (pid: Int32, pipe: Pipe) {
        let (pid, child, unread) = try blockedReader(directory: directory, environment: environment)
        kill(pid, SIGKILL)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)
        return (pid, unread)
    }

    /// Starts `circuito export` with a pipe nobody reads and waits (bounded) until its read transaction shows in the
    /// reader table; it stays there, blocked, until the caller ends it.
    static func blockedReader(directory: String, environment: LMDBEnvironment) throws -> (pid: Int32, process: Process, pipe: Pipe) {
        let binary = try #require(CircuitoBinary.path, "the circuito executable was not found next to the test bundle")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: binary)
        child.arguments = ["export", "--data", directory]
        let unread = Pipe()
        child.standardOutput = unread
        child.standardError = FileHandle.nullDevice
        child.standardInput = FileHandle.nullDevice
        try child.run()
        let pid = child.processIdentifier
        var holding = false
        for _ in 0..<600 where !holding {
            holding = environment.readerProcessIDs().contains(pid)
            if !holding { usleep(50_000) }
        }
        #expect(holding, "the export never showed up as a reader")
        // It maps the ledger with the random-read hint (no read-ahead: Specs/ledger.md 10.4), "rr" in its flags.
        // Read to the end: /proc files report a size of 0.
        let mappings = FileHandle(forReadingAtPath: "/proc/\(pid)/smaps").map { String(decoding: $0.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        let dataMapping = mappings.components(separatedBy: "\n").drop { !$0.hasSuffix(directory + "/data.mdb") }
        let flags = dataMapping.first { $0.hasPrefix("VmFlags:") }
        #expect(flags?.split(separator: " ").contains("rr") == true, "the export's map of data.mdb: \(flags ?? "not found")")
        return (pid, child, unread)
    }
}
