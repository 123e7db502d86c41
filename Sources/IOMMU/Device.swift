public import Lockdep
public import RCU
public import Synchronization

/// A device on a bus (the kernel's `struct device`), as the IOMMU core sees it.
///
/// Create devices with ``Registry/makeDevice(name:groupTag:)`` so their locks get the
/// registry's Lockdep classes. Devices that share a `groupTag` are put in one IOMMU
/// group by the modelled IOMMU driver (its `device_group` callback), like PCI functions
/// behind one non-ACS bridge. `Flavor` is the registry's RCU flavor, which publishes
/// ``Registry/group(of:)``.
public final class Device<Flavor: RCUFlavor>: @unchecked Sendable, CustomStringConvertible {
    /// The device name (`dev_name(dev)`).
    public let name: String
    /// Devices with the same tag share an IOMMU group; `nil` gives the device its own group.
    public let groupTag: String?

    /// `dev->iommu_group`: RCU-published. Written only with `rcu_assign_pointer`
    /// (``RCUPointer/replace(with:)``) at the four sites of seed 000; read by ISRs with
    /// `rcu_dereference` inside a read section, by lock holders with
    /// `rcu_dereference_protected`.
    let iommuGroup = RCUPointer<IommuGroup<Flavor>, Flavor>()

    /// `dev->iommu`: guarded by `iommu_probe_device_lock` during probe and by `group->mutex`
    /// during deinit.
    var iommu: DevIommu<Flavor>?

    /// `device_lock(dev)` (`&dev->mutex`): taken by the driver core around `really_probe`,
    /// and by the 2023 patch in `__iommu_probe_device` (scenario S7).
    public let deviceLock: CheckedMutex
    /// The thread holding ``deviceLock`` (0 if none), so the model can refuse an AA acquire
    /// instead of hanging after Lockdep reported it.
    let deviceLockOwner = Atomic<UInt>(0)
    /// A Lockdep map of the device lock's class: acquiring it while the lock is held is the
    /// AA that Lockdep reports as "possible recursive locking".
    let deviceLockAlias: LockdepMap

    /// The IOMMU driver's per-device state lock (its `master` spinlock, IRQ-safe), which
    /// serialises the driver's fault handler against `release_device` (design D2).
    let masterLock: CheckedSpinLock
    /// The driver's pointer to the core's `dev_iommu` (design D2); guarded by ``masterLock``.
    var master: DevIommu<Flavor>?

    /// The driver's `master->iopf_refcount`: attached fault-capable domains (guarded by
    /// `group->mutex`, which `arm_smmu_enable_iopf` asserts).
    var iopfRefcount = 0
    /// `dev->driver != NULL`: set by ``Registry/driverProbe(_:_:)`` (guarded by ``deviceLock``
    /// while it is set; read by the probe path as the kernel reads `dev->driver`).
    let driverBound = Atomic<Bool>(false)
    /// Whether the device's IOMMU is described in firmware (device tree `iommus`, IORT): probing
    /// it without a bound driver runs the bus's `dma_configure()` (`of_iommu_configure()`), which
    /// probes the device itself, with `iommu_probe_device_lock` dropped around it.
    public let firmwareDescribed = Atomic<Bool>(false)
    /// Whether this device is the IOMMU itself (the `hwdev` of ``Registry/registerIommu(hwdev:)``):
    /// the driver's `probe_device` refuses it with `-ENODEV`, which `bus_iommu_probe` ignores.
    let isIommuHardware = Atomic<Bool>(false)

    /// Design D0: the driver has blocked ATS on this device (`master->ats_broken`).
    public let atsBlocked = Atomic<Bool>(false)
    /// Test knob: the driver's `probe_device` fails (the device stays without a group).
    public let failProbe = Atomic<Bool>(false)
    /// Test knob: the driver's `is_attach_deferred()` says yes (a kdump kernel inheriting live
    /// DMA): the device is attached on its first DMA map (``Registry/deferredAttach(_:to:)``).
    public let attachDeferredByDriver = Atomic<Bool>(false)
    /// Test knob: attaching this device to any domain fails.
    public let failAttach = Atomic<Bool>(false)

    init(name: String, groupTag: String?, deviceLockClass: LockClass, masterLockClass: LockClass) {
        self.name = name
        self.groupTag = groupTag
        deviceLock = CheckedMutex(class: deviceLockClass)
        deviceLockAlias = LockdepMap(class: deviceLockClass)
        masterLock = CheckedSpinLock(class: masterLockClass)
    }

    public var description: String { "Device(\(name))" }
}

/// The driver-private `struct dev_iommu` of a probed device.
final class DevIommu<Flavor: RCUFlavor>: ObjectLifecycle, @unchecked Sendable {
    /// `dev->iommu->lock` (Lockdep class `&param->lock`): guards `fault_param`; the IOPF queue
    /// takes it under `&queue->lock`, under `group->mutex` (``IopfQueue``).
    let lock: CheckedMutex
    /// `param->fault_param != NULL` (guarded by ``lock``).
    var hasFaultParam = false
    /// `dev->iommu->fwspec != NULL`: set by the bus's `dma_configure()` (guarded by the probe lock).
    var fwspec = false
    weak var dev: Device<Flavor>?
    /// `dev->iommu->iommu_dev`, `max_pasids`, `attach_deferred`, `require_direct`.
    var iommuDev = "smmu0"
    var maxPasids: UInt32 = 0
    var attachDeferred = false
    var requireDirect = false
    /// Design D2: the broken-device work, queued from the driver's ISR.
    var brokenWork: WorkItem?

    init(dev: Device<Flavor>, lock: CheckedMutex, log: RegistryLog) {
        self.dev = dev
        self.lock = lock
        super.init(.owned("DevIommu", dev.name), log: log)
    }
}
