import CircuitoCore
import CircuitoServer
import Foundation
import Glibc
import Testing

/// A lone short read is answered on the event loop; everything else keeps the request threads' path
/// (`RequestLineHandler`, Specs/protocol.md section 1).
@Suite("reads answered on the event loop")
struct EventLoopReadTests {
    /// Waits until the server has nothing in flight: the task path lets go of its count just after its write,
    /// which may reach the client first.
    private static func waitUntilIdle(_ server: LedgerServer) async throws {
        for _ in 0..<500 where server.requestsInFlight != 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.requestsInFlight == 0)
    }

    /// Asks `server.info` until the log has `size` records (a write whose answer the test does not read), for up to
    /// five seconds.
    private static func waitUntilSize(_ size: Int64, server: LedgerServer, client: LineClient) async throws -> Bool {
        for _ in 0..<250 {
            try await waitUntilIdle(server)
            if try client.result("server.info")["size"]?.integerValue == size { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test("a lone read is answered on the event loop; a batch, a long read and a read behind a write are not; none stays in flight")
    func loneReadsOnly() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        try await Self.waitUntilIdle(server)
        let start = server.readsAnsweredOnEventLoop

        // Lone reads, signed and not, answered as before.
        #expect(try client.result("server.info")["size"]?.integerValue == 21)
        let balance = try client.result("account.balance", fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"]))
        #expect(balance["balance"] == .integer(fixture.initialBalance))
        let refused = try client.error("account.balance", fixture.read("account.balance", as: "bene-2", ["account": "beneficiary:bene-1"]))
        #expect(refused.data?["code"] == "not_authorised")
        // settlement.get is one signature check and one lookup, as a balance is.
        let settlement = try client.error("settlement.get", fixture.read("settlement.get", as: "audit", ["settlement": "settle-none"]))
        #expect(settlement.data?["code"] == "not_found")
        #expect(server.readsAnsweredOnEventLoop == start + 4)

        // A batch of reads goes to the request threads (its elements run in parallel there).
        let batch = [RPCMessage.request(id: 1, method: "server.info", params: [:]), RPCMessage.request(id: 2, method: "checkpoint", params: [:])]
        let answers = try #require(try client.exchange(CanonicalJSON.encodeString(.array(batch)) + "\n")?.arrayValue)
        #expect(answers.count == 2 && answers.allSatisfy { $0["result"] != nil })
        // A method outside the short reads goes there too; a lone write is taken on the loop as a write (below), not
        // counted as a read.
        _ = try client.result("submit", try fixture.registration().params)
        _ = try client.result("events", fixture.read("events", as: "audit", ["from": 0, "limit": 2]))
        #expect(server.readsAnsweredOnEventLoop == start + 4)
        try await Self.waitUntilIdle(server)

        // A read that arrives while a write is in flight on the connection (both lines in one send, so the handler
        // counts the write before it looks at the read): the read goes to a task too, and both are answered.
        let write = RPCMessage.request(id: "w", method: "submit", params: try fixture.registration().params)
        let read = RPCMessage.request(id: "r", method: "server.info", params: [:])
        try client.send(bytes: Array((CanonicalJSON.encodeString(write) + "\n" + CanonicalJSON.encodeString(read) + "\n").utf8))
        let first = try #require(try client.nextMessage())
        let second = try #require(try client.nextMessage())
        #expect(Set([first["id"], second["id"]]) == Set<JSONValue?>(["w", "r"]))
        #expect(first["result"] != nil && second["result"] != nil)
        #expect(server.readsAnsweredOnEventLoop == start + 4)
        try await Self.waitUntilIdle(server)

        // Idle again: the next lone read is answered on the loop, and the log has both writes.
        #expect(try client.result("server.info")["size"]?.integerValue == 23)
        #expect(server.readsAnsweredOnEventLoop == start + 5)
        await server.shutdown()
    }

    @Test("a connection reset in the middle of a flood of requests leaves nothing counted in flight; lone reads go to the loop again")
    func resetConnectionLetsGo() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        for _ in 0..<5 {
            // 64 requests that take the task path (`catalogue.search` is not a short read), then a reset (SO_LINGER 0):
            // some are still unread or unanswered when the connection breaks.
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            try #require(socket >= 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(server.tcpPort ?? 0)).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(connected == 0)
            let line = CanonicalJSON.encodeString(RPCMessage.request(id: 1, method: "catalogue.search", params: [:])) + "\n"
            let flood = Array(String(repeating: line, count: 64).utf8)
            #expect(flood.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == flood.count)
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            Glibc.close(socket)
        }
        // The server takes the floods in its own time: once it has, nothing is left counted, so a lone read is answered on
        // the event loop again (a count left behind would send every read to the task path for good).
        let client = try server.client()
        var answeredOnTheLoop = false
        for _ in 0..<250 where !answeredOnTheLoop {
            let before = server.readsAnsweredOnEventLoop
            #expect(try client.result("server.info")["size"]?.integerValue == 21)
            answeredOnTheLoop = server.readsAnsweredOnEventLoop == before + 1
            if !answeredOnTheLoop { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(answeredOnTheLoop)
        try await Self.waitUntilIdle(server)
        await server.shutdown()
    }

    @Test("a read session opened on the event loop serves the reads after it, on either path")
    func sessionAcrossPaths() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        try await Self.waitUntilIdle(server)
        let start = server.readsAnsweredOnEventLoop
        _ = try SessionTests.openSession(client, fixture: fixture, as: "bene-1")
        #expect(server.readsAnsweredOnEventLoop == start + 2)
        // Alone: on the loop, with the session's actor.
        #expect(try client.result("account.balance", ["account": "beneficiary:bene-1"])["balance"] == .integer(fixture.initialBalance))
        #expect(server.readsAnsweredOnEventLoop == start + 3)
        // In a batch: on the request threads, the same session.
        let batch = [RPCMessage.request(id: 1, method: "account.balance", params: ["account": "beneficiary:bene-1"])]
        let answers = try #require(try client.exchange(CanonicalJSON.encodeString(.array(batch)) + "\n")?.arrayValue)
        #expect(answers.first?["result"]?["balance"] == .integer(fixture.initialBalance))
        #expect(server.readsAnsweredOnEventLoop == start + 3)
        await server.shutdown()
    }

    @Test("server.info's connections: open connections, requests in flight (itself) and reads answered on the loop, as the server counts them")
    func connectionCounters() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let first = try server.client()
        try await Self.waitUntilIdle(server)
        func counters(_ client: LineClient) throws -> (open: Int64, inFlight: Int64, onLoop: Int64) {
            let connections = try #require(try client.result("server.info")["connections"])
            return (
                try #require(connections["open"]?.integerValue), try #require(connections["requests_in_flight"]?.integerValue),
                try #require(connections["reads_answered_on_event_loop"]?.integerValue))
        }
        let start = server.readsAnsweredOnEventLoop
        let alone = try counters(first)
        #expect(alone.open == 1)
        // The server.info being answered is the one request in flight, and it was answered on the loop.
        #expect(alone.inFlight == 1)
        #expect(alone.onLoop == Int64(start + 1))
        #expect(server.readsAnsweredOnEventLoop == start + 1)

        // A second connection is counted, and a read on it adds to the same server-wide count.
        var second: LineClient? = try server.client()
        try await Self.waitUntilIdle(server)
        let both = try counters(try #require(second))
        #expect(both.open == 2)
        #expect(both.onLoop == Int64(start + 2))
        // A request that takes the task path is not counted as answered on the loop.
        _ = try first.result("events", fixture.read("events", as: "audit", ["from": 0, "limit": 1]))
        try await Self.waitUntilIdle(server)

        // Once the second connection is closed, the server stops counting it.
        second = nil
        var open = Int64(2)
        for _ in 0..<250 where open != 1 {
            try await Self.waitUntilIdle(server)
            open = try counters(first).open
            if open != 1 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(open == 1)
        #expect(second == nil)
        await server.shutdown()
    }

    @Test("a lone submit is taken on the event loop: written and answered with its receipt, refusals too, a notification run unanswered; none stays in flight")
    func loneWritesOnTheLoop() async throws {
        let fixture = try CircuitFixture(initialBalance: 100)
        let server = try await fixture.startServer()
        let client = try server.client()
        try await Self.waitUntilIdle(server)
        let start = server.writesTakenOnEventLoop
        let size = try #require(try client.result("server.info")["size"]?.integerValue)

        // Accepted: the receipt names the next record, and the log has it.
        let receipt = try client.result("submit", try fixture.registration().params)
        #expect(receipt["seq"]?.integerValue == size)
        #expect(server.writesTakenOnEventLoop == start + 1)
        try await Self.waitUntilIdle(server)
        // A bad signature, refused on the loop before the writer; an overspend, refused by the writer's rules.
        var tampered = try fixture.registration().json.objectValue ?? [:]
        tampered["sig"] = .string(Base64.encode([UInt8](repeating: 7, count: 64)))
        #expect(try client.error("submit", .object(tampered)).name == "invalid_signature")
        try await Self.waitUntilIdle(server)
        #expect(try client.error("submit", try fixture.payment(amount: 1_000).params).name == "insufficient_funds")
        try await Self.waitUntilIdle(server)
        // Params that are not a signed event at all: invalid params, answered on the loop.
        #expect(try client.error("submit", .array([])).code == -32602)
        try await Self.waitUntilIdle(server)
        #expect(server.writesTakenOnEventLoop == start + 4)
        // A notification is written and gets no answer: the next read finds it in the log.
        try client.send(RPCMessage.notification(method: "submit", params: try fixture.registration().params))
        #expect(try await Self.waitUntilSize(size + 2, server: server, client: client))
        #expect(server.writesTakenOnEventLoop == start + 5)
        await server.shutdown()
    }

    @Test("a client that half-closes right after a lone submit still gets its answer, a receipt or a refusal, before the connection ends", arguments: 0..<4)
    func halfCloseAfterALoneSubmit(round: Int) async throws {
        let fixture = try CircuitFixture(initialBalance: 100)
        let server = try await fixture.startServer()
        let reader = try server.client()
        try await Self.waitUntilIdle(server)
        let size = try #require(try reader.result("server.info")["size"]?.integerValue)
        // Accepted (a registration) in even rounds, refused by the writer's rules (an overspend) in odd ones: both
        // answers come from the writer after the commit, while the half-close has already ended the client's side.
        let accepted = round % 2 == 0
        let params = accepted ? try fixture.registration().params : try fixture.payment(amount: 1_000).params
        let start = server.writesTakenOnEventLoop
        let client = try server.client(timeoutSeconds: 20)
        try client.send(RPCMessage.request(id: "lone", method: "submit", params: params))
        client.shutdownSending()
        let answer = try client.nextMessage()
        #expect(answer?["id"] == "lone", "\(String(describing: answer))")
        if accepted {
            #expect(answer?["result"]?["seq"]?.integerValue == size, "\(String(describing: answer))")
        } else {
            #expect(answer?["error"]?["data"]?["code"] == "insufficient_funds", "\(String(describing: answer))")
        }
        // Then the server closes the connection.
        #expect(try client.nextMessage() == nil)
        #expect(server.writesTakenOnEventLoop == start + 1, "the submit took the task path; this test is about the loop's")
        try await Self.waitUntilIdle(server)
        await server.shutdown()
    }

    @Test("a submit behind another takes the task path; a connection gone before its answer still lets go of the count")
    func writesInFlightAndGone() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        try await Self.waitUntilIdle(server)
        let start = server.writesTakenOnEventLoop
        let size = try #require(try client.result("server.info")["size"]?.integerValue)
        // Two submits in one send: the first is taken on the loop, the second finds it in flight and goes to a task.
        let first = RPCMessage.request(id: "a", method: "submit", params: try fixture.registration().params)
        let second = RPCMessage.request(id: "b", method: "submit", params: try fixture.registration().params)
        try client.send(bytes: Array((CanonicalJSON.encodeString(first) + "\n" + CanonicalJSON.encodeString(second) + "\n").utf8))
        let answers = [try #require(try client.nextMessage()), try #require(try client.nextMessage())]
        #expect(Set(answers.map { $0["id"] }) == Set<JSONValue?>(["a", "b"]))
        #expect(Set(answers.compactMap { $0["result"]?["seq"]?.integerValue }) == [size, size + 1])
        #expect(server.writesTakenOnEventLoop == start + 1)
        try await Self.waitUntilIdle(server)

        // The client goes away before its answer: the writer still commits the event, and the count is let go.
        do {
            let gone = try server.client()
            try gone.send(RPCMessage.request(id: 1, method: "submit", params: try fixture.registration().params))
        }
        #expect(try await Self.waitUntilSize(size + 3, server: server, client: client))
        try await Self.waitUntilIdle(server)
        await server.shutdown()
    }
}
