/// How a broken device reported from interrupt context gets quarantined (spec section 8).
public enum BrokenDeviceDesign: String, Sendable, CaseIterable {
    /// D1 (seed 003's patch, v4 11/24): under `rcu_read_lock`, `dev->iommu_group` and the
    /// RCU group device list lead to the `group_device`, whose `broken_work` is queued;
    /// the worker takes `group->mutex`, revalidates and blocks the device.
    case rcu
    /// D2 (the reviewer's): the ISR reaches `dev_iommu` through the driver's own
    /// per-device state (its `master`, under the driver's spinlock) and queues the work
    /// on `dev_iommu`; the worker takes `group->mutex` (no `&param->lock`: the driver's IOPF
    /// queue already orders `group->mutex -> &queue->lock -> &param->lock`). The remover
    /// disables the work before it takes `group->mutex`.
    case devmutex
    /// D0: no core work. The driver blocks ATS itself; recovery goes through an FLR
    /// (`pci_dev_reset_iommu_prepare()` / `done()`).
    case driverOnly
}

/// How the read path (lookups device -> group -> group device) is synchronised
/// against writers. ``rcu`` is the port; the other two are the benchmark's baselines.
public enum ReaderSynchronization: String, Sendable, CaseIterable {
    /// Lock-free RCU readers (the port).
    case rcu
    /// Baseline: readers take one registry-wide pthread rwlock for read, writers for write.
    case rwlock
    /// Baseline: readers and writers take one registry-wide pthread mutex.
    case mutex
}
