import CircuitoCore
import Testing

@testable import CircuitoCredentials

/// A credential handed to a verifier may embed any context: each refusal of context processing (JSON-LD 1.1
/// Processing Algorithms 4.1 and 4.2) and of expansion (5.1) is driven here with a crafted document. A refusal is
/// `invalid_body` with a message "JSON-LD <the W3C error code>: …" (the proof check reports it as `proof_invalid`).
@Suite("JSON-LD: crafted contexts and documents are refused by name")
struct JSONLDRefusalTests {
    /// Context documents made for these tests, served by URL as the bundled ones are.
    static let store: JSONLDContextStore = {
        var documents: JSONObject = [
            // A context that includes itself.
            "https://contexts.example/self": ["@context": "https://contexts.example/self"],
            "https://contexts.example/terms": [
                "@context": [
                    "imported": "https://example.org/imported", "shared": "https://example.org/from-import",
                ]
            ],
            "https://contexts.example/array": ["@context": [["ex": "https://example.org/"]]],
            "https://contexts.example/imports": ["@context": ["@import": "https://contexts.example/terms"]],
            "https://contexts.example/no-context": ["ex": "https://example.org/"],
            "https://contexts.example/base": ["@context": ["@base": "https://elsewhere.example/"]],
            "https://contexts.example/propagate": ["@context": ["@propagate": "yes"]],
            // A term whose scoped context is the document that defines it.
            "https://contexts.example/recursive": [
                "@context": ["r": ["@id": "https://example.org/r", "@context": "https://contexts.example/recursive"]]
            ],
        ]
        // chain/0 includes chain/1, …, chain/39 defines a term.
        for index in 0..<39 {
            documents["https://contexts.example/chain/\(index)"] = [
                "@context": .string("https://contexts.example/chain/\(index + 1)")
            ]
        }
        documents["https://contexts.example/chain/39"] = ["@context": ["chained": "https://example.org/chained"]]
        return JSONLDContextStore(documents: documents)
    }()

    /// A node with `context`, an absolute id and one property given by its IRI; `members` are added or replace.
    static func node(_ context: JSONValue, _ members: JSONObject = [:]) -> JSONValue {
        var document: JSONObject = ["@context": context, "@id": "urn:example:node", "https://example.org/p": "v"]
        document.merge(members) { $1 }
        return .object(document)
    }

    /// The statements of `document`, recording an issue when it is refused.
    @discardableResult
    static func quads(_ document: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) -> [RDFQuad] {
        do throws(LedgerError) {
            return try JSONLD.toRDF(document, contexts: store)
        } catch {
            Issue.record("refused: \(error)", sourceLocation: sourceLocation)
            return []
        }
    }

    /// Expects `document` refused as `invalid_body` with "JSON-LD <w3cCode>" and `detail` in its message.
    static func expectRefused(
        _ document: JSONValue, _ w3cCode: String, _ detail: String = "", sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do throws(LedgerError) {
            let quads = try JSONLD.toRDF(document, contexts: store)
            Issue.record("accepted (\(quads.count) statements), expected \(w3cCode)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == .invalidBody, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.hasPrefix("JSON-LD \(w3cCode)"), "\(error.message)", sourceLocation: sourceLocation)
            if !detail.isEmpty {
                #expect(error.message.contains(detail), "\(error.message)", sourceLocation: sourceLocation)
            }
        }
    }

    static func has(_ quads: [RDFQuad], _ subject: String, _ predicate: String, _ object: RDFTerm) -> Bool {
        quads.contains(RDFQuad(subject: .iri(subject), predicate: .iri(predicate), object: object))
    }

    // MARK: Context entries

    @Test("@version other than the number 1.1, @propagate, @protected, @language and @direction of the wrong kind")
    func contextEntryValues() {
        Self.expectRefused(Self.node(["@version": .number(1.0)]), "invalid @version value")
        Self.expectRefused(Self.node(["@version": "1.1"]), "invalid @version value")
        Self.quads(Self.node(["@version": .number(1.1)]))
        Self.expectRefused(Self.node(["@propagate": "yes"]), "invalid @propagate value")
        Self.quads(Self.node(["@propagate": false]))
        Self.expectRefused(Self.node(["@protected": "yes"]), "invalid @protected value")
        Self.expectRefused(Self.node(["@language": 5]), "invalid default language")
        Self.expectRefused(Self.node(["@direction": "up"]), "invalid base direction")
        Self.quads(Self.node(["@direction": .null, "@language": .null]))
        // A default language applies to plain strings, lower-cased.
        let quads = Self.quads(Self.node(["@language": "IT"]))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/p", .literal("v", language: "it")))
    }

    /// JSON-LD 1.1 (4.1.2 step 5.11) checks @propagate in every context definition, also one inside an array:
    /// there it was ignored, so a malformed entry passed. (A context document's own map was checked already.)
    @Test("@propagate that is not a boolean is refused inside an array of contexts too")
    func propagateInsideAnArray() {
        Self.expectRefused(Self.node([["@propagate": "yes"]]), "invalid @propagate value")
        Self.expectRefused(Self.node(["https://contexts.example/terms", ["@propagate": 1]]), "invalid @propagate value")
        Self.expectRefused(Self.node("https://contexts.example/propagate"), "invalid @propagate value")
        Self.quads(Self.node([["@propagate": true]]))
    }

    @Test("a local context that is not null, a string, a map or an array of those is refused")
    func invalidLocalContexts() {
        Self.expectRefused(Self.node(5), "invalid local context")
        Self.expectRefused(Self.node([true]), "invalid local context")
        Self.expectRefused(Self.node([[["ex": "https://example.org/"]]]), "invalid local context")
    }

    @Test("a null context may not discard protected terms; without them it resets the context")
    func nullification() {
        let protected: JSONValue = ["@protected": true, "q": "https://example.org/q"]
        Self.expectRefused(Self.node([protected, .null]), "invalid context nullification")
        Self.expectRefused(Self.node([["q": ["@id": "https://example.org/q", "@protected": true]], .null]), "invalid context nullification")
        // Without protected terms the null context drops "q", which is then undefined.
        Self.quads(Self.node([["q": "https://example.org/q"], .null]))
        Self.expectRefused(Self.node([["q": "https://example.org/q"], .null], ["q": "x"]), "undefined term", "\"q\"")
    }

    @Test("@base: a relative base without one to resolve against, or not a string, is refused; remote contexts' @base is ignored")
    func base() {
        Self.expectRefused(Self.node(["@base": "things/"], ["@id": "x"]), "invalid base IRI")
        Self.expectRefused(Self.node(["@base": 5]), "invalid base IRI")
        var quads = Self.quads(Self.node([["@base": "https://example.org/a/"], ["@base": "b/"]], ["@id": "c"]))
        #expect(Self.has(quads, "https://example.org/a/b/c", "https://example.org/p", .literal("v")))
        quads = Self.quads(Self.node([["@base": "https://example.org/a/"], ["@base": .null], ["@base": "https://example.org/z/"]], ["@id": "c"]))
        #expect(Self.has(quads, "https://example.org/z/c", "https://example.org/p", .literal("v")))
        // The @base of a context document does not apply: the id stays relative and is refused.
        Self.expectRefused(Self.node("https://contexts.example/base", ["@id": "c"]), "", "not an absolute IRI")
    }

    @Test("@vocab: not a string, of keyword form, or reset to null")
    func vocabulary() {
        Self.expectRefused(Self.node(["@vocab": 5]), "invalid vocab mapping")
        Self.expectRefused(Self.node(["@vocab": "@foo"]), "invalid keyword")
        let quads = Self.quads(Self.node(["@vocab": "https://example.org/"], ["q": "w"]))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/q", .literal("w")))
        Self.expectRefused(Self.node([["@vocab": "https://example.org/"], ["@vocab": .null]], ["q": "w"]), "undefined term")
    }

    // MARK: Remote contexts and @import

    @Test("remote contexts: relative, unknown, without @context, including themselves, or nested too deep")
    func remoteContexts() {
        Self.expectRefused(Self.node("context.jsonld"), "loading document failed", "is not an absolute IRI")
        let unknown = Self.node("https://contexts.example/unknown")
        do throws(LedgerError) {
            _ = try JSONLD.toRDF(unknown, contexts: Self.store)
            Issue.record("an unknown context was accepted")
        } catch {
            #expect(error.code == .invalidBody && error.message.contains("is not bundled; contexts are never fetched"))
        }
        Self.expectRefused(Self.node("https://contexts.example/no-context"), "invalid remote context", "no top-level @context")
        Self.expectRefused(Self.node("https://contexts.example/self"), "context overflow", "more than 32 nested context documents")
        // 32 documents, each including the next, are within the bound; 33 are not.
        let quads = Self.quads(Self.node("https://contexts.example/chain/8", ["chained": "x"]))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/chained", .literal("x")))
        Self.expectRefused(Self.node("https://contexts.example/chain/7", ["chained": "x"]), "context overflow")
    }

    @Test("@import: not a string, relative, not a map, importing again; the importing context's terms win")
    func imports() {
        Self.expectRefused(Self.node(["@import": 5]), "invalid @import value", "must be a string")
        Self.expectRefused(Self.node(["@import": "terms.jsonld"]), "invalid @import value", "not an absolute IRI")
        Self.expectRefused(Self.node(["@import": "https://contexts.example/array"]), "invalid remote context", "is not a map")
        Self.expectRefused(Self.node(["@import": "https://contexts.example/imports"]), "invalid context entry", "its own @import")
        let quads = Self.quads(
            Self.node(
                ["@import": "https://contexts.example/terms", "shared": "https://example.org/own"],
                ["imported": "a", "shared": "b"]))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/imported", .literal("a")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/own", .literal("b")))
        #expect(!quads.contains { $0.predicate == .iri("https://example.org/from-import") })
    }

    // MARK: Term definitions

    @Test("terms: cycles, the empty term, keywords and keyword forms, definitions of the wrong kind")
    func termNames() {
        Self.expectRefused(Self.node(["a": ["@id": "b"], "b": ["@id": "a"]]), "cyclic IRI mapping", "\"a\"")
        Self.expectRefused(Self.node(["a": "a:x"]), "cyclic IRI mapping")
        Self.expectRefused(Self.node(["": "https://example.org/empty"]), "invalid term definition", "cannot be empty")
        Self.expectRefused(Self.node(["@id": "https://example.org/id"]), "keyword redefinition", "@id cannot be redefined")
        Self.expectRefused(Self.node(["@type": ["@id": "https://example.org/type"]]), "keyword redefinition")
        Self.expectRefused(Self.node(["@type": ["@container": "@list"]]), "keyword redefinition")
        Self.expectRefused(Self.node(["@type": [:]]), "keyword redefinition")
        Self.quads(Self.node(["@type": ["@container": "@set", "@protected": true]]))
        Self.expectRefused(Self.node(["@foo": "https://example.org/foo"]), "invalid term definition", "form of a keyword")
        Self.expectRefused(Self.node(["t": 5]), "invalid term definition", "must be null, a string or a map")
        Self.expectRefused(
            Self.node(["t": ["@id": "https://example.org/t", "@protected": "yes"]]), "invalid @protected value")
        Self.expectRefused(
            Self.node(["t": ["@id": "https://example.org/t", "@foo": 1]]), "invalid term definition",
            "unknown entry @foo")
        Self.expectRefused(
            Self.node(["t": ["@id": "https://example.org/t", "comment": "x"]]), "invalid term definition",
            "unknown entry comment")
    }

    @Test("term @id: keyword form, relative, @context, not a string; IRI-like terms must map to themselves")
    func termIdentifiers() {
        Self.expectRefused(Self.node(["t": ["@id": "@foo"]]), "invalid IRI mapping", "form of a keyword")
        Self.expectRefused(Self.node(["t": ["@id": "relative"]]), "invalid IRI mapping", "does not expand to an IRI")
        Self.expectRefused(Self.node(["t": ["@id": "@context"]]), "invalid keyword alias")
        Self.expectRefused(Self.node(["t": ["@id": 5]]), "invalid IRI mapping", "must be a string or null")
        Self.expectRefused(
            Self.node(["https://example.org/a": ["@id": "https://example.org/b"]]), "invalid IRI mapping",
            "looks like an IRI but maps to a different one")
        Self.expectRefused(
            Self.node(["ex": "https://example.org/", "ex:a": ["@id": "https://other.example/a"]]), "invalid IRI mapping",
            "looks like an IRI")
        Self.expectRefused(Self.node(["ex": .null, "ex:a": ["@type": "@id"]]), "invalid IRI mapping", "mapped to null")
        Self.expectRefused(Self.node(["a/b": ["@type": "@id"]]), "invalid IRI mapping", "relative IRI reference")
        Self.expectRefused(Self.node(["t": ["@type": "@id"]]), "invalid IRI mapping", "no @vocab")
        // An IRI-like term mapped to itself, a compact term through its prefix, a term through @vocab.
        let quads = Self.quads(
            Self.node(
                [
                    "https://example.org/a": ["@id": "https://example.org/a", "@type": "@id"],
                    "ex": "https://example.org/", "ex:b": ["@type": "@id"], "@vocab": "https://example.org/v/",
                    "c": ["@type": "@id"],
                ],
                ["https://example.org/a": "urn:example:a", "ex:b": "urn:example:b", "c": "urn:example:c"]))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/a", .iri("urn:example:a")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/b", .iri("urn:example:b")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/v/c", .iri("urn:example:c")))
    }

    @Test("term @type and @reverse of the wrong kind or not expanding to an IRI")
    func termTypesAndReverseProperties() {
        let id = "https://example.org/t"
        Self.expectRefused(Self.node(["t": ["@id": .string(id), "@type": 5]]), "invalid type mapping", "must be a string")
        Self.expectRefused(Self.node(["t": ["@id": .string(id), "@type": "@foo"]]), "invalid keyword")
        Self.expectRefused(Self.node(["t": ["@id": .string(id), "@type": "relative"]]), "invalid type mapping", "does not expand to an IRI")
        Self.expectRefused(Self.node(["t": ["@id": .string(id), "@type": "@list"]]), "invalid type mapping")
        Self.expectRefused(
            Self.node(["t": ["@id": .string(id), "@container": "@type", "@type": "https://example.org/T"]]),
            "invalid type mapping", "a @type container needs @type @id or @vocab")
        Self.expectRefused(
            Self.node(["r": ["@reverse": "https://example.org/r", "@id": "https://example.org/x"]]), "invalid reverse property",
            "together with @id or @nest")
        Self.expectRefused(Self.node(["r": ["@reverse": "https://example.org/r", "@nest": "n"]]), "invalid reverse property")
        Self.expectRefused(Self.node(["r": ["@reverse": 5]]), "invalid IRI mapping", "must be a string")
        Self.expectRefused(Self.node(["r": ["@reverse": "@type"]]), "invalid IRI mapping", "does not expand to an IRI")
        Self.expectRefused(Self.node(["r": ["@reverse": "relative"]]), "invalid IRI mapping", "does not expand to an IRI")
        Self.expectRefused(
            Self.node(["r": ["@reverse": "https://example.org/r", "@container": "@list"]]), "invalid reverse property",
            "only takes @set or @index containers")
        // An @index container takes a map of index to nodes; the others the nodes themselves.
        let other: JSONValue = ["@id": "urn:example:other"]
        for (container, value): (JSONValue, JSONValue) in [(.null, other), ("@set", [other]), ("@index", ["tag": other])] {
            let quads = Self.quads(
                Self.node(["r": ["@reverse": "https://example.org/r", "@container": container]], ["r": value]))
            #expect(Self.has(quads, "urn:example:other", "https://example.org/r", .iri("urn:example:node")))
        }
    }

    @Test("term @index, scoped @context, @language, @direction, @nest and @prefix of the wrong kind")
    func termEntries() {
        let id: JSONValue = "https://example.org/t"
        Self.expectRefused(
            Self.node(["t": ["@id": id, "@index": "https://example.org/i"]]), "invalid term definition", "needs an @index container")
        for index: JSONValue in ["relative", "@id", 5] {
            Self.expectRefused(
                Self.node(["t": ["@id": id, "@container": "@index", "@index": index]]), "invalid term definition",
                "must expand to an IRI")
        }
        Self.expectRefused(
            Self.node(["t": ["@id": id, "@context": ["@version": .number(1.0)]]]), "invalid scoped context",
            "the scoped context of \"t\": JSON-LD invalid @version value")
        Self.expectRefused(Self.node(["t": ["@id": id, "@language": 5]]), "invalid language mapping")
        Self.expectRefused(Self.node(["t": ["@id": id, "@direction": "up"]]), "invalid base direction")
        Self.expectRefused(Self.node(["t": ["@id": id, "@nest": 5]]), "invalid @nest value")
        Self.expectRefused(Self.node(["t": ["@id": id, "@nest": "@id"]]), "invalid @nest value")
        Self.expectRefused(Self.node(["ex:a": ["@id": "ex:a", "@prefix": true]]), "invalid term definition", "cannot be a prefix")
        Self.expectRefused(Self.node(["t": ["@id": "https://example.org/", "@prefix": "yes"]]), "invalid @prefix value")
        Self.expectRefused(
            Self.node(["t": ["@id": "@id", "@prefix": true]]), "invalid term definition", "keyword alias \"t\" cannot be a prefix")
        // @prefix makes a term usable as a prefix though its IRI ends in no delimiter; a term language applies.
        let quads = Self.quads(
            Self.node(
                ["t": ["@id": "https://example.org/vocab", "@prefix": true], "l": ["@id": "https://example.org/l", "@language": "EN"]],
                ["t:x": "y", "l": "z"]))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/vocabx", .literal("y")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/l", .literal("z", language: "en")))
    }

    @Test("@container: not keywords, not a keyword or array, invalid combinations; valid combinations taken")
    func containers() {
        let id: JSONValue = "https://example.org/t"
        Self.expectRefused(Self.node(["t": ["@id": id, "@container": [5]]]), "invalid container mapping", "must hold keywords")
        Self.expectRefused(Self.node(["t": ["@id": id, "@container": 5]]), "invalid container mapping", "must be a keyword or an array")
        for container: JSONValue in ["@foo", ["@list", "@set"], ["@set", "@set"], ["@graph", "@id", "@index"], ["@list", "@index"]] {
            Self.expectRefused(
                Self.node(["t": ["@id": id, "@container": container]]), "invalid container mapping", "not a valid combination")
        }
        for container: JSONValue in [["@graph", "@id"], ["@graph", "@index", "@set"], ["@set", "@index"], ["@language", "@set"]] {
            Self.quads(Self.node(["t": ["@id": id, "@container": container]]))
        }
    }

    @Test("protected terms: the same definition may be repeated, another is refused, a property-scoped context may override")
    func protectedTerms() {
        let protected: JSONValue = ["@protected": true, "p": "https://example.org/p"]
        Self.quads(Self.node([protected, ["p": "https://example.org/p"]], ["p": "x"]))
        Self.quads(Self.node([protected, ["p": ["@id": "https://example.org/p", "@protected": false]]], ["p": "x"]))
        Self.expectRefused(Self.node([protected, ["p": "https://example.org/other"]]), "protected term redefinition", "\"p\"")
        Self.expectRefused(Self.node([protected, ["p": .null]]), "protected term redefinition")
        let overriding: JSONValue = [
            "@protected": true, "p": "https://example.org/p",
            "q": ["@id": "https://example.org/q", "@context": ["p": "https://example.org/other"]],
        ]
        let quads = Self.quads(Self.node(overriding, ["q": ["p": "x"]]))
        #expect(quads.contains { $0.predicate == .iri("https://example.org/other") && $0.object == .literal("x") })
    }

    // MARK: Expansion

    /// Terms for the expansion refusals.
    static let expansionContext: JSONValue = [
        "ex": "https://example.org/", "id": "@id", "nested": "@nest", "nulled": .null,
        "langs": ["@id": "ex:langs", "@container": "@language"],
        "rev": ["@reverse": "ex:rev"],
        "byProperty": ["@id": "ex:byProperty", "@container": "@index", "@index": "ex:tag"],
        "kind": ["@id": "ex:kind", "@type": "@vocab"],
    ]

    @Test("value, set and list objects with entries they cannot have, free-floating values and lists")
    func valueObjects() {
        let context = Self.expansionContext
        Self.expectRefused(Self.node(context, ["ex:v": ["@value": "x", "ex:extra": "y"]]), "invalid value object")
        Self.expectRefused(
            Self.node(context, ["ex:v": ["@value": "x", "@type": "ex:T", "@language": "en"]]), "invalid value object")
        Self.expectRefused(Self.node(context, ["ex:v": ["@value": 5, "@language": "en"]]), "invalid language-tagged value")
        Self.expectRefused(Self.node(context, ["ex:v": ["@value": "x", "@type": "relative"]]), "invalid typed value")
        Self.expectRefused(Self.node(context, ["ex:v": ["@value": "x", "@language": 5]]), "invalid language-tagged string")
        Self.expectRefused(Self.node(context, ["ex:v": ["@value": "x", "@direction": "up"]]), "invalid base direction")
        Self.expectRefused(Self.node(context, ["ex:v": ["@value": "x", "@index": 5]]), "invalid @index value")
        Self.expectRefused(Self.node(context, ["ex:v": ["@list": ["a"], "ex:extra": "y"]]), "invalid set or list object")
        Self.expectRefused(Self.node(context, ["ex:v": ["@set": ["a"], "@list": ["b"]]]), "invalid set or list object")
        Self.expectRefused(["@context": context, "@value": "x"], "free-floating value")
        Self.expectRefused(["@context": context, "@list": ["x"]], "free-floating value")
        // A typed value with an absolute type, an indexed value and a set are statements.
        let quads = Self.quads(
            Self.node(context, ["ex:v": ["@value": "x", "@type": "ex:T"], "ex:w": ["@value": "y", "@index": "i"], "ex:s": ["@set": ["z"]]]))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/v", .literal("x", datatype: "https://example.org/T")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/w", .literal("y")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/s", .literal("z")))
    }

    @Test("node entries: blank-node properties, keyword entries of the wrong kind, colliding and unsupported keywords")
    func nodeEntries() {
        let context = Self.expansionContext
        Self.expectRefused(Self.node(context, ["_:p": "v"]), "invalid property", "blank node")
        Self.expectRefused(Self.node(context, ["id": "urn:example:other"]), "colliding keywords", "@id appears more than once")
        Self.expectRefused(Self.node(context, ["@id": 5]), "invalid @id value")
        Self.expectRefused(Self.node(context, ["@type": 5]), "invalid type value")
        Self.expectRefused(Self.node(context, ["@type": ["ex:T", 5]]), "invalid type value")
        Self.expectRefused(Self.node(context, ["@vocab": "https://example.org/"]), "unsupported keyword", "@vocab")
        Self.expectRefused(Self.node(context, ["kind": "nulled"]), "undefined term", "is mapped to null")
        Self.expectRefused(Self.node(context, ["langs": ["en": 5]]), "invalid language map value")
        Self.expectRefused(Self.node(context, ["byProperty": ["tagA": "literal"]]), "invalid value object", "property-valued index map")
        let quads = Self.quads(Self.node(context, ["byProperty": ["tagA": ["@id": "urn:example:tagged"]], "kind": "ex:Kind"]))
        #expect(Self.has(quads, "urn:example:tagged", "https://example.org/tag", .literal("tagA")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/kind", .iri("https://example.org/Kind")))
    }

    @Test("reverse properties and @reverse maps hold nodes only; @nest holds maps that are not value objects")
    func reverseAndNest() {
        let context = Self.expansionContext
        Self.expectRefused(Self.node(context, ["rev": "text"]), "invalid reverse property value")
        Self.expectRefused(Self.node(context, ["@reverse": "x"]), "invalid @reverse value")
        Self.expectRefused(Self.node(context, ["@reverse": ["@id": "urn:example:x"]]), "invalid reverse property map")
        Self.expectRefused(Self.node(context, ["@reverse": ["ex:q": "literal"]]), "invalid reverse property value")
        Self.expectRefused(Self.node(context, ["nested": "text"]), "invalid @nest value", "must be a map")
        Self.expectRefused(Self.node(context, ["nested": ["@value": "x"]]), "invalid @nest value", "value object")
        let quads = Self.quads(
            Self.node(context, ["@reverse": ["ex:q": ["@id": "urn:example:other"]], "nested": ["ex:n": "in"]]))
        #expect(Self.has(quads, "urn:example:other", "https://example.org/q", .iri("urn:example:node")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/n", .literal("in")))
    }

    @Test("forms next to the refusals: a null term language, a @type map, lists of lists, a context scoped to itself")
    func acceptedForms() {
        let context: JSONValue = [
            "@language": "it", "ex": "https://example.org/",
            "plain": ["@id": "ex:plain", "@language": .null],
            "byType": ["@id": "ex:byType", "@container": "@type"],
            "matrix": ["@id": "ex:matrix", "@container": "@list"],
        ]
        let quads = Self.quads(
            Self.node(
                context,
                ["plain": "senza lingua", "ex:default": "in italiano", "byType": ["ex:T": ["@id": "urn:example:typed"]], "matrix": [["a"], "b"]]))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/plain", .literal("senza lingua")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/default", .literal("in italiano", language: "it")))
        #expect(Self.has(quads, "urn:example:typed", RDFConverter.rdfType, .iri("https://example.org/T")))
        #expect(Self.has(quads, "urn:example:node", "https://example.org/byType", .iri("urn:example:typed")))
        // The outer list holds an inner list, then "b" (both strings in the default language).
        let outer = quads.first { $0.predicate == .iri("https://example.org/matrix") }?.object
        let inner = quads.first { $0.subject == outer && $0.predicate == .iri(RDFConverter.rdfFirst) }?.object
        #expect(inner.map { head in quads.contains { $0.subject == head && $0.object == .literal("a", language: "it") } } == true)
        #expect(quads.contains { $0.predicate == .iri(RDFConverter.rdfFirst) && $0.object == .literal("b", language: "it") })
        // A term with "/" is a relative IRI resolved against the base; a term may name its @nest property.
        let resolved = Self.quads(
            Self.node(
                [["@base": "https://example.org/base/"], ["a/b": ["@type": "@id"], "t": ["@id": "https://example.org/t", "@nest": "@nest"]]],
                ["a/b": "urn:example:b", "t": "u"]))
        #expect(Self.has(resolved, "urn:example:node", "https://example.org/base/a/b", .iri("urn:example:b")))
        #expect(Self.has(resolved, "urn:example:node", "https://example.org/t", .literal("u")))
        // The scoped context names the document being processed: validating it does not load it again, and each
        // level of use processes it once.
        let recursive = Self.quads(Self.node("https://contexts.example/recursive", ["r": ["@id": "urn:example:one", "r": ["@id": "urn:example:two", "r": "deep"]]]))
        #expect(Self.has(recursive, "urn:example:one", "https://example.org/r", .iri("urn:example:two")))
        #expect(Self.has(recursive, "urn:example:two", "https://example.org/r", .literal("deep")))
    }

    /// Relative `@id` values and `@base` resolve by RFC 3986 section 5.2, dot segments included.
    @Test("relative references resolve against a base: dot segments, query, fragment, authority, empty reference")
    func referenceResolution() {
        let base = "https://example.org/a/b/c?q#f"
        let cases: [(String, String)] = [
            ("../d", "https://example.org/a/d"), ("./d", "https://example.org/a/b/d"),
            ("../../../../d", "https://example.org/d"), ("/x/./y/../z", "https://example.org/x/z"),
            ("?other", "https://example.org/a/b/c?other"), ("#frag", "https://example.org/a/b/c?q#frag"),
            ("", "https://example.org/a/b/c?q"), ("//other.example/p/../q", "https://other.example/q"),
            (".", "https://example.org/a/b/"), ("..", "https://example.org/a/"), ("d/.", "https://example.org/a/b/d/"),
            ("d/..", "https://example.org/a/b/"), ("d;x=1/../e", "https://example.org/a/b/e"),
            ("https://example.org/../a/./b", "https://example.org/a/b"),
        ]
        for (reference, expected) in cases {
            #expect(IRIResolution.resolve(reference, against: base) == expected, "\(reference)")
        }
        #expect(IRIResolution.resolve("d", against: "https://example.org") == "https://example.org/d")
        #expect(IRIResolution.resolve("d", against: nil) == "d")
        // Through a document: a relative @id under @base.
        let quads = Self.quads(Self.node(["@base": .string(base)], ["@id": "../d?x#y"]))
        #expect(Self.has(quads, "https://example.org/a/d?x#y", "https://example.org/p", .literal("v")))
    }
}
