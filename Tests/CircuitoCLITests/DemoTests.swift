import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import Foundation
import Glibc
import Testing

// End-to-end tests of `circuito demo` and `circuito report`: the built binary makes a small demo circuit (40
// beneficiaries keep debug builds fast), then the tests read it back with the library, the CLI and the key vault.

/// A demo ledger made by the binary in a fresh workspace.
struct DemoLedger {
    static let beneficiaryCount = 40
    let workspace: Workspace
    let directory: String
    let seed: UInt64
    let result: CLIResult

    init(seed: UInt64, beneficiaries: Int = DemoLedger.beneficiaryCount, firstDay: String? = nil) async throws {
        workspace = try Workspace()
        directory = workspace.path("demo")
        self.seed = seed
        let firstDayArguments = firstDay.map { ["--first-day", $0] } ?? []
        result = try await circuito(["demo", "--data", directory, "--seed", String(seed), "--beneficiaries", String(beneficiaries)] + firstDayArguments, timeout: 600)
        try #require(result.succeeded, "demo failed: \(result.stderr)")
    }

    func remove() { workspace.remove() }

    func export() async throws -> [String] {
        let exported = try await circuito("export", "--data", directory)
        try #require(exported.succeeded, "export failed: \(exported.stderr)")
        return exported.completeLines
    }

    /// The events of the exported records.
    func events() async throws -> [JSONValue] {
        try await export().map { line in
            let record = try JSONParser.parse(line)
            return try #require(record["event"])
        }
    }
}

/// Every regular file under `root`, recursively.
func regularFiles(under root: String) -> [String] {
    guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
    var files: [String] = []
    while let relative = enumerator.nextObject() as? String {
        let path = root + "/" + relative
        var status = stat()
        if lstat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG { files.append(path) }
    }
    return files
}

/// Parses a TOC amount printed with two decimals (`-12.05`) into cents.
func cents(_ text: Substring) throws -> Int64 {
    let negative = text.hasPrefix("-")
    let parts = text.drop(while: { $0 == "-" }).split(separator: ".", omittingEmptySubsequences: false)
    try #require(parts.count == 2 && parts[1].count == 2, "\(text) is not an amount with two decimals")
    let whole = try #require(Int64(parts[0]))
    let fraction = try #require(Int64(parts[1]))
    return (negative ? -1 : 1) * (whole * 100 + fraction)
}

@Suite("circuito demo and report", .serialized, OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10)))
struct DemoTests {
    @Test("the demo builds a Turin circuit that verify and rebuild accept, with keys and vault kept private")
    func demoCircuit() async throws {
        let demo = try await DemoLedger(seed: 7)
        defer { demo.remove() }
        // Like init, stdout is the checkpoint verifier key.
        let verifierKey = demo.result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(verifierKey.hasPrefix(DemoCircuit.origin + "+"))

        let reader = try LedgerReader.open(directory: demo.directory)
        try reader.withState { (state) throws(LedgerError) in
            var roles: [String: Int] = [:]
            for entry in try state.entries(.actors, prefix: [], limit: 100_000) {
                let actor = try ActorRecord(json: try JSONParser.parse(entry.value))
                roles[actor.role.rawValue, default: 0] += 1
            }
            #expect(roles["authority"] == 1)
            #expect((roles["organisation"] ?? 0) >= 8)
            #expect((roles["staff"] ?? 0) >= 8)
            #expect((roles["merchant"] ?? 0) >= 30)
            #expect(roles["beneficiary"] == DemoLedger.beneficiaryCount)
            #expect((roles["auditor"] ?? 0) == 1)
            #expect(try state.entries(.opportunities, prefix: [], limit: 100_000).count >= 40)
            #expect(try state.entries(.badgeClasses, prefix: [], limit: 100_000).count >= 10)
            #expect(try state.entries(.merchants, prefix: [], limit: 100_000).count >= 30)
            // Opportunities of PassoParola's categories across several districts.
            var districts: Set<String> = []
            for entry in try state.entries(.opportunities, prefix: [], limit: 100_000) {
                districts.insert(try JSONParser.parse(entry.value)["district"]?.stringValue ?? "")
            }
            #expect(districts.count >= 8)
        }

        var types: [String: Int] = [:]
        for event in try await demo.events() { types[event["type"]?.stringValue ?? "", default: 0] += 1 }
        for type in [
            "policy.updated", "program.funded", "opportunity.published", "badge_class.defined", "merchant.enrolled",
            "case.referred", "case.opened", "case.plan_agreed", "case.note_added", "case.closed", "activation.recorded",
            "badge.issued", "credits.converted", "dote.granted", "payment.redeemed", "payment.refunded",
            "settlement.requested", "settlement.paid", "tocoin.expired", "subject.erased",
        ] {
            #expect((types[type] ?? 0) > 0, "the demo has no \(type)")
        }
        #expect(types["subject.erased"] == 1)

        let verified = try await circuito("verify", "--data", demo.directory, timeout: 600)
        #expect(verified.succeeded, "verify failed: \(verified.stderr)")
        let rebuilt = try await circuito("rebuild", "--data", demo.directory, timeout: 600)
        #expect(rebuilt.succeeded, "rebuild failed: \(rebuilt.stderr)")
        let trusting = try await circuito("rebuild", "--trust-checkpoints", "--data", demo.directory, timeout: 600)
        #expect(trusting.succeeded, "rebuild --trust-checkpoints failed: \(trusting.stderr)")
        #expect(trusting.stdout == rebuilt.stdout)

        // Key files of every actor and the vault, private to the owner.
        #expect(fileMode(demo.directory + "/keys") == 0o700)
        #expect(fileMode(demo.directory + "/vault") == 0o700)
        let keyFiles = regularFiles(under: demo.directory + "/keys")
        #expect(keyFiles.count >= 1 + 8 + 30 + DemoLedger.beneficiaryCount)
        #expect(keyFiles.allSatisfy { fileMode($0) == 0o600 })
        let authority = try KeyFile.read(demo.directory + "/keys/" + DemoCircuit.authorityID + ".key")
        #expect(authority.publicKey.multikey == (try DemoCircuit.actorKey(seed: 7, actor: DemoCircuit.authorityID)).publicKey.multikey)
        #expect(regularFiles(under: demo.directory + "/vault").allSatisfy { fileMode($0) == 0o600 })

        // A second demo into the same directory is refused and changes nothing.
        let before = try await demo.export()
        let again = try await circuito("demo", "--data", demo.directory, "--seed", "7", "--beneficiaries", "10")
        #expect(again.status == 1)
        #expect(again.stderr.contains("already holds a ledger"))
        await #expect(try demo.export() == before)
    }

    @Test("the erased subject's vault key is gone and no file holds their personal data in clear")
    func erasure() async throws {
        let demo = try await DemoLedger(seed: 7)
        defer { demo.remove() }
        let events = try await demo.events()
        let erasure = try #require(events.first { $0["type"] == "subject.erased" })
        let erased = try #require(erasure["body"]?["beneficiary"]?.stringValue)
        let vault = try KeyVault(directory: demo.directory + "/vault")
        #expect(try vault.key(for: erased) == nil)
        #expect(!FileManager.default.fileExists(atPath: demo.directory + "/vault/" + erased + ".key"))

        // The referral of another subject still opens with its vault key, and holds what the demo sealed.
        let referrals = events.filter { $0["type"] == "case.referred" }
        let other = try #require(referrals.first { $0["body"]?["beneficiary"]?.stringValue != erased })
        let otherSubject = try #require(other["body"]?["beneficiary"]?.stringValue)
        let otherKey = try #require(try vault.key(for: otherSubject))
        let sealed = try #require(other["body"]?["sealed"])
        #expect(SealedData.open(sealed, subject: otherSubject, key: otherKey) == DemoCircuit.personalData(seed: 7, subject: otherSubject))
        let erasedReferral = try #require(referrals.first { $0["body"]?["beneficiary"]?.stringValue == erased })
        #expect(SealedData.open(try #require(erasedReferral["body"]?["sealed"]), subject: erased, key: otherKey) == nil)

        // No file under the data directory (log, state, keys, vault) holds the erased person's data in clear.
        let person = DemoCircuit.personalData(seed: 7, subject: erased)
        let needles = try ["codice_fiscale", "telefono", "indirizzo"].map { field in
            Array(try #require(person[field]?.stringValue).utf8)
        }
        let files = regularFiles(under: demo.directory)
        #expect(files.contains { $0.hasSuffix("/data.mdb") })
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
            for needle in needles {
                #expect(positions(of: needle, in: bytes).isEmpty, "\(file) holds \(String(decoding: needle, as: UTF8.self))")
            }
        }
    }

    @Test("export whose output fails (a full disk) stops reading the ledger at that write, and still ends with storage_error")
    func exportStopsAtItsFirstFailedWrite() async throws {
        let demo = try await DemoLedger(seed: 13, beneficiaries: 12)
        defer { demo.remove() }
        let records = try await demo.export().count
        let binary = try #require(CLI.binary)
        // Standard error a terminal, so the progress line shows: it is printed at the last record (and at every
        // 16 384th), so a scan that read the whole ledger says "N/N records (100%)". The output is buffered 64 KiB at
        // a time, a few hundred records here: an export that stops at its first failed write never reaches the end.
        let progressAtTheEnd = "export: \(records)/\(records) records (100%)"
        let written = try await runToCompletion(
            ["-c", "exec \"$0\" export --data \"$1\" > /dev/null", binary, demo.directory], executable: "/bin/sh", stderrOnTerminal: true)
        #expect(written.succeeded && written.stderr.contains(progressAtTheEnd), "\(written.stderr)")
        let full = try await runToCompletion(
            ["-c", "exec \"$0\" export --data \"$1\" > /dev/full", binary, demo.directory], executable: "/bin/sh", stderrOnTerminal: true)
        #expect(full.exitedNormally && full.status == 1, "\(full.status)")
        #expect(full.stderr.contains("error: storage_error: cannot write the output: "), "\(full.stderr)")
        #expect(!full.stderr.contains("records (100%)"), "read on after its output failed: \(full.stderr)")
    }

    @Test("circuito case: the history with sealed fields opened, erased or unavailable; bad limits, ids and vaults and unknown ids refused, nothing created")
    func caseCommand() async throws {
        let demo = try await DemoLedger(seed: 7)
        defer { demo.remove() }
        let events = try await demo.events()
        let erased = try #require(events.first { $0["type"] == "subject.erased" }?["body"]?["beneficiary"]?.stringValue)
        let referrals = events.filter { $0["type"] == "case.referred" }
        let subject = try #require(referrals.first { $0["body"]?["beneficiary"]?.stringValue != erased }?["body"]?["beneficiary"]?.stringValue)
        let merchant = try #require(events.first { $0["type"] == "merchant.enrolled" }?["body"]?["merchant"]?.stringValue)
        func history(_ arguments: String...) async throws -> [JSONValue] {
            let result = try await circuito(["case", "--data", demo.directory] + arguments)
            try #require(result.succeeded, "\(result.stderr)")
            return try result.completeLines.map { try JSONParser.parse($0) }
        }

        // In seq order, each the event about the subject, the referral first with its personal data opened.
        let entries = try await history("--beneficiary", subject)
        let sequenceNumbers = entries.compactMap { $0["seq"]?.integerValue }
        #expect(sequenceNumbers.count == entries.count && sequenceNumbers == sequenceNumbers.sorted() && entries.count > 2)
        #expect(entries.first?["type"] == "case.referred")
        #expect(entries.first?["body"]?["sealed"] == DemoCircuit.personalData(seed: 7, subject: subject))
        await #expect(try history("--beneficiary", subject, "--limit", "2") == Array(entries.prefix(2)))
        await #expect(try history("--beneficiary", erased, "--limit", "1").first?["body"]?["sealed"] == "erased")
        // Another vault that is there, without the subject's key: unavailable.
        let emptyVault = demo.workspace.path("empty-vault")
        #expect(mkdir(emptyVault, 0o700) == 0)
        await #expect(try history("--beneficiary", subject, "--limit", "1", "--vault", emptyVault).first?["body"]?["sealed"] == "unavailable")

        // Refused by name, printing nothing and creating nothing.
        let missingVault = demo.workspace.path("no-vault")
        let refusals: [(arguments: [String], status: Int32, text: String)] = [
            // Usage errors (Specs/ledger.md section 12): exit 64.
            (["--beneficiary", subject, "--limit", "0"], 64, "--limit must be from 1 to 1000"),
            (["--beneficiary", subject, "--limit", "1001"], 64, "--limit must be from 1 to 1000"),
            (["--beneficiary", "ben 1"], 64, "--beneficiary must be an identifier"),
            (["--beneficiary", "ben-nobody"], 1, "error: not_found: the ledger knows no beneficiary \"ben-nobody\": no event concerns it"),
            (["--beneficiary", merchant], 1, "error: not_found: the ledger knows no beneficiary \"\(merchant)\": that id is registered as merchant"),
            (["--beneficiary", subject, "--vault", missingVault], 1, "error: not_found: there is no key vault at \(missingVault)"),
        ]
        for refusal in refusals {
            let result = try await circuito(["case", "--data", demo.directory] + refusal.arguments)
            #expect(result.status == refusal.status, "\(refusal.arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
            if refusal.status == 1 {
                #expect(result.stderr.hasPrefix(refusal.text), "\(result.stderr)")
            } else {
                #expect(result.stderr.contains(refusal.text), "\(result.stderr)")
            }
        }
        #expect(access(missingVault, F_OK) != 0, "a missing vault was created")
        // A vault open to others is refused, not changed.
        #expect(chmod(emptyVault, 0o755) == 0)
        let openVault = try await circuito("case", "--data", demo.directory, "--beneficiary", subject, "--vault", emptyVault)
        #expect(openVault.status == 1 && openVault.stdout.isEmpty)
        #expect(openVault.stderr.hasPrefix("error: key_file: key vault \(emptyVault) is open to group or others"), "\(openVault.stderr)")
        #expect(fileMode(emptyVault) == 0o755)
    }

    @Test("an erasure recorded through append leaves the key until vault erase removes it; case warns meanwhile; an unusable key is key_file, not unavailable")
    func erasureOutsideTheDemo() async throws {
        let demo = try await DemoLedger(seed: 17, beneficiaries: 12)
        defer { demo.remove() }
        let vault = demo.directory + "/vault"
        let events = try await demo.events()
        let erasedByDemo = try #require(events.first { $0["type"] == "subject.erased" }?["body"]?["beneficiary"]?.stringValue)
        let subjects = try KeyVault(existingDirectory: vault).subjects()
        #expect(!subjects.contains(erasedByDemo), "the demo erased its subject's key")
        let subject = try #require(subjects.first)
        let other = try #require(subjects.dropFirst().first)
        func caseHistory(_ beneficiary: String) async throws -> CLIResult { try await circuito("case", "--data", demo.directory, "--beneficiary", beneficiary) }
        await #expect(try caseHistory(subject).stdout.contains(#""sealed":{"#), "the subject's data opens before the erasure")

        // The authority records the erasure, as a help desk would through append or the server: the key stays.
        let authorityKey = demo.directory + "/keys/" + DemoCircuit.authorityID + ".key"
        let signed = try await circuito(
            ["sign", "--key", authorityKey, "--actor", DemoCircuit.authorityID],
            stdin: #"{"type":"subject.erased","body":{"beneficiary":"\#(subject)"}}"# + "\n")
        try #require(signed.succeeded, "\(signed.stderr)")
        let appended = try await circuito(["append", "--data", demo.directory], stdin: signed.stdout)
        try #require(appended.succeeded && !appended.stdout.contains("error"), "\(appended.stdout) \(appended.stderr)")
        #expect(access(vault + "/" + subject + ".key", F_OK) == 0)
        // The warning looks for the key file without reading it: one that group or others may read warns the same.
        #expect(chmod(vault + "/" + subject + ".key", 0o644) == 0)
        let warned = try await caseHistory(subject)
        #expect(warned.succeeded && warned.stdout.contains(#""sealed":"erased""#), "\(warned.stderr)")
        #expect(warned.stderr.contains("still holds its key") && warned.stderr.contains("circuito vault erase --vault \(vault) --beneficiary \(subject)"), "\(warned.stderr)")
        #expect(chmod(vault + "/" + subject + ".key", 0o600) == 0)

        // vault erase --data erases the keys of every subject the ledger records as erased, and only those.
        let erased = try await circuito("vault", "erase", "--vault", vault, "--data", demo.directory)
        #expect(erased.succeeded, "\(erased.stderr)")
        #expect(erased.stdout == "erased: \(subject)\n")
        #expect(access(vault + "/" + subject + ".key", F_OK) != 0)
        #expect(try KeyVault(existingDirectory: vault).subjects() == subjects.filter { $0 != subject })
        let quiet = try await caseHistory(subject)
        #expect(quiet.succeeded && !quiet.stderr.contains("still holds"), "\(quiet.stderr)")
        // Again: nothing left to erase.
        let again = try await circuito("vault", "erase", "--vault", vault, "--data", demo.directory)
        #expect(again.succeeded && again.stdout.isEmpty, "\(again.stdout)")
        // One beneficiary's key by name; a key that is not there is not_found; the options are one or the other.
        let byName = try await circuito("vault", "erase", "--vault", vault, "--beneficiary", other)
        #expect(byName.succeeded && byName.stdout == "erased: \(other)\n", "\(byName.stderr)")
        let missing = try await circuito("vault", "erase", "--vault", vault, "--beneficiary", other)
        #expect(missing.status == 1 && missing.stderr.hasPrefix("error: not_found: the key vault \(vault) holds no key for \(other)"), "\(missing.stderr)")
        for arguments in [["--vault", vault], ["--vault", vault, "--beneficiary", other, "--data", demo.directory]] {
            let usage = try await circuito(["vault", "erase"] + arguments)
            #expect(usage.status == 64 && usage.stderr.contains("give one of --beneficiary, --data or --server"), "\(usage.stderr)")
        }

        // A key file that is there but cannot be used is key_file, never "unavailable".
        let third = try #require(subjects.dropFirst(2).first)
        #expect(chmod(vault + "/" + third + ".key", 0o644) == 0)
        let unusable = try await caseHistory(third)
        #expect(unusable.status == 1 && unusable.stdout.isEmpty)
        #expect(unusable.stderr.hasPrefix("error: key_file: vault key \(vault)/\(third).key is readable by group or others"), "\(unusable.stderr)")
    }

    @Test("the key vault: one private file per subject, erased by overwriting and unlinking")
    func keyVault() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let vault = try KeyVault(directory: workspace.path("vault"))
        #expect(fileMode(workspace.path("vault")) == 0o700)
        let key = try vault.createKey(for: "ben-1")
        #expect(key.count == SecretBox.keyByteCount)
        #expect(try vault.key(for: "ben-1") == key)
        #expect(fileMode(workspace.path("vault/ben-1.key")) == 0o600)
        #expect(try vault.key(for: "ben-2") == nil)
        try vault.store([UInt8](repeating: 7, count: 32), for: "ben-2")
        #expect(try vault.subjects() == ["ben-1", "ben-2"])
        // A subject has one key: creating another is refused, and so are names that are not identifiers.
        #expect(throws: LedgerError.self) { try vault.createKey(for: "ben-1") }
        #expect(throws: LedgerError.self) { try vault.createKey(for: "../escape") }
        #expect(throws: LedgerError.self) { try vault.store([1, 2, 3], for: "ben-3") }
        // A key file others can read is refused.
        chmod(workspace.path("vault/ben-2.key"), 0o644)
        #expect(throws: LedgerError.self) { try vault.key(for: "ben-2") }
        #expect(try vault.erase(subject: "ben-1"))
        #expect(try vault.key(for: "ben-1") == nil)
        #expect(!FileManager.default.fileExists(atPath: workspace.path("vault/ben-1.key")))
        #expect(try vault.erase(subject: "ben-1") == false)
        #expect(try vault.subjects() == ["ben-2"])
    }

    @Test("erasing a vault key that is a sparse file of 1 TiB refuses it as no vault key (key_file) and leaves it, without taking its size in memory")
    func keyVaultEraseOfASparseFile() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let vault = try KeyVault(directory: workspace.path("vault"))
        let path = workspace.path("vault/ben-1.key")
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        try #require(descriptor >= 0)
        #expect(ftruncate(descriptor, 1 << 40) == 0)
        close(descriptor)
        let error = #expect(throws: LedgerError.self) { try vault.erase(subject: "ben-1") }
        #expect(error?.code == .keyFile, "\(String(describing: error))")
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test("erasing refuses a file that is not the subject's vault key (a folder given by mistake) and leaves it; a vault key whose key is damaged is still erased; a FIFO is refused, not waited on")
    func keyVaultEraseChecksWhatItErases() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        // The wallet keys' folder given as the vault: a wallet key and a ledger key under subjects' names.
        let keys = try KeyVault(directory: workspace.path("keys"))
        try KeyFile.write(Ed25519PrivateKey(), to: workspace.path("keys/ben-5.key"))
        try KeyFile.write(Ed25519PrivateKey(), to: workspace.path("keys/ledger.key"))
        let walletKey = try FileIO.readFile(workspace.path("keys/ben-5.key"), maximumBytes: 4096)
        for subject in ["ben-5", "ledger"] {
            #expect(throws: LedgerError.self, "\(subject)") { try keys.erase(subject: subject) }
            do {
                try keys.erase(subject: subject)
            } catch {
                #expect(error.code == .keyFile && error.message.contains("is not a vault key of \(subject)"), "\(error)")
            }
            #expect(throws: LedgerError.self) { try keys.key(for: subject) }
        }
        #expect(try FileIO.readFile(workspace.path("keys/ben-5.key"), maximumBytes: 4096) == walletKey, "the wallet key was left as it was")
        _ = try KeyFile.read(workspace.path("keys/ledger.key"))
        // A vault key file whose key bytes are damaged but that says whose it is: erased (its bytes may hold the key).
        let vault = try KeyVault(directory: workspace.path("vault"))
        try FileIO.writeSyncedFile(
            workspace.path("vault/ben-6.key"), text: #"{"alg":"xchacha20poly1305","key":"AAAA","subject":"ben-6"}"# + "\n", directory: vault.directory)
        #expect(throws: LedgerError.self) { try vault.key(for: "ben-6") }
        #expect(try vault.erase(subject: "ben-6"))
        #expect(access(workspace.path("vault/ben-6.key"), F_OK) != 0)
        // Larger than any vault key: key_file, as damage, not too_large.
        try FileIO.writeSyncedFile(workspace.path("vault/ben-7.key"), text: String(repeating: " ", count: 2048), directory: vault.directory)
        #expect(throws: LedgerError.self) { try vault.key(for: "ben-7") }
        do { _ = try vault.key(for: "ben-7") } catch { #expect(error.code == .keyFile, "\(error)") }
        // FIFOs under a key's name, with nobody writing: refused at once by every reader of keys and by erase.
        #expect(mkfifo(workspace.path("vault/ben-8.key"), 0o600) == 0)
        #expect(mkfifo(workspace.path("wallet.key"), 0o600) == 0)
        #expect(throws: LedgerError.self) { try vault.key(for: "ben-8") }
        #expect(throws: LedgerError.self) { try vault.erase(subject: "ben-8") }
        #expect(throws: LedgerError.self) { try KeyFile.read(workspace.path("wallet.key")) }
    }

    @Test("a demo killed half-way is marked unfinished: verify warns, and demo again removes it and builds the same ledger")
    func killedDemoStartsOver() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let directory = workspace.path("demo")
        let arguments = ["demo", "--data", directory, "--seed", "5", "--beneficiaries", "200"]
        let child = try ChildProcess(arguments)
        // Killed once its ledger holds some records (the whole demo writes about 15 MB).
        var status = stat()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && !(stat(directory + "/data.mdb", &status) == 0 && status.st_size >= 2 << 20) {
            try await Task.sleep(for: .milliseconds(5))
        }
        kill(child.pid, SIGKILL)
        let killed = await child.wait()
        try #require(killed.signaled && killed.status == SIGKILL, "the demo ended before the kill (status \(killed.status))")
        #expect(access(directory + "/demo.partial", F_OK) == 0)

        // What it left is a shorter ledger that verifies, with a warning that it is not the whole demo.
        let verify = try await circuito("verify", "--data", directory)
        #expect(verify.succeeded, "\(verify.stderr)")
        #expect(verify.stderr.contains("holds a demo that did not finish"), "\(verify.stderr)")

        let again = try await circuito(arguments, timeout: 600)
        #expect(again.succeeded, "\(again.stderr)")
        #expect(again.stderr.contains("removing it and building it again"), "\(again.stderr)")
        #expect(access(directory + "/demo.partial", F_OK) != 0)
        let verifyAgain = try await circuito("verify", "--data", directory)
        #expect(verifyAgain.succeeded && !verifyAgain.stderr.contains("did not finish"), "\(verifyAgain.stderr)")

        // The same ledger, keys and vault as a demo never stopped.
        let fresh = workspace.path("fresh")
        let whole = try await circuito(["demo", "--data", fresh, "--seed", "5", "--beneficiaries", "200"], timeout: 600)
        try #require(whole.succeeded, "\(whole.stderr)")
        #expect(again.stdout == whole.stdout)
        await #expect(try circuito("export", "--data", directory).stdout == (try circuito("export", "--data", fresh).stdout))
        for folder in ["keys", "vault"] {
            let names = { (root: String) in regularFiles(under: root + "/" + folder).map { $0.dropFirst(root.count) }.sorted() }
            #expect(names(directory) == names(fresh), "\(folder)")
            #expect(names(directory).count > 200)
        }
    }

    @Test("a stopped demo is removed only when it is the demo's: a ledger the marker does not name, a file it never writes, a writer running: refused, nothing removed")
    func unfinishedDemoWithForeignFile() async throws {
        let demo = try await DemoLedger(seed: 13, beneficiaries: 12)
        defer { demo.remove() }
        let before = try await demo.export()
        let demoKey = try KeyFile.read(demo.directory + "/ledger.key").publicKey.multikey
        func stopAgain() async throws -> CLIResult { try await circuito("demo", "--data", demo.directory, "--seed", "13", "--beneficiaries", "12") }
        func expectNothingRemoved(_ what: String) async throws {
            #expect(try await demo.export() == before, "\(what)")
            #expect(access(demo.directory + "/keys/" + DemoCircuit.authorityID + ".key", F_OK) == 0, "\(what)")
        }
        // A marker that does not name this ledger's checkpoint key: the ledger is not that demo's.
        #expect(FileManager.default.createFile(atPath: demo.directory + "/demo.partial", contents: Data("stopped\ncheckpoint_key z6MkOther\n".utf8)))
        let foreignLedger = try await stopAgain()
        #expect(foreignLedger.status == 1 && foreignLedger.stderr.contains("already_exists") && foreignLedger.stderr.contains("is not the checkpoint key"), "\(foreignLedger.stderr)")
        try await expectNothingRemoved("another ledger")
        // The demo's own marker, but a file in the vault that the demo never writes.
        #expect(FileManager.default.createFile(atPath: demo.directory + "/demo.partial", contents: Data("stopped\ncheckpoint_key \(demoKey)\n".utf8)))
        #expect(FileManager.default.createFile(atPath: demo.directory + "/vault/notes.txt", contents: Data("mine\n".utf8)))
        let foreignFile = try await stopAgain()
        #expect(foreignFile.status == 1)
        #expect(foreignFile.stderr.contains("already_exists") && foreignFile.stderr.contains("notes.txt"), "\(foreignFile.stderr)")
        try await expectNothingRemoved("a foreign file")
        #expect(access(demo.directory + "/vault/notes.txt", F_OK) == 0)
        #expect(unlink(demo.directory + "/vault/notes.txt") == 0)
        // A process writing the folder (a server on the stopped demo) holds its lock: nothing goes under it.
        let writerLock = open(demo.directory + "/writer.lock", O_RDWR)
        try #require(writerLock >= 0 && flock(writerLock, LOCK_EX | LOCK_NB) == 0)
        let besideWriter = try await stopAgain()
        close(writerLock)
        #expect(besideWriter.status == 1 && besideWriter.stderr.contains("ledger_locked"), "\(besideWriter.stderr)")
        try await expectNothingRemoved("a writer running")
    }

    @Test("a demo stopped by a power cut while its init wrote ledger.key (the key file empty, init.partial beside it) is started over; without init's marker such a key stops it")
    func demoCutWhileWritingItsKeyStartsOver() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let directory = workspace.path("demo")
        #expect(mkdir(directory, 0o700) == 0)
        // What such a cut leaves: both markers (each synced before the key file was made) and the key's name without
        // its bytes.
        let markerKey = Ed25519PrivateKey().publicKey.multikey
        #expect(FileManager.default.createFile(atPath: directory + "/demo.partial", contents: Data("stopped\ncheckpoint_key \(markerKey)\n".utf8)))
        #expect(FileManager.default.createFile(atPath: directory + "/ledger.key", contents: Data(repeating: 0, count: 147), attributes: [.posixPermissions: 0o600]))
        let withoutInitMarker = try await circuito("demo", "--data", directory, "--beneficiaries", "10")
        #expect(withoutInitMarker.status == 1 && withoutInitMarker.stderr.contains("key_file"), "\(withoutInitMarker.stderr)")
        #expect(access(directory + "/ledger.key", F_OK) == 0, "a key file no init was writing is not removed")

        #expect(FileManager.default.createFile(atPath: directory + "/init.partial", contents: Data("started\n".utf8)))
        let again = try await circuito("demo", "--data", directory, "--beneficiaries", "10")
        #expect(again.succeeded, "\(again.stderr)")
        #expect(again.stderr.contains("removing it and building it again"), "\(again.stderr)")
        #expect(access(directory + "/demo.partial", F_OK) != 0 && access(directory + "/init.partial", F_OK) != 0)
        let verify = try await circuito("verify", "--data", directory)
        #expect(verify.succeeded && !verify.stderr.contains("did not finish"), "\(verify.stderr)")
    }

    @Test("a demo whose ledger cannot be created (a stray ledger.key) leaves no marker that would later pass its folder off as a stopped demo")
    func refusedDemoLeavesNoMarker() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let directory = workspace.path("demo")
        #expect(mkdir(directory, 0o700) == 0)
        try KeyFile.write(Ed25519PrivateKey(), to: directory + "/ledger.key")
        let refused = try await circuito("demo", "--data", directory, "--beneficiaries", "10")
        #expect(refused.status == 1 && refused.stderr.contains("key_file"), "\(refused.stderr)")
        #expect(access(directory + "/demo.partial", F_OK) != 0)
        #expect(access(directory + "/ledger.key", F_OK) == 0, "the folder's own key stays")
    }

    @Test("a page zeroed inside data.mdb: verify ends with integrity_failure and exit 1, never a crash, or finds the page unused")
    func damagedPageIsReported() async throws {
        let demo = try await DemoLedger(seed: 3)
        defer { demo.remove() }
        let bytes = try #require(FileManager.default.contents(atPath: demo.directory + "/data.mdb"))
        let pageBytes = 4096
        try #require(bytes.count > 64 * pageBytes)
        var lmdbChecksCaught = 0
        var refused = 0
        // Pages 0 and 1 are LMDB's meta pages; the B-trees' first pages follow.
        for page in Array(stride(from: 2, to: 48, by: 3)) + [65] {
            let copy = demo.workspace.path("damaged-\(page)")
            try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: false)
            var damaged = bytes
            damaged.replaceSubrange(page * pageBytes..<(page + 1) * pageBytes, with: repeatElement(0, count: pageBytes))
            try damaged.write(to: URL(fileURLWithPath: copy + "/data.mdb"))
            let result = try await circuito("verify", "--data", copy)
            #expect(result.exitedNormally, "page \(page): verify died of a signal: \(result.stderr.prefix(300))")
            if result.status != 0 {
                refused += 1
                #expect(result.status == 1, "page \(page)")
                #expect(result.stderr.contains("integrity_failure: ") && result.stderr.contains("data.mdb is damaged"), "page \(page): \(result.stderr.prefix(300))")
                #expect(!result.stderr.contains("Backtrac"), "page \(page): a crash report")
                if result.stderr.contains("LMDB found a page that is not what its B-tree says") { lmdbChecksCaught += 1 }
            }
        }
        #expect(refused >= 4, "most of these pages are the log's, tree's or checkpoints' B-trees")
        #expect(lmdbChecksCaught >= 1, "at least one zeroed page trips one of LMDB's own checks")
    }

    @Test("the same seed gives the same ledger; another seed another")
    func determinism() async throws {
        let first = try await DemoLedger(seed: 11, beneficiaries: 12)
        defer { first.remove() }
        let second = try await DemoLedger(seed: 11, beneficiaries: 12)
        defer { second.remove() }
        let third = try await DemoLedger(seed: 12, beneficiaries: 12)
        defer { third.remove() }
        let exported = try await first.export()
        #expect(exported.count > 100)
        await #expect(exported == (try second.export()))
        await #expect(exported != (try third.export()))
        #expect(first.result.stdout == second.result.stdout)
        #expect(first.result.stdout != third.result.stdout)
    }

    @Test("--first-day moves the simulated year, which must end by today; a bad date is a usage error and creates nothing")
    func firstDay() async throws {
        // The latest first day whose year has ended: its last records are recent, so its last lots are still live.
        let dayMilliseconds = DemoCircuit.dayMilliseconds
        let latest = (Ledger.systemClockMilliseconds() / dayMilliseconds - Int64(DemoCircuit.dayCount + 1)) * dayMilliseconds
        let firstDay = String(Timestamp.format(millisecondsSince1970: latest).prefix(10))
        let shifted = try await DemoLedger(seed: 11, beneficiaries: 12, firstDay: firstDay)
        defer { shifted.remove() }
        let records = try await shifted.export().map { try JSONParser.parse($0) }
        let recordedAt = records.compactMap { $0["recorded_at"]?.stringValue }
        #expect(recordedAt.first?.hasPrefix(firstDay + "T") == true)
        let lastMilliseconds = try #require(recordedAt.last.flatMap(Timestamp.millisecondsSince1970))
        #expect(lastMilliseconds > latest + Int64(DemoCircuit.dayCount - 7) * dayMilliseconds && lastMilliseconds <= Ledger.systemClockMilliseconds())
        await #expect(try circuito("verify", "--data", shifted.directory).succeeded)
        // The same seed on the default year: the same kinds of events, other times.
        let standard = try await DemoLedger(seed: 11, beneficiaries: 12)
        defer { standard.remove() }
        let standardTypes = await Set(try standard.events().compactMap { $0["type"]?.stringValue })
        #expect(Set(records.compactMap { $0["event"]?["type"]?.stringValue }) == standardTypes)
        await #expect(try standard.export().first != records.first.map { CanonicalJSON.encodeString($0) })
        let tomorrow = String(Timestamp.format(millisecondsSince1970: latest + dayMilliseconds).prefix(10))
        for (date, message) in [
            (tomorrow, "the simulated year would end after today; the latest first day is \(firstDay)"),
            ("2025-02-30", "--first-day must be a date"), ("2025-1-02", "--first-day must be a date"),
        ] {
            let workspace = try Workspace()
            defer { workspace.remove() }
            let refused = try await circuito("demo", "--data", workspace.path("demo"), "--first-day", date)
            #expect(refused.status == 64 && refused.stderr.contains(message), "\(date): \(refused.stderr)")
            #expect(access(workspace.path("demo"), F_OK) != 0)
        }
    }

    @Test("the report: CSV parses, outstanding reconciles with the balances, the table says so")
    func report() async throws {
        let demo = try await DemoLedger(seed: 5)
        defer { demo.remove() }
        let csv = try await circuito("report", "--data", demo.directory, "--csv")
        try #require(csv.succeeded, "report --csv failed: \(csv.stderr)")
        let lines = csv.completeLines
        #expect(lines.first == "month,district,category,organisation,funded,converted,granted,spent,refunded,settled,expired,outstanding")
        var totals = [Int64](repeating: 0, count: 8)
        var months: Set<Substring> = []
        var categories: Set<Substring> = []
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            try #require(fields.count == 12, "bad CSV row: \(line)")
            months.insert(fields[0])
            categories.insert(fields[2])
            for index in 0..<8 { totals[index] += try cents(fields[4 + index]) }
        }
        // The demo covers 2025 month by month, with general ToCoin and earmarked doti.
        #expect(months.count == 12)
        #expect(categories.contains("general") && categories.contains("food"))
        let (funded, converted, granted, spent, refunded, settled, expired, outstanding) =
            (totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], totals[6], totals[7])
        #expect(funded > 0 && converted > 0 && granted > 0 && spent > 0 && refunded > 0 && settled > 0 && expired > 0)
        #expect(outstanding == converted + granted - expired - settled)
        #expect(refunded <= spent)

        // Outstanding is what beneficiaries, merchants and pending settlements hold.
        let reader = try LedgerReader.open(directory: demo.directory)
        let held = try reader.withState { (state) throws(LedgerError) -> Int64 in
            var total = try state.balance(Account.settlement)
            for prefix in ["beneficiary:", "merchant:"] {
                for entry in try state.entries(.balances, prefix: Array(prefix.utf8), limit: 1_000_000) {
                    total += Account.decode(entry.value) ?? 0
                }
            }
            return total
        }
        #expect(outstanding == held)
        #expect(held > 0)

        let table = try await circuito("report", "--data", demo.directory)
        try #require(table.succeeded, "report failed: \(table.stderr)")
        #expect(table.stdout.contains("reconciled."))
        #expect(!table.stdout.contains("NOT reconciled"))
        #expect(table.stdout.contains("By district") && table.stdout.contains("By organisation"))
        #expect(table.stdout.contains("Outstanding \(FundingReport.toc(held)) TOC"))
    }
}
