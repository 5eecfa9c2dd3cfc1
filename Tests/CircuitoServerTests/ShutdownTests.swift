import CircuitoCore
@testable import CircuitoServer
import CircuitoStorage
import Foundation
import Testing

@Suite("Server shutdown", .serialized, .timeLimit(.minutes(5)))
struct ShutdownTests {
    /// Rounds of two shutdowns at once: the second caller returned early in every round before the fix.
    static let concurrentShutdownRounds = 20

    @Test("two shutdowns at once (a stop signal and a storage failure in `serve`): each returns only once the ledger is closed")
    func concurrentShutdownsBothWaitForTheClose() async throws {
        let fixture = try CircuitFixture()
        let opened = Locked<[Bool]>([])
        for _ in 0..<Self.concurrentShutdownRounds {
            let server = try await fixture.startServer()
            // A connection, so that the accept loop ends a moment before the shutdown that runs it has closed the ledger.
            let client = try server.client()
            _ = try client.result("server.info")
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        await server.shutdown()
                        // What shutdown promises its caller: this process may open the ledger again. One open at a
                        // time (LMDB allows one environment per file and process).
                        opened.withLock { results in
                            let reader = try? LedgerReader.open(directory: fixture.directory)
                            results.append(reader != nil)
                            reader?.close()
                        }
                    }
                }
            }
            withExtendedLifetime(client) {}
        }
        let results = opened.withLock { $0 }
        #expect(results.count == 2 * Self.concurrentShutdownRounds)
        #expect(results.allSatisfy { $0 }, "\(results.filter { !$0 }.count) of \(results.count) shutdowns returned before the ledger was closed")
    }
}
