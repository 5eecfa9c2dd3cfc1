import CircuitoCore
import CircuitoServer
import Foundation
import Glibc
import Testing

/// A peer that vanishes without closing its connection (a till switched off, a network cut, a NAT that forgot the
/// connection) sends no FIN and no reset. A side that only waits to read never learns of it unless the kernel probes
/// the peer: the server would hold a quiet subscriber's connection (and its slot of the connection bound) forever,
/// and a follower would wait forever on a leader that restarted meanwhile instead of reconnecting.
@Suite("TCP keepalive")
struct KeepAliveTests {
    /// The TCP sockets of this process, by descriptor, with their local and peer ports.
    static func tcpSockets() -> [(descriptor: Int32, localPort: UInt16, peerPort: UInt16)] {
        var sockets: [(descriptor: Int32, localPort: UInt16, peerPort: UInt16)] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for name in names {
            guard let descriptor = Int32(name) else { continue }
            var local = sockaddr_in()
            var peer = sockaddr_in()
            var localLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            var peerLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let named = withUnsafeMutablePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &localLength) }
            }
            let connected = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &peerLength) }
            }
            guard named == 0, connected == 0, local.sin_family == sa_family_t(AF_INET) else { continue }
            sockets.append((descriptor, UInt16(bigEndian: local.sin_port), UInt16(bigEndian: peer.sin_port)))
        }
        return sockets
    }

    static func option(_ descriptor: Int32, _ level: Int32, _ name: Int32) -> Int32 {
        var value: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(descriptor, level, name, &value, &length)
        return value
    }

    /// Seconds from the last traffic until the kernel gives up on a silent peer; nil without keepalive.
    static func detectionSeconds(_ descriptor: Int32) -> Int32? {
        guard option(descriptor, SOL_SOCKET, SO_KEEPALIVE) == 1 else { return nil }
        let tcp = Int32(IPPROTO_TCP)
        return option(descriptor, tcp, TCP_KEEPIDLE) + option(descriptor, tcp, TCP_KEEPINTVL) * option(descriptor, tcp, TCP_KEEPCNT)
    }

    @Test("both ends of a TCP connection probe a silent peer: the server's side of a subscriber and the client's (followers and the CLI), within the idle timeout")
    func bothEndsProbeASilentPeer() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let subscriber = try server.client()
        _ = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(Int64(try server.size()))]))
        let serverPort = UInt16(server.tcpPort ?? 0)
        let sockets = Self.tcpSockets()
        // The subscriber's socket (its peer is the server's port) and the server's side of it (the reverse).
        let clientSide = sockets.filter { $0.peerPort == serverPort }
        #expect(clientSide.count == 1, "\(sockets)")
        for client in clientSide {
            let serverSide = sockets.filter { $0.localPort == serverPort && $0.peerPort == client.localPort }
            #expect(serverSide.count == 1, "\(sockets)")
            // A silent peer is given up within the server's idle timeout (600 s), which does not apply to a
            // connection holding a subscription.
            for end in [client] + serverSide {
                let seconds = Self.detectionSeconds(end.descriptor)
                #expect(seconds != nil, "descriptor \(end.descriptor) (port \(end.localPort)) has no keepalive")
                #expect((1...600).contains(seconds ?? 0), "descriptor \(end.descriptor) gives up on a silent peer after \(seconds ?? 0) s")
            }
        }
        // The probes change nothing for a live subscriber.
        _ = try server.client().result("submit", try fixture.registration().params)
        var received = false
        while let message = try subscriber.nextMessage() {
            if message["method"] == "subscription.record" {
                received = true
                break
            }
        }
        #expect(received)
        await server.shutdown()
    }
}
