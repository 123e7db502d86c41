import Foundation
import XCTest

/// Parses `rcu-stress` `--json` output.
enum StressJSON {
    /// Every stdout line of `run` as a JSON object.
    static func objects(_ run: RCUStressProcess.Run) throws -> [[String: Any]] {
        try run.stdout.split(separator: "\n").map { line in
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
        }
    }

    /// The single JSON object `run` printed.
    static func object(_ run: RCUStressProcess.Run) throws -> [String: Any] {
        let all = try objects(run)
        XCTAssertEqual(all.count, 1, run.stdout)
        return try XCTUnwrap(all.first, run.output)
    }

    /// `object[key]` as an integer.
    static func int(_ object: [String: Any], _ key: String) throws -> Int {
        try XCTUnwrap((object[key] as? NSNumber)?.intValue, "\(key) in \(object)")
    }
}
