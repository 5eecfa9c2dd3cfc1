import CircuitoCore

/// IRI, keyword and language-tag helpers shared by context processing, expansion and RDF conversion.
enum JSONLDSyntax {
    /// The JSON-LD 1.1 keywords.
    static let keywords: Set<String> = [
        "@base", "@container", "@context", "@direction", "@graph", "@id", "@import", "@included", "@index",
        "@json", "@language", "@list", "@nest", "@none", "@prefix", "@propagate", "@protected", "@reverse",
        "@set", "@type", "@value", "@version", "@vocab",
    ]

    static func isKeyword(_ text: String) -> Bool { keywords.contains(text) }

    /// Matches `"@" 1*ALPHA`: reserved for future keywords. JSON-LD ignores such strings; Circuito refuses them.
    static func hasKeywordForm(_ text: String) -> Bool {
        let scalars = text.unicodeScalars
        guard scalars.count > 1, scalars.first == "@" else { return false }
        return scalars.dropFirst().allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) }
    }

    static func isBlankNodeIdentifier(_ text: String) -> Bool { text.hasPrefix("_:") }

    /// True when `text` starts with an RFC 3986 scheme followed by ":" (the form of an absolute IRI).
    static func hasScheme(_ text: String) -> Bool { schemeLength(text) != nil }

    /// The length of the scheme of `text` (without the colon), or nil when it has none.
    static func schemeLength(_ text: String) -> Int? {
        var length = 0
        for scalar in text.unicodeScalars {
            if scalar == ":" { return length > 0 ? length : nil }
            let isLetter = ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
            let isOther = ("0"..."9").contains(scalar) || scalar == "+" || scalar == "-" || scalar == "."
            if length == 0 ? !isLetter : !(isLetter || isOther) { return nil }
            length += 1
        }
        return nil
    }

    /// An absolute IRI that N-Quads can carry: a scheme, and none of the characters RFC 3987 and the N-Quads
    /// IRIREF production forbid (controls, space, `<>"{}|\^` and the backtick).
    static func isWellFormedAbsoluteIRI(_ text: String) -> Bool {
        guard !isBlankNodeIdentifier(text), hasScheme(text) else { return false }
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x00...0x20, 0x7F: return false
            case 0x22, 0x3C, 0x3E, 0x5C, 0x5E, 0x60, 0x7B, 0x7C, 0x7D: return false
            default: continue
            }
        }
        return true
    }

    /// BCP 47 language tags in the simple form JSON-LD processors check: `1*8ALPHA *("-" 1*8alphanum)`.
    static func isWellFormedLanguageTag(_ text: String) -> Bool {
        let subtags = text.split(separator: "-", omittingEmptySubsequences: false)
        guard let first = subtags.first, (1...8).contains(first.count),
            first.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) })
        else { return false }
        return subtags.dropFirst().allSatisfy { subtag in
            (1...8).contains(subtag.count)
                && subtag.unicodeScalars.allSatisfy {
                    ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                }
        }
    }

    /// RFC 3986 gen-delims: an IRI mapping ending in one of these makes a simple term usable as a prefix.
    static func endsWithGenericDelimiter(_ text: String) -> Bool {
        guard let last = text.unicodeScalars.last else { return false }
        return [":", "/", "?", "#", "[", "]", "@"].contains(last)
    }

    /// Code point order, which the JSON-LD algorithms use wherever order matters (Swift's `<` on strings is
    /// canonical-equivalence order, not code point order).
    static func precedesInCodePointOrder(_ first: String, _ second: String) -> Bool {
        first.unicodeScalars.lexicographicallyPrecedes(second.unicodeScalars)
    }

    /// A JSON object's keys are in UTF-16 order, which differs from code point order above U+E000: sorted again.
    static func sortedKeys(_ members: JSONObject) -> [String] {
        members.keys.sorted(by: precedesInCodePointOrder)
    }
}

/// RFC 3986 section 5.2 reference resolution (no normalization), used for `@base`, relative `@id` values and
/// relative context URLs.
enum IRIResolution {
    private struct Components {
        var scheme: String?
        var authority: String?
        var path: String
        var query: String?
        var fragment: String?
    }

    /// `reference` resolved against `base`. Without a base, a relative reference stays as it is (and is later
    /// refused wherever an absolute IRI is required).
    static func resolve(_ reference: String, against base: String?) -> String {
        let parsedReference = parse(reference)
        if parsedReference.scheme != nil {
            var target = parsedReference
            target.path = removeDotSegments(target.path)
            return compose(target)
        }
        guard let base, JSONLDSyntax.hasScheme(base) else { return reference }
        let parsedBase = parse(base)
        var target = Components(scheme: parsedBase.scheme, authority: nil, path: "", query: nil, fragment: nil)
        if parsedReference.authority != nil {
            target.authority = parsedReference.authority
            target.path = removeDotSegments(parsedReference.path)
            target.query = parsedReference.query
        } else {
            target.authority = parsedBase.authority
            if parsedReference.path.isEmpty {
                target.path = parsedBase.path
                target.query = parsedReference.query ?? parsedBase.query
            } else {
                if parsedReference.path.hasPrefix("/") {
                    target.path = removeDotSegments(parsedReference.path)
                } else {
                    target.path = removeDotSegments(merge(base: parsedBase, referencePath: parsedReference.path))
                }
                target.query = parsedReference.query
            }
        }
        target.fragment = parsedReference.fragment
        return compose(target)
    }

    private static func parse(_ text: String) -> Components {
        var rest = Substring(text)
        var components = Components(scheme: nil, authority: nil, path: "", query: nil, fragment: nil)
        if let length = JSONLDSyntax.schemeLength(text) {
            let schemeEnd = rest.unicodeScalars.index(rest.startIndex, offsetBy: length)
            components.scheme = String(rest[..<schemeEnd])
            rest = rest[rest.unicodeScalars.index(after: schemeEnd)...]
        }
        if let hash = rest.firstIndex(of: "#") {
            components.fragment = String(rest[rest.index(after: hash)...])
            rest = rest[..<hash]
        }
        if let question = rest.firstIndex(of: "?") {
            components.query = String(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        if rest.hasPrefix("//") {
            let afterSlashes = rest.dropFirst(2)
            let authorityEnd = afterSlashes.firstIndex(of: "/") ?? afterSlashes.endIndex
            components.authority = String(afterSlashes[..<authorityEnd])
            rest = afterSlashes[authorityEnd...]
        }
        components.path = String(rest)
        return components
    }

    private static func merge(base: Components, referencePath: String) -> String {
        if base.authority != nil && base.path.isEmpty { return "/" + referencePath }
        guard let lastSlash = base.path.lastIndex(of: "/") else { return referencePath }
        return String(base.path[...lastSlash]) + referencePath
    }

    /// RFC 3986 section 5.2.4.
    private static func removeDotSegments(_ path: String) -> String {
        var input = Substring(path)
        var output: [Substring] = []
        while !input.isEmpty {
            if input.hasPrefix("../") {
                input = input.dropFirst(3)
            } else if input.hasPrefix("./") {
                input = input.dropFirst(2)
            } else if input.hasPrefix("/./") {
                input = input.dropFirst(2)
            } else if input == "/." {
                input = "/"
            } else if input.hasPrefix("/../") {
                input = input.dropFirst(3)
                if !output.isEmpty { output.removeLast() }
            } else if input == "/.." {
                input = "/"
                if !output.isEmpty { output.removeLast() }
            } else if input == "." || input == ".." {
                input = ""
            } else {
                // Move the first segment (with its leading "/", if any) to the output.
                let searchStart = input.hasPrefix("/") ? input.index(after: input.startIndex) : input.startIndex
                let segmentEnd = input[searchStart...].firstIndex(of: "/") ?? input.endIndex
                output.append(input[..<segmentEnd])
                input = input[segmentEnd...]
            }
        }
        return output.joined()
    }

    private static func compose(_ components: Components) -> String {
        var result = ""
        if let scheme = components.scheme { result += scheme + ":" }
        if let authority = components.authority { result += "//" + authority }
        result += components.path
        if let query = components.query { result += "?" + query }
        if let fragment = components.fragment { result += "#" + fragment }
        return result
    }
}
