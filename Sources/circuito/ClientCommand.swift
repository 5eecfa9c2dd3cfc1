import ArgumentParser
import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Glibc

struct ClientCommand: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Talk to a running `circuito serve`: submit events, read balances, histories, the catalogue, proofs.",
        discussion: """
            Results are printed as canonical JSON, one per line; a refusal as `error: <code>: <message>` with exit \
            status 1. Reads of personal or account data are signed with --key and --actor (Specs/protocol.md).
            """,
        subcommands: [
            ClientInfoCommand.self, ClientSubmitCommand.self, ClientBalanceCommand.self, ClientHistoryCommand.self,
            ClientCaseCommand.self, ClientCatalogueCommand.self, ClientActorCommand.self, ClientBadgeCommand.self,
            ClientStatusListCommand.self, ClientCheckpointCommand.self, ClientProofCommand.self, ClientEventsCommand.self,
            ClientReportCommand.self, ClientSubscribeCommand.self, ClientSettlementCommand.self,
            ClientPolicyCommand.self, ClientCasesCommand.self, ClientExpiredLotsCommand.self,
        ])
}

/// A seq, size or position option: a whole number JSON carries exactly (at most 2^53 - 1, as the server takes
/// them), refused as a usage error before anything is sent.
enum SequenceNumberOption {
    static let maximum = UInt64(JSONValue.maximumExactInteger)

    static func parse(_ text: String) throws -> UInt64 {
        guard let value = UInt64(text), value <= maximum else {
            throw ValidationError("must be a whole number from 0 to \(maximum)")
        }
        return value
    }
}

/// Options every client subcommand takes.
struct ServerOptions: ParsableArguments {
    @Option(name: .long, help: "The server: HOST:PORT, or a Unix socket path (unix:PATH, a path with a /, or a name without a :).")
    var server: String = "127.0.0.1:7411"
    @Option(name: .customLong("timeout"), help: ArgumentHelp("Seconds to wait for an answer (1 to 86400).", valueName: "timeout"))
    var timeoutSeconds: Int = 30

    func validate() throws {
        // 0 would be no timeout at all to the socket, a negative one none that makes sense.
        guard (1...86_400).contains(timeoutSeconds) else { throw ValidationError("--timeout must be from 1 to 86400 seconds") }
    }

    func connect() throws(LedgerError) -> LineClient {
        try LineClient(try Endpoint(parsing: server), timeoutSeconds: timeoutSeconds)
    }
}

/// The reader a signed read is made as.
struct ReaderOptions: ParsableArguments {
    @Option(name: .long, help: "Secret key file of the reader (signs the read request).")
    var key: String?
    @Option(name: .long, help: "Actor id of the reader.")
    var actor: String?

    func signed(_ method: String, _ params: JSONValue) throws(LedgerError) -> JSONValue {
        guard let key, let actor else {
            throw LedgerError(.invalidReadRequest, "\(method) is a signed read: give --key and --actor")
        }
        return ReadAuthorisation.sign(method: method, params: params, actor: actor, key: try readSigningKey(key), nowMilliseconds: Ledger.systemClockMilliseconds())
    }

    /// For a method that is public unless what it reads is personal: signed when --key and --actor are given.
    func signedIfGiven(_ method: String, _ params: JSONValue) throws(LedgerError) -> JSONValue {
        if key == nil && actor == nil { return params }
        return try signed(method, params)
    }
}

extension RPCError {
    /// A server's refusal as the client reports it: its code's name and number and its message, as the server gave them.
    var asLedgerError: LedgerError { LedgerError(.init(name: name ?? "rpc_error", number: code), message) }
}

/// Calls one method and prints its result (or the lines `printing` makes of it); a refusal becomes the common error
/// line and exit status 1.
func clientCall(
    _ options: ServerOptions, _ method: String, _ params: () throws(LedgerError) -> JSONValue, printing: ((JSONValue) -> [JSONValue])? = nil
) throws {
    try reportingErrors { () throws(LedgerError) in
        // The request first: a read without its key, or a key file that cannot be read, is named as such also when
        // the server cannot be reached (it was reported as connection_failed).
        let request = try params()
        let client = try options.connect()
        switch try client.call(method, request) {
        case .success(let result):
            let output = StandardOutput()
            for line in printing?(result) ?? [result] { output.writeLine(line) }
            output.flush()
        case .failure(let error):
            throw error.asLedgerError
        }
    }
}

struct ClientInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "The server's origin, verifier key, size and bounds.")
    @OptionGroup var options: ServerOptions

    func run() throws { try clientCall(options, "server.info") { () throws(LedgerError) in .object([:]) } }
}

struct ClientSubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit events (JSON Lines); print one receipt or refusal per line.",
        discussion: """
            Lines that are signed events ({"event":…,"sig":…}) are sent as they are; unsigned ones (at least type \
            and body) are signed with --key as --actor first, filling v, key, ts and a random id. A refusal prints \
            {"error":<the JSON-RPC error object>,"line":N}; a line that cannot be read or signed is refused so too, \
            here, and the lines after it are still sent. With --batch, all lines (at most \(Ledger.maximumBatchCount) \
            events: a longer input is refused, and nothing is sent) go in one submit_batch: all or nothing (a \
            refusal prints {"error":…} with data.index; with a line that cannot be read, nothing is sent). \
            Exit status 1 if any event was refused. When the connection breaks or times out before an answer, the \
            event may have been recorded: its line is connection_failed with the signed event as sent in data.event \
            (data.events for a batch), to be sent again as it is (a recorded one is answered with its first receipt), \
            and nothing after it is sent. An answer that cannot be written (a full disk) is given on standard error \
            instead, nothing after its line is sent, and the exit status is 1. With \
            --verifier-key, each receipt is checked as Specs/ledger.md 7.4 says, after it is printed: its \
            checkpoint's signature, that its sig signs the event sent, its leaf rebuilt from that event with its seq, \
            recorded_at and sig, and the inclusion proof the server gives for it; the first that fails stops the \
            command with integrity_failure.
            """)

    /// The most events `--batch` reads: a server's `submit_batch` bound is at most its commit's, at most a ledger
    /// batch (`LedgerServer.start` refuses more), 256 by default.
    static let maximumBatchEvents = Ledger.maximumBatchCount

    @OptionGroup var options: ServerOptions
    @Option(name: .long, help: "Secret key file that signs unsigned events.")
    var key: String?
    @Option(name: .long, help: "Actor id that signs unsigned events.")
    var actor: String?
    @Flag(name: .long, help: "Submit every event in one all-or-nothing submit_batch.")
    var batch = false
    @Option(name: .long, help: "Refuse unless the log holds this many records when the first event sent (of a batch: the batch) is written; the events after a first one so refused are not sent.", transform: SequenceNumberOption.parse)
    var expectedSize: UInt64?
    @Option(name: .long, help: "Check each receipt with the ledger's checkpoint verifier key (NAME+KEYID+BASE64).")
    var verifierKey: String?
    @Argument(help: "File of events (JSON Lines); standard input when absent.")
    var file: String?

    func run() throws {
        let output = StandardOutput()
        var refused = 0
        try reportingErrors { () throws(LedgerError) in
            let descriptor: Int32
            if let file {
                descriptor = open(file, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { throw LedgerError(.notFound, "cannot open \(file): \(String(cString: strerror(errno)))") }
            } else {
                descriptor = 0
            }
            defer { if descriptor != 0 { close(descriptor) } }
            let signingKey = try key.map { (path) throws(LedgerError) in try readSigningKey(path) }
            let verifier = try verifierKey.map { (text) throws(LedgerError) in try NoteVerifier(parsing: text) }
            let client = try options.connect()
            var reader = LineReader(descriptor: descriptor, source: file ?? "input", maximumLineBytes: EventLimits.maximumSignedEventBytes)
            var events: [JSONValue] = []
            // Lines this client could not read or sign: refused here, each as the server refuses (its line and the
            // error object), and the lines after it go on. A batch with such a line is not sent (all or nothing).
            var unreadableLines = 0
            var sentAny = false
            // Set when the guarded first event was refused with size_mismatch: the rest were meant for that size
            // too, so they are not sent.
            var guardRefusal: RPCError?
            var lineNumber = 0
            sending: while let line = try reader.next() {
                lineNumber += 1
                let signed: JSONValue
                do throws(LedgerError) {
                    guard case .text(let bytes) = line else {
                        throw LedgerError(.tooLarge, "line \(lineNumber) is longer than \(EventLimits.maximumSignedEventBytes) bytes")
                    }
                    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                    let value = try JSONParser.parse(bytes)
                    signed = value["sig"] != nil ? value : try sign(value, key: signingKey)
                } catch {
                    unreadableLines += 1
                    refused += 1
                    guard Self.written(.object(["line": .integer(Int64(lineNumber)), "error": RPCError(error).json]), line: lineNumber, to: output) else {
                        break sending
                    }
                    continue
                }
                if batch {
                    // Held until the input ends: a longer input is refused as soon as it shows, instead of being read
                    // whole into memory (or, from a pipe that stays open, waited on for ever) for a request no
                    // server takes.
                    guard events.count < Self.maximumBatchEvents else {
                        throw LedgerError(
                            .tooLarge,
                            "--batch sends at most \(Self.maximumBatchEvents) events, in one submit_batch (no server takes more); the input holds more: nothing was sent")
                    }
                    events.append(signed)
                    continue
                }
                if let guardRefusal {
                    refused += 1
                    let refusal = RPCError(
                        code: guardRefusal.code, message: "not sent: the first event was refused (\(guardRefusal.message))",
                        data: guardRefusal.data)
                    guard Self.written(.object(["line": .integer(Int64(lineNumber)), "error": refusal.json]), line: lineNumber, to: output) else {
                        break sending
                    }
                    continue
                }
                var params = signed.objectValue ?? [:]
                // The guard is for the first event sent, wherever it is in the input.
                let guarded = expectedSize != nil && !sentAny
                if let expectedSize, guarded { params["expected_size"] = .integer(Int64(expectedSize)) }
                sentAny = true
                switch try Self.submit(params, method: "submit", on: client, line: lineNumber, sent: [signed], output: output) {
                case .success(let receipt):
                    guard Self.written(receipt, line: lineNumber, to: output) else { break sending }
                    if let verifier { try Self.check(receipt, submitted: signed, verifier: verifier, client: client) }
                case .failure(let error):
                    refused += 1
                    guard Self.written(.object(["line": .integer(Int64(lineNumber)), "error": error.json]), line: lineNumber, to: output) else {
                        break sending
                    }
                    if guarded && error.name == LedgerError.Code.sizeMismatch.name { guardRefusal = error }
                }
            }
            if batch && unreadableLines > 0 {
                // All or nothing: the readable events are not sent either.
                refused += events.count
                printError("error: the batch was not sent: \(unreadableLines) line(s) could not be read or signed")
                events = []
            }
            if batch && !events.isEmpty {
                var params: JSONObject = ["events": .array(events)]
                if let expectedSize { params["expected_size"] = .integer(Int64(expectedSize)) }
                switch try Self.submit(params, method: "submit_batch", on: client, line: nil, sent: events, output: output) {
                case .success(let result):
                    let receipts = result["receipts"]?.arrayValue ?? []
                    for receipt in receipts { output.writeLine(receipt) }
                    output.flush()
                    // Receipts that could not be printed (a full disk) are given on standard error: the batch is
                    // recorded, and its unsigned input sent again would be recorded again under new random ids.
                    if let reason = StandardOutput.writeFailure {
                        printError(
                            "error: \(LedgerError.Code.storage.name): cannot write the batch's receipts: \(reason); they are: "
                                + CanonicalJSON.encodeString(.array(receipts)))
                    } else if let verifier {
                        guard receipts.count == events.count else {
                            throw LedgerError(.integrity, "submit_batch answered \(receipts.count) receipts for \(events.count) events")
                        }
                        for (receipt, event) in zip(receipts, events) { try Self.check(receipt, submitted: event, verifier: verifier, client: client) }
                    }
                case .failure(let error):
                    refused += events.count
                    output.writeLine(.object(["error": error.json]))
                }
            }
        }
        output.flush()
        if refused > 0 {
            printError("error: \(refused) event(s) refused")
            throw ExitCode(1)
        }
    }

    /// Writes the answer to input line `line` and flushes it. One that cannot be written (a full disk) is given on
    /// standard error instead, and false is returned: nothing more is sent, since the answers to it would be lost
    /// too, and an event this client signed, sent again from the input, is recorded again under a new random id.
    /// (The command then ends with the output's storage_error, exit 1.)
    static func written(_ answer: JSONValue, line: Int, to output: StandardOutput) -> Bool {
        output.writeLine(answer)
        output.flush()
        guard let reason = StandardOutput.writeFailure else { return true }
        printError(
            "error: \(LedgerError.Code.storage.name): cannot write the answer to line \(line): \(reason); it is: "
                + CanonicalJSON.encodeString(answer) + "; nothing after it was sent")
        return false
    }

    /// Sends a submission (`line`: a single event's input line; nil: a batch) and returns its answer. One that got no
    /// answer (the connection broke or timed out after it was sent) may have been recorded: its line says so and holds
    /// what was sent, exactly (`data.event`, or `data.events` for a batch), and the error is thrown, so that nothing
    /// after it is sent. Sent again as it is, the ledger answers it with its first receipt if it was recorded (the
    /// same id), where the input run again would be signed anew under a new random id and recorded twice.
    static func submit(
        _ params: JSONObject, method: String, on client: LineClient, line: Int?, sent: [JSONValue], output: StandardOutput
    ) throws(LedgerError) -> Result<JSONValue, RPCError> {
        do throws(LedgerError) {
            return try client.call(method, .object(params))
        } catch {
            let member = line == nil ? "events" : "event"
            let unknown = LedgerError(
                error.code,
                "\(error.message); the \(member) may have been recorded: send data.\(member) again, exactly as it is, to learn the outcome (a repeat of a recorded event is answered with its first receipt)")
            var refusal: JSONObject = ["error": RPCError(unknown, extra: [member: line == nil ? .array(sent) : sent[0]]).json]
            if let line { refusal["line"] = .integer(Int64(line)) }
            output.writeLine(.object(refusal))
            output.flush()
            // What was sent is the only way to learn its outcome: output that cannot be written (a full disk) would
            // lose it, so it is given on standard error.
            if let reason = StandardOutput.writeFailure {
                printError(
                    "error: \(LedgerError.Code.storage.name): cannot write the answer\(line.map { " to line \($0)" } ?? ""): \(reason); it is: "
                        + CanonicalJSON.encodeString(.object(refusal)))
            }
            throw unknown
        }
    }

    /// A receipt checked as a till would check it: the leaf from the event it sent, the proof from the server.
    static func check(_ receipt: JSONValue, submitted: JSONValue, verifier: NoteVerifier, client: LineClient) throws(LedgerError) {
        let check = try ReceiptCheck(receipt: receipt, submitted: submitted, verifier: verifier)
        try check.verify(inclusionProof: try inclusionProof(for: check, client: client))
    }

    /// The server's inclusion proof of the receipt's seq at its checkpoint's size.
    static func inclusionProof(for check: ReceiptCheck, client: LineClient) throws(LedgerError) -> [[UInt8]] {
        let params: JSONValue = ["seq": .integer(Int64(check.sequenceNumber)), "size": .integer(Int64(check.treeSize))]
        switch try client.call("proof.inclusion", params) {
        case .success(let proof):
            return (proof["hashes"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(Base64.decode) }
        case .failure(let error):
            throw LedgerError(.integrity, "the receipt of seq \(check.sequenceNumber) could not be checked: proof.inclusion answered \(error)")
        }
    }

    func sign(_ unsigned: JSONValue, key privateKey: Ed25519PrivateKey?) throws(LedgerError) -> JSONValue {
        guard let privateKey, let actor else {
            throw LedgerError(.invalidEvent, "an unsigned event needs --key and --actor to be signed")
        }
        return try UnsignedEvents.sign(unsigned, actor: actor, with: privateKey).json
    }
}

struct ClientSettlementCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settlement", abstract: "A settlement: requested or paid (the merchant's own; the authority and auditors any).")
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions
    @Option(name: .long, help: "The settlement: the event id of its settlement.requested.")
    var id: String

    func run() throws {
        try clientCall(options, "settlement.get") { () throws(LedgerError) in try reader.signed("settlement.get", ["settlement": .string(id)]) }
    }
}

struct ClientCasesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cases",
        abstract: "The cases an organisation holds (referrals made to it, open and closed cases), or the cases it referred, one page.",
        discussion: """
            A signed read (case.list): an organisation or its staff read their own organisation's cases, the \
            authority and auditors any. --holder ORG lists the cases ORG holds; --referred-by ORG the cases ORG \
            referred, each with its status, when it was taken in charge and closed and how, and "erased": true once \
            the ledger records the person's subject.erased (erase the vault's copy of their key then, with circuito \
            vault erase). A page looks at a bounded number of cases, so it may hold fewer than --limit and still \
            have a next_after: pass it as --after.
            """)
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions
    @Option(name: .long, help: "The organisation that holds the cases.")
    var holder: String?
    @Option(name: .long, help: "The organisation that referred the cases (instead of --holder).")
    var referredBy: String?
    @Option(name: .long, help: "Only cases in this status: referred (waiting to be taken in charge), open or closed.")
    var status: String?
    @Option(name: .long, help: "Start after this case id (the next_after of the page before).")
    var after: String?
    @Option(name: .long, help: "Cases in the page.")
    var limit: Int = 100

    func validate() throws {
        guard (holder == nil) != (referredBy == nil) else { throw ValidationError("give either --holder or --referred-by") }
    }

    func run() throws {
        var params: JSONObject = ["limit": .integer(Int64(limit))]
        if let holder { params["holder"] = .string(holder) }
        if let referredBy { params["referred_by"] = .string(referredBy) }
        if let status { params["status"] = .string(status) }
        if let after { params["after"] = .string(after) }
        try clientCall(options, "case.list") { () throws(LedgerError) in try reader.signed("case.list", .object(params)) }
    }
}

struct ClientExpiredLotsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expired-lots", abstract: "Live lots past their expiry, which the authority collects with tocoin.expired, one page.",
        discussion: """
            A signed read (lots.expired: the authority, auditors). With --as-events, one unsigned tocoin.expired \
            per lot of the page instead, for client submit to sign and send; a further page is then named on \
            standard error (--after). A collected lot is no longer live, so running the two again from the start \
            goes on with the lots left.
            """)
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions
    @Option(name: .long, help: "Start after this lot, <beneficiary>/<lot> (the next_after of the page before).")
    var after: String?
    @Option(name: .long, help: "Lots in the page.")
    var limit: Int = 100
    @Flag(name: .long, help: "Print an unsigned tocoin.expired event per lot instead of the page.")
    var asEvents = false

    func run() throws {
        var params: JSONObject = ["limit": .integer(Int64(limit))]
        if let after { params["after"] = .string(after) }
        let printing: ((JSONValue) -> [JSONValue])? = asEvents ? { page in Self.events(page) } : nil
        try clientCall(options, "lots.expired", { () throws(LedgerError) in try reader.signed("lots.expired", .object(params)) }, printing: printing)
    }

    /// One unsigned tocoin.expired per lot of the page; a further page is named on standard error.
    static func events(_ page: JSONValue) -> [JSONValue] {
        if let next = page["next_after"]?.stringValue { printError("more lots to look at: --after \(next)") }
        return (page["lots"]?.arrayValue ?? []).map { (lot) -> JSONValue in
            let body: JSONObject = ["beneficiary": lot["beneficiary"] ?? .null, "lot": lot["lot"] ?? .null]
            return .object(["type": "tocoin.expired", "body": .object(body)])
        }
    }
}

struct ClientPolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "The policy in force: conversion rate, monthly conversion cap, lot validity, dote categories (public).")
    @OptionGroup var options: ServerOptions

    func run() throws { try clientCall(options, "policy.get") { () throws(LedgerError) in .object([:]) } }
}

struct ClientBalanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "balance", abstract: "An account's balance (and a beneficiary's lots).")
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions
    @Option(name: .long, help: "beneficiary:<id>, merchant:<id>, fund, issuance or settlement.")
    var account: String

    func run() throws {
        try clientCall(options, "account.balance") { () throws(LedgerError) in try reader.signed("account.balance", ["account": .string(account)]) }
    }
}

struct ClientHistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "An account's movements, oldest first, one page.")
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions
    @Option(name: .long, help: "beneficiary:<id>, merchant:<id>, fund, issuance or settlement.")
    var account: String
    @Option(name: .long, help: "Start after this seq (the next_after of the page before).", transform: SequenceNumberOption.parse)
    var after: UInt64?
    @Option(name: .long, help: "Entries in the page.")
    var limit: Int = 100

    func run() throws {
        var params: JSONObject = ["account": .string(account), "limit": .integer(Int64(limit))]
        if let after { params["after"] = .integer(Int64(after)) }
        try clientCall(options, "account.history") { () throws(LedgerError) in try reader.signed("account.history", .object(params)) }
    }
}

struct ClientCaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "case", abstract: "The records that concern a beneficiary, one page.",
        discussion: """
            With --vault, the sealed personal data of the records (a referral's, a plan's, a note's) is opened here \
            with the subject's key from that key vault, as circuito case opens it offline: the clear value, \
            "unavailable" when the vault holds no key for the beneficiary, "undecryptable" when its key does not open \
            it, "erased" once the ledger records the beneficiary's subject.erased (the page's "erased", on every \
            page), with a warning while the vault still holds the key. The records so opened are for reading: their \
            signatures no longer verify. The server never sees the vault.
            """)
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions
    @Option(name: .long, help: "The beneficiary's id.")
    var beneficiary: String
    @Option(name: .long, help: "Start after this seq (the next_after of the page before).", transform: SequenceNumberOption.parse)
    var after: UInt64?
    @Option(name: .long, help: "Records in the page.")
    var limit: Int = 100
    @Option(name: .long, help: "A key vault directory, which must be there: open the sealed personal data with it.")
    var vault: String?

    func run() throws {
        var params: JSONObject = ["beneficiary": .string(beneficiary), "limit": .integer(Int64(limit))]
        if let after { params["after"] = .integer(Int64(after)) }
        // The vault is read before anything is sent: a wrong path is named as such, not after a round trip.
        var opening: ((JSONValue) -> [JSONValue])?
        if let vault {
            try reportingErrors { () throws(LedgerError) in
                try excludeFromCoreDumps()
                let key = try KeyVault(existingDirectory: vault).key(for: beneficiary)
                opening = { [beneficiary] page in
                    // The ledger says "erased", but the data is gone only once the key is: say so where it is not.
                    if key != nil, Self.recordsErasure(page, beneficiary: beneficiary) {
                        printError(
                            "warning: the ledger records the erasure of \(beneficiary), but the key vault \(vault) still holds its key, which opens its sealed data; erase it: circuito vault erase --vault \(vault) --beneficiary \(beneficiary)")
                    }
                    return [Self.opened(page, beneficiary: beneficiary, key: key)]
                }
            }
        }
        try clientCall(options, "case.history", { () throws(LedgerError) in try reader.signed("case.history", .object(params)) }, printing: opening)
    }

    /// Whether the ledger records the beneficiary's erasure: the page's `erased` (the ledger's state when it was
    /// read, so also for the pages before the erasure's record), or the erasure's record in the page.
    static func recordsErasure(_ page: JSONValue, beneficiary: String) -> Bool {
        if page["erased"] == .bool(true) { return true }
        return page["records"]?.arrayValue?.contains { record in
            record["event"]?["type"] == "subject.erased" && record["event"]?["body"]?["beneficiary"] == .string(beneficiary)
        } ?? false
    }

    /// The page with each record's sealed values opened, all "erased" once the ledger records the erasure, as
    /// circuito case does: the records before the erasure hold the data that was erased.
    static func opened(_ page: JSONValue, beneficiary: String, key: [UInt8]?) -> JSONValue {
        guard var members = page.objectValue, let records = members["records"]?.arrayValue else { return page }
        let erased = recordsErasure(page, beneficiary: beneficiary)
        members["records"] = .array(records.map { record in
            guard var recordMembers = record.objectValue, var event = recordMembers["event"]?.objectValue, let body = event["body"] else {
                return record
            }
            event["body"] = PersonalData.open(body: body, subject: beneficiary, key: key, erased: erased)
            recordMembers["event"] = .object(event)
            return .object(recordMembers)
        })
        return .object(members)
    }
}

struct ClientCatalogueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "catalogue", abstract: "Search the public catalogue.")
    @OptionGroup var options: ServerOptions
    @Option(name: .long, help: "opportunity, merchant or badge_class.")
    var kind: String
    @Option(name: .long) var category: String?
    @Option(name: .long) var district: String?
    @Option(name: .long) var provider: String?
    @Option(name: .long, help: "Words that must all appear (at least 3 letters each).")
    var text: String?
    @Option(name: .long, help: "Start after this id (the next_after of the page before).")
    var after: String?
    @Option(name: .long) var limit: Int = 100

    func run() throws {
        var params: JSONObject = ["kind": .string(kind), "limit": .integer(Int64(limit))]
        for (name, value) in [("category", category), ("district", district), ("provider", provider), ("text", text), ("after", after)] {
            if let value { params[name] = .string(value) }
        }
        try clientCall(options, "catalogue.search") { () throws(LedgerError) in .object(params) }
    }
}

struct ClientActorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actor", abstract: "An actor's record: its role, keys and state.",
        discussion: "Public for every role but beneficiaries, whose records need a signed read (--key and --actor).")
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions
    // Not --actor, which names the reader.
    @Option(name: .long, help: "The id of the actor to look up.")
    var id: String

    func run() throws {
        try clientCall(options, "actor.get") { () throws(LedgerError) in try reader.signedIfGiven("actor.get", ["actor": .string(id)]) }
    }
}

struct ClientBadgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "badge", abstract: "An issued badge and its class, or with --credential its signed OpenBadgeCredential.",
        discussion: """
            The credential is signed by the server with the organisation's key (circuito serve --issuer-key); a \
            server without it refuses with key_file, and circuito badge credential signs it offline instead.
            """)
    @OptionGroup var options: ServerOptions
    @Option(name: .long, help: "The badge id (or, with --credential, the id of its badge.issued event).")
    var badge: String
    @Flag(name: .long, help: "Print the badge's signed OpenBadgeCredential instead of its ledger record.")
    var credential = false
    @Option(name: .long, help: "With --credential: the proof suite, rdfc or jcs (default: rdfc).")
    var suite: String?

    func validate() throws {
        if suite != nil && !credential { throw ValidationError("--suite goes with --credential") }
    }

    func run() throws {
        if credential {
            var params: JSONObject = ["badge": .string(badge)]
            if let suite { params["suite"] = .string(suite) }
            try clientCall(options, "badge.credential") { () throws(LedgerError) in .object(params) }
        } else {
            try clientCall(options, "badge.get") { () throws(LedgerError) in ["badge": .string(badge)] }
        }
    }
}

struct ClientStatusListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status-list", abstract: "An organisation's signed Bitstring Status List credential (its badge revocations).")
    @OptionGroup var options: ServerOptions
    @Option(name: .long, help: "The organisation's id.")
    var issuer: String
    @Option(name: .long, help: "The proof suite, rdfc or jcs (default: rdfc).")
    var suite: String?

    func run() throws {
        var params: JSONObject = ["issuer": .string(issuer)]
        if let suite { params["suite"] = .string(suite) }
        try clientCall(options, "badge.status_list") { () throws(LedgerError) in .object(params) }
    }
}

struct ClientEventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Records from a seq, one page: {\"records\",\"size\",\"next\"}.",
        discussion: "A signed read (the authority, auditors). Pass next as --from for the next page.")
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions
    @Option(name: .long, help: "The first seq.", transform: SequenceNumberOption.parse)
    var from: UInt64 = 0
    @Option(name: .long, help: "Records in the page.")
    var limit: Int = 100

    func run() throws {
        try clientCall(options, "events") { () throws(LedgerError) in
            try reader.signed("events", ["from": .integer(Int64(from)), "limit": .integer(Int64(limit))])
        }
    }
}

struct ClientReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "The programme's accounts and the counts of what the ledger holds.",
        discussion: "A signed read (the authority, auditors). circuito report gives the funders' tables offline.")
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions

    func run() throws {
        try clientCall(options, "report") { () throws(LedgerError) in try reader.signed("report", .object([:])) }
    }
}

struct ClientCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checkpoint", abstract: "The latest signed checkpoint, or the first covering a seq.")
    @OptionGroup var options: ServerOptions
    @Option(name: .long, help: "The first checkpoint whose tree contains this seq.", transform: SequenceNumberOption.parse)
    var covering: UInt64?

    func run() throws {
        try clientCall(options, "checkpoint") { () throws(LedgerError) in covering.map { ["covering": .integer(Int64($0))] } ?? .object([:]) }
    }
}

struct ClientProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proof", abstract: "An inclusion proof (--seq [--size]) or a consistency proof (--from [--to]).")
    @OptionGroup var options: ServerOptions
    @Option(name: .long, transform: SequenceNumberOption.parse) var seq: UInt64?
    @Option(name: .long, transform: SequenceNumberOption.parse) var size: UInt64?
    @Option(name: .long, transform: SequenceNumberOption.parse) var from: UInt64?
    @Option(name: .long, transform: SequenceNumberOption.parse) var to: UInt64?

    func validate() throws {
        guard (seq == nil) != (from == nil) else { throw ValidationError("give --seq (inclusion) or --from (consistency)") }
    }

    func run() throws {
        if let seq {
            var params: JSONObject = ["seq": .integer(Int64(seq))]
            if let size { params["size"] = .integer(Int64(size)) }
            try clientCall(options, "proof.inclusion") { () throws(LedgerError) in .object(params) }
        } else if let from {
            var params: JSONObject = ["from": .integer(Int64(from))]
            if let to { params["to"] = .integer(Int64(to)) }
            try clientCall(options, "proof.consistency") { () throws(LedgerError) in .object(params) }
        }
    }
}

struct ClientSubscribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscribe",
        abstract: "Stream records from a seq (catch-up, then live) as JSON Lines, each line exactly the record's leaf bytes.",
        discussion: "Runs until SIGINT, SIGTERM or SIGHUP (SIGHUP left ignored when started so, as by nohup), until --count records were printed, or until its output cannot be written (a full disk: storage_error, exit status 1). A signed read (auditors, the authority).")
    @OptionGroup var options: ServerOptions
    @OptionGroup var reader: ReaderOptions
    @Option(name: .long, help: "The first seq.", transform: SequenceNumberOption.parse)
    var from: UInt64 = 0
    @Option(name: .long, help: "Stop after this many records.")
    var count: UInt64?
    @Flag(name: .long, help: "Also print each checkpoint notification ({\"checkpoint\":…,\"size\":…,…}).")
    var withCheckpoints = false
    @Option(name: .long, help: "Ask the server for a heartbeat every N seconds (1 to 3600) while it has nothing to send, and stop with connection_failed when it sends nothing for three of them (a wedged server, or a proxy holding a dead stream's connection open); a server older than heartbeats is subscribed to without them.")
    var heartbeatSeconds: Int?

    func validate() throws {
        let range = SubscriptionHeartbeat.secondsRange
        if let heartbeatSeconds, !range.contains(heartbeatSeconds) {
            throw ValidationError("--heartbeat-seconds must be from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    func run() throws {
        let stop = StopSignal()
        let output = StandardOutput()
        try reportingErrors { () throws(LedgerError) in
            let client = try options.connect()
            var heartbeatSeconds = self.heartbeatSeconds
            func subscribe() throws(LedgerError) -> Result<JSONValue, RPCError> {
                var members: JSONObject = ["from": .integer(Int64(from))]
                if let heartbeatSeconds { members["heartbeat_seconds"] = .integer(Int64(heartbeatSeconds)) }
                return try client.call("subscribe", try reader.signed("subscribe", .object(members)))
            }
            var answer = try subscribe()
            if case .failure(let error) = answer, heartbeatSeconds != nil, SubscriptionHeartbeat.isUnknownToServer(error) {
                printError("the server does not send heartbeats (an older circuito); subscribing without them")
                heartbeatSeconds = nil
                answer = try subscribe()
            }
            if case .failure(let error) = answer {
                throw error.asLedgerError
            }
            // From now on, wake up every second to look at the stop signal.
            client.setReceiveTimeout(seconds: 1)
            var printed: UInt64 = 0
            var lastMessageAt = ContinuousClock.now
            while !stop.isRequested {
                if let count, printed >= count { break }
                // Output that cannot be written (a full disk) would drop every record from here on, for as long as
                // it ran: it stops, and the command ends with the output's storage_error.
                if StandardOutput.writeFailure != nil { break }
                switch try client.poll() {
                case .timedOut:
                    output.flush()
                    if let heartbeatSeconds, ContinuousClock.now - lastMessageAt > .seconds(SubscriptionHeartbeat.missedBeforeSilence * heartbeatSeconds) {
                        throw SubscriptionHeartbeat.silence(of: "the server", heartbeatSeconds: heartbeatSeconds)
                    }
                case .closed:
                    output.flush()
                    throw LedgerError(.connectionFailed, "the server closed the connection")
                case .message(let message):
                    lastMessageAt = ContinuousClock.now
                    let params = message["params"] ?? .null
                    switch message["method"]?.stringValue {
                    case "subscription.record":
                        output.writeLine(params["record"] ?? .null)
                        printed += 1
                    case "subscription.checkpoint" where withCheckpoints:
                        var members = params.objectValue ?? [:]
                        members["subscription"] = nil
                        output.writeLine(.object(members))
                    case "subscription.error":
                        output.flush()
                        let error = params["error"].flatMap(RPCError.init(json:)) ?? RPCError.internalError("unreadable error")
                        throw error.asLedgerError
                    default:
                        break
                    }
                }
            }
        }
        output.flush()
    }
}
