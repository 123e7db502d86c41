import Foundation
import Lockdep
import RCU
import RCUTestSupport
import Synchronization
import XCTest

/// Adversarial tests of session 12's reader scope, which keeps its thread's Lockdep state and
/// uses it for the sections its scope proves run on its own thread (memb with sys_membarrier,
/// mb): a reader reached from another thread must push and pop that thread's held-lock stack,
/// never the scope thread's, and every report of a section must still be given there.
final class AdversarialSession12ReaderTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        recorder = MisuseRecorder()
    }

    override func tearDown() { recorder?.stop() }

    /// What each thread saw of its held locks.
    private struct Seen: Sendable, Equatable {
        var scopeInOwnSection = -1
        var scopeWhileOtherInSection = -1
        var scopeHoldsMapWhileOtherInSection = true
        var otherInSection = -1
        var otherHoldsMapInSection = false
        var otherAfterSection = -1
        var scopeAfter = -1
    }

    /// A reader borrowed into a closure run on another thread (what Dispatch may do with a
    /// non-escaping block), per flavor: the other thread's section holds the map on its own
    /// stack (and sleeping or a grace-period wait there is reported on that thread), the scope
    /// thread's stack is untouched meanwhile, and both are empty afterwards.
    func testReaderOnAnotherThreadUsesThatThreadsStack() {
        check(RCUMemb.self)
        check(RCUMemoryBarrier.self)
        check(RCUQSBR.self)
        check(RCUBulletproof.self)
    }

    private func check<F: RCUFlavor>(_: F.Type) {
        let seen = Locked(Seen())
        onThread(named: "a12-scope-\(F.name)") {
            F.withReader { reader in
                reader.read { _ in
                    seen.withLock { $0.scopeInOwnSection = Lockdep.heldLockCount }
                }
                let entered = DispatchSemaphore(value: 0)
                let leave = DispatchSemaphore(value: 0)
                runOnAnotherThread(named: "a12-other-\(F.name)", whileRunning: {
                    entered.wait()
                    seen.withLock {
                        $0.scopeWhileOtherInSection = Lockdep.heldLockCount
                        $0.scopeHoldsMapWhileOtherInSection = Lockdep.isHeld(F.lockdepMap)
                    }
                    leave.signal()
                }) {
                    reader.read { _ in
                        seen.withLock {
                            $0.otherInSection = Lockdep.heldLockCount
                            $0.otherHoldsMapInSection = Lockdep.isHeld(F.lockdepMap)
                        }
                        Lockdep.mightSleep()
                        entered.signal()
                        leave.wait()
                    }
                    seen.withLock { $0.otherAfterSection = Lockdep.heldLockCount }
                }
                seen.withLock { $0.scopeAfter = Lockdep.heldLockCount }
                F.quiescentStateIfQSBR()
            }
        }
        XCTAssertEqual(seen.withLock { $0 },
                       Seen(scopeInOwnSection: 1, scopeWhileOtherInSection: 0, scopeHoldsMapWhileOtherInSection: false,
                            otherInSection: 1, otherHoldsMapInSection: true, otherAfterSection: 0, scopeAfter: 0),
                       F.name)
        let sleeps = recorder.lockdepReports.filter { $0.kind == .sleepInInvalidContext }
        XCTAssertEqual(sleeps.map(\.thread), ["a12-other-\(F.name)"], "\(F.name): \(recorder.lockdepReports.map(\.title))")
        XCTAssertTrue(recorder.kinds.allSatisfy { $0 == .readerOnAnotherThread }, "\(recorder.kinds)")
        recorder.stop()
        recorder = MisuseRecorder()
    }

    /// A grace-period wait (the flavor map's empty write section, as `synchronize()` makes
    /// it) in a section of a reader run on another thread is the kernel's "Illegal
    /// synchronize_rcu() in RCU read-side critical section", reported on that thread; the
    /// scope thread's own section and wait afterwards are clean.
    func testGracePeriodWaitInASectionOnAnotherThreadIsReported() {
        checkWaitInSection(RCUMemb.self)
        checkWaitInSection(RCUMemoryBarrier.self)
    }

    private func checkWaitInSection<F: RCUFlavor>(_: F.Type) {
        onThread(named: "a12-scope-wait") {
            F.withReader { reader in
                runOnAnotherThread(named: "a12-other-wait") {
                    reader.read { _ in Lockdep.emptyWriteSection(F.lockdepMap) }
                }
                reader.read { _ in }
                Lockdep.emptyWriteSection(F.lockdepMap)
            }
        }
        let reports = recorder.lockdepReports
        XCTAssertEqual(reports.map(\.kind), [.illegalSynchronize], F.name)
        XCTAssertEqual(reports.map(\.thread), ["a12-other-wait"], F.name)
        recorder.stop()
        recorder = MisuseRecorder()
    }

    /// A spinlock taken inside a reader scope's sections, whose read-map pushes take the fast
    /// path with the scope's state: first many times with interrupts enabled (every chain
    /// cached), then inside a hardirq context. The second use is the kernel's inconsistent
    /// lock state, on the scope's thread, whichever order the contexts come in.
    func testIrqUsageThroughAScopesFastSectionsIsReported() {
        for hardirqFirst in [false, true] {
            let lock = CheckedSpinLock(class: .unique("adv12.reader.irq.\(hardirqFirst)"))
            onThread(named: "a12-irq") {
                RCUMemb.withReader { reader in
                    reader.read { _ in }
                    for step in hardirqFirst ? [true, false, false, false] : [false, false, false, true] {
                        if step {
                            Lockdep.withContext(.hardirq) { reader.read { _ in lock.withLock {} } }
                        } else {
                            reader.read { _ in lock.withLock {} }
                        }
                    }
                }
            }
            let reports = recorder.lockdepReports
            XCTAssertEqual(reports.map(\.kind), [.inconsistentLockState], "hardirq first: \(hardirqFirst)")
            XCTAssertEqual(reports.map(\.thread), ["a12-irq"])
            recorder.stop()
            recorder = MisuseRecorder()
        }
    }
}

/// Runs `body` (non-escaping, not `@Sendable`: it may borrow a reader) on a new thread named
/// `name`, running `whileRunning` on the calling thread meanwhile, and waits for it.
private func runOnAnotherThread(named name: String, whileRunning: () -> Void = {}, _ body: () -> Void) {
    withoutActuallyEscaping(body) { escapable in
        // Dropped before returning: the thread object may outlive its run.
        let box = ClosureBox(escapable)
        let thread = startThread(named: name) { box.run?() }
        whileRunning()
        thread.wait()
        box.run = nil
    }
}

/// Carries a closure that is not `@Sendable` to one thread at a time (the caller waits).
private final class ClosureBox: @unchecked Sendable {
    var run: (() -> Void)?
    init(_ run: @escaping () -> Void) { self.run = run }
}
