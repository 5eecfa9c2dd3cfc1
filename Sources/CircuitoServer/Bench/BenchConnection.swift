import CircuitoCore
import Glibc

/// A lean blocking socket for the load generator: one per connection thread, a reused receive buffer, writes of
/// whole windows of requests in one call. (`LineClient` allocates per read and parses every answer, which would
/// take CPU from the server it measures on the same machine.)
final class BenchConnection {
    private let descriptor: Int32
    let endpoint: Endpoint
    private var receiveBuffer: [UInt8]
    /// Bytes of a line not yet complete, carried to the next read.
    private var partial: [UInt8] = []
    static let maximumLineBytes = 16 << 20

    init(_ endpoint: Endpoint, timeoutSeconds: Int) throws(LedgerError) {
        self.endpoint = endpoint
        receiveBuffer = [UInt8](repeating: 0, count: 256 * 1024)
        switch endpoint {
        case .unix(let path):
            let socketDescriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard socketDescriptor >= 0 else { throw Self.failure("socket", endpoint) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let pathBytes = Array(path.utf8)
            guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                close(socketDescriptor)
                throw LedgerError(.connectionFailed, "Unix socket path \(path) is too long")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: pathBytes)
                raw[pathBytes.count] = 0
            }
            let result = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard result == 0 else {
                let error = Self.failure("connect", endpoint)
                close(socketDescriptor)
                throw error
            }
            descriptor = socketDescriptor
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
                guard attempt >= 0 else { continue }
                if connect(attempt, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                    connected = attempt
                } else {
                    lastError = Self.failure("connect", endpoint)
                    close(attempt)
                }
            }
            guard connected >= 0 else { throw lastError }
            descriptor = connected
            // Requests are small and latency is measured: no Nagle delay.
            var noDelay: Int32 = 1
            setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    private static func failure(_ what: String, _ endpoint: Endpoint) -> LedgerError {
        LedgerError(.connectionFailed, "\(what) \(endpoint): \(String(cString: strerror(errno)))")
    }

    func send(_ bytes: [UInt8]) throws(LedgerError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Glibc.send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw Self.failure("send to", endpoint)
            }
            offset += written
        }
    }

    /// Waits for data and hands every complete line to `body` (without its newline); returns false when the
    /// server closed the connection.
    func receiveLines(_ body: (ArraySlice<UInt8>) throws(LedgerError) -> Void) throws(LedgerError) -> Bool {
        var count = 0
        while true {
            count = receiveBuffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            break
        }
        if count < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK {
                throw LedgerError(.connectionFailed, "no answer from \(endpoint) before the timeout")
            }
            throw Self.failure("receive from", endpoint)
        }
        if count == 0 { return false }
        var start = 0
        let received = receiveBuffer[0..<count]
        while let newline = received[start...].firstIndex(of: 0x0A) {
            if partial.isEmpty {
                try body(received[start..<newline])
            } else {
                partial += received[start..<newline]
                let line = partial
                partial = []
                try body(line[...])
            }
            start = newline + 1
        }
        if start < count {
            partial += received[start..<count]
            guard partial.count <= Self.maximumLineBytes else {
                throw LedgerError(.tooLarge, "\(endpoint) sent a line longer than \(Self.maximumLineBytes) bytes")
            }
        }
        return true
    }
}

/// Monotonic time in nanoseconds, for latencies and rates.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
