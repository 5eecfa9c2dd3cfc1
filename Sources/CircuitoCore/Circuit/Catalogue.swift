/// The catalogue's search index: `kind ‖ 0 ‖ facet ‖ 0 ‖ value ‖ 0 ‖ id` → empty, for the facets category,
/// district, provider and word (lowercase words of at least 3 letters from the names and descriptions).
public enum CatalogueIndex {
    public static let kinds = ["opportunity", "merchant", "badge_class"]
    public static let facets = ["category", "district", "provider", "word"]
    /// The facets other than words that each kind's entries are indexed under (`keys(kind:id:entry:)`).
    public static let facetsOfKind: [String: [String]] = [
        "opportunity": ["category", "district", "provider"], "merchant": ["category", "district"], "badge_class": ["provider"],
    ]
    /// Words indexed per entry.
    public static let maximumWords = 64

    public static func key(kind: String, facet: String, value: String, id: String) -> [UInt8] {
        StateKey.make(kind, facet, value, id)
    }

    public static func prefix(kind: String, facet: String, value: String) -> [UInt8] {
        StateKey.make(kind, facet, value) + [0]
    }

    /// The longest word indexed, in UTF-8 bytes.
    public static let maximumWordBytes = 64

    /// Lowercase words of letters and digits, at least 3 characters and at most `maximumWordBytes`, in order of
    /// first appearance, at most `maximumWords`: what an entry is indexed under.
    public static func words(_ text: String) -> [String] {
        Array(candidateWords(text).filter { $0.utf8.count <= maximumWordBytes }.prefix(maximumWords))
    }

    /// Every distinct lowercase run of at least 3 letters and digits, in order of first appearance, long ones
    /// included: a search checks these, so that a word the index cannot hold is refused rather than dropped.
    public static func candidateWords(_ text: String) -> [String] {
        var words: [String] = []
        var seen: Set<String> = []
        var current = ""
        func flush() {
            if current.count >= 3, !seen.contains(current) {
                seen.insert(current)
                words.append(current)
            }
            current = ""
        }
        for character in text.lowercased() {
            if character.isLetter || character.isNumber { current.append(character) } else { flush() }
        }
        flush()
        return words
    }

    /// The index keys of one catalogue entry.
    public static func keys(kind: String, id: String, entry: JSONValue) -> [[UInt8]] {
        var pairs: [(String, String)] = []
        switch kind {
        case "opportunity":
            pairs = [("category", entry["category"]?.stringValue ?? ""), ("district", entry["district"]?.stringValue ?? ""),
                     ("provider", entry["provider"]?.stringValue ?? "")]
            pairs += words((entry["title"]?.stringValue ?? "") + " " + (entry["description"]?.stringValue ?? "")).map { ("word", $0) }
        case "merchant":
            pairs = (entry["categories"]?.arrayValue ?? []).compactMap(\.stringValue).map { ("category", $0) }
            pairs.append(("district", entry["district"]?.stringValue ?? ""))
            pairs += words(entry["name"]?.stringValue ?? "").map { ("word", $0) }
        default:
            pairs = [("provider", entry["issuer"]?.stringValue ?? "")]
            pairs += words((entry["name"]?.stringValue ?? "") + " " + (entry["description"]?.stringValue ?? "")).map { ("word", $0) }
        }
        // The search refuses facets by `facetsOfKind`: the two must name the same ones.
        assert(pairs.allSatisfy { $0.0 == "word" || facetsOfKind[kind]?.contains($0.0) == true }, "a facet of \(kind) missing from facetsOfKind")
        return pairs.filter { !$0.1.isEmpty }.map { key(kind: kind, facet: $0.0, value: $0.1, id: id) }
    }
}

extension RuleContext {
    mutating func index(kind: String, id: String, entry: JSONValue) {
        for key in CatalogueIndex.keys(kind: kind, id: id, entry: entry) { changes.put(.catalogueIndex, key, []) }
    }

    mutating func unindex(kind: String, id: String, entry: JSONValue) {
        for key in CatalogueIndex.keys(kind: kind, id: id, entry: entry) { changes.delete(.catalogueIndex, key) }
    }
}
