internal import Glibc

extension CheckedSpinLock {
    /// Acquires the spinlock under a "nest lock" (`spin_lock_nest_lock`): many instances of this
    /// class may be held at once while `outer` is held. A second lock of a class already held,
    /// taken under `outer` held before it, adds no dependency. When `outer` is not held, the
    /// acquire is reported as the kernel's "Nested lock was not taken"
    /// (``LockdepReport/Kind/assertionFailed``).
    ///
    /// Called by the thread that already holds this spinlock, it is reported and refused as
    /// ``lock(fileID:line:function:)`` is.
    ///
    /// - Parameters:
    ///   - outer: The lock that serialises the nested acquires.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func lock(nestedUnder outer: some LockdepLock, fileID: StaticString = #fileID, line: UInt = #line,
                     function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        if storage.isOwned(by: Engine.fastThread()) {
            storage.refuseRecursiveAcquire(subclass: 0, mode: .write, counted: true,
                                           call: "CheckedSpinLock.lock(nestedUnder:)", site: site)
            return
        }
        let token = Engine.acquire(classID: storage.classID, subclass: 0, instance: storage.instance, mode: .write,
                                   flags: AcquireFlag.atomic, nest: outer.lockdepInstance, site: site)
        storage.lockMeasured(token, site: site) { pthread_spin_trylock($0) } lock: { pthread_spin_lock($0) }
        storage.setOwner(token)
        #else
        lock(fileID: fileID, line: line, function: function)
        #endif
    }
}
