import CircuitoCore
import CircuitoCrypto
import CircuitoStorage

/// Signed read requests: reads of personal or account data carry, as their params,
///
///     {"request":{"method":…,"params":{…},"actor":…,"key":<Multikey>,"ts":<RFC 3339 UTC>,"nonce":…},"sig":<base64>}
///
/// with `sig` = Ed25519 over `circuito.read.v1` ‖ 0x0A ‖ JCS(request) by an active key of `actor`. The request is
/// valid for the method it names, within ±`readRequestWindowSeconds` of the server's clock, and once: its nonce
/// is remembered for twice the window, so a captured request cannot be replayed.
public enum ReadAuthorisation {
    public static let signingDomain: [UInt8] = Array("circuito.read.v1\n".utf8)
    public static let maximumNonceBytes = 128

    public static func signingBytes(_ request: JSONValue) -> [UInt8] { signingDomain + CanonicalJSON.encode(request) }

    /// The params of a signed read request (client side).
    public static func sign(
        method: String, params: JSONValue, actor: String, key: Ed25519PrivateKey,
        nowMilliseconds: Int64, nonce: String = "n-" + SecureRandom.bytes(count: 16).hexString
    ) -> JSONValue {
        let request: JSONValue = .object([
            "method": .string(method), "params": params, "actor": .string(actor), "key": .string(key.publicKey.multikey),
            "ts": .string(Timestamp.format(millisecondsSince1970: nowMilliseconds)), "nonce": .string(nonce),
        ])
        return .object(["request": request, "sig": .string(Base64.encode(key.signature(for: signingBytes(request))))])
    }

    /// True when params have the signed form (a reader may then be checked).
    static func isSigned(_ params: JSONValue?) -> Bool {
        guard case .object(let members)? = params else { return false }
        return members["request"] != nil && members["sig"] != nil && members.count == 2
    }

    /// Checks a signed read request for `method` and returns who signed it, with which key, and the inner params.
    /// `challenge`, for `session.open`, is the nonce the request must carry (the connection's session challenge).
    static func open(
        _ params: JSONValue?, method: String, reader: LedgerReader, nonces: NonceStore, windowSeconds: Int, nowMilliseconds: Int64,
        challenge: String? = nil
    ) throws(RPCError) -> (requester: ActorRecord, key: String, params: JSONValue?) {
        guard case .object(let members)? = params, members.count == 2, case .object(let request)? = members["request"],
            case .string(let signatureText)? = members["sig"]
        else {
            // session.open is itself how a session starts: pointing to a session would send the client in a circle.
            let alternative = challenge == nil ? ", or open a session on this connection first (session.challenge, session.open)" : ", whose nonce is this connection's challenge from session.challenge"
            throw RPCError(LedgerError(.invalidReadRequest, "\(method) is a signed read: params are {\"request\":{method, params, actor, key, ts, nonce},\"sig\":…}\(alternative)"))
        }
        let allowed: Set<String> = ["method", "params", "actor", "key", "ts", "nonce"]
        // In a fixed order, so that the message names the same missing member every time.
        for key in ["method", "actor", "key", "ts", "nonce"] where request[key]?.stringValue == nil {
            throw RPCError(LedgerError(.invalidReadRequest, "a signed read request needs \"\(key)\" as a string"))
        }
        if let extra = request.keys.first(where: { !allowed.contains($0) }) {
            throw RPCError(LedgerError(.invalidReadRequest, "a signed read request has no field \"\(extra.prefix(40))\""))
        }
        let signedMethod = request["method"]?.stringValue ?? ""
        let actorID = request["actor"]?.stringValue ?? ""
        let keyText = request["key"]?.stringValue ?? ""
        let timestamp = request["ts"]?.stringValue ?? ""
        let nonce = request["nonce"]?.stringValue ?? ""
        guard signedMethod == method else {
            throw RPCError(LedgerError(.invalidReadRequest, "the request was signed for \"\(signedMethod.prefix(40))\", not \(method)"))
        }
        guard Identifier.isValid(nonce), nonce.utf8.count <= maximumNonceBytes else {
            throw RPCError(LedgerError(.invalidReadRequest, "nonce must be 1 to \(maximumNonceBytes) letters, digits or . _ : -"))
        }
        if let challenge, nonce != challenge {
            throw RPCError(LedgerError(.invalidReadRequest, "session.open must carry this connection's challenge as its nonce"))
        }
        guard let signedAt = Timestamp.millisecondsSince1970(timestamp) else {
            throw RPCError(LedgerError(.invalidTimestamp, "ts \"\(timestamp.prefix(40))\" is not an RFC 3339 UTC timestamp"))
        }
        let windowMilliseconds = Int64(windowSeconds) * 1000
        guard abs(signedAt - nowMilliseconds) <= windowMilliseconds else {
            throw RPCError(LedgerError(.requestExpired, "ts \(timestamp) is more than \(windowSeconds) seconds from the server's time \(Timestamp.format(millisecondsSince1970: nowMilliseconds))"))
        }
        guard let publicKey = Multikey.decodePublicKey(keyText) else {
            throw RPCError(LedgerError(.invalidKey, "key is not an Ed25519 Multikey (z6Mk…)"))
        }
        guard let signature = Base64.decode(signatureText), signature.count == Ed25519.signatureByteCount,
            publicKey.isValidSignature(signature, for: signingBytes(.object(request)))
        else {
            throw RPCError(LedgerError(.invalidSignature, "the read request's signature does not verify with its key"))
        }
        let requester = try activeActor(actorID, key: keyText, in: reader)
        // Last, so that only a request that would otherwise be served uses up its nonce. A session.open's nonce is its
        // connection's challenge, already used up by this attempt and never given again, so it takes no place in the
        // store: an actor whose signed reads fill its share can still open the session the refusal points to.
        if challenge == nil {
            do throws(LedgerError) {
                try nonces.use(actor: actorID, nonce: nonce, nowMilliseconds: nowMilliseconds)
            } catch {
                throw RPCError(error)
            }
        }
        return (requester, keyText, request["params"])
    }

    /// The actor as the state has it now, which must be registered, hold `key` as an active key and not be
    /// suspended: for a signed read when it arrives, and for a session's every read.
    static func activeActor(_ actorID: String, key: String, in reader: LedgerReader) throws(RPCError) -> ActorRecord {
        do throws(LedgerError) {
            // An id that is no identifier was never registered, and is no key the store can look up (an empty one
            // is refused by LMDB itself): it is unknown, as any other id nobody registered.
            guard Identifier.isValid(actorID), let actor = try reader.actorRecord(actorID) else {
                throw LedgerError(.unknownActor, "actor \"\(actorID.prefix(80))\" is not registered")
            }
            guard actor.keys[key] == .active else {
                throw LedgerError(.keyNotActive, "key \(key) is not an active key of \"\(actorID)\"")
            }
            guard !actor.suspended else { throw LedgerError(.actorSuspended, "actor \"\(actorID)\" is suspended") }
            // As for events (Rulebook.activeSigner): staff of a suspended organisation act for nobody.
            if try CaseStanding.actsForSuspendedOrganisation(actor, actor: { (id) throws(LedgerError) in try reader.actorRecord(id) }) {
                throw LedgerError(.actorSuspended, "staff \"\(actorID)\" acts for organisation \"\(actor.organisation ?? "")\", which is suspended")
            }
            return actor
        } catch {
            throw RPCError(error)
        }
    }

    /// Who reads, and with which key: the signer of signed params; otherwise, on a connection with an open session,
    /// the session's actor, whose key must still be active and who must not be suspended (checked on every read, against the
    /// state of that moment). Unsigned params without a session are refused as `open` refuses them.
    static func authenticate(
        _ params: JSONValue?, method: String, session: ReadSession, reader: LedgerReader, nonces: NonceStore, windowSeconds: Int,
        nowMilliseconds: Int64
    ) throws(RPCError) -> (requester: ActorRecord, key: String, params: JSONValue?) {
        guard !isSigned(params), let opened = session.opened else {
            let signed = try open(params, method: method, reader: reader, nonces: nonces, windowSeconds: windowSeconds, nowMilliseconds: nowMilliseconds)
            return (signed.requester, signed.key, signed.params)
        }
        return (try activeActor(opened.actor, key: opened.key, in: reader), opened.key, params)
    }
}

/// The read session of one connection (Specs/protocol.md, "Read sessions"): the client signs a fresh challenge
/// of this connection once (`session.open`), and the connection's reads are then answered as that actor without
/// a signature each. The challenge ties the signature to this connection, so a captured `session.open` opens
/// nothing elsewhere. One challenge and one session at a time: the state is bounded.
final class ReadSession: Sendable {
    struct Opened: Sendable, Hashable {
        let actor: String
        let key: String
    }

    static let challengeBytes = 32

    private struct State {
        var challenge: (text: String, expiresAtMonotonicMilliseconds: Int64)?
        var opened: Opened?
    }

    private let state = Locked(State())
    private let monotonicMilliseconds: @Sendable () -> Int64

    init(monotonicMilliseconds: @escaping @Sendable () -> Int64 = monotonicClockMilliseconds) {
        self.monotonicMilliseconds = monotonicMilliseconds
    }

    /// A new challenge, replacing any earlier one; it can be used once, within `lifetimeMilliseconds`. The lifetime
    /// is a duration, so the monotonic clock measures it: a wall clock set meanwhile neither shortens nor lengthens it.
    func newChallenge(lifetimeMilliseconds: Int64) -> String {
        let text = "c-" + SecureRandom.bytes(count: Self.challengeBytes).hexString
        let expiry = monotonicMilliseconds() + lifetimeMilliseconds
        state.withLock { $0.challenge = (text, expiry) }
        return text
    }

    /// The pending challenge, used up by this call whatever the outcome of the attempt: each challenge gets one.
    func takeChallenge() -> String? {
        let now = monotonicMilliseconds()
        return state.withLock { state -> String? in
            defer { state.challenge = nil }
            guard let challenge = state.challenge, challenge.expiresAtMonotonicMilliseconds > now else { return nil }
            return challenge.text
        }
    }

    var opened: Opened? { state.withLock { $0.opened } }

    func open(_ opened: Opened) { state.withLock { $0.opened = opened } }

    /// Ends the session; returns whether one was open.
    func close() -> Bool {
        state.withLock { state -> Bool in
            defer { state.opened = nil }
            return state.opened != nil
        }
    }
}

/// Who may read what (Specs/protocol.md, "Who may read what").
enum ReadPolicy {
    /// The log itself (events, subscriptions) and the programme report: the authority and auditors.
    static func mayReadLog(_ requester: ActorRecord) -> Bool {
        requester.role == .authority || requester.role == .auditor
    }

    /// A beneficiary's case history and actor record: the authority, auditors, the beneficiary itself, and the
    /// organisation (or its staff) holding one of the beneficiary's cases that is not closed and gives it standing
    /// (`CaseStanding`).
    static func mayReadBeneficiary(_ beneficiary: String, _ requester: ActorRecord, reader: LedgerReader) throws(LedgerError) -> Bool {
        switch requester.role {
        case .authority, .auditor: return true
        case .beneficiary: return requester.id == beneficiary
        case .merchant: return false
        case .organisation, .staff:
            guard let organisation = requester.role == .organisation ? requester.id : requester.organisation else { return false }
            let person = try reader.actorRecord(beneficiary)
            for record in try reader.cases(of: beneficiary) {
                guard case .object(let fields) = record, fields["holder"]?.stringValue == organisation,
                    fields["status"]?.stringValue != "closed"
                else { continue }
                if try CaseStanding.givesStanding(fields, person: person, actor: { (actorID) throws(LedgerError) in try reader.actorRecord(actorID) }) {
                    return true
                }
            }
            return false
        }
    }

    /// An account's balance and history: a beneficiary's as above; a merchant's by the merchant itself; the
    /// programme's own accounts (issuance, fund, settlement) by the authority and auditors.
    static func mayReadAccount(_ account: String, _ requester: ActorRecord, reader: LedgerReader) throws(LedgerError) -> Bool {
        if account.hasPrefix("beneficiary:") {
            return try mayReadBeneficiary(String(account.dropFirst("beneficiary:".count)), requester, reader: reader)
        }
        if account.hasPrefix("merchant:") {
            let merchant = String(account.dropFirst("merchant:".count))
            switch requester.role {
            case .authority, .auditor: return true
            case .merchant: return requester.id == merchant
            default: return false
            }
        }
        return requester.role == .authority || requester.role == .auditor
    }
}

/// Nonces of signed read requests, remembered for twice the time window (a request is valid ±window around its
/// `ts`, so after that it is refused anyway). Bounded: when full of unexpired nonces, new reads are refused rather
/// than forgetting one, which would let its request be replayed.
///
/// A nonce is forgotten only once twice the window has passed by both clocks. By the wall clock, because the `ts`
/// check reads it: set back, it makes old requests valid again, so their nonces stay until it has caught up (those
/// entries wait in a heap, since the insertion order no longer follows wall-clock expiries). By the monotonic clock,
/// because a wall clock that jumps ahead and back would otherwise forget nonces whose requests become valid again.
final class NonceStore: Sendable {
    private struct Entry {
        let key: String
        let actor: String
        let wallExpiryMilliseconds: Int64
        let monotonicExpiryMilliseconds: Int64
    }

    private struct State {
        var remembered: Set<String> = []
        /// In insertion order, which is the order of monotonic expiries.
        var order: [Entry] = []
        var head = 0
        /// Past their monotonic expiry, not yet their wall-clock one (the wall clock was set back): a min-heap on the
        /// wall-clock expiry.
        var waitingForWallClock: [Entry] = []
        /// Unexpired nonces per actor, so that one actor cannot fill the store for everyone.
        var perActor: [String: Int] = [:]

        mutating func forget(_ entry: Entry) {
            remembered.remove(entry.key)
            let left = (perActor[entry.actor] ?? 1) - 1
            assert(left >= 0, "an actor's count covers its nonces in the store")
            perActor[entry.actor] = left > 0 ? left : nil
        }

        /// Forgets what has expired by both clocks (bounded by what was inserted). Strictly past the expiry: a
        /// request dated a whole window ahead is valid until its `ts` + window, that millisecond included, which is
        /// the expiry of a nonce remembered from its arrival, so at that moment the nonce is still needed.
        mutating func forgetExpired(monotonicNow: Int64, wallNow: Int64) {
            while head < order.count, order[head].monotonicExpiryMilliseconds < monotonicNow {
                let entry = order[head]
                head += 1
                if entry.wallExpiryMilliseconds < wallNow { forget(entry) } else { pushWaiting(entry) }
            }
            if head > 1024 && head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
            while let first = waitingForWallClock.first, first.wallExpiryMilliseconds < wallNow {
                popWaiting()
                forget(first)
            }
        }

        mutating func pushWaiting(_ entry: Entry) {
            waitingForWallClock.append(entry)
            var child = waitingForWallClock.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard waitingForWallClock[child].wallExpiryMilliseconds < waitingForWallClock[parent].wallExpiryMilliseconds else { break }
                waitingForWallClock.swapAt(child, parent)
                child = parent
            }
        }

        mutating func popWaiting() {
            waitingForWallClock.swapAt(0, waitingForWallClock.count - 1)
            waitingForWallClock.removeLast()
            var parent = 0
            while true {
                var smallest = parent
                for child in (2 * parent + 1)...(2 * parent + 2)
                where child < waitingForWallClock.count
                    && waitingForWallClock[child].wallExpiryMilliseconds < waitingForWallClock[smallest].wallExpiryMilliseconds {
                    smallest = child
                }
                guard smallest != parent else { return }
                waitingForWallClock.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    private let state = Locked(State())
    private let capacity: Int
    private let capacityPerActor: Int
    private let lifetimeMilliseconds: Int64
    private let monotonicMilliseconds: @Sendable () -> Int64

    init(
        capacity: Int, capacityPerActor: Int, windowSeconds: Int,
        monotonicMilliseconds: @escaping @Sendable () -> Int64 = monotonicClockMilliseconds
    ) {
        self.capacity = max(1, capacity)
        self.capacityPerActor = max(1, min(capacityPerActor, capacity))
        self.lifetimeMilliseconds = 2 * Int64(windowSeconds) * 1000
        self.monotonicMilliseconds = monotonicMilliseconds
    }

    /// `nowMilliseconds` is the wall clock the request's `ts` was checked against.
    func use(actor: String, nonce: String, nowMilliseconds: Int64) throws(LedgerError) {
        let key = actor + "\u{0}" + nonce
        let outcome: LedgerError? = state.withLock { state in
            // Read under the lock, so that the insertion order is the order of monotonic expiries.
            let monotonicNow = monotonicMilliseconds()
            state.forgetExpired(monotonicNow: monotonicNow, wallNow: nowMilliseconds)
            if state.remembered.contains(key) {
                return LedgerError(.requestReplayed, "nonce \"\(nonce.prefix(40))\" of \"\(actor.prefix(80))\" was already used")
            }
            guard (state.perActor[actor] ?? 0) < capacityPerActor else {
                return LedgerError(
                    .overloaded,
                    "\"\(actor.prefix(80))\" made \(capacityPerActor) signed reads in the last \(lifetimeMilliseconds / 1000) seconds; retry later, or read in a session (session.open)")
            }
            guard state.remembered.count < capacity else {
                return LedgerError(.overloaded, "too many signed reads in the last \(lifetimeMilliseconds / 1000) seconds; retry later")
            }
            state.remembered.insert(key)
            state.order.append(
                Entry(
                    key: key, actor: actor, wallExpiryMilliseconds: nowMilliseconds + lifetimeMilliseconds,
                    monotonicExpiryMilliseconds: monotonicNow + lifetimeMilliseconds))
            state.perActor[actor, default: 0] += 1
            return nil
        }
        if let outcome { throw outcome }
    }

    /// The nonces remembered at `nowMilliseconds` (the wall clock, as for `use`), for `server.info`. Those expired
    /// are forgotten first, as the next signed read would: otherwise a server that no signed read reaches keeps
    /// counting them until one does.
    func rememberedCount(nowMilliseconds: Int64) -> Int {
        state.withLock { state in
            state.forgetExpired(monotonicNow: monotonicMilliseconds(), wallNow: nowMilliseconds)
            return state.remembered.count
        }
    }
}

/// The monotonic clock in milliseconds, for the lifetimes of challenges and nonces.
func monotonicClockMilliseconds() -> Int64 { Int64(monotonicNanoseconds() / 1_000_000) }
