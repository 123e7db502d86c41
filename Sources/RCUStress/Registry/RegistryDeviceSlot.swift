import IOMMU
import RCU
import Synchronization

/// The benchmark's bookkeeping for one device, next to the registry's own state, for the
/// correctness counters that the registry cannot count itself (lost and late reports) and
/// for report-to-quarantine latency.
///
/// ``generation`` works like a seqlock: the device's writer makes it odd before it releases
/// the device and even again after the probe that follows, so a reader that loads the same
/// even value before and after a report knows the report hit one stable probe of the device.
final class RegistryDeviceSlot<Flavor: RCUFlavor>: Sendable {
    /// The device (immutable; shared by every thread).
    let device: Device<Flavor>
    /// Even while the device is probed and no writer is touching it; odd in transition.
    let generation = Atomic<UInt64>(0)
    /// The latest stable generation a reader reported the device broken in.
    let reportedGeneration = Atomic<UInt64>(UInt64.max)
    /// The generation the device was last quarantined in (the `onQuarantine` hook, or the
    /// reader itself for the driver-only design).
    let quarantinedGeneration = Atomic<UInt64>(UInt64.max)
    /// When the first not-yet-quarantined report was made (monotonic ns), or 0.
    let pendingSince = Atomic<UInt64>(0)

    init(device: Device<Flavor>) {
        self.device = device
    }

    /// Raises ``reportedGeneration`` to `generation` (a report in a stable generation).
    func noteReported(in generation: UInt64) {
        var current = reportedGeneration.load(ordering: .relaxed)
        while current == UInt64.max || current < generation {
            let (done, found) = reportedGeneration.compareExchange(
                expected: current, desired: generation, ordering: .relaxed)
            if done { return }
            current = found
        }
    }

    /// Whether a report made in the device's final generation never led to a quarantine:
    /// checked after the writers stopped and the broken-device work was flushed.
    var hasLostReport: Bool {
        let final = generation.load(ordering: .acquiring)
        return reportedGeneration.load(ordering: .relaxed) == final
            && quarantinedGeneration.load(ordering: .relaxed) != final
    }
}
