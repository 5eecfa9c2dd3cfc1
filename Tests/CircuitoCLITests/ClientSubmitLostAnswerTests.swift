import CircuitoCore
import CircuitoServer
import CircuitoStorage
import CircuitoTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// A till's `circuito client submit` whose connection breaks after the event went out cannot know whether the
/// ledger recorded it. The same signed event sent again is answered with its first receipt (Specs/protocol.md 5.1),
/// but an event the client signed itself gets a random id: run again, it is another event, applied twice.
@Suite("client submit when the answer is lost")
struct ClientSubmitLostAnswerTests {
    /// A server that reads one request line, keeps it, and closes the connection without answering (or after
    /// sending `reply`, which is no answer either: a line that is not JSON, say).
    final class UnansweringServer: @unchecked Sendable {
        let port: Int
        private let listener: Int32
        private let thread: Thread

        init(reply: [UInt8] = []) throws {
            let (descriptor, port) = try loopbackListener(backlog: 4)
            listener = descriptor
            self.port = port
            let box = Box()
            self.box = box
            thread = Thread {
                let connection = accept(descriptor, nil, nil)
                guard connection >= 0 else { return }
                var taken: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 65536)
                while !taken.contains(0x0A) {
                    let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                    guard count > 0 else { break }
                    taken += chunk[0..<count]
                }
                box.set(taken.split(separator: 0x0A, omittingEmptySubsequences: false).first.map(Array.init))
                _ = reply.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(connection)
            }
            thread.start()
        }

        private let box: Box
        final class Box: @unchecked Sendable {
            private let lock = NSLock()
            private var value: [UInt8]?
            func set(_ line: [UInt8]?) { lock.withLock { value = line } }
            var line: [UInt8]? { lock.withLock { value } }
        }

        /// The request line it read.
        var request: [UInt8]? { box.line }

        deinit { close(listener) }
    }

    @Test("the refusal of an event whose answer was lost is connection_failed and carries the signed event exactly as sent, to be sent again")
    func lostAnswerGivesTheSignedEvent() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let key = workspace.path("till.key")
        #expect(try await circuito("keygen", "--out", key).status == 0)
        let server = try UnansweringServer()
        let unsigned = #"{"type":"program.funded","body":{"amount":500,"reference":"till 3"}}"#
        let run = try await circuito(
            ["client", "submit", "--server", "127.0.0.1:\(server.port)", "--key", key, "--actor", "city"], stdin: unsigned + "\n")
        #expect(run.status == 1)
        #expect(run.stderr.contains("error: connection_failed"), "\(run.stderr)")
        let request = try #require(server.request, "the server read no request")
        let sent = try #require(try JSONParser.parse(request)["params"])
        let lines = run.completeLines
        #expect(lines.count == 1, "\(run.stdout)")
        let refusal = try JSONParser.parse(Array(try #require(lines.first).utf8))
        #expect(refusal["line"] == 1)
        #expect(refusal["error"]?["code"] == .integer(6009))
        #expect(refusal["error"]?["data"]?["code"] == "connection_failed")
        // Exactly the signed event that went out (its id, ts and signature): sent again, it is the same event.
        #expect(refusal["error"]?["data"]?["event"] == sent, "\(run.stdout)")
        #expect(sent["event"]?["body"] == (try JSONParser.parse(Array(unsigned.utf8)))["body"])
    }

    @Test("client submit --batch refuses an input of more events than any submit_batch takes once it shows, sending nothing, rather than reading on to the end of a pipe that stays open")
    func batchOfMoreEventsThanAnyServerTakesIsRefusedAtOnce() async throws {
        let server = try UnansweringServer()
        let child = try ChildProcess(["client", "submit", "--server", "127.0.0.1:\(server.port)", "--batch"], keepStdinOpen: true)
        // Signed lines go out as they are, so these need no key; the pipe stays open, as a producer's would.
        let signed = #"{"event":{},"sig":"x"}"# + "\n"
        child.writeToStdin(String(repeating: signed, count: Ledger.maximumBatchCount + 1))
        let run = await child.wait(timeout: 60)
        #expect(!run.timedOut, "client submit --batch read on, waiting for the end of its input")
        #expect(run.exitedNormally && run.status == 1, "\(run.status): \(run.stderr)")
        #expect(run.stderr.contains("error: too_large: --batch sends at most \(Ledger.maximumBatchCount) events"), "\(run.stderr)")
        #expect(run.stdout.isEmpty, "\(run.stdout)")
        #expect(server.request?.isEmpty ?? true, "a request went out")
    }

    @Test("an answer that is not JSON is no answer: the event's line is connection_failed with the signed event as sent, not invalid_json, a refusal of the input")
    func answerThatIsNotJSONGivesTheSignedEvent() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let key = workspace.path("till.key")
        #expect(try await circuito("keygen", "--out", key).status == 0)
        let server = try UnansweringServer(reply: Array("this is not json\n".utf8))
        let run = try await circuito(
            ["client", "submit", "--server", "127.0.0.1:\(server.port)", "--key", key, "--actor", "city"],
            stdin: #"{"type":"program.funded","body":{"amount":500,"reference":"till 3"}}"# + "\n")
        #expect(run.status == 1)
        #expect(run.stderr.hasPrefix("error: connection_failed: the server sent a line that is not JSON"), "\(run.stderr)")
        let request = try #require(server.request, "the server read no request")
        let sent = try #require(try JSONParser.parse(request)["params"])
        let refusal = try JSONParser.parse(Array(try #require(run.completeLines.first, "\(run.stdout)").utf8))
        // Before, data.code invalid_json (1001): a till acting on it took the event for refused, though the server
        // may have recorded it.
        #expect(refusal["error"]?["code"] == .integer(6009), "\(run.stdout)")
        #expect(refusal["error"]?["data"]?["code"] == "connection_failed", "\(run.stdout)")
        #expect(refusal["error"]?["data"]?["event"] == sent, "\(run.stdout)")
        // A read is answered the same way.
        let reader = try UnansweringServer(reply: Array("this is not json\n".utf8))
        let info = try await circuito("client", "info", "--server", "127.0.0.1:\(reader.port)")
        #expect(info.status == 1 && info.stdout.isEmpty, "\(info.status) \(info.stdout)")
        #expect(info.stderr.hasPrefix("error: connection_failed: the server sent a line that is not JSON"), "\(info.stderr)")
    }

    @Test("an event whose answer was lost, with standard output that cannot be written (a full disk), is given with its signed event on standard error")
    func lostAnswerWithFullOutputGivesTheSignedEventOnStandardError() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let key = workspace.path("till.key")
        #expect(try await circuito("keygen", "--out", key).status == 0)
        let server = try UnansweringServer()
        let input = try workspace.write("unsigned.jsonl", lines: [#"{"type":"program.funded","body":{"amount":500,"reference":"till 3"}}"#])
        let binary = try #require(CLI.binary)
        let line = "exec \"$0\" client submit --server \"$1\" --key \"$2\" --actor city \"$3\" > /dev/full"
        let run = try await runToCompletion(["-c", line, binary, "127.0.0.1:\(server.port)", key, input], executable: "/bin/sh")
        #expect(run.exitedNormally && run.status == 1, "\(run.status): \(run.stderr)")
        let request = try #require(server.request, "the server read no request")
        let sent = try #require(try JSONParser.parse(request)["params"])
        // Before, the line went to the full output alone: the signed event, the one way to learn whether it was
        // recorded, was lost.
        let prefix = "error: storage_error: cannot write the answer to line 1: No space left on device; it is: "
        let given = try #require(run.stderr.split(separator: "\n").first { $0.hasPrefix(prefix) }, "\(run.stderr)")
        let refusal = try JSONParser.parse(Array(given.dropFirst(prefix.count).utf8))
        #expect(refusal["line"] == 1)
        #expect(refusal["error"]?["data"]?["code"] == "connection_failed")
        #expect(refusal["error"]?["data"]?["event"] == sent, "\(given)")
    }

    /// The ledger served, and three unsigned events sent to it by `client submit` (with `options`) whose standard output
    /// is /dev/full, which refuses every write with ENOSPC, as a full disk does. Unsigned: the client signs each under
    /// a new random id, so the input sent again is recorded again, and the answers are the only record of those ids.
    /// The server is left running for the caller to stop.
    func submitWithFullOutput(_ ledger: TestLedger, options: [String]) async throws -> (run: CLIResult, server: ChildProcess, endpoint: String, events: String) {
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        guard let endpoint = await listeningEndpoint(of: server) else {
            kill(server.pid, SIGKILL)
            throw LedgerError(.storage, "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        }
        let events = try ledger.workspace.write("unsigned.jsonl", lines: (1...3).map { cap in
            #"{"type":"policy.updated","body":{"categories":["food"],"conversion_rate_cents_per_credit":100,"lot_validity_days":30,"monthly_conversion_cap_cents":\#(cap * 1000)}}"#
        })
        let binary = try #require(CLI.binary)
        let line = "exec \"$0\" client submit \(options.joined(separator: " ")) --server \"$1\" --key \"$2\" --actor authority \"$3\" > /dev/full"
        let run = try await runToCompletion(
            ["-c", line, binary, endpoint, ledger.workspace.path("authority.key"), events], executable: "/bin/sh")
        return (run, server, endpoint, events)
    }

    @Test("client submit whose answers cannot be written (a full disk) sends nothing after the first answer it could not print, and gives that answer on standard error")
    func answerThatCannotBeWrittenStopsTheSending() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        // Sending on after an answer that could not be printed records events whose receipts nobody sees.
        let (run, server, endpoint, events) = try await submitWithFullOutput(ledger, options: [])
        defer { kill(server.pid, SIGKILL) }
        #expect(run.exitedNormally && run.status == 1, "\(run.status): \(run.stderr)")
        #expect(
            run.stderr.contains("error: storage_error: cannot write the answer to line 1: No space left on device; it is: {\"checkpoint\":\"cli.test/ledger\\n2\\n"),
            "\(run.stderr)")
        #expect(run.stderr.contains("; nothing after it was sent\n"), "\(run.stderr)")
        #expect(run.stderr.hasSuffix("; what it printed is incomplete\n"), "\(run.stderr)")
        #expect(try await ledger.root().size == 2, "only line 1 was sent")
        // Written where it can be, the lines after it are sent and answered.
        let rest = try ledger.workspace.write("rest.jsonl", lines: Array(try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n").dropFirst().map(String.init)))
        let resumed = try await circuito("client", "submit", "--server", endpoint, "--key", ledger.workspace.path("authority.key"), "--actor", "authority", rest)
        #expect(resumed.succeeded && resumed.completeLines.count == 2, "\(resumed.stdout) \(resumed.stderr)")
        #expect(try await ledger.root().size == 4)
    }

    @Test("client submit --batch whose receipts cannot be written (a full disk) gives them on standard error")
    func batchReceiptsThatCannotBeWrittenAreGivenOnStandardError() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let (run, server, _, _) = try await submitWithFullOutput(ledger, options: ["--batch"])
        defer { kill(server.pid, SIGKILL) }
        #expect(run.exitedNormally && run.status == 1, "\(run.status): \(run.stderr)")
        #expect(try await ledger.root().size == 4, "the batch of three was recorded")
        let prefix = "error: storage_error: cannot write the batch's receipts: No space left on device; they are: "
        let given = try #require(run.stderr.split(separator: "\n").first { $0.hasPrefix(prefix) }, "\(run.stderr)")
        let receipts = try #require(try JSONParser.parse(Array(given.dropFirst(prefix.count).utf8)).arrayValue)
        #expect(receipts.map { $0["seq"] } == [.integer(1), .integer(2), .integer(3)], "\(given)")
    }

    @Test("client subscribe whose output cannot be written (a full disk) stops with storage_error, rather than reading on and dropping every record")
    func subscribeWhoseOutputFailsStops() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let binary = try #require(CLI.binary)
        let line = "exec \"$0\" client subscribe --server \"$1\" --key \"$2\" --actor authority > /dev/full"
        // Without --count it runs until stopped: a run that outlasts the wait read on with nowhere to put the records.
        let run = try await runToCompletion(
            ["-c", line, binary, endpoint, ledger.workspace.path("authority.key")], executable: "/bin/sh", timeout: 60)
        #expect(!run.timedOut, "subscribe went on after its output failed")
        #expect(run.exitedNormally && run.status == 1, "\(run.status): \(run.stderr)")
        #expect(run.stderr.hasPrefix("error: storage_error: cannot write the output: No space left on device"), "\(run.stderr)")
    }
}

extension ClientSubmitLostAnswerTests {
    /// A loopback listener whose first connection `serve` handles on a thread of its own, reading request lines and
    /// writing messages; the connection is then held open, sending nothing, until the client closes it.
    static func serveOneConnection(
        _ serve: @escaping @Sendable (_ readRequest: () -> JSONValue?, _ write: (JSONValue) -> Void) -> Void
    ) throws -> (listener: Int32, port: Int) {
        let (listener, port) = try loopbackListener(backlog: 4)
        Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var byte: UInt8 = 0
            serve({
                var line: [UInt8] = []
                while line.count < 1 << 16, read(connection, &byte, 1) == 1, byte != 0x0A { line.append(byte) }
                return try? JSONParser.parse(line)
            }, { message in
                let line = RPCMessage.line(message)
                _ = line.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            })
            while read(connection, &byte, 1) == 1 {}
        }.start()
        return (listener, port)
    }

    @Test("client subscribe --heartbeat-seconds stays with a quiet server that sends heartbeats and prints the record committed after 4 s of quiet")
    func subscribeWithHeartbeatsStaysWithAQuietServer() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let event = try ledger.workspace.write("unsigned.jsonl", lines: [
            #"{"type":"policy.updated","body":{"categories":["food"],"conversion_rate_cents_per_credit":100,"lot_validity_days":30,"monthly_conversion_cap_cents":1000}}"#
        ])
        let binary = try #require(CLI.binary)
        // The ledger holds its genesis (seq 0): from 1 the subscriber waits, more than three heartbeats, for the next.
        let script = """
            "$0" client subscribe --server "$1" --key "$2" --actor authority --from 1 --count 1 --heartbeat-seconds 1 &
            subscriber=$!
            sleep 4
            "$0" client submit --server "$1" --key "$2" --actor authority "$3" > /dev/null || exit 9
            wait $subscriber
            """
        let run = try await runToCompletion(["-c", script, binary, endpoint, ledger.workspace.path("authority.key"), event], executable: "/bin/sh", timeout: 60)
        #expect(run.exitedNormally && run.status == 0, "\(run.status): \(run.stderr)")
        let record = try JSONParser.parse(Array(run.stdout.utf8.dropLast()))
        #expect(record["seq"] == 1 && record["event"]?["type"] == "policy.updated", "\(run.stdout)")
    }

    @Test("client subscribe --heartbeat-seconds stops with connection_failed when the server answers and then sends nothing for three heartbeats")
    func subscribeLeavesASilentServer() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        // Answers the subscription (with the request's id) and then holds the connection open, sending nothing.
        let asked = Mutex<JSONValue?>(nil)
        let (listener, port) = try Self.serveOneConnection { readRequest, write in
            guard let request = readRequest() else { return }
            asked.withLock { $0 = request["params"]?["request"]?["params"] }
            write(["jsonrpc": "2.0", "id": request["id"] ?? .null, "result": ["from": 0, "size": 0, "subscription": "sub-1"]])
        }
        defer { close(listener) }
        // Started at once, not in a ChildProcessSlots slot: the bound below is on the command, and under the whole
        // suite the wait for a slot alone passed it. Its run time is the command's, as the thread waiting for it saw
        // its exit: timed by this task, which ran again only once the shared pool had a thread, it was 72 s once.
        let run = await (try ChildProcess([
            "client", "subscribe", "--server", "127.0.0.1:\(port)", "--key", ledger.workspace.path("authority.key"), "--actor", "authority",
            "--heartbeat-seconds", "1",
        ])).wait(timeout: 120)
        #expect(!run.timedOut && run.status == 1, "\(run.status): \(run.stderr)")
        #expect(run.stderr == "error: connection_failed: the server sent nothing for 3 s although asked for a heartbeat every 1 s\n", "\(run.stderr)")
        #expect(run.runTime < .seconds(20), "\(run.runTime)")
        #expect(asked.withLock { $0 } == ["from": 0, "heartbeat_seconds": 1])
    }
}

extension ClientSubmitLostAnswerTests {
    @Test("client subscribe --heartbeat-seconds subscribes again without it to a server that refuses the member (an older circuito), and its silence is then no reason to stop")
    func subscribeToAServerWithoutHeartbeats() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let asked = Mutex<[JSONValue]>([])
        let (listener, port) = try Self.serveOneConnection { readRequest, write in
            // The refusal an older server gives, then the answer, then a record after 4 s of silence.
            guard let first = readRequest() else { return }
            asked.withLock { $0.append(first["params"]?["request"]?["params"] ?? .null) }
            write(RPCMessage.error(id: first["id"] ?? .null, RPCError.invalidParams("subscribe has no parameter \"heartbeat_seconds\"")))
            guard let second = readRequest() else { return }
            asked.withLock { $0.append(second["params"]?["request"]?["params"] ?? .null) }
            write(["jsonrpc": "2.0", "id": second["id"] ?? .null, "result": ["from": 0, "size": 0, "subscription": "sub-1"]])
            sleep(4)
            write(RPCMessage.notification(method: "subscription.record", params: ["record": ["seq": 0], "subscription": "sub-1"]))
        }
        defer { close(listener) }
        let run = try await circuito(
            "client", "subscribe", "--server", "127.0.0.1:\(port)", "--key", ledger.workspace.path("authority.key"), "--actor", "authority",
            "--heartbeat-seconds", "1", "--count", "1")
        #expect(run.status == 0 && run.stdout == "{\"seq\":0}\n", "\(run.status): \(run.stdout) \(run.stderr)")
        #expect(run.stderr == "the server does not send heartbeats (an older circuito); subscribing without them\n", "\(run.stderr)")
        #expect(asked.withLock { $0 } == [["from": 0, "heartbeat_seconds": 1], ["from": 0]])
    }
}

@Suite("client connections that get no answer")
struct ConnectTimeoutTests {
    @Test("a connection the server never completes (its SYN dropped, as by a cut network or a full accept queue) fails with a message that says no answer came in time, not the system's 'Operation now in progress'")
    func connectTimeoutSaysSo() throws {
        // A listener that never accepts, with no room in its accept queue: the kernel drops later SYNs.
        let (listener, port) = try loopbackListener(backlog: 0)
        defer { close(listener) }
        let endpoint = Endpoint.tcp(host: "127.0.0.1", port: port)
        // Connections fill the queue until one cannot be made.
        var clients: [LineClient] = []
        var failure: LedgerError?
        for _ in 0..<4 where failure == nil {
            do throws(LedgerError) { clients.append(try LineClient(endpoint, timeoutSeconds: 1)) } catch { failure = error }
        }
        let error = try #require(failure, "every connection was made")
        #expect(error.code == .connectionFailed)
        #expect(error.message.contains("no answer within 1 s"), "\(error.message)")
        #expect(!error.message.contains("in progress"), "\(error.message)")
    }
}
