import CircuitoCore
import CircuitoStorage
import NIOCore

/// Where live subscribers learn that the log grew, and where slow ones are cut off.
///
/// Subscribers read records from LMDB themselves (catch-up and live use the same path), so the writer never
/// copies a record for anyone: after each commit it only publishes the new size, which is O(subscribers) and never
/// waits. A subscriber that, while sending, has more than `maximumSubscriberBufferRecords` records committed since
/// it subscribed still to send (it stopped reading, so its writes are stuck, or it cannot keep up with the live log)
/// is cut off; records that were already in the log when it subscribed (its catch-up) never count. A subscriber
/// that has sent everything (waiting for the next commit, or still flushing its last page) is never behind, however
/// large the commit.
final class SubscriptionHub: Sendable {
    private struct Entry {
        let signal: AsyncStream<Void>.Continuation
        /// The next seq the subscriber will be sent.
        var next: UInt64
        /// The log's size when it subscribed, or when it last woke from waiting: records after it are live records,
        /// "buffered" for the subscriber.
        var baseline: UInt64
        /// True while it waits for the next commit (it has sent everything): such a subscriber is never behind.
        var waiting: Bool
        var cutOff: Bool
        let onCutOff: @Sendable () -> Void
    }

    private struct State {
        var size: UInt64
        var entries: [Int: Entry] = [:]
        var nextIdentifier = 0
    }

    private let state: Locked<State>
    let maximumLagRecords: UInt64

    init(size: UInt64, maximumLagRecords: Int) {
        state = Locked(State(size: size))
        self.maximumLagRecords = UInt64(max(1, maximumLagRecords))
    }

    var size: UInt64 { state.withLock { $0.size } }

    /// The log's size to answer a subscription from `start` with, or `invalid_range` when the log has not reached
    /// `start`. The hub hears of a commit just after the log holds it, while `server.info`, `events` and a replica's
    /// records come from the log: a start the log has reached and the hub not yet is not past the end, so the log is
    /// read whenever the start is past the hub's size.
    func sizeForSubscription(from start: UInt64, logSize: () throws(LedgerError) -> UInt64) throws(RPCError) -> UInt64 {
        let announcedSize = size
        guard start > announcedSize else { return announcedSize }
        let committedSize: UInt64
        do { committedSize = try logSize() } catch { throw RPCError(error) }
        guard start <= committedSize else {
            throw RPCError(LedgerError(.invalidRange, "from \(start) is past the end of the log (\(committedSize) records)"))
        }
        return committedSize
    }

    /// Registers a subscriber starting at `next`. `signals` yields when the log grows (coalesced: at most one
    /// pending signal) and finishes when the subscriber is cut off.
    func register(next: UInt64, onCutOff: @escaping @Sendable () -> Void) -> (identifier: Int, signals: AsyncStream<Void>) {
        let (signals, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let identifier = state.withLock { state in
            state.nextIdentifier += 1
            state.entries[state.nextIdentifier] = Entry(signal: continuation, next: next, baseline: max(next, state.size), waiting: false, cutOff: false, onCutOff: onCutOff)
            return state.nextIdentifier
        }
        return (identifier, signals)
    }

    func unregister(_ identifier: Int) {
        let entry = state.withLock { $0.entries.removeValue(forKey: identifier) }
        entry?.signal.finish()
    }

    /// The subscriber's progress: `next` is the next seq it will send; `caughtUp` when it has sent everything.
    func progress(_ identifier: Int, next: UInt64, caughtUp: Bool) {
        state.withLock { state in
            guard var entry = state.entries[identifier] else { return }
            entry.next = next
            entry.waiting = caughtUp
            state.entries[identifier] = entry
        }
    }

    /// Checks a subscriber that is about to send from `next`: when more live records wait for it than the bound,
    /// it is cut off (the check at each commit cannot see a subscriber that only wakes after the commits).
    func checkLag(_ identifier: Int, next: UInt64) {
        let cutOff = state.withLock { (state) -> (@Sendable () -> Void)? in
            guard var entry = state.entries[identifier], !entry.cutOff else { return nil }
            if entry.waiting {
                // It had sent everything and waited: what was committed meanwhile (one commit of any size, or
                // several) counts as its catch-up, never as lag; only what is committed from now on, while it
                // sends, does.
                entry.waiting = false
                entry.baseline = max(entry.baseline, state.size)
            }
            entry.next = next
            let sentOrBaseline = max(next, entry.baseline)
            guard state.size > sentOrBaseline && state.size - sentOrBaseline > maximumLagRecords else {
                state.entries[identifier] = entry
                return nil
            }
            entry.cutOff = true
            state.entries[identifier] = entry
            return entry.onCutOff
        }
        cutOff?()
    }

    /// True when the subscriber was cut off; it should send its error and end.
    func isCutOff(_ identifier: Int) -> Bool {
        state.withLock { $0.entries[identifier]?.cutOff ?? false }
    }

    /// Called by the writer thread after a commit. Never blocks.
    func publish(size: UInt64) {
        let (signals, cutOffs) = state.withLock { state -> ([AsyncStream<Void>.Continuation], [@Sendable () -> Void]) in
            let previousSize = state.size
            state.size = max(state.size, size)
            var signals: [AsyncStream<Void>.Continuation] = []
            var cutOffs: [@Sendable () -> Void] = []
            for (identifier, var entry) in state.entries where !entry.cutOff {
                if !entry.waiting && entry.next >= previousSize && size > previousSize {
                    // It had sent every record before this commit and is flushing them or about to look for more:
                    // this commit counts as its catch-up, as for one already waiting (a commit larger than the
                    // bound would otherwise cut off a subscriber that was never behind).
                    entry.baseline = max(entry.baseline, size)
                    state.entries[identifier] = entry
                }
                // Live records committed since it subscribed that it has not sent yet: past the bound, cut off.
                let sentOrBaseline = max(entry.next, entry.baseline)
                if !entry.waiting && size > sentOrBaseline && size - sentOrBaseline > maximumLagRecords {
                    entry.cutOff = true
                    state.entries[identifier] = entry
                    cutOffs.append(entry.onCutOff)
                }
                signals.append(entry.signal)
            }
            return (signals, cutOffs)
        }
        for signal in signals { signal.yield() }
        for cutOff in cutOffs { cutOff() }
    }

    /// Wakes a subscriber waiting for the next commit, so that it looks at its state again (its end was set); false
    /// when none is registered under `identifier` (its stream has ended).
    @discardableResult
    func wake(_ identifier: Int) -> Bool {
        guard let signal = state.withLock({ $0.entries[identifier]?.signal }) else { return false }
        signal.yield()
        return true
    }

    /// Ends every subscription (shutdown).
    func finishAll() {
        let entries = state.withLock { state -> [Entry] in
            defer { state.entries = [:] }
            return Array(state.entries.values)
        }
        for entry in entries { entry.signal.finish() }
    }
}

/// What a subscriber may ask of `subscribe`'s heartbeats and how it reads their absence (Specs/protocol.md 5.5, 6, 9):
/// the server, the follower and `circuito client subscribe` share these.
public enum SubscriptionHeartbeat {
    /// `heartbeat_seconds`: from a second to an hour.
    public static let secondsRange: ClosedRange<Int> = 1...3600
    /// Heartbeats in a row without any message after which a subscriber takes the stream for stopped.
    public static let missedBeforeSilence = 3

    /// True when `refusal` is an older server's answer to `heartbeat_seconds`, which refuses any member it does not
    /// know (`invalid_params`, naming it): the subscriber then subscribes again without it.
    public static func isUnknownToServer(_ refusal: RPCError) -> Bool {
        refusal.name == "invalid_params" && refusal.message.contains("\"heartbeat_seconds\"")
    }

    /// Why a subscriber gave up on a stream that sent nothing for `missedBeforeSilence` heartbeats of `seconds`.
    public static func silence(of sender: String, heartbeatSeconds seconds: Int) -> LedgerError {
        LedgerError(.connectionFailed, "\(sender) sent nothing for \(missedBeforeSilence * seconds) s although asked for a heartbeat every \(seconds) s")
    }
}

/// One subscription's stream: records from `start` (catch-up), then live, as JSON-RPC notifications.
///
/// `subscription.record`: `{"record":<record>,"subscription":<id>}`, the record exactly its leaf bytes;
/// `subscription.checkpoint`: `{"checkpoint":<note>,"size":n,"previous_size":m,"consistency":[…],"subscription":<id>}`
/// after the last record of each commit, with the RFC 9162 consistency proof from the previous checkpoint sent
/// (or from `start` for the first);
/// `subscription.error`: `{"error":{…},"subscription":<id>}`, the last message before the server ends it;
/// `subscription.heartbeat`: `{"size":n,"subscription":<id>}` when asked for (`heartbeat_seconds`), after that many
/// seconds in which the stream sent nothing, `n` the records sent up to then (the log's size: it has sent them all).
struct SubscriptionStream {
    static let recordsPerRead = 64
    /// Bytes a stream writes before it waits until they are on the socket. The async writer takes a write while the
    /// channel looks writable, and the event loop learns otherwise only after it has run the writes already handed
    /// to it: a stream that read its records faster than a stalled client drained them piled megabytes into the
    /// loop's queue (400 stalled subscriptions held a gigabyte). Waiting bounds what one stream holds to this, its
    /// page of records and the socket's buffer.
    static let maximumUnflushedBytes = 64 * 1024

    let identifier: String
    let start: UInt64
    /// Who subscribed, with which key: checked again for every page, as a session's reads are.
    let subscriber: ReadSession.Opened
    let reader: LedgerReader
    let hub: SubscriptionHub
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let channel: Channel
    /// Where its unflushed bytes count toward the server-wide bound on what clients have not read.
    let connections: ConnectionRegistry
    /// `ServerLimits.writeStallTimeoutSeconds`: how long it waits for its bytes to reach the socket before it closes
    /// the connection of a client that stopped reading (nil: never).
    let writeStallTimeoutSeconds: Int?
    /// The subscriber's `heartbeat_seconds` (nil: it asked for none). A follower can then tell a leader that went
    /// silent (wedged, or behind a proxy that keeps the connection open) from a quiet ledger.
    let heartbeatSeconds: Int?
    /// The log's size when the connection's reading side ended (nil until then): the stream's last record is below.
    let end: Locked<UInt64?>
    /// The hub's registration, made when the subscription was accepted (so records committed after the answer
    /// count as live at once) and ended by `run`.
    let registration: (identifier: Int, signals: AsyncStream<Void>)

    /// Registers a subscriber from `start` with the hub. If it is cut off and does not read within the grace, its
    /// connection is closed, which also ends its stuck write.
    static func register(start: UInt64, hub: SubscriptionHub, channel: Channel, cutOffGraceMilliseconds: Int) -> (identifier: Int, signals: AsyncStream<Void>) {
        hub.register(next: start) {
            // The writer thread calls this: only schedule.
            channel.eventLoop.scheduleTask(in: .milliseconds(Int64(cutOffGraceMilliseconds))) { channel.close(promise: nil) }
        }
    }

    /// Runs the stream until the server ends it or, once `end` is set (the connection's reading side ended: the
    /// client half-closed, or closed), until it has sent every record below that size, rather than stopping
    /// wherever it was. Not by cancelling the task: a cancelled task's writes fail, so it could send nothing more.
    func run() async {
        let lag = hub.maximumLagRecords
        let identifier = self.identifier
        let channel = self.channel
        let (hubIdentifier, signals) = registration
        defer { hub.unregister(hubIdentifier) }
        var signalIterator = signals.makeAsyncIterator()
        var next = start
        var previousCheckpointSize = start
        // Written to the channel and not known to be on the socket yet; counted in the server's unwritten bytes.
        var unflushedBytes = 0
        // When it last handed the channel a message (the subscription's answer, just before the stream started).
        var lastSent = NIODeadline.now()
        let heartbeat = heartbeatSeconds.map { TimeAmount.seconds(Int64($0)) }
        let connections = self.connections
        defer { connections.adjustUnwrittenAnswerBytes(by: -unflushedBytes) }
        /// Waits until everything this stream wrote is on the socket. An empty write's future completes once every
        /// write before it is: the loop runs this stream's writes in the order they were handed to it (NIO's async
        /// writer hands each write to the loop before `write` returns, as read in swift-nio 2.101, the minimum
        /// Package.swift asks for; a writer that held writes back would make this bound weaker, not wrong).
        func flushed() async throws {
            guard unflushedBytes > 0 else { return }
            // The channel never turns unwritable for a stream (it stops at 64 KiB, NIO's own mark), so the write stall
            // closer cannot see a subscriber that stopped reading: this wait closes its connection, counted as one
            // left unread, which also ends the wait.
            let stall = writeStallTimeoutSeconds.map { seconds in
                channel.eventLoop.scheduleTask(in: .seconds(Int64(seconds))) {
                    connections.countClosedUnread()
                    channel.close(promise: nil)
                }
            }
            defer { stall?.cancel() }
            try await channel.writeAndFlush(ByteBuffer()).get()
            connections.adjustUnwrittenAnswerBytes(by: -unflushedBytes)
            unflushedBytes = 0
        }
        func send(_ bytes: [UInt8]) async throws {
            connections.adjustUnwrittenAnswerBytes(by: bytes.count)
            unflushedBytes += bytes.count
            try await outbound.write(ByteBuffer(bytes: bytes))
            lastSent = NIODeadline.now()
            if unflushedBytes >= Self.maximumUnflushedBytes { try await flushed() }
        }
        do {
            // Bounded: each turn sends a page, or waits for a commit, or ends; once `end` is set, `next` climbs to
            // that fixed size.
            while true {
                let end = self.end.withLock { $0 }
                // It ends at `end` or, when a page read before `end` was set ran past it, at the end of the commit it
                // ran into (the next checkpoint sent), so that every record sent comes with its commit's checkpoint.
                if let end, next >= end, next == previousCheckpointSize {
                    try await flushed()
                    return
                }
                hub.checkLag(hubIdentifier, next: next)
                if hub.isCutOff(hubIdentifier) {
                    let error = LedgerError(.subscriberTooSlow, "the subscriber fell more than \(lag) records behind the live log and was cut off; subscribe again from seq \(next)")
                    // Written on the channel itself so its future completes once it (and every record before it)
                    // is on the socket: closing earlier would cut a line in half.
                    try await channel.writeAndFlush(ByteBuffer(bytes: Self.errorLine(identifier, RPCError(error, extra: ["next": .integer(Int64(next))])))).get()
                    try await channel.close()
                    return
                }
                let limit = end.map { $0 > next ? Int(min(UInt64(Self.recordsPerRead), $0 - next)) : Self.recordsPerRead } ?? Self.recordsPerRead
                let page = try reader.recordsPage(from: next, limit: limit)
                // The subscriber as the state has it now, after the page was read: a suspension or a revocation is for
                // ever, so one still allowed now was allowed when every record of the page was committed, and one
                // refused gets none of the records from its suspension on.
                do throws(RPCError) {
                    _ = try ReadAuthorisation.activeActor(subscriber.actor, key: subscriber.key, in: reader)
                } catch {
                    try await send(Self.errorLine(identifier, error))
                    try await flushed()
                    return
                }
                if page.records.isEmpty {
                    // Everything sent is on the socket before the stream counts as waiting: a stalled client's
                    // stream stays here, behind, and live records then count against it.
                    try await flushed()
                    if end != nil { return }
                    if let heartbeat, NIODeadline.now() - lastSent >= heartbeat {
                        try await send(Self.heartbeatLine(identifier, size: next))
                        try await flushed()
                    }
                    hub.progress(hubIdentifier, next: next, caughtUp: true)
                    // Wait for the writer's next commit (or the end: cut off, shutdown, cancellation), or, when a
                    // heartbeat is due first, until then: the wake brings it back here with nothing new to send.
                    let heartbeatWake = heartbeat.map { heartbeat in
                        channel.eventLoop.scheduleTask(deadline: lastSent + heartbeat) { [hub] in hub.wake(hubIdentifier) }
                    }
                    let signalled = await signalIterator.next() != nil
                    heartbeatWake?.cancel()
                    guard signalled else {
                        if hub.isCutOff(hubIdentifier) { continue }
                        return
                    }
                    continue
                }
                var checkpoints = page.checkpoints[...]
                for record in page.records {
                    if hub.isCutOff(hubIdentifier) { break }
                    try await send(Self.recordLine(identifier, record.leafBytes))
                    next = record.sequenceNumber + 1
                    while let checkpoint = checkpoints.first, checkpoint.size <= next {
                        checkpoints = checkpoints.dropFirst()
                        guard checkpoint.size == next else { continue }
                        let proof = try reader.consistencyProof(firstSize: previousCheckpointSize, secondSize: checkpoint.size)
                        try await send(MessageLines.checkpoint(
                            identifier, note: checkpoint.note, size: checkpoint.size, previousSize: previousCheckpointSize, proof: proof))
                        previousCheckpointSize = checkpoint.size
                    }
                    hub.progress(hubIdentifier, next: next, caughtUp: false)
                }
            }
        } catch let error as LedgerError {
            try? await outbound.write(ByteBuffer(bytes: Self.errorLine(identifier, RPCError(error))))
        } catch {
            // The connection is gone: nothing more can be sent.
        }
    }

    /// Built by concatenation so the record goes out exactly as its leaf bytes, without a parse and re-encode.
    static func recordLine(_ identifier: String, _ leafBytes: [UInt8]) -> [UInt8] {
        var line = Array(#"{"jsonrpc":"2.0","method":"subscription.record","params":{"record":"#.utf8)
        line += leafBytes
        line += Array(#","subscription":"#.utf8)
        line += CanonicalJSON.encode(.string(identifier))
        line += Array("}}\n".utf8)
        return line
    }

    static func heartbeatLine(_ identifier: String, size: UInt64) -> [UInt8] {
        RPCMessage.line(RPCMessage.notification(method: "subscription.heartbeat", params: ["size": .integer(Int64(size)), "subscription": .string(identifier)]))
    }

    static func errorLine(_ identifier: String, _ error: RPCError) -> [UInt8] {
        RPCMessage.line(RPCMessage.notification(method: "subscription.error", params: ["error": error.json, "subscription": .string(identifier)]))
    }
}

enum MessageLines {
    static func checkpoint(_ identifier: String, note: String, size: UInt64, previousSize: UInt64, proof: [[UInt8]]) -> [UInt8] {
        RPCMessage.line(RPCMessage.notification(method: "subscription.checkpoint", params: [
            "subscription": .string(identifier), "checkpoint": .string(note), "size": .integer(Int64(size)),
            "previous_size": .integer(Int64(previousSize)), "consistency": .array(proof.map { .string(Base64.encode($0)) }),
        ]))
    }
}
