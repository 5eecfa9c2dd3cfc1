import CircuitoCore
import CircuitoCrypto
import Testing

@testable import CircuitoCredentials

/// The checks of `circuito badge verify` against crafted credentials and status lists: each failure names its check
/// and a stable code (Specs/credentials.md section 5), and no input stops the verifier.
@Suite("OpenBadges: crafted credentials and status lists fail the check they break")
struct VerifierRefusalTests {
    static func report(_ credential: JSONValue, statusList: JSONValue? = nil, at time: String = BadgeFixture.during) throws
        -> CredentialVerificationReport
    {
        CredentialVerifier.verify(credential: credential, statusList: statusList, at: time, contexts: try JSONLDTestFiles.contextStore())
    }

    /// Expects the check `name` of `report` failed with `code` and a message containing `detail`.
    static func expectFailed(
        _ report: CredentialVerificationReport, _ name: String, _ code: String, _ detail: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(!report.isValid(allowingUncheckedStatus: true), sourceLocation: sourceLocation)
        guard case .failed(let failedCode, let message)? = report.checks.first(where: { $0.name == name })?.outcome else {
            Issue.record("the \(name) check did not fail: \(report.checks)", sourceLocation: sourceLocation)
            return
        }
        #expect(failedCode == code, "\(message)", sourceLocation: sourceLocation)
        #expect(message.contains(detail), "\(message)", sourceLocation: sourceLocation)
    }

    static func changed(_ value: JSONValue, _ change: (inout JSONObject) -> Void) -> JSONValue {
        guard case .object(var members) = value else { return value }
        change(&members)
        return .object(members)
    }

    @Test("a time that is not a date-time with a time zone is the only check made")
    func invalidTime() throws {
        let report = try Self.report(try BadgeFixture.credential(.rdfc2022), at: "2026-12-15 12:00")
        #expect(report.checks.map(\.name) == ["dates"])
        Self.expectFailed(report, "dates", "invalid_time", "is not a date-time with a time zone")
    }

    @Test("format: not an object, an OpenBadgeCredential without the Open Badges context or an achievement")
    func format() throws {
        Self.expectFailed(try Self.report(["VerifiableCredential"]), "format", "format_invalid", "a credential is a JSON object")
        Self.expectFailed(try Self.report("text"), "issuer", "issuer_invalid", "names no issuer")
        let credential = try BadgeFixture.credential(.rdfc2022)
        let withoutContext = Self.changed(credential) { $0["@context"] = [.string(OpenBadgeCredentials.credentialsContext)] }
        Self.expectFailed(try Self.report(withoutContext), "format", "format_invalid", "needs the Open Badges 3.0 context")
        let withoutAchievement = Self.changed(credential) { members in
            guard case .object(var subject)? = members["credentialSubject"] else { return }
            subject["achievement"] = nil
            members["credentialSubject"] = .object(subject)
        }
        Self.expectFailed(try Self.report(withoutAchievement), "format", "format_invalid", "has no achievement")
    }

    @Test("format: without an id, the credential node must be the only VerifiableCredential node")
    func credentialNode() throws {
        let unnamed: JSONValue = [
            "@context": [.string(OpenBadgeCredentials.credentialsContext)], "type": ["VerifiableCredential"],
            "issuer": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "validFrom": "2026-01-01T00:00:00Z",
            "credentialSubject": ["id": "urn:example:subject"],
        ]
        // One such node, a blank one: it is the credential, and its validFrom is stated under its usual name.
        guard case .passed? = try Self.report(unnamed).checks.first(where: { $0.name == "format" })?.outcome else {
            Issue.record("the format check of a credential without an id failed")
            return
        }
        let twoNodes = Self.changed(unnamed) {
            $0["credentialSubject"] = ["type": "VerifiableCredential", "issuer": "did:example:other"]
        }
        Self.expectFailed(try Self.report(twoNodes), "format", "format_invalid", "does not state, as one VerifiableCredential node")
    }

    @Test("issuer: a credential naming no issuer")
    func noIssuer() throws {
        let credential = Self.changed(try BadgeFixture.credential(.jcs2022)) { $0["issuer"] = nil }
        Self.expectFailed(try Self.report(credential), "issuer", "issuer_invalid", "the credential names no issuer")
    }

    @Test("status: two entries, a list of another type, a list's validUntil that is no date-time, an index past the list")
    func status() throws {
        let credential = try BadgeFixture.credential(.rdfc2022)
        let list = try BadgeFixture.statusList(revoked: [])
        let twoEntries = Self.changed(credential) { members in
            let entry = members["credentialStatus"] ?? .null
            members["credentialStatus"] = [entry, entry]
        }
        Self.expectFailed(try Self.report(twoEntries, statusList: list), "status", "status_unsupported", "only one credentialStatus entry")
        let otherType = Self.changed(list) { $0["type"] = ["VerifiableCredential"] }
        Self.expectFailed(try Self.report(credential, statusList: otherType), "status", "status_list_invalid", "it is not a BitstringStatusListCredential")

        // A list signed with a validUntil that is not a date-time: its proof holds, its date does not.
        let badDate = try BadgeFixture.statusList(validUntil: "next week", suite: .jcs2022)
        Self.expectFailed(try Self.report(credential, statusList: badDate), "status", "status_list_invalid", "validUntil is not a date-time")

        // A credential whose index lies past the end of a list of 131,072 entries.
        let farIndex = try BadgeFixture.credential(.rdfc2022, statusListIndex: 200_000)
        Self.expectFailed(
            try Self.report(farIndex, statusList: list), "status", "status_list_invalid", "index 200000 is outside the list (131072 entries)")
    }

    @Test("proof: not a map, or missing its cryptosuite, purpose or verification method, is malformed by name")
    func malformedProofs() throws {
        let credential = try BadgeFixture.credential(.rdfc2022)
        Self.expectFailed(try Self.report(Self.changed(credential) { $0["proof"] = "z3abc" }), "proof", "proof_invalid", "malformed proof: proof must be a JSON object")
        for member in ["cryptosuite", "proofPurpose", "verificationMethod"] {
            let withoutMember = Self.changed(credential) { members in
                guard case .object(var proof)? = members["proof"] else { return }
                proof[member] = nil
                members["proof"] = .object(proof)
            }
            Self.expectFailed(try Self.report(withoutMember), "proof", "proof_invalid", "malformed proof: \(member) is missing")
        }
    }
}
