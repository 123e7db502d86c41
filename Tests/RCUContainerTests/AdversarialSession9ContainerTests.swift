import Foundation
import RCU
import XCTest

/// Session 9's container changes attacked from the public API: RCUList's elements carried
/// beside the link (every size and alignment around a word, trivial or not), and
/// RCUDictionary's tombstone rebuild (churn at its threshold, colliding keys, readers during
/// rebuilds, class values freed once).
final class AdversarialSession9ContainerTests: XCTestCase {
    // MARK: RCUList elements of odd sizes

    struct Empty: Sendable, Equatable {}
    struct Seven: Sendable, Equatable { var a: UInt8, b: UInt16, c: UInt32 }   // 8 bytes, align 4
    struct Sixteen: Sendable, Equatable { var a: Int64, b: Int64 }
    struct Seventeen: Sendable, Equatable { var a: Int64, b: Int64, c: UInt8 }
    struct ThirtyTwo: Sendable, Equatable { var a: Int64, b: Int64, c: Int64, d: Int64 }
    struct ThirtyThree: Sendable, Equatable { var a: Int64, b: Int64, c: Int64, d: Int64, e: Int8 }

    /// Appends `values`, replaces the middle one, removes the first, and checks what every
    /// traversal (forEach, firstNonNil, forEachNode, count) sees against the model.
    func roundTrip<Element: Sendable & Equatable>(_ values: [Element], replacement: Element,
                                                   file: StaticString = #filePath, line: UInt = #line) {
        let lock = RCUWriterMutex()
        let list = RCUList<Element, RCUMemb>(lock: lock)
        var nodes = lock.withLock { values.map { list.append($0) } }
        var model = values
        let middle = values.count / 2
        nodes[middle] = lock.withLock { list.replace(nodes[middle], with: replacement) }
        model[middle] = replacement
        XCTAssertTrue(lock.withLock { list.remove(nodes.removeFirst()) }, file: file, line: line)
        model.removeFirst()
        RCUMemb.read { section in
            var seen: [Element] = []
            list.forEach(in: section) { seen.append($0) }
            XCTAssertEqual(seen, model, "forEach of \(Element.self)", file: file, line: line)
            var viaNodes: [Element] = []
            list.forEachNode(in: section) { viaNodes.append($0.element); return true }
            XCTAssertEqual(viaNodes, model, "forEachNode of \(Element.self)", file: file, line: line)
            XCTAssertEqual(list.firstNonNil(in: section) { $0 == replacement ? 1 : nil }, 1, file: file, line: line)
            XCTAssertEqual(list.count(in: section), model.count, file: file, line: line)
        }
        RCUMemb.barrier()
    }

    func testElementsOfEverySizeAroundAWord() {
        roundTrip([UInt8(0), 1, 0xFF, 0x80], replacement: 0x7F)
        roundTrip([true, false, true], replacement: false)
        roundTrip([Int8(-1), Int8.min, Int8.max], replacement: 0)
        roundTrip([Int.min, Int.max, 0, -1], replacement: 0x5555_5555_5555_5555)
        roundTrip([UInt.max, 0, 1], replacement: UInt.max - 1)
        roundTrip([Empty(), Empty(), Empty()], replacement: Empty())
        roundTrip([Seven(a: 0xFF, b: 0xFFFF, c: .max), Seven(a: 1, b: 2, c: 3), Seven(a: 0, b: 0, c: 0)],
                  replacement: Seven(a: 9, b: 0xABCD, c: 0xDEAD_BEEF))
        roundTrip([(Int32(-1), Int32.min), (0, 0), (Int32.max, 7)].map { SIMD2<Int32>($0.0, $0.1) },
                  replacement: SIMD2(-7, 7))
        roundTrip([SIMD2<Float>(1.5, -0.0), SIMD2(.infinity, 3)], replacement: SIMD2(-1, -2))
        roundTrip([SIMD4<Float>(1, 2, 3, 4), SIMD4(5, 6, 7, 8), SIMD4(-1, -2, -3, -4)], replacement: SIMD4(0, 0, 0, 1))
        roundTrip([SIMD16<UInt8>(repeating: 0xA5), SIMD16(repeating: 0), SIMD16(repeating: 1)],
                  replacement: SIMD16(repeating: 0xFF))
        roundTrip([Sixteen(a: -1, b: .min), Sixteen(a: 0, b: 1), Sixteen(a: 2, b: 3)], replacement: Sixteen(a: 4, b: 5))
        roundTrip([Seventeen(a: 1, b: 2, c: 3), Seventeen(a: .max, b: .min, c: 0xFF), Seventeen(a: 0, b: 0, c: 0)],
                  replacement: Seventeen(a: 7, b: 7, c: 7))
        roundTrip([ThirtyTwo(a: 1, b: 2, c: 3, d: 4), ThirtyTwo(a: -1, b: -2, c: -3, d: -4), ThirtyTwo(a: 0, b: 0, c: 0, d: 0)],
                  replacement: ThirtyTwo(a: 9, b: 9, c: 9, d: 9))
        roundTrip([ThirtyThree(a: 1, b: 2, c: 3, d: 4, e: 5), ThirtyThree(a: 0, b: 0, c: 0, d: 0, e: -1),
                   ThirtyThree(a: .max, b: 0, c: 0, d: 0, e: 0)],
                  replacement: ThirtyThree(a: 8, b: 8, c: 8, d: 8, e: 8))
        roundTrip([Optional<Int>.none, 5, Int.min], replacement: nil)
        roundTrip([Optional<UInt32>.none, 5, .max], replacement: 0)
        roundTrip(["", "a string long enough to live on the heap, not inline", "x"], replacement: "replaced")
        roundTrip([[1, 2, 3], [], [Int](repeating: 7, count: 100)], replacement: [9])
    }

    /// A word-sized trivial element whose two halves check each other: a reader that ever read a
    /// torn, stale-after-free or half-written copy beside the link would see them disagree.
    struct Paired: Sendable, Equatable {
        var value: UInt32
        var check: UInt32
        init(_ value: UInt32) { self.value = value; check = ~value }
        var isIntact: Bool { check == ~value }
    }

    func testWordElementsReadBesideTheLinkWhileAnotherThreadReplacesAndRemoves() {
        runPairedStress(RCUMemb.self)
        runPairedStress(RCUQSBR.self)
        runPairedStress(RCUBulletproof.self)
    }

    func runPairedStress<Flavor: RCUFlavor>(_: Flavor.Type) {
        let lock = RCUWriterMutex()
        let list = RCUList<Paired, Flavor>(lock: lock)
        let stop = Flag()
        let violations = Violations()
        let traversals = Locked(0)
        let readers = (0..<2).map { index in
            startThread(named: "paired-reader-\(index)") {
                var done = 0
                while !stop.isSet || done == 0 {
                    Flavor.read { section in
                        var seen = Set<UInt32>()
                        list.forEach(in: section) { element in
                            if !element.isIntact { violations.record("torn element \(element.value)/\(element.check)") }
                            if !seen.insert(element.value).inserted { violations.record("\(element.value) seen twice") }
                        }
                    }
                    done += 1
                }
                traversals.withLock { $0 += done }
            }
        }
        var model: [RCUListNode<Paired>] = []
        var rng = SplitMix64(seed: 9)
        var next: UInt32 = 0
        let deadline = Date().addingTimeInterval(stressDuration)
        var operations = 0
        while Date() < deadline || operations < 3000 {
            lock.withLock {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0 where model.count < 48:
                    model.append(list.append(Paired(next)))
                    next &+= 1
                case 1 where !model.isEmpty:
                    let index = Int.random(in: 0..<model.count, using: &rng)
                    model[index] = list.replace(model[index], with: Paired(next))
                    next &+= 1
                case 2 where !model.isEmpty:
                    XCTAssertTrue(list.remove(model.remove(at: Int.random(in: 0..<model.count, using: &rng))))
                default:
                    break
                }
            }
            operations += 1
        }
        stop.set()
        readers.forEach { $0.wait() }
        XCTAssertEqual(violations.all, [], "\(Flavor.self)")
        XCTAssertGreaterThan(traversals.withLock { $0 }, 0)
        let contents = Flavor.read { section in
            var values: [Paired] = []
            list.forEach(in: section) { values.append($0) }
            return values
        }
        XCTAssertEqual(contents, model.map(\.element))
        Flavor.barrier()
    }

    // MARK: RCUDictionary rebuilds

    /// A key every instance of which hashes alike: every probe is one run.
    struct Colliding: Hashable, Sendable {
        let id: Int
        func hash(into hasher: inout Hasher) { hasher.combine(0) }
        static func == (a: Self, b: Self) -> Bool { a.id == b.id }
    }

    /// Removes and inserts in turn, with the map held right at the half-full mark where the
    /// tombstone rule rebuilds, while readers check that every key that never leaves is found
    /// with its value, and that class values are freed once, after the readers let go.
    func testChurnAtTheTombstoneThresholdWithReadersAndCollidingKeys() {
        churn(keys: { $0 }, stable: 32, churning: 36)                      // 8 + 8 home-slot tables
        churn(keys: { Colliding(id: $0) }, stable: 40, churning: 30)
        churn(keys: { $0 == 0 ? Int.min : ($0 == 1 ? Int.max : $0 &* 0x1E37_79B9_7F4A_7C15) }, stable: 100, churning: 160)
    }

    func churn<Key: Hashable & Sendable>(keys: @escaping @Sendable (Int) -> Key, stable: Int, churning: Int,
                                         file: StaticString = #filePath, line: UInt = #line) {
        let ledger = Ledger()
        do {
            let map = RCUDictionary<Key, Tracked, RCUMemb>()
            for id in 0..<stable { _ = map.updateValue(Tracked(id: id, ledger: ledger), forKey: keys(id)) }
            let stop = Flag()
            let violations = Violations()
            let lookups = Locked(0)
            let readers = (0..<2).map { index in
                startThread(named: "churn-reader-\(index)") {
                    var done = 0
                    while !stop.isSet || done == 0 {
                        let id = done % stable
                        RCUMemb.read { section in
                            let found = map.withValue(forKey: keys(id), in: section) { value -> Int in
                                if !value.isAlive { violations.record("freed value \(value.id) read") }
                                return value.id
                            }
                            if found != id { violations.record("stable key \(id) read as \(String(describing: found))") }
                        }
                        done += 1
                    }
                    lookups.withLock { $0 += done }
                }
            }
            // Churning keys come and go one at a time: the map stays at stable + churning / 2.
            var present = Set<Int>()
            var nextID = stable
            var rng = SplitMix64(seed: 17)
            for round in 0..<4000 {
                if present.count >= churning / 2, let victim = present.randomElement(using: &rng) {
                    present.remove(victim)
                    XCTAssertEqual(map.removeValue(forKey: keys(victim))?.id, victim, file: file, line: line)
                }
                _ = map.updateValue(Tracked(id: nextID, ledger: ledger), forKey: keys(nextID))
                present.insert(nextID)
                nextID += 1
                if round % 500 == 0 { XCTAssertEqual(map.count, stable + present.count, file: file, line: line) }
            }
            stop.set()
            readers.forEach { $0.wait() }
            XCTAssertEqual(violations.all, [], "\(Key.self)", file: file, line: line)
            XCTAssertGreaterThan(lookups.withLock { $0 }, 0)
            XCTAssertEqual(map.count, stable + present.count, file: file, line: line)
            RCUMemb.read { section in
                for id in present.union(0..<stable) {
                    XCTAssertEqual(map.withValue(forKey: keys(id), in: section) { $0.id }, id, file: file, line: line)
                }
            }
            RCUMemb.barrier()
            XCTAssertEqual(ledger.freedCount, nextID - stable - present.count, "removed values freed once", file: file, line: line)
            XCTAssertEqual(ledger.doubleFrees, 0, file: file, line: line)
        }
        RCUMemb.barrier()
        XCTAssertEqual(ledger.doubleFrees, 0, file: file, line: line)
    }
}
