public import Lockdep
public import RCU
import Synchronization

/// The IOMMU group/device registry: an executable port of the kernel's
/// drivers/iommu/iommu.c core, with its locks, its RCU publication and its
/// broken-device reporting.
///
/// ```swift
/// let registry = Registry()
/// defer { registry.shutdown() }
/// let dev = registry.makeDevice(name: "0000:00:01.0", groupTag: "bridge0")
/// try registry.probeDevice(dev)                  // iommu_probe_device()
/// Lockdep.withContext(.hardirq) { registry.reportBroken(dev) }   // from an "ISR"
/// try registry.releaseDevice(dev)                // iommu_release_device()
/// ```
///
/// Locks, with the kernel's Lockdep class names: `iommu_probe_device_lock`
/// (``probeDeviceLock``), `group->mutex` (``IommuGroup/mutex``), `&dev->mutex`
/// (``Device/deviceLock``), `&param->lock` (`dev->iommu->lock`), the modelled SMMUv3
/// driver's `&master->lock` spinlock and IOPF `&queue->lock`, and the 2023
/// `dev_iommu_group_lock`. The work items are `work:gdev_broken` (D1) and
/// `work:dev_iommu_broken` (D2).
///
/// Findings go to ``log`` (WARNs, use-after-free reports, invariant violations)
/// and Lockdep; throughput and correctness counters are in ``counters``.
/// Call ``shutdown()`` when done: it stops the worker threads.
///
/// A registry belongs to the process that created it. In a child of `fork()` its work
/// queue's threads do not exist: ``reportBroken(_:)``'s queueing, ``flushBrokenWork()``,
/// the cancel in a device release and ``shutdown()`` are reported through
/// `Lockdep.reportHandler` (`workQueueUsedAfterFork`, naming the `iommu_broken` queue) and
/// refused instead of waiting for ever. Create a new registry in the child.
///
/// `Flavor` is the RCU flavor that publishes `dev->iommu_group` and the group device lists:
/// ``init(configuration:)`` builds the registry on liburcu's memb, ``init(flavor:configuration:)``
/// on any flavor, such as `Registry(flavor: RCUQSBR.self)`. Every read path is specialised for it.
public final class Registry<Flavor: RCUFlavor>: @unchecked Sendable {
    /// `struct device` on this registry's flavor.
    public typealias Device = IOMMU.Device<Flavor>
    /// `struct iommu_group` on this registry's flavor.
    public typealias IommuGroup = IOMMU.IommuGroup<Flavor>
    /// `struct group_device` on this registry's flavor.
    public typealias GroupDevice = IOMMU.GroupDevice<Flavor>
    /// A group's state taken under its mutex, on this registry's flavor.
    public typealias GroupSnapshot = IOMMU.GroupSnapshot<Flavor>
    typealias DevIommu = IOMMU.DevIommu<Flavor>

    /// How the registry is built.
    public struct Configuration: Sendable {
        /// The broken-device design (spec section 8).
        public var design: BrokenDeviceDesign = .rcu
        /// The read-path synchronisation: the port (``ReaderSynchronization/rcu``) or a baseline.
        public var readerSynchronization: ReaderSynchronization = .rcu
        /// The buggy orderings to enable (none by default).
        public var bugs: RegistryBugs = []
        /// S5's fix in design D1: disable the work (`disable_work_sync`, default) or wait for a
        /// grace period between `list_del_rcu` and `cancel_work_sync`.
        public var teardownFence: TeardownFence = .disableWork
        /// Worker threads of the registry's work queue (a work item never runs on two at once).
        public var workerThreads = 2
        /// Whether the read path (``Registry/lookup(_:)``, ``Registry/reportBroken(_:)``) updates
        /// the shared ``RegistryCounters`` lookup and report counters. Benchmarks of the read side
        /// turn it off: many readers incrementing one shared atomic measure the cache line, not RCU.
        public var countsReads = true
        /// Called (under `group->mutex`, on the worker thread) each time a broken device is
        /// moved to the blocking domain: the hook for report-to-quarantine latency. Must not
        /// take registry locks.
        public var onQuarantine: (@Sendable (Device) -> Void)?
        /// Creates the default configuration (design D1, RCU readers, no bugs).
        public init(design: BrokenDeviceDesign = .rcu, bugs: RegistryBugs = []) {
            self.design = design
            self.bugs = bugs
        }
    }

    /// S5's fixes.
    public enum TeardownFence: Sendable {
        /// `disable_work_sync()`: a later `queue()` from a late ISR fails.
        case disableWork
        /// `synchronize_rcu()` after `list_del_rcu`, then `cancel_work_sync()`.
        case synchronizeRCU
    }

    /// The configuration the registry was built with.
    public let configuration: Configuration
    /// Pause points for deterministic interleavings.
    public let hooks = Hooks()
    /// WARNs, use-after-free reports and invariant violations.
    public let log = RegistryLog()
    /// Counters for tests and the stress tool.
    public let counters = RegistryCounters()

    /// `iommu_probe_device_lock`: serialises probing.
    public let probeDeviceLock: CheckedMutex
    /// `dev_iommu_group_lock` (2023 only; absent upstream): taken by the buggy ISR of S6.
    public let devIommuGroupLock: CheckedMutex

    let bugs: RegistryBugs
    let countsReads: Bool
    let design: BrokenDeviceDesign
    let groupMutexClass: LockClass
    let deviceLockClass: LockClass
    let devIommuLockClass: LockClass
    let masterLockClass: LockClass
    /// The modelled SMMUv3 driver's IOPF queue (`smmu->evtq.iopf`).
    let iopfQueue: IopfQueue
    let gdevWorkClass: LockClass
    let devIommuWorkClass: LockClass
    let workQueue: WorkQueue
    let gate: ReaderGate
    /// The broken-device work functions, made once and shared by every item (as one work
    /// function serves every `work_struct`): a probe allocates no closure for its work item.
    /// Set at the end of `init`, read-only after.
    private(set) var gdevBrokenWork: @Sendable (GroupDevice) -> Void = { _ in }
    private(set) var devIommuBrokenWork: @Sendable (DevIommu) -> Void = { _ in }

    /// The modelled driver's group table and the IDA; guarded by `tableLock`.
    let tableLock = InternalLock()
    var groupsByTag: [String: IommuGroup] = [:]
    var allGroups: [Int: IommuGroup] = [:]
    var freeIDs: Set<Int> = []
    var nextID = 0
    var busDevices: [Device] = []

    /// Creates a registry on `flavor` and starts its work queue.
    /// - Parameters:
    ///   - flavor: The RCU flavor of the registry's read side and deferred frees.
    ///   - configuration: The design, baseline and bugs.
    public init(flavor: Flavor.Type, configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.bugs = configuration.bugs
        self.countsReads = configuration.countsReads
        self.design = configuration.design
        // Per-registry classes with dynamic keys, freed with the registry and its locks
        // (lockdep_register_key / lockdep_unregister_key).
        func cls(_ name: String) -> LockClass { LockClass.dynamic(name) }
        probeDeviceLock = CheckedMutex(class: cls("iommu_probe_device_lock"))
        devIommuGroupLock = CheckedMutex(class: cls("dev_iommu_group_lock"))
        groupMutexClass = cls("group->mutex")
        deviceLockClass = cls("&dev->mutex")
        devIommuLockClass = cls("&param->lock")   // mutex_init(&param->lock) in dev_iommu_get()
        masterLockClass = cls("&master->lock")
        iopfQueue = IopfQueue(lockClass: cls("&queue->lock"))
        gdevWorkClass = cls("work:gdev_broken")
        devIommuWorkClass = cls("work:dev_iommu_broken")
        workQueue = WorkQueue("iommu_broken", threads: configuration.workerThreads)
        gate = ReaderGate(configuration.readerSynchronization)
        gdevBrokenWork = { [weak self] gdev in self?.runGroupBrokenWork(gdev) }
        devIommuBrokenWork = { [weak self] di in self?.runDevIommuBrokenWork(di) }
    }

    /// Stops the work queue's threads (after running what is pending). Idempotent.
    public func shutdown() {
        workQueue.shutdown()
    }

    /// A registry dropped without ``shutdown()`` still stops its two worker threads: they hold
    /// the work queue, not the registry (the work functions capture it weakly), so nothing else
    /// would ever end them.
    deinit {
        workQueue.shutdown()
    }

    /// Creates a device on the registry's bus, with its locks in the registry's Lockdep classes.
    /// - Parameters:
    ///   - name: `dev_name(dev)`.
    ///   - groupTag: Devices with the same tag share a group; `nil` for a group of its own.
    /// - Returns: The device (not yet probed).
    public func makeDevice(name: String, groupTag: String? = nil) -> Device {
        let dev = Device(name: name, groupTag: groupTag, deviceLockClass: deviceLockClass,
                         masterLockClass: masterLockClass)
        tableLock.withLock { busDevices.append(dev) }
        return dev
    }

    // MARK: groups and references

    /// `iommu_group_alloc()`: a new group with one reference, an empty list and an id.
    public func allocGroup(tag: String? = nil) -> IommuGroup {
        let group: IommuGroup = tableLock.withLock {
            let id: Int
            if let free = freeIDs.min() {
                freeIDs.remove(free)
                id = free
            } else {
                id = nextID
                nextID += 1
            }
            let g = IommuGroup(id: id, tag: tag, mutexClass: groupMutexClass, log: log)
            allGroups[id] = g
            return g
        }
        counters.groupsAllocated.add(1, ordering: .relaxed)
        if !bugs.contains(.unpublishedStore) { group.initComplete.store(true, ordering: .releasing) }
        return group
    }

    /// `iommu_group_get(dev)`: a referenced group, or `nil` if the device has none.
    ///
    /// Reads `dev->iommu_group` the way the kernel's callers may: the caller must exclude a
    /// concurrent release of `dev` (a probed driver does). Pair with ``groupPut(_:)``.
    public func groupGet(_ dev: Device) -> IommuGroup? {
        guard let group = dev.iommuGroup.protectedValue else { return nil }
        group.life.check("iommu_group_get")
        group.ref.add(1, ordering: .relaxed)
        group.externalRefs.add(1, ordering: .relaxed)
        return group
    }

    /// `iommu_group_put(group)` for a reference from ``groupGet(_:)``.
    public func groupPut(_ group: IommuGroup) {
        if group.externalRefs.subtract(1, ordering: .relaxed).newValue < 0 {
            group.externalRefs.add(1, ordering: .relaxed)
            log.warn("iommu_group_put of \(group) without a matching iommu_group_get", function: "iommu_group_put")
            return
        }
        put(group)
    }

    /// `kobject_get_unless_zero`.
    func tryGet(_ group: IommuGroup) -> Bool {
        var current = group.ref.load(ordering: .relaxed)
        while current > 0 {
            let (done, found) = group.ref.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if done { return true }
            current = found
        }
        return false
    }

    /// `iommu_group_put` (internal references: init, add_device).
    func put(_ group: IommuGroup) {
        let left = group.ref.subtract(1, ordering: .acquiringAndReleasing).newValue
        if left == 0 {
            release(group)
        } else if left < 0 {
            group.ref.add(1, ordering: .relaxed)
            log.warn("refcount underflow on \(group)", function: "iommu_group_put")
        }
    }

    /// `iommu_group_release()`, the kobject release: unlink from the driver's table, free the
    /// id, WARN on leftover domains, then `kfree_rcu(group)` (or `kfree` with ``RegistryBugs/plainFreeGroup``).
    ///
    /// Takes no lock, as the kernel's does: the count is zero, so no one else can reach the
    /// group's fields. (Taking `group->mutex` here would add a false `held lock -> group->mutex`
    /// edge at every put site, and an AA when the last put runs under the same group's mutex.)
    func release(_ group: IommuGroup) {
        tableLock.withLock {
            if let tag = group.tag, groupsByTag[tag] === group { groupsByTag[tag] = nil }
            if allGroups[group.id] === group {
                allGroups[group.id] = nil
                freeIDs.insert(group.id)
            }
        }
        // No one else can reach the group's mutex-guarded fields any more: the refcount is zero.
        if !group.members.isEmpty {
            log.violation(InvariantViolation(.i9, "\(group) released with \(group.members.count) device(s) on its list"))
        }
        if group.defaultDomain != nil { log.warn("\(group) released with a default domain", function: "iommu_group_release") }
        if group.blockingDomain != nil { log.warn("\(group) released with a blocking domain", function: "iommu_group_release") }
        counters.groupsFreed.add(1, ordering: .relaxed)
        if bugs.contains(.plainFreeGroup) {
            group.markFreed(at: "iommu_group_release")
        } else {
            group.life.retire()
            Flavor.retire(reclaiming: group)   // reclaim() is the kfree
        }
    }

    /// The modelled IOMMU driver's `device_group` callback: a referenced group shared by
    /// devices with the same tag.
    func deviceGroup(_ dev: Device) -> IommuGroup {
        if let tag = dev.groupTag {
            let existing: IommuGroup? = tableLock.withLock {
                if let g = groupsByTag[tag], tryGet(g) { return g }
                return nil
            }
            if let existing { return existing }
            let g = allocGroup(tag: tag)
            // Another probe cannot race us here: probing holds iommu_probe_device_lock.
            tableLock.withLock { groupsByTag[tag] = g }
            return g
        }
        return allocGroup(tag: nil)
    }

    /// The group `dev` is in now (for tests and tools; not referenced, may be freed later).
    public func group(of dev: Device) -> IommuGroup? {
        dev.iommuGroup.protectedValue
    }

    /// Every group currently allocated (not yet released), by id.
    public var groups: [IommuGroup] {
        tableLock.withLock { allGroups.values.sorted { $0.id < $1.id } }
    }

    // MARK: helpers under group->mutex

    /// `__dev_to_gdev(dev)`: asserts `group->mutex`.
    func devToGdev(_ dev: Device, in group: IommuGroup) -> GroupDevice? {
        Lockdep.assertHeld(group.mutex)
        return group.members.first { $0._dev === dev }
    }

    /// `__iommu_group_empty_assert_owner_cnt()`: under the mutex, an empty group must have no
    /// owner and be back on its default domain (S8).
    func emptyAssertOwnerCnt(_ group: IommuGroup) {
        Lockdep.assertHeld(group.mutex)
        if group.members.isEmpty && (group.ownerCnt != 0 || group.domain !== group.defaultDomain) {
            log.warn(
                "\(group) became empty with owner_cnt \(group.ownerCnt) and domain \(group.domain.map { "\($0)" } ?? "NULL") != default_domain",
                function: "__iommu_group_empty_assert_owner_cnt")
        }
    }

    /// `__iommu_group_alloc_blocking_domain()`.
    @discardableResult
    func allocBlockingDomain(_ group: IommuGroup) -> Domain {
        Lockdep.assertHeld(group.mutex)
        if let d = group.blockingDomain { return d }
        let d = Domain(type: .blocked, name: "blocking#\(group.id)")
        group.blockingDomain = d
        return d
    }

    /// `__iommu_device_set_domain()` → the driver's `attach_dev` (`arm_smmu_attach_dev`), under
    /// `group->mutex`: a fault-capable new domain enables IOPF for the device, and leaving a
    /// fault-capable old domain disables it (`arm_smmu_remove_master_domain`). Both take the IOPF
    /// queue's locks (``IopfQueue``).
    func deviceSetDomain(_ gdev: GroupDevice, _ domain: Domain) throws(IOMMUError) {
        let dev = gdev._dev
        // A blocking domain cannot fail (modern drivers make it a static), whatever the knobs say.
        if domain.type != .blocked
            && (domain.failAttach.load(ordering: .relaxed) || dev.failAttach.load(ordering: .relaxed)) {
            throw .attachFailed
        }
        let old = gdev.attachedDomain
        if old === domain { return }
        if domain.handlesIOPF { try enableIOPF(dev) }
        gdev.attachedDomain = domain
        if let old, old.handlesIOPF { disableIOPF(dev) }
    }

    /// `arm_smmu_enable_iopf()`: asserts `group->mutex`; the first user adds the device to the
    /// IOPF queue (`&queue->lock -> &param->lock`).
    func enableIOPF(_ dev: Device) throws(IOMMUError) {
        if let group = dev.iommuGroup.protectedValue { Lockdep.assertHeld(group.mutex) }
        guard let param = dev.iommu else { return }   // no driver state (iommu_group_add_device)
        if dev.iopfRefcount > 0 {
            dev.iopfRefcount += 1
            return
        }
        guard iopfQueue.addDevice(dev, param: param) else { throw .busy }
        dev.iopfRefcount = 1
    }

    /// `arm_smmu_disable_iopf()`: the last user removes the device from the IOPF queue.
    func disableIOPF(_ dev: Device) {
        guard let param = dev.iommu, dev.iopfRefcount > 0 else { return }
        dev.iopfRefcount -= 1
        if dev.iopfRefcount == 0 { iopfQueue.removeDevice(dev, param: param) }
    }
}

extension Registry where Flavor == RCUMemb {
    /// Creates a registry on liburcu's memb flavor (the default) and starts its work queue.
    /// - Parameter configuration: The design, baseline and bugs.
    public convenience init(configuration: Configuration = Configuration()) {
        self.init(flavor: RCUMemb.self, configuration: configuration)
    }
}

/// One broken invariant (spec section 6).
public struct InvariantViolation: Sendable, CustomStringConvertible {
    /// The invariants.
    public enum Invariant: String, Sendable {
        case i1 = "I1", i2 = "I2", i3 = "I3", i4 = "I4", i5 = "I5", i6 = "I6", i9 = "I9", i10 = "I10"
    }
    /// Which invariant.
    public let invariant: Invariant
    /// What was found.
    public let message: String
    init(_ invariant: Invariant, _ message: String) {
        self.invariant = invariant
        self.message = message
    }
    public var description: String { "\(invariant.rawValue): \(message)" }
}
