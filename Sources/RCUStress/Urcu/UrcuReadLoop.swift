import CReference

/// The `urcu` readers' loops.
///
/// By default (``plain(counter:control:_:)``) a reader does per read
/// exactly what liburcu's test_urcu `thr_reader` does: the read section with its checks
/// (each run's `readOnce`), one increment of the thread's read count in memory
/// (test_urcu's `URCU_TLS(nr_reads)++`, the same thread-local increment: CReferenceReadCount.h;
/// the progress line reads it), for qsbr the quiescent state after every 1024th read, and
/// the stop test.
///
/// With `--sample-every N` a reader also times one read in N (``run(sampleEvery:control:latency:every1024:burst:timedRead:)``):
/// work test_urcu does not do, so that loop is not the one compared with liburcu's.
enum UrcuReadLoop {
    /// test_urcu's loop: `read` (which counts a poisoned read in `bad`), the
    /// count, then the stop test, until the run stops. The reads are in `counter`.
    /// - Returns: The poisoned reads.
    @inline(__always)
    static func plain(counter: PaddedCounter, control: StressControl, _ read: (_ bad: inout Int) -> Void) -> Int {
        var bad = 0
        counter.countsThisThreadsReads()
        repeat {
            read(&bad)
            creference_urcu_count_read()
        } while !control.shouldStop
        counter.publishThisThreadsReads()
        return bad
    }

    /// test_urcu_qsbr's loop: as ``plain(counter:control:_:)``, with `quiescentState`
    /// after every 1024th read, before the stop test.
    @inline(__always)
    static func plain(
        counter: PaddedCounter, control: StressControl, quiescentState: () -> Void,
        _ read: (_ bad: inout Int) -> Void
    ) -> Int {
        var bad = 0
        counter.countsThisThreadsReads()
        repeat {
            read(&bad)
            if _slowPath(creference_urcu_count_read() & 1023 == 0) { quiescentState() }
        } while !control.shouldStop
        counter.publishThisThreadsReads()
        return bad
    }

    /// With latency sampling (`--sample-every`): runs until `control` says stop: bursts of untimed reads, a timed `read` every
    /// `sampleEvery` reads, `every1024` after each 1024th.
    /// - Returns: The number of reads and the poisoned ones.
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
    /// `readBurst`. `read` counts a poisoned read in `bad`.
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
    /// Counts a read that found a poisoned node. Out of line: the read checks its value
    /// with a compare and a branch to this call, as test_urcu's `assert(*local_ptr == 8)`
    /// does (a count computed inside the loop, branch-free, costs instructions a read).
    @inline(never)
    static func poisoned(_ bad: inout Int) {
        bad &+= 1
    }
}

/// What a burst of untimed reads did: how many ran, how many were poisoned, and
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

extension UrcuReadLoop {
    /// A read section in which the flavor says no section is open: the harness's
    /// `assert(rcu_read_ongoing())`, live in release builds as test_urcu's is.
    @inline(never)
    static func sectionNotOngoing(_ flavor: String) -> Never {
        fatalError("rcu-stress urcu: inside read(_:), \(flavor).isInReadSection is false")
    }
}

extension PaddedCounter {
    /// Starts the calling reader's count at 0 in its thread-local (``UrcuReadLoop/plain(counter:control:_:)``),
    /// where the progress line reads it until ``publishThisThreadsReads()``.
    func countsThisThreadsReads() {
        creference_urcu_reads_reset()
        threadLocal.store(UInt(bitPattern: creference_urcu_reads_address()), ordering: .releasing)
    }

    /// Publishes the calling reader's final count and stops the progress line reading its
    /// thread-local. The monitor reads it only before the run's stop, which a reader waits
    /// for before calling this, so no read outlives the thread.
    func publishThisThreadsReads() {
        publish(Int(creference_urcu_reads_now()))
        threadLocal.store(0, ordering: .releasing)
    }
}
