/// Anything the validator tracks as a lock: the checked locks and ``LockdepMap`` pseudo-locks.
///
/// Use it to ask whether a lock is held (``Lockdep/isHeld(_:)``), in assertions, and in
/// ``Lockdep/dereferenceCheck(_:condition:fileID:line:function:)``.
public protocol LockdepLock: Sendable {
    /// The class of the lock.
    var lockClass: LockClass { get }
    /// The identity of this instance (stable for its lifetime).
    var lockdepInstance: UnsafeRawPointer { get }
}

/// A pseudo-lock: a lock that exists only for the validator, as the kernel's `lockdep_map`.
///
/// Maps model things that behave like locks for deadlock purposes without being one: an RCU
/// read section (a recursive-read acquire; `synchronize` is an empty write section), a work
/// item (the worker holds it while running the callback; `cancelSync` and `flush` take it
/// empty), a completion. Acquire them with ``Lockdep/acquire(_:mode:fileID:line:function:)-(LockdepMap,_,_,_,_)``
/// and ``Lockdep/release(_:fileID:line:function:)-(LockdepMap,_,_,_)``.
///
/// ```swift
/// static let rcuRead = LockdepMap("rcu_read", options: [.atomic, .rcu])
/// Lockdep.acquire(rcuRead, mode: .recursiveRead)   // rcu_read_lock()
/// Lockdep.release(rcuRead)                          // rcu_read_unlock()
/// Lockdep.emptyWriteSection(rcuRead)                // synchronize_rcu()
/// ```
public final class LockdepMap: LockdepLock, CustomStringConvertible {
    /// Properties of a map.
    public struct Options: OptionSet, Sendable {
        /// The raw bits.
        public let rawValue: UInt8
        /// Creates options from raw bits.
        /// - Parameter rawValue: The bits.
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Holding the map makes the context atomic: sleeping inside is "sleeping function
        /// called from invalid context" (RCU read sections of flavors whose readers must not block).
        @inlinable public static var atomic: Options { Options(rawValue: AcquireFlag.atomic) }
        /// A write acquire while this thread holds the map for read is "Illegal
        /// synchronize_rcu() in RCU read-side critical section".
        @inlinable public static var rcu: Options { Options(rawValue: AcquireFlag.rcu) }
        /// The map models waiting for a completion (work items and queues use it): it is never
        /// marked as used in interrupt context, so waiting from process context for work that
        /// runs in softirq context is not an inconsistent lock state.
        @inlinable public static var completion: Options { Options(rawValue: AcquireFlag.completion) }
        /// Holding the map is a raw-spinning section that stays atomic even on PREEMPT_RT (the
        /// kernel's `LD_WAIT_SPIN`, as `rcu_read_lock_sched()` or `preempt_disable()`): taking a
        /// spinning lock that is not raw inside is "BUG: Invalid wait context".
        @inlinable public static var rawSpinning: Options { Options(rawValue: AcquireFlag.rawSpinning) }
    }

    /// The class of the map.
    public let lockClass: LockClass
    /// The options of the map.
    public let options: Options
    /// `lockClass.id`, kept here so a hot pseudo-lock (an RCU read section) reads its
    /// class without a second dependent load.
    @usableFromInline let classID: UInt32
    /// Where the map was created, for a "held lock freed!" report.
    let declared: LockdepSite

    /// Creates a map.
    ///
    /// - Parameters:
    ///   - name: The name printed in reports, such as `"rcu_read"` or `"work:gdev_broken"`.
    ///   - key: The class key; `nil` uses the declaration site.
    ///   - options: ``Options``.
    ///   - fileID: The declaration file (default `#fileID`).
    ///   - line: The declaration line (default `#line`).
    public init(_ name: String, key: String? = nil, options: Options = [], fileID: StaticString = #fileID, line: UInt = #line) {
        self.lockClass = LockClass(name, key: key, fileID: fileID, line: line)
        self.options = options
        self.classID = lockClass.id
        self.declared = LockdepSite(fileID: fileID, line: line, function: "LockdepMap.init")
        if options.contains(.rawSpinning) { Engine.setRawSpinning(id: classID) }
    }

    /// Creates a map of an existing class.
    ///
    /// - Parameters:
    ///   - lockClass: The class.
    ///   - options: ``Options``.
    ///   - fileID: The declaration file (default `#fileID`).
    ///   - line: The declaration line (default `#line`).
    public init(class lockClass: LockClass, options: Options = [], fileID: StaticString = #fileID, line: UInt = #line) {
        self.lockClass = lockClass
        self.options = options
        self.classID = lockClass.id
        self.declared = LockdepSite(fileID: fileID, line: line, function: "LockdepMap.init")
        if options.contains(.rawSpinning) { Engine.setRawSpinning(id: classID) }
    }

    /// A map destroyed while the destroying thread holds it is reported ("held lock freed!",
    /// as the kernel checks freed memory against the current task's held locks) and its entries
    /// dropped. A map has no owner record, so one destroyed while *another* thread holds it goes
    /// unseen, as in the kernel; that thread's entry stays, and a later report may name it under
    /// a new class that took the freed class's number (a `.dynamic` class).
    deinit {
        KernelLockSupport.checkFreedByHolder(lockClass, instance: lockdepInstance, declared: declared)
    }

    /// The identity of the map.
    public var lockdepInstance: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// The name of the map.
    public var description: String { lockClass.name }

    @usableFromInline var flags: UInt8 { options.rawValue | AcquireFlag.map }
}

/// A token returned by ``Lockdep/pin(_:fileID:line:function:)``.
public struct LockdepPinCookie: Sendable, Equatable {
    /// The pinned instance's address (for diagnostics).
    public let instance: UInt
}
