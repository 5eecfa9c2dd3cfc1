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

    /// How long a read waits, named in the error when it gives up.
    private let timeoutSeconds: Int

    init(_ endpoint: Endpoint, timeoutSeconds: Int) throws(LedgerError) {
        self.endpoint = endpoint
        self.timeoutSeconds = timeoutSeconds
        receiveBuffer = [UInt8](repeating: 0, count: 256 * 1024)
        descriptor = try ClientSocket.connect(endpoint, timeoutSeconds: timeoutSeconds)
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) throws(LedgerError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Glibc.send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw ClientSocket.failure("send to", endpoint)
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
                throw LedgerError(.connectionFailed, "no answer from \(endpoint) within \(timeoutSeconds) s")
            }
            throw ClientSocket.failure("receive from", endpoint)
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

