import CircuitoCore
import CircuitoStorage
import Dispatch
import Foundation

/// What one write request asks the writer for.
public enum WriteRequest: Sendable {
    /// One event; refused with `size_mismatch` unless the log has `expectedSize` records when its turn comes.
    case single(VerifiedEvent, expectedSize: UInt64?)
    /// Several events, all or nothing, in order.
    case batch([VerifiedEvent], expectedSize: UInt64?)

    var events: [VerifiedEvent] {
        switch self {
        case .single(let event, _): return [event]
        case .batch(let events, _): return events
        }
    }

    var expectedSize: UInt64? {
        switch self {
        case .single(_, let size), .batch(_, let size): return size
        }
    }
}

/// Why a write request was refused; `index` names the event of a batch that was refused.
public struct WriteRefusal: Error, Sendable {
    public let error: LedgerError
    public let index: Int?
}

/// The single writer: a dedicated thread that owns the `Ledger`, fed by a bounded queue.
///
/// Group commit: the thread takes everything waiting (up to `maximumCommitBatch` events) into one `Ledger.append`,
/// which is one LMDB commit and one signed checkpoint. Batches are all or nothing and `expected_size` is exact, so
/// when a group holds either, the writer first plans it against the committed state with the same rulebook and the
/// same `recorded_at` the append will use (the ledger's clock is pinned for the call): the plan decides which
/// requests go in, and the append then gives the same answers. A group of plain single events goes straight to the
/// append, which answers each event on its own.
public final class LedgerWriter: Sendable {
    private struct Pending: Sendable {
        let request: WriteRequest
        let reply: @Sendable (Result<[Receipt], WriteRefusal>) -> Void
    }

    private struct QueueState {
        var pending: [Pending] = []
        var pendingEvents = 0
        var stopping = false
        var stopped = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let condition = NSCondition()
    private let queueState: Locked<QueueState>
    private let statisticsState = Locked(WriterStatistics())
    private let limits: ServerLimits
    /// The ledger's reader (same environment), for the plan and for every read of the server.
    public let reader: LedgerReader
    /// The checkpoint verifier key of the ledger (`NAME+KEYID+BASE64`).
    public let verifierKey: String

    /// Opens the ledger in `directory` on a new writer thread. `onCommit` runs on that thread after each commit
    /// that appended records, with the new size; it must not block.
    public static func start(
        directory: String, limits: ServerLimits, onCommit: @escaping @Sendable (UInt64) -> Void
    ) throws(LedgerError) -> LedgerWriter {
        // Two handshakes: the thread reports that the ledger is open (or why not); then it waits for the writer
        // object, built here from what it reported, before it takes requests.
        let opened = DispatchSemaphore(value: 0)
        let handedOver = DispatchSemaphore(value: 0)
        let startup = Locked<Result<(LedgerReader, String), LedgerError>?>(nil)
        let clock = PinnedClock()
        let handOver = Locked<LedgerWriter?>(nil)
        let thread = Thread {
            let writer = Self.openAndRun(directory: directory, clock: clock, startup: startup, opened: opened, handedOver: handedOver, handOver: handOver, onCommit: onCommit)
            // The ledger (and its writer lock) is released by now: only then does `stop` return.
            writer?.finishStopping()
        }
        thread.name = "circuito-writer"
        thread.start()
        opened.wait()
        guard let outcome = startup.withLock({ $0 }) else { throw LedgerError(.storage, "the writer thread did not start") }
        let (reader, verifierKey) = try outcome.get()
        let writer = LedgerWriter(reader: reader, verifierKey: verifierKey, limits: limits)
        handOver.withLock { $0 = writer }
        handedOver.signal()
        return writer
    }

    /// The writer thread's life: open the ledger, report, wait for the writer object, run until stopped. Returns
    /// after the ledger is released.
    private static func openAndRun(
        directory: String, clock: PinnedClock, startup: Locked<Result<(LedgerReader, String), LedgerError>?>,
        opened: DispatchSemaphore, handedOver: DispatchSemaphore, handOver: Locked<LedgerWriter?>,
        onCommit: @Sendable (UInt64) -> Void
    ) -> LedgerWriter? {
        let ledger: Ledger
        do throws(LedgerError) {
            ledger = try Ledger.open(directory: directory, options: .server, clock: clock.read)
            clock.lastRecordedAtMilliseconds = try lastRecordedAtMilliseconds(ledger.reader)
            clock.committedSize = ledger.frontier.size
            startup.withLock { $0 = .success((ledger.reader, ledger.verifierKey)) }
        } catch {
            startup.withLock { $0 = .failure(error) }
            opened.signal()
            return nil
        }
        opened.signal()
        handedOver.wait()
        guard let writer = handOver.withLock({ $0 }) else { return nil }
        writer.run(ledger: ledger, clock: clock, onCommit: onCommit)
        return writer
    }

    private init(reader: LedgerReader, verifierKey: String, limits: ServerLimits) {
        self.reader = reader
        self.verifierKey = verifierKey
        self.limits = limits
        self.queueState = Locked(QueueState())
    }

    /// Queues `request` and waits for its receipts (one per event) or its refusal.
    public func submit(_ request: WriteRequest) async -> Result<[Receipt], WriteRefusal> {
        await withCheckedContinuation { continuation in
            let pending = Pending(request: request) { continuation.resume(returning: $0) }
            let refusal: LedgerError? = queueState.withLock { state in
                if state.stopping { return LedgerError(.shuttingDown, "the server is stopping and takes no more writes") }
                let events = request.events.count
                guard state.pending.count < limits.maximumQueuedWrites, state.pendingEvents + events <= limits.maximumQueuedEvents else {
                    return LedgerError(.overloaded, "the writer has \(state.pending.count) requests (\(state.pendingEvents) events) waiting; retry later")
                }
                state.pending.append(pending)
                state.pendingEvents += events
                return nil
            }
            if let refusal {
                continuation.resume(returning: .failure(WriteRefusal(error: refusal, index: nil)))
            } else {
                condition.lock()
                condition.signal()
                condition.unlock()
            }
        }
    }

    /// Refuses new writes, lets the thread commit everything already queued, and returns when it has.
    public func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let alreadyStopped = queueState.withLock { state -> Bool in
                state.stopping = true
                if state.stopped { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if alreadyStopped { continuation.resume() }
            condition.lock()
            condition.signal()
            condition.unlock()
        }
    }

    // MARK: The writer thread

    private func run(ledger: Ledger, clock: PinnedClock, onCommit: @Sendable (UInt64) -> Void) {
        while true {
            guard let group = nextGroup() else { break }
            let groupStart = monotonicNanoseconds()
            let outcomes = commit(group.map(\.request), ledger: ledger, clock: clock)
            if ledger.frontier.size > clock.committedSize {
                clock.committedSize = ledger.frontier.size
                onCommit(ledger.frontier.size)
            }
            let busyNanoseconds = monotonicNanoseconds() - groupStart
            statisticsState.withLock { statistics in
                statistics.groups += 1
                statistics.busyNanoseconds += busyNanoseconds
                statistics.appends = ledger.statistics
            }
            for (pending, outcome) in zip(group, outcomes) { pending.reply(outcome) }
        }
    }

    /// What the writer has done since the server started (`server.info`'s `writer`).
    public var statistics: WriterStatistics { statisticsState.withLock { $0 } }

    private func finishStopping() {
        let waiters = queueState.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopped = true
            defer { state.stopWaiters = [] }
            return state.stopWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits for work; takes requests in arrival order up to the commit bound (at least one). Nil once stopping
    /// and drained.
    private func nextGroup() -> [Pending]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let taken: [Pending]? = queueState.withLock { state in
                if state.pending.isEmpty { return state.stopping ? [] : nil }
                var eventCount = 0
                var count = 0
                for pending in state.pending {
                    let events = pending.request.events.count
                    if count > 0 && eventCount + events > limits.maximumCommitBatch { break }
                    eventCount += events
                    count += 1
                }
                let group = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                state.pendingEvents -= eventCount
                return group
            }
            if let taken { return taken.isEmpty ? nil : taken }
            // Woken by `submit` or `stop` (they signal under the same condition lock), or spuriously: look again.
            condition.wait()
        }
    }

    /// Plans the group, appends what the plan accepts in one commit, and answers every request.
    private func commit(_ requests: [WriteRequest], ledger: Ledger, clock: PinnedClock) -> [Result<[Receipt], WriteRefusal>] {
        let now = max(Ledger.systemClockMilliseconds(), clock.lastRecordedAtMilliseconds)
        let recordedAt = Timestamp.format(millisecondsSince1970: now)
        if let singles = Self.plainSingles(requests) {
            return commitSingles(singles, ledger: ledger, clock: clock, now: now)
        }
        let plan: GroupPlan
        do throws(LedgerError) {
            plan = try reader.withState { (state) throws(LedgerError) in
                try GroupPlan(requests: requests, state: state, size: ledger.frontier.size, recordedAt: recordedAt)
            }
        } catch {
            return requests.map { _ in .failure(WriteRefusal(error: error, index: nil)) }
        }
        guard !plan.appendList.isEmpty else {
            return plan.outcomes.map { outcome in
                if case .refused(let refusal) = outcome { return .failure(refusal) }
                return .failure(WriteRefusal(error: LedgerError(.integrity, "the writer planned an empty commit for an accepted request"), index: nil))
            }
        }
        clock.pin(now)
        defer { clock.unpin() }
        let results: [Result<Receipt, LedgerError>]
        do throws(LedgerError) {
            results = try ledger.append(plan.appendList)
        } catch {
            // An operating error (storage, map full): nothing of the commit was written.
            return requests.map { _ in .failure(WriteRefusal(error: error, index: nil)) }
        }
        if plan.appendsNewRecords { clock.lastRecordedAtMilliseconds = now }
        return plan.outcomes.map { outcome in
            switch outcome {
            case .refused(let refusal):
                return .failure(refusal)
            case .accepted(let range):
                var receipts: [Receipt] = []
                for (offset, result) in results[range].enumerated() {
                    switch result {
                    case .success(let receipt): receipts.append(receipt)
                    case .failure(let error):
                        // The plan and the append run the same rules on the same state and time; a difference
                        // is a broken invariant, reported rather than hidden.
                        return .failure(WriteRefusal(error: LedgerError(.integrity, "the append refused what the plan accepted: \(error)"), index: offset))
                    }
                }
                return .success(receipts)
            }
        }
    }

    /// The events of a group made only of single events without `expected_size`, else nil. Such a group needs no
    /// plan: the append checks each event against the state its predecessors left, which is what a plan computes,
    /// and answers each on its own. The plan (one more pass of the rules) is only for batches and `expected_size`.
    static func plainSingles(_ requests: [WriteRequest]) -> [VerifiedEvent]? {
        var events: [VerifiedEvent] = []
        events.reserveCapacity(requests.count)
        for request in requests {
            guard case .single(let event, expectedSize: nil) = request else { return nil }
            events.append(event)
        }
        return events
    }

    private func commitSingles(_ events: [VerifiedEvent], ledger: Ledger, clock: PinnedClock, now: Int64) -> [Result<[Receipt], WriteRefusal>] {
        clock.pin(now)
        defer { clock.unpin() }
        let results: [Result<Receipt, LedgerError>]
        do throws(LedgerError) {
            results = try ledger.append(events)
        } catch {
            // An operating error (storage, map full): nothing of the commit was written.
            return events.map { _ in .failure(WriteRefusal(error: error, index: nil)) }
        }
        assert(results.count == events.count, "the append answers every event")
        if ledger.frontier.size > clock.committedSize { clock.lastRecordedAtMilliseconds = now }
        return results.map { result in result.map { [$0] }.mapError { WriteRefusal(error: $0, index: nil) } }
    }

    static func lastRecordedAtMilliseconds(_ reader: LedgerReader) throws(LedgerError) -> Int64 {
        let size = try reader.size()
        guard size > 0 else { return 0 }
        let record = try Record(leafBytes: try reader.leafBytes(sequenceNumber: size - 1))
        return Timestamp.millisecondsSince1970(record.recordedAt) ?? 0
    }
}

/// The single writer's work since the server started: the groups of requests it took, the time it spent on them
/// (planning, the rules, the transaction and its commit, up to the answers), and the ledger's own counts of commits,
/// records and time inside LMDB's commit. Over a load they tell whether the writer or the rest of the server is the
/// limit, and how much of the writer's time waits on the disk.
public struct WriterStatistics: Sendable, Hashable {
    public var groups: UInt64 = 0
    public var busyNanoseconds: UInt64 = 0
    public var appends = AppendStatistics()

    public init() {}
}

/// The ledger's clock while the writer appends: pinned to the time the plan used.
private final class PinnedClock: @unchecked Sendable {
    // @unchecked: only the writer thread reads and writes it (the Ledger calls `read` on that thread during append).
    private var pinned: Int64?
    var lastRecordedAtMilliseconds: Int64 = 0
    var committedSize: UInt64 = 0

    func pin(_ milliseconds: Int64) { pinned = milliseconds }
    func unpin() { pinned = nil }

    var read: @Sendable () -> Int64 {
        { [self] in self.pinned ?? Ledger.systemClockMilliseconds() }
    }
}

/// The writer's decision for one group: for each request, refused (with the error) or accepted (the range of its
/// events in the list passed to `append`).
struct GroupPlan {
    enum Outcome {
        case refused(WriteRefusal)
        case accepted(Range<Int>)
    }

    private(set) var outcomes: [Outcome] = []
    private(set) var appendList: [VerifiedEvent] = []
    private(set) var appendsNewRecords = false

    init(requests: [WriteRequest], state: TransactionLedgerState, size: UInt64, recordedAt: String) throws(LedgerError) {
        var overlay = OverlayState(base: state)
        var projectedSize = size
        // Canonical bytes of the events this group appends, by id (a repeat inside the group compares with these).
        var plannedEvents: [String: [UInt8]] = [:]
        for request in requests {
            let events = request.events
            var undo = OverlayState<TransactionLedgerState>.UndoLog()
            var refusal: WriteRefusal?
            var newInRequest: [String] = []
            let sizeBefore = projectedSize
            var allRepeats = true
            for (index, verifiedEvent) in events.enumerated() {
                let event = verifiedEvent.event
                if let earlier = try overlay.sequenceNumber(ofEventID: event.id) {
                    let earlierBytes: [UInt8]
                    if let planned = plannedEvents[event.id] {
                        earlierBytes = planned
                    } else {
                        guard let leafBytes = try state.logLeafBytes(sequenceNumber: earlier) else {
                            throw LedgerError(.integrity, "the id index names seq \(earlier), which is not in the log")
                        }
                        earlierBytes = try Record(leafBytes: leafBytes).signedEvent.event.canonicalBytes
                    }
                    guard earlierBytes == event.canonicalBytes else {
                        refusal = WriteRefusal(error: LedgerError(.idConflict, "event id \"\(event.id)\" is already recorded at seq \(earlier) with other content"), index: request.isBatch ? index : nil)
                        break
                    }
                    continue
                }
                allRepeats = false
                if let expected = request.expectedSize, expected != sizeBefore {
                    refusal = WriteRefusal(error: LedgerError(.sizeMismatch, "expected_size is \(expected) but the log holds \(sizeBefore) records"), index: nil)
                    break
                }
                do throws(LedgerError) {
                    let changes = try Rulebook.check(verifiedEvent, at: LogPosition(sequenceNumber: projectedSize, recordedAt: recordedAt), state: overlay)
                    overlay.apply(changes, recordingInto: &undo)
                    projectedSize += 1
                    plannedEvents[event.id] = event.canonicalBytes
                    newInRequest.append(event.id)
                } catch {
                    refusal = WriteRefusal(error: error, index: request.isBatch ? index : nil)
                    break
                }
            }
            if let refusal {
                // All or nothing: take back what the request's earlier events did to the plan.
                overlay.undo(undo)
                projectedSize = sizeBefore
                for id in newInRequest { plannedEvents[id] = nil }
                outcomes.append(.refused(refusal))
                continue
            }
            if !allRepeats { appendsNewRecords = true }
            let start = appendList.count
            appendList += events
            outcomes.append(.accepted(start..<appendList.count))
        }
    }
}

extension WriteRequest {
    var isBatch: Bool {
        if case .batch = self { return true }
        return false
    }
}
