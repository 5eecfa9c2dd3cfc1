import CircuitoCore
import Foundation
import Testing

@testable import CircuitoCredentials

/// Files from the shared directory next to the repository (contexts and W3C vectors). A missing file throws, so
/// the test that needs it fails rather than being skipped.
enum JSONLDTestFiles {
    struct MissingFile: Error, CustomStringConvertible {
        let path: String
        var description: String { "missing test file \(path)" }
    }

    /// `<folder containing Tests>/../shared`.
    static let sharedDirectory: URL = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Tests").path) {
                return directory.deletingLastPathComponent().appendingPathComponent("shared")
            }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: "/shared-directory-not-found")
    }()

    static func bytes(_ relativePath: String) throws -> [UInt8] {
        let url = sharedDirectory.appendingPathComponent(relativePath)
        guard let data = FileManager.default.contents(atPath: url.path) else { throw MissingFile(path: url.path) }
        return [UInt8](data)
    }

    static func text(_ relativePath: String) throws -> String {
        String(decoding: try bytes(relativePath), as: UTF8.self)
    }

    static func json(_ relativePath: String) throws -> JSONValue {
        try JSONParser.parse(try bytes(relativePath))
    }

    /// The bundled contexts, read from `shared/contexts` (never copied into the repository).
    static func contextStore() throws -> JSONLDContextStore {
        var files: [String: [UInt8]] = [:]
        for fileName in JSONLDContextStore.bundledFileNames.values {
            files[fileName] = try bytes("contexts/" + fileName)
        }
        return try JSONLDContextStore(bundledFiles: files)
    }

    /// A small Open Badges 3.0 credential as Circuito issues them.
    static let openBadgeCredential: JSONValue = [
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        ],
        "id": "urn:uuid:0b8a5c3e-2f5e-4a2c-9d43-4c9b3a6a2f10",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "Civic utility: park maintenance",
        "issuer": [
            "id": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
            "type": ["Profile"],
            "name": "Città di Torino — PIS",
        ],
        "validFrom": "2024-05-01T10:00:00Z",
        "credentialSubject": [
            "id": "urn:uuid:4a1f7c2e-0000-4000-8000-000000000001",
            "type": ["AchievementSubject"],
            "achievement": [
                "id": "https://circuito.example/badge-classes/park-maintenance",
                "type": ["Achievement"],
                "name": "Park maintenance",
                "description": "Twenty hours of park maintenance with the district team.",
                "criteria": ["narrative": "Complete 20 hours of activity."],
                "creditsAvailable": 5,
            ],
        ],
    ]
}

/// Sorted N-Quads lines of `quads` (blank node labels as issued), for exact comparisons without blank nodes.
private func sortedNQuads(_ quads: [RDFQuad]) -> String {
    quads.map { NQuads.serialize($0) }.sorted().joined()
}

private func rdfError(_ document: JSONValue, _ store: JSONLDContextStore) -> LedgerError? {
    do {
        _ = try JSONLD.toRDF(document, contexts: store)
        return nil
    } catch {
        return error
    }
}

private func with(_ document: JSONValue, _ change: (inout JSONObject) -> Void) -> JSONValue {
    guard case .object(var members) = document else { return document }
    change(&members)
    return .object(members)
}

private let rdfType = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
private let obVocabulary = "https://purl.imsglobal.org/spec/vc/ob/vocab.html#"
private let xsd = "http://www.w3.org/2001/XMLSchema#"
/// The Open Badges context writes the XML Schema namespace with https.
private let openBadgesXSD = "https://www.w3.org/2001/XMLSchema#"

@Suite struct JSONLDContextStoreTests {
    @Test func bundledContextsLoadFromTheSharedDirectory() throws {
        let store = try JSONLDTestFiles.contextStore()
        #expect(store.urls == JSONLDContextStore.bundledFileNames.keys.sorted())
        #expect(store.contains("https://www.w3.org/ns/credentials/v2"))
    }

    @Test func aMissingBundledFileIsAnError() throws {
        var files: [String: [UInt8]] = [:]
        for fileName in JSONLDContextStore.bundledFileNames.values where fileName != "ob-v3p0-context-3.0.3.json" {
            files[fileName] = try JSONLDTestFiles.bytes("contexts/" + fileName)
        }
        #expect(throws: LedgerError.self) { try JSONLDContextStore(bundledFiles: files) }
    }

    @Test func anUnknownContextURLIsRefusedNotFetched() throws {
        let store = try JSONLDTestFiles.contextStore()
        let document: JSONValue = [
            "@context": ["https://www.w3.org/ns/credentials/v2", "https://example.com/contexts/unknown.jsonld"],
            "id": "urn:example:1", "type": "VerifiableCredential",
        ]
        let error = try #require(rdfError(document, store))
        #expect(error.code == .invalidBody)
        #expect(error.message.contains("https://example.com/contexts/unknown.jsonld is not bundled"))
    }

    /// The bundled files from the shared directory, with `fileName` replaced by `bytes` (or left out when nil).
    static func bundledFiles(replacing fileName: String, with bytes: [UInt8]?) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for name in JSONLDContextStore.bundledFileNames.values { files[name] = try JSONLDTestFiles.bytes("contexts/" + name) }
        files[fileName] = bytes
        return files
    }

    static func loadError(_ files: [String: [UInt8]]) -> LedgerError? {
        do {
            _ = try JSONLDContextStore(bundledFiles: files)
            return nil
        } catch {
            return error
        }
    }

    @Test("bundled files: missing, not JSON, or without a top-level @context, each refused naming the file")
    func bundledFileRefusals() throws {
        let fileName = "w3id-data-integrity-v2.jsonld"
        let url = "https://w3id.org/security/data-integrity/v2"
        let missing = try #require(Self.loadError(try Self.bundledFiles(replacing: fileName, with: nil)))
        #expect(missing.code == .invalidBody)
        #expect(missing.message == "bundled JSON-LD context file \(fileName) (for \(url)) is missing")
        for text in ["", "{\"@context\": {", "{\"@context\": {}} trailing", "\u{FEFF}{\"@context\": {}}"] {
            let error = try #require(Self.loadError(try Self.bundledFiles(replacing: fileName, with: Array(text.utf8))), "\(text)")
            #expect(error.code == .invalidBody)
            #expect(error.message.hasPrefix("bundled JSON-LD context file \(fileName) is not valid JSON: "), "\(error.message)")
        }
        let notUTF8 = try #require(Self.loadError(try Self.bundledFiles(replacing: fileName, with: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D])))
        #expect(notUTF8.message.hasPrefix("bundled JSON-LD context file \(fileName) is not valid JSON: "), "\(notUTF8.message)")
        for text in ["{}", "[{\"@context\": {}}]", "\"@context\"", "null", "{\"@CONTEXT\": {}}"] {
            let error = try #require(Self.loadError(try Self.bundledFiles(replacing: fileName, with: Array(text.utf8))), "\(text)")
            #expect(error.code == .invalidBody)
            #expect(error.message == "bundled JSON-LD context file \(fileName) has no top-level @context", "\(text)")
        }
        // A file the store does not know is not read at all.
        var extra = try Self.bundledFiles(replacing: fileName, with: try JSONLDTestFiles.bytes("contexts/" + fileName))
        extra["unknown.jsonld"] = Array("not JSON".utf8)
        #expect(Self.loadError(extra) == nil)
    }

    /// A context whose @context loads but is no context: found when a document uses it, as the JSON-LD error.
    @Test("a loaded context whose @context is no context, or a document without one, is refused when it is used")
    func contextsRefusedWhenUsed() throws {
        let url = "https://w3id.org/security/multikey/v1"
        let document: JSONValue = ["@context": .string(url), "id": "urn:example:1"]
        let files = try Self.bundledFiles(replacing: "w3id-multikey-v1.jsonld", with: Array("{\"@context\": 5}".utf8))
        let numberError = try #require(rdfError(document, try JSONLDContextStore(bundledFiles: files)))
        #expect(numberError.code == .invalidBody)
        #expect(numberError.message.contains("JSON-LD invalid local context"), "\(numberError.message)")
        for stored: JSONValue in [["id": "@id"], "a string", ["@context"]] {
            let error = try #require(rdfError(document, JSONLDContextStore(documents: [url: stored])))
            #expect(error.message == "JSON-LD invalid remote context: the document for \(url) has no top-level @context")
        }
    }

    /// A credential naming a context the store does not hold, nothing fetched. Under eddsa-rdfc-2022 the proof
    /// cannot be checked, and says why. Under eddsa-jcs-2022 the proof carries the contexts it signed and the
    /// document's must only begin with them (VC DI EdDSA, eddsa-jcs-2022 Verify Proof step 4): the context added
    /// after them is not part of what is verified, and the checks read the signed JSON members by name.
    @Test("the verifier with a credential naming an unknown context: proof_invalid naming it (rdfc); not signed, so not read (jcs)")
    func verifierWithUnknownContext() throws {
        let store = try JSONLDTestFiles.contextStore()
        let unknown = "https://example.com/contexts/unknown.jsonld"
        for suite in EdDSACryptosuite.allCases {
            guard case .object(var credential) = try BadgeFixture.credential(suite), case .array(var contexts)? = credential["@context"]
            else {
                Issue.record("a credential is an object with a context array")
                return
            }
            contexts.append(.string(unknown))
            credential["@context"] = .array(contexts)
            let report = CredentialVerifier.verify(credential: .object(credential), statusList: nil, at: BadgeFixture.during, contexts: store)
            switch suite {
            case .rdfc2022:
                VerifierRefusalTests.expectFailed(
                    report, "proof", "proof_invalid", "JSON-LD context \(unknown) is not bundled; contexts are never fetched from the network")
            case .jcs2022:
                #expect(report.isValid(allowingUncheckedStatus: true), "\(report.failures)")
                // Put first, where the proof's contexts must be, it is refused.
                credential["@context"] = .array([.string(unknown)] + contexts.dropLast())
                let first = CredentialVerifier.verify(credential: .object(credential), statusList: nil, at: BadgeFixture.during, contexts: store)
                #expect(first.failures.map(\.name).contains("proof"), "\(first.checks)")
            }
        }
    }

    @Test func anEmptyStoreRefusesEvenTheCredentialsContext() throws {
        let document: JSONValue = ["@context": "https://www.w3.org/ns/credentials/v2", "id": "urn:example:1"]
        let error = try #require(rdfError(document, JSONLDContextStore(documents: [:])))
        #expect(error.message.contains("is not bundled"))
    }
}

@Suite struct JSONLDToRDFTests {
    @Test func theAlumniVectorExpandsToTheW3CStatements() throws {
        let store = try JSONLDTestFiles.contextStore()
        let quads = try JSONLD.toRDF(try JSONLDTestFiles.json("vectors/vc-di-eddsa/unsigned.json"), contexts: store)
        // The vector's canonical form has no blank nodes, so it is just the sorted statements.
        #expect(
            sortedNQuads(quads) == (try JSONLDTestFiles.text("vectors/vc-di-eddsa/eddsa-rdfc-2022/canonDocDataInt.txt"))
        )
    }

    @Test func anUndefinedTermIsRefused() throws {
        let store = try JSONLDTestFiles.contextStore()
        let credential = JSONLDTestFiles.openBadgeCredential
        let atTopLevel = with(credential) { $0["favouriteColour"] = "blue" }
        let topLevelError = try #require(rdfError(atTopLevel, store))
        #expect(topLevelError.message.contains("undefined term"))
        #expect(topLevelError.message.contains("favouriteColour"))

        let nested = with(credential) { members in
            guard case .object(var subject)? = members["credentialSubject"] else { return }
            subject["nickname"] = "Gianni"
            members["credentialSubject"] = .object(subject)
        }
        let nestedError = try #require(rdfError(nested, store))
        #expect(nestedError.message.contains("nickname"))

        // A type that no context defines does not expand to an absolute IRI either.
        let unknownType = with(credential) { $0["type"] = ["VerifiableCredential", "MadeUpCredential"] }
        #expect(rdfError(unknownType, store) != nil)
    }

    @Test func aTermOfAnotherTypeScopeIsUndefinedOutsideIt() throws {
        // "achievement" is defined only inside AchievementSubject's type-scoped context.
        let store = try JSONLDTestFiles.contextStore()
        let document = with(JSONLDTestFiles.openBadgeCredential) { $0["achievement"] = "https://example.com/a" }
        #expect(rdfError(document, store)?.message.contains("achievement") == true)
    }

    @Test func anOpenBadgeCredentialExpandsAndCanonicalizesDeterministically() throws {
        let store = try JSONLDTestFiles.contextStore()
        let credential = JSONLDTestFiles.openBadgeCredential
        let quads = try JSONLD.toRDF(credential, contexts: store)
        let credentialID = RDFTerm.iri("urn:uuid:0b8a5c3e-2f5e-4a2c-9d43-4c9b3a6a2f10")
        let issuer = RDFTerm.iri("did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2")
        let subject = RDFTerm.iri("urn:uuid:4a1f7c2e-0000-4000-8000-000000000001")
        let achievement = RDFTerm.iri("https://circuito.example/badge-classes/park-maintenance")
        func contains(_ s: RDFTerm, _ p: String, _ o: RDFTerm) -> Bool {
            quads.contains(RDFQuad(subject: s, predicate: .iri(p), object: o))
        }
        #expect(contains(credentialID, rdfType, .iri(obVocabulary + "OpenBadgeCredential")))
        #expect(contains(credentialID, rdfType, .iri("https://www.w3.org/2018/credentials#VerifiableCredential")))
        #expect(contains(credentialID, "https://www.w3.org/2018/credentials#issuer", issuer))
        #expect(contains(issuer, "https://schema.org/name", .literal("Città di Torino — PIS")))
        #expect(
            contains(
                credentialID, "https://www.w3.org/2018/credentials#validFrom",
                .literal("2024-05-01T10:00:00Z", datatype: xsd + "dateTime")))
        #expect(contains(credentialID, "https://www.w3.org/2018/credentials#credentialSubject", subject))
        #expect(contains(subject, obVocabulary + "achievement", achievement))
        #expect(contains(achievement, rdfType, .iri(obVocabulary + "Achievement")))
        #expect(
            contains(
                achievement, obVocabulary + "creditsAvailable",
                .literal("5", datatype: openBadgesXSD + "float")))
        // criteria is an embedded blank node carrying the narrative.
        let criteria = try #require(
            quads.first { $0.subject == achievement && $0.predicate == .iri(obVocabulary + "Criteria") })
        #expect(criteria.object.isBlankNode)
        #expect(contains(criteria.object, obVocabulary + "narrative", .literal("Complete 20 hours of activity.")))
        #expect(quads.count == 16)

        let canonical = try RDFCanonicalizer.canonicalize(quads).canonicalNQuads
        #expect(canonical.contains("_:c14n0 <\(obVocabulary)narrative> \"Complete 20 hours of activity.\" ."))
        // The same statements written in another order canonicalize to the same bytes.
        let reordered = with(credential) { $0["type"] = ["OpenBadgeCredential", "VerifiableCredential"] }
        #expect(
            try RDFCanonicalizer.canonicalize(try JSONLD.toRDF(reordered, contexts: store)).canonicalNQuads == canonical
        )
        #expect(try RDFCanonicalizer.canonicalize(quads.reversed()).canonicalNQuads == canonical)
        #expect(
            try RDFCanonicalizer.canonicalize(try JSONLD.toRDF(credential, contexts: store)).canonicalNQuads
                == canonical)
    }

    @Test func openBadgeListsDatatypesAndTheUndefinedXSDPrefix() throws {
        let store = try JSONLDTestFiles.contextStore()
        let document: JSONValue = [
            "@context": [
                "https://www.w3.org/ns/credentials/v2",
                "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
            ],
            "id": "urn:example:credential", "type": ["VerifiableCredential", "OpenBadgeCredential"],
            // The OB 3.0.3 context types awardedDate as "xsd:dateTime" without defining "xsd": JSON-LD keeps it
            // as the IRI "xsd:dateTime", as every other processor does.
            "awardedDate": "2024-05-01T10:00:00Z",
            "credentialSubject": [
                "id": "urn:example:subject", "type": "AchievementSubject",
                "creditsEarned": .number(2.5),
                "result": [["type": "Result", "achievedLevel": "urn:example:gold"]],
            ],
            "evidence": [["id": "urn:example:evidence", "type": ["Evidence"], "genre": "activity"]],
        ]
        let quads = try JSONLD.toRDF(document, contexts: store)
        let credential = RDFTerm.iri("urn:example:credential")
        let subject = RDFTerm.iri("urn:example:subject")
        #expect(
            quads.contains(
                RDFQuad(
                    subject: credential, predicate: .iri(obVocabulary + "awardedDate"),
                    object: .literal("2024-05-01T10:00:00Z", datatype: "xsd:dateTime"))))
        #expect(
            quads.contains(
                RDFQuad(
                    subject: subject, predicate: .iri(obVocabulary + "creditsEarned"),
                    object: .literal("2.5E0", datatype: openBadgesXSD + "float"))))
        let result = try #require(quads.first { $0.predicate == .iri(obVocabulary + "result") }).object
        #expect(
            quads.contains(
                RDFQuad(
                    subject: result, predicate: .iri(obVocabulary + "achievedLevel"),
                    object: .literal("urn:example:gold", datatype: openBadgesXSD + "anyURI"))))
        #expect(
            quads.contains(
                RDFQuad(
                    subject: .iri("urn:example:evidence"), predicate: .iri("https://schema.org/genre"),
                    object: .literal("activity"))))

        let list: JSONValue = [
            "@context": [
                "https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
            ],
            "id": "urn:example:rd", "type": "ResultDescription", "allowedValue": ["bronze", "silver"],
        ]
        let listQuads = try JSONLD.toRDF(list, contexts: store)
        let head = try #require(listQuads.first { $0.predicate == .iri(obVocabulary + "allowedValue") }).object
        let first = "http://www.w3.org/1999/02/22-rdf-syntax-ns#first"
        let rest = "http://www.w3.org/1999/02/22-rdf-syntax-ns#rest"
        #expect(listQuads.contains(RDFQuad(subject: head, predicate: .iri(first), object: .literal("bronze"))))
        let second = try #require(listQuads.first { $0.subject == head && $0.predicate == .iri(rest) }).object
        #expect(listQuads.contains(RDFQuad(subject: second, predicate: .iri(first), object: .literal("silver"))))
        #expect(
            listQuads.contains(
                RDFQuad(
                    subject: second, predicate: .iri(rest),
                    object: .iri("http://www.w3.org/1999/02/22-rdf-syntax-ns#nil"))))
    }

    @Test func theProofOfASignedCredentialIsANamedGraph() throws {
        let store = try JSONLDTestFiles.contextStore()
        let signed = try JSONLDTestFiles.json("vectors/vc-di-eddsa/eddsa-rdfc-2022/signedDataInt.json")
        let quads = try JSONLD.toRDF(signed, contexts: store)
        let link = try #require(quads.first { $0.predicate == .iri("https://w3id.org/security#proof") })
        #expect(link.graph == nil)
        #expect(link.object.isBlankNode)
        let proofStatements = quads.filter { $0.graph == link.object }
        #expect(proofStatements.count == 6)
        #expect(proofStatements.contains { $0.predicate == .iri("https://w3id.org/security#proofValue") })
    }

    @Test func jsonLiteralsUseJCS() throws {
        let store = try JSONLDTestFiles.contextStore()
        let document: JSONValue = [
            "@context": "https://www.w3.org/ns/credentials/v2",
            "id": "urn:example:schema", "type": "JsonSchema",
            "jsonSchema": ["type": "object", "required": ["b", "a"], "maximum": 10],
        ]
        let quads = try JSONLD.toRDF(document, contexts: store)
        #expect(
            quads.contains(
                RDFQuad(
                    subject: .iri("urn:example:schema"),
                    predicate: .iri("https://www.w3.org/2018/credentials#jsonSchema"),
                    object: .literal(
                        #"{"maximum":10,"required":["b","a"],"type":"object"}"#,
                        datatype: "http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON"))))
    }

    @Test func nativeNumbersAndBooleansGetCanonicalForms() throws {
        let store = try JSONLDTestFiles.contextStore()
        let document: JSONValue = [
            "@context": ["https://www.w3.org/ns/credentials/examples/v2"],
            "@id": "urn:example:n",
            "count": 42, "ratio": .number(1.5), "large": .number(1e21), "whole": .number(7.0), "flag": true,
            "small": .number(0.00015), "negative": -3,
        ]
        let quads = try JSONLD.toRDF(document, contexts: store)
        func value(_ property: String) -> RDFTerm? {
            quads.first { $0.predicate == .iri("https://www.w3.org/ns/credentials/examples#" + property) }?.object
        }
        #expect(value("count") == .literal("42", datatype: xsd + "integer"))
        #expect(value("ratio") == .literal("1.5E0", datatype: xsd + "double"))
        #expect(value("large") == .literal("1.0E21", datatype: xsd + "double"))
        #expect(value("whole") == .literal("7", datatype: xsd + "integer"))
        #expect(value("flag") == .literal("true", datatype: xsd + "boolean"))
        #expect(value("small") == .literal("1.5E-4", datatype: xsd + "double"))
        #expect(value("negative") == .literal("-3", datatype: xsd + "integer"))
    }

    @Test func doublesAreWrittenAsJSONLDProcessorsWriteThem() {
        #expect(XSDNumber.canonicalDouble(1.1) == "1.1E0")
        #expect(XSDNumber.canonicalDouble(10) == "1.0E1")
        #expect(XSDNumber.canonicalDouble(-0.5) == "-5.0E-1")
        #expect(XSDNumber.canonicalDouble(0.1 + 0.2) == "3.0E-1")  // 16 significant digits, like toExponential(15)
        #expect(XSDNumber.canonicalDouble(123456789.125) == "1.23456789125E8")
        #expect(XSDNumber.canonicalDouble(1e23) == "9.999999999999999E22")  // the double nearest 1e23 is below it
        #expect(XSDNumber.canonicalDouble(1125899906842624.5) == "1.125899906842625E15")  // a tie rounds up
        #expect(XSDNumber.canonicalInteger(1e20) == "100000000000000000000")
    }

    /// Graph objects and JSON literals as the verifier's canonicalization reads them (JSON-LD 1.1 Processing
    /// Algorithms: expansion step 13.12 for graph containers, Node Map Generation for graph names, Object to RDF
    /// Conversion for @json as the JCS text of the value, datatype rdf:JSON). The expected N-Quads are what pyld
    /// gives for the same documents, blank nodes labelled alike.
    static let graphAndJSONCases: [(name: String, document: String, nQuads: String)] = [
            ("named", #"{"@context": {"ex": "https://example.com/v#"}, "@id": "urn:g", "@graph": [{"@id": "urn:a", "ex:p": "x"}]}"#,
             #"<urn:a> <https://example.com/v#p> "x" <urn:g> .\#n"#),
            ("topWithProperty", #"{"@context": {"ex": "https://example.com/v#"}, "ex:q": "y", "@graph": [{"@id": "urn:a", "ex:p": "x"}]}"#,
             #"<urn:a> <https://example.com/v#p> "x" _:b0 .\#n_:b0 <https://example.com/v#q> "y" .\#n"#),
            ("container", #"{"@context": {"ex": "https://example.com/v#", "claims": {"@id": "ex:claims", "@container": "@graph"}}, "@id": "urn:s", "claims": {"@id": "urn:a", "ex:p": "x"}}"#,
             #"<urn:a> <https://example.com/v#p> "x" _:b0 .\#n<urn:s> <https://example.com/v#claims> _:b0 .\#n"#),
            ("containerGraphObject", #"{"@context": {"ex": "https://example.com/v#", "claims": {"@id": "ex:claims", "@container": "@graph"}}, "@id": "urn:s", "claims": {"@id": "urn:g", "@graph": {"@id": "urn:a", "ex:p": "x"}}}"#,
             #"<urn:a> <https://example.com/v#p> "x" <urn:g> .\#n<urn:s> <https://example.com/v#claims> _:b0 .\#n"#),
            ("plainGraphObject", #"{"@context": {"ex": "https://example.com/v#"}, "@id": "urn:s", "ex:claims": {"@graph": {"@id": "urn:a", "ex:p": "x"}}}"#,
             #"<urn:a> <https://example.com/v#p> "x" _:b0 .\#n<urn:s> <https://example.com/v#claims> _:b0 .\#n"#),
            ("plainNamedGraphObject", #"{"@context": {"ex": "https://example.com/v#"}, "@id": "urn:s", "ex:claims": {"@id": "urn:g", "@graph": {"@id": "urn:a", "ex:p": "x"}}}"#,
             #"<urn:a> <https://example.com/v#p> "x" <urn:g> .\#n<urn:s> <https://example.com/v#claims> <urn:g> .\#n"#),
            ("graphIdMap", #"{"@context": {"ex": "https://example.com/v#", "claims": {"@id": "ex:claims", "@container": ["@graph", "@id"]}}, "@id": "urn:s", "claims": {"urn:g1": {"@id": "urn:a", "ex:p": "x"}, "urn:g2": {"@id": "urn:b", "ex:p": "y"}}}"#,
             #"<urn:a> <https://example.com/v#p> "x" <urn:g1> .\#n<urn:b> <https://example.com/v#p> "y" <urn:g2> .\#n<urn:s> <https://example.com/v#claims> <urn:g1> .\#n<urn:s> <https://example.com/v#claims> <urn:g2> .\#n"#),
            ("graphIndexMap", #"{"@context": {"ex": "https://example.com/v#", "claims": {"@id": "ex:claims", "@container": ["@graph", "@index"]}}, "@id": "urn:s", "claims": {"first": {"@id": "urn:a", "ex:p": "x"}}}"#,
             #"<urn:a> <https://example.com/v#p> "x" _:b0 .\#n<urn:s> <https://example.com/v#claims> _:b0 .\#n"#),
            ("nested", #"{"@context": {"ex": "https://example.com/v#"}, "@id": "urn:g", "@graph": [{"@id": "urn:h", "@graph": {"@id": "urn:a", "ex:p": "x"}}]}"#,
             #"<urn:a> <https://example.com/v#p> "x" <urn:h> .\#n"#),
            ("json", #"{"@context": {"ex": "https://example.com/v#", "data": {"@id": "ex:data", "@type": "@json"}}, "@id": "urn:s", "data": {"z": [1.0, 1e+21, 0.5, "a\u2028\"b\u0001"], "a": null, "m": true, "é": {}}}"#,
             #"<urn:s> <https://example.com/v#data> "{\"a\":null,\"m\":true,\"z\":[1,1e+21,0.5,\"a\#u{2028}\\\"b\\u0001\"],\"é\":{}}"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> .\#n"#),
            ("jsonArray", #"{"@context": {"ex": "https://example.com/v#", "data": {"@id": "ex:data", "@type": "@json"}}, "@id": "urn:s", "data": [3, 2, 1]}"#,
             #"<urn:s> <https://example.com/v#data> "[3,2,1]"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> .\#n"#),
            ("jsonNull", #"{"@context": {"ex": "https://example.com/v#", "data": {"@id": "ex:data", "@type": "@json"}}, "@id": "urn:s", "data": null}"#,
             #"<urn:s> <https://example.com/v#data> "null"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> .\#n"#),
            ("jsonString", #"{"@context": {"ex": "https://example.com/v#", "data": {"@id": "ex:data", "@type": "@json"}}, "@id": "urn:s", "data": "text"}"#,
             #"<urn:s> <https://example.com/v#data> "\"text\""^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> .\#n"#),
            ("jsonValueObject", #"{"@context": {"ex": "https://example.com/v#"}, "@id": "urn:s", "ex:data": {"@value": {"b": 1, "a": [false]}, "@type": "@json"}}"#,
             #"<urn:s> <https://example.com/v#data> "{\"a\":[false],\"b\":1}"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> .\#n"#),
            ("jsonList", #"{"@context": {"ex": "https://example.com/v#", "data": {"@id": "ex:data", "@type": "@json", "@container": "@list"}}, "@id": "urn:s", "data": [{"a": 1}, [2]]}"#,
             #"<urn:s> <https://example.com/v#data> _:b0 .\#n_:b0 <http://www.w3.org/1999/02/22-rdf-syntax-ns#first> "[{\"a\":1},[2]]"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> .\#n_:b0 <http://www.w3.org/1999/02/22-rdf-syntax-ns#rest> <http://www.w3.org/1999/02/22-rdf-syntax-ns#nil> .\#n"#),
            ("jsonIndex", #"{"@context": {"ex": "https://example.com/v#"}, "@id": "urn:s", "ex:data": {"@value": 5, "@type": "@json", "@index": "i"}}"#,
             #"<urn:s> <https://example.com/v#data> "5"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> .\#n"#),
    ]

    @Test("@graph (top level, named, graph containers and maps, nested) and @json literals convert as JSON-LD 1.1 says")
    func graphAndJSONForms() throws {
        let store = try JSONLDTestFiles.contextStore()
        for (name, document, nQuads) in Self.graphAndJSONCases {
            let quads = try JSONLD.toRDF(try JSONParser.parse(Array(document.utf8)), contexts: store)
            #expect(sortedNQuads(quads) == nQuads, "\(name)")
        }
    }

    @Test("a @json value object with a language, and a value in a @graph, are refused as JSON-LD refuses them")
    func graphAndJSONRefusals() throws {
        let store = try JSONLDTestFiles.contextStore()
        let language = #"{"@context": {"ex": "https://example.com/v#"}, "@id": "urn:s", "ex:data": {"@value": {"b": 1}, "@type": "@json", "@language": "en"}}"#
        #expect(rdfError(try JSONParser.parse(Array(language.utf8)), store)?.message.contains("JSON-LD invalid value object") == true)
        let listInGraph = #"{"@context": {"ex": "https://example.com/v#"}, "@id": "urn:g", "@graph": [{"@list": ["x"]}]}"#
        #expect(rdfError(try JSONParser.parse(Array(listInGraph.utf8)), store)?.message.contains("free-floating") == true)
    }

    /// A signed credential carrying a JSON literal (`cnf.jwk`, @json in the VC 2.0 context) and a property whose
    /// values are graphs: the proof covers the literal's canonical JSON and the graph's statements, under both suites.
    @Test("the verifier over a JSON literal and a graph container: both verify, and a value in either is signed")
    func verifierOverJSONLiteralAndGraph() throws {
        let store = try JSONLDTestFiles.contextStore()
        let key = BadgeFixture.organisationKey
        let issuer = DIDKey.did(for: key.publicKey)
        let document: JSONValue = [
            "@context": [
                "https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2",
                ["claims": ["@id": "https://example.com/vocabulary#claims", "@container": "@graph"]],
            ],
            "id": "urn:example:credential", "type": ["VerifiableCredential"], "issuer": .string(issuer),
            "validFrom": "2026-01-01T00:00:00Z",
            "cnf": ["jwk": ["kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"]],
            "credentialSubject": ["id": "urn:example:subject", "claims": ["id": "urn:example:subject", "name": "Ada"]],
        ]
        let quads = try JSONLD.toRDF(document, contexts: store)
        #expect(quads.contains { $0.object.datatype == "http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON" && $0.object.value.hasPrefix(#"{"crv":"Ed25519","kty":"OKP""#) })
        #expect(quads.contains { $0.graph != nil && $0.object == .literal("Ada") })
        for suite in EdDSACryptosuite.allCases {
            let signed = try EdDSACryptosuite.createProof(
                document: document, suite: suite, privateKey: key, verificationMethod: DIDKey.verificationMethod(for: key.publicKey),
                created: "2026-01-01T00:00:00Z", contexts: store)
            func verify(_ credential: JSONValue) -> CredentialVerificationReport {
                CredentialVerifier.verify(credential: credential, statusList: nil, at: "2026-06-01T00:00:00+02:00", contexts: store)
            }
            #expect(verify(signed).isValid(), "\(suite): \(verify(signed).failures)")
            for (from, to) in [(#""crv":"Ed25519""#, #""crv":"X25519""#), (#""name":"Ada""#, #""name":"Bea""#)] {
                let tampered = try JSONParser.parse(Array(CanonicalJSON.encodeString(signed).replacingOccurrences(of: from, with: to).utf8))
                VerifierRefusalTests.expectFailed(verify(tampered), "proof", "proof_invalid", "signature")
            }
        }
    }

    @Test func theSameBlankNodeIdentifierIsOneNode() throws {
        let store = try JSONLDTestFiles.contextStore()
        let document: JSONValue = [
            "@context": ["https://www.w3.org/ns/credentials/examples/v2"],
            "@graph": [
                ["@id": "_:person", "knows": ["@id": "_:other"]],
                ["@id": "_:other", "knows": ["@id": "_:person"]],
            ],
        ]
        let quads = try JSONLD.toRDF(document, contexts: store)
        #expect(quads.count == 2)
        #expect(quads[0].subject == quads[1].object && quads[0].object == quads[1].subject)
        #expect(quads[0].subject != quads[0].object)
    }

    @Test func languageTagsAreLowercasedAndMustBeWellFormed() throws {
        let store = try JSONLDTestFiles.contextStore()
        let document: JSONValue = [
            "@context": ["https://www.w3.org/ns/credentials/examples/v2"],
            "@id": "urn:example:l", "label": ["@value": "Ciao", "@language": "IT-it"],
        ]
        let quads = try JSONLD.toRDF(document, contexts: store)
        #expect(quads.first?.object == .literal("Ciao", language: "it-it"))
        let malformed = with(document) { $0["label"] = ["@value": "Ciao", "@language": "not a tag"] }
        #expect(rdfError(malformed, store)?.message.contains("language") == true)
        let directed = with(document) { $0["label"] = ["@value": "Ciao", "@language": "it", "@direction": "ltr"] }
        #expect(rdfError(directed, store)?.message.contains("@direction") == true)
    }

    @Test func whatJSONLDWouldDropIsRefused() throws {
        let store = try JSONLDTestFiles.contextStore()
        let base = JSONLDTestFiles.openBadgeCredential
        // A relative @id has no base to resolve against.
        #expect(
            rdfError(with(base) { $0["id"] = "credential-1" }, store)?.message.contains("not an absolute IRI") == true)
        // Protected terms cannot be redefined by an embedded context.
        let redefined = with(base) {
            $0["@context"] = [
                "https://www.w3.org/ns/credentials/v2",
                "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
                ["name": "https://example.com/name"],
            ]
        }
        #expect(rdfError(redefined, store)?.message.contains("protected term redefinition") == true)
        // Strings that look like keywords but are not keywords.
        #expect(rdfError(with(base) { $0["@foo"] = "bar" }, store) != nil)
        // A free-floating value at the top of a graph.
        let floating: JSONValue = ["@context": ["https://www.w3.org/ns/credentials/examples/v2"], "@graph": ["text"]]
        #expect(rdfError(floating, store)?.message.contains("free-floating") == true)
        // A term mapped to null.
        let nulled = with(base) {
            $0["@context"] = [
                "https://www.w3.org/ns/credentials/examples/v2", ["secret": ["@id": .null]],
            ]
            $0["secret"] = "x"
        }
        #expect(rdfError(nulled, store)?.message.contains("secret") == true)
        // A null value says nothing and is allowed.
        #expect(rdfError(with(base) { $0["name"] = .null }, store) == nil)
    }

    @Test func embeddedContextsAndContainersExpand() throws {
        let store = try JSONLDTestFiles.contextStore()
        let document: JSONValue = [
            "@context": [
                "https://www.w3.org/ns/credentials/v2",
                [
                    "ex": "https://example.com/vocabulary#",
                    "labels": ["@id": "ex:label", "@container": "@language"],
                    "byID": ["@id": "ex:member", "@container": "@id"],
                    "tagged": ["@id": "ex:tag", "@container": "@index"],
                    "ordered": ["@id": "ex:ordered", "@container": "@list"],
                    "owner": ["@reverse": "ex:owns"],
                    "details": "@nest",
                    "size": ["@id": "ex:size", "@type": "ex:unit"],
                ],
            ],
            "id": "urn:example:thing",
            "labels": ["it": "Cosa", "en": ["Thing", "Object"]],
            "byID": ["urn:example:m1": ["ex:role": "chair"]],
            "tagged": ["first": "a"],
            "ordered": [],
            "owner": ["id": "urn:example:owner"],
            "details": ["size": "3"],
            "ex:direct": "compact IRI",
        ]
        let quads = try JSONLD.toRDF(document, contexts: store)
        let thing = RDFTerm.iri("urn:example:thing")
        let ex = "https://example.com/vocabulary#"
        #expect(
            quads.contains(
                RDFQuad(subject: thing, predicate: .iri(ex + "label"), object: .literal("Cosa", language: "it"))))
        #expect(
            quads.contains(
                RDFQuad(subject: thing, predicate: .iri(ex + "label"), object: .literal("Object", language: "en"))))
        #expect(quads.contains(RDFQuad(subject: thing, predicate: .iri(ex + "member"), object: .iri("urn:example:m1"))))
        #expect(
            quads.contains(
                RDFQuad(subject: .iri("urn:example:m1"), predicate: .iri(ex + "role"), object: .literal("chair"))))
        #expect(quads.contains(RDFQuad(subject: thing, predicate: .iri(ex + "tag"), object: .literal("a"))))
        #expect(
            quads.contains(
                RDFQuad(
                    subject: thing, predicate: .iri(ex + "ordered"),
                    object: .iri("http://www.w3.org/1999/02/22-rdf-syntax-ns#nil"))))
        #expect(
            quads.contains(RDFQuad(subject: .iri("urn:example:owner"), predicate: .iri(ex + "owns"), object: thing)))
        #expect(
            quads.contains(
                RDFQuad(subject: thing, predicate: .iri(ex + "size"), object: .literal("3", datatype: ex + "unit"))))
        #expect(
            quads.contains(RDFQuad(subject: thing, predicate: .iri(ex + "direct"), object: .literal("compact IRI"))))
        #expect(quads.count == 10)
    }
}

/// A document given for verification may come from anyone: what its contexts make the processor do is bounded.
@Suite struct JSONLDBoundsTests {
    /// A credential whose embedded context defines `t0` as `t1`, `t1` as `t2`, … and `t<length>` as an IRI: each
    /// definition waits on the next one.
    static func credentialWithTermChain(_ length: Int) -> JSONValue {
        var context: JSONObject = [:]
        for index in 0..<length { context["t\(index)"] = .string("t\(index + 1)") }
        context["t\(length)"] = "https://example.org/vocab#chained"
        return [
            "@context": ["https://www.w3.org/ns/credentials/v2", .object(context)],
            "id": "urn:example:chain", "type": ["VerifiableCredential"],
            "issuer": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "validFrom": "2024-05-01T10:00:00Z",
            "credentialSubject": ["id": "urn:example:subject", "t0": "chained"],
        ]
    }

    @Test func aChainOfTermDefinitionsWithinTheBoundExpands() throws {
        let store = try JSONLDTestFiles.contextStore()
        let quads = try JSONLD.toRDF(Self.credentialWithTermChain(JSONLDProcessingBounds.maximumDefinitionDepth - 1), contexts: store)
        #expect(quads.contains { $0.predicate == .iri("https://example.org/vocab#chained") && $0.object == .literal("chained") })
    }

    /// Each link was a recursion: a chain of 10,000 (a 180 KB credential) overflowed the stack (SIGSEGV) of
    /// `circuito badge verify`.
    @Test func aLongerChainIsRefusedNotAStackOverflow() throws {
        let store = try JSONLDTestFiles.contextStore()
        let credential = Self.credentialWithTermChain(10_000)
        let error = try #require(throws: LedgerError.self) { try JSONLD.toRDF(credential, contexts: store) }
        #expect(error.code == .tooLarge)
        #expect(error.message.contains("nested more than \(JSONLDProcessingBounds.maximumDefinitionDepth) term definitions deep"))
        // As `circuito badge verify` checks it: the proof's check converts the document, and says why it cannot.
        guard case .object(var members) = credential else { return }
        members["proof"] = [
            "type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "proofPurpose": "assertionMethod",
            "verificationMethod": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
            "created": "2024-05-01T10:00:00Z",
            "proofValue": .string(EdDSACryptosuite.proofValue(for: [UInt8](repeating: 1, count: 64))),
        ]
        let report = CredentialVerifier.verify(credential: .object(members), statusList: nil, at: "2024-06-01T00:00:00Z", contexts: store)
        #expect(!report.isValid(allowingUncheckedStatus: true))
        guard case .failed(let code, let message)? = report.checks.first(where: { $0.name == "proof" })?.outcome else {
            Issue.record("the proof check did not fail: \(report.checks)")
            return
        }
        #expect(code == "proof_invalid")
        #expect(message.contains("JSON-LD context overflow"), "\(message)")
    }

    /// A credential whose context defines `p` with a scoped context of `terms` terms, and whose `p` holds `uses` nodes.
    static func credentialWithScopedContext(terms: Int, uses: Int) -> JSONValue {
        var scoped: JSONObject = [:]
        for index in 0..<terms { scoped["s\(index)"] = .string("https://example.org/vocab#s\(index)") }
        return [
            "@context": ["https://www.w3.org/ns/credentials/v2", ["p": ["@id": "https://example.org/vocab#p", "@context": .object(scoped)]]],
            "id": "urn:example:scoped", "type": ["VerifiableCredential"],
            "issuer": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "validFrom": "2024-05-01T10:00:00Z",
            "credentialSubject": ["id": "urn:example:subject"],
            "p": .array((0..<uses).map { .object(["id": .string("urn:example:node-\($0)")]) }),
        ]
    }

    /// A scoped context is processed again at every use: 1,000 terms on a property used 1,000 times (a 52 KB
    /// credential) made a million term definitions, 31 s of `circuito badge verify` (hours for a 4 MB file).
    @Test func aScopedContextProcessedForEveryUseIsBounded() throws {
        let store = try JSONLDTestFiles.contextStore()
        let credential = Self.credentialWithScopedContext(terms: 1000, uses: 1000)
        let error = try #require(throws: LedgerError.self) { try JSONLD.toRDF(credential, contexts: store) }
        #expect(error.code == .tooLarge)
        #expect(error.message.contains("bound of \(JSONLDProcessingBounds.maximumTermDefinitions) term definitions"), "\(error.message)")
        // Within the bound the same shape converts.
        #expect(try JSONLD.toRDF(Self.credentialWithScopedContext(terms: 10, uses: 10), contexts: store).count > 10)
    }

    /// Each embedded context carries every term of the active context over into a new one: 3,000 nodes under a
    /// context of 10,000 terms carried thirty million.
    @Test func contextsCarryingManyTermsForEveryNodeAreBounded() throws {
        let store = try JSONLDTestFiles.contextStore()
        var large: JSONObject = [:]
        for index in 0..<10_000 { large["b\(index)"] = .string("https://example.org/vocab#b\(index)") }
        let credential: JSONValue = [
            "@context": ["https://www.w3.org/ns/credentials/v2", .object(large)],
            "id": "urn:example:carried", "type": ["VerifiableCredential"],
            "issuer": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "validFrom": "2024-05-01T10:00:00Z",
            "credentialSubject": [
                "id": "urn:example:subject",
                "b0": .array((0..<3000).map { .object(["@context": ["x\($0)": "https://example.org/vocab#x"], "id": .string("urn:example:node-\($0)")]) }),
            ],
        ]
        let error = try #require(throws: LedgerError.self) { try JSONLD.toRDF(credential, contexts: store) }
        #expect(error.code == .tooLarge)
        #expect(error.message.contains("bound of \(JSONLDProcessingBounds.maximumTermsCarriedOver) terms carried"), "\(error.message)")
    }

    /// Nothing bounded the values of a document: a status list of 29 MB (three million short strings) took 1.5 GB of
    /// `circuito badge verify` and was stopped by a 2 GB memory limit. Expansion now stops at its element bound.
    @Test func aDocumentOfVeryManyValuesIsBounded() throws {
        let store = try JSONLDTestFiles.contextStore()
        func credential(values: Int) -> JSONValue {
            [
                "@context": ["https://www.w3.org/ns/credentials/v2", ["ex": "https://example.org/"]],
                "id": "urn:example:values", "type": ["VerifiableCredential"],
                "issuer": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "validFrom": "2024-05-01T10:00:00Z",
                "credentialSubject": ["id": "urn:example:subject", "ex:v": .array((0..<values).map { .string("v\($0)") })],
            ]
        }
        let error = try #require(throws: LedgerError.self) {
            _ = try JSONLD.toRDF(credential(values: JSONLDProcessingBounds.maximumExpandedElements), contexts: store)
        }
        #expect(error.code == .tooLarge)
        #expect(error.message.contains("bound of \(JSONLDProcessingBounds.maximumExpandedElements) elements"), "\(error.message)")
        #expect(try JSONLD.toRDF(credential(values: 1000), contexts: store).count > 1000)
    }

    /// An Open Badges credential with 2,000 pieces of evidence (each an `Evidence` node with its type-scoped context)
    /// stays far inside the bounds.
    @Test func aLargeOpenBadgeCredentialIsWithinTheBounds() throws {
        let store = try JSONLDTestFiles.contextStore()
        guard case .object(var members) = JSONLDTestFiles.openBadgeCredential else { return }
        members["evidence"] = .array((0..<2000).map {
            .object(["id": .string("urn:example:evidence-\($0)"), "type": ["Evidence"], "name": "Park maintenance", "description": "2 hours"])
        })
        let expander = JSONLDExpander(processor: JSONLDContextProcessor(store: store))
        _ = try expander.expandDocument(.object(members))
        #expect(expander.processor.bounds.termDefinitions < JSONLDProcessingBounds.maximumTermDefinitions / 10)
        #expect(expander.processor.bounds.termsCarriedOver < JSONLDProcessingBounds.maximumTermsCarriedOver / 10)
        #expect(expander.processor.bounds.expandedElements < JSONLDProcessingBounds.maximumExpandedElements / 5)
    }

    /// The CPU time this thread spends on `work(8 × count)` against `work(count)`, the least of two runs of each:
    /// about 8 for work that grows linearly, up to 64 for quadratic. A ratio of runs in the same thread, so the
    /// machine's speed does not decide it: a test of growth, not of speed. For the tests below, from 2,500 maps: 7.5
    /// to 9.1 alone and 5.2 to 9.9 in full runs of the suite; 25 to 35 with the copies of each addition put back.
    static func growthOfCPUTime(fromCount count: Int, _ work: (Int) throws -> Void) rethrows -> Double {
        func threadCPUSeconds() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        func leastSeconds(_ count: Int) throws -> Double {
            var least = Double.infinity
            for _ in 0..<2 {
                let start = threadCPUSeconds()
                try work(count)
                least = min(least, threadCPUSeconds() - start)
            }
            return least
        }
        return try leastSeconds(8 * count) / max(try leastSeconds(count), 1e-6)
    }

    /// A credential whose subject holds `maps` under the `@nest` alias `n`, each made by `map` from its index.
    static func nestedCredential(_ maps: Int, _ map: (Int) -> JSONValue) -> JSONValue {
        [
            "@context": ["https://www.w3.org/ns/credentials/v2", ["ex": "https://example.org/", "n": "@nest", "r": ["@reverse": "https://example.org/r"]]],
            "id": "urn:example:nest", "type": ["VerifiableCredential"],
            "issuer": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "validFrom": "2024-05-01T10:00:00Z",
            "credentialSubject": ["id": "urn:example:subject", "n": .array((0..<maps).map(map))],
        ]
    }

    /// Every map under a `@nest` alias adds its values to the enclosing node's property, whose array of values was
    /// copied whole at each addition: 20,000 nested maps (a 330 KB credential) kept `circuito badge verify` busy for
    /// 13 s, 80,000 for minutes. Eight times the maps now take about eight times the CPU.
    @Test func valuesAddedToOnePropertyTakeLinearTime() throws {
        let store = try JSONLDTestFiles.contextStore()
        let growth = try Self.growthOfCPUTime(fromCount: 2_500) { count in
            let quads = try JSONLD.toRDF(Self.nestedCredential(count) { .object(["ex:p": .integer(Int64($0))]) }, contexts: store)
            #expect(quads.filter { $0.predicate == .iri("https://example.org/p") }.count == count)
        }
        #expect(growth < 16, "8 × the maps took \(growth) × the CPU time")
    }

    /// The same for the types, included nodes and reverse properties that maps under `@nest` add to their node: each
    /// addition copied all those before it (40,000 maps: 16 s of CPU for the types, 22 for the reverse property, 35
    /// for the included nodes; about 2 s each once they grow in place).
    @Test(arguments: ["@type", "@included", "r"])
    func typesIncludedNodesAndReversePropertiesAddedUnderNestTakeLinearTime(_ key: String) throws {
        let store = try JSONLDTestFiles.contextStore()
        let growth = try Self.growthOfCPUTime(fromCount: 2_500) { count in
            let credential = Self.nestedCredential(count) { index in
                switch key {
                case "@type": return ["@type": .string("ex:T\(index)")]
                case "@included": return ["@included": ["id": .string("urn:example:included-\(index)"), "ex:p": 1]]
                default: return [key: ["id": .string("urn:example:reverse-\(index)")]]
                }
            }
            let quads = try JSONLD.toRDF(credential, contexts: store)
            #expect(quads.count > count)
        }
        #expect(growth < 16, "8 × the maps took \(growth) × the CPU time")
    }

    @Test func theBundledContextsNestFewDefinitions() throws {
        let store = try JSONLDTestFiles.contextStore()
        let expander = JSONLDExpander(processor: JSONLDContextProcessor(store: store))
        _ = try expander.expandDocument(JSONLDTestFiles.openBadgeCredential)
        #expect(expander.processor.bounds.deepestDefinitionDepth <= 8)
        #expect(expander.processor.bounds.definitionDepth == 0)
    }
}
