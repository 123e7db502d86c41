import Foundation
import RCU
import XCTest

/// A map whose keys and values own nothing (Int and Int) retires no pair on replacement
/// or removal: the old slot's bytes stay in its table until the table is freed, a grace
/// period after a rebuild retires it. Readers racing replacements, removals and rebuilds
/// (growing and shrinking) must still see, for every key, a value written for that key,
/// and the keys never touched must stay present.
final class RCUDictionaryTrivialPairTests: XCTestCase {
    func testReadersSeeIntactValuesWhileSlotsAreTombstonedAndTablesRebuilt() {
        runTrivialStress(RCUMemb.self)
        runTrivialStress(RCUBulletproof.self)
    }

    /// The low 16 bits of a value are its key; the rest, the writer's step.
    private static func value(_ key: Int, step: Int) -> Int { step << 16 | key }

    private func runTrivialStress<Flavor: RCUFlavor>(_: Flavor.Type) {
        let violations = Violations()
        let permanent = 10_000..<10_064
        let map = RCUDictionary<Int, Int, Flavor>(minimumCapacity: 1)
        for key in permanent { map.insert(Self.value(key, step: 0), forKey: key) }
        let stop = Flag()
        let lookups = Locked(0)
        let readers = (0..<2).map { index in
            startThread(named: "trivial-reader-\(index)") {
                var rng = SplitMix64(seed: UInt64(index) &+ 7)
                var count = 0
                while !stop.isSet {
                    Flavor.read { section in
                        for _ in 0..<64 {
                            let key = Int.random(in: 0..<1024, using: &rng)
                            if let value = map.value(forKey: key, in: section), value & 0xFFFF != key {
                                violations.record("key \(key) read \(value & 0xFFFF)'s value (step \(value >> 16))")
                            }
                            let kept = Int.random(in: permanent, using: &rng)
                            switch map.value(forKey: kept, in: section) {
                            case nil: violations.record("kept key \(kept) missing")
                            case let value? where value & 0xFFFF != kept: violations.record("kept key \(kept) torn")
                            default: break
                            }
                        }
                        map.forEach(in: section) { key, value in
                            if value & 0xFFFF != key { violations.record("iterated \(value & 0xFFFF)'s value under \(key)") }
                        }
                    }
                    count += 1
                }
                lookups.withLock { $0 += count }
            }
        }
        var rng = SplitMix64(seed: 99)
        let deadline = Date().addingTimeInterval(stressDuration)
        var step = 1
        var replaced = 0
        while Date() < deadline || step < 6000 {
            // Alternate wide and narrow key ranges: the table grows, fills with tombstones, shrinks.
            let range = (step / 2000) % 2 == 0 ? 1024 : 64
            let key = Int.random(in: 0..<range, using: &rng)
            if step % 5 == 0 {
                if let old = map.removeValue(forKey: key), old & 0xFFFF != key {
                    violations.record("removeValue(\(key)) returned \(old & 0xFFFF)'s value")
                }
            } else if let old = map.updateValue(Self.value(key, step: step), forKey: key) {
                replaced += 1
                if old & 0xFFFF != key { violations.record("updateValue(\(key)) returned \(old & 0xFFFF)'s value") }
            }
            step += 1
        }
        stop.set()
        readers.forEach { $0.wait() }
        Flavor.barrier()
        XCTAssertEqual(violations.all, [], "\(Flavor.name)")
        XCTAssertGreaterThan(replaced, 1000, "\(Flavor.name): the writer replaced values")
        XCTAssertGreaterThan(lookups.withLock { $0 }, 0, "\(Flavor.name): the readers ran")
        for key in permanent { XCTAssertEqual(Flavor.read { map.value(forKey: key, in: $0) }, Self.value(key, step: 0)) }
    }
}
