/// One finding of the validator: its kind, the locks and dependencies involved, and the text in
/// the shape of the Linux kernel's lockdep reports.
///
/// Reports reach the handler selected with ``Lockdep/reportHandler``. Tests install a
/// ``Lockdep/ReportHandler/custom(_:)`` handler, collect the reports, and assert on both the
/// structured fields and ``text``.
public struct LockdepReport: Sendable, CustomStringConvertible {
    /// The kinds of reports, one per check.
    public enum Kind: String, Sendable, CaseIterable {
        /// "possible circular locking dependency detected": a new dependency closes a cycle.
        case circularDependency
        /// "possible recursive locking detected": a class acquired while already held (AA).
        case recursiveLocking
        /// "sleeping function called from invalid context"; also "BUG: Invalid wait context", a
        /// spinning lock that is not raw (it sleeps on PREEMPT_RT) taken in a raw-spinning context.
        case sleepInInvalidContext
        /// "inconsistent lock state": a class used in an interrupt context and also taken with
        /// that interrupt enabled.
        case inconsistentLockState
        /// "possible irq lock inversion dependency detected": an irq-safe class depends on an
        /// irq-unsafe one.
        case irqLockInversion
        /// "Illegal synchronize_rcu() in RCU read-side critical section".
        case illegalSynchronize
        /// "suspicious rcu_dereference_check() usage".
        case suspiciousDereference
        /// "workqueue leaked lock or RCU": a work callback returned holding a lock or map.
        case workqueueLeak
        /// "bad unlock balance detected": releasing a lock that is not held.
        case unlockNotHeld
        /// "double unlock detected": releasing a lock this thread already released.
        case doubleUnlock
        /// "lock released by a thread that does not own it".
        case unlockFromOtherThread
        /// "held lock freed": a lock destroyed while locked.
        case heldLockDestroyed
        /// A capacity limit (classes, dependencies, chains, held-lock depth) was exceeded;
        /// validation turned itself off.
        case capacityExceeded
        /// A lock assertion (`assertHeld`, `assertNotHeld`, `assertNoneHeld`, `unpin`) failed, a
        /// primitive's API check failed, or a lock was taken under a nest lock that is not held
        /// ("Nested lock was not taken").
        case assertionFailed
        /// "releasing a pinned lock".
        case pinnedLockReleased
        /// "blocking call in async task context": a wait of unbounded length (a condition wait,
        /// a work flush, an RCU grace period) made by code running in a Swift task, which blocks
        /// a thread of the cooperative pool.
        case blockingInTask
        /// "lock held across a suspension point": a task released a lock on another thread
        /// than the one it took it on, so it held the lock across an `await`.
        case lockHeldAcrossSuspension
        /// "workqueue used after fork()": a ``WorkQueue`` (or one of its items) used in a child
        /// of `fork()` that the queue was created before; its worker threads exist only in the
        /// parent, so the call is refused.
        case workQueueUsedAfterFork
        /// "still has locks held!": a thread exited holding locks (the kernel's check at task
        /// exit). Another thread waiting for one of them would wait for ever.
        case locksHeldAtThreadExit
    }

    /// A lock as it appears in a report.
    public struct Lock: Sendable, Equatable, CustomStringConvertible {
        /// The class name (with `/n` for a subclass).
        public var name: String
        /// How it is (or was being) acquired.
        public var mode: LockdepMode
        /// Where it was acquired, when known.
        public var site: LockdepSite?
        /// The kernel-style usage string such as `{+.+.}`.
        public var usage: String
        /// The instance, where the report tells instances of one class apart (recursive
        /// locking): its address, after its name in quotes if it has one
        /// (``Lockdep/setInstanceName(_:of:fileID:line:function:)``), such as `"device 3" (0x6000012a4f10)`.
        public var instance: String? = nil

        /// `"(name){usage}, at: site"`.
        public var description: String {
            "(\(name))\(usage)" + (site.map { ", at: \($0)" } ?? "")
        }
    }

    /// One dependency `from -> to` of a chain: the first time a thread acquired `to` while
    /// holding `from`.
    public struct Dependency: Sendable, CustomStringConvertible {
        /// The class that was held.
        public var from: String
        /// The class that was acquired.
        public var to: String
        /// Where `from` had been acquired.
        public var fromSite: LockdepSite
        /// Where `to` was acquired (the site that created the dependency).
        public var toSite: LockdepSite
        /// The thread that created the dependency.
        public var thread: String
        /// The call stack that created the dependency (symbolised).
        public var stack: [String]

        /// `"from -> to at toSite (thread)"`.
        public var description: String { "\(from) -> \(to) at \(toSite) (thread \"\(thread)\")" }
    }

    /// What was found.
    public var kind: Kind
    /// The headline, such as `"WARNING: possible circular locking dependency detected"`.
    public var title: String
    /// The thread that triggered the report.
    public var thread: String
    /// Another thread involved (the owner of a lock released by the wrong thread), if any.
    public var otherThread: String?
    /// The site of the operation that triggered the report.
    public var site: LockdepSite?
    /// The lock being acquired, released, asserted on or destroyed, if any.
    public var lock: Lock?
    /// Every class involved, in report order (for a cycle: the new lock first, then the chain).
    public var classes: [String]
    /// For cycles and inversions: the dependencies, oldest first, ending with the new one.
    public var chain: [Dependency]
    /// The locks the reporting thread held, outermost first.
    public var heldLocks: [Lock]
    /// The context the reporting thread was in.
    public var context: LockdepContext
    /// The full report text, in the kernel's shape.
    public var text: String

    /// The report text.
    public var description: String { text }
}

extension Lockdep {
    /// What the validator does with a report (the shape `RCUMisuse` and `RCUStallDetector`
    /// share: a `reportHandler` property whose `custom` case takes each report).
    public enum ReportHandler: Sendable {
        /// Print the report to standard error, then stop the process with `fatalError`.
        case trap
        /// Print each distinct report once to standard error and continue (the kernel's
        /// lockdep prints its first report of a kind and carries on).
        case reportOnceAndContinue
        /// Hand every report to a closure (nothing is printed); used by tests and by tools that
        /// count reports.
        case custom(@Sendable (LockdepReport) -> Void)
    }
}

/// Capacity limits of the validator. Exceeding one produces one ``LockdepReport/Kind/capacityExceeded``
/// report naming the limit, after which validation switches itself off (never silently wrong).
public struct LockdepLimits: Sendable, Equatable {
    /// Maximum number of lock classes (the kernel's MAX_LOCKDEP_KEYS).
    public var maxClasses: Int = 8192
    /// Maximum number of dependencies (MAX_LOCKDEP_ENTRIES).
    public var maxDependencies: Int = 32768
    /// Maximum number of distinct validated chains (MAX_LOCKDEP_CHAINS).
    public var maxChains: Int = 65536
    /// Maximum number of locks one thread may hold at once (MAX_LOCK_DEPTH).
    public var maxDepth: Int = 48

    /// The defaults (the kernel's depth of 48).
    public init() {}
}
