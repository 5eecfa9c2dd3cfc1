import ArgumentParser
import CircuitoCore
import CircuitoServer
import CircuitoStorage

struct ReceiptCommand: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "receipt", abstract: "Receipts: check one later, as a shop proves a payment to anyone.",
        subcommands: [ReceiptCheckCommand.self])
}

/// A receipt kept by its submitter, checked at any later time (Specs/ledger.md 7.4): what `client submit
/// --verifier-key` checks at once, without the server that gave it, where the inclusion proof is taken from a copy
/// of the ledger, a saved proof or any server of the ledger.
struct ReceiptCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a kept receipt against the signed event it answered and the ledger's verifier key.",
        discussion: """
            Checks that the receipt's checkpoint is signed with --verifier-key and covers its seq, and that its \
            leaf_hash is that of the record of the signed event (--event, the line that was submitted) at its seq \
            and recorded_at; then that the record is in the checkpoint's tree, with the inclusion proof taken from \
            --data (a copy or replica of the ledger), --proof (a saved `proof inclusion` or `client proof` answer \
            for the receipt's seq and its checkpoint's size) or --server (any server of the ledger). With none of \
            them the inclusion is not checked, and it says so. Exit status 0 when everything given holds; \
            otherwise 1 with integrity_failure and what does not hold.
            """)

    @Option(name: .long, help: "The checkpoint verifier key (NAME+KEYID+BASE64) the programme gives out.")
    var verifierKey: String
    @Option(name: .long, help: "File holding the signed event that was submitted (one JSON line).")
    var event: String
    @Option(name: .long, help: "File holding the receipt (one JSON line, as client submit or append printed it).")
    var receipt: String
    @Option(name: .long, help: "A copy or replica of the ledger to take the inclusion proof from.")
    var data: String?
    @Option(name: .long, help: "File holding a saved inclusion proof ({\"hashes\":[…],\"leaf_index\":…,\"tree_size\":…}).")
    var proof: String?
    @Option(name: .long, help: "A server of the ledger to ask for the inclusion proof: HOST:PORT, or a Unix socket path.")
    var server: String?
    @Option(name: .customLong("timeout"), help: ArgumentHelp("Seconds to wait for the server's answer (1 to 86400).", valueName: "timeout"))
    var timeoutSeconds: Int = 30

    func validate() throws {
        guard [data, proof, server].compactMap({ $0 }).count <= 1 else {
            throw ValidationError("give at most one of --data, --proof and --server: where the inclusion proof comes from")
        }
        guard (1...86_400).contains(timeoutSeconds) else { throw ValidationError("--timeout must be from 1 to 86400 seconds") }
    }

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let verifier = try NoteVerifier(parsing: verifierKey)
            let submitted = try Self.readOneValue(event, what: "the signed event")
            let kept = try Self.readOneValue(receipt, what: "the receipt")
            let check = try ReceiptCheck(receipt: kept, submitted: submitted, verifier: verifier)
            let proofHashes: [[UInt8]]?
            if let data {
                let reader = try LedgerReader.open(directory: data)
                defer { _ = reader.close() }
                proofHashes = try reader.inclusionProof(leafIndex: check.sequenceNumber, treeSize: check.treeSize)
            } else if let proof {
                proofHashes = try Self.savedProof(proof, check)
            } else if let server {
                let client = try LineClient(try Endpoint(parsing: server), timeoutSeconds: timeoutSeconds)
                proofHashes = try ClientSubmitCommand.inclusionProof(for: check, client: client)
            } else {
                proofHashes = nil
            }
            if let proofHashes { try check.verify(inclusionProof: proofHashes) }
            let included = proofHashes != nil
            let what = "the receipt of seq \(check.sequenceNumber) holds for the event sent: its checkpoint of \(check.treeSize) records is signed with \(verifier.verifierKey)"
            print(included ? "ok: \(what), and the record is in that tree" : "ok: \(what); the record's inclusion in that tree was not checked (give --data, --proof or --server)")
        }
    }

    /// Bytes of a file it reads: a signed event is at most 64 KiB (`EventLimits.maximumSignedEventBytes`), a receipt
    /// or a saved inclusion proof a few KiB.
    static let maximumFileBytes = 1 << 20

    /// The one JSON value of a small file (a line of JSON Lines: its newline may follow).
    static func readOneValue(_ path: String, what: String) throws(LedgerError) -> JSONValue {
        let bytes = try FileIO.readFile(path, maximumBytes: Self.maximumFileBytes)
        do throws(LedgerError) {
            return try JSONParser.parse(bytes)
        } catch {
            throw LedgerError(.invalidJSON, "\(what) (\(path)) is not one JSON value: \(error.message)")
        }
    }

    /// The hashes of a saved inclusion proof, which must be of the receipt's seq at its checkpoint's size.
    static func savedProof(_ path: String, _ check: ReceiptCheck) throws(LedgerError) -> [[UInt8]] {
        let saved = try readOneValue(path, what: "the inclusion proof")
        guard saved["leaf_index"] == .integer(Int64(check.sequenceNumber)), saved["tree_size"] == .integer(Int64(check.treeSize)) else {
            throw LedgerError(
                .integrity, "the receipt does not check: the saved proof (\(path)) is not of seq \(check.sequenceNumber) at size \(check.treeSize), the receipt's seq and its checkpoint's size")
        }
        guard case .array(let items)? = saved["hashes"] else {
            throw LedgerError(.integrity, "the receipt does not check: the saved proof (\(path)) has no hashes")
        }
        var hashes: [[UInt8]] = []
        for item in items {
            guard case .string(let text) = item, let hash = Base64.decode(text) else {
                throw LedgerError(.integrity, "the receipt does not check: a hash of the saved proof (\(path)) is not base64")
            }
            hashes.append(hash)
        }
        return hashes
    }
}
