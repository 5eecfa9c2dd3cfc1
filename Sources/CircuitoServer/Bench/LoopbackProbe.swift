import CircuitoCore
import CircuitoStorage
import Foundation
import Glibc

/// What a round trip between two threads over a loopback TCP socket costs on this machine: the floor under one
/// client's latency, whatever the server does. Each round trip wakes the echoing thread and then the asking one; on a
/// virtual machine whose idle processors halt (here a Firecracker guest with the kernel's halt-polling off), each
/// wake-up of an idle processor goes through the hypervisor, and that, not the code, is most of a lone request's time.
/// Measured before the appends, like the disk: `messageBytes` echoed back, round trip after round trip, until
/// `maximumRoundTrips` or `maximumSeconds`; the first `warmUpRoundTrips` are not counted.
public struct LoopbackProbe: Sendable, Equatable {
    public let medianMicroseconds: Double
    public let percentile99Microseconds: Double
    /// Round trips counted.
    public let roundTrips: Int

    /// About the size of a signed balance query.
    static let messageBytes = 512
    static let warmUpRoundTrips = 100
    static let maximumRoundTrips = 10_000
    public static let maximumSeconds = 1.0
    /// A read that waits longer than this ends the probe with an error instead of a hang.
    static let readTimeoutSeconds = 5

    /// `maximumSeconds` counts from the first warm-up round trip: on a loaded machine (or a lossy loopback) the
    /// warm-up alone may take longer, and the probe then counts one round trip.
    /// A thread that cannot be started (the process is at a limit of threads) is `thread_start_failed`.
    public static func measure(maximumSeconds: Double = LoopbackProbe.maximumSeconds) throws(LedgerError) -> LoopbackProbe {
        try measure(maximumSeconds: maximumSeconds, threads: .system)
    }

    static func measure(maximumSeconds: Double = LoopbackProbe.maximumSeconds, threads: ThreadStarter) throws(LedgerError) -> LoopbackProbe {
        let (asking, echoing) = try connectedPair()
        let finished = DispatchSemaphore(value: 0)
        do throws(LedgerError) {
            try threads.start("circuito-echo") {
                echo(echoing)
                close(echoing)
                finished.signal()
            }
        } catch {
            close(asking)
            close(echoing)
            throw error
        }
        defer {
            // The echoing thread sees the end of the stream and stops; it is waited for, boundedly.
            close(asking)
            _ = finished.wait(timeout: .now() + .seconds(readTimeoutSeconds + 1))
        }
        let message = [UInt8](repeating: 0x78, count: messageBytes)
        var buffer = [UInt8](repeating: 0, count: messageBytes)
        // The histogram of the bench's own latencies, so that the floor and the figures beside it are read alike.
        var roundTrips = LatencyHistogram()
        let start = monotonicNanoseconds()
        for index in 0..<(warmUpRoundTrips + maximumRoundTrips) {
            // After the first counted round trip, however long the warm-up took.
            if index > warmUpRoundTrips, Double(monotonicNanoseconds() - start) / 1e9 >= maximumSeconds { break }
            let sent = monotonicNanoseconds()
            try sendAll(asking, message)
            try receiveExactly(asking, into: &buffer)
            if index >= warmUpRoundTrips { roundTrips.record(nanoseconds: monotonicNanoseconds() - sent) }
        }
        precondition(roundTrips.count > 0, "the first counted round trip starts before the time limit is checked")
        return LoopbackProbe(
            medianMicroseconds: Double(roundTrips.valueAt(percentile: 50)) / 1000,
            percentile99Microseconds: Double(roundTrips.valueAt(percentile: 99)) / 1000, roundTrips: Int(roundTrips.count))
    }

    /// Two connected TCP sockets on 127.0.0.1: the asking one is a client socket like the bench's own connections
    /// (`ClientSocket.connect`: timeouts, Nagle off), the echoing one is accepted here and set up alike.
    static func connectedPair() throws(LedgerError) -> (asking: Int32, echoing: Int32) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw failure("socket") }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        guard bound == 0, listen(listener, 1) == 0 else { throw failure("bind or listen") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        guard named == 0 else { throw failure("getsockname") }
        // A loopback connect completes from the listener's backlog: accept on this thread afterwards.
        let port = Int(UInt16(bigEndian: address.sin_port))
        let asking = try ClientSocket.connect(.tcp(host: "127.0.0.1", port: port), timeoutSeconds: readTimeoutSeconds)
        let echoing = accept(listener, nil, nil)
        guard echoing >= 0 else {
            let error = failure("accept")
            close(asking)
            throw error
        }
        // Not inherited by a server the bench starts (accept4 with SOCK_CLOEXEC is not visible from Swift).
        _ = fcntl(echoing, F_SETFD, FD_CLOEXEC)
        var on: Int32 = 1
        setsockopt(echoing, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: readTimeoutSeconds, tv_usec: 0)
        setsockopt(echoing, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (asking, echoing)
    }

    /// Sends back whatever arrives until the other side closes (or a read times out or fails).
    static func echo(_ descriptor: Int32) {
        var buffer = [UInt8](repeating: 0, count: messageBytes)
        // Bounded by the asking side, which sends at most warm-up + maximum round trips and then closes.
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            do throws(LedgerError) { try sendAll(descriptor, Array(buffer[0..<count])) } catch { return }
        }
    }

    /// Sends all of `bytes`; a closed peer is an error, not a SIGPIPE.
    static func sendAll(_ descriptor: Int32, _ bytes: [UInt8]) throws(LedgerError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress.map { $0 + offset }, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw failure("send") }
            offset += count
        }
    }

    static func receiveExactly(_ descriptor: Int32, into buffer: inout [UInt8]) throws(LedgerError) {
        var received = 0
        while received < buffer.count {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress.map { $0 + received }, $0.count - received, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw count == 0 ? LedgerError(.connectionFailed, "the loopback probe's echo ended early") : failure("receive") }
            received += count
        }
    }

    static func failure(_ call: String) -> LedgerError {
        LedgerError(.connectionFailed, "the loopback probe's \(call) failed: \(String(cString: strerror(errno)))")
    }
}
