import Foundation
import Synchronization
import TestSupport
import XCTest
import Lockdep

/// Two threads filling one cell at once. With different maps that is the programming error
/// `LockdepMapCell.fill(from:)` documents, and it must trap whichever thread comes second,
/// not pass silently with the last writer's map in the cell; with the same map it is fine.
final class MapCellFillRaceTests: XCTestCase {
    /// Both maps' fills, released together on two threads; returns when both are done.
    static func racingFills(_ cell: LockdepMapCell, _ first: LockdepMap, _ second: LockdepMap) {
        final class Start: Sendable { let go = Atomic<Bool>(false); let done = Atomic<Int>(0) }
        let start = Start()
        for map in [first, second] {
            Thread {
                while !start.go.load(ordering: .acquiring) {}
                cell.fill(from: map)
                start.done.add(1, ordering: .releasing)
            }.start()
        }
        usleep(2_000)
        start.go.store(true, ordering: .releasing)
        while start.done.load(ordering: .acquiring) < 2 { sched_yield() }
    }

    func testRacingFillsWithDifferentMapsTrap() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        // Under AddressSanitizer the child's trap becomes ASan's report (exit status 1).
        try XCTSkipIf(runningUnderAddressSanitizer, "the child's trap is ASan's to report")
        let a = LockdepMap("fill.race.a", key: "MapCellFillRaceTests.a", options: [.atomic, .rcu])
        let b = LockdepMap("fill.race.b", key: "MapCellFillRaceTests.b", options: [.atomic, .rcu])
        let children = forkChildren(8, alarm: 10, timeout: .seconds(20)) {
            Self.racingFills(LockdepMapCell.allocate(), a, b)
        }
        XCTAssertEqual(children.hung, 0)
        XCTAssertEqual(children.exitedZero, 0, "a fill with a different map raced another and passed silently")
        XCTAssertEqual(children.failedStatuses.filter { [SIGILL, SIGTRAP].contains($0 & 0x7F) }.count, 8,
                       "statuses \(children.failedStatuses)")
    }

    /// In this process (so ThreadSanitizer watches the claim and the fill): every race ends
    /// with the cell filled with the map, and nothing traps.
    func testRacingFillsWithTheSameMapPass() {
        let a = LockdepMap("fill.race.same", key: "MapCellFillRaceTests.same", options: [.atomic, .rcu])
        for _ in 0..<50 {
            let cell = LockdepMapCell.allocate()
            Self.racingFills(cell, a, a)
            XCTAssertTrue(cell.isFilled)
            Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu])
            XCTAssertTrue(Lockdep.isHeld(a, mode: .read))
            Lockdep.release(cell, options: [.atomic, .rcu])
        }
    }
}
