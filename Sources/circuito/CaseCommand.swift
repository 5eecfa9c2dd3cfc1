import ArgumentParser
import CircuitoCore
import CircuitoStorage

struct CaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "case",
        abstract: "Print a beneficiary's case history (JSON Lines), personal data opened with the key vault.",
        discussion: """
            Sealed fields show their content when the vault holds the subject's key, "erased" after subject.erased, \
            "unavailable" when the vault has no key for the subject (or there is no vault), "undecryptable" when its \
            key does not open them. A key file that is there but cannot be used is refused (key_file). When the \
            ledger records the subject's erasure and the vault still holds its key, a warning says so (circuito \
            vault erase removes it). An id the ledger knows nothing of, or knows as another role, is refused \
            (not_found).
            """)

    /// The most events one run prints (the key vault opens each one's sealed fields).
    static let maximumLimit = LedgerReader.maximumCaseHistoryEntries

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "The beneficiary's pseudonymous id.")
    var beneficiary: String
    @Option(name: .long, help: "The key vault directory, which must be there (default: DATA/vault, if there).")
    var vault: String?
    @Option(name: .long, help: "At most this many events (1 to \(LedgerReader.maximumCaseHistoryEntries)).")
    var limit: Int = maximumLimit

    func validate() throws {
        guard (1...Self.maximumLimit).contains(limit) else { throw ValidationError("--limit must be from 1 to \(Self.maximumLimit)") }
        guard Identifier.isValid(beneficiary) else {
            throw ValidationError("--beneficiary must be an identifier (1 to 128 letters, digits and . _ : -)")
        }
    }

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            try excludeFromCoreDumps()
            let reader = try LedgerReader.open(directory: data)
            // Reading never creates or changes a vault: a named one must be there; without one, DATA/vault if it is.
            let keyVault: KeyVault?
            do throws(LedgerError) {
                keyVault = try KeyVault(existingDirectory: vault ?? data + "/vault")
            } catch {
                guard vault == nil, error.code == .notFound else { throw error }
                keyVault = nil
            }
            // An id registered with another role is no beneficiary, whatever was recorded under it before.
            if let actor = try reader.actorRecord(beneficiary), actor.role != .beneficiary {
                throw LedgerError(.notFound, "the ledger knows no beneficiary \(beneficiary.debugDescription): that id is registered as \(actor.role.rawValue)")
            }
            let entries = try reader.caseHistory(beneficiary: beneficiary, vault: keyVault, limit: limit)
            if entries.isEmpty, try reader.actorRecord(beneficiary) == nil {
                // Nothing printed would not tell a mistyped id from a beneficiary with no history: say which.
                throw LedgerError(.notFound, "the ledger knows no beneficiary \(beneficiary.debugDescription): no event concerns it")
            }
            let output = StandardOutput()
            for entry in entries { output.writeLine(entry) }
            output.flush()
            // The ledger says "erased", but the data is gone only once the key is: say so where it is not.
            if let keyVault, try reader.isErased(subject: beneficiary), keyVault.holdsKeyFile(for: beneficiary) {
                printError(
                    "warning: the ledger records the erasure of \(beneficiary), but the key vault \(keyVault.directory) still holds its key, which opens its sealed data; erase it: circuito vault erase --vault \(keyVault.directory) --beneficiary \(beneficiary)")
            }
        }
    }
}
