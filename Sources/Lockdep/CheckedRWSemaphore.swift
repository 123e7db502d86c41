internal import Glibc
internal import Synchronization

/// A sleeping reader-writer semaphore with non-recursive readers, checked by the validator (the
/// kernel's `rw_semaphore`): a writer-preferring `pthread_rwlock_t`.
///
/// Readers are *not* recursive: once a writer waits, a second `down_read` of the same class by
/// a reader blocks behind it, so Lockdep validates readers with ``LockdepMode/read``. Taking the
/// read side twice, mixing read and write sides of one class, and read-side cycles are
/// reported, where ``CheckedRWLock``'s recursive readers would not be.
public final class CheckedRWSemaphore: LockdepLock, @unchecked Sendable {
    /// The class of the semaphore.
    public let lockClass: LockClass
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>
    private let declared: LockdepSite
    /// The writer, its owner word and its refused recursive write acquires.
    private let writeHold = ExclusiveHold()
    private let readers = Atomic<Int>(0)
    private var subclass = 0

    /// Creates a semaphore.
    ///
    /// - Parameters:
    ///   - name: The class name for reports; defaults to `"rwsem@File.swift:line"`.
    ///   - lockClass: An explicit class; `nil` makes (or joins) the class of this declaration site.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    public init(_ name: String? = nil, class lockClass: LockClass? = nil, fileID: StaticString = #fileID,
                line: UInt = #line, function: StaticString = #function) {
        declared = LockdepSite(fileID: fileID, line: line, function: function)
        self.lockClass = lockClass ?? LockClass(name ?? "rwsem@\(declared.fileName):\(line)", fileID: fileID, line: line)
        rwlock = .allocate(capacity: 1)
        var attr = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attr)
        pthread_rwlockattr_setkind_np(&attr, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(rwlock, &attr)
        pthread_rwlockattr_destroy(&attr)
    }

    deinit {
        if writeHold.isHeld || readers.load(ordering: .relaxed) > 0 {
            KernelLockSupport.destroyedWhileHeld(lockClass, instance: lockdepInstance, ownerWord: writeHold.word,
                                                 declared: declared)
            return   // leaked: a held primitive must not be destroyed
        }
        pthread_rwlock_destroy(rwlock)
        rwlock.deallocate()
    }

    /// The identity of this semaphore.
    public var lockdepInstance: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// The subclass every later acquire uses (`lockdep_set_subclass`): the class and its name
    /// stay the same, acquires are validated as subclass `subclass` of it.
    ///
    /// - Parameter subclass: 0...7.
    public func setSubclass(_ subclass: Int) { self.subclass = subclass & 7 }

    /// Acquires the read side (`down_read`), sleeping while a writer holds or waits for it.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func readLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        _ = KernelLockSupport.acquire(lockClass, subclass: subclass, instance: lockdepInstance, mode: .read,
                                      sleeping: true, atomic: false, site: site)
        if writeHold.isHeldByCaller { return }   // would deadlock: reported
        pthread_rwlock_rdlock(rwlock)
        readers.add(1, ordering: .relaxed)
    }

    /// Acquires the write side (`down_write`).
    ///
    /// Called by the thread that holds the write side already (it would deadlock on itself), it is
    /// reported as recursive locking and refused; the matching ``writeUnlock(fileID:line:function:)``
    /// releases nothing.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func writeLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if writeHold.isHeldByCaller {
            writeHold.refuse()
            KernelLockSupport.refuseRecursive(self, subclass: subclass, call: "CheckedRWSemaphore.writeLock()", site: site)
            return
        }
        let word = KernelLockSupport.acquire(lockClass, subclass: subclass, instance: lockdepInstance, mode: .write,
                                             sleeping: true, atomic: false, site: site)
        pthread_rwlock_wrlock(rwlock)
        writeHold.take(word: word)
    }

    /// Releases the read side (`up_read`). Releasing a side this thread does not hold is
    /// reported and not performed; so is releasing the side it does not hold with the other side's
    /// call (its hold stays for the right release).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func readUnlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        guard KernelLockSupport.releaseSide(self, write: false, ownerWord: 0, call: "CheckedRWSemaphore.readUnlock()", site: site),
              readers.load(ordering: .relaxed) > 0 else { return }
        readers.subtract(1, ordering: .relaxed)
        pthread_rwlock_unlock(rwlock)
    }

    /// Releases the write side (`up_write`). Releasing a side this thread does not hold is
    /// reported and not performed; so is releasing the side it does not hold with the other side's
    /// call (its hold stays for the right release).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func writeUnlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if writeHold.consumeRefusal() { return }
        guard KernelLockSupport.releaseSide(self, write: true, ownerWord: writeHold.word, call: "CheckedRWSemaphore.writeUnlock()", site: site),
              writeHold.isHeldByCaller else { return }
        writeHold.release()
        pthread_rwlock_unlock(rwlock)
    }
}
