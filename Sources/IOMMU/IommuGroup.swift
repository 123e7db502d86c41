public import Lockdep
public import RCU
internal import Synchronization

/// An IOMMU group (the kernel's `struct iommu_group`): the devices that cannot be
/// isolated from each other, and the domain they share.
///
/// Everything except the RCU device list is guarded by ``mutex``. ISRs reach a group
/// only through `dev->iommu_group` inside a read section, and then touch only the
/// device list. The group is freed (``ObjectLifecycle``) a grace period after its
/// reference count drops to zero (`kfree_rcu` in `iommu_group_release`), on the
/// registry's RCU flavor, `Flavor`.
public final class IommuGroup<Flavor: RCUFlavor>: ObjectLifecycle, RCUReclaimable, CustomStringConvertible, @unchecked Sendable {
    /// The group number (from the IDA; reused after the group is freed).
    public let id: Int
    /// `group->name`.
    public let name: String
    /// Set (before `life` is freed) by ``markFreed(at:)``: the bit an ISR's check reads,
    /// kept here so that checking a live group costs no load from another object.
    let freedMark = Atomic<Bool>(false)
    /// `devices_kobj`'s reference count.
    let ref = Atomic<Int>(1)
    /// References taken with ``Registry/groupGet(_:)`` and not yet put (for I10).
    let externalRefs = Atomic<Int>(0)
    /// `group->mutex`.
    public let mutex: CheckedMutex
    /// `group->devices`, RCU-published for ISR readers; writers hold ``mutex``.
    let _devices: RCUList<GroupDevice<Flavor>, Flavor>
    /// The writer-side view of `group->devices` (`for_each_group_device`), guarded by ``mutex``.
    var members: [GroupDevice<Flavor>] = []
    /// S3: set once the group is fully initialised; readers assert it.
    let initComplete = Atomic<Bool>(false)
    /// The modelled driver's grouping key.
    let tag: String?

    // Guarded by `mutex`.
    var defaultDomain: Domain?
    var blockingDomain: Domain?
    var domain: Domain?
    var owner: ObjectIdentifier?
    var ownerCnt = 0
    var recoveryCnt = 0
    /// Port-only bookkeeping for I5: blocked devices that left the group while blocked. The
    /// kernel's `__iommu_group_remove_device` does not decrement `recovery_cnt` for them, so the
    /// group stays fenced (`-EBUSY`); this counts the difference.
    var recoveryLeftByRemoved = 0
    var pasidArray: [UInt32: Domain] = [:]

    init(id: Int, tag: String?, mutexClass: LockClass, log: RegistryLog) {
        self.id = id
        self.tag = tag
        self.name = "\(id)"
        let mutex = CheckedMutex(class: mutexClass)
        self.mutex = mutex
        _devices = RCUList(lock: mutex)   // every mutation checks lockdep_is_held(&group->mutex)
        super.init(.numbered("IommuGroup", id), log: log)
    }

    /// `group->devices` for a reader; checks that the group is not freed. Inlined, so the
    /// list is borrowed (returning it from a call would retain a list every reader shares).
    var devices: RCUList<GroupDevice<Flavor>, Flavor> {
        @inline(__always) get {
            if freedMark.load(ordering: .acquiring) { reportIfFreed("IommuGroup.devices") }
            return _devices
        }
    }

    /// The kernel's `kfree(group)`: marks the group, then its lifecycle, freed.
    func markFreed(at site: String) {
        freedMark.store(true, ordering: .releasing)
        life.free(at: site)
    }

    /// The end of `iommu_group_release`'s grace period (`RCUFlavor.retire(reclaiming:)`): the `kfree`.
    public func reclaim() { markFreed(at: "iommu_group_release") }

    public var description: String { "IommuGroup#\(id)" }
}

/// Why a group device is blocked (the kernel's `enum gdev_blocked`).
public enum GdevBlocked: UInt8, Sendable {
    /// Not blocked (`BLOCKED_NO`).
    case none = 0
    /// A PCI reset is in flight (`BLOCKED_RESETTING`).
    case reset = 1
    /// Reported broken, or a reset failed: quarantined until a successful reset.
    case broken = 2
}

/// A device's membership in a group (the kernel's `struct group_device`), on the
/// registry's RCU flavor, `Flavor`.
public final class GroupDevice<Flavor: RCUFlavor>: ObjectLifecycle, RCUReclaimable, CustomStringConvertible, @unchecked Sendable {
    /// Set (before `life` is freed) by ``markFreed(at:)``: see ``IommuGroup/freedMark``.
    let freedMark = Atomic<Bool>(false)
    let _dev: Device<Flavor>
    /// `gdev->name`.
    public let name: String
    /// `gdev->blocked`: written under the group mutex, loaded by ISRs.
    let blockedRaw = Atomic<UInt8>(GdevBlocked.none.rawValue)
    /// `gdev->reset_depth` (mutex).
    var resetDepth = 0
    /// The domain the device is attached to in hardware (mutex).
    var attachedDomain: Domain?
    /// Design D1: set under the mutex when unlinked; the worker revalidates with it.
    let removed = Atomic<Bool>(false)
    /// Design D1: `gdev->broken_work`.
    var brokenWork: WorkItem?
    /// The list node, for `list_del_rcu` (mutex; cleared when unlinked).
    var node: RCUListNode<GroupDevice<Flavor>>?

    init(dev: Device<Flavor>, log: RegistryLog) {
        self._dev = dev
        self.name = dev.name
        super.init(.owned("GroupDevice", dev.name), log: log)
    }

    /// `gdev->dev` (immutable); checks that the group device is not freed.
    public var dev: Device<Flavor> {
        @inline(__always) get {
            if freedMark.load(ordering: .acquiring) { reportIfFreed("GroupDevice.dev") }
            return _dev
        }
    }

    /// `gdev->blocked`; checks that the group device is not freed.
    public var blocked: GdevBlocked {
        if freedMark.load(ordering: .acquiring) { reportIfFreed("GroupDevice.blocked") }
        return GdevBlocked(rawValue: blockedRaw.load(ordering: .relaxed)) ?? .none
    }

    func setBlocked(_ value: GdevBlocked) { blockedRaw.store(value.rawValue, ordering: .relaxed) }

    /// The kernel's `kfree(gdev)`: marks the group device, then its lifecycle, freed.
    func markFreed(at site: String) {
        freedMark.store(true, ordering: .releasing)
        life.free(at: site)
    }

    /// The end of `__iommu_group_free_device`'s grace period (`RCUFlavor.retire(reclaiming:)`): the `kfree`.
    public func reclaim() { markFreed(at: "__iommu_group_free_device") }

    public var description: String { "GroupDevice(\(name))" }
}
