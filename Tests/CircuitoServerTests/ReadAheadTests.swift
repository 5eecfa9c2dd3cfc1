import CircuitoCore
@testable import CircuitoServer
@testable import CircuitoStorage
import Testing

@Suite("LMDB: read-ahead", .timeLimit(.minutes(5)))
struct ReadAheadTests {
    @Test("the server's writer opens its ledger without read-ahead; a reader opened with LedgerReader.open keeps it")
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

    /// Under a memory limit a replay with read-ahead, on its ledger or on its scratch environment, spent its time
    /// reading pages it then lost (`LedgerReplay.openLedger`): both are opened without it.
    @Test("verify and rebuild open the ledger and their scratch environment without read-ahead")
    func replayOpensWithoutReadAhead() throws {
        let fixture = try CircuitFixture()
        let reader = try LedgerReplay.openLedger(directory: fixture.directory)
        #expect(reader.environment.readsAhead == false)
        for compareProjections in [false, true] {
            var scratchReadsAhead: Bool?
            let report = try LedgerReplay.run(
                reader, compareProjections: compareProjections, signatureChecks: .everyEvent, scratchParent: LedgerReplay.temporaryDirectory(),
                chunkRecordCount: LedgerReplay.chunkRecordCount, scratchOpened: { scratchReadsAhead = $0.readsAhead }, progress: { _, _ in })
            #expect(scratchReadsAhead == false)
            // The replay still reads and checks the whole ledger through both.
            #expect(report.recordCount == (try reader.size()))
        }
    }
}
