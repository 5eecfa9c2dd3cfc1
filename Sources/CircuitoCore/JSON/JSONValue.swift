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
    case object([String: JSONValue])

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

    public var objectValue: [String: JSONValue]? {
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
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var members: [String: JSONValue] = [:]
        for (key, value) in elements { members[key] = value }
        self = .object(members)
    }
    public init(nilLiteral: ()) { self = .null }
}
