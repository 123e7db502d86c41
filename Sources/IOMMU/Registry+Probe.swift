import Lockdep
import RCU

extension Registry {
    /// `iommu_probe_device(dev)`: takes `iommu_probe_device_lock`, finds or creates the
    /// device's group, publishes `dev->iommu_group`, links a ``GroupDevice`` and attaches the
    /// group's domain (allocating the default domain for a new group).
    ///
    /// Probing a device that already has a group does nothing (as the kernel returns 0).
    /// - Throws: ``IOMMUError/noDevice`` when the driver's `probe_device` fails,
    ///   ``IOMMUError/attachFailed`` when attaching fails (everything is unwound),
    ///   ``IOMMUError/wouldDeadlock`` in scenario S7's buggy form.
    @_specialize(exported: true, where Flavor == RCUMemb)
    @_specialize(exported: true, where Flavor == RCUQSBR)
    public func probeDevice(_ dev: Device) throws(IOMMUError) {
        try gate.write { () throws(IOMMUError) in try probeDeviceUngated(dev) }
    }

    /// ``probeDevice(_:)`` inside the baseline gate (the nested probe of `dma_configure()` is
    /// already inside it).
    func probeDeviceUngated(_ dev: Device) throws(IOMMUError) {
        // S7 (2023): the probe also took device_lock(dev), which really_probe already holds.
        let locksDevice = bugs.contains(.recursiveDeviceLock)
        if locksDevice { try lockDevice(dev) }
        defer { if locksDevice { unlockDevice(dev) } }
        probeDeviceLock.lock()
        defer { probeDeviceLock.unlock() }
        try probeDeviceLocked(dev)
    }

    /// `__iommu_probe_device(dev)`: the caller holds `iommu_probe_device_lock`.
    func probeDeviceLocked(_ dev: Device) throws(IOMMUError) {
        Lockdep.assertHeld(probeDeviceLock)
        // "Device is probed already if in a group": a plain read, as the kernel's. The probe lock
        // does not order it against the other writers of dev->iommu_group (deinit, remove,
        // add_device do not take it); the driver core keeps a device's probe and release apart.
        if dev.iommuGroup.protectedValue != nil { return }

        let group = try iommuInitDevice(dev)
        guard let devIommu = dev.iommu else { throw .noDevice }

        // iommu_group_alloc_device(): no mutex (sysfs work).
        let gdev = makeGroupDevice(dev)

        // group->mutex is held from list_add to list_del, as in the kernel (also on the error path).
        group.mutex.lock()
        link(gdev, into: group)
        do {
            if let d = group.domain {
                try deviceSetDomain(gdev, d)
            } else if group.defaultDomain == nil {
                try setupDefaultDomain(group)
            }
        } catch {
            // err_remove_gdev: list_del_rcu, assert, then deinit under the mutex; free after it.
            unlink(gdev, from: group)
            emptyAssertOwnerCnt(group)
            // Design D2: the driver may have queued dev_iommu's work since probe_device; its worker
            // takes group->mutex, so dev_iommu is freed only after the unlock and disable_work_sync.
            let deferredParam = design == .devmutex ? devIommu : nil
            iommuDeinitDevice(dev, group: group, freeingParam: deferredParam == nil)
            if freesUnderMutex { freeGroupDevice(gdev, group: group) }
            group.mutex.unlock()
            if let deferredParam {
                Lockdep.assertNotHeld(group.mutex)
                deferredParam.brokenWork?.disableSync()
                deferredParam.life.free(at: "dev_iommu_free")
            }
            if !freesUnderMutex {
                hooks.pause(.removeAfterUnlock)
                freeGroupDevice(gdev, group: group)
            }
            put(group)
            throw error
        }
        group.mutex.unlock()
        counters.probes.add(1, ordering: .relaxed)
    }

    /// `iommu_init_device(dev)`: `dev_iommu_get()`; the bus's `dma_configure()` with the probe
    /// lock dropped (then revalidated); the driver's `probe_device` (which publishes its
    /// per-device state, so D2's ISR path can reach `dev_iommu` from here on); then
    /// `device_group()` and `rcu_assign_pointer(dev->iommu_group, group)`.
    /// - Returns: The referenced group, published in `dev->iommu_group`.
    func iommuInitDevice(_ dev: Device) throws(IOMMUError) -> IommuGroup {
        let param = devIommuGet(dev)
        // For firmware-described devices the common parsing is buried in the bus's dma_configure
        // path, which itself probes (of_iommu_configure -> iommu_probe_device): the kernel drops the
        // probe lock around it. A bound driver means dma_configure already ran.
        if !param.fwspec && !dev.driverBound.load(ordering: .relaxed)
            && dev.firmwareDescribed.load(ordering: .relaxed) {
            probeDeviceLock.unlock()
            hooks.pause(.probeInDmaConfigure)
            dmaConfigure(dev)
            probeDeviceLock.lock()
            // If another instance finished the job for us (or failed it), skip it.
            if dev.iommu == nil || dev.iommuGroup.protectedValue != nil {
                counters.probesFinishedElsewhere.add(1, ordering: .relaxed)
                throw .noDevice
            }
        }
        guard let devIommu = dev.iommu else { throw .noDevice }

        // ops->probe_device(): the driver's per-device state now points at dev_iommu.
        guard !dev.failProbe.load(ordering: .relaxed), !dev.isIommuHardware.load(ordering: .relaxed) else {
            devIommuFree(dev)
            throw .noDevice
        }
        dev.masterLock.withLockIRQ { dev.master = devIommu }
        hooks.pause(.probeAfterProbeDevice)

        let group = deviceGroup(dev)        // ops->device_group(): a referenced group
        dev.iommuGroup.replace(with: group) // rcu_assign_pointer(dev->iommu_group, group)  [seed 000 site 1]
        hooks.pause(.probeAfterPublish)
        if bugs.contains(.unpublishedStore) { group.initComplete.store(true, ordering: .releasing) }
        devIommu.maxPasids = 16
        devIommu.attachDeferred = dev.attachDeferredByDriver.load(ordering: .relaxed)   // ops->is_attach_deferred
        return group
    }

    /// `iommu_setup_default_domain(group)` for a new group (first probe), under the mutex. The
    /// first attach uses MUST_SUCCEED, so `group->domain` is set even when it fails, and the WARN
    /// is here (the domain is left in `default_domain`, freed by the deinit that follows).
    func setupDefaultDomain(_ group: IommuGroup) throws(IOMMUError) {
        Lockdep.assertHeld(group.mutex)
        let d = Domain(type: .dma, name: "default#\(group.id)")
        group.defaultDomain = d
        do {
            try setDomainInternal(group, d, mustSucceed: true)
        } catch {
            log.warn("first attach of \(d) to \(group) failed: \(error)", function: "iommu_setup_default_domain")
            throw error
        }
    }

    /// `dev_iommu_get(dev)`: asserts the probe lock; returns the existing `dev->iommu` (a nested
    /// probe from `dma_configure()` reuses it) or allocates one.
    func devIommuGet(_ dev: Device) -> DevIommu {
        Lockdep.assertHeld(probeDeviceLock)
        if let di = dev.iommu { return di }
        let di = makeDevIommu(dev)
        dev.iommu = di
        return di
    }

    /// `dev_iommu_free(dev)` on `iommu_init_device`'s error path (nothing else reached it yet).
    func devIommuFree(_ dev: Device) {
        guard let di = dev.iommu else { return }
        dev.iommu = nil
        di.life.free(at: "dev_iommu_free")
    }

    /// Whether the gdev free (and its cancel) runs under `group->mutex` (the buggy orderings).
    var freesUnderMutex: Bool { bugs.contains(.cancelUnderGroupMutex) || bugs.contains(.nonRCUDeviceList) }

    func makeDevIommu(_ dev: Device) -> DevIommu {
        let di = DevIommu(dev: dev, lock: CheckedMutex(class: devIommuLockClass), log: log)
        if design == .devmutex {
            di.brokenWork = WorkItem("dev_iommu_broken", on: workQueue, class: devIommuWorkClass, container: di,
                                     devIommuBrokenWork)
        }
        return di
    }

    /// D2's work function: `container_of(work, struct dev_iommu, broken_work)`.
    func runDevIommuBrokenWork(_ di: DevIommu) {
        hooks.pause(.workerStart)
        guard di.life.check("dev_iommu_broken_worker") else { return }
        devIommuBrokenWorker(di)
    }

    func makeGroupDevice(_ dev: Device) -> GroupDevice {
        let gdev = GroupDevice(dev: dev, log: log)
        counters.groupDevicesAllocated.add(1, ordering: .relaxed)
        if design == .rcu {
            gdev.brokenWork = WorkItem("gdev_broken", on: workQueue, class: gdevWorkClass, container: gdev,
                                       gdevBrokenWork)
        }
        return gdev
    }

    /// D1's work function: `container_of(work, struct group_device, broken_work)`, which
    /// touches a freed gdev if the work outlived it.
    func runGroupBrokenWork(_ gdev: GroupDevice) {
        hooks.pause(.workerStart)
        guard gdev.life.check("iommu_group_broken_worker") else { return }
        groupBrokenWorker(gdev)
    }

    /// `list_add_tail_rcu(&gdev->list, &group->devices)` under the mutex.
    func link(_ gdev: GroupDevice, into group: IommuGroup) {
        Lockdep.assertHeld(group.mutex)
        gdev.node = group._devices.append(gdev)
        group.members.append(gdev)
    }

    /// `list_del_rcu(&gdev->list)` under the mutex; marks the gdev removed for its worker.
    func unlink(_ gdev: GroupDevice, from group: IommuGroup) {
        Lockdep.assertHeld(group.mutex)
        if let node = gdev.node { group._devices.remove(node) }
        gdev.node = nil
        group.members.removeAll { $0 === gdev }
        // As in the kernel, recovery_cnt is not decremented: a device removed while blocked leaves
        // its group fenced (-EBUSY). Counted for I5 only.
        if gdev.blocked != .none && !bugs.contains(.noRecoveryFence) { group.recoveryLeftByRemoved += 1 }
        gdev.removed.store(true, ordering: .relaxed)
        gdev.life.retire()
    }

    /// `iommu_deinit_device(dev)`: under the mutex; frees the domains when the group became
    /// empty, unpublishes `dev->iommu_group` and frees `dev->iommu`.
    /// - Parameter freeingParam: `false` when the caller frees `dev_iommu` itself after the unlock
    ///   (design D2's probe error path).
    func iommuDeinitDevice(_ dev: Device, group: IommuGroup, freeingParam: Bool = true) {
        Lockdep.assertHeld(group.mutex)
        // ops->release_domain: the device leaves a fault-capable domain (arm_smmu_disable_iopf).
        if dev.iopfRefcount > 0, let param = dev.iommu {
            dev.iopfRefcount = 0
            iopfQueue.removeDevice(dev, param: param)
        }
        // ops->release_device(): the driver drops its pointer to dev_iommu.
        dev.masterLock.withLockIRQ { dev.master = nil }
        if group.members.isEmpty {
            group.defaultDomain = nil
            group.blockingDomain = nil
            group.domain = nil
        }
        dev.iommuGroup.replace(with: nil)   // rcu_assign_pointer(dev->iommu_group, NULL)  [seed 000 site 2]
        if let di = dev.iommu {
            dev.iommu = nil
            // dev_iommu_free(): D2's work was disabled before group->mutex was taken (release
            // path); its probe error path frees after the unlock instead.
            if freeingParam { di.life.free(at: "dev_iommu_free") }
        }
    }

    /// `__iommu_group_free_device()`: after the unlock (seed 001), cancel or disable the
    /// gdev's work, then `kfree_rcu(gdev)`.
    func freeGroupDevice(_ gdev: GroupDevice, group: IommuGroup) {
        if !freesUnderMutex { Lockdep.assertNotHeld(group.mutex) }
        if bugs.contains(.emptyCheckOutsideMutex) { emptyAssertOwnerCnt(group) }
        if let work = gdev.brokenWork {
            if bugs.contains(.cancelUnderGroupMutex) || bugs.contains(.queueAfterCancel) {
                hooks.pause(.removeBeforeCancel)
                work.cancelSync()
            } else if configuration.teardownFence == .synchronizeRCU {
                Lockdep.assertNotHeld(group.mutex)
                Flavor.synchronize()   // every ISR that could still queue has finished
                work.cancelSync()
            } else {
                Lockdep.assertNotHeld(group.mutex)
                work.disableSync()          // a late ISR's queue() fails from now on
            }
        }
        if !gdev.removed.load(ordering: .relaxed) {
            log.violation(InvariantViolation(.i9, "\(gdev) freed while still on \(group)'s list"))
        }
        counters.groupDevicesFreed.add(1, ordering: .relaxed)
        if bugs.contains(.nonRCUDeviceList) {
            gdev.markFreed(at: "__iommu_group_free_device")
        } else {
            Flavor.retire(reclaiming: gdev)   // kfree_rcu(gdev, rcu): reclaim() is the kfree
        }
    }

    /// `iommu_release_device(dev)`: removes the device from its group (if any) and frees
    /// `dev->iommu`. Called from `BUS_NOTIFY_REMOVED_DEVICE`; the driver core serialises it
    /// against probing the same device.
    /// - Throws: ``IOMMUError/noDevice`` for a device that was never probed or is already released.
    @_specialize(exported: true, where Flavor == RCUMemb)
    @_specialize(exported: true, where Flavor == RCUQSBR)
    public func releaseDevice(_ dev: Device) throws(IOMMUError) {
        try gate.write { () throws(IOMMUError) in
            let hasGroup = dev.iommuGroup.protectedValue != nil
            guard hasGroup || dev.iommu != nil else { throw .noDevice }
            if hasGroup { try removeFromGroup(dev) }
            if let di = dev.iommu {
                dev.iommu = nil
                di.life.free(at: "dev_iommu_free")
            }
            counters.releases.add(1, ordering: .relaxed)
        }
    }

    /// `__iommu_group_remove_device(dev)`.
    func removeFromGroup(_ dev: Device) throws(IOMMUError) {
        guard let group = dev.iommuGroup.protectedValue else { throw .noDevice }
        // Design D2: stop the dev_iommu work before taking group->mutex (its worker takes it).
        if design == .devmutex, let work = dev.iommu?.brokenWork {
            Lockdep.assertNotHeld(group.mutex)
            work.disableSync()
        }
        group.mutex.lock()
        guard let gdev = devToGdev(dev, in: group) else {
            group.mutex.unlock()
            throw .noDevice
        }
        unlink(gdev, from: group)
        if !bugs.contains(.emptyCheckOutsideMutex) { emptyAssertOwnerCnt(group) }
        if dev.iommu != nil {
            iommuDeinitDevice(dev, group: group)
        } else {
            dev.iommuGroup.replace(with: nil) // rcu_assign_pointer(dev->iommu_group, NULL)  [seed 000 site 3]
        }
        if freesUnderMutex { freeGroupDevice(gdev, group: group) }
        group.mutex.unlock()
        if !freesUnderMutex {
            hooks.pause(.removeAfterUnlock)
            freeGroupDevice(gdev, group: group)
        }
        put(group)   // pairs with the get in iommu_init_device() or iommu_group_add_device()
    }

    /// `iommu_group_add_device(group, dev)`: adds a device that has no IOMMU driver state
    /// (VFIO no-iommu style). Takes its own reference on `group`.
    /// - Throws: ``IOMMUError/busy`` if the device is already in a group.
    public func addDevice(_ dev: Device, to group: IommuGroup) throws(IOMMUError) {
        try gate.write { () throws(IOMMUError) in
            guard dev.iommuGroup.protectedValue == nil, dev.iommu == nil else { throw .busy }
            group.life.check("iommu_group_add_device")
            let gdev = makeGroupDevice(dev)
            group.ref.add(1, ordering: .relaxed)   // iommu_group_ref_get()
            dev.iommuGroup.replace(with: group)     // rcu_assign_pointer(dev->iommu_group, group)  [seed 000 site 4]
            group.mutex.withLock { link(gdev, into: group) }
        }
    }

    /// Drops the reference ``allocGroup(tag:)`` returned with (the creator's `iommu_group_put`).
    public func putAllocated(_ group: IommuGroup) { put(group) }
}
