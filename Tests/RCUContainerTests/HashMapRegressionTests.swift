import Foundation
import RCU
import Synchronization
import XCTest

/// liburcu's hash-table regression (`make regtest` in tests/benchmark runs
/// `runhash.sh 1`: seventeen `test_urcu_hash` configurations) on ``RCUHashMap``,
/// for every flavor.
///
/// Each configuration runs lookup threads and update threads for its duration,
/// then checks liburcu's `nr_leaked` (entries added + populated - removed =
/// entries counted) and more: a traversal finds exactly ``RCUHashMap/count``
/// entries with no key twice, every value read is alive and holds its own key,
/// lookups that cannot succeed never do and lookups that must succeed always do,
/// and, counted by the values' deinit, every value not in the table has been
/// freed after a barrier and none is left once the map is dropped.
///
/// Short by default (0.1 s each); `SWIFT_RCU_REGTEST=full` runs liburcu's 1 s and
/// thread counts (nproc / 4, at least 1, times liburcu's 2 or 4).
final class HashMapRegressionTests: XCTestCase {
    func testLiburcuHashConfigurationsMemb() { runAll(RCUMemb.self) }
    func testLiburcuHashConfigurationsQSBR() { runAll(RCUQSBR.self) }
    func testLiburcuHashConfigurationsBulletproof() { runAll(RCUBulletproof.self) }
    func testLiburcuHashConfigurationsMemoryBarrier() { runAll(RCUMemoryBarrier.self) }

    private var full: Bool { ProcessInfo.processInfo.environment["SWIFT_RCU_REGTEST"] == "full" }

    private func runAll<F: RCUFlavor>(_ flavor: F.Type) {
        let seconds = full ? 1.0 : 0.1
        let threadMultiplier = full ? max(4, ProcessInfo.processInfo.activeProcessorCount) / 4 : 1
        for configuration in HashRegressionConfiguration.runhash {
            run(configuration.scaled(by: threadMultiplier), flavor, seconds: seconds)
        }
    }

    private func run<F: RCUFlavor>(_ configuration: HashRegressionConfiguration, _: F.Type, seconds: Double) {
        let label = "\(F.name) test_urcu_hash \(configuration.arguments)"
        let live = LiveValues()
        let counts = HashRegressionCounts()
        let box = MapBox(RCUHashMap<RegressionKey, RegressionValue, F>())
        let map = box.map!
        var generator = SplitMix64(seed: UInt64.random(in: 1...UInt64.max))
        var populated = 0
        while populated < configuration.populate {
            let key = configuration.key(configuration.initialPool.pick(&generator))
            let value = RegressionValue(key: key.value, live: live)
            if configuration.uniqueness || configuration.addition == .replace {
                if map.updateValue(value, forKey: key) == nil { populated += 1 }
            } else if map.insert(value, forKey: key) {
                populated += 1
            }
        }

        let stop = Flag()
        var done: [TestThread] = []
        for index in 0..<configuration.readers {
            done.append(startThread(named: "hash-reader-\(index)") {
                let map = box.map!
                if configuration.uniqueness {
                    Self.traverse(map, configuration, counts: counts, until: stop)
                } else {
                    Self.lookUp(map, configuration, counts: counts, until: stop)
                }
            })
        }
        for index in 0..<configuration.writers {
            done.append(startThread(named: "hash-writer-\(index)") {
                Self.update(box.map!, configuration, live: live, counts: counts, until: stop)
            })
        }
        usleep(UInt32(seconds * 1_000_000))
        // Then until every thread has made an operation (at most 30 s more).
        let threads = configuration.readers + configuration.writers
        for _ in 0..<30_000 where counts.threadsThatProgressed.load(ordering: .relaxed) < threads { usleep(1000) }
        stop.set()
        done.forEach { $0.wait() }

        // liburcu: cds_lfht_count_nodes, then nr_leaked = add + populate - remove - count.
        var nodes = 0
        var duplicates = 0
        var damaged = 0
        F.read { section in
            var seen = Set<Int>()
            map.forEach(in: section) { key, value in
                nodes += 1
                if !seen.insert(key.value).inserted { duplicates += 1 }
                if !value.isAlive || value.key != key.value { damaged += 1 }
            }
        }
        let total = counts.total
        // liburcu's SUMMARY line, with the node count this test checks as well.
        print("SUMMARY \(label) \(total) nr_leaked \(populated + total.added - total.removed - map.count) nodes \(nodes)")
        XCTAssertEqual(populated + total.added - total.removed - map.count, 0, "\(label): nr_leaked \(total)")
        XCTAssertEqual(nodes, map.count, "\(label): nodes counted by traversal")
        XCTAssertEqual(duplicates, 0, "\(label): a key twice in the final table")
        XCTAssertEqual(damaged, 0, "\(label): freed or foreign values in the final table")
        XCTAssertEqual(total.duplicatesSeen, 0, "\(label): readers saw a key twice in one traversal")
        XCTAssertEqual(total.damagedSeen, 0, "\(label): readers saw a freed or foreign value")
        XCTAssertGreaterThan(total.writes, 0, "\(label): writers made progress")
        if configuration.readers > 0 { XCTAssertGreaterThan(total.reads, 0, "\(label): readers made progress") }
        switch configuration.lookups {
        case .never: XCTAssertEqual(total.lookupHits, 0, "\(label): lookups outside the key range found something")
        case .always: XCTAssertEqual(total.lookupMisses, 0, "\(label): lookups of populated, never-updated keys failed")
        case .any: break
        }
        // Every value removed, replaced or refused has been freed once its grace period is over.
        F.barrier()
        XCTAssertEqual(live.count, nodes, "\(label): live values after a barrier vs entries in the table")
        box.map = nil
        _ = consume map
        F.barrier()
        XCTAssertTrue(live.waitForZero(), "\(label): \(live.count) values left after the map was dropped")
        XCTAssertEqual(live.created, live.destroyed, "\(label)")
    }

    /// `test_hash_rw_thr_reader`: lookups of random keys of the lookup pool.
    private static func lookUp<F: RCUFlavor>(
        _ map: RCUHashMap<RegressionKey, RegressionValue, F>, _ configuration: HashRegressionConfiguration,
        counts: HashRegressionCounts, until stop: Flag
    ) {
        var tally = HashRegressionTally()
        var generator = SplitMix64(seed: UInt64.random(in: 1...UInt64.max))
        F.withReader { reader in
            while !stop.isSet {
                let key = configuration.key(configuration.lookupPool.pick(&generator))
                let found: Bool = reader.read { section in
                    let damaged: Bool? = map.withValue(forKey: key, in: section) { value in
                        !value.isAlive || value.key != key.value
                    }
                    if damaged == true { tally.damagedSeen += 1 }
                    return damaged != nil
                }
                if found { tally.lookupHits += 1 } else { tally.lookupMisses += 1 }
                tally.reads += 1
                if tally.reads == 1 { counts.noteFirstOperation() }
                if tally.reads & 1023 == 0 { F.quiescentStateIfQSBR() }
            }
        }
        counts.add(tally)
    }

    /// `test_hash_unique_thr_reader`: whole-table traversals that must never see a key twice.
    private static func traverse<F: RCUFlavor>(
        _ map: RCUHashMap<RegressionKey, RegressionValue, F>, _ configuration: HashRegressionConfiguration,
        counts: HashRegressionCounts, until stop: Flag
    ) {
        var tally = HashRegressionTally()
        var seen = Set<Int>()
        F.withReader { reader in
            while !stop.isSet {
                seen.removeAll(keepingCapacity: true)
                reader.read { section in
                    map.forEach(in: section) { key, value in
                        if !seen.insert(key.value).inserted { tally.duplicatesSeen += 1 }
                        if !value.isAlive || value.key != key.value { tally.damagedSeen += 1 }
                    }
                }
                tally.reads += 1
                if tally.reads == 1 { counts.noteFirstOperation() }
                F.quiescentStateIfQSBR()
            }
        }
        counts.add(tally)
    }

    /// `test_hash_rw_thr_writer` and `test_hash_unique_thr_writer`.
    private static func update<F: RCUFlavor>(
        _ map: RCUHashMap<RegressionKey, RegressionValue, F>, _ configuration: HashRegressionConfiguration,
        live: LiveValues, counts: HashRegressionCounts, until stop: Flag
    ) {
        var tally = HashRegressionTally()
        var generator = SplitMix64(seed: UInt64.random(in: 1...UInt64.max))
        while !stop.isSet {
            let adds = configuration.uniqueness || configuration.addOnly || generator.next() & 1 == 1
            let key = configuration.key(configuration.writePool.pick(&generator))
            if adds {
                let value = RegressionValue(key: key.value, live: live)
                let replaces = configuration.uniqueness ? generator.next() & 1 == 1 : configuration.addition == .replace
                if replaces {
                    if map.updateValue(value, forKey: key) == nil { tally.added += 1 } else { tally.existing += 1 }
                } else if map.insert(value, forKey: key) {
                    tally.added += 1
                } else {
                    tally.existing += 1
                }
            } else if map.removeValue(forKey: key) != nil {
                tally.removed += 1
            } else {
                tally.missing += 1
            }
            tally.writes += 1
            if tally.writes == 1 { counts.noteFirstOperation() }
        }
        counts.add(tally)
    }
}

/// One `test_urcu_hash` configuration of liburcu's runhash.sh.
struct HashRegressionConfiguration: Sendable {
    /// How adds are made: liburcu's default `cds_lfht_add` (duplicates allowed) has no
    /// counterpart in a map, whose keys are unique; it runs as ``RCUHashMap/insert(_:forKey:)``,
    /// the same call as add-unique (`-u`). Replace (`-s`) is ``RCUHashMap/updateValue(_:forKey:)``.
    enum Addition: Sendable { case add, unique, replace }
    enum Lookups: Sendable { case any, never, always }

    /// A key range: `offset ..< offset + size` (liburcu's `-R/-S/-T` offsets, `-M/-N/-O` sizes).
    struct Pool: Sendable {
        var offset = 0
        var size = 1_000_000
        func pick(_ generator: inout SplitMix64) -> Int { offset + Int(generator.next() % UInt64(size)) }
    }

    /// The arguments after `test_urcu_hash <readers> <writers> <seconds>` in runhash.sh.
    var arguments: String
    var readers = 2
    var writers = 2
    var addition = Addition.add
    var addOnly = false
    var lookupPool = Pool()
    var writePool = Pool()
    var initialPool = Pool()
    /// `-k`: keys added before the threads start.
    var populate = 0
    /// `-U`: the uniqueness test (add-unique and replace only; readers traverse).
    var uniqueness = false
    /// `-C`: keys hash to this many values (long chains); 0 for a normal hash.
    var chains = 0
    var lookups = Lookups.any

    func key(_ value: Int) -> RegressionKey { RegressionKey(value: value, chains: chains) }

    /// liburcu multiplies its thread counts by nproc / 4 (at least 1).
    func scaled(by multiplier: Int) -> Self {
        var copy = self
        copy.readers *= multiplier
        copy.writers *= multiplier
        return copy
    }

    static func small(_ size: Int) -> Pool { Pool(offset: 0, size: size) }

    /// runhash.sh, in order (THREAD_MUL = 1).
    static let runhash: [HashRegressionConfiguration] = {
        let one = small(1)
        let ten = small(10)
        let huge = small(100_000_000)
        var all: [HashRegressionConfiguration] = [
            .init(arguments: "0 4 -A -s -M 1 -N 1 -O 1", readers: 0, writers: 4, addition: .replace,
                  lookupPool: one, writePool: one, initialPool: one),
            .init(arguments: "0 4 -A -u -M 1 -N 1 -O 1", readers: 0, writers: 4, addition: .unique,
                  lookupPool: one, writePool: one, initialPool: one),
            .init(arguments: "2 2 -A -s -M 1 -N 1 -O 1", addition: .replace, lookupPool: one, writePool: one, initialPool: one),
            .init(arguments: "2 2 -A -M 1 -N 1 -O 1", lookupPool: one, writePool: one, initialPool: one),
            .init(arguments: "2 2 -A"),
            .init(arguments: "2 2 -A -s", addition: .replace),
            .init(arguments: "2 2 -A -u", addition: .unique),
        ]
        // -B order|chunk|mmap: rculfhash's memory backends, not chosen by RCUHashMap (the default
        // backend runs three times, as liburcu's three runs).
        for backend in ["order", "chunk", "mmap"] {
            all.append(.init(arguments: "2 2 -A -m 1 -n 1048576 -i -M 100000000 -N 100000000 -O 100000000 -B \(backend)",
                             addOnly: true, lookupPool: huge, writePool: huge, initialPool: huge))
        }
        all += [
            .init(arguments: "2 2 -A -R 1000000", lookupPool: Pool(offset: 1_000_000, size: 1_000_000), lookups: .never),
            .init(arguments: "2 2 -A -M 10 -N 10 -O 10", lookupPool: ten, writePool: ten, initialPool: ten),
            .init(arguments: "2 2 -A -M 10 -N 10 -O 10 -u", addition: .unique, lookupPool: ten, writePool: ten, initialPool: ten),
            .init(arguments: "2 2 -A -M 10 -N 10 -O 10 -s", addition: .replace, lookupPool: ten, writePool: ten, initialPool: ten),
            .init(arguments: "2 2 -A -M 10 -N 10 -O 10 -R 0 -T 0 -S 10 -k 10 -s", addition: .replace,
                  lookupPool: ten, writePool: Pool(offset: 10, size: 10), initialPool: ten, populate: 10, lookups: .always),
            .init(arguments: "2 2 -A -U", uniqueness: true),
            .init(arguments: "2 2 -A -U -C 4", uniqueness: true, chains: 4),
        ]
        return all
    }()
}

/// A test key whose hash can be forced onto a few values (liburcu's `-C`: long hash chains).
struct RegressionKey: Hashable, Sendable {
    let value: Int
    let chains: Int
    func hash(into hasher: inout Hasher) { hasher.combine(chains == 0 ? value : value % chains) }
    static func == (lhs: Self, rhs: Self) -> Bool { lhs.value == rhs.value }
}

/// A map value that counts itself alive and poisons itself when freed.
final class RegressionValue: Sendable {
    let key: Int
    let live: LiveValues
    private let magic = Atomic<Int>(0x5EED)

    init(key: Int, live: LiveValues) {
        self.key = key
        self.live = live
        live.created(1)
    }

    deinit {
        magic.store(0xDEAD, ordering: .relaxed)
        live.destroyed(1)
    }

    var isAlive: Bool { magic.load(ordering: .relaxed) == 0x5EED }
}

/// Creations and deinits of test values (the leak check).
final class LiveValues: Sendable {
    private let made = Atomic<Int>(0)
    private let freed = Atomic<Int>(0)
    func created(_ count: Int) { made.add(count, ordering: .relaxed) }
    func destroyed(_ count: Int) { freed.add(count, ordering: .relaxed) }
    var created: Int { made.load(ordering: .acquiring) }
    var destroyed: Int { freed.load(ordering: .acquiring) }
    var count: Int { created - destroyed }

    /// Waits (up to 10 s) for every value to be freed.
    func waitForZero() -> Bool {
        for _ in 0..<10_000 where count != 0 { usleep(1000) }
        return count == 0
    }
}

/// Holds the map so that the threads' closures do not: dropping it here frees it.
final class MapBox<Map: AnyObject>: @unchecked Sendable {
    var map: Map?
    init(_ map: Map) { self.map = map }
}

/// One thread's counts (liburcu's per-thread `nr_add`, `nr_addexist`, `nr_del`, ...).
struct HashRegressionTally: Sendable, CustomStringConvertible {
    var reads = 0, writes = 0, added = 0, existing = 0, removed = 0, missing = 0
    var lookupHits = 0, lookupMisses = 0, duplicatesSeen = 0, damagedSeen = 0

    mutating func add(_ other: Self) {
        reads += other.reads; writes += other.writes; added += other.added; existing += other.existing
        removed += other.removed; missing += other.missing; lookupHits += other.lookupHits
        lookupMisses += other.lookupMisses; duplicatesSeen += other.duplicatesSeen; damagedSeen += other.damagedSeen
    }

    var description: String {
        "reads \(reads) writes \(writes) add \(added) add_exist \(existing) remove \(removed) "
            + "remove_noent \(missing) lookup_ok \(lookupHits) lookup_fail \(lookupMisses)"
    }
}

/// The threads' counts, summed.
final class HashRegressionCounts: Sendable {
    private let sum = Locked(HashRegressionTally())
    /// Threads that finished their first operation (each adds 1 once): the run lasts until
    /// all have, so that a thread the loaded machine did not schedule in time cannot fail
    /// the progress checks.
    let threadsThatProgressed = Atomic<Int>(0)
    func noteFirstOperation() { threadsThatProgressed.add(1, ordering: .relaxed) }
    func add(_ tally: HashRegressionTally) { sum.withLock { $0.add(tally) } }
    var total: HashRegressionTally { sum.withLock { $0 } }
}
