import CircuitoCore
import CircuitoStorage
import NIOCore
import NIOEmbedded
import Testing

@testable import CircuitoServer

/// The event loop's decisions (`RequestLineHandler`), one by one on an `EmbeddedChannel`: what it answers itself, what
/// it hands to the connection's task, and what it refuses or drops.
@Suite("the event loop's request handler")
struct RequestLineHandlerTests {
    /// A server context over a real ledger (the fixture's), without sockets.
    private final class Harness {
        let fixture: CircuitFixture
        let writer: LedgerWriter
        let executor: ServerExecutor
        let registry = ConnectionRegistry(maximum: 8)
        let context: ServerContext

        init(maximumInFlightPerConnection: Int = 64, maximumQueuedRefusals: Int = 256) throws {
            fixture = try CircuitFixture()
            executor = try ServerExecutor(threadCount: 1)
            var limits = ServerLimits()
            limits.maximumInFlightPerConnection = maximumInFlightPerConnection
            limits.maximumQueuedRefusalsPerConnection = maximumQueuedRefusals
            writer = try LedgerWriter.start(directory: fixture.directory, limits: limits) { _ in }
            context = ServerContext(
                reader: writer.reader, writer: writer, hub: SubscriptionHub(size: 0, maximumLagRecords: 16),
                nonces: NonceStore(capacity: 1000, capacityPerActor: 1000, windowSeconds: limits.readRequestWindowSeconds), limits: limits,
                clock: Ledger.systemClockMilliseconds, executor: executor, credentials: CredentialSigning(keys: [], contexts: nil),
                connections: registry)
        }

        func channel(state: ConnectionState) throws -> EmbeddedChannel {
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(RequestLineHandler(state: state, server: context, registry: registry))
            return channel
        }

        func stop() async {
            await writer.stop()
            executor.stop()
        }
    }

    private static func line(_ value: JSONValue) -> LineFrame {
        .line(ByteBuffer(string: CanonicalJSON.encodeString(value)))
    }

    private static func written(_ channel: EmbeddedChannel) throws -> JSONValue? {
        guard let buffer = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        return try JSONParser.parse(Array(buffer.readableBytesView))
    }

    @Test("idle server: a short read is answered on the loop, counted while it runs and then let go")
    func answersAloneOnTheLoop() async throws {
        let harness = try Harness()
        let state = ConnectionState(refused: false)
        let channel = try harness.channel(state: state)
        try channel.writeInbound(Self.line(RPCMessage.request(id: 7, method: "server.info", params: [:])))
        let answer = try #require(try Self.written(channel))
        #expect(answer["id"] == 7 && answer["result"]?["size"] == 21)
        #expect(try channel.readInbound(as: ConnectionMessage.self) == nil)
        #expect(harness.registry.inFlight == 0 && harness.registry.answeredOnEventLoop == 1)
        #expect(state.inFlight.withLock { $0 } == 0)
        // A refusal is an answer too, from the same code as the task path's.
        let stranger = harness.fixture.read("account.balance", as: "bene-2", ["account": "beneficiary:bene-1"])
        try channel.writeInbound(Self.line(RPCMessage.request(id: 8, method: "account.balance", params: stranger)))
        #expect(try Self.written(channel)?["error"]?["data"]?["code"] == "not_authorised")
        // A notification is run and not answered.
        try channel.writeInbound(Self.line(["jsonrpc": "2.0", "method": "server.info"]))
        #expect(try Self.written(channel) == nil)
        #expect(harness.registry.answeredOnEventLoop == 3 && harness.registry.inFlight == 0)
        _ = try channel.finish()
        await harness.stop()
    }

    @Test("idle server: a lone submit is taken on the loop; one that fails its checks there is answered there and let go")
    func takesALoneWriteOnTheLoop() async throws {
        let harness = try Harness()
        let state = ConnectionState(refused: false)
        let channel = try harness.channel(state: state)
        // Params that are no signed event: answered on the loop before the writer, nothing handed to the task.
        try channel.writeInbound(Self.line(RPCMessage.request(id: 9, method: "submit", params: .array([]))))
        let answer = try #require(try Self.written(channel))
        #expect(answer["id"] == 9 && answer["error"]?["code"] == -32602)
        #expect(try channel.readInbound(as: ConnectionMessage.self) == nil)
        #expect(harness.registry.writesTakenOnEventLoop == 1 && harness.registry.answeredOnEventLoop == 0)
        #expect(harness.registry.inFlight == 0 && state.inFlight.withLock { $0 } == 0)
        // A socket that is not writable: the task's path, as for reads.
        channel.isWritable = false
        try channel.writeInbound(Self.line(RPCMessage.request(id: 10, method: "submit", params: [:])))
        #expect(try channel.readInbound(as: ConnectionMessage.self) != nil)
        #expect(harness.registry.writesTakenOnEventLoop == 1 && harness.registry.inFlight == 1)
        _ = try channel.finish()
        await harness.stop()
    }

    @Test("anything in flight anywhere, a socket that is not writable, a batch or a long read: handed to the task, counted")
    func handsTheRestToTheTask() async throws {
        let harness = try Harness()
        let state = ConnectionState(refused: false)
        let channel = try harness.channel(state: state)
        func forwarded() throws -> (count: Int, isBatch: Bool)? {
            guard case .requests(let requests, let isBatch, _)? = try channel.readInbound(as: ConnectionMessage.self) else { return nil }
            return (requests.count, isBatch)
        }
        let read = Self.line(RPCMessage.request(id: 1, method: "server.info", params: [:]))

        // Another connection's request in flight.
        harness.registry.adjustInFlight(by: 1)
        try channel.writeInbound(read)
        #expect(try forwarded().map { $0.count == 1 && !$0.isBatch } == true)
        #expect(state.inFlight.withLock { $0 } == 1 && harness.registry.inFlight == 2)
        // This connection's own request in flight (the one just handed over), the other gone.
        harness.registry.adjustInFlight(by: -1)
        try channel.writeInbound(read)
        #expect(try forwarded() != nil)
        #expect(state.inFlight.withLock { $0 } == 2 && harness.registry.inFlight == 2)
        // Let both go, as the task does after its answers.
        state.inFlight.withLock { $0 = 0 }
        harness.registry.adjustInFlight(by: -2)

        // A socket that is not writable: the task's write waits for it; the loop's would pile up.
        channel.isWritable = false
        try channel.writeInbound(read)
        #expect(try forwarded() != nil)
        channel.isWritable = true
        state.inFlight.withLock { $0 = 0 }
        harness.registry.adjustInFlight(by: -1)

        // A batch, and behind it a write and a read that is not short.
        let batch: JSONValue = [RPCMessage.request(id: 1, method: "server.info", params: [:]), RPCMessage.request(id: 2, method: "checkpoint", params: [:])]
        try channel.writeInbound(Self.line(batch))
        #expect(try forwarded().map { $0.count == 2 && $0.isBatch } == true)
        try channel.writeInbound(Self.line(RPCMessage.request(id: 3, method: "submit", params: [:])))
        #expect(try forwarded() != nil)
        try channel.writeInbound(Self.line(RPCMessage.request(id: 4, method: "report", params: [:])))
        #expect(try forwarded() != nil)
        #expect(state.inFlight.withLock { $0 } == 4 && harness.registry.inFlight == 4)
        #expect(harness.registry.answeredOnEventLoop == 0)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        _ = try channel.finish()
        await harness.stop()
    }

    @Test("past the connection's in-flight bound, bad JSON, an oversize line: an answer for the task to write, nothing counted")
    func refusalsGoToTheTask() async throws {
        let harness = try Harness(maximumInFlightPerConnection: 2)
        let state = ConnectionState(refused: false)
        let channel = try harness.channel(state: state)
        func answer() throws -> JSONValue? {
            guard case .answer(let value)? = try channel.readInbound(as: ConnectionMessage.self) else { return nil }
            return value
        }
        let batch: JSONValue = [RPCMessage.request(id: 1, method: "server.info", params: [:]), RPCMessage.request(id: 2, method: "server.info", params: [:]), RPCMessage.request(id: 3, method: "server.info", params: [:])]
        try channel.writeInbound(Self.line(batch))
        let refusedBatch = try #require(try answer())
        // One error for the whole batch, under id null, not an array; it says the batch can never fit.
        #expect(refusedBatch["error"]?["data"]?["code"] == "overloaded" && refusedBatch["id"] == .null)
        #expect(refusedBatch["error"]?["message"]?.stringValue?.contains("a batch of 3 requests is more than the 2") == true)
        try channel.writeInbound(LineFrame.line(ByteBuffer(string: "{not json")))
        #expect(try answer()?["error"]?["code"] == -32700)
        try channel.writeInbound(LineFrame.oversize)
        #expect(try answer()?["error"]?["data"]?["code"] == "too_large")
        // Blank lines are nothing at all.
        try channel.writeInbound(LineFrame.line(ByteBuffer(string: " \t\r")))
        #expect(try channel.readInbound(as: ConnectionMessage.self) == nil)
        #expect(state.inFlight.withLock { $0 } == 0 && harness.registry.inFlight == 0)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        _ = try channel.finish()
        await harness.stop()
    }

    @Test("a lone request past the connection's in-flight bound is refused under its own id, so the client can match the refusal")
    func loneRefusalKeepsItsID() async throws {
        let harness = try Harness(maximumInFlightPerConnection: 2)
        let state = ConnectionState(refused: false)
        let channel = try harness.channel(state: state)
        for id: JSONValue in [1, 2] {
            try channel.writeInbound(Self.line(RPCMessage.request(id: id, method: "report", params: [:])))
            #expect(try channel.readInbound(as: ConnectionMessage.self) != nil)
        }
        try channel.writeInbound(Self.line(RPCMessage.request(id: "third", method: "report", params: [:])))
        guard case .answer(let refusal)? = try channel.readInbound(as: ConnectionMessage.self) else {
            Issue.record("the request past the bound was not refused")
            return
        }
        #expect(refusal["id"] == "third" && refusal["error"]?["data"]?["code"] == "overloaded", "\(refusal)")
        state.inFlight.withLock { $0 = 0 }
        harness.registry.adjustInFlight(by: -2)
        _ = try channel.finish()
        await harness.stop()
    }

    /// A connected channel with only the idle closer in its pipeline, its connection's state and registry.
    private static func closedByIdleCloser() throws -> (ConnectionRegistry, ConnectionState, EmbeddedChannel) {
        let registry = ConnectionRegistry(maximum: 8)
        let state = ConnectionState(refused: false)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(IdleConnectionCloser(state: state, registry: registry))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7411)).wait()
        return (registry, state, channel)
    }

    @Test("the idle closer keeps a connection that waits for an answer (a lone submit taken on the loop included) and closes it once it waits for nothing")
    func idleCloserKeepsWaitingConnections() throws {
        let (registry, state, channel) = try Self.closedByIdleCloser()
        let waits: [(String, take: () -> Void, letGo: () -> Void)] = [
            ("a request handed to the connection's task", { state.inFlight.withLock { $0 = 1 } }, { state.inFlight.withLock { $0 = 0 } }),
            ("a lone submit taken on the event loop", { state.writesTakenOnEventLoop.take() }, { state.writesTakenOnEventLoop.finish() }),
        ]
        for (what, take, letGo) in waits {
            take()
            channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
            #expect(channel.isActive, "closed while waiting for \(what)")
            letGo()
        }
        #expect(registry.statistics.closedIdle == 0)
        channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
        #expect(!channel.isActive, "a connection that waits for nothing stays open")
        #expect(registry.statistics.closedIdle == 1)
    }

    /// The start of a connection's pipeline as the server builds it, with an idle timeout of 2 s, connected on an
    /// `EmbeddedEventLoop` of its own, whose clock only the test moves.
    private static func idleTimedConnection(registry: ConnectionRegistry) throws -> (ConnectionState, EmbeddedChannel) {
        var limits = ServerLimits()
        limits.idleTimeoutSeconds = 2
        let state = ConnectionState(refused: false)
        let channel = EmbeddedChannel()
        try LedgerServer.addLineDecoderAndClosers(to: channel.pipeline.syncOperations, limits: limits, state: state, connections: registry)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7411)).wait()
        return (state, channel)
    }

    @Test("on the event loop's clock: a connection that sends no whole line for the idle timeout is closed then, unless it waits for an answer or holds a subscription; whole lines keep it open")
    func idleTimeoutOnTheEventLoopsClock() throws {
        let registry = ConnectionRegistry(maximum: 8)
        let (_, silent) = try Self.idleTimedConnection(registry: registry)
        let (_, halfLine) = try Self.idleTimedConnection(registry: registry)
        try halfLine.writeInbound(ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"serv"#))
        let (_, trickle) = try Self.idleTimedConnection(registry: registry)
        let (_, busy) = try Self.idleTimedConnection(registry: registry)
        let (waitingState, waiting) = try Self.idleTimedConnection(registry: registry)
        waitingState.inFlight.withLock { $0 = 1 }
        let (subscriberState, subscriber) = try Self.idleTimedConnection(registry: registry)
        subscriberState.subscriptions.withLock { $0.active = 1 }
        let all = [silent, halfLine, trickle, busy, waiting, subscriber]
        defer { for channel in all { _ = try? channel.finish(acceptAlreadyClosed: true) } }
        // Every 0.1 s the busy connection sends a whole line and the trickling one a byte that ends none.
        func tick() throws {
            for channel in all { channel.embeddedEventLoop.advanceTime(by: .milliseconds(100)) }
            if trickle.isActive { try trickle.writeInbound(ByteBuffer(string: " ")) }
            if busy.isActive {
                try busy.writeInbound(ByteBuffer(string: "{}\n"))
                let line = try busy.readInbound(as: LineFrame.self)
                #expect(line != nil)
            }
        }
        for _ in 0..<19 { try tick() }
        let allOpen = all.allSatisfy { $0.isActive }
        #expect(allOpen, "closed before the idle timeout")
        try tick()
        #expect(!silent.isActive, "the silent connection is still open")
        #expect(!halfLine.isActive, "the half line's connection is still open")
        #expect(!trickle.isActive, "the trickling connection is still open")
        for _ in 0..<30 { try tick() }
        #expect(busy.isActive, "the busy connection was closed")
        #expect(waiting.isActive, "the connection waiting for an answer was closed")
        #expect(subscriber.isActive, "the subscriber was closed")
        #expect(registry.statistics.closedIdle == 3)
        // Answered, the waiting connection waits for nothing more: closed within one more timeout.
        waitingState.inFlight.withLock { $0 = 0 }
        waiting.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!waiting.isActive, "the answered connection is still open")
        #expect(registry.statistics.closedIdle == 4)
    }

    @Test("refusals made on reading lines are bounded per connection: a client sending faster than it reads them is closed, its later lines dropped")
    func floodOfRefusalsClosesTheConnection() async throws {
        let harness = try Harness(maximumQueuedRefusals: 16)
        let state = ConnectionState(refused: false)
        let channel = try harness.channel(state: state)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7411)).get()
        // Lines that are not JSON, none of whose refusals the connection's task writes (it is not running here):
        // each is handed on until 16 wait, then the connection closes and the rest are dropped.
        for _ in 0..<100 { try channel.writeInbound(LineFrame.line(ByteBuffer(string: "x"))) }
        var handedOn = 0
        while let message = try channel.readInbound(as: ConnectionMessage.self) {
            guard case .answer(let answer) = message else { Issue.record("not a refusal: \(message)"); break }
            #expect(answer["error"]?["code"] == -32700)
            handedOn += 1
        }
        #expect(handedOn == 16)
        #expect(state.queuedRefusals.withLock { $0 } == 16)
        #expect(!channel.isActive)
        #expect(harness.registry.statistics.closedUnread == 1)
        // Below the bound (the task writing as fast as they come) a connection is never closed for its refusals.
        let second = ConnectionState(refused: false)
        let open = try harness.channel(state: second)
        try await open.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7411)).get()
        for _ in 0..<100 {
            try open.writeInbound(LineFrame.line(ByteBuffer(string: "x")))
            _ = try open.readInbound(as: ConnectionMessage.self)
            second.queuedRefusals.withLock { $0 -= 1 }
        }
        #expect(open.isActive)
        _ = try? open.finish()
        await harness.stop()
    }

    /// The start of a connection's pipeline as the server builds it, with a write stall timeout of 60 s and no idle
    /// timeout, connected on an `EmbeddedEventLoop` of its own, whose clock only the test moves.
    private static func stallTimedConnection(registry: ConnectionRegistry) throws -> EmbeddedChannel {
        var limits = ServerLimits()
        limits.writeStallTimeoutSeconds = 60
        limits.idleTimeoutSeconds = nil
        let channel = EmbeddedChannel()
        try LedgerServer.addLineDecoderAndClosers(
            to: channel.pipeline.syncOperations, limits: limits, state: ConnectionState(refused: false), connections: registry)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7411)).wait()
        return channel
    }

    /// What the channel does when its socket fills up (unwritable) or drains (writable).
    private static func setWritable(_ channel: EmbeddedChannel, _ writable: Bool) {
        channel.isWritable = writable
        channel.pipeline.fireChannelWritabilityChanged()
    }

    @Test("on the event loop's clock: a connection unwritable with no write completing is closed at the write stall timeout after it turned unwritable, not a timeout later")
    func writeStallClosesAtTheTimeout() throws {
        let registry = ConnectionRegistry(maximum: 8)
        let channel = try Self.stallTimedConnection(registry: registry)
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        // A write completed 1 s before the stall: a timer counted from the last completed write (IdleStateHandler's)
        // fired at 60 s with the channel unwritable for 59, kept it, and fired next at 120.
        try channel.writeOutbound(ByteBuffer(string: "an answer\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        Self.setWritable(channel, false)
        channel.embeddedEventLoop.advanceTime(by: .seconds(60) - .milliseconds(1))
        #expect(channel.isActive, "closed before the timeout")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive, "still open at the timeout")
        #expect(registry.statistics.closedUnread == 1 && registry.statistics.closedIdle == 0)
    }

    @Test("a write completing while the connection is unwritable moves the stall's deadline: a client that reads slowly but steadily is never closed")
    func completedWritesMoveTheStallDeadline() throws {
        let registry = ConnectionRegistry(maximum: 8)
        let channel = try Self.stallTimedConnection(registry: registry)
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        // Handed to the channel while writable, on the socket 40 s into the stall: the timeout counts from then.
        channel.write(ByteBuffer(string: "an answer\n"), promise: nil)
        Self.setWritable(channel, false)
        channel.embeddedEventLoop.advanceTime(by: .seconds(40))
        channel.flush()
        channel.embeddedEventLoop.advanceTime(by: .seconds(60) - .milliseconds(1))
        #expect(channel.isActive, "closed before the timeout counted from the completed write")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive, "still open a timeout after the last completed write")
        #expect(registry.statistics.closedUnread == 1)
        // Unwritable throughout, one slice completing every 50 s for 1000 s: kept; then nothing more: closed.
        let reader = try Self.stallTimedConnection(registry: registry)
        defer { _ = try? reader.finish(acceptAlreadyClosed: true) }
        Self.setWritable(reader, false)
        for _ in 0..<20 {
            reader.embeddedEventLoop.advanceTime(by: .seconds(50))
            try reader.writeOutbound(ByteBuffer(string: "a slice\n"))
        }
        #expect(reader.isActive, "a client that reads slowly but steadily was closed")
        reader.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(!reader.isActive, "still open a timeout after its last completed write")
        #expect(registry.statistics.closedUnread == 2 && registry.statistics.closedIdle == 0)
    }

    @Test("a connection that turns writable again is not closed for a stall, however long it then writes nothing; a new stall gets a whole timeout")
    func writableAgainCancelsTheStall() throws {
        let registry = ConnectionRegistry(maximum: 8)
        let channel = try Self.stallTimedConnection(registry: registry)
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        Self.setWritable(channel, false)
        channel.embeddedEventLoop.advanceTime(by: .seconds(50))
        // Its client read: writable, with nothing to write for two timeouts. Kept.
        Self.setWritable(channel, true)
        channel.embeddedEventLoop.advanceTime(by: .seconds(120))
        #expect(channel.isActive, "closed while writable")
        // Its socket just filled up after that quiet spell: the whole timeout from now.
        Self.setWritable(channel, false)
        channel.embeddedEventLoop.advanceTime(by: .seconds(60) - .milliseconds(1))
        #expect(channel.isActive, "closed before a whole timeout of the new stall")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive, "still open at the new stall's timeout")
        #expect(registry.statistics.closedUnread == 1)
        // Closed for another reason during a stall: its check goes with it, nothing counted.
        let closed = try Self.stallTimedConnection(registry: registry)
        Self.setWritable(closed, false)
        closed.embeddedEventLoop.advanceTime(by: .seconds(30))
        _ = try closed.finish()
        closed.embeddedEventLoop.advanceTime(by: .seconds(120))
        #expect(registry.statistics.closedUnread == 1 && registry.statistics.closedIdle == 0)
    }

    @Test("a connection past the connection bound is never served: its lines are dropped unread")
    func refusedConnectionDropsLines() async throws {
        let harness = try Harness()
        let state = ConnectionState(refused: true)
        let channel = try harness.channel(state: state)
        try channel.writeInbound(Self.line(RPCMessage.request(id: 1, method: "server.info", params: [:])))
        try channel.writeInbound(Self.line(RPCMessage.request(id: 2, method: "submit", params: [:])))
        #expect(try channel.readInbound(as: ConnectionMessage.self) == nil)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(harness.registry.inFlight == 0 && harness.registry.answeredOnEventLoop == 0)
        _ = try channel.finish()
        await harness.stop()
    }
}

/// The framing of Specs/protocol.md 1, byte by byte on an `EmbeddedChannel`.
@Suite("the line decoder")
struct LineFrameDecoderTests {
    /// The frames the decoder passes on for `chunks` written one after another, then for the end of the stream.
    private static func frames(_ chunks: [String], maximumFrameBytes: Int = 8) throws -> [String] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maximumFrameBytes: maximumFrameBytes)))
        for chunk in chunks { try channel.writeInbound(ByteBuffer(string: chunk)) }
        _ = try channel.finish(acceptAlreadyClosed: true)
        return try frames(of: channel)
    }

    /// The frames `channel` has passed on since the last call: a line as its text, one longer than 16 bytes as its size.
    private static func frames(of channel: EmbeddedChannel) throws -> [String] {
        var frames: [String] = []
        while let frame = try channel.readInbound(as: LineFrame.self) {
            switch frame {
            case .line(let buffer): frames.append(buffer.readableBytes > 16 ? "<\(buffer.readableBytes) bytes>" : String(buffer: buffer))
            case .oversize: frames.append("<oversize>")
            case .overloaded(let maximumBytes): frames.append("<overloaded \(maximumBytes)>")
            }
        }
        return frames
    }

    @Test("unfinished lines are counted over every connection: a line growing past 4096 bytes while the others hold more than the bound is dropped and passed on as overloaded; lines within 4096 bytes, and a line held alone, are always taken; every byte counted is let go")
    func unfinishedLinesBound() throws {
        let unfinished = UnfinishedLineBytes(maximumBytes: 8000)
        func connection() -> EmbeddedChannel {
            EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maximumFrameBytes: 20_000, unfinishedLines: unfinished)))
        }
        func bytes(_ count: Int) -> ByteBuffer { ByteBuffer(repeating: UInt8(ascii: "x"), count: count) }
        let first = connection(), second = connection(), third = connection()
        // Alone, a line past the bound is taken.
        try first.writeInbound(bytes(9000))
        #expect(unfinished.bytes == 9000)
        // Within 4096 bytes a line is taken past the bound too.
        try second.writeInbound(bytes(3000))
        #expect(unfinished.bytes == 12_000)
        // Growing past 4096 bytes while others hold more than the bound: dropped, and what it held let go.
        try second.writeInbound(bytes(2000))
        #expect(unfinished.bytes == 9000)
        try second.writeInbound(bytes(500))
        #expect(unfinished.bytes == 9000, "the rest of a dropped line is not counted")
        try second.writeInbound(ByteBuffer(string: "\nab\n"))
        #expect(try Self.frames(of: second) == ["<overloaded 8000>", "ab"])
        // A whole line is let go of as it is passed on; a line in one read is never counted.
        try first.writeInbound(ByteBuffer(string: "\n"))
        #expect(try Self.frames(of: first) == ["<9000 bytes>"])
        #expect(unfinished.bytes == 0)
        try third.writeInbound(bytes(6000))
        try third.writeInbound(ByteBuffer(string: "\n"))
        #expect(try Self.frames(of: third) == ["<6000 bytes>"])
        // Within the bound two lines are taken; closing (the last line passed on) and removing the decoder let go.
        try first.writeInbound(bytes(5000))
        try second.writeInbound(bytes(3000))
        #expect(unfinished.bytes == 8000)
        _ = try first.finish(acceptAlreadyClosed: true)
        #expect(try Self.frames(of: first) == ["<5000 bytes>"])
        #expect(unfinished.bytes == 3000)
        let decoder = try second.pipeline.syncOperations.context(handlerType: ByteToMessageHandler<LineFrameDecoder>.self)
        let removed = second.pipeline.syncOperations.removeHandler(context: decoder)
        // The removal runs on the loop, which an embedded channel runs only when asked to.
        second.embeddedEventLoop.run()
        try removed.wait()
        #expect(unfinished.bytes == 0)
        _ = try second.finish(acceptAlreadyClosed: true)
        _ = try third.finish(acceptAlreadyClosed: true)
    }

    @Test("a carriage return before the newline is not part of the line and does not count against the bound")
    func carriageReturnIsNotCounted() throws {
        #expect(try Self.frames(["12345678\r\n"]) == ["12345678"])
        #expect(try Self.frames(["12345678\r", "\n", "ab\n"]) == ["12345678", "ab"])
        #expect(try Self.frames(["12345678", "\r", "\n"]) == ["12345678"])
        #expect(try Self.frames(["123456789\n", "ab\n"]) == ["<oversize>", "ab"])
        #expect(try Self.frames(["123456789\r\n"]) == ["<oversize>"])
        #expect(try Self.frames(["1234567890", "12\r\n", "ab\r\n"]) == ["<oversize>", "ab"])
        // The last line of a stream needs no newline, and is held to the same bound.
        #expect(try Self.frames(["ab\n", "12345678"]) == ["ab", "12345678"])
        #expect(try Self.frames(["ab\n", "123456789"]) == ["ab", "<oversize>"])
        // A last line already being dropped (past the bound and its slack) when the stream ends is answered too.
        #expect(try Self.frames(["ab\n", "1234567890"]) == ["ab", "<oversize>"])
        #expect(try Self.frames(["1234567890", "12"]) == ["<oversize>"])
    }
}

@Suite("the read nonce store")
struct NonceStoreTests {
    @Test("one actor's signed reads are bounded apart from the store's: past its share it alone is refused, until its nonces expire")
    func oneActorCannotFillTheStore() throws {
        let (store, monotonic) = Self.store(capacity: 10, capacityPerActor: 3, windowSeconds: 1)
        let now: Int64 = 1_000_000
        for number in 0..<3 { try store.use(actor: "flood", nonce: "n\(number)", nowMilliseconds: now) }
        do {
            try store.use(actor: "flood", nonce: "n3", nowMilliseconds: now)
            Issue.record("a fourth nonce of one actor was taken")
        } catch {
            #expect(error.code == .overloaded)
            #expect(error.message.contains("read in a session"), "\(error.message)")
        }
        // Everyone else still reads, up to the store's own bound.
        for number in 0..<3 { try store.use(actor: "shop-\(number)", nonce: "x", nowMilliseconds: now) }
        // A nonce used is still refused as a replay, whatever the counts.
        #expect(throws: LedgerError.self) { try store.use(actor: "shop-0", nonce: "x", nowMilliseconds: now) }
        // Once its nonces expire (twice the window has passed), the actor reads again.
        monotonic.withLock { $0 += 2_001 }
        try store.use(actor: "flood", nonce: "n4", nowMilliseconds: now + 2_001)
        try store.use(actor: "flood", nonce: "n5", nowMilliseconds: now + 2_001)
    }

    /// A store whose monotonic clock the test sets (it starts at 0).
    private static func store(capacity: Int, capacityPerActor: Int, windowSeconds: Int) -> (NonceStore, monotonic: Locked<Int64>) {
        let monotonic = Locked<Int64>(0)
        let store = NonceStore(capacity: capacity, capacityPerActor: capacityPerActor, windowSeconds: windowSeconds, monotonicMilliseconds: { monotonic.withLock { $0 } })
        return (store, monotonic)
    }

    /// 2026-12-06T10:00:00Z, and a signed read's window of 300 s: nonces are kept 600 s.
    private static let wallStart: Int64 = 1_796_551_200_000
    private static let day: Int64 = 86_400_000

    @Test("a wall clock set back a day keeps the nonces used before it, and still forgets the ones used after it")
    func wallClockSetBack() throws {
        let (store, monotonic) = Self.store(capacity: 3, capacityPerActor: 3, windowSeconds: 300)
        try store.use(actor: "bene-1", nonce: "before", nowMilliseconds: Self.wallStart)
        // The clock is set back a day: the store fills with reads made after that.
        monotonic.withLock { $0 = 1_000 }
        try store.use(actor: "bene-2", nonce: "after-1", nowMilliseconds: Self.wallStart - Self.day)
        try store.use(actor: "bene-3", nonce: "after-2", nowMilliseconds: Self.wallStart - Self.day)
        // 601 s later by both clocks the two reads made after the change are forgotten, and a new read is taken.
        monotonic.withLock { $0 = 602_000 }
        try store.use(actor: "bene-4", nonce: "later", nowMilliseconds: Self.wallStart - Self.day + 601_000)
        // The read made before the change becomes valid again when the clock reaches its time: its nonce is kept.
        monotonic.withLock { $0 = Self.day }
        #expect(throws: LedgerError.self) { try store.use(actor: "bene-1", nonce: "before", nowMilliseconds: Self.wallStart + 1_000) }
        try store.use(actor: "bene-1", nonce: "before", nowMilliseconds: Self.wallStart + 601_000)
    }

    @Test("a wall clock that jumps a day ahead and back does not forget the nonces of requests valid again")
    func wallClockAheadAndBack() throws {
        let (store, monotonic) = Self.store(capacity: 10, capacityPerActor: 10, windowSeconds: 300)
        try store.use(actor: "bene-1", nonce: "captured", nowMilliseconds: Self.wallStart)
        monotonic.withLock { $0 = 1_000 }
        try store.use(actor: "bene-2", nonce: "while-ahead", nowMilliseconds: Self.wallStart + Self.day)
        // The clock is set right: the captured request's ts is 2 s old, within the window, and is a replay.
        monotonic.withLock { $0 = 2_000 }
        do {
            try store.use(actor: "bene-1", nonce: "captured", nowMilliseconds: Self.wallStart + 2_000)
            Issue.record("a request replayed after the clock came back was taken")
        } catch {
            #expect(error.code == .requestReplayed)
        }
    }

    @Test("nonces waiting for a wall clock set back are forgotten in the order of their wall-clock expiry, each only once its own has passed")
    func noncesWaitInWallClockOrder() throws {
        let (store, monotonic) = Self.store(capacity: 10, capacityPerActor: 10, windowSeconds: 300)
        // Used at one monotonic moment, with times out of order (a clock being set): their wall-clock expiries are
        // not in the order the store took them, so the ones waiting for the wall clock must be kept ordered.
        let offsets: [(nonce: String, milliseconds: Int64)] = [("a", 30_000), ("b", 10_000), ("c", 20_000), ("d", 40_000), ("e", 5_000)]
        for (nonce, milliseconds) in offsets { try store.use(actor: "bene-1", nonce: nonce, nowMilliseconds: Self.wallStart + milliseconds) }
        // Past every monotonic expiry, with the wall clock set back a day: all five wait for the wall clock.
        monotonic.withLock { $0 = 700_000 }
        #expect(store.rememberedCount(nowMilliseconds: Self.wallStart - Self.day) == 5)
        for (after, left) in [(Int64(606_000), ["a", "b", "c", "d"]), (611_000, ["a", "c", "d"]), (621_000, ["a", "d"]), (631_000, ["d"]), (641_000, [])] {
            let now = Self.wallStart + after
            #expect(store.rememberedCount(nowMilliseconds: now) == left.count, "at +\(after) ms")
            for nonce in left {
                do {
                    try store.use(actor: "bene-1", nonce: nonce, nowMilliseconds: now)
                    Issue.record("nonce \(nonce) was forgotten before its wall-clock expiry (at +\(after) ms)")
                } catch {
                    #expect(error.code == .requestReplayed)
                }
            }
        }
    }
}
