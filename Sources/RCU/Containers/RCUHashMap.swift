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
/// Hashing: a key's hash is its `hashValue` (SipHash-1-3 keyed with Swift's
/// per-process random seed, so stable within the process and resistant to
/// crafted collisions) mixed with a second per-process random seed and a
/// 64-bit finaliser, so that the bit-reversed order rculfhash sorts by is
/// spread evenly even for keys with a weak custom `hash(into:)`.
///
/// - Note: While writers run, ``count`` and iteration are snapshots: an entry
///   added or removed concurrently may or may not be counted or visited.
public final class RCUHashMap<Key: Hashable, Value, Flavor: RCUFlavor> {
    /// The liburcu-cds table (`struct cds_lfht *`).
    @usableFromInline
    let table: OpaquePointer

    /// Entries added minus entries removed.
    private let entryCount = Atomic<Int>(0)

    /// Creates an empty map.
    /// - Parameter minimumCapacity: The initial number of buckets, rounded up to a
    ///   power of two and clamped to 1...2^30; also liburcu's minimum bucket
    ///   allocation. The table then grows and shrinks with its contents.
    public init(minimumCapacity: Int = 64) {
        let buckets = UInt(min(max(1, minimumCapacity), 1 << 30)).roundedUpToPowerOfTwo
        guard let table = curcu_lfht_new(buckets, RCUContainerSupport.flavorStruct(Flavor.self)) else {
            fatalError("cds_lfht_new failed")
        }
        self.table = table
    }

    deinit {
        // No reader or writer can be using the map any more; liburcu's resize
        // worker may be, which cds_lfht_destroy waits for. It must not run in a
        // read section or on a call_rcu worker, so from there a new thread does it.
        // An online QSBR thread counts as "in a read section": release builds do not track
        // RCUReader's section depth, and going offline here would end the caller's section.
        let table = RCUUncheckedSendable(value: table)
        let qsbrOnline = Flavor.self == RCUQSBR.self && RCUQSBR.isOnline
        if Flavor.primitiveIsInReadSection || Flavor.primitiveIsInCallback || qsbrOnline {
            RCUContainerSupport.runOnNewThread { RCUHashMapSupport.destroy(table.value, Flavor.self) }
        } else {
            RCUHashMapSupport.destroy(table.value, Flavor.self)
        }
    }

    @usableFromInline
    typealias Entry = RCUHashMapEntry<Key, Value>

    /// The table hash of `key`.
    @inlinable
    static func hash(_ key: Key) -> UInt {
        RCUHashMapSupport.mix(UInt(bitPattern: key.hashValue))
    }

    /// The entry holding `key`, found inside a read section.
    ///
    /// rculfhash finds the entries with the key's hash; the keys are compared
    /// here, inlined and specialised in the caller (rculfhash's C match
    /// callback would compare through a generic, unspecialised witness).
    @inlinable
    func lookup(_ key: Key) -> UnsafeMutablePointer<curcu_lfht_entry>? {
        var iterator = cds_lfht_iter()
        var candidate = curcu_lfht_lookup_hash(table, Self.hash(key), &iterator)
        while let entry = candidate {
            if Unmanaged<Entry>.fromOpaque(curcu_lfht_entry_box(entry))._withUnsafeGuaranteedRef({ $0.key == key }) {
                return entry
            }
            candidate = curcu_lfht_next_same_hash(table, &iterator)
        }
        return nil
    }

    // MARK: Readers

    /// Calls `body` with the value stored for `key`, borrowed: no copy.
    ///
    /// `body` gets a non-optional value, as ``RCUPointer/withValue(in:_:)`` does:
    /// binding an optional class reference with `if let` would retain and
    /// release a value that every reader shares.
    /// - Parameters:
    ///   - key: The key to look up.
    ///   - section: The read section of this lookup.
    ///   - body: Gets the value; it is valid until the section ends. Not called without one.
    /// - Returns: What `body` returns, or `nil` when the map has no value for `key`.
    /// - Complexity: O(1) expected: a hash, a bucket walk, no lock, no write to shared memory.
    @inlinable
    public func withValue<Result>(
        forKey key: Key, in section: borrowing RCUReadSection<Flavor>,
        file: StaticString = #fileID, line: UInt = #line,
        _ body: (Value) throws -> Result
    ) rethrows -> Result? {
        guard RCUContainerSupport.checkSection(Flavor.self, call: "RCUHashMap.withValue(forKey:in:)", file: file, line: line),
            let entry = lookup(key)
        else { return nil }
        return try Unmanaged<Entry>.fromOpaque(curcu_lfht_entry_box(entry))._withUnsafeGuaranteedRef {
            try body($0.value)
        }
    }

    /// The value stored for `key`, or `nil`.
    /// - Complexity: O(1) expected.
    @inlinable
    public func value(
        forKey key: Key, in section: borrowing RCUReadSection<Flavor>,
        file: StaticString = #fileID, line: UInt = #line
    ) -> Value? {
        withValue(forKey: key, in: section, file: file, line: line) { $0 }
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
        in section: borrowing RCUReadSection<Flavor>, file: StaticString = #fileID, line: UInt = #line,
        _ body: (Key, Value) throws -> Void
    ) rethrows {
        guard RCUContainerSupport.checkSection(Flavor.self, call: "RCUHashMap.forEach(in:)", file: file, line: line)
        else { return }
        var iterator = cds_lfht_iter()
        var entry = curcu_lfht_first(table, &iterator)
        while let current = entry {
            try Unmanaged<Entry>.fromOpaque(curcu_lfht_entry_box(current))._withUnsafeGuaranteedRef {
                try body($0.key, $0.value)
            }
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
    public func insert(_ value: __owned Value, forKey key: Key) -> Bool {
        let entry = makeEntry(key: key, value: value)
        let added = Flavor.read { _ in
            withUnsafePointer(to: key) { probe in
                curcu_lfht_add_unique(table, Self.hash(key), RCUHashMapSupport.match, probe, entry) == entry
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
    public func updateValue(_ value: __owned Value, forKey key: Key) -> Value? {
        let entry = makeEntry(key: key, value: value)
        return Flavor.read { _ in
            let replaced = withUnsafePointer(to: key) { probe in
                curcu_lfht_add_replace(table, Self.hash(key), RCUHashMapSupport.match, probe, entry)
            }
            guard let replaced else {
                entryCount.add(1, ordering: .relaxed)
                return nil
            }
            let old = Unmanaged<Entry>.fromOpaque(curcu_lfht_entry_box(replaced)).takeUnretainedValue().value
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
        Flavor.read { _ in
            // A concurrent replacement can take the entry from under the delete: look again.
            while let entry = lookup(key) {
                guard curcu_lfht_del(table, entry) else { continue }
                entryCount.add(-1, ordering: .relaxed)
                let old = Unmanaged<Entry>.fromOpaque(curcu_lfht_entry_box(entry)).takeUnretainedValue().value
                RCUHashMapSupport.retire(entry, Flavor.self)
                return old
            }
            return nil
        }
    }

    /// Removes every entry; each is released after a grace period.
    /// - Complexity: O(*n* + buckets).
    public func removeAll() {
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

    private func makeEntry(key: Key, value: __owned Value) -> UnsafeMutablePointer<curcu_lfht_entry> {
        curcu_lfht_entry_new(Unmanaged.passRetained(Entry(key: key, value: value)).toOpaque())
    }
}

extension RCUHashMap: @unchecked Sendable where Key: Sendable, Value: Sendable {}

/// What the C match function sees of an entry: key comparison by dynamic dispatch.
@usableFromInline
class RCUHashMapEntryBase {
    /// Whether this entry's key equals the key `probe` points to.
    @usableFromInline
    func matches(_ probe: UnsafeRawPointer) -> Bool { fatalError("abstract") }
}

/// The retained Swift half of an rculfhash node.
@usableFromInline
final class RCUHashMapEntry<Key: Hashable, Value>: RCUHashMapEntryBase {
    @usableFromInline let key: Key
    @usableFromInline let value: Value

    init(key: Key, value: __owned Value) {
        self.key = key
        self.value = value
    }

    @usableFromInline
    override func matches(_ probe: UnsafeRawPointer) -> Bool {
        probe.assumingMemoryBound(to: Key.self).pointee == key
    }
}

@usableFromInline
enum RCUHashMapSupport {
    /// A per-process random seed mixed into every hash.
    @usableFromInline
    static let seed = UInt.random(in: 1...UInt.max)

    /// `hashValue ^ seed`, through murmur3's 64-bit finaliser.
    @inlinable
    @inline(__always)
    static func mix(_ hashValue: UInt) -> UInt {
        var h = UInt64(hashValue) ^ UInt64(seed)
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h &*= 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return UInt(h)
    }

    /// rculfhash's match function: compares the probe key with a node's key.
    @usableFromInline
    static let match: curcu_lfht_match_fn = { node, probe in
        guard let entry = curcu_lfht_entry_of(node) else { return 0 }
        return Unmanaged<RCUHashMapEntryBase>.fromOpaque(curcu_lfht_entry_box(entry))
            ._withUnsafeGuaranteedRef { $0.matches(probe!) } ? 1 : 0
    }

    /// The call_rcu callback that releases an unlinked entry.
    static let freeEntry: RCUCallbackFunction = { context in
        RCUCallbackContext.run {
            freeEntryNow(context!.assumingMemoryBound(to: curcu_lfht_entry.self))
        }
    }

    static func freeEntryNow(_ entry: UnsafeMutablePointer<curcu_lfht_entry>) {
        Unmanaged<AnyObject>.fromOpaque(curcu_lfht_entry_box(entry)).release()
        curcu_lfht_entry_free(entry)
    }

    /// Releases an entry unlinked by this thread after a grace period.
    static func retire<Flavor: RCUFlavor>(_ entry: UnsafeMutablePointer<curcu_lfht_entry>, _: Flavor.Type) {
        Flavor.primitiveCall(freeEntry, UnsafeMutableRawPointer(entry))
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
