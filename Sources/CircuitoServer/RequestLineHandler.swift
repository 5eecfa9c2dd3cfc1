import CircuitoCore
import NIOCore

/// What the event loop hands the connection's task: something to write at once (a parse error, an oversize line, a
/// refusal past the in-flight bound), or decoded requests already counted in the connection's in-flight bound.
enum ConnectionMessage: Sendable {
    case answer(JSONValue)
    /// Decoded requests (or their decoding errors with the id to answer), whether it was a batch, and the bytes they
    /// hold decoded (counted in the server-wide bound until they are answered).
    case requests([Result<RPCRequest, RPCDecodingFailure>], isBatch: Bool, heldBytes: Int)
}

/// A line as the handler reads it: an answer to give at once, or requests with the value they were decoded from,
/// whose size (`RequestLineHandler.decodedBytes`) is estimated only for requests that are held: a lone read or
/// submit taken on the event loop is answered without that walk over the line.
enum DecodedLine {
    case answer(JSONValue)
    case requests([Result<RPCRequest, RPCDecodingFailure>], isBatch: Bool, value: JSONValue)
}

/// A connection as the accept loop receives it: its channel, its state, and its number in the registry (nil when it
/// was past the connection bound and is to be refused).
struct AcceptedConnection: Sendable {
    let channel: NIOAsyncChannel<ConnectionMessage, ByteBuffer>
    let state: ConnectionState
    let identifier: Int?
}

/// A connection's state, shared by its event-loop handler and its task.
final class ConnectionState: Sendable {
    /// Past the connection bound: its lines are dropped unread while it is told so and closed.
    let refused: Bool
    /// Requests taken and not yet answered (a JSON-RPC batch counts one per element).
    let inFlight = Locked(0)
    /// What those requests hold decoded (`ServerLimits.maximumInFlightRequestBytes`), to let go of what no task took.
    let requestBytesInFlight = Locked(0)
    /// Refusals the handler made on reading a line and the connection's task has not written yet
    /// (`ServerLimits.maximumQueuedRefusalsPerConnection`).
    let queuedRefusals = Locked(0)
    /// Lone `submit`s taken on the event loop and not yet answered (counted in the server's in-flight count, not in
    /// `inFlight`, which the connection's task lets go of), so that the idle closer sees them too, and the connection's
    /// task waits for their answers before it closes a connection its client half-closed.
    let writesTakenOnEventLoop = WritesTakenOnEventLoop()
    /// The connection's subscriptions, under one lock so that the streams listed never outnumber those counted.
    let subscriptions = Locked(ConnectionSubscriptions())
    /// The connection's read session (Specs/protocol.md section 4.3).
    let session: ReadSession

    /// `monotonicMilliseconds` measures the lifetimes of the session's challenges.
    init(refused: Bool, monotonicMilliseconds: @escaping @Sendable () -> Int64 = monotonicClockMilliseconds) {
        self.refused = refused
        session = ReadSession(monotonicMilliseconds: monotonicMilliseconds)
    }
}

/// A connection's lone `submit`s taken on the event loop and not yet answered, and the connection's task waiting for
/// none to be left. Their answers come from the writer to the event loop, outside the connection's task: without the
/// wait, a client that sent one and then half-closed found its connection closed before the answer, while the event
/// was committed (a till would take the payment for not made).
final class WritesTakenOnEventLoop: Sendable {
    private let state = Locked<(count: Int, waiter: CheckedContinuation<Void, Never>?)>((0, nil))

    var count: Int { state.withLock { $0.count } }

    func take() { state.withLock { $0.count += 1 } }

    /// Its answer is made (on the event loop, which writes it before any later write the task asks of the loop).
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            precondition(state.count > 0, "a write taken on the event loop finished twice")
            state.count -= 1
            guard state.count == 0 else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns once none is in flight. One waiter at a time: the connection's task, once its client's side ended (no
    /// line can then arrive to take another).
    func waitUntilNone() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let none = state.withLock { state -> Bool in
                guard state.count > 0 else { return true }
                precondition(state.waiter == nil, "two waits for a connection's writes taken on the event loop")
                state.waiter = continuation
                return false
            }
            if none { continuation.resume() }
        }
    }
}

/// A connection's subscriptions: those accepted and not ended, and the streams running, which the connection's
/// task gives their end when its client's side ends.
struct ConnectionSubscriptions {
    /// Set once the client's side ended: a stream started after that ends at once (after the records committed by
    /// then), since the task that gives the listed streams their end has already run.
    var closed = false
    /// Running streams by their hub identifier. Each removes its own entry when it ends (its subscriber suspended or
    /// its key revoked, cut off, its end reached), so a connection that stays open holds only its live streams,
    /// however many it opened and ended.
    var streams: [Int: RunningSubscription] = [:]
    /// Subscriptions accepted and not ended (their answer being written, or their stream running): what
    /// `ServerLimits.maximumSubscriptionsPerConnection` bounds, and what keeps the idle closer away. At least
    /// `streams.count`: a stream's entry goes in the same step as its count.
    var active = 0
    /// Subscriptions accepted since the connection opened, which numbers them (`sub-1`, `sub-2`, …).
    var total = 0
}

/// A stream of this connection: the hub's registration and where its end is set. (Its task is awaited by the
/// request that started it, which the connection's task group waits for.)
struct RunningSubscription: Sendable {
    let hubIdentifier: Int
    let end: Locked<UInt64?>

    /// The stream sends what is committed now and ends. True when this call gave a running stream its end (false for
    /// one that had its end already, or had ended on its own).
    @discardableResult
    func finish(hub: SubscriptionHub) -> Bool {
        let endedNow = end.withLock { end -> Bool in
            guard end == nil else { return false }
            end = hub.size
            return true
        }
        return hub.wake(hubIdentifier) && endedNow
    }
}

/// Closes a connection that sent nothing for the idle timeout (`LineIdleTimer`'s read event) while it has nothing
/// to wait for: no request in flight and no subscription. One that is waiting keeps its connection, however long its
/// answers or its stream take; its timer starts again.
final class IdleConnectionCloser: ChannelInboundHandler {
    typealias InboundIn = LineFrame
    typealias InboundOut = LineFrame

    private let state: ConnectionState
    private let registry: ConnectionRegistry

    init(state: ConnectionState, registry: ConnectionRegistry) {
        self.state = state
        self.registry = registry
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let waiting = state.inFlight.withLock { $0 } > 0 || state.writesTakenOnEventLoop.count > 0
            || state.subscriptions.withLock { $0.active } > 0
        guard !waiting else { return }
        registry.countClosedIdle()
        context.close(promise: nil)
    }
}

/// Closes a connection whose client leaves its answers unread: the channel unwritable (the socket and the channel's
/// buffer full) and no write to it completing, for `timeout` counted from the later of the two (when it turned
/// unwritable, when a write last completed). Answers are written in slices, so a client that reads slowly but
/// steadily completes one now and then and keeps its connection; one that has just filled its socket after a quiet
/// spell gets the whole timeout.
///
/// Replaces `IdleStateHandler`'s write timeout, whose event came a timeout after the last completed write whatever the
/// writability, and then every timeout: a stall that began just after an event was seen at the next one, up to twice
/// the timeout late. On the event loop's own clock (`EventLoop.now`), as `LineIdleTimer`, so that tests move it.
final class WriteStallCloser: ChannelDuplexHandler {
    typealias InboundIn = LineFrame
    typealias InboundOut = LineFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private let registry: ConnectionRegistry
    /// Since when the channel has been unwritable without a break (nil while writable).
    private var unwritableSince: NIODeadline?
    private var lastWriteCompleted = NIODeadline.distantPast
    /// The one check of the connection, scheduled only while it is unwritable.
    private var check: Scheduled<Void>?

    init(timeout: TimeAmount, registry: ConnectionRegistry) {
        self.timeout = timeout
        self.registry = registry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive, !context.channel.isWritable { becameUnwritable(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            unwritableSince = nil
            stop()
        } else if unwritableSince == nil {
            becameUnwritable(context)
        }
        context.fireChannelWritabilityChanged()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Every write is watched, those made while writable included: their bytes may reach the socket during a stall.
        let written = promise ?? context.eventLoop.makePromise()
        let eventLoop = context.eventLoop
        written.futureResult.hop(to: eventLoop).assumeIsolated().whenSuccess { self.lastWriteCompleted = eventLoop.now }
        context.write(data, promise: written)
    }

    private func becameUnwritable(_ context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        unwritableSince = now
        stop()
        schedule(context, at: now + timeout)
    }

    private func stop() {
        check?.cancel()
        check = nil
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        check = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.fire(context) }
    }

    private func fire(_ context: ChannelHandlerContext) {
        check = nil
        guard let unwritableSince, context.channel.isActive, !context.channel.isWritable else { return }
        let deadline = max(unwritableSince, lastWriteCompleted) + timeout
        guard context.eventLoop.now >= deadline else {
            // A write completed since this check was set: the timeout counts from it.
            return schedule(context, at: deadline)
        }
        registry.countClosedUnread()
        context.close(promise: nil)
    }
}

/// Fires `IdleStateHandler.IdleStateEvent.read`, which `IdleConnectionCloser` acts on, once no whole line has been read
/// for `timeout`, and again every `timeout` after: `IdleStateHandler`'s read timeout, on the event loop's own clock
/// (`EventLoop.now`). `IdleStateHandler` checks its timer against the process's clock, so on an `EmbeddedEventLoop`,
/// whose clock only a test moves, it never fired, and the idle timeout could be tested only by waiting it out.
final class LineIdleTimer: ChannelInboundHandler {
    typealias InboundIn = LineFrame
    typealias InboundOut = LineFrame

    private let timeout: TimeAmount
    private var lastLineRead = NIODeadline.distantPast
    private var check: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastLineRead = context.eventLoop.now
        context.fireChannelRead(data)
    }

    private func start(_ context: ChannelHandlerContext) {
        guard check == nil else { return }
        lastLineRead = context.eventLoop.now
        schedule(context, at: lastLineRead + timeout)
    }

    private func stop() {
        check?.cancel()
        check = nil
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        check = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.fire(context) }
    }

    private func fire(_ context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        guard now - lastLineRead >= timeout else {
            // A line came since this check was set: the timeout counts from that line.
            return schedule(context, at: lastLineRead + timeout)
        }
        // Set before the event, so that a close it causes cancels it.
        schedule(context, at: now + timeout)
        context.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
    }
}

/// Decodes each line on the event loop, applies the connection's in-flight bound, answers a lone short read right
/// there, and sends a lone `submit` from there to the writer.
///
/// Why: on a machine whose idle processors halt (a VM), every hand-over between threads costs a wake-up through the
/// hypervisor, and a request answered by a task crossed three (the event loop to a request thread, to another for
/// the request's child task, back to the event loop to write). A read from `inlineMethods` that arrives while the
/// server has no request in flight on any connection (counting one being taken this way on the other event loop),
/// and with the socket writable (so an answer written here
/// cannot pile up for a client that does not read), is answered in this handler instead. Those methods do a bounded
/// amount of work: at most one signature check and a few LMDB lookups. A lone `submit` under the same conditions has
/// its signatures checked here (at most two) and goes to the writer, whose answer comes back to this loop: only the
/// writer's two threads in between. It is counted in the server's in-flight count, not the connection's, so that
/// the connection's task never lets go of it; while it is in flight everything else takes the task path, so a
/// connection holds at most one more than its bound. Everything else, and every request that arrives while any is
/// in flight, goes to the connection's task: under load the event loops only move bytes and the requests
/// share the request threads in arrival order (answered on the loops, a loop's requests would wait behind each
/// other's signature checks and the tail would grow), and a pipelining connection keeps its parallelism.
final class RequestLineHandler: ChannelInboundHandler {
    typealias InboundIn = LineFrame
    typealias InboundOut = ConnectionMessage
    typealias OutboundOut = ByteBuffer

    /// Reads answered on the event loop when nothing else is in flight (Specs/protocol.md section 1).
    static let inlineMethods: Set<String> = [
        "account.balance", "proof.inclusion", "proof.consistency", "checkpoint", "server.info", "actor.get", "badge.get",
        "session.challenge", "session.open", "session.close", "settlement.get",
    ]

    private let state: ConnectionState
    private let server: ServerContext
    private let registry: ConnectionRegistry
    /// In the channel's pipeline: the context may be written to (only on the event loop).
    private var attached = false
    /// Closed for sending lines faster than it read their refusals: later lines are dropped unread.
    private var closedForFlooding = false

    init(state: ConnectionState, server: ServerContext, registry: ConnectionRegistry) {
        self.state = state
        self.server = server
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !state.refused, !closedForFlooding, let line = Self.decode(unwrapInboundIn(data)) else { return }
        guard case .requests(let requests, let isBatch, let value) = line else {
            if case .answer(let answer) = line { refuse(answer, context: context) }
            return
        }
        // Past the server-wide bound on unwritten answers, not here: the admission below refuses it.
        if !isBatch, case .success(let request) = requests[0], context.channel.isWritable,
            registry.unwrittenAnswerBytes <= server.limits.maximumUnwrittenAnswerBytes
        {
            if Self.inlineMethods.contains(request.method), registry.takeIfIdle() {
                finish(request, server.respondToRead(request, session: state.session), context: context)
                return
            }
            if request.method == "submit", registry.takeIfIdle(write: true) {
                takeWrite(request, context: context)
                return
            }
        }
        let count = requests.count
        let unwritten = registry.unwrittenAnswerBytes
        guard unwritten <= server.limits.maximumUnwrittenAnswerBytes else {
            let error = RPCError(LedgerError(
                .overloaded, "the server holds \(unwritten >> 20) MiB of answers its clients have not read yet (at most \(server.limits.maximumUnwrittenAnswerBytes >> 20)); retry later"))
            let id: JSONValue = isBatch ? .null : (Self.answerID(requests[0]) ?? .null)
            refuse(RPCMessage.error(id: id, error), context: context)
            return
        }
        // A request is held until its answer is handed to the socket: without a server-wide bound, connections of
        // large requests whose answers are left unread held their in-flight bound's worth of lines each.
        let heldBytes = Self.decodedBytes(value)
        let maximumHeld = server.limits.maximumInFlightRequestBytes
        guard registry.reserveRequestBytes(heldBytes, maximum: maximumHeld) else {
            let error = RPCError(LedgerError(
                .overloaded, "the server holds \(registry.requestBytesInFlight >> 20) MiB of requests in flight (at most \(maximumHeld >> 20)); retry later"))
            let id: JSONValue = isBatch ? .null : (Self.answerID(requests[0]) ?? .null)
            refuse(RPCMessage.error(id: id, error), context: context)
            return
        }
        let limit = server.limits.maximumInFlightPerConnection
        let admitted = state.inFlight.withLock { inFlight -> Bool in
            guard inFlight + count <= limit else { return false }
            inFlight += count
            return true
        }
        guard admitted else {
            registry.adjustRequestBytes(by: -heldBytes)
            // Written by the connection's task, which waits for the socket: a client that floods without reading is
            // held back by its own socket instead of growing the server's memory.
            // A batch larger than the bound would be refused however long the client waited: say so.
            let error = count > limit
                ? RPCError(LedgerError(.overloaded, "a batch of \(count) requests is more than the \(limit) a connection may have in flight; split it"))
                : RPCError(LedgerError(.overloaded, "more than \(limit) requests in flight on this connection; wait for answers"))
            let id: JSONValue = isBatch ? .null : (Self.answerID(requests[0]) ?? .null)
            refuse(RPCMessage.error(id: id, error), context: context)
            return
        }
        registry.adjustInFlight(by: count)
        state.requestBytesInFlight.withLock { $0 += heldBytes }
        context.fireChannelRead(wrapInboundOut(.requests(requests, isBatch: isBatch, heldBytes: heldBytes)))
    }

    /// Hands a refusal to the connection's task, which writes it in turn, waiting for the socket. Past the
    /// connection's bound on refusals waiting there the client is sending faster than it reads: the connection is
    /// closed and its later lines dropped, so that one read of many short lines cannot grow the server's memory.
    private func refuse(_ answer: JSONValue, context: ChannelHandlerContext) {
        let limit = server.limits.maximumQueuedRefusalsPerConnection
        let queued = state.queuedRefusals.withLock { count -> Bool in
            guard count < limit else { return false }
            count += 1
            return true
        }
        guard queued else {
            closedForFlooding = true
            registry.countClosedUnread()
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(.answer(answer)))
    }

    func handlerAdded(context: ChannelHandlerContext) { attached = true }

    func handlerRemoved(context: ChannelHandlerContext) { attached = false }

    /// A lone `submit` while nothing else is in flight: its signatures are checked here, it goes straight to the
    /// writer, and the writer's answer comes back to this event loop to be written. So the request crosses no
    /// request thread on its way in or out, only the writer's two. The writer answers every request it took,
    /// refusals included, so the count taken for it is always let go.
    private func takeWrite(_ request: RPCRequest, context: ChannelHandlerContext) {
        let write: WriteRequest
        do throws(RPCError) { write = try ServerContext.singleWrite(request.params) } catch {
            finish(request, .failure(error), context: context)
            return
        }
        let eventLoop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: eventLoop)
        let state = self.state
        state.writesTakenOnEventLoop.take()
        // Called on the committer's thread: the answer is made on the loop, off the writer's critical path.
        server.writer.submit(write) { written in
            eventLoop.execute {
                // Written first, then let go of: the connection's task, waiting for none to be left, flushes after
                // it and closes.
                handler.value.finish(request, ServerContext.submitAnswer(written), context: boundContext.value)
                state.writesTakenOnEventLoop.finish()
            }
        }
    }

    /// Ends a request taken on the loop: lets go of its count, then writes its answer (none for a notification) if the
    /// connection is still there. The count goes first, so that a client that has the answer finds the server idle
    /// again, on any connection.
    private func finish(_ request: RPCRequest, _ result: Result<JSONValue, RPCError>, context: ChannelHandlerContext) {
        let answer = RPCMessage.answer(to: request, result)
        registry.adjustInFlight(by: -1)
        guard attached, let answer else { return }
        // Counted until on the socket, as the tasks' answers are: the channel takes them here while it looks writable,
        // up to its own high watermark, and a client that reads nothing leaves them there. Uncounted, 200 connections
        // of such answers (when an id could be as long as a frame) held 320 MiB with the server-wide bound's count at 0.
        let line = RPCMessage.line(answer)
        let bytes = line.count
        let registry = self.registry
        registry.adjustUnwrittenAnswerBytes(by: bytes)
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in registry.adjustUnwrittenAnswerBytes(by: -bytes) }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: line)), promise: written)
    }

    static func decode(_ frame: LineFrame) -> DecodedLine? {
        switch frame {
        case .oversize:
            return .answer(RPCMessage.error(id: .null, RPCError.invalidRequest("the line is longer than the frame bound; it was dropped unread", name: "too_large")))
        case .overloaded(let maximumBytes):
            let bound = maximumBytes >= 1 << 20 ? "\(maximumBytes >> 20) MiB" : "\(maximumBytes) bytes"
            return .answer(RPCMessage.error(id: .null, RPCError(LedgerError(
                .overloaded, "the server held more than \(bound) of lines still arriving on its connections; this line was dropped unread; send it again"))))
        case .line(let buffer):
            let bytes = Array(buffer.readableBytesView)
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return nil }
            let value: JSONValue
            do throws(LedgerError) { value = try JSONParser.parse(bytes) } catch {
                return .answer(RPCMessage.error(id: .null, .parseError("not JSON: \(error.message)")))
            }
            if case .array(let elements) = value {
                guard !elements.isEmpty else { return .answer(RPCMessage.error(id: .null, .invalidRequest("an empty batch"))) }
                return .requests(elements.map(RPCRequest.decode), isBatch: true, value: value)
            }
            return .requests([RPCRequest.decode(value)], isBatch: false, value: value)
        }
    }

    /// Bytes a decoded value holds, about: a slot per value, the keys of objects, an allocation's header (and the
    /// allocator's rounding) per non-empty container and per string too long to be kept inline, and the strings'
    /// bytes. Measured: 64 lines of `[0,0,…]` of 1 MB held 680 MiB, this estimate says 730.
    static func decodedBytes(_ value: JSONValue) -> Int {
        let slotBytes = MemoryLayout<JSONValue>.stride
        switch value {
        case .array(let elements):
            guard !elements.isEmpty else { return slotBytes }
            return slotBytes + allocationOverheadBytes + elements.reduce(0) { $0 + decodedBytes($1) }
        case .object(let members):
            guard !members.keys.isEmpty else { return slotBytes }
            let keyBytes = members.keys.reduce(0) { held, key in held + MemoryLayout<String>.stride + Self.heapBytes(key) }
            return slotBytes + 2 * allocationOverheadBytes + keyBytes + members.values.reduce(0) { $0 + decodedBytes($1) }
        case .string(let text):
            return slotBytes + heapBytes(text)
        case .null, .bool, .integer, .number:
            return slotBytes
        }
    }

    /// An allocation's header and the allocator's rounding, about (the estimate above was measured with it).
    private static let allocationOverheadBytes = 48

    /// A native string of up to 15 UTF-8 bytes is kept inline; a longer one in an allocation of its own.
    private static func heapBytes(_ text: String) -> Int {
        let count = text.utf8.count
        return count > 15 ? allocationOverheadBytes + count : 0
    }

    private static func answerID(_ decoded: Result<RPCRequest, RPCDecodingFailure>) -> JSONValue? {
        switch decoded {
        case .success(let request): return request.id
        case .failure(let failure): return failure.id
        }
    }
}
