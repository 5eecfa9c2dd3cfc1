import CircuitoCore
import CircuitoCrypto

/// The result of checking a credential: every check in order, each passed, failed or not made.
public struct CredentialVerificationReport: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case passed(String)
        /// `code` is stable (see Specs/credentials.md); `message` explains it.
        case failed(code: String, message: String)
        case notChecked(String)
    }

    public struct Check: Sendable, Equatable {
        /// "format", "proof", "issuer", "dates", "status" or "subject".
        public let name: String
        public let outcome: Outcome
    }

    public internal(set) var checks: [Check] = []

    public init() {}

    public var failures: [Check] {
        checks.filter { if case .failed = $0.outcome { return true } else { return false } }
    }

    /// True when no check failed and every check was made; with `allowingUncheckedStatus`, a status that was not
    /// checked (no status list given) does not count against the credential.
    public func isValid(allowingUncheckedStatus: Bool = false) -> Bool {
        checks.allSatisfy { check in
            switch check.outcome {
            case .passed: return true
            case .failed: return false
            case .notChecked: return allowingUncheckedStatus && check.name == "status"
            }
        }
    }

    mutating func record(_ name: String, _ outcome: Outcome) { checks.append(Check(name: name, outcome: outcome)) }
}

/// Offline verification of Open Badges 3.0 credentials (and of any VC with a did:key Data Integrity proof):
/// the proof, that the issuer is the key that signed, the validity dates, and the Bitstring Status List entry
/// against a status list credential the caller supplies (verified the same way).
public enum CredentialVerifier {
    /// Checks `credential` as of `at` (an RFC 3339 / xsd:dateTimeStamp text). `statusList` is the issuer's status
    /// list credential; without it the status is reported as not checked. `beneficiary`, when given, must match the
    /// subject's hashed identifier.
    public static func verify(
        credential: JSONValue, statusList: JSONValue?, at: String, contexts: JSONLDContextStore,
        beneficiary: String? = nil
    ) -> CredentialVerificationReport {
        var report = CredentialVerificationReport()
        guard let now = CredentialTime.milliseconds(at) else {
            report.record("dates", .failed(code: "invalid_time", message: "the time \(at) is not a date-time with a time zone"))
            return report
        }
        var format = checkFormat(credential)
        if case .passed = format, let hidden = checkStatedUnderUsualNames(credential, contexts: contexts, what: "the credential") {
            format = hidden
        }
        report.record("format", format)
        let proof = checkProof(credential, contexts: contexts)
        report.record("proof", proof)
        report.record("issuer", checkIssuer(credential))
        report.record("dates", checkDates(credential, at: now, what: "the credential"))
        report.record("status", checkStatus(credential, statusList: statusList, at: now, contexts: contexts))
        if let beneficiary {
            report.record(
                "subject",
                OpenBadgeCredentials.subject(of: credential, is: beneficiary)
                    ? .passed("the subject's hashed identifier matches \(beneficiary)")
                    : .failed(code: "subject_mismatch", message: "the subject's hashed identifier does not match \(beneficiary)"))
        }
        return report
    }

    static func types(_ value: JSONValue?) -> [String] {
        switch value {
        case .string(let type)?: return [type]
        case .array(let types)?: return types.compactMap(\.stringValue)
        default: return []
        }
    }

    static func checkFormat(_ credential: JSONValue) -> CredentialVerificationReport.Outcome {
        guard case .object = credential else {
            return .failed(code: "format_invalid", message: "a credential is a JSON object")
        }
        let contexts = credential["@context"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard contexts.first == OpenBadgeCredentials.credentialsContext else {
            return .failed(code: "format_invalid", message: "@context does not start with \(OpenBadgeCredentials.credentialsContext)")
        }
        let credentialTypes = types(credential["type"])
        guard credentialTypes.contains("VerifiableCredential") else {
            return .failed(code: "format_invalid", message: "type does not include VerifiableCredential")
        }
        if credentialTypes.contains("OpenBadgeCredential") || credentialTypes.contains("AchievementCredential") {
            guard contexts.contains(where: { $0.hasPrefix("https://purl.imsglobal.org/spec/ob/v3p0/context") }) else {
                return .failed(code: "format_invalid", message: "an OpenBadgeCredential needs the Open Badges 3.0 context")
            }
            guard credential["credentialSubject"]?["achievement"] != nil else {
                return .failed(code: "format_invalid", message: "the credential subject has no achievement")
            }
            return .passed("Open Badges 3.0 OpenBadgeCredential")
        }
        return .passed("verifiable credential of type \(credentialTypes.joined(separator: ", "))")
    }

    /// The members whose absence the checks read as "none": no start, no expiry, no status entry.
    static let membersReadWhenPresent = ["validFrom", "validUntil", "credentialStatus"]
    static let credentialsVocabulary = "https://www.w3.org/2018/credentials#"

    /// Under eddsa-rdfc-2022 the proof signs RDF statements, not JSON members, and the same statements can be written
    /// under other names (a full IRI as the key, an alias from another context) without touching the proof. The
    /// date and status checks read the usual names, so a statement moved to another name would pass as absent: an
    /// expired or revoked credential would verify. So each of `membersReadWhenPresent` that the document states in
    /// RDF must be there under its usual name, as many times; nil when so (a document that is not JSON-LD is left
    /// to the proof's check).
    static func checkStatedUnderUsualNames(
        _ document: JSONValue, contexts: JSONLDContextStore, what: String
    ) -> CredentialVerificationReport.Outcome? {
        guard case .object(var members) = document else { return nil }
        members["proof"] = nil
        guard let quads = try? JSONLD.toRDF(.object(members), contexts: contexts) else { return nil }
        let typePredicate = RDFTerm.iri("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
        let credentialType = RDFTerm.iri(credentialsVocabulary + "VerifiableCredential")
        let credentialNodes = Set(quads.filter { $0.graph == nil && $0.predicate == typePredicate && $0.object == credentialType }.map(\.subject))
        let node: RDFTerm
        if case .string(let id)? = document["id"], credentialNodes.contains(.iri(id)) {
            node = .iri(id)
        } else if credentialNodes.count == 1, let only = credentialNodes.first {
            node = only
        } else {
            return .failed(code: "format_invalid", message: "\(what) does not state, as one VerifiableCredential node, which node it is")
        }
        for name in membersReadWhenPresent {
            let predicate = RDFTerm.iri(credentialsVocabulary + name)
            let stated = quads.filter { $0.graph == nil && $0.subject == node && $0.predicate == predicate }.count
            let named: Int
            switch document[name] {
            case nil: named = 0
            case .array(let values)?: named = values.count
            case _?: named = 1
            }
            guard stated == named else {
                return .failed(
                    code: "format_invalid",
                    message: "\(what) states \(name) \(stated) times but names it \(named) times: it is written under another name (a full IRI or an alias), which the checks do not read")
            }
        }
        return nil
    }

    static func checkProof(_ document: JSONValue, contexts: JSONLDContextStore) -> CredentialVerificationReport.Outcome {
        let result = EdDSACryptosuite.verifyProof(
            document: document, contexts: contexts, resolveKey: DIDKey.publicKey(fromVerificationMethod:))
        switch result {
        case .verified:
            let suite = document["proof"]?["cryptosuite"]?.stringValue ?? "?"
            let method = document["proof"]?["verificationMethod"]?.stringValue ?? "?"
            return .passed("\(suite) signature by \(method)")
        case .failed(let failure):
            if case .unknownVerificationMethod(let method) = failure {
                return .failed(
                    code: "proof_invalid",
                    message: "verification method \(method) is not a did:key Ed25519 key (did:key:z6Mk…#z6Mk…)")
            }
            return .failed(code: "proof_invalid", message: failure.description)
        }
    }

    /// The issuer's id: `issuer` itself or `issuer.id`.
    static func issuerID(_ document: JSONValue) -> String? {
        if case .string(let id)? = document["issuer"] { return id }
        return document["issuer"]?["id"]?.stringValue
    }

    /// The issuer must be the did:key whose key made the proof: a did:key names its key, so this is what binds
    /// the credential to its issuer without asking anyone.
    static func checkIssuer(_ document: JSONValue) -> CredentialVerificationReport.Outcome {
        guard let issuer = issuerID(document) else {
            return .failed(code: "issuer_invalid", message: "the credential names no issuer")
        }
        guard issuer.hasPrefix("did:key:"), !issuer.contains("#"), let issuerKey = DIDKey.publicKey(fromVerificationMethod: issuer) else {
            return .failed(code: "issuer_invalid", message: "issuer \(issuer) is not a did:key Ed25519 identifier")
        }
        guard case .string(let method)? = document["proof"]?["verificationMethod"],
            let proofKey = DIDKey.publicKey(fromVerificationMethod: method)
        else {
            return .failed(code: "issuer_invalid", message: "the proof's verification method is not a did:key key")
        }
        guard proofKey == issuerKey, method.hasPrefix(issuer + "#") else {
            return .failed(
                code: "issuer_mismatch", message: "the proof was made by \(method), which is not the issuer \(issuer)")
        }
        return .passed(issuer)
    }

    static func checkDates(_ document: JSONValue, at now: Int64, what: String) -> CredentialVerificationReport.Outcome {
        var detail: [String] = []
        if let validFrom = document["validFrom"] {
            guard case .string(let text) = validFrom, let from = CredentialTime.milliseconds(text) else {
                return .failed(code: "format_invalid", message: "validFrom of \(what) is not a date-time with a time zone")
            }
            guard from <= now else { return .failed(code: "not_yet_valid", message: "\(what) is valid only from \(text)") }
            detail.append("valid from \(text)")
        }
        if let validUntil = document["validUntil"] {
            guard case .string(let text) = validUntil, let until = CredentialTime.milliseconds(text) else {
                return .failed(code: "format_invalid", message: "validUntil of \(what) is not a date-time with a time zone")
            }
            guard now < until else { return .failed(code: "expired", message: "\(what) expired at \(text)") }
            detail.append("until \(text)")
        } else {
            detail.append("no expiry")
        }
        return .passed(detail.joined(separator: " "))
    }

    static func checkStatus(
        _ credential: JSONValue, statusList: JSONValue?, at now: Int64, contexts: JSONLDContextStore
    ) -> CredentialVerificationReport.Outcome {
        guard let status = credential["credentialStatus"] else { return .passed("the credential has no status entry") }
        let entries = status.arrayValue ?? [status]
        guard entries.count == 1, let entry = entries.first else {
            return .failed(code: "status_unsupported", message: "only one credentialStatus entry is supported")
        }
        guard types(entry["type"]) == ["BitstringStatusListEntry"] else {
            return .failed(code: "status_unsupported", message: "credentialStatus type is not BitstringStatusListEntry")
        }
        guard case .string(let purpose)? = entry["statusPurpose"], case .string(let listURL)? = entry["statusListCredential"],
            case .string(let indexText)? = entry["statusListIndex"], let index = Int(indexText), index >= 0,
            String(index) == indexText
        else {
            return .failed(
                code: "status_invalid",
                message: "credentialStatus needs statusPurpose, statusListCredential and a decimal statusListIndex")
        }
        guard let statusList else {
            return .notChecked("no status list given for \(listURL) (index \(index), purpose \(purpose))")
        }
        func invalidList(_ message: String) -> CredentialVerificationReport.Outcome {
            .failed(code: "status_list_invalid", message: "status list: \(message)")
        }
        guard statusList["id"]?.stringValue == listURL else {
            return invalidList("its id is \(statusList["id"]?.stringValue ?? "missing"), the credential refers to \(listURL)")
        }
        guard types(statusList["type"]).contains("BitstringStatusListCredential") else {
            return invalidList("it is not a BitstringStatusListCredential")
        }
        if case .failed(_, let message) = checkProof(statusList, contexts: contexts) { return invalidList(message) }
        if case .failed(_, let message)? = checkStatedUnderUsualNames(statusList, contexts: contexts, what: "the status list") {
            return invalidList(message)
        }
        if case .failed(_, let message) = checkIssuer(statusList) { return invalidList(message) }
        guard issuerID(statusList) == issuerID(credential) else {
            return invalidList("it was issued by \(issuerID(statusList) ?? "nobody"), not by the credential's issuer")
        }
        // Only expiry counts: a list newer than the time checked (its validFrom later than `at`) reflects more of
        // the issuer's decisions, not fewer, so it is still the right list to consult.
        if let validUntil = statusList["validUntil"] {
            guard case .string(let text) = validUntil, let until = CredentialTime.milliseconds(text) else {
                return invalidList("validUntil is not a date-time with a time zone")
            }
            guard now < until else { return invalidList("it expired at \(text); get the issuer's current list") }
        }
        let subject = statusList["credentialSubject"]
        guard types(subject?["type"]) == ["BitstringStatusList"], case .string(let encoded)? = subject?["encodedList"]
        else { return invalidList("its subject is not a BitstringStatusList with an encodedList") }
        guard subject?["statusPurpose"]?.stringValue == purpose else {
            return invalidList("its purpose is \(subject?["statusPurpose"]?.stringValue ?? "missing"), not \(purpose)")
        }
        let list: BitstringStatusList
        do { list = try BitstringStatusList(encodedList: encoded) } catch { return invalidList(error.message) }
        guard let isSet = list.isSet(index) else {
            return invalidList("index \(index) is outside the list (\(list.entryCount) entries)")
        }
        let asOf = statusList["validFrom"]?.stringValue ?? "an unknown time"
        if isSet {
            return .failed(code: purpose == "revocation" ? "revoked" : "status_\(purpose)", message: "the credential's \(purpose) bit is set (index \(index) of \(listURL), list as of \(asOf))")
        }
        return .passed("\(purpose) bit clear (index \(index) of \(list.entryCount), list as of \(asOf))")
    }
}

/// xsd:dateTimeStamp texts (RFC 3339 with "Z" or an offset) as milliseconds since 1970, for validity checks.
public enum CredentialTime {
    public static func milliseconds(_ text: String) -> Int64? {
        guard XSDDateTime.isValidTimestamp(text) else { return nil }
        let bytes = Array(text.utf8)
        // The XSD check allows a sign and years beyond 9999; credentials use plain four-digit years.
        guard bytes.count >= 20, bytes[4] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int64 { range.reduce(0) { $0 * 10 + Int64(bytes[$1] - 0x30) } }
        var end = bytes.count
        var offsetMinutes: Int64 = 0
        if bytes.last == UInt8(ascii: "Z") {
            end -= 1
        } else {
            let sign: Int64 = bytes[end - 6] == UInt8(ascii: "-") ? -1 : 1
            offsetMinutes = sign * (number((end - 5)..<(end - 3)) * 60 + number((end - 2)..<end))
            end -= 6
        }
        // Reuse the ledger's UTC parser on the normalised "YYYY-MM-DDTHH:MM:SS[.fff]Z" form.
        var utc = String(decoding: bytes[0..<min(end, 19)], as: UTF8.self)
        if end > 19 { utc += String(decoding: bytes[19..<min(end, 29)], as: UTF8.self) }
        let hour = number(11..<13)
        if hour == 24 { utc = String(utc.prefix(11)) + "23:59:59" + String(utc.dropFirst(19)) }
        guard let base = Timestamp.millisecondsSince1970(utc + "Z") else { return nil }
        return base + (hour == 24 ? 1000 : 0) - offsetMinutes * 60_000
    }
}
