import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Foundation
import Testing

@Suite("Socket API: the write path", .serialized, .timeLimit(.minutes(5)))
struct WritePathTests {
    @Test("32 concurrent clients (TCP and Unix) spend one balance: exactly the affordable payments succeed, never an overspend")
    func concurrentSpending() async throws {
        let fixture = try CircuitFixture(initialBalance: 1000)
        let server = try await fixture.startServer()
        let payments = try (0..<32).map { _ in try fixture.payment(amount: 70) }
        let receipts = Collected<JSONValue>()
        let refusals = Collected<RPCError>()
        let failures = Collected<String>()
        onThreads(32) { index in
            do {
                // Half over TCP, half over the Unix socket.
                let client = try server.client(unix: index % 2 == 1)
                switch try client.call("submit", payments[index].params) {
                case .success(let receipt): receipts.append(receipt)
                case .failure(let error): refusals.append(error)
                }
            } catch {
                failures.append("\(error)")
            }
        }
        #expect(failures.all.isEmpty)
        // 1000 cents buy 14 payments of 70; the 15th would overspend.
        #expect(receipts.all.count == 14)
        #expect(refusals.all.count == 18)
        #expect(refusals.all.allSatisfy { $0.name == "insufficient_funds" && $0.code == 5002 })
        let client = try server.client()
        let balance = try client.result("account.balance", fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"]))
        #expect(balance["balance"] == .integer(1000 - 14 * 70))
        let shop = try client.result("account.balance", fixture.read("account.balance", as: "shop", ["account": "merchant:shop"]))
        #expect(shop["balance"] == .integer(14 * 70))
        // Every receipt is a distinct seq, covered by a verifying checkpoint and an inclusion proof.
        #expect(Set(receipts.all.compactMap { $0["seq"]?.integerValue }).count == 14)
        for receipt in receipts.all { try verifyReceipt(receipt, client: client, verifierKey: server.verifierKey) }
        await server.shutdown()
    }

    @Test("retries with the same event id give the same receipt, on any connection; other content under the id is refused")
    func idempotentRetries() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let event = try fixture.registration()
        let first = try server.client().result("submit", event.params)
        let again = try server.client(unix: true).result("submit", event.params)
        #expect(first == again)
        #expect(Set(first.objectValue?.keys.map { $0 } ?? []) == ["id", "seq", "recorded_at", "sig", "leaf_hash", "checkpoint"])
        // The submitter rebuilds its record's leaf from its own event, for the first receipt and the repeat's.
        try verifyReceipt(first, submitted: event.params, client: try server.client(), verifierKey: server.verifierKey)
        // Concurrent retries of one new event: one record, the same receipt for all.
        let racing = try fixture.registration()
        let answers = Collected<JSONValue>()
        onThreads(8) { index in
            if let client = try? server.client(unix: index % 2 == 0), case .success(let receipt)? = try? client.call("submit", racing.params) {
                answers.append(receipt)
            }
        }
        #expect(answers.all.count == 8)
        #expect(Set(answers.all.map { CanonicalJSON.encodeString($0) }).count == 1)
        // A batch retried gives the same receipts.
        let batch: JSONValue = ["events": .array([try fixture.registration().params, try fixture.registration().params])]
        let batchFirst = try server.client().result("submit_batch", batch)
        let batchAgain = try server.client(unix: true).result("submit_batch", batch)
        #expect(batchFirst == batchAgain)
        #expect(batchFirst["receipts"]?.arrayValue?.count == 2)
        for (receipt, event) in zip(batchFirst["receipts"]?.arrayValue ?? [], batch["events"]?.arrayValue ?? []) {
            try verifyReceipt(receipt, submitted: event, client: try server.client(), verifierKey: server.verifierKey)
        }
        // The same id with other content.
        let conflicting = try fixture.signed("actor.registered", by: "city", fixture.actors.authority, [
            "actor": "someone-else", "role": "merchant", "name": "Other", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]),
        ], id: event.event.id)
        let error = try server.client().error("submit", conflicting.params)
        #expect(error.name == "id_conflict")
        #expect(error.code == 3001)
        try verifyReceipt(first, client: try server.client(), verifierKey: server.verifierKey)
        await server.shutdown()
    }

    @Test("a submitter checks its receipt from the event it sent: any changed member, another event or the wrong proof fails")
    func receiptCheck() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let verifier = try NoteVerifier(parsing: server.verifierKey)
        let before = try #require(try client.result("checkpoint")["checkpoint"])
        let event = try fixture.registration()
        let receipt = try client.result("submit", event.params)
        func proof(_ check: ReceiptCheck, seq: UInt64? = nil) throws -> [[UInt8]] {
            let params: JSONValue = ["seq": .integer(Int64(seq ?? check.sequenceNumber)), "size": .integer(Int64(check.treeSize))]
            return try #require(try client.result("proof.inclusion", params)["hashes"]?.arrayValue).compactMap { $0.stringValue.flatMap(Base64.decode) }
        }
        let check = try ReceiptCheck(receipt: receipt, submitted: event.params, verifier: verifier)
        try check.verify(inclusionProof: try proof(check))
        // The proof of another leaf does not prove this one.
        #expect(throws: LedgerError.self) { try check.verify(inclusionProof: try proof(check, seq: check.sequenceNumber - 1)) }
        func refusal(_ member: String, _ value: JSONValue, submitted: JSONValue? = nil) -> String? {
            var changed = receipt.objectValue ?? [:]
            changed[member] = value
            do throws(LedgerError) {
                _ = try ReceiptCheck(receipt: .object(changed), submitted: submitted ?? event.params, verifier: verifier)
                return nil
            } catch {
                return error.code == .integrity ? error.message : "\(error)"
            }
        }
        let recordedAt = try #require(receipt["recorded_at"]?.stringValue)
        let later = Timestamp.format(millisecondsSince1970: try #require(Timestamp.millisecondsSince1970(recordedAt)) + 1)
        let seq = try #require(receipt["seq"]?.integerValue)
        let note = try #require(receipt["checkpoint"]?.stringValue)
        // A checkpoint the ledger's key signed for a size past Int64: the proof could not be asked at it.
        let origin = String(note.prefix { $0 != "\n" })
        let pastInt64 = try SignedNote.sign(
            text: "\(origin)\n\(UInt64.max)\n\(Base64.encode([UInt8](repeating: 1, count: 32)))\n",
            signer: try NoteSigner(name: origin, privateKey: fixture.actors.checkpoint))
        let cases: [(String, JSONValue, JSONValue?, String)] = [
            ("checkpoint", .string(pastInt64), nil, "past 2^63 − 1, the largest size a proof can be asked at"),
            ("recorded_at", .string(later), nil, "leaf_hash is not that of the record"),
            ("seq", .integer(seq + 1), nil, "leaf_hash is not that of the record"),
            ("leaf_hash", .string(Base64.encode([UInt8](repeating: 7, count: 32))), nil, "leaf_hash is not that of the record"),
            ("id", "reg-someone-else", nil, "it is for event"),
            ("checkpoint", before, nil, "does not cover seq"),
            ("checkpoint", .string(note.replacingOccurrences(of: "\n\n", with: "\nx\n\n")), nil, "its checkpoint"),
            ("recorded_at", .null, nil, "it needs id, seq, recorded_at"),
            ("sig", .string(Base64.encode([UInt8](repeating: 9, count: 64))), nil, "its sig is not a signature of the event sent"),
            // Another event sent under the same id: the stored signature is not of it.
            ("id", .string(event.event.id), try fixture.registration(id: String(event.event.id.dropFirst("reg-".count))).params, "its sig is not a signature of the event sent"),
        ]
        // An older server's receipt, without recorded_at and sig: named as such, with the seq it gave.
        var older = receipt.objectValue ?? [:]
        older["recorded_at"] = nil
        older["sig"] = nil
        #expect(throws: LedgerError.self) { _ = try ReceiptCheck(receipt: .object(older), submitted: event.params, verifier: verifier) }
        do throws(LedgerError) {
            _ = try ReceiptCheck(receipt: .object(older), submitted: event.params, verifier: verifier)
        } catch {
            #expect(error.code == .integrity)
            #expect(error.message.contains("no recorded_at and sig, as a server older than 5 December 2026 answers") && error.message.contains("at seq \(seq)"), "\(error.message)")
        }
        for (member, value, submitted, wanted) in cases {
            let message = refusal(member, value, submitted: submitted)
            #expect(message?.contains(wanted) == true, "\(member) = \(value): \(message ?? "accepted")")
        }
        // The same event sent again under another valid signature (a signer that does not sign deterministically):
        // the first receipt, with the stored signature, which still checks against the event sent the second time.
        let resigned = SignedEvent(event: event.event, signature: randomisedSignature(of: event.event.signingBytes, by: fixture.actors.authority))
        try #require(resigned.signature != event.signature)
        _ = try resigned.verified()
        let again = try client.result("submit", resigned.json)
        #expect(again == receipt)
        let recheck = try ReceiptCheck(receipt: again, submitted: resigned.json, verifier: verifier)
        try recheck.verify(inclusionProof: try proof(recheck))
        await server.shutdown()
    }

    @Test("submit_batch is all or nothing: one refused event leaves the log as it was and names its index")
    func batchAllOrNothing() async throws {
        let fixture = try CircuitFixture(initialBalance: 100)
        let server = try await fixture.startServer()
        let client = try server.client()
        let sizeBefore = try #require(try client.result("server.info")["size"]?.integerValue)
        // The second payment overspends: neither may be written, although the first alone would be fine.
        let batch: JSONValue = ["events": .array([try fixture.payment(amount: 60).params, try fixture.payment(amount: 60).params, try fixture.registration().params])]
        let error = try client.error("submit_batch", batch)
        #expect(error.name == "insufficient_funds")
        #expect(error.data?["index"] == .integer(1))
        #expect(try client.result("server.info")["size"]?.integerValue == sizeBefore)
        let balance = try client.result("account.balance", fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"]))
        #expect(balance["balance"] == .integer(100))
        // A bad signature anywhere in the batch refuses it before the writer.
        var tampered = try fixture.registration().json.objectValue ?? [:]
        tampered["sig"] = .string(Base64.encode([UInt8](repeating: 7, count: 64)))
        let badSignature = try client.error("submit_batch", ["events": .array([try fixture.registration().params, .object(tampered)])])
        #expect(badSignature.name == "invalid_signature")
        #expect(badSignature.data?["index"] == .integer(1))
        // The same batch without the overspend goes in as consecutive records of one commit.
        let good = try client.result("submit_batch", ["events": .array([try fixture.payment(amount: 60).params, try fixture.registration().params])])
        let receipts = try #require(good["receipts"]?.arrayValue)
        #expect(receipts.map { $0["seq"] } == [.integer(sizeBefore), .integer(sizeBefore + 1)])
        #expect(receipts[0]["checkpoint"] == receipts[1]["checkpoint"])
        // Empty and oversize batches are invalid params.
        #expect(try client.error("submit_batch", ["events": []]).code == -32602)
        await server.shutdown()
    }

    @Test("server.info's writer counters: commits and records count what was written, refusals and repeats add none")
    func writerCounters() async throws {
        let fixture = try CircuitFixture(initialBalance: 100)
        let server = try await fixture.startServer()
        let client = try server.client()
        func counters() throws -> (groups: Int64, commits: Int64, records: Int64, busy: Int64, commit: Int64) {
            let writer = try #require(try client.result("server.info")["writer"])
            return (
                try #require(writer["groups"]?.integerValue), try #require(writer["commits"]?.integerValue),
                try #require(writer["records"]?.integerValue), try #require(writer["busy_microseconds"]?.integerValue),
                try #require(writer["commit_microseconds"]?.integerValue))
        }
        let before = try counters()
        // One event, then a batch of two in one commit.
        let single = try fixture.registration()
        _ = try client.result("submit", single.params)
        _ = try client.result("submit_batch", ["events": .array([try fixture.payment(amount: 10).params, try fixture.registration().params])])
        let afterWrites = try counters()
        #expect(afterWrites.commits - before.commits == 2)
        #expect(afterWrites.records - before.records == 3)
        #expect(afterWrites.groups - before.groups == 2)
        // Durable commits take time, and the commit is part of the writer's busy time; the planner checked the
        // three events with the rulebook.
        #expect(afterWrites.commit > before.commit)
        let planning = { () throws -> Int64 in try #require(try client.result("server.info")["writer"]?["planning_microseconds"]?.integerValue) }
        #expect(try planning() > 0)
        #expect(afterWrites.busy - before.busy >= afterWrites.commit - before.commit)
        // A refusal and a repeat are answered by the writer but write no record.
        #expect(try client.error("submit", try fixture.payment(amount: 1_000).params).name == "insufficient_funds")
        _ = try client.result("submit", single.params)
        let afterAnswers = try counters()
        #expect(afterAnswers.commits == afterWrites.commits)
        #expect(afterAnswers.records == afterWrites.records)
        #expect(afterAnswers.groups - afterWrites.groups == 2)
        await server.shutdown()
    }

    @Test("expected_size: accepted at the expected size, refused with size_mismatch otherwise")
    func optimisticConcurrency() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let size = try #require(try client.result("server.info")["size"]?.integerValue)
        var stale = try fixture.registration().json.objectValue ?? [:]
        stale["expected_size"] = .integer(size - 1)
        let error = try client.error("submit", .object(stale))
        #expect(error.name == "size_mismatch")
        #expect(error.code == 6007)
        var current = try fixture.registration().json.objectValue ?? [:]
        current["expected_size"] = .integer(size)
        let receipt = try client.result("submit", .object(current))
        #expect(receipt["seq"] == .integer(size))
        // Two writers racing on the same expected size: exactly one wins.
        let racing = try (0..<6).map { _ in try fixture.registration() }
        let outcomes = Collected<Bool>()
        onThreads(6) { index in
            var params = racing[index].json.objectValue ?? [:]
            params["expected_size"] = .integer(size + 1)
            if let client = try? server.client(), let outcome = try? client.call("submit", .object(params)) {
                if case .success = outcome { outcomes.append(true) } else { outcomes.append(false) }
            }
        }
        #expect(outcomes.all.count == 6)
        #expect(outcomes.all.filter { $0 }.count == 1)
        await server.shutdown()
    }

    @Test("shutdown closes the ledger: five servers in a row on one ledger, each opened in-process as soon as the last returned")
    func shutdownClosesTheLedger() async throws {
        let fixture = try CircuitFixture()
        var size: UInt64 = 0
        for round in 0..<5 {
            let server = try await fixture.startServer()
            let client = try server.client(unix: round % 2 == 0)
            _ = try client.result("submit", try fixture.registration().params)
            // Reads on several threads right up to the shutdown, so that some task may still hold the ledger.
            let reading = Task.detached { for _ in 0..<50 { _ = try? server.client().call("server.info") } }
            await server.shutdown()
            _ = await reading.value
            #expect(throws: LedgerError.self) { try server.reader.size() }
            let ledger = try Ledger.open(directory: fixture.directory)
            #expect(ledger.frontier.size > size)
            size = ledger.frontier.size
        }
    }

    @Test("a server that cannot listen (a host that does not resolve) says so with invalid_range and leaves the ledger free")
    func startFailsOnAnUnresolvableHost() async throws {
        let fixture = try CircuitFixture()
        let configuration = ServerConfiguration(directory: fixture.directory, tcpHost: "999.1.1.1", tcpPort: 0)
        do {
            _ = try await LedgerServer.start(configuration)
            Issue.record("a server started on 999.1.1.1")
        } catch let error as LedgerError {
            #expect(error.code == .invalidRange)
            #expect(error.message.hasPrefix("cannot listen on 999.1.1.1 port 0"), "\(error.message)")
        }
        // Its writer let go of the ledger: it opens again in this process, and nothing was written.
        let ledger = try Ledger.open(directory: fixture.directory)
        #expect(try ledger.reader.size() == ledger.frontier.size)
    }

    @Test("a duration limit past 366 days (Int.max for never: a read window, a timeout, a grace) is refused with invalid_range before the server starts, rather than overflowing on a request")
    func durationLimitsAreBounded() async throws {
        let fixture = try CircuitFixture()
        let changes: [(String, (inout ServerLimits) -> Void)] = [
            ("readRequestWindowSeconds", { $0.readRequestWindowSeconds = .max }),
            ("readRequestWindowSeconds 0", { $0.readRequestWindowSeconds = 0 }),
            ("idleTimeoutSeconds", { $0.idleTimeoutSeconds = .max }),
            ("writeStallTimeoutSeconds", { $0.writeStallTimeoutSeconds = ServerLimits.maximumDurationSeconds + 1 }),
            ("shutdownGraceSeconds", { $0.shutdownGraceSeconds = .max }),
            ("subscriberCutOffGraceMilliseconds", { $0.subscriberCutOffGraceMilliseconds = .max }),
            ("allocatorTrimIntervalSeconds", { $0.allocatorTrimIntervalSeconds = .max }),
        ]
        for (name, change) in changes {
            var configuration = ServerConfiguration(directory: fixture.directory, tcpHost: "127.0.0.1", tcpPort: 0)
            change(&configuration.limits)
            do {
                let server = try await LedgerServer.start(configuration)
                Issue.record("a server started with \(name) out of range")
                await server.shutdown()
            } catch let error as LedgerError {
                #expect(error.code == .invalidRange, "\(name): \(error)")
            }
        }
        // At the bound it starts.
        var configuration = ServerConfiguration(directory: fixture.directory, tcpHost: "127.0.0.1", tcpPort: 0)
        configuration.limits.readRequestWindowSeconds = ServerLimits.maximumDurationSeconds
        configuration.limits.idleTimeoutSeconds = ServerLimits.maximumDurationSeconds
        let server = try await LedgerServer.start(configuration)
        await server.shutdown()
    }

    @Test("graceful shutdown: requests taken are answered and committed, the ledger closes (its lock is free again)")
    func gracefulShutdown() async throws {
        let fixture = try CircuitFixture()
        let receipts = try await Self.submitWhileShuttingDown(fixture)
        #expect(!receipts.isEmpty)
        // Everything answered with a receipt is in the log, and the writer's lock and LMDB are released: the ledger
        // opens again as soon as shutdown has returned.
        let ledger = try Ledger.open(directory: fixture.directory)
        for receipt in receipts {
            let sequenceNumber = UInt64(try #require(receipt["seq"]?.integerValue))
            let leafHash = try #require(receipt["leaf_hash"]?.stringValue.flatMap(Base64.decode))
            #expect(MerkleHash.leaf(try ledger.reader.leafBytes(sequenceNumber: sequenceNumber)) == leafHash)
        }
        _ = try LedgerReplay.run(ledger.reader)
    }

    /// Submits from 8 threads and shuts the server down meanwhile; returns the receipts the clients got. Every
    /// reference to the server ends here, so the ledger is closed when it returns.
    private static func submitWhileShuttingDown(_ fixture: CircuitFixture) async throws -> [JSONValue] {
        let server = try await fixture.startServer()
        let receipts = Collected<JSONValue>()
        let refusals = Collected<RPCError>()
        let events = try (0..<40).map { _ in try fixture.registration() }
        let submitted = Task.detached {
            onThreads(8) { index in
                guard let client = try? server.client(unix: index % 2 == 0) else { return }
                for number in stride(from: index, to: 40, by: 8) {
                    switch try? client.call("submit", events[number].params) {
                    case .success(let receipt)?: receipts.append(receipt)
                    case .failure(let error)?: refusals.append(error)
                    case nil: return
                    }
                }
            }
        }
        // Shut down once a first event is committed, not after a fixed time: on a busy machine the client threads
        // may not have connected (or their first submit reached the writer) within any fixed wait, and a shutdown
        // before that leaves nothing to check.
        let deadline = ContinuousClock.now + .seconds(30)
        while receipts.all.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        await server.shutdown()
        await submitted.value
        // Refused only because the server was stopping, never for another reason.
        #expect(refusals.all.allSatisfy { $0.name == "shutting_down" })
        return receipts.all
    }
}
