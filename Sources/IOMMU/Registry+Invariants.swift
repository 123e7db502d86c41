import Lockdep
public import RCU

/// A consistent view of one group, taken under its mutex (for tests and tools).
public struct GroupSnapshot<Flavor: RCUFlavor>: Sendable {
    /// One group device.
    public struct Member: Sendable {
        /// `gdev->dev`.
        public let device: Device<Flavor>
        /// `gdev->blocked`.
        public let blocked: GdevBlocked
        /// `gdev->reset_depth`.
        public let resetDepth: Int
        /// The domain the device is attached to in hardware.
        public let attachedDomain: Domain?
    }
    /// `group->id`.
    public let id: Int
    /// The kobject reference count.
    public let refCount: Int
    /// `group->devices`, in list order.
    public let members: [Member]
    /// `group->domain`.
    public let domain: Domain?
    /// `group->default_domain`.
    public let defaultDomain: Domain?
    /// `group->blocking_domain`.
    public let blockingDomain: Domain?
    /// `group->owner_cnt`.
    public let ownerCount: Int
    /// Whether `group->owner` is set.
    public let hasOwner: Bool
    /// `group->recovery_cnt`.
    public let recoveryCount: Int
    /// The number of entries in `group->pasid_array`.
    public let pasidCount: Int
}

extension Registry {
    /// A snapshot of `group`'s mutex-guarded state.
    public func snapshot(_ group: IommuGroup) -> GroupSnapshot {
        group.mutex.withLock { snapshotLocked(group) }
    }

    /// The snapshot of the group `dev` is in, or `nil`.
    public func snapshot(of dev: Device) -> GroupSnapshot? {
        group(of: dev).map { snapshot($0) }
    }

    func snapshotLocked(_ group: IommuGroup) -> GroupSnapshot {
        GroupSnapshot(
            id: group.id, refCount: group.ref.load(ordering: .relaxed),
            members: group.members.map {
                .init(device: $0._dev, blocked: $0.blocked, resetDepth: $0.resetDepth, attachedDomain: $0.attachedDomain)
            },
            domain: group.domain, defaultDomain: group.defaultDomain, blockingDomain: group.blockingDomain,
            ownerCount: group.ownerCnt, hasOwner: group.owner != nil, recoveryCount: group.recoveryCnt,
            pasidCount: group.pasidArray.count)
    }

    /// Checks the invariants I2-I6 (and I10 when `quiescent`) over every group, holding
    /// `iommu_probe_device_lock` throughout and each group's mutex while its group is checked.
    /// The probe lock keeps devices from joining groups meanwhile, so one group at a time is
    /// enough (holding every group mutex at once would exceed Lockdep's 48-lock depth with
    /// many groups). Violations are returned and recorded in ``log``.
    ///
    /// I1 is checked by every accessor (use-after-free reports), I3's reader side and I9 by the
    /// registry's own paths, I7 and I8 by Lockdep (contexts, `lockdep_assert_not_held`).
    /// - Parameter quiescent: No operation is in flight (so reference counts are exact: I10).
    /// - Returns: The violations found.
    @discardableResult
    public func checkInvariants(quiescent: Bool = false) -> [InvariantViolation] {
        var found: [InvariantViolation] = []
        probeDeviceLock.lock()
        var seen: [ObjectIdentifier: IommuGroup] = [:]
        for g in groups {
            g.mutex.lock()
            defer { g.mutex.unlock() }
            let label = "\(g)"
            for gdev in g.members {
                let dev = gdev._dev
                // I1: a linked gdev is live.
                if gdev.life.state != .live { found.append(.init(.i1, "\(gdev) on \(label)'s list is \(gdev.life.state)")) }
                // I2: one group per device.
                if let other = seen[ObjectIdentifier(dev)] {
                    found.append(.init(.i2, "\(dev) is on the lists of \(other) and \(label)"))
                }
                seen[ObjectIdentifier(dev)] = g
                // I3: gdev on g.devices => dev->iommu_group == g.
                if dev.iommuGroup.protectedValue !== g {
                    found.append(.init(.i3, "\(gdev) is on \(label)'s list but its dev->iommu_group is not \(label)"))
                }
            }
            // I4: empty group.
            if g.members.isEmpty && (g.ownerCnt != 0 || g.domain !== g.defaultDomain) {
                found.append(.init(.i4, "\(label) is empty with owner_cnt \(g.ownerCnt) or a non-default domain"))
            }
            // I5: recovery bookkeeping.
            // Devices removed while blocked stay counted (the kernel never decrements for them).
            let blocked = g.members.filter { $0.blocked != .none }
            if g.recoveryCnt != blocked.count + g.recoveryLeftByRemoved {
                found.append(.init(.i5, "\(label) recovery_cnt \(g.recoveryCnt) but \(blocked.count) blocked device(s) and \(g.recoveryLeftByRemoved) removed while blocked"))
            }
            for gdev in g.members {
                if (gdev.blocked == .reset) != (gdev.resetDepth > 0) && gdev.blocked != .broken {
                    found.append(.init(.i5, "\(gdev) blocked \(gdev.blocked) with reset_depth \(gdev.resetDepth)"))
                }
                if gdev.blocked != .none && gdev.attachedDomain !== g.blockingDomain {
                    found.append(.init(.i5, "\(gdev) is blocked but not attached to the blocking domain"))
                }
            }
            // I6: ownership.
            if g.owner != nil && (g.ownerCnt < 1 || g.domain === g.defaultDomain) {
                found.append(.init(.i6, "\(label) is owned with owner_cnt \(g.ownerCnt) on the default domain"))
            }
            if g.owner == nil && g.ownerCnt > 0 && (g.domain !== g.defaultDomain || !g.pasidArray.isEmpty) {
                found.append(.init(.i6, "\(label) has DMA-API users but is not on its default domain"))
            }
            // I10: reference pairing.
            if quiescent {
                let expected = g.members.count + g.externalRefs.load(ordering: .relaxed)
                let actual = g.ref.load(ordering: .relaxed)
                if actual != expected {
                    found.append(.init(.i10, "\(label) refcount \(actual), expected \(expected)"))
                }
            }
        }
        // I3 converse (probe lock held): dev->iommu_group == g => a gdev on g's list (probed devices).
        let devices = tableLock.withLock { busDevices }
        for dev in devices {
            guard let g = dev.iommuGroup.protectedValue else { continue }
            // Under g's mutex, as the group pass was: a release since then has cleared
            // dev->iommu_group (and dev->iommu) under it, so a stale `seen` is not a violation.
            let orphaned = g.mutex.withLock {
                dev.iommuGroup.protectedValue === g && dev.iommu != nil && seen[ObjectIdentifier(dev)] !== g
            }
            if orphaned {
                found.append(.init(.i3, "\(dev)'s dev->iommu_group is \(g) but it is not on its list"))
            }
        }
        probeDeviceLock.unlock()
        for v in found { log.violation(v) }
        return found
    }
}
