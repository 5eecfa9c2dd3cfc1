/// A JSON value as the ledger sees it.
///
/// Numbers written as integers within ±(2^53 − 1) are `.integer`; every other number (a fraction, an exponent, or an
/// integer too large to be exact in IEEE 754) is `.number`, which canonical JSON can print but events refuse.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The largest integer magnitude that an IEEE 754 double holds exactly (RFC 8785 and I-JSON's limit).
    public static let maximumExactInteger: Int64 = (1 << 53) - 1

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var integerValue: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// True when a non-integer number appears anywhere inside this value.
    public var containsNonIntegerNumber: Bool {
        switch self {
        case .number: return true
        case .array(let elements): return elements.contains { $0.containsNonIntegerNumber }
        case .object(let members): return members.values.contains { $0.containsNonIntegerNumber }
        case .null, .bool, .integer, .string: return false
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements))
    }
}

/// A JSON object whose members are kept in RFC 8785 order (keys sorted by their UTF-16 code units).
///
/// Ledger objects have a handful of members and are parsed, read and canonicalised far more often than changed, so
/// two sorted arrays beat a hash table: canonical encoding needs no sort, parsing canonical input needs no hashing,
/// and a lookup is a short binary search. Keys are compared as exact code unit sequences (as JSON and JCS do), not
/// by Unicode canonical equivalence as Swift's `String ==` would.
public struct JSONObject: Sendable, Hashable {
    /// Sorted by `JSONObject.order`, no two equal.
    public private(set) var keys: [String]
    /// `values[i]` belongs to `keys[i]`.
    public private(set) var values: [JSONValue]

    public init() {
        keys = []
        values = []
    }

    /// Members already sorted and unique (checked in debug builds).
    init(sortedKeys: [String], values: [JSONValue]) {
        assert(sortedKeys.count == values.count, "one value per key")
        assert(zip(sortedKeys, sortedKeys.dropFirst()).allSatisfy { Self.order($0, $1) < 0 }, "keys sorted and unique")
        self.keys = sortedKeys
        self.values = values
    }

    /// Members in any order; a later duplicate key replaces the earlier one.
    public init(_ members: some Sequence<(String, JSONValue)>) {
        let pairs = Array(members)
        var keys: [String] = []
        var values: [JSONValue] = []
        keys.reserveCapacity(pairs.count)
        values.reserveCapacity(pairs.count)
        if pairs.count <= Self.maximumMembersInsertedInOrder {
            // Objects built in code (literals) are small: insertion from the end, no index array, no closure.
            members: for (key, value) in pairs {
                var position = keys.count
                while position > 0 {
                    let comparison = Self.order(keys[position - 1], key)
                    if comparison == 0 {
                        values[position - 1] = value
                        continue members
                    }
                    if comparison < 0 { break }
                    position -= 1
                }
                keys.insert(key, at: position)
                values.insert(value, at: position)
            }
        } else {
            // Sorted once; equal keys keep their order, so the last one wins below.
            let order = pairs.indices.sorted { first, second in
                let comparison = Self.order(pairs[first].0, pairs[second].0)
                return comparison != 0 ? comparison < 0 : first < second
            }
            for index in order {
                if let last = keys.last, Self.order(last, pairs[index].0) == 0 {
                    values[values.count - 1] = pairs[index].1
                } else {
                    keys.append(pairs[index].0)
                    values.append(pairs[index].1)
                }
            }
        }
        self.init(sortedKeys: keys, values: values)
    }

    static let maximumMembersInsertedInOrder = 16

    public init(_ dictionary: [String: JSONValue]) {
        self.init(dictionary.lazy.map { ($0.key, $0.value) })
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// Where `key` is, or where it would go.
    private func position(of key: String) -> (index: Int, found: Bool) {
        var low = 0
        var high = keys.count
        while low < high {
            let middle = (low + high) / 2
            let comparison = Self.order(keys[middle], key)
            if comparison == 0 { return (middle, true) }
            if comparison < 0 { low = middle + 1 } else { high = middle }
        }
        return (low, false)
    }

    public subscript(key: String) -> JSONValue? {
        get {
            let (index, found) = position(of: key)
            guard found else { return nil }
            return values[index]
        }
        set {
            let (index, found) = position(of: key)
            switch (found, newValue) {
            case (true, let value?): values[index] = value
            case (true, nil):
                keys.remove(at: index)
                values.remove(at: index)
            case (false, let value?):
                keys.insert(key, at: index)
                values.insert(value, at: index)
            case (false, nil): break
            }
        }
    }

    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        let old = self[key]
        self[key] = nil
        return old
    }

    @discardableResult
    public mutating func updateValue(_ value: JSONValue, forKey key: String) -> JSONValue? {
        let old = self[key]
        self[key] = value
        return old
    }

    public func mapValues(_ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        JSONObject(sortedKeys: keys, values: try values.map(transform))
    }

    public func filter(_ isIncluded: ((key: String, value: JSONValue)) throws -> Bool) rethrows -> JSONObject {
        var result = JSONObject()
        for member in self where try isIncluded(member) {
            result.keys.append(member.key)
            result.values.append(member.value)
        }
        return result
    }

    /// Adds `other`'s members; for a key in both, `combine` picks the value.
    public mutating func merge(_ other: JSONObject, uniquingKeysWith combine: (JSONValue, JSONValue) throws -> JSONValue) rethrows {
        for (key, value) in other {
            if let existing = self[key] { self[key] = try combine(existing, value) } else { self[key] = value }
        }
    }

    public func merging(_ other: JSONObject, uniquingKeysWith combine: (JSONValue, JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        var result = self
        try result.merge(other, uniquingKeysWith: combine)
        return result
    }

    /// The members as a dictionary (for code that needs one).
    public var dictionary: [String: JSONValue] {
        Dictionary(zip(keys, values), uniquingKeysWith: { first, _ in first })
    }

    /// RFC 8785 key order: negative when `first` sorts before `second`, zero when they are the same code units.
    public static func order(_ first: String, _ second: String) -> Int {
        var first = first
        var second = second
        return first.withUTF8 { firstBytes in
            second.withUTF8 { secondBytes in
                CanonicalJSON.compareInUTF16Order(firstBytes, secondBytes)
            }
        }
    }
}

extension JSONObject: RandomAccessCollection {
    public typealias Element = (key: String, value: JSONValue)
    public var startIndex: Int { 0 }
    public var endIndex: Int { keys.count }
    public subscript(position: Int) -> Element { (keys[position], values[position]) }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }
}
