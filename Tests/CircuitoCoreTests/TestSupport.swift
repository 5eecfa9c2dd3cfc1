import CircuitoCore
import CircuitoCrypto
import Foundation
import Testing

/// The repository root, found from this file's path.
let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}()

/// `../shared` beside the repository.
let sharedFolder = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared")

/// Builds and signs events for rule tests, with a fixed clock.
struct EventFactory {
    var counter = 0

    mutating func make(
        _ type: String, by actor: String, key: Ed25519PrivateKey, _ body: JSONObject, id: String? = nil
    ) throws -> VerifiedEvent {
        counter += 1
        let event = try Event(
            id: id ?? "evt-\(counter)", type: type, actor: actor, key: key.publicKey.multikey,
            timestamp: "2026-11-22T10:00:00Z", body: body)
        return try SignedEvent(signing: event, with: key).verified()
    }
}

/// The rulebook's view of a state in the rule tests: every read is forwarded and its table recorded, so that the
/// tests can check that no rule reads a table of `StateTable.queryOnly` (`verify` leaves those out, so such a read
/// would see them empty there): `expectNoQueryOnlyRead` after each event.
struct RulesReadingView<Base: LedgerStateReader>: LedgerStateReader {
    final class Reads: @unchecked Sendable {
        var tables: Set<StateTable> = []
    }

    let base: Base
    let reads = Reads()
    var tablesRead: Set<StateTable> { reads.tables }

    init(_ base: Base) { self.base = base }

    private func note(_ table: StateTable) { reads.tables.insert(table) }

    func expectNoQueryOnlyRead(of event: VerifiedEvent, sourceLocation: SourceLocation = #_sourceLocation) {
        let wrong = tablesRead.intersection(StateTable.queryOnly)
        #expect(wrong.isEmpty, "the rule of \(event.event.type) read \(wrong), which StateTable.queryOnly says no rule reads", sourceLocation: sourceLocation)
    }

    func value(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> [UInt8]? {
        note(table)
        return try base.value(table, key)
    }

    func entries(_ table: StateTable, prefix: [UInt8], limit: Int) throws(LedgerError) -> [(key: [UInt8], value: [UInt8])] {
        note(table)
        return try base.entries(table, prefix: prefix, limit: limit)
    }

    func json(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> JSONValue? {
        note(table)
        return try base.json(table, key)
    }

    func actor(_ id: String) throws(LedgerError) -> ActorRecord? {
        note(.actors)
        return try base.actor(id)
    }
}

/// A ledger state built by running events through the rulebook, as replay does.
struct RuleHarness {
    var state = MemoryLedgerState()
    var size: UInt64 = 0
    /// The ledger's time for the next event (`recorded_at`).
    var now = "2026-11-22T10:00:00.000Z"
    var factory = EventFactory()
    let authority = Ed25519PrivateKey()
    let checkpoint = Ed25519PrivateKey()

    init() throws {
        try accept(try factory.make("ledger.genesis", by: "city", key: authority, [
            "origin": "test.example/ledger",
            "authority": .object(["actor": "city", "name": "City", "keys": .array([.string(authority.publicKey.multikey)])]),
            "checkpoint_key": .string(checkpoint.publicKey.multikey),
            "currency": .object(["code": "TOC", "decimals": 2]),
        ], id: "genesis"))
    }

    mutating func accept(_ event: VerifiedEvent) throws {
        let view = RulesReadingView(state)
        // Also a refused event's reads: refusals must not depend on those tables either.
        defer { view.expectNoQueryOnlyRead(of: event) }
        let changes = try Rulebook.check(event, at: LogPosition(sequenceNumber: size, recordedAt: now), state: view)
        state.apply(changes)
        size += 1
    }

    /// Submits an event and returns the refusal code, or nil when it was accepted.
    mutating func submit(_ type: String, by actor: String, key: Ed25519PrivateKey, _ body: JSONObject, id: String? = nil) throws -> LedgerError.Code? {
        let event = try factory.make(type, by: actor, key: key, body, id: id)
        do {
            try accept(event)
            return nil
        } catch let error as LedgerError {
            return error.code
        }
    }

    @discardableResult
    mutating func register(_ id: String, role: String, by actor: String = "city", key signer: Ed25519PrivateKey? = nil, organisation: String? = nil) throws -> Ed25519PrivateKey {
        let key = Ed25519PrivateKey()
        var body: JSONObject = ["actor": .string(id), "role": .string(role), "name": .string(id), "keys": .array([.string(key.publicKey.multikey)])]
        if let organisation { body["organisation"] = .string(organisation) }
        try accept(try factory.make("actor.registered", by: actor, key: signer ?? authority, body))
        return key
    }
}

/// Every change of one byte of `bytes` to each of `replacements` (where it differs), every deletion of one byte, and
/// every insertion of each of `insertions`: the inputs with which a fast parser is held to its reference.
func oneByteVariants(of bytes: [UInt8], replacements: [UInt8], insertions: [UInt8]) -> [[UInt8]] {
    var variants: [[UInt8]] = []
    for index in bytes.indices {
        for replacement in replacements where replacement != bytes[index] {
            var changed = bytes
            changed[index] = replacement
            variants.append(changed)
        }
        var deleted = bytes
        deleted.remove(at: index)
        variants.append(deleted)
        for insertion in insertions {
            var inserted = bytes
            inserted.insert(insertion, at: index)
            variants.append(inserted)
        }
    }
    return variants
}

extension Lot {
    /// This lot with other amounts, as a damaged file (or a boundary case) would hold it.
    func with(amount: Int64, remaining: Int64) -> Lot {
        Lot(id: id, beneficiary: beneficiary, category: category, amount: amount, remaining: remaining, expiresAt: expiresAt, source: source)
    }
}
