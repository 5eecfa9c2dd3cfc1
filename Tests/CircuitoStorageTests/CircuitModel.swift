import CircuitoCore

/// An independent reference model of the circuit's money and credit rules, written from Specs/events.md (sections
/// 1.2, 1.4, 1.8, 2.3 to 2.5, 3, 4.6 to 4.8, 6.2, 6.3, 7 and 8) and DESIGN.md, not from the rulebook's code: plain
/// dictionaries and arithmetic, checks in the order the spec lists them. The model-based tests drive the same
/// abstract events through it and through the real ledger and compare what each accepts and holds.
///
/// It covers only what those tests generate: every event is well formed (types, identifiers, sealed values), so
/// the form checks it makes are the ones the generator can break (amounts, category lists, badge lists).
struct CircuitModel {
    /// What one submission carries: who signs with which key, and the event in the terms of the spec.
    struct Submission: CustomStringConvertible {
        var id: String
        var signer: String
        var key: String
        var event: ModelEvent

        var description: String { "\(id) by \(signer) [\(key.prefix(12))…]: \(event)" }
    }

    enum Outcome: Equatable, CustomStringConvertible {
        case accepted
        case refused(String)

        var description: String {
            switch self {
            case .accepted: "accepted"
            case .refused(let code): "refused with \(code)"
            }
        }
    }

    struct Actor {
        var role: String
        var organisation: String?
        /// Every key the actor ever had, with whether it is still active.
        var keys: [String: Bool]
        var suspended = false

        var activeKeys: [String] { keys.filter(\.value).map(\.key).sorted() }
    }

    struct Lot: Equatable {
        var id: UInt64
        var category: String
        var amount: Int64
        var remaining: Int64
        var expiresAt: Int64
    }

    struct Debit {
        var lot: UInt64
        var amount: Int64
        var refunded: Int64
    }

    struct Payment {
        var amount: Int64
        var beneficiary: String
        var merchant: String
        var debits: [Debit]
        var refunded: Int64
    }

    struct Settlement {
        var amount: Int64
        var merchant: String
        var paid: Bool
    }

    struct Policy {
        var rate: Int64
        var cap: Int64
        var validityDays: Int64
        var categories: [String]
    }

    struct Badge {
        var beneficiary: String
        var issuer: String
        var credits: Int64
        var revoked = false
        var converted = false
    }

    struct Activation {
        var beneficiary: String
        var organisation: String
        var badge: String?
    }

    struct Case {
        var beneficiary: String
        var holder: String
        var referredBy: String
        var open: Bool
    }

    static let origin = "test.example/ledger"
    static let maximumAmount: Int64 = 1_000_000_000_000
    static let maximumGrantLots = 256
    static let maximumLiveLots = 1024
    static let dayMilliseconds: Int64 = 86_400_000
    /// 9999-12-31T23:59:59.999Z: the last time a computed expiry may hold (section 1.5).
    static let lastTime: Int64 = 253_402_300_799_999

    /// Roles that may sign each type (section 1.11).
    static let signers: [String: Set<String>] = [
        "actor.registered": ["authority", "organisation", "staff"],
        "actor.key_added": ["authority", "organisation", "staff", "merchant", "auditor", "beneficiary"],
        "actor.key_revoked": ["authority", "organisation", "staff", "merchant", "auditor", "beneficiary"],
        "actor.suspended": ["authority", "organisation", "staff"],
        "policy.updated": ["authority"], "program.funded": ["authority"],
        "merchant.enrolled": ["authority"], "merchant.updated": ["authority"], "merchant.suspended": ["authority"],
        "opportunity.published": ["organisation", "staff"], "badge_class.defined": ["organisation", "staff"],
        "case.referred": ["organisation", "staff"], "case.opened": ["organisation", "staff"],
        "activation.recorded": ["organisation", "staff"], "badge.issued": ["organisation", "staff"],
        "badge.revoked": ["organisation", "staff"],
        "credits.converted": ["organisation", "staff"], "dote.granted": ["organisation", "staff"],
        "payment.redeemed": ["merchant"], "payment.refunded": ["merchant"], "settlement.requested": ["merchant"],
        "settlement.paid": ["authority"], "tocoin.expired": ["authority"],
    ]

    var actors: [String: Actor] = [:]
    var keyOwners: [String: String] = [:]
    var eventIDs: Set<String> = []
    var nextSequence: UInt64 = 1
    var policy: Policy?
    /// Merchants with an enrolment: their categories and whether the enrolment is suspended.
    var enrolments: [String: (categories: [String], suspended: Bool)] = [:]
    var balances: [String: Int64] = [:]
    /// Every lot ever granted, emptied ones included (remaining 0): live lots are those with something remaining.
    var lots: [String: [UInt64: Lot]] = [:]
    /// Conversions per beneficiary and month, keyed `beneficiary|YYYY-MM`.
    var conversions: [String: Int64] = [:]
    var usedNonces: Set<String> = []
    var payments: [String: Payment] = [:]
    var settlements: [String: Settlement] = [:]
    var badgeClasses: [String: (issuer: String, credits: Int64, active: Bool)] = [:]
    var badges: [String: Badge] = [:]
    var activations: [String: Activation] = [:]
    var cases: [String: Case] = [:]
    var opportunities: Set<String> = []

    init(authority: String, keys: [String]) {
        actors[authority] = Actor(role: "authority", keys: Dictionary(uniqueKeysWithValues: keys.map { ($0, true) }))
        for key in keys { keyOwners[key] = authority }
    }

    static func account(beneficiary: String) -> String { "beneficiary:" + beneficiary }
    static func account(merchant: String) -> String { "merchant:" + merchant }

    func balance(_ account: String) -> Int64 { balances[account] ?? 0 }

    func liveLots(of beneficiary: String) -> [Lot] {
        (lots[beneficiary] ?? [:]).values.filter { $0.remaining > 0 }.sorted { $0.id < $1.id }
    }

    /// The signer's organisation (section 1.4): an organisation itself, staff the one they were registered with.
    func organisation(of signer: String) -> String? {
        guard let actor = actors[signer] else { return nil }
        switch actor.role {
        case "organisation": return signer
        case "staff": return actor.organisation
        default: return nil
        }
    }

    /// "Manages" (section 1.4).
    func manages(_ signer: String, _ target: String) -> Bool {
        guard let signerActor = actors[signer], let targetActor = actors[target] else { return false }
        switch signerActor.role {
        case "authority": return true
        case "organisation": return targetActor.organisation == signer
        case "staff": return targetActor.role == "beneficiary" && targetActor.organisation != nil && targetActor.organisation == signerActor.organisation
        default: return false
        }
    }

    static func isAmount(_ value: Int64) -> Bool { value >= 1 && value <= maximumAmount }

    /// Decides the submission at `now` (milliseconds since 1970; `month` is the first 7 characters of its
    /// `recorded_at`) and, when it is accepted, applies it.
    mutating func submit(_ submission: Submission, now: Int64, month: String) -> Outcome {
        var next = self
        if let code = next.check(submission, now: now, month: month) { return .refused(code) }
        next.eventIDs.insert(submission.id)
        next.nextSequence += 1
        self = next
        return .accepted
    }

    // MARK: Checks, each returning the refusal's code or nil after applying the event to `self`.

    private mutating func check(_ submission: Submission, now: Int64, month: String) -> String? {
        // Common checks, section 1.2.
        if eventIDs.contains(submission.id) { return "id_conflict" }
        guard let signer = actors[submission.signer] else { return "unknown_actor" }
        guard signer.keys[submission.key] == true else { return "key_not_active" }
        if signer.suspended { return "actor_suspended" }
        if signer.role == "staff", let organisation = signer.organisation, actors[organisation]?.suspended == true { return "actor_suspended" }
        guard Self.signers[submission.event.type]?.contains(signer.role) == true else { return "role_not_permitted" }
        let sequence = nextSequence
        let by = submission.signer
        switch submission.event {
        case .register(let actor, let role, let organisation, let keys):
            // Only valid registrations are generated; the model records them.
            actors[actor] = Actor(role: role, organisation: organisation, keys: Dictionary(uniqueKeysWithValues: keys.map { ($0, true) }))
            for key in keys { keyOwners[key] = actor }
            return nil
        case .publishOpportunity(let opportunity):
            opportunities.insert(opportunity)
            return nil
        case .defineBadgeClass(let badgeClass, let credits):
            guard let issuer = organisation(of: by) else { return "role_not_permitted" }
            badgeClasses[badgeClass] = (issuer, credits, true)
            return nil
        case .referCase(let caseID, let beneficiary, let to):
            guard let referrer = organisation(of: by) else { return "role_not_permitted" }
            cases[caseID] = Case(beneficiary: beneficiary, holder: to, referredBy: referrer, open: false)
            return nil
        case .openCase(let caseID):
            cases[caseID]?.open = true
            return nil

        case .funded(let amount):
            guard Self.isAmount(amount) else { return "invalid_body" }
            return transfer(from: "issuance", to: "fund", amount)

        case .policy(let rate, let cap, let validityDays, let categories):
            guard Self.isAmount(validityDays), validityDays <= 3660 else { return "invalid_body" }
            guard (1...32).contains(categories.count), Set(categories).count == categories.count, !categories.contains("general") else { return "invalid_body" }
            guard Self.isAmount(rate), Self.isAmount(cap) else { return "invalid_body" }
            policy = Policy(rate: rate, cap: cap, validityDays: validityDays, categories: categories)
            return nil

        case .enrol(let merchant, let categories):
            guard actors[merchant]?.role == "merchant" else { return "unknown_reference" }
            if enrolments[merchant] != nil { return "already_exists" }
            if let code = checkMerchantCategories(categories) { return code }
            enrolments[merchant] = (categories, false)
            return nil

        case .updateMerchant(let merchant, let categories):
            guard let enrolment = enrolments[merchant] else { return "merchant_not_enrolled" }
            if let code = checkMerchantCategories(categories) { return code }
            // An update that changes nothing is refused; lists compare in order (section 4.7, rule 3).
            if enrolment.categories == categories { return "invalid_body" }
            enrolments[merchant]?.categories = categories
            return nil

        case .suspendMerchant(let merchant):
            guard let enrolment = enrolments[merchant] else { return "merchant_not_enrolled" }
            if enrolment.suspended { return "invalid_state" }
            enrolments[merchant]?.suspended = true
            return nil

        case .dote(let beneficiary, let category, let amount):
            if let code = checkMoneyRecipient(beneficiary, signer: by) { return code }
            guard let policy else { return "policy_missing" }
            guard policy.categories.contains(category) else { return "invalid_body" }
            guard Self.isAmount(amount) else { return "invalid_body" }
            return grantLot(beneficiary: beneficiary, category: category, amount: amount, sequence: sequence, now: now, policy: policy)

        case .activation(let activation, let caseID, let opportunity):
            if activations[activation] != nil { return "already_exists" }
            guard let heldCase = cases[caseID] else { return "unknown_reference" }
            guard heldCase.holder == organisation(of: by) else { return "not_case_holder" }
            guard heldCase.open else { return "invalid_state" }
            guard hasStanding(heldCase) else { return "not_case_holder" }
            guard opportunities.contains(opportunity) else { return "unknown_reference" }
            activations[activation] = Activation(beneficiary: heldCase.beneficiary, organisation: heldCase.holder)
            return nil

        case .issueBadge(let badge, let badgeClass, let beneficiary, let evidence):
            if badges[badge] != nil { return "already_exists" }
            guard let definition = badgeClasses[badgeClass] else { return "unknown_reference" }
            guard definition.issuer == organisation(of: by) else { return "role_not_permitted" }
            guard definition.active else { return "invalid_state" }
            if let actor = actors[beneficiary], actor.role != "beneficiary" { return "unknown_reference" }
            guard (1...64).contains(evidence.count), Set(evidence).count == evidence.count else { return "invalid_body" }
            for activationID in evidence {
                guard let activation = activations[activationID] else { return "unknown_reference" }
                guard activation.beneficiary == beneficiary else { return "invalid_body" }
                guard activation.organisation == definition.issuer else { return "role_not_permitted" }
                if activation.badge != nil { return "already_converted" }
            }
            for activationID in evidence { activations[activationID]?.badge = badge }
            badges[badge] = Badge(beneficiary: beneficiary, issuer: definition.issuer, credits: definition.credits)
            return nil

        case .revokeBadge(let badge):
            guard let issued = badges[badge] else { return "unknown_reference" }
            guard issued.issuer == organisation(of: by) else { return "role_not_permitted" }
            if issued.revoked { return "invalid_state" }
            badges[badge]?.revoked = true
            return nil

        case .convert(let beneficiary, let badgeIDs):
            if let code = checkMoneyRecipient(beneficiary, signer: by) { return code }
            guard let policy else { return "policy_missing" }
            guard (1...64).contains(badgeIDs.count), Set(badgeIDs).count == badgeIDs.count else { return "invalid_body" }
            var credits: Int64 = 0
            for badgeID in badgeIDs {
                guard let badge = badges[badgeID] else { return "unknown_reference" }
                guard badge.beneficiary == beneficiary else { return "invalid_body" }
                if badge.revoked { return "invalid_state" }
                if badge.converted { return "already_converted" }
                credits += badge.credits
            }
            let (amount, overflow) = credits.multipliedReportingOverflow(by: policy.rate)
            guard !overflow, Self.isAmount(amount) else { return "invalid_body" }
            let monthKey = beneficiary + "|" + month
            let converted = conversions[monthKey] ?? 0
            guard converted + amount <= policy.cap else { return "cap_exceeded" }
            if let code = grantLot(beneficiary: beneficiary, category: "general", amount: amount, sequence: sequence, now: now, policy: policy) { return code }
            conversions[monthKey] = converted + amount
            for badgeID in badgeIDs { badges[badgeID]?.converted = true }
            return nil

        case .pay(let authorisation):
            guard authorisation.origin == Self.origin else { return "authorisation_invalid" }
            guard authorisation.merchant == by else { return "authorisation_invalid" }
            guard let payer = actors[authorisation.beneficiary], payer.role == "beneficiary" else { return "unknown_reference" }
            guard payer.keys[authorisation.key] == true, !payer.suspended else { return "authorisation_invalid" }
            guard now < authorisation.expiresAt else { return "authorisation_expired" }
            let nonceKey = authorisation.beneficiary + "|" + authorisation.nonce
            if usedNonces.contains(nonceKey) { return "nonce_used" }
            guard let enrolment = enrolments[by], !enrolment.suspended else { return "merchant_not_enrolled" }
            // Section 8.1 and rule 9 of 8.2: what this merchant may take, and what the payer holds unexpired.
            let unexpired = liveLots(of: authorisation.beneficiary).filter { $0.expiresAt > now }
            let spendable = unexpired.filter { $0.category == "general" || enrolment.categories.contains($0.category) }
            let spendableTotal = spendable.reduce(0) { $0 + $1.remaining }
            let unexpiredTotal = unexpired.reduce(0) { $0 + $1.remaining }
            if spendableTotal < authorisation.amount {
                return unexpiredTotal >= authorisation.amount ? "category_not_accepted" : "insufficient_funds"
            }
            let order = spendable.sorted { first, second in
                if first.expiresAt != second.expiresAt { return first.expiresAt < second.expiresAt }
                let firstGeneral = first.category == "general", secondGeneral = second.category == "general"
                if firstGeneral != secondGeneral { return !firstGeneral }
                return first.id < second.id
            }
            var left = authorisation.amount
            var debits: [Debit] = []
            for lot in order where left > 0 {
                let taken = min(lot.remaining, left)
                lots[authorisation.beneficiary]?[lot.id]?.remaining -= taken
                debits.append(Debit(lot: lot.id, amount: taken, refunded: 0))
                left -= taken
            }
            if let code = transfer(from: Self.account(beneficiary: authorisation.beneficiary), to: Self.account(merchant: by), authorisation.amount) { return code }
            usedNonces.insert(nonceKey)
            payments[submission.id] = Payment(amount: authorisation.amount, beneficiary: authorisation.beneficiary, merchant: by, debits: debits, refunded: 0)
            return nil

        case .refund(let paymentID, let amount):
            guard Self.isAmount(amount) else { return "invalid_body" }
            guard var payment = payments[paymentID] else { return "unknown_reference" }
            guard payment.merchant == by else { return "role_not_permitted" }
            guard amount <= payment.amount - payment.refunded else { return "refund_exceeds_payment" }
            if let code = transfer(from: Self.account(merchant: by), to: Self.account(beneficiary: payment.beneficiary), amount) { return code }
            var left = amount
            var liveCount = liveLots(of: payment.beneficiary).count
            for index in payment.debits.indices.reversed() where left > 0 {
                let given = min(payment.debits[index].amount - payment.debits[index].refunded, left)
                guard given > 0 else { continue }
                let lotID = payment.debits[index].lot
                guard let lot = lots[payment.beneficiary]?[lotID] else { return "integrity: lot \(lotID) missing in the model" }
                if lot.remaining == 0 {
                    guard liveCount < Self.maximumLiveLots else { return "too_many_lots" }
                    liveCount += 1
                }
                lots[payment.beneficiary]?[lotID]?.remaining += given
                payment.debits[index].refunded += given
                left -= given
            }
            payment.refunded += amount
            payments[paymentID] = payment
            return nil

        case .settle(let amount):
            guard Self.isAmount(amount) else { return "invalid_body" }
            guard amount <= balance(Self.account(merchant: by)) else { return "settlement_exceeds_balance" }
            if let code = transfer(from: Self.account(merchant: by), to: "settlement", amount) { return code }
            settlements[submission.id] = Settlement(amount: amount, merchant: by, paid: false)
            return nil

        case .paySettlement(let settlementID):
            guard let settlement = settlements[settlementID] else { return "unknown_reference" }
            if settlement.paid { return "invalid_state" }
            if let code = transfer(from: "settlement", to: "issuance", settlement.amount) { return code }
            settlements[settlementID]?.paid = true
            return nil

        case .expire(let beneficiary, let lotID):
            guard lotID >= 0, let lot = lots[beneficiary]?[UInt64(lotID)], lot.remaining > 0 else { return "unknown_reference" }
            guard lot.expiresAt <= now else { return "lot_not_expired" }
            if let code = transfer(from: Self.account(beneficiary: beneficiary), to: "fund", lot.remaining) { return code }
            lots[beneficiary]?[lot.id]?.remaining = 0
            return nil

        case .addKey(let target, let key):
            guard let targetActor = actors[target] else { return "unknown_actor" }
            guard by == target || manages(by, target) else { return "role_not_permitted" }
            if keyOwners[key] != nil { return "key_in_use" }
            guard targetActor.keys.count < 64 else { return "invalid_body" }
            actors[target]?.keys[key] = true
            keyOwners[key] = target
            return nil

        case .revokeKey(let target, let key):
            guard let targetActor = actors[target] else { return "unknown_actor" }
            guard by == target || manages(by, target) else { return "role_not_permitted" }
            guard targetActor.keys[key] == true else { return "key_not_active" }
            guard targetActor.activeKeys.count >= 2 else { return "last_key" }
            actors[target]?.keys[key] = false
            return nil

        case .suspend(let target):
            guard let targetActor = actors[target] else { return "unknown_actor" }
            guard targetActor.role != "authority" else { return "role_not_permitted" }
            guard manages(by, target) else { return "role_not_permitted" }
            if targetActor.suspended { return "actor_suspended" }
            actors[target]?.suspended = true
            return nil
        }
    }

    /// Rule 1 of 7.1 and 7.2: money reaches a registered, unsuspended beneficiary only from its own organisation.
    private func checkMoneyRecipient(_ beneficiary: String, signer: String) -> String? {
        guard let actor = actors[beneficiary], actor.role == "beneficiary" else { return "unknown_reference" }
        guard actor.organisation != nil, actor.organisation == organisation(of: signer) else { return "role_not_permitted" }
        if actor.suspended { return "actor_suspended" }
        return nil
    }

    /// Rule 4 of 4.6 (also for `merchant.updated`): a category list, a policy, every category in it.
    private func checkMerchantCategories(_ categories: [String]) -> String? {
        guard (1...32).contains(categories.count), Set(categories).count == categories.count else { return "invalid_body" }
        guard let policy else { return "policy_missing" }
        guard categories.allSatisfy(policy.categories.contains) else { return "invalid_body" }
        return nil
    }

    /// Standing (section 1.4) for the cases the tests make: the beneficiary registered, its organisation able to act
    /// for it and holding or having referred the case; else a case referred by another organisation than its holder.
    private func hasStanding(_ heldCase: Case) -> Bool {
        guard let person = actors[heldCase.beneficiary], person.role == "beneficiary" else { return false }
        if let organisation = person.organisation, actors[organisation]?.suspended == false {
            return heldCase.holder == organisation || heldCase.referredBy == organisation
        }
        return heldCase.referredBy != heldCase.holder
    }

    /// Granting a lot (section 1.8).
    private mutating func grantLot(beneficiary: String, category: String, amount: Int64, sequence: UInt64, now: Int64, policy: Policy) -> String? {
        guard liveLots(of: beneficiary).count < Self.maximumGrantLots else { return "too_many_lots" }
        if let code = transfer(from: "fund", to: Self.account(beneficiary: beneficiary), amount) { return code }
        let expiresAt = min(now + policy.validityDays * Self.dayMilliseconds, Self.lastTime)
        lots[beneficiary, default: [:]][sequence] = Lot(id: sequence, category: category, amount: amount, remaining: amount, expiresAt: expiresAt)
        return nil
    }

    /// A transfer (section 1.8): only `issuance` may go negative.
    private mutating func transfer(from source: String, to destination: String, _ amount: Int64) -> String? {
        if source != "issuance" && balance(source) < amount { return "insufficient_funds" }
        balances[source] = balance(source) - amount
        balances[destination] = balance(destination) + amount
        return nil
    }
}

/// The events the model knows, in the terms of the spec; the tests turn each into a signed event.
/// Printed with Swift's default description (type, case and values), which failures quote.
enum ModelEvent {
    struct Authorisation {
        var origin: String
        var beneficiary: String
        var merchant: String
        var amount: Int64
        var expiresAt: Int64
        var nonce: String
        var key: String
    }

    // Set-up events: generated valid, recorded by the model.
    case register(actor: String, role: String, organisation: String?, keys: [String])
    case publishOpportunity(String)
    case defineBadgeClass(String, credits: Int64)
    case referCase(String, beneficiary: String, to: String)
    case openCase(String)
    // The rules under test.
    case funded(Int64)
    case policy(rate: Int64, cap: Int64, validityDays: Int64, categories: [String])
    case enrol(String, categories: [String])
    case updateMerchant(String, categories: [String])
    case suspendMerchant(String)
    case dote(beneficiary: String, category: String, amount: Int64)
    case activation(String, caseID: String, opportunity: String)
    case issueBadge(String, badgeClass: String, beneficiary: String, activations: [String])
    case revokeBadge(String)
    case convert(beneficiary: String, badges: [String])
    case pay(Authorisation)
    case refund(payment: String, amount: Int64)
    case settle(Int64)
    case paySettlement(String)
    case expire(beneficiary: String, lot: Int64)
    case addKey(target: String, key: String)
    case revokeKey(target: String, key: String)
    case suspend(String)

    var type: String {
        switch self {
        case .register: "actor.registered"
        case .publishOpportunity: "opportunity.published"
        case .defineBadgeClass: "badge_class.defined"
        case .referCase: "case.referred"
        case .openCase: "case.opened"
        case .funded: "program.funded"
        case .policy: "policy.updated"
        case .enrol: "merchant.enrolled"
        case .updateMerchant: "merchant.updated"
        case .suspendMerchant: "merchant.suspended"
        case .dote: "dote.granted"
        case .activation: "activation.recorded"
        case .issueBadge: "badge.issued"
        case .revokeBadge: "badge.revoked"
        case .convert: "credits.converted"
        case .pay: "payment.redeemed"
        case .refund: "payment.refunded"
        case .settle: "settlement.requested"
        case .paySettlement: "settlement.paid"
        case .expire: "tocoin.expired"
        case .addKey: "actor.key_added"
        case .revokeKey: "actor.key_revoked"
        case .suspend: "actor.suspended"
        }
    }
}
