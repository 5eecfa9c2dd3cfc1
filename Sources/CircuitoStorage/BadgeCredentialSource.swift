import CircuitoCore

/// What the ledger holds about one badge, gathered in one read transaction: the input from which
/// CircuitoCredentials builds its Open Badges credential. (Storage reads; it knows nothing of credentials.)
public struct BadgeCredentialSource: Sendable {
    public let origin: String
    /// The `badges` projection entry and its badge class.
    public let badge: JSONValue
    public let badgeClass: JSONValue
    /// The issuing organisation as the registry knows it now (keys and their status).
    public let issuer: ActorRecord
    /// The `activations` entries the badge names, and the opportunities they were for (by id).
    public let activations: [JSONValue]
    public let opportunities: JSONObject
    /// The badge's position in its issuer's status list: how many badges the issuer issued before it.
    public let statusListIndex: Int
}

/// An issuer's status list as of the ledger's latest record.
public struct StatusListSource: Sendable {
    public let origin: String
    public let issuer: ActorRecord
    /// How many badges the issuer has issued (the list's entries in use).
    public let issuedCount: Int
    /// Status list indices of the issuer's revoked badges, ascending.
    public let revokedIndices: [Int]
    /// `recorded_at` of the ledger's last record, and the ledger size: the point the list reflects.
    public let asOf: String
    public let size: UInt64
}

extension LedgerReader {
    /// The most badges one status list scan looks at; far beyond a city's programme, it only bounds the work.
    public static let maximumBadgesScanned = 10_000_000

    /// The badge `id` (a badge id, or the id of its `badge.issued` event) with everything its credential needs.
    public func badgeCredentialSource(badgeID id: String) throws(LedgerError) -> BadgeCredentialSource {
        try environment.read { (transaction) throws(LedgerError) -> BadgeCredentialSource in
            let state = TransactionLedgerState(transaction: transaction)
            var badge = try state.json(.badges, id)
            if badge == nil, let sequenceNumber = try state.sequenceNumber(ofEventID: id) {
                // The id of the badge.issued event: its body names the badge.
                guard let leafBytes = try transaction.get(LedgerDatabase.log, BigEndianKey.encode(sequenceNumber)) else {
                    throw LedgerError(.integrity, "event \(id) is indexed at seq \(sequenceNumber), which is not in the log")
                }
                let record = try Record(leafBytes: leafBytes)
                if record.signedEvent.event.type == "badge.issued", case .string(let badgeID)? = record.signedEvent.event.body["badge"] {
                    badge = try state.json(.badges, badgeID)
                }
            }
            guard let badge else { throw LedgerError(.notFound, "no badge (or badge.issued event) has the id \(id)") }
            guard case .string(let classID)? = badge["badge_class"], let badgeClass = try state.json(.badgeClasses, classID) else {
                throw LedgerError(.integrity, "the class of badge \(id) is not in the ledger")
            }
            guard case .string(let issuerID)? = badge["issuer"], let issuer = try state.actor(issuerID) else {
                throw LedgerError(.integrity, "the issuer of badge \(id) is not in the registry")
            }
            var activations: [JSONValue] = []
            var opportunities: JSONObject = [:]
            for case .string(let activationID) in badge["activations"]?.arrayValue ?? [] {
                guard let activation = try state.json(.activations, activationID) else {
                    throw LedgerError(.integrity, "activation \(activationID) of badge \(id) is not in the ledger")
                }
                activations.append(activation)
                if case .string(let opportunityID)? = activation["opportunity"], opportunities[opportunityID] == nil,
                    let opportunity = try state.json(.opportunities, opportunityID)
                {
                    opportunities[opportunityID] = opportunity
                }
            }
            guard case .integer(let issuedAt)? = badge["issued_at"] else {
                throw LedgerError(.integrity, "badge \(id) has no issued_at")
            }
            let earlier = try Self.issuedBadges(transaction, issuer: issuerID).prefix { $0.issuedAt < issuedAt }.count
            return BadgeCredentialSource(
                origin: genesis.origin, badge: badge, badgeClass: badgeClass, issuer: issuer, activations: activations,
                opportunities: opportunities, statusListIndex: earlier)
        }
    }

    /// The status list of organisation `issuer`: which of its badges are revoked, by status list index.
    public func statusListSource(issuer issuerID: String) throws(LedgerError) -> StatusListSource {
        try environment.read { (transaction) throws(LedgerError) -> StatusListSource in
            let state = TransactionLedgerState(transaction: transaction)
            guard let issuer = try state.actor(issuerID), issuer.role == .organisation else {
                throw LedgerError(.unknownOrganisation, "\(issuerID) is not a registered organisation")
            }
            let badges = try Self.issuedBadges(transaction, issuer: issuerID)
            let revoked = badges.enumerated().filter(\.element.revoked).map(\.offset)
            guard let last = try transaction.last(LedgerDatabase.log) else {
                throw LedgerError(.integrity, "the ledger has no records")
            }
            let record = try Record(leafBytes: last.value)
            return StatusListSource(
                origin: genesis.origin, issuer: issuer, issuedCount: badges.count, revokedIndices: revoked,
                asOf: record.recordedAt, size: record.sequenceNumber + 1)
        }
    }

    /// The issuer's badges in issue order (by `issued_at`, the seq of their badge.issued): the order that gives
    /// each its status list index. A scan of the badges table; an index by issuer would make it cheaper.
    static func issuedBadges(_ transaction: LMDBTransaction, issuer: String) throws(LedgerError) -> [(issuedAt: Int64, revoked: Bool)] {
        var badges: [(issuedAt: Int64, revoked: Bool)] = []
        var scanned = 0
        try transaction.forEach(StateTable.badges.name, from: []) { (_, value) throws(LedgerError) -> Bool in
            scanned += 1
            guard scanned <= maximumBadgesScanned else {
                throw LedgerError(.tooLarge, "more than \(maximumBadgesScanned) badges: the status list scan stops here")
            }
            let badge: JSONValue
            do throws(LedgerError) { badge = try JSONParser.parse([UInt8](value)) } catch {
                throw LedgerError(.integrity, "state table badges holds damaged JSON: \(error.message)")
            }
            guard badge["issuer"]?.stringValue == issuer else { return true }
            guard case .integer(let issuedAt)? = badge["issued_at"] else {
                throw LedgerError(.integrity, "a badge of \(issuer) has no issued_at")
            }
            badges.append((issuedAt, badge["status"]?.stringValue == "revoked"))
            return true
        }
        return badges.sorted { $0.issuedAt < $1.issuedAt }
    }
}
