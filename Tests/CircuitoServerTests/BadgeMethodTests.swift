import CircuitoCore
import CircuitoCredentials
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Foundation
import Testing

/// The JSON-LD contexts from `../shared/contexts` beside the repository.
func sharedContexts() throws -> JSONLDContextStore {
    var folder = URL(fileURLWithPath: #filePath)
    while folder.path != "/" && !FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
        folder.deleteLastPathComponent()
    }
    let contexts = folder.deletingLastPathComponent().appendingPathComponent("shared/contexts")
    var files: [String: [UInt8]] = [:]
    for fileName in JSONLDContextStore.bundledFileNames.values {
        files[fileName] = [UInt8](try Data(contentsOf: contexts.appendingPathComponent(fileName)))
    }
    return try JSONLDContextStore(bundledFiles: files)
}

@Suite("Socket API: badge credentials", .timeLimit(.minutes(5)))
struct BadgeMethodTests {
    @Test("badge.credential and badge.status_list are signed with the issuing organisation's key and verify offline")
    func credentialsOverTheSocket() async throws {
        let fixture = try CircuitFixture()
        let contexts = try sharedContexts()
        var configuration = ServerConfiguration(directory: fixture.directory, tcpHost: "127.0.0.1", tcpPort: 0)
        configuration.eventLoopThreads = 2
        configuration.credentialIssuerKeys = [fixture.actors.organisation]
        configuration.credentialContexts = contexts
        let server = try await LedgerServer.start(configuration)
        let client = try server.client()
        for suite in ["rdfc", "jcs"] {
            let credential = try client.result("badge.credential", ["badge": "badge-1", "suite": .string(suite)])
            #expect(credential["issuer"]?["id"]?.stringValue == DIDKey.did(for: fixture.actors.organisation.publicKey) || credential["issuer"]?.stringValue == DIDKey.did(for: fixture.actors.organisation.publicKey))
            let result = EdDSACryptosuite.verifyProof(document: credential, contexts: contexts) { DIDKey.publicKey(fromVerificationMethod: $0) }
            guard case .verified = result else {
                Issue.record("the \(suite) credential does not verify: \(result)")
                continue
            }
            // No personal data: the beneficiary's pseudonym is not in the credential.
            #expect(!CanonicalJSON.encodeString(credential).contains("bene-1"))
        }
        let statusList = try client.result("badge.status_list", ["issuer": "casa"])
        #expect(statusList["type"]?.arrayValue?.contains("BitstringStatusListCredential") == true)
        guard case .verified = EdDSACryptosuite.verifyProof(document: statusList, contexts: contexts, resolveKey: { DIDKey.publicKey(fromVerificationMethod: $0) }) else {
            Issue.record("the status list does not verify")
            return
        }
        // Another organisation's badges cannot be signed by this server; unknown badges are not found.
        let refused = try client.error("badge.status_list", ["issuer": "other-org"])
        #expect(refused.data?["code"]?.stringValue == "key_file")
        let missing = try client.error("badge.credential", ["badge": "no-such-badge"])
        #expect(missing.data?["code"]?.stringValue != nil)
        let badSuite = try client.error("badge.credential", ["badge": "badge-1", "suite": "rsa"])
        #expect(badSuite.data?["code"]?.stringValue == "invalid_body")
        await server.shutdown()
    }

    @Test("without issuer keys, badge.credential and badge.status_list each point to the CLI command that makes it")
    func noKeys() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let refused = try client.error("badge.credential", ["badge": "badge-1"])
        #expect(refused.data?["code"]?.stringValue == "key_file")
        #expect(refused.message.contains("circuito badge credential --data LEDGER --id badge-1 --key"))
        let statusList = try client.error("badge.status_list", ["issuer": "casa"])
        #expect(statusList.data?["code"]?.stringValue == "key_file")
        #expect(statusList.message.contains("circuito badge status-list --data LEDGER --issuer casa --key"))
        // A revoked badge has no credential, whatever key a server holds: said before the missing key.
        _ = try client.result("submit", try fixture.signed("badge.revoked", by: "anna", fixture.actors.staff, ["badge": "badge-1", "reason": "Issued in error"]).params)
        #expect(try client.error("badge.credential", ["badge": "badge-1"]).data?["code"]?.stringValue == "invalid_state")
        await server.shutdown()
    }
}
