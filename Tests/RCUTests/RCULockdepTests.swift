import Foundation
import Lockdep
import RCU
import Testing
import XCTest

/// RCU as Lockdep sees it: read sections are recursive-read acquires of the
/// flavor's pseudo-lock, grace-period waits an empty write section, callbacks
/// run in softirq context (checks compiled in: debug builds, or the trait).
final class RCULockdepTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        recorder = MisuseRecorder()
    }

    override func tearDown() { recorder?.stop() }

    /// "synchronize while holding M, and a reader takes M inside its read section":
    /// a deadlock reported from two orderings seen at different times, before it happens.
    func testSynchronizeUnderLockReadersTakeIsACycle() throws {
        let mutex = CheckedMutex(class: .unique("config->mutex"))
        onThread(named: "reader") {
            RCUMemb.read { _ in mutex.withLock {} }
        }
        onThread(named: "updater") {
            mutex.withLock { RCUMemb.synchronize() }
        }
        let cycle = recorder.lockdepReports.filter { $0.kind == .circularDependency }
        let report = try XCTUnwrap(cycle.first, "\(recorder.lockdepReports.map(\.kind))")
        XCTAssertEqual(Set(report.classes), ["config->mutex", "rcu_read_lock"])
        XCTAssertEqual(report.thread, "updater")
        XCTAssertTrue(report.text.contains("possible circular locking dependency detected"), report.text)
    }

    func testSleepingLockInsideReadSection() throws {
        let mutex = CheckedMutex(class: .unique("group->mutex"))
        onThread(named: "isr-like") { RCUMemb.read { _ in mutex.withLock {} } }
        let report = try XCTUnwrap(recorder.lockdepReports.first { $0.kind == .sleepInInvalidContext })
        XCTAssertTrue(report.text.contains("sleeping function called from invalid context"), report.text)
        XCTAssertTrue(report.heldLocks.contains { $0.name == "rcu_read_lock" }, "\(report.heldLocks)")
    }

    /// Every read section reads its flavor's cell: each cell must fill a cache line of its own,
    /// or a variable beside it that grace periods write (the flavor's gate) makes that read miss
    /// once per grace period in every reader (registry lookups ran at 0.6x with a writer).
    func testReadSectionCellsHaveACacheLineEach() {
        let cells = [RCUMemb.flavorDescription.lockdepCell, RCUQSBR.flavorDescription.lockdepCell,
                     RCUMemoryBarrier.flavorDescription.lockdepCell, RCUBulletproof.flavorDescription.lockdepCell]
            .map { UInt(bitPattern: $0) }
        for cell in cells { XCTAssertEqual(cell % 64, 0, "cell at 0x\(String(cell, radix: 16)) starts no cache line") }
        for (i, a) in cells.enumerated() {
            for b in cells[(i + 1)...] { XCTAssertGreaterThanOrEqual(a > b ? a - b : b - a, 64, "two cells in one line") }
        }
    }

    func testCallbacksRunInSoftirqContext() throws {
        let mutex = CheckedMutex(class: .unique("free->mutex"))
        let seen = Locked<LockdepContext?>(nil)
        RCUMemb.retire {
            seen.withLock { $0 = Lockdep.currentContext }
            mutex.withLock {}
        }
        RCUMemb.barrier()
        XCTAssertEqual(seen.withLock { $0 }, .softirq)
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [.sleepInInvalidContext])
    }

    /// A report from a callback names the call_rcu worker as such, not the thread that
    /// happened to start it.
    func testCallbackReportsNameTheWorker() throws {
        let mutex = CheckedMutex(class: .unique("free->mutex"))
        onThread(named: "starts-qsbr-worker") {
            RCUQSBR.retire { mutex.withLock {} }
            RCUQSBR.barrier()
        }
        XCTAssertEqual(recorder.lockdepReports.map(\.thread), ["call_rcu-qsbr"])
    }

    func testProtectedDereferenceNeedsTheLockOrASection() throws {
        let mutex = CheckedMutex(class: .unique("table->mutex"))
        let holder = PointerHolder<RCUMemb>(nil)
        mutex.withLock { holder.pointer.withProtectedValue(heldBy: mutex) { _ in } }
        RCUMemb.read { _ in holder.pointer.withProtectedValue(heldBy: mutex) { _ in } }
        XCTAssertTrue(recorder.lockdepReports.isEmpty, "\(recorder.lockdepReports.map(\.kind))")
        holder.pointer.withProtectedValue(heldBy: mutex) { _ in }
        let report = try XCTUnwrap(recorder.lockdepReports.first)
        XCTAssertEqual(report.kind, .suspiciousDereference)
        XCTAssertTrue(report.text.contains("suspicious rcu_dereference_check() usage"), report.text)
        XCTAssertTrue(report.text.contains("(table->mutex)"), report.text)
    }

    func testReadSectionIsHeldForRead() {
        RCUMemb.read { _ in
            XCTAssertTrue(Lockdep.isHeld(RCUMemb.lockdepMap, mode: .read))
        }
        XCTAssertFalse(Lockdep.isHeld(RCUMemb.lockdepMap))
        XCTAssertTrue(recorder.lockdepReports.isEmpty)
    }
}

extension PerFlavor {
    @Suite(.enabled(if: Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build"), .onTestThread)
    final class RCULockdepTests {
        private let recorder = MisuseRecorder()
        deinit { recorder.stop() }

        /// One switch governs an RCU misuse: RCU's own check refuses the wait before Lockdep
        /// sees it, so `RCUMisuse.reportHandler` alone decides (Lockdep would say "Illegal
        /// synchronize_rcu() in RCU read-side critical section" about the same call).
        @Test(arguments: allFlavors)
        func synchronizeInReadSectionIsRCUsMisuseAlone(_ flavor: any RCUFlavor.Type) {
            checkSynchronizeInSection(flavor)
        }

        private func checkSynchronizeInSection<F: RCUFlavor>(_: F.Type) {
            Lockdep.resetForTesting()
            let before = (lockdep: recorder.lockdepReports.count, rcu: recorder.recorded.count)
            onThread(named: "sync-\(F.name)") { F.read { _ in F.synchronize() } }
            #expect(recorder.lockdepReports.count == before.lockdep, "\(F.name): Lockdep did not see the refused wait")
            #expect(recorder.recorded.dropFirst(before.rcu).map(\.kind) == [.synchronizeInReadSection], "\(F.name)")
        }
    }
}
