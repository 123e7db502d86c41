public import Lockdep

/// Lockdep's checked locks name the writers' lock of an RCU container directly:
/// the container's check is then Lockdep's `lockdep_is_held`. Where Lockdep's
/// checks are compiled out, `Lockdep.isHeld` answers `true` and the check is off.
extension CheckedMutex: RCUWriterLock {
    public var isHeldByCurrentThread: Bool { Lockdep.isHeld(self) }
}

extension CheckedSpinLock: RCUWriterLock {
    public var isHeldByCurrentThread: Bool { Lockdep.isHeld(self) }
}

extension CheckedRWLock: RCUWriterLock {
    /// Writers of an RCU container must hold the lock for write.
    public var isHeldByCurrentThread: Bool { Lockdep.isHeld(self, mode: .write) }
}
