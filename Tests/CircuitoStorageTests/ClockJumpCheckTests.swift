import CircuitoCore
@testable import CircuitoStorage
import Testing

@Suite("Clock: a wall clock set ahead while the writer runs")
struct ClockJumpCheckTests {
    static let start: Int64 = 1_795_000_000_000
    static let year2099: Int64 = 4_070_908_800_000

    private static func refusal(_ check: inout ClockJumpCheck, wall: Int64) -> String? {
        do throws(LedgerError) {
            try check.check(wallMilliseconds: wall)
            return nil
        } catch {
            return error.code.name
        }
    }

    @Test("the wall clock may run ahead of the elapsed time by up to ten minutes and a thousandth of it; one millisecond more is clock_jumped, until the clock is set back")
    func boundsOfTheStepAhead() {
        let elapsed = ClockBox(5_000)
        var check = ClockJumpCheck(elapsedMilliseconds: { elapsed.now() })
        #expect(Self.refusal(&check, wall: Self.start) == nil, "a first reading has nothing to compare with")
        // A host suspended for eight hours: CLOCK_BOOTTIME counted the sleep too.
        elapsed.set(5_000 + 8 * 3_600_000)
        #expect(Self.refusal(&check, wall: Self.start + 8 * 3_600_000) == nil)
        let anchor = Self.start + 8 * 3_600_000
        // Thirty idle days, the clock slewed ahead by NTP meanwhile: within a thousandth plus ten minutes.
        let thirtyDays: Int64 = 30 * 86_400_000
        elapsed.set(5_000 + 8 * 3_600_000 + thirtyDays)
        let most = anchor + thirtyDays + thirtyDays / 1000 + ClockJumpCheck.maximumJumpAheadMilliseconds
        #expect(Self.refusal(&check, wall: most + 1) == "clock_jumped")
        #expect(Self.refusal(&check, wall: most) == nil)
        // From there, one second later, the clock reads 2099: refused, and again, until it is set back.
        elapsed.set(5_000 + 8 * 3_600_000 + thirtyDays + 1_000)
        #expect(Self.refusal(&check, wall: Self.year2099) == "clock_jumped")
        elapsed.set(5_000 + 8 * 3_600_000 + thirtyDays + 2_000)
        #expect(Self.refusal(&check, wall: Self.year2099 + 1_000) == "clock_jumped")
        #expect(Self.refusal(&check, wall: most + 2_000) == nil)
        // Set back (a step behind is clock_behind's to judge, against the last record), then ahead by the same.
        #expect(Self.refusal(&check, wall: most - 3_600_000) == nil)
        #expect(Self.refusal(&check, wall: most + 2_000) == "clock_jumped")
    }

    @Test("an append after the clock was set ahead to 2099 writes nothing (clock_jumped); once it is set back the records carry the real time, not 2099")
    func ledgerRefusesAJumpAhead() throws {
        let temporary = TemporaryLedger()
        let wall = ClockBox(Self.start)
        let elapsed = ClockBox(0)
        let ledger = try temporary.create(clock: { wall.now() })
        ledger.clockJumpCheck = ClockJumpCheck(elapsedMilliseconds: { elapsed.now() })
        _ = try ledger.append([try temporary.registration("on-time")]).map { try $0.get() }
        elapsed.set(1_000)
        wall.set(Self.year2099)
        for id in ["ahead", "on-time"] {
            do {
                _ = try ledger.append([try temporary.registration(id)])
                Issue.record("an append in 2099 was answered")
            } catch let error as LedgerError {
                #expect(error.code == .clockJumped, "\(error)")
            }
        }
        #expect(try ledger.reader.size() == 2)
        elapsed.set(2_000)
        wall.set(Self.start + 2_000)
        _ = try ledger.append([try temporary.registration("after")]).map { try $0.get() }
        #expect(try Record(leafBytes: try ledger.reader.leafBytes(sequenceNumber: 2)).recordedAt == "2026-11-18T11:06:42.000Z")
    }

    @Test("the first record dated after a time is found by bisection: the first of those a clock ahead wrote, none when none is later")
    func firstRecordRecordedAfter() throws {
        let temporary = TemporaryLedger()
        let wall = ClockBox(Self.start)
        let ledger = try temporary.create(clock: { wall.now() })
        for (index, time) in [Self.start + 1_000, Self.start + 2_000, Self.year2099, Self.year2099, Self.year2099 + 5].enumerated() {
            wall.set(time)
            _ = try ledger.append([try temporary.registration("shop-\(index)")]).map { try $0.get() }
        }
        let reader = ledger.reader
        #expect(try reader.firstRecord(recordedAfter: Self.start - 1)?.sequenceNumber == 0)
        #expect(try reader.firstRecord(recordedAfter: Self.start)?.sequenceNumber == 1)
        #expect(try reader.firstRecord(recordedAfter: Self.start + 1_500)?.sequenceNumber == 2)
        let ahead = try reader.firstRecord(recordedAfter: Self.start + 86_400_000)
        #expect(ahead?.sequenceNumber == 3)
        #expect(ahead?.recordedAt == "2099-01-01T00:00:00.000Z")
        #expect(try reader.firstRecord(recordedAfter: Self.year2099)?.sequenceNumber == 5)
        #expect(try reader.firstRecord(recordedAfter: Self.year2099 + 5) == nil)
    }
}
