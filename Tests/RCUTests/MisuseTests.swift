import Foundation
import RCU
import Synchronization
import Testing
import XCTest

/// Each misuse is reported with the call, the rule, the thread and the site,
/// and the offending operation is skipped instead of hanging or freeing early.
final class MisuseTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUp() { recorder = MisuseRecorder() }
    override func tearDown() { recorder.stop() }

    func testBarrierInsideReadSection() {
        RCUMemb.read { _ in RCUMemb.barrier() }
        XCTAssertEqual(recorder.recorded.map(\.kind), [.barrierInReadSection])
        XCTAssertEqual(recorder.recorded.first?.call, "barrier()")
    }

    func testSynchronizeFromCallback() {
        RCUMemb.retire { RCUMemb.synchronize() }
        RCUMemb.barrier()
        XCTAssertEqual(recorder.recorded.map(\.kind), [.synchronizeInCallback])
    }

    func testQSBROfflineAndQuiescentInsideReadSection() {
        onThread(named: "qsbr-misuse") {
            RCUQSBR.withReader { reader in
                RCUQSBR.read { _ in
                    RCUQSBR.offline { }
                    RCUQSBR.quiescentState()
                }
                reader.read { _ in reader.quiescentState() }
            }
        }
        XCTAssertEqual(recorder.recorded.map(\.kind), [.offlineInReadSection, .offlineInReadSection, .offlineInReadSection])
        XCTAssertEqual(recorder.recorded.map(\.call), ["offline(_:)", "quiescentState()", "quiescentState()"])
        XCTAssertTrue(recorder.recorded.allSatisfy { $0.threadName == "qsbr-misuse" })
    }

    /// deferRetire never waits, so a section may call it; deferBarrier waits, so it is refused there.
    func testDeferInsideReadSection() {
        let ledger = Ledger()
        RCUMemb.read { _ in
            RCUMemb.deferRetire(Tracked(id: 1, ledger: ledger))
            RCUMemb.deferBarrier()
        }
        XCTAssertEqual(recorder.recorded.map(\.kind), [.deferInReadSection])
        XCTAssertEqual(recorder.recorded.map(\.call), ["deferBarrier()"])
        RCUMemb.deferBarrier()
        XCTAssertTrue(ledger.isFreed(1))
    }

    func testMisuseDescriptionNamesEverything() {
        onThread(named: "describe") { RCUBulletproof.read { _ in RCUBulletproof.barrier() } }
        let text = recorder.recorded.first?.description ?? ""
        XCTAssertTrue(text.hasPrefix("RCU misuse: barrier() called inside an RCU read-side critical section"), text)
        XCTAssertTrue(text.contains("flavor bp"), text)
        XCTAssertTrue(text.contains("thread \"describe\" (tid "), text)
        XCTAssertTrue(text.contains("MisuseTests.swift:"), text)
    }
}

extension PerFlavor {
    /// The per-flavor misuse reports; a recorder is installed for each case.
    @Suite(.onTestThread) final class MisuseTests {
        private let recorder = MisuseRecorder()
        deinit { recorder.stop() }

        @Test(arguments: allFlavors)
        func synchronizeInsideReadSection(_ flavor: any RCUFlavor.Type) { checkSynchronizeInside(flavor) }

        private func checkSynchronizeInside<F: RCUFlavor>(_: F.Type) {
            let before = recorder.recorded.count
            onThread(named: "sync-in-\(F.name)") {
                F.read { _ in F.synchronize() }   // would wait for itself forever
            }
            let reports = recorder.recorded.dropFirst(before)
            #expect(reports.count == 1, "\(F.name)")
            guard let misuse = reports.first else { return }
            #expect(misuse.kind == .synchronizeInReadSection)
            #expect(misuse.call == "synchronize()")
            #expect(misuse.flavor == F.name)
            #expect(misuse.threadName == "sync-in-\(F.name)")
            #expect(misuse.fileID.hasSuffix("MisuseTests.swift"), "\(misuse.fileID)")
            #expect(misuse.description.contains("synchronize() called inside an RCU read-side critical section"))
            #expect(misuse.description.contains("thread \"sync-in-\(F.name)\""), "\(misuse.description)")
        }

        @Test(arguments: allFlavors)
        func barrierFromCallback(_ flavor: any RCUFlavor.Type) { checkBarrierFromCallback(flavor) }

        private func checkBarrierFromCallback<F: RCUFlavor>(_: F.Type) {
            let before = recorder.recorded.count
            F.retire { F.barrier() }   // the worker would wait for itself
            F.barrier()
            let kinds = recorder.recorded.dropFirst(before).map(\.kind)
            #expect(kinds == [.barrierInCallback], "\(F.name)")
        }
    }
}
