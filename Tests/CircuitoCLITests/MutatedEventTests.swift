import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import Foundation
import Testing

// The rulebook against bodies nobody wrote by hand: events of a real demo circuit, their bodies changed at random
// (a member removed, added or given another event's value), signed again with their actors' keys so that every
// change reaches the rules, and appended to the demo's ledger. Each must be accepted or refused with a rule or
// format code (never a storage, integrity or internal one); a refusal writes nothing; and the ledger with what was
// accepted must pass `circuito rebuild`, which replays every check and compares every projection: live writes and
// replay run the same rules over the same state.

@Suite("mutated events against a demo circuit", .serialized, OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10)))
struct MutatedEventTests {
    /// The mutations, deterministic for the seed.
    struct Mutator {
        var random: DemoRandom
        /// Every value that appears in a body of the circuit, plus edge values, to put in place of another.
        let pool: [JSONValue]

        init(seed: UInt64, bodies: [JSONObject]) {
            random = DemoRandom(seed: seed)
            var values: Set<JSONValue> = [
                .null, .bool(true), .bool(false), .integer(0), .integer(-1), .integer(1), .integer(JSONValue.maximumExactInteger),
                .integer(-JSONValue.maximumExactInteger), .string(""), .string(String(repeating: "x", count: 129)), .array([]), .object(JSONObject()),
                .string("2025-02-29"), .string("9999-12-31T23:59:59.999Z"),
            ]
            for body in bodies { Self.collect(.object(body), into: &values) }
            pool = values.sorted { CanonicalJSON.encodeString($0) < CanonicalJSON.encodeString($1) }
        }

        static func collect(_ value: JSONValue, into values: inout Set<JSONValue>) {
            switch value {
            case .object(let members): for member in members { collect(member.value, into: &values) }
            case .array(let elements): for element in elements { collect(element, into: &values) }
            default: values.insert(value)
            }
        }

        mutating func mutate(_ value: JSONValue) -> JSONValue {
            switch value {
            case .object(var members) where !members.isEmpty && random.chance(percent: 85):
                let key = members.keys[random.below(members.count)]
                switch random.below(10) {
                case 0, 1: _ = members.removeValue(forKey: key)
                case 2: _ = members.updateValue(random.element(of: pool), forKey: "extra")
                default: _ = members.updateValue(mutate(members[key] ?? .null), forKey: key)
                }
                return .object(members)
            case .array(var elements) where !elements.isEmpty && random.chance(percent: 80):
                let index = random.below(elements.count)
                switch random.below(5) {
                case 0: elements.remove(at: index)
                case 1: elements.append(elements[index])
                default: elements[index] = mutate(elements[index])
                }
                return .array(elements)
            case .integer(let integer) where random.chance(percent: 60):
                return .integer(random.element(of: [integer + 1, integer - 1, -integer, 0, integer * 100]))
            default:
                return random.element(of: pool)
            }
        }
    }

    @Test("every mutated event is accepted or refused with a rule or format code, refusals write nothing, and the result rebuilds")
    func mutatedEvents() async throws {
        let demo = try await DemoLedger(seed: 5)
        defer { demo.remove() }
        let records = try await demo.export().map { (line) throws -> JSONValue in try JSONParser.parse(line) }
        let originals = try records.map { (record) throws -> Event in try Event(json: try #require(record["event"])) }
        let actors = Array(Set(originals.map(\.actor))).sorted()
        let types = Array(Set(originals.map(\.type))).sorted()
        var mutator = Mutator(seed: 5, bodies: originals.map(\.body))
        let now = try #require(records.last?["recorded_at"]?.stringValue.flatMap(Timestamp.millisecondsSince1970)) + 1_000
        let ledger = try Ledger.open(directory: demo.directory, clock: { now })
        var refusals: [String: Int] = [:]
        var accepted = 0
        var index = 0
        while index < 2_400 {
            // Batches of 1 to 4, so that refusals beside acceptances in one commit are covered too.
            var batch: [VerifiedEvent] = []
            for _ in 0..<(1 + mutator.random.below(4)) {
                index += 1
                let original = originals[1 + mutator.random.below(originals.count - 1)]
                var body = original.body, type = original.type, actor = original.actor
                switch mutator.random.below(10) {
                case 0: type = mutator.random.element(of: types)
                case 1: actor = mutator.random.element(of: actors)
                case 2: break  // the same body again under a new id
                case 3, 4:
                    // A fresh name where the body names something, so that events that create things get past
                    // `already_exists` and on into the rules that follow.
                    let names = body.filter { $0.value.stringValue.map(Identifier.isValid) == true }.map(\.key)
                    if !names.isEmpty { _ = body.updateValue(.string("fresh-\(index)"), forKey: mutator.random.element(of: names)) }
                default: body = mutator.mutate(.object(body)).objectValue ?? body
                }
                let key = try DemoCircuit.actorKey(seed: demo.seed, actor: actor)
                do throws(LedgerError) {
                    let event = try Event(
                        id: "mutated-\(index)", type: type, actor: actor, key: key.publicKey.multikey,
                        timestamp: Timestamp.format(millisecondsSince1970: now), body: body)
                    batch.append(try SignedEvent(signing: event, with: key).verified())
                } catch {
                    #expect(!(4000..<5000).contains(error.code.number), "event \(index) was refused before the ledger with \(error)")
                    refusals[error.code.name, default: 0] += 1
                }
            }
            let sizeBefore = try ledger.reader.size()
            var acceptedHere = 0
            for (offset, result) in try ledger.append(batch).enumerated() {
                switch result {
                case .success: acceptedHere += 1
                case .failure(let error):
                    #expect(!(4000..<5000).contains(error.code.number), "\(batch[offset].event.type) \(CanonicalJSON.encodeString(.object(batch[offset].event.body))): \(error)")
                    refusals[error.code.name, default: 0] += 1
                }
            }
            #expect(try ledger.reader.size() == sizeBefore + UInt64(acceptedHere), "only the accepted events were written")
            accepted += acceptedHere
        }
        #expect(ledger.reader.close())
        // Both sides of the rules were reached: some changed events are still valid, most are refused, for many reasons.
        #expect(accepted >= 5, "only \(accepted) mutated events were accepted")
        #expect(refusals.count >= 10, "refusals: \(refusals)")
        let rebuilt = try await circuito("rebuild", "--data", demo.directory, timeout: 300)
        #expect(rebuilt.succeeded, "rebuild: \(rebuilt.stderr)")
        #expect(rebuilt.stdout.hasPrefix("ok: \(originals.count + accepted) records replayed, 22 projections equal"), "\(rebuilt.stdout)")
    }
}
