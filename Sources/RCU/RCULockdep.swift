public import Lockdep
internal import CLockdepThread

/// RCU's annotations for Lockdep, compiled in where Lockdep's checks are
/// (debug builds, or release with the `LockdepInRelease` trait) and to
/// nothing otherwise. The model is the kernel's: a read section is a
/// recursive-read acquire of the flavor's pseudo-lock, a grace-period wait an
/// empty write section on it, and call_rcu callbacks run in softirq context.
extension RCUFlavor {
    /// Lockdep's pseudo-lock for this flavor's read sections (the kernel's
    /// `rcu_lock_map`): sections acquire it for recursive read, `synchronize()`
    /// and `barrier()` are an empty write section on it. Atomic: sleeping
    /// inside a section is "sleeping function called from invalid context".
    public static var lockdepMap: LockdepMap { RCULockdepMaps.maps[kind].takeUnretainedValue() }

    /// Where ``lockdepMap`` is published for read sections, which read it from
    /// this C cell (a global of the flavor's shim) with plain loads instead of
    /// through the lazy static.
    ///
    /// The description is plain data (C addresses and a `StaticString`), so where the
    /// flavor is known this folds to the shim's cell address.
    @inlinable
    static var lockdepCell: LockdepMapCell {
        LockdepMapCell(flavorDescription.lockdepCell)
    }

    @inlinable
    @inline(__always)
    static func lockdepEnterReadSection(_ fileID: StaticString, _ line: UInt) {
        #if LOCKDEP_CHECKS
        // The first section of the process fills the cell by creating the map.
        Lockdep.acquire(lockdepCell, mode: .recursiveRead, options: RCULockdepMaps.readOptions, fileID: fileID,
                        line: line, function: "rcu_read_lock()", ifEmpty: { _ = lockdepMap })
        #endif
    }

    /// ``lockdepEnterReadSection(_:_:)`` for a reader scope's section: on the scope's own thread
    /// (memb and mb prove it with the comparison their section's lock makes, which the compiler
    /// shares) with the Lockdep state the scope took, without looking it up.
    @inlinable
    @inline(__always)
    static func lockdepEnterReadSection(_ fileID: StaticString, _ line: UInt, scope: UnsafeMutableRawPointer?,
                                        thread: LockdepThreadHandle) {
        #if LOCKDEP_CHECKS
        if _isScopeThread(scope) {
            // The scope filled the cell when it took the thread's state (`lockdepReaderThread`).
            Lockdep.acquire(filled: lockdepCell, mode: .recursiveRead, options: RCULockdepMaps.readOptions,
                            fileID: fileID, line: line, function: "rcu_read_lock()", on: thread)
        } else {
            lockdepEnterReadSection(fileID, line)
        }
        #endif
    }

    /// The calling thread's Lockdep state for a reader scope, with this flavor's read-side map
    /// created (its cell filled), which the scope's sections then do not test.
    @usableFromInline
    static var lockdepReaderThread: LockdepThreadHandle {
        #if LOCKDEP_CHECKS
        _ = lockdepMap
        #endif
        return LockdepThreadHandle.current
    }

    /// ``lockdepExitReadSection(_:_:)`` for a reader scope's section, as
    /// ``lockdepEnterReadSection(_:_:scope:thread:)``.
    @inlinable
    @inline(__always)
    static func lockdepExitReadSection(_ fileID: StaticString, _ line: UInt, scope: UnsafeMutableRawPointer?,
                                       thread: LockdepThreadHandle) {
        #if LOCKDEP_CHECKS
        if _isScopeThread(scope) {
            Lockdep.release(lockdepCell, options: RCULockdepMaps.readOptions, fileID: fileID, line: line,
                            function: "rcu_read_unlock()", on: thread)
        } else {
            lockdepExitReadSection(fileID, line)
        }
        #endif
    }

    @inlinable
    @inline(__always)
    static func lockdepExitReadSection(_ fileID: StaticString, _ line: UInt) {
        #if LOCKDEP_CHECKS
        // The section's acquire filled the cell: no test here.
        Lockdep.release(lockdepCell, options: RCULockdepMaps.readOptions, fileID: fileID, line: line,
                        function: "rcu_read_unlock()")
        #endif
    }

    /// `synchronize()` / `barrier()`: "Illegal synchronize_rcu() in RCU read-side
    /// critical section" inside a section, a cycle when called under a lock
    /// that readers take inside their sections, invalid context in atomic code.
    /// In a Swift task, a blocking wait is reported with the async form to use instead.
    static func lockdepGracePeriodWait(_ call: StaticString, _ fileID: StaticString, _ line: UInt) {
        #if LOCKDEP_CHECKS
        // Configuration, not a wait a task makes in its work (only `.shared` waits, once).
        if "\(call)" != "useCallbackWorkers(_:)" { checkTaskContext(call, fileID, line) }
        Lockdep.emptyWriteSection(lockdepMap, fileID: fileID, line: line, function: call)
        #endif
    }

    private static func checkTaskContext(_ call: StaticString, _ fileID: StaticString, _ line: UInt) {
        var alternative = asyncAlternative(call)
        // Swift resolves `try await RCUMemb.synchronize()` in main.swift's top-level code to the
        // blocking overload (with only a warning that nothing is awaited): the alternative alone
        // would tell the user to write what they wrote.
        if let written = alternative, isMainSwift(fileID) {
            alternative = written + " from an async function (in main.swift's top-level code the compiler "
                + "picks this blocking form even when the call is written with `try await`)"
        }
        Lockdep.mightBlockTask("\(apiTypeName).\(call)", alternative: alternative, fileID: fileID, line: line, function: call)
    }

    /// Whether `fileID` names a `main.swift`. Compared byte by byte, not with `split`: a forked
    /// child's first grace-period wait comes here, and `split`'s array makes a debug build
    /// instantiate a generic witness table, whose runtime lock a parent thread may hold at the
    /// fork.
    private static func isMainSwift(_ fileID: StaticString) -> Bool {
        let name: StaticString = "main.swift"
        guard fileID.hasPointerRepresentation else { return false }
        let count = fileID.utf8CodeUnitCount, nameCount = name.utf8CodeUnitCount
        guard count >= nameCount else { return false }
        let bytes = fileID.utf8Start, nameBytes = name.utf8Start
        var i = 0
        while i < nameCount {
            if bytes[count - nameCount + i] != nameBytes[i] { return false }
            i += 1
        }
        return count == nameCount || bytes[count - nameCount - 1] == UInt8(ascii: "/")
    }

    /// The flavor type's name as the API spells it (`RCUMemb`): a literal, not the type
    /// interpolated, whose runtime lookup takes a lock (`TypeNameCacheLock`) on every call.
    /// Every grace-period wait built that name, so a thread waiting at a `fork()` could hold
    /// the lock, and the child's first wait hung on it (seen under ASan: `swift_getTypeName`
    /// in a child's `barrier()`).
    private static var apiTypeName: String {
        switch flavorDescription.kind {
        case .memb: "RCUMemb"
        case .qsbr: "RCUQSBR"
        case .bulletproof: "RCUBulletproof"
        case .memoryBarrier: "RCUMemoryBarrier"
        }
    }

    /// An awaited wait: the same dependency on the flavor's readers as a blocking one
    /// (a lock held here that readers take inside their sections is a deadlock: the task
    /// would never resume), without the task-context check.
    static func lockdepAwaitedGracePeriod(_ call: StaticString, _ fileID: StaticString, _ line: UInt) {
        #if LOCKDEP_CHECKS
        Lockdep.emptyWriteSection(lockdepMap, fileID: fileID, line: line, function: call)
        #endif
    }

    private static func asyncAlternative(_ call: StaticString) -> String? {
        switch "\(call)" {
        case "synchronize()", "barrier()", "synchronize(since:)": "try await \(apiTypeName).\(call)"
        case "replaceAndSynchronize(with:)": "try await pointer.replaceAndSynchronize(with:)"
        case "retire(_:)": "try await \(apiTypeName).throttledRetire(_:), which suspends when the backlog is over its mark"
        case "deferBarrier()": "retire(_:) instead of deferRetire(_:), then try await \(apiTypeName).barrier()"
        default: nil
        }
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
        heldBy lock: some LockdepLock, fileID: StaticString = #fileID, line: UInt = #line,
        _ body: (Value) throws -> Result
    ) rethrows -> Result? {
        #if LOCKDEP_CHECKS
        Lockdep.dereferenceCheck(Flavor.lockdepMap, lock, fileID: fileID, line: line, function: "rcu_dereference_protected()")
        #endif
        return try withProtectedValue(body)
    }

    /// A strong reference to the published object for an updater holding
    /// `lock`, checked as ``withProtectedValue(heldBy:fileID:line:_:)`` is.
    @inlinable
    public func protectedValue(
        heldBy lock: some LockdepLock, fileID: StaticString = #fileID, line: UInt = #line
    ) -> Value? {
        #if LOCKDEP_CHECKS
        Lockdep.dereferenceCheck(Flavor.lockdepMap, lock, fileID: fileID, line: line, function: "rcu_dereference_protected()")
        #endif
        return protectedValue
    }
}

/// The four flavors' read-side pseudo-locks, created on first use.
@usableFromInline
enum RCULockdepMaps {
    /// Every read-side map's options: sections are atomic and may not contain a grace-period
    /// wait. The inlined section code passes them as constants.
    @inlinable static var readOptions: LockdepMap.Options { [.atomic, .rcu] }

    /// Each flavor's read-side pseudo-lock.
    ///
    /// Creating them takes Lockdep's graph lock, which a `fork()` holds while it is made: a
    /// fork while another thread ran the initializer left the child's first use waiting in
    /// its once for ever (a child's first `synchronize()` hung, 1 in 100 forks amid other
    /// threads' first grace periods, under ASan). So they are made inside
    /// ``ForkHooks/makeOnce(_:_:)``, where no fork is made meanwhile.
    static var maps: RCUPerFlavorObjects<LockdepMap> {
        RCUPerFlavorObjects(slot: CLOCKDEP_ONCE_RCU_READ_MAPS) { made }
    }

    nonisolated(unsafe) private static let made: UnsafeMutableRawPointer = RCUPerFlavorObjects { kind in
        let flavor = kind.flavorType.flavorDescription
        return LockdepMap.rcuRead("\(flavor.lockdepName)", key: "swift-rcu.\(flavor.lockdepName)",
                                  cell: LockdepMapCell(flavor.lockdepCell))
    }.raw
}

extension LockdepMap {
    /// A flavor's read-side pseudo-lock, published in `cell` for the read path.
    static func rcuRead(_ name: String, key: String, cell: LockdepMapCell) -> LockdepMap {
        let map = LockdepMap(name, key: key, options: RCULockdepMaps.readOptions)
        cell.fill(from: map)
        return map
    }
}
