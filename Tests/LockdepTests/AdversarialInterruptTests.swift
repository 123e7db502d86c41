import Foundation
import XCTest
@testable import Lockdep

/// The unscoped interrupt calls against the counts ``Lockdep/withContext(_:_:)`` saves and
/// restores: what a thread's irq state is after a context, and an enable with no disable.
final class AdversarialInterruptTests: LockdepTestCase {
    /// Takes and drops a sleeping lock: a report when interrupts are disabled here.
    func sleep(on mutex: CheckedMutex) {
        mutex.lock()
        mutex.unlock()
    }

    /// An enable that matches no disable drove the count below zero, silently: the next
    /// disable then left interrupts "enabled", and a sleeping lock taken with them really
    /// disabled went unreported. It is now reported and refused.
    func testEnableWithoutDisableIsReportedAndRefused() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let mutex = CheckedMutex(class: .unique("adv.irq.unmatched"))
        Lockdep.enableInterrupts(.hardirq)
        let report = expectOne(.assertionFailed)
        XCTAssertTrue(report?.text.contains("enableInterrupts") ?? false, report?.text ?? "")
        XCTAssertTrue(report?.text.contains("AdversarialInterruptTests.swift") ?? false, report?.text ?? "")
        collector.clear()

        Lockdep.disableInterrupts(.hardirq)
        sleep(on: mutex)
        Lockdep.enableInterrupts(.hardirq)
        expectOne(.sleepInInvalidContext)
        collector.clear()

        Lockdep.enableInterrupts(.softirq)
        expectOne(.assertionFailed)
        collector.clear()
        Lockdep.disableInterrupts(.softirq)
        sleep(on: mutex)
        Lockdep.enableInterrupts(.softirq)
        expectOne(.sleepInInvalidContext)
        collector.clear()

        sleep(on: mutex)
        expectSilent()
    }

    /// Interrupts disabled inside a context and left disabled stay disabled after it; enabled
    /// and disabled again inside, they are as at the entry; enabled inside (disabled at the
    /// entry), they are enabled after it.
    func testUnscopedCallsAcrossAContextsExit() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let mutex = CheckedMutex(class: .unique("adv.irq.context"))
        Lockdep.withContext(.softirq) { Lockdep.disableInterrupts(.hardirq) }
        sleep(on: mutex)
        expectOne(.sleepInInvalidContext)
        collector.clear()

        Lockdep.withContext(.hardirq) {
            Lockdep.enableInterrupts(.hardirq)
            Lockdep.disableInterrupts(.hardirq)
        }
        sleep(on: mutex)
        expectOne(.sleepInInvalidContext)
        collector.clear()

        Lockdep.withContext(.hardirq) { Lockdep.enableInterrupts(.hardirq) }
        sleep(on: mutex)
        expectSilent()

        Lockdep.withContext(.softirq) {
            Lockdep.withContext(.hardirq) { Lockdep.disableInterrupts(.softirq) }
        }
        sleep(on: mutex)
        expectOne(.sleepInInvalidContext)
        collector.clear()
        Lockdep.enableInterrupts(.softirq)
        sleep(on: mutex)
        expectSilent()
    }

    /// A hardirq context's irq state comes from a per-thread word kept with its threadedness:
    /// after a real (not threaded) hardirq context nested in a threaded one, the threaded one
    /// is threaded again, and the reverse; interrupts disabled inside a hardirq context do not
    /// change its state (hardirqs count as off there anyway) and are recomputed at its exit.
    func testThreadednessAcrossNestedHardirqContexts() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn)
        let spin = CheckedSpinLock(class: .unique("adv.irq.threaded"))
        Lockdep.withContext(.hardirq) {
            Lockdep.withContext(.hardirq, threaded: false) {}
            spin.withLock {}
        }
        expectSilent()
        Lockdep.withContext(.hardirq, threaded: false) {
            Lockdep.withContext(.hardirq, threaded: true) { spin.withLock {} }
            expectSilent()
            spin.withLock {}
        }
        XCTAssertTrue(expectOne(.sleepInInvalidContext)?.text.contains("a hardirq context that is not threaded") ?? false)
        collector.clear()
        let mutex = CheckedMutex(class: .unique("adv.irq.threaded.mutex"))
        Lockdep.withContext(.hardirq) {
            Lockdep.disableInterrupts(.hardirq)
            Lockdep.withContext(.hardirq, threaded: false) {}
            spin.withLock {}
        }
        expectSilent()
        sleep(on: mutex)
        expectOne(.sleepInInvalidContext)
        collector.clear()
        Lockdep.enableInterrupts(.hardirq)
        sleep(on: mutex)
        expectSilent()
    }
}
