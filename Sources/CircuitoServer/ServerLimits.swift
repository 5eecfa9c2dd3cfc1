/// Bounds of the socket API: every frame, connection, queue and batch has one.
public struct ServerLimits: Sendable, Hashable {
    /// Bytes of one JSON-RPC message (one line).
    public var maximumFrameBytes: Int = 1 << 20
    /// Open connections at once; more are refused.
    public var maximumConnections: Int = 1024
    /// Seconds a connection may send nothing while it has no request in flight and no subscription before it is
    /// closed, so that clients that went quiet (or never sent a whole line) cannot hold every connection slot; nil:
    /// never.
    public var idleTimeoutSeconds: Int? = 600
    /// Requests of one connection waiting for their answers; a client past it is answered with an error.
    /// A JSON-RPC batch counts as one request per element.
    public var maximumInFlightPerConnection: Int = 64
    /// Refusals made at once on reading a line (not JSON, too long, past the in-flight bound) that one connection
    /// may have waiting to be written. Each is made before the client's socket can hold it back (one read of the
    /// socket can carry a hundred thousand short lines), so a client that sends lines faster than it reads their
    /// refusals is closed past it.
    public var maximumQueuedRefusalsPerConnection: Int = 256
    /// Seconds a connection may leave its answers, or a subscription's messages, unread (its socket full, no write
    /// completing) before it is closed, counted from the later of its socket filling up and its last completed write
    /// (`WriteStallCloser`), so that clients that stopped reading cannot hold their answers, and the server-wide bound
    /// below, for long; nil: never.
    public var writeStallTimeoutSeconds: Int? = 60
    /// Bytes of answers made and not yet written to their clients, over every connection: a client that reads
    /// slowly holds its answers in the server. Past it new requests are refused with `overloaded`, and an answer of
    /// a read larger than `smallAnswerBytes` made meanwhile is replaced by that error (the per-connection bound
    /// alone lets many connections of large answers, `events` pages of megabytes, hold gigabytes).
    public var maximumUnwrittenAnswerBytes: Int = 256 << 20
    /// Bytes the requests taken and not yet answered hold decoded, over every connection (`RequestLineHandler.decodedBytes`:
    /// a line of `[0,0,…]` holds twelve times its bytes). A request is held until its answer is handed to the socket, so
    /// without it the per-connection bounds multiplied: 64 lines of 1 MB left unread held 680 MiB on one connection,
    /// hundreds of GB over 1024. Past it new requests are refused with `overloaded`.
    public var maximumInFlightRequestBytes: Int = 256 << 20
    /// Bytes of lines still arriving (their newline not read yet), buffered over every connection: each connection
    /// buffers up to a frame of one, so without it 1 024 connections that sent a frame each without the newline held
    /// about 1.1 GiB until the idle timeout. Past it a line that grows beyond `UnfinishedLineBytes.alwaysTakenBytes`
    /// is dropped as it arrives and answered with `overloaded` once its newline comes.
    public var maximumUnfinishedLineBytes: Int = 256 << 20
    /// Answers up to this size are always written, past the bound above: receipts, balances, proofs (bounded in all
    /// by the connections times their in-flight bound times this).
    public static let smallAnswerBytes = 4096
    /// Requests the writer takes into one LMDB commit (counted in events).
    public var maximumCommitBatch: Int = 1024
    /// Records buffered for a subscriber that does not read; past it the subscription is cut off.
    public var maximumSubscriberBufferRecords: Int = 10_000

    /// Write requests waiting for the writer, and the events in them; past either, submissions are refused with
    /// `overloaded`. (Each event is at most 64 KiB, so the queue's memory is bounded too.)
    public var maximumQueuedWrites: Int = 4096
    public var maximumQueuedEvents: Int = 16_384
    /// Events of one `submit_batch`.
    public var maximumEventsPerBatchRequest: Int = 256
    /// Subscriptions one connection may hold at once.
    public var maximumSubscriptionsPerConnection: Int = 4
    /// How far a signed read request's `ts` may be from the server's clock, either way.
    public var readRequestWindowSeconds: Int = 300
    /// Nonces of signed read requests remembered at once (each for twice the window); past it reads are refused
    /// with `overloaded` rather than forgetting a nonce that could then be replayed.
    public var maximumRememberedNonces: Int = 100_000
    /// Of those, the nonces of one actor: so that one actor's flood of signed reads cannot refuse everyone else's.
    /// (A reader that needs more reads in a session, which takes no nonce per request.)
    public var maximumRememberedNoncesPerActor: Int = 2_000
    /// On shutdown, how long requests already taken may take to answer before connections are closed.
    public var shutdownGraceSeconds: Int = 5
    /// How long a cut-off subscriber's connection stays open so the error can still reach it if it reads.
    public var subscriberCutOffGraceMilliseconds: Int = 2000
    /// The kernel send buffer of each connection (SO_SNDBUF); nil keeps the system's (auto-tuned) size. Smaller
    /// makes a subscriber that stopped reading visible sooner.
    public var socketSendBufferBytes: Int? = nil
    /// Keepalive probes on every TCP connection, so that a client that vanished without closing its connection is
    /// let go about two minutes after its last traffic, also while it holds a subscription (which the idle timeout
    /// leaves open); nil: none.
    public var tcpKeepAlive: TCPKeepAlive? = TCPKeepAlive()
    /// Seconds between checks of whether the C allocator holds freed memory worth giving back (`AllocatorTrimmer`);
    /// nil: never.
    public var allocatorTrimIntervalSeconds: Int? = 10

    /// The longest duration a limit may give (366 days, `LedgerServer.start` refuses more with `invalid_range`):
    /// durations are added to clock readings in milliseconds, which a value near `Int.max` would overflow.
    public static let maximumDurationSeconds = 366 * 86_400

    public init() {}
}
