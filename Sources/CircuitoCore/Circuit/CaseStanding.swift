/// Which cases give an organisation standing over a person (Specs/events.md 1.4): the right to read their accounts
/// and history, to record their erasure, and, once they are registered, to go on recording about them. Anyone may
/// refer a person not registered yet, and a registered one whose organisation cannot act for them, so a case alone
/// proves nothing: an organisation could refer anyone to itself and read or erase them.
///
/// `person` is what the state registers under the case's beneficiary id now (nil when nothing), read once by the
/// caller; `actor` reads the state's actor records (for the person's organisation).
public enum CaseStanding {
    /// Whether `caseRecord` (a `cases` entry) gives its holder standing over its beneficiary:
    /// - a registered beneficiary: the case is held by, or was referred by, the organisation the person belongs to;
    ///   or, when that organisation cannot act for them (none, or suspended), it was referred by another organisation
    ///   than its holder;
    /// - a person not registered yet: it was referred by another organisation than its holder;
    /// - an id registered with another role: never.
    public static func givesStanding(
        _ caseRecord: JSONObject, person: ActorRecord?, actor: (String) throws(LedgerError) -> ActorRecord?
    ) throws(LedgerError) -> Bool {
        let holder = caseRecord["holder"]?.stringValue
        let referrer = caseRecord["referred_by"]?.stringValue
        let referredByAnother = referrer != nil && referrer != holder
        guard let person else { return referredByAnother }
        guard person.role == .beneficiary else { return false }
        if let organisation = person.organisation {
            if holder == organisation || referrer == organisation { return true }
            guard try actor(organisation)?.suspended == true else { return false }
        }
        return referredByAnother
    }

    /// Whether the holder may go on recording about the person through this case (intake, plan, notes,
    /// activations, badges): always while the person is not registered (a help desk takes someone in before
    /// registering them); once they are, only with standing.
    public static func allowsRecording(
        _ caseRecord: JSONObject, person: ActorRecord?, actor: (String) throws(LedgerError) -> ActorRecord?
    ) throws(LedgerError) -> Bool {
        guard person != nil else { return true }
        return try givesStanding(caseRecord, person: person, actor: actor)
    }

    /// Whether a registered beneficiary's organisation can act for them: false when they have none or it is
    /// suspended. Then anyone may refer them (Specs/events.md 5.1), as someone not registered.
    public static func organisationActs(for person: ActorRecord, actor: (String) throws(LedgerError) -> ActorRecord?) throws(LedgerError) -> Bool {
        guard let organisation = person.organisation else { return false }
        return try actor(organisation)?.suspended == false
    }

    /// Whether `signer`, a staff member, acts for an organisation that is suspended (a closed organisation acts
    /// through nobody: Specs/events.md 1.2, Specs/protocol.md 4.2). False for every other role.
    public static func actsForSuspendedOrganisation(_ signer: ActorRecord, actor: (String) throws(LedgerError) -> ActorRecord?) throws(LedgerError) -> Bool {
        guard signer.role == .staff, let organisation = signer.organisation else { return false }
        return try actor(organisation)?.suspended == true
    }
}
