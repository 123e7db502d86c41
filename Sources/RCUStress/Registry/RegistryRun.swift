#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import IOMMU
import Lockdep
import RCU
import Synchronization

/// One `rcu-stress registry` run of one design: builds the registry with G x N probed
/// devices, runs R reader and W writer threads for the duration while the main thread
/// samples the call_rcu backlog and RSS, then stops, flushes the broken-device work,
/// checks the invariants on the quiescent registry and tears it down. `Flavor` is the
/// registry's RCU flavor (`--flavor`).
enum RegistryRun<Flavor: RCUFlavor> {
    /// How many points of the RSS / backlog series a run records (to show they stay flat).
    static var seriesPoints: Int { 10 }

    static func run(_ configuration: RegistryRunConfiguration) -> RegistryResult {
        // Flow control is the library's backlog policy (RCUBacklogPolicy): the registry's retires
        // (kfree_rcu of gdevs and groups) throttle the writers past the high-water mark.
        let savedPolicy = Flavor.backlogPolicy
        if let limit = configuration.backlogLimit {
            Flavor.backlogPolicy = limit == 0
                ? .unbounded : RCUBacklogPolicy(highWaterMark: limit, lowWaterMark: limit / 2)
        }
        defer { Flavor.backlogPolicy = savedPolicy }
        let throttlingBefore = Flavor.backlog
        let lockdep = RegistryLockdepReports.shared
        lockdep.install()
        let lockdepBefore = lockdep.total
        let sink = RegistryQuarantineSink<Flavor>()
        var registryConfiguration = Registry<Flavor>.Configuration(design: configuration.design.brokenDeviceDesign)
        registryConfiguration.readerSynchronization = configuration.design.readerSynchronization
        registryConfiguration.countsReads = false
        registryConfiguration.onQuarantine = { sink.quarantined($0) }
        let registry = Registry(flavor: Flavor.self, configuration: registryConfiguration)

        var setupErrors: [String] = []
        let slots = (0..<configuration.deviceCount).map { index in
            let group = index / configuration.devicesPerGroup
            return RegistryDeviceSlot<Flavor>(
                device: registry.makeDevice(name: "0000:\(group):\(index % configuration.devicesPerGroup)",
                                            groupTag: "g\(group)"))
        }
        sink.attach(registry, slots: slots)
        for slot in slots {
            do { try registry.probeDevice(slot.device) } catch { setupErrors.append("probeDevice(\(slot.device)): \(error)") }
        }

        let control = StressControl(threads: configuration.readers + configuration.writers)
        let threads = RegistryThreads(registry: registry, slots: slots, control: control, configuration: configuration)
        let collector = RegistryCollector()
        var running = (0..<configuration.readers).map { index in
            StressThread { collector.add(threads.read(index: index)) }
        }
        for index in 0..<configuration.writers {
            let counter = control.counters[configuration.readers + index]
            running.append(StressThread { collector.add(threads.write(index: index, counter: counter)) })
        }
        let series = RegistrySeries<Flavor>()
        let sampler = StressThread {
            control.waitForGo()
            series.record(seconds: configuration.seconds, points: seriesPoints, control: control)
        }

        var monitor = StressMonitor(unit: "lookups", backlog: { Flavor.pendingCallbacks })
        control.go.store(true, ordering: .releasing)
        let elapsed = monitor.wait(seconds: configuration.seconds,
                                   counters: Array(control.counters.prefix(configuration.readers)))
        control.stop.store(true, ordering: .releasing)
        running.forEach { $0.join() }
        sampler.join()
        monitor.sample()
        let throttlingAfter = Flavor.backlog

        // Quiescent: let every queued report run, then check what must hold.
        registry.flushBrokenWork()
        let lost = slots.filter(\.hasLostReport).count
        registry.checkInvariants(quiescent: true)

        // Tear down: release every device, let the grace periods free everything.
        for slot in slots {
            do { try registry.releaseDevice(slot.device) } catch { setupErrors.append("releaseDevice(\(slot.device)): \(error)") }
        }
        registry.shutdown()
        Flavor.barrier()

        let readers = collector.readerResults
        let writers = collector.writerResults
        var latency = ReadLatency()
        for reader in readers {
            latency.merge(reader.latency)
            sink.merge(reader.quarantineLatency)
        }
        var result = RegistryResult(configuration: configuration)
        result.seconds = elapsed
        result.lookups = readers.reduce(0) { $0 + $1.lookups }
        result.reports = readers.reduce(0) { $0 + $1.reports }
        result.writerOperations = writers.reduce(0) { $0 + $1.operations }
        result.backlogWaits = throttlingAfter.throttledRetires - throttlingBefore.throttledRetires
        let throttled = throttlingAfter.throttledTime - throttlingBefore.throttledTime
        result.backlogWaitNanoseconds = UInt64(max(0, throttled.components.seconds * 1_000_000_000
                                                   + throttled.components.attoseconds / 1_000_000_000))
        result.latency = latency
        result.backlogHighWaterMark = configuration.backlogLimit.map { $0 == 0 ? .max : $0 } ?? savedPolicy.highWaterMark
        result.quarantineLatency = sink.latencies
        result.quarantined = registry.counters.quarantined.load(ordering: .relaxed)
        result.backlogPeak = max(monitor.backlogPeak, series.backlogPeak)
        result.residentPeak = max(monitor.residentPeak, series.residentPeak)
        result.residentSeries = series.resident
        result.backlogSeries = series.backlog
        result.useAfterFree = registry.log.useAfterFreeTotal
        result.invariantViolations = registry.log.invariantViolationTotal
        result.warnings = registry.log.warningTotal
        result.lostReports = lost
        result.lateReports = sink.lateReports
        result.writerErrors = writers.reduce(0) { $0 + $1.errors } + setupErrors.count
        result.lockdepReports = lockdep.total - lockdepBefore
        var diagnostics: [String] = Array(setupErrors.prefix(3))
        diagnostics += writers.compactMap(\.firstError).prefix(3)
        diagnostics += registry.log.useAfterFreeReports.prefix(3).map(\.description)
        diagnostics += registry.log.invariantViolations.prefix(3).map(\.description)
        diagnostics += registry.log.warnings.prefix(3).map(\.description)
        if result.lockdepReports > 0 { diagnostics += lockdep.firstTexts }
        result.diagnostics = diagnostics
        return result
    }
}

/// RSS and call_rcu backlog sampled at evenly spaced points of a run, from a thread of its
/// own (the main thread is in ``StressMonitor/wait(seconds:counters:)``): a flat series is the
/// "backlog and RSS flat over time" target.
final class RegistrySeries<Flavor: RCUFlavor>: @unchecked Sendable {
    private(set) var resident: [Int] = []
    private(set) var backlog: [Int] = []

    var residentPeak: Int { resident.max() ?? 0 }
    var backlogPeak: Int { backlog.max() ?? 0 }

    /// Samples `points` times, once at the end of each `seconds / points` slice. If the run stops
    /// first (this thread was scheduled late on a loaded machine), the points still due are taken
    /// at the stop, so a series always has `points` points.
    func record(seconds: Double, points: Int, control: StressControl) {
        let start = MonotonicClock.nanoseconds()
        for point in 1...points {
            let due = start + UInt64(seconds * 1e9 * Double(point) / Double(points))
            while MonotonicClock.nanoseconds() < due && !control.shouldStop {
                var pause = timespec(tv_sec: 0, tv_nsec: 5_000_000)
                _ = nanosleep(&pause, nil)
            }
            resident.append(ProcessMemory.residentBytes)
            backlog.append(Flavor.pendingCallbacks)
        }
    }
}
