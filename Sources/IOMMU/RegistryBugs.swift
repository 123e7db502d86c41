/// The buggy orderings of the specification's scenarios S1-S9, each selectable on its own.
///
/// Every scenario exists in two forms: the buggy one selected here, which the
/// project's checkers (the registry's use-after-free detector, Lockdep, the
/// registry's WARNs) must catch with the named report, and the fixed one (the
/// default, an empty set) that runs clean. Pass the bugs to ``Registry/init(configuration:)``
/// through ``Registry/Configuration/bugs``.
public struct RegistryBugs: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// S1 (seed 000, before the fix): `iommu_group_release` frees the group at once
    /// (`kfree`) instead of after a grace period (`kfree_rcu`). An ISR that loaded
    /// `dev->iommu_group` then touches a freed group: a use-after-free report on
    /// `IommuGroup#id`, freed at `iommu_group_release`.
    public static let plainFreeGroup = RegistryBugs(rawValue: 1 << 0)

    /// S2 (before v3's RCU list): `__iommu_group_remove_device` unlinks with `list_del`
    /// and frees the `group_device` at once, under the mutex. An ISR walking
    /// `group->devices` reaches a freed `GroupDevice`.
    public static let nonRCUDeviceList = RegistryBugs(rawValue: 1 << 1)

    /// S3: `dev->iommu_group` published before the group is initialised (what a
    /// plain, unordered store allows). Readers may observe a half-built group.
    public static let unpublishedStore = RegistryBugs(rawValue: 1 << 2)

    /// S4 (seed 001, before the fix): the remover cancels the `gdev_broken` work with
    /// `cancel_work_sync()` while holding `group->mutex`, which the worker takes.
    /// Lockdep: circular dependency `group->mutex -> work:gdev_broken -> group->mutex`.
    public static let cancelUnderGroupMutex = RegistryBugs(rawValue: 1 << 3)

    /// S5 (design D1): the remover uses `cancel_work_sync()` (nothing pending yet) and
    /// neither waits for a grace period nor disables the work, so an ISR that found
    /// the gdev before `list_del_rcu` queues the work afterwards; the worker then runs
    /// on a freed `GroupDevice`.
    public static let queueAfterCancel = RegistryBugs(rawValue: 1 << 4)

    /// S6 (the 2023 "safe ways"): the ISR takes `dev_iommu_group_lock` (a mutex) to read
    /// `dev->iommu_group`. Lockdep: sleeping function called from invalid context.
    public static let mutexInISR = RegistryBugs(rawValue: 1 << 5)

    /// S7 (2023, `a16b5d1681ab`): `__iommu_probe_device` takes `device_lock(dev)` although
    /// `really_probe` (or the IOMMU's own probe) already holds it. Lockdep: possible
    /// recursive locking; the model refuses the second acquire instead of hanging.
    public static let recursiveDeviceLock = RegistryBugs(rawValue: 1 << 6)

    /// S8 (baseline before seed 001): the empty-group assertion runs in
    /// `__iommu_group_free_device` after the unlock instead of under the mutex
    /// (`lockdep_assert_held` fails), as a remover that hoisted the free but not the check would.
    public static let emptyCheckOutsideMutex = RegistryBugs(rawValue: 1 << 7)

    /// S9: `pci_dev_reset_iommu_prepare()` does not count the device in `recovery_cnt`,
    /// so attaches during a reset are not fenced (I5 is violated and the attach succeeds).
    public static let noRecoveryFence = RegistryBugs(rawValue: 1 << 8)

    /// Design D2 as first ported: the `dev_iommu` worker takes `&param->lock` (`dev->iommu->lock`)
    /// before `group->mutex`. The modelled SMMUv3 driver takes `&queue->lock -> &param->lock` under
    /// `group->mutex` when a fault-capable domain is attached or detached (`iopf_queue_add_device`
    /// / `iopf_queue_remove_device`), so Lockdep reports the circular dependency the kernel's would.
    public static let paramLockInDevIommuWorker = RegistryBugs(rawValue: 1 << 9)

    /// Every bug.
    public static let all: RegistryBugs = [
        .plainFreeGroup, .nonRCUDeviceList, .unpublishedStore, .cancelUnderGroupMutex, .queueAfterCancel,
        .mutexInISR, .recursiveDeviceLock, .emptyCheckOutsideMutex, .noRecoveryFence, .paramLockInDevIommuWorker,
    ]
}
