import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import CircuitoTestSupport
import Foundation
import Testing


@Suite("Circuit on LMDB: property")
struct LedgerPropertyTests {
    @Test("random valid and invalid events: after every commit the invariants hold and the live projections equal a rebuild from scratch", arguments: [7, 11] as [UInt64])
    func liveEqualsRebuild(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let temporary = TemporaryLedger()
        let clock = ClockBox(1_795_000_000_000)
        let ledger = try temporary.create(clock: { clock.now() })
        let organisation = Ed25519PrivateKey(), staff = Ed25519PrivateKey(), shop = Ed25519PrivateKey()
        let wallets = (0..<3).map { _ in Ed25519PrivateKey() }
        func keys(_ key: Ed25519PrivateKey) -> JSONValue { .array([.string(key.publicKey.multikey)]) }
        func commit(_ events: [VerifiedEvent]) throws -> [Result<Receipt, LedgerError>] { try ledger.append(events) }
        // Setup, one commit each so that later events see earlier ones.
        for event in [
            try temporary.event("actor.registered", ["actor": "casa", "role": "organisation", "name": "Casa", "keys": keys(organisation)]),
            try temporary.event("actor.registered", by: "casa", key: organisation, ["actor": "op", "role": "staff", "name": "Op", "organisation": "casa", "keys": keys(staff)]),
            try temporary.event("actor.registered", ["actor": "shop", "role": "merchant", "name": "Shop", "keys": keys(shop)]),
            try temporary.event("policy.updated", ["conversion_rate_cents_per_credit": 100, "monthly_conversion_cap_cents": 100_000, "lot_validity_days": 10, "categories": ["food", "books"]]),
            try temporary.event("program.funded", ["amount": 500_000, "reference": "budget"]),
            try temporary.event("merchant.enrolled", ["merchant": "shop", "categories": ["food"], "district": "centro"]),
        ] + (try wallets.enumerated().map { (index, wallet) in
            try temporary.event("actor.registered", by: "op", key: staff, ["actor": .string("ben-\(index)"), "role": "beneficiary", "name": .string("ben-\(index)"), "organisation": "casa", "keys": keys(wallet)])
        }) {
            for result in try commit([event]) { _ = try result.get() }
        }
        var payments: [String] = []
        var nonce = 0
        var acceptedTotal = 0, refusedTotal = 0
        for step in 0..<60 {
            // A batch of 1 to 4 events, valid or not; refused ones must leave no trace.
            var batch: [VerifiedEvent] = []
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let beneficiary = Int.random(in: 0..<wallets.count, using: &random)
                let amount = Int64.random(in: -100...20_000, using: &random)
                switch Int.random(in: 0..<6, using: &random) {
                case 0:
                    batch.append(try temporary.event("dote.granted", by: "op", key: staff, ["beneficiary": .string("ben-\(beneficiary)"), "category": .string(Bool.random(using: &random) ? "food" : "books"), "amount": .integer(amount)]))
                case 1, 2:
                    nonce += 1
                    let expiry = Timestamp.format(millisecondsSince1970: clock.now() + 3_600_000)
                    let authorisation = PaymentAuthorisation(origin: "test.example/ledger", beneficiary: "ben-\(beneficiary)", merchant: "shop", amount: max(1, amount / 4), expiresAt: expiry, nonce: "n-\(nonce)", key: wallets[beneficiary].publicKey.multikey)
                    let id = "pay-\(step)-\(batch.count)"
                    batch.append(try temporary.event("payment.redeemed", by: "shop", key: shop, [
                        "authorisation": authorisation.json, "signature": .string(Base64.encode(PaymentAuthorisation.sign(authorisation, with: wallets[beneficiary]))),
                    ], id: id))
                    payments.append(id)
                case 3:
                    if let payment = payments.randomElement(using: &random) {
                        batch.append(try temporary.event("payment.refunded", by: "shop", key: shop, ["payment": .string(payment), "amount": .integer(max(1, amount / 10))]))
                    }
                case 4:
                    batch.append(try temporary.event("settlement.requested", by: "shop", key: shop, ["amount": .integer(amount / 2)]))
                default:
                    // Time passes; expired lots are collected by the authority.
                    clock.set(clock.now() + Int64.random(in: 0...(4 * 86_400_000), using: &random))
                    let now = Timestamp.format(millisecondsSince1970: clock.now())
                    let lots = try ledger.reader.withState { (state) throws(LedgerError) in try state.lots(of: "ben-\(beneficiary)") }
                    for lot in lots where lot.isExpired(at: now) {
                        batch.append(try temporary.event("tocoin.expired", ["beneficiary": .string("ben-\(beneficiary)"), "lot": .integer(Int64(lot.id))]))
                    }
                }
            }
            let sizeBefore = try ledger.reader.size()
            let results = try commit(batch)
            let accepted = results.filter { if case .success = $0 { return true } else { return false } }.count
            acceptedTotal += accepted
            refusedTotal += results.count - accepted
            #expect(try ledger.reader.size() <= sizeBefore + UInt64(accepted), "step \(step): refused events wrote nothing")
            // Invariants: accounts sum to zero, nothing but issuance is negative, lots make up each balance.
            try ledger.reader.withState { (state) throws(LedgerError) in
                let balances = try state.entries(.balances, prefix: [], limit: 1000)
                var total: Int64 = 0
                for (key, value) in balances {
                    let balance = Account.decode(value) ?? 0
                    total += balance
                    if key != Array(Account.issuance.utf8) { #expect(balance >= 0, "step \(step): \(String(decoding: key, as: UTF8.self)) is \(balance)") }
                }
                #expect(total == 0, "step \(step): accounts sum to \(total)")
                for index in 0..<wallets.count {
                    let lots = try state.lots(of: "ben-\(index)")
                    #expect(lots.reduce(0) { $0 + $1.remaining } == (try state.balance(Account.beneficiary("ben-\(index)"))), "step \(step)")
                }
            }
            // Live projections equal a rebuild from the log, every table, every row.
            let report = try LedgerReplay.run(ledger.reader, compareProjections: true)
            #expect(report.recordCount == (try ledger.reader.size()))
            let trusting = try LedgerReplay.run(ledger.reader, compareProjections: true, signatureChecks: .attestedByCheckpoints)
            #expect(trusting.rootHash == report.rootHash && trusting.comparedRows == report.comparedRows)
        }
        // The sequence exercised both sides of the rules.
        #expect(acceptedTotal >= 30, "only \(acceptedTotal) events were accepted")
        #expect(refusedTotal >= 10, "only \(refusedTotal) events were refused")
    }
}
