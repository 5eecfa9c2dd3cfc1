import ArgumentParser
import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Glibc

struct VaultCommand: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "vault",
        abstract: "The personal-data key vault: seal a person's data, erase a person's key (crypto-shredding).",
        subcommands: [VaultSealCommand.self, VaultEraseCommand.self])
}

struct VaultSealCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal",
        abstract: "Seal a person's personal data with their vault key; print the sealed value an event body carries.",
        discussion: """
            Reads one JSON value (names, tax code, notes: what must never be in clear in the log) from FILE or \
            standard input and prints {"alg":"xchacha20poly1305","nonce":…,"ciphertext":…} on one line, sealed \
            under the beneficiary's key with the beneficiary as subject (Specs/events.md 1.6): the "sealed" member \
            of case.referred, case.plan_agreed and case.note_added. The vault (created, mode 0700, when missing) \
            gets a new key for a beneficiary it holds none for; a key file that is there but cannot be used is \
            refused (key_file), never replaced. circuito case --vault opens what it sealed.
            """)

    /// Bytes of the JSON it reads: room for whitespace around a value that is at most 16 KiB sealed.
    static let maximumInputBytes = 1 << 20

    @Option(name: .long, help: "The key vault directory (created, mode 0700, when missing).")
    var vault: String
    @Option(name: .long, help: "The beneficiary the data is about (the subject).")
    var beneficiary: String
    @Argument(help: "File holding the JSON value to seal; standard input when absent.")
    var file: String?

    func validate() throws {
        guard Identifier.isValid(beneficiary) else {
            throw ValidationError("--beneficiary must be an identifier (1 to 128 letters, digits and . _ : -)")
        }
    }

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            try excludeFromCoreDumps()
            // A sealed ciphertext holds at most 16 KiB, its 16-byte tag included: refuse a larger value before any key is made.
            let maximumPlaintextBytes = SealedData.maximumCiphertextBytes - SecretBox.tagByteCount
            // The person's data in clear: its bytes are wiped once parsed.
            var input: [UInt8]
            if let file {
                input = try FileIO.readFile(file, maximumBytes: Self.maximumInputBytes, secret: true)
            } else {
                input = try FileIO.readAll(0, maximumBytes: Self.maximumInputBytes, path: "standard input", secret: true)
            }
            defer { SecretBytes.wipe(&input) }
            let value: JSONValue
            do throws(LedgerError) { value = try JSONParser.parse(input) } catch {
                throw LedgerError(.invalidJSON, "the data to seal (\(file ?? "standard input")) is not one JSON value: \(error.message)")
            }
            let plaintextBytes = CanonicalJSON.encode(value).count
            guard plaintextBytes <= maximumPlaintextBytes else {
                throw LedgerError(.tooLarge, "the data to seal is \(plaintextBytes) bytes as canonical JSON; a sealed value holds at most \(maximumPlaintextBytes)")
            }
            let keyVault = try KeyVault(directory: vault)
            var key: [UInt8]
            if let held = try keyVault.key(for: beneficiary) { key = held } else { key = try keyVault.createKey(for: beneficiary) }
            defer { SecretBytes.wipe(&key) }
            let output = StandardOutput()
            output.writeLine(SealedData.seal(value, subject: beneficiary, key: key))
            output.flush()
        }
    }
}

struct VaultEraseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase",
        abstract: "Erase keys from a key vault: one beneficiary's, or every key whose subject the ledger records as erased.",
        discussion: """
            A person is erased when their key is gone from every vault that holds it (each sealed value about them \
            can then never be opened again) and the ledger records subject.erased (Specs/events.md 5.6); the server \
            and append record the event but hold no vault. A key is overwritten, synced and unlinked, and the folder \
            synced. --beneficiary ID erases that key (not_found when the vault holds none). --data LEDGER erases \
            the key of every subject that the ledger records as erased and prints one line per key: run it wherever \
            a vault is kept, after erasures are recorded, against the ledger or a replica of it. --server \
            HOST:PORT|PATH, signed with --key as --actor (an organisation or its staff), does the same for an \
            organisation that has no ledger of its own, a hub that referred people and kept their keys: it reads \
            every page of the cases ORG referred (case.list with referred_by ORG, --referred-by, by default \
            --actor), or with --holder ORG of the cases ORG holds (a Casa that took people in with their keys), \
            and erases the key of each person the server says is erased, waiting --timeout seconds for each \
            answer (default 30). It takes the server's word for it, as every other client read does.
            """)

    /// Pages of `case.list` one `--server` run reads at most. Each page moves past at least one case (its
    /// `next_after` must grow, or the run stops), and examines up to 10 000 cases or lists up to 500, so this
    /// covers at least 50 million cases; a server that sends pages without end is stopped here.
    static let maximumPages = 100_000
    /// Cases a page asks for: the most the server gives (Specs/protocol.md 5.21).
    static let casesPerPage = Int64(LedgerQueryLimits.maximumPageEntries)

    @Option(name: .long, help: "The key vault directory (it must be there, private to its owner).")
    var vault: String
    @Option(name: .long, help: "The beneficiary whose key to erase.")
    var beneficiary: String?
    @Option(name: .long, help: "A ledger: erase the key of every subject it records as erased.")
    var data: String?
    @Option(name: .long, help: "A server: erase the key of every person it records as erased among those the organisation referred (or holds, --holder).")
    var server: String?
    @Option(name: .long, help: "With --server: the organisation whose referrals are read (default: --actor).")
    var referredBy: String?
    @Option(name: .long, help: "With --server: read the cases this organisation holds instead of those it referred.")
    var holder: String?
    @Option(name: .customLong("timeout"), help: ArgumentHelp("With --server: seconds to wait for each answer (1 to 86400, default 30).", valueName: "timeout"))
    var timeoutSeconds: Int?
    @OptionGroup var reader: ReaderOptions

    /// The wait for each of the server's answers without --timeout, as the client commands' default.
    static let defaultTimeoutSeconds = 30

    func validate() throws {
        guard [beneficiary, data, server].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give one of --beneficiary, --data or --server")
        }
        if let beneficiary, !Identifier.isValid(beneficiary) {
            throw ValidationError("--beneficiary must be an identifier (1 to 128 letters, digits and . _ : -)")
        }
        if server == nil {
            guard reader.key == nil, reader.actor == nil, referredBy == nil, holder == nil, timeoutSeconds == nil else {
                throw ValidationError("--key, --actor, --referred-by, --holder and --timeout go with --server")
            }
        } else {
            // 0 would be no timeout at all to the socket, a negative one none that makes sense.
            if let timeoutSeconds, !(1...86_400).contains(timeoutSeconds) {
                throw ValidationError("--timeout must be from 1 to 86400 seconds")
            }
            guard reader.key != nil, reader.actor != nil else { throw ValidationError("--server reads signed: give --key and --actor") }
            guard referredBy == nil || holder == nil else { throw ValidationError("give either --holder or --referred-by") }
            if let organisation = holder ?? referredBy ?? reader.actor, !Identifier.isValid(organisation) {
                throw ValidationError("--holder, --referred-by (or --actor) must be an identifier (1 to 128 letters, digits and . _ : -)")
            }
        }
    }

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            // It reads each key it erases (to check what the file is), and --server a signing key.
            try excludeFromCoreDumps()
            let keyVault = try KeyVault(existingDirectory: vault)
            let output = StandardOutput()
            if let beneficiary {
                guard try keyVault.erase(subject: beneficiary) else {
                    throw LedgerError(.notFound, "the key vault \(vault) holds no key for \(beneficiary) (never made here, or erased already)")
                }
                output.write("erased: \(beneficiary)\n")
                output.flush()
                return
            }
            if let server {
                try eraseReferredSubjects(keyVault, server: server, output: output)
                return
            }
            guard let data else { return }
            let reader = try LedgerReader.open(directory: data)
            let subjects = try keyVault.subjects()
            var erasedCount = 0
            for subject in subjects where try reader.isErased(subject: subject) {
                try keyVault.erase(subject: subject)
                output.write("erased: \(subject)\n")
                erasedCount += 1
            }
            output.flush()
            printError("vault erase: \(erasedCount) of the \(subjects.count) keys in \(vault) belonged to subjects the ledger records as erased, and are gone")
        }
    }

    /// `--server`: every page of the cases the organisation referred (or holds), erasing as it goes the vault's key of each
    /// person marked erased, so that a run cut short (a broken connection) keeps what it erased and a later run
    /// finishes. Only keys the vault holds are touched: an id from the server is never a path by itself.
    private func eraseReferredSubjects(_ keyVault: KeyVault, server: String, output: StandardOutput) throws(LedgerError) {
        // The cases it holds (--holder), or else those it referred: the two filters of case.list.
        let organisation = holder ?? referredBy ?? reader.actor ?? ""
        let (filter, whoseCases) = holder == nil ? ("referred_by", "\(organisation) referred") : ("holder", "\(organisation) holds")
        let held = Set(try keyVault.subjects())
        let client = try LineClient(try Endpoint(parsing: server), timeoutSeconds: timeoutSeconds ?? Self.defaultTimeoutSeconds)
        var after: String?
        var casesRead = 0
        var erasedCount = 0
        for _ in 0..<Self.maximumPages {
            var params: JSONObject = [filter: .string(organisation), "limit": .integer(Self.casesPerPage)]
            if let after { params["after"] = .string(after) }
            let page: JSONValue
            switch try client.call("case.list", try reader.signed("case.list", .object(params))) {
            case .success(let result): page = result
            case .failure(let error): throw error.asLedgerError
            }
            guard let cases = page["cases"]?.arrayValue else {
                throw LedgerError(.integrity, "the server's case.list answer holds no \"cases\" (is it a circuito server of before 7 December 2026?)")
            }
            casesRead += cases.count
            for listed in cases where listed["erased"] == .bool(true) {
                guard let subject = listed["beneficiary"]?.stringValue, held.contains(subject) else { continue }
                // False when an earlier case of the same person already erased it.
                if try keyVault.erase(subject: subject) {
                    output.write("erased: \(subject)\n")
                    output.flush()
                    erasedCount += 1
                }
            }
            guard case .string(let next)? = page["next_after"] else {
                printError("vault erase: \(erasedCount) of the \(held.count) keys in \(vault) belonged to people the server records as erased, among the \(casesRead) cases \(whoseCases), and are gone")
                return
            }
            // Case ids in the store's (byte) order: a cursor that does not move on would read the same page for ever.
            if let after, !Array(after.utf8).lexicographicallyPrecedes(Array(next.utf8)) {
                throw LedgerError(.integrity, "the server's case.list next_after \(next.debugDescription) does not come after \(after.debugDescription)")
            }
            after = next
        }
        throw LedgerError(.tooLarge, "the cases \(whoseCases) are more than \(Self.maximumPages) pages of case.list; \(erasedCount) keys were erased before it stopped")
    }
}
