public import CURCUCDS
import Synchronization

/// A key-value map readers query inside read sections, without locks, while
/// any number of writers update it concurrently: liburcu-cds's lock-free,
/// automatically resizing RCU hash table (`rculfhash`) holding Swift keys and
/// values.
///
/// Lookups never block and never see a freed value: a removed or replaced
/// entry is released a grace period later (liburcu's `call_rcu`). Writers need
/// no lock: insertions, replacements and removals are lock-free and linearisable
/// per key. The table grows and shrinks in the background (`CDS_LFHT_AUTO_RESIZE`).
///
/// ```swift
/// let routes = RCUHashMap<String, Route, RCUMemb>()
/// routes.updateValue(route, forKey: "10.0.0.0/8")
/// let hop = RCUMemb.read { section in routes.value(forKey: "10.0.0.0/8", in: section)?.nextHop }
/// ```
///
/// Hashing: a key's hash is what `Dictionary` uses, SipHash-1-3 over the
/// key's `hash(into:)`, keyed with Swift's per-process random seed and a
/// random seed of this map's own: stable for the map's lifetime, different
/// between maps and processes, and resistant to crafted collisions. SipHash's
/// output spreads the bit-reversed order rculfhash sorts by evenly even for
/// keys with a weak custom `hash(into:)`.
///
/// - Note: While writers run, ``count`` and iteration are snapshots: an entry
///   added or removed concurrently may or may not be counted or visited.
/// - Note: `fork()`: a child of a process with maps gets its own resize worker
///   (the package installs liburcu's fork hooks for the map's flavor when the
///   first map is created) and can use and drop the maps it inherited. When the
///   parent had other registered reader threads the child cannot: dropping a
///   map there is reported as ``RCUMisuse/Kind/gracePeriodAfterUnsafeFork`` (in
///   every build) and the map's memory is leaked instead of the deinit hanging.
public final class RCUHashMap<Key: Hashable & Sendable, Value: Sendable, Flavor: RCUFlavor> {
    /// The liburcu-cds table (`struct cds_lfht *`).
    @usableFromInline
    let table: OpaquePointer

    /// Entries added minus entries removed.
    private let entryCount = Atomic<Int>(0)

    /// This map's hash seed, so that two maps do not share a collision pattern.
    @usableFromInline
    let hashSeed = Int.random(in: .min ... .max)

    /// Creates an empty map.
    /// - Parameter minimumCapacity: The initial number of buckets, rounded up to a
    ///   power of two and clamped to 1...2^30; also liburcu's minimum bucket
    ///   allocation. The table then grows and shrinks with its contents, but lazily:
    ///   liburcu lets large tables reach about 8 entries per bucket before it
    ///   grows them, so a map whose size is known is faster created with it
    ///   (`rcu-stress containers` compares the two).
    public init(minimumCapacity: Int = 64) {
        let buckets = UInt(min(max(1, minimumCapacity), 1 << 30)).roundedUpToPowerOfTwo
        RCUContainerSupport.ensureForkHooks(Flavor.self)
        guard let table = curcu_lfht_new(buckets, RCUContainerSupport.flavorStruct(Flavor.self)) else {
            fatalError("cds_lfht_new failed")
        }
        self.table = table
    }

    deinit {
        guard RCUContainerSupport.staleReadersAfterFork == 0 else {
            // A child of fork() whose parent had other registered readers: liburcu's fork
            // hooks did not finish here, so the resize worker cds_lfht_destroy waits for does
            // not exist. Refuse the teardown (the table and its entries are leaked) rather than hang.
            RCUMisuse.report(.gracePeriodAfterUnsafeFork, call: "RCUHashMap.deinit", flavor: Flavor.name,
                             fileID: #fileID, line: #line)
            return
        }
        // No reader or writer can be using the map any more; liburcu's resize
        // worker may be, which cds_lfht_destroy waits for. It must not run in a
        // read section or on a call_rcu worker, so from there a new thread does it.
        // An online QSBR thread outside a section destroys it offline (whereGracePeriodsMayElapse).
        let table = RCUUncheckedSendable(value: table)
        if RCUThreadState.isInAnyReadSection || RCUThreadState.isInAnyCallback {
            RCUContainerSupport.runOnNewThread { RCUHashMapSupport.destroy(table.value, Flavor.self) }
        } else {
            RCUHashMapSupport.destroy(table.value, Flavor.self)
        }
    }

    @usableFromInline
    typealias Entry = RCUHashMapEntry<Key, Value>

    /// The table hash of `key`.
    @inlinable
    func hash(_ key: Key) -> UInt {
        UInt(bitPattern: key._rawHashValue(seed: hashSeed))
    }

    /// The entry holding `key`, found inside a read section.
    ///
    /// rculfhash finds the entries with the key's hash; the keys are compared
    /// here, inlined and specialised in the caller (rculfhash's C match
    /// callback would compare through a generic, unspecialised witness).
    @inlinable
    func lookup(_ key: Key) -> UnsafeMutablePointer<curcu_lfht_entry>? {
        var iterator = cds_lfht_iter()
        var candidate = curcu_lfht_lookup_hash(table, hash(key), &iterator)
        while let entry = candidate {
            if Entry.of(entry).pointee.key == key { return entry }
            candidate = curcu_lfht_next_same_hash(table, &iterator)
        }
        return nil
    }

    // MARK: Readers

    /// Calls `body` with the value stored for `key`, borrowed from the entry.
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
    /// - Complexity: O(1) expected: a hash, a bucket walk, no lock, no write to shared memory.
    @inlinable
    public func withValue<Result>(
        forKey key: Key, in section: borrowing RCUReadSection<Flavor>,
        _ body: (Value) throws -> Result
    ) rethrows -> Result? {
        guard let entry = lookup(key) else { return nil }
        return try body(Entry.of(entry).pointee.value)
    }

    /// The value stored for `key`, or `nil`.
    /// - Complexity: O(1) expected.
    @inlinable
    public func value(
        forKey key: Key, in section: borrowing RCUReadSection<Flavor>,
    ) -> Value? {
        withValue(forKey: key, in: section) { $0 }
    }

    /// Whether the map holds `key`.
    /// - Complexity: O(1) expected.
    @inlinable
    public func contains(_ key: Key, in section: borrowing RCUReadSection<Flavor>) -> Bool {
        withValue(forKey: key, in: section) { _ in true } ?? false
    }

    /// Calls `body` with every key and value, in table order (unspecified).
    ///
    /// Entries present for the whole traversal are visited exactly once;
    /// entries added, removed or replaced meanwhile at most once each.
    /// - Complexity: O(*n* + buckets).
    public func forEach(
        in section: borrowing RCUReadSection<Flavor>,
        _ body: (Key, Value) throws -> Void
    ) rethrows {
        var iterator = cds_lfht_iter()
        var entry = curcu_lfht_first(table, &iterator)
        while let current = entry {
            let stored = Entry.of(current)
            try body(stored.pointee.key, stored.pointee.value)
            entry = curcu_lfht_next(table, &iterator)
        }
    }

    /// The number of entries.
    /// - Complexity: O(1) (a counter kept by the writers).
    public var count: Int { entryCount.load(ordering: .relaxed) }

    /// Whether the map is empty.
    /// - Complexity: O(1).
    public var isEmpty: Bool { count == 0 }

    // MARK: Writers (lock-free; any thread, any number)

    /// Adds `value` for `key` unless the key is present (`cds_lfht_add_unique`).
    ///
    /// - Returns: Whether it was added; `false` leaves the present value in place.
    /// - Complexity: O(1) expected.
    @discardableResult
    public func insert(_ value: consuming Value, forKey key: Key) -> Bool {
        let entry = makeEntry(key: key, value: value)
        let added = Flavor.read { _ in
            withUnsafePointer(to: key) { probe in
                curcu_lfht_add_unique(table, hash(key), RCUHashMapSupport.match, probe, entry) == entry
            }
        }
        if added {
            entryCount.add(1, ordering: .relaxed)
        } else {
            RCUHashMapSupport.freeEntryNow(entry)  // never published
        }
        return added
    }

    /// Stores `value` for `key`, replacing any present value atomically for
    /// readers (`cds_lfht_add_replace`): each lookup sees the old value or the
    /// new one. The replaced entry is released after a grace period.
    ///
    /// - Returns: The replaced value, or `nil` when the key was absent.
    /// - Complexity: O(1) expected.
    @discardableResult
    public func updateValue(_ value: consuming Value, forKey key: Key) -> Value? {
        let entry = makeEntry(key: key, value: value)
        defer { Flavor.throttleAfterReadSection(call: "RCUHashMap.updateValue(_:forKey:)") }
        return Flavor.read { _ in
            let replaced = withUnsafePointer(to: key) { probe in
                curcu_lfht_add_replace(table, hash(key), RCUHashMapSupport.match, probe, entry)
            }
            guard let replaced else {
                entryCount.add(1, ordering: .relaxed)
                return nil
            }
            let old = Entry.of(replaced).pointee.value
            RCUHashMapSupport.retire(replaced, Flavor.self)
            return old
        }
    }

    /// Removes `key` (`cds_lfht_del`); its entry is released after a grace period.
    ///
    /// - Returns: The removed value, or `nil` when the key was absent.
    /// - Complexity: O(1) expected.
    @discardableResult
    public func removeValue(forKey key: Key) -> Value? {
        defer { Flavor.throttleAfterReadSection(call: "RCUHashMap.removeValue(forKey:)") }
        return Flavor.read { _ in
            // A concurrent replacement can take the entry from under the delete: look again.
            while let entry = lookup(key) {
                guard curcu_lfht_del(table, entry) else { continue }
                entryCount.add(-1, ordering: .relaxed)
                let old = Entry.of(entry).pointee.value
                RCUHashMapSupport.retire(entry, Flavor.self)
                return old
            }
            return nil
        }
    }

    /// Removes every entry; each is released after a grace period.
    /// - Complexity: O(*n* + buckets).
    public func removeAll() {
        defer { Flavor.throttleAfterReadSection(call: "RCUHashMap.removeAll()") }
        Flavor.read { _ in
            var iterator = cds_lfht_iter()
            var entry = curcu_lfht_first(table, &iterator)
            while let current = entry {
                if curcu_lfht_del(table, current) {
                    entryCount.add(-1, ordering: .relaxed)
                    RCUHashMapSupport.retire(current, Flavor.self)
                }
                entry = curcu_lfht_next(table, &iterator)
            }
        }
    }

    private func makeEntry(key: Key, value: consuming Value) -> UnsafeMutablePointer<curcu_lfht_entry> {
        Entry.make(key: key, value: value)
    }
}

extension RCUHashMap: @unchecked Sendable {}

extension RCUHashMap where Value: AnyObject {
    /// ``withValue(forKey:in:_:)`` for class values: the reference stored in
    /// the entry is lent to `body` as it is, never retained, so readers do not write the
    /// shared object's reference count whatever `body` calls. (A generic value read
    /// through a pointer can be copied, a retain, where the compiler cannot prove that
    /// `body` leaves the memory alone: an element walk in the IOMMU registry did.)
    /// - Complexity: O(1) expected.
    @inlinable
    public func withValue<Result>(
        forKey key: Key, in section: borrowing RCUReadSection<Flavor>,
        _ body: (Value) throws -> Result
    ) rethrows -> Result? {
        guard let entry = lookup(key) else { return nil }
        // The entry holds the strong reference until a grace period after its removal.
        let reference = UnsafeRawPointer(entry).load(fromByteOffset: Entry.valueOffset, as: UnsafeRawPointer.self)
        return try Unmanaged<Value>.fromOpaque(reference)._withUnsafeGuaranteedRef(body)
    }
}

/// What the C callbacks, which are not generic, know of an entry's type.
@usableFromInline
protocol RCUHashMapEntryKind {
    /// Whether the key of `entry` equals the key `probe` points to.
    static func matches(_ entry: UnsafeMutablePointer<curcu_lfht_entry>, _ probe: UnsafeRawPointer) -> Bool
    /// Deinitialises and frees an entry no reader can reach any more.
    static func destroy(_ entry: UnsafeMutablePointer<curcu_lfht_entry>)
}

/// An rculfhash entry: one allocation holding liburcu's node, the entry's
/// type for the C callbacks, then the key and value inline, so that a lookup
/// reads the key from the node's own cache line rather than chasing a pointer
/// to a Swift object.
@usableFromInline
struct RCUHashMapEntry<Key: Hashable, Value>: RCUHashMapEntryKind {
    /// First, at offset 0: the C side sees the allocation as a `curcu_lfht_entry`.
    var node: curcu_lfht_entry
    /// Second, at the fixed offset `RCUHashMapSupport.kindOffset` where the
    /// non-generic C callbacks read it.
    let kind: any RCUHashMapEntryKind.Type
    @usableFromInline let key: Key
    @usableFromInline let value: Value

    /// Where `value` lies in an entry.
    @inlinable
    static var valueOffset: Int { MemoryLayout<Self>.offset(of: \.value)! }

    /// A new, unpublished entry.
    static func make(key: Key, value: consuming Value) -> UnsafeMutablePointer<curcu_lfht_entry> {
        assert(MemoryLayout<Self>.offset(of: \.node) == 0
            && MemoryLayout<Self>.offset(of: \.kind) == RCUHashMapSupport.kindOffset)
        let entry = UnsafeMutablePointer<Self>.allocate(capacity: 1)
        entry.initialize(to: Self(node: curcu_lfht_entry(), kind: Self.self, key: key, value: value))
        let node = UnsafeMutableRawPointer(entry).assumingMemoryBound(to: curcu_lfht_entry.self)
        curcu_lfht_entry_init(node)
        return node
    }

    /// The entry behind a node this map's table returned.
    @inlinable
    @inline(__always)
    static func of(_ node: UnsafeMutablePointer<curcu_lfht_entry>) -> UnsafeMutablePointer<Self> {
        UnsafeMutableRawPointer(node).assumingMemoryBound(to: Self.self)
    }

    @usableFromInline
    static func matches(_ entry: UnsafeMutablePointer<curcu_lfht_entry>, _ probe: UnsafeRawPointer) -> Bool {
        probe.assumingMemoryBound(to: Key.self).pointee == of(entry).pointee.key
    }

    @usableFromInline
    static func destroy(_ entry: UnsafeMutablePointer<curcu_lfht_entry>) {
        let typed = of(entry)
        typed.deinitialize(count: 1)
        typed.deallocate()
    }
}

@usableFromInline
enum RCUHashMapSupport {
    /// Where every entry keeps its type, whatever its key and value: right after the node.
    static let kindOffset = MemoryLayout<curcu_lfht_entry>.stride

    /// The type of the key and value stored in `entry`.
    static func kind(_ entry: UnsafeMutablePointer<curcu_lfht_entry>) -> any RCUHashMapEntryKind.Type {
        UnsafeRawPointer(entry).load(fromByteOffset: kindOffset, as: (any RCUHashMapEntryKind.Type).self)
    }

    /// rculfhash's match function: compares the probe key with a node's key.
    @usableFromInline
    static let match: curcu_lfht_match_fn = { node, probe in
        guard let entry = curcu_lfht_entry_of(node) else { return 0 }
        return kind(entry).matches(entry, probe!) ? 1 : 0
    }

    /// The call_rcu callback that releases an unlinked entry.
    static let freeEntry: RCUCallbackFunction = { context in
        RCUCallbackContext.run {
            freeEntryNow(context!.assumingMemoryBound(to: curcu_lfht_entry.self))
        }
    }

    static func freeEntryNow(_ entry: UnsafeMutablePointer<curcu_lfht_entry>) {
        kind(entry).destroy(entry)
    }

    /// Releases an entry unlinked by this thread after a grace period.
    static func retire<Flavor: RCUFlavor>(_ entry: UnsafeMutablePointer<curcu_lfht_entry>, _: Flavor.Type) {
        Flavor.throttledCall(freeEntry, UnsafeMutableRawPointer(entry), call: "RCUHashMap removal")
    }

    /// Empties and destroys a table nobody else references.
    static func destroy<Flavor: RCUFlavor>(_ table: OpaquePointer, _: Flavor.Type) {
        var unlinked: [UnsafeMutablePointer<curcu_lfht_entry>] = []
        Flavor.read { _ in
            var iterator = cds_lfht_iter()
            var entry = curcu_lfht_first(table, &iterator)
            while let current = entry {
                if curcu_lfht_del(table, current) { unlinked.append(current) }
                entry = curcu_lfht_next(table, &iterator)
            }
        }
        RCUContainerSupport.whereGracePeriodsMayElapse(Flavor.self) {
            let status = curcu_lfht_destroy(table)
            precondition(status == 0, "cds_lfht_destroy failed: \(status)")
        }
        // The resize worker, the only other party that could reach them, is done.
        unlinked.forEach(freeEntryNow)
    }
}

extension UInt {
    /// The smallest power of two >= self (self >= 1).
    fileprivate var roundedUpToPowerOfTwo: UInt {
        self <= 1 ? 1 : 1 << (UInt.bitWidth - (self - 1).leadingZeroBitCount)
    }
}
