import Dispatch
import Foundation
import Glibc
import Lockdep
import RCU
import RCUTestSupport
import XCTest

/// Session 23: Lockdep's thread-exit report is delivered from its pthread-key destructor, on the
/// exiting thread, possibly after RCU's own thread-exit hooks ran. A report handler that reads
/// RCU-protected data there (a read section of each flavor) must not leave the dead thread
/// registered: later grace periods must still end.
final class AdversarialSession23RCUTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        recorder = MisuseRecorder()
    }

    override func tearDown() { recorder?.stop() }

    func testReadSectionsInTheExitReportHandlerLeaveNoDeadReader() throws {
        let reads = Locked<[String]>([])
        Lockdep.reportHandler = .custom { r in
            guard r.kind == .locksHeldAtThreadExit else { return }
            RCUMemb.read { _ in reads.withLock { $0.append("memb") } }
            RCUQSBR.read { _ in reads.withLock { $0.append("qsbr") } }
            RCUMemoryBarrier.read { _ in reads.withLock { $0.append("mb") } }
            RCUBulletproof.read { _ in reads.withLock { $0.append("bp") } }
        }
        let m = CheckedMutex(class: .unique("adv23.rcu.exit"))
        // The thread reads first (each flavor registers it and arms its exit hook), then leaks m.
        pthread_join(startJoinableThread(named: "adv23-rcu-exit") {
            RCUMemb.read { _ in }
            RCUQSBR.read { _ in }
            RCUMemoryBarrier.read { _ in }
            RCUBulletproof.read { _ in }
            m.lock()
        }, nil)
        XCTAssertEqual(reads.value, ["memb", "qsbr", "mb", "bp"])
        let ended = DispatchSemaphore(value: 0)
        Thread {
            RCUMemb.synchronize()
            RCUQSBR.synchronize()
            RCUMemoryBarrier.synchronize()
            RCUBulletproof.synchronize()
            ended.signal()
        }.start()
        XCTAssertEqual(ended.wait(timeout: .now() + 30), .success,
                       "a grace period waits for a thread that exited after reading in its exit report")
        withExtendedLifetime(m) { Lockdep.reportHandler = .reportOnceAndContinue }
    }
}
