import XCTest
@testable import Lockdep

/// The engine semantics the selftest port needed, checked one by one with their report texts:
/// held locks marked on interrupt enable (scoped and unscoped), read-aware irq inversion, nest
/// locks, per-thread classes and wait-context levels.
final class KernelSemanticsTests: LockdepTestCase {
    override func setUp() {
        super.setUp()
        Lockdep.reportHandler = .custom { _ in }
        collector.install()
    }

    func testScopedInterruptsEndMarksHeldLocks() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn)
        let a = CheckedSpinLock(class: .unique("A"))
        Lockdep.withContext(.hardirq) { a.withLock {} }
        // The section ends (hardirqs back on) with A still held.
        Lockdep.withInterruptsDisabled(.hardirq) { a.lock() }
        let r = expectOne(.inconsistentLockState)
        XCTAssertTrue(r?.text.contains("inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage.") ?? false, r?.text ?? "")
        XCTAssertTrue(r?.text.contains("enables interrupts while holding:") ?? false, r?.text ?? "")
        a.unlock()
    }

    func testUnscopedEnableMarksSoftirqUsageToo() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn)
        let a = CheckedSpinLock(class: .unique("A"))
        Lockdep.withContext(.softirq) { a.withLock {} }
        Lockdep.disableInterrupts(.hardirq)
        a.lock()
        expectSilent()
        Lockdep.enableInterrupts(.hardirq)
        let r = expectOne(.inconsistentLockState)
        XCTAssertTrue(r?.text.contains("inconsistent {IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W} usage.") ?? false, r?.text ?? "")
        a.unlock()
    }

    func testReadLockInIrqWithRecursivePathIsNoInversion() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn)
        let b = CheckedSpinLock(class: .unique("B"))
        let a = CheckedSpinRWLock(class: .unique("A"), readers: .recursive)
        Lockdep.withInterruptsDisabled(.hardirq) { b.withLock { a.readLock(); a.readUnlock() } }
        a.readLock(); a.readUnlock()
        Lockdep.withContext(.hardirq) { b.withLock {} }
        expectSilent()
        // The same with A written under B: B (hardirq-safe) -> A (hardirq-unsafe for read).
        let d = CheckedSpinLock(class: .unique("D"))
        let c = CheckedSpinRWLock(class: .unique("C"), readers: .recursive)
        Lockdep.withInterruptsDisabled(.hardirq) { d.withLock { c.writeLock(); c.writeUnlock() } }
        c.readLock(); c.readUnlock()
        Lockdep.withContext(.hardirq) { d.withLock {} }
        let r = expectOne(.irqLockInversion)
        XCTAssertTrue(r?.text.contains("{HARDIRQ-ON-R} state was registered at:") ?? false, r?.text ?? "")
    }

    func testNestLockNotTaken() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn)
        let outer = CheckedSpinLock(class: .unique("outer"))
        let x = CheckedSpinLock(class: .unique("X"))
        x.lock(nestedUnder: outer)
        let r = expectOne(.assertionFailed)
        XCTAssertEqual(r?.title, "WARNING: Nested lock was not taken")
        XCTAssertTrue(r?.text.contains("but this thread is not holding its nest lock.") ?? false, r?.text ?? "")
        x.unlock()
    }

    func testWaitContext() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn)
        let raw = CheckedSpinLock(class: .unique("raw"), raw: true)
        let spin = CheckedSpinLock(class: .unique("spin"))
        Lockdep.withInterruptsDisabled(.hardirq) { raw.withLock { raw2().withLock {} } }
        Lockdep.withContext(.hardirq, threaded: false) { raw.withLock {} }
        Lockdep.withContext(.hardirq) { CheckedSpinLock(class: .unique("threaded")).withLock {} }
        expectSilent()
        Lockdep.withInterruptsDisabled(.hardirq) { raw.withLock { spin.withLock {} } }
        let r = expectOne(.sleepInInvalidContext)
        XCTAssertEqual(r?.title, "BUG: Invalid wait context")
        XCTAssertTrue(r?.text.contains("inside the raw-spinning section of (raw)") ?? false, r?.text ?? "")
        collector.clear()
        let other = CheckedSpinLock(class: .unique("other"))
        Lockdep.withContext(.hardirq, threaded: false) { other.withLock {} }
        XCTAssertTrue(expectOne(.sleepInInvalidContext)?.text.contains("a hardirq context that is not threaded") ?? false)
    }

    private func raw2() -> CheckedSpinLock { CheckedSpinLock(class: .unique("raw2"), raw: true) }
}
