import Foundation
import RCU
import Synchronization
import XCTest

final class QSBRTests: XCTestCase {
    func testReaderHandleReadsQuiescesAndGoesOffline() {
        let ledger = Ledger()
        let holder = PointerHolder<RCUQSBR>(Tracked(id: 1, value: 7, ledger: ledger))
        onThread(named: "qsbr-reader") {
            RCUQSBR.withReader { reader in
                XCTAssertTrue(RCUQSBR.isThreadRegistered)
                XCTAssertTrue(RCUQSBR.isOnline)
                XCTAssertEqual(reader.read { holder.pointer.withValue(in: $0) { $0.value } }, 7)
                reader.quiescentState()
                reader.offline {
                    XCTAssertFalse(RCUQSBR.isOnline)
                    RCUQSBR.synchronize()   // an offline reader does not hold up grace periods
                }
                XCTAssertTrue(RCUQSBR.isOnline)
            }
            XCTAssertFalse(RCUQSBR.isOnline, "the scope brought the thread online and took it offline")
        }
        holder.pointer.replace(with: nil)
        RCUQSBR.barrier()
        XCTAssertTrue(ledger.isFreed(1))
    }

    func testGenericSectionsLeaveTheThreadOffline() {
        onThread(named: "qsbr-generic") {
            RCUQSBR.read { _ in XCTAssertTrue(RCUQSBR.isOnline) }
            XCTAssertTrue(RCUQSBR.isThreadRegistered)
            XCTAssertFalse(RCUQSBR.isOnline, "an idle generic reader can never stall a grace period")
        }
    }

    /// A QSBR reader that never reports a quiescent state is named by the stall
    /// detector instead of hanging `synchronize()` without a word.
    func testStalledReaderIsNamed() {
        withCollectedStalls(threshold: .milliseconds(100)) { stalls in
            let registered = DispatchSemaphore(value: 0)
            let release = Atomic<Bool>(false)
            let reader = startThread(named: "lazy-reader") {
                RCUQSBR.withReader { reader in
                    registered.signal()
                    // Forgets quiescent states until told, the bug being diagnosed.
                    while !release.load(ordering: .acquiring) { usleep(1_000) }
                    reader.quiescentState()
                }
            }
            registered.wait()
            let writer = startThread(named: "qsbr-writer") { RCUQSBR.synchronize() }
            let deadline = Date().addingTimeInterval(10)
            while stalls.withLock({ $0.isEmpty }) && Date() < deadline { usleep(5_000) }
            release.store(true, ordering: .releasing)
            writer.wait()
            reader.wait()

            let stall = stalls.withLock { $0.first { $0.call == "synchronize()" } }
            XCTAssertNotNil(stall, "the stall was reported")
            XCTAssertEqual(stall?.flavor, "qsbr")
            XCTAssertEqual(stall?.waiterName, "qsbr-writer")
            XCTAssertEqual(stall?.blockingReaders.map(\.name), ["lazy-reader"])
            XCTAssertTrue(stall?.description.contains("\"lazy-reader\"") ?? false)
        }
    }
}

final class QSBRReaderStateTests: XCTestCase {
    /// A thread that generic sections left registered but offline is brought online by a
    /// reader scope, and offline again when the scope ends.
    func testReaderOnARegisteredOfflineThread() {
        onThread(named: "qsbr-offline") {
            RCUQSBR.read { _ in }
            XCTAssertTrue(RCUQSBR.isThreadRegistered)
            XCTAssertFalse(RCUQSBR.isOnline)
            RCUQSBR.withReader { reader in
                XCTAssertTrue(RCUQSBR.isOnline, "a reader scope keeps the thread online")
                reader.read { _ in }
                reader.quiescentState()
            }
            XCTAssertTrue(RCUQSBR.isThreadRegistered)
            XCTAssertFalse(RCUQSBR.isOnline, "back to the state the Reader found")
        }
    }
}
