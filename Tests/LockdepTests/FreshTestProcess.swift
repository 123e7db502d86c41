import Foundation
import TestSupport
import XCTest

/// Runs the test named `test` (`Module.Class/method`) in a fresh process of this test binary
/// and fails unless it passes within 120 s. For tests that fork: in the suite's own process,
/// threads other tests left running may be inside the Swift runtime (instantiating metadata)
/// at the fork, and a child that then needs the same metadata waits for ever on the runtime's
/// lock, which no package code can prevent (see ForkHooks). A fresh process has only the
/// test's own threads.
func runInFreshTestProcess(_ test: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let (status, ended) = spawnFreshTestProcess(test, timeout: .seconds(120)) else {
        return XCTFail("\(test): the fresh test process could not be started", file: file, line: line)
    }
    XCTAssertTrue(ended, "\(test): the fresh test process hung (killed after 120 s)", file: file, line: line)
    XCTAssertEqual(status & 0x7F, 0, "\(test): killed by signal \(status & 0x7F)", file: file, line: line)
    XCTAssertEqual((status >> 8) & 0xFF, 0, "\(test) failed in its fresh process: see its output above",
                   file: file, line: line)
}
