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
    /// (``Lockdep/acquire(_:mode:options:fileID:line:function:ifEmpty:)``); off the fast path, they are
    /// checked against the cell's (a constant `nil` folds the check away). On the fast path
    /// they need no check: the flags are part of the chain key, and a key with flags other
    /// than the map's is never cached (the full path validates the map's own flags).
    @inlinable @inline(__always)
    static func fastAcquire(classID: UInt32, subclass: UInt8, instance: UnsafeRawPointer, mode: LockdepMode,
                            flags: UInt8, site: LockdepSite, thread: UnsafeMutablePointer<ThreadState>?,
                            mapCell: UnsafeMutablePointer<clockdep_map_cell>? = nil) -> UInt {
        if let t = thread, fastPush(classID: classID, subclass: subclass, instance: instance, mode: mode, flags: flags,
                                    site: site, t) {
            return t.pointee.ownerToken
        }
        if let mapCell {
            return acquireCheckingMapOptions(mapCell, classID: classID, instance: instance, mode: mode, flags: flags,
                                             site: site)
        }
        return acquire(classID: classID, subclass: subclass, instance: instance, mode: mode, flags: flags, nest: nil, site: site)
    }

    /// The acquire of a chain this thread has validated before, when the fast path may run:
    /// pushes the entry and returns `true`; otherwise changes nothing and returns `false` (the
    /// caller takes the full ``acquire(classID:subclass:instance:mode:flags:nest:site:)``).
    ///
    /// What the full path would check and this one does not, and why it need not:
    /// - the dependencies, usage bits, recursion and wait context of the new chain: the chain
    ///   key hashes every held entry's class, subclass, mode, flags and context plus the new
    ///   one's, and a key is cached only once the full path validated that chain;
    /// - the nest lock: a nested acquire never takes the fast path;
    /// - the depth limit and capacity: `limit`;
    /// - validation off, statistics on, a report being delivered, a reset: `fastWord`;
    /// - sleeping in an atomic section or with interrupts off: `atomicWord`, for sleeping
    ///   acquires (the one check that depends on state outside the chain's keys: irq state of
    ///   the new entry is in its key, but the held atomic count is checked here explicitly).
    ///
    /// `checksChain: false` pushes without looking the chain up (the kernel's `check=0` for
    /// `rcu_lock_map`), for a caller that proves the new chain's validation could add nothing
    /// a later check reads (``Lockdep/acquire(_:mode:options:fileID:line:function:ifEmpty:)``:
    /// a recursive read of an RCU map). Its key is deferred (stored as 0): most sections take
    /// no lock, and the chains of the locks taken above the entry compute it when they first
    /// need it (``chainKey(_:below:)``).
    ///
    /// `elementWithoutIrq`: the new entry's chain-key element less its irq state, precomputed
    /// from `classID`, `subclass`, `mode` and `flags` (a map cell's read element), which are
    /// then not read.
    ///
    /// `outermostKey` and `outermostValidatedWord`: a sleeping lock's key with no lock held
    /// (its element mixed onto the chain seed) and the state word under which some thread
    /// validated that chain (``LockCell/outermostValidatedWord``). With the stack empty and
    /// that word current, the key is taken as it is and no cache is looked up: the chain is
    /// the graph's, and the word changes with every reset and change of limits.
    @inlinable @inline(__always)
    static func fastPush(classID: UInt32, subclass: UInt8, instance: UnsafeRawPointer, mode: LockdepMode,
                         flags: UInt8, site: LockdepSite, _ t: UnsafeMutablePointer<ThreadState>,
                         checksChain: Bool = true, elementWithoutIrq: UInt64? = nil,
                         outermostKey: UInt64? = nil, outermostValidatedWord: UInt? = nil) -> Bool {
        let top = t.pointee.top
        // `fastWord` folds "validation on, statistics off, no report in delivery, caches
        // current, limits current" into one compare; `limit` the depth limit and the
        // capacity. A push that checks no chain still tests it: a changed word is how a
        // thread learns new limits, and statistics time every hold.
        let irq: UInt8
        if flags & AcquireFlag.sleeping != 0 {
            // `atomicWord` zero: no atomic entry held, no interrupt context, no interrupts
            // disabled. Tested with the state word as one value.
            let gate = (fastWord() ^ t.pointee.fastWord) | UInt(truncatingIfNeeded: t.pointee.atomicWord)
            guard gate == 0 && top < t.pointee.limit else { return false }
            irq = 0
        } else {
            guard fastWord() == t.pointee.fastWord && top < t.pointee.limit else { return false }
            irq = ThreadState.irqCached(at: t)
        }
        let info = elementWithoutIrq.map { $0 | UInt64(irq) << 40 }
            ?? element(node: classID << 3 | UInt32(subclass & 7), mode: mode.rawValue, irq: irq, flags: flags, nested: false)
        let key: UInt64
        if checksChain {
            if let outermostKey, top == t.pointee.held, outermostValidatedWord == t.pointee.fastWord {
                key = outermostKey
            } else {
                // The sentinel below the stack holds the chain seed: no depth test.
                let below = (top - 1).pointee.chainKey
                key = mix(_fastPath(below != 0) ? below : chainKey(t, below: t.pointee.depth), info)
                // The chain's home slot first (one compare, the kernel's lookup_chain_cache);
                // the probe sequence only when another chain sits there.
                let home = t.pointee.cache[Int(truncatingIfNeeded: key) & ThreadState.cacheMask]
                guard home == key || (home != 0 && ThreadState.cacheProbe(t, key)) else { return false }
            }
        } else {
            key = 0
        }
        // Field by field: the entry's acquire time and nest lock are not written (no extra flag).
        top.pointee.instance = instance
        top.pointee.chainKey = key
        top.pointee.info = info
        top.pointee.site = site
        t.pointee.top = top + 1
        if flags & AcquireFlag.atomic != 0 { ThreadState.addAtomicDepth(1, at: t) }
        return true
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
                simpleReport(t, kind: .assertionFailed, title: "WARNING: map acquired with options it was not created with",
                             node: node, mode: mode.rawValue, lockSite: site, site: site) { lock in
                    "acquires map \(lock) at:\n  \(site)\npassing options \(optionNames(flags)), "
                        + "but the map was created with \(optionNames(own)): the map's own options are used.\n"
                }
            }
        }
        return acquire(classID: classID, subclass: 0, instance: instance, mode: mode, flags: own, nest: nil, site: site)
    }

    /// The full acquire of the map published in `cell` by a caller that passed its options
    /// (``Lockdep/acquire(_:mode:options:fileID:line:function:ifEmpty:)`` off its fast path).
    @usableFromInline @inline(never)
    static func acquireMapCell(_ cell: UnsafeMutablePointer<clockdep_map_cell>, mode: LockdepMode, flags: UInt8,
                               site: LockdepSite) {
        // The flags first: their acquire load is what makes the instance and class visible.
        guard clockdep_map_cell_flags(cell) != 0, let instance = clockdep_map_cell_instance(cell) else {
            preconditionFailure("Lockdep.acquire(_:mode:options:) of an empty LockdepMapCell, at \(site)")
        }
        _ = acquireCheckingMapOptions(cell, classID: clockdep_map_cell_class(cell), instance: instance, mode: mode,
                                      flags: flags, site: site)
    }

    /// The full release of the map published in `cell`
    /// (``Lockdep/release(_:options:fileID:line:function:)`` off its fast path).
    @usableFromInline @inline(never)
    static func releaseMapCell(_ cell: UnsafeMutablePointer<clockdep_map_cell>, site: LockdepSite) {
        let instance = clockdep_map_cell_instance(cell).unsafelyUnwrapped
        _ = release(classID: clockdep_map_cell_class(cell), instance: instance, ownerWord: 0, site: site)
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

    /// The release of the innermost held lock, `instance`: pops it and returns `true` when
    /// the full release would do nothing more; otherwise changes nothing and returns `false`
    /// (the caller takes the full ``release(classID:instance:ownerWord:site:)``).
    ///
    /// No state-word test: with validation off, statistics on or a report in delivery, the
    /// full release pops the innermost entry just so; what it does beyond that (a pinned
    /// lock's report, the hold time of an entry timed for statistics, a nest lock) is marked
    /// in the entry's pin count and flags byte, which must be zero and `knownFlags`. An empty
    /// stack leaves the sentinel on top, whose instance is no lock's.
    ///
    /// `knownFlags`: the acquire flags the caller knows the entry has (a lock type whose acquires
    /// all carry the same flags); the entry must then carry exactly those, and the branches on
    /// them fold away.
    ///
    /// `alsoZero`: a value the caller's own test needs to be zero (a lock's owner test), tested
    /// with the entry's when `knownFlags` is given: one branch for all of them.
    @inlinable @inline(__always)
    static func fastPop(instance: UnsafeRawPointer, _ t: UnsafeMutablePointer<ThreadState>,
                        knownFlags: UInt8? = nil, alsoZero: UInt = 0) -> Bool {
        let top = t.pointee.top - 1
        let flagsAndPins = HeldLock.flagsAndPins(at: top)
        let flags: UInt8
        if let knownFlags {
            let mismatch = (UInt(bitPattern: top.pointee.instance) ^ UInt(bitPattern: instance))
                | UInt(flagsAndPins ^ UInt16(knownFlags)) | alsoZero
            guard mismatch == 0 else { return false }
            flags = knownFlags
        } else {
            guard alsoZero == 0 && top.pointee.instance == instance else { return false }
            guard flagsAndPins & ~0x7F == 0 else { return false }
            flags = UInt8(truncatingIfNeeded: flagsAndPins)
        }
        if flags & AcquireFlag.atomic != 0 { ThreadState.addAtomicDepth(-1, at: t) }
        t.pointee.top = top
        return true
    }
}
