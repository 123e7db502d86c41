import Foundation
import Lockdep
import RCU
import RCUTestSupport
import XCTest

/// Adversarial tests of the Lockdep read-map fast path merged in session 11 (an RCU read
/// section's acquire pushed without the chain-cache probe, the kernel's check=0): every
/// misuse the full path reported must still be reported.
final class AdversarialSession11LockdepTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        recorder = MisuseRecorder()
    }

    override func tearDown() { recorder?.stop() }

    /// A read section opened under a lock after the thread's first section (so it takes the
    /// fast path, unvalidated), and a `.write` hold of the flavor's map that takes the same
    /// lock inside: the writer waits for the lock, the lock's holder for a section the writer
    /// excludes. The full path reported the cycle; the fast path recorded no dependency from
    /// the section, and nothing was reported. The hold itself is now reported.
    func testLockInsideAWriteHoldOfAnRCUMapIsReported() throws {
        let mutex = CheckedMutex(class: .unique("adv11->mutex"))
        onThread(named: "reader") {
            RCUMemb.read { _ in }                         // the thread's first section: full path
            mutex.withLock { RCUMemb.read { _ in } }      // then under the lock: fast path
        }
        onThread(named: "holder") {
            Lockdep.acquire(RCUMemb.lockdepMap, mode: .write)
            mutex.withLock {}
            Lockdep.release(RCUMemb.lockdepMap)
        }
        let reports = recorder.lockdepReports.filter {
            $0.kind == .circularDependency
                || ($0.kind == .assertionFailed && $0.text.contains("inside an exclusive hold of an RCU map"))
        }
        let report = try XCTUnwrap(reports.first, "\(recorder.lockdepReports.map(\.kind))")
        XCTAssertEqual(report.thread, "holder")
        XCTAssertTrue(report.text.contains("adv11->mutex"), report.text)
    }

    /// A grace-period wait (an empty write section, as RCU holds its map) under a lock is
    /// still not one: only locks taken inside the hold are reported.
    func testEmptyWriteSectionUnderALockIsNotReportedAsAHold() throws {
        let mutex = CheckedMutex(class: .unique("adv11->outer"))
        onThread(named: "updater") {
            mutex.withLock { RCUMemb.synchronize() }
        }
        XCTAssertFalse(recorder.lockdepReports.contains { $0.text.contains("inside an exclusive hold of an RCU map") },
                       "\(recorder.lockdepReports.map(\.text))")
    }
}
