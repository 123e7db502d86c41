import RCU
import Synchronization

/// What `rcu-stress containers` reads and writes: a hash map of `keyCount` Int keys, or a
/// list of `keyCount` elements.
///
/// Every variant keeps an invariant the readers check on every read, so a torn or lost
/// update is counted, not just timed:
/// - maps: every key is always present (writers only replace), and its value is
///   `key + keyCount * n` for some `n` (`value % keyCount == key`);
/// - lists: a traversal sees exactly `keyCount` elements (`list_replace_rcu` swaps one
///   element for another atomically: a reader sees the old one or the new one).
protocol BenchSubject: Sendable {
    var keyCount: Int { get }
    /// A lookup of `key` (maps) or a full traversal (lists); the result is checked by
    /// ``isConsistent(_:key:)`` and otherwise only sunk.
    func read(_ key: Int) -> Int
    /// Replaces `key`'s value (maps) or the element at index `key` (lists).
    func write(_ key: Int, generation: Int)
    /// Whether `result`, returned by `read(key)`, satisfies the invariant.
    func isConsistent(_ result: Int, key: Int) -> Bool
}

/// The map variants' shared invariant and initial contents.
protocol MapSubject: BenchSubject {}

extension MapSubject {
    /// The value a writer stores for `key` in its `generation`th write (generation 0: the
    /// initial contents).
    func value(for key: Int, generation: Int) -> Int { key &+ keyCount &* generation }
    func isConsistent(_ result: Int, key: Int) -> Bool { result >= 0 && result % keyCount == key }
}

/// The list variants' result: the element count in the high half, the sum (the work a
/// reader does per element) in the low half.
protocol ListSubject: BenchSubject {}

extension ListSubject {
    static func result(count: Int, sum: Int) -> Int { count << 32 | sum & 0xFFFF_FFFF }
    func isConsistent(_ result: Int, key: Int) -> Bool { result >> 32 == keyCount }
}

struct RCUMapSubject: MapSubject {
    let map: RCUHashMap<Int, Int, RCUMemb>
    let keyCount: Int
    init(keys: Int) {
        keyCount = keys
        map = RCUHashMap(minimumCapacity: keys)   // sized like the Dictionary variants
        for key in 0..<keys { map.insert(key, forKey: key) }
    }
    func read(_ key: Int) -> Int { RCUMemb.read { map.value(forKey: key, in: $0) ?? -1 } }
    func write(_ key: Int, generation: Int) { map.updateValue(value(for: key, generation: generation), forKey: key) }
}

struct RCUDictionarySubject: MapSubject {
    let map: RCUDictionary<Int, Int, RCUMemb>
    let keyCount: Int
    init(keys: Int) {
        keyCount = keys
        map = RCUDictionary(minimumCapacity: keys)   // sized like the Dictionary variants
        for key in 0..<keys { map.insert(key, forKey: key) }
    }
    func read(_ key: Int) -> Int { RCUMemb.read { map.value(forKey: key, in: $0) ?? -1 } }
    func write(_ key: Int, generation: Int) { map.updateValue(value(for: key, generation: generation), forKey: key) }
}

/// The Dictionary every map baseline starts from.
private func initialDictionary(_ keys: Int) -> [Int: Int] {
    Dictionary(uniqueKeysWithValues: (0..<keys).map { ($0, $0) })
}

struct MutexDictionary: MapSubject {
    final class Storage: Sendable { let mutex: Mutex<[Int: Int]>; init(_ d: [Int: Int]) { mutex = Mutex(d) } }
    let storage: Storage
    let keyCount: Int
    init(keys: Int) {
        keyCount = keys
        storage = Storage(initialDictionary(keys))
    }
    func read(_ key: Int) -> Int { storage.mutex.withLock { $0[key] ?? -1 } }
    func write(_ key: Int, generation: Int) {
        let value = value(for: key, generation: generation)
        storage.mutex.withLock { $0[key] = value }
    }
}

struct RWLockedDictionary: MapSubject {
    let storage: Locked<[Int: Int], BaselineRWLock>
    let keyCount: Int
    init(keys: Int) {
        keyCount = keys
        storage = Locked(initialDictionary(keys))
    }
    func read(_ key: Int) -> Int { storage.withReadLock { $0[key] ?? -1 } }
    func write(_ key: Int, generation: Int) {
        let value = value(for: key, generation: generation)
        storage.withLock { $0[key] = value }
    }
}

/// A Dictionary nobody writes, read with no lock: the ceiling for a lookup, not a design.
struct UnsharedDictionary: MapSubject {
    let dictionary: [Int: Int]
    let keyCount: Int
    init(keys: Int) {
        keyCount = keys
        dictionary = initialDictionary(keys)
    }
    func read(_ key: Int) -> Int { dictionary[key] ?? -1 }
    func write(_ key: Int, generation: Int) {}
}

struct RWLockedArray: ListSubject {
    let storage: Locked<[Int], BaselineRWLock>
    let keyCount: Int
    init(length: Int) {
        keyCount = length
        storage = Locked(Array(0..<length))
    }
    func read(_ key: Int) -> Int { storage.withReadLock { Self.result(count: $0.count, sum: $0.reduce(0, &+)) } }
    func write(_ key: Int, generation: Int) { storage.withLock { $0[key] = generation } }
}

struct RCUListSubject: ListSubject {
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
    /// `--break-list`: replace by a removal and an append, not atomically.
    let replaceInTwoSteps: Bool
    init(length: Int, replaceInTwoSteps: Bool = false) {
        keyCount = length
        storage = Storage(length: length)
        self.replaceInTwoSteps = replaceInTwoSteps
    }
    func read(_ key: Int) -> Int {
        RCUMemb.read { section in
            var sum = 0
            var count = 0
            storage.list.forEach(in: section) { sum &+= $0; count += 1 }
            return Self.result(count: count, sum: sum)
        }
    }
    func write(_ key: Int, generation: Int) {
        storage.lock.withLock {
            if replaceInTwoSteps {
                storage.list.remove(storage.nodes[key])
                storage.nodes[key] = storage.list.append(generation)
            } else {
                storage.nodes[key] = storage.list.replace(storage.nodes[key], with: generation)
            }
        }
    }
}
