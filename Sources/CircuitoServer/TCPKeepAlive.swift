import Glibc
import NIOCore

/// TCP keepalive probes on a connection, so that a peer that vanished without closing it (its machine switched off,
/// a network cut, a NAT or firewall that forgot the connection) is noticed: after `idleSeconds` without traffic the
/// kernel probes the peer every `intervalSeconds`, and after `probes` unanswered probes (or a reset from a host that
/// no longer knows the connection) the connection fails. Without them a side that only waits to read (a server
/// streaming a subscription of a quiet ledger, a follower waiting for records) holds a dead connection forever.
/// A live peer's kernel answers the probes by itself, however long its program sends nothing.
public struct TCPKeepAlive: Sendable, Hashable {
    /// Seconds without traffic before the first probe.
    public var idleSeconds: Int = 60
    /// Seconds between probes.
    public var intervalSeconds: Int = 10
    /// Unanswered probes after which the connection fails.
    public var probes: Int = 6

    public init() {}

    /// Seconds from the last traffic until a vanished peer's connection fails.
    public var detectionSeconds: Int { idleSeconds + intervalSeconds * probes }

    /// Turns the probes on for a TCP socket; false if the system refused an option.
    @discardableResult
    func apply(toSocket descriptor: Int32) -> Bool {
        func set(_ level: Int32, _ name: Int32, _ value: Int) -> Bool {
            var option = Int32(clamping: value)
            return setsockopt(descriptor, level, name, &option, socklen_t(MemoryLayout<Int32>.size)) == 0
        }
        let tcp = Int32(IPPROTO_TCP)
        return set(tcp, TCP_KEEPIDLE, idleSeconds) && set(tcp, TCP_KEEPINTVL, intervalSeconds) && set(tcp, TCP_KEEPCNT, probes)
            && set(SOL_SOCKET, SO_KEEPALIVE, 1)
    }

    /// Turns the probes on for an accepted TCP connection (on its event loop); a Unix socket has no use for them.
    func apply(to channel: Channel) throws {
        guard let family = channel.localAddress?.protocol, family == .inet || family == .inet6,
            let options = channel.syncOptions
        else { return }
        func tcp(_ name: Int32) -> ChannelOptions.Types.SocketOption {
            ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: name))
        }
        try options.setOption(tcp(TCP_KEEPIDLE), value: SocketOptionValue(idleSeconds))
        try options.setOption(tcp(TCP_KEEPINTVL), value: SocketOptionValue(intervalSeconds))
        try options.setOption(tcp(TCP_KEEPCNT), value: SocketOptionValue(probes))
        try options.setOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
    }
}
