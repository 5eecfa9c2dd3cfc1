import CircuitoCore

/// The JSON-LD 1.1 Expansion algorithm (section 5.1.2 of JSON-LD 1.1 Processing Algorithms), in a strict form.
///
/// Wherever the algorithm would silently drop data (a key that is not a defined term, a free-floating value, a
/// string with the form of a keyword), this refuses the document instead: for signed credentials, dropped data
/// is data the signature does not cover. Keys are processed in code point order, so the output does not depend
/// on dictionary order.
struct JSONLDExpander {
    let processor: JSONLDContextProcessor

    /// Expands a whole document (the JSON-LD `expand()` entry point) to an array of top-level objects.
    func expandDocument(_ document: JSONValue) throws(LedgerError) -> [JSONValue] {
        guard var expanded = try expand(document, context: JSONLDActiveContext(), activeProperty: nil, baseURL: nil)
        else { return [] }
        if case .object(let members) = expanded, members.count == 1, let graph = members["@graph"] {
            expanded = graph
        }
        return Self.arrayOf(expanded)
    }

    func expand(
        _ element: JSONValue, context activeContext: JSONLDActiveContext, activeProperty: String?, baseURL: String?,
        fromMap: Bool = false
    ) throws(LedgerError) -> JSONValue? {
        try processor.bounds.countExpandedElement()
        let propertyDefinition = activeProperty.flatMap { activeContext.terms[$0] }
        switch element {
        case .null:
            return nil
        case .array(let items):
            var result: [JSONValue] = []
            let isListContainer = propertyDefinition?.hasContainer("@list") == true
            for item in items {
                guard
                    var expandedItem = try expand(
                        item, context: activeContext, activeProperty: activeProperty, baseURL: baseURL,
                        fromMap: fromMap)
                else { continue }
                if isListContainer, case .array = expandedItem {
                    expandedItem = .object(["@list": expandedItem])
                }
                if case .array(let nested) = expandedItem {
                    result.append(contentsOf: nested)
                } else {
                    result.append(expandedItem)
                }
            }
            return .array(result)
        case .object(let members):
            return try expandMap(
                members, context: activeContext, activeProperty: activeProperty,
                propertyDefinition: propertyDefinition, baseURL: baseURL, fromMap: fromMap)
        case .bool, .integer, .number, .string:
            guard let activeProperty, activeProperty != "@graph" else {
                throw JSONLDError.make(
                    "free-floating value",
                    "\(Self.describe(element)) is not the value of a property and would be dropped")
            }
            var context = activeContext
            if let scopedContext = propertyDefinition?.scopedContext {
                // As for maps (step 8), a property-scoped context may redefine protected terms.
                context = try processor.process(
                    context, localContext: scopedContext, baseURL: propertyDefinition?.baseURL,
                    overrideProtected: true)
            }
            return try expandValue(element, property: activeProperty, context: context)
        }
    }

    // MARK: Maps

    private func expandMap(
        _ element: JSONObject, context initialContext: JSONLDActiveContext, activeProperty: String?,
        propertyDefinition: JSONLDTermDefinition?, baseURL: String?, fromMap: Bool
    ) throws(LedgerError) -> JSONValue? {
        var activeContext = initialContext
        // Step 7: a type-scoped context does not apply inside a new node object.
        if let previous = activeContext.previousContext, !fromMap {
            var expandedKeys: [String?] = []
            for key in element.keys { expandedKeys.append(try activeContext.expandIRI(key, vocabulary: true)) }
            let hasValueEntry = expandedKeys.contains("@value")
            let isIdentifierOnly = element.count == 1 && expandedKeys.first == "@id"
            if !hasValueEntry && !isIdentifierOnly { activeContext = previous.context }
        }
        // Step 8: property-scoped context.
        if let scopedContext = propertyDefinition?.scopedContext {
            activeContext = try processor.process(
                activeContext, localContext: scopedContext, baseURL: propertyDefinition?.baseURL,
                overrideProtected: true)
        }
        // Step 9: embedded context.
        if let localContext = element["@context"] {
            activeContext = try processor.process(activeContext, localContext: localContext, baseURL: baseURL)
        }
        // Steps 10 and 11: type-scoped contexts, applied in code point order of the type values.
        let typeScopedContext = activeContext
        var inputTypeValue: String?
        var sawTypeEntry = false
        for key in JSONLDSyntax.sortedKeys(element) {
            guard let value = element[key], try typeScopedContext.expandIRI(key, vocabulary: true) == "@type"
            else { continue }
            let typeValues = Self.arrayOf(value)
            var terms: [String] = []
            for typeValue in typeValues { if case .string(let term) = typeValue { terms.append(term) } }
            for term in terms.sorted(by: JSONLDSyntax.precedesInCodePointOrder) {
                if let definition = typeScopedContext.terms[term], let scopedContext = definition.scopedContext {
                    activeContext = try processor.process(
                        activeContext, localContext: scopedContext, baseURL: definition.baseURL, propagate: false)
                }
            }
            // Step 12: the input type is the last value of the first entry expanding to @type.
            if !sawTypeEntry {
                sawTypeEntry = true
                if case .string(let last)? = typeValues.last { inputTypeValue = last }
            }
        }
        let inputType = try inputTypeValue.flatMap { text throws(LedgerError) in
            try activeContext.expandIRI(text, vocabulary: true)
        }

        // Steps 13 and 14.
        var result: JSONObject = [:]
        var nests: [String] = []
        let state = EntryState(
            activeContext: activeContext, typeScopedContext: typeScopedContext, activeProperty: activeProperty,
            inputType: inputType, baseURL: baseURL)
        try expandEntries(element, state: state, result: &result, nests: &nests)
        try expandNests(nests, of: element, state: state, result: &result)

        // Steps 15 to 19.
        if let value = result["@value"] {
            let allowed: Set<String> = ["@direction", "@index", "@language", "@type", "@value"]
            guard result.keys.allSatisfy(allowed.contains),
                result["@type"] == nil || (result["@language"] == nil && result["@direction"] == nil)
            else {
                throw JSONLDError.make(
                    "invalid value object", "a value object has entries \(Self.describeKeys(result))")
            }
            if result["@type"] == .string("@json") {
                // A JSON literal: any JSON value.
            } else if value == .null || value == .array([]) {
                return nil
            } else if result["@language"] != nil, value.stringValue == nil {
                throw JSONLDError.make("invalid language-tagged value", "only strings can have a language")
            } else if let type = result["@type"] {
                guard case .string(let typeIRI) = type, JSONLDSyntax.isWellFormedAbsoluteIRI(typeIRI) else {
                    throw JSONLDError.make("invalid typed value", "the @type of a value must be one absolute IRI")
                }
            }
        } else if let type = result["@type"], type.arrayValue == nil {
            result["@type"] = .array([type])
        } else if result["@set"] != nil || result["@list"] != nil {
            guard result.count <= 2, result.keys.allSatisfy({ ["@set", "@list", "@index"].contains($0) }),
                !(result["@set"] != nil && result["@list"] != nil)
            else {
                throw JSONLDError.make("invalid set or list object", "entries \(Self.describeKeys(result))")
            }
            if let set = result["@set"] {
                if case .object(let members) = set { return try finishMap(members, activeProperty: activeProperty) }
                return set
            }
        }
        return try finishMap(result, activeProperty: activeProperty)
    }

    /// Steps 18 and 19: drop maps that carry no statement; refuse free-floating values and lists.
    private func finishMap(_ result: JSONObject, activeProperty: String?) throws(LedgerError) -> JSONValue? {
        if result.count == 1 && result["@language"] != nil { return nil }
        if activeProperty == nil || activeProperty == "@graph" {
            if result.isEmpty { return nil }
            if result["@value"] != nil || result["@list"] != nil {
                throw JSONLDError.make(
                    "free-floating value", "a value or list that is not the value of a property would be dropped")
            }
            if result.count == 1 && result["@id"] != nil { return nil }
        }
        return .object(result)
    }

    /// What the entries of one map are expanded with.
    private struct EntryState {
        var activeContext: JSONLDActiveContext
        let typeScopedContext: JSONLDActiveContext
        let activeProperty: String?
        let inputType: String?
        let baseURL: String?
    }

    /// Step 13: each entry of `element`.
    private func expandEntries(
        _ element: JSONObject, state: EntryState, result: inout JSONObject, nests: inout [String]
    ) throws(LedgerError) {
        let activeContext = state.activeContext
        for key in JSONLDSyntax.sortedKeys(element) where key != "@context" {
            guard let value = element[key] else { continue }
            guard let expandedProperty = try activeContext.expandIRI(key, vocabulary: true) else {
                throw JSONLDError.make(
                    "undefined term", "\"\(key)\" is mapped to null by the @context, so its value would be dropped")
            }
            if JSONLDSyntax.isKeyword(expandedProperty) {
                try expandKeywordEntry(
                    key: key, keyword: expandedProperty, value: value, state: state, result: &result, nests: &nests)
                continue
            }
            guard JSONLDSyntax.isWellFormedAbsoluteIRI(expandedProperty) else {
                if JSONLDSyntax.isBlankNodeIdentifier(expandedProperty) {
                    throw JSONLDError.make(
                        "invalid property",
                        "\"\(key)\" expands to the blank node \(expandedProperty), which RDF cannot use as a property")
                }
                throw JSONLDError.make(
                    "undefined term",
                    "\"\(key)\" is not defined by the @context (it does not expand to an absolute IRI); "
                        + "undefined properties would not be signed")
            }
            let definition = activeContext.terms[key]
            let container = definition?.containerMapping ?? []
            var expandedValue: JSONValue?
            if definition?.typeMapping == "@json" {
                expandedValue = .object(["@value": value, "@type": "@json"])
            } else if container.contains("@language"), case .object(let languageMap) = value {
                expandedValue = try expandLanguageMap(languageMap, definition: definition, context: activeContext)
            } else if container.contains("@index") || container.contains("@type") || container.contains("@id"),
                case .object(let map) = value
            {
                expandedValue = try expandIndexMap(
                    map, key: key, definition: definition, container: container, state: state)
            } else {
                expandedValue = try expand(value, context: activeContext, activeProperty: key, baseURL: state.baseURL)
            }
            guard var expandedValue else { continue }
            if container.contains("@list") && !Self.isListObject(expandedValue) {
                expandedValue = .object(["@list": .array(Self.arrayOf(expandedValue))])
            }
            if container.contains("@graph") && !container.contains("@id") && !container.contains("@index") {
                expandedValue = .array(
                    Self.arrayOf(expandedValue).map { .object(["@graph": .array(Self.arrayOf($0))]) })
            }
            if definition?.isReverseProperty == true {
                // Taken out of the node while it grows, as in `addValue`: many maps under `@nest` add to it.
                var reverseMap = result.removeValue(forKey: "@reverse")?.objectValue ?? [:]
                for item in Self.arrayOf(expandedValue) {
                    if Self.isValueObject(item) || Self.isListObject(item) {
                        throw JSONLDError.make(
                            "invalid reverse property value",
                            "\"\(key)\" is a reverse property; its values must be nodes")
                    }
                    Self.addValue(item, to: expandedProperty, in: &reverseMap)
                }
                result["@reverse"] = .object(reverseMap)
            } else {
                Self.addValue(expandedValue, to: expandedProperty, in: &result)
            }
        }
    }

    /// Step 13.4: an entry whose key expands to a keyword.
    private func expandKeywordEntry(
        key: String, keyword: String, value: JSONValue, state: EntryState, result: inout JSONObject,
        nests: inout [String]
    ) throws(LedgerError) {
        let activeContext = state.activeContext
        if state.activeProperty == "@reverse" {
            throw JSONLDError.make("invalid reverse property map", "a @reverse map cannot contain \(keyword)")
        }
        if result[keyword] != nil && keyword != "@included" && keyword != "@type" {
            throw JSONLDError.make("colliding keywords", "\(keyword) appears more than once (\"\(key)\")")
        }
        switch keyword {
        case "@id":
            guard case .string(let text) = value else {
                throw JSONLDError.make("invalid @id value", "@id must be a string")
            }
            result["@id"] = .string(try activeContext.expandIRI(text, documentRelative: true) ?? text)
        case "@type":
            var expandedTypes: [JSONValue] = []
            for item in Self.arrayOf(value) {
                guard case .string(let text) = item,
                    let expanded = try state.typeScopedContext.expandIRI(text, documentRelative: true, vocabulary: true)
                else {
                    throw JSONLDError.make("invalid type value", "@type must be a string or an array of strings")
                }
                expandedTypes.append(.string(expanded))
            }
            var expandedValue: JSONValue =
                value.arrayValue == nil && expandedTypes.count == 1 ? expandedTypes[0] : .array(expandedTypes)
            if result["@type"] != nil {
                // Grown in place, as in `addValue`: every map under `@nest` may add types.
                var types = Self.takeValues("@type", from: &result)
                types.append(contentsOf: expandedTypes)
                expandedValue = .array(types)
            }
            result["@type"] = expandedValue
        case "@graph":
            let expanded = try expand(value, context: activeContext, activeProperty: "@graph", baseURL: state.baseURL)
            result["@graph"] = .array(expanded.map(Self.arrayOf) ?? [])
        case "@included":
            let expanded = try expand(value, context: activeContext, activeProperty: nil, baseURL: state.baseURL)
            let nodes = expanded.map(Self.arrayOf) ?? []
            for node in nodes where !Self.isNodeObject(node) {
                throw JSONLDError.make("invalid @included value", "@included must contain node objects")
            }
            // Grown in place, as in `addValue`: every map under `@nest` may include nodes.
            var included = Self.takeValues("@included", from: &result)
            included.append(contentsOf: nodes)
            result["@included"] = .array(included)
        case "@value":
            if state.inputType != "@json" {
                switch value {
                case .null, .bool, .integer, .number, .string: break
                default: throw JSONLDError.make("invalid value object value", "@value must be a scalar or null")
                }
            }
            result["@value"] = value
        case "@language":
            guard case .string(let text) = value else {
                throw JSONLDError.make("invalid language-tagged string", "@language must be a string")
            }
            result["@language"] = .string(text.lowercased())
        case "@direction":
            guard value == .string("ltr") || value == .string("rtl") else {
                throw JSONLDError.make("invalid base direction", "@direction must be \"ltr\" or \"rtl\"")
            }
            result["@direction"] = value
        case "@index":
            guard case .string = value else {
                throw JSONLDError.make("invalid @index value", "@index must be a string")
            }
            result["@index"] = value
        case "@list":
            guard let activeProperty = state.activeProperty, activeProperty != "@graph" else {
                throw JSONLDError.make(
                    "free-floating value", "a list that is not the value of a property would be dropped")
            }
            let expanded = try expand(
                value, context: activeContext, activeProperty: activeProperty, baseURL: state.baseURL)
            result["@list"] = .array(expanded.map(Self.arrayOf) ?? [])
        case "@set":
            if let expanded = try expand(
                value, context: activeContext, activeProperty: state.activeProperty, baseURL: state.baseURL)
            {
                result["@set"] = expanded
            }
        case "@reverse":
            guard case .object = value else {
                throw JSONLDError.make("invalid @reverse value", "@reverse must be a map")
            }
            guard
                case .object(let reversed)? = try expand(
                    value, context: activeContext, activeProperty: "@reverse", baseURL: state.baseURL)
            else { return }
            if case .object(let doubleReversed)? = reversed["@reverse"] {
                for property in JSONLDSyntax.sortedKeys(doubleReversed) {
                    if let item = doubleReversed[property] { Self.addValue(item, to: property, in: &result) }
                }
            }
            var reverseMap = result["@reverse"]?.objectValue ?? [:]
            for property in JSONLDSyntax.sortedKeys(reversed) where property != "@reverse" {
                for item in Self.arrayOf(reversed[property] ?? .null) {
                    if Self.isValueObject(item) || Self.isListObject(item) {
                        throw JSONLDError.make("invalid reverse property value", "values of @reverse must be nodes")
                    }
                    Self.addValue(item, to: property, in: &reverseMap)
                }
            }
            if !reverseMap.isEmpty { result["@reverse"] = .object(reverseMap) }
        case "@nest":
            nests.append(key)
        default:
            throw JSONLDError.make(
                "unsupported keyword", "\(keyword) (from \"\(key)\") is not allowed in a node or value object")
        }
    }

    /// Step 14: the maps under `@nest` entries, whose entries belong to the enclosing node.
    private func expandNests(
        _ nests: [String], of element: JSONObject, state: EntryState, result: inout JSONObject
    ) throws(LedgerError) {
        for nestingKey in nests.sorted(by: JSONLDSyntax.precedesInCodePointOrder) {
            for nestedValue in Self.arrayOf(element[nestingKey] ?? .null) {
                guard case .object(let nestedMap) = nestedValue else {
                    throw JSONLDError.make("invalid @nest value", "the value of \"\(nestingKey)\" must be a map")
                }
                for nestedKey in nestedMap.keys
                where try state.activeContext.expandIRI(nestedKey, vocabulary: true) == "@value" {
                    throw JSONLDError.make("invalid @nest value", "a nested map cannot be a value object")
                }
                var nestedState = state
                if let definition = state.activeContext.terms[nestingKey], let scopedContext = definition.scopedContext
                {
                    nestedState.activeContext = try processor.process(
                        state.activeContext, localContext: scopedContext, baseURL: definition.baseURL,
                        overrideProtected: true)
                }
                var innerNests: [String] = []
                try expandEntries(nestedMap, state: nestedState, result: &result, nests: &innerNests)
                try expandNests(innerNests, of: nestedMap, state: nestedState, result: &result)
            }
        }
    }

    /// Step 13.7: a language map.
    private func expandLanguageMap(
        _ languageMap: JSONObject, definition: JSONLDTermDefinition?, context: JSONLDActiveContext
    ) throws(LedgerError) -> JSONValue {
        var items: [JSONValue] = []
        var direction = context.defaultDirection
        if let mapping = definition?.directionMapping { direction = mapping.value }
        for language in JSONLDSyntax.sortedKeys(languageMap) {
            let expandedLanguage = try context.expandIRI(language, vocabulary: true)
            for item in Self.arrayOf(languageMap[language] ?? .null) {
                if item == .null { continue }
                guard case .string = item else {
                    throw JSONLDError.make("invalid language map value", "values of a language map must be strings")
                }
                var valueObject: JSONObject = ["@value": item, "@language": .string(language.lowercased())]
                if language == "@none" || expandedLanguage == "@none" {
                    valueObject["@language"] = nil
                }
                if let direction { valueObject["@direction"] = .string(direction) }
                items.append(.object(valueObject))
            }
        }
        return .array(items)
    }

    /// Step 13.8: an index, id or type map.
    private func expandIndexMap(
        _ map: JSONObject, key: String, definition: JSONLDTermDefinition?, container: [String],
        state: EntryState
    ) throws(LedgerError) -> JSONValue {
        let activeContext = state.activeContext
        let indexKey = definition?.indexMapping ?? "@index"
        var items: [JSONValue] = []
        for index in JSONLDSyntax.sortedKeys(map) {
            var mapContext = activeContext
            if container.contains("@id") || container.contains("@type") {
                mapContext = activeContext.previousContext?.context ?? activeContext
            }
            if container.contains("@type"), let indexDefinition = mapContext.terms[index],
                let scopedContext = indexDefinition.scopedContext
            {
                mapContext = try processor.process(
                    mapContext, localContext: scopedContext, baseURL: indexDefinition.baseURL)
            }
            let expandedIndex = try activeContext.expandIRI(index, vocabulary: true)
            let expandedItems = try expand(
                .array(Self.arrayOf(map[index] ?? .null)), context: mapContext, activeProperty: key,
                baseURL: state.baseURL, fromMap: true)
            for item in expandedItems.map(Self.arrayOf) ?? [] {
                guard case .object(var itemMap) = item else { continue }
                if container.contains("@graph") && !Self.isGraphObject(item) {
                    itemMap = ["@graph": .array([item])]
                }
                if container.contains("@index") && indexKey != "@index" && expandedIndex != "@none" {
                    let reExpandedIndex = try expandValue(.string(index), property: indexKey, context: activeContext)
                    guard let expandedIndexKey = try activeContext.expandIRI(indexKey, vocabulary: true) else {
                        throw JSONLDError.make("invalid term definition", "the @index of \"\(key)\" expands to null")
                    }
                    let values = [reExpandedIndex] + (itemMap[expandedIndexKey].map(Self.arrayOf) ?? [])
                    itemMap[expandedIndexKey] = .array(values)
                    if itemMap["@value"] != nil {
                        throw JSONLDError.make("invalid value object", "a value in a property-valued index map")
                    }
                } else if container.contains("@index") && itemMap["@index"] == nil && expandedIndex != "@none" {
                    itemMap["@index"] = .string(index)
                } else if container.contains("@id") && itemMap["@id"] == nil && expandedIndex != "@none" {
                    itemMap["@id"] = .string(try activeContext.expandIRI(index, documentRelative: true) ?? index)
                } else if container.contains("@type"), let expandedIndex, expandedIndex != "@none" {
                    itemMap["@type"] = .array([.string(expandedIndex)] + (itemMap["@type"].map(Self.arrayOf) ?? []))
                }
                items.append(.object(itemMap))
            }
        }
        return .array(items)
    }

    // MARK: Values

    /// The Value Expansion algorithm (section 5.3.2).
    func expandValue(_ value: JSONValue, property: String, context: JSONLDActiveContext) throws(LedgerError)
        -> JSONValue
    {
        let definition = context.terms[property]
        if case .string(let text) = value {
            if definition?.typeMapping == "@id" {
                return .object(["@id": .string(try context.expandIRI(text, documentRelative: true) ?? text)])
            }
            if definition?.typeMapping == "@vocab" {
                guard let expanded = try context.expandIRI(text, documentRelative: true, vocabulary: true) else {
                    throw JSONLDError.make("undefined term", "\"\(text)\" (value of \"\(property)\") is mapped to null")
                }
                return .object(["@id": .string(expanded)])
            }
        }
        var result: JSONObject = ["@value": value]
        if let type = definition?.typeMapping, !["@id", "@vocab", "@none"].contains(type) {
            result["@type"] = .string(type)
        } else if case .string = value {
            let language = definition?.languageMapping.map { $0.value } ?? context.defaultLanguage
            let direction = definition?.directionMapping.map { $0.value } ?? context.defaultDirection
            if let language { result["@language"] = .string(language) }
            if let direction { result["@direction"] = .string(direction) }
        }
        return .object(result)
    }

    // MARK: Helpers

    static func arrayOf(_ value: JSONValue) -> [JSONValue] {
        if case .array(let items) = value { return items }
        return [value]
    }

    /// JSON-LD "add value" with `as array` true. The values already there are taken out of the map before the new
    /// ones are appended, so that the array grows in place: appended to while the map still held it, it was copied
    /// whole every time, and 20,000 nested maps (`@nest`) adding to one property took 13 s.
    static func addValue(_ value: JSONValue, to key: String, in map: inout JSONObject) {
        var values = takeValues(key, from: &map)
        values.append(contentsOf: arrayOf(value))
        map[key] = .array(values)
    }

    /// The values under `key` (none, one or an array), taken out of `map`: the caller holds the only reference to
    /// the array, so appending to it does not copy it.
    static func takeValues(_ key: String, from map: inout JSONObject) -> [JSONValue] {
        guard let existing = map.removeValue(forKey: key) else { return [] }
        return arrayOf(existing)
    }

    static func isValueObject(_ value: JSONValue) -> Bool { value["@value"] != nil }
    static func isListObject(_ value: JSONValue) -> Bool { value["@list"] != nil }

    static func isGraphObject(_ value: JSONValue) -> Bool {
        guard case .object(let members) = value, members["@graph"] != nil else { return false }
        return members.keys.allSatisfy { ["@graph", "@id", "@index"].contains($0) }
    }

    static func isNodeObject(_ value: JSONValue) -> Bool {
        guard case .object(let members) = value else { return false }
        return members["@value"] == nil && members["@list"] == nil && members["@set"] == nil
    }

    static func describe(_ value: JSONValue) -> String {
        let text = CanonicalJSON.encodeString(value)
        return text.count > 60 ? String(text.prefix(60)) + "…" : text
    }

    static func describeKeys(_ map: JSONObject) -> String {
        JSONLDSyntax.sortedKeys(map).joined(separator: ", ")
    }
}
