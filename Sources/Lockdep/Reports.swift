/// Builders of report values and texts in the kernel's shape.
enum Reports {
    static func banner(_ title: String) -> String {
        let bar = String(repeating: "=", count: title.count)
        let dash = String(repeating: "-", count: title.count)
        return "\(bar)\n\(title)\n\(dash)\n"
    }

    static func heldText(_ held: [LockdepReport.Lock], thread: String) -> String {
        #if !LOCKDEP_CHECKS
        // The owner words refuse misuse here, but no held-lock stack is kept to list.
        if held.isEmpty { return "held locks are not tracked in this build (Lockdep's checks are compiled out).\n" }
        #endif
        if held.isEmpty { return "no locks held by \"\(thread)\".\n" }
        var s = "\(held.count) lock\(held.count == 1 ? "" : "s") held by \"\(thread)\":\n"
        for (i, l) in held.enumerated() { s += " #\(i): \(l)\n" }
        return s
    }

    static func contextFlags(_ irq: UInt8) -> String {
        let ctx = irq & 3
        return "[HC\(ctx == 2 ? 1 : 0):SC\(ctx == 1 ? 1 : 0):HE\(irq & 4 == 0 ? 1 : 0):SE\(irq & 8 == 0 ? 1 : 0)]"
    }

    static func context(_ irq: UInt8) -> LockdepContext { LockdepContext(rawValue: irq & 3) ?? .process }

    static func make(_ kind: LockdepReport.Kind, _ title: String, _ t: UnsafeMutablePointer<ThreadState>,
                     site: LockdepSite?, lock: LockdepReport.Lock?, classes: [String], chain: [LockdepReport.Dependency] = [],
                     held: [LockdepReport.Lock], body: String, other: String? = nil) -> LockdepReport {
        let text = banner(title) + body + "\n" + heldText(held, thread: t.pointee.name)
        return LockdepReport(kind: kind, title: title, thread: t.pointee.name, otherThread: other, site: site,
                             lock: lock, classes: classes, chain: chain, heldLocks: held,
                             context: context(t.pointee.irqState), text: text)
    }

    static func illegalSynchronize(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, entry e: HeldLock,
                                   index: Int) -> LockdepReport {
        let held = Engine.heldLocks(g, t, upTo: index)
        let name = g.nodeName(e.node)
        var body = "\(e.site.fileName):\(e.site.line) Illegal synchronize_rcu() in RCU read-side critical section!\n\n"
        body += "other info that might help us debug this:\n\n"
        body += "thread \"\(t.pointee.name)\" waits for a grace period of (\(name)) in \(e.site.function)\n"
        body += "while inside a read-side critical section of (\(name)).\n"
        return make(.illegalSynchronize, "WARNING: suspicious RCU usage", t, site: e.site,
                    lock: Engine.lock(g, e), classes: [name], held: held, body: body)
    }

    static func recursive(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, held h: HeldLock, entry e: HeldLock,
                          index: Int) -> LockdepReport {
        let held = Engine.heldLocks(g, t, upTo: index)
        let name = g.nodeName(e.node)
        // Name both instances: the same one twice is a self-deadlock; two of one class is a
        // nesting question the reader can answer with an annotation.
        var acquiring = Engine.lock(g, e)
        var holding = Engine.lock(g, h)
        acquiring.instance = g.instanceNames.describe(e.instance)
        holding.instance = g.instanceNames.describe(h.instance)
        var body = "thread \"\(t.pointee.name)\" is trying to acquire lock:\n  \(acquiring), instance \(acquiring.instance!)\n\n"
        body += "but thread is already holding lock:\n  \(holding), instance \(holding.instance!)\n\n"
        body += "other info that might help us debug this:\n"
        body += " Possible unsafe locking scenario:\n\n"
        body += "       T0\n       ----\n  lock(\(name));\n  lock(\(name));\n\n"
        body += " *** DEADLOCK ***\n\n May be due to missing lock nesting notation\n\n"
        if e.instance == h.instance {
            body += "Both are the same instance \(acquiring.instance!): the thread would wait for itself.\n"
        } else {
            body += "These are two different instances of one class (\(g.nodeName(e.node & ~7))): held \(holding.instance!), "
            body += "taking \(acquiring.instance!).\n"
            body += "If nesting them is intended (a parent and its child, say), tell Lockdep: take the inner one with "
            body += "lock(subclass: 1), or under a lock that serialises such nesting with lock(nestedUnder:), or give "
            body += "the two roles different classes (LockClass). If another thread can take them in the other order, "
            body += "it is a real ABBA deadlock.\n"
        }
        return make(.recursiveLocking, "WARNING: possible recursive locking detected", t, site: e.site,
                    lock: acquiring, classes: [name], held: held, body: body)
    }

    static func dependency(_ g: GraphState, from: UInt32, to: UInt32) -> LockdepReport.Dependency {
        let edge = g.nodes[from]?.edges[to]
        return LockdepReport.Dependency(
            from: g.nodeName(from), to: g.nodeName(to), fromSite: edge?.fromSite ?? LockdepSite(),
            toSite: edge?.toSite ?? LockdepSite(), thread: edge?.thread ?? "?",
            stack: Backtrace.symbolicate(edge?.stack ?? .empty))
    }

    static func dependencyText(_ index: Int, _ d: LockdepReport.Dependency, usage: String) -> String {
        var s = "-> #\(index) (\(d.to))\(usage):\n"
        s += "       acquired at: \(d.toSite)\n"
        s += "       while holding (\(d.from)) acquired at: \(d.fromSite)\n"
        s += "       by thread \"\(d.thread)\", stack:\n"
        for frame in d.stack.prefix(12) { s += "         \(frame)\n" }
        return s + "\n"
    }

    static func circular(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, held h: HeldLock, entry e: HeldLock,
                         index: Int, path: [UInt32], stack: CallStack) -> LockdepReport {
        // path: e.node -> ... -> h.node (existing); the new dependency is h -> e.
        var chain: [LockdepReport.Dependency] = []
        for i in 0..<(path.count - 1) { chain.append(dependency(g, from: path[i], to: path[i + 1])) }
        let newDep = LockdepReport.Dependency(from: g.nodeName(h.node), to: g.nodeName(e.node), fromSite: h.site,
                                              toSite: e.site, thread: t.pointee.name,
                                              stack: Backtrace.symbolicate(stack))
        chain.append(newDep)
        let held = Engine.heldLocks(g, t, upTo: index)
        let source = g.nodeName(e.node), target = g.nodeName(h.node)
        let parent = g.nodeName(path[path.count - 2])
        var body = "thread \"\(t.pointee.name)\" is trying to acquire lock:\n  \(Engine.lock(g, e))\n\n"
        body += "but thread is already holding lock:\n  \(Engine.lock(g, h))\n\n"
        body += "which lock already depends on the new lock.\n\n"
        body += "the existing dependency chain (in reverse order) is:\n\n"
        for (n, d) in chain.enumerated().reversed() {
            let toNode = n < path.count - 1 ? path[n + 1] : e.node
            body += dependencyText(n, d, usage: g.usage(toNode))
        }
        body += "other info that might help us debug this:\n\n"
        if path.count > 2 {
            body += "Chain exists of:\n  " + ([source] + path.dropFirst().map { g.nodeName($0) }).reversed()
                .map { $0 }.joined(separator: " --> ") + "\n\n"
        }
        body += " Possible unsafe locking scenario:\n\n"
        body += "       T0                    T1\n"
        body += "       ----                  ----\n"
        body += "  lock(\(target));\n"
        body += "                             lock(\(parent));\n"
        body += "                             lock(\(target));\n"
        body += "  lock(\(source));\n\n"
        body += " *** DEADLOCK ***\n"
        var classes = [source]
        for n in path.dropFirst() { classes.append(g.nodeName(n)) }
        var r = make(.circularDependency, "WARNING: possible circular locking dependency detected", t, site: e.site,
                     lock: Engine.lock(g, e), classes: classes, chain: chain, held: held, body: body)
        r.otherThread = chain.first?.thread
        return r
    }

    static func inconsistent(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, entry e: HeldLock, index: Int,
                             newBit: UInt8, oldBit: UInt8, enabling: Bool = false) -> LockdepReport {
        let name = g.nodeName(e.node)
        let held = Engine.heldLocks(g, t, upTo: enabling ? t.pointee.depth : index)
        let oldSite = g.nodes[e.node]?.usageSites[Int(oldBit)] ?? nil
        let irqName = newBit < 4 ? "Interrupt" : "Softirq"
        var body = "inconsistent {\(Usage.names[Int(oldBit)])} -> {\(Usage.names[Int(newBit)])} usage.\n"
        if enabling {
            body += "thread \"\(t.pointee.name)\" \(contextFlags(t.pointee.irqState)) enables interrupts while holding:\n  \(Engine.lock(g, e))\n"
        } else {
            body += "thread \"\(t.pointee.name)\" \(contextFlags(e.irqState)) takes:\n  \(Engine.lock(g, e))\n"
        }
        body += "{\(Usage.names[Int(oldBit)])} state was registered at:\n  \(oldSite?.description ?? "?")\n\n"
        body += "other info that might help us debug this:\n"
        body += " Possible unsafe locking scenario:\n\n       T0\n       ----\n  lock(\(name));\n  <\(irqName)>\n    lock(\(name));\n\n"
        body += " *** DEADLOCK ***\n"
        return make(.inconsistentLockState, "WARNING: inconsistent lock state", t, site: e.site,
                    lock: Engine.lock(g, e), classes: [name], held: held, body: body)
    }

    static func inversion(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, entry e: HeldLock, index: Int,
                          irq: Int, safe: UInt32, unsafe: UInt32, safeBit: UInt8, unsafeBit: UInt8,
                          path: [UInt32], newEdgeFrom: HeldLock? = nil, enabling: Bool = false) -> LockdepReport {
        let irqName = irq == 0 ? "HARDIRQ" : "SOFTIRQ"
        let safeName = g.nodeName(safe), unsafeName = g.nodeName(unsafe)
        var chain: [LockdepReport.Dependency] = []
        for i in 0..<max(0, path.count - 1) {
            if let h = newEdgeFrom, path[i] == h.node, path[i + 1] == e.node {
                chain.append(.init(from: g.nodeName(h.node), to: g.nodeName(e.node), fromSite: h.site, toSite: e.site,
                                   thread: t.pointee.name, stack: Backtrace.symbolicate(Backtrace.capture(skip: 4))))
            } else {
                chain.append(dependency(g, from: path[i], to: path[i + 1]))
            }
        }
        let held = Engine.heldLocks(g, t, upTo: enabling ? t.pointee.depth : index)
        var body = "\(irqName)-safe -> \(irqName)-unsafe lock order detected\n"
        if enabling {
            body += "thread \"\(t.pointee.name)\" \(contextFlags(t.pointee.irqState)) enables interrupts while holding:\n  \(Engine.lock(g, e))\n\n"
        } else {
            body += "thread \"\(t.pointee.name)\" \(contextFlags(e.irqState)) is trying to acquire:\n  \(Engine.lock(g, e))\n\n"
        }
        body += "the \(irqName)-safe lock:\n  (\(safeName))\(g.usage(safe))\n"
        body += "{\(Usage.names[Int(safeBit)])} state was registered at:\n  \((g.nodes[safe]?.usageSites[Int(safeBit)] ?? nil)?.description ?? "?")\n\n"
        body += "the \(irqName)-unsafe lock:\n  (\(unsafeName))\(g.usage(unsafe))\n"
        body += "{\(Usage.names[Int(unsafeBit)])} state was registered at:\n  \((g.nodes[unsafe]?.usageSites[Int(unsafeBit)] ?? nil)?.description ?? "?")\n\n"
        body += "the dependency chain between them:\n\n"
        for (n, d) in chain.enumerated().reversed() {
            body += dependencyText(n, d, usage: "")
        }
        body += "other info that might help us debug this:\n\n"
        body += " Possible interrupt unsafe locking scenario:\n\n"
        body += "       T0                    T1\n"
        body += "       ----                  ----\n"
        body += "  lock(\(unsafeName));\n"
        body += "                             local_irq_disable();\n"
        body += "                             lock(\(safeName));\n"
        body += "                             lock(\(unsafeName));\n"
        body += "  <Interrupt>\n"
        body += "    lock(\(safeName));\n\n"
        body += " *** DEADLOCK ***\n"
        return make(.irqLockInversion, "WARNING: possible irq lock inversion dependency detected", t, site: e.site,
                    lock: Engine.lock(g, e), classes: [safeName, unsafeName], chain: chain, held: held, body: body)
    }

    static func sleeping(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, classID: UInt32?, subclass: UInt8,
                         mode: LockdepMode, site: LockdepSite) -> LockdepReport {
        let held = Engine.heldLocks(g, t, upTo: t.pointee.depth)
        let irq = t.pointee.irqState
        let title = "BUG: sleeping function called from invalid context at \(site.fileName):\(site.line)"
        let inAtomic = t.pointee.atomicDepth > 0 || t.pointee.context != 0
        var body = "in_atomic(): \(inAtomic ? 1 : 0), irqs_disabled(): \(irq & 4 != 0 ? 1 : 0), "
        body += "context: \(context(irq)), thread: \"\(t.pointee.name)\"\n"
        var lock: LockdepReport.Lock?
        var classes: [String] = []
        if let classID {
            let node = classID << 3 | UInt32(subclass)
            lock = .init(name: g.nodeName(node), mode: mode, site: site, usage: g.usage(node))
            body += "trying to acquire sleeping lock: \(lock!)\n"
            classes.append(g.nodeName(node))
        } else {
            body += "might sleep: \(site)\n"
        }
        var reasons: [String] = []
        if t.pointee.context != 0 { reasons.append("running in \(context(irq)) context") }
        if t.pointee.hardirqOff > 0 { reasons.append("hardirqs disabled") }
        if t.pointee.softirqOff > 0 { reasons.append("softirqs disabled") }
        for i in 0..<t.pointee.depth where t.pointee.held[i].flags & AcquireFlag.atomic != 0 {
            let h = t.pointee.held[i]
            reasons.append("atomic section of (\(g.nodeName(h.node))) entered at: \(h.site)")
            classes.append(g.nodeName(h.node))
        }
        body += "invalid because: " + reasons.joined(separator: "; ") + "\n"
        return make(.sleepInInvalidContext, title, t, site: site, lock: lock, classes: classes, held: held, body: body)
    }

    static func badUnlock(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, classID: UInt32, ownerWord: UInt,
                          site: LockdepSite) -> LockdepReport {
        let name = g.nodeName(classID << 3)
        let held = Engine.heldLocks(g, t, upTo: t.pointee.depth)
        let lock = LockdepReport.Lock(name: name, mode: .write, site: site, usage: g.usage(classID << 3))
        let owner = ownerWord >> 1
        var body = "thread \"\(t.pointee.name)\" is trying to release lock (\(name)) at:\n  \(site)\n"
        if ownerWord & 1 != 0 && owner != t.pointee.serial {
            let other = g.threadNames[owner] ?? "thread-\(owner)"
            body += "but the lock is held by thread \"\(other)\", not by this thread!\n"
            body += "(the release was not performed)\n"
            return make(.unlockFromOtherThread, "WARNING: lock released by a thread that does not own it!", t,
                        site: site, lock: lock, classes: [name], held: held, body: body, other: other)
        }
        if ownerWord & 1 == 0 && owner == t.pointee.serial && owner != 0 {
            body += "but this thread already released it: double unlock!\n"
            return make(.doubleUnlock, "WARNING: double unlock detected!", t, site: site, lock: lock,
                        classes: [name], held: held, body: body)
        }
        body += "but there are no more locks to release!\n"
        return make(.unlockNotHeld, "WARNING: bad unlock balance detected!", t, site: site, lock: lock,
                    classes: [name], held: held, body: body)
    }

    static func simple(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, kind: LockdepReport.Kind, title: String,
                       node: UInt32?, mode: UInt8, lockSite: LockdepSite?, site: LockdepSite, body: String,
                       extraClasses: [String] = []) -> LockdepReport {
        simple(g, t, kind: kind, title: title, node: node, mode: mode, lockSite: lockSite, site: site,
               namingLock: { _ in body }, extraClasses: extraClasses)
    }

    /// ``simple(_:_:kind:title:node:mode:lockSite:site:body:extraClasses:)`` with a body that
    /// names the lock: `body` gets `"(name)"` (names are printed as given, never scanned for a
    /// placeholder).
    static func simple(_ g: GraphState, _ t: UnsafeMutablePointer<ThreadState>, kind: LockdepReport.Kind, title: String,
                       node: UInt32?, mode: UInt8, lockSite: LockdepSite?, site: LockdepSite,
                       namingLock body: (String) -> String, extraClasses: [String] = []) -> LockdepReport {
        let held = Engine.heldLocks(g, t, upTo: t.pointee.depth)
        var lock: LockdepReport.Lock?
        if let node {
            lock = .init(name: g.nodeName(node), mode: LockdepMode(rawValue: mode) ?? .write,
                         site: lockSite ?? site, usage: g.usage(node))
        }
        let text = "thread \"\(t.pointee.name)\" " + body(node.map { "(\(g.nodeName($0)))" } ?? "")
        let classes = (node.map { [g.nodeName($0)] } ?? []) + extraClasses
        return make(kind, title, t, site: site, lock: lock, classes: classes, held: held, body: text)
    }
}
