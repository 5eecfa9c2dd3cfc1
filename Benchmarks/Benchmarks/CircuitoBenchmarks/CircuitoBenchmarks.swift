import Benchmark
import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import Foundation

// Micro-benchmarks of the write path's parts: canonical JSON, Ed25519 sign and verify, JSON-RPC decoding of a
// `submit` line, the rulebook on projections, appending a batch of records to LMDB (durable and not), and the
// Merkle tree (append, inclusion proofs in memory and from LMDB). Throughput, wall clock and allocations.
//
// Run: cd Benchmarks && swift package benchmark   (one: swift package benchmark --filter "Ed25519.*")

/// A small circuit with real signatures: an authority, an organisation with a staff member, a beneficiary with an
/// open case and a large dote for food, a merchant taking food, an opportunity. Built once, lazily.
final class Circuit: Sendable {
    static let shared: Circuit = {
        do { return try Circuit() } catch { preconditionFailure("the benchmark circuit is valid: \(error)") }
    }()

    let authority = Circuit.key("authority")
    let checkpoint = Circuit.key("checkpoint")
    let organisation = Circuit.key("organisation")
    let staff = Circuit.key("staff")
    let beneficiary = Circuit.key("beneficiary")
    let merchant = Circuit.key("merchant")
    let genesis: VerifiedEvent
    let setup: [VerifiedEvent]
    /// The state after genesis and setup.
    let state: MemoryLedgerState
    let timestamp: String
    let expiry: String

    static func key(_ name: String) -> Ed25519PrivateKey {
        Ed25519PrivateKey(seed: SHA256.hash(Array("circuito benchmark key: \(name)".utf8))) ?? Ed25519PrivateKey()
    }

    init() throws {
        let now = Ledger.systemClockMilliseconds()
        timestamp = Timestamp.format(millisecondsSince1970: now)
        // Payments authorised for a day: long enough for any benchmark run.
        expiry = Timestamp.format(millisecondsSince1970: now + 86_400_000)
        let genesisEvent = try Event(
            id: "genesis", type: "ledger.genesis", actor: "citta", key: authority.publicKey.multikey, timestamp: timestamp,
            body: [
                "origin": "circuito.benchmarks/ledger",
                "authority": .object(["actor": "citta", "name": "Città di Torino", "keys": .array([.string(authority.publicKey.multikey)])]),
                "checkpoint_key": .string(checkpoint.publicKey.multikey), "currency": ["code": "TOC", "decimals": 2],
            ])
        genesis = try SignedEvent(signing: genesisEvent, with: authority).verified()
        func keys(_ key: Ed25519PrivateKey) -> JSONValue { .array([.string(key.publicKey.multikey)]) }
        let stamp = timestamp
        func signed(_ id: String, _ type: String, _ actor: String, _ key: Ed25519PrivateKey, _ body: JSONObject) throws -> VerifiedEvent {
            try SignedEvent(signing: Event(id: id, type: type, actor: actor, key: key.publicKey.multikey, timestamp: stamp, body: body), with: key).verified()
        }
        let sealed = SealedData.seal(["nota": "presa in carico"], subject: "ben-1", key: SecretBox.newKey())
        setup = [
            try signed("s1", "policy.updated", "citta", authority, ["conversion_rate_cents_per_credit": 100, "monthly_conversion_cap_cents": 500_000, "lot_validity_days": 365, "categories": ["food", "household"]]),
            try signed("s2", "program.funded", "citta", authority, ["amount": 100_000_000_000, "reference": "Delibera PIS"]),
            try signed("s3", "actor.registered", "citta", authority, ["actor": "casa", "role": "organisation", "name": "Casa del Quartiere", "district": "san_salvario", "keys": keys(organisation)]),
            try signed("s4", "actor.registered", "casa", organisation, ["actor": "anna", "role": "staff", "name": "Anna", "organisation": "casa", "keys": keys(staff)]),
            try signed("s5", "actor.registered", "anna", staff, ["actor": "ben-1", "role": "beneficiary", "name": "Portafoglio", "organisation": "casa", "keys": keys(beneficiary)]),
            try signed("s6", "actor.registered", "citta", authority, ["actor": "bottega", "role": "merchant", "name": "Bottega", "keys": keys(merchant)]),
            try signed("s7", "merchant.enrolled", "citta", authority, ["merchant": "bottega", "categories": ["food"], "district": "san_salvario"]),
            try signed("s8", "case.referred", "anna", staff, ["case": "case-1", "beneficiary": "ben-1", "household": "nucleo-1", "to": "casa", "sealed": sealed]),
            try signed("s9", "case.opened", "anna", staff, ["case": "case-1"]),
            try signed("s10", "dote.granted", "anna", staff, ["beneficiary": "ben-1", "category": "food", "amount": 50_000_000_000]),
            try signed("s11", "opportunity.published", "anna", staff, ["opportunity": "opp-1", "title": "Orto", "description": "Orto condiviso", "category": "civic_utility", "district": "san_salvario", "hours": 20]),
        ]
        var state = MemoryLedgerState()
        var sequenceNumber: UInt64 = 0
        for event in [genesis] + setup {
            state.apply(try Rulebook.check(event, at: LogPosition(sequenceNumber: sequenceNumber, recordedAt: timestamp), state: state))
            sequenceNumber += 1
        }
        self.state = state
    }

    func activation(_ number: Int) throws -> VerifiedEvent {
        let event = try Event(
            id: "act-evt-\(number)", type: "activation.recorded", actor: "anna", key: staff.publicKey.multikey, timestamp: timestamp,
            body: ["activation": .string("act-\(number)"), "case": "case-1", "opportunity": "opp-1", "hours": 4, "date": .string(String(timestamp.prefix(10)))])
        return try SignedEvent(signing: event, with: staff).verified()
    }

    func payment(_ number: Int) throws -> VerifiedEvent {
        let authorisation = PaymentAuthorisation(
            origin: "circuito.benchmarks/ledger", beneficiary: "ben-1", merchant: "bottega", amount: 1250, expiresAt: expiry, nonce: "n-\(number)",
            key: beneficiary.publicKey.multikey)
        let signature = PaymentAuthorisation.sign(authorisation, with: beneficiary)
        let event = try Event(
            id: "pay-\(number)", type: "payment.redeemed", actor: "bottega", key: merchant.publicKey.multikey, timestamp: timestamp,
            body: ["authorisation": authorisation.json, "signature": .string(Base64.encode(signature))])
        return try SignedEvent(signing: event, with: merchant).verified()
    }

    /// Half payments, half activations, numbered from `first`.
    func batch(first: Int, count: Int) throws -> [VerifiedEvent] {
        try (first..<(first + count)).map { number in number % 2 == 0 ? try payment(number) : try activation(number) }
    }
}

/// A ledger in a temporary folder with the circuit appended, and batches signed ahead.
final class LedgerFixture: @unchecked Sendable {
    // @unchecked: used by one benchmark at a time, from the benchmark's own thread.
    let directory: String
    let ledger: Ledger
    private(set) var batches: [[VerifiedEvent]]
    private var next = 0

    init(durable: Bool, batchCount: Int, batchSize: Int) throws {
        let circuit = Circuit.shared
        directory = NSTemporaryDirectory() + "circuito-benchmark-" + UUID().uuidString
        ledger = try Ledger.create(
            directory: directory, genesis: circuit.genesis, checkpointKey: circuit.checkpoint,
            options: .init(mapSize: .exactly(bytes: 4 << 30), durable: durable))
        _ = try ledger.append(circuit.setup)
        batches = try (0..<batchCount).map { try circuit.batch(first: $0 * batchSize, count: batchSize) }
    }

    /// The next batch not yet appended (each is appended once: ids and nonces are used up).
    func nextBatch() -> [VerifiedEvent]? {
        guard next < batches.count else { return nil }
        defer { next += 1 }
        return batches[next]
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

/// Where a benchmark's setup leaves its ledger for the measured closure.
final class FixtureHolder: @unchecked Sendable {
    // @unchecked: set by the setup hook, then read by the benchmark, which the runner calls one after the other.
    var fixture: LedgerFixture?
}

/// What a benchmark carries from one measured call to the next (the runner calls it one call after the other, and
/// the package's closure is measured whole, so nothing may be rebuilt inside it): a tree that keeps growing, the
/// position of the next proof.
final class BenchmarkCursor: @unchecked Sendable {
    // @unchecked: only the benchmark's own closure touches it, one call after the other.
    var frontier = MerkleFrontier()
    var leafIndex: UInt64 = 0
    var firstSize: UInt64 = 1
}

/// The overlay benchmark's group: 100 events' worth of changes to keys shaped like the state's (a beneficiary and a
/// second part), built once, outside the measurement.
enum OverlayFixture {
    static let changes: [StateChange] = (0..<1_000).map { number in
        let key = StateKey.make("beneficiary-\(number % 300)", "lot-2026-11-\(number)")
        return .put(number % 2 == 0 ? .lots : .accountHistory, key: key, value: Array(repeating: UInt8(number % 251), count: 120))
    }
    static let base = MemoryLedgerState()
}

/// The signed `payment.redeemed` used by the encoding benchmarks, and the `submit` line a client sends for it.
enum Fixture {
    static let payment: VerifiedEvent = {
        do { return try Circuit.shared.payment(1) } catch { preconditionFailure("the fixture payment is valid: \(error)") }
    }()
    static let activation: VerifiedEvent = {
        do { return try Circuit.shared.activation(1) } catch { preconditionFailure("the fixture activation is valid: \(error)") }
    }()
    static let signedJSON = payment.signedEvent.json
    static let signedText = CanonicalJSON.encode(signedJSON)
    static let submitLine: [UInt8] = CanonicalJSON.encode(.object(["jsonrpc": "2.0", "id": 1, "method": "submit", "params": signedJSON]))
    static let leafBytes = Record(sequenceNumber: 123_456, recordedAt: Circuit.shared.timestamp, signedEvent: payment.signedEvent).leafBytes
    static let leafHash = MerkleHash.leaf(leafBytes)
}

/// `CIRCUITO_BENCHMARK_SMOKE=1`: every benchmark runs a few iterations on small fixtures, only to show that each still
/// builds and runs (what `scripts/test.sh` does); its figures mean nothing.
let smokeRun = ProcessInfo.processInfo.environment["CIRCUITO_BENCHMARK_SMOKE"] != nil

/// A million-leaf tree in memory, built once (4 096 leaves in a smoke run).
enum MillionTree {
    static let size: UInt64 = smokeRun ? 1 << 12 : 1 << 20
    static let nodes: InMemoryMerkleNodes = {
        var nodes = InMemoryMerkleNodes()
        var frontier = MerkleFrontier()
        let leaf = MerkleHash.leaf(Fixture.leafBytes)
        for _ in 0..<size { nodes.store(frontier.append(leafHash: leaf)) }
        return nodes
    }()
}

let benchmarks: @Sendable () -> Void = {
    var configuration = Benchmark.Configuration(metrics: [.throughput, .wallClock, .mallocCountTotal, .peakMemoryResident], maxDuration: .seconds(2))
    if smokeRun {
        configuration.warmupIterations = 0
        configuration.maxIterations = 3
        configuration.maxDuration = .milliseconds(200)
    }
    Benchmark.defaultConfiguration = configuration

    // MARK: Encoding

    Benchmark("Canonical JSON encode (signed payment)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CanonicalJSON.encode(Fixture.signedJSON)) }
    }

    Benchmark("JSON parse (signed payment)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? JSONParser.parse(Fixture.signedText)) }
    }

    // The server's decoding of a `submit` line up to the signature check: parse the line, check the JSON-RPC
    // envelope, read the params as a signed event (what `submit` does since `97b7dda`, `Methods.verifiedEvent`;
    // until 3 December this benchmark still encoded the params again and parsed that text, as `submit` once did; the
    // server's own `RPCRequest.decode` is internal to CircuitoServer, which is not a library product).
    Benchmark("JSON-RPC decode (submit line to SignedEvent)") { benchmark in
        for _ in benchmark.scaledIterations {
            guard case .object(let members)? = try? JSONParser.parse(Fixture.submitLine), members["jsonrpc"] == "2.0",
                case .string(let method)? = members["method"], method == "submit", let params = members["params"]
            else { preconditionFailure("the fixture line is a submit request") }
            blackHole(try? SignedEvent(submitted: params))
        }
    }

    Benchmark("Record leaf bytes (encode)") { benchmark in
        let record = Record(sequenceNumber: 123_456, recordedAt: Circuit.shared.timestamp, signedEvent: Fixture.payment.signedEvent)
        for _ in benchmark.scaledIterations { blackHole(record.leafBytes) }
    }

    Benchmark("Record parse (leaf bytes)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? Record(leafBytes: Fixture.leafBytes)) }
    }

    // MARK: Signatures

    Benchmark("Ed25519 sign (event)") { benchmark in
        let event = Fixture.payment.event
        for _ in benchmark.scaledIterations { blackHole(SignedEvent(signing: event, with: Circuit.shared.merchant)) }
    }

    Benchmark("Ed25519 verify (one signature)") { benchmark in
        let message = Fixture.payment.event.signingBytes
        let signature = Fixture.payment.signedEvent.signature
        let key = Circuit.shared.merchant.publicKey
        for _ in benchmark.scaledIterations { blackHole(key.isValidSignature(signature, for: message)) }
    }

    Benchmark("Verify payment event (event and authorisation signatures)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? Fixture.payment.signedEvent.verified()) }
    }

    // MARK: Projections

    Benchmark("Rulebook check (activation, in-memory state)") { benchmark in
        let event = Fixture.activation
        let position = LogPosition(sequenceNumber: 100, recordedAt: Circuit.shared.timestamp)
        for _ in benchmark.scaledIterations { blackHole(try Rulebook.check(event, at: position, state: Circuit.shared.state)) }
    }

    Benchmark("Rulebook check (payment, in-memory state)") { benchmark in
        let event = Fixture.payment
        let position = LogPosition(sequenceNumber: 100, recordedAt: Circuit.shared.timestamp)
        for _ in benchmark.scaledIterations { blackHole(try Rulebook.check(event, at: position, state: Circuit.shared.state)) }
    }

    // The server's planner lays a group's changes over a snapshot: one group of 100 events, each making 10 changes
    // to keys shaped like the state's (a beneficiary and a second part), each change read back twice.
    Benchmark("Overlay: a group of 1 000 changes applied and read back") { benchmark in
        let changes = OverlayFixture.changes
        let base = OverlayFixture.base
        for _ in benchmark.scaledIterations {
            var overlay = OverlayState(base: base)
            var undo = OverlayState<MemoryLedgerState>.UndoLog()
            overlay.apply(changes, recordingInto: &undo)
            for change in changes {
                guard case .put(let table, let key, _) = change else { continue }
                blackHole(try overlay.value(table, key))
                blackHole(try overlay.value(table, key))
            }
            blackHole(overlay)
        }
    }

    // MARK: Appending to LMDB (one commit and one signed checkpoint per batch)

    for durable in [true, false] {
        let batchSize = 256
        let batchCount = smokeRun ? 8 : 60
        // Each batch is appended once, so the run ends when the signed batches are used up.
        let holder = FixtureHolder()
        Benchmark(
            "Ledger append (batch of \(batchSize): payments and activations, \(durable ? "durable" : "no fsync"))",
            configuration: .init(metrics: [.throughput, .wallClock, .mallocCountTotal, .syscalls], maxDuration: .seconds(30), maxIterations: batchCount - 5),
            closure: { benchmark in
                guard let fixture = holder.fixture else { preconditionFailure("the setup made the ledger") }
                for _ in benchmark.scaledIterations {
                    guard let batch = fixture.nextBatch() else { return }
                    blackHole(try fixture.ledger.append(batch))
                }
            },
            setup: { holder.fixture = try LedgerFixture(durable: durable, batchCount: batchCount, batchSize: batchSize) },
            teardown: { holder.fixture = nil })
    }

    // MARK: Merkle tree

    // One tree growing over the whole run, as the log's does (an append into an empty tree would hash no parent);
    // the leaf hash is the next benchmark's.
    let appendCursor = BenchmarkCursor()
    Benchmark("Merkle append (leaf)") { benchmark in
        let leaf = Fixture.leafHash
        for _ in benchmark.scaledIterations { blackHole(appendCursor.frontier.append(leafHash: leaf)) }
    }

    Benchmark("Merkle leaf hash (record)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(MerkleHash.leaf(Fixture.leafBytes)) }
    }

    let proofCursor = BenchmarkCursor()
    Benchmark(
        "Merkle inclusion proof (1M leaves, in memory)",
        configuration: .init(maxDuration: smokeRun ? .milliseconds(200) : .seconds(4)),
        closure: { benchmark in
            // A different leaf on every call, spread over the tree by a prime stride.
            for _ in benchmark.scaledIterations {
                blackHole(try MerkleProofs.inclusionProof(leafIndex: proofCursor.leafIndex, treeSize: MillionTree.size, source: MillionTree.nodes))
                proofCursor.leafIndex = (proofCursor.leafIndex + 7919) % MillionTree.size
            }
        },
        setup: { blackHole(MillionTree.nodes.count) })

    Benchmark(
        "Merkle consistency proof (1M leaves, in memory)",
        configuration: .init(maxDuration: smokeRun ? .milliseconds(200) : .seconds(4)),
        closure: { benchmark in
            // A different first size on every call, from 1 to the size less one.
            for _ in benchmark.scaledIterations {
                blackHole(try MerkleProofs.consistencyProof(firstSize: proofCursor.firstSize, secondSize: MillionTree.size, source: MillionTree.nodes))
                proofCursor.firstSize = (proofCursor.firstSize - 1 + 7919) % (MillionTree.size - 1) + 1
            }
        },
        setup: { blackHole(MillionTree.nodes.count) })
}
