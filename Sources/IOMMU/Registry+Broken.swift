import Lockdep
public import RCU

// The public read and write paths are pre-specialised for memb and qsbr (`@_specialize(exported:)`):
// a caller in another module with a concrete flavor (rcu-stress, a user's ISR loop) calls code
// compiled for that flavor, with the flavor's read side inlined, not the generic entry point.
extension Registry {
    /// The ISR-side lookup device → group → group device (`__dev_to_gdev_rcu`), lock-free:
    /// `rcu_dereference(dev->iommu_group)`, then a walk of the RCU device list, inside one
    /// read section. Safe from any context, including `Lockdep.withContext(.hardirq)`.
    ///
    /// With a baseline ``ReaderSynchronization`` the walk runs under the registry-wide lock instead.
    /// - Returns: Whether the device's group device was found (it may be gone a moment later).
    @discardableResult
    @_specialize(exported: true, where Flavor == RCUMemb)
    @_specialize(exported: true, where Flavor == RCUQSBR)
    public func lookup(_ dev: Device) -> Bool {
        if countsReads { counters.lookups.add(1, ordering: .relaxed) }
        let found: Bool
        if gate.mode == .rcu {
            found = Flavor.read { section in
                withGroupDeviceRCU(dev, in: section) { _ in true } ?? false
            }
        } else {
            found = gate.read {
                guard let group = dev.iommuGroup.protectedValue else { return false }
                return group.members.contains { $0._dev === dev }
            }
        }
        if found && countsReads { counters.lookupHits.add(1, ordering: .relaxed) }
        return found
    }

    /// ``lookup(_:)`` through the calling thread's reader scope (`Flavor.withReader`):
    /// the same read section per lookup, opened by the scope's reader (no registration check),
    /// and no counters. What an ISR loop that keeps a reader scope open uses.
    /// - Returns: Whether the device's group device was found.
    @_specialize(exported: true, where Flavor == RCUMemb)
    @_specialize(exported: true, where Flavor == RCUQSBR)
    public func lookup(_ dev: Device, with reader: borrowing RCUReader<Flavor>) -> Bool {
        reader.read { section in withGroupDeviceRCU(dev, in: section) { _ in true } ?? false }
    }

    /// ``lookup(_:)`` inside the caller's read section: device -> group -> group device with no
    /// synchronization of its own (no read-side lock or unlock, no counters). The benchmark's
    /// ceiling holds one section across a whole readers-only run.
    /// - Returns: Whether the device's group device was found.
    @_specialize(exported: true, where Flavor == RCUMemb)
    @_specialize(exported: true, where Flavor == RCUQSBR)
    public func lookup(_ dev: Device, in section: borrowing RCUReadSection<Flavor>) -> Bool {
        withGroupDeviceRCU(dev, in: section) { _ in true } ?? false
    }

    /// `__dev_to_gdev_rcu(dev)`: calls `body` with the device's group device, found under
    /// `section`, or returns `nil` if there is none right now. Every object touched is
    /// lifecycle-checked (I1), and the gdev must belong to `dev` (I3).
    func withGroupDeviceRCU<R>(
        _ dev: Device, in section: borrowing RCUReadSection<Flavor>, _ body: (GroupDevice) -> R
    ) -> R? {
        if bugs.contains(.mutexInISR) {
            // The 2023 "safe way": read dev->iommu_group under dev_iommu_group_lock, a mutex.
            devIommuGroupLock.lock()
            devIommuGroupLock.unlock()
        }
        let found: R?? = dev.iommuGroup.withValue(in: section) { group -> R? in
            hooks.pause(.isrAfterDeref)
            guard group.initComplete.load(ordering: .acquiring) else {
                log.violation(InvariantViolation(.i3, "ISR observed \(group) before it was initialised (unordered publication)"))
                return nil
            }
            return group.devices.firstNonNil(in: section) { gdev -> R? in
                hooks.pause(.isrVisitNode)
                guard gdev.dev === dev else { return nil }
                return body(gdev)
            }
        }
        return found ?? nil
    }

    /// `iommu_report_device_broken(dev)`: called by the IOMMU driver from its invalidation
    /// (interrupt) context when the device stopped answering ATC invalidations. Never sleeps.
    ///
    /// - ``BrokenDeviceDesign/rcu``: RCU lookup of the gdev, then `queue_work(gdev->broken_work)`.
    /// - ``BrokenDeviceDesign/devmutex``: through the driver's `master` (under its spinlock),
    ///   `queue_work(dev->iommu->broken_work)`.
    /// - ``BrokenDeviceDesign/driverOnly``: the driver blocks ATS itself; no core work.
    /// - Returns: Whether quarantine work was queued (D1/D2) or ATS blocked (D0).
    @discardableResult
    @_specialize(exported: true, where Flavor == RCUMemb)
    @_specialize(exported: true, where Flavor == RCUQSBR)
    public func reportBroken(_ dev: Device) -> Bool {
        if countsReads { counters.brokenReports.add(1, ordering: .relaxed) }
        let queued: Bool
        switch design {
        case .rcu:
            if countsReads { counters.lookups.add(1, ordering: .relaxed) }
            queued = Flavor.read { section in
                withGroupDeviceRCU(dev, in: section) { gdev in
                    if countsReads { counters.lookupHits.add(1, ordering: .relaxed) }
                    if gdev.removed.load(ordering: .relaxed) { return false }
                    hooks.pause(.isrFoundGdev)
                    gdev.life.check("GroupDevice.broken_work")
                    return gdev.brokenWork?.queue() ?? false
                } ?? false
            }
        case .devmutex:
            // spin_lock_irqsave: the driver may report from process context too.
            queued = dev.masterLock.withLockIRQ {
                guard let di = dev.master, di.life.check("dev_iommu.broken_work") else { return false }
                return di.brokenWork?.queue() ?? false
            }
        case .driverOnly:
            dev.atsBlocked.store(true, ordering: .relaxed)
            queued = true
        }
        if queued {
            if countsReads { counters.brokenQueued.add(1, ordering: .relaxed) }
        } else {
            if countsReads { counters.brokenDropped.add(1, ordering: .relaxed) }
        }
        return queued
    }

    /// D1's `iommu_group_broken_worker()`: reads `dev->iommu_group` (a `group_device` has no
    /// group pointer), takes `group->mutex`, revalidates (the gdev may have been unlinked
    /// meanwhile), then quarantines the device.
    ///
    /// `iommu_deinit_device` clears `dev->iommu_group` under the mutex before the work is disabled
    /// (after the unlock), so the worker may find NULL: it returns. A non-NULL group stays
    /// allocated while the worker runs: the remover puts its reference only after
    /// `disable_work_sync`.
    func groupBrokenWorker(_ gdev: GroupDevice) {
        let dev = gdev.dev
        hooks.pause(.workerBeforeGroupLoad)
        guard let group = dev.iommuGroup.protectedValue else {
            counters.workerFoundNoGroup.add(1, ordering: .relaxed)
            counters.workerRevalidationFailed.add(1, ordering: .relaxed)
            return
        }
        guard group.life.check("iommu_group_broken_worker: dev->iommu_group") else { return }
        hooks.pause(.workerBeforeGroupMutex)
        group.mutex.lock()
        defer { group.mutex.unlock() }
        // The gdev is touched again after sleeping on the mutex: checked (I1).
        guard !gdev.removed.load(ordering: .relaxed), gdev.dev.iommu != nil, devToGdev(dev, in: group) === gdev else {
            counters.workerRevalidationFailed.add(1, ordering: .relaxed)
            return
        }
        quarantine(gdev, in: group)
    }

    /// D2's worker: `dev->iommu_group` (stable: `__iommu_group_remove_device` disables this work
    /// before it takes `group->mutex`, and the probe error path before it frees `dev_iommu`), then
    /// `group->mutex`, then `__dev_to_gdev`. Lock order `work:dev_iommu_broken -> group->mutex`.
    ///
    /// It takes no `&param->lock`: the driver's IOPF queue already orders `group->mutex ->
    /// &queue->lock -> &param->lock` (``IopfQueue``), so a worker taking `&param->lock` first would
    /// close a cycle (``RegistryBugs/paramLockInDevIommuWorker``).
    func devIommuBrokenWorker(_ di: DevIommu) {
        let takesParamLock = bugs.contains(.paramLockInDevIommuWorker)
        if takesParamLock { di.lock.lock() }
        defer { if takesParamLock { di.lock.unlock() } }
        // The driver may queue the work from probe_device on, before dev->iommu_group is published.
        guard let dev = di.dev, let group = dev.iommuGroup.protectedValue else {
            counters.workerRevalidationFailed.add(1, ordering: .relaxed)
            return
        }
        guard group.life.check("dev_iommu_broken_worker: dev->iommu_group") else { return }
        hooks.pause(.workerBeforeGroupMutex)
        group.mutex.lock()
        defer { group.mutex.unlock() }
        guard dev.iommu === di, let gdev = devToGdev(dev, in: group) else {
            counters.workerRevalidationFailed.add(1, ordering: .relaxed)
            return
        }
        quarantine(gdev, in: group)
    }

    /// The prepare-like routine: move the device to the blocking domain and count it in
    /// `recovery_cnt` (under the mutex).
    func quarantine(_ gdev: GroupDevice, in group: IommuGroup) {
        Lockdep.assertHeld(group.mutex)
        let was = gdev.blocked
        guard was != .broken else { return }
        let blocking = allocBlockingDomain(group)
        try? deviceSetDomain(gdev, blocking)   // a blocking domain cannot fail
        if was == .none && !bugs.contains(.noRecoveryFence) { group.recoveryCnt += 1 }
        gdev.setBlocked(.broken)
        counters.quarantined.add(1, ordering: .relaxed)
        configuration.onQuarantine?(gdev._dev)
    }

    /// Waits until every queued broken-device work item has run (`flush_workqueue`).
    /// Must not be called while holding a lock the workers take.
    public func flushBrokenWork() {
        workQueue.flush()
    }
}
