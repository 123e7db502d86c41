import Foundation
@testable import Lockdep

extension KernelSelftest {
    // MARK: wound/wait

    /// Another thread holding `mutexes` under a context older than any the case creates later
    /// (the kernel's `o2.ctx = &t2` with `t2.stamp--`): the case's context must back off.
    final class OlderHolder: @unchecked Sendable {
        let thread = StepThread("ww-older")
        let ctx = KBox<WWAcquireContext?>(nil)
        let held = KBox<[WWMutex]>([])

        init(_ ww: WWClass, holding mutexes: [WWMutex]) {
            let ctx = self.ctx, held = self.held
            thread.run {
                let t2 = WWAcquireContext(ww)
                for m in mutexes { try? m.lock(t2) }
                ctx.value = t2
                held.value = mutexes
            }
        }

        /// The other context releases `m` (the kernel's `ww_mutex_base_unlock(&o2.base)`).
        func release(_ m: WWMutex) {
            let held = self.held
            thread.run {
                m.unlock()
                held.value.removeAll { $0 === m }
            }
        }

        func finish() {
            let ctx = self.ctx, held = self.held
            thread.run {
                for m in held.value { m.unlock() }
                ctx.value?.fini()
            }
            thread.finish()
        }
    }

    /// The EDEADLK prologue: o2 (and o3) held by an older context; t takes o, then o2 fails.
    static func edeadlk(_ e: KEnv, alsoO3: Bool = false) -> (WWAcquireContext, OlderHolder) {
        let other = OlderHolder(e.ww, holding: alsoO3 ? [e.o2, e.o3] : [e.o2])
        e.cleanup.append { other.finish() }
        let t = WWAcquireContext(e.ww)
        do throws(WWError) { try e.o.lock(t) } catch { e.WARN_ON(true, "WWL(o, t) = \(error)") }
        do throws(WWError) { try e.o2.lock(t); e.WARN_ON(true, "WWL(o2, t) succeeded, expected -EDEADLK") } catch {
            e.WARN_ON(error != .deadlock, "WWL(o2, t) = \(error), expected -EDEADLK")
        }
        return (t, other)
    }

    static func wwTests() -> [KCase] {
        var c: [KCase] = []
        func ww(_ row: String, _ name: String, _ fails: Bool, _ body: @escaping (KEnv) -> Void) {
            c.append(KCase(family: "ww_mutex", row: row, column: name.replacingOccurrences(of: "ww_test_", with: ""),
                           name: name, expectFailure: fails, body: .run(body)))
        }
        ww("ww api failures", "ww_test_fail_acquire", false) { e in
            let t = WWAcquireContext(e.ww)
            do throws(WWError) { try e.o.lock(t) } catch { e.WARN_ON(true, "WWL(o, t) = \(error)"); return }
            e.WARN_ON(e.o.context !== t, "o.ctx != t")
            do throws(WWError) { try e.o.lock(t); e.WARN_ON(true, "second WWL(o, t) succeeded") } catch {
                e.WARN_ON(error != .alreadyHeld, "second WWL(o, t) = \(error), expected -EALREADY")
            }
            e.WARN_ON(e.o.tryLock(), "WWT(o) succeeded on a held mutex")
            // t2: a younger context that already holds something (t2 = t; t2.stamp++).
            let younger = StepThread("ww-younger")
            let result = KBox<WWError?>(nil)
            let ww = e.ww, o = e.o, o3 = e.o3
            younger.run {
                let t2 = WWAcquireContext(ww)
                try? o3.lock(t2)
                do throws(WWError) { try o.lock(t2) } catch { result.value = error }
                o3.unlock()
                t2.fini()
            }
            younger.finish()
            e.WARN_ON(result.value != .deadlock, "WWL(o, t2) = \(String(describing: result.value)), expected -EDEADLK")
            e.o.unlock()
            if e.o.tryLock() { e.o.unlock() } else { e.WARN_ON(true, "WWT(o) failed on a free mutex") }
        }
        ww("ww api failures", "ww_test_normal", false) { e in
            e.o.baseLock(); e.o.baseUnlock()
            e.WARN_ON(e.o.context != nil, "mutex_lock changed o.ctx")
            e.o.baseLock(); e.o.baseUnlock()            // mutex_lock_interruptible
            e.o.baseLock(); e.o.baseUnlock()            // mutex_lock_killable
            let ok = e.o.baseTryLock()
            e.WARN_ON(!ok, "trylock of a free mutex failed")
            if ok { e.o.baseUnlock() }
            e.o.baseLock()
            e.WARN_ON(e.o.baseTryLock(), "trylock of a held mutex succeeded")
            e.o.baseUnlock()
            let t = WWAcquireContext(e.ww)
            e.o.baseLock(nestedUnder: t)
            e.o.baseUnlock()
            e.WARN_ON(e.o.context != nil, "base operations changed o.ctx")
        }
        ww("ww api failures", "ww_test_unneeded_slow", true) { e in
            let t = WWAcquireContext(e.ww)
            e.o.lockSlow(t)
        }
        ww("ww contexts mixing", "ww_test_two_contexts", true) { e in
            _ = WWAcquireContext(e.ww)
            _ = WWAcquireContext(e.ww)
        }
        ww("ww contexts mixing", "ww_test_diff_class", true) { e in
            let t = WWAcquireContext(WWClass("ww_other"))   // t.ww_class = NULL: not o's class
            try? e.o.lock(t)
        }
        ww("finishing ww context", "ww_test_context_done_twice", true) { e in
            let t = WWAcquireContext(e.ww)
            t.done(); t.done(); t.fini()
        }
        ww("finishing ww context", "ww_test_context_unlock_twice", true) { e in
            let t = WWAcquireContext(e.ww)
            t.done(); t.fini(); t.fini()
        }
        ww("finishing ww context", "ww_test_context_fini_early", true) { e in
            let t = WWAcquireContext(e.ww)
            try? e.o.lock(t)
            t.done(); t.fini()
        }
        ww("finishing ww context", "ww_test_context_lock_after_done", true) { e in
            let t = WWAcquireContext(e.ww)
            t.done()
            try? e.o.lock(t)
        }
        ww("locking mismatches", "ww_test_object_unlock_twice", true) { e in
            try? e.o.lock(nil)
            e.o.unlock(); e.o.unlock()
        }
        ww("locking mismatches", "ww_test_object_lock_unbalanced", true) { e in
            let t = WWAcquireContext(e.ww)
            try? e.o.lock(t)
            t.acquired = 0
            e.o.unlock()
            t.fini()
        }
        ww("locking mismatches", "ww_test_object_lock_stale_context", true) { e in
            // o.ctx = &t2: a context of another thread, already finished, left in o.
            let other = StepThread("ww-stale")
            let stale = KBox<WWAcquireContext?>(nil)
            let ww = e.ww
            other.run { let t2 = WWAcquireContext(ww); t2.fini(); stale.value = t2 }
            other.finish()
            let t = WWAcquireContext(e.ww)
            e.o.context = stale.value
            try? e.o.lock(t)
        }
        ww("EDEADLK handling", "ww_test_edeadlk_normal", false) { e in
            let (t, other) = edeadlk(e)
            other.release(e.o2)
            e.o.unlock()
            do throws(WWError) { try e.o2.lock(t) } catch { e.WARN_ON(true, "WWL(o2, t) = \(error) after backing off") }
        }
        ww("EDEADLK handling", "ww_test_edeadlk_normal_slow", false) { e in
            let (t, other) = edeadlk(e)
            other.release(e.o2)
            e.o.unlock()
            e.o2.lockSlow(t)
        }
        ww("EDEADLK handling", "ww_test_edeadlk_no_unlock", true) { e in
            let (t, other) = edeadlk(e)
            other.release(e.o2)
            try? e.o2.lock(t)
        }
        ww("EDEADLK handling", "ww_test_edeadlk_no_unlock_slow", true) { e in
            let (t, other) = edeadlk(e)
            other.release(e.o2)
            e.o2.lockSlow(t)
        }
        ww("EDEADLK handling", "ww_test_edeadlk_acquire_more", true) { e in
            let (t, _) = edeadlk(e)
            try? e.o3.lock(t)
        }
        ww("EDEADLK handling", "ww_test_edeadlk_acquire_more_slow", true) { e in
            let (t, _) = edeadlk(e)
            e.o3.lockSlow(t)
        }
        ww("EDEADLK handling", "ww_test_edeadlk_acquire_more_edeadlk", true) { e in
            let (t, _) = edeadlk(e, alsoO3: true)
            do throws(WWError) { try e.o3.lock(t); e.WARN_ON(true, "WWL(o3, t) succeeded") } catch {
                e.WARN_ON(error != .deadlock, "WWL(o3, t) = \(error), expected -EDEADLK")
            }
        }
        ww("EDEADLK handling", "ww_test_edeadlk_acquire_more_edeadlk_slow", true) { e in
            let (t, _) = edeadlk(e, alsoO3: true)
            e.o3.lockSlow(t)
        }
        ww("EDEADLK handling", "ww_test_edeadlk_acquire_wrong", true) { e in
            let (t, _) = edeadlk(e)
            e.o.unlock()
            try? e.o3.lock(t)
        }
        ww("EDEADLK handling", "ww_test_edeadlk_acquire_wrong_slow", true) { e in
            let (t, _) = edeadlk(e)
            e.o.unlock()
            e.o3.lockSlow(t)
        }
        ww("spinlock nest unlocked", "ww_test_spin_nest_unlocked", true) { e in
            e.spin("A").lock(nestedUnder: e.o)
            e.U("A")
        }
        ww("spinlock nest test", "ww_test_spin_nest_lock", false) { e in
            e.L("X1")
            e.spin("Y1").lock(nestedUnder: e.spin("X1"))
            e.L("A")
            e.spin("Y2").lock(nestedUnder: e.spin("X1"))
            e.U("A"); e.U("Y2"); e.U("Y1"); e.U("X1")
        }
        // The block/try/context matrix.
        ww("context", "ww_test_context_block", true) { e in
            let t = WWAcquireContext(e.ww)
            try? e.o.lock(t)
            try? e.o2.lock(nil)
        }
        ww("context", "ww_test_context_try", false) { e in
            let t = WWAcquireContext(e.ww)
            try? e.o.lock(t)
            e.WARN_ON(!e.o2.tryLock(), "WWT(o2) failed")
            e.o2.unlock(); e.o.unlock()
        }
        ww("context", "ww_test_context_context", false) { e in
            let t = WWAcquireContext(e.ww)
            try? e.o.lock(t)
            do throws(WWError) { try e.o2.lock(t) } catch { e.WARN_ON(true, "WWL(o2, t) = \(error)") }
            e.o2.unlock(); e.o.unlock()
        }
        ww("try", "ww_test_try_block", true) { e in
            e.WARN_ON(!e.o.tryLock(), "WWT(o) failed")
            try? e.o2.lock(nil)
            e.o2.unlock(); e.o.unlock()
        }
        ww("try", "ww_test_try_try", false) { e in
            e.WARN_ON(!e.o.tryLock(), "WWT(o) failed")
            e.WARN_ON(!e.o2.tryLock(), "WWT(o2) failed")
            e.o2.unlock(); e.o.unlock()
        }
        ww("try", "ww_test_try_context", true) { e in
            e.WARN_ON(!e.o.tryLock(), "WWT(o) failed")
            let t = WWAcquireContext(e.ww)
            try? e.o2.lock(t)
        }
        ww("block", "ww_test_block_block", true) { e in
            try? e.o.lock(nil)
            try? e.o2.lock(nil)
        }
        ww("block", "ww_test_block_try", false) { e in
            try? e.o.lock(nil)
            e.WARN_ON(!e.o2.tryLock(), "WWT(o2) failed")
        }
        ww("block", "ww_test_block_context", true) { e in
            try? e.o.lock(nil)
            let t = WWAcquireContext(e.ww)
            try? e.o2.lock(t)
        }
        ww("spinlock", "ww_test_spin_block", true) { e in
            e.L("A"); e.U("A")
            try? e.o.lock(nil); e.L("A"); e.U("A"); e.o.unlock()
            e.L("A"); try? e.o.lock(nil); e.o.unlock(); e.U("A")
        }
        ww("spinlock", "ww_test_spin_try", false) { e in
            e.L("A"); e.U("A")
            e.WARN_ON(!e.o.tryLock(), "WWT(o) failed"); e.L("A"); e.U("A"); e.o.unlock()
            e.L("A"); e.WARN_ON(!e.o.tryLock(), "WWT(o) failed"); e.o.unlock(); e.U("A")
        }
        ww("spinlock", "ww_test_spin_context", true) { e in
            e.L("A"); e.U("A")
            let t = WWAcquireContext(e.ww)
            try? e.o.lock(t); e.L("A"); e.U("A"); e.o.unlock()
            e.L("A"); try? e.o.lock(t); e.o.unlock(); e.U("A")
        }
        return c
    }

    // MARK: queued read lock (force_read_lock_recursive = 0)

    static func queuedReadLock() -> [KCase] {
        func q(_ row: String, _ name: String, _ fails: Bool, _ body: @escaping (KEnv) -> Void) -> KCase {
            KCase(family: "queued_read_lock", row: row, column: "rlock", name: name, expectFailure: fails,
                  readers: .queued, body: .run(body))
        }
        return [
            q("hardirq read-lock/lock-read", "queued_read_lock_hardirq_RE_Er", true) { e in
                e.HARDIRQ_ENTER { e.RL("A"); e.L("B"); e.U("B"); e.RU("A") }
                e.HARDIRQ_DISABLE(); e.L("B"); e.RL("A"); e.RU("A"); e.U("B"); e.HARDIRQ_ENABLE()
            },
            q("hardirq lock-read/read-lock", "queued_read_lock_hardirq_ER_rE", false) { e in
                e.HARDIRQ_ENTER { e.L("B"); e.RL("A"); e.RU("A"); e.U("B") }
                e.HARDIRQ_DISABLE(); e.RL("A"); e.L("B"); e.U("B"); e.RU("A"); e.HARDIRQ_ENABLE()
            },
            q("hardirq inversion", "queued_read_lock_hardirq_inversion", true) { e in
                e.HARDIRQ_ENTER { e.L("B"); e.U("B") }
                e.HARDIRQ_DISABLE(); e.L("B"); e.RL("A"); e.RU("A"); e.U("B"); e.HARDIRQ_ENABLE()
                e.RL("A"); e.RU("A")
            },
        ]
    }

    // MARK: fs_reclaim (kernel-only)

    static func fsReclaim() -> [KCase] {
        let why = "kernel-only: the fs_reclaim pseudo-lock and GFP allocation flags (fs_reclaim_acquire, might_alloc, memalloc_nofs_save) have no userspace counterpart"
        return [("correct nesting", "fs_reclaim_correct_nesting", false),
                ("wrong nesting", "fs_reclaim_wrong_nesting", true),
                ("protected nesting", "fs_reclaim_protected_nesting", false)].map { row, name, fails in
            KCase(family: "fs_reclaim", row: row, column: "-", name: name, expectFailure: fails, body: .skipped(why))
        }
    }

    // MARK: wait contexts (CONFIG_PROVE_RAW_LOCK_NESTING)

    static func waitContext() -> [KCase] {
        enum Outer: String, CaseIterable {
            case HARDIRQ, NOTTHREADED_HARDIRQ, SOFTIRQ, RCU, RCU_BH, RCU_SCHED, raw_spinlock, spinlock, mutex
            var row: String {
                switch self {
                case .HARDIRQ: "in hardirq context"
                case .NOTTHREADED_HARDIRQ: "in hardirq context (not threaded)"
                case .SOFTIRQ: "in softirq context"
                case .RCU: "in RCU context"
                case .RCU_BH: "in RCU-bh context"
                case .RCU_SCHED: "in RCU-sched context"
                case .raw_spinlock: "in RAW_SPINLOCK context"
                case .spinlock: "in SPINLOCK context"
                case .mutex: "in MUTEX context"
                }
            }
        }
        enum Inner: String, CaseIterable { case RCU, raw_spinlock, spinlock, mutex }
        // The kernel's table: what each outer allows.
        func expectFailure(_ o: Outer, _ i: Inner) -> Bool {
            switch o {
            case .mutex: return false
            case .NOTTHREADED_HARDIRQ, .RCU_SCHED, .raw_spinlock: return i == .spinlock || i == .mutex
            default: return i == .mutex
            }
        }
        // RCU read sections: atomic maps (a non-preemptible kernel's readers), one per flavor;
        // RCU-sched's is raw-spinning (LD_WAIT_SPIN), the others are not (LD_WAIT_CONFIG).
        func rcu(_ e: KEnv, _ flavor: String, _ body: () -> Void) {
            let map = LockdepMap(class: e.lockClass("rcu", flavor),
                                 options: flavor == "sched" ? [.atomic, .rcu, .rawSpinning] : [.atomic, .rcu])
            if flavor == "bh" { e.SOFTIRQ_DISABLE() }
            Lockdep.acquire(map, mode: .recursiveRead)
            body()
            Lockdep.release(map)
            if flavor == "bh" { e.SOFTIRQ_ENABLE() }
        }
        func outer(_ e: KEnv, _ o: Outer, _ body: () -> Void) {
            switch o {
            case .HARDIRQ: e.HARDIRQ_ENTER(body)
            case .NOTTHREADED_HARDIRQ: e.NOTTHREADED_HARDIRQ_ENTER(body)
            case .SOFTIRQ: e.SOFTIRQ_ENTER(body)
            case .RCU: rcu(e, "A", body)
            case .RCU_BH: rcu(e, "bh", body)
            case .RCU_SCHED: rcu(e, "sched", body)
            case .raw_spinlock: e.rawSpin("rawA").withLock(body)
            case .spinlock: e.spin("A").withLock(body)
            case .mutex: e.mutex("A").withLock(body)
            }
        }
        func inner(_ e: KEnv, _ i: Inner) {
            switch i {
            case .RCU: rcu(e, "B", {})
            case .raw_spinlock: e.rawSpin("rawB").withLock {}
            case .spinlock: e.spin("B").withLock {}
            case .mutex: e.mutex("B").withLock {}
            }
        }
        var c: [KCase] = []
        for o in Outer.allCases {
            for i in Inner.allCases {
                let fails = expectFailure(o, i)
                let name = "\(i.rawValue)_in_\(o.rawValue)"
                var note: String?
                if o == .raw_spinlock || i == .raw_spinlock { note = "raw_spinlock_t: CheckedSpinLock(raw: true)" }
                if o == .NOTTHREADED_HARDIRQ { note = "withContext(.hardirq, threaded: false)" }
                c.append(KCase(family: "wait context", row: o.row, column: i.rawValue, name: name,
                               expectFailure: fails, note: note, body: .run { e in outer(e, o) { inner(e, i) } }))
            }
        }
        return c
    }

    // MARK: local_lock

    static func localLock() -> [KCase] {
        func ll(_ row: String, _ name: String, _ fails: Bool, _ body: @escaping (KEnv, LocalLock) -> Void) -> KCase {
            KCase(family: "local_lock", row: row, column: "local_lock", name: name, expectFailure: fails,
                  body: .run { e in body(e, LocalLock(class: e.lockClass("local", "A"))) })
        }
        return [
            ll("local_lock inversion  2", "local_lock_2", false) { e, la in
                la.lock(); la.unlock()
                e.HARDIRQ_ENTER { e.L("A"); e.U("A") }
                e.HARDIRQ_DISABLE(); e.L("A"); la.lock(); la.unlock(); e.U("A"); e.HARDIRQ_ENABLE()
            },
            ll("local_lock inversion 3A", "local_lock_3A", false) { e, la in
                la.lock(); e.L("B"); e.U("B"); la.unlock()
                e.HARDIRQ_ENTER { e.L("A"); e.U("A") }
                e.HARDIRQ_DISABLE(); e.L("A"); la.lock(); la.unlock(); e.U("A"); e.HARDIRQ_ENABLE()
            },
            ll("local_lock inversion 3B", "local_lock_3B", true) { e, la in
                la.lock(); e.L("B"); e.U("B"); la.unlock()
                e.HARDIRQ_ENTER { e.L("A"); e.U("A") }
                e.HARDIRQ_DISABLE(); e.L("A"); la.lock(); la.unlock(); e.U("A"); e.HARDIRQ_ENABLE()
                e.HARDIRQ_DISABLE(); e.L("A"); e.L("B"); e.U("B"); e.U("A"); e.HARDIRQ_DISABLE()
            },
        ]
    }

    // MARK: the rest

    static func misc() -> [KCase] {
        [
            KCase(family: "hardirq_unsafe_softirq_safe", row: "hardirq_unsafe_softirq_safe", column: "special",
                  name: "hardirq_deadlock_softirq_not_deadlock", expectFailure: true, body: .run { e in
                e.ML("A"); e.HARDIRQ_DISABLE(); e.L("C"); e.U("C"); e.HARDIRQ_ENABLE(); e.MU("A")
                e.HARDIRQ_ENTER { e.L("A"); e.U("A") }
                e.HARDIRQ_DISABLE(); e.L("A"); e.L("B"); e.U("B"); e.U("A"); e.HARDIRQ_ENABLE()
                e.HARDIRQ_DISABLE(); e.L("B"); e.L("C"); e.U("C"); e.U("B"); e.HARDIRQ_ENABLE()
                e.SOFTIRQ_ENTER { e.L("D"); e.U("D") }
                e.SOFTIRQ_DISABLE(); e.L("D"); e.U("D"); e.SOFTIRQ_ENABLE()
                e.HARDIRQ_DISABLE(); e.L("C"); e.L("D"); e.U("D"); e.U("C"); e.HARDIRQ_ENABLE()
            }),
            KCase(family: "lockdep_set_subclass", row: "compare name before and after", column: "rwsem",
                  name: "test_lockdep_set_subclass_name", expectFailure: false, body: .run { e in
                let sem = e.rwsem("X1")
                let before = sem.lockClass.name
                sem.setSubclass(1)
                e.WARN_ON(sem.lockClass.name != before, "lockdep_set_subclass() renamed the class")
                sem.readLock(); sem.readUnlock()
            }),
        ]
    }
}
