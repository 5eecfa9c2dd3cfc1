import CircuitoCore
import CSodium
import CircuitoCrypto
@testable import CircuitoServer
import CircuitoStorage
import Foundation
import Glibc
import Testing

/// A folder under the temporary directory, removed at the end of the test.
final class TemporaryFolder: @unchecked Sendable {
    let path: String

    init() {
        // Short, so Unix socket paths inside stay under the 108-byte limit.
        path = "/tmp/cs-" + UUID().uuidString.prefix(12).lowercased()
        mkdir(path, 0o700)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The actors of the test circuit and their keys.
struct Actors: Sendable {
    let authority = Ed25519PrivateKey()
    let checkpoint = Ed25519PrivateKey()
    let organisation = Ed25519PrivateKey()
    let otherOrganisation = Ed25519PrivateKey()
    let staff = Ed25519PrivateKey()
    let otherStaff = Ed25519PrivateKey()
    let beneficiary = Ed25519PrivateKey()
    let otherBeneficiary = Ed25519PrivateKey()
    let merchant = Ed25519PrivateKey()
    let otherMerchant = Ed25519PrivateKey()
    let auditor = Ed25519PrivateKey()

    /// (actor id, key) of every actor, for the permission matrix.
    var byID: [String: Ed25519PrivateKey] {
        [
            "city": authority, "casa": organisation, "other-org": otherOrganisation, "anna": staff, "otto": otherStaff,
            "bene-1": beneficiary, "bene-2": otherBeneficiary, "shop": merchant, "shop-2": otherMerchant, "audit": auditor,
        ]
    }
}

/// A ledger built in-process with real signatures: an authority, two organisations with staff, two beneficiaries
/// (bene-1 has a case held by casa and a dote of `initialBalance` cents for food), two merchants, an auditor, a
/// published opportunity, a badge class and a badge.
final class CircuitFixture: @unchecked Sendable {
    let folder = TemporaryFolder()
    let actors = Actors()
    var directory: String { folder.path + "/ledger" }
    let initialBalance: Int64
    /// The genesis origin, which payment authorisations name.
    let origin: String
    private var counter = 0

    init(initialBalance: Int64 = 1000, origin: String = "test.example/ledger") throws {
        self.initialBalance = initialBalance
        self.origin = origin
        let ledger = try Ledger.create(directory: directory, genesis: try genesis(), checkpointKey: actors.checkpoint)
        let a = actors
        func key(_ privateKey: Ed25519PrivateKey) -> JSONValue { .array([.string(privateKey.publicKey.multikey)]) }
        let sealed = SealedData.seal(["note": "intake"], subject: "bene-1", key: SecretBox.newKey())
        let events: [VerifiedEvent] = [
            try event("actor.registered", by: "city", a.authority, ["actor": "casa", "role": "organisation", "name": "Casa", "keys": key(a.organisation), "district": "san-salvario"]),
            try event("actor.registered", by: "city", a.authority, ["actor": "other-org", "role": "organisation", "name": "Other", "keys": key(a.otherOrganisation)]),
            try event("actor.registered", by: "casa", a.organisation, ["actor": "anna", "role": "staff", "name": "Anna", "keys": key(a.staff), "organisation": "casa"]),
            try event("actor.registered", by: "other-org", a.otherOrganisation, ["actor": "otto", "role": "staff", "name": "Otto", "keys": key(a.otherStaff), "organisation": "other-org"]),
            try event("actor.registered", by: "casa", a.organisation, ["actor": "bene-1", "role": "beneficiary", "name": "B1", "keys": key(a.beneficiary), "organisation": "casa"]),
            try event("actor.registered", by: "casa", a.organisation, ["actor": "bene-2", "role": "beneficiary", "name": "B2", "keys": key(a.otherBeneficiary), "organisation": "casa"]),
            try event("actor.registered", by: "city", a.authority, ["actor": "shop", "role": "merchant", "name": "Bottega del quartiere", "keys": key(a.merchant)]),
            try event("actor.registered", by: "city", a.authority, ["actor": "shop-2", "role": "merchant", "name": "Other shop", "keys": key(a.otherMerchant)]),
            try event("actor.registered", by: "city", a.authority, ["actor": "audit", "role": "auditor", "name": "Auditor", "keys": key(a.auditor)]),
            try event("policy.updated", by: "city", a.authority, ["conversion_rate_cents_per_credit": 100, "monthly_conversion_cap_cents": 100_000, "lot_validity_days": 365, "categories": ["food", "rent"]]),
            try event("program.funded", by: "city", a.authority, ["amount": 10_000_000, "reference": "budget 2026"]),
            try event("merchant.enrolled", by: "city", a.authority, ["merchant": "shop", "categories": ["food"], "district": "san-salvario"]),
            try event("merchant.enrolled", by: "city", a.authority, ["merchant": "shop-2", "categories": ["rent"], "district": "aurora"]),
            try event("case.referred", by: "anna", a.staff, ["case": "case-1", "beneficiary": "bene-1", "household": "hh-1", "to": "casa", "sealed": sealed]),
            try event("case.opened", by: "anna", a.staff, ["case": "case-1"]),
            try event("dote.granted", by: "anna", a.staff, ["beneficiary": "bene-1", "category": "food", "amount": .integer(initialBalance)]),
            try event("opportunity.published", by: "anna", a.staff, ["opportunity": "opp-garden", "title": "Community garden", "description": "Weekly gardening in the courtyard", "category": "civic_utility", "district": "san-salvario", "hours": 20]),
            try event("badge_class.defined", by: "anna", a.staff, ["badge_class": "bc-garden", "name": "Gardener", "description": "Took care of the garden", "criteria": "20 hours", "credits": 5]),
            try event("activation.recorded", by: "anna", a.staff, ["activation": "act-1", "case": "case-1", "opportunity": "opp-garden", "hours": 20, "date": "2026-11-01"]),
            try event("badge.issued", by: "anna", a.staff, ["badge": "badge-1", "badge_class": "bc-garden", "beneficiary": "bene-1", "activations": ["act-1"]]),
        ]
        for result in try ledger.append(events) { _ = try result.get() }
    }

    private func genesis() throws -> VerifiedEvent {
        try event("ledger.genesis", by: "city", actors.authority, [
            "origin": .string(origin),
            "authority": .object(["actor": "city", "name": "City", "keys": .array([.string(actors.authority.publicKey.multikey)])]),
            "checkpoint_key": .string(actors.checkpoint.publicKey.multikey), "currency": ["code": "TOC", "decimals": 2],
        ], id: "genesis")
    }

    var now: Int64 { Ledger.systemClockMilliseconds() }

    func nextID(_ prefix: String = "evt") -> String {
        counter += 1
        return "\(prefix)-\(counter)-\(UUID().uuidString.prefix(8))"
    }

    func signed(_ type: String, by actor: String, _ key: Ed25519PrivateKey, _ body: JSONObject, id: String? = nil) throws -> SignedEvent {
        let event = try Event(
            id: id ?? nextID(), type: type, actor: actor, key: key.publicKey.multikey,
            timestamp: Timestamp.format(millisecondsSince1970: now), body: body)
        return SignedEvent(signing: event, with: key)
    }

    func event(_ type: String, by actor: String, _ key: Ed25519PrivateKey, _ body: JSONObject, id: String? = nil) throws -> VerifiedEvent {
        try signed(type, by: actor, key, body, id: id).verified()
    }

    /// `payment.redeemed` by shop (signed with its first key unless `merchantKey` names another), authorised by
    /// bene-1's wallet.
    func payment(amount: Int64, nonce: String? = nil, id: String? = nil, merchantKey: Ed25519PrivateKey? = nil) throws -> SignedEvent {
        let authorisation = PaymentAuthorisation(
            origin: origin, beneficiary: "bene-1", merchant: "shop", amount: amount, expiresAt: Timestamp.format(millisecondsSince1970: now + 3_600_000),
            nonce: nonce ?? nextID("nonce"), key: actors.beneficiary.publicKey.multikey)
        let signature = PaymentAuthorisation.sign(authorisation, with: actors.beneficiary)
        return try signed("payment.redeemed", by: "shop", merchantKey ?? actors.merchant, ["authorisation": authorisation.json, "signature": .string(Base64.encode(signature))], id: id)
    }

    /// A fresh merchant registration by the authority (cheap, always accepted): load for tests.
    func registration(id: String? = nil) throws -> SignedEvent {
        let actorID = id ?? nextID("shop")
        return try signed("actor.registered", by: "city", actors.authority, [
            "actor": .string(actorID), "role": "merchant", "name": .string("Shop \(actorID)"),
            "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)]),
        ], id: "reg-" + actorID)
    }

    /// Signed read params as `actor`.
    func read(_ method: String, as actor: String, _ params: JSONValue, nonce: String? = nil, at time: Int64? = nil) -> JSONValue {
        let key = actors.byID[actor] ?? actors.auditor
        if let nonce {
            return ReadAuthorisation.sign(method: method, params: params, actor: actor, key: key, nowMilliseconds: time ?? now, nonce: nonce)
        }
        return ReadAuthorisation.sign(method: method, params: params, actor: actor, key: key, nowMilliseconds: time ?? now)
    }

    /// Starts a server on an ephemeral TCP port and a Unix socket in the fixture's folder; with the given clocks, or
    /// the server's own.
    func startServer(
        limits: ServerLimits = ServerLimits(), readClockMilliseconds: (@Sendable () -> Int64)? = nil,
        monotonicMilliseconds: (@Sendable () -> Int64)? = nil
    ) async throws -> LedgerServer {
        var configuration = ServerConfiguration(directory: directory, tcpHost: "127.0.0.1", tcpPort: 0, unixSocketPath: folder.path + "/s.sock", limits: limits)
        configuration.eventLoopThreads = 2
        if let readClockMilliseconds { configuration.readClockMilliseconds = readClockMilliseconds }
        if let monotonicMilliseconds { configuration.monotonicMilliseconds = monotonicMilliseconds }
        return try await LedgerServer.start(configuration)
    }
}

extension LedgerServer {
    var tcpEndpoint: Endpoint { .tcp(host: "127.0.0.1", port: tcpPort ?? 0) }
    var unixEndpoint: Endpoint { .unix(path: unixSocketPath ?? "") }

    func client(unix: Bool = false, timeoutSeconds: Int = 20) throws -> LineClient {
        try LineClient(unix ? unixEndpoint : tcpEndpoint, timeoutSeconds: timeoutSeconds)
    }
}

extension LineClient {
    /// The result of a call that must succeed.
    func result(_ method: String, _ params: JSONValue = .object([:]), sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
        switch try call(method, params) {
        case .success(let value): return value
        case .failure(let error):
            Issue.record("\(method) failed: \(error)", sourceLocation: sourceLocation)
            throw error
        }
    }

    /// The error of a call that must fail.
    func error(_ method: String, _ params: JSONValue = .object([:]), sourceLocation: SourceLocation = #_sourceLocation) throws -> RPCError {
        switch try call(method, params) {
        case .success(let value):
            Issue.record("\(method) succeeded with \(CanonicalJSON.encodeString(value)) but should have failed", sourceLocation: sourceLocation)
            throw RPCError.internalError("unexpected success")
        case .failure(let error): return error
        }
    }

    /// Sends raw bytes and reads the one line that answers them.
    func exchange(_ text: String) throws -> JSONValue? {
        try send(bytes: Array(text.utf8))
        return try nextMessage()
    }
}

extension SignedEvent {
    /// Params of `submit`.
    var params: JSONValue { json }
}

/// Runs `body` on `count` threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        Thread {
            body(index)
            group.leave()
        }.start()
    }
    group.wait()
}

/// Checks a receipt: its checkpoint verifies with the ledger's key, covers the seq, and the inclusion proof of the
/// leaf hash (fetched from the server) verifies against its root. Given the signed event that was submitted, also
/// that the leaf hash is that of the record rebuilt from it with the receipt's seq and recorded_at, as a submitter
/// checks it without reading the log (Specs/ledger.md 7.4).
func verifyReceipt(_ receipt: JSONValue, submitted signedEvent: JSONValue? = nil, client: LineClient, verifierKey: String) throws {
    let note = try #require(receipt["checkpoint"]?.stringValue)
    let sequenceNumber = UInt64(try #require(receipt["seq"]?.integerValue))
    let leafHash = try #require(receipt["leaf_hash"]?.stringValue.flatMap(Base64.decode))
    if let signedEvent {
        // Sent once, the stored signature is the one sent.
        #expect(receipt["sig"] == signedEvent["sig"])
        let record: JSONValue = [
            "event": try #require(signedEvent["event"]), "sig": try #require(receipt["sig"]),
            "seq": .integer(Int64(sequenceNumber)), "recorded_at": try #require(receipt["recorded_at"]),
        ]
        #expect(MerkleHash.leaf(CanonicalJSON.encode(record)) == leafHash, "the receipt's leaf is not the submitted event's record")
    }
    let checkpoint = try Checkpoint(parsing: try SignedNote.open(note, verifier: try NoteVerifier(parsing: verifierKey)))
    #expect(checkpoint.size > sequenceNumber)
    let proof = try client.result("proof.inclusion", ["seq": .integer(Int64(sequenceNumber)), "size": .integer(Int64(checkpoint.size))])
    let hashes = try #require(proof["hashes"]?.arrayValue).compactMap { $0.stringValue.flatMap(Base64.decode) }
    #expect(MerkleProofs.verifyInclusion(leafHash: leafHash, leafIndex: sequenceNumber, treeSize: checkpoint.size, proof: hashes, root: checkpoint.rootHash))
}

/// A thread-safe list, for results gathered on many threads.
final class Collected<Element>: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var elements: [Element] = []

    /// Appends and returns how many elements there are now.
    @discardableResult
    func append(_ element: Element) -> Int { lock.withLock { elements.append(element); return elements.count } }
    var all: [Element] { lock.withLock { elements } }
}

// MARK: - The circuito executable

enum CircuitoBinary {
    /// The `circuito` executable next to this test bundle (same build products folder).
    static let path: String? = {
        if let given = ProcessInfo.processInfo.environment["CIRCUITO_BIN"], isExecutable(given) { return given }
        var starts: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { starts.append(exe) }
        if let first = CommandLine.arguments.first { starts.append(URL(fileURLWithPath: first).standardizedFileURL.path) }
        for start in starts {
            var folder = URL(fileURLWithPath: start).deletingLastPathComponent()
            while folder.path.count > 1 {
                for candidate in ["circuito", "debug/circuito", "release/circuito"] where isExecutable(folder.path + "/" + candidate) {
                    return folder.path + "/" + candidate
                }
                folder.deleteLastPathComponent()
            }
        }
        return nil
    }()

    private static func isExecutable(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG && access(path, X_OK) == 0
    }
}

/// A child `circuito` process with its output collected.
final class Child: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var outputBytes: [UInt8] = []
    private var errorBytes: [UInt8] = []
    private var outputEnded = false
    private var errorsEnded = false

    init(_ arguments: [String]) throws {
        signal(SIGPIPE, SIG_IGN)
        let binary = try #require(CircuitoBinary.path, "the circuito executable was not found next to the test bundle")
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        // Pipes made close-on-exec at birth: a process that another test starts at the same moment (by any means)
        // cannot inherit their write ends, which would hold back the end of this child's output for its lifetime.
        let output = try Self.makePipe()
        let errors = try Self.makePipe()
        process.standardOutput = FileHandle(fileDescriptor: output.write, closeOnDealloc: false)
        process.standardError = FileHandle(fileDescriptor: errors.write, closeOnDealloc: false)
        process.standardInput = FileHandle.nullDevice
        // One thread per stream, reading until the end (blocking reads: the end comes when the child exits).
        Self.pump(output.read) { [weak self] bytes in
            self?.lock.withLock { if let bytes { self?.outputBytes += bytes } else { self?.outputEnded = true } }
        }
        Self.pump(errors.read) { [weak self] bytes in
            self?.lock.withLock { if let bytes { self?.errorBytes += bytes } else { self?.errorsEnded = true } }
        }
        defer {
            // The child has its copies (dup'ed onto 1 and 2); ours would keep the pipes open.
            close(output.write)
            close(errors.write)
        }
        try process.run()
    }

    /// Reads `descriptor` on a thread of its own, handing over each piece, then nil at the end, and closes it.
    private static func pump(_ descriptor: Int32, _ deliver: @escaping @Sendable ([UInt8]?) -> Void) {
        Thread {
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                deliver(Array(chunk[0..<count]))
            }
            close(descriptor)
            deliver(nil)
        }.start()
    }

    /// pipe2(O_CLOEXEC), looked up at run time (Swift's Glibc module does not declare it).
    private static func makePipe() throws -> (read: Int32, write: Int32) {
        typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
        let symbol = try #require(dlsym(nil, "pipe2"), "pipe2 is not available")
        let pipe2 = unsafeBitCast(symbol, to: Pipe2.self)
        var descriptors: [Int32] = [-1, -1]
        let status = descriptors.withUnsafeMutableBufferPointer { pipe2($0.baseAddress, O_CLOEXEC) }
        try #require(status == 0, "pipe2: \(String(cString: strerror(errno)))")
        return (descriptors[0], descriptors[1])
    }

    /// Waits until both stdout and stderr are read to their end (the child has exited and closed them).
    func waitForOutputEnd(timeoutSeconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while !lock.withLock({ outputEnded && errorsEnded }) {
            if Date() > deadline { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return true
    }

    var standardOutput: String { lock.withLock { String(decoding: outputBytes, as: UTF8.self) } }
    var standardError: String { lock.withLock { String(decoding: errorBytes, as: UTF8.self) } }

    /// Waits until stdout holds a line starting with `prefix`; nil on timeout or exit.
    func waitForLine(startingWith prefix: String, timeoutSeconds: Double) async -> String? {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while true {
            if let line = standardOutput.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            // Looks once more after the deadline: on a loaded machine the sleep before this look can outlast it (a
            // task on the shared pool waits for a thread), and the line may have come long before.
            if !process.isRunning || Date() > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits for the exit; false on timeout (the child is then killed). It sleeps between looks instead of blocking,
    /// so the test's thread stays free for other tests' tasks (there is one per core).
    func waitForExit(timeoutSeconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while process.isRunning {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return false
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        process.waitUntilExit()
        return true
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Runs `circuito` to the end and returns (status, stdout, stderr).
func runCircuito(_ arguments: [String], timeoutSeconds: Double = 60) async throws -> (status: Int32, output: String, errors: String) {
    let child = try Child(arguments)
    let exited = await child.waitForExit(timeoutSeconds: timeoutSeconds)
    #expect(exited, "circuito \(arguments.joined(separator: " ")) did not finish in \(timeoutSeconds) s")
    #expect(await child.waitForOutputEnd(timeoutSeconds: 30), "the output of circuito \(arguments.joined(separator: " ")) did not end")
    return (child.process.terminationStatus, child.standardOutput, child.standardError)
}


/// Another valid Ed25519 signature of `message` by `key`, with a random nonce instead of RFC 8032's derived one: what a
/// signer that does not sign deterministically produces (S = r + k·a mod L, R = [r]B, with libsodium's group and
/// scalar arithmetic).
func randomisedSignature(of message: [UInt8], by key: Ed25519PrivateKey) -> [UInt8] {
    var expanded = [UInt8](repeating: 0, count: 64)
    _ = crypto_hash_sha512(&expanded, key.seed, UInt64(key.seed.count))
    var secretScalar = Array(expanded[0..<32])
    secretScalar[0] &= 248
    secretScalar[31] &= 127
    secretScalar[31] |= 64
    var reducedSecret = [UInt8](repeating: 0, count: 32)
    var wide = secretScalar + [UInt8](repeating: 0, count: 32)
    crypto_core_ed25519_scalar_reduce(&reducedSecret, &wide)
    var nonce = [UInt8](repeating: 0, count: 32)
    crypto_core_ed25519_scalar_random(&nonce)
    var commitment = [UInt8](repeating: 0, count: 32)
    _ = crypto_scalarmult_ed25519_base_noclamp(&commitment, nonce)
    var challengeHash = [UInt8](repeating: 0, count: 64)
    let hashed = commitment + key.publicKey.bytes + message
    _ = crypto_hash_sha512(&challengeHash, hashed, UInt64(hashed.count))
    var challenge = [UInt8](repeating: 0, count: 32)
    crypto_core_ed25519_scalar_reduce(&challenge, &challengeHash)
    var product = [UInt8](repeating: 0, count: 32)
    crypto_core_ed25519_scalar_mul(&product, challenge, reducedSecret)
    var scalar = [UInt8](repeating: 0, count: 32)
    crypto_core_ed25519_scalar_add(&scalar, nonce, product)
    return commitment + scalar
}

/// Runs each test of a suite on two threads of its own instead of Swift concurrency's shared pool, which has one
/// thread per core (two here). Tests that block a thread (a follower's blocking reads, sleeps, waits for other
/// threads) otherwise hold one of those for as long as they run, and the suites beside them, and the servers they
/// start, are left with one or none. And a time limit counts from the moment a test's body is handed to that pool,
/// where hundreds of other tests' jobs wait while the whole suite runs: here it counts the test's own work. For
/// `.serialized` suites, whose tests run one at a time (a suite adds two threads while it runs, not two per test), and
/// single tests.
struct OwnThreadsTrait: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        // Each test case, not the suite around them.
        testCase == nil ? nil : self
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        // Two, as the pool would give: a test that blocks one still has its other tasks run on the second.
        let executor = try ServerExecutor(threadCount: 2)
        defer { executor.stop() }
        try await withTaskExecutorPreference(executor) { try await function() }
    }
}
