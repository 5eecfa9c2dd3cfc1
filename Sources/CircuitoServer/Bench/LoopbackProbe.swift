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
    static let maximumSeconds = 1.0
    /// A read that waits longer than this ends the probe with an error instead of a hang.
    static let readTimeoutSeconds = 5

    public static func measure() throws(LedgerError) -> LoopbackProbe {
        let (asking, echoing) = try connectedPair()
        let finished = DispatchSemaphore(value: 0)
        Thread.startNamed("circuito-echo") {
            echo(echoing)
            close(echoing)
            finished.signal()
        }
        defer {
            // The echoing thread sees the end of the stream and stops; it is waited for, boundedly.
            close(asking)
            _ = finished.wait(timeout: .now() + .seconds(readTimeoutSeconds + 1))
        }
        let message = [UInt8](repeating: 0x78, count: messageBytes)
        var buffer = [UInt8](repeating: 0, count: messageBytes)
        var roundTripNanoseconds: [UInt64] = []
        roundTripNanoseconds.reserveCapacity(maximumRoundTrips)
        let start = monotonicNanoseconds()
        for index in 0..<(warmUpRoundTrips + maximumRoundTrips) {
            if index >= warmUpRoundTrips, Double(monotonicNanoseconds() - start) / 1e9 >= maximumSeconds { break }
            let sent = monotonicNanoseconds()
            try writeAll(asking, message)
            try readExactly(asking, into: &buffer)
            if index >= warmUpRoundTrips { roundTripNanoseconds.append(monotonicNanoseconds() - sent) }
        }
        precondition(!roundTripNanoseconds.isEmpty, "the first counted round trip starts before the time limit is checked")
        let sorted = roundTripNanoseconds.sorted()
        func percentile(_ share: Double) -> Double {
            Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * share).rounded(.down)))]) / 1000
        }
        return LoopbackProbe(medianMicroseconds: percentile(0.5), percentile99Microseconds: percentile(0.99), roundTrips: sorted.count)
    }

    /// Two connected TCP sockets on 127.0.0.1, Nagle off on both (each message is sent at once, as the bench's are).
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
        let asking = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard asking >= 0 else { throw failure("socket") }
        // A loopback connect completes from the listener's backlog: accept on this thread afterwards.
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(asking, $0, length) }
        }
        guard connected == 0 else {
            let error = failure("connect")
            close(asking)
            throw error
        }
        let echoing = accept(listener, nil, nil)
        guard echoing >= 0 else {
            let error = failure("accept")
            close(asking)
            throw error
        }
        for descriptor in [asking, echoing] {
            // Not inherited by a server the bench starts (accept4 with SOCK_CLOEXEC is not visible from Swift).
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            var on: Int32 = 1
            setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            var timeout = timeval(tv_sec: readTimeoutSeconds, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        return (asking, echoing)
    }

    /// Sends back whatever arrives until the other side closes (or a read times out or fails).
    static func echo(_ descriptor: Int32) {
        var buffer = [UInt8](repeating: 0, count: messageBytes)
        // Bounded by the asking side, which sends at most warm-up + maximum round trips and then closes.
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            do throws(LedgerError) { try writeAll(descriptor, Array(buffer[0..<count])) } catch { return }
        }
    }

    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) throws(LedgerError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress.map { $0 + written }, $0.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw failure("write") }
            written += count
        }
    }

    static func readExactly(_ descriptor: Int32, into buffer: inout [UInt8]) throws(LedgerError) {
        var received = 0
        while received < buffer.count {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress.map { $0 + received }, $0.count - received) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw count == 0 ? LedgerError(.connectionFailed, "the loopback probe's echo ended early") : failure("read") }
            received += count
        }
    }

    static func failure(_ call: String) -> LedgerError {
        LedgerError(.connectionFailed, "the loopback probe's \(call) failed: \(String(cString: strerror(errno)))")
    }
}
