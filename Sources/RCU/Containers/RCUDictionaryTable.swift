public import Synchronization

/// A key and its value, stored side by side in an ``RCUDictionary`` table's slot (one
/// cache line for small types, where `Dictionary`'s separate key and value arrays take two).
@usableFromInline
struct RCUDictionaryPair<Key: Hashable, Value> {
    @usableFromInline var key: Key
    @usableFromInline var value: Value
}

/// What a table's type-erased teardown knows of its pairs' type.
protocol RCUDictionaryPairKind {
    static var pairStride: Int { get }
    static var pairAlignment: Int { get }
    /// Deinitialises the pairs of `table`'s live slots.
    static func deinitializeLivePairs(in table: RCUDictionaryTable)
}

extension RCUDictionaryPair: RCUDictionaryPairKind {
    static var pairStride: Int { MemoryLayout<Self>.stride }
    static var pairAlignment: Int { MemoryLayout<Self>.alignment }

    static func deinitializeLivePairs(in table: RCUDictionaryTable) {
        let pairs = table.pairs(Self.self)
        for index in 0..<table.sentinel where RCUDictionaryTable.isLive(table.controls[index].load(ordering: .relaxed)) {
            (pairs + index).deinitialize(count: 1)
        }
    }
}

/// One open-addressing table of an ``RCUDictionary``: a header, a control byte per slot,
/// then the slots' key-value pairs, in one allocation.
///
/// A key's probe starts at one of a power of two of home slots (`hash & mask`) and runs
/// forward, never wrapping around: past the home slots lies an overflow area for the
/// probes that run off their end, then a sentinel slot that stays empty and ends every
/// probe. So a probe visits slots in index order, as iteration does: a writer's new slot
/// for a key, further along the key's probe, is also further along an iteration, which
/// therefore meets the old pair or the new one, as a lookup does.
///
/// A control byte is empty (0), a tombstone (1: the slot's pair was removed or
/// replaced) or live (0x80 and the top 7 bits of the key's hash, which a probe compares
/// before it reads the key). A slot is written once per table: its pair, then its
/// control byte, published with release ordering. After that the pair never changes
/// while the table is reachable, so readers read it with plain loads and never see it
/// torn; a removal only turns the control byte into a tombstone. Slots are not reused:
/// a replacement writes a new slot further along the key's probe, then tombstones the
/// old one, so a probe always meets the old pair or the new one. Only a rebuild, a new
/// table published whole, clears tombstones; and because a probe stops at the first
/// empty slot, a slot never goes back to empty within a table.
///
/// The 1-byte controls are dense (16 KiB for 16384 slots) and usually in L1, so a
/// lookup misses the cache for its pair's line alone, where a pointer to an entry would
/// cost two misses in a row.
@usableFromInline
struct RCUDictionaryTable {
    @usableFromInline
    let base: UnsafeMutableRawPointer

    /// The header, at the start of the allocation.
    struct Header {
        /// Home slots minus 1 (first: readers load it).
        var mask: Int
        /// Where the pairs start (second: readers load it).
        var pairsOffset: Int
        /// The index of the last slot, which stays empty: home slots plus overflow slots.
        var sentinel: Int
        /// Whether freeing the table also deinitialises the pairs of its live slots: true
        /// for the current table and one `removeAll()` retired, false for one a rebuild
        /// moved into a new table (which owns them since).
        var ownsLivePairs: Bool
        /// The pairs' type, for that teardown.
        var pairKind: any RCUDictionaryPairKind.Type
    }

    /// The header's size rounded to a cache line: the controls start on a line of their own.
    @usableFromInline
    static let headerSize = 64

    @usableFromInline
    static let empty: UInt8 = 0
    @usableFromInline
    static let tombstone: UInt8 = 1

    @inlinable
    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    /// The table at the address `word` (an ``RCUDictionary``'s published word; never 0).
    @inlinable
    @inline(__always)
    init(word: UInt) { base = UnsafeMutableRawPointer(bitPattern: word).unsafelyUnwrapped }

    /// The table's address, as an ``RCUDictionary`` publishes it.
    var word: UInt { UInt(bitPattern: base) }

    /// A table of `homeSlots` (a power of two, at least 8) and `overflow` empty slots and
    /// its sentinel, owning its live pairs.
    static func make(homeSlots: Int, overflow: Int, pairKind: any RCUDictionaryPairKind.Type) -> Self {
        precondition(homeSlots >= 8 && homeSlots & (homeSlots - 1) == 0 && overflow >= 0, "\(homeSlots) slots")
        let slotCount = homeSlots + overflow + 1
        assert(MemoryLayout<Header>.size <= headerSize)
        let alignment = max(64, pairKind.pairAlignment)
        let pairsOffset = (headerSize + slotCount + alignment - 1) / alignment * alignment
        let base = UnsafeMutableRawPointer.allocate(
            byteCount: pairsOffset + slotCount * pairKind.pairStride, alignment: alignment)
        base.bindMemory(to: Header.self, capacity: 1).initialize(
            to: Header(mask: homeSlots - 1, pairsOffset: pairsOffset, sentinel: slotCount - 1, ownsLivePairs: true,
                       pairKind: pairKind))
        let controls = (base + headerSize).bindMemory(to: Atomic<UInt8>.self, capacity: slotCount)
        for index in 0..<slotCount { (controls + index).initialize(to: Atomic(empty)) }
        return Self(base)
    }

    /// Home slots minus 1 (the header's first word).
    @inlinable
    var mask: Int { base.load(as: Int.self) }

    var homeSlotCount: Int { mask + 1 }

    /// The last slot's index: it stays empty.
    var sentinel: Int { header.pointee.sentinel }

    /// Slots past the home slots, before the sentinel.
    var overflow: Int { sentinel - homeSlotCount }

    @inlinable
    var controls: UnsafeMutablePointer<Atomic<UInt8>> {
        (base + Self.headerSize).assumingMemoryBound(to: Atomic<UInt8>.self)
    }

    /// The slots' pairs (the header's second word is their offset).
    @inlinable
    @inline(__always)
    func pairs<Pair>(_: Pair.Type) -> UnsafeMutablePointer<Pair> {
        (base + base.load(fromByteOffset: MemoryLayout<Int>.stride, as: Int.self)).assumingMemoryBound(to: Pair.self)
    }

    var header: UnsafeMutablePointer<Header> { base.assumingMemoryBound(to: Header.self) }

    /// The control byte of a live slot whose key has `hash`.
    @inlinable
    @inline(__always)
    static func control(_ hash: Int) -> UInt8 {
        0x80 | UInt8(truncatingIfNeeded: UInt(bitPattern: hash) &>> (UInt.bitWidth - 7))
    }

    static func isLive(_ control: UInt8) -> Bool { control & 0x80 != 0 }

    /// Frees the table, and with ``Header/ownsLivePairs`` the pairs of its live slots. No
    /// reader or writer can reach it any more.
    func free() {
        let header = self.header.pointee
        if header.ownsLivePairs { header.pairKind.deinitializeLivePairs(in: self) }
        controls.deinitialize(count: header.sentinel + 1)
        self.header.deinitialize(count: 1)
        base.deallocate()
    }
}

/// A table a writer replaced, freed after a grace period (through ``RCUFlavor/retire(_:)-(AnyObjectSendable)``).
final class RCUDictionaryRetiredTable: @unchecked Sendable {
    let table: RCUDictionaryTable
    init(_ table: RCUDictionaryTable) { self.table = table }
    deinit { table.free() }
}

/// A pair a writer removed or replaced, moved out of its slot: the slot's bytes stay
/// readable for readers that found it before the tombstone, and this box keeps what they
/// reference alive until a grace period has passed.
final class RCUDictionaryRetiredPair<Key: Hashable, Value>: @unchecked Sendable {
    let pair: RCUDictionaryPair<Key, Value>
    init(movingFrom slot: UnsafeMutablePointer<RCUDictionaryPair<Key, Value>>) { pair = slot.move() }
}
