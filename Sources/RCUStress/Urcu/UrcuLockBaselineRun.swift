#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The `urcu` run for the lock baselines (`--flavor rwlock|mutex`): liburcu's
/// test_rwlock and test_mutex, with the same node and check as the RCU flavors.
///
/// Readers take the lock for reading, check that the node holds the live value
/// and unlock. Writers take it for writing, poison the node and make it live
/// again (test_rwlock's `a = 0; a = 8`), then unlock: a reader that sees the
/// poison has proof the lock let it in during a write. As in liburcu, a lock
/// writer allocates nothing; only RCU needs a new copy per update. The rwlock's
/// calls are checked, as test_rwlock checks its `ret` (a test and a branch a call);
/// the mutex's are not, as test_mutex's are not.
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
            config, backlog: { 0 }, watchesBacklog: false,
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
        check(shared.lock.readLockStatus(), "reader", Lock.readLockName)
        let value = shared.node.value.load(ordering: .relaxed)
        if _slowPath(value != StressNode.live) { UrcuReadLoop.poisoned(&bad) }
        if _slowPath(readDuration != 0) { SpinDelay.loop(readDuration) }
        check(shared.lock.readUnlockStatus(), "reader", Lock.unlockName)
    }

    /// A pthread call's result, checked as test_rwlock checks `ret` (anything but 0 ends
    /// the run, ``lockCallFailed(_:_:_:)``); ignored, as test_mutex ignores it, for the mutex.
    @inline(__always)
    static func check(_ status: Int32, _ role: StaticString, _ call: StaticString) {
        if Lock.checkedByLiburcu && _slowPath(status != 0) { lockCallFailed(role, call, status) }
    }

    /// test_rwlock's `fprintf(stderr, "reader pthread_rwlock_rdlock: %s\n", strerror(ret)); abort();`.
    @inline(never)
    static func lockCallFailed(_ role: StaticString, _ call: StaticString, _ status: Int32) -> Never {
        fatalError("rcu-stress urcu: \(role) \(call): \(String(cString: strerror(status)))")
    }

    static func writer(
        _ shared: Shared, _ counter: PaddedCounter, _ control: StressControl, _ config: UrcuConfiguration
    ) -> Int {
        var writes = 0
        control.waitForGo()
        repeat {
            check(shared.lock.writeLockStatus(), "writer", Lock.writeLockName)
            shared.node.poisonNow()
            shared.node.makeLive()
            if config.writeDuration != 0 { SpinDelay.loop(config.writeDuration) }
            check(shared.lock.writeUnlockStatus(), "writer", Lock.unlockName)
            writes &+= 1
            counter.publish(writes)
            if control.shouldStop { break }
            if config.writerDelay != 0 { SpinDelay.loop(config.writerDelay) }
        } while true
        return writes
    }
}
