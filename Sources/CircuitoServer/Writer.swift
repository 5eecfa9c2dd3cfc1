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

/// The single writer: two dedicated threads around one `Ledger`, fed by a bounded queue.
///
/// The **planner** takes the queued requests in arrival order and checks them with the rulebook against a snapshot
/// of the committed state, with the changes of the group being committed and of the requests it planned before laid
/// over it: a batch is all or nothing, `expected_size` is exact, and every record of a group has the group's
/// `recorded_at`. The **committer** owns the ledger: when it is free it takes everything planned so far (at most
/// `maximumCommitBatch` events) and writes it in one LMDB commit with one signed checkpoint, then answers every
/// request of the group. So the rules of group N + 1 run while group N's commit waits for the disk, and no answer,
/// not even a refusal, is sent before the commit it was decided against is durable. If a commit fails (an operating
/// error: storage, map full), its requests get the error and what was planned over it is planned again.
public final class LedgerWriter: Sendable {
    struct Pending: Sendable {
        let request: WriteRequest
        let reply: @Sendable (Result<[Receipt], WriteRefusal>) -> Void
    }

    /// What the submitting tasks and the two threads share, only under `shared.condition`'s lock.
    fileprivate struct SharedState {
        var pending: [Pending] = []
        var pendingEvents = 0
        var stopping = false
        var stopped = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        /// The group the planner handed over and the committer has not taken yet.
        var handedOver: PlannedGroup?
        /// The committer has finished every group it took (its answers may still be on their way).
        var committerIdle = true
        /// The serial of the last group committed.
        var committedSerial: UInt64 = 0
        /// The serial of a group whose commit failed, until the planner has planned again what it planned over it.
        var failedSerial: UInt64?
        /// The tree and the last `recorded_at` of the last commit.
        var committedFrontier: MerkleFrontier
        var committedLastRecordedAtMilliseconds: Int64
        var plannerFinished = false
    }

    fileprivate final class Shared: @unchecked Sendable {
        // @unchecked: `state` is read and written only while `condition` is locked.
        let condition = WriterSignals()
        var state: SharedState

        init(_ state: SharedState) { self.state = state }

        func withLock<Result>(_ body: (inout SharedState) -> Result) -> Result {
            condition.lock()
            defer { condition.unlock() }
            return body(&state)
        }
    }

    private let shared: Shared
    private let statisticsState = Locked(WriterStatistics())
    private let limits: ServerLimits
    /// Whether groups are planned at the last `recorded_at` while the clock reads far behind it (`clock_behind`).
    private let acceptsClockBehind: Bool
    /// Told, on the planner's thread, when writes start being refused for the clock (the error) and when the clock
    /// is taken again (nil); once per change. It must not block.
    private let onClockRefusalChange: @Sendable (LedgerError?) -> Void
    /// The ledger's reader (same environment), for the planner's snapshots and for every read of the server.
    public let reader: LedgerReader
    /// The checkpoint verifier key of the ledger (`NAME+KEYID+BASE64`).
    public let verifierKey: String

    /// Opens the ledger in `directory` on a new committer thread and starts the planner thread. `onCommit` runs on
    /// the committer thread after each commit that appended records, with the new size; it must not block.
    /// `onStorageFailure` runs on it once, after the answers of the failed commit, when a commit left the ledger's
    /// storage failed (`Ledger.storageHasFailed`): every later commit of this process fails too, so its owner
    /// should stop. `onCommitFailureChange` runs on it with the error of a commit that failed otherwise (a full disk,
    /// `map_full`) when the commit before it succeeded (or none was made yet), and with nil at the first commit that
    /// succeeds after such a failure: once per change, however many commits fail meanwhile; it must not block.
    /// `options`: the server's (tests may make the map small). When either thread cannot be started (the process is
    /// at a limit of threads) it throws `thread_start_failed`, having written nothing.
    public static func start(
        directory: String, limits: ServerLimits, options: LMDBEnvironment.Options = .server, acceptsClockBehind: Bool = false,
        onClockRefusalChange: @escaping @Sendable (LedgerError?) -> Void = { _ in },
        onStorageFailure: @escaping @Sendable (LedgerError) -> Void = { _ in },
        onCommitFailureChange: @escaping @Sendable (LedgerError?) -> Void = { _ in }, onCommit: @escaping @Sendable (UInt64) -> Void
    ) throws(LedgerError) -> LedgerWriter {
        try start(
            directory: directory, limits: limits, options: options, acceptsClockBehind: acceptsClockBehind,
            onClockRefusalChange: onClockRefusalChange, threads: .system,
            onStorageFailure: onStorageFailure, onCommitFailureChange: onCommitFailureChange, onCommit: onCommit)
    }

    /// `start`, with the writer's two threads started by `threads`. When one cannot be started the writer does not
    /// start (`thread_start_failed`): without its committer no write is ever answered, without its planner none is
    /// ever planned. Then nothing is written and, once this returns, the ledger and its writer lock are released.
    static func start(
        directory: String, limits: ServerLimits, options: LMDBEnvironment.Options = .server, acceptsClockBehind: Bool = false,
        onClockRefusalChange: @escaping @Sendable (LedgerError?) -> Void = { _ in }, threads: ThreadStarter,
        onStorageFailure: @escaping @Sendable (LedgerError) -> Void = { _ in },
        onCommitFailureChange: @escaping @Sendable (LedgerError?) -> Void = { _ in }, onCommit: @escaping @Sendable (UInt64) -> Void
    ) throws(LedgerError) -> LedgerWriter {
        // Two handshakes: the committer thread reports that the ledger is open (or why not); then it waits for the
        // writer object, built here from what it reported, before it takes groups (none, when the planner did not
        // start: it then returns at once, releasing the ledger, and says so through `committerEnded`).
        let opened = DispatchSemaphore(value: 0)
        let handedOver = DispatchSemaphore(value: 0)
        let committerEnded = DispatchSemaphore(value: 0)
        let startup = Locked<Result<Opened, LedgerError>?>(nil)
        let handOver = Locked<LedgerWriter?>(nil)
        try threads.start(ServerThreadName.committer) {
            let writer = Self.openAndCommit(
                directory: directory, options: options, startup: startup, opened: opened, handedOver: handedOver, handOver: handOver,
                onStorageFailure: onStorageFailure, onCommitFailureChange: onCommitFailureChange, onCommit: onCommit)
            // The ledger (and its writer lock) is released by now: only then does `stop` return.
            writer?.finishStopping()
            committerEnded.signal()
        }
        opened.wait()
        guard let outcome = startup.withLock({ $0 }) else { throw LedgerError(.storage, "the writer thread did not start") }
        let ledgerOpened = try outcome.get()
        let writer = LedgerWriter(opened: ledgerOpened, limits: limits, acceptsClockBehind: acceptsClockBehind, onClockRefusalChange: onClockRefusalChange)
        do throws(LedgerError) {
            // Before the committer is handed the writer: a planner that cannot start leaves it nothing to take.
            try threads.start(ServerThreadName.planner) {
                writer.plan(committedFrontier: ledgerOpened.frontier, lastRecordedAtMilliseconds: ledgerOpened.lastRecordedAtMilliseconds)
            }
        } catch {
            // No writer is handed over: the committer releases the ledger and ends, having written nothing.
            handedOver.signal()
            committerEnded.wait()
            _ = ledgerOpened.reader.close()
            throw error
        }
        handOver.withLock { $0 = writer }
        handedOver.signal()
        return writer
    }

    private struct Opened: Sendable {
        let reader: LedgerReader
        let verifierKey: String
        let frontier: MerkleFrontier
        let lastRecordedAtMilliseconds: Int64
    }

    /// The committer thread's life: open the ledger, report, wait for the writer object, commit until the planner
    /// has finished. Returns after the ledger is released.
    private static func openAndCommit(
        directory: String, options: LMDBEnvironment.Options, startup: Locked<Result<Opened, LedgerError>?>, opened: DispatchSemaphore,
        handedOver: DispatchSemaphore, handOver: Locked<LedgerWriter?>, onStorageFailure: @Sendable (LedgerError) -> Void,
        onCommitFailureChange: @Sendable (LedgerError?) -> Void, onCommit: @Sendable (UInt64) -> Void
    ) -> LedgerWriter? {
        let ledger: Ledger
        do throws(LedgerError) {
            ledger = try Ledger.open(directory: directory, options: options)
            let reported = Opened(reader: ledger.reader, verifierKey: ledger.verifierKey, frontier: ledger.frontier, lastRecordedAtMilliseconds: ledger.lastRecordedAtMilliseconds)
            startup.withLock { $0 = .success(reported) }
        } catch {
            startup.withLock { $0 = .failure(error) }
            opened.signal()
            return nil
        }
        opened.signal()
        handedOver.wait()
        guard let writer = handOver.withLock({ $0 }) else { return nil }
        writer.commit(ledger: ledger, onStorageFailure: onStorageFailure, onCommitFailureChange: onCommitFailureChange, onCommit: onCommit)
        return writer
    }

    private init(opened: Opened, limits: ServerLimits, acceptsClockBehind: Bool, onClockRefusalChange: @escaping @Sendable (LedgerError?) -> Void) {
        self.reader = opened.reader
        self.verifierKey = opened.verifierKey
        self.limits = limits
        self.acceptsClockBehind = acceptsClockBehind
        self.onClockRefusalChange = onClockRefusalChange
        self.shared = Shared(SharedState(committedFrontier: opened.frontier, committedLastRecordedAtMilliseconds: opened.lastRecordedAtMilliseconds))
    }

    /// Queues `request` and waits for its receipts (one per event) or its refusal.
    public func submit(_ request: WriteRequest) async -> Result<[Receipt], WriteRefusal> {
        await withCheckedContinuation { continuation in
            submit(request) { continuation.resume(returning: $0) }
        }
    }

    /// Queues `request`; `reply` is called once with its receipts or its refusal, on the committer's thread (or on
    /// the caller's, for a refusal at the queue), so it must only hand the answer on.
    public func submit(_ request: WriteRequest, reply: @escaping @Sendable (Result<[Receipt], WriteRefusal>) -> Void) {
        let refusal: LedgerError? = shared.withLock { state in
            if state.stopping { return LedgerError(.shuttingDown, "the server is stopping and takes no more writes") }
            let events = request.events.count
            guard state.pending.count < limits.maximumQueuedWrites, state.pendingEvents + events <= limits.maximumQueuedEvents else {
                return LedgerError(.overloaded, "the writer has \(state.pending.count) requests (\(state.pendingEvents) events) waiting; retry later")
            }
            state.pending.append(Pending(request: request, reply: reply))
            state.pendingEvents += events
            shared.condition.wakePlanner()
            return nil
        }
        if let refusal { reply(.failure(WriteRefusal(error: refusal, index: nil))) }
    }

    /// Refuses new writes, lets the threads plan and commit everything already queued, and returns when they have.
    public func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let alreadyStopped = shared.withLock { state -> Bool in
                state.stopping = true
                shared.condition.wakePlanner()
                if state.stopped { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if alreadyStopped { continuation.resume() }
        }
    }

    /// The `recorded_at` of the last commit: the ledger's time when the clock is behind it (Specs/ledger.md 5.3).
    public var lastRecordedAtMilliseconds: Int64 { shared.withLock { $0.committedLastRecordedAtMilliseconds } }

    /// What the writer has done since the server started (`server.info`'s `writer`).
    public var statistics: WriterStatistics { statisticsState.withLock { $0 } }

    private func finishStopping() {
        let waiters = shared.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopped = true
            defer { state.stopWaiters = [] }
            return state.stopWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: The planner thread

    /// Events planned in one step (one snapshot) at most, unless a single request holds more.
    static let maximumEventsPerPlanningStep = 32

    /// What the planner does next, decided under the lock.
    private enum PlannerStep {
        case plan([Pending])
        case finish
    }

    private func plan(committedFrontier: MerkleFrontier, lastRecordedAtMilliseconds: Int64) {
        var planner = GroupPlanner(
            frontier: committedFrontier, lastRecordedAtMilliseconds: lastRecordedAtMilliseconds, acceptsClockBehind: acceptsClockBehind,
            onClockRefusalChange: onClockRefusalChange)
        while true {
            let step = nextPlannerStep(&planner)
            guard case .plan(let requests) = step else { break }
            let start = monotonicNanoseconds()
            planner.plan(requests, reader: reader)
            let elapsed = monotonicNanoseconds() - start
            statisticsState.withLock { $0.planningNanoseconds += elapsed }
        }
    }

    /// Waits until the planner has something to do: plan again after a failed commit, hand what it planned to an
    /// idle committer, plan the requests waiting (as many as fit in the open group), or finish once stopping and
    /// everything taken is committed.
    private func nextPlannerStep(_ planner: inout GroupPlanner) -> PlannerStep {
        shared.condition.lock()
        defer { shared.condition.unlock() }
        while true {
            if let failed = shared.state.failedSerial {
                // The open group was planned over the failed one: its requests go back, first in line, as they came.
                let requeued = planner.commitFailed(serial: failed, committedFrontier: shared.state.committedFrontier, lastRecordedAtMilliseconds: shared.state.committedLastRecordedAtMilliseconds)
                shared.state.pending.insert(contentsOf: requeued, at: 0)
                shared.state.pendingEvents += requeued.reduce(0) { $0 + $1.request.events.count }
                shared.state.failedSerial = nil
                statisticsState.withLock { $0.replannedRequests += UInt64(requeued.count) }
            }
            planner.committed(through: shared.state.committedSerial)
            if shared.state.committerIdle && shared.state.handedOver == nil, let group = planner.handOver() {
                shared.state.handedOver = group
                shared.condition.wakeCommitter()
                continue
            }
            // The next requests that fit in the open group (a request is never larger than a group). A step plans
            // at most `maximumEventsPerPlanningStep` events, or one request, so that a committer that has finished
            // its commit waits at most one short step for the next group.
            let groupRoom = limits.maximumCommitBatch - planner.openEventCount
            if let first = shared.state.pending.first, first.request.events.count <= groupRoom {
                let stepRoom = min(groupRoom, Self.maximumEventsPerPlanningStep)
                var eventCount = 0
                var count = 0
                for pending in shared.state.pending {
                    let events = pending.request.events.count
                    if count > 0 && eventCount + events > stepRoom { break }
                    eventCount += events
                    count += 1
                }
                let taken = Array(shared.state.pending.prefix(count))
                shared.state.pending.removeFirst(count)
                shared.state.pendingEvents -= eventCount
                // The count the queue's bound reads follows the queue, also through requests given back after a
                // failed commit: one that drifted would loosen or tighten the bound for good.
                assert(
                    shared.state.pendingEvents >= 0 && (shared.state.pendingEvents == 0 || !shared.state.pending.isEmpty),
                    "the writer's pendingEvents counts the events of the queued requests")
                return .plan(taken)
            }
            if shared.state.stopping && shared.state.pending.isEmpty && planner.requests.isEmpty
                && shared.state.handedOver == nil && shared.state.committerIdle
            {
                shared.state.plannerFinished = true
                shared.condition.wakeCommitter()
                return .finish
            }
            // Woken by `submit`, `stop` or the committer (all under the same lock), or spuriously.
            shared.condition.waitAsPlanner()
        }
    }

    // MARK: The committer thread

    private func commit(
        ledger: Ledger, onStorageFailure: @Sendable (LedgerError) -> Void, onCommitFailureChange: @Sendable (LedgerError?) -> Void,
        onCommit: @Sendable (UInt64) -> Void
    ) {
        var storageFailureReported = false
        // Whether the last commit made failed (an operating error the next commit may not meet again).
        var lastCommitFailed = false
        while true {
            shared.condition.lock()
            while shared.state.handedOver == nil && !shared.state.plannerFinished { shared.condition.waitAsCommitter() }
            guard let group = shared.state.handedOver else {
                shared.condition.unlock()
                break
            }
            shared.state.handedOver = nil
            shared.state.committerIdle = false
            shared.condition.unlock()

            let groupStart = monotonicNanoseconds()
            var checkpointNote: String?
            var failure: LedgerError?
            if !group.records.isEmpty {
                do throws(LedgerError) {
                    checkpointNote = try ledger.write(group.records, frontierAfter: group.frontierAfter, recordedAtMilliseconds: group.recordedAtMilliseconds)
                } catch {
                    failure = error
                }
            }
            shared.withLock { state in
                if failure == nil {
                    state.committedSerial = group.serial
                    state.committedFrontier = ledger.frontier
                    state.committedLastRecordedAtMilliseconds = ledger.lastRecordedAtMilliseconds
                } else {
                    state.failedSerial = group.serial
                }
                state.committerIdle = true
                shared.condition.wakePlanner()
            }
            if checkpointNote != nil { onCommit(ledger.frontier.size) }
            let answers: [Result<[Receipt], WriteRefusal>]
            if let failure {
                // An operating error (storage, map full): nothing of the commit was written. A retry whose events
                // were all recorded by earlier commits still gets its first receipts: its answer does not depend on
                // this commit, and the error would tell a till that a payment the ledger holds was not made.
                let committedSize = ledger.frontier.size
                answers = group.outcomes.map { outcome in
                    guard Self.repeatsOnly(outcome, below: committedSize) else { return .failure(WriteRefusal(error: failure, index: nil)) }
                    return answer(outcome, group: group, checkpointNote: nil)
                }
            } else {
                answers = group.outcomes.map { answer($0, group: group, checkpointNote: checkpointNote) }
            }
            let busyNanoseconds = monotonicNanoseconds() - groupStart
            statisticsState.withLock { statistics in
                // `groups` counts committed groups (Specs/protocol.md 5.15); the time of a failed one is still busy time.
                if failure == nil { statistics.groups += 1 }
                statistics.busyNanoseconds += busyNanoseconds
                statistics.appends = ledger.statistics
            }
            assert(answers.count == group.requests.count, "every request of a group is answered")
            for (pending, answer) in zip(group.requests, answers) { pending.reply(answer) }
            if !group.records.isEmpty && !ledger.storageHasFailed && lastCommitFailed != (failure != nil) {
                lastCommitFailed = failure != nil
                onCommitFailureChange(failure)
            }
            if let failure, !storageFailureReported, ledger.storageHasFailed {
                storageFailureReported = true
                onStorageFailure(LedgerError(
                    .storage,
                    "\(failure.message): LMDB has marked the ledger's environment failed (MDB_PANIC) and refuses every further transaction in this process; the commits before it are intact"))
            }
        }
    }

    /// Whether `outcome` only repeats events whose records are below `size`, committed before the group it is in.
    private static func repeatsOnly(_ outcome: PlannedGroup.Outcome, below size: UInt64) -> Bool {
        guard case .accepted(let events) = outcome else { return false }
        return events.allSatisfy { event in
            if case .repeated(_, let sequenceNumber) = event { return sequenceNumber < size }
            return false
        }
    }

    /// A request's answer once its group is committed. A repeat's receipt is the first one: its record and the
    /// checkpoint that first covered it are read back (they are committed by now).
    private func answer(_ outcome: PlannedGroup.Outcome, group: PlannedGroup, checkpointNote: String?) -> Result<[Receipt], WriteRefusal> {
        switch outcome {
        case .refused(let refusal):
            return .failure(refusal)
        case .accepted(let events):
            var receipts: [Receipt] = []
            receipts.reserveCapacity(events.count)
            for (index, event) in events.enumerated() {
                switch event {
                case .appended(let eventID, let recordIndex):
                    guard let checkpointNote else {
                        return .failure(WriteRefusal(error: LedgerError(.integrity, "a group with records committed without a checkpoint"), index: nil))
                    }
                    let record = group.records[recordIndex]
                    receipts.append(Receipt(
                        eventID: eventID, sequenceNumber: record.sequenceNumber, recordedAt: record.recordedAt, signature: record.signature,
                        leafHash: record.leafHash, checkpoint: checkpointNote))
                case .repeated(let eventID, let sequenceNumber):
                    do throws(LedgerError) {
                        let leafBytes = try reader.leafBytes(sequenceNumber: sequenceNumber)
                        let stored = try Record(leafBytes: leafBytes)
                        receipts.append(Receipt(
                            eventID: eventID, sequenceNumber: sequenceNumber, recordedAt: stored.recordedAt, signature: stored.signedEvent.signature,
                            leafHash: MerkleHash.leaf(leafBytes),
                            checkpoint: try reader.checkpointCovering(sequenceNumber: sequenceNumber)))
                    } catch {
                        return .failure(WriteRefusal(error: error, index: events.count > 1 ? index : nil))
                    }
                }
            }
            return .success(receipts)
        }
    }
}

/// The single writer's work since the server started: the groups of requests it committed and answered, the
/// committer's time (the transaction, its commit, the answers; also of groups whose commit failed), the planner's time (the rules), and the
/// ledger's own counts of commits, records and time inside LMDB's commit. Over a load they tell whether the writer
/// or the rest of the server is the limit, and how much of the writer's time waits on the disk.
public struct WriterStatistics: Sendable, Hashable {
    public var groups: UInt64 = 0
    public var busyNanoseconds: UInt64 = 0
    public var planningNanoseconds: UInt64 = 0
    /// Requests planned over a group whose commit failed, and so planned again.
    public var replannedRequests: UInt64 = 0
    public var appends = AppendStatistics()

    public init() {}
}

/// A group of requests planned together, handed from the planner to the committer: what to write and how to
/// answer each request.
struct PlannedGroup: Sendable {
    enum Event: Sendable {
        /// A new record: `records[recordIndex]`.
        case appended(eventID: String, recordIndex: Int)
        /// The same event again: answered with its first receipt.
        case repeated(eventID: String, sequenceNumber: UInt64)
    }

    enum Outcome: Sendable {
        case refused(WriteRefusal)
        case accepted([Event])
    }

    let serial: UInt64
    let requests: [LedgerWriter.Pending]
    let outcomes: [Outcome]
    let records: [PlannedRecord]
    let frontierAfter: MerkleFrontier
    let recordedAtMilliseconds: Int64
}

/// The planner's own state (only its thread touches it): the open group it is planning, and the changes of the
/// group the committer is writing, until the committer reports it committed.
struct GroupPlanner {
    /// A group's changes and the canonical bytes of the events it appends, by id (a repeat compares with them).
    struct Layer {
        var changes = StateChangeSet()
        var eventBytes: [String: [UInt8]] = [:]
    }

    private(set) var requests: [LedgerWriter.Pending] = []
    private(set) var outcomes: [PlannedGroup.Outcome] = []
    private var records: [PlannedRecord] = []
    private var open = Layer()
    /// Events of the open group's requests (accepted, repeated or refused): its bound is `maximumCommitBatch`, and
    /// so the records a commit writes.
    private(set) var openEventCount = 0
    /// The open group's `recorded_at`, fixed when its first request is planned.
    private var openRecordedAtMilliseconds: Int64?
    /// The group handed to the committer and not yet reported committed: its serial and changes.
    private var committing: (serial: UInt64, layer: Layer)?
    /// The tree with every record planned so far, and the last `recorded_at` handed over (or committed).
    private var frontier: MerkleFrontier
    private var lastRecordedAtMilliseconds: Int64
    private var nextSerial: UInt64 = 1
    /// Where a group's time comes from; tests may fix it.
    private let clock: @Sendable () -> Int64
    /// `ServerConfiguration.acceptsClockBehind`.
    private let acceptsClockBehind: Bool
    /// Refuses groups while the clock has been set ahead since the last one was planned (`clock_jumped`).
    private var clockJumpCheck: ClockJumpCheck?
    /// `LedgerWriter.onClockRefusalChange`, and the code of the clock refusal it was last told of.
    private let onClockRefusalChange: @Sendable (LedgerError?) -> Void
    private var clockRefusal: LedgerError.Code?

    init(
        frontier: MerkleFrontier, lastRecordedAtMilliseconds: Int64, acceptsClockBehind: Bool = false,
        clock: @escaping @Sendable () -> Int64 = Ledger.systemClockMilliseconds, clockJumpCheck: ClockJumpCheck? = ClockJumpCheck(),
        onClockRefusalChange: @escaping @Sendable (LedgerError?) -> Void = { _ in }
    ) {
        self.frontier = frontier
        self.lastRecordedAtMilliseconds = lastRecordedAtMilliseconds
        self.acceptsClockBehind = acceptsClockBehind
        self.clock = clock
        self.clockJumpCheck = clockJumpCheck
        self.onClockRefusalChange = onClockRefusalChange
        // The first reading, which has nothing to compare with, is the writer's start: a jump before its first
        // commit is seen too. Unless it is one the writer refuses (a dead RTC at boot reads 1970): NTP setting
        // such a clock right is no jump.
        let reading = clock()
        if (try? Timestamp.commitMilliseconds(
            clockMilliseconds: reading, lastRecordedAtMilliseconds: lastRecordedAtMilliseconds, acceptingClockBehind: acceptsClockBehind)) != nil {
            try? self.clockJumpCheck?.check(wallMilliseconds: reading)
        }
    }

    /// The committer has committed every group up to `serial`: the snapshots hold their changes from now on.
    mutating func committed(through serial: UInt64) {
        if let committing, committing.serial <= serial { self.committing = nil }
    }

    /// The commit of group `serial` failed (nothing of it was written): forget it and what was planned over it, and
    /// return the requests planned over it, to be planned again.
    mutating func commitFailed(serial: UInt64, committedFrontier: MerkleFrontier, lastRecordedAtMilliseconds: Int64) -> [LedgerWriter.Pending] {
        precondition(committing?.serial == serial, "only the group being committed can fail")
        let requeued = requests
        committing = nil
        startOpenGroup()
        frontier = committedFrontier
        self.lastRecordedAtMilliseconds = lastRecordedAtMilliseconds
        return requeued
    }

    /// The open group, for the committer, if it holds a request; the planner goes on with an empty one over it.
    mutating func handOver() -> PlannedGroup? {
        guard !requests.isEmpty else { return nil }
        precondition(committing == nil, "the committer takes a group only once it has committed the one before")
        let recordedAt = openRecordedAtMilliseconds ?? lastRecordedAtMilliseconds
        let group = PlannedGroup(
            serial: nextSerial, requests: requests, outcomes: outcomes, records: records, frontierAfter: frontier,
            recordedAtMilliseconds: recordedAt)
        if !records.isEmpty {
            committing = (nextSerial, open)
            lastRecordedAtMilliseconds = recordedAt
        }
        nextSerial += 1
        startOpenGroup()
        return group
    }

    /// An empty open group (its `recorded_at` is fixed when its first request is planned).
    private mutating func startOpenGroup() {
        requests = []
        outcomes = []
        records = []
        open = Layer()
        openEventCount = 0
        openRecordedAtMilliseconds = nil
    }

    /// Plans `requests` into the open group, in order, against a fresh snapshot of the committed state with the
    /// committing group's changes and the open group's laid over it.
    mutating func plan(_ requests: [LedgerWriter.Pending], reader: LedgerReader) {
        var now = openRecordedAtMilliseconds ?? 0
        do throws(LedgerError) {
            if openRecordedAtMilliseconds == nil {
                let reading = clock()
                // A reading refused as out of range or behind is not one a jump is measured from.
                now = try Timestamp.commitMilliseconds(
                    clockMilliseconds: reading, lastRecordedAtMilliseconds: lastRecordedAtMilliseconds, acceptingClockBehind: acceptsClockBehind)
                try clockJumpCheck?.check(wallMilliseconds: reading)
                if clockRefusal != nil {
                    clockRefusal = nil
                    onClockRefusalChange(nil)
                }
            }
        } catch {
            // Only the clock refuses here: said once, not per request, however long it lasts.
            if clockRefusal != error.code {
                clockRefusal = error.code
                onClockRefusalChange(error)
            }
            // Nothing can be recorded at this time; the group stays as it was (it has no recorded_at yet if empty).
            for pending in requests { append(pending, .refused(WriteRefusal(error: error, index: nil)), eventCount: pending.request.events.count) }
            return
        }
        openRecordedAtMilliseconds = now
        let recordedAt = Timestamp.format(millisecondsSince1970: now)
        do throws(LedgerError) {
            try reader.withState { (snapshot) throws(LedgerError) in
                // With nothing being committed the lower layer is empty, and a read passes through it at once.
                let committed = OverlayState(base: snapshot, changes: committing?.layer.changes ?? StateChangeSet())
                var overlay = OverlayState(base: committed, changes: takeOpenChanges())
                plan(requests, overlay: &overlay, snapshot: snapshot, recordedAt: recordedAt)
                open.changes = overlay.changes
            }
        } catch {
            // The snapshot could not be read (an operating error): these requests get the error, after the commit
            // of the group (so that the answers keep their order).
            for pending in requests { append(pending, .refused(WriteRefusal(error: error, index: nil)), eventCount: pending.request.events.count) }
        }
    }

    /// The open group's changes, moved out so that the overlay that takes them owns the only copy.
    private mutating func takeOpenChanges() -> StateChangeSet {
        defer { open.changes = StateChangeSet() }
        return open.changes
    }

    private mutating func append(_ pending: LedgerWriter.Pending, _ outcome: PlannedGroup.Outcome, eventCount: Int) {
        requests.append(pending)
        outcomes.append(outcome)
        openEventCount += eventCount
    }

    /// The snapshot with the committing group's changes, then the open group's.
    private typealias PlanningState = OverlayState<OverlayState<TransactionLedgerState>>

    private mutating func plan(
        _ requests: [LedgerWriter.Pending], overlay: inout PlanningState, snapshot: TransactionLedgerState, recordedAt: String
    ) {
        for pending in requests {
            let request = pending.request
            var undo = PlanningState.UndoLog()
            var planned: [PlannedGroup.Event] = []
            var accepted: [(event: VerifiedEvent, changes: [StateChange])] = []
            var newIDs: [String] = []
            var projectedSize = frontier.size
            var refusal: WriteRefusal?
            for (index, verifiedEvent) in request.events.enumerated() {
                let event = verifiedEvent.event
                do throws(LedgerError) {
                    if let earlier = try overlay.sequenceNumber(ofEventID: event.id) {
                        guard try earlierBytes(of: event.id, sequenceNumber: earlier, snapshot: snapshot) == event.canonicalBytes else {
                            throw LedgerError(.idConflict, "event id \"\(event.id)\" is already recorded at seq \(earlier) with other content")
                        }
                        planned.append(.repeated(eventID: event.id, sequenceNumber: earlier))
                        continue
                    }
                    // `expected_size` is the log's size before the request (the frontier moves once it is accepted).
                    if let expected = request.expectedSize, expected != frontier.size {
                        refusal = WriteRefusal(error: LedgerError(.sizeMismatch, "expected_size is \(expected) but the log holds \(frontier.size) records"), index: nil)
                        break
                    }
                    let changes = try Rulebook.check(verifiedEvent, at: LogPosition(sequenceNumber: projectedSize, recordedAt: recordedAt), state: overlay)
                    overlay.apply(changes, recordingInto: &undo)
                    projectedSize += 1
                    // Within the request, a repeat compares with the events before it.
                    open.eventBytes[event.id] = event.canonicalBytes
                    newIDs.append(event.id)
                    planned.append(.appended(eventID: event.id, recordIndex: records.count + accepted.count))
                    accepted.append((verifiedEvent, changes))
                } catch {
                    refusal = WriteRefusal(error: error, index: request.isBatch ? index : nil)
                    break
                }
            }
            if let refusal {
                // All or nothing: take back what the request's earlier events did to the plan.
                overlay.undo(undo)
                for id in newIDs { open.eventBytes[id] = nil }
                append(pending, .refused(refusal), eventCount: request.events.count)
                continue
            }
            for (event, changes) in accepted {
                records.append(PlannedRecord(event, sequenceNumber: frontier.size, recordedAt: recordedAt, changes: changes, frontier: &frontier))
            }
            assert(frontier.size == projectedSize, "the planned tree holds every accepted event")
            append(pending, .accepted(planned), eventCount: request.events.count)
        }
    }

    /// The canonical bytes of the event recorded at `sequenceNumber` under `id`: planned in the open group, being
    /// committed, or in the snapshot's log.
    private func earlierBytes(of id: String, sequenceNumber: UInt64, snapshot: TransactionLedgerState) throws(LedgerError) -> [UInt8] {
        if let bytes = open.eventBytes[id] ?? committing?.layer.eventBytes[id] { return bytes }
        guard let leafBytes = try snapshot.logLeafBytes(sequenceNumber: sequenceNumber) else {
            throw LedgerError(.integrity, "the id index names seq \(sequenceNumber), which is not in the log")
        }
        return try Record(leafBytes: leafBytes).signedEvent.event.canonicalBytes
    }
}

extension WriteRequest {
    var isBatch: Bool {
        if case .batch = self { return true }
        return false
    }
}

/// The writer's lock with one condition per thread that waits on it, so that a request wakes only the planner and a
/// handed-over group only the committer: with one condition each wake-up woke both, and on a machine whose idle
/// processors halt the needless one is a wake-up through the hypervisor.
final class WriterSignals: @unchecked Sendable {
    // @unchecked: the pthread objects are used only through these methods, as POSIX allows from any thread.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let planner = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let committer = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        let results = [pthread_mutex_init(mutex, nil), pthread_cond_init(planner, nil), pthread_cond_init(committer, nil)]
        precondition(results.allSatisfy { $0 == 0 }, "pthread objects are initialised")
    }

    deinit {
        pthread_cond_destroy(committer)
        pthread_cond_destroy(planner)
        pthread_mutex_destroy(mutex)
        committer.deallocate()
        planner.deallocate()
        mutex.deallocate()
    }

    func lock() { precondition(pthread_mutex_lock(mutex) == 0, "the writer's mutex locks") }
    func unlock() { precondition(pthread_mutex_unlock(mutex) == 0, "the writer's mutex unlocks") }
    /// With the lock held: releases it while waiting, holds it again on return (possibly spuriously).
    func waitAsPlanner() { pthread_cond_wait(planner, mutex) }
    func waitAsCommitter() { pthread_cond_wait(committer, mutex) }
    /// With the lock held.
    func wakePlanner() { pthread_cond_signal(planner) }
    func wakeCommitter() { pthread_cond_signal(committer) }
}
