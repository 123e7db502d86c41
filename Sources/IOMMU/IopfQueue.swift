import Lockdep

/// The modelled SMMUv3 driver's I/O page fault queue (`smmu->evtq.iopf`, the kernel's
/// `struct iopf_queue` in drivers/iommu/io-pgfault.c).
///
/// Only its locking matters to the registry: `iopf_queue_add_device()` and
/// `iopf_queue_remove_device()` take `&queue->lock`, then the device's `&param->lock`
/// (``DevIommu/lock``, `dev->iommu->lock`), and the driver calls them from `attach_dev`
/// (`arm_smmu_enable_iopf`) and from removing the old master domain
/// (`arm_smmu_disable_iopf`), both of which assert `group->mutex`. So the kernel has the
/// chain `group->mutex -> &queue->lock -> &param->lock` whenever a fault-capable domain is
/// attached or detached, and a worker that takes `&param->lock` before `group->mutex` closes
/// a cycle Lockdep reports.
final class IopfQueue: @unchecked Sendable {
    /// `queue->lock`: protects the queue's device list.
    let lock: CheckedMutex
    /// `queue->devices` (the devices whose `param->fault_param` points at this queue); guarded by `lock`.
    private var devices: Set<ObjectIdentifier> = []

    init(lockClass: LockClass) {
        lock = CheckedMutex(class: lockClass)
    }

    /// `iopf_queue_add_device(queue, dev)`: `&queue->lock`, then `&param->lock`; installs
    /// `param->fault_param`.
    /// - Returns: `false` (`-EBUSY`) if the device already has a fault parameter.
    func addDevice<Flavor>(_ dev: Device<Flavor>, param: DevIommu<Flavor>) -> Bool {
        lock.withLock {
            param.lock.withLock {
                guard !param.hasFaultParam else { return false }
                param.hasFaultParam = true
                devices.insert(ObjectIdentifier(dev))
                return true
            }
        }
    }

    /// `iopf_queue_remove_device(queue, dev)`: the same two locks; clears `param->fault_param`.
    func removeDevice<Flavor>(_ dev: Device<Flavor>, param: DevIommu<Flavor>) {
        lock.withLock {
            param.lock.withLock {
                param.hasFaultParam = false
                devices.remove(ObjectIdentifier(dev))
            }
        }
    }

    /// Devices currently on the queue (tests).
    var deviceCount: Int { lock.withLock { devices.count } }
}
