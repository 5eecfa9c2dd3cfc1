import CircuitoCrypto

/// The one rulebook: live writes, `verify` and replicas all run `Rulebook.check` on every event, in seq order.
///
/// `check` reads the state before the event and returns the changes the event makes; it writes nothing, so a
/// refused event leaves no trace.
public enum Rulebook {
    public static let currencyCode = "TOC"
    public static let currencyDecimals: Int64 = 2
    /// Keys one `actor.registered` may name; more is a mistake, not a need.
    public static let maximumKeysPerRegistration = 8
    public static let maximumNameBytes = 200

    /// Event types and the roles that may sign each. The type's own rule runs after this check.
    public static let permittedRoles: [String: Set<Role>] = [
        "ledger.genesis": [.authority],
        "actor.registered": [.authority, .organisation, .staff],
        "actor.key_added": Set(Role.allCases),
        "actor.key_revoked": Set(Role.allCases),
        "actor.suspended": [.authority, .organisation, .staff],
    ]

    public static func check(
        _ verifiedEvent: VerifiedEvent, sequenceNumber: UInt64, state: some LedgerStateReader
    ) throws(LedgerError) -> [StateChange] {
        let event = verifiedEvent.event
        if let earlier = try state.sequenceNumber(ofEventID: event.id) {
            throw LedgerError(.idConflict, "event id \(quoted(event.id)) is already recorded at seq \(earlier) with other content")
        }
        var changes: [StateChange]
        if event.type == "ledger.genesis" {
            changes = try checkGenesis(event, sequenceNumber: sequenceNumber, state: state)
        } else {
            guard try state.genesis() != nil else {
                throw LedgerError(.genesisRequired, "the first record (seq 0) must be ledger.genesis")
            }
            guard let roles = permittedRoles[event.type] else {
                throw LedgerError(.unknownEventType, "event type \(quoted(event.type)) is not known to this ledger")
            }
            let signer = try activeSigner(of: event, state: state)
            guard roles.contains(signer.role) else {
                throw LedgerError(
                    .roleNotPermitted,
                    "\(event.type) may be signed by \(roles.map(\.rawValue).sorted().joined(separator: ", ")), not by \(signer.role.rawValue) \(quoted(signer.id))")
            }
            let body = BodyReader(event.body, type: event.type)
            switch event.type {
            case "actor.registered":
                changes = try checkActorRegistered(body, signer: signer, sequenceNumber: sequenceNumber, state: state)
            case "actor.key_added":
                changes = try checkKeyAdded(body, signer: signer, state: state)
            case "actor.key_revoked":
                changes = try checkKeyRevoked(body, signer: signer, state: state)
            case "actor.suspended":
                changes = try checkSuspended(body, signer: signer, state: state)
            default:
                // permittedRoles and this switch list the same types; a type in one and not the other is a bug.
                preconditionFailure("event type \(event.type) has roles but no rule")
            }
        }
        changes.append(.recordEventID(event.id, sequenceNumber: sequenceNumber))
        return changes
    }

    /// The signer must be registered, not suspended, and `key` must be one of its active keys.
    static func activeSigner(of event: Event, state: some LedgerStateReader) throws(LedgerError) -> ActorRecord {
        guard let signer = try state.actor(event.actor) else {
            throw LedgerError(.unknownActor, "actor \(quoted(event.actor)) is not registered")
        }
        switch signer.keys[event.key] {
        case .active?: break
        case .revoked?: throw LedgerError(.keyNotActive, "key \(event.key) of actor \(quoted(signer.id)) was revoked")
        case nil: throw LedgerError(.keyNotActive, "key \(event.key) is not a key of actor \(quoted(signer.id))")
        }
        guard !signer.suspended else {
            throw LedgerError(.actorSuspended, "actor \(quoted(signer.id)) is suspended and may not sign events")
        }
        return signer
    }

    // MARK: Governance

    static func checkGenesis(_ event: Event, sequenceNumber: UInt64, state: some LedgerStateReader) throws(LedgerError) -> [StateChange] {
        guard sequenceNumber == 0, try state.genesis() == nil else {
            throw LedgerError(.genesisAlreadyWritten, "ledger.genesis may only be the record at seq 0")
        }
        let body = BodyReader(event.body, type: event.type)
        try body.allowOnly(["origin", "authority", "checkpoint_key", "currency"])
        let origin = try body.string("origin")
        guard Origin.isValid(origin) else {
            throw LedgerError(.invalidBody, "ledger.genesis origin \(quoted(origin)) must be 1 to 128 printable ASCII characters without spaces or '+'")
        }
        let authority = BodyReader(try body.object("authority"), type: "ledger.genesis authority")
        try authority.allowOnly(["actor", "name", "keys"])
        let authorityID = try authority.identifier("actor")
        let name = try authority.name("name")
        let keys = try authority.keyList("keys")
        let checkpointKey = try body.multikey("checkpoint_key")
        let currency = BodyReader(try body.object("currency"), type: "ledger.genesis currency")
        try currency.allowOnly(["code", "decimals"])
        guard try currency.string("code") == currencyCode, try currency.integer("decimals") == currencyDecimals else {
            throw LedgerError(.invalidBody, "ledger.genesis currency must be {\"code\":\"TOC\",\"decimals\":2}")
        }
        guard event.actor == authorityID else {
            throw LedgerError(.invalidBody, "ledger.genesis is signed by the authority it names (\(quoted(authorityID))), not \(quoted(event.actor))")
        }
        guard keys.contains(event.key) else {
            throw LedgerError(.keyNotActive, "ledger.genesis must be signed with one of the authority keys it names")
        }
        guard !keys.contains(checkpointKey) else {
            throw LedgerError(.keyInUse, "the checkpoint key must differ from the authority keys")
        }
        let record = ActorRecord(
            id: authorityID, role: .authority, name: name, organisation: nil,
            keys: Dictionary(uniqueKeysWithValues: keys.map { ($0, .active) }), suspended: false, registeredAt: 0)
        var changes: [StateChange] = [
            .setGenesis(GenesisInfo(origin: origin, authority: authorityID, checkpointKey: checkpointKey,
                                    currencyCode: currencyCode, currencyDecimals: currencyDecimals)),
            .putActor(record),
        ]
        changes += keys.map { .claimKey(multikey: $0, actor: authorityID) }
        return changes
    }

    static func checkActorRegistered(
        _ body: BodyReader, signer: ActorRecord, sequenceNumber: UInt64, state: some LedgerStateReader
    ) throws(LedgerError) -> [StateChange] {
        try body.allowOnly(["actor", "role", "name", "keys", "organisation"])
        let actorID = try body.identifier("actor")
        let roleText = try body.string("role")
        guard let role = Role(rawValue: roleText) else {
            throw LedgerError(.invalidBody, "actor.registered role \(quoted(roleText)) is not one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let name = try body.name("name")
        let keys = try body.keyList("keys")
        let organisation = try body.optionalIdentifier("organisation")
        guard try state.actor(actorID) == nil else {
            throw LedgerError(.actorExists, "actor \(quoted(actorID)) is already registered")
        }
        for key in keys {
            if let owner = try state.ownerOfKey(key) {
                throw LedgerError(.keyInUse, "key \(key) already belongs to actor \(quoted(owner))")
            }
        }
        // Who may register whom: the authority anyone but another authority; an organisation its own staff and
        // beneficiaries; staff the beneficiaries of their organisation.
        switch (signer.role, role) {
        case (_, .authority):
            throw LedgerError(.roleNotPermitted, "there is one authority, named in genesis; it cannot be registered")
        case (.authority, _):
            break
        case (.organisation, .staff), (.organisation, .beneficiary):
            guard organisation == signer.id else {
                throw LedgerError(.roleNotPermitted, "an organisation registers \(role.rawValue) only with \"organisation\":\(quoted(signer.id))")
            }
        case (.staff, .beneficiary):
            guard organisation != nil, organisation == signer.organisation else {
                throw LedgerError(.roleNotPermitted, "staff register beneficiaries only for their own organisation \(quoted(signer.organisation ?? ""))")
            }
        default:
            throw LedgerError(.roleNotPermitted, "\(signer.role.rawValue) \(quoted(signer.id)) may not register a \(role.rawValue)")
        }
        if role == .staff && organisation == nil {
            throw LedgerError(.invalidBody, "staff belong to an organisation: actor.registered needs \"organisation\"")
        }
        if let organisation {
            guard let owner = try state.actor(organisation), owner.role == .organisation else {
                throw LedgerError(.unknownOrganisation, "organisation \(quoted(organisation)) is not a registered organisation")
            }
            guard role == .staff || role == .beneficiary else {
                throw LedgerError(.invalidBody, "only staff and beneficiaries belong to an organisation")
            }
        }
        let record = ActorRecord(
            id: actorID, role: role, name: name, organisation: organisation,
            keys: Dictionary(uniqueKeysWithValues: keys.map { ($0, .active) }), suspended: false,
            registeredAt: sequenceNumber)
        return [.putActor(record)] + keys.map { .claimKey(multikey: $0, actor: actorID) }
    }

    /// Who may manage an actor's keys and standing: the actor itself (keys only), the authority, the organisation
    /// an actor belongs to, and staff for the beneficiaries of their organisation.
    static func manages(_ signer: ActorRecord, _ target: ActorRecord) -> Bool {
        switch signer.role {
        case .authority: return true
        case .organisation: return target.organisation == signer.id
        case .staff: return target.role == .beneficiary && target.organisation != nil && target.organisation == signer.organisation
        default: return false
        }
    }

    static func target(_ body: BodyReader, state: some LedgerStateReader) throws(LedgerError) -> ActorRecord {
        let actorID = try body.identifier("actor")
        guard let target = try state.actor(actorID) else {
            throw LedgerError(.unknownActor, "actor \(quoted(actorID)) is not registered")
        }
        return target
    }

    static func checkKeyAdded(_ body: BodyReader, signer: ActorRecord, state: some LedgerStateReader) throws(LedgerError) -> [StateChange] {
        try body.allowOnly(["actor", "key"])
        var target = try target(body, state: state)
        let key = try body.multikey("key")
        guard target.id == signer.id || manages(signer, target) else {
            throw LedgerError(.roleNotPermitted, "\(signer.role.rawValue) \(quoted(signer.id)) may not add keys to \(quoted(target.id))")
        }
        if let owner = try state.ownerOfKey(key) {
            throw LedgerError(.keyInUse, "key \(key) already belongs to actor \(quoted(owner))")
        }
        guard target.keys.count < 64 else {
            throw LedgerError(.invalidBody, "actor \(quoted(target.id)) has had 64 keys; suspend it and register anew")
        }
        target.keys[key] = .active
        return [.putActor(target), .claimKey(multikey: key, actor: target.id)]
    }

    static func checkKeyRevoked(_ body: BodyReader, signer: ActorRecord, state: some LedgerStateReader) throws(LedgerError) -> [StateChange] {
        try body.allowOnly(["actor", "key", "reason"])
        var target = try target(body, state: state)
        let key = try body.multikey("key")
        _ = try body.optionalName("reason")
        guard target.id == signer.id || manages(signer, target) else {
            throw LedgerError(.roleNotPermitted, "\(signer.role.rawValue) \(quoted(signer.id)) may not revoke keys of \(quoted(target.id))")
        }
        guard target.keys[key] == .active else {
            throw LedgerError(.keyNotActive, "key \(key) is not an active key of \(quoted(target.id))")
        }
        guard target.activeKeys.count > 1 else {
            throw LedgerError(.lastKey, "key \(key) is the last active key of \(quoted(target.id)); add another first, or suspend the actor")
        }
        target.keys[key] = .revoked
        return [.putActor(target)]
    }

    static func checkSuspended(_ body: BodyReader, signer: ActorRecord, state: some LedgerStateReader) throws(LedgerError) -> [StateChange] {
        try body.allowOnly(["actor", "reason"])
        var target = try target(body, state: state)
        _ = try body.name("reason")
        guard target.role != .authority else {
            throw LedgerError(.roleNotPermitted, "the authority cannot be suspended")
        }
        guard manages(signer, target) else {
            throw LedgerError(.roleNotPermitted, "\(signer.role.rawValue) \(quoted(signer.id)) may not suspend \(quoted(target.id))")
        }
        guard !target.suspended else {
            throw LedgerError(.actorSuspended, "actor \(quoted(target.id)) is already suspended")
        }
        target.suspended = true
        return [.putActor(target)]
    }
}

/// Ledger origins (the checkpoint's first line and the note key name): printable ASCII, no spaces or '+'.
public enum Origin {
    public static func isValid(_ text: String) -> Bool {
        let bytes = text.utf8
        return !bytes.isEmpty && bytes.count <= 128
            && bytes.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "+") }
    }
}

/// Typed, strict reads of an event body: every refusal names the event type and the field.
public struct BodyReader {
    let members: [String: JSONValue]
    let type: String

    public init(_ members: [String: JSONValue], type: String) {
        self.members = members
        self.type = type
    }

    public func allowOnly(_ keys: Set<String>) throws(LedgerError) {
        if let extra = members.keys.sorted().first(where: { !keys.contains($0) }) {
            throw LedgerError(.invalidBody, "\(type) body has an unknown field \(quoted(extra))")
        }
    }

    public func string(_ key: String) throws(LedgerError) -> String {
        guard case .string(let value)? = members[key] else {
            throw LedgerError(.invalidBody, "\(type) body needs \(quoted(key)) as a string")
        }
        return value
    }

    public func optionalString(_ key: String) throws(LedgerError) -> String? {
        guard members[key] != nil else { return nil }
        return try string(key)
    }

    public func integer(_ key: String) throws(LedgerError) -> Int64 {
        guard case .integer(let value)? = members[key] else {
            throw LedgerError(.invalidBody, "\(type) body needs \(quoted(key)) as an integer")
        }
        return value
    }

    public func object(_ key: String) throws(LedgerError) -> [String: JSONValue] {
        guard case .object(let value)? = members[key] else {
            throw LedgerError(.invalidBody, "\(type) body needs \(quoted(key)) as an object")
        }
        return value
    }

    public func identifier(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard Identifier.isValid(value) else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must be 1 to 128 letters, digits or . _ : -")
        }
        return value
    }

    public func optionalIdentifier(_ key: String) throws(LedgerError) -> String? {
        guard members[key] != nil else { return nil }
        return try identifier(key)
    }

    /// Free text shown to people: non-empty, bounded.
    public func name(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard !value.isEmpty, value.utf8.count <= Rulebook.maximumNameBytes else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must be 1 to \(Rulebook.maximumNameBytes) bytes of text")
        }
        return value
    }

    public func optionalName(_ key: String) throws(LedgerError) -> String? {
        guard members[key] != nil else { return nil }
        return try name(key)
    }

    public func multikey(_ key: String) throws(LedgerError) -> String {
        let value = try string(key)
        guard Multikey.decodePublicKey(value) != nil else {
            throw LedgerError(.invalidKey, "\(type) \(quoted(key)) must be an Ed25519 Multikey (z6Mk…)")
        }
        return value
    }

    public func keyList(_ key: String) throws(LedgerError) -> [String] {
        guard case .array(let elements)? = members[key], !elements.isEmpty,
            elements.count <= Rulebook.maximumKeysPerRegistration
        else {
            throw LedgerError(.invalidBody, "\(type) \(quoted(key)) must list 1 to \(Rulebook.maximumKeysPerRegistration) Multikeys")
        }
        var keys: [String] = []
        for element in elements {
            guard case .string(let text) = element, Multikey.decodePublicKey(text) != nil else {
                throw LedgerError(.invalidKey, "\(type) \(quoted(key)) holds something that is not an Ed25519 Multikey")
            }
            guard !keys.contains(text) else {
                throw LedgerError(.invalidBody, "\(type) \(quoted(key)) names key \(text) twice")
            }
            keys.append(text)
        }
        return keys
    }
}
