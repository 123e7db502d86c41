import Foundation
import XCTest
@testable import Lockdep

/// The self-test grid, modelled on the kernel's lib/locking-selftest.c: every case runs a short
/// locking sequence and states whether a report MUST fire (and which) or MUST stay silent.
/// Every case with two or three events runs in every event order (four-event cycles too).
final class SelfTestGrid: LockdepTestCase {
    enum Kind: String, CaseIterable { case spin, wlock, rlock, mutex }

    enum Expect: CustomStringConvertible {
        case silent
        case exactly([LockdepReport.Kind])
        case first(LockdepReport.Kind)

        var description: String {
            switch self {
            case .silent: "silent"
            case .exactly(let k): k.map(\.rawValue).joined(separator: "+")
            case .first(let k): "\(k.rawValue)..."
            }
        }

        func matches(_ kinds: [LockdepReport.Kind]) -> Bool {
            switch self {
            case .silent: kinds.isEmpty
            case .exactly(let k): kinds == k
            case .first(let k): kinds.first == k
            }
        }
    }

    /// A lock of one grid kind. `irqModel` turns the rwlock kinds into the kernel's spinning
    /// `rwlock_t` (a pseudo-lock that makes the context atomic and does not sleep), which is what
    /// the irq rows are about; the real `CheckedRWLock` sleeps.
    struct GLock: @unchecked Sendable {
        let kind: Kind
        let object: AnyObject?
        let mutex: CheckedMutex?
        let rw: CheckedRWLock?
        let spin: CheckedSpinLock?
        let map: LockdepMap?

        init(_ kind: Kind, _ cls: LockClass, irqModel: Bool = false) {
            self.kind = kind
            var mutex: CheckedMutex?, rw: CheckedRWLock?, spin: CheckedSpinLock?, map: LockdepMap?
            switch kind {
            case .mutex: mutex = CheckedMutex(class: cls)
            case .spin: spin = CheckedSpinLock(class: cls)
            case .wlock, .rlock:
                if irqModel { map = LockdepMap(class: cls, options: [.atomic]) } else { rw = CheckedRWLock(class: cls) }
            }
            self.mutex = mutex; self.rw = rw; self.spin = spin; self.map = map
            self.object = nil
        }

        func lock(subclass: Int = 0) {
            switch kind {
            case .mutex: subclass == 0 ? mutex!.lock() : mutex!.lock(subclass: subclass)
            case .spin: subclass == 0 ? spin!.lock() : spin!.lock(subclass: subclass)
            case .wlock: if let map { Lockdep.acquire(map, mode: .write) } else { rw!.writeLock() }
            case .rlock: if let map { Lockdep.acquire(map, mode: .recursiveRead) } else { rw!.readLock() }
            }
        }

        func unlock() {
            switch kind {
            case .mutex: mutex!.unlock()
            case .spin: spin!.unlock()
            case .wlock, .rlock: if let map { Lockdep.release(map) } else { rw!.unlock() }
            }
        }

        var lockdepLock: any LockdepLock {
            if let mutex { return mutex }
            if let spin { return spin }
            if let rw { return rw }
            return map!
        }
    }

    /// One row of the grid: builds fresh locks and events for a kind, or nil when n/a.
    struct Row {
        let category: String
        let name: String
        let permute: Bool
        let build: (Kind) -> (events: [() -> Void], expect: Expect)?
    }

    struct Cell { var passed = 0; var failed = 0 }

    static func permutations<T>(_ items: [T]) -> [[T]] {
        if items.count <= 1 { return [items] }
        var result: [[T]] = []
        for (i, item) in items.enumerated() {
            var rest = items
            rest.remove(at: i)
            for p in permutations(rest) { result.append([item] + p) }
        }
        return result
    }

    static func classes(_ names: String) -> [LockClass] { names.map { LockClass.unique(String($0)) } }

    /// "XY": lock X, lock Y, unlock Y, unlock X.
    static func pair(_ x: GLock, _ y: GLock) -> () -> Void {
        { x.lock(); y.lock(); y.unlock(); x.unlock() }
    }

    static func cycleRow(_ name: String, _ pairs: [String]) -> Row {
        Row(category: "lock order", name: name, permute: true) { kind in
            let letters = Set(pairs.joined()).sorted()
            var locks: [Character: GLock] = [:]
            for c in letters { locks[c] = GLock(kind, LockClass.unique(String(c))) }
            let events = pairs.map { p in pair(locks[p.first!]!, locks[p.last!]!) }
            return (events, kind == .rlock ? .silent : .exactly([.circularDependency]))
        }
    }

    // MARK: rows

    static var rows: [Row] {
        var rows: [Row] = []
        // Lock order.
        rows.append(Row(category: "lock order", name: "A-A deadlock", permute: false) { kind in
            let cls = LockClass.unique("X")
            let x1 = GLock(kind, cls), x2 = GLock(kind, cls)
            return ([{ x1.lock(); x2.lock(); x2.unlock(); x1.unlock() }],
                    kind == .rlock ? .silent : .exactly([.recursiveLocking]))
        })
        rows.append(cycleRow("A-B-B-A deadlock", ["AB", "BA"]))
        rows.append(cycleRow("A-B-B-C-C-A deadlock", ["AB", "BC", "CA"]))
        rows.append(cycleRow("A-B-C-A-B-C deadlock", ["AB", "CA", "BC"]))
        rows.append(cycleRow("A-B-B-C-C-D-D-A deadlock", ["AB", "BC", "CD", "DA"]))
        rows.append(cycleRow("A-B-C-D-B-D-D-A deadlock", ["AB", "CD", "BD", "DA"]))
        rows.append(cycleRow("A-B-C-D-B-C-D-A deadlock", ["AB", "CD", "BC", "DA"]))
        rows.append(Row(category: "lock order", name: "A-B, B-C, A-C (no cycle)", permute: true) { kind in
            let l = classes("ABC").map { GLock(kind, $0) }
            return ([pair(l[0], l[1]), pair(l[1], l[2]), pair(l[0], l[2])], .silent)
        })
        rows.append(Row(category: "lock order", name: "A-B-B-A with trylock", permute: true) { kind in
            guard kind == .mutex || kind == .spin else { return nil }
            let c = classes("AB")
            let a = GLock(kind, c[0]), b = GLock(kind, c[1])
            let tryA: () -> Void = {
                b.lock()
                let ok = kind == .mutex ? a.mutex!.tryLock() : a.spin!.tryLock()
                if ok { a.unlock() }
                b.unlock()
            }
            return ([pair(a, b), tryA], .silent)
        })

        // Misuse.
        rows.append(Row(category: "misuse", name: "double unlock", permute: false) { kind in
            let l = GLock(kind, LockClass.unique("X"))
            return ([{ l.lock(); l.unlock(); l.unlock() }], .exactly([kind == .rlock ? .unlockNotHeld : .doubleUnlock]))
        })
        rows.append(Row(category: "misuse", name: "unlock of a lock not held", permute: false) { kind in
            let l = GLock(kind, LockClass.unique("X"))
            return ([{ l.unlock() }], .exactly([.unlockNotHeld]))
        })
        rows.append(Row(category: "misuse", name: "unlock by another thread", permute: false) { kind in
            let l = GLock(kind, LockClass.unique("X"))
            return ([{
                let other = StepThread("owner")
                other.run { l.lock() }
                l.unlock()
                other.run { l.unlock() }
                other.finish()
            }], .exactly([kind == .rlock ? .unlockNotHeld : .unlockFromOtherThread]))
        })
        rows.append(Row(category: "misuse", name: "destroying a held lock", permute: false) { kind in
            let cls = LockClass.unique("X")
            return ([{
                var l: GLock? = GLock(kind, cls)
                l!.lock()
                l = nil
            }], .exactly([.heldLockDestroyed]))
        })

        // Recursive-read vs write mixes (rwlock only; the rlock column holds them).
        func mix(_ name: String, _ modes: [(Character, Bool)], _ expect: Expect) -> Row {
            // modes: pairs of (lock letter, write?) for event 1 (first two) and event 2 (last two).
            Row(category: "read/write mix", name: name, permute: true) { kind in
                guard kind == .rlock else { return nil }
                let c = classes("AB")
                let locks: [Character: CheckedRWLock] = ["A": CheckedRWLock(class: c[0]), "B": CheckedRWLock(class: c[1])]
                func take(_ m: (Character, Bool)) { m.1 ? locks[m.0]!.writeLock() : locks[m.0]!.readLock() }
                let e1: () -> Void = { take(modes[0]); take(modes[1]); locks[modes[1].0]!.unlock(); locks[modes[0].0]!.unlock() }
                let e2: () -> Void = { take(modes[2]); take(modes[3]); locks[modes[3].0]!.unlock(); locks[modes[2].0]!.unlock() }
                return ([e1, e2], expect)
            }
        }
        rows.append(mix("rlock A-A read-read", [("A", false), ("A", false), ("B", false), ("B", false)], .silent))
        rows.append(mix("R(A)->W(B), W(B)->W(A)", [("A", false), ("B", true), ("B", true), ("A", true)], .exactly([.circularDependency])))
        rows.append(mix("R(A)->W(B), W(B)->R(A)", [("A", false), ("B", true), ("B", true), ("A", false)], .silent))
        rows.append(mix("W(A)->R(B), R(B)->W(A)", [("A", true), ("B", false), ("B", false), ("A", true)], .silent))
        rows.append(mix("W(A)->R(B), W(B)->W(A)", [("A", true), ("B", false), ("B", true), ("A", true)], .exactly([.circularDependency])))
        rows.append(mix("R(A)->R(B), W(B)->W(A)", [("A", false), ("B", false), ("B", true), ("A", true)], .exactly([.circularDependency])))
        rows.append(mix("R(A)->R(B), R(B)->R(A)", [("A", false), ("B", false), ("B", false), ("A", false)], .silent))
        rows.append(Row(category: "read/write mix", name: "read then write same class", permute: false) { kind in
            guard kind == .rlock else { return nil }
            let cls = LockClass.unique("X")
            let x1 = CheckedRWLock(class: cls), x2 = CheckedRWLock(class: cls)
            return ([{ x1.readLock(); x2.writeLock(); x2.unlock(); x1.unlock() }], .exactly([.recursiveLocking]))
        })
        rows.append(Row(category: "read/write mix", name: "write then read same class", permute: false) { kind in
            guard kind == .rlock else { return nil }
            let cls = LockClass.unique("X")
            let x1 = CheckedRWLock(class: cls), x2 = CheckedRWLock(class: cls)
            return ([{ x1.writeLock(); x2.readLock(); x2.unlock(); x1.unlock() }], .exactly([.recursiveLocking]))
        })
        rows.append(Row(category: "read/write mix", name: "3-cycle through a read joint", permute: true) { kind in
            guard kind == .rlock else { return nil }
            let c = classes("ABC")
            let a = CheckedRWLock(class: c[0]), b = CheckedRWLock(class: c[1]), cc = CheckedRWLock(class: c[2])
            return ([{ a.readLock(); b.writeLock(); b.unlock(); a.unlock() },
                     { b.writeLock(); cc.writeLock(); cc.unlock(); b.unlock() },
                     { cc.writeLock(); a.readLock(); a.unlock(); cc.unlock() }], .silent)
        })
        rows.append(Row(category: "read/write mix", name: "3-cycle through a write joint", permute: true) { kind in
            guard kind == .rlock else { return nil }
            let c = classes("ABC")
            let a = CheckedRWLock(class: c[0]), b = CheckedRWLock(class: c[1]), cc = CheckedRWLock(class: c[2])
            return ([{ a.readLock(); b.writeLock(); b.unlock(); a.unlock() },
                     { b.writeLock(); cc.writeLock(); cc.unlock(); b.unlock() },
                     { cc.writeLock(); a.writeLock(); a.unlock(); cc.unlock() }], .exactly([.circularDependency]))
        })

        // Interrupt contexts.
        func irq(_ name: String, _ ctx: LockdepContext, _ disabled: Lockdep.Interrupts?, _ expect: @escaping (Kind) -> Expect) -> Row {
            Row(category: "irq state", name: name, permute: true) { kind in
                let a = GLock(kind, LockClass.unique("A"), irqModel: true)
                let inIrq: () -> Void = { Lockdep.withContext(ctx) { a.lock(); a.unlock() } }
                let inProcess: () -> Void = {
                    if let disabled { Lockdep.withInterruptsDisabled(disabled) { a.lock(); a.unlock() } } else { a.lock(); a.unlock() }
                }
                return ([inIrq, inProcess], expect(kind))
            }
        }
        rows.append(irq("hardirq-safe A + irqs-on A", .hardirq, nil) { k in
            k == .rlock ? .silent : k == .mutex ? .exactly([.sleepInInvalidContext, .inconsistentLockState]) : .exactly([.inconsistentLockState])
        })
        rows.append(irq("hardirq-safe A + irqs-off A", .hardirq, .hardirq) { k in
            k == .mutex ? .first(.sleepInInvalidContext) : .silent
        })
        rows.append(irq("softirq-safe A + bh-on A", .softirq, nil) { k in
            k == .rlock ? .silent : k == .mutex ? .exactly([.sleepInInvalidContext, .inconsistentLockState]) : .exactly([.inconsistentLockState])
        })
        rows.append(irq("softirq-safe A + bh-off A", .softirq, .softirq) { k in
            k == .mutex ? .first(.sleepInInvalidContext) : .silent
        })
        rows.append(irq("hardirq-safe A + bh-off A (irqs on)", .hardirq, .softirq) { k in
            k == .rlock ? .silent : k == .mutex ? .first(.sleepInInvalidContext) : .exactly([.inconsistentLockState])
        })
        func inversion(_ name: String, _ ctx: LockdepContext, _ off: Lockdep.Interrupts, safeFirst: Bool, _ fires: Bool) -> Row {
            Row(category: "irq inversion", name: name, permute: true) { kind in
                guard kind != .mutex else { return nil }
                let a = GLock(kind, LockClass.unique("A"), irqModel: true)
                let b = GLock(kind, LockClass.unique("B"), irqModel: true)
                let safe: () -> Void = { Lockdep.withContext(ctx) { a.lock(); a.unlock() } }
                let unsafe: () -> Void = { b.lock(); b.unlock() }
                let edge: () -> Void = {
                    Lockdep.withInterruptsDisabled(off) {
                        if safeFirst { pair(a, b)() } else { pair(b, a)() }
                    }
                }
                return ([safe, unsafe, edge], fires && kind != .rlock ? .exactly([.irqLockInversion]) : .silent)
            }
        }
        rows.append(inversion("hardirq-safe A -> unsafe B", .hardirq, .hardirq, safeFirst: true, true))
        rows.append(inversion("hardirq-unsafe B -> safe A", .hardirq, .hardirq, safeFirst: false, false))
        rows.append(inversion("softirq-safe A -> unsafe B", .softirq, .softirq, safeFirst: true, true))
        rows.append(inversion("softirq-unsafe B -> safe A", .softirq, .softirq, safeFirst: false, false))
        rows.append(Row(category: "sleeping in atomic context", name: "sleeping lock in hardirq", permute: false) { kind in
            let a = GLock(kind, LockClass.unique("A"))
            return ([{ Lockdep.withContext(.hardirq) { a.lock(); a.unlock() } }],
                    kind == .spin ? .silent : .exactly([.sleepInInvalidContext]))
        })
        rows.append(Row(category: "sleeping in atomic context", name: "sleeping lock under spinlock", permute: false) { kind in
            let s = CheckedSpinLock(class: .unique("S"))
            let a = GLock(kind, LockClass.unique("A"))
            return ([{ s.lock(); a.lock(); a.unlock(); s.unlock() }],
                    kind == .spin ? .silent : .exactly([.sleepInInvalidContext]))
        })

        // RCU, modelled with a pseudo-lock as the RCU module does.
        func rcuMap(_ kind: Kind) -> LockdepMap {
            // Readers that must not block for the spinlock column, sleepable readers (SRCU-like) otherwise.
            LockdepMap(class: .unique("rcu_read"), options: kind == .spin ? [.atomic, .rcu] : [.rcu])
        }
        rows.append(Row(category: "rcu", name: "synchronize in read section", permute: false) { kind in
            guard kind == .spin else { return nil }
            let rcu = rcuMap(kind)
            return ([{
                Lockdep.acquire(rcu, mode: .recursiveRead)
                Lockdep.emptyWriteSection(rcu)
                Lockdep.release(rcu)
            }], .exactly([.illegalSynchronize]))
        })
        rows.append(Row(category: "rcu", name: "synchronize under a lock readers take", permute: true) { kind in
            let rcu = rcuMap(kind)
            let l = GLock(kind, LockClass.unique("L"))
            let reader: () -> Void = { Lockdep.acquire(rcu, mode: .recursiveRead); l.lock(); l.unlock(); Lockdep.release(rcu) }
            let writer: () -> Void = { l.lock(); Lockdep.emptyWriteSection(rcu); l.unlock() }
            let expect: Expect = switch kind {
            case .spin: .exactly([.sleepInInvalidContext, .circularDependency])
            case .rlock: .silent
            default: .exactly([.circularDependency])
            }
            return ([reader, writer], expect)
        })
        rows.append(Row(category: "rcu", name: "synchronize after dropping the lock", permute: true) { kind in
            let rcu = rcuMap(kind)
            let l = GLock(kind, LockClass.unique("L"))
            let reader: () -> Void = { Lockdep.acquire(rcu, mode: .recursiveRead); l.lock(); l.unlock(); Lockdep.release(rcu) }
            let writer: () -> Void = { l.lock(); l.unlock(); Lockdep.emptyWriteSection(rcu) }
            return ([reader, writer], .silent)
        })
        rows.append(Row(category: "rcu", name: "dereference outside read section", permute: false) { kind in
            let rcu = rcuMap(kind)
            let l = GLock(kind, LockClass.unique("L"))
            return ([{ Lockdep.dereferenceCheck(rcu, l.lockdepLock) }], .exactly([.suspiciousDereference]))
        })
        rows.append(Row(category: "rcu", name: "dereference in read section or under lock", permute: false) { kind in
            let rcu = rcuMap(kind)
            let l = GLock(kind, LockClass.unique("L"))
            return ([{
                Lockdep.acquire(rcu, mode: .recursiveRead); Lockdep.dereferenceCheck(rcu, l.lockdepLock); Lockdep.release(rcu)
                l.lock(); Lockdep.dereferenceCheck(rcu, l.lockdepLock); l.unlock()
            }], .silent)
        })
        rows.append(Row(category: "rcu", name: "lock inside atomic read section", permute: false) { kind in
            let rcu = LockdepMap(class: .unique("rcu_read"), options: [.atomic, .rcu])
            let l = GLock(kind, LockClass.unique("L"))
            return ([{ Lockdep.acquire(rcu, mode: .recursiveRead); l.lock(); l.unlock(); Lockdep.release(rcu) }],
                    kind == .spin ? .silent : .exactly([.sleepInInvalidContext]))
        })
        rows.append(Row(category: "rcu", name: "lock inside sleepable read section", permute: false) { kind in
            let rcu = LockdepMap(class: .unique("srcu_read"), options: [.rcu])
            let l = GLock(kind, LockClass.unique("L"))
            return ([{ Lockdep.acquire(rcu, mode: .recursiveRead); l.lock(); l.unlock(); Lockdep.release(rcu) }], .silent)
        })
        rows.append(Row(category: "rcu", name: "call_rcu callback takes lock", permute: false) { kind in
            let l = GLock(kind, LockClass.unique("L"))
            return ([{ Lockdep.withContext(.softirq) { l.lock(); l.unlock() } }],
                    kind == .spin ? .silent : .exactly([.sleepInInvalidContext]))
        })

        // Work items: the seed 001 deadlock and its fixed form.
        func work(_ name: String, _ op: String, fixed: Bool) -> Row {
            Row(category: "work items", name: name, permute: true) { kind in
                guard kind != .spin else { return nil }
                let queue = SelfTestGrid.sharedQueue!
                let l = GLock(kind, LockClass.unique("L"))
                // Two items of one work class: the class-level dependency is what matters, so
                // the disabled item need not be the one that ran.
                let workClass = LockClass.unique("work:w")
                let item = WorkItem("w", on: queue, class: workClass) { l.lock(); l.unlock() }
                let sibling = WorkItem("w", on: queue, class: workClass) { l.lock(); l.unlock() }
                let runWorker: () -> Void = { _ = sibling.queue(); sibling.flush() }
                let syncOp: () -> Void = {
                    switch op {
                    case "cancel": _ = item.cancelSync()
                    case "flush": _ = item.flush()
                    default: _ = item.disableSync()
                    }
                }
                let underLock: () -> Void = fixed ? { l.lock(); l.unlock(); syncOp() } : { l.lock(); syncOp(); l.unlock() }
                let expect: Expect = fixed || kind == .rlock ? .silent : .exactly([.circularDependency])
                return ([runWorker, underLock], expect)
            }
        }
        rows.append(work("cancelSync under lock worker takes", "cancel", fixed: false))
        rows.append(work("flush under lock worker takes", "flush", fixed: false))
        rows.append(work("disableSync under lock worker takes", "disable", fixed: false))
        rows.append(work("cancelSync after unlock (fixed)", "cancel", fixed: true))
        rows.append(work("flush after unlock (fixed)", "flush", fixed: true))

        // Nesting annotations.
        rows.append(Row(category: "nesting", name: "subclass A/0 -> A/1", permute: false) { kind in
            guard kind == .mutex || kind == .spin else { return nil }
            let cls = LockClass.unique("A")
            let a1 = GLock(kind, cls), a2 = GLock(kind, cls)
            return ([{ a1.lock(); a2.lock(subclass: 1); a2.unlock(); a1.unlock() }], .silent)
        })
        rows.append(Row(category: "nesting", name: "subclass A/0->A/1, A/1->A/0", permute: true) { kind in
            guard kind == .mutex || kind == .spin else { return nil }
            let cls = LockClass.unique("A")
            let a1 = GLock(kind, cls), a2 = GLock(kind, cls)
            return ([{ a1.lock(); a2.lock(subclass: 1); a2.unlock(); a1.unlock() },
                     { a1.lock(subclass: 1); a2.lock(); a2.unlock(); a1.unlock() }], .exactly([.circularDependency]))
        })
        rows.append(Row(category: "nesting", name: "nest lock held: X1, X2 under O", permute: false) { kind in
            guard kind == .mutex else { return nil }
            let cls = LockClass.unique("X")
            let o = CheckedMutex(class: .unique("O"))
            let x1 = CheckedMutex(class: cls), x2 = CheckedMutex(class: cls)
            return ([{ o.lock(); x1.lock(nestedUnder: o); x2.lock(nestedUnder: o); x2.unlock(); x1.unlock(); o.unlock() }], .silent)
        })
        rows.append(Row(category: "nesting", name: "nest lock not held: X1, X2", permute: false) { kind in
            guard kind == .mutex else { return nil }
            let cls = LockClass.unique("X")
            let o = CheckedMutex(class: .unique("O"))
            let x1 = CheckedMutex(class: cls), x2 = CheckedMutex(class: cls)
            // Each acquire under a nest lock that is not held warns (the kernel's "Nested lock
            // was not taken"); without it, X2 under X1 is recursive locking.
            return ([{ x1.lock(nestedUnder: o); x2.lock(nestedUnder: o); x2.unlock(); x1.unlock() }],
                    .exactly([.assertionFailed, .assertionFailed, .recursiveLocking]))
        })
        rows.append(Row(category: "nesting", name: "no-validate class A-A", permute: false) { kind in
            let cls = LockClass.unique("nv", validates: false)
            let x1 = GLock(kind, cls), x2 = GLock(kind, cls)
            return ([{ x1.lock(); x2.lock(); x2.unlock(); x1.unlock() }], .silent)
        })
        return rows
    }

    nonisolated(unsafe) static var sharedQueue: WorkQueue!

    // MARK: runner

    func testSelfTestGrid() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        SelfTestGrid.sharedQueue = WorkQueue("grid", threads: 2)
        defer { SelfTestGrid.sharedQueue.shutdown() }
        var cells: [String: [Kind: Cell]] = [:]
        var order: [(String, String)] = []
        var total = 0, failures: [String] = []
        for row in SelfTestGrid.rows {
            order.append((row.category, row.name))
            for kind in Kind.allCases {
                guard let probe = row.build(kind) else { continue }
                let count = probe.events.count
                let orders = row.permute ? SelfTestGrid.permutations(Array(0..<count)) : [Array(0..<count)]
                for perm in orders {
                    Lockdep.resetForTesting()
                    collector.install()
                    collector.clear()
                    guard let built = row.build(kind) else { continue }
                    for i in perm { built.events[i]() }
                    let kinds = collector.kinds
                    total += 1
                    if built.expect.matches(kinds) {
                        cells[row.name, default: [:]][kind, default: Cell()].passed += 1
                    } else {
                        cells[row.name, default: [:]][kind, default: Cell()].failed += 1
                        let msg = "\(row.name) [\(kind)] order \(perm): expected \(built.expect), got \(kinds.map(\.rawValue))"
                        failures.append(msg)
                        XCTFail(msg + "\n" + collector.reports.map(\.text).joined(separator: "\n"))
                    }
                }
            }
        }
        // Print the grid as the kernel does.
        let rule = "  " + String(repeating: "-", count: 74) + "\n"
        var out = "\n" + rule
        out += "  | Lockdep self-test grid: \(total) cases (okN = passed in all N event orders)\n"
        out += rule
        out += pad("", 46) + "| spin |wlock |rlock |mutex |\n"
        out += rule
        var lastCategory = ""
        for (category, name) in order {
            if category != lastCategory { out += "  \(category):\n"; lastCategory = category }
            var line = pad(name + ":", 46)
            for kind in Kind.allCases {
                if let c = cells[name]?[kind] {
                    line += c.failed == 0 ? (c.passed > 1 ? pad("ok\(c.passed)", 6) : "  ok  ") : "FAILED"
                } else {
                    line += "  -   "
                }
                line += "|"
            }
            out += line + "\n"
        }
        out += rule
        out += failures.isEmpty ? "  Good, all \(total) testcases passed!\n" : "  \(failures.count) of \(total) testcases FAILED\n"
        print(out)
        XCTAssertGreaterThanOrEqual(total, 200)
        XCTAssertEqual(failures, [])
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
}
