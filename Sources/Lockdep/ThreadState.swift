public import CLockdepThread
import Glibc
import Synchronization

/// The pthread key of the per-thread state, plus one (0 = not created yet). An atomic with a
/// constant initialiser, so reading it costs a plain load (no lazy-global `swift_once`).
let threadStateKeyPlusOne = Atomic<UInt32>(0)

/// One entry of a thread's held-lock stack.
@usableFromInline
struct HeldLock {
    @usableFromInline var instance: UnsafeRawPointer
    @usableFromInline var chainKey: UInt64
    @usableFromInline var acquiredAt: UInt64
    @usableFromInline var nest: UnsafeRawPointer?
    @usableFromInline var node: UInt32
    @usableFromInline var mode: UInt8
    @usableFromInline var flags: UInt8
    @usableFromInline var irqState: UInt8
    @usableFromInline var pins: UInt8
    @usableFromInline var site: LockdepSite

    @usableFromInline
    init(instance: UnsafeRawPointer, chainKey: UInt64, acquiredAt: UInt64, nest: UnsafeRawPointer?, node: UInt32,
         mode: UInt8, flags: UInt8, irqState: UInt8, pins: UInt8, site: LockdepSite) {
        self.instance = instance; self.chainKey = chainKey; self.acquiredAt = acquiredAt; self.nest = nest
        self.node = node; self.mode = mode; self.flags = flags; self.irqState = irqState; self.pins = pins
        self.site = site
    }
}

/// Per-thread validator state, in manually managed memory reached through `pthread_getspecific`
/// (no exclusivity checks, no reference counting on the hot path).
@usableFromInline
struct ThreadState {
    @usableFromInline var held: UnsafeMutablePointer<HeldLock>
    @usableFromInline var capacity: Int
    @usableFromInline var depth: Int = 0
    /// Open-addressing set of chain keys this thread has seen validated (0 = empty slot).
    @usableFromInline var cache: UnsafeMutablePointer<UInt64>
    @usableFromInline var seenWord: UInt = .max
    @usableFromInline var maxDepth: Int = 48
    /// The state word when the inlined fast paths may run on this thread (validation on,
    /// statistics off, no report being delivered, caches current), else `.max` (which no
    /// state word with bits 0-1 clear equals): one compare instead of four.
    @usableFromInline var fastWord: UInt = .max
    /// `min(maxDepth, capacity)`: one compare for both.
    @usableFromInline var fastDepthLimit: Int = 0
    /// This thread's slot of the Swift runtime's current task, if found
    /// (`clockdep_task_slot_for_current_thread`).
    @usableFromInline var taskSlot: UnsafePointer<UnsafeMutableRawPointer?>?
    @usableFromInline var context: UInt8 = 0
    @usableFromInline var hardirqOff: Int32 = 0
    @usableFromInline var softirqOff: Int32 = 0
    @usableFromInline var atomicDepth: Int32 = 0
    @usableFromInline var recursion: Int32 = 0
    @usableFromInline var serial: UInt
    var name: String
    /// The checked lock this thread last began to take and has not released (for
    /// ``Lockdep/pendingAcquire(of:)``); its own allocation, listed in ``GraphState/pendingCells``.
    @usableFromInline var pending: UnsafeMutablePointer<clockdep_pending_acquire>

    @inlinable static var cacheSize: Int { 1024 }
    @inlinable static var cacheMask: Int { 1023 }

    /// ``irqState``, cached: recomputed by ``updateIrq()`` whenever the context or the
    /// interrupt-disable counts change.
    @usableFromInline var irqCached: UInt8 = 0
    /// Whether a hardirq context entered here is not threaded (``Lockdep/withContext(_:threaded:_:)``).
    @usableFromInline var hardirqNotThreaded: Bool = false

    /// Bits 0-1: context; bit 2: hardirqs disabled; bit 3: softirqs disabled; bit 4: a hardirq
    /// context that is not threaded (only raw spinning locks may be taken).
    @inlinable @inline(__always)
    var irqState: UInt8 { irqCached }

    @inlinable @inline(__always)
    mutating func updateIrq() { irqCached = computeIrqState() }

    @inlinable @inline(__always)
    func computeIrqState() -> UInt8 {
        var s = context
        if hardirqOff > 0 || context == LockdepContext.hardirq.rawValue { s |= 4 }
        if softirqOff > 0 || context != LockdepContext.process.rawValue { s |= 8 }
        if hardirqNotThreaded && context == LockdepContext.hardirq.rawValue { s |= 16 }
        return s
    }

    /// Whether sleeping is invalid here (atomic section, interrupt context, irqs disabled).
    @inlinable @inline(__always)
    var isAtomic: Bool {
        irqCached != 0 || atomicDepth != 0
    }

    @inlinable @inline(__always)
    func cacheContains(_ key: UInt64) -> Bool {
        var i = Int(truncatingIfNeeded: key) & ThreadState.cacheMask
        for _ in 0..<8 {
            let v = cache[i]
            if v == key { return true }
            if v == 0 { return false }
            i = (i &+ 1) & ThreadState.cacheMask
        }
        return false
    }

    /// ``cacheContains(_:)`` past the home slot (the inlined fast path checks that one itself).
    /// (Static over the pointer: a method call would copy the whole state.)
    @usableFromInline @inline(never)
    static func cacheProbe(_ t: UnsafeMutablePointer<ThreadState>, _ key: UInt64) -> Bool {
        t.pointee.cacheContains(key)
    }

    func cacheInsert(_ key: UInt64) {
        let home = Int(truncatingIfNeeded: key) & ThreadState.cacheMask
        var i = home
        for _ in 0..<8 {
            if cache[i] == 0 || cache[i] == key { cache[i] = key; return }
            i = (i &+ 1) & ThreadState.cacheMask
        }
        cache[home] = key
    }

    @inline(never)
    mutating func refresh(_ word: UInt) {
        if (word >> 2) != (seenWord >> 2) {
            cache.update(repeating: 0, count: ThreadState.cacheSize)
            maxDepth = Engine.currentLimits().maxDepth
        }
        seenWord = word
        updateFastGate()
    }

    /// Recomputes ``fastWord`` and ``fastDepthLimit`` after anything they summarise changed.
    mutating func updateFastGate() {
        fastWord = seenWord & 3 == 0 && recursion == 0 ? seenWord : .max
        fastDepthLimit = min(maxDepth, capacity)
    }

    @inline(never)
    mutating func grow() {
        let newCapacity = capacity * 2
        let newHeld = UnsafeMutablePointer<HeldLock>.allocate(capacity: newCapacity)
        newHeld.moveInitialize(from: held, count: depth)
        held.deallocate()
        held = newHeld
        capacity = newCapacity
        updateFastGate()
    }

    // MARK: thread-local access

    /// Creates the pthread key once, without taking any lock (the loser of a race deletes its key).
    static func ensureKey() -> pthread_key_t {
        let existing = threadStateKeyPlusOne.load(ordering: .acquiring)
        if existing != 0 { return existing - 1 }
        var key = pthread_key_t()
        pthread_key_create(&key, destroy)
        let (won, current) = threadStateKeyPlusOne.compareExchange(expected: 0, desired: key + 1,
                                                                   ordering: .acquiringAndReleasing)
        if won { return key }
        pthread_key_delete(key)
        return current - 1
    }

    static let destroy: @convention(c) (UnsafeMutableRawPointer?) -> Void = { raw in
            guard let raw else { return }
            let t = raw.assumingMemoryBound(to: ThreadState.self)
            if clockdep_thread_state() == raw { clockdep_set_thread_state(nil) }
            let holdsLocks = t.pointee.depth > 0
            graph.withLock { g in
                _ = g.pendingCells.removeValue(forKey: t.pointee.serial)
                g.forgetExitedThread(t.pointee.serial, holdsLocks: holdsLocks)
            }
            t.pointee.pending.deallocate()
            t.pointee.held.deinitialize(count: t.pointee.depth)
            t.pointee.held.deallocate()
            t.pointee.cache.deallocate()
            t.deinitialize(count: 1)
            t.deallocate()
    }

    @inlinable @inline(__always)
    static func current() -> UnsafeMutablePointer<ThreadState> {
        if let raw = clockdep_thread_state() { return raw.assumingMemoryBound(to: ThreadState.self) }
        return slowCurrent()
    }

    @usableFromInline @inline(never)
    static func slowCurrent() -> UnsafeMutablePointer<ThreadState> {
        let k = threadStateKeyPlusOne.load(ordering: .acquiring)
        if k != 0, let raw = pthread_getspecific(k &- 1) {
            return raw.assumingMemoryBound(to: ThreadState.self)
        }
        return create()
    }

    /// The state of the current thread if it already exists (never creates one).
    static func existing() -> UnsafeMutablePointer<ThreadState>? {
        let k = threadStateKeyPlusOne.load(ordering: .acquiring)
        guard k != 0 else { return nil }
        return pthread_getspecific(k - 1)?.assumingMemoryBound(to: ThreadState.self)
    }

    @inline(never)
    static func create() -> UnsafeMutablePointer<ThreadState> {
        let (serial, defaultName) = Engine.registerThread()
        let name = Backtrace.threadName() ?? defaultName
        Engine.setThreadName(serial: serial, name: name)
        let cache = UnsafeMutablePointer<UInt64>.allocate(capacity: cacheSize)
        cache.initialize(repeating: 0, count: cacheSize)
        let pending = UnsafeMutablePointer<clockdep_pending_acquire>.allocate(capacity: 1)
        pending.initialize(to: clockdep_pending_acquire(instance: nil, node: 0))
        graph.withLock { $0.pendingCells[serial] = PendingCell(thread: pthread_self(), cell: pending) }
        let t = UnsafeMutablePointer<ThreadState>.allocate(capacity: 1)
        t.initialize(to: ThreadState(
            held: .allocate(capacity: 16), capacity: 16, cache: cache,
            maxDepth: Engine.currentLimits().maxDepth, serial: serial, name: name, pending: pending))
        t.pointee.taskSlot = UnsafePointer(clockdep_task_slot_for_current_thread())
            .map { UnsafeRawPointer($0).assumingMemoryBound(to: UnsafeMutableRawPointer?.self) }
        t.pointee.updateFastGate()
        pthread_setspecific(ensureKey(), t)
        clockdep_set_thread_state(t)
        return t
    }
}
