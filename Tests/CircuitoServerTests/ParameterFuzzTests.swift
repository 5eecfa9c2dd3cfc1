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
    }
}
