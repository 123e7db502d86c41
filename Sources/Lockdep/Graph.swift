import CLockdepThread
internal import Synchronization

/// One dependency edge `from -> to` with the kinds of acquisitions seen on it.
struct Edge {
    /// The kernel's `lock_list::dep`: a bit set over how `from` was held (E: for write, S: shared,
    /// any reader) and how `to` was acquired (N: not a recursive read, R: recursive read):
    /// bit `(fromShared ? 2 : 0) | (toRecursive ? 1 : 0)`, so bit 0 E->N, 1 E->R, 2 S->N, 3 S->R.
    var types: UInt8
    var fromSite: LockdepSite
    var toSite: LockdepSite
    var thread: String
    var stack: CallStack
}

/// A node of the dependency graph: one (class, subclass).
struct Node {
    var usage: UInt8 = 0
    /// The closure of ``usage`` over the graph, kept up to date as bits and edges are added:
    /// a "used in irq" bit (`irq * 4 + read`) is set when this node or any node that reaches it
    /// has it; an "irqs enabled" bit (`irq * 4 + 2 + read`) when this node or any node it
    /// reaches has it. A conservative filter: an irq search whose bits are absent here cannot
    /// find anything (a freed class may leave a bit set, which only costs a search).
    var reach: UInt8 = 0
    var usageSites: [LockdepSite?] = Array(repeating: nil, count: 8)
    var out: [UInt32] = []
    /// `edges[out[i]].types`, in the order of ``out`` (the search reads this, not the dictionary).
    var outTypes: [UInt8] = []
    var inbound: [UInt32] = []
    /// The types of the dependencies `inbound[i] -> self`, in the order of ``inbound``.
    var inTypes: [UInt8] = []
    var edges: [UInt32: Edge] = [:]
}

/// The graph's nodes: a dense pool of ``Node`` slots reached from the node number
/// (`class << 3 | subclass`) through an index array, so a search touches arrays only.
struct NodeTable {
    /// Node number -> slot + 1 (0: no node).
    var index: [Int32] = []
    var slots: [Node] = []
    /// The node number of each slot (`UInt32.max`: free).
    var slotNode: [UInt32] = []
    var freeSlots: [Int32] = []

    /// The node, if it exists (a copy: for reports and rare paths).
    subscript(node: UInt32) -> Node? {
        guard let s = slot(node) else { return nil }
        return slots[s]
    }

    @inline(__always)
    func slot(_ node: UInt32) -> Int? {
        let i = Int(node)
        guard i < index.count else { return nil }
        let s = index[i]
        return s == 0 ? nil : Int(s) - 1
    }

    /// The slot of `node`, created if needed.
    mutating func slotCreating(_ node: UInt32) -> Int {
        if let s = slot(node) { return s }
        let i = Int(node)
        if i >= index.count {
            index.append(contentsOf: repeatElement(0, count: max(i + 1 - index.count, index.count / 2 + 64)))
        }
        let s: Int
        if let free = freeSlots.popLast() {
            s = Int(free)
            slots[s] = Node()
            slotNode[s] = node
        } else {
            s = slots.count
            slots.append(Node())
            slotNode.append(node)
        }
        index[i] = Int32(s + 1)
        return s
    }

    /// Frees `node`'s slot (its edges must have been unlinked already).
    mutating func remove(_ node: UInt32) {
        guard let s = slot(node) else { return }
        index[Int(node)] = 0
        slots[s] = Node()
        slotNode[s] = .max
        freeSlots.append(Int32(s))
    }

    /// Number of live nodes.
    var count: Int { slots.count - freeSlots.count }

    /// Removes every node, in time proportional to the nodes there were: the index keeps its
    /// length (the highest node number seen), which a new table would grow back to at the
    /// first node of a class registered late (a test suite's reset after thousands of classes).
    mutating func removeAll() {
        for node in slotNode where node != .max { index[Int(node)] = 0 }
        slots.removeAll(keepingCapacity: true)
        slotNode.removeAll(keepingCapacity: true)
        freeSlots.removeAll(keepingCapacity: true)
    }
}

/// Reusable search buffers: a per-state generation mark instead of per-search sets and
/// dictionaries (the kernel's `lock_accessed` / `mark_lock_accessed`).
struct SearchScratch {
    var mark: [UInt32] = []
    var generation: UInt32 = 0
    var parent: [Int32] = []
    var queue: [Int32] = []

    /// Starts a search over `states` states: every state unmarked, in O(1) (amortised).
    mutating func begin(states: Int) {
        if mark.count < states {
            let grow = max(states - mark.count, mark.count / 2 + 64)
            mark.append(contentsOf: repeatElement(0, count: grow))
            parent.append(contentsOf: repeatElement(-1, count: grow))
        }
        generation &+= 1
        if generation == 0 {
            mark.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            generation = 1
        }
        queue.removeAll(keepingCapacity: true)
    }
}

/// Usage bits, as the kernel's LOCK_USED_IN_HARDIRQ etc.: irq * 4 + (enabled ? 2 : 0) + read.
enum Usage {
    static let names = ["IN-HARDIRQ-W", "IN-HARDIRQ-R", "HARDIRQ-ON-W", "HARDIRQ-ON-R",
                        "IN-SOFTIRQ-W", "IN-SOFTIRQ-R", "SOFTIRQ-ON-W", "SOFTIRQ-ON-R"]
    /// The "used in irq" bits: they propagate to the nodes a node reaches.
    static let usedMask: UInt8 = 0b0011_0011
    /// The "irqs enabled" bits: they propagate to the nodes that reach a node.
    static let enabledMask: UInt8 = 0b1100_1100
    /// The write (not `_READ`) bits: the kernel's `LOCKF_IRQ`.
    static let writeMask: UInt8 = 0b0101_0101
    /// The `_READ` bits: the kernel's `LOCKF_IRQ_READ`.
    static let readMask: UInt8 = 0b1010_1010

    /// The usage bits that conflict with `mask`, read or write (the kernel's `exclusive_mask`;
    /// its `original_mask` is the same computation): the direction inverted (used in irq <->
    /// irqs enabled), then both the read and the write form of each bit. Which of them really
    /// conflict is decided by how the locks are held along the path (see
    /// ``GraphState/strongSearch(from:forward:rootOnlyRecursive:match:)``).
    static func exclusive(_ mask: UInt8) -> UInt8 {
        var excl = (mask & enabledMask) >> 2 | (mask & usedMask) << 2
        excl |= (excl & readMask) >> 1
        excl |= (excl & writeMask) << 1
        return excl
    }

    /// The kernel's `{+.+.}` string: per irq kind, write then read: '.', '+' (enabled),
    /// '-' (used in irq), '?' (both).
    static func string(_ bits: UInt8) -> String {
        var s = "{"
        for irq in 0..<2 {
            for read in 0..<2 {
                let used = bits & (1 << (irq * 4 + read)) != 0
                let enabled = bits & (1 << (irq * 4 + 2 + read)) != 0
                s += used && enabled ? "?" : used ? "-" : enabled ? "+" : "."
            }
        }
        return s + "}"
    }
}

/// All shared validator state, guarded by one lock taken only on slow paths (new chains,
/// reports, class registration, statistics).
struct GraphState {
    var classNames: [String] = []
    var classValidates: [Bool] = []
    /// Whether the class was registered with a dynamic key (freed with its ``LockClass``).
    var classDynamic: [Bool] = []
    /// Whether the class counts against ``LockdepLimits/maxClasses`` (registered since the last reset).
    var classCounted: [Bool] = []
    /// Whether the class is a per-thread lock (the kernel's `LD_LOCK_PERCPU`, ``LocalLock``): the
    /// irq-inversion searches skip it, as the kernel's `usage_skip` does.
    var classPerCPU: [Bool] = []
    /// Whether holding the class is a raw-spinning section (the kernel's `wait_type_inner ==
    /// LD_WAIT_SPIN`: raw spinlocks, ``LockdepMap/Options/rawSpinning`` maps).
    var classRawSpinning: [Bool] = []
    /// Class numbers of freed dynamic classes, for reuse.
    var freeClassIDs: [UInt32] = []
    /// Classes one of whose locks was destroyed while another thread held it (reported): that
    /// thread's held entry outlives the lock, so the number is never handed out again, where a
    /// new class would be named in reports against the stale entry.
    var retiredClassIDs: Set<UInt32> = []
    /// A freed class number may sit in some thread's chain cache: bump the generation (which
    /// empties every cache) before a freed number is handed out again.
    var freedSinceBump = false
    var registry: [String: UInt32] = [:]
    /// Live classes registered since the last reset (what ``LockdepLimits/maxClasses`` bounds).
    var registeredSinceReset = 0
    var nodes = NodeTable()
    var search = SearchScratch()
    var edgeCount = 0
    var chains: Set<UInt64> = []
    /// For each validated chain holding dynamic classes, those classes (to zap the chain when one goes).
    var chainDynamicClasses: [UInt64: [UInt32]] = [:]
    /// For each dynamic class, the validated chains it is part of.
    var dynamicClassChains: [UInt32: Set<UInt64>] = [:]
    /// Every live thread's name, by serial, and those of the last ``maxExitedHolders`` threads
    /// that exited holding locks.
    var threadNames: [UInt: String] = [:]
    /// Serials of exited threads whose names are still kept, oldest first (bounded).
    var exitedThreads: [UInt] = []
    /// How many exited lock holders keep their names.
    static let maxExitedHolders = 256
    /// Every live thread's pending-acquire cell, by serial (``Lockdep/pendingAcquire(of:)``).
    var pendingCells: [UInt: PendingCell] = [:]
    /// Names given to lock instances (``Lockdep/setInstanceName(_:of:fileID:line:function:)``).
    var instanceNames = InstanceNames()

    /// A thread exited: its name goes with it, unless it exited holding locks, whose owner
    /// words still name it for a later report ("held by thread ..."); those names are kept
    /// for the last ``maxExitedHolders`` such threads.
    mutating func forgetExitedThread(_ serial: UInt, holdsLocks: Bool) {
        guard holdsLocks else {
            threadNames.removeValue(forKey: serial)
            return
        }
        exitedThreads.append(serial)
        if exitedThreads.count > Self.maxExitedHolders {
            threadNames.removeValue(forKey: exitedThreads.removeFirst())
        }
    }
    var nextSerial: UInt = 1
    var reported: Set<String> = []
    var limits = LockdepLimits()
    var mode: Lockdep.ReportHandler = .trap
    var uniqueCounter = 0
    var generation: UInt = 0
    var disabled = false
    var statsEnabled = false
    var stats: [UInt32: ClassStatistics] = [:]

    func nodeName(_ node: UInt32) -> String {
        let cls = Int(node >> 3)
        let base = cls < classNames.count ? classNames[cls] : "class#\(cls)"
        let sub = node & 7
        return sub == 0 ? base : "\(base)/\(sub)"
    }

    func usage(_ node: UInt32) -> String { Usage.string(nodes[node]?.usage ?? 0) }

    /// Publishes a new generation in the state word: every thread empties its chain cache and
    /// re-reads the limits at its next lock operation.
    mutating func bumpGeneration() {
        generation += 1
        StateWord.store((generation << 2) | (statsEnabled ? 2 : 0) | (disabled ? 1 : 0))
        freedSinceBump = false
    }

    // MARK: searches

    /// Breadth-first search for a shortest "strong" path from `start` to `target`.
    ///
    /// A path is strong when no node on it is entered by an edge ending in a recursive read
    /// and left by an edge starting with the node held shared (the kernel's "-(*R)-> -(S*)->":
    /// readers never block a recursive reader). `startRecursive` is how `start` is being
    /// acquired; `targetShared` is whether the final node is held shared (for read, recursive
    /// or not) when the path closes the cycle: then a path reaching it by a recursive read
    /// closes none (the kernel's `hlock_conflict`).
    ///
    /// The states are (node, entered by a recursive read); each is visited at most once per
    /// search, marked with the search's generation, so one search costs O(states + edges
    /// reached) with no allocation once the buffers have grown.
    mutating func strongPath(from start: UInt32, startRecursive: Bool, to target: UInt32,
                             targetShared: Bool) -> [UInt32]? {
        guard let startSlot = nodes.slot(start) else { return nil }
        if nodes.slots[startSlot].out.isEmpty { return nil }
        search.begin(states: nodes.slots.count * 2)
        let gen = search.generation
        let first = startSlot << 1 | (startRecursive ? 1 : 0)
        search.mark[first] = gen
        search.parent[first] = -1
        search.queue.append(Int32(first))
        var head = 0
        while head < search.queue.count {
            let state = Int(search.queue[head]); head += 1
            let slot = state >> 1
            let arrivedRecursive = state & 1 != 0
            let out = nodes.slots[slot].out
            let types = nodes.slots[slot].outTypes
            for k in 0..<out.count {
                let next = out[k]
                let allowed = arrivedRecursive ? types[k] & 0b0011 : types[k]
                if allowed == 0 { continue }
                let nextRecursive = allowed & 0b0101 == 0
                if next == target {
                    if nextRecursive && targetShared { continue }
                    var path = [target]
                    var s = state
                    while s >= 0 {
                        path.append(nodes.slotNode[s >> 1])
                        s = Int(search.parent[s])
                    }
                    return path.reversed()
                }
                guard let nextSlot = nodes.slot(next) else { continue }
                let nextState = nextSlot << 1 | (nextRecursive ? 1 : 0)
                if search.mark[nextState] == gen || (nextRecursive && search.mark[nextSlot << 1] == gen) { continue }
                search.mark[nextState] = gen
                search.parent[nextState] = Int32(state)
                search.queue.append(Int32(nextState))
            }
        }
        return nil
    }

    /// Breadth-first search along strong paths, forward or backward, for a node `match`
    /// accepts: the kernel's `__bfs` with `lock_list::only_xr`, for the irq-usage searches.
    ///
    /// Each visited state is (node, "only recursive"): forward, the node was reached only by
    /// recursive-read acquisitions, so it may be left only by dependencies where it was held
    /// for write; backward, the node is held only shared on the way to the start, so it may be
    /// entered only by dependencies that acquire it non-recursively. `rootOnlyRecursive` is
    /// that state for `start`. `match` gets the node, its usage bits and the state; the start
    /// is matched too. Per-thread (``GraphState/classPerCPU``) nodes are skipped with every
    /// path through them (the kernel's `usage_skip`).
    ///
    /// - Returns: The path from `start` to the matched node, `start` first.
    mutating func strongSearch(from start: UInt32, forward: Bool, rootOnlyRecursive: Bool,
                               match: (UInt32, UInt8, Bool) -> Bool) -> [UInt32]? {
        guard let startSlot = nodes.slot(start) else { return nil }
        search.begin(states: nodes.slots.count * 2)
        let gen = search.generation
        let first = startSlot << 1 | (rootOnlyRecursive ? 1 : 0)
        search.mark[first] = gen
        search.parent[first] = -1
        search.queue.append(Int32(first))
        var head = 0
        while head < search.queue.count {
            let state = Int(search.queue[head]); head += 1
            let slot = state >> 1
            let onlyRecursive = state & 1 != 0
            let node = nodes.slotNode[slot]
            let cls = Int(node >> 3)
            if cls < classPerCPU.count && classPerCPU[cls] { continue }
            if match(node, nodes.slots[slot].usage, onlyRecursive) {
                var path: [UInt32] = []
                var s = state
                while s >= 0 {
                    path.append(nodes.slotNode[s >> 1])
                    s = Int(search.parent[s])
                }
                return path.reversed()
            }
            let list = forward ? nodes.slots[slot].out : nodes.slots[slot].inbound
            let types = forward ? nodes.slots[slot].outTypes : nodes.slots[slot].inTypes
            for k in 0..<list.count {
                var dep = types[k]
                let nextOnlyRecursive: Bool
                if forward {
                    // Reached by a recursive read: leave only where held for write (E*).
                    if onlyRecursive { dep &= 0b0011 }
                    if dep == 0 { continue }
                    nextOnlyRecursive = dep & 0b0101 == 0
                } else {
                    // Held shared from here on: entered only by a non-recursive acquire (*N).
                    if onlyRecursive { dep &= 0b0101 }
                    if dep == 0 { continue }
                    nextOnlyRecursive = dep & 0b0011 == 0
                }
                guard let nextSlot = nodes.slot(list[k]) else { continue }
                let nextState = nextSlot << 1 | (nextOnlyRecursive ? 1 : 0)
                if search.mark[nextState] == gen || (nextOnlyRecursive && search.mark[nextSlot << 1] == gen) { continue }
                search.mark[nextState] = gen
                search.parent[nextState] = Int32(state)
                search.queue.append(Int32(nextState))
            }
        }
        return nil
    }

    // MARK: reach bits

    /// Adds `bits` to the reach of `node` and, through the graph, of the nodes it reaches
    /// (used bits) or that reach it (enabled bits). Stops where the bits are already set, so
    /// each bit enters each node once.
    mutating func propagateReach(_ bits: UInt8, from node: UInt32) {
        guard bits != 0, let s = nodes.slot(node) else { return }
        let forwardBits = bits & Usage.usedMask
        let backwardBits = bits & Usage.enabledMask
        if forwardBits != 0 { spread(forwardBits, from: s, forward: true) }
        if backwardBits != 0 { spread(backwardBits, from: s, forward: false) }
    }

    private mutating func spread(_ bits: UInt8, from slot: Int, forward: Bool) {
        let fresh = bits & ~nodes.slots[slot].reach
        guard fresh != 0 else { return }
        nodes.slots[slot].reach |= fresh
        var work: [Int32] = [Int32(slot)]
        while let s = work.popLast() {
            let list = forward ? nodes.slots[Int(s)].out : nodes.slots[Int(s)].inbound
            for m in list {
                guard let ms = nodes.slot(m) else { continue }
                let add = bits & ~nodes.slots[ms].reach
                if add == 0 { continue }
                nodes.slots[ms].reach |= add
                work.append(Int32(ms))
            }
        }
    }

    /// Records the dependency `from -> to` (new), with its reach bits.
    mutating func addEdge(from: UInt32, to: UInt32, _ edge: Edge) {
        let fs = nodes.slotCreating(from)
        let ts = nodes.slotCreating(to)
        edgeCount += 1
        nodes.slots[fs].out.append(to)
        nodes.slots[fs].outTypes.append(edge.types)
        nodes.slots[fs].edges[to] = edge
        nodes.slots[ts].inbound.append(from)
        nodes.slots[ts].inTypes.append(edge.types)
        let down = nodes.slots[fs].reach & Usage.usedMask & ~nodes.slots[ts].reach
        if down != 0 { spread(down, from: ts, forward: true) }
        let up = nodes.slots[ts].reach & Usage.enabledMask & ~nodes.slots[fs].reach
        if up != 0 { spread(up, from: fs, forward: false) }
    }

    /// The acquisition kinds recorded on the dependency `from -> to`, if it exists.
    func edgeTypes(from: UInt32, to: UInt32) -> UInt8? {
        guard let fs = nodes.slot(from) else { return nil }
        return nodes.slots[fs].edges[to]?.types
    }

    /// Adds acquisition kinds to the existing dependency `from -> to`.
    mutating func addEdgeTypes(from: UInt32, to: UInt32, _ typeBit: UInt8) {
        guard let fs = nodes.slot(from) else { return }
        nodes.slots[fs].edges[to]?.types |= typeBit
        if let k = nodes.slots[fs].out.firstIndex(of: to) { nodes.slots[fs].outTypes[k] |= typeBit }
        if let ts = nodes.slot(to), let k = nodes.slots[ts].inbound.firstIndex(of: from) {
            nodes.slots[ts].inTypes[k] |= typeBit
        }
    }

    // MARK: dynamic classes

    /// Removes class `id`: its nodes with every dependency into or out of them, every
    /// validated chain that holds it, and its statistics; the number becomes reusable.
    mutating func removeClass(_ id: UInt32, key: String) {
        if registry[key] == id { registry.removeValue(forKey: key) }
        for sub in UInt32(0)..<8 {
            let node = id << 3 | sub
            guard let s = nodes.slot(node) else { continue }
            for target in nodes.slots[s].out {
                guard let ts = nodes.slot(target) else { continue }
                if let k = nodes.slots[ts].inbound.firstIndex(of: node) {
                    nodes.slots[ts].inbound.remove(at: k)
                    nodes.slots[ts].inTypes.remove(at: k)
                }
                edgeCount -= 1
            }
            nodes.slots[s].out = []
            nodes.slots[s].outTypes = []
            nodes.slots[s].edges = [:]
            for source in nodes.slots[s].inbound {
                guard let ss = nodes.slot(source), let k = nodes.slots[ss].out.firstIndex(of: node) else { continue }
                nodes.slots[ss].out.remove(at: k)
                nodes.slots[ss].outTypes.remove(at: k)
                nodes.slots[ss].edges.removeValue(forKey: node)
                edgeCount -= 1
            }
            nodes.slots[s].inbound = []
            nodes.slots[s].inTypes = []
            nodes.remove(node)
        }
        if let keys = dynamicClassChains.removeValue(forKey: id) {
            for key in keys {
                chains.remove(key)
                guard let members = chainDynamicClasses.removeValue(forKey: key) else { continue }
                for other in members where other != id { dynamicClassChains[other]?.remove(key) }
            }
        }
        let i = Int(id)
        if i < classCounted.count && classCounted[i] {
            classCounted[i] = false
            registeredSinceReset -= 1
        }
        if i < classDynamic.count { classDynamic[i] = false }
        if !retiredClassIDs.contains(id) { freeClassIDs.append(id) }
        freedSinceBump = true
    }

    /// Records a validated chain, noting the dynamic classes it holds.
    mutating func insertChain(_ key: UInt64, classes: some Sequence<UInt32>) {
        chains.insert(key)
        var dynamic: [UInt32] = []
        for c in classes where Int(c) < classDynamic.count && classDynamic[Int(c)] && !dynamic.contains(c) {
            dynamic.append(c)
        }
        guard !dynamic.isEmpty else { return }
        chainDynamicClasses[key] = dynamic
        for c in dynamic { dynamicClassChains[c, default: []].insert(key) }
    }
}

/// Per-class lock statistics accumulator.
struct ClassStatistics {
    var acquisitions = 0
    var contentions = 0
    var waitMin: UInt64 = .max, waitMax: UInt64 = 0, waitTotal: UInt64 = 0
    var holdMin: UInt64 = .max, holdMax: UInt64 = 0, holdTotal: UInt64 = 0, holds = 0
    var contendingSites: [String: Int] = [:]
}

/// Its lock and the statistics lock are taken before a `fork()` and made new in the child
/// (``ForkHooks``), so a child forked while another thread was in the validator does not hang.
/// Made, with those hooks, inside ``ForkHooks/makeOnce(_:_:)``: a fork while the process's
/// first validator call made it would miss the hooks (and the child wait for ever in its once).
var graph: InternalLockedValue<GraphState> {
    let raw = clockdep_fork_once_value(CLOCKDEP_ONCE_LOCKDEP_GRAPH) ?? ForkHooks.makeOnce(CLOCKDEP_ONCE_LOCKDEP_GRAPH) { madeGraph }
    return Unmanaged<InternalLockedValue<GraphState>>.fromOpaque(raw).takeUnretainedValue()
}

nonisolated(unsafe) private let madeGraph: UnsafeMutableRawPointer = {
    ForkHooks.registerLockdepHooks()
    Engine.rehearseDelivery()
    return Unmanaged.passRetained(InternalLockedValue(GraphState())).toOpaque()
}()
/// The validator's state word — bit 0: validation off; bit 1: statistics on; bits 2...:
/// generation (bumped on reset). A C global alone in its cache line (`clockdep_state`), so the
/// inlined fast path reads it with one load, no accessor call, and no miss for a neighbour's write.
enum StateWord {
    static func load() -> UInt { clockdep_state_word_load() }
    static func store(_ v: UInt) { clockdep_state_word_store(v) }
    static func bitwiseOr(_ v: UInt) { clockdep_state_word_or(v) }
    static func bitwiseAnd(_ v: UInt) { clockdep_state_word_and(v) }
}
