/// Which cases give an organisation standing over a person: the right to read their accounts and history and to
/// record their erasure (Specs/events.md 5, Specs/protocol.md 4.4). A referral is open to anyone, so a case alone
/// proves nothing once the person is registered: it must come from, or go to, the organisation the person belongs
/// to. Otherwise any organisation could refer anyone to itself and read them.
public enum CaseStanding {
    /// Whether `caseRecord` (a `cases` entry) gives its holder standing over its beneficiary, `beneficiary` being
    /// what the ledger registers under that id now (nil when nothing is registered yet).
    public static func givesStanding(_ caseRecord: JSONObject, beneficiary: ActorRecord?) -> Bool {
        guard let beneficiary else { return true }
        guard beneficiary.role == .beneficiary, let organisation = beneficiary.organisation else { return false }
        return caseRecord["holder"]?.stringValue == organisation || caseRecord["referred_by"]?.stringValue == organisation
    }
}
