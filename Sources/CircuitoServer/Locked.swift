import Foundation
import Synchronization

/// A value guarded by a lock, shared between threads and tasks. Critical sections are short and never await.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked: every access to `value` goes through `lock`.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

extension Atomic where Value == Int {
    /// Adds `delta` if `admits` holds for the count it would add to; false, adding nothing, otherwise. The server-wide
    /// byte bounds take their reservations this way. Bounded by the other threads' changes in between: each turn
    /// either adds or sees a newer count.
    func add(_ delta: Int, ifAdmitted admits: (_ current: Int) -> Bool) -> Bool {
        var current = load(ordering: .relaxed)
        while admits(current) {
            let (exchanged, original) = compareExchange(expected: current, desired: current + delta, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}
