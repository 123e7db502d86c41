public import Lockdep

/// Lockdep's checked locks name the writers' lock of an RCU container directly.
///
/// The container's check reads the lock's owner word, which every acquire records in
/// every build: it is exact in release builds too, where Lockdep's own checks (and
/// `Lockdep.isHeld`, which then answers `true`) are compiled out.
extension CheckedMutex: RCUWriterLock {}

extension CheckedSpinLock: RCUWriterLock {}

extension CheckedRWLock: RCUWriterLock {
    /// Whether the calling thread holds the lock for write, as writers of an RCU
    /// container must (``CheckedRWLock/isWriteHeldByCurrentThread``; exact in every build).
    public var isHeldByCurrentThread: Bool { isWriteHeldByCurrentThread }
}
