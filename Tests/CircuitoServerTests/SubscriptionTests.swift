import CircuitoCore
import CircuitoCrypto
@testable import CircuitoServer
import CircuitoStorage
import Foundation
import Glibc
import Synchronization
import Testing

@Suite("Socket API: subscriptions and verifying followers", .serialized, OwnThreadsTrait(), .timeLimit(.minutes(5)))
struct SubscriptionTests {
    @Test("subscribe: catch-up from a seq, then live; records are exactly the leaf bytes; checkpoints come with consistency proofs")
    func catchUpThenLive() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let writer = try server.client()
        let size = try #require(try writer.result("server.info")["size"]?.integerValue)
        let subscriber = try server.client(unix: true)
        let answer = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": 3]))
        #expect(answer["from"] == 3)
        for _ in 0..<3 { _ = try writer.result("submit", try fixture.registration().params) }
        _ = try writer.result("submit_batch", ["events": .array([try fixture.registration().params, try fixture.registration().params])])
        let end = size + 5
        var next: Int64 = 3
        var previousSize: Int64 = 3
        var checkpoints = 0
        let verifier = try NoteVerifier(parsing: server.verifierKey)
        let reader = try server.client()
        while next < end || previousSize < end {
            let message = try #require(try subscriber.nextMessage())
            let params = try #require(message["params"])
            switch message["method"]?.stringValue {
            case "subscription.record":
                let record = try #require(params["record"])
                #expect(record["seq"] == .integer(next))
                // The record is exactly the stored leaf: its hash is the one the inclusion proof is for.
                let proof = try reader.result("proof.inclusion", ["seq": .integer(next)])
                #expect(proof["leaf_hash"]?.stringValue == Base64.encode(MerkleHash.leaf(CanonicalJSON.encode(record))))
                next += 1
            case "subscription.checkpoint":
                #expect(params["size"] == .integer(next))
                #expect(params["previous_size"] == .integer(previousSize))
                let checkpoint = try Checkpoint(parsing: try SignedNote.open(try #require(params["checkpoint"]?.stringValue), verifier: verifier))
                #expect(checkpoint.size == UInt64(next))
                previousSize = next
                checkpoints += 1
            default:
                Issue.record("unexpected message \(CanonicalJSON.encodeString(message))")
            }
        }
        // Catch-up commits (the fixture's one, at most) plus four live commits.
        #expect(checkpoints >= 4)
        await server.shutdown()
    }

    @Test("a subscriber that does not read is cut off with subscriber_too_slow; the writer is never slowed")
    func slowSubscriberCutOff() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumSubscriberBufferRecords = 64
        limits.subscriberCutOffGraceMilliseconds = 15_000
        limits.socketSendBufferBytes = 8192
        let server = try await fixture.startServer(limits: limits)
        // A tiny receive buffer, so the server's writes to this subscriber get stuck soon.
        let subscriber = try LineClient(server.tcpEndpoint, timeoutSeconds: 20, receiveBufferBytes: 2048)
        let start = Int64(try server.size())
        _ = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(start)]))
        // The subscriber is live (caught up) and now stops reading while 600 records are committed.
        try await Task.sleep(for: .milliseconds(100))
        let writer = try server.client(unix: true)
        let started = ContinuousClock.now
        for _ in 0..<20 {
            let batch = try (0..<30).map { _ in try fixture.registration().params }
            _ = try writer.result("submit_batch", ["events": .array(batch)])
        }
        let writing = ContinuousClock.now - started
        // The writer did not wait for the subscriber (20 commits; far below the 15 s the stuck write could last).
        #expect(writing < .seconds(20))
        // Now the subscriber reads: what was buffered, then the error, then the end of the connection.
        var records = 0
        var cutOff: JSONValue?
        do {
            while let message = try subscriber.nextMessage() {
                switch message["method"]?.stringValue {
                case "subscription.record": records += 1
                case "subscription.error": cutOff = message["params"]?["error"]
                default: break
                }
            }
        } catch {
            Issue.record("reading the stream after \(records) records (writing took \(writing)): \(error)")
            throw error
        }
        let error = try #require(cutOff, "no cut-off after \(records) records")
        #expect(error["data"]?["code"] == "subscriber_too_slow")
        #expect(error["code"] == 6005)
        // It says where to subscribe again: the seq after the last record it was sent.
        #expect(error["data"]?["next"] == .integer(start + Int64(records)), "\(error)")
        #expect(records < 600)
        // The server keeps serving everyone else.
        #expect(try writer.result("server.info")["size"] != nil)
        await server.shutdown()
    }

    @Test("a caught-up subscriber is never behind: one commit larger than its buffer bound streams whole, with no cut-off")
    func caughtUpSubscriberTakesALargeCommit() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumSubscriberBufferRecords = 8
        let server = try await fixture.startServer(limits: limits)
        let size = Int64(try server.size())
        let subscriber = try server.client(unix: true)
        _ = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(size)]))
        // Waiting for the next commit (it has sent everything), it is then handed one commit of 30 records.
        try await Task.sleep(for: .milliseconds(100))
        let writer = try server.client()
        _ = try writer.result("submit_batch", ["events": .array(try (0..<30).map { _ in try fixture.registration().params })])
        var next = size
        var checkpointed = false
        while !checkpointed {
            let message = try #require(try subscriber.nextMessage(), "the stream ended at \(next)")
            switch message["method"]?.stringValue {
            case "subscription.record":
                #expect(message["params"]?["record"]?["seq"] == .integer(next))
                next += 1
            case "subscription.checkpoint":
                checkpointed = message["params"]?["size"] == .integer(size + 30)
            default:
                Issue.record("unexpected message \(CanonicalJSON.encodeString(message))")
                checkpointed = true
            }
        }
        #expect(next == size + 30)
        await server.shutdown()
    }

    /// A server whose sockets have small send buffers (a client that does not read holds it back soon), its log
    /// grown by `batchesOf30` commits of 30 registrations, and a client on its Unix socket.
    static func serverWithSmallSendBuffers(batchesOf30: Int, writeStallTimeoutSeconds: Int? = 60) async throws -> (CircuitFixture, LedgerServer, LineClient) {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.socketSendBufferBytes = 8192
        limits.writeStallTimeoutSeconds = writeStallTimeoutSeconds
        let server = try await fixture.startServer(limits: limits)
        let writer = try server.client(unix: true)
        for _ in 0..<batchesOf30 {
            _ = try writer.result("submit_batch", ["events": .array(try (0..<30).map { _ in try fixture.registration().params })])
        }
        return (fixture, server, writer)
    }

    @Test("a client that half-closes gets each subscription up to the log's size at that moment, then the connection's end")
    func halfCloseFinishesTheStreams() async throws {
        let (fixture, server, writer) = try await Self.serverWithSmallSendBuffers(batchesOf30: 10)
        let size = Int64(try server.size())
        // A small receive buffer and no reading yet: the server's writes to it are stuck when it sees the half-close.
        let subscriber = try LineClient(server.tcpEndpoint, timeoutSeconds: 20, receiveBufferBytes: 2048)
        func endedByHalfClose() throws -> Int64? {
            try writer.result("server.info")["connections"]?["subscriptions_ended_by_half_close"]?.integerValue
        }
        #expect(try endedByHalfClose() == 0)
        try subscriber.send(RPCMessage.request(id: 1, method: "subscribe", params: fixture.read("subscribe", as: "audit", ["from": 0])))
        subscriber.shutdownSending()
        // The server counts the stream's end once it has set it, at the half-close: waited for (bounded), not slept
        // for, since a busy machine may read the half-close late.
        var ended: Int64? = 0
        for _ in 0..<1000 where ended == 0 {
            try await Task.sleep(for: .milliseconds(10))
            ended = try endedByHalfClose()
        }
        try #require(ended == 1, "the server did not end the stream at the half-close (counted \(String(describing: ended)))")
        // Committed after the stream's end was set: not sent.
        _ = try writer.result("submit", try fixture.registration().params)
        var answered = false
        var sequenceNumbers: [Int64] = []
        var errors: [JSONValue] = []
        var lastMethod: String?
        var lastCheckpointSize: Int64 = 0
        while let message = try subscriber.nextMessage() {
            if message["id"] == 1 {
                answered = true
                continue
            }
            lastMethod = message["method"]?.stringValue
            switch lastMethod {
            case "subscription.record": sequenceNumbers.append(message["params"]?["record"]?["seq"]?.integerValue ?? -1)
            case "subscription.checkpoint": lastCheckpointSize = message["params"]?["size"]?.integerValue ?? -1
            case "subscription.error": errors.append(message)
            default: break
            }
        }
        #expect(answered)
        #expect(errors.isEmpty, "\(errors)")
        // The stream ends on a commit's end: its last message is the checkpoint of the last record sent.
        #expect(lastMethod == "subscription.checkpoint" && lastCheckpointSize == (sequenceNumbers.last ?? -1) + 1, "\(String(describing: lastMethod)) \(lastCheckpointSize)")
        #expect(sequenceNumbers == Array(0..<size), "\(sequenceNumbers.count) records of \(size), last \(sequenceNumbers.last ?? -1)")
        await server.shutdown()
    }

    @Test("a stream that ends on its own leaves its connection's list: one connection that opened and ended eight holds only its live one")
    func endedStreamsLeaveTheConnection() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let writer = try server.client()
        let subscriber = try server.client()
        let auditor = fixture.actors.auditor
        /// Waits (bounded) until the server's subscriptions are `live` and listed `listed`, and returns what it counts.
        func settle(live: Int, listed: Int) async throws -> (live: Int, listed: Int) {
            for _ in 0..<1500 where server.subscriptionCounts != (live, listed) { try await Task.sleep(for: .milliseconds(20)) }
            return server.subscriptionCounts
        }
        // More rounds than a connection may hold subscriptions at once, each on the same connection, which stays open.
        for round in 0..<(ServerLimits().maximumSubscriptionsPerConnection * 2) {
            // A key of the auditor's for this round's stream, revoked (with its first key) to end the stream.
            let key = Ed25519PrivateKey()
            _ = try writer.result("submit", try fixture.signed("actor.key_added", by: "audit", auditor, ["actor": "audit", "key": .string(key.publicKey.multikey)]).params)
            let size = try #require(try writer.result("server.info")["size"]?.integerValue)
            let params = ReadAuthorisation.sign(method: "subscribe", params: ["from": .integer(size)], actor: "audit", key: key, nowMilliseconds: fixture.now)
            #expect(try subscriber.result("subscribe", params)["subscription"] == .string("sub-\(round + 1)"))
            _ = try writer.result("submit", try fixture.signed("actor.key_revoked", by: "audit", auditor, ["actor": "audit", "key": .string(key.publicKey.multikey)]).params)
            // The stream ends before the revocation's record, with key_not_active.
            let ended = try #require(try subscriber.nextMessage())
            #expect(ended["method"] == "subscription.error" && ended["params"]?["error"]?["data"]?["code"] == "key_not_active", "\(CanonicalJSON.encodeString(ended))")
        }
        let afterEnds = try await settle(live: 0, listed: 0)
        #expect(afterEnds.live == 0 && afterEnds.listed == 0, "live \(afterEnds.live), listed \(afterEnds.listed) after every stream ended")
        // One more, which stays live: listed once, beside no entry of the ended ones.
        _ = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(Int64(try server.size()))]))
        let oneLive = try await settle(live: 1, listed: 1)
        #expect(oneLive.live == 1 && oneLive.listed == 1, "live \(oneLive.live), listed \(oneLive.listed) with one stream running")
        // The half-close still finds it and gives it its end; then nothing is left.
        subscriber.shutdownSending()
        // Read to the connection's end (a stream from the log's end sends nothing more: a few lines at most).
        for _ in 0..<100 {
            guard try subscriber.nextMessage() != nil else { break }
        }
        let afterClose = try await settle(live: 0, listed: 0)
        #expect(afterClose.live == 0 && afterClose.listed == 0)
        #expect(try writer.result("server.info")["connections"]?["subscriptions_ended_by_half_close"] == 1)
        await server.shutdown()
    }

    @Test("a half-close while commits land ends each stream on a commit's end, with every record before it", arguments: [3, 17, 60, 150])
    func halfCloseWhileCommitsLand(readBeforeClosing: Int) async throws {
        let (fixture, server, _) = try await Self.serverWithSmallSendBuffers(batchesOf30: 4)
        // Batches of 7 (one commit each) keep landing from another connection while the subscriber half-closes.
        let batches: [JSONValue] = try (0..<60).map { _ in ["events": .array(try (0..<7).map { _ in try fixture.registration().params })] }
        let endpoint = server.unixEndpoint
        let writing = Atomic<Bool>(true)
        let writerDone = Atomic<Bool>(false)
        // The log's size after the last batch whose receipts came back (the setup's were received before).
        let acknowledgedSize = Atomic<Int64>(Int64(try server.size()))
        Thread {
            defer { writerDone.store(true, ordering: .releasing) }
            guard let writer = try? LineClient(endpoint, timeoutSeconds: 20) else { return }
            for batch in batches where writing.load(ordering: .relaxed) {
                guard case .success(let answer)? = try? writer.call("submit_batch", batch) else { return }
                let sequenceNumbers = answer["receipts"]?.arrayValue?.compactMap { $0["seq"]?.integerValue } ?? []
                if let last = sequenceNumbers.max() { acknowledgedSize.store(last + 1, ordering: .releasing) }
            }
        }.start()
        let subscriber = try LineClient(server.tcpEndpoint, timeoutSeconds: 20)
        try subscriber.send(RPCMessage.request(id: 1, method: "subscribe", params: fixture.read("subscribe", as: "audit", ["from": 0])))
        var messages: [JSONValue] = []
        while messages.count < readBeforeClosing, let message = try subscriber.nextMessage() { messages.append(message) }
        // Committed before the half-close, and seen by the server's subscription hub too, so the stream must reach
        // at least this size. The hub learns of a commit just after it is durable and before its receipts are made:
        // once the batch that made this size is acknowledged, the hub has it (a fixed wait would not do: a committer
        // thread held off in between on a busy machine leaves the log ahead of the hub for as long).
        let sizeBeforeHalfClose = Int64(try server.size())
        for _ in 0..<3000 where acknowledgedSize.load(ordering: .acquiring) < sizeBeforeHalfClose {
            try await Task.sleep(for: .milliseconds(1))
        }
        subscriber.shutdownSending()
        while messages.count < 100_000, let message = try subscriber.nextMessage() { messages.append(message) }
        writing.store(false, ordering: .relaxed)
        // Waits without holding one of the few threads that run the tests' tasks (the writer thread needs none).
        for _ in 0..<3000 where !writerDone.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
        let writerEnded = writerDone.load(ordering: .acquiring)
        #expect(writerEnded, "the writing thread did not end")
        var sequenceNumbers: [Int64] = []
        var lastMethod: String?
        var lastCheckpointSize: Int64 = -1
        var previousSize: Int64 = 0
        for message in messages where message["id"] != 1 {
            lastMethod = message["method"]?.stringValue
            switch lastMethod {
            case "subscription.record":
                sequenceNumbers.append(message["params"]?["record"]?["seq"]?.integerValue ?? -1)
            case "subscription.checkpoint":
                lastCheckpointSize = message["params"]?["size"]?.integerValue ?? -1
                // Every checkpoint covers exactly the records sent since the one before.
                #expect(message["params"]?["previous_size"]?.integerValue == previousSize)
                #expect(lastCheckpointSize == Int64(sequenceNumbers.count), "a checkpoint for \(lastCheckpointSize) after \(sequenceNumbers.count) records")
                previousSize = lastCheckpointSize
            default:
                Issue.record("unexpected message \(CanonicalJSON.encodeString(message))")
            }
        }
        #expect(sequenceNumbers == Array(0..<Int64(sequenceNumbers.count)), "records out of order or missing")
        // Everything committed when the client half-closed was sent (more may be, up to the end of a commit that
        // was landing), and the stream's last message is the checkpoint of its last record.
        #expect(Int64(sequenceNumbers.count) >= sizeBeforeHalfClose, "\(sequenceNumbers.count) records sent; \(sizeBeforeHalfClose) were committed before the half-close")
        #expect(lastMethod == "subscription.checkpoint" && lastCheckpointSize == Int64(sequenceNumbers.count), "\(String(describing: lastMethod)) \(lastCheckpointSize) after \(sequenceNumbers.count) records")
        await server.shutdown()
    }

    @Test("subscribers that do not read hold a bounded number of bytes in the server, counted in its unwritten bytes")
    func stalledSubscribersAreBounded() async throws {
        let (fixture, server, writer) = try await Self.serverWithSmallSendBuffers(batchesOf30: 20)
        // Four subscriptions from 0 on each of four connections that never read: their catch-up (600 records each,
        // about 300 KB) is far more than they may hold.
        var stalled: [LineClient] = []
        for connection in 0..<4 {
            let client = try LineClient(server.tcpEndpoint, timeoutSeconds: 20, receiveBufferBytes: 2048)
            for subscription in 0..<4 {
                try client.send(RPCMessage.request(
                    id: .integer(Int64(connection * 4 + subscription)), method: "subscribe",
                    params: fixture.read("subscribe", as: "audit", ["from": 0])))
            }
            stalled.append(client)
        }
        try await Task.sleep(for: .seconds(1))
        // And until a stream has written (on a busy machine none may have started within the second).
        var unwritten: Int64 = 0
        for _ in 0..<100 {
            unwritten = try #require(try writer.result("server.info")["connections"]?["unwritten_answer_bytes"]?.integerValue)
            if unwritten > 0 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        // Each stream stops once it has 64 KiB (and at most one more message) not yet on the socket.
        #expect(unwritten > 0, "the streams' bytes are counted")
        #expect(unwritten <= 16 * (64 * 1024 + 4096), "\(unwritten) bytes held for 16 stalled streams")
        // The server answers everyone else at once.
        #expect(try writer.result("server.info")["size"] != nil)
        stalled.removeAll()
        // Once they are gone (closed as their clients go), nothing is held for them.
        var released: Int64 = -1
        for _ in 0..<100 {
            released = try #require(try writer.result("server.info")["connections"]?["unwritten_answer_bytes"]?.integerValue)
            if released == 0 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(released == 0)
        await server.shutdown()
    }

    @Test("a subscriber that stops reading is closed after the write stall timeout, as a client that leaves its answers unread")
    func stalledSubscriberIsClosed() async throws {
        let (fixture, server, writer) = try await Self.serverWithSmallSendBuffers(batchesOf30: 20, writeStallTimeoutSeconds: 1)
        // Its catch-up (600 records, about 300 KB) is far more than the sockets hold; it never reads, and nothing is
        // committed meanwhile, so the lag bound never cuts it off.
        let stalled = try LineClient(server.tcpEndpoint, timeoutSeconds: 20, receiveBufferBytes: 2048)
        try stalled.send(RPCMessage.request(id: 1, method: "subscribe", params: fixture.read("subscribe", as: "audit", ["from": 0])))
        // The stall is counted before the connection is closed, and its bytes are released once the stream's task
        // has seen the close: wait for all three, not the count alone (a busy machine answers between them).
        var connections: JSONValue = .null
        for _ in 0..<100 {
            connections = try writer.result("server.info")["connections"] ?? .null
            if connections["closed_unread"] == 1, connections["open"] == 1, connections["unwritten_answer_bytes"] == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(connections["closed_unread"] == 1, "\(CanonicalJSON.encodeString(connections))")
        #expect(connections["open"] == 1, "only the writer's connection is left")
        #expect(connections["unwritten_answer_bytes"] == 0)
        await server.shutdown()
    }

    @Test("a follower mirrors the leader live, ends equal to it, passes verify, and resumes after a restart")
    func followerEndsEqual() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let replicaDirectory = fixture.folder.path + "/replica"
        let writer = try server.client()
        for _ in 0..<5 { _ = try writer.result("submit", try fixture.registration().params) }
        let configuration = Follower.Configuration(
            leader: server.unixEndpoint, directory: replicaDirectory, actor: "audit", key: fixture.actors.auditor,
            pinnedVerifierKey: server.verifierKey)
        // Follow while the leader keeps writing (single events, batches, payments).
        let firstRun = FollowerRun(configuration)
        for round in 0..<10 {
            if round % 3 == 0 {
                _ = try writer.result("submit_batch", ["events": .array(try (0..<7).map { _ in try fixture.registration().params })])
            } else {
                _ = try writer.result("submit", try fixture.payment(amount: 10).params)
            }
        }
        let leaderSize = try server.size()
        #expect(firstRun.waitUntil(size: leaderSize, timeoutSeconds: 30))
        try firstRun.stop()
        // A second run resumes from the replica's size.
        for _ in 0..<4 { _ = try writer.result("submit", try fixture.registration().params) }
        let secondRun = FollowerRun(configuration)
        let finalSize = try server.size()
        #expect(secondRun.waitUntil(size: finalSize, timeoutSeconds: 30))
        try secondRun.stop()
        await server.shutdown()
        // Compare the two directories: every leaf and every checkpoint; and the replica passes verify. Both are
        // opened at once: the shutdown and the follower's end closed them.
        #expect(throws: LedgerError.self) { try server.reader.size() }
        let leader = try LedgerReader.open(directory: fixture.directory)
        let replica = try LedgerReader.open(directory: replicaDirectory)
        #expect(try replica.size() == leader.size())
        for sequenceNumber in 0..<(try leader.size()) {
            #expect(try replica.leafBytes(sequenceNumber: sequenceNumber) == leader.leafBytes(sequenceNumber: sequenceNumber))
        }
        var leaderCheckpoints: [String] = []
        var replicaCheckpoints: [String] = []
        try leader.forEachCheckpoint { _, note in leaderCheckpoints.append(note); return true }
        try replica.forEachCheckpoint { _, note in replicaCheckpoints.append(note); return true }
        #expect(replicaCheckpoints == leaderCheckpoints)
        let report = try LedgerReplay.run(replica, compareProjections: true)
        #expect(report.recordCount == finalSize)
    }

    @Test("a pinned verifier key names its key whatever the case of its key id; a malformed one is invalid_key")
    func pinnedVerifierKeyIsNormalised() throws {
        let fixture = try CircuitFixture()
        // A key whose id has a letter, so that upper case spells it differently (bounded: 5/8 of ids have one).
        var verifier = try NoteVerifier(name: "test.example/ledger", publicKey: Ed25519PrivateKey().publicKey)
        for _ in 0..<64 where !verifier.verifierKey.split(separator: "+")[1].contains(where: \.isLetter) {
            verifier = try NoteVerifier(name: "test.example/ledger", publicKey: Ed25519PrivateKey().publicKey)
        }
        let fields = verifier.verifierKey.split(separator: "+", maxSplits: 2).map(String.init)
        let upper = fields[0] + "+" + fields[1].uppercased() + "+" + fields[2]
        try #require(upper != verifier.verifierKey)
        let replica = try ReplicaLedger.open(directory: fixture.folder.path + "/pinned", pinnedVerifierKey: upper)
        #expect(replica.pinnedVerifierKey == verifier.verifierKey)
        #expect(throws: LedgerError.self) { try ReplicaLedger.open(directory: fixture.folder.path + "/bad-pin", pinnedVerifierKey: fields[0] + "+xyz+" + fields[2]) }
    }

    @Test("a follower refuses a leader whose history does not extend its own, and stops with a clear error")
    func followerRefusesForkedLeader() async throws {
        // The replica follows ledger A; then it is pointed at ledger B (other genesis, same auditor id): B's
        // records do not extend A's tree.
        let first = try CircuitFixture()
        let replicaDirectory = first.folder.path + "/replica"
        do {
            let server = try await first.startServer()
            let run = FollowerRun(.init(leader: server.tcpEndpoint, directory: replicaDirectory, actor: "audit", key: first.actors.auditor))
            #expect(run.waitUntil(size: try server.size(), timeoutSeconds: 30))
            try run.stop()
            await server.shutdown()
        }
        let second = try CircuitFixture()
        let server = try await second.startServer()
        for _ in 0..<3 { _ = try server.client().result("submit", try second.registration().params) }
        let follower = try Follower(.init(leader: server.tcpEndpoint, directory: replicaDirectory, actor: "audit", key: second.actors.auditor))
        let sizeBefore = follower.replica.size
        let failure = follower.failureWithin(seconds: 30)
        let refused = try #require(failure)
        guard case .mismatch = refused else {
            Issue.record("expected a mismatch, got \(refused)")
            await server.shutdown()
            return
        }
        #expect(follower.replica.size == sizeBefore)
        await server.shutdown()
    }
}

extension SubscriptionTests {
    @Test("a follower whose clock is 10 minutes off the leader's (request_expired) waits and resubscribes once it is set right")
    func followerWaitsOutAClockDifference() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        for _ in 0..<3 { _ = try server.client().result("submit", try fixture.registration().params) }
        // The first two subscriptions are signed 10 minutes ahead, past the leader's 300-second window.
        let skewedSubscriptions = Atomic<Int>(2)
        var configuration = Follower.Configuration(leader: server.tcpEndpoint, directory: fixture.folder.path + "/replica", actor: "audit", key: fixture.actors.auditor)
        configuration.maximumReconnectDelaySeconds = 1
        configuration.clockMilliseconds = {
            let skewed = skewedSubscriptions.wrappingSubtract(1, ordering: .relaxed).oldValue > 0
            return Ledger.systemClockMilliseconds() + (skewed ? 600_000 : 0)
        }
        let run = FollowerRun(configuration)
        #expect(run.waitUntil(size: try server.size(), timeoutSeconds: 30))
        #expect(skewedSubscriptions.load(ordering: .relaxed) < 0, "the follower subscribed with the clock set right")
        try run.stop()
        await server.shutdown()
    }

    @Test("a leader holding fewer records than the replica (restored from an older backup) is refused, and the message says so")
    func followerRefusesShorterLeader() async throws {
        let fixture = try CircuitFixture()
        // The older copy: the ledger as it is now, with its checkpoint key.
        let olderCopy = fixture.folder.path + "/older"
        #expect(mkdir(olderCopy, 0o700) == 0)
        do { try LedgerReader.open(directory: fixture.directory).copyDatabase(to: olderCopy) }
        try KeyFile.write(fixture.actors.checkpoint, to: olderCopy + "/" + LedgerFiles.checkpointKey)
        let replicaDirectory = fixture.folder.path + "/replica"
        do {
            let server = try await fixture.startServer()
            for _ in 0..<3 { _ = try server.client().result("submit", try fixture.registration().params) }
            let run = FollowerRun(.init(leader: server.tcpEndpoint, directory: replicaDirectory, actor: "audit", key: fixture.actors.auditor))
            #expect(run.waitUntil(size: try server.size(), timeoutSeconds: 30))
            try run.stop()
            await server.shutdown()
        }
        var configuration = ServerConfiguration(directory: olderCopy, tcpHost: "127.0.0.1", tcpPort: 0, unixSocketPath: nil)
        configuration.eventLoopThreads = 1
        let older = try await LedgerServer.start(configuration)
        let follower = try Follower(.init(leader: older.tcpEndpoint, directory: replicaDirectory, actor: "audit", key: fixture.actors.auditor))
        let sizeBefore = follower.replica.size
        let failure = follower.failureWithin(seconds: 30)
        let refused = try #require(failure, "the follower waited instead of stopping")
        guard case .mismatch = refused else {
            Issue.record("expected a mismatch, got \(refused)")
            await older.shutdown()
            return
        }
        #expect("\(refused)".contains("the leader holds fewer records than this replica's \(sizeBefore)"), "\(refused)")
        #expect(follower.replica.size == sizeBefore)
        await older.shutdown()
    }

    @Test("a first follow that commits nothing (the leader refused) leaves no empty replica behind; a foreign folder keeps what it held")
    func refusedFirstFollowLeavesNothing() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let replicaDirectory = fixture.folder.path + "/replica"
        let otherKey = try NoteVerifier(name: "test.example/ledger", publicKey: Ed25519PrivateKey().publicKey).verifierKey
        let follower = try Follower(.init(leader: server.tcpEndpoint, directory: replicaDirectory, actor: "audit", key: fixture.actors.auditor, pinnedVerifierKey: otherKey))
        let failure = follower.failureWithin(seconds: 30)
        #expect(failure != nil)
        #expect(follower.replica.removeIfEmpty())
        // Its lock file stays (another follower may be waiting on it); `verify` finds no ledger there, not an empty one.
        #expect(try FileManager.default.contentsOfDirectory(atPath: replicaDirectory) == [LedgerFiles.writerLock])
        // An empty replica a run left when it was killed before its first commit (its LMDB files, no record): the next
        // run that commits nothing either removes them too.
        let killedEarly = try ReplicaLedger.open(directory: replicaDirectory)
        killedEarly.close()
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: replicaDirectory)).isSuperset(of: ["data.mdb", "lock.mdb"]))
        // `verify` there says what the files are and what to do, not only that there is no genesis.
        do {
            _ = try LedgerReader.open(directory: replicaDirectory)
            Issue.record("an empty replica opened as a ledger")
        } catch {
            #expect(error.code == .genesisRequired, "\(error)")
            #expect(error.message.contains("a circuito follow into it stopped before its first commit; the next follow into it removes these files"), "\(error)")
        }
        let again = try ReplicaLedger.open(directory: replicaDirectory)
        #expect(again.removeIfEmpty())
        #expect(try FileManager.default.contentsOfDirectory(atPath: replicaDirectory) == [LedgerFiles.writerLock])
        // A folder that holds something else is refused and left as it was: no lock files, nothing removed.
        let foreign = fixture.folder.path + "/foreign"
        #expect(mkdir(foreign, 0o700) == 0)
        #expect(FileManager.default.createFile(atPath: foreign + "/data.mdb", contents: Data("not a ledger".utf8)))
        do {
            _ = try ReplicaLedger.open(directory: foreign)
            Issue.record("a file that is not LMDB's opened as a replica")
        } catch {
            #expect(error.code == .integrity, "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: foreign).sorted() == ["data.mdb", LedgerFiles.writerLock])
        #expect(FileManager.default.contents(atPath: foreign + "/data.mdb") == Data("not a ledger".utf8))
        await server.shutdown()
    }

    @Test("a line the server refuses before reading it as a request (too long) is answered under id null; the client takes that as its answer")
    func refusalUnderNullIDAnswersTheCall() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumFrameBytes = 4096
        let server = try await fixture.startServer(limits: limits)
        let client = try server.client(timeoutSeconds: 20)
        let started = ContinuousClock.now
        let answer = try client.call("server.info", ["padding": .string(String(repeating: "x", count: 10_000))])
        guard case .failure(let error) = answer else {
            Issue.record("a line over the frame bound was answered: \(answer)")
            await server.shutdown()
            return
        }
        #expect(error.data?["code"] == "too_large", "\(error)")
        #expect(ContinuousClock.now - started < .seconds(15), "the client waited for its own id until its timeout")
        // The connection goes on.
        #expect(try client.result("server.info")["size"] != nil)
        await server.shutdown()
    }

    /// A listening Unix socket at `path` (closed by the caller).
    static func unixListener(at path: String) throws -> Int32 {
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(listener, 1) == 0)
        return listener
    }

    /// A "server" listening at `path` that writes `bytes` to its first connection and closes it; the listener, for
    /// the caller to close.
    static func answeringOnce(at path: String, with bytes: [UInt8]) throws -> Int32 {
        let listener = try unixListener(at: path)
        Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            close(connection)
        }.start()
        return listener
    }

    @Test("a call that went unanswered within the timeout leaves the connection taking no more calls (a late answer would be the next call's)")
    func unansweredCallRetiresTheConnection() throws {
        let folder = TemporaryFolder()
        let listener = try Self.unixListener(at: folder.path + "/mute.sock")
        defer { close(listener) }
        let client = try LineClient(.unix(path: folder.path + "/mute.sock"), timeoutSeconds: 1)
        for attempt in 1...2 {
            do {
                _ = try client.call("server.info")
                Issue.record("call \(attempt) was answered by a server that never writes")
            } catch {
                #expect(error.code == .connectionFailed)
                if attempt == 2 { #expect(error.message.contains("went unanswered within 1 s; open a new connection"), "\(error)") }
            }
        }
    }

    @Test("a call's timeout bounds the whole wait for its answer: a server that trickles a line without end, or answers other ids without end, holds the client no longer", arguments: ["line", "other ids"])
    func tricklingServerCannotHoldACall(trickled: String) throws {
        let folder = TemporaryFolder()
        let path = folder.path + "/trickling.sock"
        let listener = try Self.unixListener(at: path)
        defer { close(listener) }
        let piece = Array((trickled == "line" ? "x" : #"{"jsonrpc":"2.0","id":99,"result":{}}"# + "\n").utf8)
        Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            guard Self.readLine(connection) != nil else { return }
            if trickled == "line" { _ = #"{"jsonrpc":"2.0","id":1,"result":""#.utf8.withContiguousStorageIfAvailable { write(connection, $0.baseAddress, $0.count) } }
            // Something every 100 ms for 10 s, so that no receive ever waits out the timeout.
            for _ in 0..<100 {
                guard piece.withUnsafeBytes({ send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 else { return }
                usleep(100_000)
            }
        }.start()
        let client = try LineClient(.unix(path: path), timeoutSeconds: 1)
        let started = ContinuousClock.now
        do {
            let answer = try client.call("server.info")
            Issue.record("a trickling server answered: \(answer)")
        } catch {
            #expect(error.code == .connectionFailed && error.message.contains("no answer to server.info from"), "\(error)")
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(4), "the call waited \(elapsed) with a timeout of 1 s")
    }

    @Test("a leader's subscription.checkpoint of a negative size is a mismatch that stops the follower, not a trap")
    func negativeCheckpointSizeIsAMismatch() throws {
        let folder = TemporaryFolder()
        let path = folder.path + "/leader.sock"
        let listener = try Self.unixListener(at: path)
        defer { close(listener) }
        let answer = Array((#"{"id":"subscribe","jsonrpc":"2.0","result":{"from":0,"size":1}}"# + "\n"
            + #"{"jsonrpc":"2.0","method":"subscription.checkpoint","params":{"checkpoint":"x","consistency":[],"previous_size":0,"size":-1}}"# + "\n").utf8)
        Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            guard Self.readLine(connection) != nil else { return }
            _ = answer.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            // Held open until the follower goes, as a live leader would.
            var byte: UInt8 = 0
            _ = read(connection, &byte, 1)
        }.start()
        let follower = try Follower(.init(leader: .unix(path: path), directory: folder.path + "/replica", actor: "audit", key: Ed25519PrivateKey()))
        defer { follower.replica.close() }
        let failure = follower.failureWithin(seconds: 30)
        guard case .mismatch(sequenceNumber: nil, let error)? = failure else {
            Issue.record("the follower stopped with \(String(describing: failure))")
            return
        }
        #expect(error.code == .integrity && error.message.contains("a malformed subscription.checkpoint"), "\(error)")
    }

    @Test("a follower refusing a leader's record by a rule says an older circuito may have written it; a damaged one does not")
    func ruleMismatchNamesOlderRules() {
        let refused = Follower.Failure.mismatch(sequenceNumber: 274, LedgerError(.invalidBody, "payment authorisation names no \"origin\"")).description
        #expect(refused.hasPrefix("mismatch at seq 274: invalid_body: payment authorisation names no \"origin\"; note: "), "\(refused)")
        #expect(refused.contains("if an older circuito wrote it") && refused.hasSuffix("or follow it with that version"), "\(refused)")
        let damaged = Follower.Failure.mismatch(sequenceNumber: 274, LedgerError(.integrity, "checkpoint differs")).description
        #expect(damaged == "mismatch at seq 274: integrity_failure: checkpoint differs")
    }

    @Test("a connection that ends in the middle of a line is connection_failed, not a line of bad JSON")
    func lineCutShortAtTheEnd() throws {
        let folder = TemporaryFolder()
        let path = folder.path + "/cut.sock"
        // The "server" answers one whole line, then half a line, and closes.
        let listener = try Self.answeringOnce(
            at: path, with: Array("{\"jsonrpc\":\"2.0\",\"method\":\"hello\",\"params\":{}}\n{\"jsonrpc\":\"2.0\",\"meth".utf8))
        defer { close(listener) }
        let client = try LineClient(.unix(path: path), timeoutSeconds: 10)
        #expect(try client.nextMessage()?["method"] == "hello")
        do {
            let message = try client.nextMessage()
            Issue.record("read \(String(describing: message)) from half a line")
        } catch {
            #expect(error.code == .connectionFailed && error.message.contains("ended in the middle of a line"), "\(error)")
        }
    }

    @Test("a server line longer than the client's maximum is too_large once past it, not buffered to its end")
    func serverLineTooLong() throws {
        let folder = TemporaryFolder()
        let path = folder.path + "/long.sock"
        // The "server" answers one whole line, then 4096 bytes of a line without its end, and closes: a client that
        // buffered on would find the connection ended in the middle of a line instead.
        let listener = try Self.answeringOnce(
            at: path, with: Array("{\"jsonrpc\":\"2.0\",\"method\":\"hello\",\"params\":{}}\n".utf8) + [UInt8](repeating: 0x78, count: 4096))
        defer { close(listener) }
        let client = try LineClient(.unix(path: path), timeoutSeconds: 10, maximumLineBytes: 1024)
        #expect(try client.nextMessage()?["method"] == "hello")
        do {
            let message = try client.nextMessage()
            Issue.record("read \(String(describing: message)) from a line past the maximum")
        } catch {
            #expect(error.code == .tooLarge && error.message == "the server sent a line longer than 1024 bytes", "\(error)")
        }
    }
}

extension SubscriptionTests {
    @Test("a follower commits what it verified before the leader's connection broke, then resumes from there and ends equal to the leader")
    func followerKeepsVerifiedRecordsAcrossABrokenConnection() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let writer = try server.client()
        // Commits after the fixture's own, so that the stream has checkpoints to break between.
        for _ in 0..<3 { _ = try writer.result("submit", try fixture.registration().params) }
        let size = try server.size()
        // The leader's own stream from 0, message by message.
        let subscriber = try server.client()
        _ = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": 0]))
        var stream: [JSONValue] = []
        var checkpointIndices: [Int] = []
        while stream.count < 10_000, checkpointIndices.last.map({ stream[$0]["params"]?["size"] }) != .integer(Int64(size)) {
            let message = try #require(try subscriber.nextMessage())
            if message["method"] == "subscription.checkpoint" { checkpointIndices.append(stream.count) }
            stream.append(message)
        }
        await server.shutdown()
        try #require(checkpointIndices.count >= 2)
        let firstCheckpointSize = try #require(stream[checkpointIndices[0]]["params"]?["size"]?.integerValue)
        // The first connection carries the first checkpoint and the records after it, up to (not with) the next
        // checkpoint, then breaks. Its answer announces more records than it sends, so that nothing is committed
        // for having caught up: only the break can make the follower commit.
        let broken = Array(stream[...(checkpointIndices[1] - 1)])
        let resumed = Array(stream[(checkpointIndices[0] + 1)...])
        let leaderPath = fixture.folder.path + "/leader.sock"
        let listener = try Self.unixListener(at: leaderPath)
        defer { close(listener) }
        let requestedFrom = Mutex<[Int64]>([])
        let serving = Thread {
            for (connectionIndex, messages) in [broken, resumed].enumerated() {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                defer { close(connection) }
                guard let request = Self.readLine(connection),
                    let from = request["params"]?["request"]?["params"]?["from"]?.integerValue
                else { return }
                requestedFrom.withLock { $0.append(from) }
                let announced = connectionIndex == 0 ? Int64(size) + 1_000 : Int64(size)
                var bytes = CanonicalJSON.encode(["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": .integer(announced)]])
                bytes.append(0x0A)
                for message in messages {
                    bytes += CanonicalJSON.encode(message)
                    bytes.append(0x0A)
                }
                var written = 0
                while written < bytes.count {
                    let count = bytes[written...].withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                    guard count > 0 else { return }
                    written += count
                }
                if connectionIndex == 1 {
                    // Held open until the follower stops, as a live leader would.
                    var byte: UInt8 = 0
                    _ = read(connection, &byte, 1)
                }
            }
        }
        serving.start()
        let replicaDirectory = fixture.folder.path + "/replica"
        let run = FollowerRun(.init(leader: .unix(path: leaderPath), directory: replicaDirectory, actor: "audit", key: fixture.actors.auditor))
        #expect(run.waitUntil(size: size, timeoutSeconds: 30))
        try run.stop()
        // The second subscription started where the first checkpoint left the replica: the records verified
        // before the break were committed, not dropped and fetched again.
        #expect(requestedFrom.withLock { $0 } == [0, firstCheckpointSize])
        let leader = try LedgerReader.open(directory: fixture.directory)
        let replica = try LedgerReader.open(directory: replicaDirectory)
        #expect(try replica.size() == size)
        for sequenceNumber in 0..<size {
            #expect(try replica.leafBytes(sequenceNumber: sequenceNumber) == leader.leafBytes(sequenceNumber: sequenceNumber))
        }
        let report = try LedgerReplay.run(replica, compareProjections: true)
        #expect(report.recordCount == size)
    }

    /// One line read byte by byte (at most 1 MiB), parsed; nil at EOF or on bad JSON.
    static func readLine(_ connection: Int32) -> JSONValue? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < 1 << 20 {
            guard read(connection, &byte, 1) == 1 else { return nil }
            if byte == 0x0A { return try? JSONParser.parse(line) }
            line.append(byte)
        }
        return nil
    }
}

extension Follower {
    /// Follows for at most `seconds`; why it stopped, or nil when it was still following.
    func failureWithin(seconds: Double) -> Failure? {
        do throws(Failure) {
            let deadline = Date().addingTimeInterval(seconds)
            try run(shouldStop: { Date() > deadline })
            return nil
        } catch {
            return error
        }
    }
}

/// A follower running on its own thread until stopped.
final class FollowerRun: @unchecked Sendable {
    // @unchecked: `size`, `stopping`, `outcome` and `logLines` are guarded by `lock`.
    private let lock = NSLock()
    private var size: UInt64 = 0
    private var stopping = false
    private var outcome: Result<Void, Error>?
    private var logLines: [String] = []
    private let done = DispatchSemaphore(value: 0)

    init(_ configuration: Follower.Configuration) {
        Thread { [self] in
            do {
                let follower = try Follower(configuration)
                // Closed here, so that the replica can be opened as soon as `stop` returns.
                defer { follower.replica.close() }
                lock.withLock { size = follower.replica.size }
                try follower.run(
                    shouldStop: { [self] in lock.withLock { stopping } }, progress: { [self] newSize in lock.withLock { size = newSize } },
                    log: { [self] line in lock.withLock { if logLines.count < 1000 { logLines.append(line) } } })
                lock.withLock { outcome = .success(()) }
            } catch {
                lock.withLock { outcome = .failure(error) }
            }
            done.signal()
        }.start()
    }

    func waitUntil(size expected: UInt64, timeoutSeconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            let (current, finished) = lock.withLock { (size, outcome != nil) }
            if current >= expected { return true }
            if finished { return false }
            usleep(10_000)
        }
        return false
    }

    /// What the follower logged so far (its first 1000 lines).
    var log: [String] { lock.withLock { logLines } }

    /// Stops the follower and rethrows its failure, if it had one.
    func stop() throws {
        lock.withLock { stopping = true }
        done.wait()
        if case .failure(let error)? = lock.withLock({ outcome }) { throw error }
    }
}
