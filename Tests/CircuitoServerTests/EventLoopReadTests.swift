import CircuitoCore
import CircuitoServer
import Foundation
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

    @Test("a lone read is answered on the event loop; a batch, a write and a read behind a write are not; none stays in flight")
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
        #expect(server.readsAnsweredOnEventLoop == start + 3)

        // A batch of reads goes to the request threads (its elements run in parallel there).
        let batch = [RPCMessage.request(id: 1, method: "server.info", params: [:]), RPCMessage.request(id: 2, method: "checkpoint", params: [:])]
        let answers = try #require(try client.exchange(CanonicalJSON.encodeString(.array(batch)) + "\n")?.arrayValue)
        #expect(answers.count == 2 && answers.allSatisfy { $0["result"] != nil })
        // So does a write, and a method outside the short reads.
        _ = try client.result("submit", try fixture.registration().params)
        _ = try client.result("events", fixture.read("events", as: "audit", ["from": 0, "limit": 2]))
        #expect(server.readsAnsweredOnEventLoop == start + 3)
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
        #expect(server.readsAnsweredOnEventLoop == start + 3)
        try await Self.waitUntilIdle(server)

        // Idle again: the next lone read is answered on the loop, and the log has both writes.
        #expect(try client.result("server.info")["size"]?.integerValue == 23)
        #expect(server.readsAnsweredOnEventLoop == start + 4)
        await server.shutdown()
    }

    @Test("a read session opened on the event loop serves the reads after it, on either path")
    func sessionAcrossPaths() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        try await Self.waitUntilIdle(server)
        let start = server.readsAnsweredOnEventLoop
        let challenge = try #require(try client.result("session.challenge")["challenge"]?.stringValue)
        let open = ReadAuthorisation.sign(
            method: "session.open", params: [:], actor: "bene-1", key: fixture.actors.beneficiary, nowMilliseconds: fixture.now, nonce: challenge)
        _ = try client.result("session.open", open)
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
}
