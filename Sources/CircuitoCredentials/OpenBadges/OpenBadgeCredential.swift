import CircuitoCore
import CircuitoCrypto

/// What one `badge.issued` says, gathered from the ledger's projections: the input of an `OpenBadgeCredential`.
/// Build it with `init(badge:badgeClass:issuerName:activations:opportunities:origin:statusListIndex:)` from the
/// stored JSON of the `badges`, `badge_classes`, `activations` and `opportunities` tables.
public struct BadgeIssuance: Sendable, Hashable {
    /// One activation the badge rests on. Nothing here names the person: the opportunity, its hours and date.
    public struct Evidence: Sendable, Hashable {
        public let activationID: String
        public let opportunityTitle: String?
        public let category: String?
        public let hours: Int64
        /// YYYY-MM-DD.
        public let date: String
    }

    /// The ledger's origin (genesis), which scopes every id in the credential.
    public let origin: String
    public let badgeID: String
    public let badgeClassID: String
    /// The beneficiary's pseudonymous id. It never appears in the credential, only inside a salted hash.
    public let beneficiary: String
    /// The issuing organisation's actor id and display name.
    public let issuer: String
    public let issuerName: String
    public let className: String
    public let classDescription: String
    public let criteria: String
    /// The badge class's credit value (`creditsAvailable`) and the credits this badge carries (`creditsEarned`).
    public let creditsAvailable: Int64
    public let creditsEarned: Int64
    /// `recorded_at` of the `badge.issued` record; also the proof's `created`, so one badge gives one credential.
    public let validFrom: String
    public let validUntil: String?
    public let evidence: [Evidence]
    /// The badge's bit in its issuer's status list.
    public let statusListIndex: Int

    public init(
        badge: JSONValue, badgeClass: JSONValue, issuerName: String, activations: [JSONValue],
        opportunities: JSONObject, origin: String, statusListIndex: Int
    ) throws(LedgerError) {
        func text(_ record: JSONValue, _ field: String, _ what: String) throws(LedgerError) -> String {
            guard case .string(let value)? = record[field] else {
                throw LedgerError(.badgeSourceInvalid, "the \(what) record has no \(field)")
            }
            return value
        }
        func integer(_ record: JSONValue, _ field: String, _ what: String) throws(LedgerError) -> Int64 {
            guard case .integer(let value)? = record[field] else {
                throw LedgerError(.badgeSourceInvalid, "the \(what) record has no integer \(field)")
            }
            return value
        }
        self.origin = origin
        badgeID = try text(badge, "badge", "badge")
        badgeClassID = try text(badge, "badge_class", "badge")
        guard try text(badgeClass, "badge_class", "badge class") == badgeClassID else {
            throw LedgerError(.badgeSourceInvalid, "the badge class record is not the badge's class \(badgeClassID)")
        }
        beneficiary = try text(badge, "beneficiary", "badge")
        issuer = try text(badge, "issuer", "badge")
        self.issuerName = issuerName
        className = try text(badgeClass, "name", "badge class")
        classDescription = try text(badgeClass, "description", "badge class")
        criteria = try text(badgeClass, "criteria", "badge class")
        creditsAvailable = try integer(badgeClass, "credits", "badge class")
        creditsEarned = try integer(badge, "credits", "badge")
        validFrom = try text(badge, "valid_from", "badge")
        validUntil = badge["valid_until"]?.stringValue
        guard XSDDateTime.isValidTimestamp(validFrom), validUntil.map(XSDDateTime.isValidTimestamp) ?? true else {
            throw LedgerError(.badgeSourceInvalid, "the badge's validity dates are not timestamps with a time zone")
        }
        guard case .array(let activationIDs)? = badge["activations"] else {
            throw LedgerError(.badgeSourceInvalid, "the badge record has no activations list")
        }
        var evidence: [Evidence] = []
        for case .string(let activationID) in activationIDs {
            guard let activation = activations.first(where: { $0["activation"]?.stringValue == activationID }) else {
                throw LedgerError(.badgeSourceInvalid, "activation \(activationID) of badge \(badgeID) was not given")
            }
            let opportunity = activation["opportunity"]?.stringValue.flatMap { opportunities[$0] }
            evidence.append(
                Evidence(
                    activationID: activationID, opportunityTitle: opportunity?["title"]?.stringValue,
                    category: opportunity?["category"]?.stringValue,
                    hours: try integer(activation, "hours", "activation"), date: try text(activation, "date", "activation")))
        }
        self.evidence = evidence
        guard statusListIndex >= 0 else { throw LedgerError(.badgeSourceInvalid, "a status list index is never negative") }
        self.statusListIndex = statusListIndex
    }
}

/// What a status list is made from: which entries of an issuer's list are revoked, as of a point of the ledger.
public struct StatusListIssuance: Sendable, Hashable {
    public let origin: String
    public let issuer: String
    /// How many badges the issuer has issued: the list holds at least that many entries.
    public let issuedCount: Int
    public let revokedIndices: [Int]
    /// `recorded_at` of the last record the list reflects; its `validFrom` and proof `created`.
    public let validFrom: String

    public init(origin: String, issuer: String, issuedCount: Int, revokedIndices: [Int], validFrom: String) {
        self.origin = origin
        self.issuer = issuer
        self.issuedCount = issuedCount
        self.revokedIndices = revokedIndices
        self.validFrom = validFrom
    }
}

/// Open Badges 3.0 `OpenBadgeCredential`s (VC Data Model 2.0) for badges of the ledger, and the Bitstring Status
/// List credentials that revoke them. Everything here is a pure function of its input and the issuer's key.
public enum OpenBadgeCredentials {
    public static let credentialsContext = "https://www.w3.org/ns/credentials/v2"
    public static let openBadgesContext = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
    public static let statusPurpose = "revocation"
    static let saltDomain = "circuito.badge.salt.v1"

    // MARK: Identifiers

    /// `urn:circuito:badge:<origin>:<badge id>`; stable, so re-exporting a badge gives the same credential id.
    public static func credentialID(origin: String, badgeID: String) -> String {
        "urn:circuito:badge:\(urnComponent(origin)):\(badgeID)"
    }

    public static func achievementID(origin: String, badgeClassID: String) -> String {
        "urn:circuito:badge-class:\(urnComponent(origin)):\(badgeClassID)"
    }

    public static func evidenceID(origin: String, activationID: String) -> String {
        "urn:circuito:activation:\(urnComponent(origin)):\(activationID)"
    }

    /// `urn:circuito:status:<origin>:<issuer>`: the id of an issuer's status list credential. Verification is
    /// offline, so this names the list rather than locating it; the verifier is given the list as a file.
    public static func statusListID(origin: String, issuer: String) -> String {
        "urn:circuito:status:\(urnComponent(origin)):\(issuer)"
    }

    /// The origin percent-encoded so that it is one URN component: ':' and anything outside the URN characters is
    /// escaped. (Ledger identifiers are letters, digits and `. _ : -` already; as the last component they need no
    /// escaping.)
    static func urnComponent(_ text: String) -> String {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=@/".utf8)
        let digits = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        for byte in text.utf8 {
            if allowed.contains(byte) {
                output.append(byte)
            } else {
                output += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    // MARK: The subject's identifier

    /// The per-badge salt of the subject's identity hash: 16 bytes, hex, from the issuer's Ed25519 signature over
    /// "circuito.badge.salt.v1\n<origin>\n<badge id>". Ed25519 signatures are deterministic, so the same key always
    /// gives the same salt (and the same credential); nobody without the key can compute it before the credential
    /// exists, and two badges of one person get unrelated salts, hence unrelated hashes.
    public static func subjectSalt(origin: String, badgeID: String, signingKey: Ed25519PrivateKey) -> String {
        let message = Array("\(saltDomain)\n\(origin)\n\(badgeID)".utf8)
        return Array(SHA256.hash(signingKey.signature(for: message)).prefix(16)).hexString
    }

    /// Open Badges' IdentityHash: "sha256$" + hex(SHA-256(UTF-8(identity) ‖ UTF-8(salt))).
    public static func identityHash(identity: String, salt: String) -> String {
        "sha256$" + SHA256.hash(Array(identity.utf8) + Array(salt.utf8)).hexString
    }

    /// True when the credential's subject is `beneficiary`: one of its hashed `systemId` identifiers matches.
    public static func subject(of credential: JSONValue, is beneficiary: String) -> Bool {
        guard case .array(let identifiers)? = credential["credentialSubject"]?["identifier"] else { return false }
        return identifiers.contains { identifier in
            guard identifier["identityType"] == "systemId", case .string(let hash)? = identifier["identityHash"] else {
                return false
            }
            if identifier["hashed"] == .bool(true) {
                return hash.lowercased() == identityHash(identity: beneficiary, salt: identifier["salt"]?.stringValue ?? "")
            }
            return hash == beneficiary
        }
    }

    // MARK: Credentials

    /// The credential without its proof. `salt` is normally `subjectSalt(…)` of the signing key.
    public static func unsignedCredential(_ issuance: BadgeIssuance, issuerKey: Ed25519PublicKey, salt: String) -> JSONValue {
        let issuerProfile: JSONValue = [
            "id": .string(DIDKey.did(for: issuerKey)), "type": ["Profile"], "name": .string(issuance.issuerName),
        ]
        let achievement: JSONValue = [
            "id": .string(achievementID(origin: issuance.origin, badgeClassID: issuance.badgeClassID)),
            "type": ["Achievement"],
            "name": .string(issuance.className),
            "description": .string(issuance.classDescription),
            "criteria": ["narrative": .string(issuance.criteria)],
            "creditsAvailable": .integer(issuance.creditsAvailable),
            "creator": issuerProfile,
        ]
        var subject: JSONObject = [
            "type": ["AchievementSubject"],
            "identifier": [
                [
                    "type": "IdentityObject", "identityType": "systemId", "hashed": true,
                    "identityHash": .string(identityHash(identity: issuance.beneficiary, salt: salt)),
                    "salt": .string(salt),
                ]
            ],
            "achievement": achievement,
            "creditsEarned": .integer(issuance.creditsEarned),
        ]
        let dates = issuance.evidence.map(\.date).sorted()
        if let first = dates.first, let last = dates.last {
            subject["activityStartDate"] = .string(first)
            subject["activityEndDate"] = .string(last)
        }
        let listID = statusListID(origin: issuance.origin, issuer: issuance.issuer)
        var credential: JSONObject = [
            "@context": [.string(credentialsContext), .string(openBadgesContext)],
            "id": .string(credentialID(origin: issuance.origin, badgeID: issuance.badgeID)),
            "type": ["VerifiableCredential", "OpenBadgeCredential"],
            "name": .string(issuance.className),
            "issuer": issuerProfile,
            "validFrom": .string(issuance.validFrom),
            "awardedDate": .string(issuance.validFrom),
            "credentialSubject": .object(subject),
            "credentialStatus": [
                "id": .string("\(listID)#\(issuance.statusListIndex)"),
                "type": "BitstringStatusListEntry",
                "statusPurpose": .string(statusPurpose),
                "statusListIndex": .string(String(issuance.statusListIndex)),
                "statusListCredential": .string(listID),
            ],
        ]
        if let validUntil = issuance.validUntil { credential["validUntil"] = .string(validUntil) }
        if !issuance.evidence.isEmpty {
            credential["evidence"] = .array(
                issuance.evidence.map { item in
                    var evidence: JSONObject = [
                        "id": .string(evidenceID(origin: issuance.origin, activationID: item.activationID)),
                        "type": ["Evidence"],
                        "description": .string("\(item.hours) \(item.hours == 1 ? "hour" : "hours") on \(item.date)"),
                    ]
                    if let title = item.opportunityTitle { evidence["name"] = .string(title) }
                    if let category = item.category { evidence["genre"] = .string(category) }
                    return .object(evidence)
                })
        }
        return .object(credential)
    }

    /// The signed credential: issuer `did:key` of `signingKey`, proof `created` = `validFrom`.
    public static func credential(
        _ issuance: BadgeIssuance, signingKey: Ed25519PrivateKey, suite: EdDSACryptosuite, contexts: JSONLDContextStore
    ) throws(LedgerError) -> JSONValue {
        let salt = subjectSalt(origin: issuance.origin, badgeID: issuance.badgeID, signingKey: signingKey)
        let unsigned = unsignedCredential(issuance, issuerKey: signingKey.publicKey, salt: salt)
        return try EdDSACryptosuite.createProof(
            document: unsigned, suite: suite, privateKey: signingKey,
            verificationMethod: DIDKey.verificationMethod(for: signingKey.publicKey), created: issuance.validFrom,
            contexts: contexts)
    }

    // MARK: Status lists

    /// The issuer's `BitstringStatusListCredential` without its proof.
    public static func unsignedStatusListCredential(
        _ issuance: StatusListIssuance, issuerKey: Ed25519PublicKey
    ) throws(LedgerError) -> JSONValue {
        var list = BitstringStatusList(holding: issuance.issuedCount)
        for index in issuance.revokedIndices { try list.set(index) }
        let listID = statusListID(origin: issuance.origin, issuer: issuance.issuer)
        return [
            "@context": [.string(credentialsContext)],
            "id": .string(listID),
            "type": ["VerifiableCredential", "BitstringStatusListCredential"],
            "issuer": .string(DIDKey.did(for: issuerKey)),
            "validFrom": .string(issuance.validFrom),
            "credentialSubject": [
                "id": .string(listID + "#list"),
                "type": "BitstringStatusList",
                "statusPurpose": .string(statusPurpose),
                "encodedList": .string(list.encodedList),
            ],
        ]
    }

    public static func statusListCredential(
        _ issuance: StatusListIssuance, signingKey: Ed25519PrivateKey, suite: EdDSACryptosuite,
        contexts: JSONLDContextStore
    ) throws(LedgerError) -> JSONValue {
        guard XSDDateTime.isValidTimestamp(issuance.validFrom) else {
            throw LedgerError(.badgeSourceInvalid, "status list validFrom \(issuance.validFrom) is not a timestamp")
        }
        return try EdDSACryptosuite.createProof(
            document: try unsignedStatusListCredential(issuance, issuerKey: signingKey.publicKey), suite: suite,
            privateKey: signingKey, verificationMethod: DIDKey.verificationMethod(for: signingKey.publicKey),
            created: issuance.validFrom, contexts: contexts)
    }
}

// MARK: - From the ledger's records, with the issuer's checks

extension OpenBadgeCredentials {
    /// The one path from ledger records to a signed credential, shared by the CLI and the socket API: the signing
    /// key must be an active key of the issuing organisation (which must not be suspended), and the badge must not
    /// be revoked (its credential would fail verification at once).
    /// A revoked badge has no credential to give, whoever would sign it: checked before any key is looked for.
    public static func requireNotRevoked(_ badge: JSONValue) throws(LedgerError) {
        guard badge["status"] != "revoked" else {
            throw LedgerError(.invalidState, "badge \(badge["badge"]?.stringValue ?? "?") is revoked; its credential would not verify")
        }
    }

    public static func issuedBadgeCredential(
        badge: JSONValue, badgeClass: JSONValue, issuer: ActorRecord, activations: [JSONValue],
        opportunities: JSONObject, origin: String, statusListIndex: Int, signingKey: Ed25519PrivateKey,
        suite: EdDSACryptosuite, contexts: JSONLDContextStore
    ) throws(LedgerError) -> JSONValue {
        let badgeID = badge["badge"]?.stringValue ?? "?"
        guard badge["issuer"]?.stringValue == issuer.id else {
            throw LedgerError(.badgeSourceInvalid, "badge \(badgeID) was not issued by \(issuer.id)")
        }
        try requireNotRevoked(badge)
        try requireSigningKey(signingKey.publicKey, of: issuer)
        let issuance = try BadgeIssuance(
            badge: badge, badgeClass: badgeClass, issuerName: issuer.name, activations: activations,
            opportunities: opportunities, origin: origin, statusListIndex: statusListIndex)
        return try credential(issuance, signingKey: signingKey, suite: suite, contexts: contexts)
    }

    /// The organisation's signed status list, with the same key checks except one: a suspended organisation may
    /// still sign it. A list only tells verifiers what was revoked, and a suspension is when revocations of its
    /// badges matter most; refused, every credential it issued could never be checked again.
    public static func issuerStatusListCredential(
        issuer: ActorRecord, issuedCount: Int, revokedIndices: [Int], validFrom: String, origin: String,
        signingKey: Ed25519PrivateKey, suite: EdDSACryptosuite, contexts: JSONLDContextStore
    ) throws(LedgerError) -> JSONValue {
        try requireSigningKey(signingKey.publicKey, of: issuer, allowingSuspended: true)
        let issuance = StatusListIssuance(
            origin: origin, issuer: issuer.id, issuedCount: issuedCount, revokedIndices: revokedIndices,
            validFrom: validFrom)
        return try statusListCredential(issuance, signingKey: signingKey, suite: suite, contexts: contexts)
    }

    /// A credential names its issuer by key (did:key), so only an active key of the organisation that issued the
    /// badge may sign it: any other key would name an issuer the ledger does not know.
    public static func requireSigningKey(_ key: Ed25519PublicKey, of issuer: ActorRecord, allowingSuspended: Bool = false) throws(LedgerError) {
        guard issuer.role == .organisation else {
            throw LedgerError(.unknownOrganisation, "\(issuer.id) is not an organisation")
        }
        let multikey = key.multikey
        guard issuer.keys[multikey] == .active else {
            let state = issuer.keys[multikey].map { "a \($0.rawValue) key" } ?? "not a key"
            throw LedgerError(
                .keyNotActive,
                "the key \(multikey) is \(state) of organisation \(issuer.id); its active keys are \(issuer.activeKeys.joined(separator: ", "))")
        }
        guard !issuer.suspended || allowingSuspended else {
            throw LedgerError(.actorSuspended, "organisation \(issuer.id) is suspended and may not sign credentials")
        }
    }
}

extension EdDSACryptosuite {
    /// A suite by its full name ("eddsa-rdfc-2022") or short name ("rdfc", "jcs").
    public init?(name: String) {
        switch name {
        case "rdfc": self = .rdfc2022
        case "jcs": self = .jcs2022
        default: self.init(rawValue: name)
        }
    }
}
