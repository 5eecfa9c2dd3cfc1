import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Foundation
import Testing

/// Refusals of the socket API (over a real socket) and of replicas that no other suite reached (found by code
/// coverage): each checks the code a client acts on and that the refused request changed nothing.
@Suite("Socket API and replicas: refusals no other suite reached", .serialized, .timeLimit(.minutes(5)))
struct ServerRefusalTests {
    /// A signed read request as given, signed by `key`: for requests `ReadAuthorisation.sign` would never make.
    static func signed(_ request: JSONObject, by key: Ed25519PrivateKey) -> JSONValue {
        .object(["request": .object(request), "sig": .string(Base64.encode(key.signature(for: ReadAuthorisation.signingBytes(.object(request)))))])
    }

    @Test("a signed read refused before its nonce is checked (an unknown member, a malformed nonce, ts, key or sig) gets its code and leaves the nonce unused")
    func malformedSignedReads() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let key = fixture.actors.beneficiary
        let request: JSONObject = [
            "method": "account.balance", "params": ["account": "beneficiary:bene-1"], "actor": "bene-1", "key": .string(key.publicKey.multikey),
            "ts": .string(Timestamp.format(millisecondsSince1970: fixture.now)), "nonce": "n-kept",
        ]
        func refusal(_ change: (inout JSONObject) -> Void) throws -> RPCError {
            var changed = request
            change(&changed)
            return try client.error("account.balance", Self.signed(changed, by: key))
        }
        let extra = try refusal { $0["purpose"] = "audit" }
        #expect(extra.code == 6008 && extra.name == "invalid_read_request" && extra.message.contains("\"purpose\""), "\(extra)")
        for nonce in ["n kept", "", String(repeating: "n", count: ReadAuthorisation.maximumNonceBytes + 1)] {
            let malformed = try refusal { $0["nonce"] = .string(nonce) }
            #expect(malformed.code == 6008 && malformed.message.contains("nonce"), "nonce \(nonce.prefix(10)): \(malformed)")
        }
        let timestamp = try refusal { $0["ts"] = "yesterday" }
        #expect(timestamp.code == 1005 && timestamp.name == "invalid_timestamp", "\(timestamp)")
        let badKey = try refusal { $0["key"] = "z6MkNotAKey" }
        #expect(badKey.code == 1006 && badKey.name == "invalid_key", "\(badKey)")
        // A sig that is not base64, or not 64 bytes, does not verify.
        for signature in ["not base64!", Base64.encode([UInt8](repeating: 1, count: 63))] {
            var params = Self.signed(request, by: key).objectValue ?? [:]
            params["sig"] = .string(signature)
            #expect(try client.error("account.balance", .object(params)).name == "invalid_signature")
        }
        // None of those used the nonce up: the well-formed request with it is answered once, then is a replay.
        #expect(try client.result("account.balance", Self.signed(request, by: key))["balance"] == .integer(fixture.initialBalance))
        #expect(try client.error("account.balance", Self.signed(request, by: key)).name == "request_replayed")
        await server.shutdown()
    }

    @Test("the nonce store's bound over all actors: past it a signed read is overloaded and nothing is forgotten; a session still reads")
    func nonceStoreFull() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumRememberedNonces = 2
        let server = try await fixture.startServer(limits: limits)
        let client = try server.client()
        let first = fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"])
        _ = try client.result("account.balance", first)
        _ = try client.result("account.balance", fixture.read("account.balance", as: "audit", ["account": "fund"]))
        let refused = try client.error("account.balance", fixture.read("account.balance", as: "city", ["account": "fund"]))
        #expect(refused.code == 6004 && refused.name == "overloaded" && refused.message.contains("too many signed reads"), "\(refused)")
        #expect(try client.result("server.info")["reads"]?["remembered_nonces"] == 2)
        // Full, the store forgets no nonce to make room: the first request is still a replay.
        #expect(try client.error("account.balance", first).name == "request_replayed")
        // A session's challenge takes no place in the store.
        #expect(try SessionTests.openSession(client, fixture: fixture, as: "city")["actor"] == "city")
        #expect(try client.result("account.balance", ["account": "fund"])["balance"] != nil)
        await server.shutdown()
    }

    @Test("submit_batch: events that are not an array are invalid_params; a batch refused as a whole (size_mismatch) names no index and writes nothing")
    func batchRefusals() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let size = try #require(try client.result("server.info")["size"]?.integerValue)
        let notArray = try client.error("submit_batch", ["events": .object(["event": "x"])])
        #expect(notArray.code == -32602 && notArray.name == "invalid_params" && notArray.message.contains("\"events\""), "\(notArray)")
        let events: [JSONValue] = [try fixture.registration().json, try fixture.registration().json]
        let mismatch = try client.error("submit_batch", ["events": .array(events), "expected_size": .integer(size + 1)])
        #expect(mismatch.code == 6007 && mismatch.name == "size_mismatch", "\(mismatch)")
        #expect(mismatch.data?["index"] == nil, "\(mismatch)")
        #expect(try client.result("server.info")["size"]?.integerValue == size)
        let receipts = try client.result("submit_batch", ["events": .array(events), "expected_size": .integer(size)])
        #expect(receipts["receipts"]?.arrayValue?.count == 2)
        await server.shutdown()
    }

    @Test("an account param that names no account is invalid_params, for a reader who may read every account and for one who may not")
    func malformedAccounts() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        for account in ["pocket", "beneficiary:", "merchant:shop 1", "Fund"] {
            for method in ["account.balance", "account.history"] {
                for reader in ["audit", "shop"] {
                    let refused = try client.error(method, fixture.read(method, as: reader, ["account": .string(account)]))
                    #expect(refused.code == -32602 && refused.name == "invalid_params" && refused.message.contains("beneficiary:<id>"), "\(method) \(account) as \(reader): \(refused)")
                }
            }
        }
        await server.shutdown()
    }

    @Test("policy.get on a ledger whose authority has recorded no policy yet is not_found")
    func noPolicyYet() async throws {
        let fixture = try CircuitFixture()
        let authority = fixture.actors.authority
        let checkpoint = Ed25519PrivateKey()
        let directory = fixture.folder.path + "/bare"
        let genesis = try fixture.event("ledger.genesis", by: "city", authority, [
            "origin": "bare.example/ledger",
            "authority": .object(["actor": "city", "name": "City", "keys": .array([.string(authority.publicKey.multikey)])]),
            "checkpoint_key": .string(checkpoint.publicKey.multikey), "currency": ["code": "TOC", "decimals": 2],
        ], id: "genesis")
        _ = try Ledger.create(directory: directory, genesis: genesis, checkpointKey: checkpoint)
        let server = try await LedgerServer.start(ServerConfiguration(directory: directory, tcpHost: "127.0.0.1", tcpPort: 0))
        let client = try server.client()
        let missing = try client.error("policy.get")
        #expect(missing.name == "not_found" && missing.message.contains("policy.updated"), "\(missing)")
        await server.shutdown()
    }

    @Test("checkpoint covering a seq past the log is not_found; covering its last record gives the latest checkpoint")
    func checkpointPastTheLog() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let size = try #require(try client.result("server.info")["size"]?.integerValue)
        for covering in [size, size + 1, Int64(JSONValue.maximumExactInteger)] {
            let missing = try client.error("checkpoint", ["covering": .integer(covering)])
            #expect(missing.name == "not_found" && missing.message.contains("no checkpoint covers seq \(covering)"), "\(covering): \(missing)")
        }
        let latest = try client.result("checkpoint")
        #expect(try client.result("checkpoint", ["covering": .integer(size - 1)]) == latest)
        await server.shutdown()
    }

    @Test("a connection holds at most maximumSubscriptionsPerConnection subscriptions: the next is overloaded, and another connection still subscribes")
    func subscriptionsPerConnection() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumSubscriptionsPerConnection = 2
        let server = try await fixture.startServer(limits: limits)
        let subscriber = try server.client()
        let size = try #require(try subscriber.result("server.info")["size"]?.integerValue)
        for number in 1...2 {
            #expect(try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(size)]))["subscription"] == .string("sub-\(number)"))
        }
        let refused = try subscriber.error("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(size)]))
        #expect(refused.code == 6004 && refused.name == "overloaded" && refused.message.contains("at most 2 subscriptions"), "\(refused)")
        let other = try server.client()
        #expect(try other.result("server.info")["connections"]?["subscriptions"] == 2)
        #expect(try other.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(size)]))["subscription"] == "sub-1")
        await server.shutdown()
    }

    @Test("badge.status_list of an id that is no registered organisation is unknown_organisation, said before the missing key; an unknown badge is not_found")
    func statusListOfNoOrganisation() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        for issuer in ["shop", "bene-1", "nobody"] {
            let refused = try client.error("badge.status_list", ["issuer": .string(issuer)])
            #expect(refused.name == "unknown_organisation" && refused.message.contains(issuer), "\(issuer): \(refused)")
        }
        #expect(try client.error("badge.status_list", ["issuer": "casa"]).name == "key_file")
        let missing = try client.error("badge.credential", ["badge": "no-such-badge"])
        #expect(missing.name == "not_found", "\(missing)")
        await server.shutdown()
    }

    @Test("a replica holding a leader's records, opened pinned to another ledger's verifier key, is refused integrity and kept as it is; pinned to its own it opens")
    func replicaPinnedToAnotherKey() throws {
        let fixture = try CircuitFixture()
        let leader = try Ledger.open(directory: fixture.directory)
        let replicaDirectory = fixture.folder.path + "/replica"
        do {
            let replica = try ReplicaLedger.open(directory: replicaDirectory)
            defer { replica.close() }
            let size = try leader.reader.size()
            let leaves = try (0..<size).map { try leader.reader.leafBytes(sequenceNumber: $0) }
            try replica.append(leaves: leaves, checkpoints: try leader.reader.checkpoints(fromSize: 1, limit: Int(size)))
        }
        let size = try leader.reader.size()
        let other = try NoteVerifier(name: fixture.origin, publicKey: Ed25519PrivateKey().publicKey).verifierKey
        var refusal: LedgerError?
        do throws(LedgerError) {
            _ = try ReplicaLedger.open(directory: replicaDirectory, pinnedVerifierKey: other)
        } catch {
            refusal = error
        }
        #expect(refusal?.code == .integrity && refusal?.message.contains("not the pinned") == true, "\(String(describing: refusal))")
        let reopened = try ReplicaLedger.open(directory: replicaDirectory, pinnedVerifierKey: leader.verifierKey)
        #expect(reopened.size == size)
        reopened.close()
    }
}
