import ArgumentParser
@testable import RCUStress
import XCTest

/// `rcu-stress`'s command line parsed in this process, as the executable parses it: the
/// subcommand, its options and its `validate()`. A refused command line is checked here,
/// without the executable, so these checks always run.
enum StressCLI {
    /// The command `arguments` parse to, validated (`rcu-stress <arguments>` without running it).
    static func parse(_ arguments: [String]) throws -> any ParsableCommand {
        try RCUStressCommand.parseAsRoot(arguments)
    }

    /// Asserts that `rcu-stress <arguments>` is refused as a usage error (exit status 64), with
    /// `text` and each of `more` in the message, and its usage when `showsUsage`.
    static func assertUsageError(_ arguments: [String], mentions text: String? = nil, _ more: String...,
                                 showsUsage: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        let command: any ParsableCommand
        do {
            command = try parse(arguments)
        } catch {
            let message = RCUStressCommand.fullMessage(for: error)
            XCTAssertEqual(RCUStressCommand.exitCode(for: error), .validationFailure, message, file: file, line: line)
            if showsUsage { XCTAssertTrue(message.contains("Usage:"), message, file: file, line: line) }
            for expected in [text].compactMap({ $0 }) + more {
                XCTAssertTrue(message.contains(expected), "\"\(expected)\" not in: \(message)", file: file, line: line)
            }
            return
        }
        XCTFail("rcu-stress \(arguments.joined(separator: " ")) was accepted as \(type(of: command))", file: file, line: line)
    }
}
