/// A latency histogram with log-linear buckets (as HdrHistogram does): values below 128 ns are exact, larger ones
/// fall in buckets 1/64 of their power of two wide, so a percentile is within 1.6 % of the true value. Fixed size
/// (3776 counters) whatever the number or spread of values, so it can record millions of requests per connection
/// and be merged across connections.
public struct LatencyHistogram: Sendable, Equatable {
    /// Values below this are counted one by one.
    static let exactLimit: UInt64 = 128
    /// Buckets per power of two above `exactLimit`.
    static let subBucketCount = 64
    static let bucketCount = Int(exactLimit) + 57 * subBucketCount

    private var counts: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var minimumNanoseconds: UInt64 = .max
    public private(set) var maximumNanoseconds: UInt64 = 0
    public private(set) var totalNanoseconds: UInt64 = 0

    public init() {
        counts = [UInt64](repeating: 0, count: Self.bucketCount)
    }

    static func bucket(of value: UInt64) -> Int {
        if value < exactLimit { return Int(value) }
        let highestBit = 63 - value.leadingZeroBitCount
        // `shift` ≥ 1 here; the top 7 bits of the value (64…127) pick the bucket within its power of two.
        let shift = highestBit - 6
        let subBucket = Int(value >> UInt64(shift)) - subBucketCount
        return Int(exactLimit) + (shift - 1) * subBucketCount + subBucket
    }

    /// The largest value that falls in `bucket`.
    static func upperBound(of bucket: Int) -> UInt64 {
        if bucket < Int(exactLimit) { return UInt64(bucket) }
        let shift = (bucket - Int(exactLimit)) / subBucketCount + 1
        let subBucket = UInt64((bucket - Int(exactLimit)) % subBucketCount + subBucketCount)
        let next = (subBucket + 1) << UInt64(shift)
        return next &- 1
    }

    public mutating func record(nanoseconds value: UInt64) {
        counts[Self.bucket(of: value)] += 1
        count += 1
        minimumNanoseconds = min(minimumNanoseconds, value)
        maximumNanoseconds = max(maximumNanoseconds, value)
        totalNanoseconds &+= value
    }

    public mutating func merge(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        for index in counts.indices { counts[index] += other.counts[index] }
        count += other.count
        minimumNanoseconds = min(minimumNanoseconds, other.minimumNanoseconds)
        maximumNanoseconds = max(maximumNanoseconds, other.maximumNanoseconds)
        totalNanoseconds &+= other.totalNanoseconds
    }

    /// The value at `percentile` (0…100) by nearest rank: of the values in order, the one at rank ⌈percentile/100 ×
    /// count⌉ (at least 1), given as the top of its bucket, kept within the recorded minimum and maximum, so never
    /// below it and at most 1/64 above. Zero when empty.
    public func valueAt(percentile: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let clamped = min(max(percentile, 0), 100)
        var rank = UInt64((clamped / 100 * Double(count)).rounded(.up))
        rank = min(max(rank, 1), count)
        var seen: UInt64 = 0
        for (bucket, bucketCount) in counts.enumerated() where bucketCount > 0 {
            seen += bucketCount
            if seen >= rank {
                return min(max(Self.upperBound(of: bucket), minimumNanoseconds), maximumNanoseconds)
            }
        }
        return maximumNanoseconds
    }

    public var meanNanoseconds: Double { count == 0 ? 0 : Double(totalNanoseconds) / Double(count) }

    /// Milliseconds at a percentile, for reports.
    public func milliseconds(atPercentile percentile: Double) -> Double { Double(valueAt(percentile: percentile)) / 1_000_000 }
    public var maximumMilliseconds: Double { count == 0 ? 0 : Double(maximumNanoseconds) / 1_000_000 }
}
