import IOMMU
import RCU
import Synchronization

/// The target of the registry's `onQuarantine` hook (called on a work-queue thread, under
/// `group->mutex`, each time a reported device is moved to the blocking domain): records
/// report-to-quarantine latency and the quarantined generation, and counts quarantines of
/// devices that were no longer in a group ("late" reports, applied after removal).
final class RegistryQuarantineSink<Flavor: RCUFlavor>: @unchecked Sendable {
    private let lock = BaselineMutex()
    private var slots: [ObjectIdentifier: RegistryDeviceSlot<Flavor>] = [:]
    private weak var registry: Registry<Flavor>?
    private var latency = ReadLatency()
    private let late = Atomic<Int>(0)
    private let unknown = Atomic<Int>(0)

    /// Connects the sink to the registry and its devices' slots, before any report is made.
    func attach(_ registry: Registry<Flavor>, slots: [RegistryDeviceSlot<Flavor>]) {
        lock.withLock {
            self.registry = registry
            for slot in slots { self.slots[ObjectIdentifier(slot.device)] = slot }
        }
    }

    /// The hook body: `dev` was just quarantined.
    func quarantined(_ dev: Device<Flavor>) {
        let now = MonotonicClock.nanoseconds()
        lock.withLock {
            guard let slot = slots[ObjectIdentifier(dev)] else {
                unknown.add(1, ordering: .relaxed)
                return
            }
            // dev->iommu_group is stable under group->mutex: nil means the device was removed.
            if registry?.group(of: dev) == nil { late.add(1, ordering: .relaxed) }
            slot.quarantinedGeneration.store(slot.generation.load(ordering: .acquiring), ordering: .relaxed)
            let since = slot.pendingSince.exchange(0, ordering: .relaxed)
            if since != 0 { latency.record(nanoseconds: now &- since) }
        }
    }

    /// Adds latencies measured elsewhere (the driver-only design quarantines in the reader).
    func merge(_ other: ReadLatency) {
        lock.withLock { latency.merge(other) }
    }

    /// Report-to-quarantine latencies recorded so far.
    var latencies: ReadLatency { lock.withLock { latency } }

    /// Quarantines of devices no longer in a group, or unknown to the benchmark.
    var lateReports: Int { late.load(ordering: .relaxed) + unknown.load(ordering: .relaxed) }
}
