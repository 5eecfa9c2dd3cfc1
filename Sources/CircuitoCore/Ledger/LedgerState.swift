/// Roles an actor can hold (DESIGN.md "Actors and permissions").
public enum Role: String, Sendable, CaseIterable, Hashable {
    case authority, organisation, staff, merchant, auditor, beneficiary
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

    public init(
        id: String, role: Role, name: String, organisation: String?, keys: [String: KeyStatus], suspended: Bool,
        registeredAt: UInt64
    ) {
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
        var members: [String: JSONValue] = [
            "actor": .string(id), "role": .string(role.rawValue), "name": .string(name),
            "keys": .object(keys.mapValues { .string($0.rawValue) }), "suspended": .bool(suspended),
            "registered_at": .integer(Int64(registeredAt)),
        ]
        if let organisation { members["organisation"] = .string(organisation) }
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
            suspended: suspended, registeredAt: UInt64(registeredAt))
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

/// What the rulebook may read of the state before an event. Implemented over an LMDB write transaction for live
/// writes and in memory for replay, so both run the same rules.
public protocol LedgerStateReader {
    func genesis() throws(LedgerError) -> GenesisInfo?
    func actor(_ id: String) throws(LedgerError) -> ActorRecord?
    /// The actor that holds or once held this key; keys are never shared between actors.
    func ownerOfKey(_ multikey: String) throws(LedgerError) -> String?
    func sequenceNumber(ofEventID id: String) throws(LedgerError) -> UInt64?
}

/// One change an accepted event makes to the state; projections apply these.
public enum StateChange: Sendable, Hashable {
    case setGenesis(GenesisInfo)
    case putActor(ActorRecord)
    case claimKey(multikey: String, actor: String)
    case recordEventID(String, sequenceNumber: UInt64)
}

/// The state held in memory: used by replay (`verify`) and by tests.
public struct MemoryLedgerState: LedgerStateReader, Sendable {
    public private(set) var genesisInfo: GenesisInfo?
    public private(set) var actors: [String: ActorRecord] = [:]
    public private(set) var keyOwners: [String: String] = [:]
    public private(set) var eventIDs: [String: UInt64] = [:]

    public init() {}

    public func genesis() -> GenesisInfo? { genesisInfo }
    public func actor(_ id: String) -> ActorRecord? { actors[id] }
    public func ownerOfKey(_ multikey: String) -> String? { keyOwners[multikey] }
    public func sequenceNumber(ofEventID id: String) -> UInt64? { eventIDs[id] }

    public mutating func apply(_ changes: [StateChange]) {
        for change in changes {
            switch change {
            case .setGenesis(let info): genesisInfo = info
            case .putActor(let record): actors[record.id] = record
            case .claimKey(let multikey, let actor): keyOwners[multikey] = actor
            case .recordEventID(let id, let sequenceNumber): eventIDs[id] = sequenceNumber
            }
        }
    }
}
