import CircuitoCore
import CircuitoCrypto
import CircuitoStorage

/// What a pre-signed event is, for counting the mix.
public enum BenchEventKind: String, Sendable, CaseIterable, Hashable {
    /// The circuit the mix runs in: policy, funding, organisations, staff, catalogue, merchants, beneficiaries.
    case setup
    case payment, activation, badge, conversion
}

/// An event signed ahead of the measurement, with what the load driver and the verification bound need.
public struct PresignedEvent: Sendable {
    /// Position in the generator's output (setup and mix count together).
    public let index: Int
    public let kind: BenchEventKind
    /// The beneficiary the event concerns (mix events only): events of one beneficiary go over one connection.
    public let beneficiary: Int?
    /// The index of an earlier event that must be accepted before this one is sent (a badge needs its
    /// activations, a conversion its badges).
    public let dependency: Int?
    /// `{"event":JCS(event),"sig":…}`: the signed event exactly as sent.
    public let signedEvent: [UInt8]
    /// Where JCS(event) sits in `signedEvent`.
    public let eventRange: Range<Int>
    public let signature: [UInt8]
    public let publicKey: Ed25519PublicKey
    /// The payment authorisation's own signature check, for `payment.redeemed`.
    public let authorisation: AuthorisationCheck?

    public struct AuthorisationCheck: Sendable {
        /// Where JCS(authorisation) sits in `signedEvent`.
        public let range: Range<Int>
        public let signature: [UInt8]
        public let publicKey: Ed25519PublicKey
    }

    /// The Ed25519 checks the ledger makes for this event: one, or two for a payment.
    public var signatureCount: Int { authorisation == nil ? 1 : 2 }

    /// Checks every signature of the event (what bounds a ledger that verifies every event).
    public func verifySignatures() -> Bool {
        guard publicKey.isValidSignature(signature, for: Event.signingDomain + signedEvent[eventRange]) else { return false }
        if let authorisation {
            return authorisation.publicKey.isValidSignature(
                authorisation.signature, for: PaymentAuthorisation.signingDomain + signedEvent[authorisation.range])
        }
        return true
    }
}

/// An event built but not yet signed: built in order by the generator, signed later on all cores.
public struct UnsignedBenchEvent: Sendable {
    let index: Int
    let kind: BenchEventKind
    let beneficiary: Int?
    let dependency: Int?
    let id: String
    let type: String
    let signer: BenchSigner
    let body: JSONObject
    /// For a payment: the authorisation and the wallet key that signs it (its signature goes into the body).
    let authorisation: (PaymentAuthorisation, Ed25519PrivateKey)?
}

/// An actor id and its key.
public struct BenchSigner: Sendable {
    public let id: String
    public let key: Ed25519PrivateKey

    public init(id: String, key: Ed25519PrivateKey) {
        self.id = id
        self.key = key
    }
}

/// Builds a circuit like the demo's (organisations, staff, catalogue, badge classes, merchants, beneficiaries with
/// open cases and a dote) and then an endless, valid mix of what a live circuit records most: payments (with the
/// wallet's signed authorisation), activations, badge issuances and credit conversions.
///
/// Valid under concurrency: the generator mirrors every balance and counter it needs, payments of a beneficiary
/// never spend more than the dote granted at setup (so they are valid in any order), and the only events that
/// need earlier ones (a badge its activations, a conversion its badges) name the last of them in `dependency`.
/// Events of one beneficiary go over one connection, which sends a dependent event only once every event of the
/// connection up to its dependency has been answered.
///
/// Deterministic for a seed, except the sealed personal data's nonces; `ts` is the generator's start time, and
/// payment authorisations expire a day after it (the ledger compares with its own `recorded_at`).
public struct BenchCircuit: Sendable {
    public struct Options: Sendable {
        public var seed: UInt64
        /// Prefix of every actor, case and event id, so several runs can share a ledger.
        public var tag: String
        public var beneficiaryCount: Int
        /// Events of the mix expected in the whole run (sizes the dotes so payments rarely run dry).
        public var expectedMixEvents: Int
        public var startMilliseconds: Int64
        /// The origin of the ledger the events are for: payment authorisations name it.
        public var origin: String

        public init(
            seed: UInt64, tag: String, beneficiaryCount: Int, expectedMixEvents: Int, startMilliseconds: Int64,
            origin: String = BenchCircuit.defaultOrigin
        ) {
            self.origin = origin
            self.seed = seed
            self.tag = tag
            self.beneficiaryCount = beneficiaryCount
            self.expectedMixEvents = expectedMixEvents
            self.startMilliseconds = startMilliseconds
        }
    }

    /// The origin of the ledgers the bench makes.
    public static let defaultOrigin = "circuito.bench/ledger"

    /// Share of the mix, in percent, that are payments; the rest are activations, and the badges and conversions
    /// they lead to (about 4 : 1 : ½), as in the demo's year.
    public static let paymentPercent = 45
    public static let beneficiaryCountRange = 16...1_000_000
    static let conversionRateCentsPerCredit: Int64 = 100
    static let monthlyConversionCapCents: Int64 = 500_000
    static let lotValidityDays: Int64 = 365
    /// Lots a beneficiary may hold (the ledger's bound is `Lot.maximumPerBeneficiary`); conversions stop before it.
    static let maximumLotsPerBeneficiary = Lot.maximumPerBeneficiary - 16
    static let minimumPaymentCents: Int64 = 100
    static let dayMilliseconds: Int64 = 86_400_000

    static let spendingCategories = ["food", "household", "pharmacy", "clothing", "transport", "school", "culture", "sport"]
    /// The categories of the doti granted at setup; every one is accepted by a third of the merchants.
    static let doteCategories = ["food", "household", "pharmacy"]

    public let options: Options
    public let authority: BenchSigner
    public private(set) var nextIndex = 0
    public private(set) var counts: [BenchEventKind: Int] = [:]

    private var random: DemoRandom
    private let timestamp: String
    private let authorisationExpiry: String
    private let activityDate: String
    private var organisations: [Organisation] = []
    private var opportunities: [String] = []
    private var merchants: [Merchant] = []
    private var beneficiaries: [Beneficiary] = []
    private var fundCents: Int64 = 0
    private var activationCounter = 0
    private var badgeCounter = 0
    private var nonceCounter = 0
    private var setUp = false

    struct Organisation: Sendable {
        let signer: BenchSigner
        let holdsCases: Bool
        var staff: [BenchSigner] = []
        var badgeClasses: [(id: String, credits: Int64)] = []
    }

    struct Merchant: Sendable {
        let signer: BenchSigner
        let categories: [String]
    }

    struct Beneficiary: Sendable {
        let id: String
        let caseID: String
        let wallet: Ed25519PrivateKey
        let holder: Int
        let staff: Int
        let doteCategory: String
        var spendableCents: Int64 = 0
        var activationsPerBadge: Int
        var pendingActivations: [String] = []
        var lastActivationIndex: Int?
        var unconvertedBadges: [(id: String, credits: Int64)] = []
        var lastBadgeIndex: Int?
        var convertedCents: Int64 = 0
        var lotCount = 0
    }

    public init(options: Options, authority: BenchSigner) throws(LedgerError) {
        guard Self.beneficiaryCountRange.contains(options.beneficiaryCount) else {
            throw LedgerError(.invalidRange, "the bench needs \(Self.beneficiaryCountRange.lowerBound) to \(Self.beneficiaryCountRange.upperBound) beneficiaries, not \(options.beneficiaryCount)")
        }
        guard Identifier.isValid(options.tag), options.tag.utf8.count <= 40 else {
            throw LedgerError(.invalidRange, "the bench tag must be an identifier of at most 40 bytes")
        }
        self.options = options
        self.authority = authority
        self.random = DemoRandom(seed: options.seed)
        self.timestamp = Timestamp.format(millisecondsSince1970: options.startMilliseconds)
        self.authorisationExpiry = Timestamp.format(millisecondsSince1970: options.startMilliseconds + Self.dayMilliseconds)
        self.activityDate = String(timestamp.prefix(10))
    }

    /// The key of one of the bench's actors: SHA-256 of the seed, tag and actor id, so a run is reproducible and
    /// two runs with different tags never share a key (the ledger refuses a key used by another actor). In ordinary
    /// memory: anyone can derive it, and a run makes one per beneficiary, more than guarded allocations can be had.
    public static func actorKey(seed: UInt64, tag: String, actor: String) throws(LedgerError) -> Ed25519PrivateKey {
        guard let key = Ed25519PrivateKey(seed: SHA256.hash(Array("circuito bench key: \(seed): \(tag): \(actor)".utf8)), memory: .ordinary) else {
            throw LedgerError(.integrity, "SHA-256 did not give a 32-byte seed")
        }
        return key
    }

    /// The beneficiaries' ids and wallet keys (signed balance queries need them).
    public var beneficiaryWallets: [BenchSigner] { beneficiaries.map { BenchSigner(id: $0.id, key: $0.wallet) } }

    // MARK: Setup

    /// The circuit, in the order it must be appended (one connection, batches in order).
    public mutating func setup() throws(LedgerError) -> [UnsignedBenchEvent] {
        guard !setUp else { throw LedgerError(.invalidRange, "the bench circuit is already set up") }
        setUp = true
        let tag = options.tag
        var events: [UnsignedBenchEvent] = []
        func emit(_ type: String, _ signer: BenchSigner, _ body: JSONObject) {
            events.append(unsigned(kind: .setup, beneficiary: nil, dependency: nil, type: type, signer: signer, body: body))
        }
        emit("policy.updated", authority, [
            "conversion_rate_cents_per_credit": .integer(Self.conversionRateCentsPerCredit),
            "monthly_conversion_cap_cents": .integer(Self.monthlyConversionCapCents),
            "lot_validity_days": .integer(Self.lotValidityDays),
            "categories": .array(Self.spendingCategories.map { .string($0) }),
        ])
        // Dotes sized for the payments the mix will make, plus room for every conversion.
        let paymentsPerBeneficiary = Int64(options.expectedMixEvents) * Int64(Self.paymentPercent) / 100 / Int64(options.beneficiaryCount) + 1
        let doteCents = max(20_000, paymentsPerBeneficiary * 2_500)
        let conversionAllowanceCents: Int64 = 60_000
        var funding = Int64(options.beneficiaryCount) * (doteCents + conversionAllowanceCents)
        var tranche = 0
        while funding > 0 {
            tranche += 1
            let amount = min(funding, Amounts.maximum)
            emit("program.funded", authority, ["amount": .integer(amount), "reference": .string("Delibera PIS, tranche \(tranche) (bench)")])
            fundCents += amount
            funding -= amount
        }

        for (number, name) in BenchNames.organisations.enumerated() {
            let id = "\(tag).org-\(number + 1)"
            let signer = BenchSigner(id: id, key: try Self.actorKey(seed: options.seed, tag: tag, actor: id))
            emit("actor.registered", authority, [
                "actor": .string(id), "role": "organisation", "name": .string(name.name), "district": .string(name.district),
                "keys": .array([.string(signer.key.publicKey.multikey)]),
            ])
            organisations.append(Organisation(signer: signer, holdsCases: number >= BenchNames.referrerCount))
        }
        for index in organisations.indices {
            let organisation = organisations[index]
            for number in 1...3 {
                let id = "\(organisation.signer.id).staff-\(number)"
                let staff = BenchSigner(id: id, key: try Self.actorKey(seed: options.seed, tag: tag, actor: id))
                emit("actor.registered", organisation.signer, [
                    "actor": .string(id), "role": "staff", "name": .string(random.element(of: BenchNames.people) + " — operatore"),
                    "organisation": .string(organisation.signer.id), "keys": .array([.string(staff.key.publicKey.multikey)]),
                ])
                organisations[index].staff.append(staff)
            }
        }
        for index in organisations.indices where organisations[index].holdsCases {
            let organisation = organisations[index]
            for (number, opportunity) in BenchNames.opportunities.enumerated() {
                let id = "\(organisation.signer.id).opp-\(number + 1)"
                emit("opportunity.published", organisation.staff[0], [
                    "opportunity": .string(id), "title": .string(opportunity.title), "description": .string(opportunity.title + " — attività del circuito."),
                    "category": .string(opportunity.category), "district": .string(BenchNames.organisations[index].district),
                    "hours": .integer(Int64(4 + number * 4)),
                ])
                opportunities.append(id)
            }
            for (number, badgeClass) in BenchNames.badgeClasses.enumerated() {
                let id = "\(organisation.signer.id).badge-class-\(number + 1)"
                emit("badge_class.defined", organisation.signer, [
                    "badge_class": .string(id), "name": .string(badgeClass.name), "description": .string(badgeClass.name + " — circuito PIS Torino."),
                    "criteria": .string("Almeno 12 ore di attività certificate dall'operatore."), "credits": .integer(badgeClass.credits),
                    "valid_days": 365,
                ])
                organisations[index].badgeClasses.append((id, badgeClass.credits))
            }
        }
        for (number, shop) in BenchNames.merchants.enumerated() {
            let id = "\(tag).merchant-\(number + 1)"
            let signer = BenchSigner(id: id, key: try Self.actorKey(seed: options.seed, tag: tag, actor: id))
            // Every merchant accepts one dote category (a third each) and a few others.
            var categories = [Self.doteCategories[number % Self.doteCategories.count]]
            for category in shop.extraCategories where !categories.contains(category) { categories.append(category) }
            emit("actor.registered", authority, [
                "actor": .string(id), "role": "merchant", "name": .string(shop.name), "keys": .array([.string(signer.key.publicKey.multikey)]),
            ])
            emit("merchant.enrolled", authority, [
                "merchant": .string(id), "categories": .array(categories.map { .string($0) }), "district": .string(shop.district),
            ])
            merchants.append(Merchant(signer: signer, categories: categories))
        }

        let holders = organisations.indices.filter { organisations[$0].holdsCases }
        let referrers = organisations.indices.filter { !organisations[$0].holdsCases }
        for number in 1...options.beneficiaryCount {
            let id = "\(tag).ben-\(Self.padded(number, width: 6))"
            let holder = random.element(of: holders)
            let referrer = organisations[random.element(of: referrers)]
            var person = Beneficiary(
                id: id, caseID: "\(tag).case-\(Self.padded(number, width: 6))",
                wallet: try Self.actorKey(seed: options.seed, tag: tag, actor: id), holder: holder,
                staff: random.below(organisations[holder].staff.count),
                doteCategory: random.element(of: Self.doteCategories), activationsPerBadge: 3 + random.below(3))
            let staff = organisations[holder].staff[person.staff]
            emit("actor.registered", staff, [
                "actor": .string(id), "role": "beneficiary", "name": .string("Portafoglio \(id)"),
                "organisation": .string(organisations[holder].signer.id), "keys": .array([.string(person.wallet.publicKey.multikey)]),
            ])
            let subjectKey = SHA256.hash(Array("circuito bench vault key: \(options.seed): \(id)".utf8))
            emit("case.referred", referrer.staff[random.below(referrer.staff.count)], [
                "case": .string(person.caseID), "beneficiary": .string(id), "household": .string("\(tag).nucleo-\(Self.padded(number, width: 6))"),
                "to": .string(organisations[holder].signer.id),
                "sealed": SealedData.seal(.object(["nome": .string(random.element(of: BenchNames.people)), "motivo_segnalazione": "Segnalazione del polo di inclusione (bench)"]),
                                          subject: id, key: subjectKey),
            ])
            emit("case.opened", staff, ["case": .string(person.caseID)])
            emit("dote.granted", staff, ["beneficiary": .string(id), "category": .string(person.doteCategory), "amount": .integer(doteCents)])
            fundCents -= doteCents
            person.spendableCents = doteCents
            person.lotCount = 1
            beneficiaries.append(person)
        }
        return events
    }

    // MARK: The mix

    /// The next `count` events of the mix.
    public mutating func mix(count: Int) throws(LedgerError) -> [UnsignedBenchEvent] {
        guard setUp else { throw LedgerError(.invalidRange, "set the bench circuit up before generating its mix") }
        var events: [UnsignedBenchEvent] = []
        events.reserveCapacity(count)
        for _ in 0..<count { events.append(nextMixEvent()) }
        return events
    }

    private mutating func nextMixEvent() -> UnsignedBenchEvent {
        let index = random.below(beneficiaries.count)
        var person = beneficiaries[index]
        defer { beneficiaries[index] = person }
        let holder = organisations[person.holder]
        let staff = holder.staff[person.staff]
        if random.below(100) < Self.paymentPercent && person.spendableCents >= Self.minimumPaymentCents {
            let candidates = merchants.filter { $0.categories.contains(person.doteCategory) }
            let merchant = random.element(of: candidates)
            let amount = min(person.spendableCents, 300 + Int64(random.below(28)) * 100)
            nonceCounter += 1
            let authorisation = PaymentAuthorisation(
                origin: options.origin, beneficiary: person.id, merchant: merchant.signer.id, amount: amount, expiresAt: authorisationExpiry,
                nonce: "n-" + Self.padded(nonceCounter, width: 8), key: person.wallet.publicKey.multikey)
            person.spendableCents -= amount
            return unsigned(
                kind: .payment, beneficiary: index, dependency: nil, type: "payment.redeemed", signer: merchant.signer,
                body: ["authorisation": authorisation.json], authorisation: (authorisation, person.wallet))
        }
        if person.pendingActivations.count >= person.activationsPerBadge, let badgeClass = holder.badgeClasses.isEmpty ? nil : random.element(of: holder.badgeClasses) {
            badgeCounter += 1
            let badgeID = "\(options.tag).badge-\(Self.padded(badgeCounter, width: 7))"
            let event = unsigned(
                kind: .badge, beneficiary: index, dependency: person.lastActivationIndex, type: "badge.issued", signer: staff,
                body: [
                    "badge": .string(badgeID), "badge_class": .string(badgeClass.id), "beneficiary": .string(person.id),
                    "activations": .array(person.pendingActivations.map { .string($0) }),
                ])
            person.pendingActivations = []
            person.activationsPerBadge = 3 + random.below(3)
            person.unconvertedBadges.append((badgeID, badgeClass.credits))
            person.lastBadgeIndex = event.index
            return event
        }
        if person.unconvertedBadges.count >= 2 && person.lotCount < Self.maximumLotsPerBeneficiary {
            let cents = person.unconvertedBadges.reduce(0) { $0 + $1.credits } * Self.conversionRateCentsPerCredit
            if person.convertedCents + cents <= Self.monthlyConversionCapCents && cents <= fundCents {
                let event = unsigned(
                    kind: .conversion, beneficiary: index, dependency: person.lastBadgeIndex, type: "credits.converted", signer: staff,
                    body: ["beneficiary": .string(person.id), "badges": .array(person.unconvertedBadges.map { .string($0.id) })])
                person.unconvertedBadges = []
                person.convertedCents += cents
                person.lotCount += 1
                fundCents -= cents
                return event
            }
        }
        activationCounter += 1
        let activationID = "\(options.tag).act-\(Self.padded(activationCounter, width: 8))"
        let event = unsigned(
            kind: .activation, beneficiary: index, dependency: nil, type: "activation.recorded", signer: staff,
            body: [
                "activation": .string(activationID), "case": .string(person.caseID),
                "opportunity": .string(random.element(of: opportunities)), "hours": .integer(Int64(2 + random.below(7))),
                "date": .string(activityDate),
            ])
        // A badge may name only this beneficiary's activations: keep at most what one badge takes.
        person.pendingActivations.append(activationID)
        person.lastActivationIndex = event.index
        return event
    }

    private mutating func unsigned(
        kind: BenchEventKind, beneficiary: Int?, dependency: Int?, type: String, signer: BenchSigner, body: JSONObject,
        authorisation: (PaymentAuthorisation, Ed25519PrivateKey)? = nil
    ) -> UnsignedBenchEvent {
        let index = nextIndex
        nextIndex += 1
        counts[kind, default: 0] += 1
        return UnsignedBenchEvent(
            index: index, kind: kind, beneficiary: beneficiary, dependency: dependency,
            id: "\(options.tag).evt-\(Self.padded(index, width: 8))", type: type, signer: signer, body: body,
            authorisation: authorisation)
    }

    static func padded(_ value: Int, width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    // MARK: Signing

    /// Signs events on all cores, keeping their order.
    public static func sign(_ events: [UnsignedBenchEvent], timestamp: String) throws(LedgerError) -> [PresignedEvent] {
        let signed = Parallel.map(events) { event in
            Result { () throws(LedgerError) in try sign(event, timestamp: timestamp) }
        }
        var result: [PresignedEvent] = []
        result.reserveCapacity(signed.count)
        for outcome in signed { result.append(try outcome.get()) }
        return result
    }

    /// Signs with the generator's own timestamp.
    public func sign(_ events: [UnsignedBenchEvent]) throws(LedgerError) -> [PresignedEvent] {
        try Self.sign(events, timestamp: timestamp)
    }

    static let eventPrefix: [UInt8] = Array("{\"event\":".utf8)

    static func sign(_ unsigned: UnsignedBenchEvent, timestamp: String) throws(LedgerError) -> PresignedEvent {
        var body = unsigned.body
        var authorisationCheck: (bytes: [UInt8], signature: [UInt8], publicKey: Ed25519PublicKey)?
        if let (authorisation, wallet) = unsigned.authorisation {
            let bytes = CanonicalJSON.encode(authorisation.json)
            let signature = wallet.signature(for: PaymentAuthorisation.signingDomain + bytes)
            body["signature"] = .string(Base64.encode(signature))
            authorisationCheck = (bytes, signature, wallet.publicKey)
        }
        let event = try Event(
            id: unsigned.id, type: unsigned.type, actor: unsigned.signer.id, key: unsigned.signer.key.publicKey.multikey,
            timestamp: timestamp, body: body)
        // JCS of {"event":…,"sig":…} is JCS(event) between fixed text: encode the event once, sign, and splice.
        let canonical = event.canonicalBytes
        let signature = unsigned.signer.key.signature(for: Event.signingDomain + canonical)
        var signed = eventPrefix
        signed.reserveCapacity(canonical.count + 110)
        signed += canonical
        signed += Array(",\"sig\":\"".utf8)
        signed += Array(Base64.encode(signature).utf8)
        signed += Array("\"}".utf8)
        let eventRange = eventPrefix.count..<(eventPrefix.count + canonical.count)
        var check: PresignedEvent.AuthorisationCheck?
        if let authorisationCheck {
            guard let found = canonical.firstRange(of: authorisationCheck.bytes) else {
                throw LedgerError(.integrity, "the authorisation's canonical form is not inside the event's")
            }
            check = PresignedEvent.AuthorisationCheck(
                range: (found.lowerBound + eventPrefix.count)..<(found.upperBound + eventPrefix.count),
                signature: authorisationCheck.signature, publicKey: authorisationCheck.publicKey)
        }
        return PresignedEvent(
            index: unsigned.index, kind: unsigned.kind, beneficiary: unsigned.beneficiary, dependency: unsigned.dependency,
            signedEvent: signed, eventRange: eventRange, signature: signature, publicKey: unsigned.signer.key.publicKey,
            authorisation: check)
    }
}

/// Names for the bench's circuit (Turin's, as in the seeds; invented people).
enum BenchNames {
    struct Organisation {
        let name: String
        let district: String
    }

    /// The first `referrerCount` refer cases; the others hold them.
    static let referrerCount = 2
    static let organisations = [
        Organisation(name: "Città di Torino — Polo di inclusione sociale Nord", district: "barriera_di_milano"),
        Organisation(name: "Città di Torino — Polo di inclusione sociale Sud", district: "mirafiori_sud"),
        Organisation(name: "Cooperativa Terra Mia", district: "aurora"),
        Organisation(name: "Casa del Quartiere di San Salvario", district: "san_salvario"),
        Organisation(name: "Bagni Pubblici di Via Agliè", district: "barriera_di_milano"),
        Organisation(name: "Cascina Roccafranca", district: "mirafiori_nord"),
    ]

    static let opportunities: [(title: String, category: String)] = [
        ("Civica utilità: cura degli spazi comuni", "civic_utility"),
        ("Laboratorio di cucina e panificazione", "training"),
        ("Tirocinio in magazzino solidale", "internship"),
        ("Corso di italiano per adulti", "education"),
        ("Attività sportive di quartiere", "sport"),
    ]

    static let badgeClasses: [(name: String, credits: Int64)] = [
        ("Attivazione di comunità", 10), ("Competenze di base in cucina", 15), ("Tirocinio completato", 20),
    ]

    struct Shop {
        let name: String
        let district: String
        let extraCategories: [String]
    }

    static let merchants = [
        Shop(name: "Alimentari Porta Palazzo", district: "aurora", extraCategories: ["household"]),
        Shop(name: "Drogheria Vanchiglia", district: "vanchiglia", extraCategories: ["food"]),
        Shop(name: "Farmacia San Salvario", district: "san_salvario", extraCategories: []),
        Shop(name: "Mercato coperto di Barriera", district: "barriera_di_milano", extraCategories: ["clothing"]),
        Shop(name: "Ferramenta Borgo Dora", district: "aurora", extraCategories: ["school"]),
        Shop(name: "Parafarmacia Mirafiori", district: "mirafiori_sud", extraCategories: ["food"]),
        Shop(name: "Panetteria Crocetta", district: "crocetta", extraCategories: []),
        Shop(name: "Bazar di Via Nizza", district: "san_salvario", extraCategories: ["clothing", "school"]),
        Shop(name: "Farmacia Comunale 12", district: "san_donato", extraCategories: ["household"]),
        Shop(name: "Supermercato di quartiere Lucento", district: "lucento", extraCategories: ["household"]),
        Shop(name: "Casalinghi Corso Giulio Cesare", district: "aurora", extraCategories: ["food"]),
        Shop(name: "Erboristeria Cenisia", district: "cenisia", extraCategories: ["food"]),
        Shop(name: "Ortofrutta Santa Rita", district: "santa_rita", extraCategories: ["culture"]),
        Shop(name: "Mesticheria Barriera", district: "barriera_di_milano", extraCategories: ["sport"]),
        Shop(name: "Farmacia Falchera", district: "falchera", extraCategories: ["food"]),
        Shop(name: "Gastronomia Pozzo Strada", district: "pozzo_strada", extraCategories: ["transport"]),
        Shop(name: "Emporio solidale Madonna di Campagna", district: "madonna_di_campagna", extraCategories: ["pharmacy", "clothing"]),
        Shop(name: "Farmacia Vallette", district: "vallette", extraCategories: ["school"]),
    ]

    static let people = [
        "Giulia Rinaldi", "Marco Ferrero", "Fatima El Amrani", "Luca Bianco", "Sara Gallo", "Ion Popescu", "Chiara Conti",
        "Ahmed Benali", "Elena Marino", "Paolo Greco", "Amina Diallo", "Francesca Costa", "Davide Fontana", "Maria Ricci",
    ]
}
