import Foundation
import XCTest
@testable import Lockdep

final class StatisticsTests: LockdepTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        try super.setUpWithError()
    }

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

    /// A read section of an RCU-style map in a cell (a push that checks no chain) still learns
    /// from the state word that statistics are on: its acquisitions and holds are counted while
    /// collection is on (cells filled before and after the switch) and not after.
    func testRCUStyleSectionsAreCountedWhileCollectionIsOn() throws {
        let options: LockdepMap.Options = [.atomic, .rcu]
        func cell(_ name: String) -> LockdepMapCell {
            let map = LockdepMap(class: .unique(name), options: options)
            let cell = LockdepMapCell.allocate()
            cell.fill(from: map)
            return cell
        }
        func sections(_ cell: LockdepMapCell, _ count: Int) {
            for _ in 0..<count {
                Lockdep.acquire(cell, mode: .recursiveRead, options: options)
                Lockdep.release(cell, options: options)
            }
        }
        func counts(_ name: String) -> (Int, Int) {
            let s = Lockdep.statistics().first { $0.name == name }
            return (s?.acquisitions ?? 0, s?.holds ?? 0)
        }
        let before = cell("stat->rcu.before")
        sections(before, 5)   // statistics off: a fast push, not counted
        Lockdep.collectsStatistics = true
        let after = cell("stat->rcu.after")
        sections(before, 10)
        sections(after, 7)
        XCTAssertEqual(counts("stat->rcu.before").0, 10)
        XCTAssertEqual(counts("stat->rcu.before").1, 10)
        XCTAssertEqual(counts("stat->rcu.after").0, 7)
        XCTAssertEqual(counts("stat->rcu.after").1, 7)
        Lockdep.collectsStatistics = false
        sections(before, 3)
        sections(after, 3)
        XCTAssertEqual(counts("stat->rcu.before").0, 10)
        XCTAssertEqual(counts("stat->rcu.after").0, 7)
        XCTAssertEqual(Lockdep.heldLockCount, 0)
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
