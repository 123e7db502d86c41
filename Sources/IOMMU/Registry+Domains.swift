import Lockdep

extension Registry {
    /// `__iommu_group_set_domain_internal(group, new, flags)`: under the mutex. In the kernel's
    /// order: nothing to do if `new` is already the domain; a NULL `new` WARNs and fails with
    /// `-EINVAL`; `-EBUSY` while devices are in recovery unless `mustSucceed`
    /// (`IOMMU_SET_DOMAIN_MUST_SUCCEED`). Blocked devices stay on the blocking domain. On a failed
    /// attach the devices already switched are reverted; with `mustSucceed` the others are still
    /// tried (the failed one is parked on the blocking domain if there is one), `group->domain` is
    /// set anyway and the first error is thrown for the caller to WARN about.
    func setDomainInternal(_ group: IommuGroup, _ new: Domain?, mustSucceed: Bool) throws(IOMMUError) {
        Lockdep.assertHeld(group.mutex)
        if group.domain === new { return }
        guard let new else {
            log.warn("NULL new domain for \(group)", function: "__iommu_group_set_domain_internal")
            throw .invalidArgument
        }
        if group.recoveryCnt > 0 && !mustSucceed { throw .busy }
        var switched: [GroupDevice] = []
        var result: IOMMUError?
        for gdev in group.members {
            if gdev.blocked != .none { continue }
            let previous = gdev.attachedDomain
            do {
                try deviceSetDomain(gdev, new)
                switched.append(gdev)
            } catch {
                if mustSucceed {
                    // __iommu_device_set_domain: try the blocking domain to avoid a UAF.
                    if let blocking = group.blockingDomain, blocking !== new { try? deviceSetDomain(gdev, blocking) }
                    result = result ?? error
                    continue
                }
                for done in switched {
                    if let previous = group.domain { try? deviceSetDomain(done, previous) } else { done.attachedDomain = previous }
                }
                throw error
            }
        }
        group.domain = new
        if let result { throw result }
    }

    /// `__iommu_group_set_domain_nofail()`: MUST_SUCCEED, and a failure is a WARN.
    func setDomainNofail(_ group: IommuGroup, _ new: Domain?) {
        do throws(IOMMUError) {
            try setDomainInternal(group, new, mustSucceed: true)
        } catch {
            log.warn("\(group): nofail switch to \(new.map { "\($0)" } ?? "NULL") failed: \(error)",
                     function: "__iommu_group_set_domain_nofail")
        }
    }

    /// `__iommu_group_set_core_domain()`: the blocking domain while owned, else the default one.
    func setCoreDomain(_ group: IommuGroup) {
        Lockdep.assertHeld(group.mutex)
        let target = group.owner != nil ? allocBlockingDomain(group) : group.defaultDomain
        setDomainNofail(group, target)
    }

    /// `iommu_driver_get_domain_for_dev(dev)`: the domain the driver must treat as the device's RID
    /// domain: the blocking domain while the device is blocked (reset or quarantine), else the
    /// group's. The caller holds `group->mutex` (a driver's attach path).
    func driverGetDomainForDev(_ dev: Device, in group: IommuGroup) -> Domain? {
        Lockdep.assertHeld(group.mutex)
        guard let gdev = devToGdev(dev, in: group) else { return group.domain }
        return gdev.blocked != .none ? group.blockingDomain : group.domain
    }

    /// The domain the driver sees for `dev` (`iommu_driver_get_domain_for_dev`, taken under the
    /// group's mutex): the blocking domain while the device is blocked, else the group's domain.
    /// - Returns: `nil` if the device has no group or no domain.
    public func driverDomain(for dev: Device) -> Domain? {
        guard let group = dev.iommuGroup.protectedValue else { return nil }
        return group.mutex.withLock { driverGetDomainForDev(dev, in: group) }
    }

    /// `iommu_deferred_attach(dev, domain)`: the DMA API's first map attaches a device whose
    /// attach was deferred (kdump); refused with `-EBUSY` while the device is blocked.
    /// - Throws: ``IOMMUError/busy`` while blocked, ``IOMMUError/attachFailed`` if the attach fails.
    public func deferredAttach(_ dev: Device, to domain: Domain) throws(IOMMUError) {
        guard let group = dev.iommuGroup.protectedValue else { return }
        try group.mutex.withLock { () throws(IOMMUError) in
            // attach_deferred is read under the mutex that clears it, as the kernel's does: two
            // CPUs' first DMA maps may race here.
            guard let param = dev.iommu, param.attachDeferred else { return }
            guard let gdev = devToGdev(dev, in: group) else { throw .noDevice }
            if gdev.blocked != .none { throw .busy }
            try deviceSetDomain(gdev, domain)
            param.attachDeferred = false
        }
    }

    func lockedGroup(of dev: Device) throws(IOMMUError) -> IommuGroup {
        guard let group = dev.iommuGroup.protectedValue else { throw .noDevice }
        group.life.check("dev->iommu_group")
        return group
    }

    // MARK: default-domain users (drivers using the DMA API)

    /// `iommu_device_use_default_domain(dev)`: a DMA-API driver bound to `dev` (`owner_cnt++`).
    /// - Throws: ``IOMMUError/probeDefer`` without a default domain, ``IOMMUError/busy`` if the
    ///   group is owned or on a foreign domain.
    public func useDefaultDomain(_ dev: Device) throws(IOMMUError) {
        guard let group = dev.iommuGroup.protectedValue else { return }
        try group.mutex.withLock { () throws(IOMMUError) in
            guard group.defaultDomain != nil else { throw .probeDefer }
            if group.ownerCnt > 0 {
                if group.domain !== group.defaultDomain || group.owner != nil || !group.pasidArray.isEmpty {
                    throw .busy
                }
            }
            group.ownerCnt += 1
        }
    }

    /// `iommu_device_unuse_default_domain(dev)`. An unbalanced call WARNs and changes nothing.
    public func unuseDefaultDomain(_ dev: Device) {
        guard let group = dev.iommuGroup.protectedValue else { return }
        group.mutex.withLock {
            if group.ownerCnt == 0 || group.owner != nil || !group.pasidArray.isEmpty {
                log.warn("unbalanced unuse of the default domain of \(group)", function: "iommu_device_unuse_default_domain")
                return
            }
            group.ownerCnt -= 1
        }
    }

    // MARK: DMA ownership (VFIO / iommufd)

    /// `__iommu_take_dma_ownership()`.
    func takeDmaOwnership(_ group: IommuGroup, _ owner: ObjectIdentifier) throws(IOMMUError) {
        Lockdep.assertHeld(group.mutex)
        if group.domain !== group.defaultDomain || !group.pasidArray.isEmpty { throw .busy }
        let blocking = allocBlockingDomain(group)
        try setDomainInternal(group, blocking, mustSucceed: false)
        group.owner = owner
        group.ownerCnt += 1
    }

    /// `iommu_group_claim_dma_owner(group, owner)`.
    /// - Throws: ``IOMMUError/permissionDenied`` if already used or owned,
    ///   ``IOMMUError/busy`` if not on the default domain or in recovery.
    public func claimDmaOwner(_ group: IommuGroup, owner: AnyObject) throws(IOMMUError) {
        try gate.write { () throws(IOMMUError) in
            group.life.check("iommu_group_claim_dma_owner")
            try group.mutex.withLock { () throws(IOMMUError) in
                if group.ownerCnt > 0 { throw .permissionDenied }
                try takeDmaOwnership(group, ObjectIdentifier(owner))
            }
        }
    }

    /// `iommu_device_claim_dma_owner(dev, owner)`: the same owner nests, another one is refused.
    public func claimDmaOwner(_ dev: Device, owner: AnyObject) throws(IOMMUError) {
        try gate.write { () throws(IOMMUError) in
            let group = try lockedGroup(of: dev)
            try group.mutex.withLock { () throws(IOMMUError) in
                if group.ownerCnt > 0 {
                    guard group.owner == ObjectIdentifier(owner) else { throw .permissionDenied }
                    group.ownerCnt += 1
                    return
                }
                try takeDmaOwnership(group, ObjectIdentifier(owner))
            }
        }
    }

    /// `__iommu_release_dma_ownership()`: nofail switch back to the default domain.
    func releaseDmaOwnership(_ group: IommuGroup) {
        Lockdep.assertHeld(group.mutex)
        group.ownerCnt = 0
        group.owner = nil
        setDomainNofail(group, group.defaultDomain)
    }

    /// `iommu_group_release_dma_owner(group)`. Releasing a group that is not owned WARNs.
    public func releaseDmaOwner(_ group: IommuGroup) {
        gate.write {
            group.life.check("iommu_group_release_dma_owner")
            group.mutex.withLock {
                if group.ownerCnt == 0 || group.owner == nil || !group.pasidArray.isEmpty {
                    log.warn("release of \(group) that is not owned", function: "iommu_group_release_dma_owner")
                    return
                }
                releaseDmaOwnership(group)
            }
        }
    }

    /// `iommu_device_release_dma_owner(dev)`: drops one nesting level; the last one releases.
    public func releaseDmaOwner(_ dev: Device) {
        gate.write {
            guard let group = dev.iommuGroup.protectedValue else {
                log.warn("\(dev) has no group", function: "iommu_device_release_dma_owner")
                return
            }
            group.mutex.withLock {
                if group.ownerCnt > 1 {
                    group.ownerCnt -= 1
                } else if group.ownerCnt == 1 && group.owner != nil {
                    releaseDmaOwnership(group)
                } else {
                    log.warn("release of \(group) that is not owned", function: "iommu_device_release_dma_owner")
                }
            }
        }
    }

    // MARK: attach / detach

    /// `__iommu_attach_group()`: only from no domain, the default or the blocking domain.
    func attachGroupLocked(_ domain: Domain, _ group: IommuGroup) throws(IOMMUError) {
        Lockdep.assertHeld(group.mutex)
        if let current = group.domain, current !== group.defaultDomain, current !== group.blockingDomain {
            throw .busy
        }
        try setDomainInternal(group, domain, mustSucceed: false)
    }

    /// `iommu_attach_device(domain, dev)`: the group must contain exactly this one device.
    public func attachDevice(_ domain: Domain, to dev: Device) throws(IOMMUError) {
        try gate.write { () throws(IOMMUError) in
            let group = try lockedGroup(of: dev)
            try group.mutex.withLock { () throws(IOMMUError) in
                guard group.members.count == 1 else { throw .invalidArgument }
                try attachGroupLocked(domain, group)
            }
        }
    }

    /// `iommu_attach_group(domain, group)`.
    /// - Throws: ``IOMMUError/busy`` if on a foreign domain or in recovery (S9).
    public func attachGroup(_ domain: Domain, to group: IommuGroup) throws(IOMMUError) {
        try gate.write { () throws(IOMMUError) in
            group.life.check("iommu_attach_group")
            try group.mutex.withLock { () throws(IOMMUError) in try attachGroupLocked(domain, group) }
        }
    }

    /// `iommu_detach_group(domain, group)`: back to the core domain (blocking if owned, else default).
    public func detachGroup(_ domain: Domain, from group: IommuGroup) {
        gate.write {
            group.life.check("iommu_detach_group")
            group.mutex.withLock {
                if group.domain !== domain {
                    log.warn("detach of \(domain) that is not attached to \(group)", function: "iommu_detach_group")
                    return
                }
                setCoreDomain(group)
            }
        }
    }

    /// `iommu_group_replace_domain(group, domain)`.
    public func replaceDomain(_ domain: Domain, in group: IommuGroup) throws(IOMMUError) {
        try gate.write { () throws(IOMMUError) in
            group.life.check("iommu_group_replace_domain")
            try group.mutex.withLock { () throws(IOMMUError) in try setDomainInternal(group, domain, mustSucceed: false) }
        }
    }

    /// `iommu_attach_device_pasid(domain, dev, pasid)`: refused with `-EBUSY` during recovery.
    public func attachPasid(_ domain: Domain, to dev: Device, pasid: UInt32) throws(IOMMUError) {
        try gate.write { () throws(IOMMUError) in
            let group = try lockedGroup(of: dev)
            try group.mutex.withLock { () throws(IOMMUError) in
                if group.recoveryCnt > 0 || group.pasidArray[pasid] != nil { throw .busy }
                group.pasidArray[pasid] = domain
            }
        }
    }

    /// `iommu_detach_device_pasid(domain, dev, pasid)`.
    public func detachPasid(_ domain: Domain, from dev: Device, pasid: UInt32) {
        gate.write {
            guard let group = dev.iommuGroup.protectedValue else { return }
            group.mutex.withLock {
                if group.pasidArray[pasid] !== domain {
                    log.warn("PASID \(pasid) is not attached to \(domain)", function: "iommu_detach_device_pasid")
                    return
                }
                group.pasidArray[pasid] = nil
            }
        }
    }
}
