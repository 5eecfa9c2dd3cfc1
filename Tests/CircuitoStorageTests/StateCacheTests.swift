import CircuitoCore
@testable import CircuitoStorage
import Foundation
import Testing

@Suite("Parsed state values kept within a transaction")
struct StateCacheTests {
    @Test("a caching state answers exactly what parsing the stored bytes answers, through puts, deletes and the bound")
    func cachingMatchesParsing() throws {
        try Self.withEnvironment { environment in
            try environment.write { (transaction) throws(LedgerError) in
                let cached = TransactionLedgerState(transaction: transaction, cachingParsedValues: true)
                let plain = TransactionLedgerState(transaction: transaction)
                func same(_ key: String) throws(LedgerError) {
                    let fromCache = try cached.json(.actors, key)
                    let fromBytes = try plain.json(.actors, key)
                    #expect(fromCache == fromBytes, "\(key)")
                }
                // Missing, then put: the remembered absence is forgotten.
                try same("a")
                #expect(try cached.json(.actors, "a") == nil)
                try cached.apply([.put(.actors, key: Array("a".utf8), value: Array(#"{"n":1}"#.utf8))])
                #expect(try cached.json(.actors, "a") == ["n": 1])
                // Changed, then deleted.
                try cached.apply([.put(.actors, key: Array("a".utf8), value: Array(#"{"n":2}"#.utf8))])
                #expect(try cached.json(.actors, "a") == ["n": 2])
                try cached.apply([.delete(.actors, key: Array("a".utf8))])
                #expect(try cached.json(.actors, "a") == nil)
                // The same key in another table is another value.
                try cached.apply([.put(.merchants, key: Array("a".utf8), value: Array(#"{"m":true}"#.utf8))])
                #expect(try cached.json(.merchants, "a") == ["m": true])
                #expect(try cached.json(.actors, "a") == nil)
                // Past the bound: everything still answers correctly.
                for index in 0..<20_000 {
                    try cached.apply([.put(.actors, key: Array("k\(index)".utf8), value: Array(#"{"i":\#(index)}"#.utf8))])
                    _ = try cached.json(.actors, "k\(index)")
                }
                for index in stride(from: 0, to: 20_000, by: 997) { try same("k\(index)") }
                // Damage is reported as damage either way.
                try cached.apply([.put(.actors, key: Array("bad".utf8), value: Array("{".utf8))])
                #expect(throws: LedgerError.self) { try cached.json(.actors, "bad") }
            }
        }
    }

    @Test("decoded actor records follow puts and deletes, within a transaction and across transactions that share a cache")
    func decodedActorsFollowChanges() throws {
        try Self.withEnvironment { environment in
            func record(suspended: Bool, key: String = "z6MkA") -> ActorRecord {
                ActorRecord(id: "shop", role: .merchant, name: "Shop", organisation: nil, keys: [key: .active], suspended: suspended, registeredAt: 3)
            }
            func put(_ actor: ActorRecord) -> StateChange {
                .put(.actors, key: Array(actor.id.utf8), value: CanonicalJSON.encode(actor.json))
            }
            let shared = ParsedValueCache()
            try environment.write { (transaction) throws(LedgerError) in
                let cached = TransactionLedgerState(transaction: transaction, parsedValues: shared, keepingQueryOnlyTables: true)
                let plain = TransactionLedgerState(transaction: transaction)
                #expect(try cached.actor("shop") == nil)
                try cached.apply([put(record(suspended: false))])
                #expect(try cached.actor("shop") == record(suspended: false))
                // Read twice (the second from the cache), then changed: the change is what is read.
                #expect(try cached.actor("shop") == record(suspended: false))
                try cached.apply([put(record(suspended: true))])
                #expect(try cached.actor("shop") == record(suspended: true))
                #expect(try cached.actor("shop") == plain.actor("shop"))
            }
            try environment.write { (transaction) throws(LedgerError) in
                // A later transaction of the same replay answers from the shared cache what the store holds.
                let cached = TransactionLedgerState(transaction: transaction, parsedValues: shared, keepingQueryOnlyTables: true)
                #expect(try cached.actor("shop") == record(suspended: true))
                try cached.apply([put(record(suspended: true, key: "z6MkB"))])
                #expect(try cached.actor("shop")?.keys == ["z6MkB": .active])
                try cached.apply([.delete(.actors, key: Array("shop".utf8))])
                #expect(try cached.actor("shop") == nil)
            }
            // An event's own pending change to an actor is what its rule reads, before the store's.
            try environment.write { (transaction) throws(LedgerError) in
                let cached = TransactionLedgerState(transaction: transaction, parsedValues: shared, keepingQueryOnlyTables: true)
                try cached.apply([put(record(suspended: false))])
                #expect(try cached.actor("shop") == record(suspended: false))
            }
        }
    }

    @Test("a replay state that only serves the rules (verify's) writes no query-only table and every other one")
    func queryOnlyTablesLeftOut() throws {
        #expect(StateTable.queryOnly.map(\.name) == ["account_history", "catalogue_index", "case_history"])
        let key = Array("beneficiary:b1\u{0}".utf8) + StateKey.number(7)
        let value = Array("{}".utf8)
        for keeping in [true, false] {
            try Self.withEnvironment { environment in
                try environment.write { (transaction) throws(LedgerError) in
                    let state = TransactionLedgerState(transaction: transaction, parsedValues: ParsedValueCache(), keepingQueryOnlyTables: keeping)
                    let plain = TransactionLedgerState(transaction: transaction)
                    try state.apply(StateTable.all.map { .put($0, key: key, value: value) })
                    for table in StateTable.all {
                        let kept = keeping || !table.isQueryOnly
                        #expect(try plain.value(table, key) == (kept ? value : nil), "\(table), keeping query-only tables: \(keeping)")
                    }
                    // A delete is left out the same way: what a plain state put there stays.
                    for table in StateTable.queryOnly { try transaction.put(table, key, value) }
                    try state.apply(StateTable.all.map { .delete($0, key: key) })
                    for table in StateTable.all {
                        let kept = keeping || !table.isQueryOnly
                        #expect(try plain.value(table, key) == (kept ? nil : value), "\(table), keeping query-only tables: \(keeping)")
                    }
                }
            }
        }
    }

    /// A fresh LMDB environment with every ledger database, removed afterwards.
    static func withEnvironment(_ body: (LMDBEnvironment) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("circuito-cache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try body(try LMDBEnvironment(path: directory, databaseNames: LedgerDatabase.all, create: true))
    }
}
