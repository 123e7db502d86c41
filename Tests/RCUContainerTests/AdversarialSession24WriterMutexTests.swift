#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Lockdep
import RCU
import RCUTestSupport
import Synchronization
import XCTest

/// Session 24's adversarial pass over `RCUWriterMutex`'s owner, now the holder's
/// `clockdep_thread_identity()` in every build (commit 6856af8): thread exit, refusal
/// counting, key destructors, tasks, races, fork. Same outcome in every build.
final class AdversarialSession24WriterMutexTests: XCTestCase {
    /// A holder locks twice (the second refused and counted) and exits holding it. A thread
    /// given its `pthread_t` is not the holder: its unlock is reported, not taken for the
    /// matching release of the dead holder's refused lock.
    func testAReusedPthreadDoesNotConsumeAnExitedHoldersRefusal() throws {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        _ = Unmanaged.passRetained(lock)
        let holder = Locked<pthread_t>(0)
        pthread_join(startJoinableThread(named: "adv24-wm-holder") {
            holder.value = pthread_self()
            lock.lock()
            lock.lock()   // refused, counted
        }, nil)
        XCTAssertEqual(recorder.kinds, [.recursiveLock])
        let seen = Locked<[Bool]>([])
        let ran = onThreadReusing(holder.value, named: "adv24-wm-impostor") {
            seen.value.append(lock.isHeldByCurrentThread)
            lock.unlock()
            lock.unlock()
            seen.value.append(lock.isHeldByCurrentThread)
        }
        try XCTSkipUnless(ran, "glibc gave no new thread the exited holder's pthread_t")
        XCTAssertEqual(seen.value, [false, false])
        XCTAssertEqual(recorder.kinds, [.recursiveLock, .unlockNotHeld, .unlockNotHeld])
    }

    /// Refusal counting: lock, lock (refused), withLock (refused, body runs), a foreign unlock
    /// (refused), unlock (matches the refusal), unlock (releases); a lock() left unmatched
    /// inside withLock does not keep the mutex past the scope.
    func testRefusalCounting() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        lock.lock()
        lock.lock()
        var ran = false
        lock.withLock { ran = true }
        XCTAssertTrue(ran)
        onThread(named: "adv24-wm-foreign") { lock.unlock() }
        lock.unlock()
        XCTAssertTrue(lock.isHeldByCurrentThread, "the unlock matching a refused lock released it")
        lock.unlock()
        XCTAssertFalse(lock.isHeldByCurrentThread)
        lock.withLock { lock.lock() }
        XCTAssertFalse(lock.isHeldByCurrentThread)
        let got = Locked(false)
        onThread(named: "adv24-wm-after") { lock.lock(); got.value = lock.isHeldByCurrentThread; lock.unlock() }
        XCTAssertTrue(got.value, "a withLock scope kept the mutex past its end")
        XCTAssertEqual(recorder.kinds, [.recursiveLock, .recursiveLock, .unlockNotHeld, .recursiveLock])
    }

    /// A thread's first use of the mutex is in a pthread key destructor at its exit, and it
    /// exits holding it. A thread given its `pthread_t` is not the holder.
    func testAHoldFirstTakenInAKeyDestructorIsNotInheritedByAReusedPthread() throws {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        _ = Unmanaged.passRetained(lock)
        WriterMutexProbe.lock = lock
        defer { WriterMutexProbe.lock = nil }
        var keyVar = pthread_key_t()
        XCTAssertEqual(pthread_key_create(&keyVar, { _ in WriterMutexProbe.lock?.lock() }), 0)
        let key = keyVar
        let holder = Locked<pthread_t>(0)
        pthread_join(startJoinableThread(named: "adv24-wm-dtor") {
            holder.value = pthread_self()
            pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
        }, nil)
        pthread_key_delete(key)
        let seen = Locked<Bool?>(nil)
        let ran = onThreadReusing(holder.value, named: "adv24-wm-dtor-imp") {
            seen.value = lock.isHeldByCurrentThread
            lock.unlock()
        }
        try XCTSkipUnless(ran, "glibc gave no new thread the exited holder's pthread_t")
        XCTAssertEqual(seen.value, false)
        XCTAssertEqual(recorder.kinds, [.unlockNotHeld])
    }

    /// A thread releases the mutex from a pthread key destructor in the second destructor
    /// round: it is still the holder there.
    func testAKeyDestructorInALaterRoundReleasesTheMutex() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        WriterMutexProbe.lock = lock
        defer { WriterMutexProbe.lock = nil }
        var keyVar = pthread_key_t()
        XCTAssertEqual(pthread_key_create(&keyVar, { value in
            if Int(bitPattern: value) > 1 {
                pthread_setspecific(WriterMutexProbe.key, UnsafeRawPointer(bitPattern: Int(bitPattern: value) - 1))
                return
            }
            WriterMutexProbe.heldThere.store(WriterMutexProbe.lock?.isHeldByCurrentThread == true ? 1 : 0, ordering: .relaxed)
            WriterMutexProbe.lock?.unlock()
        }), 0)
        let key = keyVar
        WriterMutexProbe.key = key
        pthread_join(startJoinableThread(named: "adv24-wm-dtor2") {
            lock.lock()
            pthread_setspecific(key, UnsafeRawPointer(bitPattern: 3))
        }, nil)
        pthread_key_delete(key)
        XCTAssertEqual(WriterMutexProbe.heldThere.load(ordering: .relaxed), 1)
        let got = Locked(false)
        let t = startThread(named: "adv24-wm-dtor2-b") { lock.lock(); got.value = true; lock.unlock() }
        XCTAssertTrue(t.join(timeout: 5), "the destructor's release did not release the mutex")
        XCTAssertTrue(got.value)
        XCTAssertEqual(recorder.kinds, [])
    }

    /// A task locks on one thread, awaits, resumes on another and unlocks there: reported and
    /// refused; back on the first thread the unlock releases it.
    func testAnUnlockAfterAnAwaitOnAnotherThreadIsRefused() async {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        let one = TestThreadExecutor(named: "adv24-wm-exec1"), two = TestThreadExecutor(named: "adv24-wm-exec2")
        let answers: [Bool] = await withTaskExecutorPreference(one) {
            lock.lock()
            let there: Bool = await withTaskExecutorPreference(two) {
                let held = lock.isHeldByCurrentThread
                lock.unlock()
                return held
            }
            let here = lock.isHeldByCurrentThread
            lock.unlock()
            return [there, here]
        }
        XCTAssertEqual(answers, [false, true])
        XCTAssertEqual(recorder.kinds, [.unlockNotHeld])
        let got = Locked(false)
        onThread(named: "adv24-wm-task-after") { lock.lock(); got.value = true; lock.unlock() }
        XCTAssertTrue(got.value)
    }

    /// Racing writers, each checking it is the holder inside and not outside, with refused
    /// foreign releases now and then; short-lived threads release a hold a long-lived thread
    /// keeps (refused).
    func testRacingWritersAndChurningThreads() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex(), pinned = RCUWriterMutex()
        final class Box: @unchecked Sendable { var value = 0 }
        let plain = Box(), wrong = Locked(0)
        let pinHeld = DispatchSemaphore(value: 0), pinRelease = DispatchSemaphore(value: 0)
        let pinner = startThread(named: "adv24-wm-pin") { pinned.lock(); pinHeld.signal(); pinRelease.wait(); pinned.unlock() }
        pinHeld.wait()
        let churn = startThread(named: "adv24-wm-churn") {
            for _ in 0..<200 {
                runOnJoinedThread(named: "adv24-wm-churn1") {
                    if pinned.isHeldByCurrentThread { wrong.withLock { $0 += 1 } }
                    pinned.unlock()
                }
            }
        }
        let threads = 6, rounds = 4_000
        let racers = (0..<threads).map { i in
            startThread(named: "adv24-wm-race\(i)") {
                for r in 0..<rounds {
                    if r % 2 == 0 {
                        lock.lock()
                        if !lock.isHeldByCurrentThread { wrong.withLock { $0 += 1 } }
                        plain.value += 1
                        lock.unlock()
                    } else {
                        lock.withLock { plain.value += 1 }
                    }
                    if lock.isHeldByCurrentThread { wrong.withLock { $0 += 1 } }
                    if r % 1000 == 0 { lock.unlock() }
                }
            }
        }
        for t in racers { XCTAssertTrue(t.join(timeout: 120)) }
        XCTAssertTrue(churn.join(timeout: 120))
        XCTAssertFalse(pinned.isHeldByCurrentThread)
        pinRelease.signal()
        XCTAssertTrue(pinner.join(timeout: 10))
        XCTAssertEqual(plain.value, threads * rounds)
        XCTAssertEqual(wrong.value, 0)
        XCTAssertEqual(recorder.kinds.count, 200 + threads * 4)
        XCTAssertTrue(recorder.kinds.allSatisfy { $0 == .unlockNotHeld })
    }

    /// The forking thread holds the writer mutex. In the child it is the same thread: it still
    /// holds it (`isHeldByCurrentThread`, its `lock()` refused as recursive) and releases it.
    /// A thread created in the child is not the holder: its `unlock()` is refused, and its
    /// `lock()` waits for the continuing thread's release (the holder exists in the child),
    /// rather than stopping the process as if the holder were a parent thread left behind.
    func testForkingThreadHoldingTheWriterMutex() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support fork() with threads")
        if !IsolatedTest.isChild {
            let run = try IsolatedTest.run("RCUContainerTests.AdversarialSession24WriterMutexTests/testForkingThreadHoldingTheWriterMutex")
            XCTAssertEqual(run.status, 0, "isolated run failed:\n\(run.output)")
            XCTAssertTrue(run.output.contains("Executed 1 test, with 0 failures"), run.output)
            return
        }
        let lock = RCUWriterMutex()
        lock.lock()
        let child = WriterMutexForkTests.runInChild {
            let kinds = Locked<[RCUMisuse.Kind]>([])
            RCUMisuse.reportHandler = .custom { m in kinds.withLock { $0.append(m.kind) } }
            guard lock.isHeldByCurrentThread else { return 10 }
            lock.lock()   // refused: recursive
            guard kinds.value == [.recursiveLock] else { return 11 }
            let answers = Locked<[Bool]>([])
            let tried = DispatchSemaphore(value: 0), acquired = DispatchSemaphore(value: 0)
            let t = startThread(named: "adv24-wm-forkchild") {
                answers.value = [lock.isHeldByCurrentThread]
                lock.unlock()          // refused
                tried.signal()
                lock.lock()            // waits for the continuing thread
                answers.value.append(lock.isHeldByCurrentThread)
                acquired.signal()
                lock.unlock()
            }
            tried.wait()
            guard answers.value == [false], kinds.value == [.recursiveLock, .unlockNotHeld] else { return 12 }
            usleep(50_000)
            guard acquired.wait(timeout: .now()) == .timedOut else { return 13 }
            lock.unlock()              // matches the refused lock
            lock.unlock()
            guard acquired.wait(timeout: .now() + 5) == .success, t.join(timeout: 5) else { return 14 }
            guard answers.value == [false, true] else { return 15 }
            return 0
        }
        lock.unlock()
        XCTAssertFalse(child.hung, child.stderr)
        XCTAssertEqual(child.exitStatus, 0, "the child's checks failed or it stopped: \(child.stderr)")
    }
}

private enum WriterMutexProbe {
    nonisolated(unsafe) static var lock: RCUWriterMutex?
    nonisolated(unsafe) static var key = pthread_key_t()
    static let heldThere = Atomic<Int>(-1)
}
