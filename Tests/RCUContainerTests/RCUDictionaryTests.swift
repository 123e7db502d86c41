import Foundation
import RCU
import XCTest

/// A key whose `==` runs a hook: lets a test make a key comparison call back into the
/// map that compares it, which the writer lock must refuse.
struct ReentrantKey: Hashable, Sendable {
    let value: Int
    static let hook = Locked<(@Sendable () -> Void)?>(nil)
    static func == (lhs: Self, rhs: Self) -> Bool {
        if let hook = hook.withLock({ $0 }) { hook() }
        return lhs.value == rhs.value
    }
    func hash(into hasher: inout Hasher) { hasher.combine(value) }
}

final class RCUDictionaryTests: XCTestCase {
    // MARK: Semantics

    func testBasicOperations() {
        let map = RCUDictionary<String, Int, RCUMemb>()
        XCTAssertTrue(map.isEmpty)
        XCTAssertTrue(map.insert(1, forKey: "a"))
        XCTAssertFalse(map.insert(2, forKey: "a"), "insert keeps the present value")
        XCTAssertNil(map.updateValue(3, forKey: "b"))
        XCTAssertEqual(map.updateValue(4, forKey: "b"), 3)
        XCTAssertEqual(map.count, 2)
        RCUMemb.read { section in
            XCTAssertEqual(map.value(forKey: "a", in: section), 1)
            XCTAssertEqual(map.value(forKey: "b", in: section), 4)
            XCTAssertNil(map.value(forKey: "c", in: section))
            XCTAssertTrue(map.contains("a", in: section))
            XCTAssertFalse(map.contains("c", in: section))
            XCTAssertEqual(map.withValue(forKey: "b", in: section) { $0 * 10 }, 40)
            XCTAssertNil(map.withValue(forKey: "c", in: section) { $0 * 10 })
            var all: [String: Int] = [:]
            map.forEach(in: section) { all[$0] = $1 }
            XCTAssertEqual(all, ["a": 1, "b": 4])
        }
        XCTAssertEqual(map.removeValue(forKey: "a"), 1)
        XCTAssertNil(map.removeValue(forKey: "a"))
        XCTAssertEqual(map.count, 1)
        XCTAssertTrue(map.insert(5, forKey: "a"), "a removed key can be added back (into its tombstone)")
        XCTAssertEqual(RCUMemb.read { map.value(forKey: "a", in: $0) }, 5)
        map.removeAll()
        XCTAssertTrue(map.isEmpty)
        XCTAssertFalse(RCUMemb.read { map.contains("b", in: $0) })
        XCTAssertTrue(map.insert(6, forKey: "b"), "usable after removeAll")
        XCTAssertEqual(map.count, 1)
    }

    func testMinimumCapacityIsHeldWithoutRebuilding() {
        let map = RCUDictionary<Int, Int, RCUMemb>(minimumCapacity: 10_000)
        let initial = map.capacity
        XCTAssertGreaterThanOrEqual(initial, 10_000)
        for key in 0..<10_000 { map.insert(key, forKey: key) }
        XCTAssertEqual(map.capacity, initial, "no rebuild up to minimumCapacity")
        for key in 0..<10_000 { map.removeValue(forKey: key) }
        XCTAssertEqual(map.capacity, initial, "never shrinks below minimumCapacity")
        XCTAssertTrue(map.isEmpty)
        XCTAssertGreaterThanOrEqual(RCUDictionary<Int, Int, RCUMemb>(minimumCapacity: -5).capacity, 1)
    }

    /// The same random operations on an RCUDictionary and a Dictionary give the
    /// same results and the same final contents, while the table grows, shrinks and
    /// is rebuilt to clear its tombstones.
    func testMatchesDictionaryUnderRandomizedModel() {
        let operations = longTests ? 1_000_000 : 120_000
        var rng = SplitMix64(seed: 0xC0FFEE)
        let map = RCUDictionary<Int, Int, RCUMemb>(minimumCapacity: 1)
        var model: [Int: Int] = [:]
        var capacities = Set<Int>()
        var shrinks = 0
        for step in 0..<operations {
            // Phases of wide and narrow key ranges; removals always draw from the wide
            // range, so in a narrow phase the map drains and the table shrinks.
            let operation = Int.random(in: 0..<10, using: &rng)
            let range = (step / 20_000) % 2 == 0 || (5...7).contains(operation) ? 4096 : 256
            let key = Int.random(in: 0..<range, using: &rng)
            let value = Int.random(in: 0..<1_000_000, using: &rng)
            let before = map.capacity
            switch operation {
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
            if map.capacity < before { shrinks += 1 }
            capacities.insert(map.capacity)
            if step % 10_000 == 0 { XCTAssertEqual(map.count, model.count) }
        }
        XCTAssertEqual(map.count, model.count)
        XCTAssertGreaterThanOrEqual(capacities.count, 4, "the table grew through several sizes: \(capacities.sorted())")
        XCTAssertGreaterThan(shrinks, 0, "the table shrank")
        let contents = RCUMemb.read { section in
            var all: [Int: Int] = [:]
            var visits = 0
            map.forEach(in: section) { all[$0] = $1; visits += 1 }
            return (all, visits)
        }
        XCTAssertEqual(contents.0, model)
        XCTAssertEqual(contents.1, model.count, "iteration visits each entry once")
        RCUMemb.read { section in
            for key in 0..<4096 { XCTAssertEqual(map.value(forKey: key, in: section), model[key]) }
        }
    }

    /// Keys that all hash alike share one probe run: removals leave tombstones inside
    /// it, insertions reuse them, and lookups still walk past them to the keys behind.
    func testCollidingKeysStayCorrect() {
        let map = RCUDictionary<CollidingKey, Int, RCUMemb>()
        for i in 0..<300 { XCTAssertTrue(map.insert(i, forKey: CollidingKey(value: i))) }
        for i in stride(from: 0, to: 300, by: 2) { XCTAssertEqual(map.removeValue(forKey: CollidingKey(value: i)), i) }
        RCUMemb.read { section in
            for i in 0..<300 {
                XCTAssertEqual(map.value(forKey: CollidingKey(value: i), in: section), i % 2 == 1 ? i : nil)
            }
        }
        XCTAssertEqual(map.count, 150)
        for i in stride(from: 0, to: 100, by: 2) { XCTAssertTrue(map.insert(-i, forKey: CollidingKey(value: i))) }
        for i in stride(from: 1, to: 300, by: 2) { XCTAssertFalse(map.insert(0, forKey: CollidingKey(value: i))) }
        RCUMemb.read { section in
            for i in 0..<300 {
                let expected: Int? = i % 2 == 1 ? i : (i < 100 ? -i : nil)
                XCTAssertEqual(map.value(forKey: CollidingKey(value: i), in: section), expected, "key \(i)")
            }
        }
        XCTAssertEqual(map.count, 200)
    }

    /// One probe run as long as the map: where it starts near the end of the home slots
    /// it runs into the overflow area, and past it into the sentinel, which forces a
    /// rebuild with a larger area (each map has its own seed, so its own start).
    func testLongCollidingRunsInEveryMapStayCorrect() {
        for round in 0..<6 {
            let map = RCUDictionary<CollidingKey, Int, RCUMemb>()
            for i in 0..<600 { XCTAssertTrue(map.insert(i, forKey: CollidingKey(value: i)), "round \(round) key \(i)") }
            for i in stride(from: 0, to: 600, by: 3) { map.updateValue(-i, forKey: CollidingKey(value: i)) }
            RCUMemb.read { section in
                var seen = 0
                map.forEach(in: section) { key, value in
                    seen += 1
                    if value != (key.value % 3 == 0 ? -key.value : key.value) { XCTFail("round \(round) key \(key.value)") }
                }
                XCTAssertEqual(seen, 600, "round \(round)")
                XCTAssertEqual(map.value(forKey: CollidingKey(value: 599), in: section), 599)
                XCTAssertNil(map.value(forKey: CollidingKey(value: 600), in: section))
            }
        }
    }

    /// Inserting and removing keys that are never added back fills the table with
    /// tombstones: rebuilds clear them, so the table stays small and lookups end.
    func testTombstonesAreClearedByRebuilds() {
        let map = RCUDictionary<Int, Int, RCUMemb>()
        let capacity = map.capacity
        for key in 0..<100_000 {
            XCTAssertTrue(map.insert(key, forKey: key))
            if key >= 3 { XCTAssertEqual(map.removeValue(forKey: key - 3), key - 3) }
        }
        XCTAssertEqual(map.count, 3)
        XCTAssertEqual(map.capacity, capacity, "a table of 3 entries never grew")
        RCUMemb.read { section in
            XCTAssertNil(map.value(forKey: 5, in: section))
            XCTAssertNil(map.value(forKey: -1, in: section), "a miss ends at an empty slot")
            XCTAssertEqual(map.value(forKey: 99_999, in: section), 99_999)
        }
    }

    func testEveryFlavorWorks() {
        func exercise<Flavor: RCUFlavor>(_: Flavor.Type) {
            let map = RCUDictionary<Int, String, Flavor>()
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
            let map = RCUDictionary<Int, Tracked, RCUMemb>()
            for i in 0..<100 { map.updateValue(Tracked(id: i, ledger: ledger), forKey: i) }
            for i in 0..<50 { map.updateValue(Tracked(id: 100 + i, ledger: ledger), forKey: i) }
            for i in 50..<75 { map.removeValue(forKey: i) }
            XCTAssertFalse(map.insert(Tracked(id: 1000, ledger: ledger), forKey: 99))
            XCTAssertTrue(ledger.isFreed(1000), "a rejected value is freed at once: no reader saw it")
            RCUMemb.barrier()
            XCTAssertEqual(ledger.freedCount, 76, "50 replaced, 25 removed, 1 rejected")
        }
        XCTAssertEqual(ledger.freedCount, ledger.createdCount, "deinit frees what remains")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// Class values are lent straight from the entry (no retain): the map's reference
    /// alone keeps a replaced or removed value alive until the section ends, and it is
    /// freed once, after a grace period.
    func testClassValuesAreLentFromTheEntryAndFreedAfterAGracePeriod() {
        let ledger = Ledger()
        let map = RCUDictionary<Int, Tracked, RCUMemb>()
        map.insert(Tracked(id: 1, ledger: ledger), forKey: 7)
        map.insert(Tracked(id: 3, ledger: ledger), forKey: 8)
        RCUMemb.read { section in
            XCTAssertNil(map.withValue(forKey: 9, in: section) { $0.id })
            let seen = map.withValue(forKey: 7, in: section) { old -> Int in
                map.updateValue(Tracked(id: 2, ledger: ledger), forKey: 7)   // retires `old`
                return old.isAlive ? old.id : -1
            }
            XCTAssertEqual(seen, 1, "a replaced value lives until the section ends")
            XCTAssertEqual(map.withValue(forKey: 7, in: section) { $0.id }, 2)
            let removed = map.withValue(forKey: 8, in: section) { old -> Int in
                map.removeValue(forKey: 8)
                return old.isAlive ? old.id : -1
            }
            XCTAssertEqual(removed, 3, "a removed value lives until the section ends")
            XCTAssertFalse(ledger.isFreed(1))
            XCTAssertFalse(ledger.isFreed(3))
        }
        RCUMemb.barrier()
        XCTAssertTrue(ledger.isFreed(1), "freed after the grace period")
        XCTAssertTrue(ledger.isFreed(3))
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// A reader on another thread holds a section open across a removal, a removeAll and
    /// the rebuilds they cause: nothing it can reach is freed until the section ends.
    func testReaderOnAnotherThreadHoldsOffReclamation() {
        let ledger = Ledger()
        let map = RCUDictionary<Int, Tracked, RCUMemb>(minimumCapacity: 1)
        for i in 0..<64 { map.insert(Tracked(id: i, key: i, ledger: ledger), forKey: i) }
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let violations = Violations()
        let reader = startThread(named: "dictionary-reader") {
            RCUMemb.read { section in
                guard map.withValue(forKey: 5, in: section, { $0.isAlive }) == true else {
                    return violations.record("key 5 missing before the removals")
                }
                entered.signal()
                release.wait()
                // The table this section may still be probing, and its entries, are alive.
                map.forEach(in: section) { key, value in
                    if !value.isAlive || value.key != key { violations.record("entry \(key) freed or torn") }
                }
            }
        }
        entered.wait()
        for i in 0..<60 { map.removeValue(forKey: i) }   // shrinks: a rebuild retires the table
        map.removeAll()                                   // retires the last table with its entries
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(ledger.freedCount, 0, "nothing freed while a section that can see it is open")
        release.signal()
        reader.wait()
        XCTAssertEqual(violations.all, [])
        RCUMemb.barrier()
        XCTAssertEqual(ledger.freedCount, 64)
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// Entries go through the flavor's retire path: past the backlog's high-water mark a
    /// writer is throttled (the ``RCUBacklogPolicy`` applies), and is not inside a read section.
    /// (String values: a pair that owns nothing, Int and Int, has nothing to retire but its table.)
    func testRemovalsAreThrottledByTheBacklogPolicy() {
        let saved = RCUBulletproof.backlogPolicy
        defer { RCUBulletproof.backlogPolicy = saved }
        RCUBulletproof.backlogPolicy = RCUBacklogPolicy(highWaterMark: 64, lowWaterMark: 16)
        let throttledBefore = RCUBulletproof.backlog.throttledRetires
        let withoutWaitingBefore = RCUBulletproof.backlog.retiresPastHighWaterWithoutWaiting
        let map = RCUDictionary<Int, String, RCUBulletproof>(minimumCapacity: 4096)
        for round in 0..<20 {
            for key in 0..<256 { map.updateValue("\(round)", forKey: key) }
        }
        XCTAssertGreaterThan(RCUBulletproof.backlog.throttledRetires, throttledBefore,
                             "replacements past the high-water mark were throttled")
        // Inside a read section a throttled retire may not wait: queued and counted instead.
        RCUBulletproof.read { _ in
            for key in 0..<1024 { map.updateValue("-1", forKey: key % 256) }
        }
        XCTAssertGreaterThan(RCUBulletproof.backlog.retiresPastHighWaterWithoutWaiting, withoutWaitingBefore)
        RCUBulletproof.barrier()
        XCTAssertEqual(map.count, 256)
    }

    func testDeinitInsideReadSectionAndInCallback() {
        let ledger = Ledger()
        var map: RCUDictionary<Int, Tracked, RCUMemb>? = RCUDictionary()
        for i in 0..<10 { map!.insert(Tracked(id: i, ledger: ledger), forKey: i) }
        RCUMemb.read { _ in map = nil }  // nothing to wait for: freed at once
        XCTAssertTrue(ledger.waitForFreed(10))

        func filledMap() -> RCUDictionary<Int, Tracked, RCUMemb> {
            let map = RCUDictionary<Int, Tracked, RCUMemb>()
            for i in 10..<20 { map.insert(Tracked(id: i, ledger: ledger), forKey: i) }
            map.removeValue(forKey: 10)   // pending when the map goes away
            return map
        }
        RCUMemb.retire(filledMap())  // the only reference is dropped on a call_rcu worker
        RCUMemb.barrier()
        XCTAssertTrue(ledger.waitForFreed(20))
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    // MARK: Misuse

    /// A key comparison that calls a mutating method of the same map would deadlock on
    /// the writer lock: the inner call is reported, naming it, and refused whole.
    func testWriterCalledFromInsideAWriterIsReportedAndRefused() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let map = RCUDictionary<ReentrantKey, Int, RCUMemb>()
        map.insert(1, forKey: ReentrantKey(value: 1))
        let inner = Locked<[String]>([])
        ReentrantKey.hook.withLock {
            $0 = {
                ReentrantKey.hook.withLock { $0 = nil }   // once
                let results = [
                    "insert \(map.insert(9, forKey: ReentrantKey(value: 9)))",
                    "update \(String(describing: map.updateValue(9, forKey: ReentrantKey(value: 1))))",
                    "remove \(String(describing: map.removeValue(forKey: ReentrantKey(value: 1))))",
                ]
                map.removeAll()
                inner.withLock { $0 = results }
            }
        }
        XCTAssertEqual(map.updateValue(2, forKey: ReentrantKey(value: 1)), 1, "the outer call completes")
        XCTAssertEqual(inner.withLock { $0 }, ["insert false", "update nil", "remove nil"])
        XCTAssertEqual(recorder.kinds, Array(repeating: .recursiveLock, count: 4))
        XCTAssertEqual(recorder.recorded.map(\.call), [
            "RCUDictionary.insert(_:forKey:)", "RCUDictionary.updateValue(_:forKey:)",
            "RCUDictionary.removeValue(forKey:)", "RCUDictionary.removeAll()",
        ])
        XCTAssertTrue(recorder.recorded.allSatisfy { $0.file.hasSuffix("RCUDictionaryTests.swift") })
        XCTAssertEqual(map.count, 1, "the refused calls changed nothing")
        XCTAssertEqual(RCUMemb.read { map.value(forKey: ReentrantKey(value: 1), in: $0) }, 2)
        XCTAssertFalse(RCUMemb.read { map.contains(ReentrantKey(value: 9), in: $0) })
    }

    // MARK: Stress

    func testStressMemb() { runStress(RCUMemb.self) }
    func testStressQSBR() { runStress(RCUQSBR.self) }
    func testStressBulletproof() { runStress(RCUBulletproof.self) }
    func testStressMemoryBarrier() { runStress(RCUMemoryBarrier.self) }

    /// Two readers look up and iterate while two writers insert, replace and remove
    /// over a key range that makes the table grow and shrink. Readers never see a
    /// freed value or a value under the wrong key, nor a value twice in one
    /// iteration, and always find the 64 keys that writers only replace, by lookup and by
    /// iteration (at least once each, with either value), whichever table they probe; every value replaced or removed is freed exactly once after
    /// `barrier()`, and the table was rebuilt under the readers.
    func runStress<Flavor: RCUFlavor>(_: Flavor.Type) {
        let ledger = Ledger()
        let ids = IDSource()
        let violations = Violations()
        let permanent = 10_000..<10_064
        let created: Int
        do {
            let map = RCUDictionary<Int, Tracked, Flavor>(minimumCapacity: 1)
            for key in permanent { map.insert(Tracked(id: ids.make(), key: key, ledger: ledger), forKey: key) }
            let stop = Flag()
            let lookups = Locked(0)
            let readers = (0..<2).map { index in
                startThread(named: "dictionary-reader-\(index)") {
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
                                let kept = Int.random(in: permanent, using: &rng)
                                let found = map.withValue(forKey: kept, in: section) { value -> Bool in
                                    if !value.isAlive || value.key != kept { violations.record("kept key \(kept) torn") }
                                    return true
                                }
                                if found == nil { violations.record("kept key \(kept) missing") }
                            }
                            if count % 16 == 0 {
                                var seen = Set<Int>()
                                var keptSeen = Set<Int>()
                                map.forEach(in: section) { key, value in
                                    if !value.isAlive { violations.record("freed value \(value.id) iterated") }
                                    if value.key != key { violations.record("iterated \(value.key) under \(key)") }
                                    if !seen.insert(value.id).inserted { violations.record("value \(value.id) iterated twice") }
                                    if permanent.contains(key) { keptSeen.insert(key) }
                                }
                                if keptSeen.count != permanent.count { violations.record("iteration saw \(keptSeen.count) kept keys") }
                            }
                        }
                        count += 1
                    }
                    lookups.withLock { $0 += count }
                }
            }
            let handedBack = Locked(0)
            let capacities = Locked(Set<Int>())
            let writers = (0..<2).map { index in
                startThread(named: "dictionary-writer-\(index)") {
                    var rng = SplitMix64(seed: 100 + UInt64(index))
                    var returned = 0
                    var seenCapacities = Set<Int>()
                    let deadline = Date().addingTimeInterval(stressDuration)
                    var step = 0
                    while Date() < deadline || step < 4000 {
                        // Alternate wide and narrow key ranges: the table grows and shrinks.
                        let range = (step / 2000) % 2 == 0 ? 1024 : 64
                        let key = Int.random(in: 0..<range, using: &rng)
                        switch Int.random(in: 0..<4, using: &rng) {
                        case 0:
                            map.insert(Tracked(id: ids.make(), key: key, ledger: ledger), forKey: key)
                        case 1:
                            if let old = map.updateValue(Tracked(id: ids.make(), key: key, ledger: ledger), forKey: key) {
                                if !old.isAlive { violations.record("replaced value already freed") }
                                returned += 1
                            }
                        case 2:
                            let kept = Int.random(in: permanent, using: &rng)
                            if let old = map.updateValue(Tracked(id: ids.make(), key: kept, ledger: ledger), forKey: kept) {
                                if old.key != kept { violations.record("replaced wrong kept value") }
                                returned += 1
                            } else {
                                violations.record("kept key \(kept) was absent for a writer")
                            }
                        default:
                            if let old = map.removeValue(forKey: key) {
                                if old.key != key { violations.record("removed wrong value") }
                                returned += 1
                            }
                        }
                        seenCapacities.insert(map.capacity)
                        step += 1
                    }
                    handedBack.withLock { $0 += returned }
                    capacities.withLock { $0.formUnion(seenCapacities) }
                }
            }
            writers.forEach { $0.wait() }
            stop.set()
            readers.forEach { $0.wait() }
            XCTAssertEqual(violations.all, [])
            XCTAssertGreaterThan(lookups.withLock { $0 }, 0)
            XCTAssertGreaterThanOrEqual(capacities.withLock { $0.count }, 3, "the table was rebuilt under the readers")

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

    /// QSBR readers that stay online (``RCUQSBR/Reader``) and announce quiescent states,
    /// against a writer that is itself an online QSBR reader: its retires and rebuilds
    /// never wait for a grace period, so neither side stalls the other.
    func testOnlineQSBRReadersAndWriter() {
        let ledger = Ledger()
        let created: Int
        do {
            let map = RCUDictionary<Int, Tracked, RCUQSBR>(minimumCapacity: 1)
            let stop = Flag()
            let violations = Violations()
            let reader = startThread(named: "dictionary-qsbr-online") {
                RCUQSBR.withReader { reader in
                    var key = 0
                    while !stop.isSet {
                        reader.read { section in
                            map.withValue(forKey: key % 512, in: section) { value in
                                if !value.isAlive || value.key != key % 512 { violations.record("bad value") }
                            }
                        }
                        reader.quiescentState()
                        key += 1
                    }
                }
            }
            RCUQSBR.withReader { writer in
                for step in 0..<6000 {
                    let key = step % 512
                    if step % 3 == 2 {
                        map.removeValue(forKey: key)
                    } else {
                        map.updateValue(Tracked(id: step, key: key, ledger: ledger), forKey: key)
                    }
                    if step % 64 == 0 { writer.quiescentState() }
                }
            }
            stop.set()
            reader.wait()
            XCTAssertEqual(violations.all, [])
            RCUQSBR.barrier()
            XCTAssertEqual(ledger.freedCount, ledger.createdCount - map.count)
            created = ledger.createdCount
        }
        XCTAssertTrue(ledger.waitForFreed(created))
        XCTAssertEqual(ledger.doubleFrees, 0)
    }
}
