internal import Glibc

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

    /// Reports a lock freed (or re-initialised) while held: "held lock freed!".
    static func destroyedWhileHeld(_ lockClass: LockClass, instance: UnsafeRawPointer, ownerWord: UInt,
                                   declared: LockdepSite) {
        #if LOCKDEP_CHECKS
        Engine.heldLockDestroyed(classID: lockClass.id, instance: instance, ownerWord: ownerWord, declared: declared)
        #endif
    }

    /// The calling thread's identity for the primitives' own owner fields.
    static var currentThread: UInt { UInt(pthread_self()) }
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
