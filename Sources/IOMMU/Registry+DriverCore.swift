import Lockdep

extension Registry {
    /// The driver core's `really_probe(dev)`: runs `body` (the driver's probe) holding
    /// `device_lock(dev)`, as the kernel does. `of_iommu_configure()` /
    /// `acpi_iommu_configure_id()` are reached from there: call ``probeDevice(_:)`` inside.
    ///
    /// With ``RegistryBugs/recursiveDeviceLock`` the probe takes the device lock again
    /// (S7a): Lockdep reports "possible recursive locking" and the probe fails with
    /// ``IOMMUError/wouldDeadlock`` instead of hanging.
    public func driverProbe<R>(_ dev: Device, _ body: () throws(IOMMUError) -> R) throws(IOMMUError) -> R {
        try lockDevice(dev)
        defer { unlockDevice(dev) }
        dev.driverBound.store(true, ordering: .relaxed)   // really_probe sets dev->driver first
        do {
            return try body()
        } catch {
            // really_probe's failure path (device_unbind_cleanup) clears dev->driver again: a
            // later probe of the device must still run dma_configure.
            dev.driverBound.store(false, ordering: .relaxed)
            throw error
        }
    }

    /// The bus's `dma_configure()` for a firmware-described device (`of_dma_configure()` ->
    /// `of_iommu_configure()`): records the firmware's IOMMU description in `dev->iommu->fwspec`
    /// under `iommu_probe_device_lock`, then probes the device (`iommu_probe_device()`), taking the
    /// probe lock itself. ``probeDevice(_:)`` calls it with the probe lock dropped.
    func dmaConfigure(_ dev: Device) {
        probeDeviceLock.withLock {
            guard let param = dev.iommu else { return }
            param.fwspec = true
        }
        do throws(IOMMUError) {
            try probeDeviceUngated(dev)
        } catch {
            counters.nestedProbeFailures.add(1, ordering: .relaxed)   // of_dma_configure logs and goes on
        }
    }

    /// `iommu_device_register()` called from the IOMMU's own `probe()` (so with `device_lock(hwdev)`
    /// held, through ``driverProbe(_:_:)``): `bus_iommu_probe()` probes every device of the bus
    /// that is not probed yet, under `iommu_probe_device_lock`.
    ///
    /// With ``RegistryBugs/recursiveDeviceLock``, each probe takes `device_lock` (2023), including
    /// the IOMMU's own `hwdev` (S7b): "possible recursive locking". Fixed: upstream's global probe
    /// lock, with the order `&dev->mutex -> iommu_probe_device_lock` only. As upstream's
    /// `probe_iommu_group()`, every device is probed, `hwdev` included (the driver's
    /// `probe_device` refuses the IOMMU itself with `-ENODEV`), and `-ENODEV` is not a failure.
    /// - Returns: The devices that failed to probe, with their errors.
    @discardableResult
    public func registerIommu(hwdev: Device) -> [(Device, IOMMUError)] {
        hwdev.isIommuHardware.store(true, ordering: .relaxed)
        let devices = tableLock.withLock { busDevices }
        var failures: [(Device, IOMMUError)] = []
        for dev in devices {
            do throws(IOMMUError) {
                try probeDevice(dev)
            } catch .noDevice {
                continue   // probe_iommu_group: if (ret == -ENODEV) ret = 0;
            } catch {
                failures.append((dev, error))
            }
        }
        return failures
    }

    /// `device_lock(dev)`. An acquire by the thread that already holds it is announced to
    /// Lockdep (which reports the AA) and refused instead of deadlocking.
    func lockDevice(_ dev: Device) throws(IOMMUError) {
        if dev.deviceLockOwner.load(ordering: .relaxed) == currentThreadID() {
            Lockdep.withAcquired(dev.deviceLockAlias) {}
            throw .wouldDeadlock
        }
        dev.deviceLock.lock()
        dev.deviceLockOwner.store(currentThreadID(), ordering: .relaxed)
    }

    func unlockDevice(_ dev: Device) {
        guard dev.deviceLockOwner.load(ordering: .relaxed) == currentThreadID() else { return }
        dev.deviceLockOwner.store(0, ordering: .relaxed)
        dev.deviceLock.unlock()
    }
}
