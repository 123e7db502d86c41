#if LOCKDEP_CHECKS
internal import Glibc
#else
public import Glibc   // the rwlock's reader count, read by the inlinable owner test
#endif
public import CLockdepThread   // the pending-acquire cell, and the owner identity of a build without checks
public import Synchronization

/// The header of a checked lock's storage: its class and declaration site.
@usableFromInline
struct LockHeader {
    @usableFromInline let lockClass: LockClass
    @usableFromInline let classID: UInt32
    @usableFromInline let declared: LockdepSite
    /// The chain-key element of an exclusive sleeping acquire of subclass 0 (a mutex's
    /// `lock()`), computed once instead of on every acquire.
    @usableFromInline let exclusiveSleepingElement: UInt64
    /// The chain key of that acquire with no lock held (``Engine/mix(_:_:)`` of the chain seed
    /// and the element): the key an outermost `lock()` would compute.
    @usableFromInline let exclusiveSleepingOutermostKey: UInt64

    @usableFromInline
    init(lockClass: LockClass, declared: LockdepSite) {
        self.lockClass = lockClass
        self.classID = lockClass.id
        self.declared = declared
        let element = Engine.element(node: lockClass.id << 3, mode: LockdepMode.write.rawValue, irq: 0,
                                     flags: AcquireFlag.sleeping, nested: false)
        self.exclusiveSleepingElement = element
        self.exclusiveSleepingOutermostKey = Engine.mix(Engine.chainSeed, element)
    }
}

/// The tail element of a checked lock's storage: the primitive, at a stable address, and the
/// owner word of an exclusive hold, kept in every build: with checks compiled in,
/// `serial << 1 | locked` (Lockdep's thread serial, which the misuse checks and reports read);
/// with checks compiled out, the holder's `clockdep_thread_identity()` (0 when not held
/// exclusively), with bit 0 set while the holder has refused nested acquires outstanding (an
/// identity is even). Not `pthread_self()`: glibc gives an exited thread's `pthread_t` to the
/// next thread it creates, which would then pass for the holder of a lock the exited one
/// kept. Either way the word lets ``CheckedMutex/isHeldByCurrentThread`` and its kin answer
/// exactly, and lets every build refuse a recursive acquire or a release by a thread that
/// does not hold the lock. A condition wait sets it aside and puts it back.
@usableFromInline
struct LockCell<Primitive>: ~Copyable {
    @usableFromInline var primitive: Primitive
    @usableFromInline let owner: Atomic<UInt>
    /// The holder's refused nested acquires not yet matched by a release (each such release is a
    /// no-op). Only the holder writes it, while it holds the lock; a relaxed atomic because a
    /// release's fast path reads it before it knows whether its thread is the holder.
    @usableFromInline let refusals: Atomic<Int>
    #if LOCKDEP_CHECKS
    /// The Swift task that took the exclusive hold (0 outside a task), so that a release by
    /// the same task on another thread is named for what it is: a hold across an `await`.
    @usableFromInline let ownerTask: Atomic<UInt>
    /// The state word under which the chain of an outermost exclusive sleeping acquire of
    /// subclass 0 (``LockHeader/exclusiveSleepingOutermostKey``) is known validated, or `.max`.
    /// A validated chain is the graph's (the kernel's chain cache is global), so any thread's
    /// outermost `lock()` then skips its own cache of chains.
    @usableFromInline let outermostValidatedWord: Atomic<UInt>
    #endif

    @usableFromInline
    init(_ primitive: Primitive) {
        self.primitive = primitive
        self.owner = Atomic(0)
        self.refusals = Atomic(0)
        #if LOCKDEP_CHECKS
        self.ownerTask = Atomic(0)
        self.outermostValidatedWord = Atomic(.max)
        #endif
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

    /// ``LockHeader/exclusiveSleepingElement``.
    @inlinable
    var exclusiveSleepingElement: UInt64 { withUnsafeMutablePointerToHeader { $0.pointee.exclusiveSleepingElement } }

    /// ``LockHeader/exclusiveSleepingOutermostKey``.
    @inlinable
    var exclusiveSleepingOutermostKey: UInt64 {
        withUnsafeMutablePointerToHeader { $0.pointee.exclusiveSleepingOutermostKey }
    }

    #if LOCKDEP_CHECKS
    /// ``LockCell/outermostValidatedWord``.
    @inlinable
    var outermostValidatedWord: UInt {
        withUnsafeMutablePointerToElements { $0.pointee.outermostValidatedWord.load(ordering: .relaxed) }
    }

    /// After a full exclusive sleeping acquire of subclass 0 by `thread`: when it was the
    /// thread's only hold and its chain is now validated (in the thread's cache, which mirrors
    /// the graph's chains), records the state word it was validated under.
    @usableFromInline
    func noteOutermostValidated(_ thread: UnsafeMutablePointer<ThreadState>?) {
        guard let t = thread, t.pointee.depth == 1, t.pointee.fastWord != .max,
              ThreadState.cacheProbe(t, exclusiveSleepingOutermostKey) else { return }
        withUnsafeMutablePointerToElements { $0.pointee.outermostValidatedWord.store(t.pointee.fastWord, ordering: .relaxed) }
    }
    #endif

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
        return word & ~1 == Self.currentThread
        #endif
    }

    /// Reads or changes the refusal count (see `LockCell.refusals`): only the holder may call this.
    @inlinable @inline(__always)
    func withRefusals<R>(_ body: (inout Int) -> R) -> R {
        withUnsafeMutablePointerToElements { cell in
            var refusals = cell.pointee.refusals.load(ordering: .relaxed)
            defer { cell.pointee.refusals.store(refusals, ordering: .relaxed) }
            return body(&refusals)
        }
    }

    /// The refusal count, read by any thread (its holder's is exact).
    @inlinable @inline(__always)
    var refusalCount: Int { withUnsafeMutablePointerToElements { $0.pointee.refusals.load(ordering: .relaxed) } }

    /// The holder's refused nested acquires, taken out of the lock before a condition wait
    /// releases it (the next holder's release must not consume them) and put back with
    /// ``restoreRefusals(_:)`` once the wait has taken the lock again.
    @inlinable @inline(__always)
    func takeRefusals() -> Int {
        withRefusals { refusals in
            defer { refusals = 0 }
            return refusals
        }
    }

    /// Puts back what ``takeRefusals()`` took: only the holder may call this.
    @inlinable @inline(__always)
    func restoreRefusals(_ refusals: Int) { withRefusals { $0 = refusals } }

    #if LOCKDEP_CHECKS
    /// Whether `thread` holds the lock exclusively, by the owner word alone (`serial << 1 | 1`).
    @inlinable @inline(__always)
    func isOwned(by thread: UnsafeMutablePointer<ThreadState>?) -> Bool {
        isOwned(by: thread, word: ownerWord())
    }

    /// ``isOwned(by:)`` by an owner word the caller read.
    @inlinable @inline(__always)
    func isOwned(by thread: UnsafeMutablePointer<ThreadState>?, word: UInt) -> Bool {
        guard let t = thread else { return false }
        return word == t.pointee.ownerToken
    }

    /// A release by `thread` that matches a refused nested acquire: consumes the refusal and
    /// returns `true` (the caller then releases nothing, in Lockdep or in pthreads).
    @inlinable @inline(__always)
    func consumeRefusal(_ thread: UnsafeMutablePointer<ThreadState>?) -> Bool {
        guard isOwned(by: thread) else { return false }
        return withRefusals { refusals in
            guard refusals != 0 else { return false }
            refusals -= 1
            return true
        }
    }

    /// The end of a scoped (`withLock`) hold: refused nested acquires the body left unmatched
    /// are forgotten, so the scope still releases the lock. (`thread` was looked up before the
    /// acquire, so it is `nil` on a thread's first lock: look again then.)
    @inlinable @inline(__always)
    func endScope(_ thread: UnsafeMutablePointer<ThreadState>?) {
        if isOwned(by: thread ?? Engine.fastThread()) { withRefusals { $0 = 0 } }
    }

    /// An acquire of an exclusive lock by the thread that holds it (it would never return):
    /// reported as recursive locking through ``Lockdep/reportHandler`` and refused. `counted`
    /// for an acquire with a matching release (`lock()`), which then releases nothing.
    @usableFromInline @inline(never)
    func refuseRecursiveAcquire(subclass: UInt8, mode: LockdepMode, counted: Bool, call: StaticString, site: LockdepSite) {
        if counted { withRefusals { $0 += 1 } }
        let task = withUnsafeMutablePointerToElements { $0.pointee.ownerTask.load(ordering: .relaxed) }
        if TaskContext.refuseAcquireOfSuspendedHold(classID: classID, ownerTask: task, call: call, site: site) { return }
        Engine.refusedRecursiveAcquire(classID: classID, subclass: subclass, instance: instance, mode: mode,
                                       counted: counted, call: call, site: site)
    }
    #else
    /// The calling thread as the owner word records it (checks compiled out): an identity
    /// never given to another thread of the process.
    @inlinable @inline(__always)
    static var currentThread: UInt { clockdep_thread_identity() }

    /// Whether thread `me` holds the lock exclusively, by the owner word alone: one relaxed
    /// load and a compare (bit 0 marks outstanding refusals).
    @inlinable @inline(__always)
    func isOwned(by me: UInt) -> Bool { ownerWord() & ~1 == me }

    /// For a reader-writer lock: whether glibc counts any reader (the count sits above the
    /// three flag bits of `__readers`, the word every read acquire and release updates).
    @inlinable @inline(__always)
    var hasReaders: Bool {
        let p = UnsafeRawPointer(primitivePointer).assumingMemoryBound(to: pthread_rwlock_t.self)
        return p.pointee.__data.__readers >> 3 != 0
    }

    /// Records thread `me` as the exclusive holder (checks compiled out).
    @inlinable @inline(__always)
    func setOwner(thread me: UInt) {
        withUnsafeMutablePointerToElements { $0.pointee.owner.store(me, ordering: .relaxed) }
    }

    /// Forgets the exclusive holder (checks compiled out).
    @inlinable @inline(__always)
    func clearOwnerThread() {
        withUnsafeMutablePointerToElements { $0.pointee.owner.store(0, ordering: .relaxed) }
    }

    /// An acquire of an exclusive lock by the thread `me` that holds it (it would never
    /// return): reported as recursive locking through ``Lockdep/reportHandler`` and refused.
    /// `counted` for an acquire with a matching release (`lock()`), which then releases nothing.
    @usableFromInline @inline(never)
    func refuseRecursiveAcquire(_ me: UInt, mode: LockdepMode, counted: Bool, call: StaticString, site: LockdepSite) {
        if counted {
            withRefusals { $0 += 1 }
            setOwner(thread: me | 1)
        }
        Engine.refusedRecursiveAcquire(classID: classID, subclass: 0, instance: instance, mode: mode,
                                       counted: counted, call: call, site: site)
    }

    /// An exclusive release by thread `me` whose owner word was not exactly `me` (checks
    /// compiled out). Returns whether the caller must unlock the primitive (the owner word is
    /// then cleared already):
    /// - `me | 1`: the release matches a refused nested acquire and releases nothing; at the end
    ///   of a scope (`endOfScope`, a `withLock`) the refusals are forgotten and the lock released;
    /// - anything else: a release by a thread that does not hold the lock, reported through
    ///   ``Lockdep/reportHandler`` and refused.
    @usableFromInline @inline(never)
    func releaseSlowPath(_ me: UInt, word: UInt, endOfScope: Bool, call: StaticString, site: LockdepSite) -> Bool {
        guard word & ~1 == me else {
            Engine.refusedRelease(classID: classID, instance: instance, heldByAnother: word != 0, call: call, site: site)
            return false
        }
        let left: Int? = withRefusals { refusals in
            if endOfScope || refusals == 0 {
                refusals = 0
                return nil
            }
            refusals -= 1
            return refusals
        }
        guard let left else {
            clearOwnerThread()
            return true
        }
        setOwner(thread: left == 0 ? me : me | 1)
        return false
    }
    #endif

    #if LOCKDEP_CHECKS
    /// Records the owner after a successful exclusive acquire.
    ///
    /// `scoped`: taken by a `withLock`-style call, whose synchronous body cannot suspend, so
    /// the task is not recorded.
    @inlinable
    func setOwner(_ token: UInt, scoped: Bool = false, thread: UnsafeMutablePointer<ThreadState>? = nil) {
        // `thread` was looked up before the acquire, so it is `nil` on a thread's first lock:
        // look again then (the acquire created the state).
        let task = scoped ? 0 : TaskContext.currentTaskIfChecking(thread ?? Engine.fastThread())
        withUnsafeMutablePointerToElements {
            $0.pointee.ownerTask.store(task, ordering: .relaxed)
            $0.pointee.owner.store(token | 1, ordering: .relaxed)
        }
    }

    /// ``setOwner(_:scoped:thread:)`` after a fast acquire by `t`. Outside any task (the
    /// runtime's slot empty) the task is 0; in a task, or on a thread whose slot is not known,
    /// it is recorded out of line, over the 0, before the acquire returns. (Stores first and
    /// one test after: the common path then runs straight through.)
    @inlinable @inline(__always)
    func setOwner(scoped: Bool, _ t: UnsafeMutablePointer<ThreadState>) {
        withUnsafeMutablePointerToElements {
            $0.pointee.ownerTask.store(0, ordering: .relaxed)
            $0.pointee.owner.store(t.pointee.ownerToken, ordering: .relaxed)
        }
        if !scoped && _slowPath(t.pointee.taskSlot.pointee != nil) { recordOwnerTask(t) }
    }

    /// Records the task ``setOwner(scoped:_:)`` found running.
    @usableFromInline @inline(never)
    func recordOwnerTask(_ t: UnsafeMutablePointer<ThreadState>) {
        let task = TaskContext.currentTaskIfChecking(t)
        withUnsafeMutablePointerToElements { $0.pointee.ownerTask.store(task, ordering: .relaxed) }
    }

    @inlinable
    func clearOwner(_ word: UInt) {
        withUnsafeMutablePointerToElements { $0.pointee.owner.store(word & ~1, ordering: .relaxed) }
    }

    /// Takes the primitive once Lockdep has validated the acquire (`token` from `fastAcquire`
    /// or `acquire`). A sleeping lock's wait is published for stall reports first
    /// (``Lockdep/pendingAcquire(of:)``: the lock and the owner word it saw), and withdrawn
    /// when it returns. When the token asks for lock statistics (bit 0 clear), a contended
    /// acquire is timed and recorded. Shared by every checked lock.
    ///
    /// The primitive's own lock call, not a try first: glibc's `pthread_mutex_trylock` costs
    /// about twice `pthread_mutex_lock` uncontended.
    @inlinable @inline(__always)
    func lockMeasured(_ token: UInt, subclass: UInt8 = 0, site: LockdepSite,
                      try tryLock: (UnsafeMutablePointer<Primitive>) -> Int32,
                      lock: (UnsafeMutablePointer<Primitive>) -> Int32) {
        guard token & 1 != 0 else {
            lockTimed(subclass: subclass, site: site, try: tryLock, lock: lock)
            return
        }
        guard let t = Engine.fastThread() else {
            _ = lock(primitivePointer)
            return
        }
        lockPublishingWait(t, subclass: subclass, lock: lock)
    }

    /// The untimed lock call, with a sleeping lock's wait published for stall reports
    /// (see ``lockMeasured(_:subclass:site:try:lock:)``): what a fast acquire by `t` calls.
    ///
    /// `node` and `seenOwner`: the lock's node and owner word when the caller has them at hand.
    @inlinable @inline(__always)
    func lockPublishingWait(_ t: UnsafeMutablePointer<ThreadState>, subclass: UInt8, node: UInt32? = nil,
                            seenOwner: UInt? = nil, lock: (UnsafeMutablePointer<Primitive>) -> Int32) {
        // A spinning lock's wait is no sleep: stall reports name sleeping locks only.
        // (`pthread_spinlock_t` is `Int32`, which this inlinable code may name.)
        guard Primitive.self != Int32.self else {
            _ = lock(primitivePointer)
            return
        }
        let pending = t.pointee.pending
        clockdep_pending_set(pending, node ?? classID &<< 3 | UInt32(subclass & 7), seenOwner ?? ownerWord())
        _ = lock(primitivePointer)
        clockdep_pending_clear(pending)
    }

    /// ``lockMeasured(_:subclass:site:try:lock:)`` with lock statistics on.
    @usableFromInline @inline(never)
    func lockTimed(subclass: UInt8, site: LockdepSite, try tryLock: (UnsafeMutablePointer<Primitive>) -> Int32,
                   lock: (UnsafeMutablePointer<Primitive>) -> Int32) {
        let p = primitivePointer
        if tryLock(p) == 0 { return }
        let pending = Primitive.self != pthread_spinlock_t.self ? ThreadState.current().pointee.pending : nil
        if let pending { clockdep_pending_set(pending, classID << 3 | UInt32(subclass & 7), ownerWord()) }
        let start = Engine.nowNanos()
        _ = lock(p)
        Engine.recordContention(classID: classID, waitNanos: Engine.nowNanos() &- start, site: site)
        if let pending { clockdep_pending_clear(pending) }
    }

    /// The common release of an exclusive hold: by its holder `thread`, with no refused nested
    /// acquire outstanding, of the innermost lock `thread` holds, with the fast path open. Pops
    /// the lock, clears the owner word and returns `true` (the caller unlocks the primitive);
    /// otherwise changes nothing and returns `false` (the caller takes the full path:
    /// ``consumeRefusal(_:)`` and ``validateRelease(site:thread:)``).
    @inlinable @inline(__always)
    func fastExclusiveRelease(_ thread: UnsafeMutablePointer<ThreadState>?, knownFlags: UInt8? = nil) -> Bool {
        guard let t = thread else { return false }
        let word = ownerWord()
        // Held by `t`, with no refused nested acquire to match: one test.
        guard Engine.fastPop(instance: instance, t, knownFlags: knownFlags,
                             alsoZero: (word ^ t.pointee.ownerToken) | UInt(bitPattern: refusalCount))
        else { return false }
        clearOwner(word)
        return true
    }

    /// Validates a release with Lockdep. Returns the owner word read before it, or `nil` when
    /// the release was refused (reported misuse: the primitive must not be unlocked).
    @inlinable @inline(__always)
    func validateRelease(site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?) -> UInt? {
        let word = ownerWord()
        if _slowPath(word & 1 != 0 && !isOwned(by: thread)) {
            let task = withUnsafeMutablePointerToElements { $0.pointee.ownerTask.load(ordering: .relaxed) }
            if TaskContext.refuseReleaseAcrossSuspension(classID: classID, ownerWord: word, ownerTask: task,
                                                         call: "unlock()", site: site) {
                return nil
            }
        }
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
    /// Reports an exclusive acquire refused because the calling thread already holds the lock
    /// (it would deadlock on itself): Lockdep's "possible recursive locking detected", in
    /// every build, naming the call and its site.
    @usableFromInline @inline(never)
    static func refusedRecursiveAcquire(classID: UInt32, subclass: UInt8, instance: UnsafeRawPointer, mode: LockdepMode,
                                        counted: Bool, call: StaticString, site: LockdepSite) {
        let t = ThreadState.current()
        let r: LockdepReport = graph.withLock { g in
            let node = classID << 3 | UInt32(subclass & 7)
            let name = g.nodeName(node)
            var lock = LockdepReport.Lock(name: name, mode: mode, site: site, usage: g.usage(node))
            // With checks compiled in, where the thread took the lock; compiled out, no held stack.
            var holding = heldIndex(t, instance).map { Engine.lock(g, t.pointee.held[$0]) }
                ?? LockdepReport.Lock(name: g.nodeName(classID << 3), mode: .write, site: nil, usage: g.usage(classID << 3))
            lock.instance = g.instanceNames.describe(instance)
            holding.instance = lock.instance
            var body = "thread \"\(t.pointee.name)\" is trying to acquire lock:\n  \(lock), instance \(lock.instance!)\n\n"
            body += "but thread is already holding lock:\n  \(holding), the same instance\n\n"
            body += "other info that might help us debug this:\n"
            body += " Possible unsafe locking scenario:\n\n"
            body += "       T0\n       ----\n  lock(\(holding.name));\n  lock(\(name));\n\n"
            body += " *** DEADLOCK ***\n\n"
            body += counted
                ? "\(call) was refused: the lock was not acquired again (the thread keeps its one hold, and the matching unlock releases nothing)\n"
                : "\(call) was refused: nothing was acquired, the body ran under the hold the thread already has\n"
            return Reports.make(.recursiveLocking, "WARNING: possible recursive locking detected", t, site: site,
                                lock: lock, classes: [name], held: heldLocks(g, t, upTo: t.pointee.depth), body: body)
        }
        deliverRefusal(r, t)
    }

    #if !LOCKDEP_CHECKS
    /// Reports a release refused because the calling thread does not hold the lock (checks
    /// compiled out: the owner word says so; Lockdep's held-lock stack is not kept).
    @usableFromInline @inline(never)
    static func refusedRelease(classID: UInt32, instance: UnsafeRawPointer, heldByAnother: Bool, call: StaticString,
                               site: LockdepSite) {
        let t = ThreadState.current()
        let r: LockdepReport = graph.withLock { g in
            let name = g.nodeName(classID << 3)
            let lock = LockdepReport.Lock(name: name, mode: .write, site: site, usage: g.usage(classID << 3))
            var body = "thread \"\(t.pointee.name)\" is trying to release lock (\(name)) with \(call) at:\n  \(site)\n"
            if heldByAnother {
                body += "but the lock is held by another thread, not by this thread!\n"
                body += "(the release was not performed)\n"
                return Reports.make(.unlockFromOtherThread, "WARNING: lock released by a thread that does not own it!", t,
                                    site: site, lock: lock, classes: [name], held: [], body: body)
            }
            body += "but there are no more locks to release!\n"
            body += "(the release was not performed)\n"
            return Reports.make(.unlockNotHeld, "WARNING: bad unlock balance detected!", t, site: site, lock: lock,
                                classes: [name], held: [], body: body)
        }
        deliverRefusal(r, t)
    }
    #endif

    /// Delivers a refusal report, unless the thread is already inside a report handler (a
    /// handler that misuses a lock would recurse): then one line goes to standard error.
    static func deliverRefusal(_ r: LockdepReport, _ t: UnsafeMutablePointer<ThreadState>) {
        if t.pointee.recursion != 0 {
            Backtrace.writeStandardError("lockdep: \(r.title) at \(r.site.map { "\($0)" } ?? "?") (refused; inside a report handler)\n")
            return
        }
        deliver([r], t)
    }

    static func heldLockDestroyed(classID: UInt32, instance: UnsafeRawPointer, ownerWord: UInt, declared: LockdepSite) {
        let t = ThreadState.current()
        guard validating, t.pointee.recursion == 0 else { return }
        let index = heldIndex(t, instance)
        let r: LockdepReport = graph.withLock { g in
            if index == nil { g.retiredClassIDs.insert(classID) }
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
        // Every entry of the lock goes (a pseudo-lock may be held more than once, recursively read).
        while let i = heldIndex(t, instance) {
            if t.pointee.held[i].flags & AcquireFlag.atomic != 0 { t.pointee.atomicDepth -= 1 }
            remove(t, at: i)
        }
        deliver([r], t)
    }
}
