import Foundation
@testable import Lockdep

// The environment one translated case of the kernel's lib/locking-selftest.c runs in: the
// kernel's static locks (A-D one class each, X1/X2, Y1/Y2, Z1/Z2 two instances of one class),
// created fresh for every case, and the kernel's shortcut operations (L, RL, WL, ML, WSL, RSL,
// RTL and their unlocks, LOCK/UNLOCK/INIT of the lock type under test, the irq helpers).

/// The lock types of the kernel's columns.
enum KKind: String, CaseIterable {
    case spin, wlock, rlock, mutex, wsem, rsem, rtmutex
}

/// Hard or soft interrupts (the kernel's `locking-selftest-{hard,soft}irq.h`).
enum KIRQ: String {
    case hard, soft
}

/// A mutable box to hand objects between the case and a helper thread.
final class KBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

final class KEnv {
    let readers: CheckedSpinRWLock.Readers
    private var classes: [String: LockClass] = [:]
    var spins: [String: CheckedSpinLock] = [:]
    var rwlocks: [String: CheckedSpinRWLock] = [:]
    var mutexes: [String: CheckedMutex] = [:]
    var rwsems: [String: CheckedRWSemaphore] = [:]
    var rtmutexes: [String: CheckedRTMutex] = [:]
    /// `WARN_ON` failures of the case (API results other than the kernel's).
    var warnings: [String] = []
    /// Work to run after the observed result is taken (helper threads' cleanup).
    var cleanup: [() -> Void] = []

    // The ww_mutex statics: DEFINE_WD_CLASS(ww_lockdep), o, o2, o3.
    let ww = WWClass("ww_lockdep")
    lazy var o = WWMutex(ww)
    lazy var o2 = WWMutex(ww)
    lazy var o3 = WWMutex(ww)

    init(readers: CheckedSpinRWLock.Readers) { self.readers = readers }

    /// X1 and X2 share the class X (the kernel's init_shared_classes); A..D are one class each.
    func lockClass(_ prefix: String, _ name: String) -> LockClass {
        let key = prefix + "_" + (name.count == 2 ? String(name.prefix(1)) : name)
        if let c = classes[key] { return c }
        let c = LockClass.unique(key)
        classes[key] = c
        return c
    }

    func spin(_ n: String) -> CheckedSpinLock {
        if let l = spins[n] { return l }
        let l = CheckedSpinLock(class: lockClass("lock", n)); spins[n] = l; return l
    }
    /// A `raw_spinlock_t` (`LD_WAIT_SPIN`).
    func rawSpin(_ n: String) -> CheckedSpinLock {
        if let l = spins[n] { return l }
        let l = CheckedSpinLock(class: lockClass("lock", n), raw: true); spins[n] = l; return l
    }
    func rwlock(_ n: String) -> CheckedSpinRWLock {
        if let l = rwlocks[n] { return l }
        let l = CheckedSpinRWLock(class: lockClass("rwlock", n), readers: readers); rwlocks[n] = l; return l
    }
    func mutex(_ n: String) -> CheckedMutex {
        if let l = mutexes[n] { return l }
        let l = CheckedMutex(class: lockClass("mutex", n)); mutexes[n] = l; return l
    }
    func rwsem(_ n: String) -> CheckedRWSemaphore {
        if let l = rwsems[n] { return l }
        let l = CheckedRWSemaphore(class: lockClass("rwsem", n)); rwsems[n] = l; return l
    }
    func rtmutex(_ n: String) -> CheckedRTMutex {
        if let l = rtmutexes[n] { return l }
        let l = CheckedRTMutex(class: lockClass("rtmutex", n)); rtmutexes[n] = l; return l
    }

    // The kernel's shortcuts.
    func L(_ n: String) { spin(n).lock() }
    func U(_ n: String) { spin(n).unlock() }
    func WL(_ n: String) { rwlock(n).writeLock() }
    func WU(_ n: String) { rwlock(n).writeUnlock() }
    func RL(_ n: String) { rwlock(n).readLock() }
    func RU(_ n: String) { rwlock(n).readUnlock() }
    func ML(_ n: String) { mutex(n).lock() }
    func MU(_ n: String) { mutex(n).unlock() }
    func WSL(_ n: String) { rwsem(n).writeLock() }
    func WSU(_ n: String) { rwsem(n).writeUnlock() }
    func RSL(_ n: String) { rwsem(n).readLock() }
    func RSU(_ n: String) { rwsem(n).readUnlock() }
    func RTL(_ n: String) { rtmutex(n).lock() }
    func RTU(_ n: String) { rtmutex(n).unlock() }

    /// LOCK(x) of the lock type under test (`locking-selftest-<kind>.h`).
    func LOCK(_ k: KKind, _ n: String) {
        switch k {
        case .spin: L(n)
        case .wlock: WL(n)
        case .rlock: RL(n)
        case .mutex: ML(n)
        case .wsem: WSL(n)
        case .rsem: RSL(n)
        case .rtmutex: RTL(n)
        }
    }

    func UNLOCK(_ k: KKind, _ n: String) {
        switch k {
        case .spin: U(n)
        case .wlock: WU(n)
        case .rlock: RU(n)
        case .mutex: MU(n)
        case .wsem: WSU(n)
        case .rsem: RSU(n)
        case .rtmutex: RTU(n)
        }
    }

    /// INIT(x): re-initialise the lock in place; the old one is freed (held: "held lock freed!").
    func INIT(_ k: KKind, _ n: String) {
        switch k {
        case .spin: spins[n] = CheckedSpinLock(class: lockClass("lock", n))
        case .wlock, .rlock: rwlocks[n] = CheckedSpinRWLock(class: lockClass("rwlock", n), readers: readers)
        case .mutex: mutexes[n] = CheckedMutex(class: lockClass("mutex", n))
        case .wsem, .rsem: rwsems[n] = CheckedRWSemaphore(class: lockClass("rwsem", n))
        case .rtmutex: rtmutexes[n] = CheckedRTMutex(class: lockClass("rtmutex", n))
        }
    }

    /// LOCK(A); LOCK(B); UNLOCK(B); UNLOCK(A).
    func LOCK_UNLOCK_2(_ k: KKind, _ a: String, _ b: String) {
        LOCK(k, a); LOCK(k, b); UNLOCK(k, b); UNLOCK(k, a)
    }

    // Interrupts: HARDIRQ_ENTER disables hardirqs and enters hardirq context; SOFTIRQ_ENTER
    // disables bottom halves and hardirqs and enters softirq context (as the kernel's macros).
    func HARDIRQ_ENTER(_ body: () -> Void) {
        Lockdep.disableInterrupts(.hardirq)
        Lockdep.withContext(.hardirq, body)
        Lockdep.enableInterrupts(.hardirq)
    }
    /// The kernel's NOTTHREADED_HARDIRQ_ENTER: a hardirq without `lockdep_hardirq_threaded()`.
    func NOTTHREADED_HARDIRQ_ENTER(_ body: () -> Void) {
        Lockdep.disableInterrupts(.hardirq)
        Lockdep.withContext(.hardirq, threaded: false, body)
        Lockdep.enableInterrupts(.hardirq)
    }
    func SOFTIRQ_ENTER(_ body: () -> Void) {
        Lockdep.disableInterrupts(.softirq)
        Lockdep.disableInterrupts(.hardirq)
        Lockdep.withContext(.softirq, body)
        Lockdep.enableInterrupts(.hardirq)
        Lockdep.enableInterrupts(.softirq)
    }
    func HARDIRQ_DISABLE() { Lockdep.disableInterrupts(.hardirq) }
    func HARDIRQ_ENABLE() { Lockdep.enableInterrupts(.hardirq) }
    func SOFTIRQ_DISABLE() { Lockdep.disableInterrupts(.softirq) }
    func SOFTIRQ_ENABLE() { Lockdep.enableInterrupts(.softirq) }
    func IRQ_ENTER(_ i: KIRQ, _ body: () -> Void) { i == .hard ? HARDIRQ_ENTER(body) : SOFTIRQ_ENTER(body) }
    func IRQ_DISABLE(_ i: KIRQ) { i == .hard ? HARDIRQ_DISABLE() : SOFTIRQ_DISABLE() }
    func IRQ_ENABLE(_ i: KIRQ) { i == .hard ? HARDIRQ_ENABLE() : SOFTIRQ_ENABLE() }

    /// WARN_ON(condition): an API result other than the kernel's.
    func WARN_ON(_ condition: Bool, _ what: String) { if condition { warnings.append(what) } }
}
