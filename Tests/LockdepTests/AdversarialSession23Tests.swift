import Dispatch
import Foundation
import Glibc
import Synchronization
import XCTest
@testable import Lockdep

/// Session 23's adversarial pass over two changes: the thread-exit report
/// (`locksHeldAtThreadExit`, delivered from Lockdep's pthread-key destructor) and the kernel-style
/// primitives' `ExclusiveHold` (holder `pthread_t`, owner word and refusal count).
final class AdversarialSession23Tests: LockdepTestCase {
    override func tearDown() {
        Lockdep.limits = LockdepLimits()
        super.tearDown()
    }

    private var allText: String { collector.reports.map(\.text).joined(separator: "\n") }

    // MARK: 1. ExclusiveHold: the holder is a pthread_t, which glibc reuses after a join

    /// Control: the same pthread_t reuse against the primitives whose owner is Lockdep's thread
    /// serial (CheckedMutex, CheckedSpinLock, a ww mutex's base lock).
    func testSerialOwnedLocksAreNotFooledByAReusedPthread() throws {
        let m = CheckedMutex(class: .unique("adv23.reuse.mutex"))
        let s = CheckedSpinLock(class: .unique("adv23.reuse.spin"))
        let ww = WWMutex(WWClass("adv23.reuse.ww"))
        let holder = Locked<pthread_t>(0)
        pthread_join(startJoinableThread(named: "adv23-serial-holder") {
            holder.value = pthread_self()
            m.lock(); m.lock()
            ww.baseLock()
            s.lock(); s.lock()
        }, nil)
        // With checks compiled out there is no exit report (no held-lock stack): the last
        // report is the spinlock's refused recursive acquire, which every build reports.
        XCTAssertEqual(collector.kinds.last, Lockdep.checksCompiledIn ? .locksHeldAtThreadExit : .recursiveLocking, allText)
        collector.clear()
        let ran = onThreadReusing(holder.value, named: "adv23-serial-impostor") {
            s.unlock(); ww.baseUnlock(); m.unlock()
        }
        try XCTSkipUnless(ran, "glibc gave no new thread the exited holder's pthread_t")
        // Every build reports the mutex's and the spinlock's; with checks compiled out the ww
        // mutex's base lock refuses the foreign release without a report.
        XCTAssertEqual(collector.kinds, Lockdep.checksCompiledIn
                       ? [.unlockFromOtherThread, .unlockFromOtherThread, .unlockFromOtherThread]
                       : [.unlockFromOtherThread, .unlockFromOtherThread], allText)
        collector.clear()
    }

    /// The owner word of `CheckedMutex`, `CheckedSpinLock` and `CheckedRWLock`'s write side in
    /// every build: with checks compiled out it once held `pthread_self()`, so a later thread
    /// given an exited holder's `pthread_t` passed for the holder (`isHeldByCurrentThread`, and
    /// a `lock()` refused as "recursive locking" that returned without the lock). Run with
    /// `swift test -c release` to exercise that build; with checks compiled in, the exit is
    /// reported and the owner is Lockdep's serial.
    func testAThreadReusingAnExitedHoldersPthreadIsNotTheHolderInEveryBuild() throws {
        let m = CheckedMutex(class: .unique("adv23.reuse.plain-mutex"))
        let s = CheckedSpinLock(class: .unique("adv23.reuse.plain-spin"))
        let rw = CheckedRWLock(class: .unique("adv23.reuse.plain-rw"))
        let holder = Locked<pthread_t>(0)
        pthread_join(startJoinableThread(named: "adv23-plain-holder") {
            holder.value = pthread_self()
            m.lock(); rw.writeLock(); s.lock()
        }, nil)
        XCTAssertEqual(collector.kinds, Lockdep.checksCompiledIn ? [.locksHeldAtThreadExit] : [], allText)
        collector.clear()
        let seen = Locked<[Bool]>([])
        let ran = onThreadReusing(holder.value, named: "adv23-plain-impostor") {
            seen.value = [m.isHeldByCurrentThread, s.isHeldByCurrentThread, rw.isWriteHeldByCurrentThread,
                          m.tryLock(), s.tryLock(), rw.tryWriteLock()]
        }
        try XCTSkipUnless(ran, "glibc gave no new thread the exited holder's pthread_t")
        XCTAssertEqual(seen.value, [false, false, false, false, false, false],
                       "held by, then acquired by, a thread that only reuses the exited holder's pthread_t")
        XCTAssertEqual(collector.kinds, [], allText)
    }

    /// In a child of `fork()`, a thread that exits holding a lock is reported in the child.
    /// Run in a fresh test process (only this test's threads there at the fork: a Swift
    /// runtime lock another test's thread held could hang the child).
    func testThreadExitInAForkChildIsReported() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        runInFreshTestProcess("LockdepTests.AdversarialSession23Tests/testThreadExitInAForkChildIsReportedInAFreshProcess")
    }

    /// Runs only in the fresh process of the test above.
    func testThreadExitInAForkChildIsReportedInAFreshProcess() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        guard inFreshTestProcess else { throw XCTSkip("runs in the fresh process of testThreadExitInAForkChildIsReported") }
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        let clean = childExitsCleanly {
            let kinds = Locked<[LockdepReport.Kind]>([])
            Lockdep.reportHandler = .custom { r in kinds.withLock { $0.append(r.kind) } }
            let m = CheckedMutex(class: .unique("adv23.forkexit.m"))
            pthread_join(startJoinableThread(named: "adv23-fork-exit") { m.lock() }, nil)
            return kinds.value == [.locksHeldAtThreadExit] && !m.tryLock()
        }
        XCTAssertTrue(clean, "a child thread's exit with a lock held was not reported (or the child hung)")
    }

    /// A thread takes an rt mutex, takes it again (refused: "recursive locking", counted), and
    /// exits holding it. A later thread that glibc gives the same `pthread_t` (the exited
    /// thread's cached stack and descriptor) is a different thread: its `unlock()` of a mutex it
    /// never took must be reported as a release of another thread's lock. Instead the refusal
    /// count of the dead holder is consumed as if the new thread were the holder: silently.
    func testRTMutexRefusalOfAnExitedHolderIsNotConsumedByAThreadReusingItsPthread() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let rt = CheckedRTMutex(class: .unique("adv23.reuse.rt"))
        try assertReusedPthreadDoesNotInheritARefusal("rt", lock: { rt.lock() }, unlock: { rt.unlock() })
    }

    /// The same for a reader-writer semaphore's write side.
    func testRWSemaphoreRefusalOfAnExitedWriterIsNotConsumedByAThreadReusingItsPthread() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let sem = CheckedRWSemaphore(class: .unique("adv23.reuse.rwsem"))
        try assertReusedPthreadDoesNotInheritARefusal("rwsem", lock: { sem.writeLock() }, unlock: { sem.writeUnlock() })
    }

    /// The same for a spinning reader-writer lock's write side.
    func testSpinRWLockRefusalOfAnExitedWriterIsNotConsumedByAThreadReusingItsPthread() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let rw = CheckedSpinRWLock(class: .unique("adv23.reuse.spinrw"))
        try assertReusedPthreadDoesNotInheritARefusal("spinrw", lock: { rw.writeLock() }, unlock: { rw.writeUnlock() })
    }

    /// A holder thread locks twice (the second refused and counted) and exits; a thread that
    /// reuses its `pthread_t` unlocks, and must be told it releases another thread's lock.
    private func assertReusedPthreadDoesNotInheritARefusal(
        _ name: String, lock: @escaping @Sendable () -> Void, unlock: @escaping @Sendable () -> Void,
        line: UInt = #line
    ) throws {
        let holder = Locked<pthread_t>(0)
        pthread_join(startJoinableThread(named: "adv23-\(name)-holder") {
            Lockdep.currentThreadName = "adv23-\(name)-holder"
            holder.value = pthread_self()
            lock()
            lock()   // refused, counted
        }, nil)
        XCTAssertEqual(collector.kinds, [.recursiveLocking, .locksHeldAtThreadExit], allText, line: line)
        collector.clear()
        let ran = onThreadReusing(holder.value, named: "adv23-\(name)-impostor") { unlock() }
        try XCTSkipUnless(ran, "glibc gave no new thread the exited holder's pthread_t")
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread],
                       "a new thread's unlock of a dead thread's \(name) lock went unreported: \(allText)", line: line)
    }

    /// A thread exits holding an rt mutex (reported). A later thread with the same `pthread_t`
    /// that calls `lock()` must wait for it (for ever: the kernel leaves the lock held, and the
    /// exit report was the word). It must not be told "possible recursive locking" about a lock
    /// it never took, nor be let into the critical section without the mutex.
    ///
    /// (The passing outcome leaves one thread blocked for ever in `pthread_mutex_lock`; the
    /// failing one returns at once. The wait below only bounds the passing case.)
    func testANewThreadWithAnExitedHoldersPthreadIsNotRefusedAsRecursive() throws {
        let rt = CheckedRTMutex(class: .unique("adv23.reuse.rt-lock"))
        let holder = Locked<pthread_t>(0)
        pthread_join(startJoinableThread(named: "adv23-rt-holder2") {
            holder.value = pthread_self()
            rt.lock()
        }, nil)
        XCTAssertEqual(collector.kinds, Lockdep.checksCompiledIn ? [.locksHeldAtThreadExit] : [], allText)
        collector.clear()
        guard let returned = startOnThreadReusing(holder.value, named: "adv23-rt-impostor2", { rt.lock() }) else {
            throw XCTSkip("glibc gave no new thread the exited holder's pthread_t")
        }
        let entered = returned.wait(timeout: .now() + 0.5) == .success
        XCTAssertFalse(entered, "a thread that never took the rt mutex got past lock() while a dead thread holds it")
        XCTAssertFalse(collector.kinds.contains(.recursiveLocking),
                       "a new thread is told it already holds a dead thread's rt mutex: \(allText)")
    }

    /// The read side of a semaphore whose dead writer's `pthread_t` the reader reuses: the read
    /// acquire returns without the semaphore (the writer-holds-it recursion test matches the
    /// reused `pthread_t`) and without any report. It must wait (for ever: the writer is gone).
    func testANewReaderWithAnExitedWritersPthreadDoesNotEnterTheSemaphore() throws {
        let sem = CheckedRWSemaphore(class: .unique("adv23.reuse.rwsem-read"))
        let holder = Locked<pthread_t>(0)
        pthread_join(startJoinableThread(named: "adv23-rwsem-writer") {
            holder.value = pthread_self()
            sem.writeLock()
        }, nil)
        XCTAssertEqual(collector.kinds, Lockdep.checksCompiledIn ? [.locksHeldAtThreadExit] : [], allText)
        collector.clear()
        guard let returned = startOnThreadReusing(holder.value, named: "adv23-rwsem-reader", {
            sem.readLock()
        }) else {
            throw XCTSkip("glibc gave no new thread the exited holder's pthread_t")
        }
        let entered = returned.wait(timeout: .now() + 0.5) == .success
        XCTAssertFalse(entered, "a reader entered a semaphore a dead writer holds (no report: \(collector.kinds))")
    }

    /// After `fork()` the child's new threads get the descriptors of the parent's other threads
    /// (glibc reclaims their stacks): a child thread that reuses the `pthread_t` of a parent
    /// thread that held an rt mutex with a refused recursive acquire outstanding consumes that
    /// refusal on `unlock()`, silently, instead of being told it releases another thread's lock.
    /// Run in a fresh test process (only this test's threads there at the fork: a Swift
    /// runtime lock another test's thread held could hang the child).
    func testForkChildThreadReusingAParentHoldersPthreadIsNotTheHolder() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        runInFreshTestProcess("LockdepTests.AdversarialSession23Tests/testForkChildThreadReusingAParentHoldersPthreadIsNotTheHolderInAFreshProcess")
    }

    /// Runs only in the fresh process of the test above.
    func testForkChildThreadReusingAParentHoldersPthreadIsNotTheHolderInAFreshProcess() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        guard inFreshTestProcess else { throw XCTSkip("runs in the fresh process of testForkChildThreadReusingAParentHoldersPthreadIsNotTheHolder") }
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        let rt = CheckedRTMutex(class: .unique("adv23.fork.rt"))
        let h = StepThread("adv23-fork-holder")
        let holder = Locked<pthread_t>(0)
        h.run { holder.value = pthread_self(); rt.lock(); rt.lock() }   // second: refused, counted
        XCTAssertEqual(collector.kinds, [.recursiveLocking], allText)
        collector.clear()
        let target = holder.value
        let pid = fork()
        if pid == 0 {
            // 0: reported; 1: silent; 2: no child thread got the pthread_t.
            let kinds = Locked<[LockdepReport.Kind]>([])
            Lockdep.reportHandler = .custom { r in kinds.withLock { $0.append(r.kind) } }
            let ran = onThreadReusing(target, named: "adv23-fork-impostor", attempts: 256) { rt.unlock() }
            _exit(!ran ? 2 : kinds.value == [.unlockFromOtherThread] ? 0 : 1)
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let code = (status >> 8) & 0xff
        h.run { rt.unlock(); rt.unlock() }
        h.finish()
        try XCTSkipIf(code == 2, "no child thread got the parent holder's pthread_t")
        XCTAssertEqual(code, 0, "in the child, a thread reusing a parent holder's pthread_t released its refusal silently")
    }

    // MARK: 2. a thread releasing its own lock from a pthread-key destructor after Lockdep's

    /// A thread keeps a lock for its lifetime and releases it from a pthread-key destructor (a
    /// per-thread resource freed at thread exit). Lockdep's own destructor ran first (its key is
    /// older): it reported "still has locks held!" and freed the thread's state, so the thread's
    /// own `unlock()` in the later destructor meets a fresh state with a new serial, is reported
    /// as an unlock from another thread, and is refused: the mutex stays locked for ever.
    func testAThreadMayReleaseItsLockInALaterThreadExitDestructor() throws {
        final class Release { let m: CheckedMutex; init(_ m: CheckedMutex) { self.m = m } }
        var key = pthread_key_t()
        XCTAssertEqual(pthread_key_create(&key) { raw in
            guard let raw else { return }
            Unmanaged<Release>.fromOpaque(raw).takeRetainedValue().m.unlock()
        }, 0)
        let tlsKey = key
        defer { pthread_key_delete(tlsKey) }
        try XCTSkipUnless(key > ThreadState.ensureKey(), "this key's destructor would run before Lockdep's")
        let m = CheckedMutex(class: .unique("adv23.tls.m"))
        pthread_join(startJoinableThread(named: "adv23-tls") {
            Lockdep.currentThreadName = "adv23-tls"
            m.lock()
            pthread_setspecific(tlsKey, Unmanaged.passRetained(Release(m)).toOpaque())
        }, nil)
        XCTAssertFalse(collector.kinds.contains(.unlockFromOtherThread),
                       "the thread's own unlock at its exit was refused as another thread's: \(allText)")
        let free = m.tryLock()
        XCTAssertTrue(free, "the mutex the thread released at its exit is still locked")
        if free { m.unlock() }
    }

    // MARK: 3. the exit report with every kind of checked lock

    /// One thread exits holding one of each kind of lock: one report, listing each, in order.
    func testExitHoldingEveryKindOfLockIsOneReportListingThemAll() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("adv23.all.mutex"))
        let rwr = CheckedRWLock(class: .unique("adv23.all.rwlock-r"))
        let rww = CheckedRWLock(class: .unique("adv23.all.rwlock-w"))
        let rt = CheckedRTMutex(class: .unique("adv23.all.rt"))
        let semr = CheckedRWSemaphore(class: .unique("adv23.all.rwsem-r"))
        let semw = CheckedRWSemaphore(class: .unique("adv23.all.rwsem-w"))
        let ww = WWClass("adv23.all.ww")
        let wwm = WWMutex(ww)
        let map = LockdepMap(class: .unique("adv23.all.map"))
        let spin = CheckedSpinLock(class: .unique("adv23.all.spin"))
        let srwr = CheckedSpinRWLock(class: .unique("adv23.all.spinrw-r"))
        let srww = CheckedSpinRWLock(class: .unique("adv23.all.spinrw-w"))
        let local = LocalLock(class: .unique("adv23.all.local"))
        let ctxBox = Locked<WWAcquireContext?>(nil)
        pthread_join(startJoinableThread(named: "adv23-all") {
            Lockdep.currentThreadName = "adv23-all"
            m.lock(); rwr.readLock(); rww.writeLock(); rt.lock(); semr.readLock(); semw.writeLock()
            let ctx = WWAcquireContext(ww)
            ctxBox.value = ctx
            try? wwm.lock(ctx)
            Lockdep.acquire(map)
            spin.lock(); srwr.readLock(); srww.writeLock(); local.lock()
        }, nil)
        let r = expectOne(.locksHeldAtThreadExit)
        XCTAssertEqual(r?.heldLocks.count, 13, r?.text ?? "")
        XCTAssertEqual(r?.thread, "adv23-all")
        collector.clear()
        _ = ctxBox
    }

    /// `pthread_exit` from inside nested scoped critical sections in hardirq context: the scopes'
    /// releases never run; the exit is reported with both locks.
    func testPthreadExitInsideNestedScopesInHardirqIsReported() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let outer = CheckedSpinLock(class: .unique("adv23.nest.outer"))
        let inner = CheckedSpinLock(class: .unique("adv23.nest.inner"))
        pthread_join(startJoinableThread(named: "adv23-nest") {
            Lockdep.currentThreadName = "adv23-nest"
            Lockdep.withContext(.hardirq) {
                outer.withLock { inner.withLock { pthread_exit(nil) } }
            }
        }, nil)
        let r = expectOne(.locksHeldAtThreadExit)
        XCTAssertEqual(r?.heldLocks.map(\.name), ["adv23.nest.outer", "adv23.nest.inner"])
        XCTAssertFalse(outer.tryLock(), "the exited thread's lock was released")
        collector.clear()
    }

    /// An rt mutex taken, taken again (refused) and held at exit: the report lists it once, as
    /// it is held once.
    func testExitReportListsARefusedRecursiveAcquireOnce() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let rt = CheckedRTMutex(class: .unique("adv23.once.rt"))
        pthread_join(startJoinableThread(named: "adv23-once") { rt.lock(); rt.lock() }, nil)
        XCTAssertEqual(collector.kinds, [.recursiveLocking, .locksHeldAtThreadExit], allText)
        let r = collector.reports.last
        XCTAssertEqual(r?.heldLocks.map(\.name), ["adv23.once.rt"], r?.text ?? "")
        collector.clear()
    }

    /// A WW acquire context begun and never ended (no mutex taken): the kernel's
    /// `ww_acquire_init` is a lockdep acquire, so the exit is reported.
    func testExitWithAnUnfinishedWWContextIsReported() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let ww = WWClass("adv23.ctx.ww")
        let keep = Locked<WWAcquireContext?>(nil)
        pthread_join(startJoinableThread(named: "adv23-ctx") {
            keep.value = WWAcquireContext(ww)
        }, nil)
        let r = expectOne(.locksHeldAtThreadExit)
        XCTAssertEqual(r?.heldLocks.count, 1, r?.text ?? "")
        collector.clear()
    }

    // MARK: 4. report handlers that act from the exit report

    /// A handler that, told a thread is exiting with a lock, releases it (on that thread, which
    /// still holds it): the lock is free afterwards, with no further report.
    func testAHandlerMayReleaseTheLeakedLockOnTheExitingThread() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("adv23.repair.m"))
        let kinds = Locked<[LockdepReport.Kind]>([])
        Lockdep.reportHandler = .custom { r in
            kinds.withLock { $0.append(r.kind) }
            if r.kind == .locksHeldAtThreadExit { m.unlock() }
        }
        pthread_join(startJoinableThread(named: "adv23-repair") { m.lock() }, nil)
        XCTAssertEqual(kinds.value, [.locksHeldAtThreadExit])
        let free = m.tryLock()
        XCTAssertTrue(free, "the handler's release on the holding thread was not performed")
        if free { m.unlock() }
        XCTAssertEqual(kinds.value, [.locksHeldAtThreadExit])
    }

    /// A handler that, from the exit report, starts a thread that takes other locks and is
    /// joined, and reads the exiting thread's name and held-lock count: no hang, no crash.
    func testAHandlerThatStartsAndJoinsAThreadFromTheExitReport() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let leaked = CheckedMutex(class: .unique("adv23.h.leaked"))
        let other = CheckedMutex(class: .unique("adv23.h.other"))
        let seen = Locked<[String]>([])
        Lockdep.reportHandler = .custom { r in
            guard r.kind == .locksHeldAtThreadExit else { seen.withLock { $0.append("\(r.kind)") }; return }
            seen.withLock { $0.append("\(Lockdep.currentThreadName):\(Lockdep.heldLockCount)") }
            pthread_join(startJoinableThread(named: "adv23-h-child") {
                other.withLock {}
                seen.withLock { $0.append("child-try:\(leaked.tryLock())") }
            }, nil)
        }
        pthread_join(startJoinableThread(named: "adv23-h-exit") {
            Lockdep.currentThreadName = "adv23-h-exit"
            leaked.lock()
        }, nil)
        XCTAssertEqual(seen.value, ["adv23-h-exit:1", "child-try:false"])
        // (The handler holds a reference to the leaked mutex: dropped here, not in tearDown's
        // handler switch, which crashes: see testReplacingAHandlerThatOwnsALeakedLock...)
        withExtendedLifetime(leaked) { collector.install() }
    }

    /// A handler that captured a lock (it looks at it when told about it) and a thread that
    /// exits holding that lock (reported; the handler continues). When the program later
    /// switches its report handler, the old handler's closure, dropped inside Lockdep's graph
    /// lock, frees the last reference to the held lock; its "held lock freed!" report takes the
    /// graph lock again: `pthread_mutex_lock` EDEADLK, a trap in InternalLock. It must be
    /// reported (heldLockDestroyed) instead. Run in a fresh process (the failure kills it).
    func testReplacingAHandlerThatOwnsALeakedLockDoesNotCrash() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        runInFreshTestProcess("LockdepTests.AdversarialSession23Tests/testHandlerOwningALeakedLockInAFreshProcess")
    }

    /// Runs only in the fresh process of the test above.
    func testHandlerOwningALeakedLockInAFreshProcess() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        guard inFreshTestProcess else {
            throw XCTSkip("runs in the fresh process of testReplacingAHandlerThatOwnsALeakedLockDoesNotCrash")
        }
        let kinds = Locked<[LockdepReport.Kind]>([])
        do {
            let leaked = CheckedMutex(class: .unique("adv23.owned.m"))
            Lockdep.reportHandler = .custom { r in
                kinds.withLock { $0.append(r.kind) }
                _ = Lockdep.isHeld(leaked)
            }
            pthread_join(startJoinableThread(named: "adv23-owned") { leaked.lock() }, nil)
        }
        XCTAssertEqual(kinds.value, [.locksHeldAtThreadExit])
        Lockdep.reportHandler = .custom { r in kinds.withLock { $0.append(r.kind) } }   // traps here
        XCTAssertEqual(kinds.value, [.locksHeldAtThreadExit, .heldLockDestroyed])
    }

    /// A handler that kills the offending thread (`pthread_exit` from a report) while it holds
    /// a lock: the thread still exits holding the lock, which must be reported.
    func testAThreadKilledFromItsOwnReportHandlerStillReportsItsHeldLocks() {
        let m = CheckedMutex(class: .unique("adv23.kill.m"))
        let kinds = Locked<[LockdepReport.Kind]>([])
        Lockdep.reportHandler = .custom { r in
            kinds.withLock { $0.append(r.kind) }
            if r.kind == .recursiveLocking && Lockdep.currentThreadName == "adv23-kill" { pthread_exit(nil) }
        }
        pthread_join(startJoinableThread(named: "adv23-kill") {
            Lockdep.currentThreadName = "adv23-kill"
            m.lock()
            m.lock()   // reported; the handler ends the thread
        }, nil)
        // Every build reports the refused recursive acquire; the exit report needs the checks.
        XCTAssertEqual(kinds.value, Lockdep.checksCompiledIn ? [.recursiveLocking, .locksHeldAtThreadExit] : [.recursiveLocking],
                       "a thread that exits holding a lock from inside a report handler is not reported")
    }

    /// A handler that calls `Lockdep.resetForTesting()` from the exit report (throwing away the
    /// exiting thread's held stack): no crash, and the lock stays held.
    func testAHandlerThatResetsFromTheExitReport() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("adv23.reset.m"))
        let kinds = Locked<[LockdepReport.Kind]>([])
        Lockdep.reportHandler = .custom { r in
            kinds.withLock { $0.append(r.kind) }
            if r.kind == .locksHeldAtThreadExit { Lockdep.resetForTesting() }
        }
        pthread_join(startJoinableThread(named: "adv23-reset") { m.lock() }, nil)
        XCTAssertEqual(kinds.value, [.locksHeldAtThreadExit])
        XCTAssertFalse(m.tryLock())
    }

    /// Exit report under `.reportOnceAndContinue`: two different threads exiting holding the
    /// same lock class at the same site are two different leaks; the once-key makes the second
    /// silent. (Informational: the first must at least not trap.)
    func testExitReportUnderReportOnceDoesNotTrap() {
        Lockdep.reportHandler = .reportOnceAndContinue
        let cls = LockClass.unique("adv23.once.cls")
        let a = CheckedMutex(class: cls), b = CheckedMutex(class: cls)
        for (name, lock) in [("a", a), ("b", b)] {
            pthread_join(startJoinableThread(named: "adv23-once-\(name)") { lock.lock() }, nil)
        }
        XCTAssertFalse(a.tryLock())
        XCTAssertFalse(b.tryLock())
        collector.install()
    }

    // MARK: 5. leaked locks afterwards

    /// A lock leaked by an exited thread is released by another thread (reported, refused),
    /// then destroyed (reported: held lock freed, naming the dead holder), for each kernel-style
    /// primitive with an ExclusiveHold.
    func testLeakedExclusiveHoldsAreRefusedThenReportedWhenFreed() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        do {
            let rt = CheckedRTMutex(class: .unique("adv23.leak.rt"))
            let sem = CheckedRWSemaphore(class: .unique("adv23.leak.sem"))
            let srw = CheckedSpinRWLock(class: .unique("adv23.leak.srw"))
            pthread_join(startJoinableThread(named: "adv23-leak") {
                Lockdep.currentThreadName = "adv23-leak"
                rt.lock(); sem.writeLock(); srw.writeLock()
            }, nil)
            XCTAssertEqual(collector.kinds, [.locksHeldAtThreadExit], allText)
            collector.clear()
            rt.unlock(); sem.writeUnlock(); srw.writeUnlock()
            XCTAssertEqual(collector.kinds, [.unlockFromOtherThread, .unlockFromOtherThread, .unlockFromOtherThread], allText)
            XCTAssertEqual(collector.reports.map(\.otherThread), ["adv23-leak", "adv23-leak", "adv23-leak"])
            collector.clear()
        }
        XCTAssertEqual(collector.kinds, [.heldLockDestroyed, .heldLockDestroyed, .heldLockDestroyed], allText)
    }

    // MARK: 6. ExclusiveHold under contention

    /// Many threads contend for each primitive's exclusive side, each taking it, taking it
    /// again (refused), and releasing twice: only the refusals are reported, and the last state
    /// is free. (Run under ThreadSanitizer too.)
    func testExclusiveHoldUnderContentionWithRefusals() {
        let rt = CheckedRTMutex(class: .unique("adv23.cont.rt"))
        let sem = CheckedRWSemaphore(class: .unique("adv23.cont.sem"))
        let srw = CheckedSpinRWLock(class: .unique("adv23.cont.srw"))
        let counter = Locked(0)
        let threads = 6, rounds = 150
        let kinds = Locked<[LockdepReport.Kind: Int]>([:])
        Lockdep.reportHandler = .custom { r in kinds.withLock { $0[r.kind, default: 0] += 1 } }
        let ids = (0..<threads).map { i in
            startJoinableThread(named: "adv23-cont-\(i)") {
                for round in 0..<rounds {
                    switch (i + round) % 3 {
                    case 0:
                        rt.lock(); rt.lock(); counter.withLock { $0 += 1 }; rt.unlock(); rt.unlock()
                    case 1:
                        sem.writeLock(); sem.writeLock(); counter.withLock { $0 += 1 }; sem.writeUnlock(); sem.writeUnlock()
                        sem.readLock(); sem.readUnlock()
                    default:
                        srw.writeLock(); srw.writeLock(); counter.withLock { $0 += 1 }; srw.writeUnlock(); srw.writeUnlock()
                        srw.readLock(); srw.readUnlock()
                    }
                }
            }
        }
        ids.forEach { pthread_join($0, nil) }
        XCTAssertEqual(counter.value, threads * rounds)
        XCTAssertEqual(kinds.value, [.recursiveLocking: threads * rounds])
        rt.lock(); rt.unlock()
        sem.writeLock(); sem.writeUnlock()
        srw.writeLock(); srw.writeUnlock()
        XCTAssertEqual(kinds.value, [.recursiveLocking: threads * rounds])
        collector.install()
    }
}

/// As ``onThreadReusing(_:named:attempts:_:)``, but does not wait for `body` (which may block
/// for ever): returns a semaphore signalled when `body` returns, or `nil` when no thread got
/// `target`.
private func startOnThreadReusing(_ target: pthread_t, named name: String,
                                  _ body: @escaping @Sendable () -> Void) -> DispatchSemaphore? {
    let returned = DispatchSemaphore(value: 0)
    for _ in 0..<64 {
        let decided = DispatchSemaphore(value: 0)
        let matched = Locked(false)
        let thread = startJoinableThread(named: name) {
            guard pthread_equal(pthread_self(), target) != 0 else { decided.signal(); return }
            Lockdep.currentThreadName = name
            matched.value = true
            decided.signal()
            body()
            returned.signal()
        }
        decided.wait()
        if matched.value { pthread_detach(thread); return returned }
        pthread_join(thread, nil)
    }
    return nil
}
