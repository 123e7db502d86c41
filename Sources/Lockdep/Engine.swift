internal import Glibc
internal import CLockdepThread
internal import Synchronization

/// The validator's machinery. Hot paths (`acquire`, `release`) touch only the calling thread's
/// state and one relaxed atomic load; everything else happens under `graph`'s lock on a miss.
@usableFromInline
enum Engine {
    @usableFromInline static var chainSeed: UInt64 { 0x6A09_E667_F3BC_C909 }

    /// The chain key after `h` with element `x` added: the two halves of the full 128-bit
    /// product folded together (one multiply and one xor), the low bit set so that no key is
    /// 0, the cache's empty slot.
    ///
    /// Not the 64-bit product alone: a multiply carries a difference only upwards, so two
    /// elements that differ only in a high field (nested, flags, irq state, mode) gave
    /// products differing only in their high bits. Moved into the low bits (a byte swap did
    /// that), the difference was small enough for the next element's class and subclass to
    /// cancel: two different chains, one key, and the second treated as validated. The high
    /// half of the product takes every input bit into its low bits.
    @inlinable @inline(__always)
    static func mix(_ h: UInt64, _ x: UInt64) -> UInt64 {
        let product = (h &+ x).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15)
        return (product.high ^ product.low) | 1
    }

    /// The chain key of the `depth` entries at the bottom of `t`'s stack (the seed for none),
    /// computing the deferred keys among them (``HeldLock/chainKey``) and storing them.
    @usableFromInline @inline(never)
    static func chainKey(_ t: UnsafeMutablePointer<ThreadState>, below depth: Int) -> UInt64 {
        var known = depth
        while known > 0 && t.pointee.held[known - 1].chainKey == 0 { known -= 1 }
        var key = known > 0 ? t.pointee.held[known - 1].chainKey : chainSeed
        for i in known..<depth {
            let e = t.pointee.held[i]
            key = mix(key, element(node: e.node, mode: e.mode, irq: e.irqState, flags: e.flags, nested: e.nest != nil))
            t.pointee.held[i].chainKey = key
        }
        return key
    }

    /// The chain-key element of one acquire: every flag is part of it, so a map acquired with
    /// options other than its own (which the full path reports) never hits a chain that the
    /// map's own options cached. Laid out as a held entry's ``HeldLock/info`` (nesting in
    /// the pin count's place), so the fast path stores the element it hashed as the entry's info.
    @inlinable @inline(__always)
    static func element(node: UInt32, mode: UInt8, irq: UInt8, flags: UInt8, nested: Bool) -> UInt64 {
        let x = HeldLock.info(node: node, mode: mode, irqState: irq, flags: flags & ~HeldLock.extraFlag)
        return nested ? x | 1 << 56 : x
    }

    @inline(never)
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    // MARK: registration

    static func registerClass(name: String, key: String, validates: Bool, dynamic: Bool = false,
                              site: LockdepSite) -> UInt32 {
        registerClassNamed(name: name, key: key, validates: validates, dynamic: dynamic, site: site).id
    }

    /// ``registerClass(name:key:validates:dynamic:site:)``, also returning the class's name as
    /// reports print it: the first registration's, when `key` joins an existing class.
    static func registerClassNamed(name: String, key: String, validates: Bool, dynamic: Bool = false,
                                   site: LockdepSite) -> (id: UInt32, name: String) {
        var report: LockdepReport?
        let (id, registeredName): (UInt32, String) = graph.withLock { g in
            if !dynamic, let id = g.registry[key] { return (id, g.classNames[Int(id)]) }
            let id: UInt32
            if let free = g.freeClassIDs.popLast() {
                // The number may still sit in a thread's chain cache under its old class.
                if g.freedSinceBump { g.bumpGeneration() }
                id = free
                g.classNames[Int(id)] = name
                g.classValidates[Int(id)] = validates
                g.classDynamic[Int(id)] = dynamic
                g.classPerCPU[Int(id)] = false
                g.classRawSpinning[Int(id)] = false
                g.classCounted[Int(id)] = true
            } else {
                id = UInt32(g.classNames.count)
                g.classNames.append(name)
                g.classValidates.append(validates)
                g.classDynamic.append(dynamic)
                g.classPerCPU.append(false)
                g.classRawSpinning.append(false)
                g.classCounted.append(true)
            }
            if !dynamic { g.registry[key] = id }
            g.registeredSinceReset += 1
            if g.registeredSinceReset > g.limits.maxClasses && !g.disabled {
                report = capacityReport(&g, limit: "MAX_LOCKDEP_KEYS", value: g.limits.maxClasses,
                                        lock: name, site: site, thread: ThreadState.existing()?.pointee.name ?? "?")
            }
            return (id, name)
        }
        if let report { deliver([report]) }
        return (id, registeredName)
    }

    /// Frees a dynamic class (its owner is gone): the kernel's `lockdep_unregister_key`, which
    /// zaps the class's dependencies and chains. Its number is reused by a later registration,
    /// after every thread's chain cache has been invalidated.
    static func unregisterClass(id: UInt32, key: String) {
        // Statistics first: once the graph frees the number, a new class may take it.
        statistics.withLock { _ = $0.removeValue(forKey: id) }
        graph.withLock { g in g.removeClass(id, key: key) }
    }

    /// Makes class `id` a per-thread lock class (the kernel's `LD_LOCK_PERCPU`): the
    /// irq-inversion searches skip it.
    static func setPerCPU(id: UInt32) {
        graph.withLock { g in
            if Int(id) < g.classPerCPU.count { g.classPerCPU[Int(id)] = true }
        }
    }

    /// Makes holding class `id` a raw-spinning section (`LD_WAIT_SPIN`).
    static func setRawSpinning(id: UInt32) {
        graph.withLock { g in
            if Int(id) < g.classRawSpinning.count { g.classRawSpinning[Int(id)] = true }
        }
    }

    static func nextUniqueKey() -> Int {
        graph.withLock { g in g.uniqueCounter += 1; return g.uniqueCounter }
    }

    static func registerThread() -> (UInt, String) {
        graph.withLock { g in
            let s = g.nextSerial
            g.nextSerial += 1
            return (s, "thread-\(s)")
        }
    }

    static func setThreadName(serial: UInt, name: String) {
        graph.withLock { g in g.threadNames[serial] = name }
    }

    static func currentLimits() -> LockdepLimits { graph.withLock { $0.limits } }

    static func graphSize() -> LockdepGraphSize {
        graph.withLock { g in
            LockdepGraphSize(classes: g.registeredSinceReset, dependencies: g.edgeCount, chains: g.chains.count)
        }
    }

    // MARK: hot paths

    /// Validates and records an acquire. Returns `serial << 1 | 1` (the thread's owner word),
    /// or `serial << 1` when lock statistics ask the caller to time a contended wait.
    @usableFromInline
    static func acquire(classID: UInt32, subclass: UInt8, instance: UnsafeRawPointer, mode: LockdepMode,
                        flags: UInt8, nest: UnsafeRawPointer?, site: LockdepSite) -> UInt {
        let t = ThreadState.current()
        let word = StateWord.load()
        if word != t.pointee.seenWord { t.pointee.refresh(word) }
        let token = t.pointee.ownerToken
        if word & 1 != 0 {
            // Validation off: nothing is recorded, but the release that matches may come after
            // it is back on (``ThreadState/untrackedHolds``).
            t.pointee.untrackedHolds &+= 1
            return token
        }
        if flags & AcquireFlag.sleeping != 0 && t.pointee.isAtomic && t.pointee.recursion == 0 {
            sleepReport(t, what: "acquire", classID: classID, subclass: subclass, mode: mode, site: site)
        }
        let depth = t.pointee.depth
        if depth >= t.pointee.maxDepth {
            depthExceeded(t, classID: classID, site: site)
            return token
        }
        if depth == t.pointee.capacity { t.pointee.grow() }
        let node = classID << 3 | UInt32(subclass & 7)
        let irq = t.pointee.irqState
        let key = mix(chainKey(t, below: depth), element(node: node, mode: mode.rawValue, irq: irq, flags: flags,
                                                         nested: nest != nil))
        let measure = word & 2 != 0
        (t.pointee.held + depth).initialize(to: HeldLock(
            instance: instance, chainKey: key, acquiredAt: measure ? now() : 0, nest: nest, node: node,
            mode: mode.rawValue, flags: flags, irqState: irq, pins: 0, site: site))
        t.pointee.depth = depth + 1
        if flags & AcquireFlag.atomic != 0 { t.pointee.atomicDepth += 1 }
        if let nest, t.pointee.recursion == 0, !(0..<depth).contains(where: { t.pointee.held[$0].instance == nest }) {
            nestNotTaken(t, index: depth)
        }
        if !t.pointee.cacheContains(key) && t.pointee.recursion == 0 {
            validate(t, index: depth)
        }
        if measure { recordAcquisition(classID: classID) }
        return measure ? token & ~1 : token
    }

    /// Records a release. Returns whether the caller should perform the real unlock (`false`
    /// after a misuse report: releasing what this thread does not hold is never forwarded).
    ///
    /// `ownerWord` is the lock's `serial << 1 | locked` word (0 when the lock has none).
    @usableFromInline
    static func release(classID: UInt32, instance: UnsafeRawPointer, ownerWord: UInt, site: LockdepSite) -> Bool {
        let t = ThreadState.current()
        // The owner word first: a lock another thread holds exclusively is never released here,
        // whatever Lockdep's own state says (validation off, an untracked hold, a report
        // handler's call), as a build without the checks refuses it too.
        if ownerWord & 1 != 0 && ownerWord >> 1 != t.pointee.serial {
            let r = graph.withLock { Reports.badUnlock($0, t, classID: classID, ownerWord: ownerWord, site: site) }
            deliverRefusal(r, t)
            return false
        }
        let word = StateWord.load()
        if word != t.pointee.seenWord { t.pointee.refresh(word) }
        let depth = t.pointee.depth
        var i = depth - 1
        while i >= 0 && t.pointee.held[i].instance != instance { i -= 1 }
        if i < 0 {
            // A release Lockdep cannot find ends a hold taken while validation was off, if any.
            let untracked = t.pointee.untrackedHolds > 0
            if untracked { t.pointee.untrackedHolds -= 1 }
            if word & 1 != 0 || t.pointee.recursion != 0 { return true }
            if ownerWord & 1 != 0 && ownerWord >> 1 == t.pointee.serial { return true }
            if untracked { return true }
            badUnlock(t, classID: classID, ownerWord: ownerWord, site: site)
            return false
        }
        let entry = t.pointee.held[i]
        if entry.pins != 0 && t.pointee.recursion == 0 {
            simpleReport(t, kind: .pinnedLockReleased, title: "WARNING: releasing a pinned lock",
                         node: entry.node, mode: entry.mode, lockSite: entry.site, site: site,
                         namingLock: { "is releasing lock \($0) at:\n  \(site)\nwhile it is pinned (pinned \(entry.pins) time(s)).\n" })
        }
        if entry.flags & AcquireFlag.atomic != 0 { t.pointee.atomicDepth -= 1 }
        if entry.acquiredAt != 0 { recordHold(classID: entry.node >> 3, nanos: now() &- entry.acquiredAt) }
        if i == depth - 1 {
            t.pointee.depth = i        // HeldLock is trivial: nothing to deinitialize
        } else {
            remove(t, at: i)
        }
        return true
    }

    /// Removes held entry `i`, re-validating the chains of the entries above it.
    static func remove(_ t: UnsafeMutablePointer<ThreadState>, at i: Int) {
        let depth = t.pointee.depth
        (t.pointee.held + i).deinitialize(count: 1)
        if i != depth - 1 {
            (t.pointee.held + i).moveInitialize(from: t.pointee.held + i + 1, count: depth - 1 - i)
        }
        t.pointee.depth = depth - 1
        if i == depth - 1 { return }
        for j in i..<(depth - 1) {
            let e = t.pointee.held[j]
            let key = mix(chainKey(t, below: j), element(node: e.node, mode: e.mode, irq: e.irqState, flags: e.flags, nested: e.nest != nil))
            t.pointee.held[j].chainKey = key
            if !t.pointee.cacheContains(key) && t.pointee.recursion == 0 && StateWord.load() & 1 == 0 {
                validate(t, index: j)
            }
        }
    }

    // MARK: validation (slow path)

    @inline(never)
    static func validate(_ t: UnsafeMutablePointer<ThreadState>, index: Int) {
        let e = t.pointee.held[index]
        var reports: [LockdepReport] = []
        let cacheable: Bool = graph.withLock { g in
            if g.disabled { return false }
            if g.chains.contains(e.chainKey) { return true }
            let cls = Int(e.node >> 3)
            if cls >= g.classValidates.count || g.classValidates[cls] {
                var stack: CallStack?
                if let r = checkChain(&g, t, index: index, stack: &stack) { reports.append(r) }
            }
            if g.disabled { return false }
            if g.chains.count >= g.limits.maxChains {
                reports.append(capacityReport(&g, limit: "MAX_LOCKDEP_CHAINS", value: g.limits.maxChains,
                                              lock: g.nodeName(e.node), site: e.site, thread: t.pointee.name))
                return false
            }
            g.insertChain(e.chainKey, classes: (0...index).lazy.map { t.pointee.held[$0].node >> 3 })
            return true
        }
        if cacheable { t.pointee.cacheInsert(e.chainKey) }
        deliver(reports, t)
    }

    static func heldLocks(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, upTo count: Int) -> [LockdepReport.Lock] {
        (0..<count).map { i in
            let h = t.pointee.held[i]
            return LockdepReport.Lock(name: g.nodeName(h.node), mode: LockdepMode(rawValue: h.mode) ?? .write,
                                      site: h.site, usage: g.usage(h.node))
        }
    }

    static func lock(_ g: GraphState, _ h: HeldLock) -> LockdepReport.Lock {
        LockdepReport.Lock(name: g.nodeName(h.node), mode: LockdepMode(rawValue: h.mode) ?? .write,
                           site: h.site, usage: g.usage(h.node))
    }

    static func checkChain(_ g: inout GraphState, _ t: UnsafeMutablePointer<ThreadState>, index: Int,
                           stack: inout CallStack?) -> LockdepReport? {
        let held = t.pointee.held
        let e = held[index]
        let ctx = e.irqState & 3
        let eRecursive = e.mode == LockdepMode.recursiveRead.rawValue

        // 1. A write acquire of an RCU-style map inside its own read section.
        if e.flags & AcquireFlag.rcu != 0 && e.mode == LockdepMode.write.rawValue {
            for i in 0..<index where held[i].node == e.node && held[i].mode != LockdepMode.write.rawValue {
                return Reports.illegalSynchronize(g, t, entry: e, index: index)
            }
        }
        // 1b. A lock taken inside an exclusive hold of an RCU-style map. RCU holds its maps for
        // write only as empty sections (a grace-period wait), and read sections of such a map
        // are pushed without validation (check=0, `Lockdep.acquire(_:mode:options:...)`): a
        // cycle through this hold and a section under the lock would go unreported.
        for i in 0..<index where held[i].flags & AcquireFlag.rcu != 0 && held[i].mode == LockdepMode.write.rawValue {
            return Reports.simple(
                g, t, kind: .assertionFailed, title: "WARNING: lock taken inside an exclusive hold of an RCU map",
                node: e.node, mode: e.mode, lockSite: e.site, site: e.site,
                namingLock: { "is trying to lock:\n  \($0), at: \(e.site)\n"
                    + "while holding (\(g.nodeName(held[i].node))) for write, taken at \(held[i].site).\n"
                    + "An RCU map is held for write only as an empty section (a grace-period wait): its read "
                    + "sections are not validated, so a cycle through a lock taken here is not detected.\n" },
                extraClasses: [g.nodeName(held[i].node)])
        }
        // 2. Wait context, then usage bits (contexts).
        if let r = checkWaitContext(g, t, index: index) { return r }
        if let r = markUsage(&g, t, index: index) { return r }
        // 3. Recursive locking (AA). Under its held nest lock, a second lock of a held class is
        // serialised by the nest lock: no deadlock, and no new dependency either (the class's
        // dependencies were added when the first one was taken; the kernel's check_deadlock
        // returning 2). The nest lock counts only when taken before the held lock of the class.
        if e.flags & AcquireFlag.trylock == 0 {
            var nestHeld = false
            for i in 0..<index {
                let h = held[i]
                if let nest = e.nest, h.instance == nest { nestHeld = true }
                guard h.node == e.node && h.irqState & 3 == ctx else { continue }
                if eRecursive && h.mode != LockdepMode.write.rawValue { continue }
                if nestHeld { return nil }
                return Reports.recursive(g, t, held: h, entry: e, index: index)
            }
        }
        // 4. Dependencies from every held lock of this context to the new one.
        if e.flags & AcquireFlag.trylock != 0 { return nil }
        for i in stride(from: index - 1, through: 0, by: -1) {
            let h = held[i]
            let hcls = Int(h.node >> 3)
            guard h.irqState & 3 == ctx, h.node != e.node,
                  hcls >= g.classValidates.count || g.classValidates[hcls] else { continue }
            let hShared = h.mode != LockdepMode.write.rawValue
            let typeBit: UInt8 = 1 << ((hShared ? 2 : 0) | (eRecursive ? 1 : 0))
            let existing = g.edgeTypes(from: h.node, to: e.node)
            if let existing, existing & typeBit != 0 { continue }
            if let path = g.strongPath(from: e.node, startRecursive: eRecursive, to: h.node, targetShared: hShared) {
                if stack == nil { stack = Backtrace.capture(skip: 4) }
                return Reports.circular(g, t, held: h, entry: e, index: index, path: path, stack: stack ?? .empty)
            }
            if let r = checkEdgeIrq(&g, t, held: h, entry: e, index: index) { return r }
            if existing == nil {
                if g.edgeCount >= g.limits.maxDependencies {
                    return capacityReport(&g, limit: "MAX_LOCKDEP_ENTRIES", value: g.limits.maxDependencies,
                                          lock: g.nodeName(e.node), site: e.site, thread: t.pointee.name)
                }
                if stack == nil { stack = Backtrace.capture(skip: 4) }
                g.addEdge(from: h.node, to: e.node, Edge(
                    types: typeBit, fromSite: h.site, toSite: e.site, thread: t.pointee.name, stack: stack ?? .empty))
            } else {
                g.addEdgeTypes(from: h.node, to: e.node, typeBit)
            }
        }
        return nil
    }

    /// A spinning lock that is not raw (`spinlock_t`, `rwlock_t`, `local_lock_t`: the kernel's
    /// `LD_WAIT_CONFIG`, sleeping locks on PREEMPT_RT) taken in a raw-spinning context: a hardirq
    /// context that is not threaded, or under a held raw-spinning class of the same context (the
    /// kernel's `check_wait_context` with `CONFIG_PROVE_RAW_LOCK_NESTING`). Sleeping locks are
    /// left to the sleeping-in-atomic check; pseudo-locks and trylocks never wait.
    static func checkWaitContext(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, index: Int) -> LockdepReport? {
        let held = t.pointee.held
        let e = held[index]
        let cls = Int(e.node >> 3)
        guard e.flags & (AcquireFlag.sleeping | AcquireFlag.map | AcquireFlag.trylock) == 0,
              e.flags & AcquireFlag.atomic != 0,
              !(cls < g.classRawSpinning.count && g.classRawSpinning[cls]) else { return nil }
        var context: String?
        if e.irqState & 16 != 0 { context = "a hardirq context that is not threaded" }
        var i = index - 1
        while context == nil && i >= 0 && held[i].irqState & 3 == e.irqState & 3 {
            let hcls = Int(held[i].node >> 3)
            if hcls < g.classRawSpinning.count && g.classRawSpinning[hcls] {
                context = "the raw-spinning section of (\(g.nodeName(held[i].node))), at: \(held[i].site)"
            }
            i -= 1
        }
        guard let context else { return nil }
        return Reports.simple(g, t, kind: .sleepInInvalidContext, title: "BUG: Invalid wait context", node: e.node,
                              mode: e.mode, lockSite: e.site, site: e.site,
                              namingLock: { "is trying to lock:\n  \($0), at: \(e.site)\n"
                                + "a spinning lock that is not raw (it sleeps on PREEMPT_RT) inside \(context).\n" })
    }

    /// Marks the usage bits the new acquire implies, reporting inconsistent state or inversion.
    static func markUsage(_ g: inout GraphState, _ t: UnsafeMutablePointer<ThreadState>, index: Int) -> LockdepReport? {
        let e = t.pointee.held[index]
        // The write side of an RCU map is a grace-period wait, not an exclusive hold: it
        // orders against readers (dependencies, illegal synchronize) but has no irq usage,
        // or readers in hardirq would make every later synchronize an "inconsistent state".
        if e.flags & AcquireFlag.rcu != 0 && e.mode == LockdepMode.write.rawValue { return nil }
        let read: UInt8 = e.mode == LockdepMode.write.rawValue ? 0 : 1
        let ctx = e.irqState & 3
        // Completion maps (work items, queues) model waiting, not exclusion: they are never
        // "used in" an interrupt context.
        let completion = e.flags & AcquireFlag.completion != 0
        if ctx == LockdepContext.hardirq.rawValue && !completion,
           let r = markBit(&g, t, entry: e, index: index, bit: 0 + read) { return r }
        if ctx == LockdepContext.softirq.rawValue && !completion,
           let r = markBit(&g, t, entry: e, index: index, bit: 4 + read) { return r }
        if e.irqState & 4 == 0 {
            if let r = markBit(&g, t, entry: e, index: index, bit: 2 + read) { return r }
            if e.irqState & 8 == 0, let r = markBit(&g, t, entry: e, index: index, bit: 6 + read) { return r }
        }
        return nil
    }

    /// Sets usage bit `b` on the class of held entry `index` (the kernel's `mark_lock` and
    /// `mark_lock_irq`): an inconsistent state when the class itself has the exclusive bit, an
    /// irq inversion when a class it reaches along a strong path (used in irq: forward) or that
    /// reaches it (irqs enabled: backward) has it. `enabling` is whether the bit comes from
    /// interrupts enabled with the lock held (`mark_held_locks`) rather than from an acquire.
    static func markBit(_ g: inout GraphState, _ t: UnsafeMutablePointer<ThreadState>, entry e: HeldLock, index: Int,
                        bit b: UInt8, enabling: Bool = false) -> LockdepReport? {
        let slot = g.nodes.slotCreating(e.node)
        let mask: UInt8 = 1 << b
        let usage = g.nodes.slots[slot].usage
        if usage & mask != 0 { return nil }
        g.nodes.slots[slot].usage |= mask
        g.nodes.slots[slot].usageSites[Int(b)] = e.site
        g.propagateReach(mask, from: e.node)
        let irq = b / 4
        let isUsed = b % 4 < 2
        let isRead = b % 2 == 1
        let exclWrite = irq * 4 + (isUsed ? 2 : 0)
        if usage & (1 << exclWrite) != 0 {
            return Reports.inconsistent(g, t, entry: e, index: index, newBit: b, oldBit: exclWrite, enabling: enabling)
        }
        if !isRead && usage & (1 << (exclWrite + 1)) != 0 {
            return Reports.inconsistent(g, t, entry: e, index: index, newBit: b, oldBit: exclWrite + 1, enabling: enabling)
        }
        // Inversion against the dependencies already recorded (check_usage_forwards /
        // check_usage_backwards). The reach bits say whether any node the search would visit
        // has a conflicting bit; only then is the graph walked.
        let searchMask: UInt8 = 1 << exclWrite | 1 << (exclWrite + 1)
        if g.nodes.slots[slot].reach & searchMask == 0 { return nil }
        // A class reached only by recursive reads (forward) or held only shared (backward)
        // conflicts by its write usage only: readers do not block a recursive reader.
        let rootOnlyRecursive = isUsed ? e.mode == LockdepMode.recursiveRead.rawValue : e.mode != LockdepMode.write.rawValue
        guard let path = g.strongSearch(from: e.node, forward: isUsed, rootOnlyRecursive: rootOnlyRecursive, match: {
            _, usage, onlyRecursive in usage & (onlyRecursive ? searchMask & Usage.writeMask : searchMask) != 0
        }), let m = path.last else { return nil }
        let mu = g.nodes[m]?.usage ?? 0
        let c = mu & (1 << exclWrite) != 0 ? exclWrite : exclWrite + 1
        return Reports.inversion(g, t, entry: e, index: index, irq: Int(irq), safe: isUsed ? e.node : m,
                                 unsafe: isUsed ? m : e.node, safeBit: isUsed ? b : c, unsafeBit: isUsed ? c : b,
                                 path: isUsed ? path : path.reversed(), enabling: enabling)
    }

    /// Interrupts were enabled with locks held (the kernel's `mark_held_locks` in
    /// `lockdep_hardirqs_on` / `lockdep_softirqs_on`): every held lock is now taken with those
    /// interrupts enabled.
    @inline(never)
    static func interruptsEnabled(_ t: UnsafeMutablePointer<ThreadState>, hard: Bool, soft: Bool) {
        guard validating, t.pointee.recursion == 0, t.pointee.depth > 0 else { return }
        let report: LockdepReport? = graph.withLock { g in
            if g.disabled { return nil }
            for i in 0..<t.pointee.depth {
                let h = t.pointee.held[i]
                let cls = Int(h.node >> 3)
                if cls < g.classValidates.count && !g.classValidates[cls] { continue }
                if h.flags & AcquireFlag.rcu != 0 && h.mode == LockdepMode.write.rawValue { continue }
                let read: UInt8 = h.mode == LockdepMode.write.rawValue ? 0 : 1
                if hard, let r = markBit(&g, t, entry: h, index: i, bit: 2 + read, enabling: true) { return r }
                if soft, let r = markBit(&g, t, entry: h, index: i, bit: 6 + read, enabling: true) { return r }
            }
            return nil
        }
        if let report { deliver([report], t) }
    }

    /// An edge `held -> entry` from an irq-safe class (or one reaching it) to an irq-unsafe one
    /// (or one it reaches), along strong paths: the kernel's `check_irq_usage`.
    ///
    /// The reach bits of the two ends answer "could there be such a pair?" in O(1); the graph
    /// is walked only when they say yes.
    static func checkEdgeIrq(_ g: inout GraphState, _ t: UnsafeMutablePointer<ThreadState>, held h: HeldLock,
                             entry e: HeldLock, index: Int) -> LockdepReport? {
        let rh = g.nodes.slot(h.node).map { g.nodes.slots[$0].reach } ?? 0
        let re = g.nodes.slot(e.node).map { g.nodes.slots[$0].reach } ?? 0
        guard Usage.exclusive(rh & Usage.usedMask) & re != 0 else { return nil }
        let hShared = h.mode != LockdepMode.write.rawValue
        let eRecursive = e.mode == LockdepMode.recursiveRead.rawValue
        // 1. The irq-safe usages behind `held`; a class held only shared counts by its
        //    used-in-irq-for-write bits (usage_accumulate).
        var behind: UInt8 = 0
        _ = g.strongSearch(from: h.node, forward: false, rootOnlyRecursive: hShared) { _, usage, onlyRecursive in
            behind |= onlyRecursive ? usage & Usage.writeMask : usage
            return false
        }
        behind &= Usage.usedMask
        if behind == 0 { return nil }
        // 2. The first class ahead of `entry` with a conflicting irqs-enabled usage (usage_match).
        let forwardMask = Usage.exclusive(behind)
        guard let right = g.strongSearch(from: e.node, forward: true, rootOnlyRecursive: eRecursive, match: {
            _, usage, onlyRecursive in usage & (onlyRecursive ? forwardMask & Usage.writeMask : forwardMask) != 0
        }), let v = right.last else { return nil }
        let vu = g.nodes[v]?.usage ?? 0
        // 3. A class behind `held` whose usage conflicts with that one.
        let backwardMask = Usage.exclusive(vu & Usage.enabledMask)
        guard let left = g.strongSearch(from: h.node, forward: false, rootOnlyRecursive: hShared, match: {
            _, usage, onlyRecursive in usage & (onlyRecursive ? backwardMask & Usage.writeMask : backwardMask) != 0
        }), let u = left.last else { return nil }
        let uu = g.nodes[u]?.usage ?? 0
        // 4. The pair of bits to report (find_exclusive_match).
        for safeBit in UInt8(0)..<8 where uu & (1 << safeBit) != 0 && safeBit % 4 < 2 {
            let excl = safeBit / 4 * 4 + 2
            let unsafeBit: UInt8
            if vu & (1 << excl) != 0 { unsafeBit = excl } else if vu & (1 << (excl + 1)) != 0 { unsafeBit = excl + 1 } else { continue }
            return Reports.inversion(g, t, entry: e, index: index, irq: Int(safeBit / 4), safe: u, unsafe: v,
                                     safeBit: safeBit, unsafeBit: unsafeBit, path: left.reversed() + right,
                                     newEdgeFrom: h)
        }
        return nil
    }

    // MARK: misuse and other reports

    static func capacityReport(_ g: inout GraphState, limit: String, value: Int, lock: String, site: LockdepSite?,
                               thread: String) -> LockdepReport {
        g.disabled = true
        StateWord.bitwiseOr(1)
        let title = "BUG: \(limit) too low!"
        var text = title + "\n"
        text += "the limit is \(value); reached while registering or acquiring (\(lock))"
        text += site.map { ", at: \($0)" } ?? ""
        text += "\nthread \"\(thread)\"\nturning off the locking correctness validator.\n"
        return LockdepReport(kind: .capacityExceeded, title: title, thread: thread, otherThread: nil, site: site,
                             lock: .init(name: lock, mode: .write, site: site, usage: ""), classes: [lock, limit],
                             chain: [], heldLocks: [], context: .process, text: text)
    }

    @inline(never)
    static func depthExceeded(_ t: UnsafeMutablePointer<ThreadState>, classID: UInt32, site: LockdepSite) {
        let r: LockdepReport? = graph.withLock { g in
            if g.disabled { return nil }
            var r = capacityReport(&g, limit: "MAX_LOCK_DEPTH", value: t.pointee.maxDepth,
                                   lock: g.nodeName(classID << 3), site: site, thread: t.pointee.name)
            r.heldLocks = heldLocks(g, t, upTo: t.pointee.depth)
            r.text += Reports.heldText(r.heldLocks, thread: t.pointee.name)
            return r
        }
        if let r { deliver([r], t) }
    }

    @inline(never)
    static func sleepReport(_ t: UnsafeMutablePointer<ThreadState>, what: String, classID: UInt32?, subclass: UInt8,
                            mode: LockdepMode, site: LockdepSite) {
        let r = graph.withLock { g in Reports.sleeping(g, t, classID: classID, subclass: subclass, mode: mode, site: site) }
        deliver([r], t)
    }

    @inline(never)
    static func badUnlock(_ t: UnsafeMutablePointer<ThreadState>, classID: UInt32, ownerWord: UInt, site: LockdepSite) {
        let r = graph.withLock { g in
            Reports.badUnlock(g, t, classID: classID, ownerWord: ownerWord, site: site)
        }
        deliver([r], t)
    }

    @inline(never)
    static func nestNotTaken(_ t: UnsafeMutablePointer<ThreadState>, index: Int) {
        let e = t.pointee.held[index]
        simpleReport(t, kind: .assertionFailed, title: "WARNING: Nested lock was not taken", node: e.node, mode: e.mode,
                     lockSite: e.site, site: e.site,
                     namingLock: { "is trying to lock:\n  \($0), at: \(e.site)\nbut this thread is not holding its nest lock.\n" })
    }

    static func simpleReport(_ t: UnsafeMutablePointer<ThreadState>, kind: LockdepReport.Kind, title: String,
                             node: UInt32?, mode: UInt8, lockSite: LockdepSite?, site: LockdepSite, body: String) {
        simpleReport(t, kind: kind, title: title, node: node, mode: mode, lockSite: lockSite, site: site,
                     namingLock: { _ in body })
    }

    /// ``simpleReport(_:kind:title:node:mode:lockSite:site:body:)`` with a body that names the
    /// lock (`body` gets `"(name)"`).
    static func simpleReport(_ t: UnsafeMutablePointer<ThreadState>, kind: LockdepReport.Kind, title: String,
                             node: UInt32?, mode: UInt8, lockSite: LockdepSite?, site: LockdepSite,
                             namingLock body: (String) -> String) {
        let r = graph.withLock { g in
            Reports.simple(g, t, kind: kind, title: title, node: node, mode: mode, lockSite: lockSite, site: site,
                           namingLock: body)
        }
        deliver([r], t)
    }

    // MARK: delivery

    static func deliver(_ reports: [LockdepReport], _ t: UnsafeMutablePointer<ThreadState>? = nil) {
        guard !reports.isEmpty else { return }
        let state = t ?? ThreadState.current()
        state.pointee.recursion += 1
        state.pointee.updateFastGate()
        defer {
            state.pointee.recursion -= 1
            state.pointee.updateFastGate()
        }
        for r in reports {
            let mode = graph.withLock { $0.mode }
            switch mode {
            case .trap:
                Backtrace.writeStandardError(r.text + "\n")
                fatalError("lockdep: \(r.title)")
            case .reportOnceAndContinue:
                let key = onceKey(r)
                let fresh = graph.withLock { $0.reported.insert(key).inserted }
                if fresh { Backtrace.writeStandardError(r.text + "\n") }
            case .custom(let handler):
                handler(r)
            }
        }
    }

    /// What makes two reports the same for ``Lockdep/ReportHandler/reportOnceAndContinue``.
    static func onceKey(_ r: LockdepReport) -> String {
        "\(r.kind)|\(r.classes.joined(separator: ","))|\(r.site?.description ?? "")"
    }

    /// Runs the generic code of ``deliver(_:_:)``, and of the text most reports and a thread's
    /// first Lockdep use build (held locks, sites, the thread's pthread name), once, on a report
    /// nobody sees, so that the Swift runtime has made their metadata and witness tables before
    /// any `fork()`: a forked child's first report would otherwise make them under a runtime
    /// lock that a parent thread making the same ones may have held at the fork (seen: a child
    /// hung in `swift_getWitnessTable` for `[LockdepReport]: Collection`, at the guard above).
    /// Called by the graph's initializer, inside the bracket no fork crosses (``ForkHooks``).
    /// It narrows the hazard, no more: other code a child runs for the first time in the
    /// process can meet the same runtime locks (the RCU module's SoundnessModel article).
    static func rehearseDelivery() {
        let site = LockdepSite(fileID: #fileID, line: #line, function: #function)
        let lock = LockdepReport.Lock(name: "rehearsal", mode: .write, site: site, usage: "")
        let text = Reports.heldText([lock], thread: Backtrace.threadName() ?? "rehearsal")
        let rehearsal = LockdepReport(kind: .assertionFailed, title: "rehearsal", thread: "", otherThread: nil,
                                      site: site, lock: lock, classes: ["rehearsal"], chain: [], heldLocks: [lock],
                                      context: .process, text: text)
        deliver([])
        var keys = Set<String>()
        for r in [rehearsal] { keys.insert(onceKey(r)) }
    }

    // MARK: statistics

    /// Its lock is one of Lockdep's fork hooks': a first use registers them (a thread that read
    /// the statistics before any class existed could hold it at a fork that knew no hook).
    static var statistics: InternalLockedValue<[UInt32: ClassStatistics]> {
        ForkHooks.installLockdepHooks()
        return madeStatistics
    }

    private static let madeStatistics = InternalLockedValue<[UInt32: ClassStatistics]>([:])

    @inline(never)
    static func recordAcquisition(classID: UInt32) {
        statistics.withLock { $0[classID, default: ClassStatistics()].acquisitions += 1 }
    }

    @usableFromInline @inline(never)
    static func recordContention(classID: UInt32, waitNanos: UInt64, site: LockdepSite) {
        statistics.withLock { s in
            var c = s[classID, default: ClassStatistics()]
            c.contentions += 1
            c.waitMin = min(c.waitMin, waitNanos); c.waitMax = max(c.waitMax, waitNanos); c.waitTotal &+= waitNanos
            c.contendingSites[site.description, default: 0] += 1
            s[classID] = c
        }
    }

    @inline(never)
    static func recordHold(classID: UInt32, nanos: UInt64) {
        statistics.withLock { s in
            var c = s[classID, default: ClassStatistics()]
            c.holds += 1
            c.holdMin = min(c.holdMin, nanos); c.holdMax = max(c.holdMax, nanos); c.holdTotal &+= nanos
            s[classID] = c
        }
    }

    @usableFromInline
    static func nowNanos() -> UInt64 { now() }
}
