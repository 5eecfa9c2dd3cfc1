import ArgumentParser
import CircuitoCore
import CircuitoStorage

struct VaultCommand: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "vault",
        abstract: "The personal-data key vault: erase a person's key (crypto-shredding).",
        subcommands: [VaultEraseCommand.self])
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
            a vault is kept, after erasures are recorded.
            """)

    @Option(name: .long, help: "The key vault directory (it must be there, private to its owner).")
    var vault: String
    @Option(name: .long, help: "The beneficiary whose key to erase.")
    var beneficiary: String?
    @Option(name: .long, help: "A ledger: erase the key of every subject it records as erased.")
    var data: String?

    func validate() throws {
        guard (beneficiary == nil) != (data == nil) else { throw ValidationError("give either --beneficiary or --data") }
        if let beneficiary, !Identifier.isValid(beneficiary) {
            throw ValidationError("--beneficiary must be an identifier (1 to 128 letters, digits and . _ : -)")
        }
    }

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
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
}
