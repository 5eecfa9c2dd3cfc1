/// The rules of the circuit: catalogue, cases, activity, money, personal data. `Rulebook.check` dispatches here
/// after the common checks (genesis, signer registered and not suspended, key active, role permitted).
enum CircuitRules {
    typealias Rule = Rulebook.Rule

    static let rules: [String: Rule] = [
        // Policy and funding.
        "policy.updated": Rule(roles: [.authority], apply: policyUpdated),
        "program.funded": Rule(roles: [.authority], apply: programFunded),
        // Catalogue.
        "opportunity.published": Rule(roles: [.organisation, .staff], apply: opportunityPublished),
        "opportunity.updated": Rule(roles: [.organisation, .staff], apply: opportunityUpdated),
        "opportunity.withdrawn": Rule(roles: [.organisation, .staff], apply: opportunityWithdrawn),
        "badge_class.defined": Rule(roles: [.organisation, .staff], apply: badgeClassDefined),
        "badge_class.retired": Rule(roles: [.organisation, .staff], apply: badgeClassRetired),
        "merchant.enrolled": Rule(roles: [.authority], apply: merchantEnrolled),
        "merchant.updated": Rule(roles: [.authority], apply: merchantUpdated),
        "merchant.suspended": Rule(roles: [.authority], apply: merchantSuspended),
        // Cases.
        "case.referred": Rule(roles: [.organisation, .staff], apply: caseReferred),
        "case.opened": Rule(roles: [.organisation, .staff], apply: caseOpened),
        "case.plan_agreed": Rule(roles: [.organisation, .staff], apply: casePlanAgreed),
        "case.note_added": Rule(roles: [.organisation, .staff], apply: caseNoteAdded),
        "case.closed": Rule(roles: [.organisation, .staff], apply: caseClosed),
        "subject.erased": Rule(roles: [.authority, .organisation, .staff], apply: subjectErased),
        // Activity.
        "activation.recorded": Rule(roles: [.organisation, .staff], apply: activationRecorded),
        "badge.issued": Rule(roles: [.organisation, .staff], apply: badgeIssued),
        "badge.revoked": Rule(roles: [.organisation, .staff], apply: badgeRevoked),
        // Money.
        "credits.converted": Rule(roles: [.organisation, .staff], apply: creditsConverted),
        "dote.granted": Rule(roles: [.organisation, .staff], apply: doteGranted),
        "payment.redeemed": Rule(roles: [.merchant], apply: paymentRedeemed),
        "payment.refunded": Rule(roles: [.merchant], apply: paymentRefunded),
        "settlement.requested": Rule(roles: [.merchant], apply: settlementRequested),
        "settlement.paid": Rule(roles: [.authority], apply: settlementPaid),
        "tocoin.expired": Rule(roles: [.authority], apply: tocoinExpired),
    ]

    /// Opportunity categories (PassoParola's kinds of opportunity).
    static let opportunityCategories: Set<String> = [
        "work_placement", "internship", "civic_utility", "training", "culture", "sport", "volunteering", "education",
        "disability", "social", "elderly", "family",
    ]

    // MARK: Policy and funding

    static func policyUpdated(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["conversion_rate_cents_per_credit", "monthly_conversion_cap_cents", "lot_validity_days", "categories"])
        let days = try body.positiveAmount("lot_validity_days")
        guard days <= 3660 else { throw LedgerError(.invalidBody, "policy.updated lot_validity_days must be at most 3660") }
        let categories = try body.slugList("categories", maximumCount: Policy.maximumCategories)
        guard !categories.contains(Lot.general) else {
            throw LedgerError(.invalidBody, "\"general\" is the name of unearmarked ToCoin, not a spending category")
        }
        let policy = Policy(
            conversionRateCentsPerCredit: try body.positiveAmount("conversion_rate_cents_per_credit"),
            monthlyConversionCapCents: try body.positiveAmount("monthly_conversion_cap_cents"), lotValidityDays: days,
            categories: categories, since: context.position.sequenceNumber)
        context.changes.put(.policy, "current", json: policy.json)
    }

    static func programFunded(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["amount", "reference"])
        let amount = try body.positiveAmount("amount")
        _ = try body.name("reference")
        try context.transfer(from: Account.issuance, to: Account.fund, amount: amount)
    }

    // MARK: Catalogue

    static func opportunityPublished(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["opportunity", "title", "description", "category", "district", "hours"])
        let id = try body.identifier("opportunity")
        guard try context.json(.opportunities, id) == nil else {
            throw LedgerError(.alreadyExists, "opportunity \(quoted(id)) is already published")
        }
        let provider = try context.signerOrganisation()
        var opportunity: JSONObject = [
            "opportunity": .string(id), "title": .string(try body.name("title")), "description": .string(try body.text("description")),
            "category": .string(try opportunityCategory(body)), "district": .string(try body.identifier("district")),
            "provider": .string(provider), "status": "published", "published_at": .integer(Int64(context.position.sequenceNumber)),
        ]
        if let hours = try body.optionalPositiveAmount("hours") { opportunity["hours"] = .integer(hours) }
        context.changes.put(.opportunities, id, json: .object(opportunity))
        context.index(kind: "opportunity", id: id, entry: .object(opportunity))
    }

    static func opportunityCategory(_ body: BodyReader) throws(LedgerError) -> String {
        let category = try body.slug("category")
        guard opportunityCategories.contains(category) else {
            throw LedgerError(.invalidBody, "opportunity category \(quoted(category)) is not one of \(opportunityCategories.sorted().joined(separator: ", "))")
        }
        return category
    }

    /// The opportunity named in the body, which must be published by the signer's organisation.
    static func ownOpportunity(_ context: RuleContext, _ body: BodyReader) throws(LedgerError) -> JSONObject {
        let id = try body.identifier("opportunity")
        guard let opportunity = try context.json(.opportunities, id)?.objectValue else {
            throw LedgerError(.unknownReference, "opportunity \(quoted(id)) is not in the catalogue")
        }
        guard opportunity["provider"]?.stringValue == (try context.signerOrganisation()) else {
            throw LedgerError(.roleNotPermitted, "opportunity \(quoted(id)) belongs to \(opportunity["provider"]?.stringValue ?? "another organisation")")
        }
        guard opportunity["status"] == "published" else {
            throw LedgerError(.invalidState, "opportunity \(quoted(id)) was withdrawn")
        }
        return opportunity
    }

    static func opportunityUpdated(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["opportunity", "title", "description", "category", "district", "hours"])
        var opportunity = try ownOpportunity(context, body)
        let before = JSONValue.object(opportunity)
        if body.has("title") { opportunity["title"] = .string(try body.name("title")) }
        if body.has("description") { opportunity["description"] = .string(try body.text("description")) }
        if body.has("category") { opportunity["category"] = .string(try opportunityCategory(body)) }
        if body.has("district") { opportunity["district"] = .string(try body.identifier("district")) }
        if body.has("hours") { opportunity["hours"] = .integer(try body.positiveAmount("hours")) }
        guard !CanonicalJSON.sameBytes(.object(opportunity), before) else {
            throw LedgerError(.invalidBody, "opportunity.updated changes nothing")
        }
        opportunity["updated_at"] = .integer(Int64(context.position.sequenceNumber))
        let id = try body.identifier("opportunity")
        context.unindex(kind: "opportunity", id: id, entry: before)
        context.changes.put(.opportunities, id, json: .object(opportunity))
        context.index(kind: "opportunity", id: id, entry: .object(opportunity))
    }

    static func opportunityWithdrawn(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["opportunity", "reason"])
        var opportunity = try ownOpportunity(context, body)
        _ = try body.optionalName("reason")
        let id = try body.identifier("opportunity")
        context.unindex(kind: "opportunity", id: id, entry: .object(opportunity))
        opportunity["status"] = "withdrawn"
        opportunity["withdrawn_at"] = .integer(Int64(context.position.sequenceNumber))
        context.changes.put(.opportunities, id, json: .object(opportunity))
    }

    static func badgeClassDefined(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["badge_class", "name", "description", "criteria", "credits", "valid_days"])
        let id = try body.identifier("badge_class")
        guard try context.json(.badgeClasses, id) == nil else {
            throw LedgerError(.alreadyExists, "badge class \(quoted(id)) is already defined")
        }
        let credits = try body.positiveAmount("credits")
        guard credits <= 10_000 else { throw LedgerError(.invalidBody, "badge_class.defined credits must be at most 10000") }
        var badgeClass: JSONObject = [
            "badge_class": .string(id), "name": .string(try body.name("name")), "description": .string(try body.text("description")),
            "criteria": .string(try body.text("criteria")), "credits": .integer(credits),
            "issuer": .string(try context.signerOrganisation()), "status": "active",
            "defined_at": .integer(Int64(context.position.sequenceNumber)),
        ]
        if let days = try body.optionalPositiveAmount("valid_days") {
            guard days <= 36_600 else { throw LedgerError(.invalidBody, "badge_class.defined valid_days must be at most 36600") }
            badgeClass["valid_days"] = .integer(days)
        }
        context.changes.put(.badgeClasses, id, json: .object(badgeClass))
        context.index(kind: "badge_class", id: id, entry: .object(badgeClass))
    }

    static func badgeClassRetired(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["badge_class", "reason"])
        let id = try body.identifier("badge_class")
        _ = try body.optionalName("reason")
        guard var badgeClass = try context.json(.badgeClasses, id)?.objectValue else {
            throw LedgerError(.unknownReference, "badge class \(quoted(id)) is not defined")
        }
        guard badgeClass["issuer"]?.stringValue == (try context.signerOrganisation()) else {
            throw LedgerError(.roleNotPermitted, "badge class \(quoted(id)) is issued by another organisation")
        }
        guard badgeClass["status"] == "active" else { throw LedgerError(.invalidState, "badge class \(quoted(id)) is already retired") }
        context.unindex(kind: "badge_class", id: id, entry: .object(badgeClass))
        badgeClass["status"] = "retired"
        context.changes.put(.badgeClasses, id, json: .object(badgeClass))
    }

    static func merchantCategories(_ context: RuleContext, _ body: BodyReader) throws(LedgerError) -> [String] {
        let categories = try body.slugList("categories", maximumCount: Policy.maximumCategories)
        guard let policy = try context.policy() else {
            throw LedgerError(.policyMissing, "no policy.updated yet: spending categories are not defined")
        }
        if let unknown = categories.first(where: { !policy.categories.contains($0) }) {
            throw LedgerError(.invalidBody, "spending category \(quoted(unknown)) is not in the policy (\(policy.categories.joined(separator: ", ")))")
        }
        return categories
    }

    static func merchantEnrolled(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["merchant", "categories", "district"])
        let id = try body.identifier("merchant")
        guard let actor = try context.actor(id), actor.role == .merchant else {
            throw LedgerError(.unknownReference, "\(quoted(id)) is not a registered merchant")
        }
        guard try context.json(.merchants, id) == nil else {
            throw LedgerError(.alreadyExists, "merchant \(quoted(id)) is already enrolled")
        }
        let merchant: JSONValue = .object([
            "merchant": .string(id), "name": .string(actor.name), "categories": .array(try merchantCategories(context, body).map { .string($0) }),
            "district": .string(try body.identifier("district")), "status": "enrolled",
            "enrolled_at": .integer(Int64(context.position.sequenceNumber)),
        ])
        context.changes.put(.merchants, id, json: merchant)
        context.index(kind: "merchant", id: id, entry: merchant)
    }

    static func enrolledMerchant(_ context: RuleContext, _ id: String) throws(LedgerError) -> JSONObject {
        guard let merchant = try context.json(.merchants, id)?.objectValue else {
            throw LedgerError(.merchantNotEnrolled, "merchant \(quoted(id)) is not enrolled in the circuit")
        }
        return merchant
    }

    static func merchantUpdated(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["merchant", "categories", "district"])
        let id = try body.identifier("merchant")
        var merchant = try enrolledMerchant(context, id)
        let before = JSONValue.object(merchant)
        if body.has("categories") { merchant["categories"] = .array(try merchantCategories(context, body).map { .string($0) }) }
        if body.has("district") { merchant["district"] = .string(try body.identifier("district")) }
        guard !CanonicalJSON.sameBytes(.object(merchant), before) else { throw LedgerError(.invalidBody, "merchant.updated changes nothing") }
        if merchant["status"] == "enrolled" { context.unindex(kind: "merchant", id: id, entry: before) }
        context.changes.put(.merchants, id, json: .object(merchant))
        if merchant["status"] == "enrolled" { context.index(kind: "merchant", id: id, entry: .object(merchant)) }
    }

    static func merchantSuspended(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["merchant", "reason"])
        let id = try body.identifier("merchant")
        _ = try body.name("reason")
        var merchant = try enrolledMerchant(context, id)
        guard merchant["status"] == "enrolled" else { throw LedgerError(.invalidState, "merchant \(quoted(id)) is already suspended") }
        context.unindex(kind: "merchant", id: id, entry: .object(merchant))
        merchant["status"] = "suspended"
        context.changes.put(.merchants, id, json: .object(merchant))
    }

    // MARK: Cases

    static func caseReferred(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["case", "beneficiary", "household", "to", "sealed"])
        let id = try body.identifier("case")
        let beneficiary = try body.identifier("beneficiary")
        guard try context.json(.cases, id) == nil else { throw LedgerError(.alreadyExists, "case \(quoted(id)) already exists") }
        try context.requireNotErased(beneficiary)
        let holder = try body.identifier("to")
        guard let holderActor = try context.actor(holder), holderActor.role == .organisation else {
            throw LedgerError(.unknownOrganisation, "\(quoted(holder)) is not a registered organisation")
        }
        guard !holderActor.suspended else {
            throw LedgerError(.actorSuspended, "organisation \(quoted(holder)) is suspended and takes no referrals")
        }
        // A registered person is referred by their own organisation, or to it: a referral gives its holder standing
        // over the person (reads, erasure), which nobody may give themselves. When that organisation cannot act for
        // them (none, or suspended), anyone may refer them, as someone not registered.
        let person = try context.actor(beneficiary)
        let referrer = try context.signerOrganisation()
        if let registered = person {
            guard registered.role == .beneficiary else {
                throw LedgerError(.unknownReference, "\(quoted(beneficiary)) is registered as \(registered.role.rawValue), not as a beneficiary")
            }
            if try CaseStanding.organisationActs(for: registered, actor: { (id) throws(LedgerError) in try context.actor(id) }),
                let organisation = registered.organisation, organisation != referrer, organisation != holder
            {
                throw LedgerError(.roleNotPermitted, "beneficiary \(quoted(beneficiary)) belongs to \(quoted(organisation)): only it refers them, or refers them to it")
            }
        }
        try SealedData.validate(try body.object("sealed"), field: "case.referred sealed")
        let record: JSONValue = .object([
            "case": .string(id), "beneficiary": .string(beneficiary), "household": .string(try body.identifier("household")),
            "referred_by": .string(referrer), "holder": .string(holder), "status": "referred",
            "referred_at": .integer(Int64(context.position.sequenceNumber)),
        ])
        context.changes.put(.cases, id, json: record)
        // The first case of someone not registered yet reserves their registration for its holder (Specs/events.md
        // 2.2): nobody else takes them in as its own, a walk-in's help desk included. The organisation that has the
        // person, or the one that placed them there, passes it on by referring them to another organisation.
        if person == nil, let reservation = try context.reservation(afterReferralOf: beneficiary, case: id, to: holder, by: referrer) {
            context.changes.put(.subjects, PersonReservation.key(beneficiary), json: reservation.json(beneficiary: beneficiary))
        }
        context.touch(beneficiary: beneficiary)
    }

    /// The case named in the body, held by the signer's organisation, in one of `statuses`; when `recording` (the
    /// event adds to what is recorded about the person), a case that lets its holder go on recording about them.
    static func heldCase(_ context: RuleContext, _ body: BodyReader, statuses: Set<String>, recording: Bool = false) throws(LedgerError) -> JSONObject {
        let id = try body.identifier("case")
        guard let record = try context.json(.cases, id)?.objectValue else {
            throw LedgerError(.unknownReference, "case \(quoted(id)) does not exist")
        }
        guard record["holder"]?.stringValue == (try context.signerOrganisation()) else {
            throw LedgerError(.notCaseHolder, "case \(quoted(id)) is held by \(record["holder"]?.stringValue ?? "another organisation")")
        }
        guard let status = record["status"]?.stringValue, statuses.contains(status) else {
            throw LedgerError(.invalidState, "case \(quoted(id)) is \(record["status"]?.stringValue ?? "in another state"), not \(statuses.sorted().joined(separator: " or "))")
        }
        if recording {
            let beneficiary = record["beneficiary"]?.stringValue ?? ""
            guard try context.allowsRecording(record, person: try context.actor(beneficiary)) else {
                throw LedgerError(.notCaseHolder, "case \(quoted(id)) gives its holder no standing over \(quoted(beneficiary)), registered since by another organisation (Specs/events.md 1.4)")
            }
        }
        return record
    }

    static func caseOpened(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["case"])
        var record = try heldCase(context, body, statuses: ["referred"], recording: true)
        let beneficiary = record["beneficiary"]?.stringValue ?? ""
        try context.requireNotErased(beneficiary)
        record["status"] = "open"
        record["opened_at"] = .integer(Int64(context.position.sequenceNumber))
        context.changes.put(.cases, try body.identifier("case"), json: .object(record))
        context.touch(beneficiary: beneficiary)
    }

    static func casePlanAgreed(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["case", "goals", "sealed"])
        var record = try heldCase(context, body, statuses: ["open"], recording: true)
        let beneficiary = record["beneficiary"]?.stringValue ?? ""
        try context.requireNotErased(beneficiary)
        // Goals are opportunity categories (no personal data); the details are sealed.
        let goals = try body.slugList("goals", maximumCount: 16)
        if let unknown = goals.first(where: { !opportunityCategories.contains($0) }) {
            throw LedgerError(.invalidBody, "plan goal \(quoted(unknown)) is not an opportunity category")
        }
        if let sealed = try body.optionalObject("sealed") { try SealedData.validate(sealed, field: "case.plan_agreed sealed") }
        record["plan_agreed_at"] = .integer(Int64(context.position.sequenceNumber))
        record["goals"] = .array(goals.map { .string($0) })
        context.changes.put(.cases, try body.identifier("case"), json: .object(record))
        context.touch(beneficiary: beneficiary)
    }

    static func caseNoteAdded(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["case", "sealed"])
        let record = try heldCase(context, body, statuses: ["referred", "open"], recording: true)
        let beneficiary = record["beneficiary"]?.stringValue ?? ""
        try context.requireNotErased(beneficiary)
        try SealedData.validate(try body.object("sealed"), field: "case.note_added sealed")
        context.touch(beneficiary: beneficiary)
    }

    static let caseOutcomes: Set<String> = ["completed", "withdrawn", "transferred", "not_eligible", "unreachable"]

    static func caseClosed(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["case", "outcome"])
        var record = try heldCase(context, body, statuses: ["referred", "open"])
        let outcome = try body.slug("outcome")
        guard caseOutcomes.contains(outcome) else {
            throw LedgerError(.invalidBody, "case outcome \(quoted(outcome)) is not one of \(caseOutcomes.sorted().joined(separator: ", "))")
        }
        record["status"] = "closed"
        record["outcome"] = .string(outcome)
        record["closed_at"] = .integer(Int64(context.position.sequenceNumber))
        let caseID = try body.identifier("case")
        context.changes.put(.cases, caseID, json: .object(record))
        let beneficiary = record["beneficiary"]?.stringValue ?? ""
        // Closing the case that holds a reservation gives it back to the latest earlier placement whose case is still
        // open, or frees it.
        let reservationKey = PersonReservation.key(beneficiary)
        if var reservation = try PersonReservation(try context.json(.subjects, reservationKey)), reservation.caseID == caseID {
            let fellBack = try reservation.fallBack { (earlierCase) throws(LedgerError) in
                let status = try context.json(.cases, earlierCase)?["status"]?.stringValue
                return status == "referred" || status == "open"
            }
            if fellBack {
                context.changes.put(.subjects, reservationKey, json: reservation.json(beneficiary: beneficiary))
            } else {
                context.changes.delete(.subjects, reservationKey)
            }
        }
        context.touch(beneficiary: beneficiary)
    }

    /// Erasure: the subject's key is deleted from the vault outside the log (crypto-shredding); the log records
    /// only that it happened. The authority, or an organisation (or its staff) holding a case of the subject that
    /// gives it standing over them (CaseStanding).
    static func subjectErased(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["beneficiary", "case"])
        let beneficiary = try body.identifier("beneficiary")
        try context.requireNotErased(beneficiary)
        if context.signer.role != .authority {
            let record = try heldCase(context, body, statuses: ["referred", "open", "closed"])
            guard record["beneficiary"]?.stringValue == beneficiary else {
                throw LedgerError(.invalidBody, "case \(quoted(try body.identifier("case"))) is not a case of \(quoted(beneficiary))")
            }
            guard try context.givesStanding(record, person: try context.actor(beneficiary)) else {
                throw LedgerError(.notCaseHolder, "case \(quoted(try body.identifier("case"))) gives its holder no standing over \(quoted(beneficiary)) (Specs/events.md 1.4)")
            }
        } else if body.has("case") {
            _ = try body.identifier("case")
        }
        context.changes.put(.subjects, beneficiary, json: .object(["beneficiary": .string(beneficiary), "erased_at": .integer(Int64(context.position.sequenceNumber))]))
        context.touch(beneficiary: beneficiary)
    }

    // MARK: Activity

    static func activationRecorded(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["activation", "case", "opportunity", "hours", "date"])
        let id = try body.identifier("activation")
        guard try context.json(.activations, id) == nil else { throw LedgerError(.alreadyExists, "activation \(quoted(id)) is already recorded") }
        let record = try heldCase(context, body, statuses: ["open"], recording: true)
        let beneficiary = record["beneficiary"]?.stringValue ?? ""
        let opportunityID = try body.identifier("opportunity")
        guard let opportunity = try context.json(.opportunities, opportunityID), opportunity["status"] == "published" else {
            throw LedgerError(.unknownReference, "opportunity \(quoted(opportunityID)) is not a published opportunity")
        }
        let hours = try body.positiveAmount("hours")
        guard hours <= 1000 else { throw LedgerError(.invalidBody, "activation.recorded hours must be at most 1000") }
        let activation: JSONValue = .object([
            "activation": .string(id), "case": .string(try body.identifier("case")), "beneficiary": .string(beneficiary),
            "opportunity": .string(opportunityID), "hours": .integer(hours), "date": .string(try body.date("date")),
            "organisation": .string(try context.signerOrganisation()), "recorded_at": .integer(Int64(context.position.sequenceNumber)),
        ])
        context.changes.put(.activations, id, json: activation)
        context.touch(beneficiary: beneficiary)
    }

    static func badgeIssued(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["badge", "badge_class", "beneficiary", "activations"])
        let id = try body.identifier("badge")
        guard try context.json(.badges, id) == nil else { throw LedgerError(.alreadyExists, "badge \(quoted(id)) is already issued") }
        let classID = try body.identifier("badge_class")
        guard let badgeClass = try context.json(.badgeClasses, classID)?.objectValue else {
            throw LedgerError(.unknownReference, "badge class \(quoted(classID)) is not defined")
        }
        let issuer = try context.signerOrganisation()
        guard badgeClass["issuer"]?.stringValue == issuer else {
            throw LedgerError(.roleNotPermitted, "badge class \(quoted(classID)) is issued by \(badgeClass["issuer"]?.stringValue ?? "another organisation")")
        }
        guard badgeClass["status"] == "active" else { throw LedgerError(.invalidState, "badge class \(quoted(classID)) is retired") }
        let beneficiary = try body.identifier("beneficiary")
        let person = try context.actor(beneficiary)
        if let registered = person, registered.role != .beneficiary {
            throw LedgerError(.unknownReference, "\(quoted(beneficiary)) is registered as \(registered.role.rawValue), not as a beneficiary")
        }
        let activations = try body.identifierList("activations", maximumCount: 64)
        for activationID in activations {
            guard var activation = try context.json(.activations, activationID)?.objectValue else {
                throw LedgerError(.unknownReference, "activation \(quoted(activationID)) is not recorded")
            }
            guard activation["beneficiary"]?.stringValue == beneficiary else {
                throw LedgerError(.invalidBody, "activation \(quoted(activationID)) is not an activation of \(quoted(beneficiary))")
            }
            guard activation["organisation"]?.stringValue == issuer else {
                throw LedgerError(.roleNotPermitted, "activation \(quoted(activationID)) was recorded by another organisation")
            }
            // The hours were certified through a case: once the person is registered, it must still give its holder
            // standing over them, as for recording more (Specs/events.md 1.4).
            if let caseID = activation["case"]?.stringValue, let caseRecord = try context.json(.cases, caseID)?.objectValue,
                try !context.allowsRecording(caseRecord, person: person)
            {
                throw LedgerError(.notCaseHolder, "activation \(quoted(activationID)) was recorded through case \(quoted(caseID)), which gives its holder no standing over \(quoted(beneficiary)) (Specs/events.md 1.4)")
            }
            // The same hours earn credits once: an activation is the evidence of at most one badge.
            if let earlier = activation["badge"]?.stringValue {
                throw LedgerError(.alreadyConverted, "activation \(quoted(activationID)) is already the evidence of badge \(quoted(earlier))")
            }
            activation["badge"] = .string(id)
            context.changes.put(.activations, activationID, json: .object(activation))
        }
        var badge: JSONObject = [
            "badge": .string(id), "badge_class": .string(classID), "beneficiary": .string(beneficiary),
            "credits": badgeClass["credits"] ?? .integer(0), "activations": .array(activations.map { .string($0) }),
            "issuer": .string(issuer), "issued_at": .integer(Int64(context.position.sequenceNumber)),
            "valid_from": .string(context.position.recordedAt), "status": "issued", "converted": false,
        ]
        if case .integer(let days)? = badgeClass["valid_days"] {
            // badge_class.defined bounds it; more is a damaged state, whose days would overflow as milliseconds.
            guard (1...36_600).contains(days) else {
                throw LedgerError(.integrity, "stored badge class \(quoted(classID)) is damaged: valid_days \(days)")
            }
            let from = Timestamp.millisecondsSince1970(context.position.recordedAt) ?? 0
            badge["valid_until"] = .string(Timestamp.format(millisecondsSince1970: min(from + days * 86_400_000, Timestamp.latestMillisecondsSince1970)))
        }
        context.changes.put(.badges, id, json: .object(badge))
        context.touch(beneficiary: beneficiary)
    }

    static func badgeRevoked(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["badge", "reason"])
        let id = try body.identifier("badge")
        _ = try body.name("reason")
        guard var badge = try context.json(.badges, id)?.objectValue else {
            throw LedgerError(.unknownReference, "badge \(quoted(id)) is not issued")
        }
        guard badge["issuer"]?.stringValue == (try context.signerOrganisation()) else {
            throw LedgerError(.roleNotPermitted, "badge \(quoted(id)) was issued by another organisation")
        }
        guard badge["status"] == "issued" else { throw LedgerError(.invalidState, "badge \(quoted(id)) is already revoked") }
        badge["status"] = "revoked"
        badge["revoked_at"] = .integer(Int64(context.position.sequenceNumber))
        context.changes.put(.badges, id, json: .object(badge))
        context.touch(beneficiary: badge["beneficiary"]?.stringValue ?? "")
    }

    // MARK: Money

    static func beneficiaryActor(_ context: RuleContext, _ id: String) throws(LedgerError) -> ActorRecord {
        guard let actor = try context.actor(id), actor.role == .beneficiary else {
            throw LedgerError(.unknownReference, "\(quoted(id)) is not a registered beneficiary")
        }
        return actor
    }

    /// Money goes to a beneficiary only from the organisation they belong to (the one that registered them).
    static func ownBeneficiary(_ context: RuleContext, _ id: String) throws(LedgerError) -> ActorRecord {
        let actor = try beneficiaryActor(context, id)
        let organisation = try context.signerOrganisation()
        guard actor.organisation == organisation else {
            throw LedgerError(.roleNotPermitted, "beneficiary \(quoted(id)) belongs to \(actor.organisation.map(quoted) ?? "no organisation"), not \(quoted(organisation))")
        }
        // A suspended beneficiary's wallet authorises nothing (payment.redeemed), so ToCoin granted to it could
        // never be spent, only expire: the fund keeps it.
        guard !actor.suspended else {
            throw LedgerError(.actorSuspended, "beneficiary \(quoted(id)) is suspended: its wallet can spend nothing")
        }
        return actor
    }

    static func currentPolicy(_ context: RuleContext) throws(LedgerError) -> Policy {
        guard let policy = try context.policy() else {
            throw LedgerError(.policyMissing, "no policy.updated yet: conversion rate, caps and expiry are not defined")
        }
        return policy
    }

    static func creditsConverted(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["beneficiary", "badges"])
        let beneficiary = try body.identifier("beneficiary")
        _ = try ownBeneficiary(context, beneficiary)
        let policy = try currentPolicy(context)
        let badgeIDs = try body.identifierList("badges", maximumCount: 64)
        var credits: Int64 = 0
        for badgeID in badgeIDs {
            guard var badge = try context.json(.badges, badgeID)?.objectValue else {
                throw LedgerError(.unknownReference, "badge \(quoted(badgeID)) is not issued")
            }
            guard badge["beneficiary"]?.stringValue == beneficiary else {
                throw LedgerError(.invalidBody, "badge \(quoted(badgeID)) was issued to someone else")
            }
            guard badge["status"] == "issued" else { throw LedgerError(.invalidState, "badge \(quoted(badgeID)) is revoked") }
            guard badge["converted"] == false else {
                throw LedgerError(.alreadyConverted, "the credits of badge \(quoted(badgeID)) were already converted")
            }
            credits += badge["credits"]?.integerValue ?? 0
            badge["converted"] = true
            badge["converted_at"] = .integer(Int64(context.position.sequenceNumber))
            context.changes.put(.badges, badgeID, json: .object(badge))
        }
        let (amount, overflow) = credits.multipliedReportingOverflow(by: policy.conversionRateCentsPerCredit)
        guard !overflow, amount > 0, amount <= Amounts.maximum else {
            throw LedgerError(.invalidBody, "the conversion amount is out of range")
        }
        let month = String(context.position.recordedAt.prefix(7))
        let monthKey = StateKey.make(beneficiary, month)
        let convertedThisMonth = try context.value(.conversions, monthKey).flatMap(Account.decode) ?? 0
        // Never past a cap, itself at most Amounts.maximum; more is a damaged state, which the sum below would overflow.
        guard (0...Amounts.maximum).contains(convertedThisMonth) else {
            throw LedgerError(.integrity, "the stored conversions of \(quoted(beneficiary)) in \(month) are damaged: \(convertedThisMonth) cents")
        }
        guard convertedThisMonth + amount <= policy.monthlyConversionCapCents else {
            throw LedgerError(.capExceeded, "\(quoted(beneficiary)) has converted \(convertedThisMonth) cents in \(month); \(amount) more would pass the cap of \(policy.monthlyConversionCapCents)")
        }
        context.changes.put(.conversions, monthKey, Account.encode(convertedThisMonth + amount))
        _ = try context.grantLot(beneficiary: beneficiary, category: Lot.general, amount: amount, validityDays: policy.lotValidityDays)
        context.touch(beneficiary: beneficiary)
    }

    static func doteGranted(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["beneficiary", "category", "amount"])
        let beneficiary = try body.identifier("beneficiary")
        _ = try ownBeneficiary(context, beneficiary)
        let policy = try currentPolicy(context)
        let category = try body.slug("category")
        guard policy.categories.contains(category) else {
            throw LedgerError(.invalidBody, "dote category \(quoted(category)) is not in the policy (\(policy.categories.joined(separator: ", ")))")
        }
        _ = try context.grantLot(beneficiary: beneficiary, category: category, amount: try body.positiveAmount("amount"), validityDays: policy.lotValidityDays)
        context.touch(beneficiary: beneficiary)
    }

    static func paymentRedeemed(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["authorisation", "signature"])
        // The signature was checked with the event's (VerifiedEvent), which kept what it read; here: whose key it
        // is, and the rules.
        let authorisation: PaymentAuthorisation
        if let read = context.paymentAuthorisation {
            authorisation = read
        } else {
            authorisation = try PaymentAuthorisation.read(paymentBody: body)
        }
        guard let genesis = try context.genesis() else { throw LedgerError(.genesisRequired, "the ledger has no genesis") }
        guard authorisation.origin == genesis.origin else {
            throw LedgerError(.authorisationInvalid, "the authorisation is for ledger \(quoted(authorisation.origin)), not this one (\(quoted(genesis.origin)))")
        }
        let merchantID = context.signer.id
        guard authorisation.merchant == merchantID else {
            throw LedgerError(.authorisationInvalid, "the authorisation names merchant \(quoted(authorisation.merchant)), not \(quoted(merchantID))")
        }
        let beneficiary = try beneficiaryActor(context, authorisation.beneficiary)
        guard beneficiary.keys[authorisation.key] == .active, !beneficiary.suspended else {
            throw LedgerError(.authorisationInvalid, "key \(authorisation.key) is not an active wallet key of \(quoted(beneficiary.id))")
        }
        let now = Timestamp.millisecondsSince1970(context.position.recordedAt) ?? 0
        guard now < (Timestamp.millisecondsSince1970(authorisation.expiresAt) ?? 0) else {
            throw LedgerError(.authorisationExpired, "the authorisation expired at \(authorisation.expiresAt), nothing was paid: ask the beneficiary's wallet for a new one")
        }
        let nonceKey = StateKey.make(beneficiary.id, authorisation.nonce)
        if let used = try context.value(.nonces, nonceKey) {
            // A till that lost the answer and signs the payment again lands here: it needs to learn it was paid.
            let payment = StateKey.decodeNumber(used).map { "by the payment recorded at seq \($0)" } ?? "by an earlier payment"
            throw LedgerError(.nonceUsed, "authorisation nonce \(quoted(authorisation.nonce)) of \(quoted(beneficiary.id)) was already used \(payment): an authorisation pays once; if that seq is in this merchant's account history, this payment was made, else ask the wallet for a new authorisation")
        }
        let merchant = try enrolledMerchant(context, merchantID)
        guard merchant["status"] == "enrolled" else {
            throw LedgerError(.merchantNotEnrolled, "merchant \(quoted(merchantID)) is suspended from the circuit")
        }
        let accepted = Set(merchant["categories"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        // Spendable here: general lots and lots earmarked for a category the merchant accepts, not expired;
        // earliest expiry first, earmarked before general on the same expiry, then oldest.
        let lots = try context.lots(of: beneficiary.id)
        let beneficiaryBalance = try context.balance(Account.beneficiary(beneficiary.id))
        // Every rule keeps the balance equal to the lots' sum (at most 1024 lots of at most 10^12: no overflow); a
        // stored state where they differ is damaged, and spending from it would move money no lot holds.
        let lotsTotal = lots.reduce(0) { $0 + $1.remaining }
        guard lotsTotal == beneficiaryBalance else {
            throw LedgerError(.integrity, "the stored state of \(quoted(beneficiary.id)) is damaged: its lots hold \(lotsTotal) cents, its balance is \(beneficiaryBalance)")
        }
        // Each expiry parsed once (lots' expiries are all written by Timestamp.format: equal texts, equal times).
        let unexpiredLots = lots.map { (lot: $0, expiresAt: Timestamp.millisecondsSince1970($0.expiresAt) ?? 0) }.filter { $0.expiresAt > now }
        let spendable = unexpiredLots.filter { $0.lot.category == Lot.general || accepted.contains($0.lot.category) }
            .sorted { first, second in
                if first.expiresAt != second.expiresAt { return first.expiresAt < second.expiresAt }
                if (first.lot.category == Lot.general) != (second.lot.category == Lot.general) { return second.lot.category == Lot.general }
                return first.lot.id < second.lot.id
            }
            .map(\.lot)
        let available = spendable.reduce(0) { $0 + $1.remaining }
        let unexpired = unexpiredLots.reduce(0) { $0 + $1.lot.remaining }
        guard available >= authorisation.amount || unexpired < authorisation.amount else {
            throw LedgerError(.categoryNotAccepted, "\(quoted(beneficiary.id)) holds enough ToCoin, but only \(available) cents of it may be spent at \(quoted(merchantID)) (categories \(accepted.sorted().joined(separator: ", ")))")
        }
        guard available >= authorisation.amount else {
            throw LedgerError(.insufficientFunds, "\(quoted(beneficiary.id)) has \(available) cents spendable at \(quoted(merchantID)), the payment is \(authorisation.amount)")
        }
        var left = authorisation.amount
        var debits: [JSONValue] = []
        for var lot in spendable where left > 0 {
            let taken = min(left, lot.remaining)
            lot.remaining -= taken
            left -= taken
            context.store(lot)
            debits.append(.object(["lot": .integer(Int64(lot.id)), "category": .string(lot.category), "amount": .integer(taken), "refunded": 0]))
        }
        assert(left == 0, "the lots covered the payment")
        try context.transfer(from: Account.beneficiary(beneficiary.id), to: Account.merchant(merchantID), amount: authorisation.amount)
        context.changes.put(.nonces, nonceKey, StateKey.number(context.position.sequenceNumber))
        context.changes.put(.payments, context.event.id, json: .object([
            "payment": .string(context.event.id), "merchant": .string(merchantID), "beneficiary": .string(beneficiary.id),
            "amount": .integer(authorisation.amount), "refunded": 0, "debits": .array(debits),
            "paid_at": .integer(Int64(context.position.sequenceNumber)),
        ]))
        context.touch(beneficiary: beneficiary.id)
    }

    static func paymentRefunded(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["payment", "amount", "reason"])
        let paymentID = try body.identifier("payment")
        let amount = try body.positiveAmount("amount")
        _ = try body.optionalName("reason")
        guard var payment = try context.json(.payments, paymentID)?.objectValue else {
            throw LedgerError(.unknownReference, "payment \(quoted(paymentID)) is not recorded")
        }
        guard payment["merchant"]?.stringValue == context.signer.id else {
            throw LedgerError(.roleNotPermitted, "payment \(quoted(paymentID)) was made to another merchant")
        }
        let paid = payment["amount"]?.integerValue ?? 0
        let refunded = payment["refunded"]?.integerValue ?? 0
        guard amount <= paid - refunded else {
            throw LedgerError(.refundExceedsPayment, "payment \(quoted(paymentID)) has \(paid - refunded) cents left to refund, not \(amount)")
        }
        let beneficiary = payment["beneficiary"]?.stringValue ?? ""
        try context.transfer(from: Account.merchant(context.signer.id), to: Account.beneficiary(beneficiary), amount: amount)
        // Back into the lots it came from, last debited first, each with its own expiry and category.
        var debits = payment["debits"]?.arrayValue ?? []
        var left = amount
        // Counted once: within the refund only the lots it revives join the live ones (one scan, not one a lot).
        var liveLots: Int? = nil
        for index in debits.indices.reversed() where left > 0 {
            guard case .object(var debit) = debits[index], case .integer(let lotID)? = debit["lot"], lotID >= 0,
                case .integer(let debited)? = debit["amount"], case .integer(let debitRefunded)? = debit["refunded"]
            else { throw LedgerError(.integrity, "stored payment \(paymentID) is damaged") }
            let back = min(left, debited - debitRefunded)
            guard back > 0 else { continue }
            let key = StateKey.prefix(beneficiary) + StateKey.number(UInt64(lotID))
            var lot: Lot
            if let stored = try context.json(.lots, key) {
                lot = try Lot(json: stored)
            } else if let spent = try context.json(.spentLots, key) {
                // The lot was emptied; it returns with its original terms (and expiry).
                lot = try Lot(json: spent)
            } else {
                throw LedgerError(.integrity, "the lot \(lotID) of payment \(paymentID) cannot be found")
            }
            if lot.remaining == 0 {
                // A revived lot counts against the bound of live lots, so payments always see all of them.
                let live: Int
                if let counted = liveLots { live = counted } else { live = try context.lots(of: beneficiary).count }
                guard live < Lot.maximumLive else {
                    throw LedgerError(.tooManyLots, "\(quoted(beneficiary)) holds \(Lot.maximumLive) live lots; the refund cannot bring lot \(lotID) back")
                }
                liveLots = live + 1
            }
            lot.remaining += back
            // A debit never returns more than was taken from its lot; more would store a lot no rule leaves.
            guard lot.holdsWhatTheRulesAllow else {
                throw LedgerError(.integrity, "stored payment \(paymentID) is damaged: its debit of lot \(lotID) returns more than the lot held")
            }
            context.store(lot)
            debit["refunded"] = .integer(debitRefunded + back)
            debits[index] = .object(debit)
            left -= back
        }
        // The payment's debits add up to its amount, so a refund within it fits in them; when they do not, the
        // stored payment is damaged, and the cents left would reach the balance without reaching a lot.
        guard left == 0 else {
            throw LedgerError(.integrity, "stored payment \(paymentID) is damaged: its debits do not hold the \(amount) cents refunded")
        }
        payment["refunded"] = .integer(refunded + amount)
        payment["debits"] = .array(debits)
        context.changes.put(.payments, paymentID, json: .object(payment))
        context.touch(beneficiary: beneficiary)
    }

    static func settlementRequested(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["amount"])
        let amount = try body.positiveAmount("amount")
        let merchantAccount = Account.merchant(context.signer.id)
        let balance = try context.balance(merchantAccount)
        guard amount <= balance else {
            throw LedgerError(.settlementExceedsBalance, "merchant \(quoted(context.signer.id)) holds \(balance) cents, cannot settle \(amount)")
        }
        try context.transfer(from: merchantAccount, to: Account.settlement, amount: amount)
        context.changes.put(.settlements, context.event.id, json: .object([
            "settlement": .string(context.event.id), "merchant": .string(context.signer.id), "amount": .integer(amount),
            "status": "requested", "requested_at": .integer(Int64(context.position.sequenceNumber)),
        ]))
    }

    static func settlementPaid(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["settlement", "reference"])
        let id = try body.identifier("settlement")
        _ = try body.name("reference")
        guard var settlement = try context.json(.settlements, id)?.objectValue else {
            throw LedgerError(.unknownReference, "settlement request \(quoted(id)) does not exist")
        }
        guard settlement["status"] == "requested" else { throw LedgerError(.invalidState, "settlement \(quoted(id)) is already paid") }
        // settlement.requested stored a positive amount within Amounts.maximum; anything else is a damaged state.
        guard case .integer(let amount)? = settlement["amount"], amount > 0, amount <= Amounts.maximum else {
            throw LedgerError(.integrity, "stored settlement request \(quoted(id)) is damaged")
        }
        try context.transfer(from: Account.settlement, to: Account.issuance, amount: amount)
        settlement["status"] = "paid"
        settlement["paid_at"] = .integer(Int64(context.position.sequenceNumber))
        context.changes.put(.settlements, id, json: .object(settlement))
    }

    static func tocoinExpired(_ context: inout RuleContext, _ body: BodyReader) throws(LedgerError) {
        try body.allowOnly(["beneficiary", "lot"])
        let beneficiary = try body.identifier("beneficiary")
        let lotID = try body.integer("lot")
        guard lotID >= 0, var lot = try context.json(.lots, StateKey.prefix(beneficiary) + StateKey.number(UInt64(lotID))).map({ (json) throws(LedgerError) in try Lot(json: json) }) else {
            throw LedgerError(.unknownReference, "\(quoted(beneficiary)) holds no lot \(lotID)")
        }
        guard lot.isExpired(at: context.position.recordedAt) else {
            throw LedgerError(.lotNotExpired, "lot \(lotID) expires at \(lot.expiresAt)")
        }
        let amount = lot.remaining
        guard amount > 0 else { throw LedgerError(.invalidState, "lot \(lotID) is empty") }
        lot.remaining = 0
        context.store(lot)
        try context.transfer(from: Account.beneficiary(beneficiary), to: Account.fund, amount: amount)
        context.touch(beneficiary: beneficiary)
    }
}

/// The reservation of a person's registration while they are not registered (Specs/events.md 2.2):
/// `subjects[person ‖ "reserved"]` (beside `subjects[person]`, which records an erasure) =
/// `{"beneficiary","case","holder"}`, plus `"previous"`, the placements it moved from (oldest first, at most
/// `maximumPreviousCount`), when there are any: `[{"case","holder"}, …]`.
public struct PersonReservation: Equatable, Sendable {
    /// Where the reservation was: a case and the organisation that holds it.
    public struct Placement: Equatable, Sendable {
        public var caseID: String
        public var holder: String

        public init(caseID: String, holder: String) {
            self.caseID = caseID
            self.holder = holder
        }
    }

    public var caseID: String
    public var holder: String
    public var previous: [Placement] = []

    /// How many earlier placements a reservation remembers to fall back to; the oldest is forgotten first.
    public static let maximumPreviousCount = 16

    public static func key(_ person: String) -> [UInt8] { StateKey.make(person, "reserved") }

    public init(caseID: String, holder: String, previous: [Placement] = []) {
        self.caseID = caseID
        self.holder = holder
        self.previous = previous
    }

    /// The reservation a state value holds; nil for none. A value of another shape is a damaged state.
    public init?(_ value: JSONValue?) throws(LedgerError) {
        guard let value else { return nil }
        guard let caseID = value["case"]?.stringValue, let holder = value["holder"]?.stringValue else {
            throw LedgerError(.integrity, "a registration reservation in the state has no case or holder")
        }
        var previous: [Placement] = []
        for entry in value["previous"]?.arrayValue ?? [] {
            guard let earlierCase = entry["case"]?.stringValue, let earlierHolder = entry["holder"]?.stringValue else {
                throw LedgerError(.integrity, "a registration reservation in the state has a damaged earlier placement")
            }
            previous.append(Placement(caseID: earlierCase, holder: earlierHolder))
        }
        self.init(caseID: caseID, holder: holder, previous: previous)
    }

    /// Passes the reservation on to `holder` and its case, remembering where it was.
    mutating func move(to caseID: String, holder: String) {
        previous.append(Placement(caseID: self.caseID, holder: self.holder))
        if previous.count > Self.maximumPreviousCount { previous.removeFirst(previous.count - Self.maximumPreviousCount) }
        self.caseID = caseID
        self.holder = holder
    }

    /// Gives the reservation back to the latest remembered placement whose case `isOpen`, forgetting those after
    /// it; whether there was one (when not, nothing is left to hold it).
    mutating func fallBack(isOpen: (String) throws(LedgerError) -> Bool) throws(LedgerError) -> Bool {
        while let earlier = previous.popLast() {
            if try isOpen(earlier.caseID) {
                caseID = earlier.caseID
                holder = earlier.holder
                return true
            }
        }
        return false
    }

    public func json(beneficiary: String) -> JSONValue {
        var object: JSONObject = ["beneficiary": .string(beneficiary), "case": .string(caseID), "holder": .string(holder)]
        if !previous.isEmpty {
            object["previous"] = .array(previous.map { .object(["case": .string($0.caseID), "holder": .string($0.holder)]) })
        }
        return .object(object)
    }
}

extension RuleContext {
    /// `CaseStanding` over this state.
    func givesStanding(_ caseRecord: JSONObject, person: ActorRecord?) throws(LedgerError) -> Bool {
        try CaseStanding.givesStanding(caseRecord, person: person) { (id) throws(LedgerError) in try actor(id) }
    }

    func allowsRecording(_ caseRecord: JSONObject, person: ActorRecord?) throws(LedgerError) -> Bool {
        try CaseStanding.allowsRecording(caseRecord, person: person) { (id) throws(LedgerError) in try actor(id) }
    }

    /// The reservation of `person`'s registration that binds (Specs/events.md 2.2): none when there is none, or when
    /// its holder is suspended (a suspended organisation takes nobody in).
    func bindingReservation(of person: String) throws(LedgerError) -> PersonReservation? {
        guard let reservation = try PersonReservation(try json(.subjects, PersonReservation.key(person))),
            try actor(reservation.holder)?.suspended != true
        else { return nil }
        return reservation
    }

    /// The reservation to write after a referral of `person`, not registered, to `holder` by `referrer`: a new one
    /// for this case when none binds; the binding one moved here when its holder, or the referrer of its case (who
    /// placed the person there), refers them to another organisation; nil when it stays as it is.
    func reservation(afterReferralOf person: String, case caseID: String, to holder: String, by referrer: String) throws(LedgerError) -> PersonReservation? {
        guard var binding = try bindingReservation(of: person) else { return PersonReservation(caseID: caseID, holder: holder) }
        guard holder != binding.holder else { return nil }
        if referrer != binding.holder {
            // The reserved case is read only when its holder is not the one referring.
            guard try json(.cases, binding.caseID)?["referred_by"]?.stringValue == referrer else { return nil }
        }
        binding.move(to: caseID, holder: holder)
        return binding
    }

    /// The organisation the signer acts for: itself, or a staff member's organisation.
    func signerOrganisation() throws(LedgerError) -> String {
        switch signer.role {
        case .organisation: return signer.id
        case .staff:
            guard let organisation = signer.organisation else { throw LedgerError(.integrity, "staff \(signer.id) has no organisation") }
            return organisation
        default:
            throw LedgerError(.roleNotPermitted, "\(signer.role.rawValue) \(quoted(signer.id)) does not act for an organisation")
        }
    }

    func requireNotErased(_ beneficiary: String) throws(LedgerError) {
        if try json(.subjects, beneficiary) != nil {
            throw LedgerError(.subjectErased, "the personal data of \(quoted(beneficiary)) was erased; no more of it may be recorded")
        }
    }

}
