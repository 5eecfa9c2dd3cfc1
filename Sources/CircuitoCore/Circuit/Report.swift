/// The funders' report: what the programme funded and what became of the ToCoin it put into circulation, per
/// month, district, spending category and organisation. A pure fold over the records in seq order; the caller reads
/// the records and hands over the ledger state (`add(_:state:)`).
///
/// Every figure is cents of TOC moved by one event, attributed to one row (month, district, category,
/// organisation). `-` marks a dimension that does not apply.
/// - month: the UTC month of the record's `recorded_at` (the ledger's time, which expiry and caps use too).
/// - funded (`program.funded`): district and category `-`, organisation the authority.
/// - converted (`credits.converted`) and granted (`dote.granted`) put ToCoin into circulation as a lot, whose row is
///   fixed then, once: organisation = the organisation that converted or granted it (the signer, or the signing
///   staff member's organisation); district = that organisation's district (its `actor.registered`); category =
///   `general` for converted credits, the dote's category for a dote. A conversion's amount is the beneficiary's
///   account movement at that seq (state `account_history`), a dote's is in its body.
/// - spent (`payment.redeemed`): each debit of the payment (state `payments`: which lot, how much) counts in its
///   lot's row, in the payment's month. The category is the money's (what a dote was earmarked for, or `general`),
///   not what the shop sells.
/// - refunded (`payment.refunded`): back into the lots it came from, last debited first (the rule's order), in
///   those lots' rows, in the refund's month.
/// - expired (`tocoin.expired`): what was collected from the lot (the account movement at that seq), in its row.
/// - settled (`settlement.paid`): ToCoin that merchants turned into euros. Takings are traced first in, first out:
///   each payment's debits join the merchant's queue with their rows, a refund takes the refunded rows' amounts back
///   out (latest first), and `settlement.requested` takes its amount from the front of the queue; when the
///   settlement is paid those pieces count as settled in their rows, in the month the settlement is paid.
/// - outstanding = converted + granted − expired − settled: the row's net contribution to the ToCoin still in
///   circulation (held by beneficiaries, by merchants, or requested for settlement and not yet paid). Summed over all
///   rows it equals the balances of every beneficiary and merchant account plus the settlement account; summed over
///   the months of one district, category or organisation it is what that slice still has in circulation (exactly,
///   unless a merchant refunded out of other rows' takings after settling the refunded ones).
public struct FundingReport: Sendable {
    /// A dimension that does not apply, or money the report could not trace.
    public static let unattributed = "-"

    /// How the figures are attributed, for `circuito report --help`.
    public static let attributionNotes = """
        Amounts are TOC (integer cents printed with 2 decimals). Each figure is attributed to a row (month, district, \
        category, organisation); "-" means the dimension does not apply.
          month: UTC month of the record's recorded_at.
          funded: program.funded; organisation = the authority.
          converted, granted: credits.converted and dote.granted create a lot; its row is fixed then: organisation = \
        the organisation that signed (or whose staff signed), district = that organisation's district, category = \
        "general" for converted credits, the dote's category for a dote.
          spent: each debit of a payment.redeemed counts in its lot's row (the money's category, not the shop's).
          refunded: payment.refunded, back into the debited lots (last debited first), in their rows.
          expired: tocoin.expired, in the lot's row.
          settled: settlement.paid. Merchants' takings are traced to lot rows first in, first out (refunds take \
        back the refunded rows), so each settled cent counts in the row it was converted or granted in, in the \
        month the settlement is paid.
          outstanding = converted + granted - expired - settled: the row's net contribution to ToCoin still in \
        circulation. The total equals the balances of all beneficiaries and merchants plus settlements requested \
        and not yet paid; the table checks this.
        """

    public struct RowKey: Hashable, Comparable, Sendable {
        public let month: String
        public let district: String
        public let category: String
        public let organisation: String

        public init(month: String, district: String, category: String, organisation: String) {
            self.month = month
            self.district = district
            self.category = category
            self.organisation = organisation
        }

        public static func < (left: RowKey, right: RowKey) -> Bool {
            (left.month, left.district, left.category, left.organisation) < (right.month, right.district, right.category, right.organisation)
        }
    }

    public struct Figures: Hashable, Sendable {
        /// The most one column may add up to over the whole report. Every figure is a sum of positive amounts, so
        /// each row's and each slice's sum is at most the column's total; at a quarter of Int64's range,
        /// `outstanding` (two columns added, two taken away) cannot overflow either. Money that circulates again
        /// (funded, spent, settled, funded again) adds up without bound over the years, so a ledger can pass it:
        /// the report then says so.
        public static let maximumColumnTotal: Int64 = Int64.max / 4

        public var funded: Int64 = 0
        public var converted: Int64 = 0
        public var granted: Int64 = 0
        public var spent: Int64 = 0
        public var refunded: Int64 = 0
        public var settled: Int64 = 0
        public var expired: Int64 = 0

        public init() {}

        public var outstanding: Int64 { converted + granted - expired - settled }

        /// The summed columns, in report column order (`columnNames` without outstanding).
        static var columnKeyPaths: [WritableKeyPath<Figures, Int64>] { [\.funded, \.converted, \.granted, \.spent, \.refunded, \.settled, \.expired] }

        /// The figures in report column order, outstanding last.
        public var columns: [Int64] { [funded, converted, granted, spent, refunded, settled, expired, outstanding] }

        public static func + (left: Figures, right: Figures) -> Figures {
            var sum = left
            sum.funded += right.funded
            sum.converted += right.converted
            sum.granted += right.granted
            sum.spent += right.spent
            sum.refunded += right.refunded
            sum.settled += right.settled
            sum.expired += right.expired
            return sum
        }
    }

    public enum Dimension: String, Sendable, CaseIterable {
        case month, district, category, organisation

        func value(of key: RowKey) -> String {
            switch self {
            case .month: return key.month
            case .district: return key.district
            case .category: return key.category
            case .organisation: return key.organisation
            }
        }
    }

    public static let columnNames = ["funded", "converted", "granted", "spent", "refunded", "settled", "expired", "outstanding"]

    /// Where a lot's money is counted: fixed when the lot is created.
    struct Slice: Hashable, Sendable {
        let district: String
        let category: String
        let organisation: String
    }

    /// A slice by its number in `FundingReport.slices`: the takings' queues hold a piece for every run of payments
    /// from one lot row that a merchant has not sent to settlement yet, millions on a large ledger, and a piece that
    /// names its slice by number takes 16 bytes where one holding the slice itself took 56.
    typealias SliceNumber = Int

    struct Piece: Sendable {
        let slice: SliceNumber
        var amount: Int64
    }

    /// A merchant's takings not yet sent to settlement, oldest first.
    struct Holdings: Sendable {
        var pieces: [Piece] = []
        var head = 0

        mutating func deposit(_ slice: SliceNumber, _ amount: Int64) {
            if let last = pieces.last, pieces.count > head, last.slice == slice {
                pieces[pieces.count - 1].amount += amount
            } else {
                pieces.append(Piece(slice: slice, amount: amount))
            }
        }

        /// Takes `amount` from the oldest takings; what the queue cannot cover comes back unattributed.
        mutating func withdrawOldest(_ amount: Int64) -> [Piece] {
            var taken: [Piece] = []
            var left = amount
            while left > 0 && head < pieces.count {
                let piece = min(left, pieces[head].amount)
                taken.append(Piece(slice: pieces[head].slice, amount: piece))
                pieces[head].amount -= piece
                left -= piece
                if pieces[head].amount == 0 { head += 1 }
            }
            if left > 0 { taken.append(Piece(slice: FundingReport.unattributedSliceNumber, amount: left)) }
            compact()
            return taken
        }

        /// Takes `amount` back for a refund: from the latest takings of `slice`, then from the latest of any row.
        mutating func withdrawLatest(_ amount: Int64, preferring slice: SliceNumber) {
            var left = amount
            var emptied = false
            for preferred in [true, false] {
                // From the latest back, only as far as the refund needs: a long queue is not walked for a small one.
                for index in stride(from: pieces.count - 1, through: head, by: -1) {
                    guard left > 0 else { break }
                    guard !preferred || pieces[index].slice == slice, pieces[index].amount > 0 else { continue }
                    let piece = min(left, pieces[index].amount)
                    pieces[index].amount -= piece
                    left -= piece
                    if pieces[index].amount == 0 { emptied = true }
                }
            }
            if emptied { pieces.replaceSubrange(head..., with: pieces[head...].filter { $0.amount > 0 }) }
            compact()
        }

        private mutating func compact() {
            if head > 64 && head * 2 > pieces.count {
                pieces.removeFirst(head)
                head = 0
            }
        }
    }

    static let unattributedSlice = Slice(district: unattributed, category: unattributed, organisation: unattributed)
    /// `unattributedSlice`'s number: the first in every report's `slices`.
    static let unattributedSliceNumber: SliceNumber = 0

    public private(set) var rows: [RowKey: Figures] = [:]
    /// Every row added up, kept as the rows grow so that no sum of them can pass `Figures.maximumColumnTotal`.
    private var columnTotals = Figures()
    /// Records folded so far.
    public private(set) var recordCount: UInt64 = 0
    public private(set) var origin = ""

    private var authority = unattributed
    private var organisationDistricts: [String: String] = [:]
    private var staffOrganisations: [String: String] = [:]
    /// Every slice money has been counted in, each once, numbered in the order they came (`SliceNumber`).
    private var slices: [Slice] = [FundingReport.unattributedSlice]
    private var sliceNumbers: [Slice: SliceNumber] = [FundingReport.unattributedSlice: FundingReport.unattributedSliceNumber]
    private var lotSlices: [UInt64: SliceNumber] = [:]
    private var merchantHoldings: [String: Holdings] = [:]
    private var settlementPieces: [String: [Piece]] = [:]
    /// Per payment, what each debit has had refunded so far.
    private var refundedDebits: [String: [Int64]] = [:]

    /// The bound on each column's total: `Figures.maximumColumnTotal`, lower only in tests (no test can sign the
    /// millions of events that reach the real one).
    let maximumColumnTotal: Int64

    public init() { self.init(maximumColumnTotal: Figures.maximumColumnTotal) }

    init(maximumColumnTotal: Int64) {
        precondition(maximumColumnTotal > 0 && maximumColumnTotal <= Figures.maximumColumnTotal, "a report's column bound is within the one that keeps its sums in range")
        self.maximumColumnTotal = maximumColumnTotal
    }

    /// Folds one record. `state` is the ledger state after this record or any later one: the fold reads only what
    /// an event wrote at its own seq (`account_history` movements and the payment's debits), which later events
    /// never change.
    public mutating func add(_ record: Record, state: some LedgerStateReader) throws(LedgerError) {
        guard record.sequenceNumber == recordCount else {
            throw LedgerError(.invalidRange, "the report folds records in seq order: expected seq \(recordCount), got \(record.sequenceNumber)")
        }
        recordCount += 1
        let event = record.signedEvent.event
        let body = BodyReader(event.body, type: event.type)
        let month = String(record.recordedAt.prefix(7))
        switch event.type {
        case "ledger.genesis":
            authority = event.actor
            origin = event.body["origin"]?.stringValue ?? ""
        case "actor.registered":
            let actor = try body.identifier("actor")
            switch event.body["role"]?.stringValue {
            case "organisation": organisationDistricts[actor] = event.body["district"]?.stringValue ?? Self.unattributed
            case "staff": staffOrganisations[actor] = event.body["organisation"]?.stringValue
            default: break
            }
        case "program.funded":
            let amount = try body.positiveAmount("amount")
            try add(amount, to: \.funded, RowKey(month: month, district: Self.unattributed, category: Self.unattributed, organisation: authority))
        case "credits.converted":
            let beneficiary = try body.identifier("beneficiary")
            let amount = try Self.movement(of: Account.beneficiary(beneficiary), at: record.sequenceNumber, state: state, credit: true)
            let slice = number(signerSlice(event.actor, category: Lot.general))
            lotSlices[record.sequenceNumber] = slice
            try add(amount, to: \.converted, month, slice)
        case "dote.granted":
            let amount = try body.positiveAmount("amount")
            let slice = number(signerSlice(event.actor, category: try body.slug("category")))
            lotSlices[record.sequenceNumber] = slice
            try add(amount, to: \.granted, month, slice)
        case "payment.redeemed":
            let debits = try Self.debits(ofPayment: event.id, state: state)
            for debit in debits {
                let slice = lotSlices[debit.lot] ?? number(Slice(district: Self.unattributed, category: debit.category, organisation: Self.unattributed))
                try add(debit.amount, to: \.spent, month, slice)
                merchantHoldings[event.actor, default: Holdings()].deposit(slice, debit.amount)
            }
        case "payment.refunded":
            let paymentID = try body.identifier("payment")
            let debits = try Self.debits(ofPayment: paymentID, state: state)
            var refunded = refundedDebits[paymentID] ?? Array(repeating: 0, count: debits.count)
            var left = try body.positiveAmount("amount")
            // The rule's order: last debited first.
            for index in debits.indices.reversed() where left > 0 && index < refunded.count {
                let back = min(left, debits[index].amount - refunded[index])
                guard back > 0 else { continue }
                refunded[index] += back
                left -= back
                let slice = lotSlices[debits[index].lot]
                    ?? number(Slice(district: Self.unattributed, category: debits[index].category, organisation: Self.unattributed))
                try add(back, to: \.refunded, month, slice)
                merchantHoldings[event.actor, default: Holdings()].withdrawLatest(back, preferring: slice)
            }
            refundedDebits[paymentID] = refunded
        case "settlement.requested":
            let amount = try body.positiveAmount("amount")
            settlementPieces[event.id] = merchantHoldings[event.actor, default: Holdings()].withdrawOldest(amount)
        case "settlement.paid":
            let settlement = try body.identifier("settlement")
            for piece in settlementPieces[settlement] ?? [] {
                try add(piece.amount, to: \.settled, month, piece.slice)
            }
            settlementPieces[settlement] = nil
        case "tocoin.expired":
            let beneficiary = try body.identifier("beneficiary")
            let lot = try body.integer("lot")
            let amount = -(try Self.movement(of: Account.beneficiary(beneficiary), at: record.sequenceNumber, state: state, credit: false))
            let slice = lotSlices[UInt64(max(0, lot))] ?? Self.unattributedSliceNumber
            try add(amount, to: \.expired, month, slice)
        default:
            break
        }
    }

    private mutating func add(_ amount: Int64, to column: WritableKeyPath<Figures, Int64>, _ month: String, _ sliceNumber: SliceNumber) throws(LedgerError) {
        let slice = slices[sliceNumber]
        try add(amount, to: column, RowKey(month: month, district: slice.district, category: slice.category, organisation: slice.organisation))
    }

    /// `slice`'s number, given it now if it has none yet. At most one slice per lot, so as many as the ledger has
    /// records at the very most.
    private mutating func number(_ slice: Slice) -> SliceNumber {
        if let known = sliceNumbers[slice] { return known }
        slices.append(slice)
        sliceNumbers[slice] = slices.count - 1
        return slices.count - 1
    }

    /// Adds to one row's column, within `Figures.maximumColumnTotal` for the column's total over every row.
    private mutating func add(_ amount: Int64, to column: WritableKeyPath<Figures, Int64>, _ key: RowKey) throws(LedgerError) {
        assert(amount > 0, "the report adds only positive amounts")
        let total = columnTotals[keyPath: column]
        guard amount <= maximumColumnTotal - total else {
            let name = Self.columnNames[Figures.columnKeyPaths.firstIndex(of: column) ?? 0]
            throw LedgerError(.tooLarge, "the report's \(name) column would pass \(maximumColumnTotal) cents at seq \(recordCount - 1): more than one report can add up")
        }
        columnTotals[keyPath: column] = total + amount
        rows[key, default: Figures()][keyPath: column] += amount
    }

    /// The organisation an event's signer acts for, and its district.
    private func signerSlice(_ actor: String, category: String) -> Slice {
        let organisation = organisationDistricts[actor] != nil ? actor : (staffOrganisations[actor] ?? Self.unattributed)
        return Slice(district: organisationDistricts[organisation] ?? Self.unattributed, category: category, organisation: organisation)
    }

    /// The signed movement of `account` made by the record at `sequenceNumber`: a credit (positive) or a debit
    /// (negative), as the event's rule wrote it.
    static func movement(of account: String, at sequenceNumber: UInt64, state: some LedgerStateReader, credit: Bool) throws(LedgerError) -> Int64 {
        let key = StateKey.prefix(account) + StateKey.number(sequenceNumber)
        guard let bytes = try state.value(.accountHistory, key), let movement = Account.decode(bytes) else {
            throw LedgerError(.notFound, "the state has no movement of \(account) at seq \(sequenceNumber): report on records and state of the same ledger")
        }
        // Every transfer moves 1 to Amounts.maximum cents; anything else is a damaged state (Int64.min cannot even be
        // negated, and large ones overflow the report's sums).
        guard movement != 0, movement.magnitude <= UInt64(Amounts.maximum), (movement > 0) == credit else {
            throw LedgerError(.integrity, "the stored movement of \(account) at seq \(sequenceNumber) is damaged: \(movement) cents")
        }
        return movement
    }

    struct Debit {
        let lot: UInt64
        let category: String
        let amount: Int64
    }

    static func debits(ofPayment id: String, state: some LedgerStateReader) throws(LedgerError) -> [Debit] {
        guard let payment = try state.json(.payments, id), case .array(let debits)? = payment["debits"] else {
            throw LedgerError(.notFound, "the state has no payment \(quoted(id)): report on records and state of the same ledger")
        }
        // A payment debits at most the live lots of one beneficiary, each by 1 to Amounts.maximum cents: more is a
        // damaged state, whose amounts would overflow the report's sums.
        guard debits.count <= Lot.maximumLive else {
            throw LedgerError(.integrity, "stored payment \(id) has \(debits.count) debits, more than the \(Lot.maximumLive) lots a payment can debit")
        }
        var result: [Debit] = []
        for debit in debits {
            guard case .integer(let lot)? = debit["lot"], lot >= 0, case .string(let category)? = debit["category"],
                case .integer(let amount)? = debit["amount"], amount > 0, amount <= Amounts.maximum
            else { throw LedgerError(.integrity, "stored payment \(id) has a damaged debit") }
            result.append(Debit(lot: UInt64(lot), category: category, amount: amount))
        }
        return result
    }

    // MARK: Summaries

    public var sortedRows: [(key: RowKey, figures: Figures)] {
        rows.sorted { $0.key < $1.key }.map { (key: $0.key, figures: $0.value) }
    }

    public var total: Figures { columnTotals }

    /// The figures summed over every row with the same value of `dimension`, in value order.
    public func totals(by dimension: Dimension) -> [(value: String, figures: Figures)] {
        var sums: [String: Figures] = [:]
        for (key, figures) in rows { sums[dimension.value(of: key), default: Figures()] = sums[dimension.value(of: key), default: Figures()] + figures }
        return sums.sorted { $0.key < $1.key }.map { (value: $0.key, figures: $0.value) }
    }

    /// What is in circulation according to the balances: beneficiaries, merchants, and the settlement account.
    public struct CirculatingBalances: Sendable, Hashable {
        public let beneficiaries: Int64
        public let merchants: Int64
        public let settlement: Int64
        public var total: Int64 { beneficiaries + merchants + settlement }

        public init(beneficiaries: Int64, merchants: Int64, settlement: Int64) {
            self.beneficiaries = beneficiaries
            self.merchants = merchants
            self.settlement = settlement
        }

        /// Sums the balances table (bounded: at most `limit` accounts of each kind).
        public init(state: some LedgerStateReader, limit: Int = 10_000_000) throws(LedgerError) {
            func sum(prefix: String) throws(LedgerError) -> Int64 {
                var total: Int64 = 0
                for entry in try state.entries(.balances, prefix: Array(prefix.utf8), limit: limit) {
                    guard let balance = Account.decode(entry.value) else { throw LedgerError(.integrity, "a balance under \(prefix) is damaged") }
                    // The rules keep every sum of balances within Int64 (issuance's balance is minus all others): one
                    // past it is a damaged state.
                    let (sum, overflow) = total.addingReportingOverflow(balance)
                    guard !overflow else { throw LedgerError(.integrity, "the balances under \(prefix) are damaged: their sum overflows") }
                    total = sum
                }
                return total
            }
            let beneficiaries = try sum(prefix: Account.beneficiary(""))
            let merchants = try sum(prefix: Account.merchant(""))
            let settlement = try state.balance(Account.settlement)
            // `total` adds the three.
            let (partial, partialOverflow) = beneficiaries.addingReportingOverflow(merchants)
            guard !partialOverflow, !partial.addingReportingOverflow(settlement).overflow else {
                throw LedgerError(.integrity, "the balances of beneficiaries, merchants and settlement are damaged: their sum overflows")
            }
            self.init(beneficiaries: beneficiaries, merchants: merchants, settlement: settlement)
        }
    }

    // MARK: Text

    /// Cents as TOC with two decimals: `1234.50`, `-0.05`.
    public static func toc(_ cents: Int64) -> String {
        let magnitude = cents.magnitude
        let fraction = magnitude % 100
        return (cents < 0 ? "-" : "") + String(magnitude / 100) + "." + (fraction < 10 ? "0" : "") + String(fraction)
    }

    /// One row per (month, district, category, organisation) with any movement, in that order, after a header row.
    public func csv() -> String {
        var lines = [(Dimension.allCases.map(\.rawValue) + Self.columnNames).joined(separator: ",")]
        for (key, figures) in sortedRows {
            let fields = [key.month, key.district, key.category, key.organisation].map(Self.csvField) + figures.columns.map(Self.toc)
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The first characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection").
    static let formulaStarts: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]

    /// A text column's field. One that a spreadsheet would run as a formula gets a `'` before it, quoted: district and
    /// organisation are identifiers, which may start with `-` (`-A1` would show another cell), and an auditor
    /// opens the report of a ledger the authority chose those ids for. The lone `-` of a dimension that does not
    /// apply is no formula and stays as it is. Amounts are never text fields: `-0.05` stays a number.
    static func csvField(_ text: String) -> String {
        // Scalars, not characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
        let scalars = text.unicodeScalars
        let formula = scalars.first.map { formulaStarts.contains($0) } == true && text != unattributed
        guard formula || scalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + (formula ? "'" : "") + text.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }

    /// The readable report: every row grouped by month with monthly subtotals and the total, then the totals by
    /// district, category and organisation, then the reconciliation of outstanding with the balances.
    public func table(balances: CirculatingBalances) -> String {
        let months = totals(by: .month)
        var text = "Circuito funding report: \(origin.isEmpty ? "ledger" : origin), \(recordCount) records"
        if let first = months.first?.value, let last = months.last?.value { text += ", \(first) to \(last)" }
        text += ". Amounts in TOC.\n\n"

        var detail: [[String]] = []
        var separators: Set<Int> = []
        for (month, monthTotal) in months {
            for (key, figures) in sortedRows where key.month == month {
                detail.append([key.month, key.district, key.category, key.organisation] + figures.columns.map(Self.toc))
            }
            detail.append(["", "", "", "subtotal " + month] + monthTotal.columns.map(Self.toc))
            separators.insert(detail.count)
        }
        detail.append(["total", "", "", ""] + total.columns.map(Self.toc))
        text += Self.render(header: Dimension.allCases.map(\.rawValue) + Self.columnNames, rows: detail, textColumns: 4, separatorsBefore: separators.union([detail.count - 1]))

        for (dimension, title) in [(Dimension.district, "By district"), (.category, "By spending category"), (.organisation, "By organisation")] {
            text += "\n" + title + "\n"
            var rows = totals(by: dimension).map { [$0.value] + $0.figures.columns.map(Self.toc) }
            rows.append(["total"] + total.columns.map(Self.toc))
            text += Self.render(header: [dimension.rawValue] + Self.columnNames, rows: rows, textColumns: 1, separatorsBefore: [rows.count - 1])
        }

        let outstanding = total.outstanding
        text += "\nOutstanding \(Self.toc(outstanding)) TOC; balances: beneficiaries \(Self.toc(balances.beneficiaries)) + merchants "
            + "\(Self.toc(balances.merchants)) + settlements requested and not yet paid \(Self.toc(balances.settlement)) = \(Self.toc(balances.total)) TOC: "
            + (outstanding == balances.total ? "reconciled.\n" : "NOT reconciled (difference \(Self.difference(outstanding, balances.total))).\n")
        return text
    }

    /// `left − right` in TOC. Damaged balances can be anywhere in Int64's range, so the difference may not fit.
    static func difference(_ left: Int64, _ right: Int64) -> String {
        let (difference, overflow) = left.subtractingReportingOverflow(right)
        return overflow ? "beyond 64 bits of cents" : toc(difference)
    }

    /// Columns padded to their widest cell: text left-aligned, amounts right-aligned; a rule before chosen rows.
    static func render(header: [String], rows: [[String]], textColumns: Int, separatorsBefore: Set<Int>) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let padding = String(repeating: " ", count: max(0, widths[index] - cell.count))
                return index < textColumns ? cell + padding : padding + cell
            }.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
        }
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * max(0, widths.count - 1)) + "\n"
        var text = line(header) + rule
        for (index, row) in rows.enumerated() {
            if separatorsBefore.contains(index) { text += rule }
            text += line(row)
        }
        return text
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
