import Lockdep
import RCU
import XCTest

/// A Lockdep checked mutex names the writers' lock of an RCU list directly:
/// the list's check is `lockdep_is_held` (when Lockdep's checks are compiled in).
final class LockdepWriterLockTests: XCTestCase {
    func testCheckedMutexAsWriterLock() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let mutex = CheckedMutex("devices->mutex")
        let list = RCUList<Int, RCUMemb>(lock: mutex)
        mutex.withLock { _ = list.append(1) }
        XCTAssertTrue(recorder.kinds.isEmpty)
        list.append(2)                                   // without the lock: reported, skipped
        XCTAssertEqual(recorder.kinds, [.mutationWithoutLock])
        XCTAssertEqual(RCUMemb.read { list.count(in: $0) }, 1)
    }
}
