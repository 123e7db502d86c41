import Foundation
import XCTest

/// Runs the built `rcu-stress` executable as a user would: argument errors and a short real run.
/// No timing thresholds here; `rcu-stress read-cost` itself is the benchmark.
final class ReadCostCommandTests: XCTestCase {
    func testUnknownFlavorIsAUsageError() throws {
        StressCLI.assertUsageError(["read-cost", "--flavor", "sig"], mentions: "--flavor", showsUsage: true)
    }

    func testZeroIterationsIsAUsageError() throws {
        StressCLI.assertUsageError(["read-cost", "--iterations", "0"], showsUsage: true)
    }

    func testNegativeIterationsIsAUsageError() throws {
        StressCLI.assertUsageError(["read-cost", "--iterations=-5"])
    }

    /// The default subcommand is `registry` (the package's default benchmark run); `read-cost`
    /// stays available by name.
    func testRegistryIsTheDefaultSubcommand() throws {
        StressCLI.assertUsageError(["--flavor", "nope"], mentions: "registry")
        let help = try RCUStressProcess.run(["--help"])
        XCTAssertTrue(help.output.contains("read-cost"), help.output)
    }

    func testJSONRunReportsEveryFlavor() throws {
        let run = try RCUStressProcess.run(["read-cost", "--json", "--iterations", "100000", "--rounds", "2"])
        XCTAssertEqual(run.status, 0, run.output)
        var flavors: [String] = []
        var sawMembarrierLine = false
        for line in run.stdout.split(separator: "\n") {
            let object = try XCTUnwrap(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            if object["has_sys_membarrier"] is Bool {
                sawMembarrierLine = true
                continue
            }
            let flavor = try XCTUnwrap(object["flavor"] as? String, String(line))
            flavors.append(flavor)
            for key in ["c_ns", "swift_ns", "ratio"] {
                let value = try XCTUnwrap(object[key] as? Double, "\(key) in \(line)")
                XCTAssertGreaterThan(value, 0, "\(key) in \(line)")
            }
        }
        XCTAssertTrue(sawMembarrierLine, run.stdout)
        XCTAssertEqual(flavors, ["memb", "qsbr", "bp", "mb"])
    }
}
