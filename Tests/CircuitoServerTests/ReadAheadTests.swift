import CircuitoCore
@testable import CircuitoServer
@testable import CircuitoStorage
import Testing

@Suite("LMDB: read-ahead", .timeLimit(.minutes(5)))
struct ReadAheadTests {
    @Test("the server's writer opens its ledger without read-ahead; a reader opened as verify and export do keeps it")
    func serverOpensWithoutReadAhead() async throws {
        let fixture = try CircuitFixture()
        do {
            let writer = try LedgerWriter.start(directory: fixture.directory, limits: ServerLimits()) { _ in }
            #expect(writer.reader.environment.readsAhead == false)
            // The server still reads and writes through it.
            #expect(try writer.reader.size() > 0)
            await writer.stop()
            // LMDB allows one environment per file and process: the writer's is closed before another opens.
            #expect(writer.reader.close())
        }
        let reader = try LedgerReader.open(directory: fixture.directory)
        #expect(reader.environment.readsAhead)
    }
}
