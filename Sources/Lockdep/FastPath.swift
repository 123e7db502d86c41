public import CLockdepThread

/// The checked hot paths, inlined into the caller: an acquire whose chain was validated before
/// and a release of the innermost lock touch only the calling thread's state. Anything unusual
/// (a new chain, statistics, validation off, misuse, an out-of-order release, a pinned lock)
/// falls through to the full out-of-line ``Engine/acquire(classID:subclass:instance:mode:flags:nest:site:)``
/// and ``Engine/release(classID:instance:ownerWord:site:)``.
extension Engine {
    /// The calling thread's state, if it has one yet (a C thread-local: one load). A `withLock`-style call looks
    /// it up once for both the acquire and the release.
    @inlinable @inline(__always)
    static func fastThread() -> UnsafeMutablePointer<ThreadState>? {
        clockdep_thread_state()?.assumingMemoryBound(to: ThreadState.self)
    }

    /// The state word (a C global: one load).
    @inlinable @inline(__always)
    static func fastWord() -> UInt { clockdep_state_word_load() }

    /// Same contract as `acquire` (returns `serial << 1 | measure`).
    @inlinable @inline(__always)
    static func fastAcquire(classID: UInt32, subclass: UInt8, instance: UnsafeRawPointer, mode: LockdepMode,
                            flags: UInt8, site: LockdepSite) -> UInt {
        fastAcquire(classID: classID, subclass: subclass, instance: instance, mode: mode, flags: flags, site: site,
                    thread: fastThread())
    }

    /// `fastAcquire` with the thread state already looked up.
    @inlinable @inline(__always)
    static func fastAcquire(classID: UInt32, subclass: UInt8, instance: UnsafeRawPointer, mode: LockdepMode,
                            flags: UInt8, site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?) -> UInt {
        if let t = thread {
            let word = fastWord()
            let depth = t.pointee.depth
            if word == t.pointee.seenWord && word & 3 == 0 && t.pointee.recursion == 0
                && depth < t.pointee.maxDepth && depth < t.pointee.capacity
                && (flags & AcquireFlag.sleeping == 0 || !t.pointee.isAtomic) {
                let node = classID << 3 | UInt32(subclass & 7)
                let irq = t.pointee.irqState
                let prevKey = depth > 0 ? t.pointee.held[depth - 1].chainKey : chainSeed
                let key = mix(prevKey, element(node: node, mode: mode.rawValue, irq: irq, flags: flags, nested: false))
                if t.pointee.cacheContains(key) {
                    (t.pointee.held + depth).initialize(to: HeldLock(
                        instance: instance, chainKey: key, acquiredAt: 0, nest: nil, node: node, mode: mode.rawValue,
                        flags: flags, irqState: irq, pins: 0, site: site))
                    t.pointee.depth = depth &+ 1
                    if flags & AcquireFlag.atomic != 0 { t.pointee.atomicDepth &+= 1 }
                    if flags & (AcquireFlag.sleeping | AcquireFlag.map) == AcquireFlag.sleeping {
                        clockdep_pending_set(t.pointee.pending, instance, node)
                    }
                    return t.pointee.serial &<< 1
                }
            }
        }
        return acquire(classID: classID, subclass: subclass, instance: instance, mode: mode, flags: flags, nest: nil, site: site)
    }

    /// Same contract as `release`.
    @inlinable @inline(__always)
    static func fastRelease(classID: UInt32, instance: UnsafeRawPointer, ownerWord: UInt, site: LockdepSite) -> Bool {
        fastRelease(classID: classID, instance: instance, ownerWord: ownerWord, site: site, thread: fastThread())
    }

    /// `fastRelease` with the thread state already looked up.
    @inlinable @inline(__always)
    static func fastRelease(classID: UInt32, instance: UnsafeRawPointer, ownerWord: UInt, site: LockdepSite,
                            thread: UnsafeMutablePointer<ThreadState>?) -> Bool {
        if let t = thread {
            let word = fastWord()
            let depth = t.pointee.depth
            if depth > 0 && word == t.pointee.seenWord && word & 3 == 0 {
                let top = t.pointee.held + (depth &- 1)
                if top.pointee.instance == instance && top.pointee.pins == 0 {
                    let flags = top.pointee.flags
                    if flags & AcquireFlag.atomic != 0 { t.pointee.atomicDepth &-= 1 }
                    // Only sleeping acquires set the cell: a pseudo-lock (an RCU section) skips it.
                    if flags & AcquireFlag.sleeping != 0 { clockdep_pending_clear(t.pointee.pending, instance) }
                    t.pointee.depth = depth &- 1
                    return true
                }
            }
        }
        return release(classID: classID, instance: instance, ownerWord: ownerWord, site: site)
    }
}
