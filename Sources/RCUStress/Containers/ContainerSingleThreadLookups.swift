import RCU

/// The single-threaded lookup comparison of `rcu-stress containers`: `RCUDictionary`
/// (each lookup in its own memb read section, as a reader without a scope writes it)
/// against a plain `Dictionary`, one thread, no writer, the same maps' contents and the
/// same random present keys, the two alternated within each round so that a shared
/// machine's drift falls on both alike.
///
/// The loops are separate functions that are never inlined, so that an instruction
/// counter (valgrind's callgrind, `--toggle-collect='*singleThreadLookups*'`) can
/// attribute each one's instructions to it.
struct ContainerSingleThreadLookups {
    let dictionary: [Int: Int]
    let rcuDictionary: RCUDictionary<Int, Int, RCUMemb>
    /// The keys looked up, in order: present keys in a fixed pseudo-random order.
    let keys: [Int]

    /// One round's time per lookup, in nanoseconds, of each variant.
    struct Round {
        var dictionary = Double.infinity
        var rcuDictionary = Double.infinity
    }

    init(keyCount: Int, lookups: Int) {
        dictionary = Dictionary(uniqueKeysWithValues: (0..<keyCount).map { ($0, $0) })
        rcuDictionary = RCUDictionary(minimumCapacity: keyCount)
        for key in 0..<keyCount { rcuDictionary.insert(key, forKey: key) }
        var random = StressRandom(seed: 0x5147)
        keys = (0..<lookups).map { _ in random.index(below: keyCount) }
        _ = RCUMemb.read { _ in 0 }   // registers the thread outside the timed loops
    }

    /// Times each variant `passes` times, alternating, and keeps each one's fastest pass.
    /// A lookup that misses a present key is a broken map: it stops the run.
    func measure(passes: Int) -> Round {
        var round = Round()
        let expected = keys.reduce(0, &+)
        for _ in 0..<passes {
            round.dictionary = min(round.dictionary, timed(expected) { singleThreadLookupsDictionary(dictionary, keys) })
            round.rcuDictionary = min(
                round.rcuDictionary, timed(expected) { singleThreadLookupsRCUDictionary(rcuDictionary, keys) })
        }
        return round
    }

    private func timed(_ expected: Int, _ loop: () -> Int) -> Double {
        let start = MonotonicClock.nanoseconds()
        let sum = loop()
        let elapsed = MonotonicClock.nanoseconds() &- start
        precondition(sum == expected, "a single-threaded lookup missed a present key (sum \(sum), expected \(expected))")
        return Double(elapsed) / Double(keys.count)
    }
}

/// `Dictionary` lookups of `keys`; returns the values' sum (each value is its key).
@inline(never)
func singleThreadLookupsDictionary(_ dictionary: [Int: Int], _ keys: [Int]) -> Int {
    var sum = 0
    for key in keys { sum &+= dictionary[key] ?? 0 }
    return sum
}

/// `RCUDictionary` lookups of `keys`, each in its own read section; returns the values' sum.
@inline(never)
func singleThreadLookupsRCUDictionary(_ map: RCUDictionary<Int, Int, RCUMemb>, _ keys: [Int]) -> Int {
    var sum = 0
    for key in keys { sum &+= RCUMemb.read { map.value(forKey: key, in: $0) ?? 0 } }
    return sum
}
