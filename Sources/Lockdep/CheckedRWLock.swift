public import Glibc

/// A reader-writer lock with recursive readers, checked by the validator (the kernel's
/// `rwlock_t` semantics on a `pthread_rwlock_t`).
///
/// Read acquires are *recursive reads*: a thread may take the read side again while holding
/// it, and recursive readers never deadlock against each other, so read/read orderings of two
/// classes in opposite orders are not reported. Any cycle that needs a writer is. Both sides may
/// sleep, so both are invalid in atomic context.
///
/// ```swift
/// let table = CheckedRWLock("routes")
/// table.withReadLock { lookup() }
/// table.withWriteLock { update() }
/// ```
public struct CheckedRWLock: LockdepLock, @unchecked Sendable {
    @usableFromInline let storage: LockStorage<pthread_rwlock_t>

    /// Creates a reader-writer lock (readers preferred, so recursive reads cannot block behind a
    /// waiting writer).
    ///
    /// - Parameters:
    ///   - name: The class name for reports; defaults to `"rwlock@File.swift:line"`. A lock
    ///     that joins the class another name made at this declaration site keeps `name` as its
    ///     instance name, as ``CheckedMutex/init(_:class:fileID:line:function:)`` does.
    ///   - lockClass: An explicit class; `nil` makes (or joins) the class of this declaration site.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    public init(_ name: String? = nil, class lockClass: LockClass? = nil, fileID: StaticString = #fileID,
                line: UInt = #line, function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let cls = lockClass ?? LockClass(name ?? "rwlock@\(site.fileName):\(line)", fileID: fileID, line: line)
        storage = .make(cls, declared: site, primitive: pthread_rwlock_t()) { p in
            pthread_rwlock_init(p, nil)
        }
        Lockdep.keepNameIfJoined(self, name: name, explicitClass: lockClass != nil)
    }

    /// The class of the lock.
    public var lockClass: LockClass { storage.header.lockClass }
    /// The identity of this lock.
    public var lockdepInstance: UnsafeRawPointer { storage.instance }

    /// Whether the calling thread holds the write side.
    ///
    /// Exact in every build, checks compiled in or out: it reads the owner word every write
    /// acquire records (one relaxed store per write acquire and release where checks are
    /// compiled out). Read holds are not recorded there: use ``Lockdep/isHeld(_:mode:)``.
    /// - Complexity: O(1): one relaxed load.
    public var isWriteHeldByCurrentThread: Bool { storage.isOwnedByCurrentThread }

    /// Acquires the read side (recursive read).
    ///
    /// Called by the thread that holds the write side, it reports
    /// ``LockdepReport/Kind/recursiveLocking`` through ``Lockdep/reportHandler`` and returns
    /// without acquiring anything: the thread keeps its write hold (which excludes every other
    /// thread), and the matching ``unlock(fileID:line:function:)`` releases nothing. This holds
    /// in every build (with checks compiled out, glibc's `EDEADLK` answer tells it).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func readLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let thread = Engine.fastThread()
        if _slowPath(storage.isOwned(by: thread)) {
            storage.refuseRecursiveAcquire(subclass: 0, mode: .recursiveRead, counted: true, call: "CheckedRWLock.readLock()", site: site)
            return
        }
        _readLock(site: site, thread: thread)
        #else
        let rc = pthread_rwlock_rdlock(storage.primitivePointer)
        if _slowPath(rc != 0) {
            _readLockFailed(rc, counted: true, call: "CheckedRWLock.readLock()",
                            site: LockdepSite(fileID: fileID, line: line, function: function))
        }
        #endif
    }

    /// Acquires the write side.
    ///
    /// Called by the thread that already holds the write side (which would never return), it
    /// reports ``LockdepReport/Kind/recursiveLocking`` through ``Lockdep/reportHandler`` and
    /// returns at once without a second acquisition; the matching
    /// ``unlock(fileID:line:function:)`` releases nothing. This holds in every build.
    ///
    /// - Important: Upgrading (taking the write side while this thread holds the read side)
    ///   deadlocks, as with `pthread_rwlock_t`: release the read side first. Readers are not
    ///   recorded where Lockdep's checks are compiled out (that would cost every read acquire),
    ///   so there an upgrade hangs without a report; with checks compiled in, Lockdep reports it
    ///   as ``LockdepReport/Kind/recursiveLocking`` the first time its chain of held classes is seen.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func writeLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let thread = Engine.fastThread()
        if _slowPath(storage.isOwned(by: thread)) {
            storage.refuseRecursiveAcquire(subclass: 0, mode: .write, counted: true, call: "CheckedRWLock.writeLock()", site: site)
            return
        }
        _writeLock(site: site, thread: thread)
        #else
        let me = LockStorage<pthread_rwlock_t>.currentThread
        if _slowPath(storage.isOwned(by: me)) {
            storage.refuseRecursiveAcquire(me, mode: .write, counted: true, call: "CheckedRWLock.writeLock()",
                                           site: LockdepSite(fileID: fileID, line: line, function: function))
            return
        }
        pthread_rwlock_wrlock(storage.primitivePointer)
        storage.setOwner(thread: me)
        #endif
    }

    /// Tries to acquire the read side without blocking.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether the read side was acquired (`false` while the write side is held, by
    ///   this thread too).
    @inlinable
    public func tryReadLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        guard pthread_rwlock_tryrdlock(storage.primitivePointer) == 0 else { return false }
        #if LOCKDEP_CHECKS
        _ = Engine.acquire(classID: storage.classID, subclass: 0, instance: storage.instance, mode: .recursiveRead,
                           flags: AcquireFlag.trylock, nest: nil, site: LockdepSite(fileID: fileID, line: line, function: function))
        #endif
        return true
    }

    /// Tries to acquire the write side without blocking.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether the write side was acquired (`false` while the lock is held, by this
    ///   thread too).
    @inlinable
    public func tryWriteLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        guard pthread_rwlock_trywrlock(storage.primitivePointer) == 0 else { return false }
        #if LOCKDEP_CHECKS
        let token = Engine.acquire(classID: storage.classID, subclass: 0, instance: storage.instance, mode: .write,
                                   flags: AcquireFlag.trylock, nest: nil, site: LockdepSite(fileID: fileID, line: line, function: function))
        storage.setOwner(token)
        #else
        storage.setOwner(thread: LockStorage<pthread_rwlock_t>.currentThread)
        #endif
        return true
    }

    /// Releases the read or write side this thread holds.
    ///
    /// A release that cannot be this thread's is reported through ``Lockdep/reportHandler`` and
    /// not performed: while another thread holds the write side
    /// (``LockdepReport/Kind/unlockFromOtherThread``), or while nobody holds the lock
    /// (``LockdepReport/Kind/unlockNotHeld``). The release matching a refused recursive
    /// ``readLock(fileID:line:function:)`` or ``writeLock(fileID:line:function:)`` releases
    /// nothing. All of this holds in every build.
    ///
    /// - Important: With checks compiled out, readers are not recorded, so a read release by a
    ///   thread that holds nothing while *other* threads hold the read side cannot be told from
    ///   theirs and is performed (it takes one of their holds away): release only what you took.
    ///   With checks compiled in, Lockdep refuses it too.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func unlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        let thread = Engine.fastThread()
        if storage.consumeRefusal(thread) { return }
        _unlock(site: LockdepSite(fileID: fileID, line: line, function: function), thread: thread)
        #else
        _plainUnlock(endOfScope: false, call: "CheckedRWLock.unlock()", fileID: fileID, line: line, function: function)
        #endif
    }

    /// Runs `body` holding the read side.
    ///
    /// Called by the thread that holds the write side, it reports
    /// ``LockdepReport/Kind/recursiveLocking`` through ``Lockdep/reportHandler`` and runs `body`
    /// under that write hold, acquiring and releasing nothing.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    ///   - body: The read-side critical section.
    /// - Returns: What `body` returns.
    @inlinable @inline(__always)
    public func withReadLock<R, E: Error>(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function,
                                          _ body: () throws(E) -> R) throws(E) -> R {
        #if LOCKDEP_CHECKS
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let thread = Engine.fastThread()
        if _slowPath(storage.isOwned(by: thread)) {
            storage.refuseRecursiveAcquire(subclass: 0, mode: .recursiveRead, counted: false,
                                           call: "CheckedRWLock.withReadLock(_:)", site: site)
            return try body()
        }
        _readLock(site: site, thread: thread)
        defer { _unlock(site: site, thread: thread) }
        #else
        let rc = pthread_rwlock_rdlock(storage.primitivePointer)
        if _slowPath(rc != 0) {
            _readLockFailed(rc, counted: false, call: "CheckedRWLock.withReadLock(_:)",
                            site: LockdepSite(fileID: fileID, line: line, function: function))
            return try body()
        }
        defer { _plainUnlock(endOfScope: false, call: "CheckedRWLock.withReadLock(_:)", fileID: fileID, line: line, function: function) }
        #endif
        return try body()
    }

    /// Runs `body` holding the write side.
    ///
    /// Called by the thread that already holds the write side, it reports
    /// ``LockdepReport/Kind/recursiveLocking`` through ``Lockdep/reportHandler`` and runs `body`
    /// under that hold, acquiring and releasing nothing. The lock is released when `body`
    /// returns even if `body` left a refused ``writeLock(fileID:line:function:)`` or
    /// ``readLock(fileID:line:function:)`` unmatched. Called by a thread that holds the read
    /// side, it deadlocks (see ``writeLock(fileID:line:function:)``).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    ///   - body: The write-side critical section.
    /// - Returns: What `body` returns.
    @inlinable @inline(__always)
    public func withWriteLock<R, E: Error>(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function,
                                           _ body: () throws(E) -> R) throws(E) -> R {
        #if LOCKDEP_CHECKS
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let thread = Engine.fastThread()
        if _slowPath(storage.isOwned(by: thread)) {
            storage.refuseRecursiveAcquire(subclass: 0, mode: .write, counted: false,
                                           call: "CheckedRWLock.withWriteLock(_:)", site: site)
            return try body()
        }
        _writeLock(site: site, thread: thread, scoped: true)
        defer {
            storage.endScope(thread)
            _unlock(site: site, thread: thread)
        }
        #else
        let me = LockStorage<pthread_rwlock_t>.currentThread
        if _slowPath(storage.isOwned(by: me)) {
            storage.refuseRecursiveAcquire(me, mode: .write, counted: false, call: "CheckedRWLock.withWriteLock(_:)",
                                           site: LockdepSite(fileID: fileID, line: line, function: function))
            return try body()
        }
        pthread_rwlock_wrlock(storage.primitivePointer)
        storage.setOwner(thread: me)
        defer { _plainUnlock(endOfScope: true, call: "CheckedRWLock.withWriteLock(_:)", fileID: fileID, line: line, function: function) }
        #endif
        return try body()
    }

    #if !LOCKDEP_CHECKS
    /// A release with checks compiled out. The owner word is 0 for a read release (readers do
    /// not record themselves; a thread holding the read side always sees 0 there, since no writer
    /// can be in): refused when glibc counts no readers at all. Otherwise it is a write release,
    /// refused unless the word names this thread.
    @inlinable @inline(__always)
    func _plainUnlock(endOfScope: Bool, call: StaticString, fileID: StaticString, line: UInt, function: StaticString) {
        let word = storage.ownerWord()
        if _fastPath(word == 0) {
            guard _fastPath(storage.hasReaders) else {
                Engine.refusedRelease(classID: storage.classID, instance: storage.instance, heldByAnother: false, call: call,
                                      site: LockdepSite(fileID: fileID, line: line, function: function))
                return
            }
        } else {
            let me = LockStorage<pthread_rwlock_t>.currentThread
            if _fastPath(word == me) {
                storage.clearOwnerThread()
            } else if !storage.releaseSlowPath(me, word: word, endOfScope: endOfScope, call: call,
                                               site: LockdepSite(fileID: fileID, line: line, function: function)) {
                return
            }
        }
        pthread_rwlock_unlock(storage.primitivePointer)
    }

    /// A read acquire that glibc refused: `EDEADLK` when this thread holds the write side
    /// (reported and refused, counted when a release will match it); anything else (`EAGAIN`,
    /// too many readers) stops the process with a message naming the call and site.
    @usableFromInline @inline(never)
    func _readLockFailed(_ rc: Int32, counted: Bool, call: StaticString, site: LockdepSite) {
        let me = LockStorage<pthread_rwlock_t>.currentThread
        guard rc == EDEADLK, storage.isOwned(by: me) else {
            fatalError("lockdep: \(call) at \(site): pthread_rwlock_rdlock failed with error \(rc)")
        }
        storage.refuseRecursiveAcquire(me, mode: .recursiveRead, counted: counted, call: call, site: site)
    }
    #endif

    #if LOCKDEP_CHECKS
    @inlinable @inline(__always)
    func _readLock(site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?) {
        let token = Engine.fastAcquire(classID: storage.classID, subclass: 0, instance: storage.instance,
                                       mode: .recursiveRead, flags: AcquireFlag.sleeping, site: site, thread: thread)
        storage.lockMeasured(token, site: site) { pthread_rwlock_tryrdlock($0) } lock: { pthread_rwlock_rdlock($0) }
    }

    @inlinable @inline(__always)
    func _writeLock(site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?, scoped: Bool = false) {
        let token = Engine.fastAcquire(classID: storage.classID, subclass: 0, instance: storage.instance,
                                       mode: .write, flags: AcquireFlag.sleeping, site: site, thread: thread)
        storage.lockMeasured(token, site: site) { pthread_rwlock_trywrlock($0) } lock: { pthread_rwlock_wrlock($0) }
        storage.setOwner(token, scoped: scoped, thread: thread)
    }

    @inlinable @inline(__always)
    func _unlock(site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?) {
        guard let word = storage.validateRelease(site: site, thread: thread) else { return }
        if word & 1 != 0 {
            // Write-held: clear the owner if it is this thread (the release was validated above).
            if let t = thread, word >> 1 == t.pointee.serial { storage.clearOwner(word) }
            else if Engine.ownsWord(word) { storage.clearOwner(word) }
        }
        pthread_rwlock_unlock(storage.primitivePointer)
    }
    #endif
}
