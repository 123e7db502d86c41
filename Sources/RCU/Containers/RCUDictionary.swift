public import Synchronization

/// A key-value map whose lookups cost about what a `Dictionary` lookup costs: a
/// Swift-native RCU hash table, read inside read sections without locks while
/// writers update it, whose whole lookup inlines into the caller.
///
/// Readers never block, never write shared memory, never allocate and never see a
/// freed entry: a removed or replaced entry is released a grace period later,
/// through the flavor's retire path (``RCUFlavor/backlogPolicy`` applies). Each lookup
/// sees, for its key, the value of one moment during the lookup.
///
/// Writers are serialised by a lock inside the map: any thread may call the
/// mutating methods, which never wait for a grace period. Where several writers
/// must not wait for each other, ``RCUHashMap`` (liburcu's lock-free table) lets
/// them in at once, for about 1.8 times the instructions and 2-3 times the cache
/// misses per lookup.
///
/// ```swift
/// let routes = RCUDictionary<String, Route, RCUMemb>()
/// routes.updateValue(route, forKey: "10.0.0.0/8")
/// let hop = RCUMemb.read { section in routes.value(forKey: "10.0.0.0/8", in: section)?.nextHop }
/// ```
///
/// How: open addressing with linear probing over a power-of-two number of slots,
/// each a control byte (empty, removed, or 7 bits of the key's hash) and the key and
/// value stored in the slot, as `Dictionary` stores them, so a lookup reads a dense
/// run of control bytes and then the one line that holds its key and value. A slot is
/// written once per table and never changed while readers can see it: a replacement
/// writes a new slot and marks the old one removed, so readers never see a torn
/// value. When used and removed slots fill 3/4 of the table (or 1/2, once removed slots
/// are a quarter of them: a replaced key's lookup walks past its old slots), or entries
/// fall under 1/8, the writer moves the entries into a new table, publishes it whole,
/// and retires the old one: readers in the old table finish there. Keys are hashed as ``RCUHashMap``
/// hashes them (SipHash-1-3 with Swift's per-process seed and a random seed of this
/// map's own).
///
/// - Note: While writers run, ``count`` and iteration are snapshots: an entry
///   added or removed concurrently may or may not be counted or visited.
/// - Note: A key whose `==` or `hash(into:)` calls a mutating method of the same map
///   would deadlock on the writer lock: the inner call is reported as
///   ``RCUMisuse/Kind/recursiveLock`` and refused. Two maps whose keys' `==` write each
///   other from two threads deadlock like any two locks taken in opposite orders; the
///   writer lock is not Lockdep-checked, so that is not reported.
/// - Note: A removed or replaced value is released on a call_rcu worker thread, so its
///   `deinit` runs there, as for every container and ``RCUPointer``: a value whose
///   `deinit` touches state confined to one thread must not be stored in the map.
/// - Note: `fork()`: the map has no thread of its own and its teardown waits for
///   nothing, so a child can use and drop the maps it inherited, unless another thread
///   of the parent was inside one of their mutating methods at the fork (the child
///   would inherit that writer lock held).
public final class RCUDictionary<Key: Hashable & Sendable, Value: Sendable, Flavor: RCUFlavor> {
    @usableFromInline
    typealias Pair = RCUDictionaryPair<Key, Value>

    /// The published table (the address of its `RCUDictionaryTable.base`): readers load
    /// it once per lookup. A word rather than a pointer: never nil, so never checked.
    @usableFromInline
    let current: Atomic<UInt>

    /// This map's hash seed, so that two maps do not share a collision pattern.
    @usableFromInline
    let hashSeed = Int.random(in: .min ... .max)

    /// Serialises the writers.
    private let writerLock = RCUWriterMutex()

    /// Live slots in the current table, written by writers under the lock.
    private let entryCount = Atomic<Int>(0)

    /// Live slots plus tombstones in the current table (guarded by `writerLock`).
    private var usedSlots = 0

    /// The table never shrinks below this many home slots.
    private let minimumSlotCount: Int

    /// The current table's home slots, kept beside it for ``capacity``: outside a read
    /// section the table itself may be freed under the caller.
    private let currentHomeSlotCount: Atomic<Int>

    /// Creates an empty map.
    /// - Parameter minimumCapacity: How many entries the map holds without
    ///   rebuilding its table, as for `Dictionary(minimumCapacity:)`; the table never
    ///   shrinks below it. A map whose size is known is best created with it.
    public init(minimumCapacity: Int = 0) {
        minimumSlotCount = Self.slotCount(holding: min(max(0, minimumCapacity), 1 << 40))
        current = Atomic(Self.makeTable(homeSlots: minimumSlotCount).word)
        currentHomeSlotCount = Atomic(minimumSlotCount)
    }

    deinit {
        // No reader or writer can reach the map any more. The current table owns its live
        // pairs; tables and pairs retired earlier are their callbacks' to free.
        RCUDictionaryTable(word: current.load(ordering: .relaxed)).free()
    }

    /// The table hash of `key`.
    @inlinable
    @inline(__always)
    func hash(_ key: Key) -> Int {
        key._rawHashValue(seed: hashSeed)
    }

    /// The pair holding `key`, found inside a read section.
    @inlinable
    @inline(__always)
    func pair(forKey key: Key) -> UnsafeMutablePointer<Pair>? {
        let hash = hash(key)
        let table = RCUDictionaryTable(word: current.load(ordering: .acquiring))
        let controls = table.controls
        let pairs = table.pairs(Pair.self)
        let control = RCUDictionaryTable.control(hash)
        var index = hash & table.mask
        while true {   // the sentinel, always empty, ends the probe
            let found = controls[index].load(ordering: .acquiring)
            if found == control {
                if pairs[index].key == key { return pairs + index }
            } else if found == RCUDictionaryTable.empty {
                return nil
            }
            index &+= 1
        }
    }

    // MARK: Readers

    /// Calls `body` with the value stored for `key`, borrowed from its slot.
    ///
    /// `body` gets a non-optional value, as ``RCUPointer/withValue(in:_:)`` does:
    /// binding an optional class reference with `if let` would retain and
    /// release a value that every reader shares. Class values go through the
    /// `Value: AnyObject` overload, which never retains them.
    /// - Parameters:
    ///   - key: The key to look up.
    ///   - section: The read section of this lookup.
    ///   - body: Gets the value; it is valid until the section ends. Not called without one.
    /// - Returns: What `body` returns, or `nil` when the map has no value for `key`.
    /// - Complexity: O(1) expected: a hash, a probe of a few adjacent control bytes and
    ///   one key comparison; no lock, no write to shared memory, no allocation.
    @inlinable
    @inline(__always)
    public func withValue<Result>(
        forKey key: Key, in section: borrowing RCUReadSection<Flavor>,
        _ body: (Value) throws -> Result
    ) rethrows -> Result? {
        guard let pair = pair(forKey: key) else { return nil }
        return try body(pair.pointee.value)
    }

    /// The value stored for `key`, or `nil`.
    /// - Complexity: O(1) expected.
    @inlinable
    @inline(__always)
    public func value(forKey key: Key, in section: borrowing RCUReadSection<Flavor>) -> Value? {
        guard let pair = pair(forKey: key) else { return nil }
        return pair.pointee.value
    }

    /// Whether the map holds `key`.
    /// - Complexity: O(1) expected.
    @inlinable
    @inline(__always)
    public func contains(_ key: Key, in section: borrowing RCUReadSection<Flavor>) -> Bool {
        pair(forKey: key) != nil
    }

    /// Calls `body` with every key and value, in table order (unspecified).
    ///
    /// Entries present for the whole traversal are visited exactly once; entries
    /// added, removed or replaced meanwhile at most once each. A key present for the
    /// whole traversal is visited at least once, even when it is replaced meanwhile:
    /// with its old value, its new one, or both.
    /// - Complexity: O(slots): at most about 8 per entry, or per `minimumCapacity`.
    public func forEach(
        in section: borrowing RCUReadSection<Flavor>,
        _ body: (Key, Value) throws -> Void
    ) rethrows {
        let table = RCUDictionaryTable(word: current.load(ordering: .acquiring))
        let pairs = table.pairs(Pair.self)
        for index in 0..<table.sentinel where RCUDictionaryTable.isLive(table.controls[index].load(ordering: .acquiring)) {
            try body(pairs[index].key, pairs[index].value)
        }
    }

    /// The number of entries.
    /// - Complexity: O(1) (a counter kept by the writers).
    public var count: Int { entryCount.load(ordering: .relaxed) }

    /// Whether the map is empty.
    /// - Complexity: O(1).
    public var isEmpty: Bool { count == 0 }

    /// How many entries the current table holds, live or removed, before a writer
    /// rebuilds it: 3/4 of its home slots. Removals and replacements
    /// use slots up too (a slot is not reused until the rebuild), and a table past half
    /// used whose removed slots are a quarter of its used ones is rebuilt sooner. Grows as entries are
    /// added and shrinks, not below `minimumCapacity`, as they are removed.
    /// - Complexity: O(1).
    public var capacity: Int { currentHomeSlotCount.load(ordering: .relaxed) / 4 * 3 }

    // MARK: Writers (any thread; serialised by the map's lock; never wait for a grace period)

    /// Adds `value` for `key` unless the key is present.
    ///
    /// - Parameters:
    ///   - value: The value to add.
    ///   - key: Its key.
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Returns: Whether it was added; `false` leaves the present value in place
    ///   (and is what a refused recursive call returns).
    /// - Complexity: O(1) amortised: a table rebuild, O(*n*), happens once per O(*n*) updates.
    @discardableResult
    public func insert(
        _ value: consuming Value, forKey key: Key, fileID: StaticString = #fileID, line: UInt = #line
    ) -> Bool {
        let hash = hash(key)
        let value = value   // the closure below captures a copyable binding
        var retiredTables: [RCUDictionaryTable] = []
        let added = withWriterLock("insert(_:forKey:)", fileID, line) { () -> Bool in
            let place = placeForNewSlot(key, hash: hash, retiring: &retiredTables)
            guard place.match == nil else { return false }
            publish(Pair(key: key, value: value), hash: hash, at: place.empty, in: place.table)
            entryCount.add(1, ordering: .relaxed)
            return true
        }
        retiredTables.forEach(retire)
        return added ?? false
    }

    /// Stores `value` for `key`, replacing any present value atomically for readers:
    /// each lookup sees the old value or the new one. The replaced pair is released
    /// after a grace period.
    ///
    /// - Parameters:
    ///   - value: The new value.
    ///   - key: Its key.
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Returns: The replaced value, or `nil` when the key was absent (or the call was refused).
    /// - Complexity: O(1) amortised.
    @discardableResult
    public func updateValue(
        _ value: consuming Value, forKey key: Key, fileID: StaticString = #fileID, line: UInt = #line
    ) -> Value? {
        let hash = hash(key)
        let value = value   // the closure below captures a copyable binding
        var retiredPair: RCUDictionaryRetiredPair<Key, Value>?
        var retiredTables: [RCUDictionaryTable] = []
        let outcome = withWriterLock("updateValue(_:forKey:)", fileID, line) { () -> Value? in
            let place = placeForNewSlot(key, hash: hash, retiring: &retiredTables)
            // The new pair goes to the empty slot that ends the key's probe, after the old
            // one: a lookup or an iteration that finds the old slot removed meets the new.
            publish(Pair(key: key, value: value), hash: hash, at: place.empty, in: place.table)
            guard let index = place.match else {
                entryCount.add(1, ordering: .relaxed)
                return nil
            }
            let old = unpublish(index, in: place.table)
            retiredPair = old.box
            return old.value
        }
        retiredPair.map(retire)
        retiredTables.forEach(retire)
        return outcome ?? nil
    }

    /// Removes `key`; its pair is released after a grace period.
    ///
    /// - Parameters:
    ///   - key: The key to remove.
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Returns: The removed value, or `nil` when the key was absent (or the call was refused).
    /// - Complexity: O(1) amortised.
    @discardableResult
    public func removeValue(forKey key: Key, fileID: StaticString = #fileID, line: UInt = #line) -> Value? {
        let hash = hash(key)
        var retiredPair: RCUDictionaryRetiredPair<Key, Value>?
        var retiredTables: [RCUDictionaryTable] = []
        let outcome = withWriterLock("removeValue(forKey:)", fileID, line) { () -> Value? in
            let table = currentTable
            guard let index = locate(key, hash: hash, in: table).match else { return nil }
            let old = unpublish(index, in: table)
            entryCount.subtract(1, ordering: .relaxed)
            retiredPair = old.box
            // Shrink a table that entries fill less than 1/8 of, down to its minimum.
            if table.homeSlotCount > minimumSlotCount, count * 8 < table.homeSlotCount {
                rebuild(table, retiring: &retiredTables)
            }
            return old.value
        }
        retiredPair.map(retire)
        retiredTables.forEach(retire)
        return outcome ?? nil
    }

    /// Removes every entry; they are released after a grace period, with the table that
    /// held them (one retired object).
    /// - Parameters:
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Complexity: O(`minimumCapacity`) here; O(*n*) on the call_rcu worker.
    public func removeAll(fileID: StaticString = #fileID, line: UInt = #line) {
        let retiredTable = withWriterLock("removeAll()", fileID, line) { () -> RCUDictionaryTable in
            let old = currentTable
            current.store(Self.makeTable(homeSlots: minimumSlotCount).word, ordering: .releasing)
            currentHomeSlotCount.store(minimumSlotCount, ordering: .relaxed)
            entryCount.store(0, ordering: .relaxed)
            usedSlots = 0
            return old   // still owns its live pairs
        }
        retiredTable.map(retire)
    }

    // MARK: Writer internals (called with `writerLock` held)

    /// Runs `body` holding the writer lock; refuses (reports and returns `nil`) a call
    /// from the thread that holds it already.
    private func withWriterLock<Result>(
        _ call: String, _ fileID: StaticString, _ line: UInt, _ body: () -> Result
    ) -> Result? {
        if writerLock.isHeldByCurrentThread {
            RCUMisuse.report(.recursiveLock, call: "RCUDictionary.\(call)", flavor: Flavor.name, fileID: fileID, line: line)
            return nil
        }
        writerLock.lock(fileID: fileID, line: line)
        defer { writerLock.unlock(fileID: fileID, line: line) }
        return body()
    }

    private var currentTable: RCUDictionaryTable { RCUDictionaryTable(word: current.load(ordering: .relaxed)) }

    private static func makeTable(homeSlots: Int, overflow: Int = 0) -> RCUDictionaryTable {
        // A probe runs off the home slots' end about as far as a cluster is long: a few
        // slots at 3/4 load. The rebuild that a longer probe forces doubles the area.
        RCUDictionaryTable.make(homeSlots: homeSlots, overflow: max(overflow, 16 + homeSlots / 32), pairKind: Pair.self)
    }

    /// `key`'s live slot (`match`) and the empty slot that ends its probe (`empty`) in
    /// the current `table`, which has room for one more used slot there: rebuilt first
    /// when it would be too full (``needsRebuild(beforeAddingTo:)``), or when the probe
    /// would need the sentinel.
    private func placeForNewSlot(
        _ key: Key, hash: Int, retiring retired: inout [RCUDictionaryTable]
    ) -> (table: RCUDictionaryTable, match: Int?, empty: Int) {
        var table = currentTable
        if needsRebuild(beforeAddingTo: table) { table = rebuild(table, retiring: &retired) }
        while true {
            let place = locate(key, hash: hash, in: table)
            if place.empty != table.sentinel { return (table, place.match, place.empty) }
            table = rebuild(table, overflowAtLeast: table.overflow * 2, retiring: &retired)
        }
    }

    /// Whether one more used slot would make `table` too full: more than 3/4 of its home
    /// slots used, or more than 1/2 while tombstones are at least a quarter of the used
    /// slots. A replaced key's new slot is the empty one that ends its probe, so its
    /// lookups walk the whole run before it, as long as a lookup of an absent key: about
    /// 2.5 slots at 1/2 used and 8.5 at 3/4 (measured: a 10000-key map's lookup grew
    /// from 157 to 189 instructions over the replacements that filled 3/4). A table that
    /// only grows (no tombstones) still fills to 3/4, as `minimumCapacity` promises.
    private func needsRebuild(beforeAddingTo table: RCUDictionaryTable) -> Bool {
        let used = usedSlots + 1
        if used * 4 > table.homeSlotCount * 3 { return true }
        return used * 2 > table.homeSlotCount && (usedSlots - count) * 4 >= used
    }

    /// The live slot of `key` (`match`, or nil) and the empty slot that ends its probe
    /// (`empty`, possibly the sentinel).
    private func locate(_ key: Key, hash: Int, in table: RCUDictionaryTable) -> (match: Int?, empty: Int) {
        let control = RCUDictionaryTable.control(hash)
        let pairs = table.pairs(Pair.self)
        var index = hash & table.mask
        var match: Int?
        while true {
            let found = table.controls[index].load(ordering: .relaxed)
            if found == RCUDictionaryTable.empty { return (match, index) }
            if match == nil && found == control && pairs[index].key == key { match = index }
            index += 1
        }
    }

    /// Writes `pair` into the empty slot `index` and publishes it.
    private func publish(_ pair: consuming Pair, hash: Int, at index: Int, in table: RCUDictionaryTable) {
        (table.pairs(Pair.self) + index).initialize(to: pair)
        table.controls[index].store(RCUDictionaryTable.control(hash), ordering: .releasing)
        usedSlots += 1
    }

    /// Turns live slot `index` into a tombstone and moves its pair out, to be retired.
    /// Tombstones the slot at `index` and returns its value, with the box to retire, if
    /// any. Readers that found the slot before the tombstone still read its bytes, which
    /// stay in place until the table itself is freed, a grace period after it is retired.
    /// A pair that owns nothing (trivial key and value: no reference, no allocation) needs
    /// nothing more, so no box, allocation or call_rcu callback per replacement or removal;
    /// any other pair is moved into a box whose retirement keeps what it references alive
    /// for a grace period (the move leaves the bytes in place).
    private func unpublish(_ index: Int, in table: RCUDictionaryTable) -> (value: Value, box: RCUDictionaryRetiredPair<Key, Value>?) {
        table.controls[index].store(RCUDictionaryTable.tombstone, ordering: .releasing)
        let slot = table.pairs(Pair.self) + index
        if _isPOD(Pair.self) { return (slot.pointee.value, nil) }
        let box = RCUDictionaryRetiredPair(movingFrom: slot)
        return (box.pair.value, box)
    }

    /// Moves the live pairs of `old` into a new table sized for them (home slots at most
    /// half full, no tombstones, an overflow area of at least `overflowAtLeast` slots that
    /// every probe fits in) and publishes it; appends `old` to `retired`. The move is a
    /// bitwise copy: readers still probing `old` read the same bytes, and the new table,
    /// which owns the pairs now, releases none of them before a grace period after their
    /// removal.
    @discardableResult
    private func rebuild(
        _ old: RCUDictionaryTable, overflowAtLeast: Int = 0, retiring retired: inout [RCUDictionaryTable]
    ) -> RCUDictionaryTable {
        let homeSlots = max(minimumSlotCount, Self.roundedUpToPowerOfTwo(count * 2))
        let oldPairs = old.pairs(Pair.self)
        var live: [(index: Int, hash: Int)] = []
        live.reserveCapacity(count)
        for index in 0..<old.sentinel where RCUDictionaryTable.isLive(old.controls[index].load(ordering: .relaxed)) {
            live.append((index, hash(oldPairs[index].key)))
        }
        var overflow = overflowAtLeast
        var targets: [Int] = []
        targets.reserveCapacity(live.count)
        while true {
            let new = Self.makeTable(homeSlots: homeSlots, overflow: overflow)
            targets.removeAll(keepingCapacity: true)
            for (_, hash) in live {
                var index = hash & new.mask
                while new.controls[index].load(ordering: .relaxed) != RCUDictionaryTable.empty { index += 1 }
                if index == new.sentinel { break }
                new.controls[index].store(RCUDictionaryTable.control(hash), ordering: .relaxed)
                targets.append(index)
            }
            guard targets.count == live.count else {
                // A probe ran into the sentinel: nothing moved yet; again with twice the overflow.
                overflow = new.overflow * 2
                new.header.pointee.ownsLivePairs = false
                new.free()
                continue
            }
            let newPairs = new.pairs(Pair.self)
            for (slot, target) in zip(live, targets) {
                (newPairs + target).moveInitialize(from: oldPairs + slot.index, count: 1)
            }
            old.header.pointee.ownsLivePairs = false   // readers never read this field
            current.store(new.word, ordering: .releasing)
            currentHomeSlotCount.store(homeSlots, ordering: .relaxed)
            usedSlots = live.count
            retired.append(old)
            return new
        }
    }

    /// Home slots for a table that holds `entries` without a rebuild (at most 3/4 used); at least 8.
    static func slotCount(holding entries: Int) -> Int {
        max(8, roundedUpToPowerOfTwo((entries * 4 + 2) / 3))
    }

    private static func roundedUpToPowerOfTwo(_ value: Int) -> Int {
        value <= 1 ? 1 : 1 << (Int.bitWidth - (value - 1).leadingZeroBitCount)
    }

    // MARK: Reclamation (after the writer lock is released: a throttled retire may wait)

    private func retire(_ pair: RCUDictionaryRetiredPair<Key, Value>) {
        Flavor.retire(pair)
    }

    private func retire(_ table: RCUDictionaryTable) {
        Flavor.retire(RCUDictionaryRetiredTable(table))
    }
}

extension RCUDictionary: @unchecked Sendable {}

extension RCUDictionary where Value: AnyObject {
    /// ``withValue(forKey:in:_:)`` for class values: the reference stored in the slot
    /// is lent to `body` as it is, never retained, so readers do not write the shared
    /// object's reference count whatever `body` calls.
    /// - Complexity: O(1) expected.
    @inlinable
    @inline(__always)
    public func withValue<Result>(
        forKey key: Key, in section: borrowing RCUReadSection<Flavor>,
        _ body: (Value) throws -> Result
    ) rethrows -> Result? {
        guard let pair = pair(forKey: key) else { return nil }
        // The slot holds the strong reference until a grace period after its removal.
        let reference = UnsafeRawPointer(pair).load(
            fromByteOffset: MemoryLayout<Pair>.offset(of: \.value)!, as: UnsafeRawPointer.self)
        return try Unmanaged<Value>.fromOpaque(reference)._withUnsafeGuaranteedRef(body)
    }
}
