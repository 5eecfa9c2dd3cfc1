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

    /// The fixture's ledger opened for writing, with enough records that `circuito export` fills a pipe nobody
    /// reads and blocks inside its read transaction.
    static func ledgerForAnExportToBlockOn(_ fixture: CircuitFixture) throws -> Ledger {
        let ledger = try Ledger.open(directory: fixture.directory)
        let registrations = try (0..<300).map { _ in try fixture.registration().verified() }
        for result in try ledger.append(registrations) { _ = try result.get() }
        return ledger
    }

    /// Starts `circuito export` with a pipe nobody reads, waits (bounded) until its read transaction shows in the
    /// reader table, kills it with SIGKILL and returns its pid (and the pipe, kept open until the test ends).
    static func killedReader(directory: String, environment: LMDBEnvironment) throws -> (pid: Int32, pipe: Pipe) {
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
        kill(pid, SIGKILL)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)
        return (pid, unread)
    }
}
