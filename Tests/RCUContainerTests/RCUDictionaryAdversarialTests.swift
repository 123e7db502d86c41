import Foundation
import RCU
import RCUTestSupport
import XCTest

/// Hostile keys: a mode switch makes every key collide, or moves every key's hash.
struct HostileKey: Hashable, Sendable {
    let id: Int
    let payload: String
    static let mode = Locked<(collide: Bool, generation: Int)>((false, 0))
    static func == (lhs: Self, rhs: Self) -> Bool { lhs.id == rhs.id && lhs.payload == rhs.payload }
    func hash(into hasher: inout Hasher) {
        let mode = Self.mode.withLock { $0 }
        if mode.collide { hasher.combine(42) } else { hasher.combine(id); hasher.combine(mode.generation) }
    }
}

protocol AdvClassBound: AnyObject, Sendable { var tag: Int { get } }
final class AdvClassBoundImpl: AdvClassBound { let tag: Int; init(tag: Int) { self.tag = tag } }

/// A large value whose fields must agree: a torn or freed read breaks the checksum.
struct BigValue: Sendable {
    var a: Int, b: Int, c: Int, d: Int, e: Int, f: Int, g: Int, h: Int
    var name: String
    var object: Tracked
    static let ids = Locked(0)
    init(_ v: Int, ledger: Ledger) {
        a = v; b = v &* 3; c = v &* 5; d = v &* 7; e = v &* 11; f = v &* 13; g = v &* 17; h = v &* 19
        name = "value-\(v)-" + String(repeating: "x", count: v % 40)
        object = Tracked(id: Self.ids.withLock { $0 += 1; return $0 }, value: v, ledger: ledger)
    }
    var isConsistent: Bool {
        b == a &* 3 && c == a &* 5 && d == a &* 7 && e == a &* 11 && f == a &* 13 && g == a &* 17 && h == a &* 19
            && name == "value-\(a)-" + String(repeating: "x", count: a % 40) && object.isAlive && object.value == a
    }
}

final class RCUDictionaryAdversarialTests: XCTestCase {
    func testClassBoundExistentialValue() {
        let map = RCUDictionary<Int, any AdvClassBound, RCUMemb>()
        map.insert(AdvClassBoundImpl(tag: 7), forKey: 1)
        let tag = RCUMemb.read { section in map.withValue(forKey: 1, in: section) { $0.tag } }
        XCTAssertEqual(tag, 7)
        let any = RCUDictionary<Int, any AnyObject & Sendable, RCUMemb>()
        let obj = AdvClassBoundImpl(tag: 9)
        any.insert(obj, forKey: 1)
        XCTAssertTrue(RCUMemb.read { section in any.withValue(forKey: 1, in: section) { $0 === obj } } ?? false)
    }

    /// Random operations with keys that collide or rehash midway, against a model.
    func testHostileKeysAgainstModel() {
        let ledger = Ledger()
        var generator = SplitMix64()
        print("testHostileKeysAgainstModel: SplitMix64 seed \(generator.state)")   // to replay a failure
        do {
            let map = RCUDictionary<HostileKey, Tracked, RCUMemb>(minimumCapacity: -5)
            var model: [Int: Int] = [:]
            var nextID = 0
            for step in 0..<6000 {
                // Switching the hash strands the entries in (as in `Dictionary`): switch on empty maps.
                if step == 2000 || step == 4000 {
                    map.removeAll(); model.removeAll()
                    HostileKey.mode.withLock { $0.collide = step == 2000 }
                }
                let k = Int.random(in: 0..<300, using: &generator)
                let key = HostileKey(id: k, payload: String(repeating: "k", count: k % 30))
                nextID += 1
                switch Int.random(in: 0..<10, using: &generator) {
                case 0..<5:
                    let old = map.updateValue(Tracked(id: nextID, value: k, ledger: ledger), forKey: key)
                    XCTAssertEqual(old?.id, model[k]); model[k] = nextID
                case 5..<7:
                    XCTAssertEqual(map.removeValue(forKey: key)?.id, model[k]); model[k] = nil
                case 7:
                    let added = map.insert(Tracked(id: nextID, value: k, ledger: ledger), forKey: key)
                    XCTAssertEqual(added, model[k] == nil); if added { model[k] = nextID }
                case 8 where step % 500 == 0:
                    map.removeAll(); model.removeAll()
                default:
                    XCTAssertEqual(RCUMemb.read { map.value(forKey: key, in: $0)?.id }, model[k])
                }
                XCTAssertEqual(map.count, model.count)
            }
            var seen: [Int: Int] = [:]
            RCUMemb.read { section in
                map.forEach(in: section) { key, value in
                    XCTAssertNil(seen[key.id]); seen[key.id] = value.id
                    XCTAssertEqual(value.value, key.id)
                }
            }
            XCTAssertEqual(seen, model)
            RCUMemb.barrier()
            XCTAssertEqual(ledger.createdCount - ledger.freedCount, model.count)
        }
        RCUMemb.barrier()
        XCTAssertEqual(ledger.freedCount, ledger.createdCount)
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// A hash that moves while entries are in: lookups miss, updates add duplicates;
    /// nothing leaks or is freed twice, and count matches iteration.
    func testHashThatChangesOverTime() {
        let ledger = Ledger()
        do {
            let map = RCUDictionary<HostileKey, Tracked, RCUMemb>()
            for round in 0..<5 {
                HostileKey.mode.withLock { $0.generation = round }
                for i in 0..<200 { map.updateValue(Tracked(id: round * 1000 + i, ledger: ledger), forKey: HostileKey(id: i, payload: "p")) }
                var visited = 0
                RCUMemb.read { s in map.forEach(in: s) { _, v in XCTAssertTrue(v.isAlive); visited += 1 } }
                XCTAssertEqual(visited, map.count)
            }
            for i in 0..<200 { map.removeValue(forKey: HostileKey(id: i, payload: "p")) }
            HostileKey.mode.withLock { $0.generation = 0 }
        }
        RCUMemb.barrier()
        XCTAssertEqual(ledger.freedCount, ledger.createdCount)
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// Readers check big values and iterate while writers replace, remove, removeAll and
    /// make tables grow and shrink; String keys.
    func testReadersRaceEveryWriterOperation() { race(RCUMemb.self) }
    func testReadersRaceEveryWriterOperationQSBR() { race(RCUQSBR.self) }

    private func race<F: RCUFlavor>(_: F.Type) {
        let ledger = Ledger()
        let violations = Violations()
        do {
            let map = RCUDictionary<String, BigValue, F>()
            let stop = Locked(false)
            var readers: [TestThread] = []
            for r in 0..<2 {
                readers.append(startThread(named: "adv-reader-\(r)") {
                    while !stop.withLock({ $0 }) {
                        for _ in 0..<50 {
                            F.read { section in
                                let k = Int.random(in: 0..<2000)
                                if let v = map.value(forKey: "key-\(k)-suffix-to-make-it-long", in: section),
                                    !v.isConsistent || v.a % 2000 != k { violations.record("torn \(k)") }
                                _ = map.withValue(forKey: "key-\(k)-suffix-to-make-it-long", in: section) { v in
                                    if !v.isConsistent { violations.record("torn borrowed \(k)") }
                                }
                                if k % 50 == 0 {
                                    map.forEach(in: section) { key, v in
                                        if !v.isConsistent || "key-\(v.a % 2000)-suffix-to-make-it-long" != key { violations.record("iter \(key)") }
                                    }
                                }
                            }
                        }
                    }
                })
            }
            for round in 0..<40 {
                let n = round % 4 == 3 ? 20 : 2000
                for i in 0..<n { map.updateValue(BigValue(i + round * 2000, ledger: ledger), forKey: "key-\(i)-suffix-to-make-it-long") }
                for i in stride(from: 0, to: n, by: 3) { map.removeValue(forKey: "key-\(i)-suffix-to-make-it-long") }
                if round % 5 == 0 { map.removeAll() }
                for i in 0..<n where i % 7 == 0 { map.insert(BigValue(i, ledger: ledger), forKey: "key-\(i)-suffix-to-make-it-long") }
                if round % 2 == 1 { for i in 0..<2000 { map.removeValue(forKey: "key-\(i)-suffix-to-make-it-long") } }
            }
            stop.withLock { $0 = true }
            readers.forEach { $0.wait() }
        }
        F.barrier()
        XCTAssertEqual(violations.all, [])
        XCTAssertTrue(ledger.waitForFreed(ledger.createdCount), "\(ledger.freedCount) of \(ledger.createdCount) freed")
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// Writers inside read sections, with a tiny high-water mark and inline reclamation:
    /// must neither hang nor free what the section can still see.
    func testWritesInsideReadSectionsPastHighWater() {
        let saved = RCUMemb.backlogPolicy
        defer { RCUMemb.backlogPolicy = saved }
        for throttle in [RCUBacklogPolicy.Throttle.reclaimInline, .waitForDrain] {
            var policy = RCUBacklogPolicy(highWaterMark: 8, lowWaterMark: 2)
            policy.throttle = throttle
            RCUMemb.backlogPolicy = policy
            let ledger = Ledger()
            let map = RCUDictionary<Int, Tracked, RCUMemb>()
            for i in 0..<100 { map.insert(Tracked(id: i, ledger: ledger), forKey: i) }
            RCUMemb.read { section in
                map.withValue(forKey: 3, in: section) { held in
                    for round in 1..<20 {
                        for i in 0..<100 { map.updateValue(Tracked(id: round * 1000 + i, ledger: ledger), forKey: i) }
                        map.removeAll()
                        for i in 0..<100 { map.insert(Tracked(id: round * 1000 + 500 + i, ledger: ledger), forKey: i) }
                    }
                    XCTAssertTrue(held.isAlive, "\(throttle): a value borrowed in the section was freed")
                }
            }
            RCUMemb.barrier()
        }
    }

    /// A key whose == reads the same map (nested section) and writes another map.
    func testEqualityCallingIntoMaps() {
        let map = RCUDictionary<ReentrantKey, Int, RCUMemb>()
        let other = RCUDictionary<Int, Int, RCUMemb>()
        let inside = Locked(false)
        for i in 0..<50 { map.insert(i, forKey: ReentrantKey(value: i)) }
        let calls = Locked(0)
        ReentrantKey.hook.withLock {
            $0 = {
                if inside.withLock({ let was = $0; $0 = true; return was }) { return }
                defer { inside.withLock { $0 = false } }
                calls.withLock { $0 += 1 }
                // A nested section reading the same map, and a write to another map.
                _ = RCUMemb.read { s in map.contains(ReentrantKey(value: 3), in: s) }
                other.updateValue(1, forKey: 1)
            }
        }
        defer { ReentrantKey.hook.withLock { $0 = nil } }
        for i in 0..<50 { XCTAssertEqual(map.updateValue(i + 1, forKey: ReentrantKey(value: i)), i) }
        XCTAssertEqual(RCUMemb.read { s in map.value(forKey: ReentrantKey(value: 10), in: s) }, 11)
        XCTAssertGreaterThan(calls.withLock { $0 }, 0)
    }

    /// Tombstones from replace cycles do not grow memory: capacity stays bounded.
    func testReplaceCyclesKeepCapacityBounded() {
        let map = RCUDictionary<Int, Int, RCUMemb>()
        for i in 0..<10 { map.insert(i, forKey: i) }
        var maxCapacity = 0
        for round in 0..<100_000 { map.updateValue(round, forKey: round % 10); maxCapacity = max(maxCapacity, map.capacity) }
        XCTAssertLessThanOrEqual(maxCapacity, 24)
        // Colliding keys, replaced forever.
        HostileKey.mode.withLock { $0.collide = true }
        defer { HostileKey.mode.withLock { $0.collide = false } }
        let colliding = RCUDictionary<HostileKey, Int, RCUMemb>()
        for i in 0..<100 { colliding.insert(i, forKey: HostileKey(id: i, payload: "")) }
        for round in 0..<20_000 { colliding.updateValue(round, forKey: HostileKey(id: round % 100, payload: "")) }
        XCTAssertLessThanOrEqual(colliding.capacity, 192 * 2)
        XCTAssertEqual(colliding.count, 100)
        RCUMemb.barrier()
    }

    /// The last reference dropped inside forEach's body and inside withValue's: the map
    /// must outlive the call; its entries are freed once, after it.
    func testMapDroppedInsideItsOwnIteration() {
        let ledger = Ledger()
        var map: RCUDictionary<Int, Tracked, RCUMemb>? = RCUDictionary()
        for i in 0..<100 { map!.insert(Tracked(id: i, ledger: ledger), forKey: i) }
        var visited = 0
        RCUMemb.read { section in
            map!.forEach(in: section) { _, value in
                map = nil
                XCTAssertTrue(value.isAlive)
                visited += 1
            }
        }
        XCTAssertEqual(visited, 100)
        XCTAssertTrue(ledger.waitForFreed(100))
        var other: RCUDictionary<Int, Tracked, RCUMemb>? = RCUDictionary()
        other!.insert(Tracked(id: 1000, ledger: ledger), forKey: 1)
        let alive = RCUMemb.read { section in
            other!.withValue(forKey: 1, in: section) { value -> Bool in other = nil; return value.isAlive }
        }
        XCTAssertEqual(alive, true)
        XCTAssertTrue(ledger.waitForFreed(101))
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    /// Zero-sized values and keys of one byte; a negative and a zero minimum capacity.
    func testDegenerateTypesAndCapacities() {
        let set = RCUDictionary<UInt8, Void, RCUMemb>(minimumCapacity: 0)
        for k in 0...255 { set.updateValue((), forKey: UInt8(k)) }
        for k in stride(from: 0, through: 255, by: 2) { set.removeValue(forKey: UInt8(k)) }
        XCTAssertEqual(set.count, 128)
        XCTAssertTrue(RCUMemb.read { set.contains(255, in: $0) })
        XCTAssertFalse(RCUMemb.read { set.contains(254, in: $0) })
        let negative = RCUDictionary<Int, Int, RCUMemb>(minimumCapacity: -1)
        XCTAssertEqual(negative.capacity, 6)
        for i in 0..<1000 { negative.insert(i, forKey: i) }
        for i in 0..<1000 { negative.removeValue(forKey: i) }
        XCTAssertEqual(negative.capacity, 6, "shrinks back to the minimum")
        RCUMemb.barrier()
    }

    /// `capacity` outside any read section while writers rebuild large tables (which
    /// malloc maps and unmaps whole): it must not read a table retired under it.
    func testCapacityReadOutsideSectionsWhileTablesAreRetired() {
        let map = RCUDictionary<Int, Int, RCUMemb>()
        let stop = Locked(false)
        let bad = Locked(0)
        let readers = (0..<2).map { index in
            startThread(named: "capacity-reader-\(index)") {
                while !stop.withLock({ $0 }) {
                    for _ in 0..<10_000 {
                        let capacity = map.capacity
                        if capacity < 6 || capacity > 1 << 20 { bad.withLock { $0 += 1 } }
                    }
                }
            }
        }
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline {
            for i in 0..<20_000 { map.insert(i, forKey: i) }
            map.removeAll()
        }
        stop.withLock { $0 = true }
        readers.forEach { $0.wait() }
        RCUMemb.barrier()
        XCTAssertEqual(bad.withLock { $0 }, 0)
    }

    /// Async tasks reading and writing.
    func testAsyncTasks() async throws {
        let map = RCUDictionary<Int, String, RCUMemb>()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    for i in 0..<2000 {
                        if t % 2 == 0 { map.updateValue("v\(i)", forKey: i % 64) } else {
                            _ = RCUMemb.read { s in map.value(forKey: i % 64, in: s) }
                            if i % 100 == 0 { map.removeValue(forKey: i % 64) }
                        }
                    }
                }
            }
        }
        try await RCUMemb.barrier()
        XCTAssertLessThanOrEqual(map.count, 64)
    }
}
