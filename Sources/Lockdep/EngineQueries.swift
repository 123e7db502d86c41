internal import Glibc
internal import Synchronization

extension Engine {
    static func heldIndex(_ t: UnsafeMutablePointer<ThreadState>, _ instance: UnsafeRawPointer) -> Int? {
        var i = t.pointee.depth - 1
        while i >= 0 {
            if t.pointee.held[i].instance == instance { return i }
            i -= 1
        }
        return nil
    }

    static var validating: Bool { StateWord.load() & 1 == 0 }

    static func isHeld(_ instance: UnsafeRawPointer, mode: LockdepMode?) -> Bool {
        // Once validation has switched itself off (a capacity limit), held-lock stacks are no
        // longer exact: answer "held" so assertions pass, as the kernel's lock_is_held does.
        guard validating else { return true }
        let t = ThreadState.current()
        guard let i = heldIndex(t, instance) else { return false }
        guard let mode else { return true }
        let held = t.pointee.held[i].mode
        return mode == .write ? held == LockdepMode.write.rawValue : held != LockdepMode.write.rawValue
    }

    static func assertionFailure(_ t: UnsafeMutablePointer<ThreadState>, lock: (any LockdepLock)?, message: String,
                                 site: LockdepSite) {
        guard validating, t.pointee.recursion == 0 else { return }
        let node = lock.map { $0.lockClass.id << 3 }
        var lockSite: LockdepSite?
        if let lock, let i = heldIndex(t, lock.lockdepInstance) { lockSite = t.pointee.held[i].site }
        simpleReport(t, kind: .assertionFailed, title: "WARNING: lock assertion failed at \(site.fileName):\(site.line)",
                     node: node, mode: 0, lockSite: lockSite, site: site, body: "\(message) at:\n  \(site)\n")
    }

    @usableFromInline
    static func mightSleep(_ site: LockdepSite) {
        let t = ThreadState.current()
        guard validating, t.pointee.recursion == 0, t.pointee.isAtomic else { return }
        sleepReport(t, what: "might sleep", classID: nil, subclass: 0, mode: .write, site: site)
    }

    /// Drops every entry above `depth`, reporting a leak (work items).
    static func checkLeak(depth: Int, context: LockdepContext, workName: String, site: LockdepSite) {
        let t = ThreadState.current()
        if t.pointee.context != context.rawValue || t.pointee.hardirqOff != 0 || t.pointee.softirqOff != 0 {
            if t.pointee.disableCounts != 0 { t.pointee.countsChangedUnscoped = true }
            t.pointee.context = context.rawValue
            t.pointee.hardirqOff = 0
            t.pointee.softirqOff = 0
            t.pointee.updateIrq()
        }
        guard t.pointee.depth > depth else { return }
        if validating && t.pointee.recursion == 0 {
            let r: LockdepReport = graph.withLock { g in
                let held = heldLocks(g, t, upTo: t.pointee.depth)
                let leaked = held[depth...]
                var body = "BUG: workqueue leaked lock or RCU: \"\(t.pointee.name)\"\n"
                body += "     last function: \(workName), queued at: \(site)\n"
                body += "     leaked: " + leaked.map { "(\($0.name))" }.joined(separator: ", ") + "\n"
                var r = Reports.make(.workqueueLeak, "BUG: workqueue leaked lock or RCU", t, site: site,
                                     lock: leaked.first, classes: leaked.map(\.name) + [workName], held: held, body: body)
                r.text = body + "\n" + Reports.heldText(held, thread: t.pointee.name)
                return r
            }
            deliver([r], t)
        }
        while t.pointee.depth > depth {
            let i = t.pointee.depth - 1
            if t.pointee.held[i].flags & AcquireFlag.atomic != 0 { t.pointee.atomicDepth -= 1 }
            remove(t, at: i)
        }
    }

    /// The kernel's `debug_check_no_locks_held` at task exit: a thread ending with locks held
    /// ("WARNING: name/serial still has locks held!"). The locks stay held: their owner words
    /// still name the thread, and a later release from another thread is reported as such.
    static func checkNoLocksHeldAtExit(_ t: UnsafeMutablePointer<ThreadState>) {
        guard t.pointee.depth > 0, validating else { return }
        if t.pointee.recursion != 0 {
            // The thread exits from inside a report handler (pthread_exit there): that delivery
            // never returns, and this last one is owed.
            t.pointee.recursion = 0
            t.pointee.updateFastGate()
        }
        let r: LockdepReport = graph.withLock { g in
            let held = heldLocks(g, t, upTo: t.pointee.depth)
            let title = "WARNING: \(t.pointee.name)/\(t.pointee.serial) still has locks held!"
            let body = "thread \"\(t.pointee.name)\" is exiting while holding "
                + (held.count == 1 ? "a lock" : "\(held.count) locks") + ": they stay held for ever.\n"
            return Reports.make(.locksHeldAtThreadExit, title, t, site: held.last?.site, lock: held.last,
                                classes: held.map(\.name), held: held, body: body)
        }
        deliver([r], t)
    }

    static func resetAll() {
        graph.withLock { g in
            g.registry = [:]
            g.registeredSinceReset = 0
            // In place, as memory: a reset costs the nodes there were, not every class and
            // node number the process has seen (tests reset once a case, after thousands).
            g.classCounted.withUnsafeMutableBytes { if let base = $0.baseAddress { memset(base, 0, $0.count) } }
            g.nodes.removeAll()
            // The search buffers' marks are generations: a new search ignores the old ones.
            g.edgeCount = 0
            g.chains = []
            g.chainDynamicClasses = [:]
            g.dynamicClassChains = [:]
            g.reported = []
            g.disabled = false
            g.generation += 1
            StateWord.store((g.generation << 2) | (g.statsEnabled ? 2 : 0))
        }
        statistics.withLock { $0 = [:] }
        let t = ThreadState.current()
        t.pointee.held.deinitialize(count: t.pointee.depth)
        t.pointee.depth = 0
        t.pointee.untrackedHolds = 0
        t.pointee.atomicDepth = 0
        t.pointee.context = 0
        if t.pointee.disableCounts != 0 { t.pointee.countsChangedUnscoped = true }
        t.pointee.hardirqOff = 0
        t.pointee.softirqOff = 0
        t.pointee.updateIrq()
        t.pointee.refresh(StateWord.load())
    }

    static func setLimits(_ limits: LockdepLimits) {
        graph.withLock { g in
            g.limits = limits
            g.generation += 1
            StateWord.store((g.generation << 2) | (g.statsEnabled ? 2 : 0) | (g.disabled ? 1 : 0))
        }
    }

    static func setStatistics(_ on: Bool) {
        graph.withLock { g in
            g.statsEnabled = on
            if on { StateWord.bitwiseOr(2) } else { StateWord.bitwiseAnd(~UInt(2)) }
        }
    }
}

extension Engine {
    /// Whether an owner word names the calling thread.
    @usableFromInline
    static func ownsWord(_ word: UInt) -> Bool { word >> 1 == ThreadState.current().pointee.serial }
}

extension Engine {
    /// How many thread names the validator keeps (live threads, and the last exited lock
    /// holders): what a program that runs many short threads must not see grow.
    static var keptThreadNameCount: Int { graph.withLock { $0.threadNames.count } }
}
