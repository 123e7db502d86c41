public import CURCUCommon
public import CLockdepThread

/// The C function liburcu's call_rcu worker runs for a callback queued through the shims.
public typealias RCUCallbackFunction = @convention(c) (UnsafeMutableRawPointer?) -> Void

/// One of liburcu's RCU implementations ("flavors"), as a type.
///
/// Code that is generic over `RCUFlavor` specialises to the flavor's inline
/// fast path, the same machine code a C caller of liburcu gets. The four
/// flavors trade read-side cost against constraints on readers:
///
/// | Flavor | Read lock + unlock | Reader obligations |
/// |---|---|---|
/// | ``RCUMemb`` (default) | cheapest with membarrier; cheaper still in a ``RCUFlavor/withReader(fileID:line:_:)`` scope | none (registered automatically) |
/// | ``RCUQSBR`` | a thread-local depth count in a ``RCUFlavor/withReader(fileID:line:_:)`` scope | announce quiescent states there |
/// | ``RCUBulletproof`` | one more indirection than memb | none; registers itself, safe from any thread |
/// | ``RCUMemoryBarrier`` | a full fence per section | none |
///
/// What users call (``read(fileID:line:_:)``, ``withReader(fileID:line:_:)``,
/// `synchronize`, `retire`, ...) is written once, in extensions,
/// over two kinds of requirement: the flavor's ``flavorDescription`` (which flavor it
/// is, and its slow path; sealed to the type, so that only these four conform) and its inline read-side fast path (the underscored
/// requirements, which code outside this package neither calls nor implements).
/// The four flavor types are the conformances; their requirements are generated
/// from one table (`scripts/generate-flavors.sh`).
public protocol RCUFlavor: Sendable {
    /// This flavor's ``RCUFlavorDescription``, sealed to the flavor type: only this package
    /// can make a `_RCUFlavorSeal<Self>`, so a type outside it cannot conform (it has no seal
    /// of its own type, and another flavor's seal has another type).
    static var _flavorSeal: _RCUFlavorSeal<Self> { get }

    /// Enters a generic read section, registering the thread if needed (qsbr: going
    /// online for the section if the thread is offline).
    /// - Returns: Whether the section brought a qsbr thread online; the matching
    ///   `_sectionReadUnlock(broughtOnline:)` takes it back offline.
    static func _sectionReadLock() -> Bool

    /// Leaves a section entered with `_sectionReadLock()`.
    /// - Parameter broughtOnline: What the matching lock returned.
    static func _sectionReadUnlock(broughtOnline: Bool)

    /// What a reader scope records when it opens on a registered thread: the address of
    /// the thread's liburcu reader state for memb (with sys_membarrier) and mb, `nil` otherwise.
    static var _readerState: UnsafeMutableRawPointer? { get }

    /// Enters a reader scope's section: the flavor's unchecked fast path on the scope's
    /// thread, the checked one on any other.
    /// - Parameter scope: The scope's `_readerState`.
    /// - Returns: Whether the section brought a qsbr thread online.
    static func _scopeReadLock(_ scope: UnsafeRawPointer?) -> Bool

    /// Whether a section of the scope runs on the scope's own thread, where its fast path
    /// runs (memb with sys_membarrier and mb; never for the other flavors).
    /// - Parameter scope: The scope's `_readerState`.
    static func _isScopeThread(_ scope: UnsafeRawPointer?) -> Bool

    /// Leaves a section entered with `_scopeReadLock(_:)`, on whatever thread ran it.
    /// - Parameters:
    ///   - scope: The scope's `_readerState`.
    ///   - broughtOnline: What the matching lock returned.
    static func _scopeReadUnlock(_ scope: UnsafeRawPointer?, broughtOnline: Bool)

    /// Whether the calling thread is inside a read section (qsbr: the shim's nesting depth).
    static var _isInReadSection: Bool { get }

    /// Whether the calling thread is registered with liburcu for this flavor.
    static var _isThreadRegistered: Bool { get }

    /// Whether the call_rcu backlog passed the high-water mark and has not yet drained to
    /// the low one: one relaxed load of a C global, the only cost the policy adds to `retire`.
    static var _backlogIsOver: Bool { get }
}

/// What an ``RCUFlavor`` is, and where its C state lives: one value per flavor
/// (``RCUFlavor/flavorDescription``), so that code generic over flavors asks the
/// description instead of comparing flavor types or names.
public struct RCUFlavorDescription: @unchecked Sendable {
    // @unchecked: the pointers are to constant C tables and to process-wide C globals.

    /// Which liburcu flavor this is.
    public let kind: RCUFlavorKind

    /// Whether readers report quiescent states themselves (liburcu's qsbr): a thread may
    /// be offline, and a reader scope must announce quiescent states between sections.
    public let isQSBR: Bool

    /// The flavor's slow path (grace periods, call_rcu, registration, diagnostics).
    @usableFromInline package let operations: UnsafePointer<curcu_flavor_operations>

    /// liburcu's `struct rcu_flavor_struct` of this flavor, which liburcu-cds containers take.
    @usableFromInline package let cdsFlavor: UnsafeRawPointer

    /// The name of this flavor's Lockdep read-side pseudo-lock (the kernel's `rcu_lock_map`).
    @usableFromInline package let lockdepName: StaticString

    /// Where the Lockdep map of this flavor's read sections is published for them.
    @usableFromInline package let lockdepCell: UnsafeMutablePointer<clockdep_map_cell>

    @inlinable
    init(kind: RCUFlavorKind, isQSBR: Bool, operations: UnsafePointer<curcu_flavor_operations>,
         cdsFlavor: UnsafeRawPointer, lockdepName: StaticString, lockdepCell: UnsafeMutablePointer<clockdep_map_cell>) {
        self.kind = kind
        self.isQSBR = isQSBR
        self.operations = operations
        self.cdsFlavor = cdsFlavor
        self.lockdepName = lockdepName
        self.lockdepCell = lockdepCell
    }

    /// liburcu's name for the flavor: `memb`, `qsbr`, `bp` or `mb`.
    public var name: String { kind.name }
}

/// An ``RCUFlavorDescription`` sealed to one flavor type: what makes ``RCUFlavor`` closed.
///
/// Its initializer is this package's: the four flavor types make their own seals, and a
/// type elsewhere that declares `RCUFlavor` conformance cannot make one of its type, so
/// its conformance does not compile. Such a type would supply the read side itself, and
/// grace periods would not wait for its readers.
public struct _RCUFlavorSeal<Flavor>: Sendable {
    /// The sealed description.
    @usableFromInline let description: RCUFlavorDescription

    @inlinable
    init(_ description: RCUFlavorDescription) { self.description = description }
}

extension RCUFlavor {
    /// What this flavor is: its ``RCUFlavorKind``, liburcu's name for it, whether it
    /// is QSBR, and where its C state lives.
    @inlinable
    public static var flavorDescription: RCUFlavorDescription { _flavorSeal.description }

    /// Which liburcu flavor this type is (``RCUFlavorDescription/kind``).
    @inlinable
    public static var kind: RCUFlavorKind { flavorDescription.kind }

    /// liburcu's name for the flavor: `memb`, `qsbr`, `bp` or `mb`.
    @inlinable
    public static var name: String { flavorDescription.kind.name }

    /// The flavor's slow path.
    @inlinable
    static var operations: UnsafePointer<curcu_flavor_operations> { flavorDescription.operations }

    /// Whether the calling thread is registered with this flavor.
    @inlinable
    public static var isThreadRegistered: Bool { _isThreadRegistered }

    /// Whether the calling thread is inside a read-side critical section of this flavor.
    ///
    /// A question only: it never registers the thread (`RCUBulletproof` included, whose
    /// liburcu query would).
    @inlinable
    public static var isInReadSection: Bool { _isInReadSection }

    /// Whether the calling thread is running a call_rcu callback of this flavor
    /// (this package's softirq context: no blocking, no `barrier()`).
    ///
    /// Only on a call_rcu worker: `false` on a thread that a throttled retire has made run a
    /// batch inline (``RCUBacklogPolicy/Throttle/reclaimInline``), although Lockdep checks
    /// those callbacks as softirq code too. Write `deinit`s and `retire` closures for the
    /// worker: they may run on either.
    public static var isInCallback: Bool { operations.pointee.in_callback() }

    /// The number of threads currently registered through this package (bp: threads
    /// that have read, which register themselves, until they exit).
    public static var registeredThreadCount: Int { operations.pointee.registered_thread_count() }

    /// Callbacks queued with call_rcu and not yet run (the call_rcu backlog).
    public static var pendingCallbacks: Int { operations.pointee.pending_callbacks() }

    /// Callbacks run since the process started.
    public static var completedCallbacks: Int { operations.pointee.completed_callbacks() }

    /// Whether the read side is backed by the kernel's `membarrier` system call (memb and bp).
    public static var hasSysMembarrier: Bool { operations.pointee.has_sys_membarrier() }

    /// In a child of `fork()`: how many other threads were registered readers of this
    /// flavor at the fork (0 otherwise). Such a child cannot wait for grace periods.
    public static var staleReadersAfterFork: Int { operations.pointee.stale_readers_after_fork() }

    /// Calls `visit(tid, name)` for each registered thread that currently holds up a grace
    /// period (bp: every thread that has read counts as registered).
    public static func forEachBlockingReader(_ visit: (_ tid: Int, _ name: String) -> Void) {
        flavorDescription.blockingReaders().forEach { visit($0.tid, $0.name) }
    }
}

extension RCUFlavorDescription {
    /// Registered threads that hold up the current grace period.
    package func blockingReaders() -> [(tid: Int, name: String)] {
        BlockingReaderVisit.collect(operations.pointee.for_each_blocking_reader)
    }
}
