import Testing
import CircuitoCrypto

@testable import CircuitoCore

@Suite("State changes of one event: later reads see earlier writes")
struct StateChangesTests {
    /// The same answers whether the changes are searched in order (few) or through the index (many).
    @Test(arguments: [3, StateChanges.maximumChangesSearchedInOrder, StateChanges.maximumChangesSearchedInOrder + 1, 200])
    func pendingAnswersTheLatestChange(count: Int) {
        var changes = StateChanges()
        for number in 0..<count {
            changes.put(.balances, StateKey.make("account-\(number % 7)"), [UInt8(truncatingIfNeeded: number)])
            changes.put(.lots, StateKey.make("account-\(number % 7)"), [1])
        }
        changes.delete(.lots, StateKey.make("account-1"))
        for account in 0..<7 {
            let latest = (0..<count).last { $0 % 7 == account }
            let expected: [UInt8]?? = latest.map { .some([UInt8(truncatingIfNeeded: $0)]) } ?? nil
            #expect(changes.pending(.balances, StateKey.make("account-\(account)")) == expected)
        }
        #expect(changes.pending(.lots, StateKey.make("account-1")) == .some(nil))
        #expect(changes.pending(.lots, StateKey.make("account-0")) == .some([1]))
        #expect(changes.pending(.cases, StateKey.make("account-0")) == nil)
        #expect(changes.changes.count == 2 * count + 1)
    }
}

@Suite("A rule context's prefix reads: the state before the event with the event's own writes")
struct RuleContextEntriesTests {
    /// Reads under a prefix through a rule context answer what the same changes applied to the base would give, both
    /// when the event wrote nothing under the prefix (the base answers alone) and when it did (merged).
    @Test func entriesEqualTheBaseWithTheEventsChangesApplied() throws {
        var base = MemoryLedgerState()
        base.apply((0..<6).map { number in .put(.lots, key: StateKey.make("ben-1", "\(number)"), value: [UInt8(number)]) })
        base.apply([.put(.lots, key: StateKey.make("ben-2", "0"), value: [9]), .put(.balances, key: StateKey.make("ben-1", "0"), value: [7])])
        let key = Ed25519PrivateKey()
        let event = try Event(
            id: "evt-1", type: "payment.redeemed", actor: "shop", key: key.publicKey.multikey,
            timestamp: "2026-11-22T10:00:00Z", body: [:])
        let signer = ActorRecord(id: "shop", role: .merchant, name: "Shop", organisation: nil, keys: [key.publicKey.multikey: .active], suspended: false, registeredAt: 0)
        let steps: [[StateChange]] = [
            // Another table and another prefix: the base answers alone.
            [.put(.balances, key: StateKey.make("ben-1", "9"), value: [1]), .put(.lots, key: StateKey.make("ben-2", "1"), value: [2])],
            // Under the prefix: a change, a deletion and a new key, merged in key order.
            [.put(.lots, key: StateKey.make("ben-1", "2"), value: [20]), .delete(.lots, key: StateKey.make("ben-1", "0")), .put(.lots, key: StateKey.make("ben-1", "7"), value: [70])],
        ]
        var context = RuleContext(event: event, position: LogPosition(sequenceNumber: 1, recordedAt: "2026-11-22T10:00:00.000Z"), signer: signer, base: base)
        var expected = base
        for step in steps {
            for change in step {
                switch change {
                case .put(let table, let key, let value): context.changes.put(table, key, value)
                case .delete(let table, let key): context.changes.delete(table, key)
                }
            }
            expected.apply(step)
            for limit in [1, 3, 6, 10] {
                for prefix in [StateKey.prefix("ben-1"), StateKey.prefix("ben-2"), []] {
                    let read = try context.entries(.lots, prefix: prefix, limit: limit)
                    let wanted = expected.entries(.lots, prefix: prefix, limit: limit)
                    #expect(read.map(\.key) == wanted.map(\.key) && read.map(\.value) == wanted.map(\.value), "limit \(limit), prefix \(prefix)")
                }
            }
        }
    }

    /// Tables hash and compare by their ordinal, which storage uses as an index: each must be its place in `all`.
    @Test func tableOrdinalsArePlacesInTheList() {
        #expect(StateTable.all.enumerated().allSatisfy { $0.offset == $0.element.ordinal })
        #expect(Set(StateTable.all).count == StateTable.all.count)
        #expect(StateTable.lots != StateTable.spentLots && StateTable.lots == StateTable.all[StateTable.lots.ordinal])
    }
}

@Suite("A rule context's actor reads: the event's own change first, then the base")
struct RuleContextActorTests {
    @Test func actorReadsSeeTheEventsOwnChanges() throws {
        let key = Ed25519PrivateKey()
        let signer = ActorRecord(id: "shop", role: .merchant, name: "Shop", organisation: nil, keys: [key.publicKey.multikey: .active], suspended: false, registeredAt: 0)
        var base = MemoryLedgerState()
        base.apply([.put(.actors, key: Array("shop".utf8), value: CanonicalJSON.encode(signer.json))])
        let event = try Event(
            id: "evt-1", type: "actor.suspended", actor: "shop", key: key.publicKey.multikey, timestamp: "2026-11-22T10:00:00Z", body: [:])
        var context = RuleContext(event: event, position: LogPosition(sequenceNumber: 1, recordedAt: "2026-11-22T10:00:00.000Z"), signer: signer, base: base)
        #expect(try context.actor("shop") == signer)
        #expect(try context.actor("nobody") == nil)
        var suspended = signer
        suspended.suspended = true
        context.changes.put(.actors, StateKey.make("shop"), CanonicalJSON.encode(suspended.json))
        #expect(try context.actor("shop") == suspended)
        context.changes.delete(.actors, StateKey.make("shop"))
        #expect(try context.actor("shop") == nil)
        // The base is unchanged: the event's changes are its own until applied.
        #expect(try base.actor("shop") == signer)
    }
}
