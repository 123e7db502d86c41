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
    ///
    /// `mapCell`: the cell of a map whose flags the caller passed as constants
    /// (``Lockdep/acquire(_:mode:options:fileID:line:function:)``); off the fast path, they are
    /// checked against the cell's (a constant `nil` folds the check away).
    @inlinable @inline(__always)
    static func fastAcquire(classID: UInt32, subclass: UInt8, instance: UnsafeRawPointer, mode: LockdepMode,
                            flags: UInt8, site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?,
                            mapCell: UnsafeMutablePointer<clockdep_map_cell>? = nil) -> UInt {
        if let t = thread {
            let depth = t.pointee.depth
            // `fastWord` folds "validation on, statistics off, no report in delivery, caches
            // current" into one compare; `fastDepthLimit` the depth limit and the capacity.
            if fastWord() == t.pointee.fastWord && depth < t.pointee.fastDepthLimit
                && (flags & AcquireFlag.sleeping == 0 || !t.pointee.isAtomic) {
                let node = classID << 3 | UInt32(subclass & 7)
                let irq = t.pointee.irqState
                let prevKey = depth > 0 ? t.pointee.held[depth &- 1].chainKey : chainSeed
                let key = mix(prevKey, element(node: node, mode: mode.rawValue, irq: irq, flags: flags, nested: false))
                // The chain's home slot first (one compare, the kernel's lookup_chain_cache);
                // the probe sequence only when another chain sits there.
                let home = t.pointee.cache[Int(truncatingIfNeeded: key) & ThreadState.cacheMask]
                if home == key || (home != 0 && ThreadState.cacheProbe(t, key)) {
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
        if let mapCell {
            return acquireCheckingMapOptions(mapCell, classID: classID, instance: instance, mode: mode, flags: flags,
                                             site: site)
        }
        return acquire(classID: classID, subclass: subclass, instance: instance, mode: mode, flags: flags, nest: nil, site: site)
    }

    /// The slow acquire of a map whose caller passed its options: options other than the ones
    /// the map was created with would silently change the checks (an atomic map passed
    /// without `.atomic` no longer catches sleeping inside), so a mismatch is reported and the
    /// map's own flags are used.
    @usableFromInline @inline(never)
    static func acquireCheckingMapOptions(_ cell: UnsafeMutablePointer<clockdep_map_cell>, classID: UInt32,
                                          instance: UnsafeRawPointer, mode: LockdepMode, flags: UInt8,
                                          site: LockdepSite) -> UInt {
        let own = clockdep_map_cell_flags(cell)
        if flags != own && validating {
            let t = ThreadState.current()
            if t.pointee.recursion == 0 {
                let node = classID << 3
                let body = "acquires map %LOCK% at:\n  \(site)\npassing options \(optionNames(flags)), "
                    + "but the map was created with \(optionNames(own)): "
                    + "the map's own options are used.\n"
                simpleReport(t, kind: .assertionFailed, title: "WARNING: map acquired with options it was not created with",
                             node: node, mode: mode.rawValue, lockSite: site, site: site, body: body)
            }
        }
        return acquire(classID: classID, subclass: 0, instance: instance, mode: mode, flags: own, nest: nil, site: site)
    }

    /// A map's options as written in code: `[.atomic, .rcu]`.
    static func optionNames(_ flags: UInt8) -> String {
        let names: [(UInt8, String)] = [(AcquireFlag.atomic, ".atomic"), (AcquireFlag.rcu, ".rcu"),
                                        (AcquireFlag.completion, ".completion"), (AcquireFlag.rawSpinning, ".rawSpinning")]
        return "[" + names.filter { flags & $0.0 != 0 }.map(\.1).joined(separator: ", ") + "]"
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
        if let t = thread, fastPop(instance: instance, t) { return true }
        return release(classID: classID, instance: instance, ownerWord: ownerWord, site: site)
    }

    /// The release of the innermost held lock, `instance`, when the fast path may run: pops it and
    /// returns `true`; otherwise changes nothing and returns `false` (the caller takes the full
    /// ``release(classID:instance:ownerWord:site:)``).
    ///
    /// `knownFlags`: the acquire flags the caller knows the entry has (a lock type whose acquires
    /// all carry the same flags); the entry must then carry exactly those, and the branches on
    /// them fold away.
    @inlinable @inline(__always)
    static func fastPop(instance: UnsafeRawPointer, _ t: UnsafeMutablePointer<ThreadState>,
                        knownFlags: UInt8? = nil) -> Bool {
        let depth = t.pointee.depth
        guard depth > 0 && fastWord() == t.pointee.fastWord else { return false }
        let top = t.pointee.held + (depth &- 1)
        guard top.pointee.instance == instance && top.pointee.pins == 0 else { return false }
        let flags: UInt8
        if let knownFlags {
            guard top.pointee.flags == knownFlags else { return false }
            flags = knownFlags
        } else {
            flags = top.pointee.flags
        }
        if flags & AcquireFlag.atomic != 0 { t.pointee.atomicDepth &-= 1 }
        // Only sleeping acquires set the cell: a pseudo-lock (an RCU section) skips it.
        if flags & AcquireFlag.sleeping != 0 { clockdep_pending_clear(t.pointee.pending, instance) }
        t.pointee.depth = depth &- 1
        return true
    }
}
