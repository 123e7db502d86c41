import RCU
import XCTest

/// The README's RCU example, compiled and run as written.
final class ReadmeExampleTests: XCTestCase {
    final class Config: Sendable {
        let limit: Int
        init(limit: Int) { self.limit = limit }
    }

    func testPublishingAndReadingAConfig() {
        let config = RCUPointer<Config, RCUMemb>(Config(limit: 100))

        // Readers, on any thread: no lock, no atomic RMW, no retain/release.
        let limit = RCUMemb.read { section in
            config.withValue(in: section) { $0.limit } ?? 0
        }

        // A writer publishes a new version; the old one is freed after a grace period.
        config.replace(with: Config(limit: 200))

        XCTAssertEqual(limit, 100)
        XCTAssertEqual(RCUMemb.read { config.withValue(in: $0) { $0.limit } }, 200)
    }
}
