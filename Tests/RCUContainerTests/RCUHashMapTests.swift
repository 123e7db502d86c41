import Foundation
import RCU
import XCTest

/// A key whose hash is constant: every key collides.
struct CollidingKey: Hashable, Sendable {
    let value: Int
    func hash(into hasher: inout Hasher) { hasher.combine(0) }
}

final class RCUHashMapTests: XCTestCase {
    // MARK: Semantics

    func testBasicOperations() {
        let map = RCUHashMap<String, Int, RCUMemb>()
        XCTAssertTrue(map.isEmpty)
        XCTAssertTrue(map.insert(1, forKey: "a"))
        XCTAssertFalse(map.insert(2, forKey: "a"), "add-unique keeps the present value")
        XCTAssertNil(map.updateValue(3, forKey: "b"))
        XCTAssertEqual(map.updateValue(4, forKey: "b"), 3)
        XCTAssertEqual(map.count, 2)
        RCUMemb.read { section in
            XCTAssertEqual(map.value(forKey: "a", in: section), 1)
            XCTAssertEqual(map.value(forKey: "b", in: section), 4)
            XCTAssertNil(map.value(forKey: "c", in: section))
            XCTAssertTrue(map.contains("a", in: section))
            XCTAssertEqual(map.withValue(forKey: "b", in: section) { $0 * 10 }, 40)
            var all: [String: Int] = [:]
            map.forEach(in: section) { all[$0] = $1 }
            XCTAssertEqual(all, ["a": 1, "b": 4])
        }
        XCTAssertEqual(map.removeValue(forKey: "a"), 1)
        XCTAssertNil(map.removeValue(forKey: "a"))
        XCTAssertEqual(map.count, 1)
        map.removeAll()
        XCTAssertTrue(map.isEmpty)
        XCTAssertFalse(RCUMemb.read { map.contains("b", in: $0) })
    }

    /// The same random operations on an RCUHashMap and a Dictionary give the
    /// same results and the same final contents.
    func testMatchesDictionaryUnderRandomizedModel() {
        let operations = longTests ? 1_000_000 : 120_000
        var rng = SplitMix64(seed: 0xC0FFEE)
        let map = RCUHashMap<Int, Int, RCUMemb>(minimumCapacity: 1)
        var model: [Int: Int] = [:]
        for step in 0..<operations {
            // Key ranges that grow and shrink so the table resizes both ways.
            let range = (step / 20_000) % 2 == 0 ? 4096 : 256
            let key = Int.random(in: 0..<range, using: &rng)
            let value = Int.random(in: 0..<1_000_000, using: &rng)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...2:
                let inserted = map.insert(value, forKey: key)
                XCTAssertEqual(inserted, model[key] == nil)
                if inserted { model[key] = value }
            case 3...4:
                XCTAssertEqual(map.updateValue(value, forKey: key), model.updateValue(value, forKey: key))
            case 5...7:
                XCTAssertEqual(map.removeValue(forKey: key), model.removeValue(forKey: key))
            default:
                XCTAssertEqual(RCUMemb.read { map.value(forKey: key, in: $0) }, model[key])
            }
            if step % 10_000 == 0 { XCTAssertEqual(map.count, model.count) }
        }
        XCTAssertEqual(map.count, model.count)
        let contents = RCUMemb.read { section in
            var all: [Int: Int] = [:]
            var visits = 0
            map.forEach(in: section) { all[$0] = $1; visits += 1 }
            return (all, visits)
        }
        XCTAssertEqual(contents.0, model)
        XCTAssertEqual(contents.1, model.count, "iteration visits each entry once")
    }

    func testCollidingKeysStayCorrect() {
        let map = RCUHashMap<CollidingKey, Int, RCUMemb>()
        for i in 0..<300 { XCTAssertTrue(map.insert(i, forKey: CollidingKey(value: i))) }
        for i in stride(from: 0, to: 300, by: 2) { XCTAssertEqual(map.removeValue(forKey: CollidingKey(value: i)), i) }
        RCUMemb.read { section in
            for i in 0..<300 {
                XCTAssertEqual(map.value(forKey: CollidingKey(value: i), in: section), i % 2 == 1 ? i : nil)
            }
        }
        XCTAssertEqual(map.count, 150)
    }

    func testEveryFlavorWorks() {
        func exercise<Flavor: RCUFlavor>(_: Flavor.Type) {
            let map = RCUHashMap<Int, String, Flavor>()
            for i in 0..<1000 { map.updateValue("\(i)", forKey: i) }
            for i in 0..<500 { map.removeValue(forKey: i) }
            Flavor.read { section in
                XCTAssertNil(map.value(forKey: 10, in: section))
                XCTAssertEqual(map.value(forKey: 700, in: section), "700")
            }
            XCTAssertEqual(map.count, 500)
        }
        exercise(RCUMemb.self)
        exercise(RCUQSBR.self)
        exercise(RCUBulletproof.self)
        exercise(RCUMemoryBarrier.self)
    }

    // MARK: Reclamation

    func testReplacedRemovedAndRemainingValuesAreFreedOnce() {
        let ledger = Ledger()
        do {
            let map = RCUHashMap<Int, Tracked, RCUMemb>()
            for i in 0..<100 { map.updateValue(Tracked(id: i, ledger: ledger), forKey: i) }
            for i in 0..<50 { map.updateValue(Tracked(id: 100 + i, ledger: ledger), forKey: i) }
            for i in 50..<75 { map.removeValue(forKey: i) }
            XCTAssertFalse(map.insert(Tracked(id: 1000, ledger: ledger), forKey: 99))
            RCUMemb.barrier()
            XCTAssertEqual(ledger.freedCount, 76, "50 replaced, 25 removed, 1 rejected")
            XCTAssertTrue(ledger.isFreed(1000))
        }
        XCTAssertEqual(ledger.freedCount, ledger.createdCount, "deinit frees what remains")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// Class values are lent straight from the entry (the `Value: AnyObject` overload,
    /// no retain): the map's reference alone keeps a replaced value alive until the
    /// section ends, and it is freed once, after a grace period.
    func testClassValuesAreLentFromTheEntry() {
        let ledger = Ledger()
        let map = RCUHashMap<Int, Tracked, RCUMemb>()
        map.insert(Tracked(id: 1, ledger: ledger), forKey: 7)
        RCUMemb.read { section in
            XCTAssertNil(map.withValue(forKey: 8, in: section) { $0.id })
            let seen = map.withValue(forKey: 7, in: section) { old -> Int in
                map.updateValue(Tracked(id: 2, ledger: ledger), forKey: 7)   // retires `old`
                return old.isAlive ? old.id : -1
            }
            XCTAssertEqual(seen, 1, "a replaced value lives until the section ends")
            XCTAssertEqual(map.withValue(forKey: 7, in: section) { $0.id }, 2)
            XCTAssertFalse(ledger.isFreed(1))
        }
        RCUMemb.barrier()
        XCTAssertTrue(ledger.isFreed(1), "freed after the grace period")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    func testDeinitInsideReadSectionAndInCallback() {
        let ledger = Ledger()
        var map: RCUHashMap<Int, Tracked, RCUMemb>? = RCUHashMap()
        for i in 0..<10 { map!.insert(Tracked(id: i, ledger: ledger), forKey: i) }
        RCUMemb.read { _ in map = nil }  // teardown moves to a new thread
        XCTAssertTrue(ledger.waitForFreed(10))

        func filledMap() -> RCUHashMap<Int, Tracked, RCUMemb> {
            let map = RCUHashMap<Int, Tracked, RCUMemb>()
            for i in 10..<20 { map.insert(Tracked(id: i, ledger: ledger), forKey: i) }
            return map
        }
        RCUMemb.retire(filledMap())  // the only reference is dropped on a call_rcu worker
        RCUMemb.barrier()
        XCTAssertTrue(ledger.waitForFreed(20))
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    // MARK: Stress

    func testStressMemb() { runStress(RCUMemb.self) }
    func testStressQSBR() { runStress(RCUQSBR.self) }
    func testStressBulletproof() { runStress(RCUBulletproof.self) }
    func testStressMemoryBarrier() { runStress(RCUMemoryBarrier.self) }

    /// Two readers look up and iterate while two writers insert, replace and
    /// remove over a key range that makes the table grow and shrink: readers
    /// never see a freed value or a value under the wrong key, nor a value
    /// twice in one iteration; every value replaced or removed is handed back
    /// to exactly one writer and freed exactly once after `barrier()`.
    func runStress<Flavor: RCUFlavor>(_: Flavor.Type) {
        let ledger = Ledger()
        let ids = IDSource()
        let violations = Violations()
        let created: Int
        do {
            let map = RCUHashMap<Int, Tracked, Flavor>(minimumCapacity: 2)
            let stop = Flag()
            let lookups = Locked(0)
            let readers = (0..<2).map { index in
                startThread(named: "map-reader-\(index)") {
                    var rng = SplitMix64(seed: UInt64(index))
                    var count = 0
                    while !stop.isSet {
                        Flavor.read { section in
                            for _ in 0..<64 {
                                let key = Int.random(in: 0..<1024, using: &rng)
                                map.withValue(forKey: key, in: section) { value in
                                    if !value.isAlive { violations.record("freed value \(value.id) seen") }
                                    if value.key != key { violations.record("value for \(value.key) under \(key)") }
                                }
                            }
                            if count % 16 == 0 {
                                var seen = Set<Int>()
                                map.forEach(in: section) { key, value in
                                    if !value.isAlive { violations.record("freed value \(value.id) iterated") }
                                    if value.key != key { violations.record("iterated \(value.key) under \(key)") }
                                    if !seen.insert(value.id).inserted { violations.record("value \(value.id) iterated twice") }
                                }
                            }
                        }
                        count += 1
                    }
                    lookups.withLock { $0 += count }
                }
            }
            let handedBack = Locked(0)
            let writers = (0..<2).map { index in
                startThread(named: "map-writer-\(index)") {
                    var rng = SplitMix64(seed: 100 + UInt64(index))
                    var returned = 0
                    let deadline = Date().addingTimeInterval(stressDuration)
                    var step = 0
                    while Date() < deadline || step < 4000 {
                        // Alternate wide and narrow key ranges: the table grows and shrinks.
                        let range = (step / 2000) % 2 == 0 ? 1024 : 64
                        let key = Int.random(in: 0..<range, using: &rng)
                        switch Int.random(in: 0..<3, using: &rng) {
                        case 0:
                            map.insert(Tracked(id: ids.make(), key: key, ledger: ledger), forKey: key)
                        case 1:
                            if let old = map.updateValue(Tracked(id: ids.make(), key: key, ledger: ledger), forKey: key) {
                                if !old.isAlive { violations.record("replaced value already freed") }
                                returned += 1
                            }
                        default:
                            if let old = map.removeValue(forKey: key) {
                                if old.key != key { violations.record("removed wrong value") }
                                returned += 1
                            }
                        }
                        step += 1
                    }
                    handedBack.withLock { $0 += returned }
                }
            }
            writers.forEach { $0.wait() }
            stop.set()
            readers.forEach { $0.wait() }
            XCTAssertEqual(violations.all, [])
            XCTAssertGreaterThan(lookups.withLock { $0 }, 0)

            let live = Flavor.read { section in
                var live: [Int] = []
                map.forEach(in: section) { _, value in live.append(value.id) }
                return live
            }
            XCTAssertEqual(live.count, map.count)
            XCTAssertEqual(Set(live).count, live.count)
            Flavor.barrier()
            // Freed: everything replaced or removed, plus values insert rejected.
            XCTAssertEqual(ledger.freedCount, ledger.createdCount - live.count)
            XCTAssertFalse(live.contains(where: ledger.isFreed), "no value still in the map was freed")
            XCTAssertLessThanOrEqual(handedBack.withLock { $0 }, ledger.freedCount)
            XCTAssertEqual(ledger.doubleFrees, 0)
            created = ledger.createdCount
        }
        Flavor.barrier()
        XCTAssertTrue(ledger.waitForFreed(created), "the map's deinit frees what remains")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }
}
