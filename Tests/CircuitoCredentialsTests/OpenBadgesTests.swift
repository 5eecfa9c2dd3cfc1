import CircuitoCore
import CircuitoCrypto
import Foundation
import Testing

@testable import CircuitoCredentials

/// A badge as the ledger's projections hold it, and the keys of its issuing organisation.
enum BadgeFixture {
    static let origin = "circuito.test/ledger"
    static let organisationKey = Ed25519PrivateKey(seed: [UInt8](repeating: 7, count: 32))!
    static let otherKey = Ed25519PrivateKey(seed: [UInt8](repeating: 9, count: 32))!
    static let beneficiary = "ben-4711"

    static let badge: JSONValue = [
        "badge": "b-1", "badge_class": "garden-keeper", "beneficiary": .string(beneficiary), "credits": 5,
        "activations": ["act-1", "act-2"], "issuer": "casa", "issued_at": 42, "valid_from": "2026-11-22T10:00:00.000Z",
        "valid_until": "2027-11-22T10:00:00.000Z", "status": "issued", "converted": false,
    ]
    static let badgeClass: JSONValue = [
        "badge_class": "garden-keeper", "name": "Garden keeper", "description": "Looked after the neighbourhood garden",
        "criteria": "10 hours of garden work", "credits": 5, "issuer": "casa", "status": "active", "defined_at": 12,
        "valid_days": 365,
    ]
    static let activations: [JSONValue] = [
        [
            "activation": "act-1", "case": "case-ben", "beneficiary": .string(beneficiary), "opportunity": "garden",
            "hours": 6, "date": "2026-11-20", "organisation": "casa", "recorded_at": 30,
        ],
        [
            "activation": "act-2", "case": "case-ben", "beneficiary": .string(beneficiary), "opportunity": "garden",
            "hours": 4, "date": "2026-11-21", "organisation": "casa", "recorded_at": 31,
        ],
    ]
    static let opportunities: JSONObject = [
        "garden": [
            "opportunity": "garden", "title": "Community garden", "description": "Civic-utility work",
            "category": "civic_utility", "district": "san_salvario", "provider": "casa", "status": "published",
        ]
    ]

    static func issuance(statusListIndex: Int = 3, badge: JSONValue = badge) throws -> BadgeIssuance {
        try BadgeIssuance(
            badge: badge, badgeClass: badgeClass, issuerName: "Casa del Quartiere", activations: activations,
            opportunities: opportunities, origin: origin, statusListIndex: statusListIndex)
    }

    static func credential(_ suite: EdDSACryptosuite, key: Ed25519PrivateKey = organisationKey, statusListIndex: Int = 3) throws -> JSONValue {
        try OpenBadgeCredentials.credential(
            try issuance(statusListIndex: statusListIndex), signingKey: key, suite: suite,
            contexts: try JSONLDTestFiles.contextStore())
    }

    static func statusList(revoked: [Int], suite: EdDSACryptosuite = .rdfc2022, key: Ed25519PrivateKey = organisationKey, validFrom: String = "2026-12-01T09:00:00.000Z") throws -> JSONValue {
        try OpenBadgeCredentials.statusListCredential(
            StatusListIssuance(origin: origin, issuer: "casa", issuedCount: 10, revokedIndices: revoked, validFrom: validFrom),
            signingKey: key, suite: suite, contexts: try JSONLDTestFiles.contextStore())
    }

    static let during = "2026-12-15T12:00:00Z"

    /// An empty rdfc status list valid from 2026-12-01 until 2026-12-10 (before `during`).
    static func statusListExpiring() throws -> JSONValue {
        try statusList(validUntil: "2026-12-10T00:00:00.000Z")
    }

    /// An empty status list valid from 2026-12-01, signed with `validUntil` as given (a date-time or not).
    static func statusList(validUntil: String, suite: EdDSACryptosuite = .rdfc2022) throws -> JSONValue {
        let issuance = StatusListIssuance(origin: origin, issuer: "casa", issuedCount: 10, revokedIndices: [], validFrom: "2026-12-01T00:00:00.000Z")
        guard case .object(var unsigned) = try OpenBadgeCredentials.unsignedStatusListCredential(issuance, issuerKey: organisationKey.publicKey) else {
            throw LedgerError(.invalidBody, "a status list credential is an object")
        }
        unsigned["validUntil"] = .string(validUntil)
        return try EdDSACryptosuite.createProof(
            document: .object(unsigned), suite: suite, privateKey: organisationKey,
            verificationMethod: DIDKey.verificationMethod(for: organisationKey.publicKey),
            created: issuance.validFrom, contexts: try JSONLDTestFiles.contextStore())
    }
}

/// Every path to a scalar inside `value`, as object keys and array indices.
enum JSONPath {
    enum Step: Hashable, CustomStringConvertible {
        case key(String), index(Int)
        var description: String {
            switch self {
            case .key(let key): return key
            case .index(let index): return "[\(index)]"
            }
        }
    }

    static func leaves(_ value: JSONValue, prefix: [Step] = []) -> [[Step]] {
        switch value {
        case .object(let members): return members.keys.sorted().flatMap { leaves(members[$0] ?? .null, prefix: prefix + [.key($0)]) }
        case .array(let elements): return elements.indices.flatMap { leaves(elements[$0], prefix: prefix + [.index($0)]) }
        default: return [prefix]
        }
    }

    static func changing(_ value: JSONValue, at path: [Step], _ change: (JSONValue) -> JSONValue) -> JSONValue {
        guard let first = path.first else { return change(value) }
        switch (value, first) {
        case (.object(var members), .key(let key)):
            members[key] = changing(members[key] ?? .null, at: Array(path.dropFirst()), change)
            return .object(members)
        case (.array(var elements), .index(let index)):
            elements[index] = changing(elements[index], at: Array(path.dropFirst()), change)
            return .array(elements)
        default: return value
        }
    }

    /// A different scalar of the same kind.
    static func altered(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): return .string(text + "x")
        case .integer(let number): return .integer(number + 1)
        case .bool(let flag): return .bool(!flag)
        case .number(let number): return .number(number + 1)
        default: return .string("x")
        }
    }
}

@Suite("OpenBadges: credentials")
struct OpenBadgesCredentialTests {
    @Test("an OpenBadgeCredential with both suites: fields, did:key issuer, status entry, deterministic bytes")
    func buildAndSign() throws {
        for suite in EdDSACryptosuite.allCases {
            let credential = try BadgeFixture.credential(suite)
            let did = DIDKey.did(for: BadgeFixture.organisationKey.publicKey)
            #expect(credential["@context"] == [
                "https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
            ])
            #expect(credential["id"] == "urn:circuito:badge:circuito.test/ledger:b-1")
            #expect(credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"])
            #expect(credential["issuer"]?["id"] == .string(did))
            #expect(credential["validFrom"] == "2026-11-22T10:00:00.000Z")
            #expect(credential["validUntil"] == "2027-11-22T10:00:00.000Z")
            let subject = try #require(credential["credentialSubject"])
            #expect(subject["creditsEarned"] == 5)
            #expect(subject["achievement"]?["creditsAvailable"] == 5)
            #expect(subject["achievement"]?["criteria"]?["narrative"] == "10 hours of garden work")
            #expect(subject["activityStartDate"] == "2026-11-20" && subject["activityEndDate"] == "2026-11-21")
            #expect(subject["id"] == nil)
            #expect(credential["evidence"]?.arrayValue?.count == 2)
            #expect(credential["evidence"]?[keyPath: 0]?["name"] == "Community garden")
            #expect(credential["credentialStatus"] == [
                "id": "urn:circuito:status:circuito.test/ledger:casa#3", "type": "BitstringStatusListEntry",
                "statusPurpose": "revocation", "statusListIndex": "3",
                "statusListCredential": "urn:circuito:status:circuito.test/ledger:casa",
            ])
            let proof = try #require(credential["proof"])
            #expect(proof["cryptosuite"] == .string(suite.rawValue))
            #expect(proof["verificationMethod"] == .string(DIDKey.verificationMethod(for: BadgeFixture.organisationKey.publicKey)))
            #expect(proof["created"] == "2026-11-22T10:00:00.000Z")
            // Same badge, key and suite: same bytes.
            #expect(CanonicalJSON.encode(try BadgeFixture.credential(suite)) == CanonicalJSON.encode(credential))
            let report = CredentialVerifier.verify(
                credential: credential, statusList: try BadgeFixture.statusList(revoked: []), at: BadgeFixture.during,
                contexts: try JSONLDTestFiles.contextStore(), beneficiary: BadgeFixture.beneficiary)
            #expect(report.isValid(), "\(report.checks)")
            #expect(report.checks.map(\.name) == ["format", "proof", "issuer", "dates", "status", "subject"])
        }
    }

    @Test("no personal data: the beneficiary id appears only inside a salted hash, and the salt differs per badge")
    func subjectIdentifier() throws {
        let credential = try BadgeFixture.credential(.rdfc2022)
        let text = CanonicalJSON.encodeString(credential)
        #expect(!text.contains(BadgeFixture.beneficiary))
        #expect(!text.contains("case-ben"))
        let identifier = try #require(credential["credentialSubject"]?["identifier"]?[keyPath: 0])
        #expect(identifier["type"] == "IdentityObject" && identifier["identityType"] == "systemId" && identifier["hashed"] == true)
        let salt = try #require(identifier["salt"]?.stringValue)
        #expect(salt.count == 32)
        #expect(identifier["identityHash"] == .string(OpenBadgeCredentials.identityHash(identity: BadgeFixture.beneficiary, salt: salt)))
        #expect(identifier["identityHash"]?.stringValue?.hasPrefix("sha256$") == true)
        #expect(OpenBadgeCredentials.subject(of: credential, is: BadgeFixture.beneficiary))
        #expect(!OpenBadgeCredentials.subject(of: credential, is: "ben-4712"))
        // Another badge of the same person: another salt, so the two credentials share no identifier.
        let otherSalt = OpenBadgeCredentials.subjectSalt(origin: BadgeFixture.origin, badgeID: "b-2", signingKey: BadgeFixture.organisationKey)
        #expect(otherSalt != salt)
        // Without the issuer's key the salt cannot be derived.
        #expect(OpenBadgeCredentials.subjectSalt(origin: BadgeFixture.origin, badgeID: "b-1", signingKey: BadgeFixture.otherKey) != salt)
        let report = CredentialVerifier.verify(
            credential: credential, statusList: nil, at: BadgeFixture.during, contexts: try JSONLDTestFiles.contextStore(),
            beneficiary: "ben-4712")
        #expect(report.failures.map(\.name) == ["subject"])
    }

    @Test("tampering: changing any field of the credential (proof included) makes verification fail, both suites")
    func tampering() throws {
        let store = try JSONLDTestFiles.contextStore()
        let statusList = try BadgeFixture.statusList(revoked: [])
        for suite in EdDSACryptosuite.allCases {
            let credential = try BadgeFixture.credential(suite)
            let paths = JSONPath.leaves(credential)
            #expect(paths.count > 40)
            for path in paths {
                let tampered = JSONPath.changing(credential, at: path, JSONPath.altered)
                #expect(tampered != credential)
                let report = CredentialVerifier.verify(credential: tampered, statusList: statusList, at: BadgeFixture.during, contexts: store)
                #expect(!report.isValid(), "\(suite.rawValue): changing \(path.map(\.description).joined(separator: ".")) went unnoticed")
                #expect(!report.failures.isEmpty)
            }
            // Removing a field or adding one fails as well.
            for key in ["credentialStatus", "validUntil", "evidence", "name"] {
                guard case .object(var members) = credential else { continue }
                members[key] = nil
                #expect(!CredentialVerifier.verify(credential: .object(members), statusList: statusList, at: BadgeFixture.during, contexts: store).isValid())
            }
            guard case .object(var extended) = credential else { continue }
            extended["description"] = "added later"
            #expect(!CredentialVerifier.verify(credential: .object(extended), statusList: statusList, at: BadgeFixture.during, contexts: store).isValid())
        }
    }

    @Test("wrong key: signed by a key that is not the issuer's, or a proof pointing at another key")
    func wrongKey() throws {
        let store = try JSONLDTestFiles.contextStore()
        // The issuer profile names key A, the proof is made (validly) by key B.
        let issuance = try BadgeFixture.issuance()
        let unsigned = OpenBadgeCredentials.unsignedCredential(
            issuance, issuerKey: BadgeFixture.organisationKey.publicKey, salt: "00112233445566778899aabbccddeeff")
        // `unsigned`, signed with `privateKey` by `suite`, its proof naming `verificationMethod`.
        func signed(_ suite: EdDSACryptosuite, by privateKey: Ed25519PrivateKey, naming verificationMethod: String) throws -> JSONValue {
            try EdDSACryptosuite.createProof(
                document: unsigned, suite: suite, privateKey: privateKey, verificationMethod: verificationMethod,
                created: issuance.validFrom, contexts: store)
        }
        let signedByOther = try signed(.rdfc2022, by: BadgeFixture.otherKey, naming: DIDKey.verificationMethod(for: BadgeFixture.otherKey.publicKey))
        let report = CredentialVerifier.verify(credential: signedByOther, statusList: nil, at: BadgeFixture.during, contexts: store)
        #expect(report.failures.map(\.name) == ["issuer"])
        guard case .failed(let code, _)? = report.failures.first?.outcome else { return }
        #expect(code == "issuer_mismatch")

        // The issuer's own key signs, but the proof names it by the bare DID, not a verification method of the issuer.
        let bareMethod = try signed(.rdfc2022, by: BadgeFixture.organisationKey, naming: DIDKey.did(for: BadgeFixture.organisationKey.publicKey))
        let bare = CredentialVerifier.verify(credential: bareMethod, statusList: nil, at: BadgeFixture.during, contexts: store)
        #expect(bare.failures.map(\.name) == ["issuer"])

        // Key B signs, but the proof claims key A: the signature does not match.
        let claimingIssuer = try signed(.jcs2022, by: BadgeFixture.otherKey, naming: DIDKey.verificationMethod(for: BadgeFixture.organisationKey.publicKey))
        let forged = CredentialVerifier.verify(credential: claimingIssuer, statusList: nil, at: BadgeFixture.during, contexts: store)
        #expect(forged.failures.map(\.name) == ["proof"])

        // A status list signed by another key is not the issuer's list.
        let credential = try BadgeFixture.credential(.rdfc2022)
        let foreignList = try BadgeFixture.statusList(revoked: [], key: BadgeFixture.otherKey)
        let status = CredentialVerifier.verify(credential: credential, statusList: foreignList, at: BadgeFixture.during, contexts: store)
        guard case .failed(let statusCode, let message)? = status.failures.first?.outcome else {
            Issue.record("a foreign status list was accepted")
            return
        }
        #expect(statusCode == "status_list_invalid")
        #expect(message.contains("not by the credential's issuer"))
    }

    @Test("revoked: the credential's bit set in the issuer's signed status list fails; other bits do not")
    func revoked() throws {
        let store = try JSONLDTestFiles.contextStore()
        for suite in EdDSACryptosuite.allCases {
            let credential = try BadgeFixture.credential(suite, statusListIndex: 3)
            let revokedList = try BadgeFixture.statusList(revoked: [1, 3], suite: suite)
            let report = CredentialVerifier.verify(credential: credential, statusList: revokedList, at: BadgeFixture.during, contexts: store)
            #expect(report.failures.map(\.name) == ["status"])
            guard case .failed(let code, _)? = report.failures.first?.outcome else { continue }
            #expect(code == "revoked")
            let otherRevoked = try BadgeFixture.statusList(revoked: [2, 4], suite: suite)
            #expect(CredentialVerifier.verify(credential: credential, statusList: otherRevoked, at: BadgeFixture.during, contexts: store).isValid())
        }
        // The list itself is checked: tampered, wrong id, not yet valid.
        let credential = try BadgeFixture.credential(.rdfc2022)
        let list = try BadgeFixture.statusList(revoked: [3])
        let cleared = JSONPath.changing(list, at: [.key("credentialSubject"), .key("encodedList")]) { _ in
            .string(BitstringStatusList(holding: 10).encodedList)
        }
        let tamperedReport = CredentialVerifier.verify(credential: credential, statusList: cleared, at: BadgeFixture.during, contexts: store)
        #expect(tamperedReport.failures.map(\.name) == ["status"])
        // A list newer than the time checked is still consulted; an expired list is not.
        let newer = CredentialVerifier.verify(credential: credential, statusList: try BadgeFixture.statusList(revoked: [], validFrom: "2027-01-01T00:00:00.000Z"), at: BadgeFixture.during, contexts: store)
        #expect(newer.isValid())
        let expiredList = try BadgeFixture.statusListExpiring()
        let stale = CredentialVerifier.verify(credential: credential, statusList: expiredList, at: BadgeFixture.during, contexts: store)
        guard case .failed(let staleCode, let staleMessage)? = stale.failures.first?.outcome else {
            Issue.record("an expired status list was accepted")
            return
        }
        #expect(staleCode == "status_list_invalid" && staleMessage.contains("expired"))
        #expect(CredentialVerifier.verify(credential: credential, statusList: expiredList, at: "2026-12-05T00:00:00Z", contexts: store).isValid())
        // Without a list, the status is not checked: not valid unless the caller accepts that.
        let unchecked = CredentialVerifier.verify(credential: credential, statusList: nil, at: BadgeFixture.during, contexts: store)
        #expect(unchecked.failures.isEmpty)
        #expect(!unchecked.isValid())
        #expect(unchecked.isValid(allowingUncheckedStatus: true))
    }

    /// The CLI reads status lists of up to 32 MiB: one of 29 MB holding three million short strings took 1.5 GB and
    /// was stopped by a 2 GB memory limit (a credential baked into a 28 MB PNG ran for minutes).
    @Test("a status list of very many values is refused at the JSON-LD element bound, not processed whole")
    func aStatusListOfVeryManyValuesIsBounded() throws {
        let store = try JSONLDTestFiles.contextStore()
        let credential = try BadgeFixture.credential(.rdfc2022)
        guard case .object(var members) = try BadgeFixture.statusList(revoked: []) else { return }
        members["name"] = .array((0..<JSONLDProcessingBounds.maximumExpandedElements).map { .string("v\($0)") })
        let report = CredentialVerifier.verify(credential: credential, statusList: .object(members), at: BadgeFixture.during, contexts: store)
        guard case .failed(let code, let message)? = report.checks.first(where: { $0.name == "status" })?.outcome else {
            Issue.record("the status check did not fail: \(report.checks)")
            return
        }
        #expect(code == "status_list_invalid")
        #expect(message.contains("bound of \(JSONLDProcessingBounds.maximumExpandedElements) elements"), "\(message)")
    }

    @Test("the status list must be the one the entry names, for its purpose; the entry's index must be written as a decimal")
    func statusEntryMatchesItsList() throws {
        let store = try JSONLDTestFiles.contextStore()
        let credential = try BadgeFixture.credential(.jcs2022, statusListIndex: 3)
        func statusOutcome(_ credential: JSONValue, _ list: JSONValue) -> CredentialVerificationReport.Outcome? {
            CredentialVerifier.verify(credential: credential, statusList: list, at: BadgeFixture.during, contexts: store)
                .checks.first { $0.name == "status" }?.outcome
        }
        // The issuer's list of another ledger (another id), validly signed by the same key, bit 3 clear.
        let otherLedgerList = try OpenBadgeCredentials.statusListCredential(
            StatusListIssuance(origin: "other.test/ledger", issuer: "casa", issuedCount: 10, revokedIndices: [], validFrom: "2026-12-01T09:00:00.000Z"),
            signingKey: BadgeFixture.organisationKey, suite: .rdfc2022, contexts: store)
        guard case .failed(let listCode, let listMessage)? = statusOutcome(credential, otherLedgerList) else {
            Issue.record("a status list under another id was consulted")
            return
        }
        #expect(listCode == "status_list_invalid" && listMessage.contains("refers to"), "\(listMessage)")
        // A list of the issuer for another purpose (suspension), validly signed, bit 3 clear: it says nothing of revocation.
        let issuance = StatusListIssuance(origin: BadgeFixture.origin, issuer: "casa", issuedCount: 10, revokedIndices: [], validFrom: "2026-12-01T09:00:00.000Z")
        guard case .object(var suspension) = try OpenBadgeCredentials.unsignedStatusListCredential(issuance, issuerKey: BadgeFixture.organisationKey.publicKey),
            case .object(var subject)? = suspension["credentialSubject"]
        else {
            Issue.record("a status list credential is an object")
            return
        }
        subject["statusPurpose"] = "suspension"
        suspension["credentialSubject"] = .object(subject)
        let suspensionList = try EdDSACryptosuite.createProof(
            document: .object(suspension), suite: .rdfc2022, privateKey: BadgeFixture.organisationKey,
            verificationMethod: DIDKey.verificationMethod(for: BadgeFixture.organisationKey.publicKey),
            created: issuance.validFrom, contexts: store)
        guard case .failed(let purposeCode, let purposeMessage)? = statusOutcome(credential, suspensionList) else {
            Issue.record("a status list for another purpose was consulted")
            return
        }
        #expect(purposeCode == "status_list_invalid" && purposeMessage.contains("purpose"), "\(purposeMessage)")
        // An index with a leading zero (the proof then fails too; the status check says why it refuses the entry).
        let padded = JSONPath.changing(credential, at: [.key("credentialStatus"), .key("statusListIndex")]) { _ in "03" }
        guard case .failed(let indexCode, _)? = statusOutcome(padded, try BadgeFixture.statusList(revoked: [])) else {
            Issue.record("a statusListIndex of 03 was read as 3")
            return
        }
        #expect(indexCode == "status_invalid")
    }

    @Test("eddsa-rdfc-2022: a date or status entry moved to another name (a full IRI, an alias) keeps the proof but is refused, never read as absent")
    func membersUnderOtherNames() throws {
        let store = try JSONLDTestFiles.contextStore()
        let vocabulary = "https://www.w3.org/2018/credentials#"
        let dateTime = "http://www.w3.org/2001/XMLSchema#dateTime"
        let credential = try BadgeFixture.credential(.rdfc2022, statusListIndex: 3)
        let revokedList = try BadgeFixture.statusList(revoked: [3])
        func renamed(_ document: JSONValue, _ name: String, as value: (JSONValue) -> JSONValue = { $0 }, key: String? = nil) -> JSONValue {
            guard case .object(var members) = document, let old = members[name] else { return document }
            members[name] = nil
            members[key ?? vocabulary + name] = value(old)
            return .object(members)
        }
        func asTypedDate(_ value: JSONValue) -> JSONValue { ["@value": value, "@type": .string(dateTime)] }
        // An added context that names validUntil anew.
        func aliased(_ document: JSONValue) -> JSONValue {
            guard case .object(var members) = document, case .array(let contexts)? = members["@context"] else { return document }
            members["@context"] = .array(contexts + [["expiresAt": ["@id": .string(vocabulary + "validUntil"), "@type": .string(dateTime)]]])
            return .object(members)
        }
        func outcome(_ report: CredentialVerificationReport, _ name: String) -> CredentialVerificationReport.Outcome? {
            report.checks.first { $0.name == name }?.outcome
        }
        // Each document still carries a valid proof: the same RDF statements under other JSON names.
        let cases: [(what: String, document: JSONValue, time: String)] = [
            ("a revoked credential's status entry", renamed(credential, "credentialStatus"), BadgeFixture.during),
            ("an expired credential's validUntil", renamed(credential, "validUntil", as: asTypedDate), "2028-01-01T00:00:00Z"),
            ("a credential's validFrom before it", renamed(credential, "validFrom", as: asTypedDate), "2026-01-01T00:00:00Z"),
            ("an expired credential's validUntil under an alias", aliased(renamed(credential, "validUntil", key: "expiresAt")), "2028-01-01T00:00:00Z"),
        ]
        for (what, document, time) in cases {
            let report = CredentialVerifier.verify(credential: document, statusList: revokedList, at: time, contexts: store)
            guard case .passed? = outcome(report, "proof") else {
                Issue.record("\(what): the proof no longer verifies, so this case tests nothing")
                continue
            }
            guard case .failed(let code, let message)? = outcome(report, "format") else {
                Issue.record("\(what): accepted as format \(String(describing: outcome(report, "format")))")
                continue
            }
            #expect(code == "format_invalid" && message.contains("another name"), "\(what): \(message)")
            #expect(!report.isValid(allowingUncheckedStatus: true), "\(what)")
            let unlisted = CredentialVerifier.verify(credential: document, statusList: nil, at: time, contexts: store)
            #expect(!unlisted.isValid(allowingUncheckedStatus: true), "\(what), without a status list")
        }
        // The same document with its usual names is refused for what it is.
        let revoked = CredentialVerifier.verify(credential: credential, statusList: revokedList, at: BadgeFixture.during, contexts: store)
        #expect(revoked.failures.map(\.name) == ["status"])

        // A status list whose validUntil is hidden would pass an expired list off as current.
        let expiredList = try BadgeFixture.statusListExpiring()
        let hiddenExpiry = renamed(expiredList, "validUntil", as: asTypedDate)
        #expect(EdDSACryptosuite.verifyProof(document: hiddenExpiry, contexts: store, resolveKey: DIDKey.publicKey(fromVerificationMethod:)).isVerified)
        let stale = CredentialVerifier.verify(credential: credential, statusList: hiddenExpiry, at: BadgeFixture.during, contexts: store)
        guard case .failed(let staleCode, let staleMessage)? = outcome(stale, "status") else {
            Issue.record("a status list with its expiry under another name was accepted")
            return
        }
        #expect(staleCode == "status_list_invalid" && staleMessage.contains("another name"), "\(staleMessage)")
    }

    @Test("status list credential: W3C shape, 131,072 entries, GZIP + base64url, verifies with both suites")
    func statusListShape() throws {
        let store = try JSONLDTestFiles.contextStore()
        for suite in EdDSACryptosuite.allCases {
            let list = try BadgeFixture.statusList(revoked: [0, 5], suite: suite)
            #expect(list["type"] == ["VerifiableCredential", "BitstringStatusListCredential"])
            #expect(list["id"] == "urn:circuito:status:circuito.test/ledger:casa")
            #expect(list["issuer"] == .string(DIDKey.did(for: BadgeFixture.organisationKey.publicKey)))
            #expect(list["credentialSubject"]?["id"] == "urn:circuito:status:circuito.test/ledger:casa#list")
            #expect(list["credentialSubject"]?["type"] == "BitstringStatusList")
            #expect(list["credentialSubject"]?["statusPurpose"] == "revocation")
            let encoded = try #require(list["credentialSubject"]?["encodedList"]?.stringValue)
            let bits = try BitstringStatusList(encodedList: encoded)
            #expect(bits.entryCount == 131_072)
            #expect((0..<8).map { bits.isSet($0) == true } == [true, false, false, false, false, true, false, false])
            let proof = EdDSACryptosuite.verifyProof(document: list, contexts: store, resolveKey: DIDKey.publicKey(fromVerificationMethod:))
            #expect(proof.isVerified)
        }
    }

    @Test("validity dates: not yet valid, expired, and offsets in other issuers' timestamps")
    func dates() throws {
        let store = try JSONLDTestFiles.contextStore()
        let credential = try BadgeFixture.credential(.jcs2022)
        let list = try BadgeFixture.statusList(revoked: [], validFrom: "2026-11-01T00:00:00.000Z")
        func failing(at time: String) -> [String] {
            CredentialVerifier.verify(credential: credential, statusList: list, at: time, contexts: store).failures.compactMap {
                if case .failed(let code, _) = $0.outcome { return code }
                return nil
            }
        }
        #expect(failing(at: "2026-11-22T09:59:59Z") == ["not_yet_valid"])
        #expect(failing(at: "2026-11-22T10:00:00Z") == [])
        #expect(failing(at: "2027-11-22T09:59:59.999Z") == [])
        #expect(failing(at: "2027-11-22T10:00:00Z") == ["expired"])
        #expect(failing(at: "2027-11-22T10:59:00+01:00") == [])
        #expect(failing(at: "2027-11-22T11:30:00+01:30") == ["expired"])
        #expect(CredentialTime.milliseconds("2026-01-01T00:00:00Z") == 1_767_225_600_000)
        #expect(CredentialTime.milliseconds("2026-01-01T01:00:00+01:00") == 1_767_225_600_000)
        #expect(CredentialTime.milliseconds("2025-12-31T24:00:00Z") == 1_767_225_600_000)
        #expect(CredentialTime.milliseconds("2026-01-01T00:00:00") == nil)
    }

    @Test("a class without valid_days gives a credential without validUntil")
    func noExpiry() throws {
        guard case .object(var badge) = BadgeFixture.badge else { return }
        badge["valid_until"] = nil
        let issuance = try BadgeFixture.issuance(badge: .object(badge))
        let credential = try OpenBadgeCredentials.credential(
            issuance, signingKey: BadgeFixture.organisationKey, suite: .rdfc2022, contexts: try JSONLDTestFiles.contextStore())
        #expect(credential["validUntil"] == nil)
        let report = CredentialVerifier.verify(
            credential: credential, statusList: nil, at: "2099-01-01T00:00:00Z", contexts: try JSONLDTestFiles.contextStore())
        #expect(report.isValid(allowingUncheckedStatus: true))
    }

    @Test("ledger records of the wrong shape are refused with badge_source_invalid")
    func badSource() throws {
        guard case .object(var badge) = BadgeFixture.badge else { return }
        badge["activations"] = ["act-9"]
        #expect(throws: LedgerError.self) { try BadgeFixture.issuance(badge: .object(badge)) }
        badge["activations"] = []
        badge["credits"] = "five"
        do throws(LedgerError) {
            _ = try BadgeIssuance(
                badge: .object(badge), badgeClass: BadgeFixture.badgeClass, issuerName: "x", activations: [], opportunities: [:],
                origin: "o", statusListIndex: 0)
            Issue.record("a badge with text credits was accepted")
        } catch {
            #expect(error.code == .badgeSourceInvalid)
        }
    }

    @Test("issuedBadgeCredential: only an active key of the issuing organisation signs, never for a revoked badge")
    func issuerKeyChecks() throws {
        let store = try JSONLDTestFiles.contextStore()
        let key = BadgeFixture.organisationKey
        func organisation(_ keys: [String: ActorRecord.KeyStatus], suspended: Bool = false, role: Role = .organisation) -> ActorRecord {
            ActorRecord(id: "casa", role: role, name: "Casa del Quartiere", organisation: nil, keys: keys, suspended: suspended, registeredAt: 1)
        }
        func code(_ issuer: ActorRecord, badge: JSONValue = BadgeFixture.badge) -> LedgerError.Code? {
            do throws(LedgerError) {
                _ = try OpenBadgeCredentials.issuedBadgeCredential(
                    badge: badge, badgeClass: BadgeFixture.badgeClass, issuer: issuer, activations: BadgeFixture.activations,
                    opportunities: BadgeFixture.opportunities, origin: BadgeFixture.origin, statusListIndex: 3,
                    signingKey: key, suite: .jcs2022, contexts: store)
                return nil
            } catch {
                return error.code
            }
        }
        let active = [key.publicKey.multikey: ActorRecord.KeyStatus.active]
        #expect(code(organisation(active)) == nil)
        #expect(code(organisation([key.publicKey.multikey: .revoked])) == .keyNotActive)
        #expect(code(organisation([BadgeFixture.otherKey.publicKey.multikey: .active])) == .keyNotActive)
        #expect(code(organisation(active, suspended: true)) == .actorSuspended)
        #expect(code(organisation(active, role: .staff)) == .unknownOrganisation)
        guard case .object(var revoked) = BadgeFixture.badge else { return }
        revoked["status"] = "revoked"
        #expect(code(organisation(active), badge: .object(revoked)) == .invalidState)
        revoked["status"] = "issued"
        revoked["issuer"] = "another-organisation"
        #expect(code(organisation(active), badge: .object(revoked)) == .badgeSourceInvalid)
        // The same path gives exactly the credential of the lower-level builder.
        let direct = try BadgeFixture.credential(.jcs2022)
        let viaChecks = try OpenBadgeCredentials.issuedBadgeCredential(
            badge: BadgeFixture.badge, badgeClass: BadgeFixture.badgeClass, issuer: organisation(active),
            activations: BadgeFixture.activations, opportunities: BadgeFixture.opportunities, origin: BadgeFixture.origin,
            statusListIndex: 3, signingKey: key, suite: .jcs2022, contexts: store)
        #expect(viaChecks == direct)
        #expect(EdDSACryptosuite(name: "rdfc") == .rdfc2022 && EdDSACryptosuite(name: "eddsa-jcs-2022") == .jcs2022)
        #expect(EdDSACryptosuite(name: "ecdsa") == nil)

        // The status list: the same key checks, except that a suspended organisation still publishes its revocations.
        let listedCredential = try BadgeFixture.credential(.jcs2022, statusListIndex: 3)
        func statusListCode(_ issuer: ActorRecord) -> LedgerError.Code? {
            do throws(LedgerError) {
                let list = try OpenBadgeCredentials.issuerStatusListCredential(
                    issuer: issuer, issuedCount: 10, revokedIndices: [3], validFrom: "2026-12-01T00:00:00.000Z",
                    origin: BadgeFixture.origin, signingKey: key, suite: .jcs2022, contexts: store)
                let report = CredentialVerifier.verify(credential: listedCredential, statusList: list, at: BadgeFixture.during, contexts: store)
                #expect(report.failures.map(\.name) == ["status"], "the list answers for the credential: revoked")
                return nil
            } catch {
                return error.code
            }
        }
        #expect(statusListCode(organisation(active)) == nil)
        #expect(statusListCode(organisation(active, suspended: true)) == nil)
        #expect(statusListCode(organisation([key.publicKey.multikey: .revoked])) == .keyNotActive)
        #expect(statusListCode(organisation([BadgeFixture.otherKey.publicKey.multikey: .active])) == .keyNotActive)
        #expect(statusListCode(organisation(active, role: .staff)) == .unknownOrganisation)
    }

    @Test("URN components: the origin is percent-encoded so it stays one component")
    func urns() {
        #expect(OpenBadgeCredentials.credentialID(origin: "host:8080/ledger x", badgeID: "b:1") == "urn:circuito:badge:host%3A8080/ledger%20x:b:1")
    }
}

extension JSONValue {
    /// Element `index` of an array value.
    subscript(keyPath index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }
}
