import ArgumentParser
import Foundation
import RCU
import Synchronization

/// `rcu-stress containers`: read throughput of the RCU containers against the
/// same data behind locks, with concurrent readers and a writer, in one process.
struct ContainerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "containers",
        abstract: "RCU hash map and list read throughput against Dictionary/Array behind a Mutex and a rwlock.",
        discussion: """
            Hash map: --readers threads look up random keys among --keys Int keys while one \
            writer replaces random keys (pausing --writer-pause-us between updates), for \
            --seconds per variant: RCUHashMap<Int, Int, RCUMemb>; Dictionary behind \
            Synchronization.Mutex; Dictionary behind a pthread rwlock. List: the same threads \
            iterate a --list-length list summing its elements while the writer replaces one: \
            RCUList<Int, RCUMemb> against an Array behind a pthread rwlock. Reports total reader \
            operations per second and the ratio to the rwlock variant. A last hash map row, a \
            Dictionary read with no lock while the writer updates nothing, is not a concurrent \
            design: it is the ceiling, what a hash lookup itself costs here.
            """
    )

    @Option(help: "Seconds per variant.") var seconds = 1.0
    @Option(help: "Reader threads.") var readers = 2
    @Option(help: "Keys in the hash map.") var keys = 10_000
    @Option(help: "Elements in the list.") var listLength = 100
    @Option(help: "Microseconds the writer sleeps between updates (0: none).") var writerPauseUs: UInt32 = 20

    @Option(help: "Rounds; the variants alternate round by round and each keeps its best.") var rounds = 3

    func run() throws {
        print("readers: \(readers), writer: 1 (pause \(writerPauseUs) us), \(seconds) s per variant, best of \(rounds) rounds")
        var map = Array(repeating: (reads: 0.0, writes: 0.0), count: 4)
        var list = [(reads: 0.0, writes: 0.0), (reads: 0.0, writes: 0.0)]
        func best(_ old: (reads: Double, writes: Double), _ new: (reads: Double, writes: Double)) -> (reads: Double, writes: Double) {
            new.reads > old.reads ? new : old
        }
        for _ in 0..<rounds {
            map[0] = best(map[0], measure(RCUMapSubject(keys: keys)))
            map[1] = best(map[1], measure(MutexDictionary(keys: keys)))
            map[2] = best(map[2], measure(RWLockedDictionary(keys: keys)))
            map[3] = best(map[3], measure(UnsharedDictionary(keys: keys)))
            list[0] = best(list[0], measure(RCUListSubject(length: listLength)))
            list[1] = best(list[1], measure(RWLockedArray(length: listLength)))
        }
        print("hash map lookups/s (\(keys) Int keys; readers total; writer updates/s)")
        for (name, result) in zip(["RCUHashMap<memb>", "Dictionary+Mutex", "Dictionary+rwlock", "Dictionary, unlocked"], map) {
            print(Self.row(name, result, baseline: map[2].reads))
        }
        print("list iterations/s (\(listLength) elements, summed; readers total; writer replacements/s)")
        for (name, result) in zip(["RCUList<memb>", "Array+rwlock"], list) {
            print(Self.row(name, result, baseline: list[1].reads))
        }
    }

    static func row(_ name: String, _ result: (reads: Double, writes: Double), baseline: Double) -> String {
        let padded = name.padding(toLength: 20, withPad: " ", startingAt: 0)
        return "  \(padded) \(String(format: "%14.0f", result.reads))  writer \(String(format: "%9.0f", result.writes))  x\(String(format: "%.1f", result.reads / baseline)) vs rwlock"
    }

    /// A key in 0..<count from a generator state's high bits, by multiply and shift
    /// rather than `%`: a division would add 20-40 cycles to every lookup measured.
    @inline(__always)
    static func key(_ state: UInt64, below count: Int) -> Int {
        Int(truncatingIfNeeded: ((state >> 32) &* UInt64(truncatingIfNeeded: count)) >> 32)
    }

    /// Runs the readers and the writer for `seconds`; returns operations per second.
    func measure(_ subject: some BenchSubject) -> (reads: Double, writes: Double) {
        let done = DispatchGroup()
        let keyCount = subject.keyCount
        let pause = writerPauseUs
        let box = SharedCounters()
        for index in 0..<readers {
            done.enter()
            Thread {
                var state = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15
                var count = 0
                var sink = 0
                while !box.stop.load(ordering: .relaxed) {
                    for _ in 0..<256 {
                        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        sink &+= subject.read(Self.key(state, below: keyCount))
                    }
                    count += 256
                }
                box.reads.add(count, ordering: .relaxed)
                if sink == 42 { print("") }
                done.leave()
            }.start()
        }
        done.enter()
        Thread {
            var state: UInt64 = 7
            var count = 0
            while !box.stop.load(ordering: .relaxed) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                subject.write(Self.key(state, below: keyCount), value: count)
                count += 1
                if pause > 0 { usleep(pause) }
            }
            box.writes.add(count, ordering: .relaxed)
            done.leave()
        }.start()
        let start = ContinuousClock.now
        usleep(UInt32(seconds * 1_000_000))
        box.stop.store(true, ordering: .relaxed)
        done.wait()
        let elapsed = start.duration(to: .now)
        let secondsElapsed = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        RCUMemb.barrier()
        return (Double(box.reads.load(ordering: .relaxed)) / secondsElapsed,
                Double(box.writes.load(ordering: .relaxed)) / secondsElapsed)
    }
}

/// Counters shared by the benchmark threads.
final class SharedCounters: Sendable {
    let stop = Atomic<Bool>(false)
    let reads = Atomic<Int>(0)
    let writes = Atomic<Int>(0)
}

/// What the container benchmark reads and writes.
protocol BenchSubject: Sendable {
    var keyCount: Int { get }
    /// A lookup (map) or a full iteration (list); returns something to sink.
    func read(_ key: Int) -> Int
    func write(_ key: Int, value: Int)
}

struct RCUMapSubject: BenchSubject {
    let map: RCUHashMap<Int, Int, RCUMemb>
    let keyCount: Int
    init(keys: Int) {
        keyCount = keys
        map = RCUHashMap(minimumCapacity: keys)
        for key in 0..<keys { map.insert(key, forKey: key) }
    }
    func read(_ key: Int) -> Int { RCUMemb.read { map.value(forKey: key, in: $0) ?? 0 } }
    func write(_ key: Int, value: Int) { map.updateValue(value, forKey: key) }
}

struct MutexDictionary: BenchSubject {
    final class Storage: Sendable { let mutex: Mutex<[Int: Int]>; init(_ d: [Int: Int]) { mutex = Mutex(d) } }
    let storage: Storage
    let keyCount: Int
    init(keys: Int) {
        keyCount = keys
        storage = Storage(Dictionary(uniqueKeysWithValues: (0..<keys).map { ($0, $0) }))
    }
    func read(_ key: Int) -> Int { storage.mutex.withLock { $0[key] ?? 0 } }
    func write(_ key: Int, value: Int) { storage.mutex.withLock { $0[key] = value } }
}

/// A value behind a pthread rwlock (the `urcu` baseline's lock).
final class RWLocked<Value>: @unchecked Sendable {
    private let lock = BaselineRWLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func read<Result>(_ body: (Value) -> Result) -> Result {
        lock.readLock()
        defer { lock.readUnlock() }
        return body(value)
    }
    func write(_ body: (inout Value) -> Void) {
        lock.writeLock()
        defer { lock.writeUnlock() }
        body(&value)
    }
}

struct RWLockedDictionary: BenchSubject {
    let storage: RWLocked<[Int: Int]>
    let keyCount: Int
    init(keys: Int) {
        keyCount = keys
        storage = RWLocked(Dictionary(uniqueKeysWithValues: (0..<keys).map { ($0, $0) }))
    }
    func read(_ key: Int) -> Int { storage.read { $0[key] ?? 0 } }
    func write(_ key: Int, value: Int) { storage.write { $0[key] = value } }
}

/// A Dictionary nobody writes, read with no lock: the ceiling for a lookup, not a design.
struct UnsharedDictionary: BenchSubject {
    let dictionary: [Int: Int]
    let keyCount: Int
    init(keys: Int) {
        keyCount = keys
        dictionary = Dictionary(uniqueKeysWithValues: (0..<keys).map { ($0, $0) })
    }
    func read(_ key: Int) -> Int { dictionary[key] ?? 0 }
    func write(_ key: Int, value: Int) {}
}

struct RWLockedArray: BenchSubject {
    let storage: RWLocked<[Int]>
    let keyCount: Int
    init(length: Int) {
        keyCount = length
        storage = RWLocked(Array(0..<length))
    }
    func read(_ key: Int) -> Int { storage.read { $0.reduce(0, &+) } }
    func write(_ key: Int, value: Int) { storage.write { $0[key] = value } }
}

struct RCUListSubject: BenchSubject {
    final class Storage: @unchecked Sendable {
        let lock = RCUWriterMutex()
        let list: RCUList<Int, RCUMemb>
        var nodes: [RCUListNode<Int>] = []  // guarded by `lock`
        init(length: Int) {
            list = RCUList(lock: lock)
            lock.withLock { nodes = (0..<length).map { list.append($0) } }
        }
    }
    let storage: Storage
    let keyCount: Int
    init(length: Int) {
        keyCount = length
        storage = Storage(length: length)
    }
    func read(_ key: Int) -> Int {
        RCUMemb.read { section in
            var sum = 0
            storage.list.forEach(in: section) { sum &+= $0 }
            return sum
        }
    }
    func write(_ key: Int, value: Int) {
        storage.lock.withLock { storage.nodes[key] = storage.list.replace(storage.nodes[key], with: value) }
    }
}
