import Dispatch

/// Maps `items` with `transform` on all cores, keeping order. For CPU-bound work such as signature checks.
public enum Parallel {
    public static func map<Item: Sendable, Output: Sendable>(
        _ items: [Item], _ transform: @Sendable (Item) -> Output
    ) -> [Output] {
        guard items.count > 1 else { return items.map(transform) }
        let results = ResultSlots<Output>(count: items.count)
        // A few chunks per core, so one slow chunk does not hold back the rest.
        let chunkCount = min(items.count, max(1, ProcessInfoCores.count * 4))
        let itemsPerChunk = (items.count + chunkCount - 1) / chunkCount
        DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
            let start = chunk * itemsPerChunk
            let end = min(start + itemsPerChunk, items.count)
            guard start < end else { return }
            for index in start..<end { results.set(index, transform(items[index])) }
        }
        return results.takeValues()
    }
}

/// A value computed on a global queue, waited for once it is needed (a one-shot future for threads, not tasks).
final class Pending<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `value` is written once before `done` is signalled and read only after waiting for it.
    private var value: Value?
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping @Sendable () -> Value) {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            value = work()
            done.signal()
        }
    }

    /// Blocks until the value is there. Call it once.
    func wait() -> Value {
        done.wait()
        guard let value else { preconditionFailure("the work stores its value before signalling") }
        return value
    }
}

/// Slots written once each by different threads (each index by exactly one), read after all are done.
///
/// The slots live in memory allocated once: threads write through a fixed pointer. (An `Array` property would not
/// do: `withUnsafeMutableBufferPointer` moves the array's storage out of the property while its closure runs, so
/// two threads inside it at once race on the property itself.)
private final class ResultSlots<Value>: @unchecked Sendable {
    // @unchecked: concurrentPerform gives each index to one thread, and takeValues() runs after it returns.
    private let slots: UnsafeMutableBufferPointer<Value?>

    init(count: Int) {
        slots = UnsafeMutableBufferPointer<Value?>.allocate(capacity: count)
        slots.initialize(repeating: nil)
    }

    deinit {
        slots.deinitialize()
        slots.deallocate()
    }

    func set(_ index: Int, _ value: Value) {
        precondition(index >= 0 && index < slots.count, "slot \(index) of \(slots.count)")
        slots[index] = value
    }

    /// The values, moved out of their slots (which are left empty): a copy would retain every reference a value
    /// holds, and freeing the slots releases each again (in a profile of `verify`, whose values are parsed records,
    /// moving took reference counting from 4.2 to 3.7 % of its samples).
    func takeValues() -> [Value] {
        Array(unsafeUninitializedCapacity: slots.count) { buffer, initializedCount in
            for index in slots.indices {
                guard let value = slots[index].take() else { preconditionFailure("every slot is filled by concurrentPerform") }
                buffer.initializeElement(at: index, to: value)
                initializedCount = index + 1
            }
        }
    }
}

enum ProcessInfoCores {
    static let count: Int = {
        let online = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return online > 0 ? online : 1
    }()
}

#if canImport(Glibc)
import Glibc
#endif
