import CircuitoCore
import NIOCore

/// Refusals of the socket API itself, in the ledger's code space (6000s), so that clients see one kind of error:
/// a stable name and number with a readable message.
extension LedgerError.Code {
    /// A signed read request's `ts` is more than the allowed window away from the server's clock.
    public static let requestExpired = Self(name: "request_expired", number: 6001)
    /// A signed read request's nonce was already used by that actor.
    public static let requestReplayed = Self(name: "request_replayed", number: 6002)
    /// The reader may not read this data (role or relationship).
    public static let notAuthorised = Self(name: "not_authorised", number: 6003)
    /// The server is at a bound (writer queue, in-flight requests, nonce store, connections); retry later.
    public static let overloaded = Self(name: "overloaded", number: 6004)
    /// A subscriber fell further behind the live log than its buffer allows and was cut off.
    public static let subscriberTooSlow = Self(name: "subscriber_too_slow", number: 6005)
    /// The server is stopping and takes no new work.
    public static let shuttingDown = Self(name: "shutting_down", number: 6006)
    /// `expected_size` was given and the log had another size when the event's turn came.
    public static let sizeMismatch = Self(name: "size_mismatch", number: 6007)
    /// A signed read request is malformed or its signature does not verify.
    public static let invalidReadRequest = Self(name: "invalid_read_request", number: 6008)
}

/// A JSON-RPC error object: `{"code":…,"message":…,"data":…}`.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public let code: Int
    public let message: String
    public let data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    /// A ledger refusal: its number as the code, its name in `data.code`.
    public init(_ error: LedgerError, extra: JSONObject = [:]) {
        var data = extra
        data["code"] = .string(error.code.name)
        self.init(code: error.code.number, message: error.message, data: .object(data))
    }

    // JSON-RPC 2.0's own codes (section 5.1).
    public static func parseError(_ message: String) -> RPCError {
        RPCError(code: -32700, message: message, data: ["code": "parse_error"])
    }
    public static func invalidRequest(_ message: String, name: String = "invalid_request") -> RPCError {
        RPCError(code: -32600, message: message, data: .object(["code": .string(name)]))
    }
    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(code: -32601, message: "method \"\(method.prefix(80))\" does not exist", data: ["code": "method_not_found"])
    }
    public static func invalidParams(_ message: String) -> RPCError {
        RPCError(code: -32602, message: message, data: ["code": "invalid_params"])
    }
    public static func internalError(_ message: String) -> RPCError {
        RPCError(code: -32603, message: message, data: ["code": "internal_error"])
    }

    /// The stable name in `data.code`, when there is one.
    public var name: String? { data?["code"]?.stringValue }

    public var json: JSONValue {
        var members: JSONObject = ["code": .integer(Int64(code)), "message": .string(message)]
        if let data { members["data"] = data }
        return .object(members)
    }

    public init?(json: JSONValue) {
        guard case .integer(let code)? = json["code"], case .string(let message)? = json["message"] else { return nil }
        self.init(code: Int(code), message: message, data: json["data"])
    }

    public var description: String { "\(name ?? String(code)): \(message)" }
}

/// One JSON-RPC request or notification, as read from a line.
public struct RPCRequest: Sendable {
    /// The request id: absent for a notification (which gets no answer).
    public let id: JSONValue?
    public let method: String
    /// The named parameters (by-position parameters are refused: every method takes an object).
    public let params: JSONValue?

    /// A write (`submit`, `submit_batch`): it goes to the writer, and its answer is a receipt of what was committed.
    public var isWrite: Bool { method == "submit" || method == "submit_batch" }

    public init(id: JSONValue?, method: String, params: JSONValue?) {
        self.id = id
        self.method = method
        self.params = params
    }

    /// The longest string id, in UTF-8 bytes. Every answer echoes its request's id, refusals included, which are
    /// written however many a client leaves unread: ids as long as a frame made each refusal up to a frame, and 400
    /// connections that read nothing held a server at 1 GiB so.
    public static let maximumIDBytes = 256

    /// Reads one element of a message; the error carries the id when the element had a usable one.
    static func decode(_ value: JSONValue) -> Result<RPCRequest, RPCDecodingFailure> {
        guard case .object(let members) = value else {
            return .failure(RPCDecodingFailure(id: .null, error: .invalidRequest("a request is a JSON object")))
        }
        // The id is echoed in the error when it is of an allowed type, so the client can match it.
        var id: JSONValue? = nil
        if let given = members["id"] {
            switch given {
            case .string(let text) where text.utf8.count > maximumIDBytes:
                return .failure(RPCDecodingFailure(id: .null, error: .invalidRequest("id must be at most \(maximumIDBytes) bytes: every answer echoes it")))
            case .string, .integer, .null: id = given
            // Answers are canonical JSON, so such a number would come back in another spelling (1e2 as 100) or
            // rounded (2^53 + 1 as 2^53): a client matching answers by id would never find its own.
            case .number: return .failure(RPCDecodingFailure(id: .null, error: .invalidRequest("id must be a string, an integer within ±(2^53 − 1) written without a fraction or exponent, or null: the answer could not carry any other number exactly")))
            default: return .failure(RPCDecodingFailure(id: .null, error: .invalidRequest("id must be a string, an integer or null")))
            }
        }
        let answerID = id ?? .null
        guard members["jsonrpc"] == .string("2.0") else {
            return .failure(RPCDecodingFailure(id: answerID, error: .invalidRequest("jsonrpc must be \"2.0\"")))
        }
        guard case .string(let method)? = members["method"] else {
            return .failure(RPCDecodingFailure(id: answerID, error: .invalidRequest("method must be a string")))
        }
        if let extra = members.keys.first(where: { !["jsonrpc", "id", "method", "params"].contains($0) }) {
            return .failure(RPCDecodingFailure(id: answerID, error: .invalidRequest("a request has no member \"\(extra.prefix(40))\"")))
        }
        let params = members["params"]
        switch params {
        case nil, .object?, .array?: break
        default: return .failure(RPCDecodingFailure(id: answerID, error: .invalidRequest("params must be an object or an array")))
        }
        return .success(RPCRequest(id: id, method: method, params: params))
    }
}

/// A message element that is not a valid request, with the id to answer it under (null when unusable).
struct RPCDecodingFailure: Error {
    let id: JSONValue
    let error: RPCError
}

/// Building the lines the server and clients write.
public enum RPCMessage {
    public static func result(id: JSONValue, _ result: JSONValue) -> JSONValue {
        .object(["jsonrpc": "2.0", "id": id, "result": result])
    }

    public static func error(id: JSONValue, _ error: RPCError) -> JSONValue {
        .object(["jsonrpc": "2.0", "id": id, "error": error.json])
    }

    /// The answer to a request with this outcome; none for a notification (no id).
    static func answer(to request: RPCRequest, _ outcome: Result<JSONValue, RPCError>) -> JSONValue? {
        guard let id = request.id else { return nil }
        switch outcome {
        case .success(let value): return result(id: id, value)
        case .failure(let failure): return error(id: id, failure)
        }
    }

    public static func notification(method: String, params: JSONValue) -> JSONValue {
        .object(["jsonrpc": "2.0", "method": .string(method), "params": params])
    }

    public static func request(id: JSONValue, method: String, params: JSONValue) -> JSONValue {
        .object(["jsonrpc": "2.0", "id": id, "method": .string(method), "params": params])
    }

    /// One line: canonical JSON and a newline.
    public static func line(_ value: JSONValue) -> [UInt8] {
        var bytes = CanonicalJSON.encode(value)
        bytes.append(0x0A)
        return bytes
    }
}

/// Typed, strict reads of a method's named parameters; every refusal is `-32602 invalid params` naming the field.
struct Params {
    let members: JSONObject
    let method: String

    init(_ params: JSONValue?, method: String) throws(RPCError) {
        switch params {
        case nil: members = [:]
        case .object(let members)?: self.members = members
        default: throw .invalidParams("\(method) takes its parameters by name, as an object")
        }
        self.method = method
    }

    func allowOnly(_ keys: Set<String>) throws(RPCError) {
        if let extra = members.keys.first(where: { !keys.contains($0) }) {
            throw .invalidParams("\(method) has no parameter \"\(extra.prefix(40))\"")
        }
    }

    func string(_ key: String) throws(RPCError) -> String {
        guard let value = try optionalString(key) else { throw .invalidParams("\(method) needs \"\(key)\" (a string)") }
        return value
    }

    func optionalString(_ key: String) throws(RPCError) -> String? {
        switch members[key] {
        case nil: return nil
        case .string(let value)?: return value
        default: throw .invalidParams("\(method) parameter \"\(key)\" must be a string")
        }
    }

    func identifier(_ key: String) throws(RPCError) -> String {
        try checkedIdentifier(try string(key), key)
    }

    private func checkedIdentifier(_ value: String, _ key: String) throws(RPCError) -> String {
        guard Identifier.isValid(value) else { throw .invalidParams("\(method) parameter \"\(key)\" must be an identifier (1 to 128 letters, digits or . _ : -)") }
        return value
    }

    func optionalIdentifier(_ key: String) throws(RPCError) -> String? {
        guard members[key] != nil else { return nil }
        return try identifier(key)
    }

    func count(_ key: String) throws(RPCError) -> UInt64 {
        guard let value = try optionalCount(key) else { throw .invalidParams("\(method) needs \"\(key)\" (a whole number from 0 to \(JSONValue.maximumExactInteger))") }
        return value
    }

    func optionalCount(_ key: String) throws(RPCError) -> UInt64? {
        switch members[key] {
        case nil: return nil
        case .integer(let value)? where value >= 0: return UInt64(value)
        // Past 2^53 − 1 a JSON number is no exact integer (RFC 8785): the message gives the range, not only the sign.
        default: throw .invalidParams("\(method) parameter \"\(key)\" must be a whole number from 0 to \(JSONValue.maximumExactInteger)")
        }
    }

    /// A whole number in `range`, nil when absent.
    func optionalInteger(_ key: String, in range: ClosedRange<Int>) throws(RPCError) -> Int? {
        switch members[key] {
        case nil: return nil
        // Int is 64 bits on every platform this runs on, so the conversion is exact.
        case .integer(let value)? where range.contains(Int(value)): return Int(value)
        default: throw .invalidParams("\(method) parameter \"\(key)\" must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    /// A page size between 1 and `maximum`, `defaultValue` when absent.
    func limit(default defaultValue: Int, maximum: Int) throws(RPCError) -> Int {
        switch members["limit"] {
        case nil: return defaultValue
        case .integer(let value)? where value >= 1 && value <= Int64(maximum): return Int(value)
        default: throw .invalidParams("\(method) parameter \"limit\" must be an integer from 1 to \(maximum)")
        }
    }

    /// A paged read's cursor that is text (an id, or `lots.expired`'s `<beneficiary>/<lot>`): absent or null is the
    /// first page, as for a seq cursor, so that a client may pass back whatever `next_after` it holds.
    func optionalTextCursor(_ key: String) throws(RPCError) -> String? {
        switch members[key] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        default: throw .invalidParams("\(method) parameter \"\(key)\" must be a string (the next_after of the page before)")
        }
    }

    /// `optionalTextCursor` for cursors that are identifiers.
    func optionalIdentifierCursor(_ key: String) throws(RPCError) -> String? {
        try optionalTextCursor(key).map { (value) throws(RPCError) in try checkedIdentifier(value, key) }
    }

    func optionalSequenceCursor(_ key: String) throws(RPCError) -> UInt64? {
        switch members[key] {
        case nil, .null?: return nil
        case .integer(let value)? where value >= 0: return UInt64(value)
        default: throw .invalidParams("\(method) parameter \"\(key)\" must be a seq (the next_after of the page before)")
        }
    }
}
