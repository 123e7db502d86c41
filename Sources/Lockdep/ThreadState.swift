public import CLockdepThread
import Glibc
import Synchronization

/// The pthread key of the per-thread state, plus one (0 = not created yet). An atomic with a
/// constant initialiser, so reading it costs a plain load (no lazy-global `swift_once`).
let threadStateKeyPlusOne = Atomic<UInt32>(0)

/// One entry of a thread's held-lock stack (64 bytes).
///
/// The inlined fast path writes four of its words (instance, chain key, ``info``, and the
/// three-word site): the class, mode, flags, context and pin count share ``info``, and the
/// two fields only the full path fills (the acquire time for lock statistics, the nest lock)
/// are read only when ``HeldLock/extraFlag`` is set in the flags byte, so a fast push never
/// clears them. An entry with that flag (or pinned) is released by the full path.
@usableFromInline
struct HeldLock {
    @usableFromInline var instance: UnsafeRawPointer
    /// The chain's key up to and including this entry, or 0 (no key is 0) while it is
    /// deferred: a push that checks no chain (an RCU read section's) leaves it to whoever
    /// first needs it, ``Engine/chainKey(_:below:)``.
    @usableFromInline var chainKey: UInt64
    /// `node | mode << 32 | irqState << 40 | flags << 48 | pins << 56`: the flags and pin
    /// count in the top 16 bits, which a release compares with one instruction.
    @usableFromInline var info: UInt64
    @usableFromInline var site: LockdepSite
    /// Valid only with ``extraFlag`` set.
    @usableFromInline var extraAcquiredAt: UInt64
    /// Valid only with ``extraFlag`` set.
    @usableFromInline var extraNest: UnsafeRawPointer?

    /// Set in the stored flags byte when ``acquiredAt`` or ``nest`` is set (never part of the
    /// acquire's flags, nor of its chain key).
    @inlinable static var extraFlag: UInt8 { 0x80 }

    @inlinable @inline(__always)
    static func info(node: UInt32, mode: UInt8, irqState: UInt8, flags: UInt8) -> UInt64 {
        UInt64(node) | UInt64(mode) << 32 | UInt64(irqState) << 40 | UInt64(flags) << 48
    }

    @usableFromInline
    init(instance: UnsafeRawPointer, chainKey: UInt64, acquiredAt: UInt64, nest: UnsafeRawPointer?, node: UInt32,
         mode: UInt8, flags: UInt8, irqState: UInt8, pins: UInt8, site: LockdepSite) {
        let extra = acquiredAt != 0 || nest != nil
        self.instance = instance; self.chainKey = chainKey
        self.info = HeldLock.info(node: node, mode: mode, irqState: irqState, flags: flags | (extra ? HeldLock.extraFlag : 0))
            | UInt64(pins) << 56
        self.site = site; self.extraAcquiredAt = acquiredAt; self.extraNest = nest
    }

    @inlinable var node: UInt32 { UInt32(truncatingIfNeeded: info) }
    @inlinable var mode: UInt8 { UInt8(truncatingIfNeeded: info >> 32) }
    @inlinable var irqState: UInt8 { UInt8(truncatingIfNeeded: info >> 40) }
    /// The acquire's flags (``AcquireFlag``), without ``extraFlag``.
    @inlinable var flags: UInt8 { UInt8(truncatingIfNeeded: info >> 48) & ~HeldLock.extraFlag }
    /// The flags byte as stored, with ``extraFlag``.
    @inlinable var storedFlags: UInt8 { UInt8(truncatingIfNeeded: info >> 48) }
    /// The flags byte and the pin count (`flags | pins << 8`): what a fast release compares.
    @inlinable var flagsAndPins: UInt16 { UInt16(truncatingIfNeeded: info >> 48) }
    /// ``flagsAndPins`` of the entry at `entry`, loaded as the 16-bit word it is: a fast release
    /// compares it with one instruction, where the shifted field cost a load, two constants, a
    /// mask and a compare. (`info` is the third word, checked by ``allocateStack(capacity:)``;
    /// its top two bytes on a little-endian machine.)
    @inlinable @inline(__always)
    static func flagsAndPins(at entry: UnsafePointer<HeldLock>) -> UInt16 {
        UnsafeRawPointer(entry).load(fromByteOffset: 22, as: UInt16.self)
    }

    @inlinable var pins: UInt8 {
        get { UInt8(truncatingIfNeeded: info >> 56) }
        set { info = info & 0x00FF_FFFF_FFFF_FFFF | UInt64(newValue) << 56 }
    }
    var acquiredAt: UInt64 { storedFlags & HeldLock.extraFlag != 0 ? extraAcquiredAt : 0 }
    var nest: UnsafeRawPointer? { storedFlags & HeldLock.extraFlag != 0 ? extraNest : nil }
}

/// What ``ThreadState/exitContext(_:at:)`` restores: the irq-state and context bits of the
/// atomic word at the entry.
@usableFromInline
struct SavedContext {
    /// The atomic word's bits 32-47: irq state, then context.
    @usableFromInline let bits: UInt16

    @inlinable @inline(__always)
    init(bits: UInt16) {
        self.bits = bits
    }
}

/// Per-thread validator state, in manually managed memory reached through `pthread_getspecific`
/// (no exclusivity checks, no reference counting on the hot path).
///
/// The fields the inlined fast paths read come first (one or two cache lines).
@usableFromInline
struct ThreadState {
    /// The next free entry of the held-lock stack: `held + depth`. The entry below the stack,
    /// `held[-1]`, is a sentinel whose chain key is the chain seed and whose instance is no
    /// lock's, so a push reads the previous chain key and a release compares the top entry
    /// without testing the depth first.
    @usableFromInline var top: UnsafeMutablePointer<HeldLock>
    /// `held + min(maxDepth, capacity)`: a push at or above it takes the full path.
    @usableFromInline var limit: UnsafeMutablePointer<HeldLock>
    /// The state word when the inlined fast paths may run on this thread (validation on,
    /// statistics off, no report being delivered, caches current), else `.max` (which no
    /// state word with bits 0-1 clear equals): one compare instead of four.
    @usableFromInline var fastWord: UInt = .max
    /// `serial << 1 | 1`: the owner word of this thread's exclusive holds.
    @usableFromInline var ownerToken: UInt
    /// Open-addressing set of chain keys this thread has seen validated (0 = empty slot).
    @usableFromInline var cache: UnsafeMutablePointer<UInt64>
    /// The held atomic entries (bits 0-31), ``irqState`` (bits 32-39) and ``context``
    /// (bits 40-47): zero exactly when sleeping is valid here, one compare on a sleeping
    /// lock's fast path; a context's entry and exit save and restore bits 32-47 at once.
    @usableFromInline var atomicWord: UInt64 = 0
    /// This thread's slot of the Swift runtime's current task, or a slot that never holds
    /// `nil` when it cannot be found (`clockdep_task_slot_for_current_thread`): either way,
    /// `nil` in it means "no task here".
    @usableFromInline var taskSlot: UnsafePointer<UnsafeMutableRawPointer?>
    /// Whether ``taskSlot`` is the runtime's slot (not the marker slot of a thread whose slot
    /// was not found).
    var isTaskSlotKnown: Bool { clockdep_task_slot_known(taskSlot) != 0 }
    /// ``hardirqOff`` (bits 0-31) and ``softirqOff`` (bits 32-63): zero when no interrupts
    /// are disabled.
    @usableFromInline var disableCounts: UInt64 = 0
    /// Whether the disable counts ever changed other than in balanced scopes (an unscoped
    /// disable or enable, a work item's leaked disables, a reset). Until then a context's body
    /// leaves them as it found them, and its exit puts back the bits its entry saved; after,
    /// every exit recomputes them (``exitContextRecomputing(_:)``).
    @usableFromInline var countsChangedUnscoped = false
    /// ``atomicWord``'s bits 32-47 in a hardirq context: its irq state there does not depend on
    /// the disable counts (hardirqs and softirqs count as off whatever they are), only on
    /// whether the context is threaded (``hardirqNotThreaded``), so an entry ORs in this word
    /// instead of computing the state.
    @usableFromInline var hardirqEntryBits: UInt64 = ThreadState.hardirqEntryBits(notThreaded: false)
    @usableFromInline var held: UnsafeMutablePointer<HeldLock>
    @usableFromInline var capacity: Int
    @usableFromInline var seenWord: UInt = .max
    @usableFromInline var maxDepth: Int = 48
    @usableFromInline var recursion: Int32 = 0
    /// Acquires made while validation was off, not yet matched by a release Lockdep could not
    /// find: such a release, once validation is back on, is the end of one of them, not a
    /// "bad unlock balance".
    var untrackedHolds = 0
    /// Whether this state let one round of thread-exit destructors pass while it still held
    /// locks (another key's destructor, run after Lockdep's, may release them on this thread).
    var exitDeferred = false
    @usableFromInline var serial: UInt
    var name: String
    /// Where this thread publishes the checked lock it is blocked on (for
    /// ``Lockdep/pendingAcquire(of:)``); its own allocation, listed in ``GraphState/pendingCells``.
    @usableFromInline var pending: UnsafeMutablePointer<clockdep_pending_acquire>

    init(capacity: Int, cache: UnsafeMutablePointer<UInt64>, maxDepth: Int, serial: UInt, name: String,
         pending: UnsafeMutablePointer<clockdep_pending_acquire>) {
        let held = ThreadState.allocateStack(capacity: capacity)
        self.held = held; self.top = held; self.limit = held
        self.capacity = capacity; self.cache = cache; self.maxDepth = maxDepth
        self.serial = serial; self.ownerToken = serial << 1 | 1; self.name = name; self.pending = pending
        self.taskSlot = UnsafeRawPointer(clockdep_task_slot_for_current_thread())
            .assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    /// A stack of `capacity` entries after its sentinel, all initialized (a push assigns an
    /// entry's fields one by one); returns the first entry.
    static func allocateStack(capacity: Int) -> UnsafeMutablePointer<HeldLock> {
        precondition(MemoryLayout<HeldLock>.offset(of: \HeldLock.info) == 16 && UInt16(littleEndian: 1) == 1,
                     "HeldLock.flagsAndPins(at:) reads bytes 22-23 of an entry as the info word's top 16 bits")
        let base = UnsafeMutablePointer<HeldLock>.allocate(capacity: capacity + 1)
        let blank = HeldLock(instance: UnsafeRawPointer(base), chainKey: Engine.chainSeed, acquiredAt: 0, nest: nil,
                             node: 0, mode: 0, flags: 0, irqState: 0, pins: 0, site: LockdepSite())
        base.initialize(repeating: blank, count: capacity + 1)
        return base + 1
    }

    /// Frees a stack from ``allocateStack(capacity:)``.
    static func deallocateStack(_ held: UnsafeMutablePointer<HeldLock>, capacity: Int) {
        (held - 1).deinitialize(count: capacity + 1)
        (held - 1).deallocate()
    }

    /// The number of held locks.
    @inlinable var depth: Int {
        get { held.distance(to: top) }
        set { top = held + newValue }
    }

    /// Held atomic entries (spinlocks, atomic maps): mirrors their count in the stack.
    @inlinable var atomicDepth: Int32 {
        get { Int32(truncatingIfNeeded: atomicWord) }
        set { atomicWord = atomicWord & ~0xFFFF_FFFF | UInt64(UInt32(bitPattern: newValue)) }
    }

    /// ``irqState``, cached: recomputed by ``updateIrq()`` whenever the context or the
    /// interrupt-disable counts change.
    @inlinable var irqCached: UInt8 {
        get { UInt8(truncatingIfNeeded: atomicWord >> 32) }
        set { atomicWord = atomicWord & ~(0xFF << 32) | UInt64(newValue) << 32 }
    }

    /// ``irqCached`` of the state at `t`, loaded as the byte it is: the inlined fast path
    /// shifts it into the chain-key element, where the field read from the whole word cost a
    /// shift, a constant and a mask.
    @inlinable @inline(__always)
    static func irqCached(at t: UnsafeMutablePointer<ThreadState>) -> UInt8 {
        UnsafeRawPointer(t).load(fromByteOffset: MemoryLayout<ThreadState>.offset(of: \.atomicWord)! + 4, as: UInt8.self)
    }

    /// The ``LockdepContext`` raw value the thread runs in.
    @inlinable var context: UInt8 {
        get { UInt8(truncatingIfNeeded: atomicWord >> 40) }
        set { atomicWord = atomicWord & ~(0xFF << 40) | UInt64(newValue) << 40 }
    }

    /// Whether a hardirq context entered here is not threaded (``Lockdep/withContext(_:threaded:_:)``),
    /// kept as bit 4 of the irq state in ``hardirqEntryBits``.
    @inlinable var hardirqNotThreaded: Bool {
        get { hardirqEntryBits & (16 << 32) != 0 }
        set { hardirqEntryBits = ThreadState.hardirqEntryBits(notThreaded: newValue) }
    }

    /// ``hardirqEntryBits`` for a hardirq context that is threaded or not.
    @inlinable @inline(__always)
    static func hardirqEntryBits(notThreaded: Bool) -> UInt64 {
        let hardirq = UInt64(LockdepContext.hardirq.rawValue)
        return (hardirq | 4 | 8 | (notThreaded ? 16 : 0)) << 32 | hardirq << 40
    }

    /// Nested hardirq disables (``Lockdep/withInterruptsDisabled(_:_:)``).
    @inlinable var hardirqOff: Int32 {
        get { Int32(truncatingIfNeeded: disableCounts) }
        set { disableCounts = disableCounts & ~0xFFFF_FFFF | UInt64(UInt32(bitPattern: newValue)) }
    }

    /// Nested softirq disables.
    @inlinable var softirqOff: Int32 {
        get { Int32(truncatingIfNeeded: disableCounts >> 32) }
        set { disableCounts = disableCounts & 0xFFFF_FFFF | UInt64(UInt32(bitPattern: newValue)) << 32 }
    }

    /// Where the atomic word's bits 32-47 (irq state, context) sit in the state.
    @inlinable static var contextBitsOffset: Int { MemoryLayout<ThreadState>.offset(of: \.atomicWord)! + 4 }

    /// Enters `context` (``Lockdep/withContext(_:_:)``, inlined: an "ISR" enters and leaves its
    /// context on every interrupt); returns what ``exitContext(_:at:)`` restores.
    ///
    /// The irq-state and context bits are loaded and stored as the 16 bits they are, and the
    /// atomic count beside them is changed as its own 32 bits (``addAtomicDepth(_:at:)``), so
    /// neither access waits on the other's store.
    @inlinable @inline(__always)
    static func enterContext(_ context: UInt8, at t: UnsafeMutablePointer<ThreadState>) -> SavedContext {
        let bits = UnsafeMutableRawPointer(t) + contextBitsOffset
        let saved = SavedContext(bits: bits.load(as: UInt16.self))
        bits.storeBytes(of: UInt16(truncatingIfNeeded: t.pointee.contextBits(context) >> 32), as: UInt16.self)
        return saved
    }

    /// Adds `delta` to the held atomic entries' count, the atomic word's low 32 bits.
    @inlinable @inline(__always)
    static func addAtomicDepth(_ delta: Int32, at t: UnsafeMutablePointer<ThreadState>) {
        let count = UnsafeMutableRawPointer(t) + MemoryLayout<ThreadState>.offset(of: \.atomicWord)!
        count.storeBytes(of: count.load(as: Int32.self) &+ delta, as: Int32.self)
    }

    /// ``atomicWord``'s bits 32-47 in `context`: its irq state and the context.
    @inlinable @inline(__always)
    func contextBits(_ context: UInt8) -> UInt64 {
        if context == LockdepContext.hardirq.rawValue { return hardirqEntryBits }
        return UInt64(irqState(in: context)) << 32 | UInt64(context) << 40
    }

    /// Leaves the context entered by ``enterContext(_:at:)``. The irq state is a function of the
    /// context and of the interrupt-disable counts, which balanced scopes leave as they found
    /// them: the saved bits are then exact and are put back as they were. Once the counts have
    /// changed unscoped (``countsChangedUnscoped``), the state is recomputed instead.
    @inlinable @inline(__always)
    static func exitContext(_ saved: SavedContext, at t: UnsafeMutablePointer<ThreadState>) {
        if _fastPath(!t.pointee.countsChangedUnscoped) {
            (UnsafeMutableRawPointer(t) + contextBitsOffset).storeBytes(of: saved.bits, as: UInt16.self)
        } else {
            t.pointee.exitContextRecomputing(saved)
        }
    }

    /// ``exitContext(_:at:)`` once the interrupt-disable counts have changed unscoped.
    @usableFromInline @inline(never)
    mutating func exitContextRecomputing(_ saved: SavedContext) {
        context = UInt8(truncatingIfNeeded: saved.bits >> 8)
        updateIrq()
    }

    @inlinable static var cacheSize: Int { 1024 }
    @inlinable static var cacheMask: Int { 1023 }

    /// Bits 0-1: context; bit 2: hardirqs disabled; bit 3: softirqs disabled; bit 4: a hardirq
    /// context that is not threaded (only raw spinning locks may be taken).
    @inlinable @inline(__always)
    var irqState: UInt8 { irqCached }

    @inlinable @inline(__always)
    mutating func updateIrq() { irqCached = computeIrqState() }

    @inlinable @inline(__always)
    func computeIrqState() -> UInt8 { irqState(in: context) }

    /// The irq state in `context` with this thread's interrupt-disable counts.
    @inlinable @inline(__always)
    func irqState(in context: UInt8) -> UInt8 {
        if context == LockdepContext.hardirq.rawValue { return UInt8(truncatingIfNeeded: hardirqEntryBits >> 32) }
        var s = context
        if hardirqOff > 0 { s |= 4 }
        if context != LockdepContext.process.rawValue || softirqOff > 0 { s |= 8 }
        return s
    }

    /// Whether sleeping is invalid here (atomic section, interrupt context, irqs disabled).
    @inlinable @inline(__always)
    var isAtomic: Bool { atomicWord != 0 }

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

    /// Recomputes ``fastWord`` and ``limit`` after anything they summarise changed.
    mutating func updateFastGate() {
        fastWord = seenWord & 3 == 0 && recursion == 0 ? seenWord : .max
        limit = held + min(maxDepth, capacity)
    }

    @inline(never)
    mutating func grow() {
        let count = depth
        let newCapacity = capacity * 2
        let newHeld = ThreadState.allocateStack(capacity: newCapacity)
        newHeld.update(from: held, count: count)
        ThreadState.deallocateStack(held, capacity: capacity)
        held = newHeld
        top = newHeld + count
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
            // glibc runs the destructors of keys whose values are set again in another round,
            // up to PTHREAD_DESTRUCTOR_ITERATIONS (4): a thread still holding locks keeps its
            // state through the first, so that a later key's destructor can release them as
            // this thread, and is judged in the second. No later: what the report handler does
            // on this thread (an RCU read registers it again) needs rounds of its own, and the
            // sanitizers end their thread state in the fourth (their key is older: it runs first).
            if t.pointee.depth > 0 && !t.pointee.exitDeferred && clockdep_thread_state() == raw {
                t.pointee.exitDeferred = true
                pthread_setspecific(ensureKey(), raw)
                return
            }
            if clockdep_thread_state() == raw {
                // While the thread-local still finds this state: a report handler may take locks.
                Engine.checkNoLocksHeldAtExit(t)
                clockdep_set_thread_state(nil)
            }
            let holdsLocks = t.pointee.depth > 0
            graph.withLock { g in
                _ = g.pendingCells.removeValue(forKey: t.pointee.serial)
                g.forgetExitedThread(t.pointee.serial, holdsLocks: holdsLocks)
            }
            t.pointee.pending.deallocate()
            ThreadState.deallocateStack(t.pointee.held, capacity: t.pointee.capacity)
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
        pending.initialize(to: clockdep_pending_acquire(holder: 0, node_plus_one: 0))
        graph.withLock { $0.pendingCells[serial] = PendingCell(thread: pthread_self(), cell: pending) }
        let t = UnsafeMutablePointer<ThreadState>.allocate(capacity: 1)
        t.initialize(to: ThreadState(capacity: 16, cache: cache, maxDepth: Engine.currentLimits().maxDepth,
                                     serial: serial, name: name, pending: pending))
        t.pointee.updateFastGate()
        pthread_setspecific(ensureKey(), t)
        clockdep_set_thread_state(t)
        return t
    }
}
