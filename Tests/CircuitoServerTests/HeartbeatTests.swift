import CircuitoCore
import CircuitoCrypto
@testable import CircuitoServer
import CircuitoStorage
import Foundation
import Glibc
import Synchronization
import Testing

/// In the subscriptions' serialized suite: the followers here block a thread each (HostileLeaderTests says why).
extension SubscriptionTests {
    @Test("a subscription asked for heartbeats gets one after each second with nothing to send, carrying the size sent; one not asked gets none")
    func heartbeatsOnAQuietLedger() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let size = Int64(try server.size())
        let subscriber = try server.client(unix: true, timeoutSeconds: 10)
        let answer = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(size), "heartbeat_seconds": 1]))
        let identifier = try #require(answer["subscription"])
        var since = ContinuousClock.now
        func nextHeartbeat() throws -> (message: JSONValue, after: Duration) {
            let message = try #require(try subscriber.nextMessage())
            let after = ContinuousClock.now - since
            since = ContinuousClock.now
            return (message, after)
        }
        for _ in 0..<2 {
            let (heartbeat, after) = try nextHeartbeat()
            #expect(heartbeat["method"] == "subscription.heartbeat", "\(heartbeat)")
            #expect(heartbeat["params"] == ["size": .integer(size), "subscription": identifier])
            // Not at once, and not much later than asked (a busy host may delay it).
            #expect(after > .milliseconds(800) && after < .seconds(5), "a heartbeat after \(after)")
        }
        // A record is sent as it is committed, then its checkpoint; the heartbeat comes a second after them.
        let writer = try server.client()
        _ = try writer.result("submit", try fixture.registration().params)
        #expect(try subscriber.nextMessage()?["method"] == "subscription.record")
        #expect(try subscriber.nextMessage()?["method"] == "subscription.checkpoint")
        since = ContinuousClock.now
        let (heartbeat, after) = try nextHeartbeat()
        #expect(heartbeat["params"] == ["size": .integer(size + 1), "subscription": identifier])
        #expect(after > .milliseconds(800) && after < .seconds(5), "a heartbeat after \(after)")
        // Without heartbeat_seconds, a quiet ledger's subscription sends nothing.
        let quiet = try server.client(unix: true, timeoutSeconds: 10)
        _ = try quiet.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(size + 1)]))
        quiet.setReceiveTimeout(seconds: 2)
        let polled = try quiet.poll()
        guard case .timedOut = polled else {
            Issue.record("a subscription without heartbeats was sent \(polled)")
            return
        }
        await server.shutdown()
    }

    @Test("heartbeat_seconds must be a whole number from 1 to 3600: anything else is invalid_params and starts no stream", arguments: [
        JSONValue.integer(0), .integer(-1), .integer(3601), .string("30"), .number(1.5), .null,
    ])
    func heartbeatSecondsOutOfRange(value: JSONValue) async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client(timeoutSeconds: 10)
        let error = try client.error("subscribe", fixture.read("subscribe", as: "audit", ["from": 0, "heartbeat_seconds": value]))
        #expect(error.code == -32602 && error.message == "subscribe parameter \"heartbeat_seconds\" must be a whole number from 1 to 3600", "\(error)")
        // Nothing streams on the connection, which goes on answering.
        #expect(try client.result("server.info")["connections"]?["subscriptions"] == 0)
        await server.shutdown()
    }

    @Test("a follower asks for heartbeats and stays connected to a real leader on a quiet ledger, then follows its next commit")
    func followerStaysWithAQuietLeader() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let size = try server.size()
        let folder = TemporaryFolder()
        var configuration = Follower.Configuration(leader: server.tcpEndpoint, directory: folder.path + "/replica", actor: "audit", key: fixture.actors.auditor)
        configuration.heartbeatSeconds = 1
        let run = FollowerRun(configuration)
        #expect(run.waitUntil(size: size, timeoutSeconds: 20))
        // Longer than three heartbeats: a follower that heard none would reconnect meanwhile.
        try await Task.sleep(for: .seconds(5))
        _ = try server.client().result("submit", try fixture.registration().params)
        #expect(run.waitUntil(size: size + 1, timeoutSeconds: 20))
        try run.stop()
        #expect(!run.log.contains { $0.contains("reconnecting") }, "\(run.log)")
        #expect(run.log.filter { $0.hasPrefix("subscribed to") }.count == 1, "\(run.log)")
        await server.shutdown()
    }
}

extension SubscriptionTests {
    /// The kernel's name of the calling thread (Glibc's module map leaves out pthread_getname_np).
    static func currentThreadName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .newlines)
    }

    @Test("this suite's sync tests run on threads of their own (OwnThreadsTrait), not on Swift concurrency's shared pool")
    func syncTestsRunOnTheirOwnThreads() {
        #expect(Self.currentThreadName().hasPrefix(ServerThreadName.requestThreadPrefix), "\(Self.currentThreadName())")
    }

    @Test("this suite's async tests run on threads of their own (OwnThreadsTrait), also after a suspension and in child tasks")
    func testsRunOnTheirOwnThreads() async throws {
        let currentThreadName = Self.currentThreadName
        #expect(currentThreadName().hasPrefix(ServerThreadName.requestThreadPrefix), "\(currentThreadName())")
        // Still there after a suspension, and in a child task.
        try await Task.sleep(for: .milliseconds(10))
        #expect(currentThreadName().hasPrefix(ServerThreadName.requestThreadPrefix), "\(currentThreadName())")
        async let child = currentThreadName()
        #expect(await child.hasPrefix(ServerThreadName.requestThreadPrefix))
    }
}

extension HostileLeaderTests {
    /// Follows `leader` as a fresh replica asking for a heartbeat every second until `shouldStop`; what it logged.
    static func followAskingForHeartbeats(_ leader: FakeLeader, folder: String, until shouldStop: () -> Bool) throws -> [String] {
        var configuration = Follower.Configuration(leader: leader.endpoint, directory: folder + "/replica", actor: "audit", key: Ed25519PrivateKey())
        configuration.heartbeatSeconds = 1
        let follower = try Follower(configuration)
        defer { if !follower.replica.removeIfEmpty() { follower.replica.close() } }
        var lines: [String] = []
        do throws(Follower.Failure) {
            try follower.run(shouldStop: shouldStop, log: { lines.append($0) })
        } catch {
            Issue.record("the follower stopped with \(error)")
        }
        return lines
    }

    @Test("a leader that answers the subscription and then sends nothing, though asked for heartbeats, is left after three of them and subscribed to again")
    func silentLeaderIsLeft() throws {
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            let answer: JSONValue = ["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 0, "subscription": "sub-1"]]
            guard FakeLeader.write(RPCMessage.line(answer), to: connection) else { return }
            FakeLeader.holdOpen(connection)
        }
        defer { leader.stop() }
        let started = ContinuousClock.now
        let lines = try Self.followAskingForHeartbeats(leader, folder: folder.path) { leader.requestedFrom.withLock { $0.count } >= 2 || ContinuousClock.now - started > .seconds(20) }
        #expect(leader.requestedFrom.withLock { $0.count } == 2, "\(lines)")
        #expect(leader.requests.withLock { $0 }.allSatisfy { $0["params"]?["request"]?["params"]?["heartbeat_seconds"] == 1 })
        #expect(lines.contains { $0.contains("the leader sent nothing for 3 s although asked for a heartbeat every 1 s; reconnecting") }, "\(lines)")
        // Three heartbeats (3 s) and the first reconnection wait (1 s), with a poll's second of slack each.
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test("a leader that does not know heartbeat_seconds (an older circuito) is subscribed to again without it, on the same connection, and not left for its silence; asked again after a reconnection")
    func leaderWithoutHeartbeats() throws {
        let folder = TemporaryFolder()
        let secondRequest = Mutex<JSONValue?>(nil)
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, index, from in
            // The refusal an older server gives (Params.allowOnly), then the answer to the request sent after it.
            let refusal = RPCMessage.error(id: "subscribe", RPCError.invalidParams("subscribe has no parameter \"heartbeat_seconds\""))
            guard FakeLeader.write(RPCMessage.line(refusal), to: connection), let again = SubscriptionTests.readLine(connection) else { return }
            if index == 0 { secondRequest.withLock { $0 = again } }
            let answer: JSONValue = ["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 0, "subscription": "sub-1"]]
            guard FakeLeader.write(RPCMessage.line(answer), to: connection) else { return }
            // The first connection ends at once (a leader restarting, perhaps upgraded); the second stays, silent.
            if index > 0 { FakeLeader.holdOpen(connection) }
        }
        defer { leader.stop() }
        let started = ContinuousClock.now
        let lines = try Self.followAskingForHeartbeats(leader, folder: folder.path) { ContinuousClock.now - started > .seconds(5) }
        let again = try #require(secondRequest.withLock { $0 }, "\(lines)")
        #expect(again["method"] == "subscribe" && again["params"]?["request"]?["params"] == ["from": 0], "\(again)")
        #expect(lines.contains("the leader does not send heartbeats (an older circuito); following it without them"), "\(lines)")
        // The second connection, silent for about 4 s, more than three of the heartbeats it does not send, is kept;
        // and the leader was asked for heartbeats again on it.
        let requests = leader.requests.withLock { $0 }
        #expect(requests.count == 2, "\(lines)")
        #expect(requests.allSatisfy { $0["params"]?["request"]?["params"] == ["from": 0, "heartbeat_seconds": 1] }, "\(requests)")
    }

    @Test("a heartbeat for another size than the records sent is a mismatch")
    func heartbeatForAnotherSizeIsAMismatch() throws {
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            let answer: JSONValue = ["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 5, "subscription": "sub-1"]]
            let heartbeat = RPCMessage.notification(method: "subscription.heartbeat", params: ["size": 5, "subscription": "sub-1"])
            guard FakeLeader.write(RPCMessage.line(answer) + RPCMessage.line(heartbeat), to: connection) else { return }
            FakeLeader.holdOpen(connection)
        }
        defer { leader.stop() }
        let follower = try Follower(.init(leader: leader.endpoint, directory: folder.path + "/replica", actor: "audit", key: Ed25519PrivateKey()))
        defer { if !follower.replica.removeIfEmpty() { follower.replica.close() } }
        guard case .mismatch(sequenceNumber: nil, let error)? = follower.failureWithin(seconds: 10) else {
            Issue.record("no mismatch")
            return
        }
        #expect(error.code == .integrity && error.message == "a heartbeat for size 5 arrived after 0 records", "\(error)")
    }

    @Test("a replica commit longer than three heartbeats is no silence of the leader's: what the leader sent meanwhile is read, and the connection kept")
    func slowReplicaCommitIsNoSilence() async throws {
        let recorded = try await RecordedStream.make()
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            // The genesis commit alone, then nothing for longer than a poll: the follower's poll times out with that
            // commit to flush. The rest and a heartbeat a second come while the flush is still running.
            let firstCommit = recorded.honestMessages(from: from).prefix(2)
            guard FakeLeader.write(RPCMessage.line(recorded.answer(from: from)) + firstCommit.flatMap(RecordedStream.line), to: connection) else { return }
            usleep(1_500_000)
            guard FakeLeader.write(recorded.honestMessages(from: from).dropFirst(2).flatMap(RecordedStream.line), to: connection) else { return }
            let heartbeat = RPCMessage.notification(method: "subscription.heartbeat", params: ["size": .integer(Int64(recorded.size)), "subscription": "sub-1"])
            for _ in 0..<15 {
                guard FakeLeader.write(RPCMessage.line(heartbeat), to: connection) else { return }
                sleep(1)
            }
        }
        defer { leader.stop() }
        var configuration = Follower.Configuration(leader: leader.endpoint, directory: folder.path + "/replica", actor: "audit", key: recorded.auditor)
        configuration.storageOptions = .init()
        configuration.heartbeatSeconds = 1
        let follower = try Follower(configuration)
        defer { if !follower.replica.removeIfEmpty() { follower.replica.close() } }
        var lines: [String] = []
        var size: UInt64 = 0
        let started = ContinuousClock.now
        do throws(Follower.Failure) {
            try follower.run(
                shouldStop: { size >= recorded.size || ContinuousClock.now - started > .seconds(20) },
                progress: { committed in
                    // The first commit takes 4 s, as a replica's commit on a slow disk might: more than three heartbeats.
                    if size == 0 { sleep(4) }
                    size = committed
                },
                log: { lines.append($0) })
        } catch {
            Issue.record("the follower stopped with \(error)")
        }
        #expect(size == recorded.size, "\(lines)")
        #expect(!lines.contains { $0.contains("reconnecting") }, "\(lines)")
        #expect(leader.requestedFrom.withLock { $0 } == [0], "\(lines)")
    }
}
