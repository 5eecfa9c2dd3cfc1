import CircuitoCore

/// A value that a term definition may set explicitly to null (which differs from not setting it).
enum NullableMapping: Sendable, Equatable {
    case null
    case value(String)

    var value: String? {
        if case .value(let text) = self { return text }
        return nil
    }
}

/// One term definition of an active context (JSON-LD 1.1 Processing Algorithms, section 4.1).
struct JSONLDTermDefinition: Sendable {
    /// nil when the term was defined with `"@id": null` (kept only to detect redefinitions).
    var iriMapping: String?
    var isPrefix = false
    var isProtected = false
    var isReverseProperty = false
    /// The URL of the context that defined the term, for resolving its scoped context.
    var baseURL: String?
    /// The scoped context; `.null` is the null context, Swift nil means none.
    var scopedContext: JSONValue?
    /// Sorted container keywords; empty means no container mapping.
    var containerMapping: [String] = []
    var directionMapping: NullableMapping?
    var indexMapping: String?
    var languageMapping: NullableMapping?
    var nestValue: String?
    var typeMapping: String?

    /// Whether `other` defines the same thing, ignoring `protected` (as the protected-term check requires) and
    /// the defining context's URL (identical definitions often come from different context documents).
    func isSameDefinition(as other: JSONLDTermDefinition) -> Bool {
        iriMapping == other.iriMapping && isPrefix == other.isPrefix && isReverseProperty == other.isReverseProperty
            && scopedContext == other.scopedContext && containerMapping == other.containerMapping
            && directionMapping == other.directionMapping && indexMapping == other.indexMapping
            && languageMapping == other.languageMapping && nestValue == other.nestValue
            && typeMapping == other.typeMapping
    }

    func hasContainer(_ keyword: String) -> Bool { containerMapping.contains(keyword) }
}

/// The active context (JSON-LD 1.1 Processing Algorithms, section 4.1).
struct JSONLDActiveContext: Sendable {
    var terms: [String: JSONLDTermDefinition] = [:]
    var baseIRI: String?
    var originalBaseURL: String?
    var vocabularyMapping: String?
    var defaultLanguage: String?
    var defaultDirection: String?
    /// Set by non-propagated (type-scoped) contexts: what to return to when a new node object is entered.
    var previousContext: PreviousContext?

    final class PreviousContext: Sendable {
        let context: JSONLDActiveContext
        init(_ context: JSONLDActiveContext) { self.context = context }
    }

    init(baseIRI: String? = nil) {
        self.baseIRI = baseIRI
        self.originalBaseURL = baseIRI
    }

    var hasProtectedTerms: Bool { terms.values.contains { $0.isProtected } }

    /// IRI expansion (section 5.2) outside context processing. Returns nil for terms mapped to null.
    ///
    /// Strings with the form of a keyword that are not keywords are refused: JSON-LD would silently ignore
    /// them, which would let data escape the signed graph.
    func expandIRI(_ value: String, documentRelative: Bool = false, vocabulary: Bool = false) throws(LedgerError)
        -> String?
    {
        if JSONLDSyntax.isKeyword(value) { return value }
        if JSONLDSyntax.hasKeywordForm(value) {
            throw JSONLDError.make("invalid keyword", "\"\(value)\" has the form of a keyword but is not one")
        }
        if let definition = terms[value], let mapping = definition.iriMapping, JSONLDSyntax.isKeyword(mapping) {
            return mapping
        }
        if vocabulary, let definition = terms[value] {
            return definition.iriMapping
        }
        if let colon = value.firstIndex(of: ":"), colon != value.startIndex {
            let prefix = String(value[..<colon])
            let suffix = String(value[value.index(after: colon)...])
            if prefix == "_" || suffix.hasPrefix("//") { return value }
            if let definition = terms[prefix], let mapping = definition.iriMapping, definition.isPrefix {
                return mapping + suffix
            }
            if JSONLDSyntax.hasScheme(value) { return value }
        }
        if vocabulary, let vocabularyMapping { return vocabularyMapping + value }
        if documentRelative { return IRIResolution.resolve(value, against: baseIRI) }
        return value
    }
}

/// JSON-LD error messages: the W3C error code, then what was wrong.
enum JSONLDError {
    static func make(_ code: String, _ detail: String) -> LedgerError {
        LedgerError(.invalidBody, "JSON-LD \(code): \(detail)")
    }
}

/// The bounds on processing one document (its contexts and its elements), and what it has used of them: one per
/// document (`JSONLD.expand`), shared by every copy of its `JSONLDContextProcessor`. A document may come from anyone
/// (a credential handed in for verification), and its contexts can be built to exhaust the stack.
final class JSONLDProcessingBounds {
    /// Term definitions being created inside each other: a term whose IRI is another term of the same context, which
    /// is defined first, and so on (`{"t0":"t1","t1":"t2",…}`), or a scoped context inside a term definition. Each
    /// level takes two frames of the stack: the bundled contexts need fewer than ten levels, while a chain of 500 terms
    /// overflowed a test thread's stack and one of 10,000 the main thread's of `circuito badge verify`.
    static let maximumDefinitionDepth = 64

    /// Work of processing contexts for one document. A scoped context is processed again wherever its term or type is
    /// used, and each processing carries the active context's terms over into a new one: a document can make both
    /// quadratic in its size (a scoped context of 1,000 terms on a property used 1,000 times, a 52 KB credential, took
    /// 31 s to make its million term definitions). The credentials Circuito issues need a few hundred definitions
    /// and a thousand terms carried over, and per piece of evidence about four definitions and 60 terms more.
    static let maximumTermDefinitions = 100_000
    /// Terms carried over, each far cheaper than a definition (a million took 0.14 s).
    static let maximumTermsCarriedOver = 10_000_000

    /// Elements of the document expanded (maps, arrays and values, each time one is met). Nothing else bounds how
    /// much a document makes of its values: a status list of 29 MB (the CLI reads up to 32 MiB) holding three million
    /// short strings took 1.5 GB and was stopped by a 2 GB memory limit, and a credential baked into a 28 MB PNG ran
    /// for minutes. The credentials Circuito issues have about 500 elements at most (64 pieces of evidence of 7 each).
    static let maximumExpandedElements = 100_000

    private(set) var termDefinitions = 0
    private(set) var termsCarriedOver = 0
    private(set) var expandedElements = 0

    /// Counts a term definition, refusing the document past `maximumTermDefinitions`.
    func countTermDefinition() throws(LedgerError) {
        termDefinitions += 1
        guard termDefinitions <= Self.maximumTermDefinitions else {
            throw LedgerError(
                .tooLarge,
                "JSON-LD processing exceeds its bound of \(Self.maximumTermDefinitions) term definitions (a scoped context is processed again for every use)")
        }
    }

    /// Counts the terms an active context carries into a new one, refusing the document past
    /// `maximumTermsCarriedOver`.
    func countTermsCarriedOver(_ count: Int) throws(LedgerError) {
        termsCarriedOver += count
        guard termsCarriedOver <= Self.maximumTermsCarriedOver else {
            throw LedgerError(
                .tooLarge,
                "JSON-LD processing exceeds its bound of \(Self.maximumTermsCarriedOver) terms carried from one active context into the next (a context processed for every node)")
        }
    }

    /// Counts an element met by expansion, refusing the document past `maximumExpandedElements`.
    func countExpandedElement() throws(LedgerError) {
        expandedElements += 1
        guard expandedElements <= Self.maximumExpandedElements else {
            throw LedgerError(
                .tooLarge,
                "JSON-LD processing exceeds its bound of \(Self.maximumExpandedElements) elements expanded (maps, arrays and values of the document)")
        }
    }

    private(set) var definitionDepth = 0
    /// The deepest `definitionDepth` reached.
    private(set) var deepestDefinitionDepth = 0

    /// Called as a term definition starts; balanced by `leaveDefinition`.
    func enterDefinition() throws(LedgerError) {
        guard definitionDepth < Self.maximumDefinitionDepth else {
            throw LedgerError(
                .tooLarge,
                "JSON-LD context overflow: a term definition is nested more than \(Self.maximumDefinitionDepth) term definitions deep (terms defined through other terms, or scoped contexts inside term definitions)")
        }
        definitionDepth += 1
        deepestDefinitionDepth = max(deepestDefinitionDepth, definitionDepth)
    }

    func leaveDefinition() { definitionDepth -= 1 }
}

/// Context processing (sections 4.1 and 4.2 of JSON-LD 1.1 Processing Algorithms), with remote contexts taken
/// only from a `JSONLDContextStore`.
struct JSONLDContextProcessor {
    let store: JSONLDContextStore
    let bounds = JSONLDProcessingBounds()
    /// Bounds chains of context documents that include other context documents.
    static let maximumRemoteContexts = 32

    private static let nonTermEntries: Set<String> = [
        "@base", "@direction", "@import", "@language", "@propagate", "@protected", "@version", "@vocab",
    ]
    private static let termDefinitionEntries: Set<String> = [
        "@id", "@reverse", "@container", "@context", "@direction", "@index", "@language", "@nest", "@prefix",
        "@protected", "@type",
    ]
    private static let containerKeywords: Set<String> = [
        "@graph", "@id", "@index", "@language", "@list", "@set", "@type",
    ]

    /// What every term definition of one context definition shares.
    private struct DefinitionScope {
        let localContext: JSONObject
        let baseURL: String?
        /// The context-level `@protected` flag.
        let isProtected: Bool
        let overrideProtected: Bool
        let remoteContexts: [String]
    }

    /// The Context Processing algorithm (section 4.1.2).
    func process(
        _ activeContext: JSONLDActiveContext, localContext: JSONValue, baseURL: String?,
        remoteContexts: [String] = [], overrideProtected: Bool = false, propagate: Bool = true,
        validateScopedContext: Bool = true
    ) throws(LedgerError) -> JSONLDActiveContext {
        // Every term of the active context is carried into the result (copied once the result defines a term).
        try bounds.countTermsCarriedOver(activeContext.terms.count)
        var result = activeContext
        var propagate = propagate
        var remoteContexts = remoteContexts
        if case .object(let members) = localContext, let value = members["@propagate"] {
            guard case .bool(let flag) = value else {
                throw JSONLDError.make("invalid @propagate value", "@propagate must be true or false")
            }
            propagate = flag
        }
        if !propagate && result.previousContext == nil {
            result.previousContext = .init(activeContext)
        }
        let contexts: [JSONValue]
        if case .array(let items) = localContext { contexts = items } else { contexts = [localContext] }

        for context in contexts {
            switch context {
            case .null:
                if !overrideProtected && result.hasProtectedTerms {
                    throw JSONLDError.make(
                        "invalid context nullification", "a null @context would discard protected term definitions")
                }
                let previous = result
                result = JSONLDActiveContext(baseIRI: activeContext.originalBaseURL)
                if !propagate { result.previousContext = .init(previous) }
            case .string(let reference):
                let url = IRIResolution.resolve(reference, against: baseURL)
                guard JSONLDSyntax.isWellFormedAbsoluteIRI(url) else {
                    throw JSONLDError.make(
                        "loading document failed", "context reference \"\(reference)\" is not an absolute IRI")
                }
                if !validateScopedContext && remoteContexts.contains(url) { continue }
                guard remoteContexts.count < Self.maximumRemoteContexts else {
                    throw JSONLDError.make(
                        "context overflow", "more than \(Self.maximumRemoteContexts) nested context documents")
                }
                remoteContexts.append(url)
                let loadedContext = try store.context(for: url)
                result = try process(
                    result, localContext: loadedContext, baseURL: url, remoteContexts: remoteContexts,
                    validateScopedContext: validateScopedContext)
            case .object(var definition):
                try processContextDefinition(
                    &definition, into: &result, baseURL: baseURL, remoteContexts: remoteContexts,
                    overrideProtected: overrideProtected)
            default:
                throw JSONLDError.make(
                    "invalid local context", "a @context must be null, a string, a map or an array of those")
            }
        }
        return result
    }

    /// Step 5.5 onwards of the Context Processing algorithm: one context definition (a map).
    private func processContextDefinition(
        _ context: inout JSONObject, into result: inout JSONLDActiveContext, baseURL: String?,
        remoteContexts: [String], overrideProtected: Bool
    ) throws(LedgerError) {
        if let version = context["@version"] {
            guard case .number(let number) = version, number == 1.1 else {
                throw JSONLDError.make("invalid @version value", "@version must be 1.1")
            }
        }
        // Checked in every context definition (step 5.11): `process` reads it only when the local context is a map,
        // so inside an array a malformed entry passed unnoticed.
        if let propagateValue = context["@propagate"], propagateValue.boolValue == nil {
            throw JSONLDError.make("invalid @propagate value", "@propagate must be true or false")
        }
        if let importValue = context["@import"] {
            guard case .string(let reference) = importValue else {
                throw JSONLDError.make("invalid @import value", "@import must be a string")
            }
            let url = IRIResolution.resolve(reference, against: baseURL)
            guard JSONLDSyntax.isWellFormedAbsoluteIRI(url) else {
                throw JSONLDError.make("invalid @import value", "\"\(reference)\" is not an absolute IRI")
            }
            guard case .object(let imported) = try store.context(for: url) else {
                throw JSONLDError.make("invalid remote context", "the context imported from \(url) is not a map")
            }
            guard imported["@import"] == nil else {
                throw JSONLDError.make("invalid context entry", "the context imported from \(url) has its own @import")
            }
            // The importing context's entries win over the imported ones.
            context = imported.merging(context) { _, importing in importing }
        }
        if let base = context["@base"], remoteContexts.isEmpty {
            switch base {
            case .null:
                result.baseIRI = nil
            case .string(let text) where JSONLDSyntax.hasScheme(text):
                result.baseIRI = text
            case .string(let text) where result.baseIRI != nil:
                result.baseIRI = IRIResolution.resolve(text, against: result.baseIRI)
            default:
                throw JSONLDError.make("invalid base IRI", "@base must be null or an IRI")
            }
        }
        if let vocabulary = context["@vocab"] {
            switch vocabulary {
            case .null:
                result.vocabularyMapping = nil
            case .string(let text):
                result.vocabularyMapping = try result.expandIRI(text, documentRelative: true, vocabulary: true)
            default:
                throw JSONLDError.make("invalid vocab mapping", "@vocab must be null or a string")
            }
        }
        if let language = context["@language"] {
            switch language {
            case .null: result.defaultLanguage = nil
            // Lower-cased, as the JSON-LD processors used for Data Integrity do, so signatures interoperate.
            case .string(let text): result.defaultLanguage = text.lowercased()
            default: throw JSONLDError.make("invalid default language", "@language must be null or a string")
            }
        }
        if let direction = context["@direction"] {
            switch direction {
            case .null: result.defaultDirection = nil
            case .string(let text) where text == "ltr" || text == "rtl": result.defaultDirection = text
            default: throw JSONLDError.make("invalid base direction", "@direction must be null, \"ltr\" or \"rtl\"")
            }
        }
        var isProtected = false
        if let protectedValue = context["@protected"] {
            guard case .bool(let flag) = protectedValue else {
                throw JSONLDError.make("invalid @protected value", "@protected must be true or false")
            }
            isProtected = flag
        }
        let scope = DefinitionScope(
            localContext: context, baseURL: baseURL, isProtected: isProtected, overrideProtected: overrideProtected,
            remoteContexts: remoteContexts)
        var defined: [String: Bool] = [:]
        for key in JSONLDSyntax.sortedKeys(context) where !Self.nonTermEntries.contains(key) {
            try createTermDefinition(key, in: &result, scope: scope, defined: &defined)
        }
    }

    /// The Create Term Definition algorithm (section 4.2.2).
    private func createTermDefinition(
        _ term: String, in activeContext: inout JSONLDActiveContext, scope: DefinitionScope,
        defined: inout [String: Bool]
    ) throws(LedgerError) {
        let localContext = scope.localContext
        if let state = defined[term] {
            if state { return }
            throw JSONLDError.make("cyclic IRI mapping", "the definition of \"\(term)\" depends on itself")
        }
        try bounds.countTermDefinition()
        try bounds.enterDefinition()
        defer { bounds.leaveDefinition() }
        guard !term.isEmpty else { throw JSONLDError.make("invalid term definition", "a term cannot be empty") }
        defined[term] = false
        guard let rawValue = localContext[term] else { return }

        if term == "@type" {
            guard case .object(let members) = rawValue, !members.isEmpty,
                members.keys.allSatisfy({ $0 == "@container" || $0 == "@protected" }),
                members["@container"] == nil || members["@container"] == .string("@set")
            else {
                throw JSONLDError.make("keyword redefinition", "@type may only be given @container @set and @protected")
            }
        } else if JSONLDSyntax.isKeyword(term) {
            throw JSONLDError.make("keyword redefinition", "\(term) cannot be redefined")
        } else if JSONLDSyntax.hasKeywordForm(term) {
            throw JSONLDError.make("invalid term definition", "\"\(term)\" has the form of a keyword")
        }

        let previousDefinition = activeContext.terms.removeValue(forKey: term)
        let value: JSONObject
        let isSimpleTerm: Bool
        switch rawValue {
        case .null:
            value = ["@id": .null]
            isSimpleTerm = false
        case .string(let text):
            value = ["@id": .string(text)]
            isSimpleTerm = true
        case .object(let members):
            value = members
            isSimpleTerm = false
        default:
            throw JSONLDError.make(
                "invalid term definition", "the definition of \"\(term)\" must be null, a string or a map")
        }

        var definition = JSONLDTermDefinition()
        definition.isProtected = scope.isProtected
        if let protectedValue = value["@protected"] {
            guard case .bool(let flag) = protectedValue else {
                throw JSONLDError.make("invalid @protected value", "@protected of \"\(term)\" must be true or false")
            }
            definition.isProtected = flag
        }

        if let typeValue = value["@type"] {
            guard case .string(let typeText) = typeValue else {
                throw JSONLDError.make("invalid type mapping", "@type of \"\(term)\" must be a string")
            }
            let type = try expandIRIDuringDefinition(
                typeText, in: &activeContext, scope: scope, defined: &defined, vocabulary: true)
            guard let type,
                ["@id", "@json", "@none", "@vocab"].contains(type) || JSONLDSyntax.isWellFormedAbsoluteIRI(type)
            else {
                throw JSONLDError.make("invalid type mapping", "@type of \"\(term)\" does not expand to an IRI")
            }
            definition.typeMapping = type
        }

        if let reverseValue = value["@reverse"] {
            guard value["@id"] == nil, value["@nest"] == nil else {
                throw JSONLDError.make(
                    "invalid reverse property", "\"\(term)\" has @reverse together with @id or @nest")
            }
            guard case .string(let reverseText) = reverseValue else {
                throw JSONLDError.make("invalid IRI mapping", "@reverse of \"\(term)\" must be a string")
            }
            let mapping = try expandIRIDuringDefinition(
                reverseText, in: &activeContext, scope: scope, defined: &defined, vocabulary: true)
            guard let mapping, mapping.contains(":"), !JSONLDSyntax.isKeyword(mapping) else {
                throw JSONLDError.make("invalid IRI mapping", "@reverse of \"\(term)\" does not expand to an IRI")
            }
            definition.iriMapping = mapping
            if let container = value["@container"] {
                switch container {
                case .null: break
                case .string(let keyword) where keyword == "@set" || keyword == "@index":
                    definition.containerMapping = [keyword]
                default:
                    throw JSONLDError.make(
                        "invalid reverse property", "reverse property \"\(term)\" only takes @set or @index containers")
                }
            }
            definition.isReverseProperty = true
        } else if let idValue = value["@id"], idValue != .string(term) {
            switch idValue {
            case .null:
                definition.iriMapping = nil
            case .string(let idText):
                if !JSONLDSyntax.isKeyword(idText) && JSONLDSyntax.hasKeywordForm(idText) {
                    throw JSONLDError.make("invalid IRI mapping", "@id of \"\(term)\" has the form of a keyword")
                }
                let mapping = try expandIRIDuringDefinition(
                    idText, in: &activeContext, scope: scope, defined: &defined, vocabulary: true)
                guard let mapping,
                    JSONLDSyntax.isKeyword(mapping) || JSONLDSyntax.hasScheme(mapping)
                        || JSONLDSyntax.isBlankNodeIdentifier(mapping)
                else {
                    throw JSONLDError.make(
                        "invalid IRI mapping", "@id of \"\(term)\" does not expand to an IRI or keyword")
                }
                if mapping == "@context" {
                    throw JSONLDError.make("invalid keyword alias", "\"\(term)\" cannot alias @context")
                }
                definition.iriMapping = mapping
                let colonInside = term.dropFirst().dropLast().contains(":")
                if colonInside || term.contains("/") {
                    defined[term] = true
                    let expandedTerm = try expandIRIDuringDefinition(
                        term, in: &activeContext, scope: scope, defined: &defined, vocabulary: true)
                    guard expandedTerm == mapping else {
                        throw JSONLDError.make(
                            "invalid IRI mapping", "\"\(term)\" looks like an IRI but maps to a different one")
                    }
                }
                if !term.contains(":") && !term.contains("/") && isSimpleTerm
                    && (JSONLDSyntax.endsWithGenericDelimiter(mapping) || JSONLDSyntax.isBlankNodeIdentifier(mapping))
                {
                    definition.isPrefix = true
                }
            default:
                throw JSONLDError.make("invalid IRI mapping", "@id of \"\(term)\" must be a string or null")
            }
        } else if let colon = term.dropFirst().firstIndex(of: ":") {
            let prefix = String(term[..<colon])
            let suffix = String(term[term.index(after: colon)...])
            if localContext[prefix] != nil {
                try createTermDefinition(prefix, in: &activeContext, scope: scope, defined: &defined)
            }
            if let prefixDefinition = activeContext.terms[prefix] {
                guard let prefixMapping = prefixDefinition.iriMapping else {
                    throw JSONLDError.make("invalid IRI mapping", "the prefix of \"\(term)\" is mapped to null")
                }
                definition.iriMapping = prefixMapping + suffix
            } else {
                definition.iriMapping = term
            }
        } else if term.contains("/") {
            let mapping = try activeContext.expandIRI(term, documentRelative: true, vocabulary: true)
            guard let mapping, JSONLDSyntax.hasScheme(mapping) else {
                throw JSONLDError.make("invalid IRI mapping", "\"\(term)\" is a relative IRI reference")
            }
            definition.iriMapping = mapping
        } else if term == "@type" {
            definition.iriMapping = "@type"
        } else if let vocabularyMapping = activeContext.vocabularyMapping {
            definition.iriMapping = vocabularyMapping + term
        } else {
            throw JSONLDError.make("invalid IRI mapping", "\"\(term)\" has no IRI and there is no @vocab")
        }

        if let containerValue = value["@container"], !definition.isReverseProperty {
            definition.containerMapping = try Self.containerMapping(containerValue, term: term)
            if definition.hasContainer("@type") {
                if definition.typeMapping == nil { definition.typeMapping = "@id" }
                guard definition.typeMapping == "@id" || definition.typeMapping == "@vocab" else {
                    throw JSONLDError.make(
                        "invalid type mapping", "a @type container needs @type @id or @vocab (\"\(term)\")")
                }
            }
        }

        if let indexValue = value["@index"] {
            guard definition.hasContainer("@index") else {
                throw JSONLDError.make("invalid term definition", "@index on \"\(term)\" needs an @index container")
            }
            guard case .string(let indexText) = indexValue,
                let expandedIndex = try activeContext.expandIRI(indexText, vocabulary: true),
                !JSONLDSyntax.isKeyword(expandedIndex), JSONLDSyntax.hasScheme(expandedIndex)
            else {
                throw JSONLDError.make("invalid term definition", "@index of \"\(term)\" must expand to an IRI")
            }
            definition.indexMapping = indexText
        }

        if let scopedContext = value["@context"] {
            do {
                // Validation only: the result is discarded, the context is processed again where it is used.
                _ = try process(
                    activeContext, localContext: scopedContext, baseURL: scope.baseURL,
                    remoteContexts: scope.remoteContexts, overrideProtected: true, validateScopedContext: false)
            } catch {
                throw JSONLDError.make("invalid scoped context", "the scoped context of \"\(term)\": \(error.message)")
            }
            definition.scopedContext = scopedContext
            definition.baseURL = scope.baseURL
        }

        if let languageValue = value["@language"], value["@type"] == nil {
            switch languageValue {
            case .null: definition.languageMapping = .null
            case .string(let text): definition.languageMapping = .value(text.lowercased())
            default:
                throw JSONLDError.make("invalid language mapping", "@language of \"\(term)\" must be null or a string")
            }
        }

        if let directionValue = value["@direction"], value["@type"] == nil {
            switch directionValue {
            case .null: definition.directionMapping = .null
            case .string(let text) where text == "ltr" || text == "rtl": definition.directionMapping = .value(text)
            default:
                throw JSONLDError.make(
                    "invalid base direction", "@direction of \"\(term)\" must be null, \"ltr\" or \"rtl\"")
            }
        }

        if let nestValue = value["@nest"] {
            guard case .string(let nestText) = nestValue, nestText == "@nest" || !JSONLDSyntax.isKeyword(nestText)
            else {
                throw JSONLDError.make(
                    "invalid @nest value", "@nest of \"\(term)\" must be a string that is not a keyword")
            }
            definition.nestValue = nestText
        }

        if let prefixValue = value["@prefix"] {
            guard !term.contains(":") && !term.contains("/") else {
                throw JSONLDError.make("invalid term definition", "\"\(term)\" cannot be a prefix")
            }
            guard case .bool(let flag) = prefixValue else {
                throw JSONLDError.make("invalid @prefix value", "@prefix of \"\(term)\" must be true or false")
            }
            definition.isPrefix = flag
            if flag, let mapping = definition.iriMapping, JSONLDSyntax.isKeyword(mapping) {
                throw JSONLDError.make("invalid term definition", "keyword alias \"\(term)\" cannot be a prefix")
            }
        }

        if let unexpected = value.keys.first(where: { !Self.termDefinitionEntries.contains($0) }) {
            throw JSONLDError.make("invalid term definition", "\"\(term)\" has an unknown entry \(unexpected)")
        }

        if !scope.overrideProtected, let previousDefinition, previousDefinition.isProtected {
            guard definition.isSameDefinition(as: previousDefinition) else {
                throw JSONLDError.make(
                    "protected term redefinition", "\"\(term)\" is protected and cannot be redefined")
            }
            definition = previousDefinition
        }
        activeContext.terms[term] = definition
        defined[term] = true
    }

    /// IRI expansion during context processing: first creates the definitions the value depends on.
    private func expandIRIDuringDefinition(
        _ value: String, in activeContext: inout JSONLDActiveContext, scope: DefinitionScope,
        defined: inout [String: Bool], vocabulary: Bool
    ) throws(LedgerError) -> String? {
        if JSONLDSyntax.isKeyword(value) { return value }
        if JSONLDSyntax.hasKeywordForm(value) {
            throw JSONLDError.make("invalid keyword", "\"\(value)\" has the form of a keyword but is not one")
        }
        if scope.localContext[value] != nil && defined[value] != true {
            try createTermDefinition(value, in: &activeContext, scope: scope, defined: &defined)
        }
        if let colon = value.dropFirst().firstIndex(of: ":") {
            let prefix = String(value[..<colon])
            let suffix = value[value.index(after: colon)...]
            if prefix != "_" && !suffix.hasPrefix("//") && scope.localContext[prefix] != nil && defined[prefix] != true
            {
                try createTermDefinition(prefix, in: &activeContext, scope: scope, defined: &defined)
            }
        }
        return try activeContext.expandIRI(value, vocabulary: vocabulary)
    }

    /// Validates a `@container` value and returns it as a sorted array.
    private static func containerMapping(_ value: JSONValue, term: String) throws(LedgerError) -> [String] {
        var keywords: [String] = []
        switch value {
        case .string(let keyword):
            keywords = [keyword]
        case .array(let items):
            for item in items {
                guard case .string(let keyword) = item else {
                    throw JSONLDError.make("invalid container mapping", "@container of \"\(term)\" must hold keywords")
                }
                keywords.append(keyword)
            }
        default:
            throw JSONLDError.make(
                "invalid container mapping", "@container of \"\(term)\" must be a keyword or an array")
        }
        let set = Set(keywords)
        let isValid: Bool
        if set.count != keywords.count || !set.isSubset(of: containerKeywords) {
            isValid = false
        } else if set.count == 1 {
            isValid = true
        } else if set.contains("@graph") && (set.contains("@id") != set.contains("@index")) {
            isValid = set.isSubset(of: ["@graph", "@id", "@index", "@set"])
        } else if set.contains("@set") {
            isValid = set.isSubset(of: ["@set", "@index", "@graph", "@id", "@type", "@language"])
        } else {
            isValid = false
        }
        guard isValid else {
            throw JSONLDError.make("invalid container mapping", "@container of \"\(term)\" is not a valid combination")
        }
        return keywords.sorted()
    }
}
