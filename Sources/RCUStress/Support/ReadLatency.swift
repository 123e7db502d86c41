import Histogram

/// Read-side latency percentiles from a sample of the reads (HdrHistogram).
///
/// Timing every read would cost more than the read (a monotonic clock read is
/// about 20 ns, an RCU read section about 1 ns), so readers time one read in
/// every ``sampleEvery`` and record its nanoseconds here. The recorded values
/// include the clock's own cost: ``timerOverheadNanoseconds`` is reported next to them.
struct ReadLatency: Sendable {
    /// Values above this (10 s) are recorded as this: a reader that was descheduled.
    static let highestTrackable: UInt64 = 10_000_000_000

    private(set) var histogram = Histogram<UInt64>(
        highestTrackableValue: ReadLatency.highestTrackable, numberOfSignificantValueDigits: .three)

    /// Records one sampled read.
    @inline(__always)
    mutating func record(nanoseconds: UInt64) {
        histogram.record(min(nanoseconds, Self.highestTrackable))
    }

    /// Adds another reader's samples.
    mutating func merge(_ other: ReadLatency) {
        histogram.add(other.histogram)
    }

    /// The number of sampled reads.
    var samples: UInt64 { histogram.totalCount }

    /// The value at `percentile` (0...100) in nanoseconds, or `nil` with no samples.
    func nanoseconds(atPercentile percentile: Double) -> UInt64? {
        samples == 0 ? nil : histogram.valueAtPercentile(percentile)
    }

    /// The largest sampled read, or `nil` with no samples.
    var maxNanoseconds: UInt64? { samples == 0 ? nil : histogram.max }
}

/// Decides which reads a reader times: one in every `every`, by countdown
/// (cheaper than a modulo on the hot path).
struct LatencySampler {
    let every: Int
    private var countdown: Int

    init(every: Int) {
        self.every = every
        countdown = every
    }

    /// Whether the next read is timed.
    @inline(__always)
    mutating func shouldSample() -> Bool {
        countdown -= 1
        guard countdown == 0 else { return false }
        countdown = every
        return true
    }
}
