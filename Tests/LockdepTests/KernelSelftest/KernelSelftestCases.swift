import Foundation
@testable import Lockdep

/// One `dotest()` of the kernel's lib/locking-selftest.c, translated.
struct KCase {
    enum Body {
        /// Runs the translated sequence.
        case run((KEnv) -> Void)
        /// Depends on a kernel-only feature: listed, not run.
        case skipped(String)
        /// Expressible only once Lockdep's engine has the named support: listed, not run.
        case needsEngine(String)
    }

    /// The family the counts are grouped by.
    let family: String
    /// The kernel's row label (`print_testname`).
    let row: String
    /// The kernel's column (`spin`, `wlock`, ..., or the test's own name in the ww/misc tables).
    let column: String
    /// The kernel's function name, such as `irqsafe2B_hard_spin_12`.
    let name: String
    /// The kernel's expectation: `true` for FAILURE (Lockdep must report), `false` for SUCCESS.
    let expectFailure: Bool
    var readers: CheckedSpinRWLock.Readers = .recursive
    /// A note printed with the case (a stand-in used for a kernel type).
    var note: String? = nil
    let body: Body
}

enum KernelSelftest {
    static let perms2 = ["12", "21"]
    static let perms3 = ["123", "132", "213", "231", "312", "321"]

    /// Runs events "1", "2", "3" in the order `nr` names.
    static func permuted(_ nr: String, _ events: [(KEnv) -> Void]) -> (KEnv) -> Void {
        { env in for c in nr { events[Int(String(c))! - 1](env) } }
    }

    // MARK: the table

    static var cases: [KCase] {
        var all: [KCase] = []
        all += lockOrder()
        all += readWrite()
        all += irq()
        all += wwTests()
        all += queuedReadLock()
        all += fsReclaim()
        all += waitContext()
        all += localLock()
        all += misc()
        return all
    }

    // DO_TESTCASE_6R / DO_TESTCASE_6: one row, seven columns.
    static func six(_ family: String, _ row: String, _ name: String, rlockSucceeds: Bool,
                    _ body: @escaping (KEnv, KKind) -> Void) -> [KCase] {
        KKind.allCases.map { k in
            KCase(family: family, row: row, column: k.rawValue, name: "\(name)_\(k.rawValue)",
                  expectFailure: !(rlockSucceeds && k == .rlock), body: .run { env in body(env, k) })
        }
    }

    static func lockOrder() -> [KCase] {
        var c: [KCase] = []
        c += six("A-A deadlock", "A-A deadlock", "AA", rlockSucceeds: true) { e, k in
            e.LOCK(k, "X1"); e.LOCK(k, "X2")
        }
        let cycles: [(String, String, [String])] = [
            ("A-B-B-A deadlock", "ABBA", ["AB", "BA"]),
            ("A-B-B-C-C-A deadlock", "ABBCCA", ["AB", "BC", "CA"]),
            ("A-B-C-A-B-C deadlock", "ABCABC", ["AB", "CA", "BC"]),
            ("A-B-B-C-C-D-D-A deadlock", "ABBCCDDA", ["AB", "BC", "CD", "DA"]),
            ("A-B-C-D-B-D-D-A deadlock", "ABCDBDDA", ["AB", "CD", "BD", "DA"]),
            ("A-B-C-D-B-C-D-A deadlock", "ABCDBCDA", ["AB", "CD", "BC", "DA"]),
        ]
        for (row, name, pairs) in cycles {
            c += six(row, row, name, rlockSucceeds: true) { e, k in
                for p in pairs { e.LOCK_UNLOCK_2(k, String(p.first!), String(p.last!)) }
            }
        }
        c += six("double unlock", "double unlock", "double_unlock", rlockSucceeds: false) { e, k in
            e.LOCK(k, "A"); e.UNLOCK(k, "A"); e.UNLOCK(k, "A")
        }
        c += six("initialize held", "initialize held", "init_held", rlockSucceeds: false) { e, k in
            e.LOCK(k, "A"); e.INIT(k, "A")
        }
        return c
    }

    static func readWrite() -> [KCase] {
        var c: [KCase] = []
        func one(_ row: String, _ column: String, _ name: String, _ fails: Bool, _ body: @escaping (KEnv) -> Void) {
            c.append(KCase(family: "recursive read-lock", row: row, column: column, name: name, expectFailure: fails,
                           body: .run(body)))
        }
        one("recursive read-lock", "rlock", "rlock_AA1", false) { e in e.RL("X1"); e.RL("X1") }
        one("recursive read-lock", "rsem", "rsem_AA1", true) { e in e.RSL("X1"); e.RSL("X1") }
        one("recursive read-lock #2", "rlock", "rlock_AA1B", false) { e in e.RL("X1"); e.RL("X2") }
        one("recursive read-lock #2", "rsem", "rsem_AA1B", true) { e in e.RSL("X1"); e.RSL("X2") }
        one("mixed read-write-lock", "rlock", "rlock_AA2", true) { e in e.RL("X1"); e.WL("X2") }
        one("mixed read-write-lock", "rsem", "rsem_AA2", true) { e in e.RSL("X1"); e.WSL("X2") }
        one("mixed write-read-lock", "rlock", "rlock_AA3", true) { e in e.WL("X1"); e.RL("X2") }
        one("mixed write-read-lock", "rsem", "rsem_AA3", true) { e in e.WSL("X1"); e.RSL("X2") }
        one("mixed read-lock/lock-write ABBA", "rlock", "rlock_ABBA1", true) { e in
            e.RL("X1"); e.L("Y1"); e.U("Y1"); e.RU("X1")
            e.L("Y1"); e.WL("X1"); e.WU("X1"); e.U("Y1")
        }
        one("mixed read-lock/lock-write ABBA", "rsem", "rwsem_ABBA1", true) { e in
            e.RSL("X1"); e.ML("Y1"); e.MU("Y1"); e.RSU("X1")
            e.ML("Y1"); e.WSL("X1"); e.WSU("X1"); e.MU("Y1")
        }
        one("mixed read-lock/lock-read ABBA", "rlock", "rlock_ABBA2", false) { e in
            e.RL("X1"); e.L("Y1"); e.U("Y1"); e.RU("X1")
            e.L("Y1"); e.RL("X1"); e.RU("X1"); e.U("Y1")
        }
        one("mixed read-lock/lock-read ABBA", "rsem", "rwsem_ABBA2", true) { e in
            e.RSL("X1"); e.ML("Y1"); e.MU("Y1"); e.RSU("X1")
            e.ML("Y1"); e.RSL("X1"); e.RSU("X1"); e.MU("Y1")
        }
        one("mixed write-lock/lock-write ABBA", "rlock", "rlock_ABBA3", true) { e in
            e.WL("X1"); e.L("Y1"); e.U("Y1"); e.WU("X1")
            e.L("Y1"); e.WL("X1"); e.WU("X1"); e.U("Y1")
        }
        one("mixed write-lock/lock-write ABBA", "rsem", "rwsem_ABBA3", true) { e in
            e.WSL("X1"); e.ML("Y1"); e.MU("Y1"); e.WSU("X1")
            e.ML("Y1"); e.WSL("X1"); e.WSU("X1"); e.MU("Y1")
        }
        one("chain cached mixed R-L/L-W ABBA", "rlock", "rlock_chaincache_ABBA1", true) { e in
            e.RL("X1"); e.L("Y1"); e.U("Y1"); e.RU("X1")
            e.L("Y1"); e.RL("X1"); e.RU("X1"); e.U("Y1")
            e.L("Y1"); e.WL("X1"); e.WU("X1"); e.U("Y1")
        }
        // W = write_lock, R = read_lock (recursive) of rwlock X1/Y1/Z1.
        typealias Op = (Bool, String)
        func pairEvent(_ a: Op, _ b: Op) -> (KEnv) -> Void {
            { e in
                a.0 ? e.WL(a.1) : e.RL(a.1)
                b.0 ? e.WL(b.1) : e.RL(b.1)
                b.0 ? e.WU(b.1) : e.RU(b.1)
                a.0 ? e.WU(a.1) : e.RU(a.1)
            }
        }
        let W = true, R = false
        let rr: [(String, String, Bool, [(KEnv) -> Void])] = [
            ("rlock W1R2/W2R3/W3R1", "W1R2_W2R3_W3R1", true,
             [pairEvent((W, "X1"), (R, "Y1")), pairEvent((W, "Y1"), (R, "Z1")), pairEvent((W, "Z1"), (R, "X1"))]),
            ("rlock W1W2/R2R3/W3R1", "W1W2_R2R3_W3R1", true,
             [pairEvent((W, "X1"), (W, "Y1")), pairEvent((R, "Y1"), (R, "Z1")), pairEvent((W, "Z1"), (R, "X1"))]),
            ("rlock W1W2/R2R3/R3W1", "W1W2_R2R3_R3W1", false,
             [pairEvent((W, "X1"), (W, "Y1")), pairEvent((R, "Y1"), (R, "Z1")), pairEvent((R, "Z1"), (W, "X1"))]),
            ("rlock W1R2/R2R3/W3W1", "W1R2_R2R3_W3W1", false,
             [pairEvent((W, "X1"), (R, "Y1")), pairEvent((R, "Y1"), (R, "Z1")), pairEvent((W, "Z1"), (W, "X1"))]),
        ]
        for (row, name, fails, events) in rr {
            for nr in perms3 {
                c.append(KCase(family: row, row: "\(row)/\(nr)", column: "rlock", name: "\(name)_\(nr)",
                               expectFailure: fails, body: .run(permuted(nr, events))))
            }
        }
        return c
    }

    // MARK: irq-context cases

    static func irq() -> [KCase] {
        var c: [KCase] = []
        let lockKinds: [KKind] = [.spin, .wlock, .rlock]
        /// DO_TESTCASE_6I-style rows: for each order, hard then soft, spin/wlock/rlock.
        func grid(_ family: String, _ label: String, _ name: String, perms: [String], irqs: [KIRQ] = [.hard, .soft],
                  kinds: [KKind] = lockKinds, fails: @escaping (KKind) -> Bool,
                  _ events: @escaping (KEnv, KIRQ, KKind) -> [(KEnv) -> Void]) {
            for nr in perms {
                for i in irqs {
                    for k in kinds {
                        let irqPart = irqs.count == 1 && family == "irqsafe2A" ? "" : "_\(i.rawValue)"
                        let prefix = family == "irqsafe2A" ? "" : "\(i.rawValue)-"
                        c.append(KCase(family: family, row: "\(prefix)\(label)/\(nr)", column: k.rawValue,
                                       name: "\(name)\(irqPart)_\(k.rawValue)_\(nr)", expectFailure: fails(k),
                                       body: .run { env in permuted(nr, events(env, i, k))(env) }))
                    }
                }
            }
        }
        let spinWlockFail: (KKind) -> Bool = { $0 != .rlock }

        // irqs-on + irq-safe-A
        grid("irqsafe1", "irqs-on + irq-safe-A", "irqsafe1", perms: perms2, fails: spinWlockFail) { _, i, k in
            [{ e in e.IRQ_ENTER(i) { e.LOCK(k, "A"); e.UNLOCK(k, "A") } },
             { e in e.LOCK(k, "A"); e.UNLOCK(k, "A") }]
        }
        // sirq-safe-A => hirqs-on (no hard/soft split: softirq-safe, then hardirqs re-enabled under A)
        grid("irqsafe2A", "sirq-safe-A => hirqs-on", "irqsafe2A", perms: perms2, irqs: [.soft], fails: spinWlockFail) { _, _, k in
            [{ e in e.SOFTIRQ_ENTER { e.LOCK(k, "A"); e.UNLOCK(k, "A") } },
             { e in e.HARDIRQ_DISABLE(); e.LOCK(k, "A"); e.HARDIRQ_ENABLE(); e.UNLOCK(k, "A") }]
        }
        // safe-A + irqs-on
        grid("irqsafe2B", "safe-A + irqs-on", "irqsafe2B", perms: perms2, fails: spinWlockFail) { _, i, k in
            [{ e in e.IRQ_ENTER(i) { e.LOCK(k, "A"); e.UNLOCK(k, "A") } },
             { e in e.IRQ_DISABLE(i); e.LOCK(k, "A"); e.IRQ_ENABLE(i); e.UNLOCK(k, "A") }]
        }
        // safe-A + unsafe-B #1
        grid("irqsafe3", "safe-A + unsafe-B #1", "irqsafe3", perms: perms3, fails: spinWlockFail) { _, i, k in
            [{ e in e.LOCK(k, "A"); e.LOCK(k, "B"); e.UNLOCK(k, "B"); e.UNLOCK(k, "A") },
             { e in e.LOCK(k, "B"); e.UNLOCK(k, "B") },
             { e in e.IRQ_ENTER(i) { e.LOCK(k, "A"); e.UNLOCK(k, "A") } }]
        }
        // safe-A + unsafe-B #2
        grid("irqsafe4", "safe-A + unsafe-B #2", "irqsafe4", perms: perms3, fails: spinWlockFail) { _, i, k in
            [{ e in e.IRQ_DISABLE(i); e.LOCK(k, "A"); e.LOCK(k, "B"); e.UNLOCK(k, "B"); e.UNLOCK(k, "A"); e.IRQ_ENABLE(i) },
             { e in e.LOCK(k, "B"); e.UNLOCK(k, "B") },
             { e in e.IRQ_ENTER(i) { e.LOCK(k, "A"); e.UNLOCK(k, "A") } }]
        }
        // irq lock-inversion (A is always rwlock_A)
        grid("irq_inversion", "irq lock-inversion", "irq_inversion", perms: perms3, fails: spinWlockFail) { _, i, k in
            [{ e in e.IRQ_DISABLE(i); e.WL("A"); e.LOCK(k, "B"); e.UNLOCK(k, "B"); e.WU("A"); e.IRQ_ENABLE(i) },
             { e in e.LOCK(k, "B"); e.UNLOCK(k, "B") },
             { e in e.IRQ_ENTER(i) { e.RL("A"); e.RU("A") } }]
        }
        // irq read-recursion #1..#3: columns wlock (FAILURE) and rlock (SUCCESS).
        let rw: [KKind] = [.wlock, .rlock]
        grid("irq_read_recursion", "irq read-recursion", "irq_read_recursion", perms: perms3, kinds: rw,
             fails: spinWlockFail) { _, i, k in
            [{ e in e.IRQ_DISABLE(i); e.WL("A"); e.WU("A"); e.IRQ_ENABLE(i) },
             { e in e.RL("A"); e.RU("A") },
             { e in e.IRQ_ENTER(i) { e.LOCK(k, "A"); e.L("B"); e.U("B"); e.UNLOCK(k, "A") } }]
        }
        grid("irq_read_recursion2", "irq read-recursion #2", "irq_read_recursion2", perms: perms3, kinds: rw,
             fails: spinWlockFail) { _, i, k in
            [{ e in e.IRQ_DISABLE(i); e.L("B"); e.LOCK(k, "A"); e.UNLOCK(k, "A"); e.U("B"); e.IRQ_ENABLE(i) },
             { e in e.RL("A"); e.RU("A") },
             { e in e.IRQ_ENTER(i) { e.L("B"); e.U("B") } }]
        }
        grid("irq_read_recursion3", "irq read-recursion #3", "irq_read_recursion3", perms: perms3, kinds: rw,
             fails: spinWlockFail) { _, i, k in
            [{ e in e.IRQ_DISABLE(i); e.WL("B"); e.LOCK(k, "A"); e.UNLOCK(k, "A"); e.WU("B"); e.IRQ_ENABLE(i) },
             { e in e.RL("A"); e.RU("A") },
             { e in e.IRQ_ENTER(i) { e.RL("B"); e.RU("B") } }]
        }
        return c
    }
}
