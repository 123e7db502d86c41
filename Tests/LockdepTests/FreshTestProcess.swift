import Foundation
import TestSupport
import XCTest

/// The environment variable that marks a fresh test process (``runInFreshTestProcess(_:file:line:)``).
let freshTestProcessVariable = "SWIFT_RCU_FRESH_TEST_PROCESS"

/// Whether this process is a fresh test process started for one test.
var inFreshTestProcess: Bool { ProcessInfo.processInfo.environment[freshTestProcessVariable] != nil }

/// Runs the test named `test` (`Module.Class/method`) in a fresh process of this test binary
/// and fails unless it passes within 120 s. For tests that fork: in the suite's own process,
/// threads other tests left running may be inside the Swift runtime (instantiating metadata)
/// at the fork, and a child that then needs the same metadata waits for ever on the runtime's
/// lock, which no package code can prevent (see ForkHooks). A fresh process has only the
/// test's own threads.
func runInFreshTestProcess(_ test: String, file: StaticString = #filePath, line: UInt = #line) {
    var environment = ProcessInfo.processInfo.environment
    environment[freshTestProcessVariable] = "1"
    let arguments: [String] = [CommandLine.arguments[0], test]
    let environmentStrings: [String] = environment.map { "\($0.key)=\($0.value)" }
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environmentStrings.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var child: pid_t = 0
    XCTAssertEqual(posix_spawn(&child, "/proc/self/exe", nil, nil, argv, envp), 0, file: file, line: line)
    guard child > 0 else { return }
    let (status, ended) = waitForChild(child, timeout: .seconds(120))
    XCTAssertTrue(ended, "\(test): the fresh test process hung (killed after 120 s)", file: file, line: line)
    XCTAssertEqual(status & 0x7F, 0, "\(test): killed by signal \(status & 0x7F)", file: file, line: line)
    XCTAssertEqual((status >> 8) & 0xFF, 0, "\(test) failed in its fresh process: see its output above",
                   file: file, line: line)
}
