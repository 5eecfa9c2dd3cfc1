import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Foundation
import Glibc
import Testing

/// Tests that run `circuito serve`, `client` and `follow` as child processes, the way operators do.
///
/// On threads of their own (`OwnThreadsTrait`): a test here blocks a thread while its clients run, and its waits for a
/// server's line or exit counted the shared pool's queue (serve "did not start" in 60 s once, under load).
@Suite("Socket API: the circuito executable", .serialized, OwnThreadsTrait(), .timeLimit(.minutes(5)))
struct ProcessTests {
    @Test("kill -9 under load, then restart: every receipt a client got is in the log, verify passes, the server serves again")
    func killUnderLoad() async throws {
        let fixture = try CircuitFixture()
        let socket = fixture.folder.path + "/k.sock"
        let server = try Child(["serve", "--data", fixture.directory, "--listen", "none", "--unix", socket])
        guard await server.waitForLine(startingWith: "listening unix", timeoutSeconds: 60) != nil else {
            Issue.record("serve did not start: \(server.standardError)")
            return
        }
        let receipts = Collected<JSONValue>()
        let events = try (0..<4000).map { _ in try fixture.registration() }
        let clients = DispatchGroup()
        // The client thread that gets the 200th receipt kills the server itself: a running thread acts at once,
        // while the test thread might be scheduled late on a busy machine and find the load already over.
        let serverProcessIdentifier = server.process.processIdentifier
        for index in 0..<8 {
            clients.enter()
            Thread {
                defer { clients.leave() }
                guard let client = try? LineClient(.unix(path: socket), timeoutSeconds: 10) else { return }
                for number in stride(from: index, to: events.count, by: 8) {
                    // A transport error ends this client: the server was killed.
                    guard let outcome = try? client.call("submit", events[number].params) else { return }
                    if case .success(let receipt) = outcome, receipts.append(receipt) == 200 {
                        kill(serverProcessIdentifier, SIGKILL)
                    }
                }
            }.start()
        }
        // The load runs until a client has killed the server mid-stream (or has nothing left to send).
        #expect(clients.wait(timeout: .now() + 60) == .success)
        if server.process.isRunning { kill(serverProcessIdentifier, SIGKILL) }
        _ = await server.waitForExit(timeoutSeconds: 10)
        let received = receipts.all
        #expect(received.count >= 200)
        #expect(received.count < events.count, "the kill came after the load had ended; nothing was tested under load")

        let verify = try await runCircuito(["verify", "--data", fixture.directory])
        #expect(verify.status == 0, "verify after kill -9: \(verify.errors)")
        try Self.checkReceiptsInLog(received, directory: fixture.directory)

        // Restart: it serves again, from where the log is, and stops cleanly on SIGTERM.
        let restarted = try Child(["serve", "--data", fixture.directory, "--listen", "127.0.0.1:0", "--unix", socket])
        let line = try #require(await restarted.waitForLine(startingWith: "listening tcp", timeoutSeconds: 60), "serve did not restart: \(restarted.standardError)")
        let client = try LineClient(try Endpoint(parsing: String(line.dropFirst("listening tcp ".count))), timeoutSeconds: 10)
        let size = try #require(try client.result("server.info")["size"]?.integerValue)
        #expect(size >= Int64(received.count) + 21)
        _ = try client.result("submit", try fixture.registration().params)
        // Its threads carry their names where `top -H` and `perf` read them.
        let threadNames = Self.threadNames(processIdentifier: restarted.process.processIdentifier)
        for name in ["circuito-commit", "circuito-plan", "circuito-srv-0"] {
            #expect(threadNames.contains(name), "no thread named \(name) among \(threadNames.sorted())")
        }
        kill(restarted.process.processIdentifier, SIGTERM)
        #expect(await restarted.waitForExit(timeoutSeconds: 30))
        #expect(restarted.process.terminationStatus == 0)
        await #expect(try runCircuito(["verify", "--data", fixture.directory]).status == 0)
    }

    /// The kernel's name of each thread of a process (`/proc/PID/task/*/comm`).
    private static func threadNames(processIdentifier: Int32) -> Set<String> {
        let taskFolder = "/proc/\(processIdentifier)/task"
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: taskFolder)) ?? []
        return Set(tasks.compactMap { task in
            (try? String(contentsOfFile: "\(taskFolder)/\(task)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        })
    }

    @Test("waiting for a child's line takes a line that came before the deadline also when the first look is after it, as when the sleep before it outlasted the deadline on a loaded machine")
    func waitForLineLooksOnceAfterItsDeadline() async throws {
        let child = try Child(["--help"])
        #expect(await child.waitForOutputEnd(timeoutSeconds: 60))
        // A deadline already passed: the line is there, so it is the answer.
        let line = await child.waitForLine(startingWith: "OVERVIEW: ", timeoutSeconds: 0)
        #expect(line?.hasPrefix("OVERVIEW: Circuito") == true, "\(child.standardOutput)")
        #expect(await child.waitForLine(startingWith: "no such line", timeoutSeconds: 0) == nil)
    }

    private static func checkReceiptsInLog(_ receipts: [JSONValue], directory: String) throws {
        let reader = try LedgerReader.open(directory: directory)
        let verifier = try reader.checkpointVerifier()
        for receipt in receipts {
            let sequenceNumber = UInt64(try #require(receipt["seq"]?.integerValue))
            let leafHash = try #require(receipt["leaf_hash"]?.stringValue.flatMap(Base64.decode))
            #expect(MerkleHash.leaf(try reader.leafBytes(sequenceNumber: sequenceNumber)) == leafHash)
            let checkpoint = try Checkpoint(parsing: try SignedNote.open(try #require(receipt["checkpoint"]?.stringValue), verifier: verifier))
            let proof = try reader.inclusionProof(leafIndex: sequenceNumber, treeSize: checkpoint.size)
            #expect(MerkleProofs.verifyInclusion(leafHash: leafHash, leafIndex: sequenceNumber, treeSize: checkpoint.size, proof: proof, root: checkpoint.rootHash))
        }
    }

    @Test("SIGTERM while clients keep connecting: the connections accepted and never served are closed, and serve exits 0 (it crashed on NIO's precondition for a wrapped channel released unclosed)")
    func terminateWhileClientsConnect() async throws {
        let fixture = try CircuitFixture()
        // Each round is a chance: the crash needed a connection accepted in the moment the listener closed (about one
        // round in three this way with the code before, release build).
        for round in 1...4 {
            let server = try Child(["serve", "--data", fixture.directory, "--listen", "127.0.0.1:0"])
            let line = try #require(
                await server.waitForLine(startingWith: "listening tcp", timeoutSeconds: 60), "serve did not start: \(server.standardError)")
            let endpoint = try Endpoint(parsing: String(line.dropFirst("listening tcp ".count)))
            // 32 clients connect, ask server.info and close, again and again, until the server is gone.
            let answered = Collected<Bool>()
            let clientsDone = Collected<Bool>()
            let deadline = Date().addingTimeInterval(60)
            for _ in 0..<32 {
                Thread {
                    defer { clientsDone.append(true) }
                    while Date() < deadline {
                        guard let client = try? LineClient(endpoint, timeoutSeconds: 5) else { return }
                        guard (try? client.result("server.info")) != nil else { return }
                        answered.append(true)
                    }
                }.start()
            }
            try await Task.sleep(for: .milliseconds(1500))
            // And until a first client was answered: on a busy machine 32 new threads and a new process may take longer.
            while answered.all.isEmpty && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            kill(server.process.processIdentifier, SIGTERM)
            let exited = await server.waitForExit(timeoutSeconds: 60)
            while clientsDone.all.count < 32 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(exited, "round \(round): serve did not stop")
            #expect(!answered.all.isEmpty, "round \(round): no client was answered before the SIGTERM")
            #expect(
                server.process.terminationReason == .exit && server.process.terminationStatus == 0,
                "round \(round): \(server.process.terminationReason == .exit ? "exit" : "signal") \(server.process.terminationStatus): \(server.standardError)")
            await #expect(try runCircuito(["verify", "--data", fixture.directory]).status == 0)
        }
    }

    @Test("client submit: a line it cannot read is refused with its number and the lines after it are still sent; --expected-size guards the first event sent; a batch with an unreadable line is not sent")
    func clientSubmitLineByLine() async throws {
        let fixture = try CircuitFixture()
        let keys = fixture.folder.path
        try KeyFile.write(fixture.actors.authority, to: keys + "/city.key")
        let socket = fixture.folder.path + "/c.sock"
        let server = try Child(["serve", "--data", fixture.directory, "--listen", "none", "--unix", socket])
        _ = try #require(await server.waitForLine(startingWith: "verifier-key", timeoutSeconds: 60), "serve did not start: \(server.standardError)")
        func registration(_ id: String) -> String {
            #"{"type":"actor.registered","body":{"actor":"\#(id)","role":"merchant","name":"Shop","keys":["\#(Ed25519PrivateKey().publicKey.multikey)"]}}"#
        }
        let events = FileManager.default.temporaryDirectory.path + "/events-\(UUID().uuidString).jsonl"
        defer { unlink(events) }
        func submit(_ lines: [String], _ extra: [String] = []) async throws -> (status: Int32, output: [JSONValue], errors: String) {
            try (lines.joined(separator: "\n") + "\n").write(toFile: events, atomically: true, encoding: .utf8)
            let result = try await runCircuito(["client", "submit", "--server", socket, "--key", keys + "/city.key", "--actor", "city"] + extra + [events])
            let output = try result.output.split(separator: "\n").map { try JSONParser.parse(String($0)) }
            return (result.status, output, result.errors)
        }
        func ledgerSize() async throws -> Int64 {
            let info = try await runCircuito(["client", "info", "--server", socket])
            return try #require(try JSONParser.parse(info.output.trimmingCharacters(in: .whitespacesAndNewlines))["size"]?.integerValue)
        }
        let sizeBefore = try await ledgerSize()
        // Line 2 is not JSON, line 3 has no body: both refused here with their numbers; lines 1 and 4 are appended.
        let mixed = try await submit([registration("s-1"), "nope", #"{"type":"actor.registered"}"#, registration("s-4")])
        #expect(mixed.status == 1)
        #expect(mixed.output.count == 4, "\(mixed.output)")
        #expect(mixed.output[0]["seq"] != nil && mixed.output[3]["seq"] != nil)
        #expect(mixed.output[1]["line"] == 2 && mixed.output[1]["error"]?["data"]?["code"] == "invalid_json")
        #expect(mixed.output[2]["line"] == 3 && mixed.output[2]["error"]?["data"]?["code"] == "invalid_event")
        #expect(mixed.errors.contains("error: 2 event(s) refused"), "\(mixed.errors)")
        await #expect(try ledgerSize() == sizeBefore + 2)
        // Blank lines before the first event: the size guard still applies to it, and once it refused the first
        // event the next ones, meant for that size too, are not sent.
        let wrongSize = String(sizeBefore + 1000)
        let guarded = try await submit(["", "  ", registration("s-5"), registration("s-6")], ["--expected-size", wrongSize])
        #expect(guarded.status == 1)
        #expect(guarded.output.count == 2, "\(guarded.output)")
        #expect(guarded.output.first?["line"] == 3 && guarded.output.first?["error"]?["data"]?["code"] == "size_mismatch", "\(guarded.output)")
        #expect(guarded.output.last?["line"] == 4 && guarded.output.last?["error"]?["data"]?["code"] == "size_mismatch", "\(guarded.output)")
        #expect(guarded.output.last?["error"]?["message"]?.stringValue?.hasPrefix("not sent") == true, "\(guarded.output)")
        await #expect(try ledgerSize() == sizeBefore + 2)
        // The right size: both go.
        let rightSize = String(sizeBefore + 2)
        let accepted = try await submit([registration("s-7"), registration("s-8")], ["--expected-size", rightSize])
        #expect(accepted.status == 0, "\(accepted.output) \(accepted.errors)")
        await #expect(try ledgerSize() == sizeBefore + 4)
        // A batch is all or nothing: with an unreadable line, nothing is sent.
        let batch = try await submit([registration("s-9"), "nope"], ["--batch"])
        #expect(batch.status == 1)
        #expect(batch.output.count == 1 && batch.output[0]["line"] == 2, "\(batch.output)")
        #expect(batch.errors.contains("the batch was not sent"), "\(batch.errors)")
        await #expect(try ledgerSize() == sizeBefore + 4)
        kill(server.process.processIdentifier, SIGTERM)
        #expect(await server.waitForExit(timeoutSeconds: 30))
    }

    @Test("circuito client and circuito follow against a running circuito serve")
    func clientAndFollowCommands() async throws {
        let fixture = try CircuitFixture()
        let keys = fixture.folder.path
        try KeyFile.write(fixture.actors.authority, to: keys + "/city.key")
        try KeyFile.write(fixture.actors.beneficiary, to: keys + "/bene.key")
        try KeyFile.write(fixture.actors.auditor, to: keys + "/audit.key")
        let socket = fixture.folder.path + "/c.sock"
        let server = try Child(["serve", "--data", fixture.directory, "--listen", "127.0.0.1:0", "--unix", socket])
        let verifierLine = try #require(await server.waitForLine(startingWith: "verifier-key", timeoutSeconds: 60), "serve did not start: \(server.standardError)")
        let verifierKey = String(verifierLine.dropFirst("verifier-key ".count))
        let tcp = String(try #require(await server.waitForLine(startingWith: "listening tcp", timeoutSeconds: 5)).dropFirst("listening tcp ".count))

        let info = try await runCircuito(["client", "info", "--server", socket])
        #expect(info.status == 0)
        #expect(try JSONParser.parse(info.output.trimmingCharacters(in: .whitespacesAndNewlines))["verifier_key"]?.stringValue == verifierKey)

        // submit: an unsigned event signed with the key file, and a refusal with exit status 1.
        let unsigned = FileManager.default.temporaryDirectory.path + "/events-\(UUID().uuidString).jsonl"
        defer { unlink(unsigned) }
        let registration = #"{"type":"actor.registered","body":{"actor":"cli-shop","role":"merchant","name":"CLI shop","keys":["\#(Ed25519PrivateKey().publicKey.multikey)"]}}"#
        try (registration + "\n").write(toFile: unsigned, atomically: true, encoding: .utf8)
        // With the verifier key each receipt is checked: checkpoint, leaf from the event sent, inclusion proof.
        let submitted = try await runCircuito(["client", "submit", "--server", tcp, "--key", keys + "/city.key", "--actor", "city", "--verifier-key", verifierKey, unsigned])
        #expect(submitted.status == 0, "\(submitted.errors)")
        let receipt = try JSONParser.parse(submitted.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(receipt["seq"]?.integerValue != nil)
        // Checked against another ledger's key (the same name), the receipt is printed, then refused.
        let otherVerifierKey = try NoteVerifier(name: String(verifierKey.prefix { $0 != "+" }), publicKey: Ed25519PrivateKey().publicKey).verifierKey
        let otherRegistration = #"{"type":"actor.registered","body":{"actor":"cli-shop-2","role":"merchant","name":"CLI shop 2","keys":["\#(Ed25519PrivateKey().publicKey.multikey)"]}}"#
        try (otherRegistration + "\n").write(toFile: unsigned, atomically: true, encoding: .utf8)
        let misChecked = try await runCircuito(["client", "submit", "--server", socket, "--key", keys + "/city.key", "--actor", "city", "--batch", "--verifier-key", otherVerifierKey, unsigned])
        #expect(misChecked.status == 1)
        #expect(misChecked.output.contains("\"seq\":") && misChecked.errors.contains("error: integrity_failure: the receipt does not check: its checkpoint"), "\(misChecked.errors)")
        try (registration + "\n").write(toFile: unsigned, atomically: true, encoding: .utf8)
        let again = try await runCircuito(["client", "submit", "--server", tcp, "--key", keys + "/city.key", "--actor", "city", unsigned])
        #expect(again.status == 1)
        #expect(again.output.contains("actor_exists"))

        let balance = try await runCircuito(["client", "balance", "--server", socket, "--key", keys + "/bene.key", "--actor", "bene-1", "--account", "beneficiary:bene-1"])
        #expect(balance.status == 0, "\(balance.errors)")
        #expect(try JSONParser.parse(balance.output.trimmingCharacters(in: .whitespacesAndNewlines))["balance"] == .integer(fixture.initialBalance))
        let refused = try await runCircuito(["client", "balance", "--server", socket, "--key", keys + "/bene.key", "--actor", "bene-1", "--account", "merchant:shop"])
        #expect(refused.status == 1)
        #expect(refused.errors.contains("error: not_authorised:"))
        let history = try await runCircuito(["client", "history", "--server", socket, "--key", keys + "/bene.key", "--actor", "bene-1", "--account", "beneficiary:bene-1"])
        #expect(history.status == 0)
        let caseRecords = try await runCircuito(["client", "case", "--server", socket, "--key", keys + "/bene.key", "--actor", "bene-1", "--beneficiary", "bene-1"])
        #expect(caseRecords.status == 0)
        #expect(caseRecords.output.contains("case.referred"))
        let catalogue = try await runCircuito(["client", "catalogue", "--server", socket, "--kind", "opportunity", "--text", "garden"])
        #expect(catalogue.output.contains("opp-garden"))
        let checkpoint = try await runCircuito(["client", "checkpoint", "--server", socket])
        #expect(checkpoint.status == 0)
        let proof = try await runCircuito(["client", "proof", "--server", socket, "--seq", "1"])
        #expect(proof.output.contains("leaf_hash"))

        // actor: public but for beneficiaries, whose records need the reader's signature.
        let shop = try await runCircuito(["client", "actor", "--server", socket, "--id", "shop"])
        #expect(shop.status == 0, "\(shop.errors)")
        #expect(try JSONParser.parse(shop.output.trimmingCharacters(in: .whitespacesAndNewlines))["role"] == "merchant")
        let unsignedBeneficiary = try await runCircuito(["client", "actor", "--server", socket, "--id", "bene-1"])
        #expect(unsignedBeneficiary.status == 1)
        #expect(unsignedBeneficiary.errors.contains("error: not_authorised:"))
        let signedBeneficiary = try await runCircuito(["client", "actor", "--server", socket, "--key", keys + "/bene.key", "--actor", "bene-1", "--id", "bene-1"])
        #expect(signedBeneficiary.status == 0, "\(signedBeneficiary.errors)")
        #expect(try JSONParser.parse(signedBeneficiary.output.trimmingCharacters(in: .whitespacesAndNewlines))["role"] == "beneficiary")
        let halfSigned = try await runCircuito(["client", "actor", "--server", socket, "--key", keys + "/bene.key", "--id", "bene-1"])
        #expect(halfSigned.status == 1)
        #expect(halfSigned.errors.contains("give --key and --actor"))
        let nobody = try await runCircuito(["client", "actor", "--server", socket, "--id", "nobody"])
        #expect(nobody.status == 1)
        #expect(nobody.errors.contains("error: not_found:"))
        // badge: the ledger's record; its credential and the status list need the server to hold the issuer's key.
        let badge = try await runCircuito(["client", "badge", "--server", socket, "--badge", "badge-1"])
        #expect(badge.status == 0, "\(badge.errors)")
        #expect(try JSONParser.parse(badge.output.trimmingCharacters(in: .whitespacesAndNewlines))["badge"]?["beneficiary"] == "bene-1")
        let credential = try await runCircuito(["client", "badge", "--server", socket, "--badge", "badge-1", "--credential", "--suite", "jcs"])
        #expect(credential.status == 1)
        #expect(credential.errors.contains("error: key_file:"))
        let statusList = try await runCircuito(["client", "status-list", "--server", socket, "--issuer", "casa"])
        #expect(statusList.status == 1)
        #expect(statusList.errors.contains("error: key_file:"))
        await #expect(try runCircuito(["client", "badge", "--server", socket, "--badge", "badge-1", "--suite", "jcs"]).status == 64)
        // events and report: signed reads for the authority and auditors.
        let page = try await runCircuito(["client", "events", "--server", socket, "--key", keys + "/audit.key", "--actor", "audit", "--from", "1", "--limit", "3"])
        #expect(page.status == 0, "\(page.errors)")
        let records = try JSONParser.parse(page.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(records["records"]?.arrayValue?.map { $0["seq"] } == [1, 2, 3])
        #expect(records["next"] == 4)
        let notAnAuditor = try await runCircuito(["client", "events", "--server", socket, "--key", keys + "/bene.key", "--actor", "bene-1"])
        #expect(notAnAuditor.status == 1)
        #expect(notAnAuditor.errors.contains("error: not_authorised:"))
        let report = try await runCircuito(["client", "report", "--server", tcp, "--key", keys + "/audit.key", "--actor", "audit"])
        #expect(report.status == 0, "\(report.errors)")
        #expect(try JSONParser.parse(report.output.trimmingCharacters(in: .whitespacesAndNewlines))["counts"]?["badges"] == 1)

        // subscribe: JSON Lines, each exactly a record's leaf bytes.
        let stream = try await runCircuito(["client", "subscribe", "--server", socket, "--key", keys + "/audit.key", "--actor", "audit", "--from", "0", "--count", "5"])
        #expect(stream.status == 0, "\(stream.errors)")
        let lines = stream.output.split(separator: "\n")
        #expect(lines.count == 5)
        for (index, line) in lines.enumerated() {
            let record = try Record(leafBytes: Array(line.utf8))
            #expect(record.sequenceNumber == UInt64(index))
        }

        // follow: mirrors the leader until SIGTERM; the replica passes verify. The pinned key's id is given in upper
        // case, which names the same key (`ReplicaTests` checks that with a key id that has letters for certain).
        let replica = fixture.folder.path + "/replica"
        let keyFields = verifierKey.split(separator: "+", maxSplits: 2).map(String.init)
        let pinned = keyFields[0] + "+" + keyFields[1].uppercased() + "+" + keyFields[2]
        let follower = try Child([
            "follow", "--from", socket, "--data", replica, "--key", keys + "/audit.key", "--actor", "audit", "--verifier-key", pinned,
            "--map-size", "256MiB",
        ])
        let client = try LineClient(.unix(path: socket), timeoutSeconds: 10)
        for _ in 0..<5 { _ = try client.result("submit", try fixture.registration().params) }
        let leaderSize = try #require(try client.result("server.info")["size"]?.integerValue)
        let deadline = Date().addingTimeInterval(30)
        while !follower.standardError.contains("replica at \(leaderSize) records") && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(follower.standardError.contains("replica at \(leaderSize) records"), "\(follower.standardError)")
        // A hangup stops it as SIGTERM does, after its current commit (it died at once).
        kill(follower.process.processIdentifier, SIGHUP)
        #expect(await follower.waitForExit(timeoutSeconds: 30))
        #expect(follower.process.terminationStatus == 0, "\(follower.standardError)")
        // The replica was written with the map it was told.
        #expect(try LedgerReader.open(directory: replica).mapSizeBytes == 256 << 20)
        let verified = try await runCircuito(["verify", "--data", replica])
        #expect(verified.status == 0, "\(verified.errors)")
        #expect(verified.output.contains("ok: \(leaderSize) records"))

        kill(server.process.processIdentifier, SIGTERM)
        #expect(await server.waitForExit(timeoutSeconds: 30))
        #expect(server.process.terminationStatus == 0)
    }

    @Test("bench --connect drives a running circuito serve: it registers its circuit with the authority's key, every event of the mix is accepted, it reads the server's memory from --server-pid, and a second run on the same ledger does the same")
    func benchAgainstARunningServer() async throws {
        let folder = TemporaryFolder()
        let keyPath = folder.path + "/authority.key"
        let ledger = folder.path + "/ledger"
        let keygen = try await runCircuito(["keygen", "--out", keyPath])
        try #require(keygen.status == 0, "\(keygen.errors)")
        let created = try await runCircuito(["init", "--data", ledger, "--authority-key", keyPath, "--authority-id", "city"])
        try #require(created.status == 0, "\(created.errors)")
        let server = try Child(["serve", "--data", ledger, "--listen", "127.0.0.1:0"])
        let line = try #require(await server.waitForLine(startingWith: "listening tcp", timeoutSeconds: 60), "serve did not start: \(server.standardError)")
        let address = String(line.dropFirst("listening tcp ".count))
        let serverPid = String(server.process.processIdentifier)

        func bench(events: Int) async throws -> JSONValue {
            let run = try await runCircuito([
                "bench", "--connect", address, "--authority-key", keyPath, "--authority-id", "city", "--server-pid", serverPid,
                "--events", String(events), "--connections", "4", "--pipeline", "2", "--json",
            ], timeoutSeconds: 300)
            try #require(run.status == 0, "bench --connect: \(run.errors)")
            return try JSONParser.parse(Array(run.output.utf8))
        }
        func number(_ figures: JSONValue, _ name: String) -> Double? {
            switch figures[name] {
            case .integer(let value)?: return Double(value)
            case .number(let value)?: return value
            default: return nil
            }
        }
        let first = try await bench(events: 300)
        #expect(first["accepted"]?.integerValue == 300)
        #expect(first["refused"]?.integerValue == 0)
        #expect(try #require(number(first, "throughput_events_per_second")) > 0)
        #expect(try #require(number(first, "verify_bound_events_per_second")) > 0)
        // The memory is the running server's, read from /proc/<pid>: a few MB at least, far below a GB here.
        let residentMegabytes = try #require(number(first, "server_rss_mb"), "server_rss_mb: \(first)")
        #expect(residentMegabytes > 1 && residentMegabytes < 1024)
        let sizeAfterFirst = try #require(first["ledger_size_after"]?.integerValue)

        // Again on the same ledger: a circuit of its own next to the first one, from where the log is.
        let second = try await bench(events: 120)
        #expect(second["accepted"]?.integerValue == 120)
        #expect(second["refused"]?.integerValue == 0)
        #expect(second["ledger_size_before"]?.integerValue ?? 0 >= sizeAfterFirst)

        kill(server.process.processIdentifier, SIGTERM)
        #expect(await server.waitForExit(timeoutSeconds: 30))
        #expect(server.process.terminationStatus == 0)
        let verified = try await runCircuito(["verify", "--data", ledger])
        #expect(verified.status == 0, "\(verified.errors)")
        #expect(verified.output.contains("ok: \(second["ledger_size_after"]?.integerValue ?? -1) records"), "\(verified.output)")
    }

    @Test("memory the allocator keeps after a burst of large lines goes back to the system within its next checks, and server.info counts what the trims gave back")
    func allocatorGivesBackAfterABurst() async throws {
        let fixture = try CircuitFixture()
        let server = try Child(["serve", "--data", fixture.directory, "--listen", "127.0.0.1:0", "--allocator-trim-interval-seconds", "1"])
        defer { kill(server.process.processIdentifier, SIGKILL) }
        let line = try #require(await server.waitForLine(startingWith: "listening tcp", timeoutSeconds: 60), "serve did not start: \(server.standardError)")
        let endpoint = try Endpoint(parsing: String(line.dropFirst("listening tcp ".count)))
        let observer = try LineClient(endpoint, timeoutSeconds: 20)
        func memory() throws -> (resident: Int64, unused: Int64, trims: Int64, returned: Int64) {
            let memory = try #require(try observer.result("server.info")["memory"])
            return (
                try #require(memory["resident_anonymous_bytes"]?.integerValue), try #require(memory["resident_unused_bytes"]?.integerValue),
                try #require(memory["allocator_trims"]?.integerValue), try #require(memory["allocator_returned_bytes"]?.integerValue))
        }
        // Three rounds: 128 connections each send 900 KiB of a line and hold it (115 MiB in the server), then its
        // end; each is answered (invalid_params: server.info takes none) and closed. The first round's buffers are
        // mapped by themselves and unmapped when freed; glibc then raises its threshold for mapping, and the later
        // rounds' come from its heaps, which keep them when they are freed (with the checks off, 123 MiB of the
        // server's 127 MiB stayed resident and unused after the rounds; 15 of 19 MiB with them).
        let start = Array(#"{"jsonrpc":"2.0","id":1,"method":"server.info","params":{"padding":""#.utf8)
        let padding = [UInt8](repeating: UInt8(ascii: "a"), count: 900 << 10)
        let clientCount = 128
        let linesBytes = Int64(clientCount * (start.count + padding.count))
        var peakResident: Int64 = 0
        for round in 1...3 {
            // Each wait its own minute: on a loaded machine a debug server takes a while to read 115 MiB.
            let deadline = Date().addingTimeInterval(60)
            var clients = try (0..<clientCount).map { _ in try LineClient(endpoint, timeoutSeconds: 20) }
            for client in clients { try client.send(bytes: start + padding) }
            // Until the server holds every line whole (the last bytes may still be on their way): the peak is taken
            // there. Taken once 100 MiB were in use, it was as low as 101 MiB, and the bound below (37 MiB) no more
            // than what the trimmer may rightly leave: a base of 4 to 12 MiB and up to its threshold (32 MiB) freed
            // after its last trim, by connections the server closed after it.
            var held = try memory()
            while held.resident - held.unused < linesBytes && Date() < deadline {
                try await Task.sleep(for: .milliseconds(100))
                held = try memory()
            }
            #expect(held.resident - held.unused >= linesBytes, "round \(round): the lines were not held: \(held)")
            peakResident = max(peakResident, held.resident)
            for client in clients {
                try client.send(bytes: Array(#""}}"#.utf8) + [0x0A])
                let answer = try #require(try client.readLine())
                #expect(String(decoding: answer, as: UTF8.self).contains("invalid_params"))
            }
            clients.removeAll()
        }
        // The next checks see the memory not in use and trim it. Rarely glibc gives the whole burst back by itself
        // first (seen once under load: RssAnon 13.7 MB and no trim), and then no check has anything to
        // trim: what this test holds the server to is the memory going back; the trimmer's rule is held exactly by
        // AllocatorTrimmerTests, over a scripted allocator.
        let deadline = Date().addingTimeInterval(60)
        var after = try memory()
        while after.resident > peakResident - (64 << 20) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(250))
            after = try memory()
        }
        #expect(after.resident <= peakResident - (64 << 20), "at most \(peakResident >> 20) MiB, after \(after)")
        // Part of it may have gone back by itself (the tops of heaps): what the trims took is counted, not all of it.
        if after.trims > 0 { #expect(after.returned > 0, "trims that returned nothing: \(after)") }
        kill(server.process.processIdentifier, SIGTERM)
        #expect(await server.waitForExit(timeoutSeconds: 30))
        #expect(server.process.terminationStatus == 0, "\(server.standardError)")
    }

}
