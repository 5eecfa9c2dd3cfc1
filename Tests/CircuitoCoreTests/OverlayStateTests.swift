import Testing

@testable import CircuitoCore

@Suite("Overlay state: changes laid over a base state")
struct OverlayStateTests {
    /// A deterministic run of puts and deletes over a few prefixes, some keys changed several times.
    static func changes(seed: UInt64, count: Int) -> [StateChange] {
        var generator = seed
        func next(_ bound: Int) -> Int {
            generator = generator &* 6364136223846793005 &+ 1442695040888963407
            return Int((generator >> 33) % UInt64(bound))
        }
        return (0..<count).map { _ in
            let table: StateTable = next(3) == 0 ? .balances : .lots
            let key = StateKey.make("owner-\(next(4))", "lot-\(next(12))")
            if next(4) == 0 { return .delete(table, key: key) }
            return .put(table, key: key, value: [UInt8(truncatingIfNeeded: next(256))])
        }
    }

    static func assertSameReads(_ overlay: some LedgerStateReader, _ expected: MemoryLedgerState) throws {
        for table in [StateTable.balances, .lots] {
            for owner in 0..<5 {
                // A whole first part (indexed), a part of one, and a first part with the start of the second.
                let prefixes = [StateKey.prefix("owner-\(owner)"), Array("owner-\(owner)".utf8), StateKey.prefix("owner-\(owner)") + Array("lot-1".utf8)]
                for limit in [1, 3, 100] {
                    for prefix in prefixes {
                        let got = try overlay.entries(table, prefix: prefix, limit: limit)
                        let want = expected.entries(table, prefix: prefix, limit: limit)
                        #expect(got.map(\.key) == want.map(\.key))
                        #expect(got.map(\.value) == want.map(\.value))
                    }
                }
                for lot in 0..<12 {
                    let key = StateKey.make("owner-\(owner)", "lot-\(lot)")
                    #expect(try overlay.value(table, key) == expected.value(table, key))
                }
            }
        }
    }

    @Test("reads through the overlay equal reads of the base with the changes applied; the change set holds each key once", arguments: [1, 2, 3])
    func overlayEqualsApplied(seed: UInt64) throws {
        var base = MemoryLedgerState()
        base.apply(Self.changes(seed: seed + 100, count: 40))
        let run = Self.changes(seed: seed, count: 120)
        var applied = base
        applied.apply(run)
        var overlay = OverlayState(base: base)
        var undo = OverlayState<MemoryLedgerState>.UndoLog()
        overlay.apply(run, recordingInto: &undo)
        try Self.assertSameReads(overlay, applied)
        let distinctKeys = Set(run.map { change -> String in
            switch change {
            case .put(let table, let key, _), .delete(let table, let key): return "\(table) \(key)"
            }
        })
        #expect(overlay.changes.count == distinctKeys.count)
    }

    @Test("parsed values: a changed key answers its new value (or nothing once deleted), others come from the base's json")
    func jsonThroughOverlay() throws {
        /// A base whose `json` answers from values it parsed before, as a replay's cached state does.
        struct CachingBase: LedgerStateReader {
            var state = MemoryLedgerState()
            var parsed: [[UInt8]: JSONValue] = [:]
            func value(_ table: StateTable, _ key: [UInt8]) -> [UInt8]? { state.value(table, key) }
            func entries(_ table: StateTable, prefix: [UInt8], limit: Int) -> [(key: [UInt8], value: [UInt8])] {
                state.entries(table, prefix: prefix, limit: limit)
            }
            func json(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> JSONValue? { parsed[key] }
        }
        var base = CachingBase()
        base.state.apply([
            .put(.merchants, key: StateKey.make("shop"), value: Array(#"{"name":"Shop"}"#.utf8)),
            .put(.merchants, key: StateKey.make("gone"), value: Array(#"{"name":"Gone"}"#.utf8)),
        ])
        base.parsed[StateKey.make("shop")] = ["name": "From the cache"]
        var overlay = OverlayState(base: base)
        var undo = OverlayState<CachingBase>.UndoLog()
        overlay.apply([
            .put(.merchants, key: StateKey.make("new"), value: Array(#"{"name":"New"}"#.utf8)),
            .delete(.merchants, key: StateKey.make("gone")),
        ], recordingInto: &undo)
        #expect(try overlay.json(.merchants, StateKey.make("new")) == ["name": "New"])
        #expect(try overlay.json(.merchants, StateKey.make("gone")) == nil)
        #expect(try overlay.json(.merchants, StateKey.make("shop")) == ["name": "From the cache"])
        overlay.apply([.put(.merchants, key: StateKey.make("bad"), value: Array("{".utf8))], recordingInto: &undo)
        #expect(throws: LedgerError.self) { try overlay.json(.merchants, StateKey.make("bad")) }
    }

    @Test("undo takes back exactly one request's changes, including keys it changed twice and keys it deleted")
    func undoRestores() throws {
        var base = MemoryLedgerState()
        base.apply(Self.changes(seed: 9, count: 30))
        var overlay = OverlayState(base: base)
        let kept = Self.changes(seed: 10, count: 50)
        var keptUndo = OverlayState<MemoryLedgerState>.UndoLog()
        overlay.apply(kept, recordingInto: &keptUndo)
        var expected = base
        expected.apply(kept)
        let countBefore = overlay.changes.count
        var undo = OverlayState<MemoryLedgerState>.UndoLog()
        overlay.apply(Self.changes(seed: 11, count: 80), recordingInto: &undo)
        overlay.undo(undo)
        try Self.assertSameReads(overlay, expected)
        #expect(overlay.changes.count == countBefore)
    }
}
