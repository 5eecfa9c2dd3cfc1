import CircuitoCore
@testable import CircuitoServer
import Synchronization
import Testing

/// The hub's lag rule on its own, where the order of a subscriber's steps and the commits can be set exactly (over a
/// socket the edges below come only by chance).
@Suite("Subscription hub: which subscribers are behind")
struct SubscriptionHubTests {
    /// How many times the hub cut the subscriber off.
    final class CutOffCount: Sendable {
        let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
    }

    /// A hub with a bound of 8 records and one subscriber from `next`.
    static func hub(size: UInt64, next: UInt64) -> (SubscriptionHub, Int, CutOffCount) {
        let hub = SubscriptionHub(size: size, maximumLagRecords: 8)
        let cutOffs = CutOffCount()
        let (identifier, _) = hub.register(next: next) { cutOffs.count.withLock { $0 += 1 } }
        return (hub, identifier, cutOffs)
    }

    @Test("a subscriber that has sent everything but still flushes it is not cut off by one commit larger than the bound")
    func flushingSubscriberTakesALargeCommit() {
        let (hub, identifier, cutOffs) = Self.hub(size: 100, next: 100)
        // It sent its last page (up to 100) and is flushing it: not yet counted as waiting.
        hub.progress(identifier, next: 100, caughtUp: false)
        hub.publish(size: 130)
        #expect(!hub.isCutOff(identifier))
        // Once flushed it looks again, from 100: the 30 records are its catch-up.
        hub.checkLag(identifier, next: 100)
        #expect(!hub.isCutOff(identifier))
        #expect(cutOffs.value == 0)
    }

    @Test("a subscriber stuck after sending everything is still cut off once later commits pass the bound")
    func stuckSubscriberIsCutOffByLaterCommits() {
        let (hub, identifier, cutOffs) = Self.hub(size: 100, next: 100)
        hub.progress(identifier, next: 100, caughtUp: false)
        hub.publish(size: 130)
        // Still at 100 (its flush never completes): 130 to 135 count against it, within the bound.
        hub.publish(size: 135)
        #expect(!hub.isCutOff(identifier))
        // 130 to 139: nine live records unsent, past the bound of 8.
        hub.publish(size: 139)
        #expect(hub.isCutOff(identifier))
        #expect(cutOffs.value == 1)
    }

    @Test("a subscriber exactly the bound behind when it looks again is not cut off; one record more is")
    func lagOfExactlyTheBound() {
        let (hub, identifier, cutOffs) = Self.hub(size: 100, next: 90)
        hub.progress(identifier, next: 95, caughtUp: false)
        hub.publish(size: 108)
        // 100 to 107: eight live records unsent, the bound itself.
        hub.checkLag(identifier, next: 95)
        #expect(!hub.isCutOff(identifier))
        hub.publish(size: 109)
        hub.checkLag(identifier, next: 95)
        #expect(hub.isCutOff(identifier))
        #expect(cutOffs.value == 1)
    }

    @Test("a subscriber still catching up when a commit lands has that commit counted against it")
    func behindSubscriberCountsTheCommit() {
        // Subscribed from 90 at size 100: 90 to 99 are its catch-up, never counted.
        let (hub, identifier, cutOffs) = Self.hub(size: 100, next: 90)
        hub.progress(identifier, next: 95, caughtUp: false)
        hub.publish(size: 108)
        #expect(!hub.isCutOff(identifier))
        // 100 to 108: nine live records unsent.
        hub.publish(size: 109)
        #expect(hub.isCutOff(identifier))
        #expect(cutOffs.value == 1)
    }

    @Test("a subscription from a size the log holds and the hub has not heard of yet (the moment after a commit) is taken; past the log's size it is invalid_range")
    func subscriptionFromASizeTheHubHasNotHeardOf() throws {
        let hub = SubscriptionHub(size: 100, maximumLagRecords: 8)
        let logReads = Mutex(0)
        func logSize(_ size: UInt64) -> () throws(LedgerError) -> UInt64 {
            { () throws(LedgerError) in
                logReads.withLock { $0 += 1 }
                return size
            }
        }
        // Up to the hub's size the log is not read.
        #expect(try hub.sizeForSubscription(from: 100, logSize: logSize(103)) == 100)
        #expect(try hub.sizeForSubscription(from: 0, logSize: logSize(103)) == 100)
        #expect(logReads.withLock { $0 } == 0)
        // Committed (server.info and events say 103) and not yet announced: a replica at 103 resumes from there.
        #expect(try hub.sizeForSubscription(from: 103, logSize: logSize(103)) == 103)
        #expect(try hub.sizeForSubscription(from: 101, logSize: logSize(103)) == 103)
        let pastTheLog = #expect(throws: RPCError.self) { try hub.sizeForSubscription(from: 104, logSize: logSize(103)) }
        #expect(pastTheLog?.name == "invalid_range")
        #expect(pastTheLog?.message.contains("(103 records)") == true, "\(String(describing: pastTheLog))")
        // The log unreadable: its error, not a range refusal.
        let unreadable = #expect(throws: RPCError.self) {
            try hub.sizeForSubscription(from: 104) { () throws(LedgerError) -> UInt64 in throw LedgerError(.storage, "read failed") }
        }
        #expect(unreadable?.name == "storage_error")
    }
}
