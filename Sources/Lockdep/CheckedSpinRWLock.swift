internal import Glibc
internal import Synchronization

/// A spinning reader-writer lock checked by the validator (the kernel's `rwlock_t`), usable in
/// hardirq and softirq context.
///
/// Holding either side makes the context atomic. Writers are exclusive; how readers are
/// validated depends on ``Readers``:
/// - ``Readers/recursive``: every reader is a recursive reader (``LockdepMode/recursiveRead``),
///   the kernel's rwlock with `force_read_lock_recursive`;
/// - ``Readers/queued``: the kernel's queued rwlock. A reader in interrupt context (hardirq,
///   softirq, or bottom halves disabled) may recurse, because a queued rwlock lets it in past a
///   waiting writer; any other reader is non-recursive (``LockdepMode/read``).
public final class CheckedSpinRWLock: LockdepLock, @unchecked Sendable {
    /// How readers are validated.
    public enum Readers: Sendable {
        /// Readers are always recursive.
        case recursive
        /// Queued-rwlock semantics: recursive only in interrupt context.
        case queued
    }

    /// The class of the lock.
    public let lockClass: LockClass
    /// How readers are validated.
    public let readers: Readers
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>
    private let declared: LockdepSite
    /// The writer, its owner word and its refused recursive write acquires.
    private let writeHold = ExclusiveHold()
    private let readerCount = Atomic<Int>(0)

    /// Creates a lock.
    ///
    /// - Parameters:
    ///   - name: The class name for reports; defaults to `"rwlock@File.swift:line"`.
    ///   - lockClass: An explicit class; `nil` makes (or joins) the class of this declaration site.
    ///   - readers: How readers are validated (default ``Readers/queued``, as the kernel's `rwlock_t`).
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    public init(_ name: String? = nil, class lockClass: LockClass? = nil, readers: Readers = .queued,
                fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        declared = LockdepSite(fileID: fileID, line: line, function: function)
        self.lockClass = lockClass ?? LockClass(name ?? "rwlock@\(declared.fileName):\(line)", fileID: fileID, line: line)
        self.readers = readers
        rwlock = .allocate(capacity: 1)
        pthread_rwlock_init(rwlock, nil)
    }

    deinit {
        if writeHold.isHeld || readerCount.load(ordering: .relaxed) > 0 {
            KernelLockSupport.destroyedWhileHeld(lockClass, instance: lockdepInstance, ownerWord: writeHold.word,
                                                 declared: declared)
            return   // leaked: a held primitive must not be destroyed
        }
        pthread_rwlock_destroy(rwlock)
        rwlock.deallocate()
    }

    /// The identity of this lock.
    public var lockdepInstance: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// The mode a reader is validated in here and now.
    var readMode: LockdepMode {
        switch readers {
        case .recursive: return .recursiveRead
        case .queued:
            #if LOCKDEP_CHECKS
            let t = ThreadState.current()
            let inInterrupt = t.pointee.context != LockdepContext.process.rawValue || t.pointee.softirqOff > 0
            return inInterrupt ? .recursiveRead : .read
            #else
            return .read
            #endif
        }
    }

    /// Acquires the read side (`read_lock`), spinning while a writer holds it.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func readLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        _ = KernelLockSupport.acquire(lockClass, subclass: 0, instance: lockdepInstance, mode: readMode,
                                      sleeping: false, atomic: true, site: site)
        if writeHold.isHeldByCaller { return }   // would spin forever: reported
        while pthread_rwlock_tryrdlock(rwlock) != 0 { sched_yield() }
        readerCount.add(1, ordering: .relaxed)
    }

    /// Acquires the write side (`write_lock`), spinning until it is available.
    ///
    /// Called by the thread that holds the write side already (it would spin for ever), it is
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
            KernelLockSupport.refuseRecursive(self, subclass: 0, call: "CheckedSpinRWLock.writeLock()", site: site)
            return
        }
        let word = KernelLockSupport.acquire(lockClass, subclass: 0, instance: lockdepInstance, mode: .write,
                                             sleeping: false, atomic: true, site: site)
        while pthread_rwlock_trywrlock(rwlock) != 0 { sched_yield() }
        writeHold.take(word: word)
    }

    /// Releases the read side (`read_unlock`). Releasing a side this thread does not hold is
    /// reported and not performed; so is releasing the side it does not hold with the other side's
    /// call (its hold stays for the right release).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func readUnlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        guard KernelLockSupport.releaseSide(self, write: false, ownerWord: 0, call: "CheckedSpinRWLock.readUnlock()", site: site),
              readerCount.load(ordering: .relaxed) > 0 else { return }
        readerCount.subtract(1, ordering: .relaxed)
        pthread_rwlock_unlock(rwlock)
    }

    /// Releases the write side (`write_unlock`). Releasing a side this thread does not hold is
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
        guard KernelLockSupport.releaseSide(self, write: true, ownerWord: writeHold.word, call: "CheckedSpinRWLock.writeUnlock()", site: site),
              writeHold.isHeldByCaller else { return }
        writeHold.release()
        pthread_rwlock_unlock(rwlock)
    }
}
