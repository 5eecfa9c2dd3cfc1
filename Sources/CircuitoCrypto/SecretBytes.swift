import CSodium
import Glibc
import Synchronization

/// Secret bytes (a signing key) in memory of their own, wiped when released: not a Swift array, which is copied
/// on write, moved when it grows and freed without being cleared, so that copies of a key would stay in freed heap
/// memory, in swap and in core dumps.
///
/// `.guarded` memory is libsodium's guarded allocation (`sodium_malloc`): pages of its own between inaccessible
/// guard pages, locked in memory (`mlock`, so never written to swap) and wiped by `sodium_free`. Locking is best
/// effort: a process over its `RLIMIT_MEMLOCK` (`ulimit -l`) keeps the key unlocked and goes on, and
/// `isLockedInMemory` tells. When the allocation itself fails (a process out of memory mappings: each guarded
/// allocation takes four), the bytes go in `.ordinary` memory instead.
/// `.ordinary` memory is the heap, wiped (`sodium_memzero`) before it is freed, never locked: for keys derived
/// from published seeds (the demo's, the benchmark's, the specification's vectors), which protect nothing and of
/// which a run makes hundreds of thousands, more than guarded allocations can be had.
///
/// The bytes are written once, at creation, and only read after that (`withUnsafeBytes`), so the object can be
/// shared between threads.
public final class SecretBytes: @unchecked Sendable {
    public enum Memory: Sendable {
        case guarded
        case ordinary
    }

    public let count: Int
    /// Whether the bytes are in guarded memory (which may still have failed to lock).
    public let isGuarded: Bool
    /// Whether the pages holding the bytes are locked in memory (kept out of swap).
    public let isLockedInMemory: Bool
    @usableFromInline let start: UnsafeMutableRawPointer
    /// Called with the bytes once they are wiped, just before they are freed: a test's view of a release.
    private let releaseObserver: (@Sendable (UnsafeRawBufferPointer) -> Void)?

    /// `count` bytes in `memory`, filled by `initialize` (which is given them zeroed, and should leave no copy of
    /// them elsewhere).
    public convenience init(count: Int, memory: Memory, initialize: (UnsafeMutableRawBufferPointer) -> Void) {
        self.init(count: count, memory: memory, releaseObserver: nil, initialize: initialize)
    }

    init(
        count: Int, memory: Memory, releaseObserver: (@Sendable (UnsafeRawBufferPointer) -> Void)?,
        initialize: (UnsafeMutableRawBufferPointer) -> Void
    ) {
        precondition(count > 0, "secret bytes are not empty")
        ensureSodium()
        var guardedStart: UnsafeMutableRawPointer?
        if memory == .guarded { guardedStart = sodium_malloc(count) }
        if let guardedStart {
            start = guardedStart
            isGuarded = true
            // sodium_malloc locked the pages already when it could, and does not say whether it could: asking again
            // for the same pages does nothing more when they are locked, and fails the same way when they are not.
            isLockedInMemory = sodium_mlock(guardedStart, count) == 0
            if !isLockedInMemory { Self.recordLockFailure(errno) }
        } else {
            start = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
            isGuarded = false
            isLockedInMemory = false
        }
        self.count = count
        self.releaseObserver = releaseObserver
        // sodium_malloc fills its allocations with 0xdb, to show reads of memory never written: the caller gets zeros.
        start.initializeMemory(as: UInt8.self, repeating: 0, count: count)
        initialize(UnsafeMutableRawBufferPointer(start: start, count: count))
    }

    /// Copies `bytes` in; the caller wipes its own copy where it owns it (`SecretBytes.wipe`).
    public convenience init(copying bytes: [UInt8], memory: Memory) {
        self.init(count: bytes.count, memory: memory) { destination in
            bytes.withUnsafeBytes { source in destination.copyMemory(from: source) }
        }
    }

    /// The bytes in place, for the length of `body`; a copy made from them there is the caller's to wipe.
    @inlinable
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// Zeroes the bytes in place. Only at release (and in tests): the bytes are immutable otherwise, which is what
    /// makes sharing them between threads safe.
    func wipe() {
        sodium_memzero(start, count)
    }

    deinit {
        wipe()
        releaseObserver?(UnsafeRawBufferPointer(start: start, count: count))
        if isGuarded {
            // sodium_free wipes and unlocks again, then unmaps the pages with their guards.
            sodium_free(start)
        } else {
            start.deallocate()
        }
    }

    /// The error of the first guarded allocation whose pages could not be locked in this process (nil: none so far):
    /// what a long-running process (`serve`) reports once, where a command that ends at once stays quiet.
    public static var firstLockFailure: Int32? { lockFailure.withLock { $0 } }
    private static let lockFailure = Mutex<Int32?>(nil)

    private static func recordLockFailure(_ error: Int32) {
        lockFailure.withLock { first in if first == nil { first = error } }
    }

    /// Zeroes an array the caller owns (a key read from a file, a plaintext opened), where the compiler may not
    /// drop the writes as dead stores. An array whose storage is shared is copied first by the write, and the
    /// other holders' bytes stay: wipe arrays that are the only holders of their bytes.
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress { sodium_memzero(base, buffer.count) }
        }
    }
}
