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
    ///   - name: The class name for reports; defaults to `"rwlock@File.swift:line"`.
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
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func readLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _readLock(site: LockdepSite(fileID: fileID, line: line, function: function), thread: Engine.fastThread())
        #else
        pthread_rwlock_rdlock(storage.primitivePointer)
        #endif
    }

    /// Acquires the write side.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func writeLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _writeLock(site: LockdepSite(fileID: fileID, line: line, function: function), thread: Engine.fastThread())
        #else
        pthread_rwlock_wrlock(storage.primitivePointer)
        storage.setOwnerThread()
        #endif
    }

    /// Tries to acquire the read side without blocking.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether the read side was acquired.
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
    /// - Returns: Whether the write side was acquired.
    @inlinable
    public func tryWriteLock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        guard pthread_rwlock_trywrlock(storage.primitivePointer) == 0 else { return false }
        #if LOCKDEP_CHECKS
        let token = Engine.acquire(classID: storage.classID, subclass: 0, instance: storage.instance, mode: .write,
                                   flags: AcquireFlag.trylock, nest: nil, site: LockdepSite(fileID: fileID, line: line, function: function))
        storage.setOwner(token)
        #else
        storage.setOwnerThread()
        #endif
        return true
    }

    /// Releases the read or write side this thread holds.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public func unlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _unlock(site: LockdepSite(fileID: fileID, line: line, function: function), thread: Engine.fastThread())
        #else
        // A writer's release (readers never set the owner word).
        if storage.ownerWord() == UInt(pthread_self()) { storage.clearOwnerThread() }
        pthread_rwlock_unlock(storage.primitivePointer)
        #endif
    }

    /// Runs `body` holding the read side.
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
        _readLock(site: site, thread: thread)
        defer { _unlock(site: site, thread: thread) }
        #else
        readLock(fileID: fileID, line: line, function: function)
        defer { unlock(fileID: fileID, line: line, function: function) }
        #endif
        return try body()
    }

    /// Runs `body` holding the write side.
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
        _writeLock(site: site, thread: thread)
        defer { _unlock(site: site, thread: thread) }
        #else
        writeLock(fileID: fileID, line: line, function: function)
        defer { unlock(fileID: fileID, line: line, function: function) }
        #endif
        return try body()
    }

    #if LOCKDEP_CHECKS
    @inlinable @inline(__always)
    func _readLock(site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?) {
        let token = Engine.fastAcquire(classID: storage.classID, subclass: 0, instance: storage.instance,
                                       mode: .recursiveRead, flags: AcquireFlag.sleeping, site: site, thread: thread)
        storage.lockMeasured(token, site: site) { pthread_rwlock_tryrdlock($0) } lock: { pthread_rwlock_rdlock($0) }
    }

    @inlinable @inline(__always)
    func _writeLock(site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?) {
        let token = Engine.fastAcquire(classID: storage.classID, subclass: 0, instance: storage.instance,
                                       mode: .write, flags: AcquireFlag.sleeping, site: site, thread: thread)
        storage.lockMeasured(token, site: site) { pthread_rwlock_trywrlock($0) } lock: { pthread_rwlock_wrlock($0) }
        storage.setOwner(token)
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
