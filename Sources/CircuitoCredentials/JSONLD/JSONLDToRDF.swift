import CircuitoCore
import Foundation

/// JSON-LD 1.1 for credentials: expansion and conversion to RDF, with contexts only from a `JSONLDContextStore`.
///
/// Processing is strict. Whatever the JSON-LD algorithms would silently drop (undefined terms, relative IRIs,
/// free-floating values, malformed language tags, base directions that have no RDF form here) is refused with a
/// `LedgerError(.invalidBody, …)`, so the RDF graph that gets signed is everything the document says.
public enum JSONLD {
    /// The expanded form of `document` (an array of top-level node objects).
    public static func expand(_ document: JSONValue, contexts: JSONLDContextStore) throws(LedgerError) -> [JSONValue] {
        let expander = JSONLDExpander(processor: JSONLDContextProcessor(store: contexts))
        return try expander.expandDocument(document)
    }

    /// The RDF dataset of `document` (JSON-LD 1.1 "Deserialize JSON-LD to RDF"), without duplicate quads.
    /// Blank node labels are `b0`, `b1`, … in document order; canonicalize before comparing or hashing.
    public static func toRDF(_ document: JSONValue, contexts: JSONLDContextStore) throws(LedgerError) -> [RDFQuad] {
        let nodes = try expand(document, contexts: contexts)
        var converter = RDFConverter()
        for node in nodes {
            _ = try converter.convertNode(node, graph: nil)
        }
        return converter.quads
    }
}

/// Converts expanded JSON-LD to quads. Equivalent to generating the node map and serializing it (the node map
/// only groups statements by subject, which a set of quads does not need), with the same blank node relabelling.
struct RDFConverter {
    static let rdfType = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
    static let rdfFirst = "http://www.w3.org/1999/02/22-rdf-syntax-ns#first"
    static let rdfRest = "http://www.w3.org/1999/02/22-rdf-syntax-ns#rest"
    static let rdfNil = "http://www.w3.org/1999/02/22-rdf-syntax-ns#nil"
    static let rdfJSON = "http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON"
    static let xsdBoolean = "http://www.w3.org/2001/XMLSchema#boolean"
    static let xsdInteger = "http://www.w3.org/2001/XMLSchema#integer"
    static let xsdDouble = "http://www.w3.org/2001/XMLSchema#double"

    private(set) var quads: [RDFQuad] = []
    private var seenQuads: Set<RDFQuad> = []
    /// Blank node identifiers of the document → issued labels.
    private var issuedLabels: [String: String] = [:]
    private var blankNodeCounter = 0

    mutating func add(_ subject: RDFTerm, _ predicate: String, _ object: RDFTerm, graph: RDFTerm?) {
        let quad = RDFQuad(subject: subject, predicate: .iri(predicate), object: object, graph: graph)
        if seenQuads.insert(quad).inserted { quads.append(quad) }
    }

    private mutating func newBlankNode() -> RDFTerm {
        defer { blankNodeCounter += 1 }
        return .blankNode("b\(blankNodeCounter)")
    }

    /// The term for an `@id` or `@type` value: a relabelled blank node or a well-formed absolute IRI.
    private mutating func resource(_ identifier: String, role: String) throws(LedgerError) -> RDFTerm {
        if JSONLDSyntax.isBlankNodeIdentifier(identifier) {
            if let label = issuedLabels[identifier] { return .blankNode(label) }
            let node = newBlankNode()
            issuedLabels[identifier] = node.value
            return node
        }
        guard JSONLDSyntax.isWellFormedAbsoluteIRI(identifier) else {
            if role == "type" {
                throw JSONLDError.make(
                    "undefined term",
                    "type \"\(identifier)\" is not defined by the @context (it is not an absolute IRI)")
            }
            throw JSONLDError.make(
                "invalid IRI", "\(role) \"\(identifier)\" is not an absolute IRI (relative references need a @base)")
        }
        return .iri(identifier)
    }

    /// Emits the statements of a node object and returns its subject.
    mutating func convertNode(_ node: JSONValue, graph: RDFTerm?) throws(LedgerError) -> RDFTerm {
        guard case .object(let members) = node, JSONLDExpander.isNodeObject(node) else {
            throw JSONLDError.make("invalid node object", "expected a node object")
        }
        let subject: RDFTerm
        if case .string(let identifier)? = members["@id"] {
            subject = try resource(identifier, role: "@id")
        } else {
            subject = newBlankNode()
        }
        for key in JSONLDSyntax.sortedKeys(members) {
            guard let value = members[key] else { continue }
            switch key {
            case "@id", "@index":
                continue
            case "@type":
                for type in JSONLDExpander.arrayOf(value) {
                    guard case .string(let typeIdentifier) = type else {
                        throw JSONLDError.make("invalid type value", "@type values must be strings")
                    }
                    add(subject, Self.rdfType, try resource(typeIdentifier, role: "type"), graph: graph)
                }
            case "@graph":
                // The node names a graph; its nodes belong to that graph.
                for item in JSONLDExpander.arrayOf(value) {
                    _ = try convertNode(item, graph: subject)
                }
            case "@included":
                for item in JSONLDExpander.arrayOf(value) {
                    _ = try convertNode(item, graph: graph)
                }
            case "@reverse":
                guard case .object(let reverseMap) = value else {
                    throw JSONLDError.make("invalid @reverse value", "@reverse must be a map")
                }
                for property in JSONLDSyntax.sortedKeys(reverseMap) {
                    let predicate = try predicateIRI(property)
                    for item in JSONLDExpander.arrayOf(reverseMap[property] ?? .null) {
                        let reverseSubject = try convertNode(item, graph: graph)
                        add(reverseSubject, predicate, subject, graph: graph)
                    }
                }
            default:
                if JSONLDSyntax.isKeyword(key) {
                    throw JSONLDError.make("unsupported keyword", "\(key) cannot be converted to RDF here")
                }
                let predicate = try predicateIRI(key)
                for item in JSONLDExpander.arrayOf(value) {
                    let object = try convertObject(item, graph: graph)
                    add(subject, predicate, object, graph: graph)
                }
            }
        }
        return subject
    }

    private func predicateIRI(_ property: String) throws(LedgerError) -> String {
        guard JSONLDSyntax.isWellFormedAbsoluteIRI(property) else {
            throw JSONLDError.make("invalid property", "\"\(property)\" is not an absolute IRI")
        }
        return property
    }

    /// Object to RDF Conversion (section 8.1.2), refusing what the algorithm would drop.
    private mutating func convertObject(_ item: JSONValue, graph: RDFTerm?) throws(LedgerError) -> RDFTerm {
        if case .array(let listItems)? = item["@list"] {
            return try convertList(listItems, graph: graph)
        }
        guard case .object(let members) = item, let value = members["@value"] else {
            return try convertNode(item, graph: graph)
        }
        if members["@direction"] != nil {
            throw JSONLDError.make(
                "unsupported base direction", "@direction has no representation in the RDF used for signing; remove it")
        }
        var datatype: String?
        if case .string(let type)? = members["@type"] {
            guard type == "@json" || JSONLDSyntax.isWellFormedAbsoluteIRI(type) else {
                throw JSONLDError.make("invalid typed value", "datatype \"\(type)\" is not an absolute IRI")
            }
            datatype = type
        }
        var language: String?
        if case .string(let tag)? = members["@language"] {
            guard JSONLDSyntax.isWellFormedLanguageTag(tag) else {
                throw JSONLDError.make("invalid language-tagged string", "\"\(tag)\" is not a well-formed language tag")
            }
            language = tag
        }
        let lexicalForm: String
        if datatype == "@json" {
            lexicalForm = CanonicalJSON.encodeString(value)
            datatype = Self.rdfJSON
        } else {
            switch value {
            case .bool(let flag):
                lexicalForm = flag ? "true" : "false"
                if datatype == nil { datatype = Self.xsdBoolean }
            case .integer(let integer):
                if datatype == Self.xsdDouble {
                    lexicalForm = XSDNumber.canonicalDouble(Double(integer))
                } else {
                    lexicalForm = String(integer)
                    if datatype == nil { datatype = Self.xsdInteger }
                }
            case .number(let number):
                if number.rounded(.towardZero) != number || number.magnitude >= 1e21 || datatype == Self.xsdDouble {
                    lexicalForm = XSDNumber.canonicalDouble(number)
                    if datatype == nil { datatype = Self.xsdDouble }
                } else {
                    lexicalForm = XSDNumber.canonicalInteger(number)
                    if datatype == nil { datatype = Self.xsdInteger }
                }
            case .string(let text):
                lexicalForm = text
            case .null, .array, .object:
                throw JSONLDError.make("invalid value object value", "@value must be a scalar")
            }
        }
        if let language, datatype == nil {
            return .literal(lexicalForm, language: language)
        }
        return .literal(lexicalForm, datatype: datatype)
    }

    /// List to RDF Conversion (section 8.1.3): an rdf:first/rdf:rest chain of fresh blank nodes.
    private mutating func convertList(_ items: [JSONValue], graph: RDFTerm?) throws(LedgerError) -> RDFTerm {
        guard !items.isEmpty else { return .iri(Self.rdfNil) }
        let nodes = items.map { _ in newBlankNode() }
        for (index, item) in items.enumerated() {
            let object = try convertObject(item, graph: graph)
            add(nodes[index], Self.rdfFirst, object, graph: graph)
            add(
                nodes[index], Self.rdfRest, index + 1 < nodes.count ? nodes[index + 1] : .iri(Self.rdfNil), graph: graph
            )
        }
        return nodes[0]
    }
}

/// Canonical lexical forms of XSD numbers as JSON-LD writes them (section 8.6, "Data Round Tripping").
enum XSDNumber {
    /// An integral double as xsd:integer: all its digits, no exponent.
    static func canonicalInteger(_ value: Double) -> String {
        if value == 0 { return "0" }  // Also -0.
        if let exact = Int64(exactly: value) { return String(exact) }
        return String(format: "%.0f", value)
    }

    /// xsd:double in the form JSON-LD processors produce: ECMAScript's `toExponential(15)` with trailing zeros
    /// of the mantissa removed (one digit kept after the point) and the exponent without "+" or leading zeros,
    /// e.g. 1.1 → "1.1E0", 10 → "1.0E1", 0.00015 → "1.5E-4".
    static func canonicalDouble(_ value: Double) -> String {
        precondition(value.isFinite, "JSON numbers are finite")
        if value == 0 { return "0.0E0" }
        // 41 exact significant digits from the C library; the 17th decides the rounding to 16 digits. ECMAScript
        // rounds exact ties up (away from zero), which "17th digit ≥ 5" reproduces.
        let exact = String(format: "%.40e", value.magnitude)
        let parts = exact.split(separator: "e")
        precondition(parts.count == 2, "printf %e always writes an exponent")
        var digits = parts[0].utf8.filter { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }.map {
            Int($0 - UInt8(ascii: "0"))
        }
        guard var exponent = Int(parts[1]) else { preconditionFailure("printf %e writes a decimal exponent") }
        let roundUp = digits[16] >= 5
        digits = Array(digits.prefix(16))
        if roundUp {
            var position = 15
            while position >= 0 {
                if digits[position] == 9 {
                    digits[position] = 0
                    position -= 1
                } else {
                    digits[position] += 1
                    break
                }
            }
            if position < 0 {
                digits.insert(1, at: 0)
                digits.removeLast()
                exponent += 1
            }
        }
        var fraction = digits.dropFirst()
        while fraction.count > 1 && fraction.last == 0 { fraction = fraction.dropLast() }
        let sign = value < 0 ? "-" : ""
        return sign + String(digits[0]) + "." + fraction.map(String.init).joined() + "E" + String(exponent)
    }
}
