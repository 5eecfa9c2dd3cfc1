import CircuitoCore
import Foundation
import Glibc
import Testing

@Suite("circuito receipt check: a kept receipt proved later", OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10)))
struct ReceiptCheckTests {
    @Test("a receipt checks against its signed event and the verifier key, with the inclusion proof from a copy of the ledger, a saved proof or a server; every part that does not hold is integrity_failure")
    func keptReceiptChecks() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let event = try ledger.authority.register(TestActor("merchant-1"), role: "merchant", name: "One")
        let appended = try await ledger.append([event])
        try #require(appended.succeeded && appended.completeLines.count == 1, "\(appended.stderr)")
        // Later records, so that the receipt's tree is not the ledger's last one.
        _ = try await ledger.append([try ledger.authority.register(TestActor("merchant-2"), role: "merchant", name: "Two")])
        let receiptLine = appended.completeLines[0]
        let receipt = try JSONParser.parse(Array(receiptLine.utf8))
        let sequence = try #require(receipt["seq"]?.integerValue)
        let eventFile = try ledger.workspace.write("event.json", lines: [event])
        let receiptFile = try ledger.workspace.write("receipt.json", lines: [receiptLine])
        let check = ["receipt", "check", "--verifier-key", ledger.verifierKey, "--event", eventFile]
        let treeSize = try #require(try Checkpoint(parsing: String(try #require(receipt["checkpoint"]?.stringValue).split(separator: "\n\n")[0]) + "\n").size)

        let included = "ok: the receipt of seq \(sequence) holds for the event sent: its checkpoint of \(treeSize) records is signed with \(ledger.verifierKey), and the record is in that tree\n"
        let fromCopy = try await circuito(check + ["--receipt", receiptFile, "--data", ledger.directory])
        #expect(fromCopy.status == 0 && fromCopy.stdout == included, "\(fromCopy.stdout) \(fromCopy.stderr)")
        let withoutProof = try await circuito(check + ["--receipt", receiptFile])
        #expect(withoutProof.status == 0 && withoutProof.stdout.hasSuffix("; the record's inclusion in that tree was not checked (give --data, --proof or --server)\n"), "\(withoutProof.stdout) \(withoutProof.stderr)")
        let proof = try await circuito("proof", "inclusion", "--data", ledger.directory, "--seq", String(sequence), "--size", String(treeSize))
        let proofFile = try ledger.workspace.write("proof.json", lines: proof.completeLines)
        let fromSavedProof = try await circuito(check + ["--receipt", receiptFile, "--proof", proofFile])
        #expect(fromSavedProof.status == 0 && fromSavedProof.stdout == included, "\(fromSavedProof.stdout) \(fromSavedProof.stderr)")
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let fromServer = try await circuito(check + ["--receipt", receiptFile, "--server", endpoint])
        #expect(fromServer.status == 0 && fromServer.stdout == included, "\(fromServer.stdout) \(fromServer.stderr)")

        // What does not hold, each named.
        func refused(_ arguments: [String], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let run = try await circuito(arguments)
            #expect(run.status == 1 && run.stdout.isEmpty, "\(run.status) \(run.stdout)", sourceLocation: sourceLocation)
            #expect(run.stderr.hasPrefix("error: integrity_failure: ") && run.stderr.contains(message), "\(run.stderr)", sourceLocation: sourceLocation)
        }
        var changed = try #require(receipt.objectValue)
        changed["leaf_hash"] = .string(Base64.encode([UInt8](repeating: 7, count: 32)))
        let changedFile = try ledger.workspace.write("changed.json", lines: [CanonicalJSON.encodeString(.object(changed))])
        try await refused(check + ["--receipt", changedFile, "--data", ledger.directory], "its leaf_hash is not that of the record of the event sent")
        let other = try await TestLedger(origin: "cli.test/other")
        defer { other.remove() }
        try await refused(
            ["receipt", "check", "--verifier-key", other.verifierKey, "--event", eventFile, "--receipt", receiptFile], "its checkpoint:")
        let otherEvent = try ledger.workspace.write("other-event.json", lines: [try ledger.authority.register(TestActor("merchant-3"), role: "merchant", name: "Three")])
        try await refused(
            ["receipt", "check", "--verifier-key", ledger.verifierKey, "--event", otherEvent, "--receipt", receiptFile], "it is for event")
        let wrongSize = try await circuito("proof", "inclusion", "--data", ledger.directory, "--seq", String(sequence))
        let wrongSizeFile = try ledger.workspace.write("wrong-size.json", lines: wrongSize.completeLines)
        try await refused(check + ["--receipt", receiptFile, "--proof", wrongSizeFile], "is not of seq \(sequence) at size \(treeSize)")
        var wrongHashes = try #require(try JSONParser.parse(Array(proof.completeLines[0].utf8)).objectValue)
        wrongHashes["hashes"] = [.string(Base64.encode([UInt8](repeating: 1, count: 32)))]
        let wrongHashesFile = try ledger.workspace.write("wrong-hashes.json", lines: [CanonicalJSON.encodeString(.object(wrongHashes))])
        try await refused(check + ["--receipt", receiptFile, "--proof", wrongHashesFile], "does not lead to the checkpoint's root")
        // One source of the proof at most: a usage error, nothing checked.
        let both = try await circuito(check + ["--receipt", receiptFile, "--data", ledger.directory, "--server", endpoint])
        #expect(both.status == 64 && both.stderr.contains("give at most one of --data, --proof and --server"), "\(both.stderr)")
    }
}
