import Foundation
import XCTest
@testable import Lockdep

/// Session 12's context exit, which puts back the irq bits its entry saved unless the thread's
/// disable counts ever changed unscoped: random programs of nested contexts, scoped and
/// unscoped disables and enables, each step compared with the kernel's model of the irq state.
final class AdversarialSession12ContextTests: LockdepTestCase {
    /// The model: the context, the disable counts and whether a hardirq context is threaded.
    private struct Model {
        var context: UInt8 = 0
        var hardOff = 0
        var softOff = 0
        var notThreaded = false
        var expectedReports = 0

        /// The kernel's irq state: in a hardirq context both kinds are off; elsewhere hardirqs
        /// are off when disabled, softirqs when disabled or outside process context.
        var irqState: UInt8 {
            if context == LockdepContext.hardirq.rawValue {
                return LockdepContext.hardirq.rawValue | 4 | 8 | (notThreaded ? 16 : 0)
            }
            var s = context
            if hardOff > 0 { s |= 4 }
            if context != LockdepContext.process.rawValue || softOff > 0 { s |= 8 }
            return s
        }
    }

    private final class Run {
        var rng: SplitMix64
        var model = Model()
        var mismatches: [String] = []
        var steps = 0
        init(seed: UInt64) { rng = SplitMix64(seed: seed) }

        func check(_ what: String) {
            steps += 1
            let t = ThreadState.current()
            let bits = t.pointee.irqCached
            let context = Lockdep.currentContext.rawValue
            if bits != model.irqState || context != model.context, mismatches.count < 5 {
                mismatches.append("after \(what) (step \(steps)): irq state \(bits), context \(context); "
                                  + "model \(model.irqState), context \(model.context) (\(model))")
            }
        }

        func program(depth: Int) {
            for _ in 0..<Int(rng.next() % 5) {
                let hard = rng.next() & 1 == 0
                let kind: Lockdep.Interrupts = hard ? .hardirq : .softirq
                switch rng.next() % (depth < 4 ? 6 : 3) {
                case 0:
                    if hard { model.hardOff += 1 } else { model.softOff += 1 }
                    Lockdep.disableInterrupts(kind)
                    check("disableInterrupts(.\(kind))")
                case 1:
                    let count = hard ? model.hardOff : model.softOff
                    if count > 0 {
                        if hard { model.hardOff -= 1 } else { model.softOff -= 1 }
                    } else {
                        model.expectedReports += 1     // refused and reported
                    }
                    Lockdep.enableInterrupts(kind)
                    check("enableInterrupts(.\(kind))")
                case 2:
                    check("nothing")
                case 3:
                    let saved = model
                    if hard { model.hardOff += 1 } else { model.softOff += 1 }
                    Lockdep.withInterruptsDisabled(kind) {
                        check("withInterruptsDisabled(.\(kind)) entry")
                        program(depth: depth + 1)
                    }
                    // The scope takes back its own disable, whatever the body left.
                    if hard { model.hardOff -= 1 } else { model.softOff -= 1 }
                    _ = saved
                    check("withInterruptsDisabled(.\(kind)) exit")
                default:
                    let context = LockdepContext(rawValue: UInt8(rng.next() % 3))!
                    let threaded: Bool? = rng.next() % 3 == 0 ? rng.next() & 1 == 0 : nil
                    let (savedContext, savedThreaded) = (model.context, model.notThreaded)
                    model.context = context.rawValue
                    if let threaded { model.notThreaded = !threaded }
                    let body = {
                        self.check("withContext(.\(context), threaded: \(threaded.map(String.init) ?? "-")) entry")
                        self.program(depth: depth + 1)
                    }
                    if let threaded { Lockdep.withContext(context, threaded: threaded, body) } else { Lockdep.withContext(context, body) }
                    (model.context, model.notThreaded) = (savedContext, savedThreaded)
                    check("withContext(.\(context)) exit")
                }
            }
        }
    }

    /// Many random programs, each on a fresh thread (the unscoped flag is per thread and never
    /// cleared: a fresh thread runs the saved-bits exit until its first unscoped call).
    func testRandomContextProgramsMatchTheModel() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        var mismatches: [String] = []
        var expectedReports = 0
        var steps = 0
        for seed in 0..<300 as Range<UInt64> {
            let outcome = Locked<([String], Int, Int)>(([], 0, 0))
            onThread(named: "adv12.ctx.\(seed)") {
                let run = Run(seed: 0xC0_12 &+ seed)
                run.program(depth: 0)
                // Leave the thread as found: interrupts enabled.
                while run.model.hardOff > 0 { Lockdep.enableInterrupts(.hardirq); run.model.hardOff -= 1 }
                while run.model.softOff > 0 { Lockdep.enableInterrupts(.softirq); run.model.softOff -= 1 }
                run.check("final enables")
                outcome.withLock { $0 = (run.mismatches, run.model.expectedReports, run.steps) }
            }
            let (found, reports, count) = outcome.withLock { $0 }
            mismatches += found.map { "seed \(seed): \($0)" }
            expectedReports += reports
            steps += count
        }
        XCTAssertGreaterThan(steps, 1_000)
        XCTAssertEqual(mismatches, [])
        XCTAssertEqual(collector.reports.count, expectedReports, collector.reports.map(\.title).joined(separator: "\n"))
        XCTAssertTrue(collector.reports.allSatisfy { $0.kind == .assertionFailed })
    }

    /// The inconsistent-state check still sees the contexts' irq state on the saved-bits exit:
    /// a spinlock used in a hardirq context (left through the fast exit) and then taken with
    /// interrupts enabled, and one taken with hardirqs disabled unscoped inside a softirq
    /// context and then used in a hardirq context after the context's (recomputing) exit.
    func testInconsistentStateIsReportedAcrossBothExits() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let hardirqUsed = CheckedSpinLock(class: .unique("adv12.ctx.hardirq-used"))
        onThread(named: "adv12.ctx.fast") {
            Lockdep.withContext(.hardirq) { hardirqUsed.withLock {} }
            XCTAssertEqual(Lockdep.currentContext, .process)
            hardirqUsed.withLock {}
        }
        XCTAssertEqual(collector.reports.map(\.kind), [.inconsistentLockState])
        collector.clear()

        let enabledUsed = CheckedSpinLock(class: .unique("adv12.ctx.enabled-used"))
        let collector = self.collector
        onThread(named: "adv12.ctx.slow") {
            Lockdep.withContext(.softirq) { Lockdep.disableInterrupts(.hardirq) }
            enabledUsed.withLock {}                   // hardirqs still disabled: not irq-unsafe
            Lockdep.enableInterrupts(.hardirq)
            Lockdep.withContext(.hardirq) { enabledUsed.withLock {} }
            XCTAssertEqual(collector.reports.map(\.kind), [], "taken only with hardirqs disabled so far")
            enabledUsed.withLock {}                   // now with them enabled
        }
        XCTAssertEqual(collector.reports.map(\.kind), [.inconsistentLockState])
    }
}
