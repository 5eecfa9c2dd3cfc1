import CircuitoCore
import CircuitoCrypto
import Foundation
import Testing

@testable import CircuitoCredentials

/// The W3C vectors of Data Integrity EdDSA Cryptosuites v1.0 (shared/vectors/vc-di-eddsa).
private enum EdDSAVectors {
    static let directory = "vectors/vc-di-eddsa/"
    static let verificationMethod =
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    static let created = "2023-02-24T23:36:38Z"

    static func privateKey() throws -> Ed25519PrivateKey {
        let keyPair = try JSONLDTestFiles.json(directory + "keyPair.json")
        let secret = try #require(keyPair["privateKeyMultibase"]?.stringValue)
        let key = try #require(Multikey.decodeSecretKey(secret))
        #expect(Multikey.encode(key.publicKey) == keyPair["publicKeyMultibase"]?.stringValue)
        return key
    }

    static func text(_ path: String) throws -> String { try JSONLDTestFiles.text(directory + path) }
    static func json(_ path: String) throws -> JSONValue { try JSONLDTestFiles.json(directory + path) }

    /// Resolves only the vector's did:key verification method.
    static func resolveVectorKey(_ method: String) -> Ed25519PublicKey? {
        method == verificationMethod ? DIDKey.publicKey(fromVerificationMethod: method) : nil
    }
}

private func without(_ key: String, in value: JSONValue) -> JSONValue {
    guard case .object(var members) = value else { return value }
    members[key] = nil
    return .object(members)
}

private func changing(_ document: JSONValue, _ change: (inout JSONObject) -> Void) -> JSONValue {
    guard case .object(var members) = document else { return document }
    change(&members)
    return .object(members)
}

private func changingProof(_ document: JSONValue, _ change: (inout JSONObject) -> Void) -> JSONValue {
    changing(document) { members in
        guard case .object(var proof)? = members["proof"] else { return }
        change(&proof)
        members["proof"] = .object(proof)
    }
}

@Suite struct EdDSARDFCVectorTests {
    @Test func everyIntermediateMatchesTheW3CVector() throws {
        let store = try JSONLDTestFiles.contextStore()
        let key = try EdDSAVectors.privateKey()
        let unsigned = try EdDSAVectors.json("unsigned.json")
        let proofConfiguration = try EdDSAVectors.json("eddsa-rdfc-2022/proofConfigDataInt.json")
        #expect(proofConfiguration["@context"] == unsigned["@context"])

        let intermediates = try EdDSACryptosuite.computeIntermediates(
            unsecuredDocument: unsigned, proofOptions: proofConfiguration, suite: .rdfc2022, contexts: store)
        #expect(intermediates.canonicalDocument == (try EdDSAVectors.text("eddsa-rdfc-2022/canonDocDataInt.txt")))
        #expect(
            intermediates.canonicalProofConfiguration
                == (try EdDSAVectors.text("eddsa-rdfc-2022/proofCanonDataInt.txt")))
        #expect(intermediates.documentHash.hexString == (try EdDSAVectors.text("eddsa-rdfc-2022/docHashDataInt.txt")))
        #expect(
            intermediates.proofConfigurationHash.hexString
                == (try EdDSAVectors.text("eddsa-rdfc-2022/proofHashDataInt.txt")))
        #expect(intermediates.hashData.hexString == (try EdDSAVectors.text("eddsa-rdfc-2022/combinedHashDataInt.txt")))
        // The proof options without @context give the same configuration: the document's @context is used.
        let withoutContext = try EdDSACryptosuite.computeIntermediates(
            unsecuredDocument: unsigned, proofOptions: without("@context", in: proofConfiguration), suite: .rdfc2022,
            contexts: store)
        #expect(withoutContext == intermediates)

        let signature = key.signature(for: intermediates.hashData)
        #expect(signature.hexString == (try EdDSAVectors.text("eddsa-rdfc-2022/sigHexDataInt.txt")))
        #expect(
            EdDSACryptosuite.proofValue(for: signature)
                == (try EdDSAVectors.text("eddsa-rdfc-2022/sigBTC58DataInt.txt")))
    }

    @Test func createProofReproducesTheSignedVector() throws {
        let store = try JSONLDTestFiles.contextStore()
        let signed = try EdDSACryptosuite.createProofWithIntermediates(
            document: try EdDSAVectors.json("unsigned.json"), suite: .rdfc2022,
            privateKey: try EdDSAVectors.privateKey(),
            verificationMethod: EdDSAVectors.verificationMethod, created: EdDSAVectors.created, contexts: store)
        #expect(signed.document == (try EdDSAVectors.json("eddsa-rdfc-2022/signedDataInt.json")))
        #expect(signed.signature.hexString == (try EdDSAVectors.text("eddsa-rdfc-2022/sigHexDataInt.txt")))
        // The rdfc proof does not carry a @context.
        #expect(signed.proof["@context"] == nil)
    }

    @Test func theSignedVectorVerifies() throws {
        let store = try JSONLDTestFiles.contextStore()
        let signed = try EdDSAVectors.json("eddsa-rdfc-2022/signedDataInt.json")
        let result = EdDSACryptosuite.verifyProof(
            document: signed, contexts: store, resolveKey: EdDSAVectors.resolveVectorKey)
        #expect(result == .verified(unsecuredDocument: try EdDSAVectors.json("unsigned.json")))
        let viaDIDKey = EdDSACryptosuite.verifyProof(
            document: signed, contexts: store, resolveKey: DIDKey.publicKey(fromVerificationMethod:))
        #expect(viaDIDKey.isVerified)
    }

    /// The second W3C example uses the citizenship context (https://w3id.org/citizenship/v4rc1), which Circuito
    /// does not bundle: its JSON cannot be converted here, and verifying it must fail for that reason rather than
    /// fetch the context. Everything after the conversion is still checked byte for byte.
    @Test func theEmploymentExampleNeedsAContextThatIsNotBundled() throws {
        let store = try JSONLDTestFiles.contextStore()
        let key = try EdDSAVectors.privateKey()
        let signed = try EdDSAVectors.json("eddsa-rdfc-2022/employ/signedDataInt.json")
        #expect(without("proof", in: signed) == (try EdDSAVectors.json("employmentAuth.json")))

        let result = EdDSACryptosuite.verifyProof(
            document: signed, contexts: store, resolveKey: EdDSAVectors.resolveVectorKey)
        guard case .documentNotProcessable(let detail)? = result.failure else {
            Issue.record("expected a processing failure, got \(result)")
            return
        }
        #expect(detail.contains("https://w3id.org/citizenship/v4rc1 is not bundled"))
        #expect(throws: LedgerError.self) {
            try EdDSACryptosuite.createProof(
                document: try EdDSAVectors.json("employmentAuth.json"), suite: .rdfc2022, privateKey: key,
                verificationMethod: EdDSAVectors.verificationMethod, created: EdDSAVectors.created, contexts: store)
        }

        // The given canonical document is already canonical, and hashes to the vector's hash.
        let canonicalDocument = try EdDSAVectors.text("eddsa-rdfc-2022/employ/canonDocDataInt.txt")
        #expect(
            try RDFCanonicalizer.canonicalize(try NQuads.parse(canonicalDocument)).canonicalNQuads == canonicalDocument)
        let documentHash = SHA256.hash(Array(canonicalDocument.utf8))
        #expect(documentHash.hexString == (try EdDSAVectors.text("eddsa-rdfc-2022/employ/docHashDataInt.txt")))

        // The proof configuration only uses terms of the protected credentials context, so it canonicalizes the
        // same with that context alone.
        let proofOptions = changing(try EdDSAVectors.json("eddsa-rdfc-2022/employ/proofConfigDataInt.json")) {
            $0["@context"] = ["https://www.w3.org/ns/credentials/v2"]
        }
        let canonicalProof = try EdDSACryptosuite.canonicalNQuads(proofOptions, contexts: store)
        #expect(canonicalProof == (try EdDSAVectors.text("eddsa-rdfc-2022/employ/proofCanonDataInt.txt")))
        let proofHash = SHA256.hash(Array(canonicalProof.utf8))
        #expect(proofHash.hexString == (try EdDSAVectors.text("eddsa-rdfc-2022/employ/proofHashDataInt.txt")))
        let hashData = proofHash + documentHash
        #expect(hashData.hexString == (try EdDSAVectors.text("eddsa-rdfc-2022/employ/combinedHashDataInt.txt")))
        let signature = key.signature(for: hashData)
        #expect(signature.hexString == (try EdDSAVectors.text("eddsa-rdfc-2022/employ/sigHexDataInt.txt")))
        #expect(
            EdDSACryptosuite.proofValue(for: signature)
                == (try EdDSAVectors.text("eddsa-rdfc-2022/employ/sigBTC58DataInt.txt")))
        #expect(signed["proof"]?["proofValue"]?.stringValue == EdDSACryptosuite.proofValue(for: signature))
    }
}

@Suite struct EdDSAJCSVectorTests {
    @Test func everyIntermediateMatchesTheW3CVector() throws {
        let store = try JSONLDTestFiles.contextStore()
        let key = try EdDSAVectors.privateKey()
        let unsigned = try EdDSAVectors.json("unsigned.json")
        let proofConfiguration = try EdDSAVectors.json("eddsa-jcs-2022/proofConfigJCS.json")
        let intermediates = try EdDSACryptosuite.computeIntermediates(
            unsecuredDocument: unsigned, proofOptions: proofConfiguration, suite: .jcs2022, contexts: store)
        #expect(intermediates.canonicalDocument == (try EdDSAVectors.text("eddsa-jcs-2022/canonDocJCS.txt")))
        #expect(
            intermediates.canonicalProofConfiguration == (try EdDSAVectors.text("eddsa-jcs-2022/proofCanonJCS.txt")))
        #expect(intermediates.documentHash.hexString == (try EdDSAVectors.text("eddsa-jcs-2022/docHashJCS.txt")))
        #expect(
            intermediates.proofConfigurationHash.hexString == (try EdDSAVectors.text("eddsa-jcs-2022/proofHashJCS.txt"))
        )
        #expect(intermediates.hashData.hexString == (try EdDSAVectors.text("eddsa-jcs-2022/combinedHashJCS.txt")))
        let signature = key.signature(for: intermediates.hashData)
        #expect(signature.hexString == (try EdDSAVectors.text("eddsa-jcs-2022/sigHexJCS.txt")))
        #expect(
            EdDSACryptosuite.proofValue(for: signature) == (try EdDSAVectors.text("eddsa-jcs-2022/sigBTC58JCS.txt")))
    }

    @Test func createProofReproducesTheSignedVector() throws {
        let store = try JSONLDTestFiles.contextStore()
        let signed = try EdDSACryptosuite.createProofWithIntermediates(
            document: try EdDSAVectors.json("unsigned.json"), suite: .jcs2022,
            privateKey: try EdDSAVectors.privateKey(),
            verificationMethod: EdDSAVectors.verificationMethod, created: EdDSAVectors.created, contexts: store)
        #expect(signed.document == (try EdDSAVectors.json("eddsa-jcs-2022/signedJCS.json")))
        // The jcs proof carries the document's @context.
        #expect(signed.proof["@context"] == (try EdDSAVectors.json("unsigned.json"))["@context"])
    }

    @Test func theSignedVectorVerifies() throws {
        let store = try JSONLDTestFiles.contextStore()
        let signed = try EdDSAVectors.json("eddsa-jcs-2022/signedJCS.json")
        let result = EdDSACryptosuite.verifyProof(
            document: signed, contexts: store, resolveKey: EdDSAVectors.resolveVectorKey)
        #expect(result == .verified(unsecuredDocument: try EdDSAVectors.json("unsigned.json")))
    }

    @Test func theProofContextMustBeginTheDocumentContext() throws {
        let store = try JSONLDTestFiles.contextStore()
        let signed = try EdDSAVectors.json("eddsa-jcs-2022/signedJCS.json")
        // A context appended after signing is allowed by the suite (proof sets) and is not part of what is verified.
        let appended = changing(signed) {
            $0["@context"] = [
                "https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2",
                "https://w3id.org/security/data-integrity/v2",
            ]
        }
        let appendedResult = EdDSACryptosuite.verifyProof(
            document: appended, contexts: store, resolveKey: EdDSAVectors.resolveVectorKey)
        #expect(appendedResult == .verified(unsecuredDocument: try EdDSAVectors.json("unsigned.json")))
        // Anything else is a mismatch.
        let replaced = changing(signed) { $0["@context"] = ["https://www.w3.org/ns/credentials/v2"] }
        #expect(
            EdDSACryptosuite.verifyProof(document: replaced, contexts: store, resolveKey: EdDSAVectors.resolveVectorKey)
                .failure == .contextMismatch)
    }
}

@Suite struct DataIntegrityTamperingTests {
    static let signedVectors = ["eddsa-rdfc-2022/signedDataInt.json", "eddsa-jcs-2022/signedJCS.json"]

    private func verify(_ document: JSONValue, expectedProofPurpose: String? = "assertionMethod") throws
        -> DataIntegrityVerificationResult
    {
        EdDSACryptosuite.verifyProof(
            document: document, contexts: try JSONLDTestFiles.contextStore(),
            expectedProofPurpose: expectedProofPurpose,
            resolveKey: EdDSAVectors.resolveVectorKey)
    }

    @Test(arguments: signedVectors)
    func changedValuesFail(path: String) throws {
        let signed = try EdDSAVectors.json(path)
        #expect(try verify(signed).isVerified)
        let renamed = changing(signed) { $0["name"] = "Alumni Credential!" }
        #expect(try verify(renamed).failure == .signatureMismatch)
        let otherSchool = changing(signed) {
            $0["credentialSubject"] = ["id": "did:example:abcdefgh", "alumniOf": "Another School"]
        }
        #expect(try verify(otherSchool).failure == .signatureMismatch)
        let otherSubject = changing(signed) {
            $0["credentialSubject"] = ["id": "did:example:zzz", "alumniOf": "The School of Examples"]
        }
        #expect(try verify(otherSubject).failure == .signatureMismatch)
        let laterValidity = changing(signed) { $0["validFrom"] = "2023-01-02T00:00:00Z" }
        #expect(try verify(laterValidity).failure == .signatureMismatch)
        let extraType = changing(signed) {
            $0["type"] = ["VerifiableCredential", "AlumniCredential", "OtherCredential"]
        }
        #expect(try verify(extraType).failure == .signatureMismatch)
    }

    @Test(arguments: signedVectors)
    func addedPropertiesFail(path: String) throws {
        let signed = try EdDSAVectors.json(path)
        // The examples context maps every undefined word through @vocab, so the addition changes the signed data.
        let added = changing(signed) { $0["favouriteColour"] = "blue" }
        #expect(try verify(added).failure == .signatureMismatch)
        // A property that no context can define (a keyword-like key) is refused outright.
        let reserved = changing(signed) { $0["@colour"] = "blue" }
        guard case .documentNotProcessable? = try verify(reserved).failure else {
            Issue.record("a keyword-like key must make the document unprocessable")
            return
        }
    }

    @Test(arguments: signedVectors)
    func changedProofOptionsFail(path: String) throws {
        let signed = try EdDSAVectors.json(path)
        let otherCreated = changingProof(signed) { $0["created"] = "2023-02-24T23:36:39Z" }
        #expect(try verify(otherCreated).failure == .signatureMismatch)
        let invalidCreated = changingProof(signed) { $0["created"] = "yesterday" }
        guard case .malformedProof? = try verify(invalidCreated).failure else {
            Issue.record("created must be an XML Schema dateTime")
            return
        }
        let unknownMethod = changingProof(signed) { $0["verificationMethod"] = "did:example:issuer#key-1" }
        #expect(try verify(unknownMethod).failure == .unknownVerificationMethod("did:example:issuer#key-1"))
        // Another resolvable key: the signature was not made by it.
        let otherKey = Ed25519PrivateKey()
        let otherMethod = DIDKey.verificationMethod(for: otherKey.publicKey)
        let reassigned = changingProof(signed) { $0["verificationMethod"] = .string(otherMethod) }
        let reassignedResult = EdDSACryptosuite.verifyProof(
            document: reassigned, contexts: try JSONLDTestFiles.contextStore(),
            resolveKey: DIDKey.publicKey(fromVerificationMethod:))
        #expect(reassignedResult.failure == .signatureMismatch)

        let suite = signed["proof"]?["cryptosuite"]?.stringValue
        let otherSuite = suite == "eddsa-rdfc-2022" ? "eddsa-jcs-2022" : "eddsa-rdfc-2022"
        let swappedSuite = changingProof(signed) { $0["cryptosuite"] = .string(otherSuite) }
        #expect(try verify(swappedSuite).failure == .signatureMismatch)
        let unknownSuite = changingProof(signed) { $0["cryptosuite"] = "ecdsa-rdfc-2019" }
        #expect(try verify(unknownSuite).failure == .unsupportedCryptosuite("ecdsa-rdfc-2019"))
        let otherType = changingProof(signed) { $0["type"] = "Ed25519Signature2020" }
        #expect(try verify(otherType).failure == .unsupportedProofType("Ed25519Signature2020"))

        let otherPurpose = changingProof(signed) { $0["proofPurpose"] = "authentication" }
        #expect(
            try verify(otherPurpose).failure
                == .proofPurposeMismatch(expected: "assertionMethod", actual: "authentication"))
        #expect(try verify(otherPurpose, expectedProofPurpose: nil).failure == .signatureMismatch)
        let addedOption = changingProof(signed) { $0["nonce"] = "123" }
        #expect(try verify(addedOption).failure == .signatureMismatch)
    }

    @Test(arguments: signedVectors)
    func changedProofValuesFail(path: String) throws {
        let signed = try EdDSAVectors.json(path)
        let proofValue = try #require(signed["proof"]?["proofValue"]?.stringValue)
        // One character changed to another base58 character.
        let lastCharacter = try #require(proofValue.last)
        let replacement: Character = lastCharacter == "2" ? "3" : "2"
        let oneCharacter = changingProof(signed) {
            $0["proofValue"] = .string(String(proofValue.dropLast()) + String(replacement))
        }
        #expect(try verify(oneCharacter).failure == .signatureMismatch)
        let middle = proofValue.index(proofValue.startIndex, offsetBy: 20)
        let middleReplacement: Character = proofValue[middle] == "A" ? "B" : "A"
        var changedMiddle = proofValue
        changedMiddle.replaceSubrange(middle...middle, with: String(middleReplacement))
        let middleChanged = changingProof(signed) { $0["proofValue"] = .string(changedMiddle) }
        #expect(try verify(middleChanged).failure == .signatureMismatch)

        let notBase58 = changingProof(signed) { $0["proofValue"] = .string(String(proofValue.dropLast()) + "0") }
        #expect(try verify(notBase58).failure == .proofValueNotMultibaseBase58)
        let notMultibase = changingProof(signed) { $0["proofValue"] = .string(String(proofValue.dropFirst())) }
        #expect(try verify(notMultibase).failure == .proofValueNotMultibaseBase58)
        let base64 = changingProof(signed) {
            $0["proofValue"] = .string("m" + Base64.encode([UInt8](repeating: 1, count: 64)))
        }
        #expect(try verify(base64).failure == .proofValueNotMultibaseBase58)
        // A signature with a byte appended is refused for its length.
        let signatureBytes = try #require(Base58.decode(String(proofValue.dropFirst())))
        let lengthened = changingProof(signed) { $0["proofValue"] = .string(EdDSACryptosuite.proofValue(for: signatureBytes + [0])) }
        #expect(try verify(lengthened).failure == .invalidSignatureLength(65))
        let truncated = changingProof(signed) { $0["proofValue"] = .string(String(proofValue.dropLast(10))) }
        guard case .invalidSignatureLength? = try verify(truncated).failure else {
            Issue.record("a shortened proofValue must be refused for its length")
            return
        }
        let missing = changingProof(signed) { $0["proofValue"] = nil }
        guard case .malformedProof? = try verify(missing).failure else {
            Issue.record("a proof without proofValue is malformed")
            return
        }
    }

    /// Decoding base58 takes time quadratic in the length: a proofValue of 200,000 characters (a 200 KB credential
    /// file) kept `circuito badge verify` busy for 15 s, one of 4 MB (the file bound) would for hours. What cannot
    /// be a 64-byte signature is refused before it is decoded.
    @Test(arguments: signedVectors)
    func aProofValueTooLongForASignatureIsRefusedUndecoded(path: String) throws {
        let signed = try EdDSAVectors.json(path)
        let longest = changingProof(signed) { $0["proofValue"] = .string("z" + String(repeating: "2", count: EdDSACryptosuite.maximumProofValueCharacters)) }
        guard case .invalidSignatureLength? = try verify(longest).failure else {
            Issue.record("a proofValue of \(EdDSACryptosuite.maximumProofValueCharacters) characters is decoded and refused for its length")
            return
        }
        let huge = changingProof(signed) { $0["proofValue"] = .string("z" + String(repeating: "2", count: 200_000)) }
        // Refused for its length, before any decoding (which would report the bytes it decoded to).
        let failure = try verify(huge).failure
        #expect(failure == .malformedProof("proofValue has 200000 base58 characters; a 64-byte Ed25519 signature has at most 88"))
    }

    @Test func aProofChainIsRefusedEvenWhenItsSignatureVerifies() throws {
        let signed = try EdDSAVectors.json("eddsa-jcs-2022/signedJCS.json")
        let store = try JSONLDTestFiles.contextStore()
        // The vector's proof options with a previousProof, signed anew by the vector's key: a good signature over a
        // proof chain, which this verifier does not support and must not take for a single proof.
        guard case .object(var options)? = signed["proof"] else {
            Issue.record("the vector has no proof")
            return
        }
        options["proofValue"] = nil
        options["previousProof"] = "urn:uuid:26329423-bec9-4b2e-88cb-a7c7d9dc4544"
        let intermediates = try EdDSACryptosuite.computeIntermediates(
            unsecuredDocument: without("proof", in: signed), proofOptions: .object(options), suite: .jcs2022, contexts: store)
        let signature = try EdDSAVectors.privateKey().signature(for: intermediates.hashData)
        options["proofValue"] = .string(EdDSACryptosuite.proofValue(for: signature))
        let chained = changing(signed) { $0["proof"] = .object(options) }
        let result = try verify(chained)
        guard case .malformedProof? = result.failure else {
            Issue.record("a proof with previousProof must be refused as a chain, got \(result)")
            return
        }
    }

    @Test(arguments: signedVectors)
    func anotherKeyDoesNotVerify(path: String) throws {
        let signed = try EdDSAVectors.json(path)
        let otherKey = Ed25519PrivateKey().publicKey
        let result = EdDSACryptosuite.verifyProof(
            document: signed, contexts: try JSONLDTestFiles.contextStore(), resolveKey: { _ in otherKey })
        #expect(result.failure == .signatureMismatch)
    }

    @Test func documentsWithoutAProofOrWithSeveralAreRefused() throws {
        let signed = try EdDSAVectors.json("eddsa-rdfc-2022/signedDataInt.json")
        #expect(try verify(without("proof", in: signed)).failure == .missingProof)
        #expect(try verify("not a document").failure == .missingProof)
        let proof = try #require(signed["proof"])
        let proofSet = changing(signed) { $0["proof"] = [proof, proof] }
        guard case .malformedProof? = try verify(proofSet).failure else {
            Issue.record("proof sets are not supported and must be refused")
            return
        }
    }
}

@Suite struct OpenBadgeSigningTests {
    @Test(arguments: EdDSACryptosuite.allCases)
    func aBadgeSignedByCircuitoVerifies(suite: EdDSACryptosuite) throws {
        let store = try JSONLDTestFiles.contextStore()
        let key = Ed25519PrivateKey()
        let verificationMethod = DIDKey.verificationMethod(for: key.publicKey)
        let credential = changing(JSONLDTestFiles.openBadgeCredential) {
            $0["issuer"] = [
                "id": .string(DIDKey.did(for: key.publicKey)), "type": ["Profile"], "name": "Città di Torino",
            ]
        }
        let signed = try EdDSACryptosuite.createProof(
            document: credential, suite: suite, privateKey: key, verificationMethod: verificationMethod,
            created: "2024-05-01T10:00:00Z", contexts: store)
        let result = EdDSACryptosuite.verifyProof(
            document: signed, contexts: store, resolveKey: DIDKey.publicKey(fromVerificationMethod:))
        #expect(result == .verified(unsecuredDocument: credential))

        // With only the credentials and Open Badges contexts there is no @vocab: an added property is undefined
        // and refused before any signature check.
        let extended = changing(signed) { $0["favouriteColour"] = "blue" }
        let extendedResult = EdDSACryptosuite.verifyProof(
            document: extended, contexts: store, resolveKey: DIDKey.publicKey(fromVerificationMethod:))
        guard case .documentNotProcessable(let detail)? = extendedResult.failure else {
            Issue.record("an undefined property must make verification fail, got \(extendedResult)")
            return
        }
        #expect(detail.contains("favouriteColour"))

        let changedCredits = changing(signed) { members in
            guard case .object(var subject)? = members["credentialSubject"],
                case .object(var achievement)? = subject["achievement"]
            else { return }
            achievement["creditsAvailable"] = 50
            subject["achievement"] = .object(achievement)
            members["credentialSubject"] = .object(subject)
        }
        #expect(
            EdDSACryptosuite.verifyProof(
                document: changedCredits, contexts: store, resolveKey: DIDKey.publicKey(fromVerificationMethod:)
            ).failure == .signatureMismatch)
    }

    @Test func createProofRefusesWhatItCannotSign() throws {
        let store = try JSONLDTestFiles.contextStore()
        let key = Ed25519PrivateKey()
        let method = DIDKey.verificationMethod(for: key.publicKey)
        let credential = JSONLDTestFiles.openBadgeCredential
        let undefined = changing(credential) { $0["favouriteColour"] = "blue" }
        for suite in EdDSACryptosuite.allCases {
            #expect(throws: LedgerError.self) {
                try EdDSACryptosuite.createProof(
                    document: undefined, suite: suite, privateKey: key, verificationMethod: method,
                    created: "2024-05-01T10:00:00Z", contexts: store)
            }
            #expect(throws: LedgerError.self) {
                try EdDSACryptosuite.createProof(
                    document: credential, suite: suite, privateKey: key, verificationMethod: method,
                    created: "1 May 2024", contexts: store)
            }
            #expect(throws: LedgerError.self) {
                try EdDSACryptosuite.createProof(
                    document: credential, suite: suite, privateKey: key, verificationMethod: method,
                    created: "2024-05-01T10:00:00", contexts: store)
            }
            let signed = try EdDSACryptosuite.createProof(
                document: credential, suite: suite, privateKey: key, verificationMethod: method,
                created: "2024-05-01T10:00:00Z", contexts: store)
            #expect(throws: LedgerError.self) {
                try EdDSACryptosuite.createProof(
                    document: signed, suite: suite, privateKey: key, verificationMethod: method,
                    created: "2024-05-01T10:00:00Z", contexts: store)
            }
        }
    }
}

@Suite struct DataIntegrityHelperTests {
    @Test func didKeyVerificationMethodsResolve() throws {
        let key = try EdDSAVectors.privateKey()
        let resolved = try #require(DIDKey.publicKey(fromVerificationMethod: EdDSAVectors.verificationMethod))
        #expect(resolved == key.publicKey)
        #expect(DIDKey.verificationMethod(for: key.publicKey) == EdDSAVectors.verificationMethod)
        #expect(
            DIDKey.publicKey(fromVerificationMethod: "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2")
                == resolved)
        let otherFragment = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#key-1"
        #expect(DIDKey.publicKey(fromVerificationMethod: otherFragment) == nil)
        #expect(DIDKey.publicKey(fromVerificationMethod: "did:web:example.com#key-1") == nil)
        #expect(DIDKey.publicKey(fromVerificationMethod: "did:key:zNotAKey") == nil)
    }

    @Test func xmlSchemaDateTimes() {
        let timestamps = [
            "2023-02-24T23:36:38Z", "2024-02-29T00:00:00Z", "2023-02-24T23:36:38.123+01:00", "-0044-03-15T12:00:00Z",
            "12024-01-01T00:00:00-14:00", "2000-02-29T00:00:00Z",
        ]
        for valid in timestamps {
            #expect(XSDDateTime.isValid(valid), "\(valid)")
            #expect(XSDDateTime.isValidTimestamp(valid), "\(valid)")
        }
        // A dateTime without a time zone is not a dateTimeStamp, which Data Integrity requires of created.
        for local in ["2023-02-24T24:00:00", "2023-02-24T23:36:38.5"] {
            #expect(XSDDateTime.isValid(local), "\(local)")
            #expect(!XSDDateTime.isValidTimestamp(local), "\(local)")
        }
        let invalid = [
            "2023-02-24", "2023-02-30T00:00:00Z", "2023-13-01T00:00:00Z", "2023-02-24T23:36:60Z",
            "2023-02-24 23:36:38Z",
            "2023-02-24T24:00:01Z", "2023-02-24T23:36:38+15:00", "02023-01-01T00:00:00Z", "2023-02-24T23:36:38.Z",
            "2023-02-24T23:36:38Zjunk", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2023-02-24T23:36:38+14:30",
        ]
        for text in invalid {
            #expect(!XSDDateTime.isValid(text), "\(text)")
        }
    }
}
