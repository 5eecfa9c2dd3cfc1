import CircuitoCore
import CircuitoCrypto
@testable import CircuitoServer
import CircuitoStorage
import CircuitoTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// Nested in the subscriptions' suite, whose `.serialized` then covers both: their tests block one of Swift
/// concurrency's few shared threads each (a follower's blocking reads and sleeps), and one from each suite at once left
/// none for the servers of the suites running beside them (a ProtocolTests server's connection tasks never ran, and
/// its test waited 30 s for answers in vain, in 3 of 4 runs of those suites together). That suite's tests, these
/// included, now also run on threads of their own (`OwnThreadsTrait`), so they hold none of the shared ones.
typealias HostileLeaderTests = SubscriptionTests.HostileLeaderTests

extension SubscriptionTests {
    /// A follower is an auditor's verifying replica of a leader it does not trust. These tests serve it a real leader's
    /// stream through a fake leader that changes it, and check that whatever arrives the follower either stops with a
    /// mismatch having written nothing of the offending commit, or treats it as transport trouble and resumes from its
    /// own size; and that its replica is always a prefix of the leader's history at a commit's end that `verify` passes.
    @Suite("Follower against a hostile leader", .timeLimit(.minutes(5)))
    struct HostileLeaderTests {
        @Test("seeded mutations of a real leader's stream: each one is a mismatch, a reconnection or harmless, and the replica stays a verified prefix")
        func mutatedStreams() async throws {
            let recorded = try await RecordedStream.make()
            var random = SplitMix64(seed: 0x6_3f0_11e5)
            // Each kind twice: once to a new replica, once to a replica that holds some of the leader's commits and
            // resumes (its first proof is from its own size and root).
            let kinds = HostileMutation.Kind.allCases
            let cases = (0..<kinds.count * 2).map { index in
                let resumeFrom = index < kinds.count ? 0 : recorded.resumableSizes.randomElement(using: &random) ?? 0
                return HostileMutation.make(kinds[index % kinds.count], recorded, resumeFrom: resumeFrom, &random)
            }
            let results = Mutex<[(HostileMutation, HostileCaseResult)]>([])
            let next = Atomic<Int>(0)
            let folder = TemporaryFolder()
            // Most of a case is waiting on sockets: several at once keep the suite fast on two cores.
            onThreads(6) { _ in
                while true {
                    let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard index < cases.count else { return }
                    let result = HostileCaseResult.run(cases[index], recorded, folder: folder.path + "/case-\(index)")
                    results.withLock { $0.append((cases[index], result)) }
                }
            }
            var seen: [HostileCaseResult.Outcome: Int] = [:]
            for (mutation, result) in results.withLock({ $0 }) {
                seen[result.outcome, default: 0] += 1
                for problem in result.problems(expected: mutation.expected) {
                    Issue.record("\(mutation.description): \(problem)")
                }
            }
            // The generator reached each way of ending (a generator that only made harmless changes would prove little).
            #expect(seen[.mismatch, default: 0] > 0 && seen[.reconnected, default: 0] > 0 && seen[.ignored, default: 0] > 0, "\(seen)")
        }
    }
}


/// A real leader's stream from 0 (records and checkpoints, as its server sent them), its ledger as stored, its
/// checkpoint key (a hostile leader holds it) and records of another ledger.
struct RecordedStream: Sendable {
    let messages: [JSONValue]
    let leaves: [[UInt8]]
    let checkpoints: [UInt64: String]
    let signer: NoteSigner
    let auditor: Ed25519PrivateKey
    /// Records of another ledger (its genesis and the fixture's first commit).
    let foreignRecords: [JSONValue]
    /// A valid signed event (the authority's registration of a merchant) that the leader never recorded.
    let unrecordedEvent: JSONValue

    var size: UInt64 { UInt64(leaves.count) }

    static func make() async throws -> RecordedStream {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let writer = try server.client()
        // Commits of one and of several records after the fixture's two (genesis, then 20 events).
        for _ in 0..<3 { _ = try writer.result("submit", try fixture.registration().params) }
        _ = try writer.result("submit_batch", ["events": .array(try (0..<3).map { _ in try fixture.registration().params })])
        _ = try writer.result("submit", try fixture.payment(amount: 10).params)
        let size = try server.size()
        let subscriber = try server.client()
        _ = try subscriber.result("subscribe", fixture.read("subscribe", as: "audit", ["from": 0]))
        var messages: [JSONValue] = []
        while messages.count < 10_000, messages.last?["params"]?["size"] != .integer(Int64(size)) {
            messages.append(try #require(try subscriber.nextMessage()))
        }
        await server.shutdown()
        let reader = try LedgerReader.open(directory: fixture.directory)
        defer { _ = reader.close() }
        let leaves = try (0..<size).map { try reader.leafBytes(sequenceNumber: $0) }
        var checkpoints: [UInt64: String] = [:]
        try reader.forEachCheckpoint { size, note in
            checkpoints[size] = note
            return true
        }
        let other = try CircuitFixture()
        let otherReader = try LedgerReader.open(directory: other.directory)
        defer { _ = otherReader.close() }
        let foreignRecords = try (0..<(try otherReader.size())).map { try JSONParser.parse(try otherReader.leafBytes(sequenceNumber: $0)) }
        return RecordedStream(
            messages: messages, leaves: leaves, checkpoints: checkpoints, signer: try NoteSigner(name: "test.example/ledger", privateKey: fixture.actors.checkpoint),
            auditor: fixture.actors.auditor, foreignRecords: foreignRecords, unrecordedEvent: try fixture.registration().json)
    }

    /// The answer to a subscription from `from`, as the leader gives it.
    func answer(from: Int64) -> JSONValue {
        ["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": .integer(Int64(size)), "subscription": "sub-1"]]
    }

    /// The honest stream from `from` (a checkpoint's size): records from it and the checkpoints after it.
    func honestMessages(from: Int64) -> [JSONValue] {
        messages.filter { message in
            let params = message["params"]
            if let sequenceNumber = params?["record"]?["seq"]?.integerValue { return sequenceNumber >= from }
            return (params?["size"]?.integerValue ?? 0) > from
        }
    }

    /// The size of the last checkpoint before message `index` of `messages` (a stream from `from`): all a follower
    /// may commit of a stream changed there.
    static func committedSize(before index: Int, of messages: [JSONValue], from: Int64) -> UInt64 {
        let sizes = messages[..<min(index, messages.count)].compactMap { message in
            message["method"] == "subscription.checkpoint" ? message["params"]?["size"]?.integerValue : nil
        }
        return UInt64(sizes.last ?? from)
    }

    /// Commit ends from which the rest of the stream still holds two commits and two records, for every change to
    /// find what it changes.
    var resumableSizes: [Int64] {
        checkpoints.keys.sorted().map { Int64($0) }.filter { size in
            let rest = honestMessages(from: size)
            return rest.filter { $0["method"] == "subscription.checkpoint" }.count >= 2 && rest.filter { $0["method"] == "subscription.record" }.count >= 2
        }
    }

    static func line(_ message: JSONValue) -> [UInt8] { RPCMessage.line(message) }
}

/// One way of changing the leader's stream, made from a kind by the seeded generator.
struct HostileMutation: Sendable, CustomStringConvertible {
    enum Kind: String, CaseIterable, Sendable {
        case byteFlipped, byteInserted, byteDeleted
        case recordsSwapped, recordRepeated, recordSkipped, foreignRecord, unrecordedValidEvent, recordOfWrongType, sequenceNumberOfWrongType
        case checkpointEarly, checkpointWithWrongRootSigned, checkpointForSizeNotReachedSigned, checkpointAgain, checkpointRepeatedConsistently, checkpointOfAnotherKey
        case checkpointFieldOfWrongType, previousSizeWrong, consistencyHashChanged, consistencyEmptiedOrFilled, consistencyTooLong
        case consistencyHuge, consistencyNotBase64
        case answerNotAskedFor, unknownNotification, longValidLine
        case cutMidLine, closedAtCommitEnd, lineNotJSON, subscriptionError
    }

    enum Expectation: Sendable {
        /// Stops with a mismatch, having committed nothing of the changed commit.
        case mismatch
        /// Reconnects and resumes from its own size.
        case reconnection
        /// Takes no notice: ends equal to the leader on the one connection.
        case ignored
        /// A change of bytes may be any of the three (a flipped byte may leave the same JSON value, or no JSON).
        case any
    }

    let kind: Kind
    let position: Int
    let detail: String
    let expected: Expectation
    /// What the first connection sends after the answer, and whether it then closes (otherwise it stays open).
    let bytes: [UInt8]
    let closes: Bool
    /// The most a follower may have committed when it stops for this change.
    let committedBound: UInt64
    /// The size the replica holds before the changed stream (0: a new replica); the changed stream is from there.
    let resumeFrom: Int64

    var description: String {
        "\(kind.rawValue) at message \(position)\(detail.isEmpty ? "" : " (\(detail))")\(resumeFrom > 0 ? " of the stream from \(resumeFrom)" : "")"
    }

    static func make(_ kind: Kind, _ recorded: RecordedStream, resumeFrom: Int64, _ random: inout SplitMix64) -> HostileMutation {
        let original = recorded.honestMessages(from: resumeFrom)
        var messages = original
        func committedSize(before index: Int) -> UInt64 { RecordedStream.committedSize(before: index, of: original, from: resumeFrom) }
        let recordIndices = messages.indices.filter { messages[$0]["method"] == "subscription.record" }
        let checkpointIndices = messages.indices.filter { messages[$0]["method"] == "subscription.checkpoint" }
        // Checkpoints whose consistency proof is not empty (from a size that is neither 0 nor theirs).
        let provedIndices = checkpointIndices.filter { messages[$0]["params"]?["consistency"]?.arrayValue?.isEmpty == false }
        var position = Int.random(in: 0..<messages.count, using: &random)
        var detail = ""
        var expected = Expectation.mismatch
        var closes = false
        var cut: Int?
        func params(_ index: Int) -> JSONObject { messages[index]["params"]?.objectValue ?? [:] }
        func setParams(_ index: Int, _ params: JSONObject) {
            messages[index] = RPCMessage.notification(method: messages[index]["method"]?.stringValue ?? "", params: .object(params))
        }
        func randomHash() -> String { Base64.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }) }
        func signedCheckpoint(size: UInt64, root: [UInt8]) -> String {
            // The leader holds its key: it can sign anything it likes.
            guard let body = try? Checkpoint(origin: recorded.signer.name, size: size, rootHash: root).body,
                let note = try? SignedNote.sign(text: body, signer: recorded.signer)
            else { return "" }
            return note
        }
        switch kind {
        case .byteFlipped, .byteInserted, .byteDeleted:
            expected = .any
            var line = CanonicalJSON.encode(messages[position])
            let offset = Int.random(in: 0..<line.count, using: &random)
            let byte = UInt8.random(in: 1...255, using: &random)
            switch kind {
            case .byteFlipped: line[offset] ^= byte
            case .byteInserted: line.insert(byte, at: offset)
            default: line.remove(at: offset)
            }
            detail = "byte \(offset), \(byte)"
            var bytes = messages[..<position].flatMap(RecordedStream.line) + line + [0x0A]
            bytes += messages[(position + 1)...].flatMap(RecordedStream.line)
            return HostileMutation(
                kind: kind, position: position, detail: detail, expected: expected, bytes: bytes, closes: false,
                committedBound: committedSize(before: position), resumeFrom: resumeFrom)
        case .recordsSwapped:
            position = recordIndices[Int.random(in: 0..<(recordIndices.count - 1), using: &random)]
            let other = recordIndices.first { $0 > position } ?? position
            messages.swapAt(position, other)
        case .recordRepeated:
            position = recordIndices.randomElement(using: &random) ?? 0
            messages.insert(messages[position], at: position + 1)
            position += 1
        case .recordSkipped:
            position = recordIndices.randomElement(using: &random) ?? 0
            messages.remove(at: position)
        case .foreignRecord, .unrecordedValidEvent:
            // A valid record of another ledger, or a valid event the leader never recorded, at the same seq.
            position = recordIndices.randomElement(using: &random) ?? 0
            var changed = params(position)
            let original = changed["record"] ?? .null
            if kind == .foreignRecord {
                // Its own record at that seq, or (past its end) one of its records given that seq.
                let sequenceNumber = original["seq"]?.integerValue ?? 0
                var foreign = recorded.foreignRecords[Int(sequenceNumber) % recorded.foreignRecords.count].objectValue ?? [:]
                foreign["seq"] = .integer(sequenceNumber)
                changed["record"] = .object(foreign)
            } else {
                changed["record"] = [
                    "event": recorded.unrecordedEvent["event"] ?? .null, "recorded_at": original["recorded_at"] ?? .null,
                    "seq": original["seq"] ?? .null, "sig": recorded.unrecordedEvent["sig"] ?? .null,
                ]
            }
            setParams(position, changed)
        case .recordOfWrongType:
            position = recordIndices.randomElement(using: &random) ?? 0
            var changed = params(position)
            let choices: [JSONValue] = ["a record", 7, [], .null, ["seq": .integer(Int64(position))]]
            let choice = Int.random(in: 0..<(choices.count + 1), using: &random)
            if choice == choices.count { changed.removeValue(forKey: "record") } else { changed["record"] = choices[choice] }
            detail = choice == choices.count ? "no record" : CanonicalJSON.encodeString(choices[choice])
            setParams(position, changed)
        case .sequenceNumberOfWrongType:
            position = recordIndices.randomElement(using: &random) ?? 0
            var changed = params(position)
            var record = changed["record"]?.objectValue ?? [:]
            let choices: [JSONValue] = ["0", -1, .integer(Int64.max), .integer(Int64.min), .number(1.5), .null]
            let choice = choices.randomElement(using: &random) ?? .null
            record["seq"] = choice
            detail = CanonicalJSON.encodeString(choice)
            changed["record"] = .object(record)
            setParams(position, changed)
        case .checkpointEarly:
            // A checkpoint sent before the last record of its commit: for a size not reached yet.
            position = checkpointIndices.randomElement(using: &random) ?? 0
            messages.swapAt(position, position - 1)
            position -= 1
        case .checkpointWithWrongRootSigned, .checkpointForSizeNotReachedSigned:
            position = checkpointIndices.randomElement(using: &random) ?? 0
            var changed = params(position)
            let size = UInt64(changed["size"]?.integerValue ?? 0)
            if kind == .checkpointWithWrongRootSigned {
                changed["checkpoint"] = .string(signedCheckpoint(size: size, root: Base64.decode(randomHash()) ?? []))
            } else {
                let larger = size + UInt64.random(in: 1...3, using: &random)
                detail = "size \(larger)"
                changed["checkpoint"] = .string(signedCheckpoint(size: larger, root: Base64.decode(randomHash()) ?? []))
                changed["size"] = .integer(Int64(larger))
            }
            setParams(position, changed)
        case .checkpointAgain:
            // After a checkpoint, that one again or an older one (not after the last: a follower that holds all the
            // leader's records has stopped by then).
            let later = Int.random(in: 0..<(checkpointIndices.count - 1), using: &random)
            let again = Int.random(in: 0...later, using: &random)
            position = checkpointIndices[later] + 1
            detail = "checkpoint \(again) after checkpoint \(later)"
            messages.insert(messages[checkpointIndices[again]], at: position)
        case .checkpointRepeatedConsistently:
            // A checkpoint again right after itself, from its own size with an empty proof: consistent, but no commit.
            position = (checkpointIndices.dropLast().randomElement(using: &random) ?? 0) + 1
            var repeated = params(position - 1)
            repeated["previous_size"] = repeated["size"]
            repeated["consistency"] = []
            messages.insert(RPCMessage.notification(method: "subscription.checkpoint", params: .object(repeated)), at: position)
        case .checkpointOfAnotherKey:
            // Signed by another key of the same name: it does not verify with the genesis's key.
            position = checkpointIndices.randomElement(using: &random) ?? 0
            var changed = params(position)
            let size = UInt64(changed["size"]?.integerValue ?? 0)
            let body = (try? Checkpoint(origin: recorded.signer.name, size: size, rootHash: MerkleHash.emptyRoot))?.body ?? ""
            let note = recorded.checkpoints[size].flatMap { note in
                try? SignedNote.sign(text: String(note.prefix { $0 != "—" }.dropLast()), signer: NoteSigner(name: recorded.signer.name, privateKey: Ed25519PrivateKey()))
            }
            changed["checkpoint"] = .string(note ?? body)
            setParams(position, changed)
        case .checkpointFieldOfWrongType:
            position = checkpointIndices.randomElement(using: &random) ?? 0
            var changed = params(position)
            let field = ["checkpoint", "size", "previous_size", "consistency"].randomElement(using: &random) ?? "size"
            let choices: [JSONValue] = ["12", .number(2.5), .null, [1], ["size": 1], -5, true]
            let choice = choices.randomElement(using: &random) ?? .null
            changed[field] = choice
            detail = "\(field) = \(CanonicalJSON.encodeString(choice))"
            setParams(position, changed)
        case .previousSizeWrong:
            position = checkpointIndices.randomElement(using: &random) ?? 0
            var changed = params(position)
            let previous = changed["previous_size"]?.integerValue ?? 0
            let wrong = previous + [-1, 1, 2].randomElement(using: &random)!
            detail = "previous_size \(wrong) for \(previous)"
            changed["previous_size"] = .integer(wrong)
            setParams(position, changed)
        case .consistencyHashChanged, .consistencyEmptiedOrFilled, .consistencyTooLong, .consistencyHuge, .consistencyNotBase64:
            position = (kind == .consistencyHashChanged ? provedIndices : checkpointIndices).randomElement(using: &random) ?? 0
            var changed = params(position)
            var proof = changed["consistency"]?.arrayValue ?? []
            switch kind {
            case .consistencyHashChanged:
                let index = Int.random(in: 0..<proof.count, using: &random)
                var hash = Base64.decode(proof[index].stringValue ?? "") ?? []
                hash[Int.random(in: 0..<hash.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
                proof[index] = .string(Base64.encode(hash))
            case .consistencyEmptiedOrFilled: proof = proof.isEmpty ? [.string(randomHash())] : []
            case .consistencyTooLong: proof.append(.string(randomHash()))
            case .consistencyHuge: proof += (0..<10_000).map { _ in .string(randomHash()) }
            default: proof.append(["AAAA*", "", "QQ==", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"].randomElement(using: &random)!)
            }
            detail = "\(proof.count) hashes"
            changed["consistency"] = .array(proof)
            setParams(position, changed)
        case .answerNotAskedFor, .unknownNotification, .longValidLine:
            expected = .ignored
            let choices: [JSONValue] = kind == .answerNotAskedFor
                ? [
                    ["jsonrpc": "2.0", "id": 1, "result": ["size": 0]], recorded.answer(from: 5),
                    ["jsonrpc": "2.0", "id": .null, "error": ["code": -32600, "message": "invalid request"]],
                    ["jsonrpc": "2.0", "id": "subscribe", "error": ["code": 3005, "message": "invalid range", "data": ["code": "invalid_range"]]],
                ]
                : kind == .unknownNotification
                    ? [RPCMessage.notification(method: "subscription.other", params: ["size": -1]), RPCMessage.notification(method: "x", params: "y"), ["jsonrpc": "2.0", "method": 7]]
                    : [RPCMessage.notification(method: "subscription.note", params: ["padding": .string(String(repeating: "x", count: 2 << 20))])]
            let choice = Int.random(in: 0..<choices.count, using: &random)
            detail = "choice \(choice)"
            messages.insert(choices[choice], at: position)
        case .cutMidLine, .closedAtCommitEnd:
            expected = .reconnection
            closes = true
            if kind == .closedAtCommitEnd {
                position = (checkpointIndices.dropLast().randomElement(using: &random) ?? 0) + 1
                cut = messages[..<position].reduce(0) { $0 + RecordedStream.line($1).count }
            } else {
                let before = messages[..<position].reduce(0) { $0 + RecordedStream.line($1).count }
                cut = before + Int.random(in: 1..<(CanonicalJSON.encode(messages[position]).count), using: &random)
            }
        case .lineNotJSON, .subscriptionError:
            expected = .reconnection
            let line: JSONValue = kind == .subscriptionError
                ? RPCMessage.notification(method: "subscription.error", params: ["error": ["code": 6005, "message": "too slow", "data": ["code": "subscriber_too_slow"]], "subscription": "sub-1"])
                : "unused"
            var bytes = messages[..<position].flatMap(RecordedStream.line)
            bytes += kind == .subscriptionError ? RecordedStream.line(line) : Array("{\"jsonrpc\":\"2.0\",\"method\":\n".utf8)
            bytes += messages[position...].flatMap(RecordedStream.line)
            return HostileMutation(
                kind: kind, position: position, detail: detail, expected: expected, bytes: bytes, closes: false,
                committedBound: recorded.size, resumeFrom: resumeFrom)
        }
        var bytes = messages.flatMap(RecordedStream.line)
        if let cut { bytes = Array(bytes[..<cut]) }
        return HostileMutation(
            kind: kind, position: position, detail: detail, expected: expected, bytes: bytes, closes: closes,
            committedBound: expected == .reconnection ? recorded.size : committedSize(before: position), resumeFrom: resumeFrom)
    }
}

/// How one follower run against a changed stream ended, and what its replica held.
struct HostileCaseResult: Sendable {
    enum Outcome: Hashable, Sendable {
        case mismatch, reconnected, ignored, otherFailure, unfinished
    }

    let outcome: Outcome
    let message: String
    let replicaSize: UInt64
    /// What is wrong with the replica (not a prefix at a commit's end, or `verify` refuses it).
    let replicaProblems: [String]
    let committedBound: UInt64

    func problems(expected: HostileMutation.Expectation) -> [String] {
        var problems = replicaProblems
        let allowed: Set<Outcome> = switch expected {
        case .mismatch: [.mismatch]
        case .reconnection: [.reconnected]
        case .ignored: [.ignored]
        case .any: [.mismatch, .reconnected, .ignored]
        }
        if !allowed.contains(outcome) { problems.append("ended \(outcome): \(message)") }
        if outcome == .mismatch && replicaSize > committedBound {
            problems.append("committed \(replicaSize) records, past \(committedBound), the last checkpoint before the change")
        }
        return problems
    }

    /// Follows a fake leader whose first connection sends the changed stream and whose later ones the honest one.
    static func run(_ mutation: HostileMutation, _ recorded: RecordedStream, folder: String) -> HostileCaseResult {
        mkdir(folder, 0o700)
        let leader: FakeLeader
        do {
            // A replica that resumes is first brought to its size on an honest connection (index 0).
            let changedIndex = mutation.resumeFrom > 0 ? 1 : 0
            leader = try FakeLeader(path: folder + "/leader.sock") { connection, index, from in
                let changed = index == changedIndex && from == mutation.resumeFrom
                var bytes = RecordedStream.line(recorded.answer(from: from))
                bytes += changed ? mutation.bytes : recorded.honestMessages(from: from).flatMap(RecordedStream.line)
                guard FakeLeader.write(bytes, to: connection) else { return }
                if !changed || !mutation.closes { FakeLeader.holdOpen(connection) }
            }
        } catch {
            return HostileCaseResult(outcome: .otherFailure, message: "fake leader: \(error)", replicaSize: 0, replicaProblems: [], committedBound: 0)
        }
        defer { leader.stop() }
        var configuration = Follower.Configuration(leader: leader.endpoint, directory: folder + "/replica", actor: "audit", key: recorded.auditor)
        configuration.storageOptions = .init()
        // A commit per leader commit, so that a change finds earlier commits already in the replica.
        configuration.catchUpCommitRecords = 1
        configuration.maximumReconnectDelaySeconds = 1
        let follower: Follower
        do {
            if mutation.resumeFrom > 0 {
                let first = try Follower(configuration)
                var firstSize: UInt64 = 0
                let firstDeadline = Date().addingTimeInterval(30)
                try first.run(shouldStop: { firstSize >= UInt64(mutation.resumeFrom) || Date() > firstDeadline }, progress: { firstSize = $0 })
                first.replica.close()
                guard firstSize == UInt64(mutation.resumeFrom) else {
                    return HostileCaseResult(outcome: .otherFailure, message: "the honest run reached \(firstSize), not \(mutation.resumeFrom)", replicaSize: 0, replicaProblems: [], committedBound: 0)
                }
            }
            follower = try Follower(configuration)
        } catch {
            return HostileCaseResult(outcome: .otherFailure, message: "\(error)", replicaSize: 0, replicaProblems: [], committedBound: 0)
        }
        var size: UInt64 = 0
        var reconnections = 0
        var lastLog = ""
        let deadline = Date().addingTimeInterval(30)
        var outcome = Outcome.unfinished
        var message = ""
        do throws(Follower.Failure) {
            try follower.run(
                shouldStop: { size >= recorded.size || Date() > deadline }, progress: { size = $0 },
                log: { line in
                    if line.contains("reconnecting") { reconnections += 1 }
                    lastLog = line
                })
            outcome = size < recorded.size ? .unfinished : reconnections > 0 ? .reconnected : .ignored
            message = "size \(size), \(reconnections) reconnections; \(lastLog)"
        } catch {
            if case .mismatch = error { outcome = .mismatch } else { outcome = .otherFailure }
            message = "\(error)"
        }
        let replicaSize = follower.replica.size
        if !follower.replica.removeIfEmpty() { follower.replica.close() }
        var problems: [String] = []
        // Every subscription, the first ones and those after a reconnection, is from the end of a commit.
        for from in leader.requestedFrom.withLock({ $0 }) where from != 0 && recorded.checkpoints[UInt64(from)] == nil {
            problems.append("subscribed from \(from), not from a commit's end")
        }
        if replicaSize > 0 { problems += replicaProblems(folder + "/replica", recorded) }
        return HostileCaseResult(outcome: outcome, message: message, replicaSize: replicaSize, replicaProblems: problems, committedBound: mutation.committedBound)
    }

    /// The replica must be the leader's records up to one of its checkpoints, with the leader's checkpoints, and pass
    /// `verify`.
    static func replicaProblems(_ directory: String, _ recorded: RecordedStream) -> [String] {
        do {
            let reader = try LedgerReader.open(directory: directory)
            defer { _ = reader.close() }
            let size = try reader.size()
            var problems: [String] = []
            if recorded.checkpoints[size] == nil { problems.append("the replica's size \(size) is not at the end of a leader's commit") }
            for sequenceNumber in 0..<min(size, recorded.size) where try reader.leafBytes(sequenceNumber: sequenceNumber) != recorded.leaves[Int(sequenceNumber)] {
                problems.append("the replica's record \(sequenceNumber) is not the leader's")
            }
            try reader.forEachCheckpoint { checkpointSize, note in
                if recorded.checkpoints[checkpointSize] != note { problems.append("the replica's checkpoint for \(checkpointSize) is not the leader's") }
                return true
            }
            do throws(LedgerReplay.Failure) {
                _ = try LedgerReplay.run(reader, compareProjections: true)
            } catch {
                problems.append("verify refuses the replica: \(error.error)")
            }
            return problems
        } catch {
            return ["the replica does not open: \(error)"]
        }
    }
}

/// A fake leader on a Unix socket: for each connection it reads the subscription request and hands the connection, its
/// index and the request's `from` to `serve`, then closes it.
final class FakeLeader: @unchecked Sendable {
    // @unchecked: `listener` is set once before the thread starts; the rest is atomic or locked.
    let endpoint: Endpoint
    private let listener: Int32
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    let requestedFrom = Mutex<[Int64]>([])
    /// The first request of each connection, as it came.
    let requests = Mutex<[JSONValue]>([])

    init(path: String, serve: @escaping @Sendable (_ connection: Int32, _ index: Int, _ from: Int64) -> Void) throws {
        endpoint = .unix(path: path)
        listener = try SubscriptionTests.unixListener(at: path)
        Thread { [self] in
            var index = 0
            while !stopping.load(ordering: .relaxed) {
                var waiting = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&waiting, 1, 50) > 0 else { continue }
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { continue }
                // Bounded, so that a leader never waits for ever on a follower that went.
                var timeout = timeval(tv_sec: 5, tv_usec: 0)
                setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                if let request = SubscriptionTests.readLine(connection),
                    let from = request["params"]?["request"]?["params"]?["from"]?.integerValue
                {
                    requestedFrom.withLock { $0.append(from) }
                    requests.withLock { $0.append(request) }
                    serve(connection, index, from)
                }
                close(connection)
                index += 1
            }
            finished.signal()
        }.start()
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        close(listener)
    }

    /// Writes all of `bytes`; false when the follower closed its end.
    static func write(_ bytes: [UInt8], to connection: Int32) -> Bool {
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return false }
            written += count
        }
        return true
    }

    /// Keeps the connection open, as a live leader with nothing new does, until the follower closes it.
    static func holdOpen(_ connection: Int32) {
        var byte: UInt8 = 0
        while true {
            let count = read(connection, &byte, 1)
            if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { return }
        }
    }
}

extension HostileLeaderTests {
    @Test("a line that arrives in many pieces is searched for its end once: 16 MiB of one line cost a linear scan, not a quadratic one")
    func longLineIsSearchedOnce() throws {
        let folder = TemporaryFolder()
        let path = folder.path + "/long.sock"
        let length = 16 << 20
        let listener = try SubscriptionTests.answeringOnce(at: path, with: [UInt8](repeating: 0x78, count: length + 1))
        defer { close(listener) }
        let client = try LineClient(.unix(path: path), timeoutSeconds: 30, maximumLineBytes: length)
        do {
            let message = try client.nextMessage()
            Issue.record("read \(String(describing: message)) from a line past the maximum")
        } catch {
            #expect(error.code == .tooLarge, "\(error)")
        }
        // Counted, not timed: a bound of 8 s on the read was at 5.8 s in a full run under load, its own threads
        // sharing two cores with four busy loops. Every byte that came is looked at once, none again.
        #expect(client.bytesSearched == length + 1, "the search for the line's end looked at \(client.bytesSearched) bytes of \(length + 1)")
    }
}

extension HostileLeaderTests {
    /// Follows `leader` (as a fresh replica in `folder`) and asks it to stop after `stopAfterSeconds`; how long it took
    /// to return after that, and why it stopped.
    static func stopDelay(leader: FakeLeader, folder: String, stopAfterSeconds: Double) throws -> (Duration, Follower.Failure?) {
        let follower = try Follower(.init(leader: leader.endpoint, directory: folder + "/replica", actor: "audit", key: Ed25519PrivateKey()))
        defer { if !follower.replica.removeIfEmpty() { follower.replica.close() } }
        let stopAt = ContinuousClock.now + .milliseconds(Int(stopAfterSeconds * 1000))
        var failure: Follower.Failure?
        do throws(Follower.Failure) {
            try follower.run(shouldStop: { ContinuousClock.now >= stopAt })
        } catch {
            failure = error
        }
        return (ContinuousClock.now - stopAt, failure)
    }

    /// Writes `bytes` a few at a time every 100 ms for at most `seconds`, until the follower closes its end.
    static func trickle(_ bytes: [UInt8], to connection: Int32, piece: Int, seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        var offset = 0
        while Date() < end {
            let next = offset % bytes.count
            let slice = Array(bytes[next..<min(next + piece, bytes.count)])
            guard FakeLeader.write(slice, to: connection) else { return }
            offset += slice.count
            usleep(100_000)
        }
    }

    @Test("a leader that trickles a line without end keeps no follower from stopping: each poll gives up after its timeout")
    func tricklingLeaderLetsTheFollowerStop() throws {
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            let answer: JSONValue = ["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 1, "subscription": "sub-1"]]
            guard FakeLeader.write(RPCMessage.line(answer) + Array(#"{"jsonrpc":"2.0","method":"subscription.note","params":{"padding":""#.utf8), to: connection) else { return }
            HostileLeaderTests.trickle(Array("x".utf8), to: connection, piece: 1, seconds: 12)
        }
        defer { leader.stop() }
        let (delay, failure) = try Self.stopDelay(leader: leader, folder: folder.path, stopAfterSeconds: 1.5)
        #expect(failure == nil, "\(String(describing: failure))")
        // A poll lasts one second (pollSeconds), then the follower looks at its stop condition.
        #expect(delay < .seconds(5), "the follower stopped \(delay) after it was asked to")
    }
}

extension HostileLeaderTests {
    @Test("a leader that sends other messages instead of answering the subscription keeps no follower from stopping")
    func chattyLeaderWithoutAnswerLetsTheFollowerStop() throws {
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, _ in
            let unasked: JSONValue = ["jsonrpc": "2.0", "id": 7, "result": ["size": 0]]
            HostileLeaderTests.trickle(RPCMessage.line(unasked), to: connection, piece: 1 << 10, seconds: 12)
        }
        defer { leader.stop() }
        let (delay, failure) = try Self.stopDelay(leader: leader, folder: folder.path, stopAfterSeconds: 1.5)
        #expect(failure == nil, "\(String(describing: failure))")
        #expect(delay < .seconds(5), "the follower stopped \(delay) after it was asked to")
    }
}

extension HostileLeaderTests {
    @Test("a leader's line longer than any message a leader sends is not read on: the follower drops the connection and subscribes again")
    func overlongLineFromTheLeaderIsNotRead() throws {
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            var bytes = RPCMessage.line(["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 1, "subscription": "sub-1"]])
            // 8 MiB in one notification: the client's default bound (64 MiB) would read and parse it whole.
            bytes += RPCMessage.line(RPCMessage.notification(method: "subscription.note", params: ["padding": .string(String(repeating: "x", count: 8 << 20))]))
            guard FakeLeader.write(bytes, to: connection) else { return }
            FakeLeader.holdOpen(connection)
        }
        defer { leader.stop() }
        let follower = try Follower(.init(leader: leader.endpoint, directory: folder.path + "/replica", actor: "audit", key: Ed25519PrivateKey()))
        defer { if !follower.replica.removeIfEmpty() { follower.replica.close() } }
        let reconnections = Mutex<[String]>([])
        let deadline = ContinuousClock.now + .seconds(10)
        do throws(Follower.Failure) {
            try follower.run(
                shouldStop: { ContinuousClock.now >= deadline || !reconnections.withLock { $0.isEmpty } },
                log: { line in if line.contains("reconnecting") { reconnections.withLock { $0.append(line) } } })
        } catch {
            Issue.record("the follower stopped with \(error)")
        }
        let first = try #require(reconnections.withLock { $0.first }, "the follower read the whole line and stayed subscribed")
        #expect(first.contains("too_large: the server sent a line longer than \(follower.configuration.maximumMessageBytes) bytes"), "\(first)")
        #expect(follower.replica.size == 0)
    }
}

extension HostileLeaderTests {
    @Test("a leader that sends records without a checkpoint past the follower's byte bound is a mismatch, not memory held without end")
    func recordsWithoutACheckpointAreBoundedInBytes() throws {
        // Records with the seq due, each 256 KiB: the follower holds them until a checkpoint that never comes.
        let records = (0..<16).map { Self.paddedRecord($0, paddingBytes: 256 << 10) }
        let (failure, replicaSize) = try Self.followRecordsWithoutACheckpoint(records, maximumHeldRecordBytes: 1 << 20)
        guard case .mismatch(sequenceNumber: 3?, let error)? = failure else {
            Issue.record("the follower stopped with \(String(describing: failure))")
            return
        }
        #expect(error.code == .integrity && error.message.contains("more than 1048576 bytes of records without a checkpoint"), "\(error)")
        #expect(replicaSize == 0)
    }

    @Test("a follower catching up commits once it holds catchUpCommitBytes of records, however few they are")
    func catchUpCommitsByBytes() async throws {
        let recorded = try await RecordedStream.make()
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            // It announces far more records than it sends, and then keeps talking (so that no poll times out): only
            // the bytes held can make the follower commit.
            var answer = recorded.answer(from: from)
            answer = ["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 1_000_000, "subscription": answer["result"]?["subscription"] ?? .null]]
            guard FakeLeader.write(RPCMessage.line(answer) + recorded.honestMessages(from: from).flatMap(RecordedStream.line), to: connection) else { return }
            HostileLeaderTests.trickle(RPCMessage.line(RPCMessage.notification(method: "subscription.note", params: [:])), to: connection, piece: 1 << 10, seconds: 12)
        }
        defer { leader.stop() }
        var configuration = Follower.Configuration(leader: leader.endpoint, directory: folder.path + "/replica", actor: "audit", key: recorded.auditor)
        configuration.storageOptions = .init()
        configuration.catchUpCommitBytes = 1
        let follower = try Follower(configuration)
        defer { if !follower.replica.removeIfEmpty() { follower.replica.close() } }
        let deadline = ContinuousClock.now + .seconds(8)
        var size: UInt64 = 0
        var stoppedByDeadline = false
        var committedWhenStopped: UInt64 = 0
        do throws(Follower.Failure) {
            try follower.run(shouldStop: {
                stoppedByDeadline = size < recorded.size && ContinuousClock.now >= deadline
                committedWhenStopped = size
                return size >= recorded.size || stoppedByDeadline
            }, progress: { size = $0 })
        } catch {
            Issue.record("the follower stopped with \(error)")
        }
        // Committed while following, not only by the flush of stopping.
        #expect(!stoppedByDeadline, "the follower had committed \(committedWhenStopped) of \(recorded.size) records when it was stopped")
    }
}

extension HostileLeaderTests {
    @Test("a checkpoint that covers no record after the previous one is a mismatch at once, not held again each time it comes")
    func repeatedCheckpointIsAMismatch() async throws {
        let recorded = try await RecordedStream.make()
        let folder = TemporaryFolder()
        let firstCommit = Array(recorded.messages.prefix(2))
        var repeatedParams = firstCommit[1]["params"]?.objectValue ?? [:]
        repeatedParams["previous_size"] = repeatedParams["size"]
        repeatedParams["consistency"] = []
        let repeated = RPCMessage.notification(method: "subscription.checkpoint", params: .object(repeatedParams))
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            // Catching up (far more records announced than sent), the follower commits nothing yet; the leader then
            // sends the genesis commit's checkpoint again and again, each consistent with the one before.
            var answer = recorded.answer(from: from)
            answer = ["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 1_000_000, "subscription": answer["result"]?["subscription"] ?? .null]]
            guard FakeLeader.write(RPCMessage.line(answer) + firstCommit.flatMap(RecordedStream.line), to: connection) else { return }
            let again = RPCMessage.line(repeated)
            HostileLeaderTests.trickle(Array(repeating: again, count: 16).flatMap { $0 }, to: connection, piece: 16 * again.count, seconds: 12)
        }
        defer { leader.stop() }
        var configuration = Follower.Configuration(leader: leader.endpoint, directory: folder.path + "/replica", actor: "audit", key: recorded.auditor)
        configuration.storageOptions = .init()
        let follower = try Follower(configuration)
        defer { if !follower.replica.removeIfEmpty() { follower.replica.close() } }
        let started = ContinuousClock.now
        let failure = follower.failureWithin(seconds: 5)
        guard case .mismatch(sequenceNumber: nil, let error)? = failure else {
            Issue.record("the follower stopped with \(String(describing: failure))")
            return
        }
        #expect(error.message == "a checkpoint for size 1 came with no record after the checkpoint for size 1", "\(error)")
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(follower.replica.size == 0)
    }
}

extension HostileLeaderTests {
    @Test("a leader that fails every subscription at once is retried ever more slowly, not once a second for ever")
    func leaderFailingEverySubscriptionIsRetriedMoreSlowly() throws {
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            let answer: JSONValue = ["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 0, "subscription": "sub-1"]]
            let failure = RPCMessage.notification(
                method: "subscription.error",
                params: ["error": ["code": 6005, "message": "too slow", "data": ["code": "subscriber_too_slow"]], "subscription": "sub-1"])
            _ = FakeLeader.write(RPCMessage.line(answer) + RPCMessage.line(failure), to: connection)
        }
        defer { leader.stop() }
        let (_, failure) = try Self.stopDelay(leader: leader, folder: folder.path, stopAfterSeconds: 6.5)
        #expect(failure == nil, "\(String(describing: failure))")
        // Waits of 1, 2 and 4 s: connections at about 0, 1 and 3 s (and 7, past the stop); once a second would be 7.
        let subscriptions = leader.requestedFrom.withLock { $0.count }
        #expect((2...4).contains(subscriptions), "\(subscriptions) subscriptions in 6.5 s")
    }
}

extension HostileLeaderTests {
    @Test("notifications that arrive while a call waits for its answer come out first and in order, also when a later call holds more before all are taken")
    func heldNotificationsKeepTheirOrder() throws {
        let folder = TemporaryFolder()
        let path = folder.path + "/server.sock"
        let listener = try SubscriptionTests.unixListener(at: path)
        defer { close(listener) }
        let served = DispatchSemaphore(value: 0)
        // Each request is answered after three notifications, numbered on across both.
        Thread {
            defer { served.signal() }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var number: Int64 = 0
            for call in 0..<2 {
                guard let request = SubscriptionTests.readLine(connection) else { return }
                var bytes: [UInt8] = []
                for _ in 0..<3 {
                    bytes += RPCMessage.line(RPCMessage.notification(method: "test.note", params: ["number": .integer(number)]))
                    number += 1
                }
                bytes += RPCMessage.line(["jsonrpc": "2.0", "id": request["id"] ?? .null, "result": .integer(Int64(call))])
                guard FakeLeader.write(bytes, to: connection) else { return }
            }
        }.start()
        let client = try LineClient(.unix(path: path), timeoutSeconds: 10)
        #expect(try client.result("test.first") == 0)
        #expect(try client.nextMessage()?["params"]?["number"] == 0)
        // Two of the first call's are still held when the second call holds three more.
        #expect(try client.result("test.second") == 1)
        var numbers: [JSONValue?] = []
        for _ in 0..<5 { numbers.append(try client.nextMessage()?["params"]?["number"]) }
        #expect(numbers == [1, 2, 3, 4, 5])
        served.wait()
        #expect(try client.nextMessage() == nil)
    }
}

extension HostileLeaderTests {
    @Test("a consistency proof of another length than a proof between its two sizes has is a mismatch counted before any of its hashes is decoded: 100 000 items that are not base64, one hash too many, one too few")
    func consistencyProofIsCountedBeforeItsHashesAreDecoded() async throws {
        let recorded = try await RecordedStream.make()
        let folder = TemporaryFolder()
        let honest = recorded.honestMessages(from: 0)
        let position = try #require(honest.indices.first { index in
            honest[index]["method"] == "subscription.checkpoint" && honest[index]["params"]?["consistency"]?.arrayValue?.isEmpty == false
        })
        let params = try #require(honest[position]["params"]?.objectValue)
        let proof = try #require(params["consistency"]?.arrayValue)
        let (previousSize, size) = (params["previous_size"]?.integerValue ?? -1, params["size"]?.integerValue ?? -1)
        let proofs: [[JSONValue]] = [
            // About 2 MiB, under the 4 MiB of a line: before this check each item was decoded until the first that
            // was not base64.
            Array(repeating: "not base64", count: 100_000),
            proof + [proof[0]],
            Array(proof.dropLast()),
        ]
        for (index, changedProof) in proofs.enumerated() {
            var changed = params
            changed["consistency"] = .array(changedProof)
            var messages = honest
            messages[position] = RPCMessage.notification(method: "subscription.checkpoint", params: .object(changed))
            let mutation = HostileMutation(
                kind: .consistencyHuge, position: position, detail: "\(changedProof.count) items", expected: .mismatch,
                bytes: messages.flatMap(RecordedStream.line), closes: false,
                committedBound: RecordedStream.committedSize(before: position, of: honest, from: 0), resumeFrom: 0)
            let result = HostileCaseResult.run(mutation, recorded, folder: folder.path + "/case-\(index)")
            #expect(result.problems(expected: .mismatch).isEmpty, "\(mutation): \(result.problems(expected: .mismatch))")
            let expected = "the consistency proof from size \(previousSize) to \(size) holds \(changedProof.count) hashes, not the \(proof.count) such a proof holds"
            #expect(result.message.contains(expected), "\(mutation): \(result.message)")
        }
    }
}

extension HostileLeaderTests {
    @Test("a server that sends more notifications than a client holds before it answers stops the call with too_large at the bound, before the client has read the rest; at the bound the answer comes, with every notification after it in order")
    func heldNotificationsAreBounded() throws {
        let bound = LineClient.maximumHeldNotifications
        let (listener, port) = try loopbackListener(backlog: 1)
        defer {
            // Wakes the server's accept, should a failure above leave it waiting for a connection that never comes.
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
        // All the same length, so that the bytes sent count the notifications.
        let note = RPCMessage.line(RPCMessage.notification(method: "test.note", params: [:]))
        let floodNotes = 3 * bound
        let floodSentBytes = Locked(0)
        let served = DispatchSemaphore(value: 0)
        // Connection 0: the bound's count of notifications, numbered, then the answer; 1: one more than the bound, then
        // the answer; 2: three times the bound, then the answer, counting what the client's end took.
        Thread {
            defer { served.signal() }
            for plan in 0..<3 {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                defer { close(connection) }
                // Small and fixed (no autotuning): little waits in the kernel once the client stops reading.
                var sendBufferBytes: Int32 = 64 << 10
                setsockopt(connection, SOL_SOCKET, SO_SNDBUF, &sendBufferBytes, socklen_t(MemoryLayout<Int32>.size))
                // Bounded, so that a client that stopped reading without closing cannot hold this thread for ever.
                var timeout = timeval(tv_sec: 60, tv_usec: 0)
                setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                guard let request = SubscriptionTests.readLine(connection) else { return }
                let answer = RPCMessage.line(["jsonrpc": "2.0", "id": request["id"] ?? .null, "result": .integer(Int64(plan))])
                switch plan {
                case 0:
                    var bytes: [UInt8] = []
                    for number in 0..<bound {
                        bytes += Array(#"{"jsonrpc":"2.0","method":"test.note","params":{"number":\#(number)}}"#.utf8) + [0x0A]
                    }
                    _ = FakeLeader.write(bytes + answer, to: connection)
                case 1:
                    _ = FakeLeader.write(Array(repeating: note, count: bound + 1).flatMap { $0 } + answer, to: connection)
                default:
                    let block = Array(repeating: note, count: 1000).flatMap { $0 }
                    var written = 0
                    let bytes = Array(repeating: block, count: floodNotes / 1000).flatMap { $0 } + answer
                    // Counts what send took, until the client closes its end (or takes everything).
                    while written < bytes.count {
                        let count = bytes[written...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        guard count > 0 else { break }
                        written += count
                        floodSentBytes.withLock { $0 = written }
                    }
                }
            }
        }.start()
        let endpoint = Endpoint.tcp(host: "127.0.0.1", port: port)

        do {
            let client = try LineClient(endpoint, timeoutSeconds: 60)
            #expect(try client.result("test.atTheBound") == 0)
            var firstOutOfOrder: (index: Int, message: JSONValue?)?
            for index in 0..<bound where firstOutOfOrder == nil {
                let message = try client.nextMessage()
                if message?["params"]?["number"] != .integer(Int64(index)) { firstOutOfOrder = (index, message) }
            }
            #expect(firstOutOfOrder == nil, "notification \(firstOutOfOrder?.index ?? 0) held: \(String(describing: firstOutOfOrder?.message))")
            #expect(try client.nextMessage() == nil)
        }

        for (method, receiveBufferBytes) in [("test.pastTheBound", nil), ("test.flood", 64 << 10)] as [(String, Int?)] {
            // A small, fixed receive buffer for the flood: what the client has not read waits in few bytes.
            let client = try LineClient(endpoint, timeoutSeconds: 60, receiveBufferBytes: receiveBufferBytes)
            do {
                let result = try client.call(method)
                Issue.record("\(method) gave \(result) after more than \(bound) notifications")
            } catch {
                #expect(error.code == .tooLarge, "\(method): \(error)")
                #expect(error.message == "more than \(bound) notifications arrived while waiting for an answer", "\(method): \(error)")
            }
        }
        // The clients are closed (their last use is above): the flood's sender stops at the first refused send.
        served.wait()
        // What the client read before it refused (the bound and the one past it), its unread buffer (one 64 KiB
        // receive) and both kernel buffers (each 64 KiB, which Linux doubles) are all that may have left the sender:
        // some 320 KiB past the bound, where 1 MiB is allowed and the rest of the flood is 10 MB.
        let sent = floodSentBytes.withLock { $0 }
        #expect(sent <= (bound + 1) * note.count + (1 << 20), "the server sent \(sent) bytes of \(floodNotes * note.count) before the client stopped reading")
    }
}

extension HostileLeaderTests {
    @Test("a leader that sends more than 8192 records without a checkpoint is a mismatch at the record past the bound, and the replica keeps its last whole commit")
    func recordsWithoutACheckpointAreBoundedInNumber() async throws {
        let recorded = try await RecordedStream.make()
        let folder = TemporaryFolder()
        let bound = ReplicaLedger.maximumRecordsPerAppend
        // The leader's genesis commit (its record and checkpoint), which the follower commits before the rest comes.
        let firstCommit = Array(recorded.messages.prefix(2))
        let committedSize = try #require(firstCommit[1]["params"]?["size"]?.integerValue)
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            var answer = recorded.answer(from: from)
            answer = ["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 1_000_000, "subscription": answer["result"]?["subscription"] ?? .null]]
            var bytes = RPCMessage.line(answer) + firstCommit.flatMap(RecordedStream.line)
            // One record more than the bound, each with the seq due and no checkpoint after them. The follower counts
            // records before it parses or verifies any (Follower.swift reads only a record's seq until a checkpoint
            // makes it commit, and ReplicaLedger.append refuses more than the bound before it parses one), so their
            // contents do not matter: 8193 signed events that verify would only make the test slower.
            for sequenceNumber in committedSize...(committedSize + Int64(bound)) {
                bytes += RPCMessage.line(RPCMessage.notification(
                    method: "subscription.record", params: ["record": ["seq": .integer(sequenceNumber)], "subscription": "sub-1"]))
            }
            guard FakeLeader.write(bytes, to: connection) else { return }
            FakeLeader.holdOpen(connection)
        }
        defer { leader.stop() }
        var configuration = Follower.Configuration(leader: leader.endpoint, directory: folder.path + "/replica", actor: "audit", key: recorded.auditor)
        configuration.storageOptions = .init()
        // Commits the genesis commit at its checkpoint, although the leader announces far more records.
        configuration.catchUpCommitRecords = 1
        let follower = try Follower(configuration)
        let failure = follower.failureWithin(seconds: 20)
        let replicaSize = follower.replica.size
        if !follower.replica.removeIfEmpty() { follower.replica.close() }
        if case .mismatch(let sequenceNumber, let error)? = failure {
            #expect(sequenceNumber == UInt64(committedSize) + UInt64(bound))
            #expect(error.code == .integrity && error.message == "the leader sent more than \(bound) records without a checkpoint", "\(error)")
        } else {
            Issue.record("the follower stopped with \(String(describing: failure))")
        }
        #expect(replicaSize == UInt64(committedSize))
        #expect(HostileCaseResult.replicaProblems(folder.path + "/replica", recorded).isEmpty)
        #expect(leader.requestedFrom.withLock { $0 } == [0])
    }
}

extension HostileLeaderTests {
    /// How a follower of a new replica stops when its leader's first connection sends `messages` after the answer; the
    /// replica must hold nothing then.
    static func mismatch(following messages: [JSONValue], _ recorded: RecordedStream, pinnedVerifierKey: String? = nil) throws -> Follower.Failure? {
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            guard FakeLeader.write(RPCMessage.line(recorded.answer(from: from)) + messages.flatMap(RecordedStream.line), to: connection) else { return }
            FakeLeader.holdOpen(connection)
        }
        defer { leader.stop() }
        var configuration = Follower.Configuration(leader: leader.endpoint, directory: folder.path + "/replica", actor: "audit", key: recorded.auditor, pinnedVerifierKey: pinnedVerifierKey)
        configuration.storageOptions = .init()
        let follower = try Follower(configuration)
        defer { if !follower.replica.removeIfEmpty() { follower.replica.close() } }
        let failure = follower.failureWithin(seconds: 10)
        #expect(follower.replica.size == 0)
        return failure
    }

    @Test("a record or checkpoint that does not fit what came before is a mismatch as it arrives, named for what it is (ReplicaLedger.append would refuse it later, named for something else): a record of another seq at the seq due; a genesis naming another checkpoint key than the pinned one at seq 0; a checkpoint for another size than the records received, or whose root they do not give, at no seq, since any record below may differ, even signed by the leader's key and consistent (from size 0 any root is)")
    func misfitsAreNamedAsTheyArrive() async throws {
        let recorded = try await RecordedStream.make()
        let genesisRecord = recorded.messages[0]
        let genesisCheckpoint = try #require(recorded.messages[1]["params"]?.objectValue)
        #expect(genesisCheckpoint["size"] == 1 && genesisCheckpoint["previous_size"] == 0 && genesisCheckpoint["consistency"] == [])
        // The tree of the genesis record alone: its leaf hash, of the bytes the follower takes.
        let genesisRoot = MerkleHash.leaf(CanonicalJSON.encode(try #require(genesisRecord["params"]?["record"])))
        // The leader holds its checkpoint key: it can sign any size and root.
        func signedCheckpoint(size: UInt64, root: [UInt8]) throws -> JSONValue {
            var params = genesisCheckpoint
            params["size"] = .integer(Int64(size))
            let body = try Checkpoint(origin: recorded.signer.name, size: size, rootHash: root).body
            params["checkpoint"] = .string(try SignedNote.sign(text: body, signer: recorded.signer))
            return RPCMessage.notification(method: "subscription.checkpoint", params: .object(params))
        }
        var renumbered = try #require(genesisRecord["params"]?.objectValue)
        var record = try #require(renumbered["record"]?.objectValue)
        record["seq"] = 1
        renumbered["record"] = .object(record)
        let otherRoot = MerkleHash.leaf(Array("not the genesis record".utf8))
        let pinned = try NoteVerifier(name: recorded.signer.name, publicKey: Ed25519PrivateKey().publicKey).verifierKey
        let cases: [(messages: [JSONValue], pinned: String?, sequenceNumber: UInt64?, message: String)] = [
            ([RPCMessage.notification(method: "subscription.record", params: .object(renumbered)), recorded.messages[1]], nil, 0, "the leader sent seq 1 where seq 0 was due"),
            ([genesisRecord, recorded.messages[1]], pinned, 0, "the leader's genesis names checkpoint key \(recorded.signer.verifier.verifierKey), not the pinned \(pinned)"),
            ([genesisRecord, try signedCheckpoint(size: 2, root: genesisRoot)], nil, nil, "a checkpoint for size 2 arrived after 1 records"),
            ([genesisRecord, try signedCheckpoint(size: 1, root: otherRoot)], nil, nil,
             "the checkpoint for size 1 has root \(Base64.encode(otherRoot)); the records 0 to 0 give \(Base64.encode(genesisRoot))"),
        ]
        for (messages, pinnedVerifierKey, sequenceNumber, message) in cases {
            let failure = try Self.mismatch(following: messages, recorded, pinnedVerifierKey: pinnedVerifierKey)
            guard case .mismatch(let named, let error)? = failure else {
                Issue.record("the follower stopped with \(String(describing: failure)), not a mismatch: \(message)")
                continue
            }
            #expect(named == sequenceNumber && error.message == message, "\(String(describing: named)): \(error)")
        }
    }
}

extension HostileLeaderTests {
    /// A record with the seq due and `paddingBytes` of padding: no event, held until a checkpoint comes.
    static func paddedRecord(_ sequenceNumber: Int, paddingBytes: Int) -> JSONValue {
        ["seq": .integer(Int64(sequenceNumber)), "padding": .string(String(repeating: "x", count: paddingBytes))]
    }

    @Test("records without a checkpoint up to exactly the follower's byte bound are held: the mismatch is at the record past it")
    func recordsUpToTheByteBoundAreHeld() throws {
        let records = (0..<8).map { Self.paddedRecord($0, paddingBytes: 64 << 10) }
        // The bytes of records 0 to 2 exactly, as the follower counts them (their canonical form).
        let bound = records.prefix(3).reduce(0) { $0 + CanonicalJSON.encode($1).count }
        let (failure, replicaSize) = try Self.followRecordsWithoutACheckpoint(records, maximumHeldRecordBytes: bound)
        guard case .mismatch(sequenceNumber: 3?, let error)? = failure else {
            Issue.record("the follower stopped with \(String(describing: failure))")
            return
        }
        #expect(error.code == .integrity && error.message.contains("more than \(bound) bytes of records without a checkpoint"), "\(error)")
        #expect(replicaSize == 0)
    }

    /// A leader that answers the subscription with `records` and no checkpoint, then holds the connection open, and a
    /// follower that holds at most `maximumHeldRecordBytes` of records without a checkpoint: what the follower
    /// stopped with within 10 s, and the replica's size then.
    static func followRecordsWithoutACheckpoint(
        _ records: [JSONValue], maximumHeldRecordBytes: Int
    ) throws -> (failure: Follower.Failure?, replicaSize: UInt64) {
        let folder = TemporaryFolder()
        let leader = try FakeLeader(path: folder.path + "/leader.sock") { connection, _, from in
            var bytes = RPCMessage.line(["jsonrpc": "2.0", "id": "subscribe", "result": ["from": .integer(from), "size": 100, "subscription": "sub-1"]])
            for record in records {
                bytes += RPCMessage.line(RPCMessage.notification(method: "subscription.record", params: ["record": record, "subscription": "sub-1"]))
            }
            guard FakeLeader.write(bytes, to: connection) else { return }
            FakeLeader.holdOpen(connection)
        }
        defer { leader.stop() }
        var configuration = Follower.Configuration(leader: leader.endpoint, directory: folder.path + "/replica", actor: "audit", key: Ed25519PrivateKey())
        configuration.maximumHeldRecordBytes = maximumHeldRecordBytes
        let follower = try Follower(configuration)
        defer { if !follower.replica.removeIfEmpty() { follower.replica.close() } }
        return (follower.failureWithin(seconds: 10), follower.replica.size)
    }
}
