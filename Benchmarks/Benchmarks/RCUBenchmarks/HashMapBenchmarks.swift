import Benchmark
import RCU

/// "HashMap": one lookup of a random present key among 10000 Int keys, single
/// thread, no writer: `RCUHashMap` (read section, SipHash, liburcu-cds's
/// `cds_lfht_lookup`) and `RCUDictionary` (read section, SipHash, an inlined probe of
/// control bytes) against a plain `Dictionary` (SipHash and an open-addressing
/// probe, no synchronisation at all: the floor a lookup could reach).
/// Expected on the 2-core build machine: ~20 ns and ~10 ns against ~10 ns; no allocation.
func registerHashMapBenchmarks() {
    let keyCount = 10_000
    // Built once: the benchmark closure runs once per sample.
    let map = RCUHashMap<Int, Int, RCUMemb>(minimumCapacity: keyCount)
    for key in 0..<keyCount { map.insert(key, forKey: key) }
    let rcuDictionary = RCUDictionary<Int, Int, RCUMemb>(minimumCapacity: keyCount)
    for key in 0..<keyCount { rcuDictionary.insert(key, forKey: key) }
    let dictionary = Dictionary(uniqueKeysWithValues: (0..<keyCount).map { ($0, $0) })
    Benchmark("HashMap.RCUHashMap.lookup", configuration: BenchmarkDefaults.scaled(.kilo)) { benchmark in
        let keys = shuffledKeys(keyCount, count: benchmark.scaledIterations.count)
        var sum = 0
        benchmark.startMeasurement()
        for key in keys {
            sum &+= RCUMemb.read { map.value(forKey: key, in: $0) ?? 0 }
        }
        benchmark.stopMeasurement()
        blackHole(sum)
    }
    Benchmark("HashMap.RCUDictionary.lookup", configuration: BenchmarkDefaults.scaled(.kilo)) { benchmark in
        let keys = shuffledKeys(keyCount, count: benchmark.scaledIterations.count)
        var sum = 0
        benchmark.startMeasurement()
        for key in keys {
            sum &+= RCUMemb.read { rcuDictionary.value(forKey: key, in: $0) ?? 0 }
        }
        benchmark.stopMeasurement()
        blackHole(sum)
    }
    Benchmark("HashMap.Dictionary.lookup", configuration: BenchmarkDefaults.scaled(.kilo)) { benchmark in
        let keys = shuffledKeys(keyCount, count: benchmark.scaledIterations.count)
        var sum = 0
        benchmark.startMeasurement()
        for key in keys {
            sum &+= dictionary[key] ?? 0
        }
        benchmark.stopMeasurement()
        blackHole(sum)
    }
}

/// `count` keys below `keyCount` in a fixed pseudo-random order (made before the
/// measurement, so neither variant times its key generation).
private func shuffledKeys(_ keyCount: Int, count: Int) -> [Int] {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(truncatingIfNeeded: ((state >> 32) &* UInt64(keyCount)) >> 32)
    }
}
