import CircuitoCore
import CircuitoCrypto
@testable import CircuitoServer
import CircuitoStorage
import Foundation
import NIOCore
import Testing

@Suite("Socket API: messages, errors and who may read what", .serialized, .timeLimit(.minutes(5)))
struct ProtocolTests {
    @Test("a stored checkpoint whose note names a size past Int64 (a damaged ledger): the server does not start on it, integrity_failure naming the damage, rather than serve a ledger whose every commit would fail")
    func checkpointPastAnyLog() async throws {
        let fixture = try CircuitFixture()
        // Signed with the ledger's own key, stored under the largest key: what a damaged or hostile file may hold.
        let size: UInt64 = 1 << 63
        let body = "test.example/ledger\n\(size)\n\(Base64.encode([UInt8](repeating: 7, count: 32)))\n"
        let note = try SignedNote.sign(text: body, signer: try NoteSigner(name: "test.example/ledger", privateKey: fixture.actors.checkpoint))
        do {
            let environment = try LMDBEnvironment(path: fixture.directory, databaseNames: [LedgerDatabase.checkpoints], create: false, writing: true)
            try environment.write { (transaction) throws(LedgerError) in
                try transaction.put(LedgerDatabase.checkpoints, BigEndianKey.encode(size), Array(note.utf8))
            }
            environment.close()
        }
        do {
            let server = try await fixture.startServer()
            Issue.record("a server started on a ledger whose latest checkpoint is past its log")
            await server.shutdown()
        } catch let error as LedgerError {
            #expect(error.code == .integrity)
            #expect(error.message.contains("its latest checkpoint covers \(size) records, its log holds 21"), "\(error)")
        }
    }

    @Test("each class of bad input gets its error, and the server keeps serving that client and the others")
    func badInputs() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumFrameBytes = 4096
        let server = try await fixture.startServer(limits: limits)
        let bad = try server.client()
        let other = try server.client(unix: true)
        func othersStillServed() throws {
            #expect(try other.result("server.info")["origin"] == "test.example/ledger")
        }
        // server.info gives every bound a client meets (Specs/protocol.md 5.15).
        #expect(try other.result("server.info")["limits"] == [
            "maximum_frame_bytes": 4096, "maximum_connections": 1024, "maximum_in_flight_per_connection": 64,
            "maximum_unwritten_answer_bytes": 268_435_456, "maximum_in_flight_request_bytes": 268_435_456,
            "maximum_unfinished_line_bytes": 268_435_456,
            "maximum_subscriptions_per_connection": 4, "maximum_events_per_batch_request": 256,
            "maximum_subscriber_buffer_records": 10_000, "read_request_window_seconds": 300,
            "maximum_remembered_nonces": 100_000, "maximum_remembered_nonces_per_actor": 2_000, "idle_timeout_seconds": 600,
            "write_stall_timeout_seconds": 60, "maximum_queued_refusals_per_connection": 256,
            "allocator_trim_interval_seconds": 10,
        ])

        // Not JSON: parse error, id null.
        let notJSON = try #require(try bad.exchange("{\"jsonrpc\":\"2.0\",\"id\":1,\n"))
        #expect(notJSON["error"]?["code"] == -32700)
        #expect(notJSON["id"] == .null)
        try othersStillServed()

        // An oversize line is dropped unread and answered; the connection stays usable.
        let oversize = try #require(try bad.exchange("[" + String(repeating: "1,", count: 4000) + "1]\n"))
        #expect(oversize["error"]?["code"] == -32600)
        #expect(oversize["error"]?["data"]?["code"] == "too_large")
        #expect(try bad.result("server.info")["size"] != nil)
        try othersStillServed()

        // Wrong types.
        #expect(try bad.exchange(#"{"jsonrpc":"2.0","id":{"a":1},"method":"server.info"}"# + "\n")?["error"]?["code"] == -32600)
        #expect(try bad.exchange(#"{"jsonrpc":"2.0","id":7,"method":5}"# + "\n")?["error"]?["code"] == -32600)
        // A numeric id comes back exactly: the largest exact integer is echoed; a number the canonical answer would
        // spell otherwise (rounded, an exponent, a fraction) is refused under id null instead of answered under another.
        #expect(try bad.exchange(#"{"jsonrpc":"2.0","id":-9007199254740991,"method":"checkpoint"}"# + "\n")?["id"] == .integer(-9_007_199_254_740_991))
        for id in ["9007199254740993", "1e2", "1.5", "-0.0"] {
            let answer = try #require(try bad.exchange(#"{"jsonrpc":"2.0","id":"# + id + #","method":"checkpoint"}"# + "\n"))
            #expect(answer["id"] == .null && answer["error"]?["code"] == -32600, "id \(id): \(answer)")
        }
        let stringParams = try #require(try bad.exchange(#"{"jsonrpc":"2.0","id":8,"method":"server.info","params":"x"}"# + "\n"))
        #expect(stringParams["id"] == 8 && stringParams["error"]?["code"] == -32600, "\(stringParams)")
        // A member JSON-RPC does not define makes an invalid request, answered under the request's id.
        let extraMember = try #require(try bad.exchange(#"{"jsonrpc":"2.0","id":12,"method":"server.info","extra":true}"# + "\n"))
        #expect(extraMember["id"] == 12 && extraMember["error"]?["code"] == -32600, "\(extraMember)")
        // A null id is an id, not a notification's missing one: the request is answered, under null.
        let nullID = try #require(try bad.exchange(#"{"jsonrpc":"2.0","id":null,"method":"server.info"}"# + "\n"))
        #expect(nullID["id"] == .null && nullID["result"]?["origin"] == "test.example/ledger", "\(nullID)")
        let wrongType = try bad.error("proof.inclusion", ["seq": "one"])
        #expect(wrongType.code == -32602)
        #expect(try bad.error("proof.inclusion", ["seq": -1]).code == -32602)
        #expect(try bad.error("checkpoint", ["covering": true]).code == -32602)
        // A number past 2^53 − 1 is no exact integer: the message says which range is.
        let tooLarge = try #require(try bad.exchange(#"{"jsonrpc":"2.0","id":9,"method":"checkpoint","params":{"covering":9223372036854775807}}"# + "\n"))
        #expect(tooLarge["error"]?["message"]?.stringValue?.contains("must be a whole number from 0 to 9007199254740991") == true, "\(tooLarge)")
        try othersStillServed()

        // Missing fields.
        let noMethod = try #require(try bad.exchange(#"{"jsonrpc":"2.0","id":9}"# + "\n"))
        #expect(noMethod["error"]?["code"] == -32600)
        #expect(noMethod["id"] == 9)
        #expect(try bad.exchange(#"{"id":10,"method":"server.info"}"# + "\n")?["error"]?["code"] == -32600)
        #expect(try bad.error("proof.inclusion", [:]).code == -32602)
        var unsigned = try fixture.registration().json.objectValue ?? [:]
        unsigned["sig"] = nil
        let missingSignature = try bad.error("submit", .object(unsigned))
        #expect(missingSignature.name == "invalid_event")
        #expect(missingSignature.code == 1003)
        try othersStillServed()

        // A bad signature, on a write and on a read.
        var tampered = try fixture.registration().json.objectValue ?? [:]
        tampered["sig"] = .string(Base64.encode([UInt8](repeating: 1, count: 64)))
        #expect(try bad.error("submit", .object(tampered)).name == "invalid_signature")
        var badRead = fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"]).objectValue ?? [:]
        badRead["sig"] = .string(Base64.encode([UInt8](repeating: 2, count: 64)))
        #expect(try bad.error("account.balance", .object(badRead)).name == "invalid_signature")
        try othersStillServed()

        // The wrong role: a merchant may not set the policy, nor read a beneficiary's balance.
        let policy = try fixture.signed("policy.updated", by: "shop", fixture.actors.merchant, [
            "conversion_rate_cents_per_credit": 1, "monthly_conversion_cap_cents": 1, "lot_validity_days": 1, "categories": ["food"],
        ])
        let wrongRole = try bad.error("submit", policy.params)
        #expect(wrongRole.name == "role_not_permitted")
        #expect(wrongRole.code == 2003)
        let notAllowed = try bad.error("account.balance", fixture.read("account.balance", as: "shop", ["account": "beneficiary:bene-1"]))
        #expect(notAllowed.name == "not_authorised")
        #expect(notAllowed.code == 6003)
        try othersStillServed()

        // A replayed nonce: the same signed read twice.
        let once = fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"])
        _ = try bad.result("account.balance", once)
        let replayed = try bad.error("account.balance", once)
        #expect(replayed.name == "request_replayed")
        #expect(replayed.code == 6002)
        // A read signed 10 minutes ago is outside the ±5 minute window.
        let stale = fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"], at: fixture.now - 600_000)
        #expect(try bad.error("account.balance", stale).name == "request_expired")
        // Signed for another method.
        let otherMethod = fixture.read("account.history", as: "bene-1", ["account": "beneficiary:bene-1"])
        #expect(try bad.error("account.balance", otherMethod).name == "invalid_read_request")
        // Personal data without a signature.
        #expect(try bad.error("account.balance", ["account": "beneficiary:bene-1"]).name == "invalid_read_request")
        try othersStillServed()

        // An unknown method.
        let unknown = try bad.error("ledger.delete", [:])
        #expect(unknown.code == -32601)
        try othersStillServed()

        // Batches: answers in order, none for a notification; an empty batch is invalid.
        let batch = try #require(try bad.exchange(#"[{"jsonrpc":"2.0","id":"a","method":"server.info"},{"jsonrpc":"2.0","method":"server.info"},{"jsonrpc":"2.0","id":"b","method":"nope"},5]"# + "\n"))
        let answers = try #require(batch.arrayValue)
        #expect(answers.count == 3)
        #expect(answers[0]["id"] == "a" && answers[0]["result"] != nil)
        #expect(answers[1]["id"] == "b" && answers[1]["error"]?["code"] == -32601)
        #expect(answers[2]["id"] == .null && answers[2]["error"]?["code"] == -32600)
        #expect(try bad.exchange("[]\n")?["error"]?["code"] == -32600)
        // A notification gets no answer: the next line is the answer to the request after it.
        try bad.send(bytes: Array((#"{"jsonrpc":"2.0","method":"server.info"}"# + "\n" + #"{"jsonrpc":"2.0","id":"after","method":"server.info"}"# + "\n").utf8))
        #expect(try bad.nextMessage()?["id"] == "after")
        // Blank lines are ignored.
        #expect(try bad.exchange("\n\r\n" + #"{"jsonrpc":"2.0","id":"blank","method":"server.info"}"# + "\r\n")?["id"] == "blank")
        try othersStillServed()
        await server.shutdown()
    }

    @Test("a Unix socket a running server listens on is refused to a second server; shutdown removes its own socket file only")
    func unixSocketIsNotTakenOver() async throws {
        let first = try CircuitFixture()
        let server = try await first.startServer()
        let path = try #require(server.unixSocketPath)
        let second = try CircuitFixture()
        var configuration = ServerConfiguration(directory: second.directory, tcpHost: nil, unixSocketPath: path)
        configuration.eventLoopThreads = 1
        /// Expects the start to be refused with `code` and a message containing `words`.
        func expectRefused(_ code: LedgerError.Code, _ words: String) async throws {
            do {
                let started = try await LedgerServer.start(configuration)
                Issue.record("a server listened on \(configuration.unixSocketPath ?? "")")
                await started.shutdown()
            } catch let error as LedgerError {
                #expect(error.code == code && error.message.contains(words), "\(error)")
            }
        }
        try await expectRefused(.storage, "another process listens on that socket")
        // The first server's clients still reach it there.
        #expect(try server.client(unix: true).result("server.info")["size"]?.integerValue == Int64(try server.size()))
        // Its socket file removed by hand and another server bound at the path: stopping the first leaves that one's.
        #expect(unlink(path) == 0)
        let successor = try await LedgerServer.start(configuration)
        #expect(access(path, F_OK) == 0, "the successor's socket file")
        await server.shutdown()
        #expect(access(path, F_OK) == 0)
        #expect(try successor.client(unix: true).result("server.info")["size"]?.integerValue == Int64(try successor.size()))
        await successor.shutdown()
        #expect(access(path, F_OK) != 0)
        // A path longer than a socket address holds is the caller's mistake, named as such.
        configuration.unixSocketPath = second.folder.path + "/" + String(repeating: "s", count: 120) + ".sock"
        try await expectRefused(.invalidRange, "a Unix socket path is at most 107 bytes")
        // An empty path (an unset variable) would listen in the abstract namespace, with no file: refused.
        configuration.unixSocketPath = ""
        try await expectRefused(.invalidRange, "the Unix socket path is empty")
    }

    @Test("too many requests in flight on one connection are refused with overloaded, the rest answered")
    func inFlightBound() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumInFlightPerConnection = 4
        let server = try await fixture.startServer(limits: limits)
        let client = try server.client()
        // A batch larger than the bound is refused as a whole.
        let requests = (0..<5).map { RPCMessage.request(id: .integer(Int64($0)), method: "server.info", params: [:]) }
        let answer = try #require(try client.exchange(CanonicalJSON.encodeString(.array(requests)) + "\n"))
        #expect(answer["error"]?["data"]?["code"] == "overloaded")
        // Within the bound, all are answered.
        let fits = try #require(try client.exchange(CanonicalJSON.encodeString(.array(Array(requests.prefix(4)))) + "\n"))
        #expect(fits.arrayValue?.count == 4)
        await server.shutdown()
    }

    @Test("answers clients have not read count against one server-wide bound: past it new requests are refused with overloaded, and served again once they are read")
    func unwrittenAnswersBound() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        // The channel itself buffers up to 64 KiB before a write waits: past those, a few answers are enough.
        limits.maximumUnwrittenAnswerBytes = 2048
        limits.socketSendBufferBytes = 4096
        limits.maximumInFlightPerConnection = 1024
        let server = try await fixture.startServer(limits: limits)
        // A client that sends 512 requests and reads nothing: their answers (about 300 KiB) fill both small socket
        // buffers and the channel's own, and the rest wait in the server. Each is a batch of one, so that all are
        // answered by tasks, none on the event loop (whose writes the channel's own bound holds).
        let slow = try LineClient(server.tcpEndpoint, timeoutSeconds: 20, receiveBufferBytes: 2048)
        let lines = (0..<512).map { CanonicalJSON.encodeString(.array([RPCMessage.request(id: .integer(Int64($0)), method: "server.info", params: [:])])) + "\n" }
        try slow.send(bytes: Array(lines.joined().utf8))
        let other = try server.client(unix: true)
        var refusal: JSONValue?
        for _ in 0..<100 {
            let answer = try #require(try other.exchange(CanonicalJSON.encodeString(RPCMessage.request(id: 1, method: "server.info", params: [:])) + "\n"))
            if answer["error"] != nil {
                refusal = answer
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let refused = try #require(refusal, "never refused while the slow client held its answers")
        #expect(refused["error"]?["data"]?["code"] == "overloaded")
        #expect(refused["id"] == 1)
        #expect(refused["error"]?["message"]?.stringValue?.contains("answers its clients have not read yet") == true)
        // The slow client reads its 512 answers: what the server held is written, and the others are served again.
        var answered = 0
        while answered < 512, try slow.nextMessage() != nil { answered += 1 }
        #expect(answered == 512)
        var served = false
        for _ in 0..<100 where !served {
            served = try other.exchange(CanonicalJSON.encodeString(RPCMessage.request(id: 2, method: "server.info", params: [:])) + "\n")?["result"] != nil
            if !served { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(served)
        await server.shutdown()
    }

    @Test("a client that sends reads and reads none of their answers is closed after the write stall timeout, counted as closed unread")
    func unreadAnswersCloseTheConnection() async throws {
        let (fixture, server, writer) = try await SubscriptionTests.serverWithSmallSendBuffers(batchesOf30: 20, writeStallTimeoutSeconds: 1)
        // 16 pages of the log (600 records) are far more than the channel (64 KiB) and the small sockets hold: it turns
        // unwritable, and no write completes once the client's buffer is full.
        let stalled = try LineClient(server.tcpEndpoint, timeoutSeconds: 20, receiveBufferBytes: 2048)
        let lines = (0..<16).map { number in
            CanonicalJSON.encodeString(RPCMessage.request(id: .integer(Int64(number)), method: "events", params: fixture.read("events", as: "audit", ["from": 0]))) + "\n"
        }
        try stalled.send(bytes: Array(lines.joined().utf8))
        var connections: JSONValue = .null
        for _ in 0..<500 {
            connections = try writer.result("server.info")["connections"] ?? .null
            if connections["closed_unread"] == 1, connections["open"] == 1 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(connections["closed_unread"] == 1, "\(CanonicalJSON.encodeString(connections))")
        #expect(connections["open"] == 1, "only the writer's connection is left")
        await server.shutdown()
    }

    @Test("large answers made while the server-wide bound is reached are not kept: their requests are answered overloaded, and the bound holds")
    func largeAnswersPastTheBoundAreWithheld() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumUnwrittenAnswerBytes = 64 << 10
        limits.socketSendBufferBytes = 4096
        let server = try await fixture.startServer(limits: limits)
        // 64 pages of the whole log (each some kilobytes, past the small answers always kept), all taken while
        // nothing is held yet, from a client that reads nothing until all are answered.
        let slow = try LineClient(server.tcpEndpoint, timeoutSeconds: 20, receiveBufferBytes: 2048)
        let lines = (0..<64).map { number in
            CanonicalJSON.encodeString(RPCMessage.request(id: .integer(Int64(number)), method: "events", params: fixture.read("events", as: "audit", ["from": 0]))) + "\n"
        }
        try slow.send(bytes: Array(lines.joined().utf8))
        var held = 0
        for _ in 0..<50 {
            try await Task.sleep(for: .milliseconds(20))
            held = max(held, server.connectionStatistics.unwrittenAnswerBytes)
        }
        // What is held stays within the bound, and the pages' small refusals: nowhere near the 64 pages.
        #expect(held <= limits.maximumUnwrittenAnswerBytes + 64 * ServerLimits.smallAnswerBytes, "\(held)")
        var pages = 0
        var withheld = 0
        for _ in 0..<64 {
            let answer = try #require(try slow.nextMessage())
            if answer["result"]?["records"] != nil {
                pages += 1
            } else {
                #expect(answer["error"]?["data"]?["code"] == "overloaded")
                #expect(answer["error"]?["message"]?.stringValue?.contains("was made but not kept") == true, "\(answer)")
                withheld += 1
            }
        }
        #expect(pages >= 1 && withheld >= 1 && pages + withheld == 64, "\(pages) pages, \(withheld) withheld")
        await server.shutdown()
        // In a batch only the reads' answers are withheld: a write's receipt always goes.
        let receipt: JSONValue = ["id": 1, "jsonrpc": "2.0", "result": ["seq": 7]]
        let page: JSONValue = ["id": 2, "jsonrpc": "2.0", "result": ["records": .array([])]]
        let line = Connection.withheld([(receipt, true), (page, false)], bytes: 9000, held: 300 << 20, maximum: 256 << 20, isBatch: true)
        let kept = try #require(try JSONParser.parse(Array(line.dropLast())).arrayValue)
        #expect(kept.count == 2 && kept[0] == receipt)
        #expect(kept[1]["id"] == 2 && kept[1]["error"]?["data"]?["code"] == "overloaded")
        // One answer may take what is held past the bound, so that an answer larger than the bound goes when nothing
        // else is held; past the bound, nothing more is counted.
        let registry = ConnectionRegistry(maximum: 1)
        #expect(registry.reserveUnwrittenAnswerBytes(3000, maximum: 1000))
        #expect(!registry.reserveUnwrittenAnswerBytes(1, maximum: 1000))
        registry.adjustUnwrittenAnswerBytes(by: -3000)
        #expect(registry.reserveUnwrittenAnswerBytes(1, maximum: 1000))
        registry.adjustUnwrittenAnswerBytes(by: -1)
    }

    @Test("requests in flight count against one server-wide bound on what they hold decoded: a client that sends large requests and reads nothing holds at most that, others are refused overloaded until it reads")
    func inFlightRequestBytesBound() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumInFlightRequestBytes = 1 << 20
        limits.socketSendBufferBytes = 4096
        // Room for the fillers' 2 × 100 requests and the 32 large ones.
        limits.maximumInFlightPerConnection = 256
        let server = try await fixture.startServer(limits: limits)
        let slow = try LineClient(server.tcpEndpoint, timeoutSeconds: 20, receiveBufferBytes: 2048)
        // Two answers of 100 server.info answers each (over 100 KB) fill both small socket buffers and the channel's
        // own, so that every later answer waits to be written, its task holding its request. Batches: none is
        // answered on the event loop.
        func batchOfOne(id: JSONValue, params: JSONValue) -> String {
            CanonicalJSON.encodeString(.array([RPCMessage.request(id: id, method: "server.info", params: params)])) + "\n"
        }
        let filling = (0..<2).map { batch in
            CanonicalJSON.encodeString(.array((0..<100).map { RPCMessage.request(id: .string("fill-\(batch)-\($0)"), method: "server.info", params: [:]) })) + "\n"
        }
        // Each 40 KB line of zeros decodes to about 480 KB (a value slot per zero): 32 of them would hold 15 MB.
        let padding: JSONValue = ["padding": .array(Array(repeating: .integer(0), count: 20_000))]
        let large = (0..<32).map { batchOfOne(id: .integer(Int64($0)), params: padding) }
        try slow.send(bytes: Array((filling + large).joined().utf8))
        // What the slow client holds comes to the bound and stays within it: the requests past it are refused.
        var held = 0
        for _ in 0..<100 {
            held = max(held, server.connectionStatistics.inFlightRequestBytes)
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(held > limits.maximumInFlightRequestBytes / 2 && held <= limits.maximumInFlightRequestBytes, "\(held)")
        // Another client's large request does not fit either: refused, under its id.
        let other = try server.client(unix: true)
        let otherLine = CanonicalJSON.encodeString(RPCMessage.request(id: 1, method: "server.info", params: padding)) + "\n"
        let refused = try #require(try other.exchange(otherLine))
        #expect(refused["error"]?["data"]?["code"] == "overloaded")
        #expect(refused["id"] == 1)
        #expect(refused["error"]?["message"]?.stringValue?.contains("requests in flight") == true, "\(refused)")
        // The slow client reads its 34 answers: the two fillers' batches, invalid_params for the large requests taken, and
        // overloaded for those past the bound. Then nothing is held and the other's request is taken again.
        var overloaded = 0
        for _ in 0..<34 {
            let answer = try #require(try slow.nextMessage())
            if answer.arrayValue?.first?["error"]?["data"]?["code"] == "overloaded" || answer["error"]?["data"]?["code"] == "overloaded" { overloaded += 1 }
        }
        #expect(overloaded >= 20, "\(overloaded)")
        var taken = false
        for _ in 0..<100 where !taken {
            taken = try other.exchange(otherLine)?["error"]?["data"]?["code"] == "invalid_params"
            if !taken { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(taken)
        // A request is let go of once its answer's write completes on the server, which may come after the client has it.
        for _ in 0..<1500 where server.connectionStatistics.inFlightRequestBytes != 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.connectionStatistics.inFlightRequestBytes == 0)
        await server.shutdown()
        // The estimate: a slot per value, a header per container and long string, and the strings' bytes.
        let zeros = RequestLineHandler.decodedBytes(.array(Array(repeating: .integer(0), count: 1000)))
        #expect(zeros >= 1000 * MemoryLayout<JSONValue>.stride)
        #expect(RequestLineHandler.decodedBytes(.string(String(repeating: "a", count: 1000))) >= 1000)
    }

    @Test("answers written by the event loop count against the server-wide bound on unwritten answers: a client that reads nothing holds its own, and past the bound lone reads are refused overloaded, its own and the next client's, sooner for the next, until it reads")
    func eventLoopAnswersCountAsUnwritten() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumUnwrittenAnswerBytes = 16 << 10
        limits.socketSendBufferBytes = 4096
        let server = try await fixture.startServer(limits: limits)
        let start = server.readsAnsweredOnEventLoop
        // Lone reads while the server is idle are answered on the event loop, one after the other as the lines are
        // read: 200 checkpoints, about 33 KiB of answers, more than the bound and what the small socket buffers take,
        // and less than the channel's own high watermark (64 KiB), so that uncounted they would all be answered there.
        let burstCount = 200
        let burst = Array((0..<burstCount).map {
            CanonicalJSON.encodeString(RPCMessage.request(id: .integer(Int64($0)), method: "checkpoint", params: [:])) + "\n"
        }.joined().utf8)
        /// Sends the burst on a new connection that reads nothing, and waits until the server's count of unwritten
        /// answers has not moved for 100 ms: the kernel's buffers towards the client have taken what they take (what
        /// they take leaves the count, so the count falls back from its peak; only waiting for it to settle, not for
        /// it to pass the bound, gives the same state on a quiet machine and a loaded one). Up to 30 s.
        func burstLeftUnread() async throws -> (client: LineClient, heldBytes: Int) {
            let client = try LineClient(server.tcpEndpoint, timeoutSeconds: 20, receiveBufferBytes: 2048)
            try client.send(bytes: burst)
            var unchangedPolls = 0
            var heldBytes = -1
            for _ in 0..<1500 where unchangedPolls < 5 {
                try await Task.sleep(for: .milliseconds(20))
                let unwrittenBytes = server.connectionStatistics.unwrittenAnswerBytes
                unchangedPolls = unwrittenBytes == heldBytes && server.requestsInFlight == 0 ? unchangedPolls + 1 : 0
                heldBytes = unwrittenBytes
            }
            return (client, heldBytes)
        }
        /// Reads the burst's answers: how many were answered and how many refused for the answers held.
        func readBurst(_ client: LineClient) throws -> (answered: Int, refused: Int) {
            var identifiers: Set<JSONValue> = []
            var answered = 0
            var refused = 0
            for _ in 0..<burstCount {
                let message = try #require(try client.nextMessage())
                identifiers.insert(message["id"] ?? .null)
                if message["result"] != nil {
                    answered += 1
                } else if message["error"]?["data"]?["code"] == "overloaded",
                    message["error"]?["message"]?.stringValue?.contains("answers its clients have not read yet") == true
                {
                    refused += 1
                } else {
                    Issue.record("an answer neither a result nor the refusal for unread answers: \(message)")
                }
            }
            #expect(identifiers == Set((0..<burstCount).map { JSONValue.integer(Int64($0)) }))
            return (answered, refused)
        }
        let first = try await burstLeftUnread()
        // Answers it leaves unread stay counted: what its socket could not take.
        #expect(first.heldBytes > 0)
        let second = try await burstLeftUnread()
        #expect(second.heldBytes >= first.heldBytes)
        let firstCounts = try readBurst(first.client)
        let secondCounts = try readBurst(second.client)
        // Each burst passed the bound: the lines read after that were refused, not answered on the loop.
        #expect(firstCounts.refused > 0 && secondCounts.refused > 0, "\(firstCounts) \(secondCounts)")
        // The first client's unread answers counted against the bound for the second's: fewer of its reads were
        // answered before the refusals began.
        #expect(secondCounts.answered < firstCounts.answered, "\(firstCounts) \(secondCounts)")
        #expect(server.readsAnsweredOnEventLoop == start + firstCounts.answered + secondCounts.answered)
        // Both have read: nothing is held (an answer is let go of once its write completes on the server, which may come
        // after the client has it), and a lone read is answered on the loop again.
        for _ in 0..<1500 where server.connectionStatistics.unwrittenAnswerBytes != 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.connectionStatistics.unwrittenAnswerBytes == 0)
        let other = try server.client(unix: true)
        #expect(try other.result("checkpoint")["size"] != nil)
        #expect(server.readsAnsweredOnEventLoop == start + firstCounts.answered + secondCounts.answered + 1)
        await server.shutdown()
    }

    @Test("a string id longer than 256 bytes is refused invalid_request under id null: every answer echoes its id, refusals too, which are written however many a client leaves unread")
    func longIDsAreRefused() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        func checkpoint(_ id: String) -> String {
            CanonicalJSON.encodeString(RPCMessage.request(id: .string(id), method: "checkpoint", params: [:])) + "\n"
        }
        let longest = String(repeating: "i", count: RPCRequest.maximumIDBytes)
        let kept = try #require(try client.exchange(checkpoint(longest)))
        #expect(kept["id"] == .string(longest) && kept["result"] != nil, "\(kept)")
        // Counted in UTF-8 bytes: 129 letters of two bytes are 258. Before, an id as long as a frame was echoed.
        for tooLong in [longest + "i", String(repeating: "é", count: 129), String(repeating: "i", count: 500_000)] {
            let refused = try #require(try client.exchange(checkpoint(tooLong)))
            #expect(refused["id"] == .null, "\(refused)")
            #expect(refused["error"]?["code"] == -32600)
            #expect(refused["error"]?["message"]?.stringValue?.contains("id must be at most 256 bytes") == true, "\(refused)")
        }
        await server.shutdown()
    }

    @Test("lines still arriving count against one server-wide bound: past it another client's growing line is dropped and answered overloaded, its connection stays usable, and the count goes back to 0 when the holder leaves")
    func unfinishedLineBytesBound() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumUnfinishedLineBytes = 64 << 10
        let server = try await fixture.startServer(limits: limits)
        func unfinishedLineBytes() -> Int { server.connectionStatistics.unfinishedLineBytes }
        // Alone, a line past the bound is still taken: it is all that is held.
        var holder: LineClient? = try server.client()
        let held = #"{"jsonrpc":"2.0","id":1,"method":"server.info","params":{"padding":""# + String(repeating: "p", count: 100_000)
        try holder?.send(bytes: Array(held.utf8))
        for _ in 0..<500 where unfinishedLineBytes() < 100_000 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(unfinishedLineBytes() >= 100_000, "\(unfinishedLineBytes())")
        let other = try server.client(unix: true)
        let statistics = try other.result("server.info")["connections"]
        #expect((statistics?["unfinished_line_bytes"]?.integerValue ?? 0) >= 100_000, "\(String(describing: statistics))")
        // Another client's line past 4096 bytes does not fit: dropped unread, answered once its newline comes.
        let line = CanonicalJSON.encodeString(RPCMessage.request(id: 2, method: "server.info", params: ["padding": .string(String(repeating: "q", count: 10_000))])) + "\n"
        let refused = try #require(try other.exchange(line))
        #expect(refused["id"] == .null, "\(refused)")
        #expect(refused["error"]?["data"]?["code"] == "overloaded")
        #expect(refused["error"]?["message"]?.stringValue?.contains("lines still arriving") == true, "\(refused)")
        // Short lines are always taken, and the connection stays usable.
        #expect(try other.result("checkpoint")["size"] != nil)
        // The holder finishes its line: it is read (server.info takes no params) and nothing is held.
        try holder?.send(bytes: Array(#""}}"#.utf8) + [0x0A])
        #expect(try holder?.nextMessage()?["error"]?["data"]?["code"] == "invalid_params")
        #expect(unfinishedLineBytes() == 0)
        // Held again, then the holder leaves without its newline: its bytes are let go with its connection.
        try holder?.send(bytes: Array(held.utf8))
        for _ in 0..<500 where unfinishedLineBytes() < 100_000 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(unfinishedLineBytes() >= 100_000)
        holder = nil
        for _ in 0..<500 where unfinishedLineBytes() > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(unfinishedLineBytes() == 0)
        // The line refused before is taken now.
        #expect(try other.exchange(line)?["error"]?["data"]?["code"] == "invalid_params")
        await server.shutdown()
    }

    @Test("an answer waiting for a client that does not read is held once, as the bytes counted for it: its slices are views of one buffer, not copies")
    func answerSlicesShareOneCopy() {
        let line = (0..<(3 * Connection.writeSliceBytes + 10)).map { UInt8(truncatingIfNeeded: $0) }
        let buffers = Connection.outboundBuffers(line)
        #expect(buffers.count == 4)
        #expect(Array(buffers.map { Array($0.readableBytesView) }.joined()) == line)
        // Views of one copy: each slice's bytes start where the one before it ends.
        let starts = buffers.map { buffer in buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } }
        #expect(starts.indices.allSatisfy { starts[$0] == starts[0] + UInt($0 * Connection.writeSliceBytes) }, "\(starts)")
        #expect(Connection.outboundBuffers(Array(line.prefix(100))).map(\.readableBytes) == [100])
    }

    @Test("server.info counts the live subscriptions over all connections and the nonces remembered now, forgetting those expired before it counts")
    func serverInfoCountsSubscriptionsAndNonces() async throws {
        let fixture = try CircuitFixture()
        // Both clocks are the test's, so that the nonces' 600 s pass at once: the wall clock signed reads' `ts` are
        // checked against, and the monotonic one their lifetime is also measured by.
        let wall = Locked<Int64>(fixture.now)
        let monotonic = Locked<Int64>(1_000_000)
        let server = try await fixture.startServer(readClockMilliseconds: { wall.withLock { $0 } }, monotonicMilliseconds: { monotonic.withLock { $0 } })
        let client = try server.client()
        func counts() throws -> (subscriptions: Int64?, nonces: Int64?) {
            let info = try client.result("server.info")
            return (info["connections"]?["subscriptions"]?.integerValue, info["reads"]?["remembered_nonces"]?.integerValue)
        }
        /// Waits (bounded) until server.info counts `subscriptions` live: a stream's end reaches the count after its
        /// client sees it.
        func settle(subscriptions: Int64) async throws -> Int64? {
            var counted = try counts().subscriptions
            for _ in 0..<1500 where counted != subscriptions {
                try await Task.sleep(for: .milliseconds(20))
                counted = try counts().subscriptions
            }
            return counted
        }
        // Its keys (Specs/protocol.md 5.15), all there and no other.
        let info = try client.result("server.info")
        #expect(info.objectValue.map { Set($0.keys) } == ["protocol", "origin", "verifier_key", "size", "methods", "limits", "writer", "connections", "reads", "memory"])
        #expect(info["reads"]?.objectValue.map { Set($0.keys) } == ["remembered_nonces"])
        #expect(info["memory"]?.objectValue.map { Set($0.keys) } == [
            "resident_anonymous_bytes", "resident_unused_bytes", "allocator_trims", "allocator_returned_bytes", "last_trim_microseconds",
        ])
        // This process's own memory: resident, and more of it than the allocator's unused part.
        let resident = try #require(info["memory"]?["resident_anonymous_bytes"]?.integerValue)
        let unused = try #require(info["memory"]?["resident_unused_bytes"]?.integerValue)
        #expect(resident > 0 && unused >= 0 && unused < resident, "\(resident) \(unused)")
        #expect(info["connections"]?.objectValue.map { Set($0.keys) } == [
            "open", "requests_in_flight", "reads_answered_on_event_loop", "writes_taken_on_event_loop", "closed_idle", "closed_unread",
            "unwritten_answer_bytes", "in_flight_request_bytes", "unfinished_line_bytes", "subscriptions_ended_by_half_close",
            "subscriptions",
        ])
        #expect(try counts() == (0, 0))

        // A signed subscribe: one live subscription, one nonce.
        let subscriber = try server.client()
        _ = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(Int64(try server.size()))], at: wall.withLock { $0 }))
        #expect(try await settle(subscriptions: 1) == 1)
        #expect(try counts().nonces == 1)
        // One more signed read: two nonces. Its end (the client half-closes) ends the subscription.
        _ = try subscriber.result("account.balance", fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"], at: wall.withLock { $0 }))
        #expect(try counts().nonces == 2)
        subscriber.shutdownSending()
        #expect(try await settle(subscriptions: 0) == 0)

        // Twice the window by the monotonic clock only: the wall clock, set back meanwhile, has not passed their
        // expiry, so they are still remembered.
        monotonic.withLock { $0 += 601_000 }
        #expect(try counts().nonces == 2)
        // By both clocks: forgotten, with no signed read since to forget them.
        wall.withLock { $0 += 601_000 }
        #expect(try counts().nonces == 0)
        #expect(try counts() == (0, 0))
        await server.shutdown()
    }

    @Test("the connection bound: a connection past it is told overloaded and closed, the others keep working")
    func connectionBound() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumConnections = 2
        let server = try await fixture.startServer(limits: limits)
        let first = try server.client()
        let second = try server.client(unix: true)
        _ = try first.result("server.info")
        _ = try second.result("server.info")
        let third = try server.client()
        let refusal = try #require(try third.nextMessage())
        #expect(refusal["error"]?["data"]?["code"] == "overloaded")
        #expect(try third.nextMessage() == nil)
        #expect(try first.result("server.info")["size"] != nil)

        // A connection past the bound that sends a short read and a write at once: both are dropped unread, neither
        // answered, counted in flight nor written (the read first, since a read that finds the server idle would
        // otherwise be answered on the event loop). The refusal line may be lost to a reset when the server closes with lines still
        // unread, so either it or the end is read.
        let sizeBefore = try #require(try first.result("server.info")["size"]?.integerValue)
        let fourth = try server.client()
        let write = RPCMessage.request(id: 1, method: "submit", params: try fixture.registration().params)
        let read = RPCMessage.request(id: 2, method: "server.info", params: [:])
        try? fourth.send(bytes: Array((CanonicalJSON.encodeString(read) + "\n" + CanonicalJSON.encodeString(write) + "\n").utf8))
        var answers: [JSONValue] = []
        for _ in 0..<4 {
            guard let message = try? fourth.nextMessage() else { break }
            answers.append(message)
        }
        #expect(answers.count <= 1)
        #expect(answers.allSatisfy { $0["error"]?["data"]?["code"] == "overloaded" && $0["id"] == .null })
        for _ in 0..<500 where server.requestsInFlight != 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.requestsInFlight == 0)
        let info = try first.result("server.info")
        #expect(info["size"]?.integerValue == sizeBefore)
        // The refused connections were never counted as open.
        #expect(info["connections"]?["open"]?.integerValue == 2)
        await server.shutdown()
    }

    /// (method, params, reader) → allowed, for every role and relationship (Specs/protocol.md, "Who may read what").
    @Test("the read permission matrix, cell by cell")
    func readMatrix() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let everyone = ["city", "audit", "casa", "anna", "other-org", "otto", "bene-1", "bene-2", "shop", "shop-2"]
        let beneficiaryReaders: Set = ["city", "audit", "casa", "anna", "bene-1"]
        let logReaders: Set = ["city", "audit"]
        let cells: [(method: String, params: JSONValue, allowed: Set<String>)] = [
            ("account.balance", ["account": "beneficiary:bene-1"], beneficiaryReaders),
            ("account.history", ["account": "beneficiary:bene-1"], beneficiaryReaders),
            ("account.balance", ["account": "merchant:shop"], ["city", "audit", "shop"]),
            ("account.history", ["account": "merchant:shop"], ["city", "audit", "shop"]),
            ("account.balance", ["account": "fund"], logReaders),
            ("account.history", ["account": "issuance"], logReaders),
            ("account.balance", ["account": "settlement"], logReaders),
            ("case.history", ["beneficiary": "bene-1"], beneficiaryReaders),
            ("case.history", ["beneficiary": "bene-2"], ["city", "audit", "bene-2"]),
            ("actor.get", ["actor": "bene-1"], beneficiaryReaders),
            ("events", ["from": 0, "limit": 2], logReaders),
            ("report", [:], logReaders),
        ]
        for cell in cells {
            for reader in everyone {
                let outcome = try client.call(cell.method, fixture.read(cell.method, as: reader, cell.params))
                switch outcome {
                case .success:
                    #expect(cell.allowed.contains(reader), "\(reader) read \(cell.method) \(CanonicalJSON.encodeString(cell.params)) but may not")
                case .failure(let error):
                    #expect(!cell.allowed.contains(reader), "\(reader) was refused \(cell.method) \(CanonicalJSON.encodeString(cell.params)): \(error)")
                    if !cell.allowed.contains(reader) { #expect(error.name == "not_authorised", "\(reader) \(cell.method): \(error)") }
                }
            }
        }
        // subscribe: the log's readers only (each on its own connection, since it streams).
        for reader in everyone {
            let subscriber = try server.client(unix: true)
            let outcome = try subscriber.call("subscribe", fixture.read("subscribe", as: reader, ["from": 0]))
            if case .success = outcome { #expect(logReaders.contains(reader), "\(reader) subscribed") } else { #expect(!logReaders.contains(reader), "\(reader) refused") }
        }
        // Public: actor records of non-beneficiaries, badges, the catalogue, checkpoints and proofs, unsigned.
        #expect(try client.result("actor.get", ["actor": "shop"])["role"] == "merchant")
        #expect(try client.error("actor.get", ["actor": "bene-1"]).name == "not_authorised")
        #expect(try client.result("badge.get", ["badge": "badge-1"])["badge"]?["beneficiary"] == "bene-1")
        #expect(try client.result("catalogue.search", ["kind": "opportunity"])["entries"]?.arrayValue?.count == 1)
        #expect(try client.result("checkpoint")["checkpoint"] != nil)
        #expect(try client.result("proof.consistency", ["from": 1])["hashes"] != nil)
        // A case that is closed no longer opens its beneficiary's data to the holder's staff.
        let closing = try fixture.signed("case.closed", by: "anna", fixture.actors.staff, ["case": "case-1", "outcome": "completed"])
        _ = try client.result("submit", closing.params)
        #expect(try client.error("case.history", fixture.read("case.history", as: "anna", ["beneficiary": "bene-1"])).name == "not_authorised")
        #expect(try client.error("account.balance", fixture.read("account.balance", as: "casa", ["account": "beneficiary:bene-1"])).name == "not_authorised")
        _ = try client.result("case.history", fixture.read("case.history", as: "bene-1", ["beneficiary": "bene-1"]))
        await server.shutdown()
    }

    @Test("a server address: HOST:PORT is TCP; unix:PATH, a path with a slash, or a name without a colon is a Unix socket")
    func endpointParsing() throws {
        #expect(try Endpoint(parsing: "127.0.0.1:7411") == .tcp(host: "127.0.0.1", port: 7411))
        #expect(try Endpoint(parsing: "[::1]:7411") == .tcp(host: "::1", port: 7411))
        #expect(try Endpoint(parsing: "rel.sock") == .unix(path: "rel.sock"))
        #expect(try Endpoint(parsing: "./rel.sock") == .unix(path: "./rel.sock"))
        #expect(try Endpoint(parsing: "unix:a:b.sock") == .unix(path: "a:b.sock"))
        #expect(try Endpoint(parsing: "127.0.0.1:65535") == .tcp(host: "127.0.0.1", port: 65535))
        for text in ["", "unix:", "host:port", "127.0.0.1:99999", "127.0.0.1:65536", "localhost:", "7411"] {
            #expect(throws: LedgerError.self, "\(text)") { try Endpoint(parsing: text) }
        }
    }

    @Test("a case an organisation gives itself is no standing over a registered person; staff of a suspended organisation read nothing")
    func readStandingComesFromThePersonsOrganisation() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let actors = fixture.actors
        func referral(_ caseID: String, _ beneficiary: String, to holder: String) -> JSONObject {
            ["case": .string(caseID), "beneficiary": .string(beneficiary), "household": "hh-9", "to": .string(holder),
             "sealed": SealedData.seal(["name": "x"], subject: beneficiary, key: SecretBox.newKey())]
        }
        // bene-1 belongs to casa: another organisation cannot refer them to itself.
        let selfReferral = try fixture.signed("case.referred", by: "otto", actors.otherStaff, referral("c-self", "bene-1", to: "other-org"))
        #expect(try client.error("submit", selfReferral.params).name == "role_not_permitted")
        // Someone not registered yet: a referral the other organisation gives itself lets it read nothing of them; one
        // casa made to it does. The authority reads them (not `not_found`: the ledger knows them by their case).
        _ = try client.result("submit", try fixture.signed("case.referred", by: "otto", actors.otherStaff, referral("c-early", "bene-3", to: "other-org")).params)
        #expect(try client.error("case.history", fixture.read("case.history", as: "otto", ["beneficiary": "bene-3"])).name == "not_authorised")
        _ = try client.result("submit", try fixture.signed("case.referred", by: "anna", actors.staff, referral("c-sent", "bene-4", to: "other-org")).params)
        _ = try client.result("case.history", fixture.read("case.history", as: "otto", ["beneficiary": "bene-4"]))
        _ = try client.result("case.history", fixture.read("case.history", as: "city", ["beneficiary": "bene-3"]))
        #expect(try client.error("case.history", fixture.read("case.history", as: "city", ["beneficiary": "nobody"])).name == "not_found")
        // An id the authority erased before anyone registered or referred it: its history is that erasure, as offline
        // `circuito case` prints it.
        _ = try client.result("submit", try fixture.signed("subject.erased", by: "city", actors.authority, ["beneficiary": "erased-early"]).params)
        let erasedHistory = try client.result("case.history", fixture.read("case.history", as: "city", ["beneficiary": "erased-early"]))
        #expect(erasedHistory["records"]?.arrayValue?.compactMap { $0["event"]?["type"]?.stringValue } == ["subject.erased"])
        // The early case reserved bene-3 for the other organisation: casa does not register them as its own.
        let registration: JSONObject = [
            "actor": "bene-3", "role": "beneficiary", "name": "bene-3", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]), "organisation": "casa",
        ]
        #expect(try client.error("submit", try fixture.signed("actor.registered", by: "anna", actors.staff, registration).params).name == "not_case_holder")
        // Once the authority registers bene-3 as casa's, the early case still gives nothing.
        _ = try client.result("submit", try fixture.signed("actor.registered", by: "city", actors.authority, registration).params)
        #expect(try client.error("case.history", fixture.read("case.history", as: "otto", ["beneficiary": "bene-3"])).name == "not_authorised")
        #expect(try client.error("account.balance", fixture.read("account.balance", as: "otto", ["account": "beneficiary:bene-3"])).name == "not_authorised")
        // A case casa refers onward is standing: the other organisation's staff read bene-2 ...
        _ = try client.result("submit", try fixture.signed("case.referred", by: "anna", actors.staff, referral("c-onward", "bene-2", to: "other-org")).params)
        _ = try client.result("case.history", fixture.read("case.history", as: "otto", ["beneficiary": "bene-2"]))
        // ... until their organisation is suspended.
        _ = try client.result("submit", try fixture.signed("actor.suspended", by: "city", actors.authority, ["actor": "other-org", "reason": "closed"]).params)
        #expect(try client.error("case.history", fixture.read("case.history", as: "otto", ["beneficiary": "bene-2"])).name == "actor_suspended")
        await server.shutdown()
    }

    /// Which connections the idle timeout closes, and when, to the tenth of a second, is checked on a clock the test
    /// moves (RequestLineHandlerTests.idleTimeoutOnTheEventLoopsClock). Here it is the server's own, on sockets, with
    /// no pace for the test to keep: a client that had to send every 0.1 s to stay open was closed whenever the test
    /// thread stalled for 2 s.
    @Test("over a socket, a connection that sends nothing for the idle timeout is closed, and a subscriber that sends nothing is not")
    func idleConnectionsAreClosed() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.idleTimeoutSeconds = 2
        let server = try await fixture.startServer(limits: limits)
        // Silent from before the other connection opens: its idle timeout runs out first.
        let subscriber = try server.client(unix: true, timeoutSeconds: 60)
        _ = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": .integer(Int64(try server.size()))]))
        // A minute to close it before the read's timeout calls it a hang.
        let silent = try server.client(timeoutSeconds: 60)
        // Bytes without a newline are not a line: they do not keep a connection open.
        let halfLine = try server.client(timeoutSeconds: 60)
        try halfLine.send(bytes: Array(#"{"jsonrpc":"2.0","id":1,"method":"serv"#.utf8))
        #expect(try silent.nextMessage() == nil, "the silent connection is still open")
        #expect(try halfLine.nextMessage() == nil, "the half line's connection is still open")
        // The subscriber sent nothing after subscribing and is still open, and still gets the live records.
        let info = try subscriber.result("server.info")
        #expect(info["connections"]?["closed_idle"]?.integerValue ?? 0 >= 2)
        #expect(info["limits"]?["idle_timeout_seconds"] == 2)
        _ = try subscriber.result("submit", try fixture.registration().params)
        var received = false
        while let message = try subscriber.nextMessage() {
            if message["method"] == "subscription.record" {
                received = true
                break
            }
        }
        #expect(received, "the subscriber was closed")
        await server.shutdown()
    }

    /// The authority and auditors may read any id, so a mistyped one must say so instead of reading as an empty
    /// account or history; every other reader is refused first and learns nothing about which ids exist.
    @Test("an id the ledger has not registered with that role is not_found for the authority and auditors, not_authorised for the others")
    func unregisteredSubjectsAreNotFound() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let cells: [(method: String, params: JSONValue)] = [
            ("account.balance", ["account": "beneficiary:bene-nobody"]),
            ("account.history", ["account": "beneficiary:bene-nobody"]),
            ("case.history", ["beneficiary": "bene-nobody"]),
            ("account.balance", ["account": "merchant:shop-nobody"]),
            ("account.history", ["account": "merchant:shop-nobody"]),
            // Registered, but with another role.
            ("account.balance", ["account": "beneficiary:shop"]),
            ("case.history", ["beneficiary": "anna"]),
            ("account.history", ["account": "merchant:bene-1"]),
        ]
        for cell in cells {
            for reader in ["city", "audit"] {
                let error = try client.error(cell.method, fixture.read(cell.method, as: reader, cell.params))
                #expect(error.name == "not_found", "\(reader) \(cell.method) \(CanonicalJSON.encodeString(cell.params)): \(error)")
            }
            for reader in ["casa", "anna", "bene-1", "shop"] {
                let error = try client.error(cell.method, fixture.read(cell.method, as: reader, cell.params))
                #expect(error.name == "not_authorised", "\(reader) \(cell.method) \(CanonicalJSON.encodeString(cell.params)): \(error)")
            }
        }
        // Registered ids with nothing on them yet still read as empty: a new merchant's account is 0.
        #expect(try client.result("account.balance", fixture.read("account.balance", as: "audit", ["account": "merchant:shop-2"]))["balance"] == 0)
        #expect(try client.result("case.history", fixture.read("case.history", as: "city", ["beneficiary": "bene-2"]))["records"]?.arrayValue?.isEmpty == false)
        await server.shutdown()
    }

    @Test("a balance says how much of it is in lots past their expiry, which no payment can spend")
    func expiredPartOfABalance() async throws {
        let fixture = try CircuitFixture(initialBalance: 500)
        // The fixture's policy keeps a lot 365 days; reads are answered 366 days on.
        let later = fixture.now + 366 * 86_400_000
        let server = try await fixture.startServer(readClockMilliseconds: { later })
        let client = try server.client()
        let balance = try client.result("account.balance", fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"], at: later))
        #expect(balance["balance"] == 500)
        #expect(balance["expired"] == 500)
        // Merchants' and the programme's accounts hold no lots.
        let shop = try client.result("account.balance", fixture.read("account.balance", as: "shop", ["account": "merchant:shop"], at: later))
        #expect(shop["expired"] == nil && shop["lots"] == nil)
        await server.shutdown()
    }

    @Test("with the clock behind the ledger's last recorded_at, a balance counts as expired what a payment made now could not spend")
    func expiredPartOfABalanceAtTheLedgersTime() async throws {
        let fixture = try CircuitFixture(initialBalance: 500)
        // A commit made while the clock ran 366 days ahead: every later record carries that time (Specs/ledger.md 5.3),
        // and the fixture's lots, kept 365 days, have expired by it.
        let ahead = fixture.now + 366 * 86_400_000
        do {
            let ledger = try Ledger.open(directory: fixture.directory, clock: { ahead })
            _ = try ledger.append([try fixture.registration().verified()])
        }
        let server = try await fixture.startServer()
        let client = try server.client()
        let balance = try client.result("account.balance", fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"]))
        #expect(balance["balance"] == 500)
        #expect(balance["expired"] == 500)
        await server.shutdown()
    }

    @Test("reads: balances with lots, histories and case records in pages, catalogue search, proofs that verify")
    func reads() async throws {
        let fixture = try CircuitFixture(initialBalance: 500)
        let server = try await fixture.startServer()
        let client = try server.client()
        for _ in 0..<3 { _ = try client.result("submit", try fixture.payment(amount: 50).params) }
        let balance = try client.result("account.balance", fixture.read("account.balance", as: "bene-1", ["account": "beneficiary:bene-1"]))
        #expect(balance["balance"] == 350)
        #expect(balance["lots"]?.arrayValue?.first?["remaining"] == 350)
        #expect(balance["expired"] == 0)
        // History in pages of 2: the grant, then three payments.
        var entries: [JSONValue] = []
        var after: JSONValue = .null
        for _ in 0..<5 {
            var params: JSONObject = ["account": "beneficiary:bene-1", "limit": 2]
            if after != .null { params["after"] = after }
            let page = try client.result("account.history", fixture.read("account.history", as: "bene-1", .object(params)))
            entries += page["entries"]?.arrayValue ?? []
            after = page["next_after"] ?? .null
            if after == .null { break }
        }
        #expect(entries.map { $0["amount"] } == [500, -50, -50, -50])
        // A null cursor (what the last page gives as next_after) asks for the first page.
        let fromNull = try client.result("account.history", fixture.read("account.history", as: "bene-1", ["account": "beneficiary:bene-1", "limit": 2, "after": .null]))
        #expect(fromNull["entries"]?.arrayValue?.map { $0["amount"] } == [500, -50])
        // The same for every paged read whose cursor is text: a null `after` is the first page, not a bad cursor.
        let catalogueFromNull = try client.result("catalogue.search", ["kind": "opportunity", "after": .null])
        #expect(catalogueFromNull == (try client.result("catalogue.search", ["kind": "opportunity"])))
        let casesFromNull = try client.result("case.list", fixture.read("case.list", as: "audit", ["holder": "casa", "after": .null]))
        #expect(casesFromNull["cases"]?.arrayValue?.isEmpty == false)
        #expect(casesFromNull == (try client.result("case.list", fixture.read("case.list", as: "audit", ["holder": "casa"]))))
        let lotsFromNull = try client.result("lots.expired", fixture.read("lots.expired", as: "audit", ["after": .null]))
        #expect(lotsFromNull["lots"] == (try client.result("lots.expired", fixture.read("lots.expired", as: "audit", [:])))["lots"])
        // Not a string, still refused.
        let numberCursor = try client.error("case.list", fixture.read("case.list", as: "audit", ["holder": "casa", "after": 3]))
        #expect(numberCursor.message == "case.list parameter \"after\" must be a string (the next_after of the page before)", "\(numberCursor)")
        #expect(entries.map { $0["type"] } == ["dote.granted", "payment.redeemed", "payment.redeemed", "payment.redeemed"])
        let cases = try client.result("case.history", fixture.read("case.history", as: "anna", ["beneficiary": "bene-1", "limit": 100]))
        let types = cases["records"]?.arrayValue?.compactMap { $0["event"]?["type"]?.stringValue } ?? []
        #expect(types.prefix(3) == ["actor.registered", "case.referred", "case.opened"])
        #expect(types.contains("badge.issued"))
        // Catalogue: by facet, by words, both, and nothing for a word that is not there.
        #expect(try client.result("catalogue.search", ["kind": "opportunity", "district": "san-salvario"])["entries"]?.arrayValue?.count == 1)
        #expect(try client.result("catalogue.search", ["kind": "opportunity", "text": "garden courtyard"])["entries"]?.arrayValue?.first?["opportunity"] == "opp-garden")
        #expect(try client.result("catalogue.search", ["kind": "opportunity", "category": "civic_utility", "text": "garden"])["entries"]?.arrayValue?.count == 1)
        #expect(try client.result("catalogue.search", ["kind": "opportunity", "text": "swimming"])["entries"]?.arrayValue?.isEmpty == true)
        #expect(try client.result("catalogue.search", ["kind": "merchant", "category": "food"])["entries"]?.arrayValue?.first?["merchant"] == "shop")
        #expect(try client.result("catalogue.search", ["kind": "badge_class", "text": "gardener"])["entries"]?.arrayValue?.count == 1)
        #expect(try client.result("catalogue.search", ["kind": "badge_class", "provider": "casa"])["entries"]?.arrayValue?.count == 1)
        // Filters that could never apply are refused, not ignored: a facet the kind's entries lack, a text without a
        // word the index holds (ignored, it would list every entry).
        for (params, wanted) in [
            (["kind": "merchant", "provider": "casa"], "cannot filter by provider"),
            (["kind": "badge_class", "district": "san-salvario"], "cannot filter by district"),
            (["kind": "badge_class", "category": "food"], "cannot filter by category"),
            (["kind": "opportunity", "text": "a b"], "no word of at least 3"),
            (["kind": "opportunity", "text": "!!"], "no word of at least 3"),
            (["kind": "opportunity", "text": .string("garden " + String(repeating: "x", count: 65))], "a word of 65 bytes"),
            (["kind": "opportunity", "text": "one two three four five six seven eight garden"], "9 different words"),
        ] as [(JSONValue, String)] {
            let refused = try client.error("catalogue.search", params)
            #expect(refused.name == "invalid_params" && refused.message.contains(wanted), "\(params): \(refused)")
        }
        #expect(try client.result("catalogue.search", ["kind": "opportunity", "text": ""])["entries"]?.arrayValue?.count == 1)
        // Eight words, repeats counted once, and digits are letters here.
        #expect(try client.result("catalogue.search", ["kind": "opportunity", "text": "garden garden GARDEN"])["entries"]?.arrayValue?.count == 1)
        #expect(try client.result("catalogue.search", ["kind": "opportunity", "text": "garden 123"])["entries"]?.arrayValue?.isEmpty == true)
        #expect(try client.error("catalogue.search", ["kind": "people"]).code == -32602)
        // A page's limit runs from 1 to the bound, both included.
        #expect(try client.error("catalogue.search", ["kind": "opportunity", "limit": 0]).code == -32602)
        let largestPage = Int64(LedgerQueryLimits.maximumPageEntries)
        #expect(try client.result("catalogue.search", ["kind": "opportunity", "limit": .integer(largestPage)])["entries"]?.arrayValue?.count == 1)
        #expect(try client.error("catalogue.search", ["kind": "opportunity", "limit": .integer(largestPage + 1)]).code == -32602)
        // Events in pages, exactly the records.
        let events = try client.result("events", fixture.read("events", as: "audit", ["from": 0, "limit": 3]))
        #expect(events["records"]?.arrayValue?.map { $0["seq"] } == [0, 1, 2])
        #expect(events["next"] == 3)
        // The end of the log is an empty page; past it, a mistake (as for subscribe).
        let logSize = try #require(events["size"]?.integerValue)
        let atEnd = try client.result("events", fixture.read("events", as: "audit", ["from": .integer(logSize)]))
        #expect(atEnd["records"]?.arrayValue?.isEmpty == true && atEnd["next"] == .integer(logSize))
        #expect(try client.error("events", fixture.read("events", as: "audit", ["from": .integer(logSize + 1)])).name == "invalid_range")
        // Checkpoint and proofs verify with the verifier key the server announces.
        let info = try client.result("server.info")
        #expect(info["verifier_key"]?.stringValue == server.verifierKey)
        let size = try #require(info["size"]?.integerValue)
        let checkpoint = try client.result("checkpoint")
        #expect(checkpoint["size"] == .integer(size))
        let verifier = try NoteVerifier(parsing: server.verifierKey)
        let tree = try Checkpoint(parsing: try SignedNote.open(try #require(checkpoint["checkpoint"]?.stringValue), verifier: verifier))
        let earlier = try client.result("checkpoint", ["covering": 3])
        let earlierTree = try Checkpoint(parsing: try SignedNote.open(try #require(earlier["checkpoint"]?.stringValue), verifier: verifier))
        let consistency = try client.result("proof.consistency", ["from": .integer(Int64(earlierTree.size)), "to": .integer(size)])
        let hashes = (consistency["hashes"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(Base64.decode) }
        #expect(MerkleProofs.verifyConsistency(firstSize: earlierTree.size, secondSize: tree.size, firstRoot: earlierTree.rootHash, secondRoot: tree.rootHash, proof: hashes))
        let inclusion = try client.result("proof.inclusion", ["seq": 5])
        let leafHash = try #require(inclusion["leaf_hash"]?.stringValue.flatMap(Base64.decode))
        let path = (inclusion["hashes"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(Base64.decode) }
        #expect(MerkleProofs.verifyInclusion(leafHash: leafHash, leafIndex: 5, treeSize: tree.size, proof: path, root: tree.rootHash))
        #expect(try client.error("proof.inclusion", ["seq": .integer(size)]).name == "invalid_range")
        #expect(try client.error("badge.get", ["badge": "nope"]).name == "not_found")
        let report = try client.result("report", fixture.read("report", as: "audit", [:]))
        #expect(report["accounts"]?["fund"] == .integer(10_000_000 - 500))
        await server.shutdown()
    }
}
