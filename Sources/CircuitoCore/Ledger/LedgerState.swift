/// Roles an actor can hold (DESIGN.md "Actors and permissions").
public enum Role: String, Sendable, CaseIterable, Hashable {
    case authority, organisation, staff, merchant, auditor, beneficiary
}

/// A named table of the ledger state. Each is an LMDB named database of the ledger environment, written in the
/// same transaction as the records it comes from; `rebuild` recomputes every one of them from the log.
public struct StateTable: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// The table's place in `all`: storage keeps each table's database handle at this index, and hashing and
    /// comparing a table is an integer's work, not its name's (every state read and write does both).
    public let ordinal: Int

    private init(_ name: String, _ ordinal: Int) {
        self.name = name
        self.ordinal = ordinal
    }

    public var description: String { name }

    public static func == (first: StateTable, second: StateTable) -> Bool { first.ordinal == second.ordinal }
    public func hash(into hasher: inout Hasher) { hasher.combine(ordinal) }

    // Governance.
    public static let meta = StateTable("meta", 0)
    public static let eventIDs = StateTable("ids", 1)
    public static let actors = StateTable("actors", 2)
    public static let keys = StateTable("keys", 3)
    // The circuit.
    public static let policy = StateTable("policy", 4)
    public static let balances = StateTable("balances", 5)
    public static let accountHistory = StateTable("account_history", 6)
    public static let lots = StateTable("lots", 7)
    public static let spentLots = StateTable("spent_lots", 8)
    public static let payments = StateTable("payments", 9)
    public static let nonces = StateTable("nonces", 10)
    public static let settlements = StateTable("settlements", 11)
    public static let conversions = StateTable("conversions", 12)
    public static let opportunities = StateTable("opportunities", 13)
    public static let badgeClasses = StateTable("badge_classes", 14)
    public static let merchants = StateTable("merchants", 15)
    public static let catalogueIndex = StateTable("catalogue_index", 16)
    public static let cases = StateTable("cases", 17)
    public static let caseHistory = StateTable("case_history", 18)
    public static let activations = StateTable("activations", 19)
    public static let badges = StateTable("badges", 20)
    public static let subjects = StateTable("subjects", 21)

    /// The tables no rule reads: they serve queries only (an account's movements, a beneficiary's case history, the
    /// catalogue's search index). A replay that only checks the rules (`verify`) may leave them out, since no check
    /// can depend on them; the rule tests fail if a rule reads one.
    public static let queryOnly: [StateTable] = [accountHistory, catalogueIndex, caseHistory]

    /// Whether this table is one of `queryOnly` (by ordinal: every state write asks).
    public var isQueryOnly: Bool { Self.queryOnlyByOrdinal[ordinal] }

    private static let queryOnlyByOrdinal: [Bool] = all.map { table in queryOnly.contains(table) }

    /// Every state table, in a fixed order: `all[table.ordinal] == table`.
    public static let all: [StateTable] = {
        let tables = [
            meta, eventIDs, actors, keys, policy, balances, accountHistory, lots, spentLots, payments, nonces, settlements,
            conversions, opportunities, badgeClasses, merchants, catalogueIndex, cases, caseHistory, activations, badges, subjects,
        ]
        precondition(tables.indices.allSatisfy { tables[$0].ordinal == $0 }, "each table's ordinal is its place in the list")
        precondition(Set(tables.map(\.name)).count == tables.count, "table names are distinct")
        return tables
    }()
}

/// What the rulebook may read of the state before an event. Implemented over an LMDB transaction (live writes,
/// replay, rebuild) and in memory (tests, the specification's vectors), so every path runs the same rules.
public protocol LedgerStateReader {
    func value(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> [UInt8]?
    /// Entries whose key starts with `prefix`, in key order, at most `limit`.
    func entries(_ table: StateTable, prefix: [UInt8], limit: Int) throws(LedgerError) -> [(key: [UInt8], value: [UInt8])]
    /// A stored JSON value (projections store canonical JSON). The default parses `value`; a reader may keep
    /// parsed values, as long as it answers exactly what parsing `value` would.
    func json(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> JSONValue?
    /// An actor's record. The default decodes `json(.actors, id)`; a reader may keep decoded records, as long as it
    /// answers exactly what decoding would (every event reads its signer's).
    func actor(_ id: String) throws(LedgerError) -> ActorRecord?
}

/// One change an accepted event makes to the state.
public enum StateChange: Sendable, Hashable {
    case put(StateTable, key: [UInt8], value: [UInt8])
    case delete(StateTable, key: [UInt8])
}

/// Keys made of several text parts joined by a zero byte (identifiers never contain one), so that a prefix scan
/// over the first part finds exactly that part's entries.
public enum StateKey {
    public static func make(_ parts: String...) -> [UInt8] {
        var key: [UInt8] = []
        for (index, part) in parts.enumerated() {
            if index > 0 { key.append(0) }
            key.append(contentsOf: part.utf8)
        }
        return key
    }

    public static func prefix(_ part: String) -> [UInt8] { Array(part.utf8) + [0] }

    /// 8-byte big-endian, so that byte order is numeric order.
    public static func number(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
    }

    public static func decodeNumber(_ bytes: some Collection<UInt8>) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// Parsing what a state table holds.
public enum StoredJSON {
    /// Parses a stored value of `table`; a failure means damage, not bad input.
    public static func parse(_ bytes: [UInt8], table: StateTable) throws(LedgerError) -> JSONValue {
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw LedgerError(.integrity, "state table \(table) holds damaged JSON: \(error.message)")
        }
    }
}

extension LedgerStateReader {
    public func json(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> JSONValue? {
        guard let bytes = try value(table, key) else { return nil }
        return try StoredJSON.parse(bytes, table: table)
    }

    public func json(_ table: StateTable, _ key: String) throws(LedgerError) -> JSONValue? {
        try json(table, Array(key.utf8))
    }

    /// Whether the genesis record has been applied (cheaper than decoding it).
    public func hasGenesis() throws(LedgerError) -> Bool {
        try value(.meta, Array("genesis".utf8)) != nil
    }

    public func genesis() throws(LedgerError) -> GenesisInfo? {
        guard let json = try json(.meta, "genesis") else { return nil }
        return try GenesisInfo(json: json)
    }

    public func actor(_ id: String) throws(LedgerError) -> ActorRecord? {
        guard let json = try json(.actors, id) else { return nil }
        return try ActorRecord(json: json)
    }

    /// The actor that holds or once held this key; keys are never shared between actors.
    public func ownerOfKey(_ multikey: String) throws(LedgerError) -> String? {
        guard let bytes = try value(.keys, Array(multikey.utf8)) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func sequenceNumber(ofEventID id: String) throws(LedgerError) -> UInt64? {
        guard let bytes = try value(.eventIDs, Array(id.utf8)) else { return nil }
        guard let sequenceNumber = StateKey.decodeNumber(bytes) else {
            throw LedgerError(.integrity, "the id index entry for \(id) is damaged")
        }
        return sequenceNumber
    }
}

/// One entry of a state table, as a hash key: the bytes are hashed in one go, not byte by byte as `[UInt8]`'s own
/// hash does (which showed in profiles of the writer and of replays).
public struct StateEntryKey: Hashable, Sendable {
    public let table: StateTable
    public let key: [UInt8]

    public init(table: StateTable, key: [UInt8]) {
        self.table = table
        self.key = key
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(table.ordinal)
        key.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

/// Builds the changes of one event, remembering its own writes so later reads within the event see them.
public struct StateChanges {
    public private(set) var changes: [StateChange] = []
    /// Where each key's latest change is, once there are too many changes to search them in order. Most events
    /// make a handful of changes, and comparing a few short keys costs less than hashing them.
    private var latestChange: [StateEntryKey: Int]?
    static let maximumChangesSearchedInOrder = 32

    public init() {}

    public mutating func put(_ table: StateTable, _ key: [UInt8], _ value: [UInt8]) {
        record(.put(table, key: key, value: value), table: table, key: key)
    }

    public mutating func put(_ table: StateTable, _ key: [UInt8], json: JSONValue) {
        put(table, key, CanonicalJSON.encode(json))
    }

    public mutating func put(_ table: StateTable, _ key: String, json: JSONValue) {
        put(table, Array(key.utf8), CanonicalJSON.encode(json))
    }

    public mutating func delete(_ table: StateTable, _ key: [UInt8]) {
        record(.delete(table, key: key), table: table, key: key)
    }

    private mutating func record(_ change: StateChange, table: StateTable, key: [UInt8]) {
        changes.append(change)
        if latestChange != nil {
            latestChange?[StateEntryKey(table: table, key: key)] = changes.count - 1
        } else if changes.count > Self.maximumChangesSearchedInOrder {
            var index: [StateEntryKey: Int] = [:]
            for (position, change) in changes.enumerated() {
                switch change {
                case .put(let table, let key, _), .delete(let table, let key): index[StateEntryKey(table: table, key: key)] = position
                }
            }
            latestChange = index
        }
    }

    /// What this event wrote under `key`, if it wrote anything: `.some(nil)` is a delete.
    public func pending(_ table: StateTable, _ key: [UInt8]) -> [UInt8]?? {
        if let latestChange {
            guard let position = latestChange[StateEntryKey(table: table, key: key)] else { return nil }
            return Self.written(by: changes[position])
        }
        for change in changes.reversed() {
            switch change {
            case .put(let changedTable, let changedKey, let value) where changedKey == key && changedTable == table:
                return .some(value)
            case .delete(let changedTable, let changedKey) where changedKey == key && changedTable == table:
                return .some(nil)
            default:
                continue
            }
        }
        return nil
    }

    private static func written(by change: StateChange) -> [UInt8]?? {
        switch change {
        case .put(_, _, let value): return .some(value)
        case .delete: return .some(nil)
        }
    }
}

/// The state held in memory: for tests and the specification's vectors (scans are linear).
public struct MemoryLedgerState: LedgerStateReader, Sendable {
    public private(set) var tables: [StateTable: [[UInt8]: [UInt8]]] = [:]

    public init() {}

    public func value(_ table: StateTable, _ key: [UInt8]) -> [UInt8]? { tables[table]?[key] }

    public func entries(_ table: StateTable, prefix: [UInt8], limit: Int) -> [(key: [UInt8], value: [UInt8])] {
        let matching = (tables[table] ?? [:]).filter { $0.key.starts(with: prefix) }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
        return matching.prefix(limit).map { (key: $0.key, value: $0.value) }
    }

    public mutating func apply(_ changes: [StateChange]) {
        for change in changes {
            switch change {
            case .put(let table, let key, let value): tables[table, default: [:]][key] = value
            case .delete(let table, let key): tables[table]?[key] = nil
            }
        }
    }
}

/// An actor as the registry knows it at some point of the log.
public struct ActorRecord: Sendable, Hashable {
    public enum KeyStatus: String, Sendable, Hashable { case active, revoked }

    public let id: String
    public let role: Role
    public let name: String
    public let organisation: String?
    /// Every key the actor ever had, by Multikey text. Revoked keys stay, so they can never be reused.
    public var keys: [String: KeyStatus]
    public var suspended: Bool
    /// The seq of the `actor.registered` (or genesis) event that created it.
    public let registeredAt: UInt64
    /// Organisations' district (for reports).
    public let district: String?

    public init(
        id: String, role: Role, name: String, organisation: String?, keys: [String: KeyStatus], suspended: Bool,
        registeredAt: UInt64, district: String? = nil
    ) {
        self.district = district
        self.id = id
        self.role = role
        self.name = name
        self.organisation = organisation
        self.keys = keys
        self.suspended = suspended
        self.registeredAt = registeredAt
    }

    public var activeKeys: [String] { keys.filter { $0.value == .active }.map(\.key).sorted() }

    public var json: JSONValue {
        var members: JSONObject = [
            "actor": .string(id), "role": .string(role.rawValue), "name": .string(name),
            "keys": .object(JSONObject(keys.mapValues { JSONValue.string($0.rawValue) })), "suspended": .bool(suspended),
            "registered_at": .integer(Int64(registeredAt)),
        ]
        if let organisation { members["organisation"] = .string(organisation) }
        if let district { members["district"] = .string(district) }
        return .object(members)
    }

    /// Reads the stored projection form; anything else there means the projection is damaged.
    public init(json: JSONValue) throws(LedgerError) {
        guard case .string(let id)? = json["actor"], case .string(let roleText)? = json["role"],
            let role = Role(rawValue: roleText), case .string(let name)? = json["name"],
            case .object(let keyMembers)? = json["keys"], case .bool(let suspended)? = json["suspended"],
            case .integer(let registeredAt)? = json["registered_at"], registeredAt >= 0
        else { throw LedgerError(.integrity, "stored actor record is damaged") }
        var keys: [String: KeyStatus] = [:]
        for (key, value) in keyMembers {
            guard case .string(let statusText) = value, let status = KeyStatus(rawValue: statusText) else {
                throw LedgerError(.integrity, "stored actor record has a damaged key status")
            }
            keys[key] = status
        }
        self.init(
            id: id, role: role, name: name, organisation: json["organisation"]?.stringValue, keys: keys,
            suspended: suspended, registeredAt: UInt64(registeredAt), district: json["district"]?.stringValue)
    }
}

/// What genesis fixes for the life of the ledger.
public struct GenesisInfo: Sendable, Hashable {
    public let origin: String
    public let authority: String
    /// Multikey of the ledger's checkpoint key.
    public let checkpointKey: String
    public let currencyCode: String
    public let currencyDecimals: Int64

    public init(origin: String, authority: String, checkpointKey: String, currencyCode: String, currencyDecimals: Int64) {
        self.origin = origin
        self.authority = authority
        self.checkpointKey = checkpointKey
        self.currencyCode = currencyCode
        self.currencyDecimals = currencyDecimals
    }

    public var json: JSONValue {
        .object([
            "origin": .string(origin), "authority": .string(authority), "checkpoint_key": .string(checkpointKey),
            "currency": .object(["code": .string(currencyCode), "decimals": .integer(currencyDecimals)]),
        ])
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard case .string(let origin)? = json["origin"], case .string(let authority)? = json["authority"],
            case .string(let checkpointKey)? = json["checkpoint_key"],
            case .string(let code)? = json["currency"]?["code"], case .integer(let decimals)? = json["currency"]?["decimals"]
        else { throw LedgerError(.integrity, "stored genesis information is damaged") }
        self.init(origin: origin, authority: authority, checkpointKey: checkpointKey, currencyCode: code, currencyDecimals: decimals)
    }
}
