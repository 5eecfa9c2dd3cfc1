import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Foundation
import Glibc
import Testing

/// Command-line refusals no other suite reached (found by code coverage): usage errors that must stop a command
/// before it makes anything, and input lines or batches a command refuses while it goes on with the rest.
@Suite("circuito: usage errors and refused input no suite reached", OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10)))
struct UsageRefusalTests {
    @Test("vault seal and vault erase take only an identifier as beneficiary, and --server's reader as one: a usage error that makes no vault")
    func vaultSubjectIsAnIdentifier() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let vault = workspace.path("vault")
        for beneficiary in ["../escape", "ben 1", ""] {
            let sealed = try await circuito(["vault", "seal", "--vault", vault, "--beneficiary", beneficiary], stdin: #"{"name":"Maria"}"#)
            #expect(sealed.status == 64 && sealed.stdout.isEmpty && sealed.stderr.contains("--beneficiary must be an identifier"), "\(beneficiary): \(sealed.stderr)")
            let erased = try await circuito(["vault", "erase", "--vault", vault, "--beneficiary", beneficiary])
            #expect(erased.status == 64 && erased.stderr.contains("--beneficiary must be an identifier"), "\(beneficiary): \(erased.stderr)")
        }
        for organisation in [["--actor", "casa del quartiere"], ["--actor", "casa", "--referred-by", "hub/1"]] {
            let erased = try await circuito(["vault", "erase", "--vault", vault, "--server", "127.0.0.1:1", "--key", workspace.path("none.key")] + organisation)
            #expect(erased.status == 64 && erased.stderr.contains("--referred-by (or --actor) must be an identifier"), "\(organisation): \(erased.stderr)")
        }
        #expect(access(vault, F_OK) != 0, "a refused command made the vault")
    }

    @Test("client subscribe --heartbeat-seconds outside 1 to 3600, and serve --allocator-trim-interval-seconds past 3600, are usage errors before anything is reached or made")
    func intervalBounds() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        for seconds in ["0", "3601", "-5"] {
            let refused = try await circuito(["client", "subscribe", "--server", "127.0.0.1:1", "--key", workspace.path("none.key"), "--actor", "audit", "--heartbeat-seconds=" + seconds])
            #expect(refused.status == 64 && refused.stdout.isEmpty && refused.stderr.contains("--heartbeat-seconds must be from 1 to 3600"), "\(seconds): \(refused.stderr)")
        }
        let data = workspace.path("ledger")
        let serve = try await circuito(["serve", "--data", data, "--listen", "127.0.0.1:0", "--allocator-trim-interval-seconds", "3601"])
        #expect(serve.status == 64 && serve.stderr.contains("--allocator-trim-interval-seconds must be 0 (never) to 3600"), "\(serve.stderr)")
        #expect(access(data, F_OK) != 0)
    }

    @Test("sign refuses a line that is not an unsigned event (a signed one fed back) with invalid_event naming the field, signs the other lines, and exits 1")
    func signRefusesSignedInput() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let signer = TestActor("city")
        let keyPath = workspace.path("city.key")
        try KeyFile.write(signer.key, to: keyPath)
        let alreadySigned = try signer.register(TestActor("shop-1"), role: "merchant", name: "One")
        let unsigned = CanonicalJSON.encodeString(["type": "actor.registered", "body": .object(registration(TestActor("shop-2"), role: "merchant", name: "Two"))])
        let run = try await circuito(["sign", "--key", keyPath, "--actor", "city"], stdin: alreadySigned + "\n" + unsigned + "\n")
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("line 1: invalid_event: unsigned event has an unknown field"), "\(run.stderr)")
        #expect(run.completeLines.count == 1)
        let signed = try JSONParser.parse(Array((run.completeLines.first ?? "").utf8))
        #expect(signed["event"]?["body"]?["actor"] == "shop-2" && signed["sig"] != nil, "\(run.stdout)")
    }

    @Test("client submit: a line past 64 KiB is refused as too_large, an unsigned one without --key as invalid_event, and the next is sent; a --batch the server refuses prints its error with the index, exits 1 and writes nothing")
    func submitRefusals() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let oversize = #"{"pad":""# + String(repeating: "x", count: EventLimits.maximumSignedEventBytes) + #""}"#
        let first = try ledger.authority.register(TestActor("shop-1"), role: "merchant", name: "One")
        // Unsigned, and no --key to sign it with: refused here, never sent.
        let unsigned = CanonicalJSON.encodeString(["type": "actor.registered", "body": .object(registration(TestActor("shop-9"), role: "merchant", name: "Nine"))])
        let lines = try ledger.workspace.write("lines.jsonl", lines: [oversize, unsigned, first])
        let sent = try await circuito(["client", "submit", "--server", endpoint, lines])
        try #require(sent.status == 1 && sent.completeLines.count == 3, "\(sent.stdout) \(sent.stderr)")
        let answers = try sent.completeLines.map { try JSONParser.parse(Array($0.utf8)) }
        #expect(answers[0]["line"] == 1 && answers[0]["error"]?["data"]?["code"] == "too_large", "\(answers[0])")
        #expect(answers[1]["line"] == 2 && answers[1]["error"]?["data"]?["code"] == "invalid_event", "\(answers[1])")
        #expect(answers[1]["error"]?["message"]?.stringValue?.contains("needs --key and --actor") == true, "\(answers[1])")
        #expect(answers[2]["seq"] == 1, "\(sent.stdout)")

        // All or nothing: the second event registers shop-1 again, so neither is written.
        let batch = try ledger.workspace.write("batch.jsonl", lines: [
            try ledger.authority.register(TestActor("shop-2"), role: "merchant", name: "Two"),
            try ledger.authority.register(TestActor("shop-1"), role: "merchant", name: "One again", eventID: "reg-shop-1-again"),
        ])
        let refused = try await circuito(["client", "submit", "--server", endpoint, "--batch", batch])
        #expect(refused.status == 1 && refused.stderr.contains("2 event(s) refused"), "\(refused.stderr)")
        let answer = try JSONParser.parse(Array((refused.completeLines.first ?? "").utf8))
        #expect(answer["error"]?["data"] == ["code": "actor_exists", "index": 1], "\(refused.stdout)")
        let info = try await circuito(["client", "info", "--server", endpoint])
        #expect(try JSONParser.parse(Array(info.stdout.utf8))["size"] == 2, "\(info.stdout)")
    }

    @Test("follow as an actor the leader does not let read the log: follow refused naming not_authorised, exit 1, and the replica's LMDB files are removed")
    func followRefusedByTheLeader() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let shop = TestActor("shop-1")
        let registered = try await ledger.append([try ledger.authority.register(shop, role: "merchant", name: "One")])
        try #require(registered.succeeded, "\(registered.stderr)")
        let keyPath = ledger.workspace.path("shop.key")
        try KeyFile.write(shop.key, to: keyPath)
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let replica = ledger.workspace.path("replica")
        let follow = try await circuito(["follow", "--from", endpoint, "--data", replica, "--key", keyPath, "--actor", "shop-1"], timeout: 60)
        #expect(follow.exitedNormally && follow.status == 1, "\(follow.status) \(follow.stderr)")
        #expect(follow.stderr.contains("error: follow refused: ") && follow.stderr.contains("not_authorised"), "\(follow.stderr)")
        #expect(follow.stderr.contains("nothing was committed to the replica"), "\(follow.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: replica) == [LedgerFiles.writerLock])
    }

    @Test("serve --issuer-key: the server signs that organisation's status list; a key file it cannot read, or --contexts that is no folder, stops serve with exit 1 before it listens")
    func serveIssuerKey() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let casa = TestActor("casa")
        let registered = try await ledger.append([try ledger.authority.register(casa, role: "organisation", name: "Casa")])
        try #require(registered.succeeded, "\(registered.stderr)")
        let keyPath = ledger.workspace.path("casa.key")
        try KeyFile.write(casa.key, to: keyPath)
        let serve = ["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"]
        for (arguments, message) in [
            (["--issuer-key", ledger.workspace.path("missing.key")], "error: key_file: "),
            (["--issuer-key", keyPath, "--contexts", ledger.workspace.path("nowhere")], "is not a directory"),
        ] {
            let refused = try await circuito(serve + arguments, timeout: 60)
            #expect(refused.status == 1 && !refused.stdout.contains("listening") && refused.stderr.contains(message), "\(arguments): \(refused.status) \(refused.stderr)")
        }
        // The contexts are found as shared/contexts beside the build, as in the other badge tests.
        let server = try ChildProcess(serve + ["--issuer-key", keyPath])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let client = try LineClient(try Endpoint(parsing: endpoint), timeoutSeconds: 30)
        let statusList = try client.call("badge.status_list", ["issuer": "casa"]).get()
        #expect(statusList["type"]?.arrayValue?.contains("BitstringStatusListCredential") == true, "\(statusList)")
        #expect(statusList["proof"]?["verificationMethod"]?.stringValue?.contains(casa.multikey) == true, "\(statusList)")
    }
}
