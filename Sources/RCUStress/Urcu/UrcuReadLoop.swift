/// liburcu's reader loop (`thr_reader`) with sampled timing: reads until the run stops
/// (checked after every read, as liburcu's readers do), timing one read in every
/// `sampleEvery` and calling `every1024` after every 1024th read.
///
/// Both are events at known read counts, so the reads between two events run as one
/// burst: a tight loop of a read, a branch on its result, the stop flag and a
/// countdown, in a function of its own (each run's `readBurst`, `@inline(never)`) so
/// its few live values stay in registers. Per read it does what test_urcu's loop
/// does, with no countdown for the clock or test of the read count.
enum UrcuReadLoop {
    /// Runs until `control` says stop: bursts of untimed reads, a timed `read` every
    /// `sampleEvery` reads, `every1024` after each 1024th.
    /// - Returns: The number of reads and the sum of their ``failure(_:)``s.
    @inline(__always)
    static func run(
        sampleEvery: Int, control: StressControl, latency: inout ReadLatency,
        every1024: (Int) -> Void, burst: (_ count: Int) -> UrcuReadBurst, timedRead read: (_ bad: inout Int) -> Void
    ) -> (reads: Int, sum: Int) {
        var reads = 0
        var sum = 0
        // Reads until the timed one, that one included (at least 1).
        var untilTimed = sampleEvery
        while true {
            var untimed = min(1024 &- (reads & 1023), untilTimed)
            untilTimed &-= untimed
            let timed = untilTimed == 0
            if timed { untimed &-= 1 }
            if untimed > 0 {
                let done = burst(untimed)
                reads &+= done.reads
                sum &+= done.bad
                if done.stopped { return (reads, sum) }
            }
            if timed {
                let start = MonotonicClock.nanoseconds()
                read(&sum)
                latency.record(nanoseconds: MonotonicClock.nanoseconds() &- start)
                reads &+= 1
                untilTimed = sampleEvery
                if control.shouldStop { return (reads, sum) }
            }
            if reads & 1023 == 0 { every1024(reads) }
        }
    }

    /// `count` (at least 1) reads, each followed by the stop test; the body of a run's
    /// `readBurst`. `read` adds a failed read's ``failure(_:)`` to `bad`.
    @inline(__always)
    static func burst(count: Int, control: StressControl, _ read: (_ bad: inout Int) -> Void) -> UrcuReadBurst {
        var bad = 0
        var remaining = count
        repeat {
            read(&bad)
            remaining &-= 1
            if control.shouldStop { return UrcuReadBurst(count: count, remaining: remaining, bad: bad, stopped: true) }
        } while remaining != 0
        return UrcuReadBurst(count: count, remaining: 0, bad: bad, stopped: false)
    }
}

extension UrcuReadLoop {
    /// A read that did not find the live value: 1 (poisoned), or `1 << 32` (no node),
    /// so a sum of failures packs both counts. Out of line: the read checks its value
    /// with a branch to this call, as test_urcu's `assert(*local_ptr == 8)` does (a
    /// failure computed inside the loop, branch-free, cost several instructions a read).
    @inline(never)
    static func failure(_ value: Int?) -> Int {
        value == nil ? 1 << 32 : 1
    }
}

/// What a burst of untimed reads did: how many ran, the sum of their failures, and
/// whether it ended because the run stopped.
struct UrcuReadBurst {
    /// The reads asked for, and those not run (the burst returns both, not their
    /// difference: computing it in the loop made the optimiser keep two counters).
    let count: Int
    let remaining: Int
    let bad: Int
    let stopped: Bool

    /// The reads that ran.
    var reads: Int { count &- remaining }
}
