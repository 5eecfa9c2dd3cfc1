import Glibc

/// A listener the tests could not set up: the system's error, named.
public struct LoopbackListenerError: Error, CustomStringConvertible {
    public let description: String
}

/// A TCP socket listening on 127.0.0.1 at a port the system chose, and that port, for the tests' fake servers; the
/// caller closes it. One copy for every test target (the CLI and server tests each had their own).
public func loopbackListener(backlog: Int32) throws -> (descriptor: Int32, port: Int) {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw LoopbackListenerError(description: "socket: \(String(cString: strerror(errno)))") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound && listen(descriptor, backlog) == 0 else {
        let error = String(cString: strerror(errno))
        close(descriptor)
        throw LoopbackListenerError(description: "cannot listen on 127.0.0.1: \(error)")
    }
    return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
}
