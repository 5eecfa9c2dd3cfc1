import CircuitoCore
import CircuitoCrypto

/// The W3C Data Integrity EdDSA cryptosuites (Data Integrity EdDSA Cryptosuites v1.0, sections 3.2 and 3.3).
///
/// - `eddsa-rdfc-2022`: the document and the proof configuration (the proof options with the document's
///   `@context`) are converted to RDF, canonicalized with RDFC-1.0 and serialized as canonical N-Quads.
/// - `eddsa-jcs-2022`: both are canonicalized with JCS (RFC 8785); the proof carries the document's `@context`.
///
/// Either way the signed bytes are SHA-256(canonical proof configuration) ‖ SHA-256(canonical document), signed
/// with Ed25519; `proofValue` is "z" + base58btc(signature).
///
/// JSON-LD processing is strict and offline (see `JSONLD`): documents with unknown contexts or undefined terms
/// are refused. For `eddsa-jcs-2022` the signature covers the JSON bytes, but a document with an `@context` is
/// still checked the same way, so that what a verifier reads as linked data is defined.
public enum EdDSACryptosuite: String, Sendable, CaseIterable {
    case rdfc2022 = "eddsa-rdfc-2022"
    case jcs2022 = "eddsa-jcs-2022"

    public typealias VerificationResult = DataIntegrityVerificationResult

    /// Every value computed on the way to a signature, for tests and for explaining a failed verification.
    public struct Intermediates: Sendable, Equatable {
        public let suite: EdDSACryptosuite
        /// The transformed document: canonical N-Quads (rdfc) or JCS text (jcs).
        public let canonicalDocument: String
        /// The canonical proof configuration: canonical N-Quads (rdfc) or JCS text (jcs).
        public let canonicalProofConfiguration: String
        /// SHA-256 of `canonicalProofConfiguration`.
        public let proofConfigurationHash: [UInt8]
        /// SHA-256 of `canonicalDocument`.
        public let documentHash: [UInt8]
        /// `proofConfigurationHash` ‖ `documentHash`: the message Ed25519 signs.
        public let hashData: [UInt8]
    }

    /// A document secured by `createProofWithIntermediates`.
    public struct SignedDocument: Sendable {
        /// The input document with `proof` added.
        public let document: JSONValue
        public let proof: JSONValue
        public let intermediates: Intermediates
        /// The 64-byte Ed25519 signature over `intermediates.hashData`.
        public let signature: [UInt8]
    }

    // MARK: Creating proofs

    /// Returns `document` with a `proof` made with `privateKey`. `created` must be an XML Schema dateTimeStamp
    /// (for example "2024-05-01T10:00:00Z"); `verificationMethod` is what verifiers resolve to the public key
    /// (for a did:key issuer, `DIDKey.verificationMethod(for:)`).
    public static func createProof(
        document: JSONValue, suite: EdDSACryptosuite, privateKey: Ed25519PrivateKey, verificationMethod: String,
        proofPurpose: String = "assertionMethod", created: String, contexts: JSONLDContextStore
    ) throws(LedgerError) -> JSONValue {
        try createProofWithIntermediates(
            document: document, suite: suite, privateKey: privateKey, verificationMethod: verificationMethod,
            proofPurpose: proofPurpose, created: created, contexts: contexts
        ).document
    }

    /// `createProof`, also returning the intermediate values and the signature.
    public static func createProofWithIntermediates(
        document: JSONValue, suite: EdDSACryptosuite, privateKey: Ed25519PrivateKey, verificationMethod: String,
        proofPurpose: String = "assertionMethod", created: String, contexts: JSONLDContextStore
    ) throws(LedgerError) -> SignedDocument {
        guard case .object(var members) = document else {
            throw LedgerError(.invalidBody, "only a JSON object can be secured with a Data Integrity proof")
        }
        guard members["proof"] == nil else {
            throw LedgerError(.invalidBody, "the document already has a proof; proof sets and chains are not supported")
        }
        guard XSDDateTime.isValidTimestamp(created) else {
            throw LedgerError(
                .invalidTimestamp,
                "proof created \"\(created)\" is not an XML Schema dateTimeStamp (a dateTime with a time zone)")
        }
        guard !verificationMethod.isEmpty, !proofPurpose.isEmpty else {
            throw LedgerError(.invalidBody, "a proof needs a verification method and a proof purpose")
        }
        var proof: JSONObject = [
            "type": "DataIntegrityProof",
            "cryptosuite": .string(suite.rawValue),
            "created": .string(created),
            "verificationMethod": .string(verificationMethod),
            "proofPurpose": .string(proofPurpose),
        ]
        // eddsa-jcs-2022 step 2: the proof carries the document's context, so that it survives in proof sets.
        if suite == .jcs2022, let context = members["@context"] {
            proof["@context"] = context
        }
        let intermediates = try computeIntermediates(
            unsecuredDocument: document, proofOptions: .object(proof), suite: suite, contexts: contexts)
        let signature = privateKey.signature(for: intermediates.hashData)
        proof["proofValue"] = .string(proofValue(for: signature))
        members["proof"] = .object(proof)
        return SignedDocument(
            document: .object(members), proof: .object(proof), intermediates: intermediates, signature: signature)
    }

    /// The multibase base58btc form of a signature: "z" + base58btc.
    public static func proofValue(for signature: [UInt8]) -> String { "z" + Base58.encode(signature) }

    // MARK: The suite algorithms

    /// Transformation, proof configuration and hashing for `suite`.
    ///
    /// `proofOptions` is the proof without `proofValue`. For eddsa-rdfc-2022 its `@context` is replaced by the
    /// document's (Proof Configuration, section 3.2.5); for eddsa-jcs-2022 it is canonicalized as given.
    public static func computeIntermediates(
        unsecuredDocument: JSONValue, proofOptions: JSONValue, suite: EdDSACryptosuite, contexts: JSONLDContextStore
    ) throws(LedgerError) -> Intermediates {
        guard case .object(var proofConfiguration) = proofOptions, case .object(let documentMembers) = unsecuredDocument
        else {
            throw LedgerError(.invalidBody, "the document and the proof options must be JSON objects")
        }
        guard proofConfiguration["type"] == "DataIntegrityProof",
            proofConfiguration["cryptosuite"] == .string(suite.rawValue)
        else {
            throw LedgerError(
                .invalidBody, "proof options must have type DataIntegrityProof and cryptosuite \(suite.rawValue)")
        }
        if let created = proofConfiguration["created"] {
            guard case .string(let text) = created, XSDDateTime.isValidTimestamp(text) else {
                throw LedgerError(
                    .invalidTimestamp, "proof created is not an XML Schema dateTimeStamp (a dateTime with a time zone)")
            }
        }
        let canonicalDocument: String
        let canonicalProofConfiguration: String
        switch suite {
        case .rdfc2022:
            proofConfiguration["@context"] = documentMembers["@context"]
            canonicalProofConfiguration = try canonicalNQuads(.object(proofConfiguration), contexts: contexts)
            canonicalDocument = try canonicalNQuads(unsecuredDocument, contexts: contexts)
        case .jcs2022:
            // Not part of the signed bytes, but a JSON-LD document must still be well defined (see above).
            if documentMembers["@context"] != nil { _ = try JSONLD.toRDF(unsecuredDocument, contexts: contexts) }
            if proofConfiguration["@context"] != nil {
                _ = try JSONLD.toRDF(.object(proofConfiguration), contexts: contexts)
            }
            canonicalProofConfiguration = CanonicalJSON.encodeString(.object(proofConfiguration))
            canonicalDocument = CanonicalJSON.encodeString(unsecuredDocument)
        }
        let proofConfigurationHash = SHA256.hash(Array(canonicalProofConfiguration.utf8))
        let documentHash = SHA256.hash(Array(canonicalDocument.utf8))
        return Intermediates(
            suite: suite, canonicalDocument: canonicalDocument,
            canonicalProofConfiguration: canonicalProofConfiguration,
            proofConfigurationHash: proofConfigurationHash, documentHash: documentHash,
            hashData: proofConfigurationHash + documentHash)
    }

    /// Work bound of RDFC-1.0 for credentials, which may come from anyone: the W3C test suite's heaviest graph needs
    /// under 10,000 units; a hostile graph is refused after this many instead of running for seconds.
    public static let maximumCanonicalizationWork = 100_000

    /// JSON-LD to RDF, then RDFC-1.0 with SHA-256, serialized as canonical N-Quads.
    static func canonicalNQuads(_ document: JSONValue, contexts: JSONLDContextStore) throws(LedgerError) -> String {
        let quads = try JSONLD.toRDF(document, contexts: contexts)
        return try RDFCanonicalizer.canonicalize(quads, maximumWork: maximumCanonicalizationWork).canonicalNQuads
    }

    // MARK: Verifying proofs

    /// The longest `proofValue` (after its "z") that is decoded: 64 bytes take at most 88 base58 characters, and a
    /// few more are decoded to say how many bytes they hold; a longer one is refused unread.
    static let maximumProofValueCharacters = 128

    /// Verifies the single Data Integrity proof of `document`.
    ///
    /// `resolveKey` maps `proof.verificationMethod` to a public key (for did:key issuers,
    /// `DIDKey.publicKey(fromVerificationMethod:)`); returning nil rejects the method. `expectedProofPurpose`
    /// must equal `proof.proofPurpose` (nil accepts any purpose). Proof sets and chains are refused.
    public static func verifyProof(
        document: JSONValue, contexts: JSONLDContextStore, expectedProofPurpose: String? = "assertionMethod",
        resolveKey: (String) -> Ed25519PublicKey?
    ) -> VerificationResult {
        guard case .object(var unsecuredMembers) = document,
            let proofEntry = unsecuredMembers.removeValue(forKey: "proof")
        else { return .failed(.missingProof) }
        guard case .object(var proofOptions) = proofEntry else {
            if case .array = proofEntry {
                return .failed(.malformedProof("proof sets (several proofs) are not supported"))
            }
            return .failed(.malformedProof("proof must be a JSON object"))
        }
        guard case .string(let type)? = proofOptions["type"] else { return .failed(.malformedProof("type is missing")) }
        guard type == "DataIntegrityProof" else { return .failed(.unsupportedProofType(type)) }
        guard case .string(let suiteName)? = proofOptions["cryptosuite"] else {
            return .failed(.malformedProof("cryptosuite is missing"))
        }
        guard let suite = EdDSACryptosuite(rawValue: suiteName) else {
            return .failed(.unsupportedCryptosuite(suiteName))
        }
        guard case .string(let proofPurpose)? = proofOptions["proofPurpose"] else {
            return .failed(.malformedProof("proofPurpose is missing"))
        }
        if let expectedProofPurpose, proofPurpose != expectedProofPurpose {
            return .failed(.proofPurposeMismatch(expected: expectedProofPurpose, actual: proofPurpose))
        }
        guard case .string(let verificationMethod)? = proofOptions["verificationMethod"] else {
            return .failed(.malformedProof("verificationMethod is missing"))
        }
        if let created = proofOptions["created"] {
            guard case .string(let text) = created, XSDDateTime.isValidTimestamp(text) else {
                return .failed(
                    .malformedProof("created is not an XML Schema dateTimeStamp (a dateTime with a time zone)"))
            }
        }
        if proofOptions["previousProof"] != nil {
            return .failed(.malformedProof("proof chains (previousProof) are not supported"))
        }
        guard case .string(let encodedProofValue)? = proofOptions.removeValue(forKey: "proofValue") else {
            return .failed(.malformedProof("proofValue is missing"))
        }
        guard encodedProofValue.hasPrefix("z") else { return .failed(.proofValueNotMultibaseBase58) }
        // Base58 decoding takes time quadratic in the length (a proofValue of 200,000 characters took 15 s, one of
        // megabytes would take hours), and no text longer than 88 characters decodes to 64 bytes.
        let characterCount = encodedProofValue.utf8.count - 1
        guard characterCount <= Self.maximumProofValueCharacters else {
            return .failed(.malformedProof(
                "proofValue has \(characterCount) base58 characters; a 64-byte Ed25519 signature has at most 88"))
        }
        guard let signature = Base58.decode(String(encodedProofValue.dropFirst())) else {
            return .failed(.proofValueNotMultibaseBase58)
        }
        guard signature.count == Ed25519.signatureByteCount else {
            return .failed(.invalidSignatureLength(signature.count))
        }
        guard let publicKey = resolveKey(verificationMethod) else {
            return .failed(.unknownVerificationMethod(verificationMethod))
        }
        if suite == .jcs2022, let proofContext = proofOptions["@context"] {
            // eddsa-jcs-2022 verification step 4: the proof's context must begin the document's, and is the one
            // the signature covers.
            let documentContexts = unsecuredMembers["@context"].map(JSONLDExpander.arrayOf) ?? []
            guard documentContexts.starts(with: JSONLDExpander.arrayOf(proofContext)) else {
                return .failed(.contextMismatch)
            }
            unsecuredMembers["@context"] = proofContext
        }
        let unsecuredDocument = JSONValue.object(unsecuredMembers)
        let intermediates: Intermediates
        do {
            intermediates = try computeIntermediates(
                unsecuredDocument: unsecuredDocument, proofOptions: .object(proofOptions), suite: suite,
                contexts: contexts)
        } catch {
            return .failed(.documentNotProcessable(error.message))
        }
        guard publicKey.isValidSignature(signature, for: intermediates.hashData) else {
            return .failed(.signatureMismatch)
        }
        return .verified(unsecuredDocument: unsecuredDocument)
    }
}
