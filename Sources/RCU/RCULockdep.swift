public import Lockdep

/// RCU's annotations for Lockdep, compiled in where Lockdep's checks are
/// (debug builds, or release with the `LockdepInRelease` trait) and to
/// nothing otherwise. The model is the kernel's: a read section is a
/// recursive-read acquire of the flavor's pseudo-lock, a grace-period wait an
/// empty write section on it, and call_rcu callbacks run in softirq context.
extension RCUFlavor {
    @inlinable
    @inline(__always)
    static func lockdepEnterReadSection(_ file: StaticString, _ line: UInt) {
        #if LOCKDEP_CHECKS
        Lockdep.acquire(filledLockdepCell, mode: .recursiveRead, fileID: file, line: line, function: "rcu_read_lock()")
        #endif
    }

    @inlinable
    @inline(__always)
    static func lockdepExitReadSection(_ file: StaticString, _ line: UInt) {
        #if LOCKDEP_CHECKS
        Lockdep.release(filledLockdepCell, fileID: file, line: line, function: "rcu_read_unlock()")
        #endif
    }

    /// ``lockdepCell``, filled by creating ``lockdepMap`` if no section has yet.
    @inlinable
    @inline(__always)
    static var filledLockdepCell: LockdepMapCell {
        let cell = lockdepCell
        if _slowPath(!cell.isFilled) { _ = lockdepMap }
        return cell
    }

    /// `synchronize()` / `barrier()`: "Illegal synchronize_rcu() in RCU read-side
    /// critical section" inside a section, a cycle when called under a lock
    /// that readers take inside their sections, invalid context in atomic code.
    static func lockdepGracePeriodWait(_ call: StaticString, _ file: StaticString, _ line: UInt) {
        #if LOCKDEP_CHECKS
        Lockdep.emptyWriteSection(lockdepMap, fileID: file, line: line, function: call)
        #endif
    }
}

extension RCUPointer {
    /// The published object, for an updater holding `lock`, the lock that
    /// serialises updates of this pointer (the kernel's
    /// `rcu_dereference_protected(p, lockdep_is_held(lock))`).
    ///
    /// Lockdep reports "suspicious rcu_dereference_check() usage" when the
    /// calling thread holds neither `lock` nor a read section of `Flavor`.
    @inlinable
    public func withProtectedValue<Result>(
        heldBy lock: some LockdepLock, file: StaticString = #fileID, line: UInt = #line,
        _ body: (Value) throws -> Result
    ) rethrows -> Result? {
        #if LOCKDEP_CHECKS
        Lockdep.dereferenceCheck(Flavor.lockdepMap, lock, fileID: file, line: line, function: "rcu_dereference_protected()")
        #endif
        return try withProtectedValue(body)
    }

    /// A strong reference to the published object for an updater holding
    /// `lock`, checked as ``withProtectedValue(heldBy:file:line:_:)`` is.
    @inlinable
    public func protectedValue(
        heldBy lock: some LockdepLock, file: StaticString = #fileID, line: UInt = #line
    ) -> Value? {
        #if LOCKDEP_CHECKS
        Lockdep.dereferenceCheck(Flavor.lockdepMap, lock, fileID: file, line: line, function: "rcu_dereference_protected()")
        #endif
        return protectedValue
    }
}

extension LockdepMap {
    /// A flavor's read-side pseudo-lock, published in `cell` for the read path.
    static func rcuRead(_ name: String, key: String, cell: LockdepMapCell) -> LockdepMap {
        let map = LockdepMap(name, key: key, options: [.atomic, .rcu])
        cell.fill(from: map)
        return map
    }
}
