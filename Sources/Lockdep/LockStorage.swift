#if LOCKDEP_CHECKS
internal import Glibc
#else
public import Glibc   // pthread_self() in the inlinable owner stores
#endif
public import Synchronization

/// The header of a checked lock's storage: its class and declaration site.
@usableFromInline
struct LockHeader {
    @usableFromInline let lockClass: LockClass
    @usableFromInline let classID: UInt32
    @usableFromInline let declared: LockdepSite

    @usableFromInline
    init(lockClass: LockClass, declared: LockdepSite) {
        self.lockClass = lockClass
        self.classID = lockClass.id
        self.declared = declared
    }
}

/// The tail element of a checked lock's storage: the primitive, at a stable address, and the
/// owner word of an exclusive hold, kept in every build: with checks compiled in,
/// `serial << 1 | locked` (Lockdep's thread serial, which the misuse checks and reports read);
/// with checks compiled out, the holder's `pthread_self()` (0 when not held exclusively), so
/// that ``CheckedMutex/isHeldByCurrentThread`` and its kin answer exactly in release builds too.
@usableFromInline
struct LockCell<Primitive>: ~Copyable {
    @usableFromInline var primitive: Primitive
    @usableFromInline let owner: Atomic<UInt>

    @usableFromInline
    init(_ primitive: Primitive) {
        self.primitive = primitive
        self.owner = Atomic(0)
    }
}

/// Storage with a stable address for the primitive: a `ManagedBuffer` tail, as swift-nio's
/// `NIOLock` does.
@usableFromInline
final class LockStorage<Primitive>: ManagedBuffer<LockHeader, LockCell<Primitive>> {

    @usableFromInline
    static func make(_ lockClass: LockClass, declared: LockdepSite, primitive: Primitive,
                     initialize: (UnsafeMutablePointer<Primitive>) -> Void) -> LockStorage<Primitive> {
        let buffer = LockStorage<Primitive>.create(minimumCapacity: 1) { _ in
            LockHeader(lockClass: lockClass, declared: declared)
        }
        let storage = unsafeDowncast(buffer, to: LockStorage<Primitive>.self)
        storage.withUnsafeMutablePointerToElements { cell in
            cell.initialize(to: LockCell(primitive))
            initialize(&cell.pointee.primitive)
        }
        return storage
    }

    /// The class number, read through the header pointer (no dynamic exclusivity check).
    @inlinable
    var classID: UInt32 { withUnsafeMutablePointerToHeader { $0.pointee.classID } }

    @inlinable
    var instance: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    @inlinable
    var primitivePointer: UnsafeMutablePointer<Primitive> {
        withUnsafeMutablePointerToElements { cell in
            UnsafeMutableRawPointer(cell).assumingMemoryBound(to: Primitive.self)
        }
    }

    @inlinable
    func ownerWord() -> UInt {
        withUnsafeMutablePointerToElements { $0.pointee.owner.load(ordering: .relaxed) }
    }

    /// Whether the calling thread holds the lock exclusively (a mutex, a spinlock, a
    /// reader-writer lock's write side). Exact in every build: it reads the owner word,
    /// not Lockdep's held-lock stack (which stops being exact once validation turns off).
    @usableFromInline
    var isOwnedByCurrentThread: Bool {
        let word = ownerWord()
        #if LOCKDEP_CHECKS
        return word & 1 != 0 && Engine.ownsWord(word)
        #else
        if word == UInt(pthread_self()) { return true }
        return Self.heldByCurrentThreadAfterConditionWait(primitivePointer)
        #endif
    }

    #if !LOCKDEP_CHECKS
    /// Records the calling thread as the exclusive holder (checks compiled out).
    @inlinable @inline(__always)
    func setOwnerThread() {
        withUnsafeMutablePointerToElements { $0.pointee.owner.store(UInt(pthread_self()), ordering: .relaxed) }
    }

    /// Forgets the exclusive holder (checks compiled out).
    @inlinable @inline(__always)
    func clearOwnerThread() {
        withUnsafeMutablePointerToElements { $0.pointee.owner.store(0, ordering: .relaxed) }
    }

    /// A mutex re-acquired by `pthread_cond_wait` (``CheckedCondition`` in a build without
    /// checks) does not pass through ``setOwnerThread()``, so the owner word can be stale
    /// there. glibc records the holder's kernel thread id in every mutex it locks (`__owner`,
    /// cleared on unlock, also inside condition waits): ask it before saying "not held".
    static func heldByCurrentThreadAfterConditionWait(_ primitive: UnsafeMutablePointer<Primitive>) -> Bool {
        guard Primitive.self == pthread_mutex_t.self else { return false }
        let mutex = UnsafeMutableRawPointer(primitive).assumingMemoryBound(to: pthread_mutex_t.self)
        let holder = mutex.pointee.__data.__owner
        return holder != 0 && holder == currentKernelThreadID()
    }

    /// The calling thread's kernel thread id, as glibc records it in a mutex it locks
    /// (no `gettid` in Swift's Glibc module, and no system call this way).
    static func currentKernelThreadID() -> Int32 {
        withUnsafeTemporaryAllocation(of: pthread_mutex_t.self, capacity: 1) { buffer in
            let probe = buffer.baseAddress!
            probe.initialize(to: pthread_mutex_t())
            pthread_mutex_init(probe, nil)
            pthread_mutex_lock(probe)
            let tid = probe.pointee.__data.__owner
            pthread_mutex_unlock(probe)
            pthread_mutex_destroy(probe)
            return tid
        }
    }
    #endif

    #if LOCKDEP_CHECKS
    /// Records the owner after a successful exclusive acquire.
    @inlinable
    func setOwner(_ token: UInt) {
        withUnsafeMutablePointerToElements { $0.pointee.owner.store(token | 1, ordering: .relaxed) }
    }

    @inlinable
    func clearOwner(_ word: UInt) {
        withUnsafeMutablePointerToElements { $0.pointee.owner.store(word & ~1, ordering: .relaxed) }
    }

    /// Takes the primitive once Lockdep has validated the acquire (`token` from `fastAcquire`
    /// or `acquire`). When the token asks for lock statistics (bit 0), a contended acquire is
    /// timed and recorded; otherwise the primitive is simply locked. Shared by every checked lock.
    @inlinable @inline(__always)
    func lockMeasured(_ token: UInt, site: LockdepSite, try tryLock: (UnsafeMutablePointer<Primitive>) -> Int32,
                      lock: (UnsafeMutablePointer<Primitive>) -> Int32) {
        let p = primitivePointer
        if token & 1 == 0 {
            _ = lock(p)
        } else if tryLock(p) != 0 {
            let start = Engine.nowNanos()
            _ = lock(p)
            Engine.recordContention(classID: classID, waitNanos: Engine.nowNanos() &- start, site: site)
        }
    }

    /// Validates a release with Lockdep. Returns the owner word read before it, or `nil` when
    /// the release was refused (reported misuse: the primitive must not be unlocked).
    @inlinable @inline(__always)
    func validateRelease(site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?) -> UInt? {
        let word = ownerWord()
        guard Engine.fastRelease(classID: classID, instance: instance, ownerWord: word, site: site, thread: thread)
        else { return nil }
        return word
    }

    /// Reports a lock destroyed while held (called from the owning type's deinit path).
    /// Returns whether it was held (then the primitive must not be destroyed).
    @usableFromInline
    func checkDestroy() -> Bool {
        let word = ownerWord()
        guard word & 1 != 0 || heldByReaders() else { return false }
        Engine.heldLockDestroyed(classID: header.classID, instance: instance, ownerWord: word, declared: header.declared)
        return true
    }

    /// For a reader-writer lock: whether readers hold it (no owner word records them).
    func heldByReaders() -> Bool {
        guard Primitive.self == pthread_rwlock_t.self else { return false }
        let p = UnsafeMutableRawPointer(primitivePointer).assumingMemoryBound(to: pthread_rwlock_t.self)
        guard pthread_rwlock_trywrlock(p) == 0 else { return true }
        pthread_rwlock_unlock(p)
        return false
    }
    #endif

    deinit {
        #if LOCKDEP_CHECKS
        let held = checkDestroy()
        #else
        let held = false
        #endif
        withUnsafeMutablePointerToElements { cell in
            if !held { Self.destroy(UnsafeMutableRawPointer(cell).assumingMemoryBound(to: Primitive.self)) }
            _ = cell.deinitialize(count: 1)
        }
    }

    static func destroy(_ p: UnsafeMutablePointer<Primitive>) {
        if let m = p as? UnsafeMutablePointer<pthread_mutex_t> { pthread_mutex_destroy(m) }
        else if let r = p as? UnsafeMutablePointer<pthread_rwlock_t> { pthread_rwlock_destroy(r) }
        else if let c = p as? UnsafeMutablePointer<pthread_cond_t> { pthread_cond_destroy(c) }
        else if let s = p as? UnsafeMutablePointer<pthread_spinlock_t> { pthread_spin_destroy(s) }
    }
}

extension Engine {
    static func heldLockDestroyed(classID: UInt32, instance: UnsafeRawPointer, ownerWord: UInt, declared: LockdepSite) {
        let t = ThreadState.current()
        guard validating, t.pointee.recursion == 0 else { return }
        let index = heldIndex(t, instance)
        let r: LockdepReport = graph.withLock { g in
            let name = g.nodeName(classID << 3)
            let owner = ownerWord >> 1
            let ownerName = g.threadNames[owner] ?? "thread-\(owner)"
            var body = "thread \"\(t.pointee.name)\" is destroying lock (\(name)) while it is still held!\n"
            body += "lock declared at: \(declared)\n"
            var acquired: LockdepSite?
            if let index {
                acquired = t.pointee.held[index].site
                body += "held by this thread, acquired at: \(t.pointee.held[index].site)\n"
            } else {
                body += "held by thread \"\(ownerName)\"\n"
            }
            let lock = LockdepReport.Lock(name: name, mode: .write, site: acquired ?? declared, usage: g.usage(classID << 3))
            return Reports.make(.heldLockDestroyed, "WARNING: held lock freed!", t, site: acquired ?? declared,
                                lock: lock, classes: [name], held: heldLocks(g, t, upTo: t.pointee.depth), body: body,
                                other: index == nil ? ownerName : nil)
        }
        if let index {
            if t.pointee.held[index].flags & AcquireFlag.atomic != 0 { t.pointee.atomicDepth -= 1 }
            remove(t, at: index)
        }
        deliver([r], t)
    }
}
