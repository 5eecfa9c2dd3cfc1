import CircuitoCore
import CircuitoCrypto
@testable import CircuitoStorage
import Foundation
import Glibc
import Testing

@Suite("LMDB: readers of dead processes", .serialized)
struct StaleReaderTests {
    @Test("a reader killed inside its transaction is cleared: by the check itself, and by the writer's next append")
    func killedReaderIsCleared() throws {
        let fixture = try CircuitFixture()
        let ledger = try Ledger.open(directory: fixture.directory)
        // Enough records that `circuito export` fills a pipe nobody reads and blocks inside its read transaction.
        let registrations = try (0..<300).map { _ in try fixture.registration().verified() }
        for result in try ledger.append(registrations) { _ = try result.get() }

        let binary = try #require(CircuitoBinary.path, "the circuito executable was not found next to the test bundle")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: binary)
        child.arguments = ["export", "--data", fixture.directory]
        let unread = Pipe()
        child.standardOutput = unread
        child.standardError = FileHandle.nullDevice
        child.standardInput = FileHandle.nullDevice
        try child.run()
        let pid = child.processIdentifier

        // Wait (bounded) until the child's read transaction shows in the reader table.
        var holding = false
        for _ in 0..<600 where !holding {
            holding = ledger.environment.readerProcessIDs().contains(pid)
            if !holding { usleep(50_000) }
        }
        #expect(holding, "the export never showed up as a reader")
        kill(pid, SIGKILL)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)
        // Dead, but its slot still holds a snapshot until someone checks.
        #expect(ledger.environment.readerProcessIDs().contains(pid))
        #expect(try ledger.environment.clearStaleReaders() == 1)
        #expect(ledger.environment.readerProcessIDs().contains(pid) == false)
        #expect(try ledger.environment.clearStaleReaders() == 0)

        // The writer's own check: a second killed reader is cleared by the next append.
        let second = Process()
        second.executableURL = URL(fileURLWithPath: binary)
        second.arguments = ["export", "--data", fixture.directory]
        let secondUnread = Pipe()
        second.standardOutput = secondUnread
        second.standardError = FileHandle.nullDevice
        second.standardInput = FileHandle.nullDevice
        try second.run()
        holding = false
        for _ in 0..<600 where !holding {
            holding = ledger.environment.readerProcessIDs().contains(second.processIdentifier)
            if !holding { usleep(50_000) }
        }
        #expect(holding)
        kill(second.processIdentifier, SIGKILL)
        second.waitUntilExit()
        #expect(ledger.environment.readerProcessIDs().contains(second.processIdentifier))
        for result in try ledger.append([try fixture.registration().verified()]) { _ = try result.get() }
        #expect(ledger.environment.readerProcessIDs().contains(second.processIdentifier) == false)
        withExtendedLifetime((unread, secondUnread)) {}
    }
}
