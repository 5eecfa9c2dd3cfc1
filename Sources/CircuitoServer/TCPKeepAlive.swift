import Glibc
import NIOCore

/// TCP keepalive probes on a connection, so that a peer that vanished without closing it (its machine switched off,
/// a network cut, a NAT or firewall that forgot the connection) is noticed: after `idleSeconds` without traffic the
/// kernel probes the peer every `intervalSeconds`, and after `probes` unanswered probes (or a reset from a host that
/// no longer knows the connection) the connection fails, about two minutes after the last traffic. Without them a side
/// that only waits to read (a server streaming a subscription of a quiet ledger, a follower waiting for records) holds
/// a dead connection forever. A live peer's kernel answers the probes by itself, however long its program sends nothing.
public struct TCPKeepAlive: Sendable, Hashable {
    /// Seconds without traffic before the first probe.
    public var idleSeconds: Int = 60
    /// Seconds between probes.
    public var intervalSeconds: Int = 10
    /// Unanswered probes after which the connection fails.
    public var probes: Int = 6

    public init() {}

    /// The socket options that turn the probes on, in the order they are set (the timings before the switch).
    private var socketOptions: [(level: Int32, name: Int32, value: Int32)] {
        let tcp = Int32(IPPROTO_TCP)
        return [
            (tcp, TCP_KEEPIDLE, Int32(clamping: idleSeconds)), (tcp, TCP_KEEPINTVL, Int32(clamping: intervalSeconds)),
            (tcp, TCP_KEEPCNT, Int32(clamping: probes)), (SOL_SOCKET, SO_KEEPALIVE, 1),
        ]
    }

    /// Turns the probes on for a client's TCP socket, as far as the system allows: a connection without them still
    /// works, and fails only later on a vanished peer.
    func apply(toSocket descriptor: Int32) {
        for option in socketOptions {
            var value = option.value
            _ = setsockopt(descriptor, option.level, option.name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// Turns the probes on for an accepted TCP connection (on its event loop); a Unix socket has no use for them.
    func apply(to channel: Channel) throws {
        guard let family = channel.localAddress?.protocol, family == .inet || family == .inet6,
            let options = channel.syncOptions
        else { return }
        for option in socketOptions {
            let name = ChannelOptions.Types.SocketOption(
                level: NIOBSDSocket.OptionLevel(rawValue: option.level), name: NIOBSDSocket.Option(rawValue: option.name))
            try options.setOption(name, value: SocketOptionValue(option.value))
        }
    }
}
