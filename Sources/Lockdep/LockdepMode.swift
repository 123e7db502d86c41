/// How a lock or pseudo-lock is acquired.
public enum LockdepMode: UInt8, Sendable, CustomStringConvertible {
    /// Exclusive (a mutex, a spinlock, a write lock, an RCU writer's empty section).
    case write = 0
    /// Shared but non-recursive (like the kernel's rw_semaphore readers): a second read
    /// acquire of the same class while a writer may wait is a deadlock.
    case read = 1
    /// Shared and recursive (like the kernel's rwlock_t readers or RCU read sections):
    /// recursive readers never deadlock against each other.
    case recursiveRead = 2

    /// `"write"`, `"read"` or `"recursive read"`.
    public var description: String {
        switch self {
        case .write: "write"
        case .read: "read"
        case .recursiveRead: "recursive read"
        }
    }
}

/// The execution context of a thread, as the kernel distinguishes them.
public enum LockdepContext: UInt8, Sendable, CustomStringConvertible {
    /// Ordinary thread context: sleeping is allowed.
    case process = 0
    /// Bottom-half context (deferred callbacks such as RCU's call_rcu worker, atomic work items): no sleeping.
    case softirq = 1
    /// Interrupt context ("ISR-like" code): no sleeping, interrupts implicitly disabled.
    case hardirq = 2

    /// `"process"`, `"softirq"` or `"hardirq"`.
    public var description: String {
        switch self {
        case .process: "process"
        case .softirq: "softirq"
        case .hardirq: "hardirq"
        }
    }
}

/// Flags passed with each acquire (internal bit set, kept as a byte for the hot path).
@usableFromInline
enum AcquireFlag {
    /// Acquiring may sleep: invalid in atomic context.
    @usableFromInline static let sleeping: UInt8 = 1
    /// Holding it makes the context atomic (spinlocks, atomic read sections).
    @usableFromInline static let atomic: UInt8 = 2
    /// A trylock: adds no dependency, cannot deadlock.
    @usableFromInline static let trylock: UInt8 = 4
    /// An RCU-style map: a write acquire while holding it for read is an illegal synchronize.
    @usableFromInline static let rcu: UInt8 = 8
    /// A pseudo-lock (map), not a real lock.
    @usableFromInline static let map: UInt8 = 16
    /// A completion map: never marked as used in interrupt context.
    @usableFromInline static let completion: UInt8 = 32
    /// A map whose section is raw-spinning (``LockdepMap/Options/rawSpinning``); the class
    /// records it, the acquire only carries it.
    @usableFromInline static let rawSpinning: UInt8 = 64
}
