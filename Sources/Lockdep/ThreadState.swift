internal import Glibc

/// One entry of a thread's held-lock stack.
struct HeldLock {
    var instance: UnsafeRawPointer
    var chainKey: UInt64
    var acquiredAt: UInt64
    var nest: UnsafeRawPointer?
    var node: UInt32
    var mode: UInt8
    var flags: UInt8
    var irqState: UInt8
    var pins: UInt8
    var site: LockdepSite
}

/// Per-thread validator state, in manually managed memory reached through `pthread_getspecific`
/// (no exclusivity checks, no reference counting on the hot path).
struct ThreadState {
    var held: UnsafeMutablePointer<HeldLock>
    var capacity: Int
    var depth: Int = 0
    /// Open-addressing set of chain keys this thread has seen validated (0 = empty slot).
    var cache: UnsafeMutablePointer<UInt64>
    var seenWord: UInt = .max
    var maxDepth: Int = 48
    var context: UInt8 = 0
    var hardirqOff: Int32 = 0
    var softirqOff: Int32 = 0
    var atomicDepth: Int32 = 0
    var recursion: Int32 = 0
    var serial: UInt
    var name: String

    static let cacheSize = 1024
    static let cacheMask = cacheSize - 1

    /// Bits 0-1: context; bit 2: hardirqs disabled; bit 3: softirqs disabled.
    @inline(__always)
    var irqState: UInt8 {
        var s = context
        if hardirqOff > 0 || context == LockdepContext.hardirq.rawValue { s |= 4 }
        if softirqOff > 0 || context != LockdepContext.process.rawValue { s |= 8 }
        return s
    }

    /// Whether sleeping is invalid here (atomic section, interrupt context, irqs disabled).
    @inline(__always)
    var isAtomic: Bool {
        context != 0 || atomicDepth != 0 || hardirqOff != 0 || softirqOff != 0
    }

    @inline(__always)
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

    func cacheInsert(_ key: UInt64) {
        let home = Int(truncatingIfNeeded: key) & ThreadState.cacheMask
        var i = home
        for _ in 0..<8 {
            if cache[i] == 0 || cache[i] == key { cache[i] = key; return }
            i = (i &+ 1) & ThreadState.cacheMask
        }
        cache[home] = key
    }

    mutating func refresh(_ word: UInt) {
        if (word >> 2) != (seenWord >> 2) {
            cache.update(repeating: 0, count: ThreadState.cacheSize)
            maxDepth = Engine.currentLimits().maxDepth
        }
        seenWord = word
    }

    mutating func grow() {
        let newCapacity = capacity * 2
        let newHeld = UnsafeMutablePointer<HeldLock>.allocate(capacity: newCapacity)
        newHeld.moveInitialize(from: held, count: depth)
        held.deallocate()
        held = newHeld
        capacity = newCapacity
    }

    // MARK: thread-local access

    static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in
            guard let raw else { return }
            let t = raw.assumingMemoryBound(to: ThreadState.self)
            t.pointee.held.deinitialize(count: t.pointee.depth)
            t.pointee.held.deallocate()
            t.pointee.cache.deallocate()
            t.deinitialize(count: 1)
            t.deallocate()
        }
        return key
    }()

    @inline(__always)
    static func current() -> UnsafeMutablePointer<ThreadState> {
        if let raw = pthread_getspecific(key) {
            return raw.assumingMemoryBound(to: ThreadState.self)
        }
        return create()
    }

    /// The state of the current thread if it already exists (never creates one).
    static func existing() -> UnsafeMutablePointer<ThreadState>? {
        pthread_getspecific(key)?.assumingMemoryBound(to: ThreadState.self)
    }

    @inline(never)
    static func create() -> UnsafeMutablePointer<ThreadState> {
        let (serial, defaultName) = Engine.registerThread()
        let name = Backtrace.threadName() ?? defaultName
        Engine.setThreadName(serial: serial, name: name)
        let cache = UnsafeMutablePointer<UInt64>.allocate(capacity: cacheSize)
        cache.initialize(repeating: 0, count: cacheSize)
        let t = UnsafeMutablePointer<ThreadState>.allocate(capacity: 1)
        t.initialize(to: ThreadState(
            held: .allocate(capacity: 16), capacity: 16, cache: cache,
            maxDepth: Engine.currentLimits().maxDepth, serial: serial, name: name))
        pthread_setspecific(key, t)
        return t
    }
}
