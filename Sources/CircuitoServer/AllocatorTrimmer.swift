import CAllocator
import Dispatch
import Glibc

/// Gives back to the system the memory glibc's allocator keeps after a burst. Freed memory stays in the allocator's
/// arenas for reuse, and only what lies at the top of a heap goes back by itself: after 500 connections that each
/// sent a line of a megabyte and closed, a server held 160 MB of freed memory (RssAnon) for as long as it ran, where
/// `malloc_trim` gave all but 4 MB back. Checked on a timer of its own (a trim takes a moment and holds the arenas'
/// locks, so not on an event loop). What it watches is the memory resident and not in use: the process's anonymous
/// resident memory less what the allocator has handed out. It trims when that is `thresholdBytes` above what it was
/// after the last trim (or at the start: thread stacks and the like count there too), so that an idle server never
/// trims, nor one whose memory is in use, and a busy one at most once per interval.
/// What a trim leaves is not always what a trim cannot give back: bytes that other threads free while it runs (a
/// burst's connections closing) are counted in it, and taken for the level to grow from they stayed resident for
/// good (a server held 58 MB of freed memory after a trim that gave back 8). So a trim that leaves more than
/// `settledSlackBytes` above the level it started from is followed by another at the next check, and so on while
/// each gives back at least that much: one more trim where the memory left cannot go back.
final class AllocatorTrimmer: Sendable {
    /// What it has done since the server started (`server.info`'s `memory`).
    struct Statistics: Sendable, Equatable {
        /// The trims made.
        var trims = 0
        /// Anonymous resident bytes the trims took off, over all of them (measured before and after each).
        var returnedBytes = 0
        /// How long the last trim took.
        var lastTrimMicroseconds = 0
    }

    /// What the checks read and trim: this process's allocator (`process`), or a test's stand-in.
    struct Allocator: Sendable {
        /// Anonymous resident bytes and, of them, those not handed out (`AllocatorTrimmer.residentUnusedBytes`).
        var residentUnusedBytes: @Sendable () -> (resident: Int, unused: Int)?
        /// Gives the free memory back (`malloc_trim`).
        var trim: @Sendable () -> Void

        static let process = Allocator(
            residentUnusedBytes: { AllocatorTrimmer.residentUnusedBytes() }, trim: { _ = circuito_allocator_trim() })
    }

    /// Growth of the resident memory not in use since the last trim (or the start) that makes the next check trim.
    static let thresholdBytes = 32 << 20

    /// What a trim may leave not in use above the level it started from, and how much a following trim must give back
    /// to be followed by one more. Above the few MiB a trim leaves on a quiet server (page remainders, what threads
    /// free meanwhile), well below the threshold.
    static let settledSlackBytes = 8 << 20

    private struct State {
        var statistics = Statistics()
        /// The resident bytes not in use after the last trim, or at the start.
        var baselineBytes: Int
        /// While trims follow one another (the last left more than the slack above where the first started): the
        /// baseline before the first.
        var unsettledFromBytes: Int?
        /// Nil once stopped.
        var timer: (any DispatchSourceTimer)?
    }

    private let state: Locked<State>
    private let allocator: Allocator

    /// Starts the checks of `allocator`, one every `intervalMilliseconds` (at least 100).
    init(intervalMilliseconds: Int, allocator: Allocator = .process) {
        precondition(intervalMilliseconds >= 100, "allocator trim interval \(intervalMilliseconds) ms")
        self.allocator = allocator
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "circuito.allocator-trim", qos: .utility))
        timer.schedule(
            deadline: .now() + .milliseconds(intervalMilliseconds), repeating: .milliseconds(intervalMilliseconds),
            leeway: .milliseconds(intervalMilliseconds / 10))
        state = Locked(State(baselineBytes: allocator.residentUnusedBytes()?.unused ?? 0, timer: timer))
        // The handler holds the trimmer weakly, so that the timer (which holds the handler) does not keep it alive.
        timer.setEventHandler { [weak self] in self?.check() }
        timer.resume()
    }

    /// Stops the checks; a check under way finishes. Idempotent.
    func stop() {
        let timer = state.withLock { state in
            defer { state.timer = nil }
            return state.timer
        }
        timer?.cancel()
    }

    deinit { stop() }

    var statistics: Statistics { state.withLock { $0.statistics } }

    /// Whether resident memory not in use at `currentBytes`, against `baselineBytes` after the last trim, is worth a trim.
    static func shouldTrim(currentBytes: Int, baselineBytes: Int) -> Bool {
        currentBytes - baselineBytes >= thresholdBytes
    }

    /// One check: trims when the memory not in use grew past the threshold, or while the last trim left it unsettled.
    /// Runs on the timer's queue, one at a time.
    func check() {
        guard let before = allocator.residentUnusedBytes() else { return }
        let (baseline, unsettledFrom) = state.withLock { ($0.baselineBytes, $0.unsettledFromBytes) }
        let trims =
            if let unsettledFrom { before.unused > unsettledFrom + Self.settledSlackBytes }
            else { Self.shouldTrim(currentBytes: before.unused, baselineBytes: baseline) }
        guard trims else {
            state.withLock { state in
                state.unsettledFromBytes = nil
                // Memory that went back by itself (the top of a heap) lowers the mark, so that the next growth counts
                // from there.
                if before.unused < state.baselineBytes { state.baselineBytes = before.unused }
            }
            return
        }
        let started = ContinuousClock.now
        allocator.trim()
        let elapsed = ContinuousClock.now - started
        let after = allocator.residentUnusedBytes() ?? before
        let returnedBytes = max(0, before.resident - after.resident)
        let origin = unsettledFrom ?? baseline
        // A first trim that left much is followed by another; a following one only when it gave back much itself,
        // so that memory no trim reaches (thread stacks) costs one trim more, not one per check.
        let unsettled =
            after.unused > origin + Self.settledSlackBytes
            && (unsettledFrom == nil || returnedBytes >= Self.settledSlackBytes)
        state.withLock { state in
            state.baselineBytes = after.unused
            state.unsettledFromBytes = unsettled ? origin : nil
            state.statistics.trims += 1
            state.statistics.returnedBytes += returnedBytes
            state.statistics.lastTrimMicroseconds = Int(elapsed.components.seconds) * 1_000_000
                + Int(elapsed.components.attoseconds / 1_000_000_000_000)
        }
    }

    /// The process's anonymous resident bytes (RssAnon, without the ledger's mapped file pages) and, of them, those the
    /// allocator has not handed out (never below 0). Nil when they cannot be read.
    static func residentUnusedBytes() -> (resident: Int, unused: Int)? {
        guard let memory = ProcessMemory.read(pid: getpid()) else { return nil }
        let resident = Int(memory.anonymousResidentBytes)
        return (resident, max(0, resident - Int(circuito_allocator_in_use_bytes())))
    }
}
