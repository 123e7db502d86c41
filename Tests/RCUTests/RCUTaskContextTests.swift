import Foundation
import Lockdep
import RCU
import XCTest

/// Blocking grace-period waits made from a Swift task are reported by Lockdep's task-context
/// check, naming the async call to use instead; the same calls on a plain thread are not.
final class RCUTaskContextTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        Lockdep.resetForTesting()
        recorder = MisuseRecorder()
    }

    override func tearDown() { recorder?.stop() }

    func testBlockingWaitsInTaskAreReportedWithTheAsyncAlternative() async {
        let pointer = SharedPointer()
        await Task.detached {
            RCUMemb.synchronize()
            RCUQSBR.barrier()
            RCUBulletproof.synchronize(since: RCUBulletproof.gracePeriodCookie())
            pointer.value.replaceAndSynchronize(with: Box())
            RCUMemb.deferBarrier()
        }.value
        let texts = recorder.lockdepReports.filter { $0.kind == .blockingInTask }.map(\.text)
        XCTAssertEqual(texts.count, 5, texts.joined(separator: "\n"))
        let expected = [
            ("RCUMemb.synchronize()", "try await RCUMemb.synchronize()"),
            ("RCUQSBR.barrier()", "try await RCUQSBR.barrier()"),
            ("RCUBulletproof.synchronize(since:)", "try await RCUBulletproof.synchronize(since:)"),
            ("RCUMemb.replaceAndSynchronize(with:)", "try await pointer.replaceAndSynchronize(with:)"),
            ("RCUMemb.deferBarrier()", "then try await RCUMemb.barrier()"),
        ]
        for (call, alternative) in expected {
            XCTAssertTrue(texts.contains { $0.contains("\(call) blocks thread") && $0.contains(alternative) },
                          "\(call) not reported with \(alternative):\n\(texts.joined(separator: "\n"))")
        }
    }

    func testBlockingWaitsOnAThreadAreNotReported() {
        onThread(named: "plain") {
            RCUMemb.synchronize()
            RCUQSBR.barrier()
        }
        XCTAssertTrue(recorder.lockdepReports.isEmpty, recorder.lockdepReports.map(\.text).joined(separator: "\n"))
    }

    func testAwaitedWaitsAreNotReported() async throws {
        try await RCUMemb.synchronize()
        try await RCUQSBR.barrier()
        try await RCUBulletproof.synchronize(since: RCUBulletproof.startGracePeriod())
        XCTAssertTrue(recorder.lockdepReports.isEmpty, recorder.lockdepReports.map(\.text).joined(separator: "\n"))
    }
}

private final class Box: Sendable {}

private final class SharedPointer: Sendable {
    let value = RCUPointer<Box, RCUMemb>(Box())
}
