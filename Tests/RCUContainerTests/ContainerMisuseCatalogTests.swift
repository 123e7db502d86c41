import Foundation
import Lockdep
import RCU
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The containers' misuse catalog: for each misuse a user can write in safe Swift, the
/// outcome they get. Either it is harmless by construction, or it is reported (the named
/// ``RCUMisuse`` kind, recorded here with `MisuseRecorder`) and the offending call is
/// refused as a whole. Never a read of freed memory (run under ASan), a crash or a silent hang.
final class ContainerMisuseCatalogTests: XCTestCase {
    // MARK: 1. removeAll(where:) with a predicate that edits the list

    /// The predicate removes the next node and waits for its reclamation: the old walk then
    /// followed the freed node's link. Now the walk skips it, visits only linked nodes, and
    /// nothing is read after it is freed (ASan; `Tracked.isAlive`).
    func testRemoveAllWithAPredicateThatRemovesTheNextNodeAndWaitsForAGracePeriod() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let ledger = Ledger()
        let lock = RCUWriterMutex()
        let list = RCUList<Tracked, RCUMemb>(lock: lock)
        // The test's handles go away as the predicate removes their nodes, so a removed node
        // is freed by the barrier unless the list itself still references it.
        var handles: [Int: RCUListNode<Tracked>] = lock.withLock {
            Dictionary(uniqueKeysWithValues: (0..<6).map { ($0, list.append(Tracked(id: $0, ledger: ledger))) })
        }
        var visited: [Int] = []
        let removed = lock.withLock {
            list.removeAll { element in
                XCTAssertTrue(element.isAlive, "element \(element.id) visited after it was freed")
                visited.append(element.id)
                if let next = handles.removeValue(forKey: element.id + 1) {
                    XCTAssertTrue(list.remove(next))
                }
                RCUMemb.barrier()   // the removed next node is reclaimed here (the writer is not a reader)
                return true
            }
        }
        XCTAssertEqual(visited, [0, 2, 4], "nodes the predicate removed are skipped")
        XCTAssertEqual(removed, 3, "only the nodes removeAll itself removed are counted")
        XCTAssertEqual(RCUMemb.read { s in list.count(in: s) }, 0)
        handles.removeAll()
        RCUMemb.barrier()
        XCTAssertEqual(ledger.freedCount, 6)
        XCTAssertEqual(ledger.doubleFrees, 0)
        XCTAssertEqual(recorder.kinds, [])
    }

    /// A writer mutex whose holder exited holding it: a later thread that glibc gives the
    /// exited holder's `pthread_t` is not its holder (the owner was once that `pthread_t`), so
    /// it neither reads as holding it nor passes `unlock()` (reported, refused).
    func testAThreadReusingAnExitedHoldersPthreadDoesNotHoldTheWriterMutex() throws {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        // Held for good by the exited thread: never freed (destroying a held mutex traps).
        _ = Unmanaged.passRetained(lock)
        let holder = Locked<pthread_t>(0)
        pthread_join(startJoinableThread(named: "writer-holder") {
            holder.value = pthread_self()
            lock.lock()
        }, nil)
        let seen = Locked<Bool?>(nil)
        let ran = onThreadReusing(holder.value, named: "writer-impostor") {
            seen.value = lock.isHeldByCurrentThread
            lock.unlock()
        }
        try XCTSkipUnless(ran, "glibc gave no new thread the exited holder's pthread_t")
        XCTAssertEqual(seen.value, false, "a thread that only reuses the exited holder's pthread_t reads as the holder")
        XCTAssertEqual(recorder.kinds, [.unlockNotHeld])
    }

    /// Hostile predicates: one that releases the writer lock (the walk stops, reported), one
    /// that re-enters removeAll, one that appends (new nodes are not visited), one that throws.
    func testRemoveAllWithHostilePredicates() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let ledger = Ledger()
        let lock = RCUWriterMutex()
        let list = RCUList<Tracked, RCUMemb>(lock: lock)
        func ids() -> [Int] { RCUMemb.read { s in var r: [Int] = []; list.forEach(in: s) { r.append($0.id) }; return r } }
        lock.withLock { for id in 0..<4 { list.append(Tracked(id: id, ledger: ledger)) } }

        // Releases the lock: the first removal is refused, and so is the rest of the walk.
        lock.lock()
        let afterUnlock = list.removeAll { _ in lock.unlock(); return true }
        XCTAssertEqual(afterUnlock, 0)
        XCTAssertEqual(recorder.kinds, [.mutationWithoutLock])
        XCTAssertFalse(lock.isHeldByCurrentThread)
        XCTAssertEqual(ids(), [0, 1, 2, 3])

        // Re-enters: the inner call removes what it likes; the outer skips those nodes.
        let (outer, inner): (Int, Int) = lock.withLock {
            var inner = 0
            let outer = list.removeAll { element in
                if element.id == 0 { inner = list.removeAll { $0.id != 0 } }
                return true
            }
            return (outer, inner)
        }
        XCTAssertEqual(inner, 3)
        XCTAssertEqual(outer, 1)
        XCTAssertEqual(ids(), [])

        // Appends: the new node is not visited, so the call terminates.
        _ = lock.withLock { list.append(Tracked(id: 10, ledger: ledger)) }
        var appended = 0
        XCTAssertEqual(lock.withLock { list.removeAll { _ in appended += 1; list.append(Tracked(id: 10 + appended, ledger: ledger)); return true } }, 1)
        XCTAssertEqual(ids(), [11])

        // Throws: what was removed stays removed, the rest stays linked.
        struct Stop: Error {}
        _ = lock.withLock { list.append(Tracked(id: 12, ledger: ledger)) }
        XCTAssertThrowsError(try lock.withLock { () throws -> Int in
            try list.removeAll { element in
                if element.id == 12 { throw Stop() }
                return true
            }
        })
        XCTAssertEqual(ids(), [12])
        XCTAssertEqual(recorder.kinds, [.mutationWithoutLock])
        RCUMemb.barrier()
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    // MARK: 2. RCUWriterMutex locked twice by its holder

    /// Used to deadlock without a word. Now: reported, refused (no second acquisition, no
    /// block), and the thread's one hold survives the inner lock/unlock pair and the inner
    /// withLock, so a second writer stays out until the outer release.
    func testRecursiveWriterMutexLockIsReportedAndRefusedWithoutDeadlock() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        let finished = DispatchSemaphore(value: 0)
        let releaseOuter = DispatchSemaphore(value: 0)
        let outerStillHeld = Locked<[Bool]>([])
        let writer = startThread(named: "nested-locker") {
            lock.lock()
            lock.lock()                               // refused: would deadlock
            outerStillHeld.withLock { $0.append(lock.isHeldByCurrentThread) }
            lock.unlock()                             // matches the refused lock: releases nothing
            outerStillHeld.withLock { $0.append(lock.isHeldByCurrentThread) }
            let value = lock.withLock { 42 }          // refused acquisition: body runs under the hold
            outerStillHeld.withLock { $0.append(value == 42 && lock.isHeldByCurrentThread) }
            finished.signal()
            releaseOuter.wait()                       // a second writer must wait for this hold
            lock.unlock()
        }
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success, "a recursive lock deadlocked")
        let entered = Flag()
        let second = startThread(named: "second-writer") { lock.withLock { entered.set() } }
        usleep(50_000)
        XCTAssertFalse(entered.isSet, "a second writer got in while the first still held the mutex")
        releaseOuter.signal()
        writer.wait()
        second.wait()
        XCTAssertTrue(entered.isSet)
        XCTAssertEqual(outerStillHeld.withLock { $0 }, [true, true, true])
        XCTAssertEqual(recorder.kinds, [.recursiveLock, .recursiveLock])
        XCTAssertEqual(recorder.recorded.map(\.call), ["RCUWriterMutex.lock()", "RCUWriterMutex.withLock(_:)"])
        XCTAssertEqual(recorder.recorded.first?.threadName, "nested-locker")
        XCTAssertFalse(lock.isHeldByCurrentThread)
    }

    /// A body that leaves a refused nested lock() unmatched does not keep the mutex held past
    /// its withLock (the critical section is scoped).
    func testWithLockReleasesEvenWhenItsBodyLeftARefusedLockUnmatched() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        lock.withLock { lock.lock() }
        XCTAssertFalse(lock.isHeldByCurrentThread)
        let entered = Flag()
        XCTAssertEqual(startThread(named: "next-writer") { lock.withLock { entered.set() } }.wait(timeout: .now() + 10),
                       .success, "the mutex stayed held after withLock returned")
        XCTAssertTrue(entered.isSet)
        XCTAssertEqual(recorder.kinds, [.recursiveLock])
    }

    // MARK: 3. RCUWriterMutex released by a thread that does not hold it

    /// Used to release another thread's hold and let a second writer in. Now: reported,
    /// refused; the holder keeps the mutex and a second writer waits for the holder.
    func testUnlockByANonHolderIsReportedAndRefused() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        let list = RCUList<Int, RCUMemb>(lock: lock)
        lock.lock()
        onThread(named: "intruder") { lock.unlock() }
        XCTAssertTrue(lock.isHeldByCurrentThread, "the holder keeps the mutex")
        let entered = Flag()
        let second = startThread(named: "second-writer") { lock.withLock { entered.set(); list.append(2) } }
        usleep(50_000)
        XCTAssertFalse(entered.isSet, "the refused unlock let a second writer in")
        list.append(1)
        lock.unlock()
        second.wait()
        XCTAssertTrue(entered.isSet)
        lock.unlock()                                  // not held by anyone
        XCTAssertEqual(recorder.kinds, [.unlockNotHeld, .unlockNotHeld])
        XCTAssertEqual(recorder.recorded.first?.threadName, "intruder")
        XCTAssertEqual(RCUMemb.read { s in var r: [Int] = []; list.forEach(in: s) { r.append($0) }; return r }, [1, 2])
    }

    // MARK: 4. A list guarded by a Lockdep lock, in every build

    /// Lockdep's `isHeld` answers `true` where its checks are compiled out (release builds), so
    /// an unlocked append went through. The checked locks now keep their owner word in every
    /// build: the same refusals in debug and release (`swift test -c release`).
    func testListGuardedByACheckedLockRefusesAnUnlockedMutationInEveryBuild() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let mutex = CheckedMutex("catalog.mutex")
        let spin = CheckedSpinLock("catalog.spin")
        let rw = CheckedRWLock("catalog.rw")
        let byMutex = RCUList<Int, RCUMemb>(lock: mutex)
        let bySpin = RCUList<Int, RCUMemb>(lock: spin)
        let byRW = RCUList<Int, RCUMemb>(lock: rw)

        XCTAssertFalse(byMutex.append(1).isLinked, "no lock held")
        XCTAssertFalse(bySpin.append(1).isLinked)
        XCTAssertFalse(byRW.append(1).isLinked)
        XCTAssertFalse(rw.withReadLock { byRW.append(2).isLinked }, "a read hold does not let a writer in")
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let holder = startThread(named: "holder") { mutex.withLock { held.signal(); release.wait() } }
        held.wait()
        XCTAssertFalse(byMutex.append(3).isLinked, "held by another thread")
        release.signal()
        holder.wait()
        XCTAssertEqual(recorder.kinds, Array(repeating: .mutationWithoutLock, count: 5))

        XCTAssertTrue(mutex.withLock { byMutex.append(4).isLinked })
        XCTAssertTrue(spin.withLock { bySpin.append(4).isLinked })
        XCTAssertTrue(rw.withWriteLock { byRW.append(4).isLinked })
        mutex.lock()
        XCTAssertTrue(mutex.isHeldByCurrentThread)
        mutex.unlock()
        XCTAssertFalse(mutex.isHeldByCurrentThread)
        XCTAssertTrue(mutex.tryLock())
        XCTAssertTrue(byMutex.append(5).isLinked, "a trylock hold counts")
        mutex.unlock()

        // A condition wait gives the mutex up and takes it back (another thread held it in
        // between): the holder is still recognised afterwards.
        let condition = CheckedCondition("catalog.condition")
        let waiting = DispatchSemaphore(value: 0)
        let other = startThread(named: "other-writer") {
            waiting.wait()
            mutex.withLock { condition.signal() }
        }
        mutex.withLock {
            waiting.signal()
            _ = condition.wait(mutex, timeout: .seconds(5))
            XCTAssertTrue(byMutex.append(6).isLinked, "the holder after a condition wait")
        }
        other.wait()
        XCTAssertEqual(recorder.kinds.count, 5, "\(recorder.recorded)")
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [])
    }

    // MARK: 5. RCUHashMap torn down in a child of fork()

    /// A map whose table grew (liburcu's resize worker ran) used to hang the child's deinit:
    /// `cds_lfht_destroy` waited for a resize worker thread that fork() had not copied. Now
    /// the child gets its own worker and tears the map down; and a child that cannot wait for
    /// grace periods (its parent had another registered reader) refuses the teardown with
    /// `.gracePeriodAfterUnsafeFork` instead of hanging.
    func testGrownHashMapIsDestroyedInAForkedChild() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        guard try isolated("testGrownHashMapIsDestroyedInAForkedChild") else { return }
        let ledger = Ledger()
        var map: RCUHashMap<Int, Tracked, RCUMemb>? = RCUHashMap(minimumCapacity: 1)
        for key in 0..<20_000 { map!.insert(Tracked(id: key, ledger: ledger), forKey: key) }
        XCTAssertEqual(map!.count, 20_000)

        let clean = forkChild {
            map = nil                                  // cds_lfht_destroy waits for the resize worker
            let fresh = RCUHashMap<Int, Int, RCUMemb>(minimumCapacity: 1)
            for key in 0..<5_000 { fresh.insert(key, forKey: key) }   // the child's own worker resizes
            guard RCUMemb.read({ s in fresh.value(forKey: 4_999, in: s) }) == 4_999 else { return 3 }
            return ledger.freedCount == 20_000 ? 0 : 4
        }
        XCTAssertEqual(clean, 0, "the child tore the grown map down (status 1: hung and was killed)")

        // Another registered reader at the fork: the child cannot wait for grace periods, so
        // its teardown must be refused with a report, not hang.
        let registered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let reader = startThread(named: "other-reader") {
            RCUMemb.read { _ in }                  // registers this thread as a memb reader
            registered.signal()
            release.wait()
        }
        registered.wait()
        let unsafe = forkChild {
            let recorder = MisuseRecorder()
            map = nil
            return recorder.kinds == [.gracePeriodAfterUnsafeFork] ? 0 : 5
        }
        XCTAssertEqual(unsafe, 0, "the unsafe child refused the teardown with a report (status 1: hung and was killed)")
        release.signal()
        reader.wait()
        map = nil
        RCUMemb.barrier()
        XCTAssertEqual(ledger.freedCount, 20_000)
    }

    /// Runs `child` in a forked child and returns its exit status (1 when it had to be killed
    /// after 20 s: a hang).
    private func forkChild(_ child: () -> Int32) -> Int32 {
        let pid = fork()
        if pid == 0 { _exit(child()) }
        XCTAssertGreaterThan(pid, 0, "fork failed")
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(20)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return 1
            }
            usleep(10_000)
        }
        return (status >> 8) & 0xff
    }

    /// Runs `test` in a fresh process and returns `false`, or returns `true` when already in it.
    private func isolated(_ test: String) throws -> Bool {
        if IsolatedTest.isChild { return true }
        let run = try IsolatedTest.run("RCUContainerTests.ContainerMisuseCatalogTests/\(test)")
        XCTAssertEqual(run.status, 0, "isolated \(test) failed:\n\(run.output)")
        XCTAssertTrue(run.output.contains("Executed 1 test, with 0 failures"), run.output)
        return false
    }
}

