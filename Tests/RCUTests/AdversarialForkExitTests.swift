import Foundation
import Lockdep
import RCU
import XCTest

/// Read sections around `fork()` and threads that end inside a section.
final class AdversarialForkExitTests: XCTestCase {
    /// fork() inside a qsbr section (generic, and a scope's in `offline()`): in the child
    /// the section still ends and restores the state the thread had; in the parent too.
    func testForkInsideQSBRSections() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support fork() with threads")
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        RCUQSBR.retire {}
        RCUQSBR.barrier()
        let statuses = Locked<[String: Int32]>([:])
        onThread(named: "adv-fork") {
            func forkChecked(_ label: String, expectOnline: Bool, _ forkInSection: (inout pid_t) -> Void) {
                var pid: pid_t = -1
                forkInSection(&pid)
                if pid == 0 {
                    alarm(20)
                    var status: Int32 = RCUQSBR.isOnline == expectOnline && !RCUQSBR.isInReadSection ? 0 : 1
                    // A further section and a grace period in the child: they end, or are refused.
                    RCUQSBR.read { _ in }
                    if RCUQSBR.isOnline != expectOnline { status = 2 }
                    if !expectOnline { RCUQSBR.synchronize() }
                    _exit(status)
                }
                var status: Int32 = 0
                _ = waitpid(pid, &status, 0)
                statuses.withLock { $0[label] = status }
                XCTAssertEqual(RCUQSBR.isOnline, expectOnline, "parent after fork in \(label)")
            }
            forkChecked("generic section", expectOnline: false) { pid in
                RCUQSBR.read { _ in pid = fork() }
            }
            RCUQSBR.withReader { reader in
                forkChecked("scope section", expectOnline: true) { pid in
                    reader.read { _ in pid = fork() }
                }
                reader.offline {
                    forkChecked("scope section in offline()", expectOnline: false) { pid in
                        reader.read { _ in RCUQSBR.read { _ in pid = fork() } }
                    }
                }
                reader.quiescentState()
            }
        }
        XCTAssertEqual(statuses.withLock { $0 }, ["generic section": 0, "scope section": 0, "scope section in offline()": 0])
    }

    /// A thread that calls pthread_exit inside a section of each flavor: its exit hook
    /// unregisters it, so later grace periods end. With Lockdep's checks compiled in, the exit
    /// is also reported (the section is a held pseudo-lock: "still has locks held!"). Run in a
    /// process of its own.
    func testThreadExitInsideSections() throws {
        if IsolatedTest.isChild {
            alarm(30)
            Lockdep.reportHandler = .custom { r in print("LOCKDEP: \(r.kind) \(r.heldLocks.map(\.name))") }
            exitInsideSection(RCUQSBR.self)
            exitInsideSection(RCUMemb.self)
            exitInsideSection(RCUMemoryBarrier.self)
            exitInsideSection(RCUBulletproof.self)
            print("ADV-THREAD-EXIT-OK")
            return
        }
        let result = try IsolatedTest.run("RCUTests.AdversarialForkExitTests/testThreadExitInsideSections")
        XCTAssertTrue(result.output.contains("ADV-THREAD-EXIT-OK"), "\(result.reason) \(result.status)\n\(result.output)")
        if Lockdep.checksCompiledIn {
            for map in ["rcu_read_lock_qsbr", "rcu_read_lock", "rcu_read_lock_mb", "rcu_read_lock_bp"] {
                XCTAssertTrue(result.output.contains("LOCKDEP: locksHeldAtThreadExit [\"\(map)\"]"), "\(map)\n\(result.output)")
            }
        }
    }

    private func exitInsideSection<F: RCUFlavor>(_: F.Type) {
        var thread = pthread_t()
        let status: Int32
        switch F.kind {
        case .qsbr: status = pthread_create(&thread, nil, { _ in RCUQSBR.read { (_) -> Void in pthread_exit(nil) }; return nil }, nil)
        case .memb: status = pthread_create(&thread, nil, { _ in RCUMemb.read { (_) -> Void in pthread_exit(nil) }; return nil }, nil)
        case .memoryBarrier: status = pthread_create(&thread, nil, { _ in RCUMemoryBarrier.read { (_) -> Void in pthread_exit(nil) }; return nil }, nil)
        case .bulletproof: status = pthread_create(&thread, nil, { _ in RCUBulletproof.read { (_) -> Void in pthread_exit(nil) }; return nil }, nil)
        }
        precondition(status == 0)
        pthread_join(thread, nil)
        print("\(F.name): thread exited inside a section; synchronize...")
        F.synchronize()
        F.barrier()
        print("\(F.name): grace periods end")
    }
}
