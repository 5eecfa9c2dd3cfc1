import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Foundation
import Testing

/// Inputs a fuzzer of the methods' params found to be answered wrongly, each reduced to its smallest form.
@Suite("Socket API: params a fuzzer found", .serialized, .timeLimit(.minutes(5)))
struct ParameterFuzzTests {
    @Test("a validly signed read whose actor is no identifier (empty, longer than a store key, other characters) is unknown_actor, not a storage error")
    func signedReadActorNotAnIdentifier() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        for actor in ["", String(repeating: "x", count: 600), "a b", "é"] {
            let params = ReadAuthorisation.sign(
                method: "report", params: [:], actor: actor, key: fixture.actors.auditor, nowMilliseconds: fixture.now)
            #expect(try client.error("report", params).name == "unknown_actor", "actor \(actor.prefix(10).debugDescription)")
            // In a session too: session.open checks the signer the same way.
            let challenge = try #require(try client.result("session.challenge")["challenge"]?.stringValue)
            let open = ReadAuthorisation.sign(
                method: "session.open", params: [:], actor: actor, key: fixture.actors.auditor, nowMilliseconds: fixture.now, nonce: challenge)
            #expect(try client.error("session.open", open).name == "unknown_actor", "actor \(actor.prefix(10).debugDescription)")
        }
        #expect(try client.result("report", fixture.read("report", as: "audit", [:]))["size"] != nil)
        await server.shutdown()
    }

    @Test("a signed read's params are all checked before its permission and the ledger's lookups: malformed is invalid_params whoever signs it")
    func paramsBeforePermission() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        // Refused readers: a beneficiary reading the log, another beneficiary's account and history.
        let malformed: [(String, JSONValue)] = [
            ("events", ["limit": 0]), ("events", ["from": -1]),
            ("account.history", ["account": "beneficiary:bene-2", "limit": 0]),
            ("account.history", ["account": "beneficiary:bene-2", "after": "x"]),
            ("case.history", ["beneficiary": "bene-2", "limit": "x"]), ("case.history", ["beneficiary": "bene-2", "after": -5]),
            ("subscribe", ["from": -1]),
        ]
        for (method, params) in malformed {
            #expect(try client.error(method, fixture.read(method, as: "bene-1", params)).name == "invalid_params", "\(method) \(params)")
        }
        // The same requests well formed are refused for the reader.
        for (method, params) in [("events", ["limit": 1]), ("account.history", ["account": "beneficiary:bene-2", "limit": 1]), ("case.history", ["beneficiary": "bene-2", "after": 0]), ("subscribe", ["from": 0])] as [(String, JSONValue)] {
            #expect(try client.error(method, fixture.read(method, as: "bene-1", params)).name == "not_authorised", "\(method)")
        }
        // The auditor naming an id nobody registered: the malformed param first, not_found only when well formed.
        #expect(try client.error("account.history", fixture.read("account.history", as: "audit", ["account": "beneficiary:nobody", "limit": 0])).name == "invalid_params")
        #expect(try client.error("case.history", fixture.read("case.history", as: "audit", ["beneficiary": "nobody", "after": "x"])).name == "invalid_params")
        #expect(try client.error("account.history", fixture.read("account.history", as: "audit", ["account": "beneficiary:nobody", "limit": 1])).name == "not_found")
        #expect(try client.error("case.history", fixture.read("case.history", as: "audit", ["beneficiary": "nobody"])).name == "not_found")
        await server.shutdown()
    }
}
