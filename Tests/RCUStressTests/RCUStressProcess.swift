import Foundation
import XCTest

/// Finds and runs the `rcu-stress` executable built next to the test bundle, for the tests
/// that need a real run (usage errors are checked in-process: ``StressCLI``). A missing
/// executable fails the test.
enum RCUStressProcess {
    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
        var output: String { stdout + stderr }
    }

    /// `$RCU_STRESS` if set, else `rcu-stress` in the build directory holding the test bundle.
    static func executable() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["RCU_STRESS"] {
            return URL(fileURLWithPath: path)
        }
        let candidates = [
            Bundle.main.bundleURL,
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle(for: Marker.self).bundleURL.deletingLastPathComponent(),
        ].map { $0.appendingPathComponent("rcu-stress") }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            // A failure, not a skip: a suite whose runs cannot start must not pass.
            throw MissingExecutable(searched: candidates.map(\.path))
        }
        return found
    }

    static func run(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = try executable()
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes to the end before waiting, so a full pipe cannot block the child.
        let errData = ErrorCollector(err.fileHandleForReading)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.wait(), as: UTF8.self))
    }

    /// Runs `rcu-stress arguments` on a terminal (under `script`), so that it draws its
    /// progress line; skips the test where `/usr/bin/script` is missing.
    static func runOnTerminal(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let script = URL(fileURLWithPath: "/usr/bin/script")
        guard FileManager.default.isExecutableFile(atPath: script.path) else {
            throw XCTSkip("no /usr/bin/script to give the run a terminal")
        }
        let command = (["'\(try executable().path)'"] + arguments).joined(separator: " ")
        let process = Process()
        process.executableURL = script
        process.arguments = ["-qec", command, "/dev/null"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// The rates a run's progress line drew ("\r[1/2 s] 4.1e8 ops/s, backlog 0").
    static func progressRates(_ output: String) -> [Double] {
        output.split(separator: "\r").compactMap { line -> Double? in
            guard line.hasPrefix("["), let open = line.range(of: "] "), let unit = line.range(of: " ops/s") else {
                return nil
            }
            return Double(line[open.upperBound..<unit.lowerBound])
        }
    }

    private final class Marker {}

    /// The executable was not found: the test fails with where it looked.
    struct MissingExecutable: Error, CustomStringConvertible {
        let searched: [String]
        var description: String { "rcu-stress not found in \(searched); build it (swift build) or set RCU_STRESS" }
    }
}

/// Drains a pipe on a background thread.
private final class ErrorCollector: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var data = Data()

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
