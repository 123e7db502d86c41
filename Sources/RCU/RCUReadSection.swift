/// Proof that the current thread is inside a read-side critical section of `Flavor`.
///
/// You never create one: ``RCUFlavor/read(fileID:line:_:)`` lends it to its closure, and the
/// closure can only borrow it. Because it cannot be copied, stored, or sent to
/// another thread, every ``RCUPointer`` load that takes a section is
/// guaranteed, by the compiler, to happen inside one. There is no public way to
/// end a section early: the closure's return ends it.
///
/// - Note: Known toolchain issue (Swift 6.3): capturing a borrowed section in an escaping
///   closure inside the `read` closure, such as `Task { pointer.withValue(in: section) { … } }`
///   or `DispatchQueue.global().async { … }`, crashes the compiler (signal 11 in its
///   `MoveOnlyChecker` pass) instead of reporting the error; type checking, and so the
///   editor, shows nothing. The capture is never allowed. Open a section of its own inside
///   the escaping closure instead: `Task { RCUMemb.read { section in … } }`.
public struct RCUReadSection<Flavor: RCUFlavor>: ~Copyable {
    @usableFromInline init() {}
}

extension RCUFlavor {
    /// Runs `body` inside a read-side critical section.
    ///
    /// Objects reached through ``RCUPointer`` (and the RCU containers) inside
    /// `body` stay allocated until it returns, however concurrently writers
    /// replace and retire them. Sections nest. The calling thread is registered
    /// with the flavor on its first section and stays registered until it exits
    /// (or calls ``unregisterThread(fileID:line:)``); for ``RCUQSBR`` a thread that
    /// is not online goes online for the outermost section only.
    ///
    /// `body` is synchronous: a read section cannot span an `await`, because a
    /// task may resume on another thread and leave this one's section open.
    /// Do not block inside it either (no locks that sleep): the calls that would
    /// wait for a grace period (`synchronize()`, `barrier()`, QSBR's
    /// `quiescentState()` and `offline`, `unregisterThread()`) are refused here
    /// with an ``RCUMisuse`` in every build.
    ///
    /// - Parameters:
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    ///   - body: The reader, given a borrowed ``RCUReadSection``.
    /// - Returns: What `body` returns.
    /// - Complexity: O(1) overhead: a thread-local counter for memb; for QSBR a thread-local
    ///   counter inside a ``withReader(fileID:line:_:)`` scope.
    @inlinable
    @inline(__always)
    public static func read<Result, Failure: Error>(
        fileID: StaticString = #fileID, line: UInt = #line,
        _ body: (borrowing RCUReadSection<Self>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let broughtOnline = sectionReadLock()
        lockdepEnterReadSection(fileID, line)
        // Not `defer`: with Lockdep's checks compiled in, the compiler kept the
        // deferred block out of line, a call on every section.
        do {
            let result = try body(RCUReadSection<Self>())
            endReadSection(fileID, line, broughtOnline: broughtOnline)
            return result
        } catch {
            endReadSection(fileID, line, broughtOnline: broughtOnline)
            throw error
        }
    }

    @inlinable
    @inline(__always)
    static func endReadSection(_ fileID: StaticString, _ line: UInt, broughtOnline: Bool) {
        lockdepExitReadSection(fileID, line)
        sectionReadUnlock(broughtOnline: broughtOnline)
    }

    /// A generic section's read lock: liburcu's behind the registration check (memb,
    /// bp, mb); for qsbr, the online test and depth count (CURCUQSBR.h).
    /// - Returns: Whether the section brought a qsbr thread online (always `false` for
    ///   the other flavors); the matching `sectionReadUnlock(broughtOnline:)` takes it.
    @inlinable @inline(__always)
    static func sectionReadLock() -> Bool { _sectionReadLock() }

    @inlinable @inline(__always)
    static func sectionReadUnlock(broughtOnline: Bool) { _sectionReadUnlock(broughtOnline: broughtOnline) }
}
