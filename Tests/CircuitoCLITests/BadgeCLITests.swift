import CircuitoCore
import CircuitoCredentials
import CircuitoCrypto
import CircuitoStorage
import Foundation
import Testing

// End-to-end tests of `circuito badge …`: a small circuit is written in-process with `Ledger.create` and the
// rulebook's events, then the built binary exports, verifies, bakes and extracts credentials from it.

/// A ledger with one organisation ("casa"), its staff, a beneficiary, an opportunity, a badge class valid for 30
/// days and three badges (b-1, b-2, b-3), recorded at a fixed time.
final class BadgeLedgerFixture {
    let workspace: Workspace
    let directory: String
    let authority = Ed25519PrivateKey()
    let checkpointKey = Ed25519PrivateKey()
    let organisationKey = Ed25519PrivateKey()
    let staffKey = Ed25519PrivateKey()
    let walletKey = Ed25519PrivateKey()
    let ledger: Ledger
    /// The organisation's key file and a key file of a key the ledger does not know.
    let organisationKeyFile: String
    let strangerKeyFile: String
    let staffKeyFile: String
    private var counter = 0
    /// 2026-11-22T10:00:00.000Z: every record is recorded then.
    static let recordedAtMilliseconds: Int64 = 1_795_341_600_000
    static let recordedAt = "2026-11-22T10:00:00.000Z"

    init() throws {
        workspace = try Workspace()
        directory = workspace.path("ledger")
        organisationKeyFile = workspace.path("casa.key")
        strangerKeyFile = workspace.path("stranger.key")
        staffKeyFile = workspace.path("staff.key")
        try KeyFile.write(organisationKey, to: organisationKeyFile)
        try KeyFile.write(Ed25519PrivateKey(), to: strangerKeyFile)
        try KeyFile.write(staffKey, to: staffKeyFile)
        let genesis = try Self.event(
            "ledger.genesis", id: "genesis", by: "city", key: authority,
            [
                "origin": "badges.test/ledger",
                "authority": .object(["actor": "city", "name": "City", "keys": .array([.string(authority.publicKey.multikey)])]),
                "checkpoint_key": .string(checkpointKey.publicKey.multikey), "currency": ["code": "TOC", "decimals": 2],
            ])
        ledger = try Ledger.create(
            directory: directory, genesis: genesis, checkpointKey: checkpointKey, clock: { Self.recordedAtMilliseconds })
        try append("actor.registered", by: "city", key: authority, [
            "actor": "casa", "role": "organisation", "name": "Casa del Quartiere", "district": "san_salvario",
            "keys": .array([.string(organisationKey.publicKey.multikey)]),
        ])
        try append("actor.registered", by: "city", key: authority, [
            "actor": "op", "role": "staff", "name": "Operator", "organisation": "casa",
            "keys": .array([.string(staffKey.publicKey.multikey)]),
        ])
        try append("actor.registered", by: "op", key: staffKey, [
            "actor": "ben", "role": "beneficiary", "name": "ben", "organisation": "casa",
            "keys": .array([.string(walletKey.publicKey.multikey)]),
        ])
        let sealed = SealedData.seal(["name": "Mario Rossi"], subject: "ben", key: SecretBox.newKey())
        try byStaff("case.referred", ["case": "case-ben", "beneficiary": "ben", "household": "hh-1", "to": "casa", "sealed": sealed])
        try byStaff("case.opened", ["case": "case-ben"])
        try byStaff("opportunity.published", [
            "opportunity": "garden", "title": "Community garden", "description": "Civic-utility work in the garden",
            "category": "civic_utility", "district": "san_salvario",
        ])
        try byStaff("badge_class.defined", [
            "badge_class": "garden-keeper", "name": "Garden keeper", "description": "Looked after the garden",
            "criteria": "10 hours of garden work", "credits": 5, "valid_days": 30,
        ])
        for badge in ["b-1", "b-2", "b-3"] {
            try byStaff("activation.recorded", [
                "activation": .string("act-\(badge)"), "case": "case-ben", "opportunity": "garden", "hours": 10, "date": "2026-11-20",
            ])
            try byStaff("badge.issued", [
                "badge": .string(badge), "badge_class": "garden-keeper", "beneficiary": "ben",
                "activations": .array([.string("act-\(badge)")]),
            ], id: "issue-\(badge)")
        }
    }

    deinit { workspace.remove() }

    static func event(_ type: String, id: String, by actor: String, key: Ed25519PrivateKey, _ body: JSONObject) throws -> VerifiedEvent {
        let event = try Event(id: id, type: type, actor: actor, key: key.publicKey.multikey, timestamp: "2026-11-22T10:00:00Z", body: body)
        return try SignedEvent(signing: event, with: key).verified()
    }

    func append(_ type: String, by actor: String, key: Ed25519PrivateKey, _ body: JSONObject, id: String? = nil) throws {
        counter += 1
        let results = try ledger.append([try Self.event(type, id: id ?? "evt-\(counter)", by: actor, key: key, body)])
        if case .failure(let error) = results[0] { throw error }
    }

    func byStaff(_ type: String, _ body: JSONObject, id: String? = nil) throws {
        try append(type, by: "op", key: staffKey, body, id: id)
    }

    /// `circuito badge credential` for `badge`, written to a file whose path is returned.
    func exportCredential(_ badge: String, suite: String = "rdfc", name: String? = nil) async throws -> String {
        let path = workspace.path(name ?? "\(badge)-\(suite).json")
        let result = try await circuito("badge", "credential", "--data", directory, "--id", badge, "--key", organisationKeyFile, "--suite", suite, "--out", path)
        try #require(result.succeeded, "badge credential failed: \(result.stderr)")
        return path
    }

    func exportStatusList(name: String = "status.json", suite: String = "rdfc") async throws -> String {
        let path = workspace.path(name)
        let result = try await circuito("badge", "status-list", "--data", directory, "--issuer", "casa", "--key", organisationKeyFile, "--suite", suite, "--out", path)
        try #require(result.succeeded, "badge status-list failed: \(result.stderr)")
        return path
    }

    func read(_ path: String) throws -> JSONValue {
        try JSONParser.parse([UInt8](try #require(FileManager.default.contents(atPath: path))))
    }
}

/// A 1×1 PNG made by Python's zlib (so the baking is checked against an image made elsewhere).
let onePixelPNG = Base64.decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP438AAAAQBAYDFKhhdAAAAAElFTkSuQmCC") ?? []

/// Within the badges' 30 days of validity.
let duringValidity = "2026-12-01T00:00:00Z"

@Suite("Badge CLI", .serialized, OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10)))
struct BadgeCLITests {
    @Test("credential + status list → verify: valid with both suites; same badge gives the same bytes; event id works")
    func exportAndVerify() async throws {
        let fixture = try BadgeLedgerFixture()
        let statusList = try await fixture.exportStatusList()
        for suite in ["rdfc", "jcs"] {
            let path = try await fixture.exportCredential("b-1", suite: suite)
            let credential = try fixture.read(path)
            #expect(credential["id"] == "urn:circuito:badge:badges.test/ledger:b-1")
            #expect(credential["issuer"]?["id"] == .string("did:key:" + fixture.organisationKey.publicKey.multikey))
            #expect(credential["credentialStatus"]?["statusListIndex"] == "0")
            #expect(credential["validFrom"] == .string(BadgeLedgerFixture.recordedAt))
            #expect(credential["validUntil"] == "2026-12-22T10:00:00.000Z")
            #expect(!String(decoding: try #require(FileManager.default.contents(atPath: path)), as: UTF8.self).contains("\"ben\""))
            let result = try await circuito("badge", "verify", path, "--status-list", statusList, "--at", duringValidity, "--beneficiary", "ben")
            #expect(result.succeeded, "verify failed: \(result.stdout) \(result.stderr)")
            #expect(result.stdout.contains("proof: ok: eddsa-\(suite)-2022"))
            #expect(result.stdout.contains("status: ok: revocation bit clear"))
            #expect(result.stdout.contains("subject: ok"))
            #expect(result.completeLines.last == "valid: urn:circuito:badge:badges.test/ledger:b-1")
            // Deterministic, and the badge.issued event id names the same badge.
            let again = try await fixture.exportCredential("issue-b-1", suite: suite, name: "again-\(suite).json")
            #expect(FileManager.default.contents(atPath: again) == FileManager.default.contents(atPath: path))
        }
        // Status list indices follow the issuer's issue order.
        await #expect(try fixture.read(try fixture.exportCredential("b-3"))["credentialStatus"]?["statusListIndex"] == "2")
    }

    @Test("revoked: after badge.revoked the new status list fails the credential; export of a revoked badge is refused")
    func revoked() async throws {
        let fixture = try BadgeLedgerFixture()
        let credential = try await fixture.exportCredential("b-2")
        let before = try await fixture.exportStatusList(name: "before.json")
        try fixture.byStaff("badge.revoked", ["badge": "b-2", "reason": "issued in error"])
        let after = try await fixture.exportStatusList(name: "after.json", suite: "jcs")

        let failing = try await circuito("badge", "verify", credential, "--status-list", after, "--at", duringValidity)
        #expect(failing.status == 1)
        #expect(failing.stdout.contains("status: FAILED: revoked"))
        #expect(failing.completeLines.last?.hasPrefix("invalid: revoked:") == true)
        // The list from before the revocation still says otherwise: freshness of the list is the verifier's call.
        await #expect(try circuito("badge", "verify", credential, "--status-list", before, "--at", duringValidity).succeeded)
        // Other badges stay valid with the new list.
        let other = try await fixture.exportCredential("b-1")
        await #expect(try circuito("badge", "verify", other, "--status-list", after, "--at", duringValidity).succeeded)

        let refused = try await circuito("badge", "credential", "--data", fixture.directory, "--id", "b-2", "--key", fixture.organisationKeyFile)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("invalid_state"))
        // Said before the key is read: with a key file that is not there, still the revocation.
        let withoutKey = try await circuito("badge", "credential", "--data", fixture.directory, "--id", "b-2", "--key", fixture.directory + "/no-such.key")
        #expect(withoutKey.status == 1 && withoutKey.stderr.contains("invalid_state"), "\(withoutKey.stderr)")
    }

    @Test("expired and not yet valid: validity dates are checked against --at")
    func expired() async throws {
        let fixture = try BadgeLedgerFixture()
        let credential = try await fixture.exportCredential("b-1")
        let statusList = try await fixture.exportStatusList()
        let late = try await circuito("badge", "verify", credential, "--status-list", statusList, "--at", "2026-12-22T10:00:00Z")
        #expect(late.status == 1)
        #expect(late.stdout.contains("dates: FAILED: expired"))
        let early = try await circuito("badge", "verify", credential, "--status-list", statusList, "--at", "2026-11-22T09:00:00Z")
        #expect(early.status == 1)
        #expect(early.stdout.contains("not_yet_valid"))
        let badTime = try await circuito("badge", "verify", credential, "--status-list", statusList, "--at", "yesterday")
        #expect(badTime.status == 1)
        #expect(badTime.stderr.contains("invalid_timestamp"))
    }

    @Test("wrong key: a key the organisation does not hold (or a staff key) cannot sign its credentials")
    func wrongKey() async throws {
        let fixture = try BadgeLedgerFixture()
        for keyFile in [fixture.strangerKeyFile, fixture.staffKeyFile] {
            let result = try await circuito("badge", "credential", "--data", fixture.directory, "--id", "b-1", "--key", keyFile)
            #expect(result.status == 1)
            #expect(result.stderr.contains("key_not_active"))
            #expect(result.stderr.contains("organisation casa"))
            let list = try await circuito("badge", "status-list", "--data", fixture.directory, "--issuer", "casa", "--key", keyFile)
            #expect(list.status == 1)
        }
        let unknown = try await circuito("badge", "credential", "--data", fixture.directory, "--id", "no-such-badge", "--key", fixture.organisationKeyFile)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("not_found"))
    }

    @Test("tampering with the file, a missing status list, and missing contexts are reported clearly")
    func tamperingAndMissingInputs() async throws {
        let fixture = try BadgeLedgerFixture()
        let path = try await fixture.exportCredential("b-1")
        let statusList = try await fixture.exportStatusList()
        let text = String(decoding: try #require(FileManager.default.contents(atPath: path)), as: UTF8.self)
        let tamperedPath = fixture.workspace.path("tampered.json")
        try text.replacingOccurrences(of: "\"creditsEarned\":5", with: "\"creditsEarned\":50").write(toFile: tamperedPath, atomically: false, encoding: .utf8)
        let tampered = try await circuito("badge", "verify", tamperedPath, "--status-list", statusList, "--at", duringValidity)
        #expect(tampered.status == 1)
        #expect(tampered.stdout.contains("proof: FAILED: proof_invalid: bad signature"))

        // Text from the credential that would print lines of its own (a forged "valid:", a terminal escape that hides
        // the rest) is shown escaped, on the line that quotes it.
        guard case .object(var forged) = try fixture.read(path), case .object(var proof)? = forged["proof"] else {
            Issue.record("the credential has no proof object")
            return
        }
        proof["verificationMethod"] = .string("x\nstatus: ok: revocation bit clear\nvalid: urn:forged\u{1B}[8m\u{202E}")
        forged["proof"] = .object(proof)
        let forgedPath = fixture.workspace.path("forged.json")
        try CanonicalJSON.encodeString(.object(forged)).write(toFile: forgedPath, atomically: false, encoding: .utf8)
        let forgedResult = try await circuito("badge", "verify", forgedPath, "--status-list", statusList, "--at", duringValidity)
        #expect(forgedResult.status == 1)
        // One line per check and the verdict, none of them the forged ones.
        #expect(forgedResult.completeLines.map { $0.prefix { $0 != ":" } } == ["format", "proof", "issuer", "dates", "status", "invalid"], "\(forgedResult.stdout)")
        #expect(!forgedResult.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x202E })
        #expect(forgedResult.stdout.contains("x\\u{A}status: ok: revocation bit clear\\u{A}valid: urn:forged\\u{1B}[8m\\u{202E}"), "\(forgedResult.stdout)")
        #expect(forgedResult.completeLines.last?.hasPrefix("invalid: proof_invalid: ") == true)

        let unchecked = try await circuito("badge", "verify", path, "--at", duringValidity)
        #expect(unchecked.status == 1)
        #expect(unchecked.stdout.contains("status: not checked"))
        #expect(unchecked.completeLines.last?.hasPrefix("not verified: status not checked") == true)
        let accepted = try await circuito("badge", "verify", path, "--at", duringValidity, "--no-status")
        #expect(accepted.succeeded)
        #expect(accepted.completeLines.last?.contains("revocation status not checked") == true)

        let noContexts = try await circuito("badge", "verify", path, "--no-status", "--contexts", fixture.workspace.path("nowhere"))
        #expect(noContexts.status == 1)
        #expect(noContexts.stderr.contains("--contexts"))
        let emptyContexts = fixture.workspace.path("empty-contexts")
        try FileManager.default.createDirectory(atPath: emptyContexts, withIntermediateDirectories: true)
        let missingFile = try await circuito("badge", "verify", path, "--no-status", "--contexts", emptyContexts)
        #expect(missingFile.status == 1)
        #expect(missingFile.stderr.contains("is missing from"))
        // A credential file past the 4 MiB bound for credentials is refused before it is parsed.
        let large = fixture.workspace.path("large.json")
        try ("{\"padding\":\"" + String(repeating: "x", count: 4 << 20) + "\"}").write(toFile: large, atomically: false, encoding: .utf8)
        let tooLarge = try await circuito("badge", "verify", large, "--no-status")
        #expect(tooLarge.status == 1)
        #expect(tooLarge.stderr.contains("error: too_large: "), "\(tooLarge.stderr)")
    }

    @Test("extract on a terminal shows a baked text's control characters and bidirectional overrides as JSON \\u escapes, a baked credential still JSON of the same value; to a pipe, exactly as baked")
    func extractOnATerminalShowsControlsEscaped() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        // Baking takes any text: an image from elsewhere may hold one that clears the line, retitles the terminal and
        // reverses what follows.
        let text = "{\"name\":\"ok\"}\r\u{1B}[2K\u{1B}]0;owned\u{07}{\"name\":\"forged\u{202E}\u{9B}\"}\n\t{}"
        let baked = workspace.path("baked.png")
        try Data(try BadgeBaking.bake(credential: text, into: onePixelPNG)).write(to: URL(fileURLWithPath: baked))
        let onTerminal = try await runToCompletion(["badge", "extract", baked], stdoutOnTerminal: true)
        #expect(onTerminal.succeeded, "\(onTerminal.stderr)")
        // The terminal writes each LF as CR LF.
        let shown = onTerminal.stdout.replacingOccurrences(of: "\r\n", with: "\n")
        #expect(shown == #"{"name":"ok"}\u000d\u001b[2K\u001b]0;owned\u0007{"name":"forged\u202e\u009b"}"# + "\n\t{}\n", "\(shown.debugDescription)")
        let piped = try await circuito("badge", "extract", baked)
        #expect(piped.succeeded && piped.stdout == text + "\n", "\(piped.stdout.debugDescription)")
        // A baked credential whose name holds DEL, a C1 control and an override: on a terminal the same JSON value.
        let credential = "{\"name\":\"Casa\u{7F}\u{9B}2J\u{202E}anretni\"}"
        try Data(try BadgeBaking.bake(credential: credential, into: onePixelPNG)).write(to: URL(fileURLWithPath: baked))
        let credentialOnTerminal = try await runToCompletion(["badge", "extract", baked], stdoutOnTerminal: true)
        let credentialShown = credentialOnTerminal.stdout.replacingOccurrences(of: "\r\n", with: "\n")
        #expect(credentialShown == #"{"name":"Casa\u007f\u009b2J\u202eanretni"}"# + "\n", "\(credentialShown.debugDescription)")
        #expect(try JSONParser.parse(Array(credentialShown.utf8.dropLast())) == JSONParser.parse(Array(credential.utf8)))
    }

    @Test("bake into PNG and SVG, extract, and verify the baked images directly")
    func bakeAndExtract() async throws {
        let fixture = try BadgeLedgerFixture()
        let credentialPath = try await fixture.exportCredential("b-1", suite: "jcs")
        let statusList = try await fixture.exportStatusList()
        let credential = try fixture.read(credentialPath)
        let pngPath = fixture.workspace.path("badge.png")
        try Data(onePixelPNG).write(to: URL(fileURLWithPath: pngPath))
        let svgPath = fixture.workspace.path("badge.svg")
        try #"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>"#
            .write(toFile: svgPath, atomically: false, encoding: .utf8)
        for image in [pngPath, svgPath] {
            let baked = image + ".baked"
            let bake = try await circuito("badge", "bake", "--credential", credentialPath, "--image", image, "--out", baked)
            try #require(bake.succeeded, "bake failed: \(bake.stderr)")
            let extract = try await circuito("badge", "extract", baked)
            #expect(extract.succeeded)
            #expect(try JSONParser.parse(Array(extract.stdout.utf8)) == credential)
            let verify = try await circuito("badge", "verify", baked, "--status-list", statusList, "--at", duringValidity)
            #expect(verify.succeeded, "verify of \(baked) failed: \(verify.stdout)")
        }
        let notBaked = try await circuito("badge", "extract", pngPath)
        #expect(notBaked.status == 1)
        #expect(notBaked.stderr.contains("image_invalid"))
        // A file that holds no credential (a JSON array) is not baked, and nothing is written.
        let notACredential = fixture.workspace.path("array.json")
        try "[1,2,3]\n".write(toFile: notACredential, atomically: false, encoding: .utf8)
        let arrayOut = fixture.workspace.path("array.png")
        let refusedBake = try await circuito("badge", "bake", "--credential", notACredential, "--image", pngPath, "--out", arrayOut)
        #expect(refusedBake.status == 1)
        #expect(refusedBake.stderr.contains("does not hold a credential"), "\(refusedBake.stderr)")
        #expect(!FileManager.default.fileExists(atPath: arrayOut))
        // A baked credential is held to a credential file's 4 MiB as well, though the image may be 32 MiB.
        let padded = "{\"padding\":\"" + String(repeating: "x", count: 4 << 20) + "\"}"
        for image in [pngPath, svgPath] {
            let baked = image + ".large"
            let bytes = try BadgeBaking.bake(credential: padded, into: Array(try Data(contentsOf: URL(fileURLWithPath: image))))
            try Data(bytes).write(to: URL(fileURLWithPath: baked))
            let tooLarge = try await circuito("badge", "verify", baked, "--no-status")
            #expect(tooLarge.status == 1)
            #expect(tooLarge.stderr.contains("error: too_large: the credential baked into \(baked) is larger than 4194304 bytes"), "\(tooLarge.stderr)")
        }
    }
}
