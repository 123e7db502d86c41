import IOMMU
import Lockdep
import RCU

/// What one reader thread counted.
struct RegistryReaderResult: Sendable {
    var lookups = 0
    var reports = 0
    var latency = ReadLatency()
    /// Driver-only design: report-to-ATS-blocked latencies (the reader quarantines itself).
    var quarantineLatency = ReadLatency()
}

/// What one writer thread counted.
struct RegistryWriterResult: Sendable {
    var operations = 0
    var errors = 0
    var firstError: String?
}

/// The reader and writer loops of `rcu-stress registry`.
///
/// The devices are handed to the hot loops as `Unmanaged` references used through
/// `_withUnsafeGuaranteedRef`: loading a class reference out of an array would otherwise
/// retain and release the shared device (an atomic on a cache line every reader touches)
/// on every lookup, and measure ARC instead of RCU.
final class RegistryThreads<Flavor: RCUFlavor>: @unchecked Sendable {
    let registry: Registry<Flavor>
    let slots: [RegistryDeviceSlot<Flavor>]
    let devices: [Unmanaged<Device<Flavor>>]
    let unmanagedSlots: [Unmanaged<RegistryDeviceSlot<Flavor>>]
    let control: StressControl
    let configuration: RegistryRunConfiguration

    init(registry: Registry<Flavor>, slots: [RegistryDeviceSlot<Flavor>], control: StressControl,
         configuration: RegistryRunConfiguration) {
        self.registry = registry
        self.slots = slots
        self.devices = slots.map { Unmanaged.passUnretained($0.device) }
        self.unmanagedSlots = slots.map { Unmanaged.passUnretained($0) }
        self.control = control
        self.configuration = configuration
    }

    /// An "ISR-like" reader: each iteration is one interrupt (`Lockdep.withContext(.hardirq)`)
    /// that looks up device -> group -> group device, or, one time in `reportEvery`, reports
    /// the device broken. Never takes a mutex (with the lock baselines, the registry lock).
    func read(index: Int) -> RegistryReaderResult {
        if configuration.design == .unsynchronized { return readUnsynchronized(index: index) }
        Lockdep.currentThreadName = "isr-\(index)"
        let registry = self.registry
        control.waitForGo()
        // Registered (and, for qsbr, online) from here to the end of the run, not while
        // waiting for the start: an online qsbr thread that blocks holds up grace periods.
        // RCU designs look up through the scope's reader (a read section per lookup, without the
        // generic read's registration check), opened here so that it inlines into the loop, as
        // `Registry.lookup(_:with:)` opens the same section; the lock baselines through their
        // registry lock. One loop for each, so that no lookup tests which one it is.
        return Flavor.withReader { reader in
            configuration.design.usesRCUReaders
                ? readerLoop(index: index, registry: registry, reader: reader, rcu: true)
                : readerLoop(index: index, registry: registry, reader: reader, rcu: false)
        }
    }

    /// The reader's loop until the stop, each lookup (in the hardirq context) in a section of
    /// `reader` (`rcu`) or through the registry lock. `rcu` is a constant at both call sites,
    /// so each loop holds one kind of lookup written out in place: no closure call per lookup,
    /// whose inlining would otherwise depend on how much code Lockdep's checks add.
    @inline(__always)
    private func readerLoop(index: Int, registry: Registry<Flavor>, reader: borrowing RCUReader<Flavor>,
                            rcu: Bool) -> RegistryReaderResult {
        var result = RegistryReaderResult()
        var random = StressRandom(seed: UInt64(index) &+ 0x5151)
        var sampler = LatencySampler(every: configuration.sampleEvery)
        var reportCountdown = configuration.reportEvery
        let counter = control.counters[index]
        let count = devices.count
        var iterations = 0
        devices.withUnsafeBufferPointer { devices in
            unmanagedSlots.withUnsafeBufferPointer { slots in
                while !control.shouldStop {
                    iterations &+= 1
                    let pick = random.index(below: count)
                    reportCountdown &-= 1
                    if reportCountdown == 0 {
                        reportCountdown = configuration.reportEvery
                        slots[pick]._withUnsafeGuaranteedRef { report($0, into: &result) }
                    } else if sampler.shouldSample() {
                        let start = MonotonicClock.nanoseconds()
                        devices[pick]._withUnsafeGuaranteedRef { dev in
                            Lockdep.withContext(.hardirq) {
                                _ = rcu ? reader.read { registry.lookup(dev, in: $0) } : registry.lookup(dev)
                            }
                        }
                        result.latency.record(nanoseconds: MonotonicClock.nanoseconds() &- start)
                    } else {
                        devices[pick]._withUnsafeGuaranteedRef { dev in
                            Lockdep.withContext(.hardirq) {
                                _ = rcu ? reader.read { registry.lookup(dev, in: $0) } : registry.lookup(dev)
                            }
                        }
                    }
                    if iterations & 1023 == 0 {
                        counter.publish(iterations)
                        // A qsbr reader announces it holds nothing from earlier sections (a
                        // constant `false` once specialised for memb), as liburcu's test_urcu_qsbr does.
                        Flavor.quiescentStateIfQSBR()
                    }
                }
            }
        }
        result.lookups = iterations
        return result
    }

    /// The ceiling's reader: the same lookup (`Registry.lookup(_:in:)`, the same device pick,
    /// the same hardirq context and sampling), inside one read section opened for the whole run,
    /// so no lookup executes any synchronization. Legal only because no writer runs (the design
    /// refuses writers): nothing waits for a grace period while the section is open. No reports.
    private func readUnsynchronized(index: Int) -> RegistryReaderResult {
        Lockdep.currentThreadName = "isr-\(index)"
        var result = RegistryReaderResult()
        var random = StressRandom(seed: UInt64(index) &+ 0x5151)
        var sampler = LatencySampler(every: configuration.sampleEvery)
        let counter = control.counters[index]
        let registry = self.registry
        let count = devices.count
        var iterations = 0
        control.waitForGo()
        Flavor.withReader { _ in
            Flavor.read { section in
                devices.withUnsafeBufferPointer { devices in
                    while !control.shouldStop {
                        iterations &+= 1
                        let pick = random.index(below: count)
                        if sampler.shouldSample() {
                            let start = MonotonicClock.nanoseconds()
                            devices[pick]._withUnsafeGuaranteedRef { dev in
                                Lockdep.withContext(.hardirq) { _ = registry.lookup(dev, in: section) }
                            }
                            result.latency.record(nanoseconds: MonotonicClock.nanoseconds() &- start)
                        } else {
                            devices[pick]._withUnsafeGuaranteedRef { dev in
                                Lockdep.withContext(.hardirq) { _ = registry.lookup(dev, in: section) }
                            }
                        }
                        if iterations & 1023 == 0 { counter.publish(iterations) }
                    }
                }
            }
        }
        result.lookups = iterations
        return result
    }

    /// One fault report, with the bookkeeping for lost reports and quarantine latency. A
    /// device already quarantined in its current probe is not reported again (the driver has
    /// blocked its ATS: no more invalidation timeouts), nor one a writer is moving.
    private func report(_ slot: RegistryDeviceSlot<Flavor>, into result: inout RegistryReaderResult) {
        let before = slot.generation.load(ordering: .acquiring)
        guard before & 1 == 0, slot.quarantinedGeneration.load(ordering: .relaxed) != before else {
            _ = Lockdep.withContext(.hardirq) { registry.lookup(slot.device) }
            return
        }
        result.reports += 1
        let start = MonotonicClock.nanoseconds()
        _ = slot.pendingSince.compareExchange(expected: 0, desired: start, ordering: .relaxed)
        let queued = Lockdep.withContext(.hardirq) { registry.reportBroken(slot.device) }
        let end = MonotonicClock.nanoseconds()
        let after = slot.generation.load(ordering: .sequentiallyConsistent)
        guard after == before else {
            // The device was released meanwhile: the report may rightly have been dropped.
            _ = slot.pendingSince.compareExchange(expected: start, desired: 0, ordering: .relaxed)
            return
        }
        // Queued, or coalesced with a pending report: either way it must end in a quarantine.
        slot.noteReported(in: before)
        if configuration.design == .driverOnly && queued && slot.device.atsBlocked.load(ordering: .relaxed) {
            // D0: the driver blocked ATS synchronously; that is the quarantine.
            slot.quarantinedGeneration.store(before, ordering: .relaxed)
            let since = slot.pendingSince.exchange(0, ordering: .relaxed)
            if since != 0 { result.quarantineLatency.record(nanoseconds: end &- since) }
        }
    }

    /// A writer: owns every `writers`-th device and churns it, release then probe (each one
    /// operation); with one device per group every release destroys a group and every probe
    /// creates one.
    func write(index: Int, counter: PaddedCounter) -> RegistryWriterResult {
        Lockdep.currentThreadName = "writer-\(index)"
        var result = RegistryWriterResult()
        let owned = Array(stride(from: index, to: slots.count, by: configuration.writers).map { slots[$0] })
        var random = StressRandom(seed: UInt64(index) &+ 0xA11CE)
        control.waitForGo()
        while !control.shouldStop {
            let slot = owned[random.index(below: owned.count)]
            slot.generation.add(1, ordering: .sequentiallyConsistent)   // odd: in transition
            do {
                try registry.releaseDevice(slot.device)
            } catch {
                result.errors += 1
                if result.firstError == nil { result.firstError = "releaseDevice(\(slot.device)): \(error)" }
            }
            slot.pendingSince.store(0, ordering: .relaxed)
            slot.device.atsBlocked.store(false, ordering: .relaxed)   // the driver's master is gone
            do {
                try registry.probeDevice(slot.device)
            } catch {
                result.errors += 1
                if result.firstError == nil { result.firstError = "probeDevice(\(slot.device)): \(error)" }
            }
            slot.generation.add(1, ordering: .sequentiallyConsistent)   // even: stable again
            result.operations += 2
            // Flow control is the library's: past the flavor's backlogPolicy high-water mark the
            // registry's retires (kfree_rcu of the gdev and the group) throttle this writer.
            if result.operations & 63 == 0 { counter.publish(result.operations) }
        }
        return result
    }
}

/// Collects the threads' results.
final class RegistryCollector: @unchecked Sendable {
    private let lock = BaselineMutex()
    private var readers: [RegistryReaderResult] = []
    private var writers: [RegistryWriterResult] = []

    func add(_ reader: RegistryReaderResult) { lock.withLock { readers.append(reader) } }
    func add(_ writer: RegistryWriterResult) { lock.withLock { writers.append(writer) } }
    var readerResults: [RegistryReaderResult] { lock.withLock { readers } }
    var writerResults: [RegistryWriterResult] { lock.withLock { writers } }
}
