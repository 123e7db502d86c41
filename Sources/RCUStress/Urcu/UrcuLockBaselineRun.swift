/// The `urcu` run for the lock baselines (`--flavor rwlock|mutex`): liburcu's
/// test_rwlock and test_mutex, with the same node and check as the RCU flavors.
///
/// Readers take the lock for reading, check that the node holds the live value
/// and unlock. Writers take it for writing, poison the node and make it live
/// again (test_rwlock's `a = 0; a = 8`), then unlock: a reader that sees the
/// poison has proof the lock let it in during a write. As in liburcu, a lock
/// writer allocates nothing; only RCU needs a new copy per update.
enum UrcuLockBaselineRun<Lock: BaselineLock> {
    /// The lock and the node it guards.
    final class Shared: Sendable {
        let lock = Lock()
        let node = StressNode()
    }

    /// Runs `config` and returns its totals.
    static func run(_ config: UrcuConfiguration) -> UrcuResult {
        let shared = Shared()
        return UrcuHarness.run(
            config, backlog: { 0 },
            reader: { index, control, results in
                results.add(reader(shared, control.counters[index], control, config))
            },
            writer: { index, control, results in
                results.add(writes: writer(shared, control.counters[index], control, config))
            })
    }

    /// One reader thread's loop (test_rwlock's and test_mutex's `thr_reader`): per read,
    /// the locked section (``readOnce(_:_:_:)``), the count and the stop test; with
    /// `--sample-every`, the sampled loop.
    static func reader(
        _ shared: Shared, _ counter: PaddedCounter, _ control: StressControl, _ config: UrcuConfiguration
    ) -> UrcuReaderResult {
        var result = UrcuReaderResult()
        let readDuration = config.readDuration
        control.waitForGo()
        if let sampleEvery = config.sampleEvery {
            let (reads, poisoned) = UrcuReadLoop.run(
                sampleEvery: sampleEvery, control: control, latency: &result.latency,
                every1024: { counter.publish($0) },
                burst: { readBurst(shared, count: $0, control: control, readDuration: readDuration) },
                timedRead: { readOnce(shared, &$0, readDuration) })
            counter.publish(reads)
            result.poisoned = poisoned
        } else {
            result.poisoned = readLoop(shared, counter: counter, control: control, readDuration: readDuration)
        }
        result.reads = counter.value.load(ordering: .relaxed)
        return result
    }

    /// test_rwlock's and test_mutex's loop: until the run stops.
    @inline(never)
    static func readLoop(_ shared: Shared, counter: PaddedCounter, control: StressControl, readDuration: Int) -> Int {
        UrcuReadLoop.plain(counter: counter, control: control) { readOnce(shared, &$0, readDuration) }
    }

    /// `count` untimed reads (``UrcuReadLoop/burst(count:control:_:)``).
    @inline(never)
    static func readBurst(_ shared: Shared, count: Int, control: StressControl, readDuration: Int) -> UrcuReadBurst {
        UrcuReadLoop.burst(count: count, control: control) { readOnce(shared, &$0, readDuration) }
    }

    /// One read-locked section: counts a read in `bad` (``UrcuReadLoop/poisoned(_:)``) if the node
    /// holds the poison value (the lock let the reader in during a write).
    @inline(__always)
    static func readOnce(_ shared: Shared, _ bad: inout Int, _ readDuration: Int) {
        shared.lock.readLock()
        defer { shared.lock.readUnlock() }
        let value = shared.node.value.load(ordering: .relaxed)
        if _slowPath(value != StressNode.live) { UrcuReadLoop.poisoned(&bad) }
        if _slowPath(readDuration != 0) { SpinDelay.loop(readDuration) }
    }

    static func writer(
        _ shared: Shared, _ counter: PaddedCounter, _ control: StressControl, _ config: UrcuConfiguration
    ) -> Int {
        var writes = 0
        control.waitForGo()
        repeat {
            shared.lock.writeLock()
            shared.node.poisonNow()
            shared.node.makeLive()
            if config.writeDuration != 0 { SpinDelay.loop(config.writeDuration) }
            shared.lock.writeUnlock()
            writes &+= 1
            counter.publish(writes)
            if control.shouldStop { break }
            if config.writerDelay != 0 { SpinDelay.loop(config.writerDelay) }
        } while true
        return writes
    }
}
