import CircuitoCrypto

/// A deterministic random number generator (xoshiro256**, seeded through SplitMix64): the demo must give the same
/// ledger for the same seed on every machine and Swift version, which the standard library's generators and
/// `random(in:using:)` do not promise.
public struct DemoRandom: Sendable {
    private var state0: UInt64
    private var state1: UInt64
    private var state2: UInt64
    private var state3: UInt64

    public init(seed: UInt64) {
        var mixer = seed
        func splitMix() -> UInt64 {
            mixer &+= 0x9E37_79B9_7F4A_7C15
            var value = mixer
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            return value ^ (value >> 31)
        }
        state0 = splitMix()
        state1 = splitMix()
        state2 = splitMix()
        state3 = splitMix()
    }

    public mutating func next() -> UInt64 {
        let result = rotateLeft(state1 &* 5, 7) &* 9
        let shifted = state1 << 17
        state2 ^= state0
        state3 ^= state1
        state1 ^= state2
        state0 ^= state3
        state2 ^= shifted
        state3 = rotateLeft(state3, 45)
        return result
    }

    private func rotateLeft(_ value: UInt64, _ count: UInt64) -> UInt64 { (value << count) | (value >> (64 - count)) }

    /// A number in `0..<bound` (bound > 0), by multiply-high: no loop, and a bias below 2^-40 for the bounds used here.
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "a random bound is positive")
        return Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    public mutating func chance(percent: Int) -> Bool { below(100) < percent }

    public mutating func element<Element>(of elements: [Element]) -> Element {
        elements[below(elements.count)]
    }
}

/// A secret key file the demo keeps for one of its actors (`DIR/keys/<name>`).
public struct DemoKeyFile: Sendable {
    public let name: String
    public let key: Ed25519PrivateKey
}

/// A data subject's sealing key, for the key vault.
public struct DemoVaultKey: Sendable {
    public let subject: String
    public let key: [UInt8]
}

/// Events that share one `recorded_at` and go to the ledger in one `append` (one commit), with what the caller
/// does around them: key files and vault keys to write, and subjects whose vault key is erased once the batch
/// (which holds their `subject.erased`) is durable.
public struct DemoBatch: Sendable {
    public let recordedAtMilliseconds: Int64
    /// The seq the first event gets; the others follow in order (the demo checks every receipt against it).
    public let firstSequenceNumber: UInt64
    public fileprivate(set) var events: [SignedEvent] = []
    public fileprivate(set) var keyFiles: [DemoKeyFile] = []
    public fileprivate(set) var vaultKeys: [DemoVaultKey] = []
    public fileprivate(set) var erasedSubjects: [String] = []

    var isEmpty: Bool { events.isEmpty && keyFiles.isEmpty && vaultKeys.isEmpty && erasedSubjects.isEmpty }
}

/// Builds a realistic year of a Turin circuit from a seed: the authority (the city's PIS programme), the seeds'
/// organisations and their staff, a catalogue of opportunities and badge classes, enrolled merchants, and
/// beneficiaries in households going through referral, intake, plan, activations, badges, conversions, doti,
/// payments, refunds, settlements, expiries and one erasure. Pure: no I/O, no clock, no system randomness.
///
/// Determinism: every key is `Ed25519PrivateKey(seed: SHA-256("circuito demo key: <seed>: <actor id>"))`, every
/// vault key SHA-256("circuito demo vault key: <seed>: <subject>"), every sealing nonce the first 24 bytes of
/// SHA-256("circuito demo nonce: <seed>: <event id>"), every choice comes from `DemoRandom(seed:)`, event ids count
/// up, and time is a simulated calendar: each batch carries the `recorded_at` the caller's ledger clock must give
/// it (the ledger stamps time per commit). Vault keys derived from the seed make the demo reproducible; they are not
/// secret, so the demo's erasure shows the mechanism, not real secrecy (real deployments use `KeyVault.createKey`).
///
/// Use: `init`, create the ledger with `genesis` at `genesisMilliseconds`, then call `nextBatches()` until it
/// returns nil, appending each batch at its `recordedAtMilliseconds`. Every event must be accepted: the generator
/// mirrors the rules (lots, caps, balances) to know the seq of each lot and what each wallet can spend.
public struct DemoCircuit {
    public static let defaultBeneficiaryCount = 500
    /// Enough people for every kind of event, few enough for one process.
    public static let beneficiaryCountRange = 10...20_000
    public static let origin = "torino.circuito.demo/pis"
    public static let authorityID = "citta-di-torino"
    public static let auditorID = "revisore-citta-metropolitana"
    /// The ledger's limit of events per append (`Ledger.maximumBatchCount`).
    public static let maximumBatchCount = 4096
    /// Simulated days after the setup day (by default 2 January 2025 to 31 December 2025).
    public static let dayCount = 364
    /// 2025-01-02T00:00:00Z: the first day unless another is given.
    public static let defaultFirstDayMilliseconds: Int64 = 1_735_776_000_000
    public static let dayMilliseconds: Int64 = 86_400_000
    /// After the first day's month, the month whose first weekday brings the second policy (the cap raised).
    static let policyChangeMonths = 6
    static let conversionRateCentsPerCredit: Int64 = 100
    static let lotValidityDays: Int64 = 120
    static let firstMonthlyCapCents: Int64 = 15_000
    static let secondMonthlyCapCents: Int64 = 20_000

    public let seed: UInt64
    public let beneficiaryCount: Int
    public let genesis: SignedEvent
    public let checkpointKey: Ed25519PrivateKey
    public let genesisMilliseconds: Int64
    /// Midnight UTC of the setup day; the simulated days follow it.
    public let firstDayMilliseconds: Int64
    /// Steps done: the setup, then one per simulated day.
    public private(set) var step = 0
    public var stepCount: Int { Self.dayCount + 1 }
    /// Events generated so far, by type (genesis included).
    public private(set) var eventCounts: [String: Int] = ["ledger.genesis": 1]

    private var random: DemoRandom
    private let authority: Signer
    private var organisations: [DemoOrganisation] = []
    private var opportunities: [DemoOpportunity] = []
    private var merchants: [DemoMerchant] = []
    private var beneficiaries: [DemoBeneficiary] = []
    private var erasureSubject: Int?

    // Mirrors of ledger state the generator needs to stay within the rules.
    private var nextSequenceNumber: UInt64 = 1
    private var eventCounter = 0
    private var fundCents: Int64 = 0
    private var monthlyCapCents = Self.firstMonthlyCapCents
    private var activationCounter = 0
    private var badgeCounter = 0
    private var nonceCounter = 0
    private var fundingCounter = 0
    private var settlementPaymentCounter = 0
    private var pendingRefunds: [PendingRefund] = []
    private var pendingSettlements: [PendingSettlement] = []
    private var lastSettlementMonth = ""
    private var fundedMonths: Set<String> = []
    private var policyUpdated = false
    private var opportunityUpdated = false
    private var opportunityWithdrawn = false
    private var merchantSuspended = false
    private var badgeRevoked = false

    // The batch being filled and those finished in this step.
    private var current: DemoBatch
    private var finished: [DemoBatch] = []

    /// `firstDayMilliseconds` MUST be a midnight UTC (a date); the same seed, count and first day give the same
    /// circuit.
    public init(
        seed: UInt64, beneficiaryCount: Int = DemoCircuit.defaultBeneficiaryCount, firstDayMilliseconds: Int64 = DemoCircuit.defaultFirstDayMilliseconds
    ) throws(LedgerError) {
        guard Self.beneficiaryCountRange.contains(beneficiaryCount) else {
            throw LedgerError(.invalidBody, "the demo needs \(Self.beneficiaryCountRange.lowerBound) to \(Self.beneficiaryCountRange.upperBound) beneficiaries, not \(beneficiaryCount)")
        }
        guard firstDayMilliseconds >= 0, firstDayMilliseconds % Self.dayMilliseconds == 0 else {
            throw LedgerError(.invalidRange, "the demo's first day is a date (midnight UTC), not \(Timestamp.format(millisecondsSince1970: firstDayMilliseconds))")
        }
        self.firstDayMilliseconds = firstDayMilliseconds
        self.seed = seed
        self.beneficiaryCount = beneficiaryCount
        self.random = DemoRandom(seed: seed)
        let authorityKey = try Self.actorKey(seed: seed, actor: Self.authorityID)
        authority = Signer(id: Self.authorityID, key: authorityKey)
        checkpointKey = try Self.actorKey(seed: seed, actor: "ledger checkpoint")
        genesisMilliseconds = firstDayMilliseconds + 8 * 3_600_000
        let event = try Event(
            id: "genesis", type: "ledger.genesis", actor: Self.authorityID, key: authorityKey.publicKey.multikey,
            timestamp: Timestamp.format(millisecondsSince1970: genesisMilliseconds),
            body: [
                "origin": .string(Self.origin),
                "authority": .object([
                    "actor": .string(Self.authorityID), "name": "Città di Torino — Piano di Inclusione Sociale (PIS)",
                    "keys": .array([.string(authorityKey.publicKey.multikey)]),
                ]),
                "checkpoint_key": .string(checkpointKey.publicKey.multikey),
                "currency": .object(["code": .string(Rulebook.currencyCode), "decimals": .integer(Rulebook.currencyDecimals)]),
            ])
        genesis = SignedEvent(signing: event, with: authorityKey)
        current = DemoBatch(recordedAtMilliseconds: genesisMilliseconds, firstSequenceNumber: 1)
    }

    // MARK: Derivations (public so that tests and tools can recompute them)

    /// The demo key of an actor: Ed25519 from the seed SHA-256("circuito demo key: <seed>: <actor id>"). In ordinary
    /// memory: anyone can derive it, and a demo makes thousands.
    public static func actorKey(seed: UInt64, actor: String) throws(LedgerError) -> Ed25519PrivateKey {
        guard let key = Ed25519PrivateKey(seed: SHA256.hash(Array("circuito demo key: \(seed): \(actor)".utf8)), memory: .ordinary) else {
            throw LedgerError(.integrity, "SHA-256 did not give a 32-byte seed")
        }
        return key
    }

    /// The vault key that seals a subject's personal data in the demo.
    public static func vaultKey(seed: UInt64, subject: String) -> [UInt8] {
        SHA256.hash(Array("circuito demo vault key: \(seed): \(subject)".utf8))
    }

    /// The invented personal data sealed in a subject's referral (`case.referred`): name, a tax code with the
    /// unassigned place code Z999 (so it can be no real person's), birth date, address, phone and the reason.
    public static func personalData(seed: UInt64, subject: String) -> JSONValue {
        let digest = SHA256.hash(Array("circuito demo person: \(seed): \(subject)".utf8))
        var random = DemoRandom(seed: digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) })
        let female = random.chance(percent: 55)
        let givenName = random.element(of: female ? DemoData.femaleNames : DemoData.maleNames)
        let surname = random.element(of: DemoData.surnames)
        let year = 1950 + random.below(55)
        let month = 1 + random.below(12)
        let day = 1 + random.below(28)
        let monthLetters = Array("ABCDEHLMPRST")
        func consonants(_ text: String) -> String {
            let letters = text.uppercased().filter { $0.isLetter && $0.isASCII }
            // The codice fiscale takes consonants, then vowels, and pads a name too short for three with the letter X.
            let picked = letters.filter { !"AEIOU".contains($0) } + letters.filter { "AEIOU".contains($0) } + String(repeating: "X", count: 3)
            return String(picked.prefix(3))
        }
        func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let checkLetter = Character(Unicode.Scalar(UInt8(ascii: "A") + UInt8(random.below(26))))
        let taxCode = consonants(surname) + consonants(givenName) + twoDigits(year % 100) + String(monthLetters[month - 1])
            + twoDigits(day + (female ? 40 : 0)) + "Z999" + String(checkLetter)
        return .object([
            "nome": .string(givenName), "cognome": .string(surname), "codice_fiscale": .string(taxCode),
            "data_di_nascita": .string("\(year)-\(twoDigits(month))-\(twoDigits(day))"),
            "indirizzo": .string("\(random.element(of: DemoData.streets)) \(1 + random.below(180)), Torino"),
            "telefono": .string("+39 3\(random.below(10))\(random.below(10)) \(100_0000 + random.below(900_0000))"),
            "motivo_segnalazione": .string(random.element(of: DemoData.referralReasons)),
        ])
    }

    /// Seals like `SealedData.seal`, but with a nonce derived from the event id, so that the same seed gives the
    /// same bytes. (A nonce is never reused: event ids are unique and each subject has its own key.)
    static func seal(_ value: JSONValue, subject: String, key: [UInt8], nonceSource: String) -> JSONValue {
        let nonce = Array(SHA256.hash(Array(nonceSource.utf8)).prefix(SecretBox.nonceByteCount))
        let ciphertext = SecretBox.seal(
            CanonicalJSON.encode(value), nonce: nonce, additionalData: SealedData.additionalData(subject: subject), key: key)
        return .object([
            "alg": .string(SealedData.algorithm), "nonce": .string(Base64.encode(nonce)),
            "ciphertext": .string(Base64.encode(ciphertext)),
        ])
    }

    // MARK: Steps

    /// The batches of the next step (the setup, then one simulated day each), or nil when the year is over.
    public mutating func nextBatches() throws(LedgerError) -> [DemoBatch]? {
        guard step < stepCount else { return nil }
        if step == 0 {
            try setUp()
        } else {
            try simulate(day: step - 1)
        }
        step += 1
        flush()
        let batches = finished
        finished = []
        return batches
    }

    private mutating func begin(at milliseconds: Int64) {
        flush()
        current = DemoBatch(recordedAtMilliseconds: milliseconds, firstSequenceNumber: nextSequenceNumber)
    }

    private mutating func flush() {
        if !current.isEmpty { finished.append(current) }
        current = DemoBatch(recordedAtMilliseconds: current.recordedAtMilliseconds, firstSequenceNumber: nextSequenceNumber)
    }

    private var now: Int64 { current.recordedAtMilliseconds }

    /// Signs one event into the current batch and returns its id and the seq it will get.
    @discardableResult
    private mutating func emit(_ type: String, by signer: Signer, _ body: JSONObject) throws(LedgerError) -> (id: String, sequenceNumber: UInt64) {
        let id = nextEventID(type)
        eventCounter += 1
        let event = try Event(
            id: id, type: type, actor: signer.id, key: signer.key.publicKey.multikey,
            timestamp: Timestamp.format(millisecondsSince1970: now), body: body)
        current.events.append(SignedEvent(signing: event, with: signer.key))
        let sequenceNumber = nextSequenceNumber
        nextSequenceNumber += 1
        eventCounts[type, default: 0] += 1
        if current.events.count == Self.maximumBatchCount { begin(at: now) }
        return (id, sequenceNumber)
    }

    /// The id the next event of `type` gets (its type and a counter: unique, readable, the same for the same seed).
    private func nextEventID(_ type: String) -> String { type + "." + Self.padded(eventCounter + 1, width: 6) }

    static func padded(_ value: Int, width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    static func month(of milliseconds: Int64) -> String { String(Timestamp.format(millisecondsSince1970: milliseconds).prefix(7)) }

    /// Calendar months from `first` to `second`, both `YYYY-MM`.
    static func monthsBetween(_ first: String, _ second: String) -> Int {
        func index(_ month: String) -> Int { (Int(month.prefix(4)) ?? 0) * 12 + (Int(month.suffix(2)) ?? 0) }
        return index(second) - index(first)
    }
    static func date(of milliseconds: Int64) -> String { String(Timestamp.format(millisecondsSince1970: milliseconds).prefix(10)) }

    // MARK: Setup: policy, funding, organisations, staff, catalogue, merchants, households

    private mutating func setUp() throws(LedgerError) {
        begin(at: genesisMilliseconds + 30 * 60_000)
        current.keyFiles.append(DemoKeyFile(name: Self.authorityID + ".key", key: authority.key))
        try emit("policy.updated", by: authority, policyBody(monthlyCapCents: Self.firstMonthlyCapCents))
        try fund(Int64(beneficiaryCount) * 15_000, reference: "Delibera PIS \(Self.month(of: firstDayMilliseconds).prefix(4)), prima tranche")

        let auditorKey = try Self.actorKey(seed: seed, actor: Self.auditorID)
        try emit("actor.registered", by: authority, [
            "actor": .string(Self.auditorID), "role": "auditor", "name": "Città Metropolitana di Torino — revisione del circuito",
            "keys": .array([.string(auditorKey.publicKey.multikey)]),
        ])
        current.keyFiles.append(DemoKeyFile(name: Self.auditorID + ".key", key: auditorKey))

        for data in DemoData.organisations {
            let key = try Self.actorKey(seed: seed, actor: data.id)
            try emit("actor.registered", by: authority, [
                "actor": .string(data.id), "role": "organisation", "name": .string(data.name), "district": .string(data.district),
                "keys": .array([.string(key.publicKey.multikey)]),
            ])
            current.keyFiles.append(DemoKeyFile(name: data.id + ".key", key: key))
            organisations.append(DemoOrganisation(data: data, signer: Signer(id: data.id, key: key)))
        }
        // Each organisation registers its own staff.
        for index in organisations.indices {
            let organisation = organisations[index]
            for (number, title) in organisation.data.staffTitles.enumerated() {
                let id = organisation.data.id + ".staff-" + String(number + 1)
                let key = try Self.actorKey(seed: seed, actor: id)
                let female = title.hasSuffix("a") || title.hasSuffix("trice")
                let name = random.element(of: female ? DemoData.femaleNames : DemoData.maleNames) + " "
                    + random.element(of: DemoData.surnames) + " — " + title
                try emit("actor.registered", by: organisation.signer, [
                    "actor": .string(id), "role": "staff", "name": .string(name), "organisation": .string(organisation.data.id),
                    "keys": .array([.string(key.publicKey.multikey)]),
                ])
                current.keyFiles.append(DemoKeyFile(name: id + ".key", key: key))
                organisations[index].staff.append(DemoStaff(signer: Signer(id: id, key: key), name: name))
            }
        }
        // The catalogue: opportunities published by staff, badge classes defined by the organisations.
        for index in organisations.indices {
            let organisation = organisations[index]
            for (number, opportunity) in organisation.data.opportunities.enumerated() {
                let id = "opp." + organisation.data.id + "." + String(number + 1)
                try emit("opportunity.published", by: organisation.staff[0].signer, [
                    "opportunity": .string(id), "title": .string(opportunity.title), "description": .string(opportunity.description),
                    "category": .string(opportunity.category), "district": .string(organisation.data.district),
                    "hours": .integer(opportunity.hours),
                ])
                opportunities.append(DemoOpportunity(id: id, category: opportunity.category, district: organisation.data.district, organisation: index))
            }
            for badgeClass in organisation.data.badgeClasses {
                let id = "badge-class." + organisation.data.id + "." + badgeClass.slug
                var body: JSONObject = [
                    "badge_class": .string(id), "name": .string(badgeClass.name),
                    "description": .string(badgeClass.name + " — " + organisation.data.name + ", circuito PIS Torino."),
                    "criteria": .string(badgeClass.criteria), "credits": .integer(badgeClass.credits),
                ]
                if let days = badgeClass.validDays { body["valid_days"] = .integer(days) }
                try emit("badge_class.defined", by: organisation.signer, body)
                organisations[index].badgeClasses.append(DemoBadgeClass(id: id, credits: badgeClass.credits))
            }
        }
        for data in DemoData.merchants {
            let id = "merchant." + data.slug
            let key = try Self.actorKey(seed: seed, actor: id)
            try emit("actor.registered", by: authority, [
                "actor": .string(id), "role": "merchant", "name": .string(data.name), "keys": .array([.string(key.publicKey.multikey)]),
            ])
            try emit("merchant.enrolled", by: authority, [
                "merchant": .string(id), "categories": .array(data.categories.map { .string($0) }), "district": .string(data.district),
            ])
            current.keyFiles.append(DemoKeyFile(name: id + ".key", key: key))
            merchants.append(DemoMerchant(signer: Signer(id: id, key: key), categories: data.categories, district: data.district))
        }
        try makeHouseholds()
    }

    private func policyBody(monthlyCapCents: Int64) -> JSONObject {
        [
            "conversion_rate_cents_per_credit": .integer(Self.conversionRateCentsPerCredit),
            "monthly_conversion_cap_cents": .integer(monthlyCapCents), "lot_validity_days": .integer(Self.lotValidityDays),
            "categories": .array(DemoData.spendingCategories.map { .string($0) }),
        ]
    }

    private mutating func fund(_ amount: Int64, reference: String) throws(LedgerError) {
        fundingCounter += 1
        try emit("program.funded", by: authority, ["amount": .integer(amount), "reference": .string(reference)])
        fundCents += amount
    }

    /// The programme tops up its fund when a grant or conversion would find it short.
    private mutating func ensureFund(_ amount: Int64) throws(LedgerError) {
        guard fundCents < amount else { return }
        try fund(max(amount, Int64(beneficiaryCount) * 5_000), reference: "Integrazione del fondo PIS n. \(fundingCounter)")
    }

    /// Households of one to three people, referred together; about one household in sixteen is referred but not
    /// taken on (closed as not eligible or unreachable) and does not count among the beneficiaries.
    private mutating func makeHouseholds() throws(LedgerError) {
        let holders = organisations.indices.filter { organisations[$0].data.kind == .caseHolder }
        let referrers = organisations.indices.filter { organisations[$0].data.kind == .referrer }
        let totalShare = holders.reduce(0) { $0 + organisations[$1].data.caseShare }
        var admittedCount = 0
        var subjectNumber = 0
        var householdNumber = 0
        // Bounded: each round adds at least one admitted person with probability 15/16.
        for _ in 0..<(beneficiaryCount * 8) where admittedCount < beneficiaryCount {
            householdNumber += 1
            let admitted = !random.chance(percent: 6)
            let roll = random.below(100)
            let size = min(roll < 60 ? 1 : (roll < 88 ? 2 : 3), admitted ? beneficiaryCount - admittedCount : 3)
            var pick = random.below(totalShare)
            var holder = holders[0]
            for candidate in holders {
                if pick < organisations[candidate].data.caseShare { holder = candidate; break }
                pick -= organisations[candidate].data.caseShare
            }
            let referrer = random.element(of: referrers)
            // A first wave when the programme opens, then referrals through the year.
            let referralDay = random.chance(percent: 40) ? 1 + random.below(45) : 1 + random.below(230)
            let household = "nucleo-" + Self.padded(householdNumber, width: 4)
            for _ in 0..<size {
                subjectNumber += 1
                let id = "ben-" + Self.padded(subjectNumber, width: 4)
                let lowSpender = random.chance(percent: 8)
                beneficiaries.append(DemoBeneficiary(
                    id: id, caseID: "case-" + Self.padded(subjectNumber, width: 4), household: household, holder: holder,
                    holderStaff: random.below(organisations[holder].staff.count), referrer: referrer,
                    referrerStaff: random.below(organisations[referrer].staff.count), admitted: admitted,
                    referralDay: referralDay, wallet: try Self.actorKey(seed: seed, actor: id),
                    spendingChancePercent: lowSpender ? 3 : 14 + random.below(12), doteEligible: random.chance(percent: 45),
                    activationsPerBadge: 3 + random.below(3)))
                if admitted { admittedCount += 1 }
            }
        }
        // One person asks to be forgotten: an early, admitted one whose case closes mid-year.
        let early = beneficiaries.indices.filter { beneficiaries[$0].admitted && beneficiaries[$0].referralDay < 100 }
        let candidates = early.isEmpty ? beneficiaries.indices.filter { beneficiaries[$0].admitted } : early
        if !candidates.isEmpty { erasureSubject = random.element(of: candidates) }
        // About one in ten stops shopping a month or two after referral (moved away, lost touch): their lots expire
        // and the authority collects them.
        let admitted = beneficiaries.indices.filter { beneficiaries[$0].admitted }
        let earlyAdmitted = admitted.filter { beneficiaries[$0].referralDay < 150 }
        for _ in 0..<max(1, admitted.count / 10) where !earlyAdmitted.isEmpty {
            let index = random.element(of: earlyAdmitted)
            beneficiaries[index].stopsSpendingDay = beneficiaries[index].referralDay + 40 + random.below(40)
        }
        // About one in a hundred loses their phone and gets a new wallet key.
        for _ in 0..<max(1, admitted.count / 100) where !admitted.isEmpty {
            let index = random.element(of: admitted)
            if index != erasureSubject { beneficiaries[index].rotates = true }
        }
    }

    // MARK: One day

    private mutating func simulate(day: Int) throws(LedgerError) {
        let dayStart = firstDayMilliseconds + Int64(day) * Self.dayMilliseconds
        // 0 = Sunday (1970-01-01 was a Thursday).
        let weekday = Int((dayStart / Self.dayMilliseconds + 4) % 7)
        if (1...5).contains(weekday) {
            begin(at: dayStart + 9 * 3_600_000 + 30 * 60_000)
            try office(day: day, weekday: weekday)
        }
        if (1...6).contains(weekday) {
            begin(at: dayStart + 16 * 3_600_000)
            try shops(day: day)
        }
    }

    /// The authority's and the organisations' work of a weekday morning.
    private mutating func office(day: Int, weekday: Int) throws(LedgerError) {
        let month = Self.month(of: now)
        if weekday == 1 { try collectExpiredLots() }
        if ["04", "07", "10"].contains(String(month.suffix(2))) && !fundedMonths.contains(month) {
            fundedMonths.insert(month)
            try fund(Int64(beneficiaryCount) * 12_000, reference: "Delibera PIS \(month.prefix(4)), tranche di \(month)")
        }
        if Self.monthsBetween(Self.month(of: firstDayMilliseconds), month) >= Self.policyChangeMonths && !policyUpdated {
            policyUpdated = true
            monthlyCapCents = Self.secondMonthlyCapCents
            try emit("policy.updated", by: authority, policyBody(monthlyCapCents: Self.secondMonthlyCapCents))
        }
        try catalogueChanges(day: day)
        // Settlements requested earlier are paid by bank transfer a few days later.
        var stillPending: [PendingSettlement] = []
        for settlement in pendingSettlements {
            guard settlement.payDay <= day else {
                stillPending.append(settlement)
                continue
            }
            settlementPaymentCounter += 1
            try emit("settlement.paid", by: authority, [
                "settlement": .string(settlement.id), "reference": .string("Mandato di pagamento \(month.prefix(4))/\(Self.padded(settlementPaymentCounter, width: 5))"),
            ])
        }
        pendingSettlements = stillPending
        for index in beneficiaries.indices {
            try officeWork(for: index, day: day, weekday: weekday)
        }
    }

    /// Once a week the authority returns to the fund what expired lots still hold.
    private mutating func collectExpiredLots() throws(LedgerError) {
        for index in beneficiaries.indices {
            for lotIndex in beneficiaries[index].lots.indices {
                let lot = beneficiaries[index].lots[lotIndex]
                guard lot.remaining > 0, lot.expiresAt <= now else { continue }
                try emit("tocoin.expired", by: authority, ["beneficiary": .string(beneficiaries[index].id), "lot": .integer(Int64(lot.id))])
                fundCents += lot.remaining
                beneficiaries[index].lots[lotIndex].remaining = 0
            }
        }
    }

    private mutating func catalogueChanges(day: Int) throws(LedgerError) {
        if day >= 60 && !opportunityUpdated, let index = opportunities.firstIndex(where: { $0.id == "opp.piazza-dei-mestieri.4" }) {
            opportunityUpdated = true
            let organisation = organisations[opportunities[index].organisation]
            try emit("opportunity.updated", by: organisation.staff[0].signer, [
                "opportunity": .string(opportunities[index].id), "hours": 48,
                "description": "Corso pratico di panificazione con attestato di frequenza; da marzo anche il sabato mattina.",
            ])
        }
        if day >= 250 && !opportunityWithdrawn, let index = opportunities.firstIndex(where: { $0.id == "opp.coop-liberi-tutti.3" }) {
            opportunityWithdrawn = true
            opportunities[index].published = false
            let organisation = organisations[opportunities[index].organisation]
            try emit("opportunity.withdrawn", by: organisation.staff[0].signer, [
                "opportunity": .string(opportunities[index].id), "reason": "L'azienda ospitante non può più accogliere tirocinanti",
            ])
        }
        if day >= 270 && !merchantSuspended, let index = merchants.firstIndex(where: { $0.signer.id == "merchant.telefonia-barriera" }) {
            merchantSuspended = true
            merchants[index].suspended = true
            try emit("merchant.suspended", by: authority, [
                "merchant": .string(merchants[index].signer.id), "reason": "Verifica sul rispetto del regolamento del circuito in corso",
            ])
        }
    }

    // MARK: Cases and activity

    private mutating func officeWork(for index: Int, day: Int, weekday: Int) throws(LedgerError) {
        var person = beneficiaries[index]
        defer { beneficiaries[index] = person }
        let holder = organisations[person.holder]
        let staff = holder.staff[person.holderStaff]
        switch person.stage {
        case .waiting:
            guard day >= person.referralDay else { return }
            let referrer = organisations[person.referrer].staff[person.referrerStaff]
            let vaultKey = Self.vaultKey(seed: seed, subject: person.id)
            current.vaultKeys.append(DemoVaultKey(subject: person.id, key: vaultKey))
            let nonceText = nonceSource("case.referred")
            try emit("case.referred", by: referrer.signer, [
                "case": .string(person.caseID), "beneficiary": .string(person.id), "household": .string(person.household),
                "to": .string(holder.data.id),
                "sealed": Self.seal(Self.personalData(seed: seed, subject: person.id), subject: person.id, key: vaultKey,
                                    nonceSource: nonceText),
            ])
            person.stage = .referred
            person.nextDay = day + 2 + random.below(8)
        case .referred:
            guard day >= person.nextDay else { return }
            guard person.admitted else {
                try emit("case.closed", by: staff.signer, [
                    "case": .string(person.caseID), "outcome": .string(random.chance(percent: 60) ? "not_eligible" : "unreachable"),
                ])
                person.stage = .closed
                return
            }
            try emit("actor.registered", by: staff.signer, [
                "actor": .string(person.id), "role": "beneficiary", "name": .string("Portafoglio " + person.id),
                "organisation": .string(holder.data.id), "keys": .array([.string(person.wallet.publicKey.multikey)]),
            ])
            current.keyFiles.append(DemoKeyFile(name: person.id + ".key", key: person.wallet))
            try emit("case.opened", by: staff.signer, ["case": .string(person.caseID)])
            person.registered = true
            person.stage = .open
            person.nextDay = day + 4 + random.below(10)
        case .open:
            guard day >= person.nextDay else { return }
            try agreePlan(&person, staff: staff, day: day, asksForErasure: index == erasureSubject)
        case .active:
            if day >= person.closeDay {
                try emit("case.closed", by: staff.signer, ["case": .string(person.caseID), "outcome": .string(person.closeOutcome)])
                person.stage = .closed
                if index == erasureSubject { person.erasureDay = day + 2 + random.below(5) }
                break
            }
            if day >= person.rotationDay { try rotateWallet(&person, staff: staff) }
            if day >= person.nextActivationDay { try recordActivation(&person, staff: staff, holder: holder, day: day) }
            if random.chance(percent: 2) { try addNote(&person, staff: staff) }
            if person.doteEligible && person.dotiGranted < 4 && random.below(1000) < 12 { try grantDote(&person, staff: staff) }
        case .closed:
            break
        }
        if person.registered && !person.erased {
            if day >= person.erasureDay {
                // The record says only that the data was erased; the key goes once this batch is durable.
                try emit("subject.erased", by: staff.signer, ["beneficiary": .string(person.id), "case": .string(person.caseID)])
                person.erased = true
                current.erasedSubjects.append(person.id)
            } else if weekday == 5 && !person.unconvertedBadges.isEmpty {
                try convertCredits(&person, staff: staff)
            }
        }
    }

    /// What the sealing nonce of the next event of `type` is derived from (see the type's comment).
    private func nonceSource(_ type: String) -> String { "circuito demo nonce: \(seed): " + nextEventID(type) }

    private mutating func agreePlan(_ person: inout DemoBeneficiary, staff: DemoStaff, day: Int, asksForErasure: Bool) throws(LedgerError) {
        let categories = Array(Set(opportunities.map(\.category))).sorted()
        var goals: [String] = []
        for _ in 0..<(1 + random.below(3)) {
            let goal = random.element(of: categories)
            if !goals.contains(goal) { goals.append(goal) }
        }
        let plan: JSONValue = .object([
            "obiettivi": .string(goals.compactMap { DemoData.goalTexts[$0] }.joined(separator: ", ")),
            "impegni": "Partecipazione settimanale alle attività concordate e colloqui mensili di verifica.",
            "referente": .string(staff.name),
        ])
        let nonceText = nonceSource("case.plan_agreed")
        try emit("case.plan_agreed", by: staff.signer, [
            "case": .string(person.caseID), "goals": .array(goals.map { .string($0) }),
            "sealed": Self.seal(plan, subject: person.id, key: Self.vaultKey(seed: seed, subject: person.id), nonceSource: nonceText),
        ])
        person.goals = goals
        person.stage = .active
        person.nextActivationDay = day + 2 + random.below(6)
        if asksForErasure {
            person.closeDay = day + 60 + random.below(30)
            person.closeOutcome = "withdrawn"
        } else {
            person.closeDay = day + 150 + random.below(110)
            let roll = random.below(100)
            person.closeOutcome = roll < 70 ? "completed" : (roll < 85 ? "withdrawn" : (roll < 90 ? "transferred" : "unreachable"))
        }
        if person.rotates { person.rotationDay = day + 30 + random.below(60) }
        // A quarter get an emergency dote with the plan.
        if person.doteEligible && random.chance(percent: 50) { try grantDote(&person, staff: staff) }
    }

    private mutating func rotateWallet(_ person: inout DemoBeneficiary, staff: DemoStaff) throws(LedgerError) {
        let old = person.wallet
        let new = try Self.actorKey(seed: seed, actor: person.id + "#2")
        try emit("actor.key_added", by: staff.signer, ["actor": .string(person.id), "key": .string(new.publicKey.multikey)])
        try emit("actor.key_revoked", by: staff.signer, [
            "actor": .string(person.id), "key": .string(old.publicKey.multikey), "reason": "Telefono smarrito",
        ])
        current.keyFiles.append(DemoKeyFile(name: person.id + ".2.key", key: new))
        person.wallet = new
        person.rotationDay = Int.max
    }

    private mutating func recordActivation(_ person: inout DemoBeneficiary, staff: DemoStaff, holder: DemoOrganisation, day: Int) throws(LedgerError) {
        let published = opportunities.filter(\.published)
        let matching = published.filter { person.goals.contains($0.category) }
        let nearby = matching.filter { $0.district == holder.data.district }
        let pool = !nearby.isEmpty && random.chance(percent: 60) ? nearby : (matching.isEmpty ? published : matching)
        guard !pool.isEmpty else { return }
        let opportunity = random.element(of: pool)
        activationCounter += 1
        let activationID = "act-" + Self.padded(activationCounter, width: 6)
        try emit("activation.recorded", by: staff.signer, [
            "activation": .string(activationID), "case": .string(person.caseID), "opportunity": .string(opportunity.id),
            "hours": .integer(Int64(2 + random.below(7))), "date": .string(Self.date(of: now)),
        ])
        person.pendingActivations.append(activationID)
        person.nextActivationDay = day + 4 + random.below(9)
        guard person.pendingActivations.count >= person.activationsPerBadge, !holder.badgeClasses.isEmpty else { return }
        let badgeClass = random.element(of: holder.badgeClasses)
        badgeCounter += 1
        let badgeID = "badge-" + Self.padded(badgeCounter, width: 5)
        try emit("badge.issued", by: staff.signer, [
            "badge": .string(badgeID), "badge_class": .string(badgeClass.id), "beneficiary": .string(person.id),
            "activations": .array(person.pendingActivations.map { .string($0) }),
        ])
        person.pendingActivations = []
        person.activationsPerBadge = 3 + random.below(3)
        if day >= 120 && !badgeRevoked {
            // One badge issued by mistake and revoked the same day: its credits are never converted.
            badgeRevoked = true
            try emit("badge.revoked", by: staff.signer, ["badge": .string(badgeID), "reason": "Rilasciato per errore: attività non svolta"])
        } else {
            person.unconvertedBadges.append(DemoBadge(id: badgeID, credits: badgeClass.credits))
        }
    }

    private mutating func addNote(_ person: inout DemoBeneficiary, staff: DemoStaff) throws(LedgerError) {
        let note: JSONValue = .object(["nota": .string(random.element(of: DemoData.noteTexts)), "autore": .string(staff.name)])
        let nonceText = nonceSource("case.note_added")
        try emit("case.note_added", by: staff.signer, [
            "case": .string(person.caseID),
            "sealed": Self.seal(note, subject: person.id, key: Self.vaultKey(seed: seed, subject: person.id), nonceSource: nonceText),
        ])
    }

    // MARK: Money

    private mutating func grantDote(_ person: inout DemoBeneficiary, staff: DemoStaff) throws(LedgerError) {
        let totalWeight = DemoData.doteKinds.reduce(0) { $0 + $1.weight }
        var pick = random.below(totalWeight)
        var kind = DemoData.doteKinds[0]
        for candidate in DemoData.doteKinds {
            if pick < candidate.weight { kind = candidate; break }
            pick -= candidate.weight
        }
        let amount: Int64
        if kind.category == "transport" {
            amount = kind.minimumCents * Int64(1 + random.below(3))  // one to three monthly passes
        } else {
            let steps = Int((kind.maximumCents - kind.minimumCents) / 500)
            amount = kind.minimumCents + Int64(random.below(steps + 1)) * 500
        }
        try ensureFund(amount)
        let (_, sequenceNumber) = try emit("dote.granted", by: staff.signer, [
            "beneficiary": .string(person.id), "category": .string(kind.category), "amount": .integer(amount),
        ])
        fundCents -= amount
        person.lots.append(DemoLot(id: sequenceNumber, category: kind.category, remaining: amount, expiresAt: lotExpiry()))
        person.dotiGranted += 1
    }

    private func lotExpiry() -> Int64 { now + Self.lotValidityDays * Self.dayMilliseconds }

    /// Converts the oldest unconverted badges that fit under this month's cap (by `recorded_at`, as the rule counts).
    private mutating func convertCredits(_ person: inout DemoBeneficiary, staff: DemoStaff) throws(LedgerError) {
        let month = Self.month(of: now)
        if person.convertedMonth != month {
            person.convertedMonth = month
            person.convertedThisMonthCents = 0
        }
        var chosen: [DemoBadge] = []
        var total: Int64 = 0
        for badge in person.unconvertedBadges.prefix(64) {
            let cents = badge.credits * Self.conversionRateCentsPerCredit
            guard person.convertedThisMonthCents + total + cents <= monthlyCapCents else { break }
            chosen.append(badge)
            total += cents
        }
        guard !chosen.isEmpty else { return }
        try ensureFund(total)
        let (_, sequenceNumber) = try emit("credits.converted", by: staff.signer, [
            "beneficiary": .string(person.id), "badges": .array(chosen.map { .string($0.id) }),
        ])
        fundCents -= total
        person.convertedThisMonthCents += total
        person.unconvertedBadges.removeFirst(chosen.count)
        person.lots.append(DemoLot(id: sequenceNumber, category: Lot.general, remaining: total, expiresAt: lotExpiry()))
    }

    /// Shops open: monthly settlement requests, refunds that fell due, then the day's payments.
    private mutating func shops(day: Int) throws(LedgerError) {
        let month = Self.month(of: now)
        if month != lastSettlementMonth {
            lastSettlementMonth = month
            for index in merchants.indices where merchants[index].balance > 0 {
                let (id, _) = try emit("settlement.requested", by: merchants[index].signer, ["amount": .integer(merchants[index].balance)])
                merchants[index].balance = 0
                pendingSettlements.append(PendingSettlement(id: id, payDay: day + 3 + random.below(7)))
            }
        }
        var stillPending: [PendingRefund] = []
        for refund in pendingRefunds {
            guard refund.dueDay <= day else {
                stillPending.append(refund)
                continue
            }
            try makeRefund(refund)
        }
        pendingRefunds = stillPending
        for index in beneficiaries.indices where beneficiaries[index].registered && !beneficiaries[index].erased
            && day < beneficiaries[index].stopsSpendingDay {
            if random.chance(percent: beneficiaries[index].spendingChancePercent) { try pay(beneficiary: index, day: day) }
        }
    }

    /// Lots spendable at a merchant in the rule's order: earliest expiry first, earmarked before general on the
    /// same expiry, then oldest.
    private func spendableLots(of person: DemoBeneficiary, at merchant: DemoMerchant) -> [Int] {
        person.lots.indices.filter { index in
            let lot = person.lots[index]
            return lot.remaining > 0 && lot.expiresAt > now && (lot.category == Lot.general || merchant.categories.contains(lot.category))
        }.sorted { first, second in
            let a = person.lots[first], b = person.lots[second]
            if a.expiresAt != b.expiresAt { return a.expiresAt < b.expiresAt }
            if (a.category == Lot.general) != (b.category == Lot.general) { return b.category == Lot.general }
            return a.id < b.id
        }
    }

    private mutating func pay(beneficiary index: Int, day: Int) throws(LedgerError) {
        var person = beneficiaries[index]
        defer { beneficiaries[index] = person }
        let live = person.lots.filter { $0.remaining > 0 && $0.expiresAt > now }
        guard !live.isEmpty else { return }
        let district = organisations[person.holder].data.district
        let earmarked = live.filter { $0.category != Lot.general }.sorted { ($0.expiresAt, $0.id) < ($1.expiresAt, $1.id) }
        var candidates: [Int]
        var wanted: Int64
        if let target = earmarked.first, random.chance(percent: 65) {
            candidates = merchants.indices.filter { !merchants[$0].suspended && merchants[$0].categories.contains(target.category) }
            let categoryTotal = earmarked.filter { $0.category == target.category }.reduce(0) { $0 + $1.remaining }
            let paidAtOnce = DemoData.doteKinds.first { $0.category == target.category }?.paidAtOnce ?? false
            wanted = paidAtOnce ? categoryTotal : min(categoryTotal, 1_500 + Int64(random.below(4_000)))
        } else {
            let everyday: Set<String> = ["food", "household", "clothing", "pharmacy", "culture", "sport"]
            candidates = merchants.indices.filter { !merchants[$0].suspended && !everyday.isDisjoint(with: merchants[$0].categories) }
            wanted = 800 + Int64(random.below(5_200))
        }
        let nearby = candidates.filter { merchants[$0].district == district }
        if !nearby.isEmpty && random.chance(percent: 60) { candidates = nearby }
        guard !candidates.isEmpty else { return }
        let merchantIndex = random.element(of: candidates)
        let lotIndices = spendableLots(of: person, at: merchants[merchantIndex])
        let available = lotIndices.reduce(0) { $0 + person.lots[$1].remaining }
        let amount = min(wanted, available)
        guard amount > 0 else { return }

        nonceCounter += 1
        let authorisation = PaymentAuthorisation(
            origin: Self.origin, beneficiary: person.id, merchant: merchants[merchantIndex].signer.id, amount: amount,
            expiresAt: Timestamp.format(millisecondsSince1970: now + 15 * 60_000), nonce: "wallet-" + Self.padded(nonceCounter, width: 6),
            key: person.wallet.publicKey.multikey)
        let signature = PaymentAuthorisation.sign(authorisation, with: person.wallet)
        let (paymentID, _) = try emit("payment.redeemed", by: merchants[merchantIndex].signer, [
            "authorisation": authorisation.json, "signature": .string(Base64.encode(signature)),
        ])
        var left = amount
        var debits: [DemoDebit] = []
        for lotIndex in lotIndices where left > 0 {
            let taken = min(left, person.lots[lotIndex].remaining)
            person.lots[lotIndex].remaining -= taken
            left -= taken
            debits.append(DemoDebit(lot: person.lots[lotIndex].id, amount: taken))
        }
        merchants[merchantIndex].balance += amount
        // A few purchases are returned or corrected a few days later.
        if random.chance(percent: 3) {
            let refundAmount = random.chance(percent: 50) ? amount : max(1, amount * Int64(20 + random.below(60)) / 100)
            pendingRefunds.append(PendingRefund(
                payment: paymentID, beneficiary: index, merchant: merchantIndex, debits: debits, amount: refundAmount,
                dueDay: day + 1 + random.below(5)))
        }
    }

    /// A merchant refunds (part of) a payment; the money goes back into the lots it came from, last debited first.
    private mutating func makeRefund(_ refund: PendingRefund) throws(LedgerError) {
        let amount = min(refund.amount, merchants[refund.merchant].balance)
        guard amount > 0 else { return }
        try emit("payment.refunded", by: merchants[refund.merchant].signer, [
            "payment": .string(refund.payment), "amount": .integer(amount),
            "reason": .string(amount == refund.debits.reduce(0) { $0 + $1.amount } ? "Reso della merce" : "Correzione dell'importo"),
        ])
        merchants[refund.merchant].balance -= amount
        var left = amount
        for debit in refund.debits.reversed() where left > 0 {
            let back = min(left, debit.amount)
            guard let lotIndex = beneficiaries[refund.beneficiary].lots.firstIndex(where: { $0.id == debit.lot }) else {
                throw LedgerError(.integrity, "demo: payment \(refund.payment) debited a lot the generator does not know")
            }
            beneficiaries[refund.beneficiary].lots[lotIndex].remaining += back
            left -= back
        }
    }
}

// MARK: The generator's model of the circuit

/// Who signs: an actor id and its key.
struct Signer: Sendable {
    let id: String
    let key: Ed25519PrivateKey
}

struct DemoStaff: Sendable {
    let signer: Signer
    let name: String
}

struct DemoBadgeClass: Sendable {
    let id: String
    let credits: Int64
}

struct DemoOrganisation: Sendable {
    let data: DemoData.Organisation
    let signer: Signer
    var staff: [DemoStaff] = []
    var badgeClasses: [DemoBadgeClass] = []
}

struct DemoOpportunity: Sendable {
    let id: String
    let category: String
    let district: String
    let organisation: Int
    var published = true
}

struct DemoMerchant: Sendable {
    let signer: Signer
    let categories: [String]
    let district: String
    /// Cents received and not yet sent to settlement.
    var balance: Int64 = 0
    var suspended = false
}

/// A lot as the generator mirrors it (the ledger's `Lot`): id is the seq of the event that created it.
struct DemoLot: Sendable {
    let id: UInt64
    let category: String
    var remaining: Int64
    let expiresAt: Int64
}

struct DemoBadge: Sendable {
    let id: String
    let credits: Int64
}

struct DemoDebit: Sendable {
    let lot: UInt64
    let amount: Int64
}

struct PendingRefund: Sendable {
    let payment: String
    let beneficiary: Int
    let merchant: Int
    let debits: [DemoDebit]
    let amount: Int64
    let dueDay: Int
}

struct PendingSettlement: Sendable {
    let id: String
    let payDay: Int
}

struct DemoBeneficiary: Sendable {
    enum Stage: Sendable { case waiting, referred, open, active, closed }

    let id: String
    let caseID: String
    let household: String
    let holder: Int
    let holderStaff: Int
    let referrer: Int
    let referrerStaff: Int
    /// Taken on after referral (the others' cases close as not eligible or unreachable).
    let admitted: Bool
    let referralDay: Int
    var wallet: Ed25519PrivateKey
    /// Chance in percent of shopping on a given day (low spenders let lots expire).
    let spendingChancePercent: Int
    let doteEligible: Bool
    var activationsPerBadge: Int

    var stage = Stage.waiting
    var nextDay = 0
    var registered = false
    var erased = false
    var rotates = false
    var goals: [String] = []
    var closeDay = Int.max
    var closeOutcome = "completed"
    var rotationDay = Int.max
    var erasureDay = Int.max
    var stopsSpendingDay = Int.max
    var nextActivationDay = Int.max
    var pendingActivations: [String] = []
    var unconvertedBadges: [DemoBadge] = []
    var lots: [DemoLot] = []
    var convertedMonth = ""
    var convertedThisMonthCents: Int64 = 0
    var dotiGranted = 0

    init(
        id: String, caseID: String, household: String, holder: Int, holderStaff: Int, referrer: Int, referrerStaff: Int,
        admitted: Bool, referralDay: Int, wallet: Ed25519PrivateKey, spendingChancePercent: Int, doteEligible: Bool,
        activationsPerBadge: Int
    ) {
        self.id = id
        self.caseID = caseID
        self.household = household
        self.holder = holder
        self.holderStaff = holderStaff
        self.referrer = referrer
        self.referrerStaff = referrerStaff
        self.admitted = admitted
        self.referralDay = referralDay
        self.wallet = wallet
        self.spendingChancePercent = spendingChancePercent
        self.doteEligible = doteEligible
        self.activationsPerBadge = activationsPerBadge
    }
}
