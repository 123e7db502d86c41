public import CLockdepThread
internal import Glibc

/// A cell holding what acquiring a ``LockdepMap`` needs (its identity, class and flags),
/// for a pseudo-lock taken on a hot path.
///
/// A map in a Swift `static let` is reached through a lazy-global accessor (a call, and
/// `swift_once`) and then the object; a cell read through a C global is plain loads inlined
/// into the caller. A module with a C target of its own defines the cell there
/// (`struct clockdep_map_cell_line my_line;`, a cell alone in its cache line, with an inline
/// function returning `&my_line.cell`) and wraps it with ``init(_:)``; the RCU module does so
/// for each flavor's read sections, where the accessor cost about 7% of a registry lookup with
/// Lockdep on. A cell that shares its line with a variable other threads write makes every
/// acquire that follows such a write miss. Pure Swift code can use ``allocate()``.
@frozen
public struct LockdepMapCell: @unchecked Sendable {
    @usableFromInline let cell: UnsafeMutablePointer<clockdep_map_cell>

    /// Wraps a cell whose storage lives for the whole process (a C global).
    @inlinable
    public init(_ cell: UnsafeMutablePointer<clockdep_map_cell>) { self.cell = cell }

    /// A new empty cell in a cache line of its own, never freed.
    public static func allocate() -> LockdepMapCell {
        let line = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        let cell = line.initializeMemory(as: clockdep_map_cell.self, repeating: clockdep_map_cell(), count: 1)
        return LockdepMapCell(cell)
    }

    /// Whether ``fill(from:)`` has published a map here.
    @inlinable
    public var isFilled: Bool { clockdep_map_cell_flags(cell) != 0 }

    /// Publishes `map` in the cell and keeps it alive for the life of the process.
    /// Filling a cell twice with different maps is a programming error, reported as a
    /// precondition failure even when the two fills race: one filler claims the cell, and the
    /// other waits for its fill and compares.
    public func fill(from map: LockdepMap) {
        if !isFilled {
            // Claim and fill as one step for fork(), which waits for it: a child must not
            // inherit a cell claimed and never filled.
            var claimed = false
            ForkHooks.initializing {
                claimed = clockdep_map_cell_claim(cell)
                guard claimed else { return }
                _ = Unmanaged.passRetained(map)
                let readElement = Engine.element(node: map.classID << 3, mode: LockdepMode.recursiveRead.rawValue,
                                                 irq: 0, flags: map.flags, nested: false)
                clockdep_map_cell_fill(cell, map.lockdepInstance, map.classID, map.flags, readElement)
            }
            if claimed { return }
        }
        // Filled, or being filled by the claimer (a few stores away).
        while !isFilled { sched_yield() }
        precondition(clockdep_map_cell_instance(cell) == map.lockdepInstance,
                     "LockdepMapCell filled twice with different maps")
    }

    /// The map's instance; the cell must be filled (its flags seen non-zero first).
    @inlinable var instance: UnsafeRawPointer { clockdep_map_cell_instance(cell).unsafelyUnwrapped }
    /// The map's instance, or `nil` before ``fill(from:)``.
    @inlinable var instanceIfFilled: UnsafeRawPointer? { isFilled ? clockdep_map_cell_instance(cell) : nil }
    @inlinable var classID: UInt32 { clockdep_map_cell_class(cell) }
    /// The map's flags, 0 before ``fill(from:)`` (a map's flags include `AcquireFlag.map`).
    @inlinable var flags: UInt8 { clockdep_map_cell_flags(cell) }
    /// The element of a recursive read with the map's own flags, less the irq state.
    @inlinable var readElement: UInt64 { clockdep_map_cell_read_element(cell) }
}

extension Lockdep {
    /// ``acquire(_:mode:fileID:line:function:)`` of the map published in `cell`,
    /// which must be filled.
    @inlinable
    public static func acquire(_ cell: LockdepMapCell, mode: LockdepMode = .write, fileID: StaticString = #fileID,
                               line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _ = Engine.fastAcquire(classID: cell.classID, subclass: 0, instance: cell.instance, mode: mode,
                               flags: cell.flags, site: LockdepSite(fileID: fileID, line: line, function: function))
        #endif
    }

    /// ``acquire(_:mode:fileID:line:function:)-(LockdepMapCell,_,_,_,_)`` for a caller that
    /// knows the map's options: they must be the ones the map was created with. The inlined
    /// acquire then tests constants instead of the cell's flags (an RCU read section, taken on
    /// every lookup, is one). Other options are reported (``LockdepReport/Kind/assertionFailed``)
    /// whenever the acquire takes the full path (at least the first time a thread takes the map
    /// at that nesting), and the map's own options are used then.
    ///
    /// A cell that may still be empty is filled by `fill` (for example by creating the map,
    /// whose creation fills its cell), called only off the fast path: the test for an empty
    /// cell is the one the acquire makes on the instance it loads anyway.
    ///
    /// A recursive read of a map with the ``LockdepMap/Options/rcu`` option (an RCU read
    /// section) is pushed without looking its chain up in the thread's cache of validated
    /// chains, as the kernel acquires `rcu_lock_map` with `check=0`; it is validated only when
    /// it takes the full path (a thread's first acquire after a reset or a change of limits,
    /// statistics on). What that validation records could change no report while the map is
    /// only ever held shared or in an empty write section (``Lockdep/emptyWriteSection(_:sleeps:fileID:line:function:)``),
    /// as RCU holds its maps: a dependency into a recursive read continues a cycle only
    /// through an exclusive hold of that map with locks taken inside, a class held only
    /// shared conflicts in the irq checks by its write usage only (which a read never sets),
    /// and a recursive read never deadlocks with another read (a lock taken inside an exclusive
    /// hold of such a map is reported, ``LockdepReport/Kind/assertionFailed``, since a cycle
    /// through it would go unseen). The locks taken inside the
    /// section are validated as always, with the section in their chains. `options` are
    /// compared with the cell's first, so other options still take the full path and its report.
    ///
    /// - Parameters:
    ///   - cell: The map's cell: filled, or filled by `fill`.
    ///   - mode: How the map is acquired.
    ///   - options: The map's options.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    ///   - fill: Fills an empty `cell` (default: nothing; acquiring an empty cell is then a
    ///     precondition failure).
    @inlinable @inline(__always)
    public static func acquire(_ cell: LockdepMapCell, mode: LockdepMode, options: LockdepMap.Options,
                               fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function,
                               ifEmpty fill: () -> Void = {}) {
        #if LOCKDEP_CHECKS
        acquire(cell, mode: mode, options: options, site: LockdepSite(fileID: fileID, line: line, function: function),
                thread: Engine.fastThread(), ifEmpty: fill)
        #endif
    }

    /// ``acquire(_:mode:options:fileID:line:function:ifEmpty:)`` on the thread that `thread`
    /// was taken on (the caller's proof: an RCU reader scope on its own thread), without
    /// looking the thread's state up, of a cell that the caller filled before, with a map
    /// created with `options` (its own map: a debug build checks it), so that neither is
    /// tested.
    @inlinable @inline(__always)
    package static func acquire(filled cell: LockdepMapCell, mode: LockdepMode, options: LockdepMap.Options,
                                fileID: StaticString, line: UInt, function: StaticString,
                                on thread: LockdepThreadHandle) {
        #if LOCKDEP_CHECKS
        assert(cell.flags == options.rawValue | AcquireFlag.map, "acquire(filled:) of a cell not filled with these options")
        acquire(cell, mode: mode, options: options, site: LockdepSite(fileID: fileID, line: line, function: function),
                thread: thread.state, filled: true, ifEmpty: {})
        #endif
    }

    #if LOCKDEP_CHECKS
    /// `filled`: the caller knows that the cell is filled, with a map created with `options`.
    @inlinable @inline(__always)
    static func acquire(_ cell: LockdepMapCell, mode: LockdepMode, options: LockdepMap.Options, site: LockdepSite,
                        thread: UnsafeMutablePointer<ThreadState>?, filled: Bool = false, ifEmpty fill: () -> Void) {
        let flags = options.rawValue | AcquireFlag.map
        var pushed = false
        if mode == .recursiveRead && options.contains(.rcu) {
            // The cell's flags say both that it is filled and that they are the caller's
            // (an empty cell's are 0), so its precomputed read element is this acquire's.
            if filled || cell.flags == flags, let t = thread {
                pushed = Engine.fastPush(classID: 0, subclass: 0, instance: cell.instance, mode: mode, flags: flags,
                                         site: site, t, checksChain: false, elementWithoutIrq: cell.readElement)
            }
        } else if let instance = cell.instanceIfFilled, let t = thread {
            pushed = Engine.fastPush(classID: cell.classID, subclass: 0, instance: instance, mode: mode, flags: flags,
                                     site: site, t)
        }
        // Expected: the slow path is laid out of the way, the section's code falls through.
        if _fastPath(pushed) { return }
        if _slowPath(!cell.isFilled) { fill() }
        // Out of line with few arguments: less code inlined into every section.
        Engine.acquireMapCell(cell.cell, mode: mode, flags: flags, site: site)
    }
    #endif

    /// ``release(_:fileID:line:function:)-(LockdepMapCell,_,_,_)`` for a caller that knows the
    /// map's options (as ``acquire(_:mode:options:fileID:line:function:ifEmpty:)`` does).
    ///
    /// - Parameters:
    ///   - cell: A filled cell.
    ///   - options: The map's options.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable @inline(__always)
    public static func release(_ cell: LockdepMapCell, options: LockdepMap.Options, fileID: StaticString = #fileID,
                               line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        release(cell, options: options, fileID: fileID, line: line, function: function, thread: Engine.fastThread())
        #endif
    }

    /// ``release(_:options:fileID:line:function:)`` on the thread that `thread` was taken on,
    /// as ``acquire(_:mode:options:fileID:line:function:on:ifEmpty:)``.
    @inlinable @inline(__always)
    package static func release(_ cell: LockdepMapCell, options: LockdepMap.Options, fileID: StaticString,
                                line: UInt, function: StaticString, on thread: LockdepThreadHandle) {
        #if LOCKDEP_CHECKS
        release(cell, options: options, fileID: fileID, line: line, function: function, thread: thread.state)
        #endif
    }

    #if LOCKDEP_CHECKS
    @inlinable @inline(__always)
    static func release(_ cell: LockdepMapCell, options: LockdepMap.Options, fileID: StaticString, line: UInt,
                        function: StaticString, thread: UnsafeMutablePointer<ThreadState>?) {
        var popped = false
        if let t = thread {
            popped = Engine.fastPop(instance: cell.instance, t, knownFlags: options.rawValue | AcquireFlag.map)
        }
        if _fastPath(popped) { return }
        Engine.releaseMapCell(cell.cell, site: LockdepSite(fileID: fileID, line: line, function: function))
    }
    #endif

    /// ``release(_:fileID:line:function:)`` of the map published in `cell`, which must be filled.
    @inlinable
    public static func release(_ cell: LockdepMapCell, fileID: StaticString = #fileID, line: UInt = #line,
                               function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        _ = Engine.fastRelease(classID: cell.classID, instance: cell.instance, ownerWord: 0,
                               site: LockdepSite(fileID: fileID, line: line, function: function))
        #endif
    }
}

/// The calling thread's validator state, taken once by code confined to that thread (an RCU
/// reader scope, which proves on each section that it runs on its own thread) so that its hot
/// acquires and releases skip the thread-local lookup. Used on any other thread it would
/// corrupt this thread's held-lock stack: it never leaves the package.
@usableFromInline
package struct LockdepThreadHandle {
    #if LOCKDEP_CHECKS
    @usableFromInline let state: UnsafeMutablePointer<ThreadState>

    @usableFromInline
    init(state: UnsafeMutablePointer<ThreadState>) { self.state = state }
    #else
    @usableFromInline
    init() {}
    #endif

    /// The calling thread's handle, creating its state if it has none yet.
    @inlinable
    package static var current: LockdepThreadHandle {
        #if LOCKDEP_CHECKS
        LockdepThreadHandle(state: ThreadState.current())
        #else
        LockdepThreadHandle()
        #endif
    }
}
