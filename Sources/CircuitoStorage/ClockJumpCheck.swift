import CircuitoCore
import Glibc

/// Notices the wall clock stepping ahead while a writer runs (an NTP mistake, an operator's typo: a year 2099), before
/// a commit carries that time and every later record has to follow it (Specs/ledger.md 5.3). Between two readings the
/// wall clock may advance by no more than the time elapsed since boot, which no setting of the wall clock moves and
/// which counts a suspended host's sleep, plus `maximumJumpAheadMilliseconds` and a thousandth of that elapsed time
/// (twice the most that NTP slews a clock). Only a running writer can tell: a clock already wrong when it starts is
/// not seen.
public struct ClockJumpCheck: Sendable {
    /// Larger than any step with which NTP brings a running, synchronised clock back in line.
    public static let maximumJumpAheadMilliseconds: Int64 = 600_000

    private let elapsedMilliseconds: @Sendable () -> Int64
    /// The last reading taken as right: the wall clock and the elapsed time then.
    private var anchor: (wallMilliseconds: Int64, elapsedMilliseconds: Int64)?

    public init(elapsedMilliseconds: @escaping @Sendable () -> Int64 = ClockJumpCheck.millisecondsSinceBoot) {
        self.elapsedMilliseconds = elapsedMilliseconds
    }

    /// Refuses (`clock_jumped`) a wall clock reading that has run ahead of the last one taken as right by more than the
    /// time elapsed between them allows; a reading taken as right becomes the next one's reference. A refused one does
    /// not, so the writer records again as soon as the clock is set back, or when restarted (the operator's word that
    /// the new time is right).
    public mutating func check(wallMilliseconds: Int64) throws(LedgerError) {
        let elapsed = elapsedMilliseconds()
        if let anchor {
            let elapsedSince = max(0, elapsed - anchor.elapsedMilliseconds)
            let allowed = elapsedSince + elapsedSince / 1000 + Self.maximumJumpAheadMilliseconds
            let advanced = wallMilliseconds - anchor.wallMilliseconds
            guard advanced <= allowed else {
                throw LedgerError(.clockJumped, "the system clock reads \(Timestamp.format(millisecondsSince1970: wallMilliseconds)), \(advanced - elapsedSince) ms further ahead than the \(elapsedSince) ms elapsed since it read \(Timestamp.format(millisecondsSince1970: anchor.wallMilliseconds)): it was set ahead while the writer ran; nothing was written. Set it right; if the new time is the right one, restart the writer (Specs/ledger.md 5.3)")
            }
        }
        anchor = (wallMilliseconds, elapsed)
    }

    /// CLOCK_BOOTTIME in milliseconds: monotonic, and counting the time a host spends suspended, so that a laptop or
    /// a virtual machine resumed after hours is not taken for a clock set ahead.
    public static let millisecondsSinceBoot: @Sendable () -> Int64 = { clockMilliseconds(CLOCK_BOOTTIME) }
}
