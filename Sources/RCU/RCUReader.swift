public import Lockdep

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A reader scope on the calling thread, lent by ``RCUFlavor/withReader(fileID:line:_:)``
/// to a synchronous closure: the thread's registration, and for ``RCUQSBR`` its
/// online state, for as long as the closure runs.
///
/// ```swift
/// RCUQSBR.withReader { reader in
///     while running {
///         reader.read { section in table.withValue(in: section) { use($0) } }
///         reader.quiescentState()              // QSBR's side of the bargain
///     }
/// }
/// ```
///
/// You cannot create, copy, store or send a reader: it exists only as the
/// closure's borrowed parameter, so it cannot outlive the scope, cross an
/// `await`, or reach another task. While a scope is open the thread cannot be
/// unregistered (``RCUFlavor/unregisterThread(fileID:line:)`` is refused).
///
/// Every section the reader opens is protected whatever thread runs it, and is
/// counted in that thread's own reader state. For memb and mb the reader compares
/// the running thread's reader state with the scope's (one predictable branch): the
/// fast path with no registration check on the scope's own thread (for memb with
/// sys_membarrier, liburcu's counter protocol with compiler barriers only), the
/// checked, registering path on any other (a closure that Dispatch runs elsewhere,
/// such as a `DispatchWorkItem`). bp sections check for themselves. For
/// QSBR a section counts its depth in a thread-local and, on a thread that is
/// offline (inside ``RCUReader/offline(fileID:line:_:)``), goes online for its
/// duration. Debug builds also report a reader used on another thread than its
/// scope's (``RCUMisuse/Kind/readerOnAnotherThread``); the section is protected either way.
///
/// - Note: Known toolchain issue (Swift 6.3): capturing a borrowed reader in an escaping
///   closure inside the `withReader` closure, such as `Task { reader.read { … } }` or
///   `DispatchQueue.global().async { … }`, crashes the compiler (signal 11 in its
///   `MoveOnlyChecker` pass) instead of reporting the error; type checking, and so the
///   editor, shows nothing. The capture is never allowed. Open a scope of its own inside
///   the escaping closure instead: `Task { RCUMemb.withReader { reader in … } }`.
public struct RCUReader<Flavor: RCUFlavor>: ~Copyable {
    /// The scope thread's liburcu reader state (memb, mb), registered for the whole scope;
    /// `nil` for memb without sys_membarrier, so its sections keep liburcu's fences.
    @usableFromInline let scope: UnsafeMutableRawPointer?
    /// The scope thread's Lockdep state, which its sections use where `scope` proves they run
    /// on that thread.
    @usableFromInline let lockdepThread: LockdepThreadHandle
    #if DEBUG
    /// The thread the scope belongs to (its `pthread_t`).
    @usableFromInline let thread: UInt
    #endif

    @usableFromInline
    init() {
        scope = Flavor.primitiveReaderState
        lockdepThread = Flavor.lockdepReaderThread
        #if DEBUG
        thread = UInt(pthread_self())
        #endif
    }

    /// Runs `body` inside a read section.
    ///
    /// Same contract as ``RCUFlavor/read(fileID:line:_:)``: sections nest, `body` is
    /// synchronous and must not block.
    /// - Complexity: O(1): memb and bp a thread-local counter (with sys_membarrier), mb two
    ///   full fences, qsbr a thread-local increment and decrement.
    @inlinable
    @inline(__always)
    public func read<Result, Failure: Error>(
        fileID: StaticString = #fileID, line: UInt = #line,
        _ body: (borrowing RCUReadSection<Flavor>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        #if DEBUG
        checkThread("read(_:)", fileID, line)
        #endif
        let broughtOnline = readLock()
        Flavor.lockdepEnterReadSection(fileID, line, scope: scope, thread: lockdepThread)
        do {
            let result = try body(RCUReadSection<Flavor>())
            endReadSection(fileID, line, broughtOnline: broughtOnline)
            return result
        } catch {
            endReadSection(fileID, line, broughtOnline: broughtOnline)
            throw error
        }
    }

    /// memb and mb: the scope's fast path on its own thread; qsbr: the generic section's
    /// entry (inside a scope the thread is online unless the section runs in
    /// ``offline(fileID:line:_:)``); bp: liburcu's own check.
    /// - Returns: Whether a qsbr section brought the thread online.
    @inlinable
    @inline(__always)
    func readLock() -> Bool {
        Flavor.primitiveReadLock(inScope: scope)
    }

    /// Not `Flavor.endReadSection`: memb's unlock takes the scope, whose presence
    /// proves sys_membarrier (compiler barriers suffice on any thread).
    @inlinable
    @inline(__always)
    func endReadSection(_ fileID: StaticString, _ line: UInt, broughtOnline: Bool) {
        Flavor.lockdepExitReadSection(fileID, line, scope: scope, thread: lockdepThread)
        Flavor.primitiveReadUnlock(inScope: scope, broughtOnline: broughtOnline)
    }

    #if DEBUG
    @usableFromInline
    func checkThread(_ call: String, _ fileID: StaticString, _ line: UInt) {
        if pthread_equal(pthread_t(thread), pthread_self()) == 0 {
            RCUMisuse.report(.readerOnAnotherThread, call: "RCUReader.\(call)", flavor: Flavor.name, fileID: fileID, line: line)
        }
    }
    #endif
}

extension RCUFlavor {
    /// Opens a reader scope for `body`: registers the calling thread (it stays
    /// registered afterwards, as after a first read section) and, for ``RCUQSBR``,
    /// keeps it online until `body` returns.
    ///
    /// Use it around a thread's read loop. For memb, bp and mb it costs nothing
    /// per section over ``read(fileID:line:_:)`` and guarantees the registration
    /// for the scope. For QSBR it is what makes sections cheap: the thread stays
    /// online instead of going online and offline around each one, and in
    /// exchange must call ``RCUReader/quiescentState(fileID:line:)`` between
    /// sections (a forgotten one is reported by ``RCUStallDetector``). Scopes
    /// nest; each one restores the online state it found.
    ///
    /// - Parameters:
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    ///   - body: Gets the borrowed ``RCUReader``.
    /// - Returns: What `body` returns.
    public static func withReader<Result, Failure: Error>(
        fileID: StaticString = #fileID, line: UInt = #line,
        _ body: (borrowing RCUReader<Self>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let broughtOnline = primitiveReaderEnter()
        if flavorDescription.isQSBR { RCUStallDetector.enable() }
        defer { primitiveReaderExit(broughtOnline: broughtOnline) }
        return try body(RCUReader())
    }
}

extension RCUReader where Flavor == RCUQSBR {
    /// Announces that this thread holds no reference obtained in an earlier section
    /// (``RCUQSBR/quiescentState(fileID:line:)``). Refused inside a section.
    @inlinable
    public func quiescentState(fileID: StaticString = #fileID, line: UInt = #line) {
        #if DEBUG
        checkThread("quiescentState()", fileID, line)
        #endif
        RCUQSBR.quiescentState(fileID: fileID, line: line)
    }

    /// Runs `body` with the thread offline: grace periods do not wait for it.
    /// Use it around anything that blocks (I/O, sleeping locks, waits). Sections
    /// opened inside `body` go online for their duration, so they stay protected.
    /// Refused inside a section (see ``RCUQSBR/offline(fileID:line:_:)``).
    public func offline<Result, Failure: Error>(
        fileID: StaticString = #fileID, line: UInt = #line, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        #if DEBUG
        checkThread("offline(_:)", fileID, line)
        #endif
        return try RCUQSBR.offline(fileID: fileID, line: line, body)
    }
}
