/// liburcu's reader loop (`thr_reader`) with sampled timing: reads until the run stops
/// (checked after every read, as liburcu's readers do), timing one read in every
/// `sampleEvery` and calling `every1024` after every 1024th read.
///
/// Both are events at known read counts, so the loop runs the reads between two
/// events as one tight inner loop (a read, its result added, the stop flag tested,
/// a countdown), and handles the events between such runs: per read it does what
/// test_urcu's loop does, no countdown for the clock or test of the read count.
enum UrcuReadLoop {
    /// Runs `read` until `control` says stop.
    /// - Returns: The number of reads and the sum of what `read` returned.
    @inline(__always)
    static func run(
        sampleEvery: Int, control: StressControl, latency: inout ReadLatency,
        every1024: (Int) -> Void, _ read: () -> Int
    ) -> (reads: Int, sum: Int) {
        var reads = 0
        var sum = 0
        // Reads until the timed one, that one included (at least 1).
        var untilTimed = sampleEvery
        while true {
            let toBoundary = 1024 &- (reads & 1023)
            var untimed = min(toBoundary, untilTimed)
            untilTimed &-= untimed
            let timed = untilTimed == 0
            if timed { untimed &-= 1 }
            var remaining = untimed
            while remaining > 0 {
                sum &+= read()
                remaining &-= 1
                if control.shouldStop { return (reads &+ (untimed &- remaining), sum) }
            }
            reads &+= untimed
            if timed {
                let start = MonotonicClock.nanoseconds()
                sum &+= read()
                latency.record(nanoseconds: MonotonicClock.nanoseconds() &- start)
                reads &+= 1
                untilTimed = sampleEvery
                if control.shouldStop { return (reads, sum) }
            }
            if reads & 1023 == 0 { every1024(reads) }
        }
    }
}
