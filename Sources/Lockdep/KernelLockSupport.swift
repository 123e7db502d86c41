internal import Glibc
internal import Synchronization
internal import CLockdepThread

/// The Lockdep plumbing shared by the kernel-style primitives (``CheckedRWSemaphore``,
/// ``CheckedSpinRWLock``, ``CheckedRTMutex``, ``LocalLock``, ``WWMutex``): one acquire, one
/// release and the held-lock-freed check, over the engine's existing entry points.
enum KernelLockSupport {
    /// The owner word of an exclusive hold: `serial << 1 | 1` while held, `serial << 1` after the
    /// release (so a second release is reported as a double unlock).
    static func acquire(_ lockClass: LockClass, subclass: Int, instance: UnsafeRawPointer, mode: LockdepMode,
                        sleeping: Bool, atomic: Bool, trylock: Bool = false, nest: UnsafeRawPointer? = nil,
                        site: LockdepSite) -> UInt {
        #if LOCKDEP_CHECKS
        var flags: UInt8 = 0
        if sleeping { flags |= AcquireFlag.sleeping }
        if atomic { flags |= AcquireFlag.atomic }
        if trylock { flags |= AcquireFlag.trylock }
        let token = Engine.acquire(classID: lockClass.id, subclass: UInt8(truncatingIfNeeded: subclass & 7),
                                   instance: instance, mode: mode, flags: flags, nest: nest, site: site)
        return (token & ~1) | 1
        #else
        return 1
        #endif
    }

    /// Records a release. Returns whether the real unlock may be performed (`false` after a
    /// reported misuse: releasing what this thread does not hold).
    static func release(_ lockClass: LockClass, instance: UnsafeRawPointer, ownerWord: UInt, site: LockdepSite) -> Bool {
        #if LOCKDEP_CHECKS
        return Engine.release(classID: lockClass.id, instance: instance, ownerWord: ownerWord, site: site)
        #else
        return true
        #endif
    }

    /// Records the release of one side of a reader-writer primitive (`write`: its write side).
    /// When the calling thread's innermost hold of `lock` is the other side (`up_write` after
    /// `down_read`, the kernel's DEBUG_RWSEMS warning), reports it and returns `false`: nothing
    /// is released, in Lockdep or in pthreads, and the hold stays for its own release.
    static func releaseSide(_ lock: some LockdepLock, write: Bool, ownerWord: UInt, call: StaticString,
                            site: LockdepSite) -> Bool {
        #if LOCKDEP_CHECKS
        let t = ThreadState.current()
        if Engine.validating, let i = Engine.heldIndex(t, lock.lockdepInstance),
           (t.pointee.held[i].mode == LockdepMode.write.rawValue) != write {
            let held = write ? "read" : "write"
            warn(lock, "\(call) of a lock this thread holds for \(held) (released with the other side's call): "
                 + "the release was not performed", site: site)
            return false
        }
        return Engine.release(classID: lock.lockClass.id, instance: lock.lockdepInstance, ownerWord: ownerWord, site: site)
        #else
        return true
        #endif
    }

    /// An exclusive acquire by the thread that already holds `lock` (it would deadlock on
    /// itself): reported as "possible recursive locking" and refused, in every build. The
    /// caller counts the refusal, and the matching release releases nothing.
    static func refuseRecursive(_ lock: some LockdepLock, subclass: Int, call: StaticString, site: LockdepSite) {
        Engine.refusedRecursiveAcquire(classID: lock.lockClass.id, subclass: UInt8(truncatingIfNeeded: subclass & 7),
                                       instance: lock.lockdepInstance, mode: .write, counted: true, call: call, site: site)
    }

    /// Reports a lock freed (or re-initialised) while held: "held lock freed!".
    static func destroyedWhileHeld(_ lockClass: LockClass, instance: UnsafeRawPointer, ownerWord: UInt,
                                   declared: LockdepSite) {
        #if LOCKDEP_CHECKS
        Engine.heldLockDestroyed(classID: lockClass.id, instance: instance, ownerWord: ownerWord, declared: declared)
        #endif
    }

    /// For a lock with no holder record of its own (a local lock, a pseudo-lock), destroyed:
    /// when the destroying thread holds it, reports "held lock freed!" (the kernel's
    /// `debug_check_no_locks_freed`, which looks at the current task's held locks) and drops
    /// the entry, which would otherwise stay on the stack, with its class and atomic count.
    static func checkFreedByHolder(_ lockClass: LockClass, instance: UnsafeRawPointer, declared: LockdepSite) {
        #if LOCKDEP_CHECKS
        guard let t = ThreadState.existing(), Engine.heldIndex(t, instance) != nil else { return }
        Engine.heldLockDestroyed(classID: lockClass.id, instance: instance, ownerWord: 0, declared: declared)
        #endif
    }

    /// The calling thread's identity for the primitives' own owner fields: never reused by
    /// a later thread, as a `pthread_t` is.
    static var currentThread: UInt { clockdep_thread_identity() }
}

extension KernelLockSupport {
    /// A failed API check of a primitive (the kernel's `DEBUG_LOCKS_WARN_ON`), reported as
    /// ``LockdepReport/Kind/assertionFailed``.
    static func warn(_ lock: (any LockdepLock)?, _ message: String, site: LockdepSite) {
        #if LOCKDEP_CHECKS
        Engine.assertionFailure(ThreadState.current(), lock: lock, message: message, site: site)
        #endif
    }
}

/// The exclusive hold of a kernel-style primitive (an rt mutex, a reader-writer lock's write
/// side): its holder, its owner word, and the holder's refused recursive acquires not yet
/// matched by a release (each such release releases nothing). Relaxed atomics: a contending
/// thread reads the holder for its recursion test; only the holder writes.
struct ExclusiveHold: ~Copyable {
    private let holder = Atomic<UInt>(0)
    private let ownerWord = Atomic<UInt>(0)
    private let refusals = Atomic<Int>(0)

    init() {}

    /// `serial << 1 | 1` while held, `serial << 1` after the release (a second release is then
    /// reported as a double unlock).
    var word: UInt { ownerWord.load(ordering: .relaxed) }
    var isHeld: Bool { word & 1 != 0 }
    var isHeldByCaller: Bool { holder.load(ordering: .relaxed) == KernelLockSupport.currentThread && isHeld }

    /// Records the calling thread's acquire, `word` from ``KernelLockSupport/acquire(_:subclass:instance:mode:sleeping:atomic:trylock:nest:site:)``.
    func take(word: UInt) {
        holder.store(KernelLockSupport.currentThread, ordering: .relaxed)
        ownerWord.store(word, ordering: .relaxed)
    }

    /// Records the holder's release.
    func release() {
        ownerWord.store(word & ~1, ordering: .relaxed)
        holder.store(0, ordering: .relaxed)
    }

    /// Counts a refused recursive acquire by the holder.
    func refuse() { refusals.add(1, ordering: .relaxed) }

    /// A release by the holder that matches a refused acquire: consumes the refusal.
    func consumeRefusal() -> Bool {
        guard isHeldByCaller, refusals.load(ordering: .relaxed) > 0 else { return false }
        refusals.subtract(1, ordering: .relaxed)
        return true
    }
}
