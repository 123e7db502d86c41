#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Lockdep
import RCU
import RCUTestSupport
import Synchronization
import XCTest

/// Runs `body` (non-escaping) on a new thread and waits for it: lets a test hand a borrowed
/// reader to another thread, as a hostile caller could.
private func runOnAnotherThread(_ body: () -> Void) {
    withoutActuallyEscaping(body) { escapable in
        // Held only here and joined before the block ends: the closure never outlives it.
        var slot: (() -> Void)? = escapable
        withUnsafeMutablePointer(to: &slot) { pointer in
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                raw!.assumingMemoryBound(to: (() -> Void)?.self).pointee!()
                return nil
            }, pointer)
            precondition(rc == 0, "pthread_create failed")
            pthread_join(thread, nil)
        }
        slot = nil
    }
}

/// Forks; the child runs `child` and exits 0 when it returns true. Whether it did, within 20 s.
private func childSucceeds(_ child: () -> Bool) -> Bool {
    let pid = fork()
    if pid == 0 {
        alarm(20)
        _exit(child() ? 0 : 1)
    }
    guard pid > 0 else { return false }
    let (status, ended) = waitForChild(pid, timeout: .seconds(25))
    return ended && status == 0
}

/// What a section of `F` inside a scope looks like to Lockdep: the read map held for read,
/// one entry per nesting level, and a mutex inside is sleeping in an invalid context.
/// Returns a description of what was wrong ("" when all was as expected).
private func checkScope<F: RCUFlavor>(_: F.Type, mutex: CheckedMutex) -> String {
    var wrong: [String] = []
    let before = Lockdep.heldLockCount
    F.withReader { reader in
        reader.read { _ in
            if !Lockdep.isHeld(F.lockdepMap, mode: .read) { wrong.append("\(F.self): map not held in a section") }
            reader.read { _ in
                if Lockdep.heldLockCount != before + 2 { wrong.append("\(F.self): nested depth \(Lockdep.heldLockCount)") }
            }
        }
        if Lockdep.isHeld(F.lockdepMap) { wrong.append("\(F.self): map held after the section") }
    }
    if Lockdep.heldLockCount != before { wrong.append("\(F.self): left \(Lockdep.heldLockCount - before) held") }
    return wrong.joined(separator: "; ")
}

private func sleepsInSection<F: RCUFlavor>(_: F.Type, mutex: CheckedMutex) {
    F.withReader { reader in reader.read { _ in mutex.lock(); mutex.unlock() } }
}

/// Adversarial tests of session 17's reader-scope change (d1ec041): a reader scope creates
/// its flavor's Lockdep read map when it is made, and each section's push no longer tests the
/// map cell (empty, or its options).
final class AdversarialSession17Tests: XCTestCase {
    private var recorder: MisuseRecorder!
    private static let freshProcessTimeout: Duration = .seconds(120)

    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        recorder = MisuseRecorder()
    }

    override func tearDown() {
        Lockdep.collectsStatistics = false
        recorder?.stop()
    }

    private var lockdepKinds: [LockdepReport.Kind] { recorder.lockdepReports.map(\.kind) }
    private var lockdepText: String { recorder.lockdepReports.map(\.text).joined(separator: "\n") }

    // MARK: first scope of a process in a forked child / on many threads at once

    /// In a fresh process (no flavor's read map made yet), the process's first reader scopes
    /// are made in a forked child: the child must make the maps, hold them in sections, and
    /// report a mutex taken inside.
    func testFirstReaderScopeOfTheProcessInAForkedChild() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support fork() with threads")
        guard inFreshTestProcess else {
            let test = "RCUTests.AdversarialSession17Tests/testFirstReaderScopeOfTheProcessInAForkedChild"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        let ok = childSucceeds {
            let seen = Locked<[LockdepReport.Kind]>([])
            Lockdep.reportHandler = .custom { r in seen.withLock { $0.append(r.kind) } }
            let mutex = CheckedMutex(class: .unique("adv17.child.mutex"))
            var wrong = ""
            wrong += checkScope(RCUMemb.self, mutex: mutex)
            wrong += checkScope(RCUQSBR.self, mutex: mutex)
            wrong += checkScope(RCUMemoryBarrier.self, mutex: mutex)
            wrong += checkScope(RCUBulletproof.self, mutex: mutex)
            sleepsInSection(RCUMemb.self, mutex: mutex)
            if !wrong.isEmpty { FileHandle.standardError.write(Data(("child: \(wrong)" + "\n").utf8)); return false }
            let kinds = seen.withLock { $0 }
            if !kinds.contains(.sleepInInvalidContext) { FileHandle.standardError.write(Data(("child: \(kinds)" + "\n").utf8)); return false }
            return true
        }
        XCTAssertTrue(ok, "the forked child's first reader scopes went wrong (see stderr)")
    }

    /// In a fresh process, many threads open their (and the process's) first reader scope of
    /// every flavor at the same moment.
    func testFirstReaderScopesOnManyThreadsAtOnce() throws {
        guard inFreshTestProcess else {
            let test = "RCUTests.AdversarialSession17Tests/testFirstReaderScopesOnManyThreadsAtOnce"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        let mutex = CheckedMutex(class: .unique("adv17.many.mutex"))
        let wrong = Locked<[String]>([])
        let start = DispatchSemaphore(value: 0)
        let threads = (0..<8).map { i in
            TestThread(named: "adv17-first-\(i)") {
                start.wait()
                let w = [
                    checkScope(RCUMemb.self, mutex: mutex), checkScope(RCUQSBR.self, mutex: mutex),
                    checkScope(RCUMemoryBarrier.self, mutex: mutex), checkScope(RCUBulletproof.self, mutex: mutex),
                ].filter { !$0.isEmpty }
                if !w.isEmpty { wrong.withLock { $0.append(contentsOf: w) } }
            }
        }
        for _ in threads { start.signal() }
        for t in threads { t.wait() }
        XCTAssertEqual(wrong.withLock { $0 }, [])
        XCTAssertEqual(lockdepKinds, [], lockdepText)
        sleepsInSection(RCUMemb.self, mutex: mutex)
        XCTAssertEqual(lockdepKinds, [.sleepInInvalidContext], lockdepText)
    }

    // MARK: scopes and sections in unusual places

    func testReaderScopesInATask() async throws {
        let mutex = CheckedMutex(class: .unique("adv17.task.mutex"))
        let wrong = await Task.detached {
            checkScope(RCUMemb.self, mutex: mutex) + checkScope(RCUQSBR.self, mutex: mutex)
                + checkScope(RCUMemoryBarrier.self, mutex: mutex) + checkScope(RCUBulletproof.self, mutex: mutex)
        }.value
        XCTAssertEqual(wrong, "")
        await Task.detached { sleepsInSection(RCUQSBR.self, mutex: mutex) }.value
        XCTAssertTrue(lockdepKinds.contains(.sleepInInvalidContext), "\(lockdepKinds)")
    }

    /// Scopes of different flavors nested, their sections interleaved: each section holds its
    /// own flavor's map, and nothing is left held.
    func testNestedScopesOfDifferentFlavors() {
        let mutex = CheckedMutex(class: .unique("adv17.nest.mutex"))
        RCUMemb.withReader { memb in
            RCUQSBR.withReader { qsbr in
                RCUMemoryBarrier.withReader { mb in
                    RCUBulletproof.withReader { bp in
                        memb.read { _ in
                            qsbr.read { _ in
                                mb.read { _ in
                                    bp.read { _ in
                                        XCTAssertEqual(Lockdep.heldLockCount, 4)
                                        XCTAssertTrue(Lockdep.isHeld(RCUMemb.lockdepMap, mode: .read))
                                        XCTAssertTrue(Lockdep.isHeld(RCUQSBR.lockdepMap, mode: .read))
                                        XCTAssertTrue(Lockdep.isHeld(RCUMemoryBarrier.lockdepMap, mode: .read))
                                        XCTAssertTrue(Lockdep.isHeld(RCUBulletproof.lockdepMap, mode: .read))
                                    }
                                }
                                XCTAssertEqual(Lockdep.heldLockCount, 2)
                            }
                        }
                        XCTAssertEqual(Lockdep.heldLockCount, 0)
                        bp.read { _ in memb.read { _ in XCTAssertEqual(Lockdep.heldLockCount, 2) } }
                        XCTAssertEqual(Lockdep.heldLockCount, 0)
                    }
                }
            }
        }
        XCTAssertEqual(lockdepKinds, [], lockdepText)
        sleepsInSection(RCUMemoryBarrier.self, mutex: mutex)
        XCTAssertEqual(lockdepKinds, [.sleepInInvalidContext], lockdepText)
    }

    /// A reader borrowed into a closure that runs on another thread (misuse, reported by RCU
    /// in debug builds): Lockdep must see that thread's section on that thread (the generic
    /// path), not push onto the scope's thread's stack.
    func testReaderBorrowedIntoAnotherThread() {
        let mutex = CheckedMutex(class: .unique("adv17.borrow.mutex"))
        let seen = Locked<[String]>([])
        RCUMemb.withReader { reader in
            reader.read { _ in }
            runOnAnotherThread {
                reader.read { _ in
                    seen.withLock { $0.append("held \(Lockdep.isHeld(RCUMemb.lockdepMap, mode: .read)) count \(Lockdep.heldLockCount)") }
                    mutex.lock(); mutex.unlock()
                }
                seen.withLock { $0.append("after count \(Lockdep.heldLockCount)") }
            }
            XCTAssertEqual(Lockdep.heldLockCount, 0, "the other thread's section was pushed on the scope's thread")
        }
        XCTAssertEqual(seen.withLock { $0 }, ["held true count 1", "after count 0"])
        XCTAssertTrue(lockdepKinds.contains(.sleepInInvalidContext), "\(lockdepKinds): \(lockdepText)")
        XCTAssertFalse(lockdepKinds.contains(.unlockNotHeld), lockdepText)
    }

    /// Lockdep reset while a scope exists (and while the thread is online), statistics on and
    /// off, validation off: the scope's later sections still behave.
    func testResetStatisticsAndValidationOffWhileAScopeExists() {
        let mutex = CheckedMutex(class: .unique("adv17.reset.mutex"))
        let other = CheckedMutex(class: .unique("adv17.reset.other"))
        RCUMemb.withReader { reader in
            reader.read { _ in }
            Lockdep.resetForTesting()
            reader.read { _ in
                XCTAssertTrue(Lockdep.isHeld(RCUMemb.lockdepMap, mode: .read))
                mutex.lock(); mutex.unlock()
            }
            XCTAssertEqual(lockdepKinds, [.sleepInInvalidContext], lockdepText)
            Lockdep.collectsStatistics = true
            for _ in 0..<3 { reader.read { _ in reader.read { _ in XCTAssertEqual(Lockdep.heldLockCount, 2) } } }
            Lockdep.collectsStatistics = false
            reader.read { _ in XCTAssertEqual(Lockdep.heldLockCount, 1) }
            XCTAssertEqual(Lockdep.heldLockCount, 0)
            // Validation off, by a capacity report; sections then record nothing and report nothing.
            var limits = LockdepLimits()
            limits.maxDepth = 1
            Lockdep.limits = limits
            reader.read { _ in reader.read { _ in } }
            Lockdep.limits = LockdepLimits()
            XCTAssertFalse(Lockdep.isValidating)
            let off = recorder.lockdepReports.count
            for _ in 0..<3 { reader.read { _ in other.lock(); other.unlock() } }
            XCTAssertEqual(recorder.lockdepReports.count, off, lockdepText)
            Lockdep.resetForTesting()
            XCTAssertTrue(Lockdep.isValidating)
            XCTAssertEqual(Lockdep.heldLockCount, 0)
            reader.read { _ in
                XCTAssertEqual(Lockdep.heldLockCount, 1)
                other.lock(); other.unlock()
            }
            XCTAssertEqual(Lockdep.heldLockCount, 0)
        }
        XCTAssertEqual(recorder.lockdepReports.suffix(1).map(\.kind), [.sleepInInvalidContext], lockdepText)
        XCTAssertFalse(lockdepKinds.contains(.unlockNotHeld), lockdepText)
    }

    /// The scope made before a reset; the depth limit lowered afterwards: nested sections of
    /// the scope must hit it (one capacity report), not push past it.
    func testLoweredDepthLimitReachesScopeSections() {
        RCUQSBR.withReader { reader in
            reader.read { _ in }
            var limits = LockdepLimits()
            limits.maxDepth = 3
            Lockdep.limits = limits
            reader.read { _ in reader.read { _ in reader.read { _ in reader.read { _ in reader.read { _ in
                XCTAssertLessThanOrEqual(Lockdep.heldLockCount, 3)
            } } } } }
            Lockdep.limits = LockdepLimits()
        }
        XCTAssertEqual(lockdepKinds, [.capacityExceeded], lockdepText)
        XCTAssertEqual(Lockdep.heldLockCount, 0)
    }
}
