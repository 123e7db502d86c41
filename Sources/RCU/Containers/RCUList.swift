public import CURCUCDS
public import Lockdep
import Synchronization

/// An element of an ``RCUList``: the handle writers use to remove or replace it.
///
/// The node keeps its element alive for as long as you hold it; the list holds
/// its own reference while the node is linked and drops it a grace period
/// after the node is removed, so readers that still stand on it stay safe.
public final class RCUListNode<Element: Sendable> {
    /// The element, immutable: replace the node to change it (``RCUList/replace(_:with:fileID:line:)``).
    public let element: Element

    /// The C link readers traverse; its `owner` points back at this object.
    @usableFromInline
    let link: UnsafeMutablePointer<curcu_list_node>

    /// ``State`` raw values; changed only by writers holding the list's lock.
    let state = Atomic<UInt8>(State.detached.rawValue)

    /// The list the node was created for.
    let list: ObjectIdentifier

    enum State: UInt8 {
        case detached = 0, linked = 1, removed = 2
    }

    init(_ element: consuming Element, list: ObjectIdentifier) {
        self.element = element
        self.list = list
        link = curcu_list_node_new(nil)
        link.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        if Element.self is AnyObject.Type && MemoryLayout<Element>.size == MemoryLayout<UnsafeRawPointer>.size {
            // A class element's address, beside the link: readers that look for one
            // object (`firstNonNil`) skip the visit to this node.
            link.pointee.object = unsafeBitCast(self.element, to: UnsafeMutableRawPointer.self)
        } else if Self.elementIsBesideLink {
            // A small trivial element's bits, beside the link: a traversal reads them there
            // and never visits this object (one cache line and one dependent load per element).
            var bits: UInt = 0
            withUnsafeMutableBytes(of: &bits) { $0.storeBytes(of: self.element, as: Element.self) }
            link.pointee.object = UnsafeMutableRawPointer(bitPattern: bits)
        }
    }

    /// Whether each node's link carries a copy of its element: a trivial type (no
    /// reference, nothing to release) of at most a word. Constant once specialised.
    @inlinable
    static var elementIsBesideLink: Bool {
        _isPOD(Element.self) && MemoryLayout<Element>.size <= MemoryLayout<UInt>.size
            && MemoryLayout<Element>.alignment <= MemoryLayout<UInt>.alignment
    }

    /// The element copied beside `link` (only where ``elementIsBesideLink``); written
    /// before the node was published, never changed after.
    @inlinable
    @inline(__always)
    static func elementBeside(_ link: UnsafeMutablePointer<cds_list_head>) -> Element {
        var bits = UInt(bitPattern: curcu_list_object(link))
        return withUnsafeBytes(of: &bits) { $0.load(as: Element.self) }
    }

    deinit { curcu_list_node_free(link) }

    /// Whether the node is currently in its list (a snapshot; writers may change it).
    public var isLinked: Bool { state.load(ordering: .relaxed) == State.linked.rawValue }
}

extension RCUListNode: @unchecked Sendable {}

/// A doubly linked list with the Linux kernel's `list_*_rcu` semantics:
/// readers traverse it inside read sections, without locks, while one writer at
/// a time adds, removes and replaces elements.
///
/// Readers see every element that stays in the list for the whole traversal
/// exactly once, an element added or removed meanwhile once or not at all, and
/// never a freed one: a removed node is released a grace period after its
/// removal (liburcu's `call_rcu`), once no reader can still stand on it.
///
/// Writers are serialised by a lock the caller names at creation
/// (``RCUWriterLock``: ``RCUWriterMutex`` or one of Lockdep's checked locks).
/// Every mutation checks, in every build, that the calling thread holds it and
/// reports a mutation without it as ``RCUMisuse/Kind/mutationWithoutLock``
/// (then skips the mutation).
///
/// ```swift
/// let lock = RCUWriterMutex()
/// let devices = RCUList<Device, RCUMemb>(lock: lock)
/// let node = lock.withLock { devices.append(device) }
/// RCUMemb.read { section in devices.forEach(in: section) { print($0.name) } }
/// lock.withLock { _ = devices.remove(node) }
/// ```
///
/// Iteration takes the borrowed ``RCUReadSection``, so iterating outside a read
/// section does not compile.
public final class RCUList<Element: Sendable, Flavor: RCUFlavor> {
    /// The sentinel (`struct cds_list_head`), at a stable address.
    @usableFromInline
    let head: UnsafeMutablePointer<cds_list_head>

    /// The lock every writer must hold.
    public let lock: any RCUWriterLock

    /// Creates an empty list whose writers hold `lock`.
    /// - Parameter lock: The update-side lock; the list checks it on every mutation.
    public convenience init(lock: RCUWriterMutex) { self.init(checkedBy: lock) }

    /// Creates an empty list whose writers hold Lockdep's `lock` (its holder is exact in every build).
    public convenience init(lock: CheckedMutex) { self.init(checkedBy: lock) }

    /// Creates an empty list whose writers hold Lockdep's `lock` (its holder is exact in every build).
    public convenience init(lock: CheckedSpinLock) { self.init(checkedBy: lock) }

    /// Creates an empty list whose writers hold Lockdep's `lock` for write (exact in every build).
    public convenience init(lock: CheckedRWLock) { self.init(checkedBy: lock) }

    /// Only the package's locks, whose holder is known exactly, may guard a list: a
    /// lock that answered wrongly would let two writers corrupt it.
    init(checkedBy lock: any RCUWriterLock) {
        self.lock = lock
        head = curcu_list_head_new()
    }

    deinit {
        // No reader can be traversing: each would hold a reference to the list.
        var link = curcu_list_next(head)!
        while link != head {
            let next = curcu_list_next(link)!
            let node = Unmanaged<RCUListNode<Element>>.fromOpaque(curcu_list_owner(link))
            node._withUnsafeGuaranteedRef { $0.state.store(RCUListNode<Element>.State.removed.rawValue, ordering: .relaxed) }
            node.release()
            link = next
        }
        curcu_list_head_free(head)
    }

    // MARK: Readers

    /// Calls `body` with each element, from head to tail, inside `section`.
    ///
    /// - Parameters:
    ///   - section: The read section of this traversal.
    ///   - body: Gets each element; it must not let the element escape unless
    ///     it copies or retains it (it stays valid until the section ends).
    /// - Complexity: O(*n*); one dependency-ordered load per element, no locks.
    @inlinable
    public func forEach(
        in section: borrowing RCUReadSection<Flavor>,
        _ body: (Element) throws -> Void
    ) rethrows {
        // A published link's `next` is never NULL (the list is circular, and a removed node
        // keeps its `next`): `unsafelyUnwrapped` saves a test per element in release builds.
        var link = curcu_list_next(head).unsafelyUnwrapped
        while link != head {
            if RCUListNode<Element>.elementIsBesideLink {
                try body(RCUListNode<Element>.elementBeside(link))
            } else {
                try Unmanaged<RCUListNode<Element>>.fromOpaque(curcu_list_owner(link))
                    ._withUnsafeGuaranteedRef { try body($0.element) }
            }
            link = curcu_list_next(link).unsafelyUnwrapped
        }
    }

    /// Calls `body` with each element, from head to tail, inside `section`, until
    /// it returns a result; returns that result, or `nil` when it never did.
    ///
    /// The early-exit form of ``forEach(in:_:)``, for a reader looking
    /// for one element.
    /// - Parameters:
    ///   - section: The read section of this traversal.
    ///   - body: Gets each element (valid until the section ends); returns `nil` to go on.
    /// - Returns: The first non-nil result of `body`.
    /// - Complexity: O(*n*).
    @inlinable
    public func firstNonNil<Result>(
        in section: borrowing RCUReadSection<Flavor>,
        _ body: (Element) throws -> Result?
    ) rethrows -> Result? {
        var result: Result?
        try forEachNode(in: section) { node in
            result = try body(node.element)
            return result == nil
        }
        return result
    }

    /// Calls `body` with each node, from head to tail, inside `section`;
    /// `body` returns `false` to stop early.
    ///
    /// Use it to find a node to remove or replace (retain it: the node outlives
    /// the section as long as you hold it).
    /// - Complexity: O(*n*).
    @inlinable
    public func forEachNode(
        in section: borrowing RCUReadSection<Flavor>,
        _ body: (RCUListNode<Element>) throws -> Bool
    ) rethrows {
        var link = curcu_list_next(head).unsafelyUnwrapped
        while link != head {
            let proceed = try Unmanaged<RCUListNode<Element>>.fromOpaque(curcu_list_owner(link))
                ._withUnsafeGuaranteedRef { try body($0) }
            if !proceed { return }
            link = curcu_list_next(link).unsafelyUnwrapped
        }
    }

    /// The first node whose element satisfies `predicate`, or `nil`.
    /// - Complexity: O(*n*).
    @inlinable
    public func firstNode(
        in section: borrowing RCUReadSection<Flavor>,
        where predicate: (Element) throws -> Bool
    ) rethrows -> RCUListNode<Element>? {
        var found: RCUListNode<Element>?
        try forEachNode(in: section) { node in
            if try predicate(node.element) { found = node; return false }
            return true
        }
        return found
    }

    /// Whether some element satisfies `predicate`.
    /// - Complexity: O(*n*).
    @inlinable
    public func contains(
        in section: borrowing RCUReadSection<Flavor>, where predicate: (Element) throws -> Bool
    ) rethrows -> Bool {
        try firstNode(in: section, where: predicate) != nil
    }

    /// The number of elements a traversal sees now.
    /// - Complexity: O(*n*).
    @inlinable
    public func count(in section: borrowing RCUReadSection<Flavor>) -> Int {
        var count = 0
        forEach(in: section) { _ in count += 1 }
        return count
    }

    // MARK: Writers (hold `lock`)

    /// Inserts `element` at the head (the kernel's `list_add_rcu`).
    ///
    /// - Parameters:
    ///   - element: The element to publish; readers see it fully initialised.
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Returns: The element's node, for ``remove(_:fileID:line:)`` and
    ///   ``replace(_:with:fileID:line:)``. When the lock is not held the insertion
    ///   is skipped and the node is returned unlinked.
    /// - Complexity: O(1): one release store.
    @discardableResult
    public func prepend(_ element: consuming Element, fileID: StaticString = #fileID, line: UInt = #line)
        -> RCUListNode<Element>
    {
        let node = RCUListNode(element, list: ObjectIdentifier(self))
        guard checkLock("prepend(_:)", fileID: fileID, line: line) else { return node }
        link(node)
        curcu_list_add_head(node.link, head)
        return node
    }

    /// Inserts `element` at the tail (the kernel's `list_add_tail_rcu`).
    ///
    /// - Parameters:
    ///   - element: The element to publish.
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Returns: The element's node (unlinked when the lock is not held).
    /// - Complexity: O(1).
    @discardableResult
    public func append(_ element: consuming Element, fileID: StaticString = #fileID, line: UInt = #line)
        -> RCUListNode<Element>
    {
        let node = RCUListNode(element, list: ObjectIdentifier(self))
        guard checkLock("append(_:)", fileID: fileID, line: line) else { return node }
        link(node)
        curcu_list_add_tail(node.link, head)
        return node
    }

    /// Unlinks `node` (the kernel's `list_del_rcu`) and releases the list's
    /// reference to it after a grace period.
    ///
    /// Readers standing on the node finish their traversal through it.
    /// Removing a node that is no longer in the list is reported as
    /// ``RCUMisuse/Kind/removedTwice``; a node of another list as
    /// ``RCUMisuse/Kind/foreignElement``; both are ignored.
    /// - Parameters:
    ///   - node: A node this list returned.
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Returns: Whether the node was removed.
    /// - Complexity: O(1) plus a call_rcu enqueue.
    @discardableResult
    public func remove(_ node: RCUListNode<Element>, fileID: StaticString = #fileID, line: UInt = #line) -> Bool {
        guard checkLock("remove(_:)", fileID: fileID, line: line),
            claim(node, call: "remove(_:)", fileID: fileID, line: line)
        else { return false }
        curcu_list_del(node.link)
        retire(node)
        return true
    }

    /// Puts a node holding `element` where `old` is, atomically for readers
    /// (the kernel's `list_replace_rcu`): each sees the old element or the new
    /// one, never neither nor both. `old` is released after a grace period.
    ///
    /// - Parameters:
    ///   - old: A node in this list (misuses are reported as for ``remove(_:fileID:line:)``).
    ///   - element: The replacement.
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Returns: The new node (unlinked when the replacement was skipped).
    /// - Complexity: O(1).
    @discardableResult
    public func replace(
        _ old: RCUListNode<Element>, with element: consuming Element, fileID: StaticString = #fileID, line: UInt = #line
    ) -> RCUListNode<Element> {
        let node = RCUListNode(element, list: ObjectIdentifier(self))
        guard checkLock("replace(_:with:)", fileID: fileID, line: line),
            claim(old, call: "replace(_:with:)", fileID: fileID, line: line)
        else { return node }
        link(node)
        curcu_list_replace(old.link, node.link)
        retire(old)
        return node
    }

    /// Removes every element that satisfies `shouldBeRemoved`.
    ///
    /// The call first takes a strong reference to every node linked now, then,
    /// for each of them that is still linked when its turn comes, asks
    /// `shouldBeRemoved` and removes the node when it answers `true`. So whatever
    /// the predicate does to the list (removes or replaces other nodes, even
    /// the next one, waits for a grace period with `synchronize()` or
    /// `barrier()`, appends), the walk never follows a link of a freed node:
    /// - a node removed or replaced meanwhile (by the predicate) is skipped and
    ///   not counted;
    /// - a node added meanwhile is not visited;
    /// - if the predicate releases the writer lock, the walk stops: the
    ///   release is reported as ``RCUMisuse/Kind/mutationWithoutLock`` and no
    ///   further node is removed;
    /// - if the predicate throws, the nodes removed so far stay removed.
    ///
    /// Checked in every build: the calling thread must hold ``lock`` (otherwise
    /// ``RCUMisuse/Kind/mutationWithoutLock`` is reported and nothing is removed).
    /// - Parameters:
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    ///   - shouldBeRemoved: Gets each element linked when the call began and
    ///     still linked when its turn comes.
    /// - Returns: How many elements this call removed.
    /// - Complexity: O(*n*) time and O(*n*) memory for the snapshot of nodes.
    @discardableResult
    public func removeAll(
        fileID: StaticString = #fileID, line: UInt = #line, where shouldBeRemoved: (Element) throws -> Bool
    ) rethrows -> Int {
        guard checkLock("removeAll(where:)", fileID: fileID, line: line) else { return 0 }
        // The strong references keep every node (and the link readers and this walk
        // follow) alive whatever the predicate removes or waits for.
        var snapshot: [RCUListNode<Element>] = []
        var link = curcu_list_next(head)!
        while link != head {
            snapshot.append(Unmanaged<RCUListNode<Element>>.fromOpaque(curcu_list_owner(link)).takeUnretainedValue())
            link = curcu_list_next(link)!
        }
        var removed = 0
        for node in snapshot where node.isLinked {
            guard try shouldBeRemoved(node.element) else { continue }
            // The predicate ran user code: it may have released the lock or removed this node.
            guard checkLock("removeAll(where:)", fileID: fileID, line: line) else { break }
            guard node.isLinked else { continue }
            if claim(node, call: "removeAll(where:)", fileID: fileID, line: line) {
                curcu_list_del(node.link)
                retire(node)
                removed += 1
            }
        }
        return removed
    }

    // MARK: Internals

    private func checkLock(_ call: String, fileID: StaticString, line: UInt) -> Bool {
        if lock.isHeldByCurrentThread { return true }
        RCUMisuse.report(.mutationWithoutLock, call: "RCUList.\(call)", flavor: Flavor.name, fileID: fileID, line: line)
        return false
    }

    /// Marks a linked node of this list removed; reports and refuses anything else.
    private func claim(_ node: RCUListNode<Element>, call: String, fileID: StaticString, line: UInt) -> Bool {
        guard node.list == ObjectIdentifier(self) else {
            RCUMisuse.report(.foreignElement, call: "RCUList.\(call)", flavor: Flavor.name, fileID: fileID, line: line)
            return false
        }
        let (exchanged, original) = node.state.compareExchange(
            expected: RCUListNode<Element>.State.linked.rawValue,
            desired: RCUListNode<Element>.State.removed.rawValue, ordering: .relaxed)
        if exchanged { return true }
        let kind: RCUMisuse.Kind =
            original == RCUListNode<Element>.State.removed.rawValue ? .removedTwice : .foreignElement
        RCUMisuse.report(kind, call: "RCUList.\(call)", flavor: Flavor.name, fileID: fileID, line: line)
        return false
    }

    /// The list takes a reference for as long as the node is linked.
    private func link(_ node: RCUListNode<Element>) {
        node.state.store(RCUListNode<Element>.State.linked.rawValue, ordering: .relaxed)
        _ = Unmanaged.passRetained(node)
    }

    /// Drops the list's reference after a grace period (throttled past the backlog's mark).
    private func retire(_ node: RCUListNode<Element>) {
        Flavor.throttledCall(RCUCallbacks.releaseObject, Unmanaged.passUnretained(node).toOpaque(), call: "RCUList removal")
    }
}

extension RCUList: @unchecked Sendable {}

extension RCUList where Element: AnyObject {
    /// ``firstNonNil(in:_:)`` for class elements: each element is reached
    /// from its link (one dependent load, the same cache line as the link) without
    /// visiting its node object.
    @inlinable
    public func firstNonNil<Result>(
        in section: borrowing RCUReadSection<Flavor>,
        _ body: (Element) throws -> Result?
    ) rethrows -> Result? {
        var link = curcu_list_next(head).unsafelyUnwrapped
        while link != head {
            // The node, and so its strong reference to the element, lives until a grace
            // period after its removal: the element is valid for this whole section.
            let result: Result?
            if let object = curcu_list_object(link) {
                result = try Unmanaged<Element>.fromOpaque(object)._withUnsafeGuaranteedRef(body)
            } else {  // not recorded for this element type: through the node
                result = try Unmanaged<RCUListNode<Element>>.fromOpaque(curcu_list_owner(link))
                    ._withUnsafeGuaranteedRef { try body($0.element) }
            }
            if let result { return result }
            link = curcu_list_next(link).unsafelyUnwrapped
        }
        return nil
    }
}
