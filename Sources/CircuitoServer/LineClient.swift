import CircuitoCore
import Glibc

extension LedgerError.Code {
    /// The client could not reach the server, or the connection broke or timed out.
    public static let connectionFailed = Self(name: "connection_failed", number: 6009)
}

/// Where a server listens: `HOST:PORT` (TCP) or a Unix socket path (`unix:PATH`, any text with a `/`, or any text
/// without a `:`, which cannot be `HOST:PORT`: `serve --unix rel.sock` is reached as `rel.sock`).
public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public init(parsing text: String) throws(LedgerError) {
        if text.hasPrefix("unix:") {
            guard text.count > 5 else { throw LedgerError(.invalidRange, "\"unix:\" names no socket path: give unix:PATH") }
            self = try .unixPath(String(text.dropFirst(5)))
            return
        }
        if text.contains("/") {
            self = try .unixPath(text)
            return
        }
        if !text.isEmpty && !text.contains(":") {
            // A port alone is a slip for HOST:PORT, not a socket named by digits.
            guard !text.allSatisfy({ $0 >= "0" && $0 <= "9" }) else {
                throw LedgerError(.invalidRange, "\"\(text)\" is not HOST:PORT (did you mean 127.0.0.1:\(text)?) or a Unix socket path")
            }
            self = try .unixPath(text)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw LedgerError(.invalidRange, "\"\(text)\" is not HOST:PORT or a Unix socket path")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self = .tcp(host: host, port: port)
    }

    /// The longest Unix socket path an address holds (107 bytes on Linux: `sun_path` and its NUL).
    public static let maximumUnixSocketPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// A socket path too long for an address is refused here, as `serve --unix` refuses it (`invalid_range`): as a
    /// connection failure, a follower retried it for good and a client said the server could not be reached.
    private static func unixPath(_ path: String) throws(LedgerError) -> Endpoint {
        guard path.utf8.count <= maximumUnixSocketPathBytes else {
            throw LedgerError(
                .invalidRange,
                "\(path) is not a Unix socket address: a socket path is at most \(maximumUnixSocketPathBytes) bytes, this one has \(path.utf8.count); give a shorter path")
        }
        return .unix(path: path)
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// A blocking line client of the socket API: one connection, one thread. For the CLI, the follower and tests.
///
/// `call` sends a request and reads until its answer; notifications that arrive meanwhile (subscription
/// streams) are kept, at most `maximumHeldNotifications`, and returned by `nextMessage` before new ones.
public final class LineClient {
    public let endpoint: Endpoint
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    /// The bytes from `start` to here hold no newline: the search for a line's end resumes here, so that a long line
    /// arriving in many pieces is searched once, not once per piece (quadratic: minutes for 64 MiB).
    private var searchedUpTo = 0
    /// How many bytes the searches for a line's end have looked at, for a test to hold them to one look per byte.
    private(set) var bytesSearched = 0
    private var nextIdentifier: Int64 = 0
    /// Notifications that arrived while a call waited for its answer, handed out before anything read later. The
    /// first `heldTaken` are handed out already: taking each from the front of the array would move the rest every
    /// time, quadratic over the 100 000 it may hold.
    private var held: [JSONValue] = []
    private var heldTaken = 0
    /// True when the last read failed because the receive timeout passed (partial data stays buffered).
    private var lastReadTimedOut = false
    public let maximumLineBytes: Int
    /// How long a read waits, named in the error when it gives up.
    private var receiveTimeoutSeconds: Int
    public static let maximumHeldNotifications = 100_000
    /// Set when a `call` gave up waiting for its answer: the connection then takes no more calls.
    private var answerOutstanding = false

    /// Connects with a receive timeout (a read waiting longer fails with `connection_failed`); a small
    /// `receiveBufferBytes` makes a slow reader visible to the server sooner (tests).
    public init(_ endpoint: Endpoint, timeoutSeconds: Int = 30, maximumLineBytes: Int = 64 << 20, receiveBufferBytes: Int? = nil) throws(LedgerError) {
        self.endpoint = endpoint
        self.maximumLineBytes = maximumLineBytes
        receiveTimeoutSeconds = timeoutSeconds
        descriptor = try ClientSocket.connect(endpoint, timeoutSeconds: timeoutSeconds, receiveBufferBytes: receiveBufferBytes)
    }

    deinit { close(descriptor) }

    /// How long a read waits from now on (a subscriber polls with a short one, after a longer wait for its answer).
    public func setReceiveTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        receiveTimeoutSeconds = seconds
    }

    /// Writes raw bytes (a test may send anything).
    public func send(bytes: [UInt8]) throws(LedgerError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ClientSocket.failure("send to", endpoint)
            }
            offset += written
        }
    }

    /// Writes one message as a line.
    public func send(_ message: JSONValue) throws(LedgerError) {
        try send(bytes: RPCMessage.line(message))
    }

    /// Closes the sending side; answers can still be read.
    public func shutdownSending() { shutdown(descriptor, Int32(SHUT_WR)) }

    /// The next line without its newline, or nil when the server closed the connection.
    public func readLine() throws(LedgerError) -> [UInt8]? {
        try readLine(until: nil)
    }

    /// The next line; given a `deadline`, one that has not ended by then times out as a silent read does (what
    /// arrived of it stays buffered), so that a server trickling a line without end cannot hold the reader.
    private func readLine(until deadline: ContinuousClock.Instant?) throws(LedgerError) -> [UInt8]? {
        while true {
            let searchStart = max(start, searchedUpTo)
            if let newline = buffer[searchStart...].firstIndex(of: 0x0A) {
                bytesSearched += newline + 1 - searchStart
                let line = Array(buffer[start..<newline])
                start = newline + 1
                if start > 1 << 16 {
                    buffer.removeFirst(start)
                    start = 0
                }
                searchedUpTo = start
                return line
            }
            bytesSearched += buffer.count - searchStart
            searchedUpTo = buffer.count
            guard buffer.count - start <= maximumLineBytes else {
                throw LedgerError(.tooLarge, "the server sent a line longer than \(maximumLineBytes) bytes")
            }
            if let deadline {
                // Waits only for what is left until the deadline, so the receive below never takes it past.
                let remainingMilliseconds = Self.milliseconds(until: deadline)
                var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                let ready = remainingMilliseconds > 0 ? Glibc.poll(&waiting, 1, remainingMilliseconds) : 0
                if ready < 0 && errno == EINTR { continue }
                if ready == 0 {
                    lastReadTimedOut = true
                    throw LedgerError(.connectionFailed, "no whole line from \(endpoint) within \(receiveTimeoutSeconds) s")
                }
            }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            lastReadTimedOut = false
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    lastReadTimedOut = true
                    throw LedgerError(.connectionFailed, "no answer from \(endpoint) within \(receiveTimeoutSeconds) s")
                }
                throw ClientSocket.failure("receive from", endpoint)
            }
            if count == 0 {
                guard start < buffer.count else { return nil }
                // Every message of the protocol ends with its newline: bytes without one at the end are a line cut
                // short (the server stopped, or the connection broke), not a message.
                let cut = buffer.count - start
                buffer = []
                start = 0
                searchedUpTo = 0
                throw LedgerError(.connectionFailed, "the connection to \(endpoint) ended in the middle of a line (\(cut) bytes without their newline): the server stopped or the connection broke")
            }
            buffer += chunk[0..<count]
        }
    }

    /// Milliseconds from now to `deadline`, 0 once it has passed (at most a day: timeouts are).
    private static func milliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero else { return 0 }
        let (seconds, attoseconds) = remaining.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1
        return Int32(clamping: min(milliseconds, 86_400_000))
    }

    /// What waiting for a message gave.
    public enum Poll {
        case message(JSONValue)
        /// Nothing arrived within the receive timeout; the connection is still usable.
        case timedOut
        case closed
    }

    /// The next message (held notifications first), waiting at most about the receive timeout, also while a line
    /// arrives without its end.
    public func poll() throws(LedgerError) -> Poll {
        if let message = takeHeld() { return .message(message) }
        let line: [UInt8]?
        do throws(LedgerError) { line = try readLine(until: .now + .seconds(receiveTimeoutSeconds)) } catch {
            if error.code == .connectionFailed && lastReadTimedOut { return .timedOut }
            throw error
        }
        guard let line else { return .closed }
        return .message(try Self.message(line))
    }

    /// A line the server sent, read as JSON. One that is not is no answer at all (not a circuito server, or a broken
    /// connection): `connection_failed`, as for a line cut short. Given `invalid_json`, a refusal of the input, a
    /// `client submit` line said its event was refused when it may have been recorded (Specs/protocol.md 10).
    static func message(_ line: [UInt8]) throws(LedgerError) -> JSONValue {
        do throws(LedgerError) { return try JSONParser.parse(line) } catch {
            throw LedgerError(.connectionFailed, "the server sent a line that is not JSON (not a circuito server, or the connection is broken): \(error.message)")
        }
    }

    /// The next message (held notifications first), or nil at the end of the connection.
    public func nextMessage() throws(LedgerError) -> JSONValue? {
        if let message = takeHeld() { return message }
        guard let line = try readLine() else { return nil }
        return try Self.message(line)
    }

    private func takeHeld() -> JSONValue? {
        guard heldTaken < held.count else { return nil }
        let message = held[heldTaken]
        heldTaken += 1
        if heldTaken == held.count {
            held = []
            heldTaken = 0
        }
        return message
    }

    /// Sends a request and waits for its answer: the result, or the server's error.
    public func call(_ method: String, _ params: JSONValue = .object([:])) throws(LedgerError) -> Result<JSONValue, RPCError> {
        // A late answer to the earlier request (an id-null refusal above all) would be taken for this one's.
        guard !answerOutstanding else {
            throw LedgerError(.connectionFailed, "an earlier request on this connection to \(endpoint) went unanswered within \(receiveTimeoutSeconds) s; open a new connection")
        }
        nextIdentifier += 1
        let identifier = JSONValue.integer(nextIdentifier)
        try send(RPCMessage.request(id: identifier, method: method, params: params))
        // The timeout bounds the whole wait for the answer, not each receive: a server that trickles a line without
        // end, or sends answers to other ids without end, would otherwise hold the caller for ever.
        let deadline = ContinuousClock.now + .seconds(receiveTimeoutSeconds)
        while true {
            let read: [UInt8]?
            do throws(LedgerError) { read = try readLine(until: deadline) } catch {
                guard lastReadTimedOut else { throw error }
                answerOutstanding = true
                throw LedgerError(.connectionFailed, "no answer to \(method) from \(endpoint) within \(receiveTimeoutSeconds) s")
            }
            guard let line = read else { throw LedgerError(.connectionFailed, "\(endpoint) closed the connection before answering \(method)") }
            let message = try Self.message(line)
            // An error under id null answers a line the server could not read as a request (too long, not JSON):
            // with one request outstanding, it is this one's.
            if message["id"] == .null, message["method"] == nil, let error = message["error"] {
                return .failure(RPCError(json: error) ?? RPCError.internalError("the server sent a malformed error"))
            }
            guard message["id"] == identifier else {
                if message["method"] != nil {
                    guard held.count - heldTaken < Self.maximumHeldNotifications else {
                        throw LedgerError(.tooLarge, "more than \(Self.maximumHeldNotifications) notifications arrived while waiting for an answer")
                    }
                    if heldTaken > 0 {
                        // Once per call that holds more: what was handed out goes, so the array holds only the bound.
                        held.removeFirst(heldTaken)
                        heldTaken = 0
                    }
                    held.append(message)
                }
                continue
            }
            if let error = message["error"] {
                return .failure(RPCError(json: error) ?? RPCError.internalError("the server sent a malformed error"))
            }
            return .success(message["result"] ?? .null)
        }
    }
}

/// Blocking client sockets (the `circuito client` commands, followers, tests and the load generator).
enum ClientSocket {
    /// Connects to `endpoint` with send and receive timeouts (and a receive buffer size, when given, set before
    /// connecting so it takes effect); TCP without Nagle's delay, since requests are small lines, and with keepalive
    /// probes (`TCPKeepAlive`).
    static func connect(_ endpoint: Endpoint, timeoutSeconds: Int, receiveBufferBytes: Int? = nil) throws(LedgerError) -> Int32 {
        switch endpoint {
        case .unix(let path):
            let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard descriptor >= 0 else { throw failure("socket", endpoint) }
            configure(descriptor, timeoutSeconds: timeoutSeconds, receiveBufferBytes: receiveBufferBytes)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let pathBytes = Array(path.utf8)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard pathBytes.count < capacity else {
                close(descriptor)
                throw LedgerError(.invalidRange, "Unix socket path \(path) is longer than \(capacity - 1) bytes")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: pathBytes)
                raw[pathBytes.count] = 0
            }
            let result = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard result == 0 else {
                let error = failure("connect", endpoint)
                close(descriptor)
                throw error
            }
            return descriptor
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_family = AF_UNSPEC
            var results: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &results)
            guard status == 0, let first = results else {
                throw LedgerError(.connectionFailed, "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
            }
            defer { freeaddrinfo(results) }
            var connected: Int32 = -1
            var lastError = LedgerError(.connectionFailed, "cannot connect to \(endpoint)")
            var candidate: UnsafeMutablePointer<addrinfo>? = first
            while let info = candidate, connected < 0 {
                candidate = info.pointee.ai_next
                let attempt = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
                guard attempt >= 0 else {
                    // Out of descriptors, say: the reason, not only that no address could be reached.
                    lastError = failure("socket for", endpoint)
                    continue
                }
                configure(attempt, timeoutSeconds: timeoutSeconds, receiveBufferBytes: receiveBufferBytes)
                if Glibc.connect(attempt, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                    connected = attempt
                } else {
                    // A connect that outlasts the send timeout fails with EINPROGRESS: no answer came, nothing refused.
                    lastError = errno == EINPROGRESS
                        ? LedgerError(.connectionFailed, "connect \(endpoint): no answer within \(timeoutSeconds) s (the server is down, unreachable or too busy to take connections)")
                        : failure("connect", endpoint)
                    close(attempt)
                }
            }
            guard connected >= 0 else { throw lastError }
            var noDelay: Int32 = 1
            setsockopt(connected, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
            // A follower or subscriber only waits for the server: a server that vanished without closing the
            // connection (restarted while the network was cut) must fail it, so that it reconnects.
            TCPKeepAlive().apply(toSocket: connected)
            return connected
        }
    }

    private static func configure(_ descriptor: Int32, timeoutSeconds: Int, receiveBufferBytes: Int?) {
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBufferBytes.map(Int32.init) {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    static func failure(_ what: String, _ endpoint: Endpoint) -> LedgerError {
        LedgerError(.connectionFailed, "\(what) \(endpoint): \(String(cString: strerror(errno)))")
    }
}
