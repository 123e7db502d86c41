import Dispatch
import Foundation
import Glibc
import Synchronization
import XCTest
@testable import Lockdep

/// Session 24's adversarial pass over commit 6856af8: the owner word of `CheckedMutex`,
/// `CheckedSpinLock` and `CheckedRWLock`'s write side is, with checks compiled out, the
/// holder's `clockdep_thread_identity()` (never reused) instead of its `pthread_t`; with checks
/// compiled in, Lockdep's thread serial. Attacked through the public API only: thread exit,
/// kernel thread-id reuse, condition waits, refusal counting, key destructors, signal handlers,
/// tasks, fork, races. Each test says when its expected outcome differs by build.
final class AdversarialSession24Tests: LockdepTestCase {
    override func tearDown() {
        Lockdep.limits = LockdepLimits()
        super.tearDown()
    }

    private var allText: String { collector.reports.map(\.text).joined(separator: "\n") }

    // MARK: 1. Kernel thread-id reuse (the owner word's condition-wait fallback)

    /// A thread exits holding a `CheckedMutex`. The kernel hands its thread id to a later thread
    /// once the id counter wraps (`/proc/sys/kernel/pid_max`, 32768 here): a long-running
    /// process that keeps creating threads gets there. That later thread never took the mutex,
    /// so it must not read as its holder, and its `unlock()` must be refused (reported) and
    /// leave the mutex held.
    ///
    /// With checks compiled out the owner word was the identity, but a word that did not match
    /// fell back to glibc's record of the mutex holder (`__owner`, the kernel thread id), which
    /// a thread with the recycled id matched. Condition waits now keep the owner word, and
    /// nothing reads glibc's record.
    func testAThreadGivenAnExitedMutexHoldersKernelThreadIDIsNotTheHolder() throws {
        // Up to pid_max threads until the kernel recycles an id: 2 s in debug, far longer under
        // the sanitizers, for a path (glibc's record of the holder) no build reads any more.
        try XCTSkipIf(runningUnderThreadSanitizer || runningUnderAddressSanitizer, "thread creation is slow here")
        let m = CheckedMutex(class: .unique("adv24.tid.mutex"))
        _ = Unmanaged.passRetained(m.storage)   // held for good by the exited thread
        let holderTID = Locked<Int32>(0)
        runOnJoinedThread(named: "adv24-tid-holder") {
            holderTID.value = currentKernelTID()
            m.lock()
        }
        collector.clear()
        let seen = Locked<(held: Bool, tid: Int32)?>(nil)
        let bound = ContinuousClock.now + .seconds(150)
        var attempts = 0
        let pidMax = Int((try? String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 32768
        while seen.value == nil && attempts < 3 * pidMax && ContinuousClock.now < bound {
            attempts += 1
            let target = holderTID.value
            runOnJoinedThread(named: "adv24-tid-churn") {
                let tid = currentKernelTID()
                guard tid == target else { return }
                let held = m.isHeldByCurrentThread
                m.unlock()
                seen.value = (held, tid)
            }
        }
        guard let result = seen.value else {
            throw XCTSkip("no thread was given the exited holder's kernel thread id in \(attempts) threads")
        }
        XCTAssertFalse(result.held, "a thread that only reuses the exited holder's kernel thread id \(result.tid) reads as holding the mutex")
        XCTAssertFalse(m.tryLock(), "a thread that only reuses the exited holder's kernel thread id released the mutex (silently: \(collector.kinds))")
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread], allText)
    }

    // MARK: 2. Condition waits: the owner word after glibc re-acquires the mutex

    /// Waiter: lock, wait until signalled. Signaller: lock, signal, unlock (clearing the owner
    /// word). The waiter holds the mutex again; its `lock()` is a recursive acquire, which every
    /// build refuses with a report. With checks compiled out the wait used to leave the owner
    /// word cleared, so the `lock()` was not refused: it blocked for ever on a mutex the thread
    /// held (PTHREAD_MUTEX_NORMAL), with no report.
    func testARecursiveLockAfterAConditionWaitIsRefusedAndReported() {
        assertRecursiveAcquireAfterWaitIsRefused(name: "lock", timed: false) { m in m.lock(); m.unlock() }
    }

    /// As above with `withLock(_:)` after the wait (refused: the body runs under the one hold).
    func testAWithLockAfterAConditionWaitIsRefusedAndReported() {
        assertRecursiveAcquireAfterWaitIsRefused(name: "withLock", timed: false) { m in m.withLock {} }
    }

    /// As above after a timed wait that timed out while another thread took and released the
    /// mutex (nobody signalled).
    func testARecursiveLockAfterATimedOutWaitIsRefusedAndReported() {
        assertRecursiveAcquireAfterWaitIsRefused(name: "timed", timed: true) { m in m.lock(); m.unlock() }
    }

    private func assertRecursiveAcquireAfterWaitIsRefused(
        name: String, timed: Bool, _ recursive: @escaping @Sendable (CheckedMutex) -> Void, line: UInt = #line
    ) {
        let m = CheckedMutex(class: .unique("adv24.cw.\(name).m"))
        let c = CheckedCondition("adv24.cw.\(name).c")
        _ = Unmanaged.passRetained(m.storage)   // a hung waiter keeps it held
        let ready = Locked(false)
        let waiting = DispatchSemaphore(value: 0)
        let heldAfterWait = Locked<Bool?>(nil)
        let returned = DispatchSemaphore(value: 0)
        let waiter = Thread {
            m.lock()
            waiting.signal()
            if timed {
                _ = c.wait(m, timeout: .milliseconds(300))
            } else {
                while !ready.value { c.wait(m) }
            }
            heldAfterWait.value = m.isHeldByCurrentThread
            recursive(m)       // refused and reported; its matching unlock (if any) releases nothing
            m.unlock()
            returned.signal()
        }
        waiter.start()
        waiting.wait()
        // The signaller (or, for the timed wait, an interloper during the wait).
        onThread(named: "adv24-cw-signal") {
            m.lock()
            ready.value = true
            if !timed { c.signal() }
            m.unlock()
        }
        let done = returned.wait(timeout: .now() + 5) == .success
        XCTAssertTrue(done, "\(name): a recursive acquire after a condition wait blocked for ever (self-deadlock) instead of being refused; reports: \(collector.kinds)", line: line)
        guard done else { return }
        XCTAssertEqual(heldAfterWait.value, true, line: line)
        XCTAssertEqual(collector.kinds, [.recursiveLocking], allText, line: line)
        XCTAssertTrue(m.tryLock(), line: line)
        m.unlock()
    }

    /// Control: after a wait the waiter holds the mutex (`isHeldByCurrentThread`), another
    /// thread asking meanwhile does not, and another thread's `unlock()` is refused.
    func testHolderAnswersAroundAConditionWait() {
        let m = CheckedMutex(class: .unique("adv24.cw.control.m"))
        let c = CheckedCondition("adv24.cw.control.c")
        let ready = Locked(false)
        let waiting = DispatchSemaphore(value: 0), woke = DispatchSemaphore(value: 0), finish = DispatchSemaphore(value: 0)
        let heldAfter = Locked<Bool?>(nil)
        let t = startThread(named: "adv24-cw-ctl") {
            m.lock()
            waiting.signal()
            while !ready.value { c.wait(m) }
            heldAfter.value = m.isHeldByCurrentThread
            woke.signal()
            finish.wait()
            m.unlock()
        }
        waiting.wait()
        m.lock()          // the waiter is inside its wait (it released the mutex)
        XCTAssertTrue(m.isHeldByCurrentThread)
        ready.value = true
        c.signal()
        m.unlock()
        XCTAssertEqual(woke.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(heldAfter.value, true)
        XCTAssertFalse(m.isHeldByCurrentThread, "the main thread reads as holding a mutex the waiter holds")
        m.unlock()        // refused: the waiter holds it
        XCTAssertFalse(m.tryLock(), "another thread's unlock released the waiter's hold")
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread], allText)
        finish.signal()
        XCTAssertTrue(t.join(timeout: 5))
        XCTAssertTrue(m.tryLock()); m.unlock()
    }

    // MARK: 3. Refusal counts left across a condition wait

    /// A: lock, lock again (refused, counted: its matching unlock will release nothing), then a
    /// condition wait. B, an innocent thread, then takes the mutex and releases it. B's
    /// `unlock()` must release B's hold: A's refusal count is A's. The count is kept in the
    /// lock, and a wait used to leave it there, so B's release consumed A's refusal and
    /// released nothing, silently. A wait now sets the count aside with A's hold.
    func testARefusedLockBeforeAConditionWaitDoesNotSwallowAnotherThreadsUnlock() {
        let m = CheckedMutex(class: .unique("adv24.refusal.m"))
        let c = CheckedCondition("adv24.refusal.c")
        _ = Unmanaged.passRetained(m.storage)
        let ready = Locked(false)
        let aDone = startRefusingWaiter(named: "adv24-refusal-a", m, c, until: ready)
        let bReturned = DispatchSemaphore(value: 0)
        let b = startJoinableThread(named: "adv24-refusal-b") {
            m.lock()
            m.unlock()
            bReturned.signal()
        }
        XCTAssertEqual(bReturned.wait(timeout: .now() + 5), .success)
        pthread_join(b, nil)   // its exit checks report here
        assertFreeThenReleaseWaiter(m, c, ready, aDone, "B's unlock() returned without releasing the mutex, and without a report: it consumed A's refused lock (reports: \(collector.kinds))")
    }

    /// The same with checks compiled out made to take the slow release: B also waits on a
    /// condition (its owner word used to be stale after glibc re-acquired for it), and a third thread
    /// wakes B. B's `unlock()` must release the mutex (it used to consume A's refusal).
    func testARefusedLockBeforeAConditionWaitDoesNotSwallowAnotherWaitersUnlock() {
        let m = CheckedMutex(class: .unique("adv24.refusal2.m"))
        let ca = CheckedCondition("adv24.refusal2.ca"), cb = CheckedCondition("adv24.refusal2.cb")
        _ = Unmanaged.passRetained(m.storage)
        let readyA = Locked(false), readyB = Locked(false)
        let bWaiting = DispatchSemaphore(value: 0), bReturned = DispatchSemaphore(value: 0)
        let aDone = startRefusingWaiter(named: "adv24-refusal2-a", m, ca, until: readyA)
        let b = startJoinableThread(named: "adv24-refusal2-b") {
            m.lock()
            bWaiting.signal()
            while !readyB.value { cb.wait(m) }
            m.unlock()
            bReturned.signal()
        }
        bWaiting.wait()
        onThread(named: "adv24-refusal2-c") {
            m.lock()          // B is inside its wait
            readyB.value = true
            cb.signal()
            m.unlock()
        }
        let bDone = bReturned.wait(timeout: .now() + 5) == .success
        // Checks compiled in: C's unlock() already consumed A's refusal and left the mutex
        // held, so B never gets out of its wait.
        XCTAssertTrue(bDone, "B never re-acquired the mutex after its wait: C's unlock() released nothing (reports: \(collector.kinds))")
        guard bDone else { pthread_detach(b); return }
        pthread_join(b, nil)   // its exit checks report here
        assertFreeThenReleaseWaiter(m, ca, readyA, aDone, "B's unlock() after its wait returned without releasing the mutex, and without a report (reports: \(collector.kinds))")
    }

    /// Starts thread A: it locks `m`, locks it again (refused, reported and counted: its
    /// matching unlock releases nothing), then waits on `c` until `ready`, and releases. Returns
    /// once A holds its refusal; the semaphore returned is signalled when A is done.
    private func startRefusingWaiter(named name: String, _ m: CheckedMutex, _ c: CheckedCondition,
                                     until ready: Locked<Bool>) -> DispatchSemaphore {
        let waiting = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        startThread(named: name) {
            m.lock()
            m.lock()          // refused (reported), counted
            waiting.signal()
            while !ready.value { c.wait(m) }
            m.unlock()        // matches the refused lock: releases nothing
            m.unlock()
            done.signal()
        }
        waiting.wait()
        return done
    }

    /// Asserts `m` is free (`message` otherwise); then lets the waiter of
    /// ``startRefusingWaiter(named:_:_:until:)`` finish, and asserts its refused lock was the one report.
    private func assertFreeThenReleaseWaiter(_ m: CheckedMutex, _ c: CheckedCondition, _ ready: Locked<Bool>,
                                             _ aDone: DispatchSemaphore, _ message: String,
                                             file: StaticString = #filePath, line: UInt = #line) {
        let free = m.tryLock()
        XCTAssertTrue(free, message, file: file, line: line)
        if free {
            ready.value = true
            c.signal()
            m.unlock()
            XCTAssertEqual(aDone.wait(timeout: .now() + 5), .success, file: file, line: line)
        }
        XCTAssertEqual(collector.kinds, [.recursiveLocking], allText, file: file, line: line)
    }

    // MARK: 4. A signal handler on a thread inside a condition wait

    /// B waits on a condition; A locks, wakes B, and waits on another condition (glibc releases
    /// the mutex for A and re-acquires it for B). B now holds the mutex. A signal handler that
    /// runs on A (still inside its wait) asks whether A holds the mutex and calls `unlock()`:
    /// A does not hold it, so the answer must be `false` and the unlock refused, leaving B's
    /// hold alone. (Lock calls in a signal handler are not async-signal-safe; this is the
    /// owner word's answer under a hostile user, not a supported pattern.)
    ///
    /// With checks compiled out a wait used to leave the owner word as it was, still naming A.
    func testASignalHandlerOnAWaitingThreadDoesNotReleaseAnotherThreadsHold() {
        let m = CheckedMutex(class: .unique("adv24.signal.m"))
        let ca = CheckedCondition("adv24.signal.ca"), cb = CheckedCondition("adv24.signal.cb")
        _ = Unmanaged.passRetained(m.storage)
        SignalProbe.mutex = m
        SignalProbe.done.store(0, ordering: .sequentiallyConsistent)
        var action = sigaction(), old = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            guard let m = SignalProbe.mutex else { return }
            SignalProbe.held.store(m.isHeldByCurrentThread ? 1 : 0, ordering: .sequentiallyConsistent)
            m.unlock()
            SignalProbe.done.store(1, ordering: .sequentiallyConsistent)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        XCTAssertEqual(sigaction(SIGUSR2, &action, &old), 0)
        defer { sigaction(SIGUSR2, &old, nil) }

        let readyA = Locked(false), readyB = Locked(false)
        let bWaiting = DispatchSemaphore(value: 0), bHolds = DispatchSemaphore(value: 0)
        let bRelease = DispatchSemaphore(value: 0), aThread = Locked<pthread_t>(0)
        let bEnd = DispatchSemaphore(value: 0), aEnd = DispatchSemaphore(value: 0)
        startThread(named: "adv24-signal-b") {
            m.lock()
            bWaiting.signal()
            while !readyB.value { cb.wait(m) }
            bHolds.signal()
            bRelease.wait()
            m.unlock()
            bEnd.signal()
        }
        bWaiting.wait()
        startThread(named: "adv24-signal-a") {
            aThread.value = pthread_self()
            m.lock()          // B is inside its wait
            readyB.value = true
            cb.signal()
            while !readyA.value { ca.wait(m) }   // releases the mutex: B re-acquires it
            m.unlock()
            aEnd.signal()
        }
        XCTAssertEqual(bHolds.wait(timeout: .now() + 5), .success)
        usleep(20_000)    // A is inside its wait (B could only take the mutex once A's wait released it)
        pthread_kill(aThread.value, SIGUSR2)
        let deadline = ContinuousClock.now + .seconds(5)
        while SignalProbe.done.load(ordering: .sequentiallyConsistent) == 0 && ContinuousClock.now < deadline { usleep(1_000) }
        XCTAssertEqual(SignalProbe.done.load(ordering: .sequentiallyConsistent), 1, "the handler did not run")
        XCTAssertEqual(SignalProbe.held.load(ordering: .sequentiallyConsistent), 0,
                       "a thread inside a condition wait reads as holding the mutex another thread holds")
        let stolen = m.tryLock()
        XCTAssertFalse(stolen, "the handler's unlock() on the waiting thread released B's hold (reports: \(collector.kinds))")
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread], allText)
        SignalProbe.mutex = nil
        // Clean up only when nothing was stolen (otherwise the hold is tangled: leave the threads).
        guard !stolen else { m.unlock(); return }
        bRelease.signal()
        XCTAssertEqual(bEnd.wait(timeout: .now() + 5), .success)
        m.lock(); readyA.value = true; ca.signal(); m.unlock()
        XCTAssertEqual(aEnd.wait(timeout: .now() + 5), .success)
    }

    // MARK: 5. Recursive lock / foreign unlock / withLock refusal counting, every exclusive lock

    func testRefusalCountingOfEveryExclusiveLock() {
        let m = CheckedMutex(class: .unique("adv24.count.m"))
        let s = CheckedSpinLock(class: .unique("adv24.count.s"))
        let rw = CheckedRWLock(class: .unique("adv24.count.rw"))
        assertRefusalCounting("mutex", lock: { m.lock() }, unlock: { m.unlock() }, withLock: { b in m.withLock(b) },
                              held: { m.isHeldByCurrentThread }, tryLock: { m.tryLock() })
        assertRefusalCounting("spin", lock: { s.lock() }, unlock: { s.unlock() }, withLock: { b in s.withLock(b) },
                              held: { s.isHeldByCurrentThread }, tryLock: { s.tryLock() })
        assertRefusalCounting("rw", lock: { rw.writeLock() }, unlock: { rw.unlock() }, withLock: { b in rw.withWriteLock(b) },
                              held: { rw.isWriteHeldByCurrentThread }, tryLock: { rw.tryWriteLock() })
    }

    private func assertRefusalCounting(
        _ name: String, lock: @escaping @Sendable () -> Void, unlock: @escaping @Sendable () -> Void,
        withLock: @escaping @Sendable (() -> Void) -> Void, held: @escaping @Sendable () -> Bool,
        tryLock: @escaping @Sendable () -> Bool, line: UInt = #line
    ) {
        collector.clear()
        lock()
        lock()                                 // refused, counted
        var ran = false
        withLock { ran = true }                // refused, not counted: the body runs under the hold
        XCTAssertTrue(ran, name, line: line)
        onThread(named: "adv24-count-foreign") { unlock() }   // refused
        XCTAssertTrue(held(), name, line: line)
        unlock()                               // matches the refused lock
        XCTAssertTrue(held(), "\(name): the unlock matching a refused lock released it", line: line)
        let other = Locked<Bool?>(nil)
        onThread(named: "adv24-count-other") { other.value = tryLock() }
        XCTAssertEqual(other.value, false, name, line: line)
        unlock()
        XCTAssertFalse(held(), name, line: line)
        // A lock() inside withLock left unmatched: the scope still releases.
        withLock { lock() }
        XCTAssertFalse(held(), name, line: line)
        onThread(named: "adv24-count-after") { other.value = tryLock(); if other.value == true { unlock() } }
        XCTAssertEqual(other.value, true, "\(name): a withLock scope kept the lock past its end", line: line)
        unlock()                               // not held: refused
        XCTAssertEqual(collector.kinds, [.recursiveLocking, .recursiveLocking, .unlockFromOtherThread, .recursiveLocking, .unlockNotHeld],
                       "\(name): \(allText)", line: line)
    }

    // MARK: 6. pthread key destructors

    /// A thread's first lock call of its life is made in a pthread key destructor at its exit,
    /// and the thread exits holding the lock. A later thread given its `pthread_t` must not be
    /// the holder.
    func testALockFirstTakenInAKeyDestructorIsNotHeldByAThreadReusingThePthread() throws {
        let m = CheckedMutex(class: .unique("adv24.dtor.m"))
        let s = CheckedSpinLock(class: .unique("adv24.dtor.s"))
        let rw = CheckedRWLock(class: .unique("adv24.dtor.rw"))
        _ = Unmanaged.passRetained(m.storage); _ = Unmanaged.passRetained(s.storage); _ = Unmanaged.passRetained(rw.storage)
        DestructorProbe.lockAll = { m.lock(); s.lock(); rw.writeLock() }
        defer { DestructorProbe.lockAll = nil }
        var keyVar = pthread_key_t()
        XCTAssertEqual(pthread_key_create(&keyVar, { _ in DestructorProbe.lockAll?() }), 0)
        let key = keyVar
        let holder = Locked<pthread_t>(0)
        pthread_join(startJoinableThread(named: "adv24-dtor-holder") {
            holder.value = pthread_self()
            pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
        }, nil)
        pthread_key_delete(key)
        collector.clear()
        let seen = Locked<[Bool]>([])
        let ran = onThreadReusing(holder.value, named: "adv24-dtor-impostor") {
            seen.value = [m.isHeldByCurrentThread, s.isHeldByCurrentThread, rw.isWriteHeldByCurrentThread,
                          m.tryLock(), s.tryLock(), rw.tryWriteLock()]
            m.unlock(); s.unlock(); rw.unlock()
        }
        try XCTSkipUnless(ran, "glibc gave no new thread the exited holder's pthread_t")
        XCTAssertEqual(seen.value, [false, false, false, false, false, false], allText)
        XCTAssertEqual(collector.kinds, [.unlockFromOtherThread, .unlockFromOtherThread, .unlockFromOtherThread], allText)
        XCTAssertFalse(m.tryLock()); XCTAssertFalse(s.tryLock()); XCTAssertFalse(rw.tryWriteLock())
    }

    /// A thread takes locks in its life and releases them from a pthread key destructor at its
    /// exit, in the first destructor round: it is still their holder there.
    func testAKeyDestructorInTheFirstRoundReleasesTheThreadsLocks() {
        assertKeyDestructorReleases(rounds: 1)
    }

    /// The same from the second destructor round (the destructor sets its key again once: a
    /// key created after another library's, whose destructor needs a value that one set in its
    /// own). Compiled out, the thread is still their holder (its identity is a `__thread`
    /// variable that lasts until the thread is gone) and releases them. With checks compiled
    /// in, Lockdep keeps a thread's state through one round only (ThreadState.destroy says
    /// why): the thread is reported as exiting with the locks held, then each release is
    /// refused and reported, and the locks stay held. A documented limit, not a silent one.
    func testAKeyDestructorInTheSecondRoundReleasesTheThreadsLocks() {
        guard Lockdep.checksCompiledIn else { return assertKeyDestructorReleases(rounds: 2) }
        let m = CheckedMutex(class: .unique("adv24.dtor2c.m"))
        _ = Unmanaged.passRetained(m.storage)
        let heldThere = Locked<[Bool]>([])
        DestructorProbe.unlockAll = {
            heldThere.value = [m.isHeldByCurrentThread]
            m.unlock()
        }
        defer { DestructorProbe.unlockAll = nil }
        var keyVar = pthread_key_t()
        XCTAssertEqual(pthread_key_create(&keyVar, { value in
            let left = Int(bitPattern: value) - 1
            if left > 0 {
                pthread_setspecific(DestructorProbe.key, UnsafeRawPointer(bitPattern: left))
                return
            }
            DestructorProbe.unlockAll?()
        }), 0)
        let key = keyVar
        DestructorProbe.key = key
        pthread_join(startJoinableThread(named: "adv24-dtor-late") {
            m.lock()
            pthread_setspecific(key, UnsafeRawPointer(bitPattern: 2))
        }, nil)
        pthread_key_delete(key)
        XCTAssertEqual(heldThere.value, [false])
        XCTAssertEqual(collector.kinds, [.locksHeldAtThreadExit, .unlockFromOtherThread], allText)
        XCTAssertFalse(m.tryLock(), "the refused release left the mutex held")
    }

    private func assertKeyDestructorReleases(rounds: Int, line: UInt = #line) {
        let m = CheckedMutex(class: .unique("adv24.dtor\(rounds).m"))
        let s = CheckedSpinLock(class: .unique("adv24.dtor\(rounds).s"))
        let rw = CheckedRWLock(class: .unique("adv24.dtor\(rounds).rw"))
        _ = Unmanaged.passRetained(m.storage); _ = Unmanaged.passRetained(s.storage); _ = Unmanaged.passRetained(rw.storage)
        let heldThere = Locked<[Bool]>([])
        DestructorProbe.unlockAll = {
            heldThere.value = [m.isHeldByCurrentThread, s.isHeldByCurrentThread, rw.isWriteHeldByCurrentThread]
            s.unlock(); rw.unlock(); m.unlock()
        }
        defer { DestructorProbe.unlockAll = nil }
        var keyVar = pthread_key_t()
        XCTAssertEqual(pthread_key_create(&keyVar, { value in
            let left = Int(bitPattern: value) - 1
            if left > 0 {
                pthread_setspecific(DestructorProbe.key, UnsafeRawPointer(bitPattern: left))
                return
            }
            DestructorProbe.unlockAll?()
        }), 0, line: line)
        let key = keyVar
        DestructorProbe.key = key
        pthread_join(startJoinableThread(named: "adv24-dtor-release") {
            m.lock(); rw.writeLock(); s.lock()
            pthread_setspecific(key, UnsafeRawPointer(bitPattern: rounds))
        }, nil)
        pthread_key_delete(key)
        XCTAssertEqual(heldThere.value, [true, true, true], "round \(rounds): the exiting thread no longer reads as holding its locks: \(allText)", line: line)
        let free = [m.tryLock(), s.tryLock(), rw.tryWriteLock()]
        XCTAssertEqual(free, [true, true, true], "round \(rounds): the holder's release in a key destructor was refused: \(allText)", line: line)
        if free[0] { m.unlock() }; if free[1] { s.unlock() }; if free[2] { rw.unlock() }
    }

    // MARK: 7. Swift tasks

    /// A task locks on one thread, awaits, resumes on another thread and unlocks there: the
    /// unlock must be refused and reported, the mutex still held; back on the first thread the
    /// unlock releases it.
    func testAnUnlockAfterAnAwaitOnAnotherThreadIsRefusedAndReported() async throws {
        let m = CheckedMutex(class: .unique("adv24.task.m"))
        let s = CheckedSpinLock(class: .unique("adv24.task.s"))
        let rw = CheckedRWLock(class: .unique("adv24.task.rw"))
        let one = TestThreadExecutor(named: "adv24-exec-1"), two = TestThreadExecutor(named: "adv24-exec-2")
        let observed: [Bool] = await withTaskExecutorPreference(one) {
            m.lock(); rw.writeLock(); s.lock()
            let onTwo: [Bool] = await withTaskExecutorPreference(two) {
                let answers = [m.isHeldByCurrentThread, s.isHeldByCurrentThread, rw.isWriteHeldByCurrentThread]
                rw.unlock(); s.unlock(); m.unlock()   // refused: another thread
                return answers
            }
            let stillHeld = [m.isHeldByCurrentThread, s.isHeldByCurrentThread, rw.isWriteHeldByCurrentThread]
            rw.unlock(); s.unlock(); m.unlock()
            return onTwo + stillHeld
        }
        XCTAssertEqual(observed, [false, false, false, true, true, true], allText)
        // Checks compiled in, the hold across the await is reported too.
        if !Lockdep.checksCompiledIn {
            XCTAssertEqual(collector.kinds, [.unlockFromOtherThread, .unlockFromOtherThread, .unlockFromOtherThread], allText)
        }
        XCTAssertGreaterThanOrEqual(collector.kinds.count, 3, "each refused release reported: \(allText)")
        XCTAssertTrue(collector.kinds.allSatisfy { $0 == .unlockFromOtherThread || $0 == .lockHeldAcrossSuspension }, allText)
        XCTAssertTrue(m.tryLock()); m.unlock()
        XCTAssertTrue(s.tryLock()); s.unlock()
        XCTAssertTrue(rw.tryWriteLock()); rw.unlock()
    }

    // MARK: 8. Races and thread churn

    /// Threads race for each lock; each checks it is the holder inside and not outside, and
    /// now and then releases a lock it does not hold (refused). Short-lived threads meanwhile
    /// (glibc reuses their `pthread_t`s) release a lock a long-lived thread holds (refused).
    func testRacingHoldersAndChurningThreadsAgreeOnTheHolder() {
        let m = CheckedMutex(class: .unique("adv24.race.m"))
        let s = CheckedSpinLock(class: .unique("adv24.race.s"))
        let rw = CheckedRWLock(class: .unique("adv24.race.rw"))
        let kinds = Locked<[LockdepReport.Kind: Int]>([:])
        Lockdep.reportHandler = .custom { r in kinds.withLock { $0[r.kind, default: 0] += 1 } }
        defer { collector.install() }
        let threads = 6, rounds = 3_000
        let counter = Locked(0)
        let wrong = Locked(0)
        final class Box: @unchecked Sendable { var value = 0 }
        let plain = Box(), plainS = Box()
        let pinned = CheckedMutex(class: .unique("adv24.race.pinned"))
        let pinnedHeld = DispatchSemaphore(value: 0), pinnedRelease = DispatchSemaphore(value: 0)
        let pinner = startThread(named: "adv24-race-pin") {
            pinned.lock(); pinnedHeld.signal(); pinnedRelease.wait(); pinned.unlock()
        }
        pinnedHeld.wait()
        let churn = startThread(named: "adv24-race-churn") {
            for _ in 0..<300 {
                runOnJoinedThread(named: "adv24-churn") {
                    if pinned.isHeldByCurrentThread { wrong.withLock { $0 += 1 } }
                    pinned.unlock()   // refused
                }
            }
        }
        let racers = (0..<threads).map { i in
            startThread(named: "adv24-race-\(i)") {
                for r in 0..<rounds {
                    switch r % 3 {
                    case 0:
                        m.lock()
                        if !m.isHeldByCurrentThread { wrong.withLock { $0 += 1 } }
                        plain.value += 1
                        m.unlock()
                        if m.isHeldByCurrentThread { wrong.withLock { $0 += 1 } }
                    case 1:
                        s.withLock { plainS.value += 1; if !s.isHeldByCurrentThread { wrong.withLock { $0 += 1 } } }
                        m.withLock { plain.value += 1 }
                    default:
                        rw.writeLock()
                        if !rw.isWriteHeldByCurrentThread { wrong.withLock { $0 += 1 } }
                        m.withLock { plain.value += 1 }
                        rw.unlock()
                    }
                    if r % 500 == 0 { m.unlock() }   // not held by this thread: refused
                }
                counter.withLock { $0 += 1 }
            }
        }
        for t in racers { XCTAssertTrue(t.join(timeout: 120), "a racer hung") }
        XCTAssertTrue(churn.join(timeout: 120), "the churn hung")
        XCTAssertTrue(pinned.isHeldByCurrentThread == false)
        XCTAssertFalse(pinned.tryLock(), "a churned thread released the pinned hold")
        pinnedRelease.signal()
        XCTAssertTrue(pinner.join(timeout: 10))
        XCTAssertEqual(counter.value, threads)
        XCTAssertEqual(wrong.value, 0, "a wrong holder answer")
        XCTAssertEqual(plain.value, threads * rounds, "lost updates under the mutex: exclusion broken")
        XCTAssertEqual(plainS.value, threads * rounds / 3, "lost updates under the spinlock: exclusion broken")
        let refusedForeign = (kinds.value[.unlockFromOtherThread] ?? 0) + (kinds.value[.unlockNotHeld] ?? 0)
            + (kinds.value[.doubleUnlock] ?? 0)
        XCTAssertEqual(refusedForeign, 300 + threads * ((rounds + 499) / 500), "\(kinds.value)")
    }

    // MARK: 9. fork()

    /// The forking thread holds a mutex, a spinlock and a rwlock's write side. In the child,
    /// the continuing thread is still their holder (it releases them); a thread created in the
    /// child is not (its releases are refused; it waits for the holder). A parent thread's
    /// hold at the fork is nobody's in the child: the continuing thread's release is refused.
    func testForkChildHolderAnswers() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        if let failure = failureOfFreshTestProcess(
            "LockdepTests.AdversarialSession24Tests/testForkChildHolderAnswersInAFreshProcess", timeout: .seconds(90)) {
            XCTFail(failure)
        }
    }

    /// Runs only in the fresh process of the test above.
    func testForkChildHolderAnswersInAFreshProcess() throws {
        guard inFreshTestProcess else { throw XCTSkip("runs in the fresh process of testForkChildHolderAnswers") }
        let m = CheckedMutex(class: .unique("adv24.fork.m"))
        let s = CheckedSpinLock(class: .unique("adv24.fork.s"))
        let rw = CheckedRWLock(class: .unique("adv24.fork.rw"))
        let other = CheckedMutex(class: .unique("adv24.fork.other"))
        let otherHeld = DispatchSemaphore(value: 0), otherRelease = DispatchSemaphore(value: 0)
        let parentThread = startThread(named: "adv24-fork-other") {
            other.lock(); otherHeld.signal(); otherRelease.wait(); other.unlock()
        }
        otherHeld.wait()
        m.lock(); s.lock(); rw.writeLock()
        let pid = fork()
        if pid == 0 {
            alarm(20)
            let kinds = Locked<[LockdepReport.Kind]>([])
            Lockdep.reportHandler = .custom { r in kinds.withLock { $0.append(r.kind) } }
            var code: Int32 = 0
            func fail(_ c: Int32, _ what: String) {
                if code == 0 { code = c }
                let line = "child check \(c) failed: \(what)\n"
                _ = line.withCString { write(2, $0, strlen($0)) }
            }
            if !(m.isHeldByCurrentThread && s.isHeldByCurrentThread && rw.isWriteHeldByCurrentThread) {
                fail(10, "the forking thread does not hold its locks in the child")
            }
            if other.isHeldByCurrentThread { fail(11, "the child's thread holds the other parent thread's mutex") }
            other.unlock()
            if kinds.value != [.unlockFromOtherThread] { fail(12, "continuing thread's release of a parent thread's hold: \(kinds.value)") }
            kinds.value = []
            let answers = Locked<[Bool]>([])
            let childThreadTried = DispatchSemaphore(value: 0), childAcquired = DispatchSemaphore(value: 0)
            let t = startThread(named: "adv24-fork-child-t") {
                answers.value = [m.isHeldByCurrentThread, s.isHeldByCurrentThread, rw.isWriteHeldByCurrentThread,
                                 other.isHeldByCurrentThread, m.tryLock(), s.tryLock(), rw.tryWriteLock()]
                s.unlock(); rw.unlock(); m.unlock()
                childThreadTried.signal()
                m.lock()         // waits for the continuing thread
                childAcquired.signal()
                m.unlock()
            }
            childThreadTried.wait()
            if answers.value != [false, false, false, false, false, false, false] { fail(13, "child thread answers \(answers.value)") }
            if kinds.value != [.unlockFromOtherThread, .unlockFromOtherThread, .unlockFromOtherThread] {
                fail(14, "child thread's releases: \(kinds.value)")
            }
            usleep(50_000)
            if childAcquired.wait(timeout: .now()) == .success { fail(15, "the child thread took a mutex the continuing thread holds") }
            rw.unlock(); s.unlock(); m.unlock()
            if childAcquired.wait(timeout: .now() + 5) != .success { fail(16, "the child thread never got the released mutex") }
            if !t.join(timeout: 5) { fail(17, "child thread hung") }
            if m.isHeldByCurrentThread || s.isHeldByCurrentThread || rw.isWriteHeldByCurrentThread { fail(18, "still held") }
            _exit(code)
        }
        XCTAssertGreaterThan(pid, 0)
        rw.unlock(); s.unlock(); m.unlock()
        otherRelease.signal()
        XCTAssertTrue(parentThread.join(timeout: 5))
        let (status, ended) = waitForChild(pid, timeout: .seconds(30))
        XCTAssertTrue(ended, "the child hung")
        XCTAssertEqual(status & 0x7F, 0, "the child was killed by signal \(status & 0x7F)")
        XCTAssertEqual((status >> 8) & 0xFF, 0, "child check \((status >> 8) & 0xFF) failed (see stderr)")
    }
}

/// The calling thread's kernel thread id, as glibc records it in a mutex it locks.
private func currentKernelTID() -> Int32 {
    var probe = pthread_mutex_t()
    pthread_mutex_init(&probe, nil)
    pthread_mutex_lock(&probe)
    let tid = probe.__data.__owner
    pthread_mutex_unlock(&probe)
    pthread_mutex_destroy(&probe)
    return tid
}

/// What the SIGUSR2 handler of the signal test reads and writes.
private enum SignalProbe {
    nonisolated(unsafe) static var mutex: CheckedMutex?
    static let held = Atomic<Int>(-1)
    static let done = Atomic<Int>(0)
}

/// What the key destructors of the destructor tests call.
private enum DestructorProbe {
    nonisolated(unsafe) static var lockAll: (() -> Void)?
    nonisolated(unsafe) static var unlockAll: (() -> Void)?
    nonisolated(unsafe) static var key = pthread_key_t()
}
