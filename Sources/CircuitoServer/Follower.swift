import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import Glibc

/// A verifying replica by subscription (`circuito follow`).
///
/// It subscribes to the leader from its own size (a signed read: the log is for auditors and the authority), and
/// for every record and checkpoint it receives it checks:
/// - each record exactly as `verify` does (canonical form, seq, `recorded_at`, signatures, the rulebook against
///   the replica's own state) — done by `ReplicaLedger.append` before anything is written;
/// - each checkpoint's signature (key from the genesis record, or the pinned verifier key), size and root against
///   the tree rebuilt from the records;
/// - each checkpoint against the one before it with the RFC 9162 consistency proof that comes with it, so the
///   leader can never present a history that is not an extension of what the replica already holds.
/// Any mismatch stops it with a clear error and writes nothing of the offending commit. A broken connection (or
/// being cut off as a slow subscriber) is not a mismatch: it reconnects and resumes from its own size.
public final class Follower {
    public struct Configuration: Sendable {
        public var leader: Endpoint
        public var directory: String
        /// The auditor (or authority) the subscription is signed as.
        public var actor: String
        public var key: Ed25519PrivateKey
        public var pinnedVerifierKey: String?
        /// The replica's LMDB options: the server's, unless an operator sets the map size (`--map-size`).
        public var storageOptions: LMDBEnvironment.Options = .server
        /// Records gathered (whole leader commits) before the replica commits while catching up.
        public var catchUpCommitRecords = 4096
        /// Bytes of records gathered before the replica commits while catching up, whatever their number.
        public var catchUpCommitBytes = 64 << 20
        /// The most bytes of records held uncommitted: a leader that sends more without a checkpoint is refused, so
        /// that it cannot make the follower hold memory without end. Above `catchUpCommitBytes` and the largest
        /// commit a leader makes (4096 records of events of at most 64 KiB each, about 256 MiB).
        public var maximumHeldRecordBytes = 512 << 20
        /// Bytes of one message from the leader: past it the line is not read on (nor parsed) and the connection is
        /// made again, as a broken one. The largest a leader sends is a record of one event (at most 64 KiB,
        /// `EventLimits.maximumSignedEventBytes`); the rest is room for messages a later leader may add, which a
        /// follower ignores. (The client's own default, 64 MiB, is for pages of reads.)
        public var maximumMessageBytes = 4 << 20
        /// How long a read waits before the follower looks at its stop condition.
        public var pollSeconds = 1
        /// The heartbeat asked of the leader (`subscribe`'s `heartbeat_seconds`; nil: none). A leader that then sends
        /// nothing for three of them is taken as a broken connection: one that went silent (wedged, or behind a
        /// proxy that keeps the connection open) would otherwise look like a quiet ledger for good.
        public var heartbeatSeconds: Int? = 30
        /// Wait between reconnection attempts (doubling up to `maximumReconnectDelaySeconds`).
        public var maximumReconnectDelaySeconds = 30
        /// The wall clock the subscription's `ts` is signed with (milliseconds since 1970); tests step it.
        public var clockMilliseconds: @Sendable () -> Int64 = { Ledger.systemClockMilliseconds() }

        public init(leader: Endpoint, directory: String, actor: String, key: Ed25519PrivateKey, pinnedVerifierKey: String? = nil) {
            self.leader = leader
            self.directory = directory
            self.actor = actor
            self.key = key
            self.pinnedVerifierKey = pinnedVerifierKey
        }
    }

    /// Why following stopped.
    public enum Failure: Error, CustomStringConvertible {
        /// The leader sent something that does not verify: the replica refuses it and stops.
        case mismatch(sequenceNumber: UInt64?, LedgerError)
        /// The leader refused the subscription (not authorised, bad key, …).
        case refused(RPCError)
        /// The replica's own storage failed.
        case local(LedgerError)

        public var description: String {
            switch self {
            case .mismatch(let sequenceNumber?, let error):
                let note = LedgerReplay.olderRulesNote(error).map { "; note: " + $0 + ", or follow it with that version" } ?? ""
                return "mismatch at seq \(sequenceNumber): \(error)" + note
            case .mismatch(nil, let error): return "mismatch: \(error)"
            case .refused(let error): return "the leader refused the subscription: \(error)"
            case .local(let error): return "replica storage: \(error)"
            }
        }
    }

    public let configuration: Configuration
    public let replica: ReplicaLedger

    public init(_ configuration: Configuration) throws(LedgerError) {
        self.configuration = configuration
        self.replica = try ReplicaLedger.open(directory: configuration.directory, pinnedVerifierKey: configuration.pinnedVerifierKey, options: configuration.storageOptions)
    }

    /// Follows until `shouldStop` returns true (looked at least every `pollSeconds`) or a failure. `progress` is
    /// called after each replica commit with the new size.
    public func run(shouldStop: () -> Bool, progress: (UInt64) -> Void = { _ in }, log: (String) -> Void = { _ in }) throws(Failure) {
        var delaySeconds = 1
        while !shouldStop() {
            var connected: (at: ContinuousClock.Instant, size: UInt64)?
            do throws(FollowError) {
                let client: LineClient
                do throws(LedgerError) {
                    client = try LineClient(
                        configuration.leader, timeoutSeconds: configuration.pollSeconds, maximumLineBytes: configuration.maximumMessageBytes)
                } catch {
                    throw .connection(error)
                }
                connected = (.now, replica.size)
                try follow(client, shouldStop: shouldStop, progress: progress, log: log)
                return
            } catch {
                guard case .connection(let error) = error else {
                    if case .failure(let failure) = error { throw failure }
                    return
                }
                // The wait starts over only after a connection that brought records or lasted the longest wait: one
                // that connects and then fails at once each time (a leader that answers with subscription.error, a
                // proxy that closes at once) is retried ever more slowly, as an unreachable one is.
                if let connected,
                    replica.size > connected.size || ContinuousClock.now - connected.at >= .seconds(configuration.maximumReconnectDelaySeconds)
                {
                    delaySeconds = 1
                }
                // Transport trouble only (verification failures stop above): retry from the replica's size.
                log("connection to \(configuration.leader): \(error); reconnecting in \(delaySeconds) s")
                var waited = 0
                while waited < delaySeconds && !shouldStop() {
                    sleep(1)
                    waited += 1
                }
                delaySeconds = min(delaySeconds * 2, configuration.maximumReconnectDelaySeconds)
            }
        }
    }

    private enum FollowError: Error {
        case failure(Failure)
        case connection(LedgerError)
    }

    /// One subscription: returns when asked to stop; throws `.connection` when the connection is lost and
    /// `.failure` on a mismatch.
    private func follow(_ client: LineClient, shouldStop: () -> Bool, progress: (UInt64) -> Void, log: (String) -> Void) throws(FollowError) {
        let start = replica.size
        let requestID: JSONValue = "subscribe"
        // Asked on every connection, also of a leader that refused it before: it may have been upgraded since.
        var heartbeatSeconds = configuration.heartbeatSeconds
        /// Signed anew for each attempt: a nonce is single-use.
        func sendSubscription() throws(FollowError) {
            var members: JSONObject = ["from": .integer(Int64(start))]
            if let heartbeatSeconds { members["heartbeat_seconds"] = .integer(Int64(heartbeatSeconds)) }
            let params = ReadAuthorisation.sign(
                method: "subscribe", params: .object(members), actor: configuration.actor, key: configuration.key,
                nowMilliseconds: configuration.clockMilliseconds())
            do throws(LedgerError) {
                try client.send(RPCMessage.request(id: requestID, method: "subscribe", params: params))
            } catch {
                throw .connection(error)
            }
        }
        // Sent once, or twice when the leader does not know `heartbeat_seconds`; the answer may take longer than one
        // poll.
        try sendSubscription()
        var subscription: JSONValue?
        // Bounded in time whatever arrives meanwhile: a leader sending other messages instead of the answer must not
        // hold the follower (nor keep it from stopping).
        let answerSeconds = 60 * configuration.pollSeconds
        let answerDeadline = ContinuousClock.now + .seconds(answerSeconds)
        while subscription == nil {
            guard ContinuousClock.now < answerDeadline, !shouldStop() else {
                throw .connection(LedgerError(.connectionFailed, "the leader did not answer the subscription within \(answerSeconds) s"))
            }
            let polled: LineClient.Poll
            do throws(LedgerError) { polled = try client.poll() } catch { throw .connection(error) }
            switch polled {
            case .timedOut:
                continue
            case .closed:
                throw .connection(LedgerError(.connectionFailed, "the leader closed the connection before answering the subscription"))
            case .message(let message) where message["id"] == requestID:
                if let error = message["error"] {
                    let refusal = RPCError(json: error) ?? RPCError.internalError("an unreadable error")
                    if heartbeatSeconds != nil, SubscriptionHeartbeat.isUnknownToServer(refusal) {
                        // A leader older than heartbeats: follow it without them (a silent one is then found only
                        // by the keepalive probes, if its connection dies).
                        log("the leader does not send heartbeats (an older circuito); following it without them")
                        heartbeatSeconds = nil
                        try sendSubscription()
                        continue
                    }
                    if refusal.code == LedgerError.Code.invalidRange.number {
                        // Asked from the replica's own size: the leader holds fewer records than the replica has.
                        throw .failure(.mismatch(sequenceNumber: nil, LedgerError(
                            .integrity,
                            "the leader holds fewer records than this replica's \(start) (\(refusal.message)): it lost records (restored from an older backup?) or is another ledger; the replica is kept as it is")))
                    }
                    // Refusals that last only a while are reasons to wait, not to stop: clocks that differ by more
                    // than the window until one of them is set right (a clock step, a machine resumed), a leader
                    // at a bound or stopping (to restart).
                    let transients: [LedgerError.Code] = [.requestExpired, .overloaded, .shuttingDown]
                    if let transient = transients.first(where: { $0.number == refusal.code }) {
                        throw .connection(LedgerError(transient, "the leader refused the subscription: \(refusal.message)"))
                    }
                    throw .failure(.refused(refusal))
                }
                subscription = message["result"] ?? .null
            case .message:
                continue
            }
        }
        guard let subscription else { return }
        let catchUpSize = UInt64(max(0, subscription["size"]?.integerValue ?? 0))
        log("subscribed to \(configuration.leader) from seq \(start); the leader holds \(catchUpSize) records")
        var state = StreamState(frontier: replica.frontier, previousCheckpointSize: start, previousRoot: replica.frontier.root)
        // With heartbeats asked for, three of them without a message means the leader went silent.
        let silenceLimit = heartbeatSeconds.map { Duration.seconds(SubscriptionHeartbeat.missedBeforeSilence * $0) }
        var lastMessageAt = ContinuousClock.now
        while true {
            if shouldStop() {
                try flush(&state, progress: progress)
                return
            }
            let message: JSONValue
            let polled: LineClient.Poll
            do throws(LedgerError) { polled = try client.poll() } catch {
                // What was verified up to the last checkpoint is kept, as when the leader closes cleanly.
                try flush(&state, progress: progress)
                throw .connection(error)
            }
            switch polled {
            case .timedOut:
                // Judged before the flush: a long commit of the replica's is no silence of the leader's (what it
                // sent meanwhile waits in the socket for the next poll).
                let silent = silenceLimit.map { ContinuousClock.now - lastMessageAt > $0 } ?? false
                try flush(&state, progress: progress)
                if silent, let heartbeatSeconds {
                    throw .connection(SubscriptionHeartbeat.silence(of: "the leader", heartbeatSeconds: heartbeatSeconds))
                }
                continue
            case .closed:
                try flush(&state, progress: progress)
                throw .connection(LedgerError(.connectionFailed, "the leader closed the connection"))
            case .message(let value):
                message = value
                lastMessageAt = ContinuousClock.now
            }
            let params = message["params"] ?? .null
            switch message["method"]?.stringValue {
            case "subscription.record":
                guard let record = params["record"] else { throw mismatch(nil, "a subscription.record without a record") }
                let leafBytes = CanonicalJSON.encode(record)
                let expected = state.frontier.size
                guard record["seq"]?.integerValue == Int64(expected) else {
                    throw mismatch(expected, "the leader sent seq \(record["seq"].map { CanonicalJSON.encodeString($0) } ?? "none") where seq \(expected) was due")
                }
                guard state.leaves.count < ReplicaLedger.maximumRecordsPerAppend else {
                    throw mismatch(expected, "the leader sent more than \(ReplicaLedger.maximumRecordsPerAppend) records without a checkpoint")
                }
                guard state.leafByteCount + leafBytes.count <= configuration.maximumHeldRecordBytes else {
                    throw mismatch(expected, "the leader sent more than \(configuration.maximumHeldRecordBytes) bytes of records without a checkpoint")
                }
                _ = state.frontier.append(leafHash: MerkleHash.leaf(leafBytes))
                state.leaves.append(leafBytes)
                state.leafByteCount += leafBytes.count
            case "subscription.checkpoint":
                try checkCheckpoint(params, &state)
                if state.frontier.size >= catchUpSize || state.leaves.count >= configuration.catchUpCommitRecords
                    || state.leafByteCount >= configuration.catchUpCommitBytes
                {
                    try flush(&state, progress: progress)
                }
            case "subscription.heartbeat":
                // Sent only once the leader has sent every record, so its size is the replica's with what arrived.
                guard case .integer(let size)? = params["size"], size >= 0 else { throw mismatch(nil, "a malformed subscription.heartbeat") }
                guard UInt64(size) == state.frontier.size else {
                    throw mismatch(nil, "a heartbeat for size \(size) arrived after \(state.frontier.size) records")
                }
            case "subscription.error":
                let error = params["error"].flatMap(RPCError.init(json:)) ?? RPCError.internalError("an unreadable subscription error")
                try flush(&state, progress: progress)
                throw .connection(LedgerError(.connectionFailed, "the leader ended the subscription: \(error)"))
            default:
                continue
            }
        }
    }

    /// What arrived and is not yet committed, and the tree as of the last record received.
    private struct StreamState {
        var frontier: MerkleFrontier
        var previousCheckpointSize: UInt64
        var previousRoot: [UInt8]
        var leaves: [[UInt8]] = []
        /// The bytes of `leaves`.
        var leafByteCount = 0
        var checkpoints: [(size: UInt64, note: String)] = []
    }

    private func checkCheckpoint(_ params: JSONValue, _ state: inout StreamState) throws(FollowError) {
        // Sizes are counts: a negative one is malformed, not a size to compare (UInt64 of it would trap).
        guard case .string(let note)? = params["checkpoint"], case .integer(let size)? = params["size"], size >= 0,
            case .integer(let previousSize)? = params["previous_size"], previousSize >= 0,
            case .array(let proofItems)? = params["consistency"]
        else { throw mismatch(nil, "a malformed subscription.checkpoint") }
        guard UInt64(size) == state.frontier.size else {
            throw mismatch(nil, "a checkpoint for size \(size) arrived after \(state.frontier.size) records")
        }
        // Sizes only grow from one checkpoint to the next (one per leader commit): a checkpoint again, even with a
        // consistent empty proof, would be held once more each time it came, without bound while catching up.
        guard UInt64(size) > state.previousCheckpointSize else {
            throw mismatch(nil, "a checkpoint for size \(size) came with no record after the checkpoint for size \(state.previousCheckpointSize)")
        }
        guard UInt64(previousSize) == state.previousCheckpointSize else {
            throw mismatch(nil, "the checkpoint's consistency proof starts at size \(previousSize), not at \(state.previousCheckpointSize)")
        }
        let verifier = try checkpointVerifier(state)
        let checkpoint: Checkpoint
        do throws(LedgerError) {
            checkpoint = try Checkpoint(parsing: try SignedNote.open(note, verifier: verifier))
        } catch {
            throw mismatch(nil, "the checkpoint for size \(size) does not verify: \(error.message)")
        }
        guard checkpoint.size == UInt64(size), checkpoint.rootHash == state.frontier.root else {
            // The records up to this size do not give the root the leader signed: some record below differs (a
            // leader whose history forked from the replica's), not one at this size.
            throw mismatch(nil, "the checkpoint for size \(size) has root \(Base64.encode(checkpoint.rootHash)); the records 0 to \(size - 1) give \(Base64.encode(state.frontier.root))")
        }
        // Counted before any hash is decoded: a proof between two sizes has exactly one length (at most
        // ⌈log2 size⌉ + 1 hashes), and a leader's line of 4 MiB holds far more items than that.
        let proofLength = MerkleProofs.consistencyProofLength(firstSize: state.previousCheckpointSize, secondSize: checkpoint.size) ?? 0
        guard proofItems.count == proofLength else {
            throw mismatch(nil, "the consistency proof from size \(state.previousCheckpointSize) to \(checkpoint.size) holds \(proofItems.count) hashes, not the \(proofLength) such a proof holds")
        }
        var proof: [[UInt8]] = []
        proof.reserveCapacity(proofLength)
        for item in proofItems {
            guard case .string(let text) = item, let hash = Base64.decode(text) else { throw mismatch(nil, "a consistency proof hash is not base64") }
            proof.append(hash)
        }
        guard MerkleProofs.verifyConsistency(
            firstSize: state.previousCheckpointSize, secondSize: checkpoint.size, firstRoot: state.previousRoot,
            secondRoot: checkpoint.rootHash, proof: proof)
        else {
            throw mismatch(nil, "the consistency proof from size \(state.previousCheckpointSize) to \(checkpoint.size) does not verify")
        }
        state.checkpoints.append((checkpoint.size, note))
        state.previousCheckpointSize = checkpoint.size
        state.previousRoot = checkpoint.rootHash
    }

    /// The leader's checkpoint verifier: the replica's (from its genesis), or from the genesis record just received.
    private func checkpointVerifier(_ state: StreamState) throws(FollowError) -> NoteVerifier {
        if let verifier = replica.checkpointVerifier { return verifier }
        guard let first = state.leaves.first else { throw mismatch(nil, "a checkpoint arrived before any record") }
        let record: Record
        do throws(LedgerError) { record = try Record(leafBytes: first) } catch { throw mismatch(0, "the first record: \(error)") }
        let body = record.signedEvent.event.body
        guard record.sequenceNumber == 0, record.signedEvent.event.type == "ledger.genesis",
            case .string(let origin)? = body["origin"], case .string(let keyText)? = body["checkpoint_key"],
            let key = Multikey.decodePublicKey(keyText)
        else { throw mismatch(0, "the first record is not a genesis naming a checkpoint key") }
        let verifier: NoteVerifier
        do throws(LedgerError) { verifier = try NoteVerifier(name: origin, publicKey: key) } catch { throw mismatch(0, "the genesis checkpoint key: \(error)") }
        if let pinned = replica.pinnedVerifierKey, pinned != verifier.verifierKey {
            throw mismatch(0, "the leader's genesis names checkpoint key \(verifier.verifierKey), not the pinned \(pinned)")
        }
        return verifier
    }

    /// Commits what arrived up to the last checkpoint received.
    private func flush(_ state: inout StreamState, progress: (UInt64) -> Void) throws(FollowError) {
        guard let last = state.checkpoints.last else { return }
        let count = Int(last.size - replica.size)
        do throws(LedgerReplay.Failure) {
            try replica.append(leaves: Array(state.leaves.prefix(count)), checkpoints: state.checkpoints)
        } catch {
            if error.error.code == .storage || error.error.code == .mapFull { throw .failure(.local(error.error)) }
            throw .failure(.mismatch(sequenceNumber: error.sequenceNumber, error.error))
        }
        state.leafByteCount -= state.leaves.prefix(count).reduce(0) { $0 + $1.count }
        state.leaves.removeFirst(count)
        state.checkpoints.removeAll()
        progress(replica.size)
    }

    private func mismatch(_ sequenceNumber: UInt64?, _ message: String) -> FollowError {
        .failure(.mismatch(sequenceNumber: sequenceNumber, LedgerError(.integrity, message)))
    }
}
