import Testing

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
