import CircuitoCrypto

/// Where an event lands: its seq and the ledger's time for it (`recorded_at`). Rules that depend on time (expiry,
/// monthly caps, authorisation expiry) use `recordedAt`, which is in the record, so replay decides the same way.
public struct LogPosition: Sendable, Hashable {
    public let sequenceNumber: UInt64
    public let recordedAt: String

    public init(sequenceNumber: UInt64, recordedAt: String) {
        self.sequenceNumber = sequenceNumber
        self.recordedAt = recordedAt
    }
}

/// The one rulebook: live writes, `verify`, `rebuild` and replicas run `Rulebook.check` on every event in seq order.
///
/// `check` reads the state before the event and returns the changes the event makes; it writes nothing, so a
/// refused event leaves no trace.
public enum Rulebook {
    public static let currencyCode = "TOC"
    public static let currencyDecimals: Int64 = 2
    /// Keys one `actor.registered` may name; more is a mistake, not a need.
    public static let maximumKeysPerRegistration = 8
    public static let maximumNameBytes = 200
    public static let maximumTextBytes = 2000

    struct Rule: Sendable {
        let roles: Set<Role>
        let apply: @Sendable (inout RuleContext, BodyReader) throws(LedgerError) -> Void
    }

    /// Every event type, the roles that may sign it, and its rule.
    static let rules: [String: Rule] = {
        var rules: [String: Rule] = [
            "actor.registered": Rule(roles: [.authority, .organisation, .staff], apply: checkActorRegistered),
            "actor.key_added": Rule(roles: Set(Role.allCases), apply: checkKeyAdded),
            "actor.key_revoked": Rule(roles: Set(Role.allCases), apply: checkKeyRevoked),
            "actor.suspended": Rule(roles: [.authority, .organisation, .staff], apply: checkSuspended),
        ]
        rules.merge(CircuitRules.rules) { _, _ in preconditionFailure("an event type has two rules") }
        return rules
    }()

    public static func check(
        _ verifiedEvent: VerifiedEvent, at position: LogPosition, state: some LedgerStateReader
    ) throws(LedgerError) -> [StateChange] {
        let event = verifiedEvent.event
        // The id is in clear in the record for good, like the body: no tax code there either (Specs/ledger.md 8.2).
        guard !ItalianTaxCode.occurs(in: event.id) else {
            throw LedgerError(.invalidEvent, "the event id holds an Italian tax code (codice fiscale) in clear: ids are pseudonyms (Specs/events.md 1.6)")
        }
        if let earlier = try state.sequenceNumber(ofEventID: event.id) {
            throw LedgerError(.idConflict, "event id \(quoted(event.id)) is already recorded at seq \(earlier) with other content")
        }
        var changes: StateChanges
        if event.type == "ledger.genesis" {
            changes = try checkGenesis(event, position: position, state: state)
        } else {
            guard try state.hasGenesis() else {
                throw LedgerError(.genesisRequired, "the first record (seq 0) must be ledger.genesis")
            }
            guard let rule = rules[event.type] else {
                throw LedgerError(.unknownEventType, "event type \(quoted(event.type)) is not known to this ledger")
            }
            let signer = try activeSigner(of: event, state: state)
            guard rule.roles.contains(signer.role) else {
                throw LedgerError(
                    .roleNotPermitted,
                    "\(event.type) may be signed by \(rule.roles.map(\.rawValue).sorted().joined(separator: ", ")), not by \(signer.role.rawValue) \(quoted(signer.id))")
            }
            var context = RuleContext(event: event, position: position, signer: signer, base: state)
            context.paymentAuthorisation = verifiedEvent.paymentAuthorisation
            try rule.apply(&context, BodyReader(event.body, type: event.type))
            changes = context.changes
        }
        changes.put(.eventIDs, Array(event.id.utf8), StateKey.number(position.sequenceNumber))
        return changes.changes
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
        // Staff act in their organisation's name: a suspended (closed) organisation acts through nobody.
        if try CaseStanding.actsForSuspendedOrganisation(signer, actor: { (id) throws(LedgerError) in try state.actor(id) }) {
            throw LedgerError(.actorSuspended, "staff \(quoted(signer.id)) acts for organisation \(quoted(signer.organisation ?? "")), which is suspended")
        }
        return signer
    }

    // MARK: Governance

    static func checkGenesis(_ event: Event, position: LogPosition, state: some LedgerStateReader) throws(LedgerError) -> StateChanges {
        guard position.sequenceNumber == 0, try state.genesis() == nil else {
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
        var changes = StateChanges()
        let genesis = GenesisInfo(origin: origin, authority: authorityID, checkpointKey: checkpointKey,
                                  currencyCode: currencyCode, currencyDecimals: currencyDecimals)
        changes.put(.meta, "genesis", json: genesis.json)
        changes.put(.actors, authorityID, json: record.json)
        for key in keys { changes.put(.keys, Array(key.utf8), Array(authorityID.utf8)) }
        // The checkpoint key is claimed too, so no actor can ever register it as its own.
        changes.put(.keys, Array(checkpointKey.utf8), Array(authorityID.utf8))
        return changes
    }

    static func checkActorRegistered(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["actor", "role", "name", "keys", "organisation", "district"])
        let signer = context.signer
        let actorID = try body.identifier("actor")
        let roleText = try body.string("role")
        guard let role = Role(rawValue: roleText) else {
            throw LedgerError(.invalidBody, "actor.registered role \(quoted(roleText)) is not one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let name = try body.name("name")
        let keys = try body.keyList("keys")
        let organisation = try body.optionalIdentifier("organisation")
        let district = try body.optionalIdentifier("district")
        guard try context.actor(actorID) == nil else {
            throw LedgerError(.actorExists, "actor \(quoted(actorID)) is already registered")
        }
        // An id whose subject was erased (referred, never registered) stays closed: new data would attach to it.
        try context.requireNotErased(actorID)
        for key in keys {
            if let owner = try context.ownerOfKey(key) { throw try keyInUse(key, owner: owner, context) }
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
            guard let owner = try context.actor(organisation), owner.role == .organisation else {
                throw LedgerError(.unknownOrganisation, "organisation \(quoted(organisation)) is not a registered organisation")
            }
            guard !owner.suspended else {
                throw LedgerError(.actorSuspended, "organisation \(quoted(organisation)) is suspended: no staff or beneficiaries join it")
            }
            guard role == .staff || role == .beneficiary else {
                throw LedgerError(.invalidBody, "only staff and beneficiaries belong to an organisation")
            }
        }
        // Someone with a case while not registered is taken in by the organisation their reservation names (or
        // registered by the authority): no other organisation registers them as its own. A suspended organisation
        // takes nobody in, and its reservations bind nobody.
        if signer.role != .authority, let reservation = try context.bindingReservation(of: actorID), reservation.holder != organisation {
            throw LedgerError(.notCaseHolder, "\(quoted(actorID)) is reserved for \(quoted(reservation.holder)), which holds their case \(quoted(reservation.caseID)) and takes them in: only it (or the authority) registers them")
        }
        if district != nil && role != .organisation {
            throw LedgerError(.invalidBody, "only organisations have a district in actor.registered (merchants get theirs at enrolment)")
        }
        let record = ActorRecord(
            id: actorID, role: role, name: name, organisation: organisation,
            keys: Dictionary(uniqueKeysWithValues: keys.map { ($0, .active) }), suspended: false,
            registeredAt: context.position.sequenceNumber, district: district)
        context.changes.put(.actors, actorID, json: record.json)
        for key in keys { context.changes.put(.keys, Array(key.utf8), Array(actorID.utf8)) }
        if role == .beneficiary { context.touch(beneficiary: actorID) }
    }

    /// The refusal of a key that is taken: by an actor, or (claimed under the authority's id at genesis, though no
    /// actor holds it) the ledger's checkpoint key.
    static func keyInUse(_ key: String, owner: String, _ context: RuleContext) throws(LedgerError) -> LedgerError {
        guard try context.actor(owner)?.keys[key] != nil else {
            return LedgerError(.keyInUse, "key \(key) is the ledger's checkpoint key")
        }
        return LedgerError(.keyInUse, "key \(key) already belongs to actor \(quoted(owner))")
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

    static func target(_ body: BodyReader, _ context: RuleContext) throws(LedgerError) -> ActorRecord {
        let actorID = try body.identifier("actor")
        guard let target = try context.actor(actorID) else {
            throw LedgerError(.unknownActor, "actor \(quoted(actorID)) is not registered")
        }
        return target
    }

    static func checkKeyAdded(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["actor", "key"])
        let signer = context.signer
        var target = try target(body, context)
        let key = try body.multikey("key")
        guard target.id == signer.id || manages(signer, target) else {
            throw LedgerError(.roleNotPermitted, "\(signer.role.rawValue) \(quoted(signer.id)) may not add keys to \(quoted(target.id))")
        }
        if let owner = try context.ownerOfKey(key) { throw try keyInUse(key, owner: owner, context) }
        guard target.keys.count < 64 else {
            throw LedgerError(.invalidBody, "actor \(quoted(target.id)) has had 64 keys; suspend it and register anew")
        }
        target.keys[key] = .active
        context.changes.put(.actors, target.id, json: target.json)
        context.changes.put(.keys, Array(key.utf8), Array(target.id.utf8))
        if target.role == .beneficiary { context.touch(beneficiary: target.id) }
    }

    static func checkKeyRevoked(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["actor", "key", "reason"])
        let signer = context.signer
        var target = try target(body, context)
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
        context.changes.put(.actors, target.id, json: target.json)
        if target.role == .beneficiary { context.touch(beneficiary: target.id) }
    }

    static func checkSuspended(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["actor", "reason"])
        let signer = context.signer
        var target = try target(body, context)
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
        context.changes.put(.actors, target.id, json: target.json)
        if target.role == .beneficiary { context.touch(beneficiary: target.id) }
    }
}

/// The state as one event's rule sees it: the state before the event, with the event's own writes laid over it.
public struct RuleContext: LedgerStateReader {
    public let event: Event
    public let position: LogPosition
    public let signer: ActorRecord
    let base: any LedgerStateReader
    public var changes = StateChanges()
    /// The payment authorisation read when the event's signatures were checked, if they were checked then.
    var paymentAuthorisation: PaymentAuthorisation?

    init(event: Event, position: LogPosition, signer: ActorRecord, base: any LedgerStateReader) {
        self.event = event
        self.position = position
        self.signer = signer
        self.base = base
    }

    public func value(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> [UInt8]? {
        if let pending = changes.pending(table, key) { return pending }
        return try base.value(table, key)
    }

    public func json(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> JSONValue? {
        if let pending = changes.pending(table, key) {
            guard let bytes = pending else { return nil }
            return try StoredJSON.parse(bytes, table: table)
        }
        // Not changed by this event: the base may answer from values it parsed before.
        return try base.json(table, key)
    }

    public func actor(_ id: String) throws(LedgerError) -> ActorRecord? {
        let key = Array(id.utf8)
        if let pending = changes.pending(.actors, key) {
            guard let bytes = pending else { return nil }
            return try ActorRecord(json: try StoredJSON.parse(bytes, table: .actors))
        }
        // Not changed by this event: the base may answer from records it decoded before.
        return try base.actor(id)
    }

    public func entries(_ table: StateTable, prefix: [UInt8], limit: Int) throws(LedgerError) -> [(key: [UInt8], value: [UInt8])] {
        // Most reads come before the event writes anything under the prefix (a payment reads its lots, then
        // spends them): then the base's answer is the answer, with no merge.
        let changesUnderPrefix = changes.changes.contains { change in
            switch change {
            case .put(let changedTable, let key, _), .delete(let changedTable, let key):
                return changedTable == table && key.starts(with: prefix)
            }
        }
        guard changesUnderPrefix else { return try base.entries(table, prefix: prefix, limit: limit) }
        // Read one more than asked per pending delete, so deleted entries cannot push live ones past the limit.
        var merged: [[UInt8]: [UInt8]] = [:]
        for entry in try base.entries(table, prefix: prefix, limit: limit + changes.changes.count) { merged[entry.key] = entry.value }
        for change in changes.changes {
            switch change {
            case .put(let changedTable, let key, let value) where changedTable == table && key.starts(with: prefix): merged[key] = value
            case .delete(let changedTable, let key) where changedTable == table: merged[key] = nil
            default: break
            }
        }
        return merged.sorted { $0.key.lexicographicallyPrecedes($1.key) }.prefix(limit).map { (key: $0.key, value: $0.value) }
    }

    /// Records that this event concerns `beneficiary` (its case history).
    public mutating func touch(beneficiary: String) {
        changes.put(.caseHistory, StateKey.prefix(beneficiary) + StateKey.number(position.sequenceNumber), Array(event.type.utf8))
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
