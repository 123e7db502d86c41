import Lockdep

extension Registry {
    /// `pci_dev_reset_iommu_prepare(dev)`: before an FLR, block the device's DMA (attach the
    /// blocking domain to this device only) and count it in `recovery_cnt`, which fences
    /// domain attaches until ``resetDone(_:succeeded:)``. Nests: only the outermost call acts.
    ///
    /// The caller must exclude a concurrent ``releaseDevice(_:)`` (as the kernel's comment says).
    /// - Throws: ``IOMMUError/noDevice`` if the device is not in its group's list.
    public func resetPrepare(_ dev: Device) throws(IOMMUError) {
        guard let group = dev.iommuGroup.protectedValue else { return }
        group.life.check("pci_dev_reset_iommu_prepare")
        try group.mutex.withLock { () throws(IOMMUError) in
            guard let gdev = devToGdev(dev, in: group) else {
                log.warn("\(dev) is not on \(group)'s list", function: "pci_dev_reset_iommu_prepare")   // WARN_ON(!gdev)
                throw .noDevice
            }
            gdev.resetDepth += 1
            if gdev.resetDepth > 1 { return }
            let blocking = allocBlockingDomain(group)
            if gdev.attachedDomain !== blocking { try? deviceSetDomain(gdev, blocking) }   // cannot fail
            if gdev.blocked == .none {
                gdev.setBlocked(.reset)
                if !bugs.contains(.noRecoveryFence) { group.recoveryCnt += 1 }
            }
        }
    }

    /// `pci_dev_reset_iommu_done(dev, result)`: the outermost call re-attaches the group's
    /// current domain (skipped when it is NULL) and lifts the block. A failed reset
    /// (`succeeded: false`) keeps the device blocked as broken (v5 semantics).
    /// An unbalanced call WARNs and changes nothing.
    public func resetDone(_ dev: Device, succeeded: Bool = true) {
        guard let group = dev.iommuGroup.protectedValue else { return }
        group.life.check("pci_dev_reset_iommu_done")
        group.mutex.withLock {
            guard let gdev = devToGdev(dev, in: group) else {
                log.warn("\(dev) is not on \(group)'s list", function: "pci_dev_reset_iommu_done")   // WARN_ON(!gdev)
                return
            }
            guard gdev.resetDepth > 0 else {
                log.warn("unbalanced reset done for \(dev) (reset_depth is 0)", function: "pci_dev_reset_iommu_done")
                return
            }
            gdev.resetDepth -= 1
            if gdev.resetDepth > 0 { return }
            guard group.blockingDomain != nil else {
                log.warn("\(group) has no blocking domain at reset done", function: "pci_dev_reset_iommu_done")   // WARN_ON(!blocking_domain)
                return
            }
            guard succeeded else {
                gdev.setBlocked(.broken)
                return
            }
            if let domain = group.domain {
                do throws(IOMMUError) {
                    try deviceSetDomain(gdev, domain)
                } catch {
                    log.warn("\(gdev) failed to re-attach \(domain)", function: "pci_dev_reset_iommu_done")
                }
            }
            if gdev.blocked != .none {
                gdev.setBlocked(.none)
                if group.recoveryCnt == 0 {
                    log.warn("recovery_cnt of \(group) is 0 at reset done", function: "pci_dev_reset_iommu_done")   // WARN_ON(recovery_cnt == 0)
                } else {
                    group.recoveryCnt -= 1
                }
            }
            dev.atsBlocked.store(false, ordering: .relaxed)
        }
    }
}
