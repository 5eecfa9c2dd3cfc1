import CircuitoCore

/// One RDF term: an IRI, a blank node or a literal.
public struct RDFTerm: Hashable, Sendable {
    public enum Kind: Sendable, Hashable { case iri, blankNode, literal }

    public let kind: Kind
    /// IRI text, blank node label without "_:", or the literal's lexical form.
    public let value: String
    /// Literals only; nil means xsd:string unless `language` is set (then rdf:langString).
    public let datatype: String?
    /// Literals only.
    public let language: String?

    private init(kind: Kind, value: String, datatype: String?, language: String?) {
        self.kind = kind
        self.value = value
        self.datatype = datatype
        self.language = language
    }

    public static func iri(_ value: String) -> RDFTerm {
        RDFTerm(kind: .iri, value: value, datatype: nil, language: nil)
    }

    public static func blankNode(_ label: String) -> RDFTerm {
        RDFTerm(kind: .blankNode, value: label, datatype: nil, language: nil)
    }

    /// An explicit xsd:string datatype is normalised to nil, and a language-tagged literal
    /// keeps no datatype, so equal literals compare equal however they were written.
    public static func literal(_ value: String, datatype: String? = nil, language: String? = nil) -> RDFTerm {
        if let language {
            return RDFTerm(kind: .literal, value: value, datatype: nil, language: language)
        }
        let normalised = datatype == RDFVocabulary.xsdString ? nil : datatype
        return RDFTerm(kind: .literal, value: value, datatype: normalised, language: nil)
    }

    public var isBlankNode: Bool { kind == .blankNode }

    /// RDF compares terms by their code points, whereas Swift's `String` equality uses canonical
    /// equivalence ("é" precomposed equals "e" + U+0301); compare the UTF-8 bytes so that two
    /// distinct IRIs or literals never merge.
    public static func == (left: RDFTerm, right: RDFTerm) -> Bool {
        left.kind == right.kind
            && left.value.utf8.elementsEqual(right.value.utf8)
            && optionalBytesEqual(left.datatype, right.datatype)
            && optionalBytesEqual(left.language, right.language)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        hashBytes(value, into: &hasher)
        hashBytes(datatype, into: &hasher)
        hashBytes(language, into: &hasher)
    }
}

private func optionalBytesEqual(_ left: String?, _ right: String?) -> Bool {
    switch (left, right) {
    case (nil, nil): true
    case (let left?, let right?): left.utf8.elementsEqual(right.utf8)
    default: false
    }
}

private func hashBytes(_ text: String?, into hasher: inout Hasher) {
    guard let text else {
        hasher.combine(false)
        return
    }
    hasher.combine(true)
    hasher.combine(text.utf8.count)
    for byte in text.utf8 {
        hasher.combine(byte)
    }
}

/// One quad; `graph == nil` is the default graph.
public struct RDFQuad: Hashable, Sendable {
    public let subject: RDFTerm
    public let predicate: RDFTerm
    public let object: RDFTerm
    public let graph: RDFTerm?

    public init(subject: RDFTerm, predicate: RDFTerm, object: RDFTerm, graph: RDFTerm? = nil) {
        self.subject = subject
        self.predicate = predicate
        self.object = object
        self.graph = graph
    }
}

enum RDFVocabulary {
    static let xsdString = "http://www.w3.org/2001/XMLSchema#string"
    static let rdfLangString = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
}
