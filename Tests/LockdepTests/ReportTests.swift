import Foundation
import XCTest
@testable import Lockdep

/// Every report kind: its text (kernel shape) and its structured value.
final class ReportTests: LockdepTestCase {
    func lines(_ r: LockdepReport) -> [String] { r.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

    func testCircularDependencyText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let a = CheckedMutex(class: .unique("A")), b = CheckedMutex(class: .unique("B")), c = CheckedMutex(class: .unique("C"))
        a.lock(); b.lock(); b.unlock(); a.unlock()
        b.lock(); c.lock(); c.unlock(); b.unlock()
        let cLine: UInt = #line + 1
        c.lock()
        let aLine: UInt = #line + 1
        a.lock()
        a.unlock(); c.unlock()
        let r = try XCTUnwrap(expectOne(.circularDependency))
        let l = lines(r)
        XCTAssertEqual(l[0], String(repeating: "=", count: 54))
        XCTAssertEqual(l[1], "WARNING: possible circular locking dependency detected")
        XCTAssertEqual(l[3], "thread \"\(r.thread)\" is trying to acquire lock:")
        XCTAssertEqual(l[4], "  (A){+.+.}, at: testCircularDependencyText() ReportTests.swift:\(aLine)")
        XCTAssertEqual(l[6], "but thread is already holding lock:")
        XCTAssertEqual(l[7], "  (C){+.+.}, at: testCircularDependencyText() ReportTests.swift:\(cLine)")
        XCTAssertTrue(r.text.contains("Chain exists of:\n  C --> B --> A\n"))
        XCTAssertEqual(r.classes, ["A", "B", "C"])
        XCTAssertEqual(r.chain.map(\.description.count).count, 3)
        XCTAssertEqual(r.chain.map { "\($0.from)->\($0.to)" }, ["A->B", "B->C", "C->A"])
        XCTAssertEqual(r.chain.last?.toSite.line, aLine)
        XCTAssertEqual(r.chain.last?.fromSite.line, cLine)
        XCTAssertEqual(r.lock?.name, "A")
        XCTAssertEqual(r.heldLocks.map(\.name), ["C"])
        XCTAssertEqual(r.context, .process)
        XCTAssertTrue(r.text.contains("-> #2 (A){+.+.}:"))
        XCTAssertTrue(r.text.contains("-> #0 (B){+.+.}:"))
    }

    /// A dependency's stack names the functions that made it (found in the test bundle's symbol
    /// table: it exports none of them), not bare image offsets.
    func testDependencyStacksNameTheirFunctions() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let a = CheckedMutex(class: .unique("A")), b = CheckedMutex(class: .unique("B"))
        a.lock(); b.lock(); b.unlock(); a.unlock()
        b.lock(); a.lock(); a.unlock(); b.unlock()
        let r = try XCTUnwrap(expectOne(.circularDependency))
        for dependency in r.chain {
            let frames = dependency.stack.joined(separator: "\n")
            XCTAssertTrue(frames.contains("testDependencyStacksNameTheirFunctions()"), frames)
            // Lockdep's internals are left out; the lock call itself is the first frame.
            XCTAssertTrue(dependency.stack.first?.hasPrefix("Lockdep.CheckedMutex.lock(") ?? false, frames)
            XCTAssertFalse(frames.contains("Engine."), frames)
        }
        XCTAssertTrue(r.text.contains("ReportTests.testDependencyStacksNameTheirFunctions() throws -> () + 0x"), r.text)
    }

    func testRecursiveLockingText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let cls = LockClass.unique("dev->mutex")
        let d1 = CheckedMutex(class: cls), d2 = CheckedMutex(class: cls)
        d1.lock()
        let line: UInt = #line + 1
        d2.lock()
        d2.unlock(); d1.unlock()
        let r = try XCTUnwrap(expectOne(.recursiveLocking))
        XCTAssertEqual(lines(r)[1], "WARNING: possible recursive locking detected")
        XCTAssertTrue(r.text.contains("is trying to acquire lock:\n  (dev->mutex){+.+.}, at: testRecursiveLockingText() ReportTests.swift:\(line)"))
        XCTAssertTrue(r.text.contains("but thread is already holding lock:\n  (dev->mutex)"))
        XCTAssertTrue(r.text.contains("  lock(dev->mutex);\n  lock(dev->mutex);\n\n *** DEADLOCK ***"))
        XCTAssertTrue(r.text.contains("May be due to missing lock nesting notation"))
        XCTAssertEqual(r.classes, ["dev->mutex"])
        XCTAssertEqual(r.site?.line, line)
    }

    /// Two instances of one class are named as their own instances: their names and
    /// addresses, and the report says it is a nesting question and how to annotate it.
    func testRecursiveLockingNamesTwoInstances() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let cls = LockClass.unique("device->lock")
        let bridge = CheckedMutex(class: cls), port = CheckedMutex(class: cls)
        Lockdep.setInstanceName("bridge", of: bridge)
        Lockdep.setInstanceName("port 2", of: port)
        XCTAssertEqual(Lockdep.instanceName(of: port), "port 2")
        bridge.lock(); port.lock(); port.unlock(); bridge.unlock()
        let r = try XCTUnwrap(expectOne(.recursiveLocking))
        let portAddress = "0x" + String(UInt(bitPattern: port.lockdepInstance), radix: 16)
        let bridgeAddress = "0x" + String(UInt(bitPattern: bridge.lockdepInstance), radix: 16)
        XCTAssertEqual(r.lock?.instance, "\"port 2\" (\(portAddress))")
        XCTAssertTrue(r.text.contains("instance \"port 2\" (\(portAddress))\n\nbut thread is already holding lock:"), r.text)
        XCTAssertTrue(r.text.contains("instance \"bridge\" (\(bridgeAddress))\n"), r.text)
        XCTAssertTrue(r.text.contains("These are two different instances of one class (device->lock)"), r.text)
        XCTAssertTrue(r.text.contains("lock(subclass: 1)"), r.text)
        XCTAssertFalse(r.text.contains("the thread would wait for itself"), r.text)
    }

    /// A generic wrapper creates every lock on one line, so they share that site's class,
    /// named by the first; each lock keeps the name it was given as its instance name, and a
    /// report about two of them names both (a client saw "sessions" twice, "metrics" never).
    func testLocksJoiningASiteClassKeepTheirNames() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        final class Locked: Sendable {
            let mutex: CheckedMutex
            init(_ name: String) { mutex = CheckedMutex(name) }
        }
        let sessions = Locked("sessions"), metrics = Locked("metrics")
        XCTAssertEqual(metrics.mutex.lockClass.key, sessions.mutex.lockClass.key, "one declaration site, one class")
        XCTAssertEqual(metrics.mutex.lockClass.name, "sessions", "the class keeps its first name")
        XCTAssertEqual(Lockdep.instanceName(of: metrics.mutex), "metrics")
        sessions.mutex.lock(); metrics.mutex.lock(); metrics.mutex.unlock(); sessions.mutex.unlock()
        let r = try XCTUnwrap(expectOne(.recursiveLocking))
        XCTAssertTrue(r.text.contains("instance \"metrics\""), r.text)
        XCTAssertTrue(r.text.contains("These are two different instances of one class (\(sessions.mutex.lockClass.name))"), r.text)
        // A lock given its class explicitly, or no name, keeps no instance name of its own.
        let cls = LockClass.unique("explicit")
        XCTAssertNil(Lockdep.instanceName(of: CheckedMutex("other", class: cls)))
        XCTAssertNil(Lockdep.instanceName(of: CheckedMutex()))
    }

    /// Unnamed instances are told apart by address; the same instance twice (a map, which has
    /// no owner word to refuse it first) is called a self-deadlock.
    func testRecursiveLockingOfOneInstanceSaysSo() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let map = LockdepMap("one.map", key: "ReportTests.one.map")
        Lockdep.acquire(map); Lockdep.acquire(map)
        Lockdep.release(map); Lockdep.release(map)
        let r = try XCTUnwrap(expectOne(.recursiveLocking))
        let address = "0x" + String(UInt(bitPattern: map.lockdepInstance), radix: 16)
        XCTAssertEqual(r.lock?.instance, address)
        XCTAssertTrue(r.text.contains("Both are the same instance \(address): the thread would wait for itself."), r.text)
    }

    /// A name dies with its lock: a new lock at the same address is not given it.
    func testInstanceNameDiesWithItsLock() {
        var address: UnsafeRawPointer?
        do {
            let m = CheckedMutex("named.then.freed")
            Lockdep.setInstanceName("gone", of: m)
            address = m.lockdepInstance
            XCTAssertEqual(graph.withLock { $0.instanceNames.name(of: address!) }, "gone")
        }
        XCTAssertNil(graph.withLock { $0.instanceNames.name(of: address!) })
    }

    /// A struct of the caller's own that conforms to LockdepLock has no object for the name to
    /// die with: naming it is reported, not silently dropped, and no name is kept.
    func testNamingAWrapperStructIsReported() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        struct DeviceLock: LockdepLock {
            let mutex: CheckedMutex
            var lockClass: LockClass { mutex.lockClass }
            var lockdepInstance: UnsafeRawPointer { mutex.lockdepInstance }
        }
        let device = DeviceLock(mutex: CheckedMutex(class: .unique("device.wrapper")))
        let line: UInt = #line + 1
        Lockdep.setInstanceName("dev0", of: device)
        XCTAssertNil(Lockdep.instanceName(of: device))
        let r = try XCTUnwrap(expectOne(.assertionFailed))
        XCTAssertEqual(r.site?.line, line)
        XCTAssertTrue(r.text.contains("cannot name a DeviceLock of class (device.wrapper)"), r.text)
        Lockdep.setInstanceName("dev0", of: device.mutex)
        XCTAssertEqual(Lockdep.instanceName(of: device), "dev0")
    }

    /// A name holding a quote and a line break is escaped in the report, so it cannot forge
    /// a line of it ("but thread is already holding lock:").
    func testInstanceNamesAreEscapedInReports() throws {
        let m = CheckedMutex(class: .unique("escaped.name"))
        Lockdep.setInstanceName("a\"\nbut thread is already holding lock:", of: m)
        m.withLock { m.withLock {} }
        let r = try XCTUnwrap(expectOne(.recursiveLocking))
        XCTAssertTrue(r.lock?.instance?.hasPrefix(#""a\"\nbut thread is already holding lock:" (0x"#) ?? false,
                      "\(String(describing: r.lock?.instance))")
        let lines = r.text.split(separator: "\n").filter { $0.hasPrefix("but thread is already holding lock:") }
        XCTAssertEqual(lines.count, 1, r.text)
    }

    /// The refused recursive acquire of the same mutex names the instance too.
    func testRefusedRecursiveAcquireNamesTheInstance() throws {
        let m = CheckedMutex("refused.named")
        Lockdep.setInstanceName("queue 7", of: m)
        m.withLock { m.withLock {} }
        let r = try XCTUnwrap(expectOne(.recursiveLocking))
        XCTAssertTrue(r.lock?.instance?.hasPrefix("\"queue 7\" (0x") ?? false, "\(String(describing: r.lock))")
        XCTAssertTrue(r.text.contains(", the same instance\n"), r.text)
    }

    func testSleepingInInvalidContextText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("group->mutex"))
        let line: UInt = #line + 1
        Lockdep.withContext(.hardirq) { m.lock(); m.unlock() }
        let r = try XCTUnwrap(collector.reports.first)
        XCTAssertEqual(r.kind, .sleepInInvalidContext)
        XCTAssertEqual(r.title, "BUG: sleeping function called from invalid context at ReportTests.swift:\(line)")
        XCTAssertTrue(r.text.contains("in_atomic(): 1, irqs_disabled(): 1, context: hardirq"))
        XCTAssertTrue(r.text.contains("trying to acquire sleeping lock: (group->mutex)"))
        XCTAssertTrue(r.text.contains("invalid because: running in hardirq context"))
        XCTAssertEqual(r.context, .hardirq)
        XCTAssertEqual(r.lock?.name, "group->mutex")
    }

    func testMightSleepUnderAtomicMapNamesTheMap() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let rcu = LockdepMap(class: .unique("rcu_read"), options: [.atomic, .rcu])
        Lockdep.acquire(rcu, mode: .recursiveRead)
        Lockdep.mightSleep()
        Lockdep.release(rcu)
        let r = try XCTUnwrap(expectOne(.sleepInInvalidContext))
        XCTAssertTrue(r.text.contains("atomic section of (rcu_read) entered at:"))
        XCTAssertEqual(r.classes, ["rcu_read"])
        XCTAssertTrue(r.text.contains("1 lock held by"))
    }

    func testInconsistentLockStateText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let s = CheckedSpinLock(class: .unique("fault->lock"))
        let irqLine: UInt = #line + 1
        Lockdep.withContext(.hardirq) { s.withLock {} }
        let line: UInt = #line + 1
        s.withLock {}
        let r = try XCTUnwrap(expectOne(.inconsistentLockState))
        XCTAssertEqual(lines(r)[1], "WARNING: inconsistent lock state")
        XCTAssertTrue(r.text.contains("inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage."))
        XCTAssertTrue(r.text.contains("[HC0:SC0:HE1:SE1] takes:\n  (fault->lock){?...}, at: testInconsistentLockStateText() ReportTests.swift:\(line)"))
        XCTAssertTrue(r.text.contains("{IN-HARDIRQ-W} state was registered at:\n  testInconsistentLockStateText() ReportTests.swift:\(irqLine)"))
        XCTAssertTrue(r.text.contains("  lock(fault->lock);\n  <Interrupt>\n    lock(fault->lock);"))
        XCTAssertEqual(r.classes, ["fault->lock"])
        XCTAssertEqual(r.site?.line, line)
    }

    func testIrqLockInversionText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let a = CheckedSpinLock(class: .unique("A")), b = CheckedSpinLock(class: .unique("B"))
        Lockdep.withContext(.hardirq) { a.withLock {} }
        b.withLock {}
        let line: UInt = #line + 1
        Lockdep.withInterruptsDisabled { a.withLock { b.withLock {} } }
        let r = try XCTUnwrap(expectOne(.irqLockInversion))
        XCTAssertEqual(lines(r)[1], "WARNING: possible irq lock inversion dependency detected")
        XCTAssertTrue(r.text.contains("HARDIRQ-safe -> HARDIRQ-unsafe lock order detected"))
        XCTAssertTrue(r.text.contains("the HARDIRQ-safe lock:\n  (A)"))
        XCTAssertTrue(r.text.contains("the HARDIRQ-unsafe lock:\n  (B)"))
        XCTAssertTrue(r.text.contains("                             local_irq_disable();"))
        XCTAssertEqual(r.classes, ["A", "B"])
        XCTAssertEqual(r.chain.map { "\($0.from)->\($0.to)" }, ["A->B"])
        XCTAssertEqual(r.chain.first?.toSite.line, line)
    }

    func testIllegalSynchronizeText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let rcu = LockdepMap(class: .unique("rcu_read"), options: [.atomic, .rcu])
        Lockdep.acquire(rcu, mode: .recursiveRead)
        let line: UInt = #line + 1
        Lockdep.emptyWriteSection(rcu)
        Lockdep.release(rcu)
        let r = try XCTUnwrap(expectOne(.illegalSynchronize))
        XCTAssertEqual(lines(r)[1], "WARNING: suspicious RCU usage")
        XCTAssertEqual(lines(r)[3], "ReportTests.swift:\(line) Illegal synchronize_rcu() in RCU read-side critical section!")
        XCTAssertTrue(r.text.contains("1 lock held by"))
        XCTAssertEqual(r.classes, ["rcu_read"])
        XCTAssertEqual(r.heldLocks.first?.mode, .recursiveRead)
    }

    func testSuspiciousDereferenceText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let rcu = LockdepMap(class: .unique("rcu_read"), options: [.atomic, .rcu])
        let m = CheckedMutex(class: .unique("group->mutex"))
        let line: UInt = #line + 1
        Lockdep.dereferenceCheck(rcu, m)
        let r = try XCTUnwrap(expectOne(.suspiciousDereference))
        XCTAssertEqual(lines(r)[1], "WARNING: suspicious RCU usage")
        XCTAssertEqual(lines(r)[3], "ReportTests.swift:\(line) suspicious rcu_dereference_check() usage!")
        XCTAssertTrue(r.text.contains("none of the required locks is held: (rcu_read), (group->mutex)"))
        XCTAssertEqual(r.classes, ["rcu_read", "group->mutex"])
        collector.clear()
        Lockdep.dereferenceCheck(rcu, m, condition: true)
        m.withLock { Lockdep.dereferenceCheck(rcu, m) }
        expectSilent()
    }

    func testUnlockNotHeldText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("M"))
        let line: UInt = #line + 1
        m.unlock()
        let r = try XCTUnwrap(expectOne(.unlockNotHeld))
        XCTAssertEqual(lines(r)[1], "WARNING: bad unlock balance detected!")
        XCTAssertTrue(r.text.contains("is trying to release lock (M) at:\n  testUnlockNotHeldText() ReportTests.swift:\(line)\nbut there are no more locks to release!"))
        XCTAssertEqual(r.lock?.name, "M")
        XCTAssertEqual(r.site?.line, line)
    }

    func testDoubleUnlockText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedSpinLock(class: .unique("S"))
        m.lock(); m.unlock()
        let line: UInt = #line + 1
        m.unlock()
        let r = try XCTUnwrap(expectOne(.doubleUnlock))
        XCTAssertEqual(lines(r)[1], "WARNING: double unlock detected!")
        XCTAssertTrue(r.text.contains("ReportTests.swift:\(line)\nbut this thread already released it: double unlock!"))
        XCTAssertEqual(r.classes, ["S"])
    }

    func testUnlockFromAnotherThreadText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("M"))
        let owner = StepThread("owner-thread")
        owner.run { m.lock() }
        let line: UInt = #line + 1
        m.unlock()
        owner.run { m.unlock() }   // the real unlock was not forwarded: the owner still holds it
        owner.finish()
        let r = try XCTUnwrap(expectOne(.unlockFromOtherThread))
        XCTAssertEqual(lines(r)[1], "WARNING: lock released by a thread that does not own it!")
        XCTAssertTrue(r.text.contains("but the lock is held by thread \"owner-thread\", not by this thread!"))
        XCTAssertEqual(r.otherThread, "owner-thread")
        XCTAssertEqual(r.site?.line, line)
        XCTAssertEqual(r.lock?.name, "M")
    }

    func testHeldLockDestroyedText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let cls = LockClass.unique("dev->lock")
        var line: UInt = 0
        do {
            let m = CheckedMutex(class: cls)
            line = #line + 1
            m.lock()
        }
        let r = try XCTUnwrap(expectOne(.heldLockDestroyed))
        XCTAssertEqual(lines(r)[1], "WARNING: held lock freed!")
        XCTAssertTrue(r.text.contains("is destroying lock (dev->lock) while it is still held!"))
        XCTAssertTrue(r.text.contains("held by this thread, acquired at: testHeldLockDestroyedText() ReportTests.swift:\(line)"))
        XCTAssertEqual(r.site?.line, line)
        XCTAssertEqual(Lockdep.heldLockCount, 0, "the destroyed lock left the held stack")
    }

    func testAssertionFailedText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("group->mutex"))
        let line: UInt = #line + 1
        Lockdep.assertHeld(m)
        let r = try XCTUnwrap(expectOne(.assertionFailed))
        XCTAssertEqual(r.title, "WARNING: lock assertion failed at ReportTests.swift:\(line)")
        XCTAssertTrue(r.text.contains("lock (group->mutex) is not held at:\n  testAssertionFailedText() ReportTests.swift:\(line)"))
        XCTAssertEqual(r.classes, ["group->mutex"])
    }

    func testPinnedLockReleasedText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("rq->lock"))
        m.lock()
        Lockdep.pin(m)
        let line: UInt = #line + 1
        m.unlock()
        let r = try XCTUnwrap(expectOne(.pinnedLockReleased))
        XCTAssertEqual(lines(r)[1], "WARNING: releasing a pinned lock")
        XCTAssertTrue(r.text.contains("is releasing lock (rq->lock) at:\n  testPinnedLockReleasedText() ReportTests.swift:\(line)"))
        XCTAssertEqual(r.lock?.name, "rq->lock")
    }

    func testWorkqueueLeakText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let queue = WorkQueue("leakq", threads: 1)
        defer { queue.shutdown() }
        let map = LockdepMap(class: .unique("held-forever"))
        let work = WorkItem("leak", on: queue, class: .unique("work:leak")) { Lockdep.acquire(map) }
        work.queue(); work.flush()
        let r = try XCTUnwrap(expectOne(.workqueueLeak))
        XCTAssertEqual(lines(r)[0], "BUG: workqueue leaked lock or RCU: \"leakq/0\"")
        XCTAssertEqual(r.thread, "leakq/0")
        XCTAssertEqual(r.classes, ["held-forever", "work:leak"])
    }

    func testCapacityExceededText() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        var limits = LockdepLimits()
        limits.maxDepth = 3
        Lockdep.limits = limits
        let locks = (0..<4).map { CheckedMutex(class: .unique("L\($0)")) }
        for l in locks.prefix(3) { l.lock() }
        let line: UInt = #line + 1
        locks[3].lock()
        let r = try XCTUnwrap(expectOne(.capacityExceeded))
        XCTAssertEqual(r.title, "BUG: MAX_LOCK_DEPTH too low!")
        XCTAssertTrue(r.text.contains("the limit is 3; reached while registering or acquiring (L3), at: testCapacityExceededText() ReportTests.swift:\(line)"))
        XCTAssertTrue(r.text.contains("turning off the locking correctness validator."))
        XCTAssertTrue(r.text.contains("3 locks held by"))
        XCTAssertFalse(Lockdep.isValidating)
        for l in locks.reversed() { l.unlock() }
        XCTAssertEqual(collector.reports.count, 1, "validation is off: no further reports")
    }

    func testEveryKindIsCoveredByATextTest() {
        // Keep this list in sync with the tests above (one text + structured test per kind);
        // the task-context kinds are in TaskContextTests, the fork one in WorkQueueForkTests, the
        // thread-exit one in ThreadExitTests.
        let covered: Set<LockdepReport.Kind> = [
            .circularDependency, .recursiveLocking, .sleepInInvalidContext, .inconsistentLockState, .irqLockInversion,
            .illegalSynchronize, .suspiciousDereference, .workqueueLeak, .unlockNotHeld, .doubleUnlock,
            .unlockFromOtherThread, .heldLockDestroyed, .capacityExceeded, .assertionFailed, .pinnedLockReleased,
            .blockingInTask, .lockHeldAcrossSuspension, .workQueueUsedAfterFork, .locksHeldAtThreadExit,
        ]
        XCTAssertEqual(covered, Set(LockdepReport.Kind.allCases))
    }

    func testReportOnceAndContinuePrintsEachDependencyOnce() {
        Lockdep.reportHandler = .reportOnceAndContinue
        let a = CheckedMutex(class: .unique("A")), b = CheckedMutex(class: .unique("B"))
        a.withLock { b.withLock {} }
        for _ in 0..<3 { b.withLock { a.withLock {} } }
        // Nothing reaches the collector in this mode; the run continued past the report.
        XCTAssertTrue(collector.reports.isEmpty)
        if Lockdep.checksCompiledIn { XCTAssertTrue(Lockdep.isValidating) }   // never on with checks compiled out
    }
}

/// The map-cell acquire that takes the map's options as constants (the RCU read section's).
final class MapCellOptionsTests: LockdepTestCase {
    /// A cell is read by every acquire of its map: each allocated cell starts a cache line that
    /// no other allocation shares.
    func testAllocatedCellsHaveACacheLineEach() {
        let cells = (0..<8).map { _ in UInt(bitPattern: LockdepMapCell.allocate().cell) }
        for cell in cells { XCTAssertEqual(cell % 64, 0, "cell at 0x\(String(cell, radix: 16)) starts no cache line") }
        XCTAssertEqual(Set(cells.map { $0 / 64 }).count, cells.count, "two cells in one line")
    }

    /// Options other than the map's would silently drop its checks (an atomic map without
    /// `.atomic` lets sleeping inside pass): reported, and the map's own options are used.
    func testAcquireWithOtherOptionsIsReportedAndUsesTheMapsOwn() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let map = LockdepMap("cell.atomic.map", key: "MapCellOptionsTests.atomic", options: [.atomic, .rcu])
        let cell = LockdepMapCell.allocate()
        cell.fill(from: map)
        let line: UInt = #line + 1
        Lockdep.acquire(cell, mode: .recursiveRead, options: [.rcu])
        let r = try XCTUnwrap(expectOne(.assertionFailed))
        XCTAssertEqual(r.site?.line, line)
        XCTAssertTrue(r.text.contains("passing options [.rcu], but the map was created with [.atomic, .rcu]"), r.text)
        collector.clear()
        Lockdep.mightSleep()
        Lockdep.release(cell, options: [.rcu])
        XCTAssertEqual(collector.kinds, [.sleepInInvalidContext])
        XCTAssertEqual(Lockdep.heldLockCount, 0)
    }

    /// A wrong-options acquire after correct ones cached the chain (the same class, mode and
    /// context): still reported, and the map's own options used. The options are part of the
    /// chain key, so the wrong call cannot hit the chain the correct calls cached.
    func testAcquireWithOtherOptionsIsReportedAfterTheRightOnesCachedTheChain() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let map = LockdepMap("cell.atomic.cached", key: "MapCellOptionsTests.cached", options: [.atomic, .rcu])
        let cell = LockdepMapCell.allocate()
        cell.fill(from: map)
        for _ in 0..<3 {
            Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu])
            Lockdep.release(cell, options: [.atomic, .rcu])
        }
        XCTAssertTrue(collector.reports.isEmpty, "\(collector.kinds)")
        let line: UInt = #line + 1
        Lockdep.acquire(cell, mode: .recursiveRead, options: [.rcu])
        let r = try XCTUnwrap(expectOne(.assertionFailed))
        XCTAssertEqual(r.site?.line, line)
        XCTAssertTrue(r.text.contains("passing options [.rcu], but the map was created with [.atomic, .rcu]"), r.text)
        collector.clear()
        Lockdep.mightSleep()
        Lockdep.release(cell, options: [.rcu])
        XCTAssertEqual(collector.kinds, [.sleepInInvalidContext])
        XCTAssertEqual(Lockdep.heldLockCount, 0)
    }

    /// An empty cell is filled by the acquire's `ifEmpty` closure (off the fast path, once),
    /// and the acquire then holds the map that filled it.
    func testAnEmptyCellIsFilledByTheAcquire() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let cell = LockdepMapCell.allocate()
        let map = LockdepMap("cell.fill.map", key: "MapCellOptionsTests.fill", options: [.atomic, .rcu])
        var fills = 0
        for _ in 0..<3 {
            Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu], ifEmpty: {
                fills += 1
                cell.fill(from: map)
            })
            XCTAssertTrue(Lockdep.isHeld(map, mode: .read))
            XCTAssertEqual(Lockdep.heldLockCount, 1)
            Lockdep.release(cell, options: [.atomic, .rcu])
            XCTAssertEqual(Lockdep.heldLockCount, 0)
        }
        XCTAssertEqual(fills, 1)
        expectSilent()
    }

    /// A recursive read of an RCU map is pushed without the chain-cache probe (the kernel's
    /// check=0): the locks taken inside it are still validated with the section in their chains,
    /// so a grace-period wait under a lock that readers take inside is still a cycle, on every
    /// section and not only the first of a chain.
    func testLocksInsideAnUnprobedReadSectionAreValidated() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let map = LockdepMap("cell.check0.map", key: "MapCellOptionsTests.check0", options: [.atomic, .rcu])
        let cell = LockdepMapCell.allocate()
        cell.fill(from: map)
        let lock = CheckedSpinLock(class: .unique("check0.inner"))
        for _ in 0..<3 {
            Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu])
            lock.withLock {}
            Lockdep.release(cell, options: [.atomic, .rcu])
        }
        expectSilent()
        lock.withLock { Lockdep.emptyWriteSection(map, sleeps: false) }
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(Set(r.classes), ["cell.check0.map", "check0.inner"])
    }

    /// A read section's key is deferred (stored as 0) until a lock above it needs it. Wherever it
    /// is computed (a lock's fast push, its full acquire, an out-of-order release rebuilding the
    /// keys above), every held entry's key must be the one computed eagerly from the entries'
    /// elements, or a chain could be cached under one key and looked up under another.
    func testDeferredReadSectionKeysEqualTheKeysComputedEagerly() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let map = LockdepMap("cell.deferred.map", key: "MapCellOptionsTests.deferred", options: [.atomic, .rcu])
        let cell = LockdepMapCell.allocate()
        cell.fill(from: map)
        let a = CheckedSpinLock(class: .unique("deferred.a")), b = CheckedSpinLock(class: .unique("deferred.b"))
        for round in 0..<3 {
            // Two nested sections: both keys deferred until `a` needs the one below it.
            Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu])
            Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu])
            XCTAssertEqual(storedChainKeys(), [0, 0], "round \(round)")
            a.lock()
            XCTAssertEqual(storedChainKeys(), eagerChainKeys(), "round \(round): after a's acquire")
            // A section above a lock: deferred again, then resolved by b's acquire.
            Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu])
            b.lock()
            XCTAssertEqual(storedChainKeys(), eagerChainKeys(), "round \(round): after b's acquire")
            // Out of order: the entries above `a` are rebuilt on the keys below it.
            a.unlock()
            XCTAssertEqual(storedChainKeys(), eagerChainKeys(), "round \(round): after a's release")
            b.unlock()
            Lockdep.release(cell, options: [.atomic, .rcu])
            Lockdep.release(cell, options: [.atomic, .rcu])
            Lockdep.release(cell, options: [.atomic, .rcu])
            XCTAssertEqual(Lockdep.heldLockCount, 0)
        }
        expectSilent()
    }

    /// The right options: silent, and the section is atomic.
    func testAcquireWithTheMapsOptionsIsSilent() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let map = LockdepMap("cell.atomic.map2", key: "MapCellOptionsTests.atomic2", options: [.atomic, .rcu])
        let cell = LockdepMapCell.allocate()
        cell.fill(from: map)
        for _ in 0..<3 {
            Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu])
            Lockdep.release(cell, options: [.atomic, .rcu])
        }
        expectSilent()
        Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu])
        Lockdep.mightSleep()
        Lockdep.release(cell, options: [.atomic, .rcu])
        XCTAssertEqual(collector.kinds, [.sleepInInvalidContext])
    }
}
