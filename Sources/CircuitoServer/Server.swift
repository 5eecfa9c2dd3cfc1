import CircuitoCore
import CircuitoCredentials
import CircuitoCrypto
import CircuitoStorage
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Where and how `circuito serve` listens.
public struct ServerConfiguration: Sendable {
    public var directory: String
    /// TCP host and port (port 0: an ephemeral port, see `LedgerServer.tcpPort`); nil for no TCP listener.
    public var tcpHost: String?
    public var tcpPort: Int
    /// A Unix socket path (an existing socket file there is replaced); nil for none.
    public var unixSocketPath: String?
    public var limits: ServerLimits
    public var eventLoopThreads: Int
    /// Keys of organisations that entrust the server with signing their badge credentials (`badge.credential`,
    /// `badge.status_list`); without one, those methods point to `circuito badge credential`.
    public var credentialIssuerKeys: [Ed25519PrivateKey] = []
    /// The JSON-LD contexts credentials are processed with (needed by `eddsa-rdfc-2022`).
    public var credentialContexts: JSONLDContextStore?
    /// The ledger's LMDB options: the server's, unless an operator sets the map size (`--map-size`).
    public var storageOptions: LMDBEnvironment.Options = .server
    /// The time reads are answered at (signed reads' windows, sessions, which lots have expired), in milliseconds
    /// since 1970; the writer's records take the system clock. Another clock is for tests.
    public var readClockMilliseconds: @Sendable () -> Int64 = Ledger.systemClockMilliseconds
    /// Whether the writer goes on recording, at the last record's `recorded_at`, while the clock reads more than
    /// `Timestamp.maximumClockBehindMilliseconds` behind it; otherwise it refuses with `clock_behind` (Specs/ledger.md
    /// 5.3). The operator's `--accept-clock-behind`, after a commit made while the clock ran ahead.
    public var acceptsClockBehind = false
    /// The monotonic clock, in milliseconds from any fixed point, that durations on the read side are measured by:
    /// the lifetimes of session challenges and of remembered nonces, which a wall clock set meanwhile must neither
    /// shorten nor lengthen. Another clock is for tests.
    public var monotonicMilliseconds: @Sendable () -> Int64 = monotonicClockMilliseconds
    /// Told, on the writer's planner thread, when writes start being refused because of the clock (`clock_behind`,
    /// `clock_jumped`, `clock_out_of_range`: the error) and when the clock is taken again (nil); once per change. It
    /// must not block.
    public var onClockRefusalChange: @Sendable (LedgerError?) -> Void = { _ in }
    /// Told, on the writer's committer thread, when commits start failing for an operating error that a later commit
    /// may not meet (a full disk, `map_full`: the error), and when one succeeds again after that (nil); once per
    /// change. It must not block (`LedgerWriter.start`).
    public var onCommitFailureChange: @Sendable (LedgerError?) -> Void = { _ in }
    /// What starts the writer's and the request threads: the system's; tests make a chosen start fail.
    var threads: ThreadStarter = .system

    public init(directory: String, tcpHost: String? = "127.0.0.1", tcpPort: Int = 7411, unixSocketPath: String? = nil, limits: ServerLimits = ServerLimits()) {
        self.directory = directory
        self.tcpHost = tcpHost
        self.tcpPort = tcpPort
        self.unixSocketPath = unixSocketPath
        self.limits = limits
        self.eventLoopThreads = max(1, System.coreCount)
    }
}

/// The socket API server: JSON-RPC 2.0, one message per line, over TCP and a Unix socket, on SwiftNIO.
///
/// Each line is decoded on its connection's event loop (`RequestLineHandler`), which answers a short read there, or
/// checks a `submit`'s signatures there and hands it to the writer, when nothing else is in flight in the server.
/// Every other request runs in a child task of its connection (at most
/// `maximumInFlightPerConnection` at once), on the server's own threads (`ServerExecutor`, one per core), so reads
/// and signature checks run on all cores, while writes go to the `LedgerWriter`'s two threads. Shutdown: stop accepting, let the writer commit what it has taken, give
/// requests already taken `shutdownGraceSeconds` to answer, then close every connection and the ledger.
public final class LedgerServer: Sendable {
    public let tcpPort: Int?
    public let unixSocketPath: String?
    /// The socket file this server bound (device and inode), so that shutdown removes that file and no other.
    private let unixSocketIdentity: UnixSocketFile.Identity?
    public let verifierKey: String

    private let group: MultiThreadedEventLoopGroup
    private let listeners: [NIOAsyncChannel<AcceptedConnection, Never>]
    private let context: ServerContext
    private let connections: ConnectionRegistry
    private let unserved: UnservedConnections
    /// The connection counters now (`server.info`'s `connections`), for tests that must look while requests are refused.
    var connectionStatistics: ConnectionStatistics { connections.statistics }
    /// Subscriptions live and listed over every connection (`ConnectionRegistry.subscriptionCounts`), for tests.
    var subscriptionCounts: (live: Int, listed: Int) { connections.subscriptionCounts }
    private let acceptTask: Locked<Task<Void, Never>?>
    private let storageFailure: StorageFailureReport

    /// Runs `handler` once, on the writer's committer thread (or at once, when it already happened), when a commit
    /// left the ledger's storage failed (LMDB's `MDB_PANIC`, after a failed write of a meta page): from then on every
    /// write and read of this process is answered `storage_error`, and only a new process can open the ledger again,
    /// so its owner should shut the server down and exit with a failure for a supervisor to start it again. The
    /// handler must not block.
    public func onStorageFailure(_ handler: @escaping @Sendable (LedgerError) -> Void) {
        storageFailure.onReport(handler)
    }
    /// The one shutdown, started by the first call of `shutdown`; every call waits for it to end.
    private let shutdownTask: Locked<Task<Void, Never>?>

    /// Connections waiting to be accepted, on each listener.
    static let listenBacklog: Int32 = 256

    /// Why a listener could not be opened, in words: NIO's errors name its own internals (`bind(descriptor:…)`).
    public static func listenFailure(_ error: any Error, configuration: ServerConfiguration) -> String {
        var places: [String] = []
        if let host = configuration.tcpHost { places.append("\(Endpoint.tcp(host: host, port: configuration.tcpPort))") }
        if let path = configuration.unixSocketPath { places.append(path) }
        let reason: String
        if let failure = error as? IOError {
            reason = String(cString: strerror(failure.errnoCode))
        } else if error is UnixDomainSocketPathWrongType || error is UnixSocketFile.NotASocket {
            reason = "the socket path is there and is not a socket (it is left as it is)"
        } else {
            reason = "\(error)"
        }
        return "cannot listen on \(places.joined(separator: " and ")): \(reason)"
    }

    public static func start(_ configuration: ServerConfiguration) async throws -> LedgerServer {
        let limits = configuration.limits
        guard limits.maximumCommitBatch >= 1, limits.maximumCommitBatch <= Ledger.maximumBatchCount,
            limits.maximumEventsPerBatchRequest >= 1, limits.maximumEventsPerBatchRequest <= limits.maximumCommitBatch,
            limits.maximumQueuedWrites >= 1, limits.maximumQueuedEvents >= limits.maximumEventsPerBatchRequest,
            limits.maximumFrameBytes >= 1024, limits.maximumInFlightPerConnection >= 1, limits.maximumConnections >= 1
        else {
            throw LedgerError(.invalidRange, "server limits are inconsistent: a batch request must fit in one commit of at most \(Ledger.maximumBatchCount) events")
        }
        guard limits.maximumSubscriberBufferRecords >= 1, (limits.idleTimeoutSeconds ?? 1) >= 1, (limits.writeStallTimeoutSeconds ?? 1) >= 1,
            limits.maximumQueuedRefusalsPerConnection >= 1
        else {
            throw LedgerError(.invalidRange, "server limits are inconsistent: a subscriber buffer, the timeouts and the refusals a connection may queue are at least 1")
        }
        // Durations are turned into milliseconds and added to clock readings: past a year they mean nothing a server
        // needs, and near Int.max (a caller's "never") they overflow, which stops the process at its first request.
        let year = ServerLimits.maximumDurationSeconds
        guard (1...year).contains(limits.readRequestWindowSeconds), (0...year).contains(limits.shutdownGraceSeconds),
            (0...year * 1000).contains(limits.subscriberCutOffGraceMilliseconds), (limits.idleTimeoutSeconds ?? 1) <= year,
            (limits.writeStallTimeoutSeconds ?? 1) <= year, (1...year).contains(limits.allocatorTrimIntervalSeconds ?? 1)
        else {
            throw LedgerError(.invalidRange, "server limits are inconsistent: the read window, the timeouts, the graces and the trim interval are at most \(year) seconds (366 days); the window, timeouts and interval at least 1, the graces at least 0")
        }
        guard configuration.tcpHost != nil || configuration.unixSocketPath != nil else {
            throw LedgerError(.invalidRange, "the server needs a TCP address or a Unix socket to listen on")
        }
        // An empty path would bind Linux's abstract namespace: no file, and no file permissions guarding it.
        guard configuration.unixSocketPath?.isEmpty != true else {
            throw LedgerError(.invalidRange, "the Unix socket path is empty (an unset variable?); give a path for --unix")
        }
        let hub = SubscriptionHub(size: 0, maximumLagRecords: limits.maximumSubscriberBufferRecords)
        let storageFailure = StorageFailureReport()
        // A thread that cannot be started (the process is at a limit of threads) stops the start with
        // `thread_start_failed`: the writer's, before anything is written, or a request thread's.
        let writer = try LedgerWriter.start(
            directory: configuration.directory, limits: limits, options: configuration.storageOptions,
            acceptsClockBehind: configuration.acceptsClockBehind, onClockRefusalChange: configuration.onClockRefusalChange, threads: configuration.threads,
            onStorageFailure: { error in storageFailure.report(error) }, onCommitFailureChange: configuration.onCommitFailureChange
        ) { size in hub.publish(size: size) }
        // From here on a failure to start stops the writer (its threads, the ledger and its writer lock).
        let size: UInt64
        let executor: ServerExecutor
        do {
            size = try writer.reader.size()
            executor = try ServerExecutor(threadCount: configuration.eventLoopThreads, threads: configuration.threads)
        } catch {
            await writer.stop()
            // As at shutdown: closed now, so that the caller may open the ledger again.
            _ = writer.reader.close(timeoutMilliseconds: Self.closeTimeoutMilliseconds)
            throw error
        }
        hub.publish(size: size)
        let connections = ConnectionRegistry(maximum: limits.maximumConnections, maximumUnfinishedLineBytes: limits.maximumUnfinishedLineBytes)
        let unserved = UnservedConnections()
        let context = ServerContext(
            reader: writer.reader, writer: writer, hub: hub,
            nonces: NonceStore(
                capacity: limits.maximumRememberedNonces, capacityPerActor: limits.maximumRememberedNoncesPerActor,
                windowSeconds: limits.readRequestWindowSeconds, monotonicMilliseconds: configuration.monotonicMilliseconds),
            limits: limits, clock: configuration.readClockMilliseconds, monotonicMilliseconds: configuration.monotonicMilliseconds, executor: executor,
            credentials: CredentialSigning(keys: configuration.credentialIssuerKeys, contexts: configuration.credentialContexts),
            connections: connections,
            allocatorTrimmer: limits.allocatorTrimIntervalSeconds.map { AllocatorTrimmer(intervalMilliseconds: $0 * 1000) })
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        var listeners: [NIOAsyncChannel<AcceptedConnection, Never>] = []
        var unixSocketIdentity: UnixSocketFile.Identity?
        do {
            var bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: ChannelOptions.Types.BacklogOption.Value(Self.listenBacklog))
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                // A client may shut down its sending side and still read the answers to what it sent.
                .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            if let bytes = limits.socketSendBufferBytes {
                bootstrap = bootstrap.childChannelOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(bytes))
            }
            let initializer: @Sendable (Channel) -> EventLoopFuture<AcceptedConnection> = { channel in
                channel.eventLoop.makeCompletedFuture {
                    let admitted = try unserved.admit { () throws -> AcceptedConnection in
                        try Self.prepare(channel, limits: limits, context: context, connections: connections)
                    }
                    guard let admitted else {
                        // Shutdown has begun. Closed here, unwrapped (so there is no writer to finish); the failed
                        // initializer makes NIO neither register it nor hand it on.
                        channel.close(promise: nil)
                        throw ChannelError.ioOnClosedChannel
                    }
                    return admitted
                }
            }
            if let host = configuration.tcpHost {
                listeners.append(try await bootstrap.bind(host: host, port: configuration.tcpPort, childChannelInitializer: initializer))
            }
            if let path = configuration.unixSocketPath {
                // Bound here, not by NIO: NIO removes a socket file at the path before it binds and again when it
                // closes, whoever made it, and a running process's socket taken over would send its clients here.
                let socket = try UnixSocketFile.bindAndListen(path, backlog: Self.listenBacklog)
                unixSocketIdentity = UnixSocketFile.identity(path)
                listeners.append(try await bootstrap.bind(socket, childChannelInitializer: initializer))
                // NIO listens again on a socket it adopts, with its own backlog of 128: set ours back.
                _ = listen(socket, Self.listenBacklog)
            }
        } catch {
            await Self.stopListening(listeners, unserved: unserved, connections: connections)
            // The listeners opened before the failure were never served (no accept loop ran them): released here,
            // while their event loops run, since releasing one tells its loop (its inbound stream's end), and at the
            // function's exit the loops are shut down (SwiftNIO then reports a task scheduled on a loop that has shut
            // down, and says that this will become a crash).
            listeners.removeAll()
            // The socket file this start bound, when a later step failed (NIO leaves an adopted socket's file).
            if let path = configuration.unixSocketPath, let identity = unixSocketIdentity { UnixSocketFile.remove(path, ifStill: identity) }
            await writer.stop()
            try? await group.shutdownGracefully()
            context.executor.stop()
            context.allocatorTrimmer?.stop()
            // As at shutdown: closed now, not with the last reference, so that the caller may open the ledger again.
            _ = context.reader.close(timeoutMilliseconds: Self.closeTimeoutMilliseconds)
            // A host that does not resolve is the caller's mistake, not an operating error like a port in use.
            // So is a socket path longer than an address holds (NIO names it by its own case).
            if case SocketAddressError.unixDomainSocketPathTooLong = error, let path = configuration.unixSocketPath {
                throw LedgerError(
                    .invalidRange,
                    "cannot listen on \(path): a Unix socket path is at most \(Endpoint.maximumUnixSocketPathBytes) bytes, this one has \(path.utf8.count); give a shorter --unix path")
            }
            if error is SocketAddressError || error is SocketAddressError.UnknownHost, let host = configuration.tcpHost {
                throw LedgerError(.invalidRange, "cannot listen on \(host) port \(configuration.tcpPort): the host does not resolve to an address (\(error))")
            }
            throw error
        }
        let tcpPort = configuration.tcpHost == nil ? nil : listeners.first?.channel.localAddress?.port
        let server = LedgerServer(
            tcpPort: tcpPort, unixSocketPath: configuration.unixSocketPath, verifierKey: writer.verifierKey, group: group,
            listeners: listeners, context: context, connections: connections, unserved: unserved,
            unixSocketIdentity: unixSocketIdentity, storageFailure: storageFailure)
        server.startAccepting()
        return server
    }

    /// A connection's pipeline, on its event loop: the line decoder, the idle and stall closers, the request handler and
    /// the async wrapper the accept loop serves it through.
    private static func prepare(
        _ channel: Channel, limits: ServerLimits, context: ServerContext, connections: ConnectionRegistry
    ) throws -> AcceptedConnection {
        // A subscriber of a quiet ledger only waits: without probes, one that vanished would hold its slot forever.
        // Before the count, so that a refused option leaves nothing counted.
        try limits.tcpKeepAlive?.apply(to: channel)
        // Counted here, before the first line can arrive: a connection past the bound is never served.
        let (identifier, state) = connections.add(channel) { refused in
            ConnectionState(refused: refused, monotonicMilliseconds: context.monotonicMilliseconds)
        }
        try addLineDecoderAndClosers(to: channel.pipeline.syncOperations, limits: limits, state: state, connections: connections)
        try channel.pipeline.syncOperations.addHandler(RequestLineHandler(state: state, server: context, registry: connections))
        let wrapped = try NIOAsyncChannel<ConnectionMessage, ByteBuffer>(
            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: false))
        return AcceptedConnection(channel: wrapped, state: state, identifier: identifier)
    }

    /// The start of a connection's pipeline: the line decoder, then the idle and stall closers. Also what tests
    /// build on an `EmbeddedChannel`, whose clock they move, to see the idle and stall timeouts' effects without
    /// waiting for them.
    static func addLineDecoderAndClosers(
        to pipeline: ChannelPipeline.SynchronousOperations, limits: ServerLimits, state: ConnectionState, connections: ConnectionRegistry
    ) throws {
        try pipeline.addHandler(
            ByteToMessageHandler(LineFrameDecoder(maximumFrameBytes: limits.maximumFrameBytes, unfinishedLines: connections.unfinishedLines)))
        // After the decoder: only whole lines count as something sent, so bytes trickled without a
        // newline cannot hold a connection slot.
        if let idleTimeoutSeconds = limits.idleTimeoutSeconds {
            try pipeline.addHandler(LineIdleTimer(timeout: .seconds(Int64(idleTimeoutSeconds))))
        }
        if let writeStallTimeoutSeconds = limits.writeStallTimeoutSeconds {
            try pipeline.addHandler(WriteStallCloser(timeout: .seconds(Int64(writeStallTimeoutSeconds)), registry: connections))
        }
        if limits.idleTimeoutSeconds != nil {
            try pipeline.addHandler(IdleConnectionCloser(state: state, registry: connections))
        }
    }

    private init(
        tcpPort: Int?, unixSocketPath: String?, verifierKey: String, group: MultiThreadedEventLoopGroup,
        listeners: [NIOAsyncChannel<AcceptedConnection, Never>], context: ServerContext, connections: ConnectionRegistry,
        unserved: UnservedConnections, unixSocketIdentity: UnixSocketFile.Identity?, storageFailure: StorageFailureReport
    ) {
        self.storageFailure = storageFailure
        self.tcpPort = tcpPort
        self.unixSocketPath = unixSocketPath
        self.unixSocketIdentity = unixSocketIdentity
        self.verifierKey = verifierKey
        self.group = group
        self.listeners = listeners
        self.context = context
        self.connections = connections
        self.unserved = unserved
        self.acceptTask = Locked(nil)
        self.shutdownTask = Locked(nil)
    }

    private func startAccepting() {
        let listeners = self.listeners
        let context = self.context
        let connections = self.connections
        let unserved = self.unserved
        let task = Task(executorPreference: context.executor) {
            await withDiscardingTaskGroup { group in
                for listener in listeners {
                    group.addTask {
                        try? await listener.executeThenClose { inbound in
                            try await withThrowingDiscardingTaskGroup { connectionTasks in
                                for try await connection in inbound {
                                    // Shutdown has taken it to close.
                                    guard unserved.take(connection) else { continue }
                                    guard let identifier = connection.identifier else {
                                        connectionTasks.addTask { await Self.refuse(connection.channel, limit: context.limits.maximumConnections) }
                                        continue
                                    }
                                    connectionTasks.addTask {
                                        await Connection(channel: connection.channel, state: connection.state, context: context, registry: connections).run()
                                        connections.remove(identifier)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        acceptTask.withLock { $0 = task }
    }

    /// Admits no more connections, closes the listeners, then closes each connection the accept loop never took (its
    /// writer finished, as NIO requires of every wrapped channel). In that order: none is wrapped once the held ones
    /// are taken.
    private static func stopListening(
        _ listeners: [NIOAsyncChannel<AcceptedConnection, Never>], unserved: UnservedConnections, connections: ConnectionRegistry
    ) async {
        let unservedConnections = unserved.stopAccepting()
        for listener in listeners { try? await listener.channel.close() }
        for connection in unservedConnections {
            try? await connection.channel.executeThenClose { _, _ in }
            if let identifier = connection.identifier { connections.remove(identifier) }
        }
    }

    private static func refuse(_ connection: NIOAsyncChannel<ConnectionMessage, ByteBuffer>, limit: Int) async {
        let error = RPCError(LedgerError(.overloaded, "the server has \(limit) connections open; retry later"))
        try? await connection.executeThenClose { _, outbound in
            try await outbound.write(ByteBuffer(bytes: RPCMessage.line(RPCMessage.error(id: .null, error))))
        }
    }

    /// Stops accepting, lets the writer commit what it has taken, waits up to the grace for answers, closes every
    /// connection and the event loops, then closes the ledger (waiting up to `closeTimeoutMilliseconds` for reads
    /// still running): once it returns, this process may open the ledger again. The first call starts the shutdown and
    /// every call waits for its end, so that a second call (`serve`'s stop signal beside its storage failure) never
    /// returns before the ledger is closed, which would let `serve` exit with it open.
    public func shutdown() async {
        let task = shutdownTask.withLock { task -> Task<Void, Never> in
            if let task { return task }
            let started = Task { await self.shutDownOnce() }
            task = started
            return started
        }
        await task.value
    }

    private func shutDownOnce() async {
        await Self.stopListening(listeners, unserved: unserved, connections: connections)
        await context.writer.stop()
        let deadline = ContinuousClock.now + .seconds(context.limits.shutdownGraceSeconds)
        while connections.inFlight > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        context.hub.finishAll()
        connections.closeAll()
        await waitUntilStopped()
        try? await group.shutdownGracefully()
        context.executor.stop()
        context.allocatorTrimmer?.stop()
        // Only the socket file this server made: another may have been bound at the path since (after this one's
        // was removed by hand), and its clients must keep reaching it.
        if let unixSocketPath, let identity = unixSocketIdentity { UnixSocketFile.remove(unixSocketPath, ifStill: identity) }
        // Closed now, not with the last reference (a late task may hold one for a while), so that this process may
        // open the ledger again as soon as shutdown returns; a straggler's read fails with `storage_error`.
        if !context.reader.close(timeoutMilliseconds: Self.closeTimeoutMilliseconds) {
            FileHandle.standardError.write(Data("circuito: a read still held the ledger \(Self.closeTimeoutMilliseconds) ms after shutdown; it closes when that read ends\n".utf8))
        }
    }

    /// How long shutdown waits for reads still running before it closes the ledger.
    static let closeTimeoutMilliseconds = 10_000

    /// Returns once every listener and connection has ended.
    public func waitUntilStopped() async {
        let task = acceptTask.withLock { $0 }
        await task?.value
    }

    /// Requests taken on all connections and not yet answered.
    public var requestsInFlight: Int { connections.inFlight }

    /// Reads answered on an event loop since the server started, because nothing else was in flight
    /// (`RequestLineHandler`).
    public var readsAnsweredOnEventLoop: Int { connections.answeredOnEventLoop }

    /// Lone `submit`s taken on an event loop since the server started, because nothing else was in flight
    /// (`RequestLineHandler`).
    public var writesTakenOnEventLoop: Int { connections.writesTakenOnEventLoop }

    /// The number of records, as the server's reader sees it; `storage_error` once `shutdown` has closed the ledger.
    public func size() throws(LedgerError) -> UInt64 { try context.reader.size() }

    /// The server's reader (its LMDB environment: in the server's process, read the ledger through this one, since
    /// LMDB must not open one environment twice in a process). Its reads fail with `storage_error` once `shutdown`
    /// has closed the ledger; after that, open the ledger again (`LedgerReader.open`).
    public var reader: LedgerReader { context.reader }
}

/// What `ConnectionRegistry` counts, at one moment.
struct ConnectionStatistics: Sendable, Equatable {
    /// Connections being served (a connection refused past the bound is not counted).
    var open: Int
    /// Requests taken on all connections and not yet answered.
    var requestsInFlight: Int
    /// Reads answered on an event loop since the server started (`RequestLineHandler`).
    var readsAnsweredOnEventLoop: Int
    /// Lone `submit`s whose signatures were checked on an event loop and that went from there to the writer.
    var writesTakenOnEventLoop: Int
    /// Connections closed since the server started because they sent nothing for the idle timeout.
    var closedIdle: Int
    /// Connections closed because their client did not read: refusals piling up past the connection's bound, or
    /// answers left unread for the write stall timeout.
    var closedUnread: Int = 0
    /// Bytes of answers and subscription messages written and not yet on a socket (the server-wide bound's count).
    var unwrittenAnswerBytes: Int = 0
    /// Bytes the requests in flight hold decoded (`ServerLimits.maximumInFlightRequestBytes`' count).
    var inFlightRequestBytes: Int = 0
    /// Bytes of lines still arriving, buffered without their newline (`ServerLimits.maximumUnfinishedLineBytes`' count).
    var unfinishedLineBytes: Int = 0
    /// Subscriptions given their end since the server started because the server read the end of their client's
    /// side (a half-close, or the connection closed): counted once the end is set, before the stream has sent
    /// what it still owes.
    var subscriptionsEndedByHalfClose: Int = 0
    /// Subscriptions live over every connection: accepted and not ended (`ConnectionSubscriptions.active`).
    var subscriptions: Int = 0
}

/// Open connections, for the connection bound, the in-flight count and shutdown.
final class ConnectionRegistry: Sendable {
    private struct State {
        /// Each open connection's channel (closed at shutdown) and state (its subscriptions, counted over all).
        var connections: [Int: (channel: Channel, state: ConnectionState)] = [:]
        var nextIdentifier = 0
        var inFlight = 0
        var answeredOnEventLoop = 0
        var writesTakenOnEventLoop = 0
        var closedIdle = 0
        var closedUnread = 0
        var subscriptionsEndedByHalfClose = 0
    }

    private let state = Locked(State())
    private let maximum: Int
    /// The lines still arriving on every connection (`ServerLimits.maximumUnfinishedLineBytes`).
    let unfinishedLines: UnfinishedLineBytes

    init(maximum: Int, maximumUnfinishedLineBytes: Int = ServerLimits().maximumUnfinishedLineBytes) {
        self.maximum = maximum
        unfinishedLines = UnfinishedLineBytes(maximumBytes: maximumUnfinishedLineBytes)
    }

    /// Counts `channel` as open, with the state `makeState` makes for it, and returns its number; past the bound,
    /// counts nothing and returns nil with a refused state (`makeState(true)`).
    func add(_ channel: Channel, makeState: (_ refused: Bool) -> ConnectionState) -> (identifier: Int?, state: ConnectionState) {
        state.withLock { state in
            guard state.connections.count < maximum else { return (nil, makeState(true)) }
            state.nextIdentifier += 1
            let connectionState = makeState(false)
            state.connections[state.nextIdentifier] = (channel, connectionState)
            return (state.nextIdentifier, connectionState)
        }
    }

    func remove(_ identifier: Int) { state.withLock { _ = $0.connections.removeValue(forKey: identifier) } }

    /// Subscriptions over every open connection: `live`, accepted and not ended; `listed`, the entries of running
    /// streams the connections hold. Each connection's pair is read under its lock, not all at one instant.
    var subscriptionCounts: (live: Int, listed: Int) {
        // Each connection's lock taken after the registry's is let go: no lock is ever held under another here.
        let states = state.withLock { $0.connections.values.map(\.state) }
        var counts = (live: 0, listed: 0)
        // Bounded by the connection bound.
        for connectionState in states {
            let (live, listed) = connectionState.subscriptions.withLock { ($0.active, $0.streams.count) }
            counts.live += live
            counts.listed += listed
        }
        return counts
    }

    var inFlight: Int { state.withLock { $0.inFlight } }

    var answeredOnEventLoop: Int { state.withLock { $0.answeredOnEventLoop } }

    var writesTakenOnEventLoop: Int { state.withLock { $0.writesTakenOnEventLoop } }

    /// The counters read together, under one lock (the byte counts, atomics, and the live subscriptions, summed
    /// over the connections' own locks, are read beside it).
    var statistics: ConnectionStatistics {
        let subscriptions = subscriptionCounts.live
        return state.withLock {
            ConnectionStatistics(
                open: $0.connections.count, requestsInFlight: $0.inFlight, readsAnsweredOnEventLoop: $0.answeredOnEventLoop,
                writesTakenOnEventLoop: $0.writesTakenOnEventLoop, closedIdle: $0.closedIdle, closedUnread: $0.closedUnread,
                unwrittenAnswerBytes: unwrittenAnswerBytes, inFlightRequestBytes: requestBytesInFlight,
                unfinishedLineBytes: unfinishedLines.bytes,
                subscriptionsEndedByHalfClose: $0.subscriptionsEndedByHalfClose, subscriptions: subscriptions)
        }
    }

    func countClosedIdle() { state.withLock { $0.closedIdle += 1 } }

    func countClosedUnread() { state.withLock { $0.closedUnread += 1 } }

    func countSubscriptionsEndedByHalfClose(_ count: Int) {
        guard count > 0 else { return }
        state.withLock { $0.subscriptionsEndedByHalfClose += count }
    }

    /// Counts `bytes` of an answer as held unless the server already holds more than the server-wide bound; false
    /// (nothing counted) when it does.
    func reserveUnwrittenAnswerBytes(_ bytes: Int, maximum: Int) -> Bool {
        // Counted while what is held is within the bound (so one answer may take it past, and an answer larger than
        // the bound goes when nothing else is held).
        unwrittenAnswers.add(bytes) { current in current <= maximum }
    }

    func adjustInFlight(by delta: Int) { state.withLock { $0.inFlight += delta } }

    /// What the requests in flight hold decoded, over every connection.
    private let requestBytes = Atomic<Int>(0)

    var requestBytesInFlight: Int { requestBytes.load(ordering: .relaxed) }

    /// Counts `bytes` of a request taken when what is held stays within `maximum`, or when nothing is held (so that a
    /// request larger than the bound is still served alone); false, counting nothing, otherwise.
    func reserveRequestBytes(_ bytes: Int, maximum: Int) -> Bool {
        requestBytes.add(bytes) { current in current == 0 || current + bytes <= maximum }
    }

    func adjustRequestBytes(by delta: Int) {
        let now = requestBytes.add(delta, ordering: .relaxed).newValue
        assert(now >= 0, "a request's bytes are let go once, after they were counted")
    }

    /// Answers made and waiting for their clients to read them, in bytes, over every connection: an atomic, as every
    /// answer a task writes counts twice and every request reads it.
    private let unwrittenAnswers = Atomic<Int>(0)

    var unwrittenAnswerBytes: Int { unwrittenAnswers.load(ordering: .relaxed) }

    func adjustUnwrittenAnswerBytes(by delta: Int) {
        let now = unwrittenAnswers.add(delta, ordering: .relaxed).newValue
        assert(now >= 0, "an answer's bytes are let go once, after they were counted")
    }

    /// Counts one request in flight if none is: true when the caller may take it on its own thread (a read, answered
    /// there, or a `submit`, whose signatures are checked there).
    func takeIfIdle(write: Bool = false) -> Bool {
        state.withLock { state in
            guard state.inFlight == 0 else { return false }
            state.inFlight = 1
            if write { state.writesTakenOnEventLoop += 1 } else { state.answeredOnEventLoop += 1 }
            return true
        }
    }

    func closeAll() {
        let channels = state.withLock { $0.connections.values.map(\.channel) }
        for channel in channels { channel.close(promise: nil) }
    }
}

/// One client connection: takes what its `RequestLineHandler` decoded, answers each request in a child task,
/// streams subscriptions.
struct Connection {
    let channel: NIOAsyncChannel<ConnectionMessage, ByteBuffer>
    let state: ConnectionState
    let context: ServerContext
    let registry: ConnectionRegistry

    func run() async {
        let state = self.state
        let context = self.context
        let registry = self.registry
        let underlying = channel.channel
        do {
            try await channel.executeThenClose { inbound, outbound in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await message in inbound {
                            switch message {
                            case .answer(let value):
                                // Written here, not in a task: a client that floods without reading is held back
                                // by its own socket, and past the bound on refusals waiting here, closed
                                // (`RequestLineHandler.refuse`).
                                let line = RPCMessage.line(value)
                                registry.adjustUnwrittenAnswerBytes(by: line.count)
                                try? await outbound.write(ByteBuffer(bytes: line))
                                registry.adjustUnwrittenAnswerBytes(by: -line.count)
                                state.queuedRefusals.withLock { $0 -= 1 }
                            case .requests(let requests, let isBatch, let heldBytes):
                                // Counted in flight by the handler, on the connection and in the server's count.
                                let count = requests.count
                                if !isBatch, case .success(let request) = requests[0], request.method == "subscribe" {
                                    Self.subscribe(
                                        request, heldBytes: heldBytes, state: state, context: context, outbound: outbound, channel: underlying, group: &group,
                                        registry: registry)
                                    continue
                                }
                                group.addTask {
                                    // Only the answer's buffers wait for the socket: the answers decoded and their
                                    // encoded line are let go of before.
                                    if let (buffers, bytes) = await Self.answerBuffers(requests, isBatch: isBatch, context: context, state: state, registry: registry) {
                                        try? await outbound.write(contentsOf: buffers)
                                        registry.adjustUnwrittenAnswerBytes(by: -bytes)
                                    }
                                    state.inFlight.withLock { $0 -= count }
                                    registry.adjustInFlight(by: -count)
                                    state.requestBytesInFlight.withLock { $0 -= heldBytes }
                                    registry.adjustRequestBytes(by: -heldBytes)
                                }
                            }
                        }
                    } catch {
                        // The connection broke while reading: end as if the client had closed it.
                    }
                    // The client closed its side: requests already taken still get their answers, and each stream
                    // sends what was committed until now and ends (`SubscriptionStream.run`).
                    let streams = state.subscriptions.withLock { subscriptions -> [RunningSubscription] in
                        subscriptions.closed = true
                        return Array(subscriptions.streams.values)
                    }
                    let ended = streams.filter { $0.finish(hub: context.hub) }.count
                    registry.countSubscriptionsEndedByHalfClose(ended)
                }
                // A lone submit taken on the event loop is answered there, outside this task: its answer is written
                // before the connection closes too.
                await state.writesTakenOnEventLoop.waitUntilNone()
                // Every answer and stream message was handed to the loop by now; the channel closes as this body
                // returns, failing writes still pending, so wait until they are on the socket (a client that
                // half-closed still gets its answers; shutdown closes the channel, which ends this wait).
                try? await underlying.writeAndFlush(ByteBuffer()).get()
            }
        } catch {
            // Closing a connection that is already gone is not an error worth reporting.
        }
        // Every task of the connection has ended and its channel is closed. Requests the handler counted that no task
        // took (a stream that ended on an error before reading them) are let go of here: a count left behind would
        // keep the server from ever looking idle again (no more reads on the event loop, shutdown waiting its grace).
        let leftover = state.inFlight.withLock { inFlight -> Int in
            defer { inFlight = 0 }
            return inFlight
        }
        if leftover > 0 { registry.adjustInFlight(by: -leftover) }
        let leftoverBytes = state.requestBytesInFlight.withLock { held -> Int in
            defer { held = 0 }
            return held
        }
        if leftoverBytes > 0 { registry.adjustRequestBytes(by: -leftoverBytes) }
    }

    /// The answers to one message in order, each with whether its request is a write (`submit`, `submit_batch`,
    /// whose answer is a receipt of what was committed); notifications get none.
    private static func answer(
        _ requests: [Result<RPCRequest, RPCDecodingFailure>], context: ServerContext, session: ReadSession
    ) async -> [(answer: JSONValue, isWrite: Bool)] {
        if requests.count == 1 {
            return await answer(requests[0], context: context, session: session).map { [($0, isWrite(requests[0]))] } ?? []
        }
        return await withTaskGroup(of: (Int, JSONValue?).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask { (index, await answer(request, context: context, session: session)) }
            }
            var answers = [JSONValue?](repeating: nil, count: requests.count)
            for await (index, answer) in group { answers[index] = answer }
            return zip(answers, requests).compactMap { answer, request in answer.map { ($0, isWrite(request)) } }
        }
    }

    static func isWrite(_ decoded: Result<RPCRequest, RPCDecodingFailure>) -> Bool {
        guard case .success(let request) = decoded else { return false }
        return request.isWrite
    }

    private static func answer(
        _ decoded: Result<RPCRequest, RPCDecodingFailure>, context: ServerContext, session: ReadSession
    ) async -> JSONValue? {
        switch decoded {
        case .failure(let failure):
            return RPCMessage.error(id: failure.id, failure.error)
        case .success(let request):
            return RPCMessage.answer(to: request, await context.respond(request, session: session))
        }
    }

    /// The answer to one message as the buffers to write and the bytes counted for them in the server-wide bound on
    /// unwritten answers; nil for notifications only. Counted until written: the server-wide bound on what slow
    /// readers hold. A large answer made while the bound is passed is not kept: the answers of its reads become
    /// `overloaded`; writes' receipts always go.
    private static func answerBuffers(
        _ requests: [Result<RPCRequest, RPCDecodingFailure>], isBatch: Bool, context: ServerContext, state: ConnectionState, registry: ConnectionRegistry
    ) async -> (buffers: [ByteBuffer], bytes: Int)? {
        let answered = await answer(requests, context: context, session: state.session)
        guard var line = encode(answered.map(\.answer), isBatch: isBatch) else { return nil }
        let maximum = context.limits.maximumUnwrittenAnswerBytes
        let mayWithhold = line.count > ServerLimits.smallAnswerBytes && answered.contains { !$0.isWrite }
        if !mayWithhold {
            registry.adjustUnwrittenAnswerBytes(by: line.count)
        } else if !registry.reserveUnwrittenAnswerBytes(line.count, maximum: maximum) {
            line = withheld(answered, bytes: line.count, held: registry.unwrittenAnswerBytes, maximum: maximum, isBatch: isBatch)
            registry.adjustUnwrittenAnswerBytes(by: line.count)
        }
        return (outboundBuffers(line), line.count)
    }

    /// Bytes of one write to a connection: a larger answer is written in slices, handed over together (so no other
    /// answer comes between them), each of which completes as the client reads it, which the write stall closer
    /// counts as progress.
    static let writeSliceBytes = 64 << 10

    /// The slices of `line` to write, views of one copy of it: an answer waiting for a client that does not read is
    /// held once, as the bytes counted for it (a copy per slice, with the line kept until written, would hold it twice).
    static func outboundBuffers(_ line: [UInt8]) -> [ByteBuffer] {
        var whole = ByteBuffer(bytes: line)
        // Nearly every answer (receipts, balances, proofs) is one slice: one buffer, nothing more to allocate.
        guard whole.readableBytes > writeSliceBytes else { return [whole] }
        var slices: [ByteBuffer] = []
        while let slice = whole.readSlice(length: min(writeSliceBytes, whole.readableBytes)), slice.readableBytes > 0 {
            slices.append(slice)
        }
        return slices
    }

    /// The line that replaces a large answer made while the server-wide bound on unwritten answers is passed: the
    /// answer of each read becomes `overloaded`, under its id; a write's receipt (or refusal) stays. A read was run:
    /// a signed read asked again needs a new nonce.
    static func withheld(_ answered: [(answer: JSONValue, isWrite: Bool)], bytes: Int, held: Int, maximum: Int, isBatch: Bool) -> [UInt8] {
        let error = RPCError(LedgerError(
            .overloaded,
            "the answer (\(bytes) bytes) was made but not kept: the server holds \(held >> 20) MiB of answers its clients have not read yet (at most \(maximum >> 20)); ask again later (a signed read signed anew: its nonce was used)"))
        let kept = answered.map { $0.isWrite ? $0.answer : RPCMessage.error(id: $0.answer["id"] ?? .null, error) }
        return RPCMessage.line(isBatch ? .array(kept) : kept[0])
    }

    private static func encode(_ answers: [JSONValue], isBatch: Bool) -> [UInt8]? {
        if answers.isEmpty { return nil }
        return RPCMessage.line(isBatch ? .array(answers) : answers[0])
    }

    /// Answers `subscribe` and, when it is accepted, starts its stream after the answer is written.
    private static func subscribe(
        _ request: RPCRequest, heldBytes: Int, state: ConnectionState, context: ServerContext, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        channel: Channel, group: inout DiscardingTaskGroup, registry: ConnectionRegistry
    ) {
        let id = request.id ?? .null
        let accepted: Result<(identifier: String, start: UInt64, size: UInt64, heartbeatSeconds: Int?, subscriber: ReadSession.Opened, registration: (identifier: Int, signals: AsyncStream<Void>)), RPCError>
        do throws(RPCError) {
            let (requester, key, inner) = try context.authenticate(request.params, method: "subscribe", session: state.session)
            let params = try Params(inner, method: "subscribe")
            try params.allowOnly(["from", "heartbeat_seconds"])
            // Its params before the permission, as every signed read (Specs/protocol.md 4.2).
            let start = try params.optionalCount("from") ?? 0
            let heartbeatSeconds = try params.optionalInteger("heartbeat_seconds", in: SubscriptionHeartbeat.secondsRange)
            guard ReadPolicy.mayReadLog(requester) else {
                throw RPCError(LedgerError(.notAuthorised, "\(requester.role.rawValue) \"\(requester.id)\" may not read the log"))
            }
            let size = try context.hub.sizeForSubscription(from: start) { () throws(LedgerError) in try context.reader.size() }
            let number = state.subscriptions.withLock { subscriptions -> Int? in
                guard subscriptions.active < context.limits.maximumSubscriptionsPerConnection else { return nil }
                subscriptions.active += 1
                subscriptions.total += 1
                return subscriptions.total
            }
            guard let number else {
                throw RPCError(LedgerError(.overloaded, "a connection holds at most \(context.limits.maximumSubscriptionsPerConnection) subscriptions"))
            }
            // Registered now, before the answer: what is committed from here on is live for this subscriber.
            let registration = SubscriptionStream.register(
                start: start, hub: context.hub, channel: channel, cutOffGraceMilliseconds: context.limits.subscriberCutOffGraceMilliseconds)
            accepted = .success(("sub-\(number)", start, size, heartbeatSeconds, ReadSession.Opened(actor: requester.id, key: key), registration))
        } catch {
            accepted = .failure(error)
        }
        group.addTask {
            let releaseSlot = {
                state.inFlight.withLock { $0 -= 1 }
                registry.adjustInFlight(by: -1)
                state.requestBytesInFlight.withLock { $0 -= heldBytes }
                registry.adjustRequestBytes(by: -heldBytes)
            }
            switch accepted {
            case .failure(let error):
                if request.id != nil { try? await outbound.write(ByteBuffer(bytes: RPCMessage.line(RPCMessage.error(id: id, error)))) }
                releaseSlot()
            case .success(let subscription):
                let answer = RPCMessage.result(id: id, ["subscription": .string(subscription.identifier), "from": .integer(Int64(subscription.start)), "size": .integer(Int64(subscription.size))])
                // A notification gets no answer (its stream still starts).
                var written = true
                if request.id != nil {
                    written = (try? await outbound.write(ByteBuffer(bytes: RPCMessage.line(answer)))) != nil
                }
                // The stream does not hold an in-flight slot once its answer is out.
                releaseSlot()
                // Its entry, if it was listed, goes with its count: a stream that ended while the connection stays
                // open is not held until the connection closes. A stream not listed here was either never started
                // or found `closed` and was given its end below.
                let hubIdentifier = subscription.registration.identifier
                defer {
                    state.subscriptions.withLock { subscriptions in
                        subscriptions.streams.removeValue(forKey: hubIdentifier)
                        subscriptions.active -= 1
                    }
                }
                guard written else {
                    context.hub.unregister(hubIdentifier)
                    return
                }
                let stream = SubscriptionStream(
                    identifier: subscription.identifier, start: subscription.start, subscriber: subscription.subscriber, reader: context.reader, hub: context.hub,
                    outbound: outbound, channel: channel, connections: registry, writeStallTimeoutSeconds: context.limits.writeStallTimeoutSeconds,
                    heartbeatSeconds: subscription.heartbeatSeconds, end: Locked(nil), registration: subscription.registration)
                let task = Task(executorPreference: context.executor) { await stream.run() }
                let running = RunningSubscription(hubIdentifier: hubIdentifier, end: stream.end)
                // Listed, or given its end here, under the lock that sets `closed`: the half-close either lists it
                // or is seen here, so no stream is missed. Removed (in the defer above) only after this, so its
                // entry cannot outlive it.
                let closed = state.subscriptions.withLock { subscriptions -> Bool in
                    if !subscriptions.closed { subscriptions.streams[hubIdentifier] = running }
                    return subscriptions.closed
                }
                if closed, running.finish(hub: context.hub) { registry.countSubscriptionsEndedByHalfClose(1) }
                await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
            }
        }
    }
}

/// The Unix socket file of a server.
enum UnixSocketFile {
    /// Something other than a socket is at the path.
    struct NotASocket: Error {}

    /// Device and inode. (A socket made at the path after this one was removed may get the same inode number at
    /// once; shutdown also asks whether anything listens there.)
    struct Identity: Sendable, Equatable {
        let device: UInt64
        let inode: UInt64
    }

    /// The file at `path` when it is a socket.
    static func identity(_ path: String) -> Identity? {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else { return nil }
        return Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// A listening socket bound at `path`, non-blocking. A socket file a process listens on is refused
    /// (`storage_error`, as a TCP port in use is); one that refuses connections (left by a server that stopped) is
    /// replaced; anything else at the path is refused and left as it is (`NotASocket`).
    static func bindAndListen(_ path: String, backlog: Int32) throws -> CInt {
        // Too long for an address, say: NIO's error, which `LedgerServer.listenFailure` puts in words.
        let address = try SocketAddress(unixDomainSocketPath: path)
        if isListenedOn(path) {
            throw LedgerError(
                .storage, "cannot listen on \(path): another process listens on that socket (a server already running?); stop it, or give another --unix path")
        }
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw NotASocket() }
            unlink(path)
        }
        let descriptor = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        let bound = address.withSockAddr { pointer, size in Glibc.bind(descriptor, pointer, socklen_t(size)) }
        guard bound == 0, listen(descriptor, backlog) == 0 else {
            let code = errno
            close(descriptor)
            // Bound but not listening: the file is this call's.
            if bound == 0 { unlink(path) }
            throw IOError(errnoCode: code, reason: bound == 0 ? "listen" : "bind")
        }
        return descriptor
    }

    /// Removes the socket file at `path` if it is still the one with `identity` and nothing listens on it: called
    /// once this server's listener is closed, so a process that still accepts there is another one. (The identity
    /// alone cannot tell: a socket made there at once may get the same inode.)
    static func remove(_ path: String, ifStill identity: Identity) {
        guard UnixSocketFile.identity(path) == identity, !isListenedOn(path) else { return }
        unlink(path)
    }

    /// Whether `path` is a socket file a process listens on: a connection to it is accepted or waits in its
    /// backlog (the attempt does not wait).
    static func isListenedOn(_ path: String) -> Bool {
        guard identity(path) != nil else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        // Too long for an address: the bind says so.
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return connected == 0 || errno == EAGAIN
    }
}

/// The connections the listeners accepted and wrapped, from their initializer until the accept loop takes them. NIO
/// drops an accepted connection still on its way when a listener's stream has ended (a listener closed at shutdown
/// while clients connect), and a wrapped channel released before it was closed stops the process (NIO's writer
/// precondition; apple/swift-nio#2637): under a storm of connections SIGTERM crashed the server in a tenth to a third
/// of the rounds. So each is held here until taken, shutdown closes those never taken, and once it has begun no
/// connection is wrapped.
/// Bounded by the connections accepted and not yet taken (the listen backlog's worth).
final class UnservedConnections: Sendable {
    private struct State {
        var accepting = true
        var held: [ObjectIdentifier: AcceptedConnection] = [:]
    }

    private let state = Locked(State())

    /// Makes the connection with `make` and holds it; nil, making nothing, once shutdown has begun. One lock over
    /// both, so that no connection is made after `stopAccepting` has taken the rest.
    func admit(_ make: () throws -> AcceptedConnection) throws -> AcceptedConnection? {
        try state.withLock { state in
            guard state.accepting else { return nil }
            let connection = try make()
            state.held[ObjectIdentifier(connection.channel.channel)] = connection
            return connection
        }
    }

    /// Whether the accept loop may serve `connection`: false when shutdown has taken it to close.
    func take(_ connection: AcceptedConnection) -> Bool {
        state.withLock { $0.held.removeValue(forKey: ObjectIdentifier(connection.channel.channel)) != nil }
    }

    /// Admits no more connections and returns those never taken, for the caller to close.
    func stopAccepting() -> [AcceptedConnection] {
        state.withLock { state in
            state.accepting = false
            defer { state.held = [:] }
            return Array(state.held.values)
        }
    }
}

/// The writer's report that the ledger's storage failed, handed to whoever registered for it, once.
final class StorageFailureReport: Sendable {
    private let state = Locked<(failure: LedgerError?, handlers: [@Sendable (LedgerError) -> Void])>((nil, []))

    func report(_ error: LedgerError) {
        let handlers = state.withLock { state -> [@Sendable (LedgerError) -> Void] in
            guard state.failure == nil else { return [] }
            state.failure = error
            defer { state.handlers = [] }
            return state.handlers
        }
        for handler in handlers { handler(error) }
    }

    func onReport(_ handler: @escaping @Sendable (LedgerError) -> Void) {
        let failure = state.withLock { state -> LedgerError? in
            if state.failure == nil { state.handlers.append(handler) }
            return state.failure
        }
        if let failure { handler(failure) }
    }
}
