import Foundation
import XCTest
@testable import Lockdep

final class StatisticsTests: LockdepTestCase {
    override func tearDown() {
        Lockdep.collectsStatistics = false
        super.tearDown()
    }

    func testCountsAcquisitionsAndHolds() throws {
        Lockdep.collectsStatistics = true
        let m = CheckedMutex(class: .unique("stat->mutex"))
        for _ in 0..<10 { m.withLock {} }
        let s = try XCTUnwrap(Lockdep.statistics().first { $0.name == "stat->mutex" })
        XCTAssertEqual(s.acquisitions, 10)
        XCTAssertEqual(s.holds, 10)
        XCTAssertEqual(s.contentions, 0)
        XCTAssertLessThanOrEqual(s.holdMin, s.holdMax)
        let table = Lockdep.statisticsTable()
        XCTAssertTrue(table.hasPrefix("lock_stat version 0.4"))
        XCTAssertTrue(table.contains("stat->mutex"))
        Lockdep.resetStatistics()
        XCTAssertTrue(Lockdep.statistics().isEmpty)
    }

    /// A contended acquisition is counted with its waiting site. Whether one particular attempt
    /// contends depends on scheduling, so the experiment repeats until one does (no timing
    /// assertion: only counts are checked).
    func testContentionAndTopContendingSite() throws {
        Lockdep.collectsStatistics = true
        let m = CheckedMutex(class: .unique("hot->mutex"))
        let waiterLine: UInt = #line + 8
        var attempts = 0
        while attempts < 200 {
            attempts += 1
            m.lock()
            let before = Lockdep.statistics().first { $0.name == "hot->mutex" }?.acquisitions ?? 0
            let done = DispatchSemaphore(value: 0)
            Thread {
                m.lock()
                m.unlock()
                done.signal()
            }.start()
            while (Lockdep.statistics().first { $0.name == "hot->mutex" }?.acquisitions ?? 0) == before { usleep(100) }
            usleep(1000)
            m.unlock()
            done.wait()
            if (Lockdep.statistics().first { $0.name == "hot->mutex" }?.contentions ?? 0) > 0 { break }
        }
        let s = try XCTUnwrap(Lockdep.statistics().first { $0.name == "hot->mutex" })
        XCTAssertGreaterThanOrEqual(s.contentions, 1)
        XCTAssertLessThanOrEqual(s.contentions, s.acquisitions)
        XCTAssertEqual(s.topContendingSites.first?.site.hasSuffix("StatisticsTests.swift:\(waiterLine)"), true,
                       "\(s.topContendingSites)")
        XCTAssertGreaterThan(s.waitTotal, .zero)
        XCTAssertLessThanOrEqual(s.waitMin, s.waitMax)
        XCTAssertTrue(Lockdep.statisticsTable().contains("StatisticsTests.swift:\(waiterLine)"))
    }
}
