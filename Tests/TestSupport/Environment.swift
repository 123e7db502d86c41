public import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A long-test switch: `RCU_LONG_TESTS=1 swift test`.
public var longTests: Bool { ProcessInfo.processInfo.environment["RCU_LONG_TESTS"] != nil }

/// Whether this test process runs under ThreadSanitizer (some tests cannot: threads after fork()).
public let runningUnderThreadSanitizer: Bool = dlsym(dlopen(nil, RTLD_LAZY), "__tsan_init") != nil

/// Whether this test process runs under AddressSanitizer.
public let runningUnderAddressSanitizer: Bool = dlsym(dlopen(nil, RTLD_LAZY), "__asan_init") != nil

/// Tests that need a process of their own (a fork, a deliberate hang or trap) run the
/// test binary again, filtered to themselves, with a marker in the environment.
/// XCTest tests only: the re-run binary runs XCTest.
public enum IsolatedTest {
    private static let marker = "RCU_ISOLATED_TEST"

    /// Whether this process is such a re-run.
    public static var isChild: Bool { ProcessInfo.processInfo.environment[marker] != nil }

    /// Runs the test `id` ("Target.Class/testName") in a fresh test process with
    /// `environment` added, and returns how it ended and what it printed.
    public static func run(
        _ id: String, environment: [String: String] = [:]
    ) throws -> (reason: Process.TerminationReason, status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = [id]
        process.environment = ProcessInfo.processInfo.environment
            .merging(environment) { $1 }
            .merging([marker: "1"]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationReason, process.terminationStatus, text)
    }
}

/// A stop flag shared by stress threads.
public final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public func set() { value.store(true, ordering: .releasing) }
    public var isSet: Bool { value.load(ordering: .acquiring) }
}
