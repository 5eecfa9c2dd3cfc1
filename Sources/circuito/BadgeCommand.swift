import ArgumentParser
import CircuitoCore
import CircuitoCredentials
import CircuitoCrypto
import CircuitoStorage

struct BadgeCommand: CommandGroup {
    static let configuration = CommandConfiguration(
        commandName: "badge",
        abstract: "Open Badges 3.0 credentials: export, status lists, offline verification, baked images.",
        discussion: "Formats and checks are specified in Specs/credentials.md.",
        subcommands: [
            BadgeCredentialCommand.self, BadgeStatusListCommand.self, BadgeVerifyCommand.self, BadgeBakeCommand.self,
            BadgeExtractCommand.self,
        ])
}

/// The Data Integrity cryptosuite, by its short name.
enum SuiteName: String, ExpressibleByArgument, CaseIterable {
    case rdfc, jcs

    var cryptosuite: EdDSACryptosuite { self == .rdfc ? .rdfc2022 : .jcs2022 }
}

/// Credential JSON files are small; images and status lists may be larger.
enum BadgeFileLimits {
    static let maximumCredentialBytes = 4 << 20
    static let maximumStatusListBytes = 32 << 20
}

struct BadgeCredentialCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credential",
        abstract: "Build and sign the OpenBadgeCredential of an issued badge with its organisation's key.",
        discussion: """
            The key must be an active key of the organisation that issued the badge. The same badge, key and suite \
            always give the same bytes (the proof's created time is the badge's validFrom).
            """)

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "The badge id (or the id of its badge.issued event).")
    var id: String
    @Option(name: .long, help: "The issuing organisation's secret key file.")
    var key: String
    @Option(name: .long, help: "Data Integrity cryptosuite: rdfc (eddsa-rdfc-2022) or jcs (eddsa-jcs-2022).")
    var suite: SuiteName = .rdfc
    @Option(name: .long, help: "Write the credential here instead of standard output.")
    var out: String?
    @Option(name: .long, help: "The JSON-LD contexts directory (default: $CIRCUITO_CONTEXTS or shared/contexts).")
    var contexts: String?

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let source = try LedgerReader.open(directory: data).badgeCredentialSource(badgeID: id)
            try OpenBadgeCredentials.requireNotRevoked(source.badge)
            let signingKey = try readSigningKey(key)
            let credential = try OpenBadgeCredentials.issuedBadgeCredential(
                badge: source.badge, badgeClass: source.badgeClass, issuer: source.issuer,
                activations: source.activations, opportunities: source.opportunities, origin: source.origin,
                statusListIndex: source.statusListIndex, signingKey: signingKey, suite: suite.cryptosuite,
                contexts: try CredentialContexts.load(directory: contexts))
            try LocalFiles.emitJSONLine(credential, to: out)
        }
    }
}

struct BadgeStatusListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status-list",
        abstract: "Build and sign an organisation's Bitstring Status List credential (revocations) as of the ledger's last record.",
        discussion: "Publish it wherever verifiers fetch it; they check a credential with --status-list FILE.")

    @Option(name: .long, help: "The ledger directory.")
    var data: String
    @Option(name: .long, help: "The issuing organisation's actor id.")
    var issuer: String
    @Option(name: .long, help: "The organisation's secret key file.")
    var key: String
    @Option(name: .long, help: "Data Integrity cryptosuite: rdfc (eddsa-rdfc-2022) or jcs (eddsa-jcs-2022).")
    var suite: SuiteName = .rdfc
    @Option(name: .long, help: "Write the status list credential here instead of standard output.")
    var out: String?
    @Option(name: .long, help: "The JSON-LD contexts directory (default: $CIRCUITO_CONTEXTS or shared/contexts).")
    var contexts: String?

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let source = try LedgerReader.open(directory: data).statusListSource(issuer: issuer)
            let signingKey = try readSigningKey(key)
            let credential = try OpenBadgeCredentials.issuerStatusListCredential(
                issuer: source.issuer, issuedCount: source.issuedCount, revokedIndices: source.revokedIndices,
                validFrom: source.asOf, origin: source.origin, signingKey: signingKey, suite: suite.cryptosuite,
                contexts: try CredentialContexts.load(directory: contexts))
            try LocalFiles.emitJSONLine(credential, to: out)
        }
    }
}

/// A credential from a JSON file or a baked PNG or SVG image.
func readCredential(_ path: String) throws(LedgerError) -> JSONValue {
    let bytes = try LocalFiles.read(path, maximumBytes: BadgeBaking.maximumImageBytes)
    let text: [UInt8]
    if BadgeBaking.kind(of: bytes) != nil {
        text = Array(try BadgeBaking.extract(from: bytes).utf8)
        // The credential file's bound holds for a baked one too: an image may be eight times larger, and its text
        // alone decided the verifier's time (a 30 MB one took 16 s of CPU in a debug build).
        guard text.count <= BadgeFileLimits.maximumCredentialBytes else {
            throw LedgerError(.tooLarge, "the credential baked into \(path) is larger than \(BadgeFileLimits.maximumCredentialBytes) bytes")
        }
    } else {
        guard bytes.count <= BadgeFileLimits.maximumCredentialBytes else {
            throw LedgerError(.tooLarge, "\(path) is larger than \(BadgeFileLimits.maximumCredentialBytes) bytes")
        }
        text = bytes
    }
    do throws(LedgerError) {
        let credential = try JSONParser.parse(text)
        guard case .object = credential else { throw LedgerError(.invalidJSON, "a credential is a JSON object") }
        return credential
    } catch {
        throw LedgerError(error.code, "\(path) does not hold a credential: \(error.message)")
    }
}

struct BadgeVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a credential offline: proof, issuer key, validity dates and revocation status.",
        discussion: """
            FILE is a credential (JSON) or a baked PNG or SVG. Prints one line per check, then `valid: …` (exit 0) \
            or `invalid: CODE: why` (exit 1). A credential with a status entry needs --status-list FILE (the \
            issuer's status list credential); without it the result is `not verified: status not checked` (exit 1) \
            unless --no-status is given.
            """)

    @Argument(help: "The credential: a JSON file, or a baked PNG or SVG image.")
    var file: String
    @Option(name: .long, help: "The issuer's Bitstring Status List credential (JSON).")
    var statusList: String?
    @Flag(name: .long, help: "Accept the credential without checking its revocation status.")
    var noStatus = false
    @Option(name: .long, help: "Check validity at this time (RFC 3339, e.g. 2027-01-01T00:00:00Z) instead of now.")
    var at: String?
    @Option(name: .long, help: "Also check that the credential's hashed subject identifier is this beneficiary id.")
    var beneficiary: String?
    @Option(name: .long, help: "The JSON-LD contexts directory (default: $CIRCUITO_CONTEXTS or shared/contexts).")
    var contexts: String?

    func run() throws {
        var report = CredentialVerificationReport()
        var credentialID = "?"
        try reportingErrors { () throws(LedgerError) in
            let credential = try readCredential(file)
            credentialID = credential["id"]?.stringValue ?? "(no id)"
            var list: JSONValue?
            if let statusList {
                let bytes = try LocalFiles.read(statusList, maximumBytes: BadgeFileLimits.maximumStatusListBytes)
                do throws(LedgerError) { list = try JSONParser.parse(bytes) } catch {
                    throw LedgerError(error.code, "status list \(statusList) is not JSON: \(error.message)")
                }
            }
            let store = try CredentialContexts.load(directory: contexts)
            let time = at ?? Timestamp.format(millisecondsSince1970: Ledger.systemClockMilliseconds())
            guard CredentialTime.milliseconds(time) != nil else {
                throw LedgerError(.invalidTimestamp, "--at \(time) is not an RFC 3339 time with a time zone")
            }
            report = CredentialVerifier.verify(
                credential: credential, statusList: list, at: time, contexts: store, beneficiary: beneficiary)
        }
        let output = StandardOutput()
        // The details quote the credential (its ids, its verification method): written as they are, its line breaks
        // and terminal escapes could print lines of their own, a "valid:" among them.
        let shown = { (text: String) in printable(text) }
        for check in report.checks {
            switch check.outcome {
            case .passed(let detail): output.write("\(check.name): ok: \(shown(detail))\n")
            case .failed(let code, let message): output.write("\(check.name): FAILED: \(code): \(shown(message))\n")
            case .notChecked(let detail): output.write("\(check.name): not checked: \(shown(detail))\n")
            }
        }
        if let failure = report.failures.first, case .failed(let code, let message) = failure.outcome {
            output.write("invalid: \(code): \(shown(message))\n")
            output.flush()
            throw ExitCode(1)
        }
        if !report.isValid(allowingUncheckedStatus: noStatus) {
            output.write(
                "not verified: status not checked: give the issuer's status list with --status-list FILE, or --no-status to accept the credential without a revocation check\n")
            output.flush()
            throw ExitCode(1)
        }
        output.write("valid: \(shown(credentialID))\(noStatus ? " (revocation status not checked)" : "")\n")
        output.flush()
    }
}

struct BadgeBakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bake",
        abstract: "Bake a credential into a badge image (PNG iTXt chunk or SVG element), replacing one baked before.")

    @Option(name: .long, help: "The credential (JSON).")
    var credential: String
    @Option(name: .long, help: "The badge image: PNG or SVG.")
    var image: String
    @Option(name: .long, help: "Where to write the baked image.")
    var out: String

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let bytes = try LocalFiles.read(credential, maximumBytes: BadgeFileLimits.maximumCredentialBytes)
            do throws(LedgerError) {
                guard case .object = try JSONParser.parse(bytes) else {
                    throw LedgerError(.invalidJSON, "a credential is a JSON object")
                }
            } catch {
                throw LedgerError(error.code, "\(credential) does not hold a credential: \(error.message)")
            }
            // The credential's text as given, without trailing white space (a proof does not depend on it).
            var text = bytes[...]
            while let last = text.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 { text = text.dropLast() }
            let imageBytes = try LocalFiles.read(image, maximumBytes: BadgeBaking.maximumImageBytes)
            let baked = try BadgeBaking.bake(credential: String(decoding: text, as: UTF8.self), into: imageBytes)
            try LocalFiles.write(baked, to: out)
        }
    }
}

struct BadgeExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract", abstract: "Print the credential baked into a PNG or SVG badge image.",
        discussion: """
            Written exactly as baked to --out, a file or a pipe. On a terminal, control characters other than LF and \
            tab, and bidirectional controls, are shown as JSON \\u escapes, as every JSON output is there, so a \
            baked credential still reads as JSON: the image's maker chose the text.
            """)

    @Argument(help: "The baked image.")
    var file: String
    @Option(name: .long, help: "Write the credential here instead of standard output.")
    var out: String?

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let bytes = try LocalFiles.read(file, maximumBytes: BadgeBaking.maximumImageBytes)
            let text = try BadgeBaking.extract(from: bytes)
            // Whoever made the image chose the text: raw on a terminal, its ESC sequences would drive it and a CR or
            // a bidirectional override rewrite what is shown. There it is escaped as every JSON output of the CLI is
            // on a terminal, so a baked credential still reads as JSON of the same value; to a file or a pipe,
            // exactly as baked.
            let shown = out == nil && StandardOutput.isTerminal ? printableJSON(Array(text.utf8)) : Array(text.utf8)
            try LocalFiles.emit(shown + [0x0A], to: out)
        }
    }
}
