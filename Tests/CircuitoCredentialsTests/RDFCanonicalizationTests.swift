import CircuitoCore
import Foundation
import Testing

@testable import CircuitoCredentials
import CircuitoTestSupport

// MARK: - W3C RDFC-1.0 test suite

/// One entry of the W3C rdf-canon manifest (shared/vectors/rdf-canon/manifest.jsonld).
struct RDFCanonicalizationSuiteEntry: Sendable, CustomTestStringConvertible {
    enum Kind: Sendable {
        case evaluation, map, negativeEvaluation
    }

    let identifier: String
    let name: String
    let kind: Kind
    let action: String
    let result: String?
    let hashAlgorithm: RDFCanonicalizer.HashAlgorithm

    var testDescription: String { "\(identifier.dropFirst()) \(name)" }
}

enum RDFCanonicalizationSuite {
    /// The shared vectors sit next to the repository: <repository>/../shared/vectors/rdf-canon.
    static let folder: URL = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.lastPathComponent != "Tests" && directory.path != "/" {
            directory = directory.deletingLastPathComponent()
        }
        return directory.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("shared/vectors/rdf-canon", isDirectory: true)
    }()

    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(relativePath), encoding: .utf8)
    }

    static func loadEntries() throws -> [RDFCanonicalizationSuiteEntry] {
        let manifest = try JSONParser.parse(try text("manifest.jsonld"))
        guard let entries = manifest["entries"]?.arrayValue else {
            throw LedgerError(.invalidJSON, "manifest has no entries")
        }
        return try entries.map { entry in
            guard let identifier = entry["id"]?.stringValue, let type = entry["type"]?.stringValue,
                let name = entry["name"]?.stringValue, let action = entry["action"]?.stringValue
            else {
                throw LedgerError(.invalidJSON, "manifest entry without id, type, name or action: \(entry)")
            }
            let kind: RDFCanonicalizationSuiteEntry.Kind
            switch type {
            case "rdfc:RDFC10EvalTest": kind = .evaluation
            case "rdfc:RDFC10MapTest": kind = .map
            case "rdfc:RDFC10NegativeEvalTest": kind = .negativeEvaluation
            default: throw LedgerError(.invalidJSON, "unknown test type \(type) in \(identifier)")
            }
            let hashAlgorithm: RDFCanonicalizer.HashAlgorithm
            switch entry["hashAlgorithm"]?.stringValue {
            case nil, "SHA256": hashAlgorithm = .sha256
            case "SHA384": hashAlgorithm = .sha384
            case let other?: throw LedgerError(.invalidJSON, "unknown hash algorithm \(other) in \(identifier)")
            }
            return RDFCanonicalizationSuiteEntry(
                identifier: identifier, name: name, kind: kind, action: action,
                result: entry["result"]?.stringValue, hashAlgorithm: hashAlgorithm)
        }
    }

    /// Empty when the manifest cannot be read; `manifestLoads` then fails and says why.
    static let entries: [RDFCanonicalizationSuiteEntry] = (try? loadEntries()) ?? []
}

@Suite("RDFC-1.0 W3C test suite")
struct RDFCanonicalizationSuiteTests {
    @Test func manifestLoads() throws {
        let entries = try RDFCanonicalizationSuite.loadEntries()
        #expect(entries.count == 86)
        #expect(entries.contains { $0.kind == .negativeEvaluation })
        #expect(entries.contains { $0.hashAlgorithm == .sha384 })
    }

    @Test(arguments: RDFCanonicalizationSuite.entries)
    func suiteEntry(_ entry: RDFCanonicalizationSuiteEntry) throws {
        let quads = try NQuads.parse(try RDFCanonicalizationSuite.text(entry.action))
        switch entry.kind {
        case .evaluation:
            let expected = try RDFCanonicalizationSuite.text(try #require(entry.result))
            let result = try RDFCanonicalizer.canonicalize(quads, hashAlgorithm: entry.hashAlgorithm)
            #expect(result.canonicalNQuads == expected)
            // Within the bound a credential's verification gives the canonicalization.
            #expect(
                try RDFCanonicalizer.canonicalize(
                    quads, hashAlgorithm: entry.hashAlgorithm, maximumWork: EdDSACryptosuite.maximumCanonicalizationWork
                ).canonicalNQuads == expected)
            // The canonical output is itself canonical N-Quads: parsing and serializing it changes nothing.
            #expect(NQuads.serialize(try NQuads.parse(expected)) == expected)
        case .map:
            let expectedJSON = try JSONParser.parse(try RDFCanonicalizationSuite.text(try #require(entry.result)))
            let expected = try #require(expectedJSON.objectValue).dictionary.mapValues { $0.stringValue }
            let result = try RDFCanonicalizer.canonicalize(quads, hashAlgorithm: entry.hashAlgorithm)
            #expect(result.issuedIdentifiers.mapValues { Optional($0) } == expected)
        case .negativeEvaluation:
            // Stopped by the work bound (not the recursion bound, which also says too_large), having done no more
            // work than the bound allows: counted where it is done, not where it is charged, and independent of the
            // machine's speed, unlike the time it took.
            var workDone = RDFCanonicalizer.WorkDone()
            let maximumWork = 1_000_000
            let error = #expect(throws: LedgerError.self) {
                try RDFCanonicalizer.canonicalize(quads, hashAlgorithm: entry.hashAlgorithm, maximumWork: maximumWork, workDone: &workDone)
            }
            #expect(error?.code == .tooLarge)
            #expect(error?.message.contains("exceeds its work bound") == true, "\(error?.message ?? "")")
            #expect(workDone.units <= maximumWork, "\(workDone)")
        }
    }

    /// Shuffling the quads and renaming the blank nodes must not change the canonical form.
    @Test(arguments: ["test020", "test044", "test046", "test053", "test060", "test065", "test071", "test073"])
    func independentOfOrderAndLabels(_ test: String) throws {
        let input = try NQuads.parse(try RDFCanonicalizationSuite.text("rdfc10/\(test)-in.nq"))
        let expected = try RDFCanonicalizationSuite.text("rdfc10/\(test)-rdfc10.nq")
        var generator = SplitMix64(seed: 0x5eed)
        for round in 0..<4 {
            let renamed = input.map { quad in
                RDFQuad(
                    subject: relabelled(quad.subject, round: round), predicate: quad.predicate,
                    object: relabelled(quad.object, round: round), graph: quad.graph.map { relabelled($0, round: round) })
            }
            let shuffled = renamed.shuffled(using: &generator)
            let result = try RDFCanonicalizer.canonicalize(shuffled)
            #expect(result.canonicalNQuads == expected, "round \(round)")
            // Every input label maps to a canonical one, each canonical label used once.
            #expect(Set(result.issuedIdentifiers.values).count == result.issuedIdentifiers.count)
        }
    }

    private func relabelled(_ term: RDFTerm, round: Int) -> RDFTerm {
        guard term.kind == .blankNode else { return term }
        return .blankNode("r\(round)x\(String(term.value.reversed()))")
    }

    /// An RDF list of identical values: its middle nodes look alike, and Hash N-Degree Quads recurses along it.
    private func identicalList(_ count: Int) throws -> [RDFQuad] {
        let rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
        var text = "<http://example.org/s> <http://example.org/p> _:l0 .\n"
        for index in 0..<count {
            let rest = index + 1 < count ? "_:l\(index + 1)" : "<\(rdf)nil>"
            text += "_:l\(index) <\(rdf)first> \"1\" .\n_:l\(index) <\(rdf)rest> \(rest) .\n"
        }
        return try NQuads.parse(text)
    }

    @Test func shortChainsCanonicalizeAndLongOnesAreRefused() throws {
        let result = try RDFCanonicalizer.canonicalize(try identicalList(20))
        #expect(result.issuedIdentifiers.count == 20)
        // The recursion bound (64 levels) protects the stack whatever the work budget.
        let error = #expect(throws: LedgerError.self) {
            try RDFCanonicalizer.canonicalize(try identicalList(500), maximumWork: .max)
        }
        #expect(error?.code == .tooLarge)
    }

    @Test func cliquesAreRefusedBeforeAnyPermutationRuns() throws {
        // A 12-clique would need 11! permutations per node; the up-front estimate refuses it at once.
        var text = ""
        for subject in 0..<12 {
            for object in 0..<12 where subject != object {
                text += "_:n\(subject) <http://example.org/knows> _:n\(object) .\n"
            }
        }
        let quads = try NQuads.parse(text)
        var workDone = RDFCanonicalizer.WorkDone()
        let error = #expect(throws: LedgerError.self) { try RDFCanonicalizer.canonicalize(quads, workDone: &workDone) }
        #expect(error?.code == .tooLarge)
        #expect(error?.message.contains("exceeds its work bound") == true, "\(error?.message ?? "")")
        // Refused by the estimate, before Hash N-Degree Quads first ran: nothing read, no permutation tried.
        #expect(workDone.hashNDegreeQuadsCalls == 0 && workDone.permutationsTried == 0, "\(workDone)")
        // A huge budget neither overflows nor changes the outcome for a small clique.
        let small = try NQuads.parse(
            "_:a <http://example.org/knows> _:b .\n_:b <http://example.org/knows> _:c .\n_:c <http://example.org/knows> _:a .\n")
        var smallWorkDone = RDFCanonicalizer.WorkDone()
        #expect(try RDFCanonicalizer.canonicalize(small, maximumWork: .max, workDone: &smallWorkDone).issuedIdentifiers.count == 3)
        // Where they run, the calls and permutations are counted.
        #expect(smallWorkDone.hashNDegreeQuadsCalls > 0 && smallWorkDone.permutationsTried > 0, "\(smallWorkDone)")
    }

    @Test func duplicateQuadsCountOnce() throws {
        let quads = try NQuads.parse("_:a <http://example.org/p> \"x\" .\n_:a <http://example.org/p> \"x\" .\n")
        let result = try RDFCanonicalizer.canonicalize(quads)
        #expect(result.canonicalNQuads == "_:c14n0 <http://example.org/p> \"x\" .\n")
        #expect(result.issuedIdentifiers == ["a": "c14n0"])
    }

    @Test func emptyDataset() throws {
        let result = try RDFCanonicalizer.canonicalize([])
        #expect(result.canonicalNQuads == "")
        #expect(result.issuedIdentifiers.isEmpty)
    }

    @Test func refusesQuadsThatAreNotRDF() {
        let predicate = RDFTerm.iri("http://example.org/p")
        let badQuads = [
            RDFQuad(subject: .literal("s"), predicate: predicate, object: .literal("o")),
            RDFQuad(subject: .blankNode("s"), predicate: .blankNode("p"), object: .literal("o")),
            RDFQuad(subject: .blankNode("s"), predicate: predicate, object: .literal("o"), graph: .literal("g")),
        ]
        for quad in badQuads {
            let error = #expect(throws: LedgerError.self) { try RDFCanonicalizer.canonicalize([quad]) }
            #expect(error?.code == .invalidBody)
        }
    }

    /// Six look-alike blank nodes of 1,000 literals each, all related to two look-alike nodes: every permutation of
    /// the six (720) for each of the two reads the six nodes' quads again, 8.6 million quads read (5 s in a debug
    /// build, minutes for a credential of megabytes) within a work bound that counted only calls and permutations.
    static func hubs(literals: Int) -> [RDFQuad] {
        var quads: [RDFQuad] = []
        for hub in 0..<6 {
            for node in ["v", "w"] {
                quads.append(RDFQuad(subject: .blankNode(node), predicate: .iri("https://example.org/p"), object: .blankNode("h\(hub)")))
            }
            for index in 0..<literals {
                quads.append(RDFQuad(subject: .blankNode("h\(hub)"), predicate: .iri("https://example.org/q"), object: .literal("x\(index)")))
            }
        }
        return quads
    }

    @Test func theQuadsReadCountTowardsTheWorkBound() throws {
        let error = #expect(throws: LedgerError.self) {
            try RDFCanonicalizer.canonicalize(Self.hubs(literals: 1000), maximumWork: EdDSACryptosuite.maximumCanonicalizationWork)
        }
        #expect(error?.code == .tooLarge)
        // The same shape with a few literals is within the bound.
        #expect(try RDFCanonicalizer.canonicalize(Self.hubs(literals: 2), maximumWork: EdDSACryptosuite.maximumCanonicalizationWork).issuedIdentifiers.count == 8)
    }

    @Test func tinyWorkBoundStopsSymmetricGraphs() throws {
        // Two indistinguishable blank nodes need Hash N-Degree Quads; a bound of 1 cannot cover it.
        let quads = try NQuads.parse("_:a <http://example.org/p> _:b .\n_:b <http://example.org/p> _:a .\n")
        let error = #expect(throws: LedgerError.self) { try RDFCanonicalizer.canonicalize(quads, maximumWork: 1) }
        #expect(error?.code == .tooLarge)
        let result = try RDFCanonicalizer.canonicalize(quads)
        #expect(result.canonicalNQuads == "_:c14n0 <http://example.org/p> _:c14n1 .\n_:c14n1 <http://example.org/p> _:c14n0 .\n")
    }
}


// MARK: - N-Quads

@Suite("N-Quads parsing and canonical serialization")
struct NQuadsTests {
    private let subject = RDFTerm.iri("http://example.org/s")
    private let predicate = RDFTerm.iri("http://example.org/p")

    @Test func parsesTermsAndGraphs() throws {
        let text = """
            <http://example.org/s> <http://example.org/p> <http://example.org/o> .
            _:b0 <http://example.org/p> "plain" <http://example.org/g> .
            <http://example.org/s> <http://example.org/p> "chat"@fr-BE _:graph .
            <http://example.org/s> <http://example.org/p> "1"^^<http://www.w3.org/2001/XMLSchema#integer> .

            """
        let quads = try NQuads.parse(text)
        #expect(quads.count == 4)
        #expect(quads[0] == RDFQuad(subject: subject, predicate: predicate, object: .iri("http://example.org/o")))
        #expect(quads[1].subject == .blankNode("b0"))
        #expect(quads[1].object == .literal("plain"))
        #expect(quads[1].graph == .iri("http://example.org/g"))
        #expect(quads[2].object.language == "fr-BE")
        #expect(quads[2].object.datatype == nil)
        #expect(quads[2].graph == .blankNode("graph"))
        #expect(quads[3].object == .literal("1", datatype: "http://www.w3.org/2001/XMLSchema#integer"))
        #expect(NQuads.serialize(quads) == text)
    }

    @Test func acceptsNonCanonicalLayout() throws {
        // Comments, tabs, CR LF and lone CR line ends, no space before ".", a blank node label followed by ".".
        let text = "# a comment\r\n\t<http://example.org/s><http://example.org/p>_:o.# trailing\r_:a.b <http://example.org/p> _:c.\n\n"
        let quads = try NQuads.parse(text)
        #expect(quads.count == 2)
        #expect(quads[0].object == .blankNode("o"))
        #expect(quads[1].subject == .blankNode("a.b"))
        #expect(quads[1].object == .blankNode("c"))
    }

    @Test func explicitStringDatatypeIsTheSameLiteral() throws {
        let quads = try NQuads.parse(
            "<http://example.org/s> <http://example.org/p> \"x\"^^<http://www.w3.org/2001/XMLSchema#string> .\n")
        #expect(quads[0].object == .literal("x"))
        #expect(NQuads.serialize(quads[0]) == "<http://example.org/s> <http://example.org/p> \"x\" .\n")
    }

    @Test func unescapesAndEscapesLiterals() throws {
        let quads = try NQuads.parse(
            #"<http://example.org/s> <http://example.org/p> "\t\b\n\r\f\"\'\\ \u00e9\U0001F600\u0000\u007f" ."#)
        #expect(quads[0].object.value == "\t\u{08}\n\r\u{0C}\"'\\ é😀\u{00}\u{7F}")
        #expect(
            NQuads.serialize(quads[0])
                == #"<http://example.org/s> <http://example.org/p> "\t\b\n\r\f\"'\\ é😀\u0000\u007F" ."# + "\n")
    }

    @Test func serializesEveryControlCharacterCanonically() {
        let value = String(String.UnicodeScalarView((0...0x1F).compactMap(Unicode.Scalar.init) + ["\u{7F}"]))
        let line = NQuads.serialize(RDFQuad(subject: subject, predicate: predicate, object: .literal(value)))
        #expect(
            line == #"<http://example.org/s> <http://example.org/p> "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000B\f\r\u000E\u000F\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F\u007F" ."#
                + "\n")
    }

    /// Each escape was appended to the literal's scalars with `append(contentsOf:)`, which copied the whole text so
    /// far: a credential whose text held 500,000 line breaks (a 1 MB file) took 5 s of CPU in a release build of
    /// `circuito badge verify`, 2 MB four times that, and a 30 MB baked PNG did not finish in 5 minutes.
    @Test func escapingTakesLinearTime() {
        let growth = JSONLDBoundsTests.growthOfCPUTime(fromCount: 20_000) { count in
            let escaped = NQuads.escapedLiteral(String(repeating: "a\n\"", count: count))
            #expect(escaped.utf8.count == 5 * count)
        }
        #expect(growth < 16, "8 × the escapes took \(growth) × the CPU time")
        #expect(NQuads.escapedLiteral("é\n\u{01}\"\\😀") == #"é\n\u0001\"\\😀"#)
    }

    @Test func unescapesIRIs() throws {
        let quads = try NQuads.parse(#"<http://example.org/\u00e9> <http://example.org/p> <urn:x:\U0001F600> ."#)
        #expect(quads[0].subject == .iri("http://example.org/é"))
        #expect(quads[0].object == .iri("urn:x:😀"))
    }

    @Test func termsCompareByCodePoints() {
        // Swift's String equality would merge these canonically equivalent spellings; RDF must not.
        #expect(RDFTerm.iri("urn:x:\u{E9}") != RDFTerm.iri("urn:x:e\u{301}"))
        #expect(RDFTerm.literal("x", datatype: "http://www.w3.org/2001/XMLSchema#string") == .literal("x"))
        #expect(Set([RDFTerm.literal("\u{E9}"), .literal("e\u{301}")]).count == 2)
    }

    @Test(arguments: [
        ("<http://example.org/s> <http://example.org/p> <http://example.org/o>", "graph name or \".\""),
        ("<relative> <http://example.org/p> <http://example.org/o> .", "not absolute"),
        ("\"literal\" <http://example.org/p> <http://example.org/o> .", "subject"),
        ("<http://example.org/s> _:p <http://example.org/o> .", "predicate"),
        ("<http://example.org/s> <http://example.org/p> \"open .", "line end inside a string literal"),
        ("<http://example.org/s> <http://example.org/p> <http://example.org/o", "not allowed in an IRI"),
        ("<http://example.org/s> <http://example.org/p> \"\\q\" .", "escape"),
        ("<http://example.org/s> <http://example.org/p> \"x\"@ .", "language tag"),
        ("<http://example.org/s> <http://example.org/p> \"x\"@en- .", "language subtag"),
        ("<http://example.org/s> <http://example.org/p> \"x\"^<http://example.org/d> .", "^^"),
        ("<http://example.org/s> <http://example.org/p> \"x\"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#langString> .", "langString"),
        ("<http://example.org/s> <http://example.org/p> \"x\" \"g\" .", "graph name"),
        ("<http://example.org/s> <http://example.org/p> <http://example.org/o> . <http://example.org/s>", "end of the line"),
        ("<http://example.org/a b> <http://example.org/p> <http://example.org/o> .", "not allowed in an IRI"),
        ("<http://example.org/\\u0020> <http://example.org/p> <http://example.org/o> .", "not allowed in an IRI"),
        ("<http://example.org/s> <http://example.org/p> \"\\uD800\" .", "not a Unicode scalar"),
        ("<http://example.org/s> <http://example.org/p> \"\\u12\" .", "hexadecimal"),
        ("_:-a <http://example.org/p> <http://example.org/o> .", "blank node label"),
        ("_a <http://example.org/p> <http://example.org/o> .", "_:"),
    ])
    func refusesInvalidInput(_ statement: String, _ reason: String) {
        let text = "<http://example.org/s> <http://example.org/p> <http://example.org/o> .\n" + statement + "\n"
        let error = #expect(throws: LedgerError.self) { try NQuads.parse(text) }
        #expect(error?.code == .invalidBody)
        #expect(error?.message.contains("line 2") == true, "\(String(describing: error))")
        #expect(error?.message.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func refusesLineEndInsideLiteral() {
        let error = #expect(throws: LedgerError.self) {
            try NQuads.parse("<http://example.org/s> <http://example.org/p> \"a\nb\" .\n")
        }
        #expect(error?.message.contains("line 1") == true)
    }
}

// MARK: - SHA-384

@Suite("SHA-384")
struct SHA384Tests {
    @Test(arguments: [
        ("abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
        ("", "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039"
        ),
    ])
    func fipsExamples(_ message: String, _ digest: String) {
        #expect(SHA384.hash(Array(message.utf8)).hexString == digest)
    }

    /// Lengths around the padding boundaries (111/112 bytes: the length field fits or spills into a second block).
    @Test(arguments: [
        (111, "341388a9dc2275074e90cf394323761919761c805fd9e370977c9966a0e8c81a52135f02577670b0071638a4a26dbc31"),
        (112, "619cc5d06138526d70659eccf602d197e63e1050e22039a7feb40a30a5b2b08fb03729e291df12f8c576e6f1cd8af22a"),
        (127, "f8234ab81f5f9641c656680825a9bbb3c2616bcc80b65d5e479a4d96742e1b8742330c9e8256ef5f03caa932487044ca"),
        (128, "e8480e9c4dd90f88104a79cbaccec48edbd798a142b4f241d726dc252f1502350e824c7d18dadd59d7d716919fb8f9bf"),
        (239, "fc75ded15c6080ff96ac03391fc1302ca180128e4b6a4a2f17782f2ec016fc3f79b48b5fed3305fb7fdff9fd29434525"),
        (240, "4c4bc5dae174dd68cb5a62e066e01e339e4980e4a35531b732dcf88e9c579e66f7c0d044779e2eda8a597684ca7cffd6"),
    ])
    func paddingBoundaries(_ length: Int, _ digest: String) {
        let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        #expect(SHA384.hash(message).hexString == digest)
    }
}
