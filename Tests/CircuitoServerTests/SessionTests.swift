import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import Foundation
import Synchronization
import Testing

@Suite("Socket API: read sessions", .serialized, .timeLimit(.minutes(5)))
struct SessionTests {
    /// Opens a read session on `client` as `actor`, signing the connection's challenge with `key`.
    static func openSession(_ client: LineClient, fixture: CircuitFixture, as actor: String, key: Ed25519PrivateKey? = nil) throws -> JSONValue {
        let challenge = try #require(try client.result("session.challenge")["challenge"]?.stringValue)
        let signingKey = key ?? fixture.actors.byID[actor] ?? fixture.actors.auditor
        let params = ReadAuthorisation.sign(method: "session.open", params: [:], actor: actor, key: signingKey, nowMilliseconds: fixture.now, nonce: challenge)
        return try client.result("session.open", params)
    }

    @Test("a session: one signed challenge, then unsigned reads as that actor, on that connection only")
    func sessionReads() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        let other = try server.client()

        let challengeAnswer = try client.result("session.challenge")
        let challenge = try #require(challengeAnswer["challenge"]?.stringValue)
        #expect(challengeAnswer["expires_in_seconds"] == 300)
        #expect(challenge.utf8.count == 66 && challenge.hasPrefix("c-"))
        let open = ReadAuthorisation.sign(
            method: "session.open", params: [:], actor: "bene-1", key: fixture.actors.beneficiary, nowMilliseconds: fixture.now, nonce: challenge)
        // The signed open, captured and sent on another connection, opens nothing there: that connection has no
        // challenge pending, and once it has one, the captured request carries the wrong one.
        #expect(try other.error("session.open", open).name == "invalid_read_request")
        _ = try other.result("session.challenge")
        #expect(try other.error("session.open", open).name == "invalid_read_request")

        let opened = try client.result("session.open", open)
        #expect(opened["actor"] == "bene-1" && opened["role"] == "beneficiary")
        #expect(opened["key"]?.stringValue == fixture.actors.beneficiary.publicKey.multikey)
        // The challenge was used: the same open again is refused.
        #expect(try client.error("session.open", open).name == "invalid_read_request")

        // Unsigned reads are now answered as bene-1, with bene-1's permissions.
        let balance = try client.result("account.balance", ["account": "beneficiary:bene-1"])
        #expect(balance["balance"] == .integer(fixture.initialBalance))
        #expect(try client.error("account.balance", ["account": "beneficiary:bene-2"]).name == "not_authorised")
        #expect(try client.result("case.history", ["beneficiary": "bene-1"])["records"]?.arrayValue?.isEmpty == false)
        #expect(try client.result("actor.get", ["actor": "bene-1"])["actor"] == "bene-1")
        #expect(try client.error("events", ["from": 0]).name == "not_authorised")
        // A signed read on the session's connection is the signer's, not the session's.
        let asShop = fixture.read("account.balance", as: "shop", ["account": "merchant:shop"])
        #expect(try client.result("account.balance", asShop)["account"] == "merchant:shop")
        #expect(try client.error("account.balance", fixture.read("account.balance", as: "shop", ["account": "beneficiary:bene-1"])).name == "not_authorised")
        // Bad params are still bad params.
        #expect(try client.error("account.balance", ["account": "beneficiary:bene-1", "extra": 1]).name == "invalid_params")

        // The other connection has no session: personal reads there need signatures.
        #expect(try other.error("account.balance", ["account": "beneficiary:bene-1"]).name == "invalid_read_request")
        #expect(try other.error("actor.get", ["actor": "bene-1"]).name == "not_authorised")

        // Closing ends it.
        #expect(try client.result("session.close")["closed"] == true)
        #expect(try client.result("session.close")["closed"] == false)
        #expect(try client.error("account.balance", ["account": "beneficiary:bene-1"]).name == "invalid_read_request")
        // Nothing of it survives the connection either: a new connection starts without one.
        _ = try Self.openSession(client, fixture: fixture, as: "audit")
        #expect(try client.result("events", ["from": 0, "limit": 1])["records"]?.arrayValue?.count == 1)
        let again = try server.client()
        #expect(try again.error("events", ["from": 0]).name == "invalid_read_request")
        await server.shutdown()
    }

    @Test("session.open is refused for a bad challenge, signer, key, time or params, and then opens nothing")
    func sessionOpenRefusals() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        func attempt(actor: String = "bene-1", key: Ed25519PrivateKey? = nil, params: JSONValue = [:], at time: Int64? = nil, nonce: String? = nil) throws -> RPCError {
            let challenge = try #require(try client.result("session.challenge")["challenge"]?.stringValue)
            let signed = ReadAuthorisation.sign(
                method: "session.open", params: params, actor: actor, key: key ?? fixture.actors.beneficiary, nowMilliseconds: time ?? fixture.now,
                nonce: nonce ?? challenge)
            return try client.error("session.open", signed)
        }
        #expect(try client.error("session.open", ReadAuthorisation.sign(method: "session.open", params: [:], actor: "bene-1", key: fixture.actors.beneficiary, nowMilliseconds: fixture.now)).name == "invalid_read_request")
        #expect(try attempt(nonce: "c-not-the-challenge").name == "invalid_read_request")
        #expect(try attempt(key: fixture.actors.otherBeneficiary).name == "key_not_active")
        #expect(try attempt(actor: "nobody").name == "unknown_actor")
        #expect(try attempt(at: fixture.now - 600_000).name == "request_expired")
        #expect(try attempt(params: ["account": "x"]).name == "invalid_params")
        var tampered = try #require(ReadAuthorisation.sign(method: "session.open", params: [:], actor: "bene-1", key: fixture.actors.beneficiary, nowMilliseconds: fixture.now).objectValue)
        tampered["sig"] = .string(Base64.encode([UInt8](repeating: 3, count: 64)))
        _ = try client.result("session.challenge")
        #expect(try client.error("session.open", .object(tampered)).name == "invalid_read_request")
        #expect(try client.error("session.challenge", ["extra": 1]).name == "invalid_params")
        // Unsigned params: the message says how to sign it, not to open a session first (that is this very call).
        _ = try client.result("session.challenge")
        let unsigned = try client.error("session.open", [:])
        #expect(unsigned.name == "invalid_read_request")
        #expect(unsigned.message.contains("challenge from session.challenge") && !unsigned.message.contains("open a session"), "\(unsigned.message)")
        // None of the refused attempts opened a session.
        #expect(try client.error("account.balance", ["account": "beneficiary:bene-1"]).name == "invalid_read_request")
        #expect(try client.result("session.close")["closed"] == false)

        // An attempt on a new challenge (a switch to another actor) ends the session open, whatever its outcome: a
        // till whose next cashier's open is refused does not go on reading as the cashier before.
        _ = try Self.openSession(client, fixture: fixture, as: "bene-1")
        #expect(try client.result("account.balance", ["account": "beneficiary:bene-1"])["balance"] == .integer(fixture.initialBalance))
        #expect(try attempt(actor: "bene-2").name == "key_not_active")
        #expect(try client.error("account.balance", ["account": "beneficiary:bene-1"]).name == "invalid_read_request")
        _ = try Self.openSession(client, fixture: fixture, as: "bene-1")
        _ = try client.result("session.challenge")
        #expect(try client.error("session.open", [:]).name == "invalid_read_request")
        #expect(try client.result("session.close")["closed"] == false)
        await server.shutdown()
    }

    /// A signed `session.open` for `challenge`, as bene-1, at `nowMilliseconds`.
    static func signedOpen(_ fixture: CircuitFixture, challenge: String, nowMilliseconds: Int64) -> JSONValue {
        ReadAuthorisation.sign(
            method: "session.open", params: [:], actor: "bene-1", key: fixture.actors.beneficiary, nowMilliseconds: nowMilliseconds, nonce: challenge)
    }

    /// The refusal of a `session.open` whose challenge has lapsed (or was never given), not of its signature or time.
    static func isLapsedChallenge(_ error: RPCError) -> Bool {
        error.name == "invalid_read_request" && error.message.hasPrefix("no session challenge is pending on this connection")
    }

    @Test("a challenge lasts the read window, by the server's monotonic clock")
    func challengeExpires() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.readRequestWindowSeconds = 1
        // The clocks are the test's: the monotonic one the challenges live by, which it steps, and a wall clock that
        // stands still (the requests' times are checked against the same window). No time passes on them but the
        // steps, however long a busy machine takes over the requests.
        let monotonic = Mutex<Int64>(7_000_000)
        let now = fixture.now
        let server = try await fixture.startServer(limits: limits, readClockMilliseconds: { now }, monotonicMilliseconds: { monotonic.withLock { $0 } })
        let client = try server.client()
        // Opened at the last millisecond of the window.
        let first = try #require(try client.result("session.challenge")["challenge"]?.stringValue)
        monotonic.withLock { $0 += 999 }
        #expect(try client.result("session.open", Self.signedOpen(fixture, challenge: first, nowMilliseconds: now))["actor"] == "bene-1")
        #expect(try client.result("session.close")["closed"] == true)
        // Refused once the window has passed.
        let challenge = try #require(try client.result("session.challenge")["challenge"]?.stringValue)
        monotonic.withLock { $0 += 1000 }
        let lapsed = try client.error("session.open", Self.signedOpen(fixture, challenge: challenge, nowMilliseconds: now))
        #expect(Self.isLapsedChallenge(lapsed), "\(lapsed)")
        #expect(try client.error("account.balance", ["account": "beneficiary:bene-1"]).name == "invalid_read_request")
        // A new challenge opens the session.
        let last = try #require(try client.result("session.challenge")["challenge"]?.stringValue)
        #expect(try client.result("session.open", Self.signedOpen(fixture, challenge: last, nowMilliseconds: now))["actor"] == "bene-1")
        #expect(try client.result("account.balance", ["account": "beneficiary:bene-1"])["balance"] == .integer(fixture.initialBalance))
        await server.shutdown()
    }

    @Test("an actor whose share of remembered nonces is full is refused signed reads, and can still open the session the refusal points to")
    func sessionOpensPastTheNonceShare() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.maximumRememberedNoncesPerActor = 2
        let server = try await fixture.startServer(limits: limits)
        let client = try server.client()
        func signedBalance() -> JSONValue {
            ReadAuthorisation.sign(method: "account.balance", params: ["account": "beneficiary:bene-1"], actor: "bene-1", key: fixture.actors.beneficiary, nowMilliseconds: fixture.now)
        }
        for _ in 0..<2 { _ = try client.result("account.balance", signedBalance()) }
        let refused = try client.error("account.balance", signedBalance())
        #expect(refused.name == "overloaded")
        #expect(refused.message.contains("session.open"), "\(refused.message)")
        // session.open's nonce is the connection's one-time challenge: it takes no place in the store.
        #expect(try Self.openSession(client, fixture: fixture, as: "bene-1")["actor"] == "bene-1")
        #expect(try client.result("account.balance", ["account": "beneficiary:bene-1"])["balance"] == .integer(fixture.initialBalance))
        // Each challenge still opens once: a captured session.open sent again is refused.
        let challenge = try #require(try client.result("session.challenge")["challenge"]?.stringValue)
        let open = ReadAuthorisation.sign(method: "session.open", params: [:], actor: "bene-1", key: fixture.actors.beneficiary, nowMilliseconds: fixture.now, nonce: challenge)
        _ = try client.result("session.open", open)
        #expect(try client.error("session.open", open).name == "invalid_read_request")
        await server.shutdown()
    }

    @Test("a challenge lasts the read window by the time that passes, not by the wall clock, which may be set meanwhile")
    func challengeLifetimeIgnoresWallClockChanges() async throws {
        let fixture = try CircuitFixture()
        var limits = ServerLimits()
        limits.readRequestWindowSeconds = 1
        // Both clocks are the test's: the wall clock reads are answered at, which it sets as an operator (or NTP)
        // might, and the monotonic one the time that passes is measured by, which it steps.
        let wall = Mutex<Int64>(fixture.now)
        let monotonic = Mutex<Int64>(7_000_000)
        let server = try await fixture.startServer(
            limits: limits, readClockMilliseconds: { wall.withLock { $0 } }, monotonicMilliseconds: { monotonic.withLock { $0 } })
        // The wall clock is set 2 s ahead (more than the window) just after the challenge, while less than the window
        // passes: the challenge was given a moment ago, so a request signed at the new time opens the session.
        let ahead = try server.client()
        let first = try #require(try ahead.result("session.challenge")["challenge"]?.stringValue)
        wall.withLock { $0 += 2_000 }
        monotonic.withLock { $0 += 999 }
        let opened = try ahead.result("session.open", Self.signedOpen(fixture, challenge: first, nowMilliseconds: wall.withLock { $0 }))
        #expect(opened["actor"] == "bene-1")
        // The wall clock is set a day back just after the challenge: the challenge still lapses once the window has
        // passed, though by the wall clock it was given a day in the future.
        let back = try server.client()
        let second = try #require(try back.result("session.challenge")["challenge"]?.stringValue)
        wall.withLock { $0 -= 86_400_000 }
        monotonic.withLock { $0 += 1000 }
        let late = try back.error("session.open", Self.signedOpen(fixture, challenge: second, nowMilliseconds: wall.withLock { $0 }))
        #expect(Self.isLapsedChallenge(late), "\(late)")
        // The request itself was good: signed at the server's time, the same open on a fresh challenge is taken.
        let third = try #require(try back.result("session.challenge")["challenge"]?.stringValue)
        #expect(try back.result("session.open", Self.signedOpen(fixture, challenge: third, nowMilliseconds: wall.withLock { $0 }))["actor"] == "bene-1")
        await server.shutdown()
    }

    @Test("a session's reads stop when its key is revoked or its actor suspended")
    func sessionFollowsTheState() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let writer = try server.client()
        let beneficiaryClient = try server.client()
        let staffClient = try server.client()

        // bene-1 gets a second key, so the first can be revoked.
        let secondKey = Ed25519PrivateKey()
        _ = try writer.result("submit", try fixture.signed("actor.key_added", by: "casa", fixture.actors.organisation, ["actor": "bene-1", "key": .string(secondKey.publicKey.multikey)]).params)
        _ = try Self.openSession(beneficiaryClient, fixture: fixture, as: "bene-1")
        _ = try Self.openSession(staffClient, fixture: fixture, as: "anna")
        #expect(try beneficiaryClient.result("account.balance", ["account": "beneficiary:bene-1"])["balance"] == .integer(fixture.initialBalance))
        #expect(try staffClient.result("case.history", ["beneficiary": "bene-1"])["records"]?.arrayValue?.isEmpty == false)

        _ = try writer.result("submit", try fixture.signed("actor.key_revoked", by: "casa", fixture.actors.organisation, ["actor": "bene-1", "key": .string(fixture.actors.beneficiary.publicKey.multikey)]).params)
        #expect(try beneficiaryClient.error("account.balance", ["account": "beneficiary:bene-1"]).name == "key_not_active")
        #expect(try beneficiaryClient.error("actor.get", ["actor": "bene-1"]).name == "key_not_active")
        // What anyone may read unsigned needs no session: the revoked one does not take it away.
        #expect(try beneficiaryClient.result("actor.get", ["actor": "shop"])["actor"] == "shop")
        #expect(try beneficiaryClient.error("actor.get", ["actor": "nobody"]).name == "not_found")
        // A new session with the remaining key works.
        _ = try Self.openSession(beneficiaryClient, fixture: fixture, as: "bene-1", key: secondKey)
        #expect(try beneficiaryClient.result("account.balance", ["account": "beneficiary:bene-1"])["balance"] == .integer(fixture.initialBalance))

        _ = try writer.result("submit", try fixture.signed("actor.suspended", by: "casa", fixture.actors.organisation, ["actor": "anna", "reason": "left"]).params)
        #expect(try staffClient.error("case.history", ["beneficiary": "bene-1"]).name == "actor_suspended")
        #expect(try staffClient.result("actor.get", ["actor": "casa"])["actor"] == "casa")
        await server.shutdown()
    }

    @Test("subscribe takes the session too")
    func subscribeInSession() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let client = try server.client()
        #expect(try client.error("subscribe", ["from": 0]).name == "invalid_read_request")
        _ = try Self.openSession(client, fixture: fixture, as: "audit")
        let subscribed = try client.result("subscribe", ["from": 0])
        #expect(subscribed["subscription"]?.stringValue?.hasPrefix("sub-") == true)
        let size = try #require(subscribed["size"]?.integerValue)
        #expect(size > 0)
        // The stream starts at record 0.
        let first = try #require(try client.nextMessage())
        #expect(first["method"] == "subscription.record")
        #expect(first["params"]?["record"]?["seq"] == 0)
        await server.shutdown()
    }

    @Test("a subscription ends when its subscriber is suspended or its key revoked, before the records from then on")
    func subscriptionFollowsTheState() async throws {
        let fixture = try CircuitFixture()
        let server = try await fixture.startServer()
        let writer = try server.client()
        // The auditor holds a second key, so that its first can be revoked.
        let secondKey = Ed25519PrivateKey()
        _ = try writer.result("submit", try fixture.signed("actor.key_added", by: "audit", fixture.actors.auditor, ["actor": "audit", "key": .string(secondKey.publicKey.multikey)]).params)

        /// Subscribes from the log's end, sees one live commit arrive, then submits `change` and one more event and
        /// returns the messages that follow, up to the subscription's end or the four that two commits would send.
        func subscriptionAround(_ change: SignedEvent, subscribe: (LineClient, JSONValue) throws -> JSONValue) throws -> (size: Int64, after: [JSONValue]) {
            let subscriber = try server.client()
            let size = try #require(try writer.result("server.info")["size"]?.integerValue)
            let subscription = try subscribe(subscriber, ["from": .integer(size)])
            #expect(subscription["from"] == .integer(size))
            _ = try writer.result("submit", try fixture.registration().params)
            #expect(try subscriber.nextMessage()?["method"] == "subscription.record")
            #expect(try subscriber.nextMessage()?["method"] == "subscription.checkpoint")
            _ = try writer.result("submit", change.params)
            _ = try writer.result("submit", try fixture.registration().params)
            var after: [JSONValue] = []
            while after.count < 4, let message = try subscriber.nextMessage() {
                after.append(message)
                if message["method"] == "subscription.error" { break }
            }
            // The connection stays usable for what the actor may still read.
            #expect(try subscriber.result("checkpoint")["size"] == .integer(size + 3))
            return (size, after)
        }

        // Signed, then revoked: the record of the revocation is not sent, and the stream ends with key_not_active.
        let revoked = try subscriptionAround(
            try fixture.signed("actor.key_revoked", by: "audit", secondKey, ["actor": "audit", "key": .string(fixture.actors.auditor.publicKey.multikey)])
        ) { client, params in try client.result("subscribe", fixture.read("subscribe", as: "audit", params)) }
        #expect(revoked.after.count == 1)
        #expect(revoked.after.first?["params"]?["error"]?["data"]?["code"] == "key_not_active")

        // In a session with the remaining key, then suspended: actor_suspended, and nothing from the suspension on.
        let suspended = try subscriptionAround(
            try fixture.signed("actor.suspended", by: "city", fixture.actors.authority, ["actor": "audit", "reason": "left"])
        ) { client, params in
            _ = try Self.openSession(client, fixture: fixture, as: "audit", key: secondKey)
            return try client.result("subscribe", params)
        }
        #expect(suspended.after.count == 1)
        #expect(suspended.after.first?["params"]?["error"]?["data"]?["code"] == "actor_suspended")
        await server.shutdown()
    }
}

