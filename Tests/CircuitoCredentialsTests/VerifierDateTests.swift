import CircuitoCore
import CircuitoCrypto
import Testing

@testable import CircuitoCredentials

/// Other issuers write validity dates with any offset xsd:dateTimeStamp allows, and the time checked may have one
/// too: each is an instant, compared as such (VC Data Model 2.0 section 4.9; Specs/credentials.md 5, `dates`).
@Suite("OpenBadges: validity dates with time-zone offsets, compared with the time checked")
struct VerifierDateTests {
    /// The fixture's badge with these validity dates, signed with `suite`.
    static func credential(validFrom: String, validUntil: String?, suite: EdDSACryptosuite) throws -> JSONValue {
        guard case .object(var badge) = BadgeFixture.badge else { throw LedgerError(.invalidBody, "the fixture badge is an object") }
        badge["valid_from"] = .string(validFrom)
        badge["valid_until"] = validUntil.map(JSONValue.string)
        return try OpenBadgeCredentials.credential(
            try BadgeFixture.issuance(badge: .object(badge)), signingKey: BadgeFixture.organisationKey, suite: suite,
            contexts: try JSONLDTestFiles.contextStore())
    }

    /// The codes of the failed checks when `credential` is checked at `time` without a status list.
    static func failures(_ credential: JSONValue, statusList: JSONValue? = nil, at time: String) throws -> [String] {
        let report = CredentialVerifier.verify(
            credential: credential, statusList: statusList, at: time, contexts: try JSONLDTestFiles.contextStore())
        return report.failures.compactMap {
            if case .failed(let code, _) = $0.outcome { return code }
            return nil
        }
    }

    @Test("validFrom +01:00 and validUntil -05:30 bound the same instants as Z, whatever offset the time checked has", arguments: EdDSACryptosuite.allCases)
    func offsetsInTheCredential(suite: EdDSACryptosuite) throws {
        // 11:00+01:00 is 10:00Z; 04:30-05:30 a year later is 10:00Z too.
        let credential = try Self.credential(validFrom: "2026-11-22T11:00:00+01:00", validUntil: "2027-11-22T04:30:00-05:30", suite: suite)
        #expect(credential["validFrom"] == "2026-11-22T11:00:00+01:00" && credential["validUntil"] == "2027-11-22T04:30:00-05:30")
        let expected: [(String, [String])] = [
            ("2026-11-22T09:59:59.999Z", ["not_yet_valid"]),
            ("2026-11-22T10:59:59.999+01:00", ["not_yet_valid"]),
            ("2026-11-22T10:00:00Z", []),  // validFrom itself is valid
            ("2026-11-22T11:00:00+01:00", []),
            ("2026-11-22T05:00:00-05:00", []),
            ("2026-11-21T23:30:00-10:30", []),  // the day before, locally
            ("2026-11-22T23:59:59+14:00", ["not_yet_valid"]),
            ("2026-11-23T00:00:00+14:00", []),
            ("2027-11-22T09:59:59.999Z", []),
            ("2027-11-22T15:29:59.999+05:30", []),
            ("2027-11-21T19:59:59-14:00", []),
            ("2027-11-22T10:00:00Z", ["expired"]),  // validUntil itself is not
            ("2027-11-22T04:30:00-05:30", ["expired"]),
            ("2027-11-22T15:30:00+05:30", ["expired"]),
            ("2027-11-23T00:00:00+14:00", ["expired"]),
            ("2027-11-21T20:00:00-14:00", ["expired"]),
        ]
        for (time, codes) in expected {
            #expect(try Self.failures(credential, at: time) == codes, "at \(time)")
        }
    }

    @Test("offsets that move a date across a day, a year, or from 24:00, and fractions with an offset")
    func offsetsAcrossBoundaries() throws {
        // 2028-01-01T00:30+01:00 is 2027-12-31T23:30Z; 24:00-01:00 on the 21st is 01:00Z on the 22nd.
        let credential = try Self.credential(
            validFrom: "2026-11-21T24:00:00-01:00", validUntil: "2028-01-01T00:30:00.250+01:00", suite: .jcs2022)
        #expect(try Self.failures(credential, at: "2026-11-22T00:59:59.999Z") == ["not_yet_valid"])
        #expect(try Self.failures(credential, at: "2026-11-22T01:00:00Z") == [])
        #expect(try Self.failures(credential, at: "2027-12-31T23:30:00.249Z") == [])
        #expect(try Self.failures(credential, at: "2027-12-31T23:30:00.250Z") == ["expired"])
        #expect(try Self.failures(credential, at: "2028-01-01T00:30:00.25+01:00") == ["expired"])
        #expect(CredentialTime.milliseconds("2028-01-01T00:30:00.250+01:00") == CredentialTime.milliseconds("2027-12-31T23:30:00.25Z"))
        #expect(CredentialTime.milliseconds("2026-11-21T24:00:00-01:00") == CredentialTime.milliseconds("2026-11-22T01:00:00Z"))
        #expect(CredentialTime.milliseconds("2026-11-22T10:00:00-00:00") == CredentialTime.milliseconds("2026-11-22T10:00:00Z"))
        // Offsets past ±14:00, or without a colon, are no xsd:dateTimeStamp: format_invalid, not a date compared.
        for text in ["2026-11-22T10:00:00+14:30", "2026-11-22T10:00:00+0100", "2026-11-22T10:00:00+01"] {
            #expect(CredentialTime.milliseconds(text) == nil, "\(text)")
        }
    }

    @Test("a status list's validUntil with an offset: expired at that instant, not at the same wall-clock time in UTC")
    func statusListExpiryWithOffset() throws {
        let credential = try BadgeFixture.credential(.rdfc2022)
        // 2026-12-15T13:00-02:00 is 15:00Z.
        let list = try BadgeFixture.statusList(validUntil: "2026-12-15T13:00:00-02:00")
        #expect(try Self.failures(credential, statusList: list, at: "2026-12-15T14:59:59Z") == [])
        #expect(try Self.failures(credential, statusList: list, at: "2026-12-15T13:30:00Z") == [])
        #expect(try Self.failures(credential, statusList: list, at: "2026-12-15T15:00:00Z") == ["status_list_invalid"])
        #expect(try Self.failures(credential, statusList: list, at: "2026-12-15T16:00:00+01:00") == ["status_list_invalid"])
    }

    /// VC Data Model 2.0 replaced issuanceDate and expirationDate (1.1) by validFrom and validUntil, and the bundled
    /// 2.0 context defines neither old name (nor a @vocab): a credential carrying one is not a well-defined JSON-LD
    /// document, so its proof fails as unprocessable under either suite, and the `dates` check reads only the 2.0
    /// names (Specs/credentials.md 5).
    @Test("issuanceDate and expirationDate, the VC 1.1 names, are undefined terms: the proof fails, the dates are not read", arguments: EdDSACryptosuite.allCases)
    func issuanceDateIsNotAValidityDate(suite: EdDSACryptosuite) throws {
        let credential = try BadgeFixture.credential(suite)
        for (name, date) in [("issuanceDate", "2030-01-01T00:00:00+01:00"), ("expirationDate", "2020-01-01T00:00:00-05:00")] {
            let report = CredentialVerifier.verify(
                credential: VerifierRefusalTests.changed(credential) { $0[name] = .string(date) },
                statusList: try BadgeFixture.statusList(revoked: []), at: BadgeFixture.during, contexts: try JSONLDTestFiles.contextStore())
            VerifierRefusalTests.expectFailed(report, "proof", "proof_invalid", "undefined term: \"\(name)\" is not defined by the @context")
            #expect(report.failures.map(\.name) == ["proof"], "\(name): \(report.failures)")
        }
    }
}
