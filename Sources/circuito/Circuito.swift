import ArgumentParser
import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Dispatch
import Glibc
import Synchronization

/// A command that only groups others: run without one of them, it is a usage error (exit 64), so that a script that
/// forgot the subcommand does not take the help text for success.
protocol CommandGroup: ParsableCommand {}

extension CommandGroup {
    func run() throws {
        let name = Self.configuration.commandName ?? "this command"
        let subcommands = Self.configuration.subcommands.compactMap { $0.configuration.commandName }
        // Printed here rather than thrown as a ValidationError, which ArgumentParser shows with the root's usage
        // line ("circuito <subcommand>"), not the group's.
        printError("Error: \(name) needs one of its subcommands: \(subcommands.joined(separator: ", ")) (see its --help)")
        printError("Usage: " + Circuito.usageString(for: Self.self))
        // Every group is the root or one of its subcommands.
        let path = Self.self == Circuito.self ? name : "circuito \(name)"
        printError("  See '\(path) --help' for more information.")
        throw ExitCode.validationFailure
    }
}

@main
struct Circuito: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "circuito",
        abstract: "Circuito: a signed, Merkle-logged event ledger for badges and ToCoin.",
        discussion: "Errors are printed as `error: <code>: <message>`; codes are listed in Specs/ledger.md.",
        subcommands: [
            KeygenCommand.self, InitCommand.self, SignCommand.self, AppendCommand.self, VerifyCommand.self,
            RebuildCommand.self, CaseCommand.self, AuthoriseCommand.self, ExportCommand.self, BackupCommand.self, CheckpointCommand.self, ProofCommand.self, VectorsCommand.self, DemoCommand.self, ReportCommand.self, VaultCommand.self, ReceiptCommand.self,
            ServeCommand.self, ClientCommand.self, FollowCommand.self, BadgeCommand.self, BenchCommand.self,
        ]
    )

    /// ArgumentParser's main, and then a check that standard output took everything written to it: a command whose
    /// output was cut short (a full disk, a closed pipe) ends with an error and exit status 1, not 0.
    static func main() {
        occupyClosedStandardDescriptors()
        var failed: (any Error)?
        do {
            var command = try parseAsRoot(joiningNegativeNumbers(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch {
            failed = error
        }
        if let reason = outputFailure() {
            printError("error: \(LedgerError.Code.storage.name): cannot write the output: \(reason); what it printed is incomplete")
            if failed == nil || (failed as? ExitCode)?.rawValue == 0 { exit(withError: ExitCode(1)) }
        }
        if let failed { exit(withError: failed) }
    }

    /// Puts /dev/null where standard input, output or error is closed (`>&-`, `<&-`, a parent that closed them), opened
    /// the other way round (input write-only, output and error read-only), so that reading or writing them still
    /// fails with EBADF as on a closed descriptor. Left closed, the lowest of them was taken by the first file the
    /// command opened: an export was written into the ledger's lock.mdb, the receipts of an append into writer.lock
    /// (with exit status 0), and an append with its input closed read its events from writer.lock.
    static func occupyClosedStandardDescriptors() {
        for descriptor: Int32 in 0...2 where fcntl(descriptor, F_GETFD) == -1 && errno == EBADF {
            // The lower ones are open by now, so the lowest free descriptor is this one.
            let opened = open("/dev/null", (descriptor == 0 ? O_WRONLY : O_RDONLY) | O_NOCTTY)
            guard opened >= 0 else { continue }
            if opened != descriptor {
                _ = dup2(opened, descriptor)
                close(opened)
            }
        }
    }

    /// `--name -5` as `--name=-5`: ArgumentParser reads an argument that starts with `-` as an option, so a negative
    /// number given as an option's value got "Missing value" instead of the option's own range error. Only a
    /// number is joined (no option of ours is a digit), and nothing after `--`.
    static func joiningNegativeNumbers(_ arguments: [String]) -> [String] {
        var joined: [String] = []
        joined.reserveCapacity(arguments.count)
        var index = 0
        // Bounded by the arguments: each step takes one or two of them.
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                joined.append(contentsOf: arguments[index...])
                break
            }
            if argument.hasPrefix("--"), argument.count > 2, !argument.contains("="), index + 1 < arguments.count,
                startsLikeANegativeNumber(arguments[index + 1])
            {
                joined.append(argument + "=" + arguments[index + 1])
                index += 2
            } else {
                joined.append(argument)
                index += 1
            }
        }
        return joined
    }

    /// `-` and a digit: `-5`, `-0.5`, `-1GiB` (no option of this tool starts so, so it is a value for the option
    /// before it, whose own check then names its range).
    static func startsLikeANegativeNumber(_ text: String) -> Bool {
        text.hasPrefix("-") && text.dropFirst().first?.isASCII == true && text.dropFirst().first?.isNumber == true
    }

    /// Why writing to standard output failed, through `StandardOutput` or `print` (C's stdout), if it did.
    static func outputFailure() -> String? {
        if let reason = StandardOutput.writeFailure { return reason }
        // Every C stream: of them only stdout is written to (stderr is written unbuffered, with write(2)).
        if fflush(nil) != 0 { return String(cString: strerror(errno)) }
        // A line-buffered or unbuffered stdout (under `stdbuf -oL`, say) has already written, and failed: its error
        // flag says so, though nothing was left to flush.
        if let stream = cStandardOutput(), ferror(stream) != 0 { return "a write to standard output failed" }
        return nil
    }

    /// C's `stdout`, read through its symbol: Swift 6 refuses a reference to the global variable itself as shared
    /// mutable state. Read once, after the command, on the main thread.
    static func cStandardOutput() -> UnsafeMutablePointer<FILE>? {
        guard let symbol = dlsym(nil, "stdout") else { return nil }
        return symbol.assumingMemoryBound(to: UnsafeMutablePointer<FILE>?.self).pointee
    }
}

/// Prints a ledger error the way every command does and gives exit code 1.
func failure(_ error: LedgerError) -> ExitCode {
    printError("error: \(error.code.name): \(error.message)")
    return ExitCode(1)
}

/// Runs `body`, turning a LedgerError into the common error line and exit code 1.
func reportingErrors(_ body: () throws(LedgerError) -> Void) throws(ExitCode) {
    do throws(LedgerError) { try body() } catch { throw failure(error) }
}

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Create an Ed25519 key file (mode 0600) and print its Multikey public key.")

    @Option(name: .long, help: "Where to write the secret key file; an existing file is never overwritten.")
    var out: String

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            try excludeFromCoreDumps()
            let key = Ed25519PrivateKey()
            try KeyFile.write(key, to: out)
            print(key.publicKey.multikey)
        }
    }
}

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a ledger, write its genesis, and print the checkpoint verifier key (NAME+KEYID+BASE64).")

    @Option(name: .long, help: "The ledger directory (created if missing, in a folder that exists; must hold no ledger).")
    var data: String
    @Option(name: .long, help: "The authority's secret key file; it signs genesis.")
    var authorityKey: String
    @OptionGroup var storage: MapSizeOption
    @Option(name: .long, help: "The authority's actor id.")
    var authorityID: String = "authority"
    @Option(name: .long, help: "The authority's display name.")
    var authorityName: String = "Programme authority"
    @Option(name: .long, help: "The ledger origin: the first line of every checkpoint, the note key name, and what payment authorisations name; each ledger's own (default: circuito.local/ledger-<16 hex digits of the new checkpoint key>).")
    var origin: String?

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let authority = try readSigningKey(authorityKey)
            let checkpointKey = Ed25519PrivateKey()
            // A payment authorisation names its ledger by origin only: one fixed default would let two ledgers made
            // with it redeem each other's authorisations (a wallet and a shop registered on both).
            let origin = origin ?? "circuito.local/ledger-" + Array(checkpointKey.publicKey.bytes.prefix(8)).hexString
            let event = try Event(
                id: "genesis", type: "ledger.genesis", actor: authorityID, key: authority.publicKey.multikey,
                timestamp: Timestamp.format(millisecondsSince1970: Ledger.systemClockMilliseconds()),
                body: [
                    "origin": .string(origin),
                    "authority": .object([
                        "actor": .string(authorityID), "name": .string(authorityName),
                        "keys": .array([.string(authority.publicKey.multikey)]),
                    ]),
                    "checkpoint_key": .string(checkpointKey.publicKey.multikey),
                    "currency": .object(["code": .string(Rulebook.currencyCode), "decimals": .integer(Rulebook.currencyDecimals)]),
                ])
            let genesis = try SignedEvent(signing: event, with: authority).verified()
            let ledger = try Ledger.create(directory: data, genesis: genesis, checkpointKey: checkpointKey, options: try storage.options(.init()))
            print(ledger.verifierKey)
        }
    }
}

struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign unsigned events (JSON Lines on stdin, at least type and body); write signed events (JSON Lines).",
        discussion: "Fills v, key, ts (now) and a fresh random id where missing.")

    @Option(name: .long, help: "The signer's secret key file.")
    var key: String
    @Option(name: .long, help: "The signer's actor id.")
    var actor: String

    func run() throws {
        let output = StandardOutput()
        var refused = 0
        try reportingErrors { () throws(LedgerError) in
            let privateKey = try readSigningKey(key)
            var reader = LineReader(descriptor: 0, maximumLineBytes: EventLimits.maximumSignedEventBytes)
            var lineNumber = 0
            while let line = try reader.next() {
                lineNumber += 1
                do throws(LedgerError) {
                    guard case .text(let bytes) = line else {
                        throw LedgerError(.tooLarge, "line is longer than \(EventLimits.maximumSignedEventBytes) bytes")
                    }
                    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                    let signed = try sign(try JSONParser.parse(bytes), with: privateKey)
                    output.writeLine(signed.json)
                } catch {
                    refused += 1
                    printError("error: line \(lineNumber): \(error.code.name): \(error.message)")
                }
            }
        }
        output.flush()
        if refused > 0 { throw ExitCode(1) }
    }

    func sign(_ unsigned: JSONValue, with privateKey: Ed25519PrivateKey) throws(LedgerError) -> SignedEvent {
        try UnsignedEvents.sign(unsigned, actor: actor, with: privateKey)
    }
}

/// Unsigned events (at least `type` and `body`) made into signed events, as `sign` and `client submit` read them
/// (Specs/ledger.md 12): one reading for both, so that a line refused by one is refused by the other.
enum UnsignedEvents {
    static func sign(_ unsigned: JSONValue, actor: String, with privateKey: Ed25519PrivateKey) throws(LedgerError) -> SignedEvent {
        guard case .object(let members) = unsigned else { throw LedgerError(.invalidEvent, "an unsigned event is a JSON object") }
        let allowed: Set<String> = ["v", "id", "type", "actor", "key", "ts", "body"]
        if let extra = members.keys.first(where: { !allowed.contains($0) }) {
            throw LedgerError(.invalidEvent, "unsigned event has an unknown field \"\(extra)\"")
        }
        if let version = members["v"] {
            // As the ledger reads an event (Specs/ledger.md 4.1): a v that is not an integer is a malformed event.
            guard case .integer = version else { throw LedgerError(.invalidEvent, "v must be the integer 1") }
            guard version == .integer(Event.version) else { throw LedgerError(.unsupportedVersion, "v must be 1") }
        }
        if let given = members["actor"], given != .string(actor) {
            throw LedgerError(.invalidEvent, "event names actor \(shown(given)) but is signed as \"\(actor)\"")
        }
        if let given = members["key"], given != .string(privateKey.publicKey.multikey) {
            throw LedgerError(.invalidKey, "event names key \(shown(given)), which is not the key in --key")
        }
        guard case .string(let type)? = members["type"] else { throw LedgerError(.invalidEvent, "unsigned event needs \"type\"") }
        guard case .object(let body)? = members["body"] else { throw LedgerError(.invalidEvent, "unsigned event needs \"body\" as an object") }
        let id: String
        switch members["id"] {
        case nil: id = "evt-" + SecureRandom.bytes(count: 16).hexString
        case .string(let given)?: id = given
        default: throw LedgerError(.invalidEvent, "id must be a string")
        }
        let timestamp: String
        switch members["ts"] {
        case nil: timestamp = Timestamp.format(millisecondsSince1970: Ledger.systemClockMilliseconds())
        case .string(let given)?: timestamp = given
        default: throw LedgerError(.invalidTimestamp, "ts must be a string")
        }
        let event = try Event(
            id: id, type: type, actor: actor, key: privateKey.publicKey.multikey, timestamp: timestamp, body: body)
        let signed = SignedEvent(signing: event, with: privateKey)
        // What sign writes must be what append reads: the same size and depth limits, checked on the output.
        _ = try SignedEvent(jsonBytes: CanonicalJSON.encode(signed.json))
        return signed
    }

    /// A member as the JSON it was read as (canonical, at most 80 characters shown), for a refusal's message: Swift's
    /// own description of a parsed value (`string("other")`) is not what the input said.
    static func shown(_ value: JSONValue) -> String {
        let text = CanonicalJSON.encodeString(value)
        return text.count > 80 ? String(text.prefix(80)) + "…" : text
    }
}

struct AppendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Append signed events (JSON Lines) to the ledger; print one receipt or refusal per line.",
        discussion: """
            Events are committed in batches (one LMDB commit and one signed checkpoint per batch); each batch's \
            receipts are printed once it is durable. Exit status 1 if any event was refused.
            """)

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "Events per commit (1 to \(Ledger.maximumBatchCount)).")
    var batch: Int = 256
    @Flag(name: .long, help: "Go on recording while the clock reads more than a minute behind the last record's recorded_at, at that recorded_at (otherwise clock_behind): for a ledger whose last commit was made while the clock ran ahead, once the clock is right.")
    var acceptClockBehind = false
    @OptionGroup var storage: MapSizeOption
    @Argument(help: "File of signed events (JSON Lines); standard input when absent.")
    var file: String?

    func validate() throws {
        guard (1...Ledger.maximumBatchCount).contains(batch) else {
            throw ValidationError("--batch must be between 1 and \(Ledger.maximumBatchCount)")
        }
    }

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
            // The writer holds the ledger's checkpoint key.
            try excludeFromCoreDumps()
            let ledger = try Ledger.open(directory: data, options: try storage.options(.init()))
            ledger.acceptsClockBehind = acceptClockBehind
            ledger.clockJumpCheck = ClockJumpCheck()
            var reader = LineReader(descriptor: descriptor, source: file ?? "input", maximumLineBytes: EventLimits.maximumSignedEventBytes)
            var lineNumber = 0
            var finished = false
            while !finished {
                // Collect one batch of lines; parse failures are answered in line order with the rest.
                var pending: [(line: Int, result: Result<SignedEvent, LedgerError>)] = []
                while pending.count < batch {
                    guard let line = try reader.next() else {
                        finished = true
                        break
                    }
                    lineNumber += 1
                    switch line {
                    case .tooLong:
                        pending.append((lineNumber, .failure(LedgerError(.tooLarge, "line is longer than \(EventLimits.maximumSignedEventBytes) bytes"))))
                    case .text(let bytes):
                        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                        pending.append((lineNumber, Result { () throws(LedgerError) in try SignedEvent(jsonBytes: bytes) }))
                    }
                }
                if pending.isEmpty { continue }
                // Signature checks on all cores, before the single writer.
                let verified = Parallel.map(pending.map(\.result)) { result in
                    result.flatMap { signed in Result { () throws(LedgerError) in try signed.verified() } }
                }
                let accepted = verified.compactMap { try? $0.get() }
                var receipts = try ledger.append(accepted).makeIterator()
                for (index, result) in verified.enumerated() {
                    let outcome: Result<Receipt, LedgerError>
                    switch result {
                    case .success:
                        // One receipt or refusal per accepted event, in order.
                        guard let next = receipts.next() else { preconditionFailure("append answers every event") }
                        outcome = next
                    case .failure(let error):
                        outcome = .failure(error)
                    }
                    switch outcome {
                    case .success(let receipt):
                        output.writeLine(receipt.json)
                    case .failure(let error):
                        refused += 1
                        output.writeLine(.object(["line": .integer(Int64(pending[index].line)), "error": errorJSON(error)]))
                    }
                }
                output.flush()
                // Receipts that cannot be written would be lost: stop appending (the ledger has what was committed;
                // appending the same file again answers each of those with its receipt).
                if StandardOutput.writeFailure != nil { break }
            }
        }
        output.flush()
        if refused > 0 {
            printError("error: \(refused) event(s) refused")
            throw ExitCode(1)
        }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Audit the ledger offline: signatures, keys, permissions, rules, tree and checkpoints.",
        discussion: """
            Exit status 0 when everything holds; otherwise 1 and the first bad seq with the reason. Every checkpoint \
            is checked with the key the ledger's own genesis names; with --verifier-key (the key circuito init \
            printed, given to auditors) that key must also be the one given, so that a copy of another ledger, \
            signed throughout with a key of its own, is refused (integrity_failure).
            """)

    @Option(name: .long, help: "The ledger directory.")
    var data: String

    @Option(name: .long, help: "The checkpoint verifier key (NAME+KEYID+BASE64) the ledger's genesis must name.")
    var verifierKey: String?

    func run() throws {
        // Read before the replay: a key text that is not one is a mistake of the command line, found at once.
        let pinned: NoteVerifier?
        do throws(LedgerError) { pinned = try verifierKey.map { (text) throws(LedgerError) in try NoteVerifier(parsing: text) } } catch {
            throw failure(error)
        }
        DemoCommand.warnIfUnfinished(data: data)
        let now = Ledger.systemClockMilliseconds()
        let report = try replay(data: data, compareProjections: false, verb: "verify", pinnedVerifier: pinned) { reader in
            // Integrity holds, but an auditor should know when the ledger's time ran ahead of the real one: the rules
            // (expiry, caps) acted on that time. Within the margin a running writer allows its clock (5.3), none.
            let margin = ClockJumpCheck.maximumJumpAheadMilliseconds
            if let ahead = try? reader.firstRecord(recordedAfter: now + margin) {
                printError("note: from seq \(ahead.sequenceNumber) on, records carry a recorded_at (\(ahead.recordedAt) at that seq) later than this machine's clock (\(Timestamp.format(millisecondsSince1970: now))) by more than \(margin / 60_000) minutes: the writer's clock ran ahead when they were written, and the rules (lots' expiry, authorisations' expiry, monthly caps) acted on that time, or this machine's clock is behind (Specs/ledger.md 5.3)")
            }
        }
        print("ok: \(report.recordCount) records, \(report.checkpointCount) checkpoints checked, root \(Base64.encode(report.rootHash))")
    }
}

struct RebuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild every projection from the log into fresh databases and compare them with the live ones.",
        discussion: """
            Runs every check of verify too. Exit status 0 when all projections are equal; otherwise 1 and the first \
            difference.

            With --trust-checkpoints the event signatures are not checked again (about half the work): every record is \
            still hashed into the tree and every stored checkpoint's signature and root are checked, so a changed \
            record is still found unless the checkpoint key was stolen. Use verify for a full audit.
            """)

    @Option(name: .long, help: "The ledger directory.")
    var data: String

    @Flag(name: .long, help: "Do not check event signatures again; rely on the signed checkpoints covering every record.")
    var trustCheckpoints = false

    func run() throws {
        let report = try replay(
            data: data, compareProjections: true, signatureChecks: trustCheckpoints ? .attestedByCheckpoints : .everyEvent,
            verb: "rebuild")
        print("ok: \(report.recordCount) records replayed, \(StateTable.all.count) projections equal (\(report.comparedRows) rows)")
    }
}

/// Replays the ledger in `data` with progress on a terminal; prints the failure and exits 1 when it fails.
func replay(
    data: String, compareProjections: Bool, signatureChecks: LedgerReplay.SignatureChecks = .everyEvent, verb: String,
    pinnedVerifier: NoteVerifier? = nil, afterwards: (LedgerReader) -> Void = { _ in }
) throws -> LedgerReplay.Report {
    let reader: LedgerReader
    do throws(LedgerError) { reader = try LedgerReplay.openLedger(directory: data) } catch { throw failure(error) }
    // Before the replay, which may take an hour: a copy of another ledger is refused at once. Compared as keys (name,
    // key id, key), as follow --verifier-key compares them: upper-case hex names the same key. The replay then checks
    // every checkpoint with the key this genesis names.
    if let pinnedVerifier {
        let named: NoteVerifier
        do throws(LedgerError) { named = try reader.checkpointVerifier() } catch {
            printError("\(verb) failed: \(error.code.name): \(error.message)")
            throw ExitCode(1)
        }
        guard named.verifierKey == pinnedVerifier.verifierKey else {
            printError("\(verb) failed: \(LedgerError.Code.integrity.name): the ledger's genesis names checkpoint key \(named.verifierKey), not the given \(pinnedVerifier.verifierKey): this is not the ledger that key signs for")
            throw ExitCode(1)
        }
    }
    // The replay reports once per chunk, with its own total.
    let progress = ScanProgress(verb: verb, totalRecords: 0)
    do throws(LedgerReplay.Failure) {
        let report = try LedgerReplay.run(reader, compareProjections: compareProjections, signatureChecks: signatureChecks) { checked, total in
            progress.show(checked, of: total)
        }
        progress.finish()
        afterwards(reader)
        return report
    } catch {
        progress.finish()
        if let sequenceNumber = error.sequenceNumber {
            printError("\(verb) failed at seq \(sequenceNumber): \(error.error.code.name): \(error.error.message)")
            if let note = error.olderRulesNote { printError("note: \(note)") }
        } else {
            printError("\(verb) failed: \(error.error.code.name): \(error.error.message)")
        }
        throw ExitCode(1)
    }
}

/// Progress of a scan over the log, on standard error when it is a terminal: `VERB: N/TOTAL records (P%)` once every
/// `recordsPerLine` records and at the expected last one, then the line cleared. Nothing when standard error is not a
/// terminal.
struct ScanProgress {
    static let recordsPerLine: UInt64 = 16_384
    let verb: String
    /// Records the scan is expected to read: the log's size when it began, from where it starts.
    let totalRecords: UInt64
    let onTerminal = isatty(2) == 1

    /// Called after each record; `readRecords` counts from 1.
    func read(_ readRecords: UInt64) {
        guard readRecords % Self.recordsPerLine == 0 || readRecords == totalRecords else { return }
        show(readRecords, of: totalRecords)
    }

    /// Shows the line now.
    func show(_ readRecords: UInt64, of totalRecords: UInt64) {
        guard onTerminal else { return }
        // A writer may append while the scan runs: the total grows with what is read.
        let total = max(totalRecords, readRecords)
        printErrorInPlace("\(verb): \(readRecords)/\(total) records (\(total == 0 ? 100 : readRecords * 100 / total)%)")
    }

    func finish() {
        if onTerminal { printErrorInPlace("") }
    }
}

/// The signals a user stops a command with: SIGINT, SIGTERM and SIGHUP (its terminal closed), but not SIGHUP when the
/// process started with it ignored, as `nohup` starts one: it was asked to outlive its terminal, and taking SIGHUP
/// would undo that (a dispatch source replaces the ignoring). Read once, before any of them is taken.
let stopSignals: [(number: Int32, name: String)] = {
    var hangup = sigaction()
    let hangupIgnored = sigaction(SIGHUP, nil, &hangup) == 0
        && unsafeBitCast(hangup.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    return [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] + (hangupIgnored ? [] : [(SIGHUP, "SIGHUP")])
}()

/// Takes the stop signals (`stopSignals`) from their defaults, which end the process at once, and runs `handler` with
/// the signal's number and name on a dispatch queue (never in a signal context) each time one comes, for a command
/// that must undo what it made before it exits. Returns once they are taken; delivery lasts until the sources are
/// cancelled.
func onInterruption(_ handler: @escaping @Sendable (_ number: Int32, _ name: String) -> Void) -> [any DispatchSourceSignal] {
    stopSignals.map { number, name in makeStopSignalSource(number) { handler(number, name) } }
}

/// Rewrites the current terminal line (progress).
func printErrorInPlace(_ text: String) {
    let line = Array(("\r\u{1B}[K" + text).utf8)
    _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Print every record as JSON Lines, each line exactly its leaf bytes.",
        discussion: """
            Exactly the leaf bytes into a file or a pipe. On a terminal, DEL, C1 controls and bidirectional controls \
            in the records' strings are written as JSON \\u escapes, the same JSON but not the leaf bytes: signers chose them.
            """)

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "First seq to print.")
    var from: UInt64 = 0

    func run() throws {
        let output = StandardOutput()
        try reportingErrors { () throws(LedgerError) in
            // In order, maybe beside a server: without read-ahead, the file asked for ahead (Specs/ledger.md 10.4).
            let reader = try LedgerReader.openForScan(directory: data, fromSequenceNumber: from)
            let size = try reader.size()
            let progress = ScanProgress(verb: "export", totalRecords: size > from ? size - from : 0)
            defer { progress.finish() }
            var readRecords: UInt64 = 0
            try reader.forEachRecord(from: from) { (_, leafBytes) throws(LedgerError) -> Bool in
                // Exactly the leaf bytes into a file or a pipe; on a terminal, what would drive it escaped.
                output.writeLine(json: leafBytes)
                readRecords += 1
                progress.read(readRecords)
                // Output that cannot be written ends the command with an error anyway: reading on would only take
                // its time (seconds at a million records) and hold the read transaction.
                return StandardOutput.writeFailure == nil
            }
        }
        output.flush()
    }
}

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Copy a ledger's database consistently while it may be written (a hot backup).",
        discussion: """
            Writes one read snapshot of DIR's database into OUT, a new directory (mode 0700, data.mdb 0600), while \
            a server may keep appending; `circuito verify --data OUT` audits the copy. The checkpoint key (ledger.key) \
            and the personal-data key vault are not copied: keep the key apart, once, as it never changes. With \
            --compact the copy leaves out the file's free pages, so it can be smaller than the file.

            Do not copy a live ledger with cp: the copy can mix pages of different commits, and on Linux 6.x with ext4 \
            anything that reads the file with read-ahead (cp, cat, mdb_copy) leaves it cached in large folios, which \
            slows the server's commits. This command reads it without read-ahead.
            """)

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "The new directory for the copy (must not exist yet).")
    var out: String
    @Flag(name: .long, help: "Leave out the file's free pages (LMDB's compacting copy).")
    var compact = false

    func run() throws {
        let onTerminal = isatty(2) == 1
        let stage = BackupStage()
        let interruptions = Self.removeCopyOnInterruption(out, stage: stage, onTerminal: onTerminal)
        defer { for source in interruptions { source.cancel() } }
        let report: LedgerBackup.Report
        do throws(LedgerError) {
            report = try LedgerBackup.run(from: data, to: out, compacting: compact, makingDirectory: stage.unlessInterrupted) { step in
                guard onTerminal else { return }
                switch step {
                case .reading(let readBytes, let totalBytes):
                    printErrorInPlace("backup: reading \(readBytes >> 20)/\(totalBytes >> 20) MiB")
                case .copying(let writtenBytes, let sourceBytes):
                    printErrorInPlace("backup: writing the copy \(writtenBytes >> 20)/\(sourceBytes >> 20) MiB")
                }
            }
        } catch {
            // A signal's handler that is removing the copy under the backup makes it fail ("no such file"): the
            // handler ends the process and says why, so that error is not reported. Otherwise a signal from now on
            // comes after the failure, which is reported.
            guard stage.finish() else { while true { pause() } }
            // The progress line goes before the error is printed.
            if onTerminal { printErrorInPlace("") }
            throw failure(error)
        }
        // Whole: a signal from now on comes too late to undo it. One that came first is removing the copy, and ends
        // the process.
        guard stage.finish() else { while true { pause() } }
        if onTerminal { printErrorInPlace("") }
        print("ok: \(report.recordCount) records, root \(Base64.encode(report.rootHash)), \(report.bytes) bytes in \(out)")
    }

    /// Attempts at removing an interrupted copy, 10 ms apart.
    static let removalRounds = 50

    /// The stop signals (SIGINT, SIGTERM, and SIGHUP unless started under `nohup`: `stopSignals`) end the backup as a
    /// failure does: what it wrote of `out` is removed (as after any failed backup), then the process exits with 128 +
    /// the signal's number, as the shell would. Left to their default, they left `out` with a `data.mdb.partial` or
    /// nothing in it, which the same backup then refused ("is there already"). Only a folder this backup made is
    /// removed: one that was there before is its refusal, and one that another backup into the same path made while
    /// this one read the source is that backup's copy (removed, it was lost although that backup had reported it). A
    /// signal after the copy is whole and checked is ignored: the backup reports it.
    static func removeCopyOnInterruption(_ out: String, stage: BackupStage, onTerminal: Bool) -> [any DispatchSourceSignal] {
        onInterruption { number, name in
            guard let madeFolder = stage.interrupt() else { return }
            if onTerminal { printErrorInPlace("") }
            if madeFolder && access(out, F_OK) == 0 {
                // The copy's own threads go on meanwhile and may still make a file in it: the copy renamed whole,
                // the lock file of the check that opens it. Each makes at most one, once, so a few rounds remove
                // what they made after the first.
                var round = 0
                repeat {
                    LedgerBackup.removeCopy(out)
                    round += 1
                    if access(out, F_OK) == 0 { usleep(10_000) }
                } while access(out, F_OK) == 0 && round < Self.removalRounds
                printError(access(out, F_OK) == 0 ? "backup: interrupted by \(name): could not remove \(out)" : "backup: interrupted by \(name): removed \(out)")
            } else {
                printError("backup: interrupted by \(name)")
            }
            _exit(128 + number)
        }
    }
}

/// Whether a backup is still copying, was interrupted by a signal, or has its copy whole, and whether it made the
/// copy's folder: the one of the signal's handler and the command's thread that comes first decides what becomes of
/// the copy.
final class BackupStage: Sendable {
    private enum Stage { case copying, interrupted, finished }
    private let state = Mutex((stage: Stage.copying, madeFolder: false))

    /// The copy is whole: true unless a signal came first.
    func finish() -> Bool {
        state.withLock { state in
            guard state.stage == .copying else { return false }
            state.stage = .finished
            return true
        }
    }

    /// Runs `make` (the copy's folder is created) unless a signal came first, as one step with the signal's handler
    /// taking the stage: so the handler either finds the folder and removes it, or the folder is never made. When a
    /// signal came, throws (the handler is ending the process).
    func unlessInterrupted(_ make: () throws(LedgerError) -> Void) throws(LedgerError) {
        try state.withLock { (state) throws(LedgerError) in
            guard state.stage == .copying else { throw LedgerError(.storage, "the backup was interrupted") }
            try make()
            state.madeFolder = true
        }
    }

    /// A signal came: nil when the copy was whole before it, else whether this backup made the copy's folder (only
    /// then is the folder its own to remove).
    func interrupt() -> Bool? {
        state.withLock { state in
            guard state.stage == .copying else { return nil }
            state.stage = .interrupted
            return state.madeFolder
        }
    }
}

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Print the latest signed checkpoint (C2SP tlog-checkpoint in a signed note).",
        discussion: """
            With --all, every stored checkpoint instead, one per commit, in size order, as JSON Lines \
            {"checkpoint":NOTE,"size":N}: with an export, what an auditor needs to check that each commit's \
            records were covered (Specs/ledger.md 7.3).
            """)

    /// Checkpoints read per read transaction with --all, so that a slow reader of the output never holds one open.
    static let checkpointsPerTransaction = 1024

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Flag(name: .long, help: "Print every stored checkpoint as JSON Lines.")
    var all = false

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let reader = try LedgerReader.open(directory: data)
            let output = StandardOutput()
            guard all else {
                output.write(try reader.latestCheckpoint())
                output.flush()
                return
            }
            var nextSize: UInt64 = 0
            // Ends after the last page: each page holds checkpoints of larger sizes than the one before.
            while true {
                let page = try reader.checkpoints(fromSize: nextSize, limit: Self.checkpointsPerTransaction)
                for (size, note) in page {
                    // No log reaches 2^63 records: a key past it is a damaged checkpoints database, not a size to print.
                    guard let printed = Int64(exactly: size) else {
                        throw LedgerError(.integrity, "\(data)/data.mdb is damaged: a checkpoint is stored for size \(size), past any log")
                    }
                    output.writeLine(.object(["size": .integer(printed), "checkpoint": .string(note)]))
                }
                // Stopped at a failed write, as export stops: the command ends with that error.
                guard page.count == Self.checkpointsPerTransaction, let last = page.last?.size,
                    StandardOutput.writeFailure == nil
                else { break }
                nextSize = last + 1
            }
            output.flush()
        }
    }
}

struct ProofCommand: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "proof", abstract: "RFC 9162 inclusion and consistency proofs, and tree roots at any size.",
        subcommands: [InclusionProofCommand.self, ConsistencyProofCommand.self, RootCommand.self])
}

struct InclusionProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inclusion", abstract: "Inclusion proof of a record in a tree size.")

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "The record's seq (leaf index).")
    var seq: UInt64
    @Option(name: .long, help: "The tree size (default: the current size).")
    var size: UInt64?

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let reader = try LedgerReader.open(directory: data)
            let treeSize = try sizeOrCurrent(size, reader)
            let hashes = try reader.inclusionProof(leafIndex: seq, treeSize: treeSize)
            printJSONLine(.object([
                "leaf_index": .integer(Int64(seq)), "tree_size": .integer(Int64(treeSize)),
                "hashes": .array(hashes.map { .string(Base64.encode($0)) }),
            ]))
        }
    }
}

struct ConsistencyProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "consistency", abstract: "Consistency proof between two tree sizes.")

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "The earlier tree size.")
    var from: UInt64
    @Option(name: .long, help: "The later tree size (default: the current size).")
    var to: UInt64?

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let reader = try LedgerReader.open(directory: data)
            let secondSize = try sizeOrCurrent(to, reader)
            let hashes = try reader.consistencyProof(firstSize: from, secondSize: secondSize)
            printJSONLine(.object([
                "first_size": .integer(Int64(from)), "second_size": .integer(Int64(secondSize)),
                "hashes": .array(hashes.map { .string(Base64.encode($0)) }),
            ]))
        }
    }
}

struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "root", abstract: "The tree root at a size.")

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "The tree size (default: the current size).")
    var size: UInt64?

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let reader = try LedgerReader.open(directory: data)
            let treeSize = try sizeOrCurrent(size, reader)
            let root = try reader.root(treeSize: treeSize)
            printJSONLine(.object([
                "tree_size": .integer(Int64(treeSize)), "root_hash": .string(Base64.encode(root)),
            ]))
        }
    }
}

struct VectorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectors", abstract: "Write the specification's test vectors (Specs/vectors) generated from fixed seeds.")

    @Option(name: .long, help: "The folder to write them to.")
    var out: String = "Specs/vectors"

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            try FileIO.makeDirectory(out, mode: 0o755, existingIsFine: true)
            for (name, content) in try SpecVectors.generate().sorted(by: { $0.key < $1.key }) {
                let path = out + "/" + name
                // Each file whole or as it was: a full disk must not leave the committed vectors cut short.
                try FileIO.replaceFile(path, with: Array(content.utf8))
                print(path)
            }
        }
    }
}

/// `given` when set, else the ledger's current size (`??` with a throwing right side would lose the typed error).
func sizeOrCurrent(_ given: UInt64?, _ reader: LedgerReader) throws(LedgerError) -> UInt64 {
    if let given { return given }
    return try reader.size()
}
