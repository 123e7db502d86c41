/// The `urcu` run for the lock baselines (`--flavor rwlock|mutex`): the same
/// node and checks as the RCU flavors, with a pthread lock around the pointer
/// instead of RCU.
///
/// Readers take the lock for reading, load the pointer, check the value and
/// unlock. Writers take it for writing, publish a new node, poison the old one
/// and unlock; the old node is then freed at once (no reader can hold it).
enum UrcuLockBaselineRun<Lock: BaselineLock> {
    /// The lock and the pointer it guards (a raw +1 reference to the current node).
    ///
    /// The pointer lives in a heap slot rather than a `var` of the class, so
    /// accesses are plain loads and stores (no dynamic exclusivity checks).
    final class Shared: @unchecked Sendable {
        let lock = Lock()
        let slot: UnsafeMutablePointer<UnsafeMutableRawPointer>

        init() {
            slot = .allocate(capacity: 1)
            slot.initialize(to: Unmanaged.passRetained(StressNode()).toOpaque())
        }

        deinit {
            Unmanaged<StressNode>.fromOpaque(slot.pointee).release()
            slot.deallocate()
        }
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

    static func reader(
        _ shared: Shared, _ counter: PaddedCounter, _ control: StressControl, _ config: UrcuConfiguration
    ) -> UrcuReaderResult {
        var result = UrcuReaderResult()
        var sampler = LatencySampler(every: config.sampleEvery)
        var reads = 0
        var poisoned = 0
        control.waitForGo()
        repeat {
            if sampler.shouldSample() {
                let start = MonotonicClock.nanoseconds()
                poisoned &+= readOnce(shared, config.readDuration)
                result.latency.record(nanoseconds: MonotonicClock.nanoseconds() &- start)
            } else {
                poisoned &+= readOnce(shared, config.readDuration)
            }
            reads &+= 1
            if reads & 1023 == 0 { counter.publish(reads) }
        } while !control.shouldStop
        result.reads = reads
        result.poisoned = poisoned
        return result
    }

    /// One read-locked section: 1 if the node holds the poison value.
    @inline(__always)
    static func readOnce(_ shared: Shared, _ readDuration: Int) -> Int {
        shared.lock.readLock()
        defer { shared.lock.readUnlock() }
        let bad = Unmanaged<StressNode>.fromOpaque(shared.slot.pointee)._withUnsafeGuaranteedRef { $0.isLive ? 0 : 1 }
        if readDuration != 0 { SpinDelay.loop(readDuration) }
        return bad
    }

    static func writer(
        _ shared: Shared, _ counter: PaddedCounter, _ control: StressControl, _ config: UrcuConfiguration
    ) -> Int {
        var writes = 0
        control.waitForGo()
        repeat {
            let node = Unmanaged.passRetained(StressNode()).toOpaque()
            shared.lock.writeLock()
            let old = shared.slot.pointee
            shared.slot.pointee = node
            if config.writeDuration != 0 { SpinDelay.loop(config.writeDuration) }
            Unmanaged<StressNode>.fromOpaque(old)._withUnsafeGuaranteedRef { $0.poisonNow() }
            shared.lock.writeUnlock()
            Unmanaged<StressNode>.fromOpaque(old).release()
            writes &+= 1
            counter.publish(writes)
            if control.shouldStop { break }
            if config.writerDelay != 0 { SpinDelay.loop(config.writerDelay) }
        } while true
        return writes
    }
}
