import ArgumentParser
import CircuitoCore
import CircuitoStorage

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "For funders: funded, converted, granted, spent, refunded, settled, expired and outstanding ToCoin per month, district, spending category and organisation.",
        discussion: FundingReport.attributionNotes + """


            Without --csv: a table of every (month, district, category, organisation) row with monthly subtotals, then \
            totals by district, category and organisation, then the reconciliation of outstanding with the balances. \
            With --csv: a header row, then one row per (month, district, category, organisation), amounts in TOC; \
            a district, category or organisation starting with =, +, -, @, tab or CR (other than the lone -) is \
            written quoted after a ' ("'-A1"), so that a spreadsheet does not run it as a formula (Specs/ledger.md 12).
            """)

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Flag(name: .long, help: "Print CSV (header row, one row per month, district, category and organisation).")
    var csv = false

    func run() throws {
        let output = StandardOutput()
        try reportingErrors { () throws(LedgerError) in
            // Every record, in order, maybe beside a server: read as export reads (Specs/ledger.md 10.4).
            let reader = try LedgerReader.openForScan(directory: data)
            let progress = ScanProgress(verb: "report", totalRecords: try reader.size())
            defer { progress.finish() }
            let text = try reader.withState { (state) throws(LedgerError) -> String in
                var report = FundingReport()
                // The records of the state's own snapshot: a writer's later appends are not in it.
                try reader.forEachRecord(in: state, from: 0) { (sequenceNumber, leafBytes) throws(LedgerError) -> Bool in
                    progress.read(sequenceNumber + 1)
                    try report.add(try Record(leafBytes: [UInt8](leafBytes)), state: state)
                    return true
                }
                return csv ? report.csv() : report.table(balances: try FundingReport.CirculatingBalances(state: state))
            }
            output.write(text)
        }
        output.flush()
    }
}
