import ArgumentParser
import CircuitoCore
import CircuitoStorage

struct CaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "case",
        abstract: "Print a beneficiary's case history (JSON Lines), personal data opened with the key vault.",
        discussion: """
            Sealed fields show their content when the vault holds the subject's key, "erased" after subject.erased, \
            "unavailable" when the vault has no key for the subject.
            """)

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "The beneficiary's pseudonymous id.")
    var beneficiary: String
    @Option(name: .long, help: "The key vault directory (default: DATA/vault).")
    var vault: String?
    @Option(name: .long, help: "At most this many events (1 to 1000).")
    var limit: Int = 1000

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let reader = try LedgerReader.open(directory: data)
            let keyVault = try KeyVault(directory: vault ?? data + "/vault")
            let output = StandardOutput()
            for entry in try reader.caseHistory(beneficiary: beneficiary, vault: keyVault, limit: limit) { output.writeLine(entry) }
            output.flush()
        }
    }
}
