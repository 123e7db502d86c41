import CLockdepThread
internal import Synchronization

/// One dependency edge `from -> to` with the kinds of acquisitions seen on it.
struct Edge {
    /// Bit set over (fromRecursive, toRecursive): bit 0 N->N, 1 N->R, 2 R->N, 3 R->R.
    var types: UInt8
    var fromSite: LockdepSite
    var toSite: LockdepSite
    var thread: String
    var stack: [UInt]
}

/// A node of the dependency graph: one (class, subclass).
struct Node {
    var usage: UInt8 = 0
    var usageSites: [LockdepSite?] = Array(repeating: nil, count: 8)
    var out: [UInt32] = []
    var inbound: [UInt32] = []
    var edges: [UInt32: Edge] = [:]
}

/// Usage bits, as the kernel's LOCK_USED_IN_HARDIRQ etc.: irq * 4 + (enabled ? 2 : 0) + read.
enum Usage {
    static let names = ["IN-HARDIRQ-W", "IN-HARDIRQ-R", "HARDIRQ-ON-W", "HARDIRQ-ON-R",
                        "IN-SOFTIRQ-W", "IN-SOFTIRQ-R", "SOFTIRQ-ON-W", "SOFTIRQ-ON-R"]

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
    var registry: [String: UInt32] = [:]
    var registeredSinceReset = 0
    var nodes: [UInt32: Node] = [:]
    var edgeCount = 0
    var chains: Set<UInt64> = []
    var threadNames: [UInt: String] = [:]
    /// Every live thread's pending-acquire cell, by serial (``Lockdep/pendingAcquire(of:)``).
    var pendingCells: [UInt: PendingCell] = [:]
    var nextSerial: UInt = 1
    var reported: Set<String> = []
    var limits = LockdepLimits()
    var mode: LockdepReportMode = .trap
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

    /// Breadth-first search for a shortest "strong" path from `start` to `target`.
    ///
    /// A path is strong when no node on it is entered by an edge ending in a recursive read
    /// and left by an edge starting with a recursive read (recursive readers never block each
    /// other). `startRecursive` is how `start` is being acquired; `targetRecursive` is how the
    /// final node is held when the path closes the cycle.
    func strongPath(from start: UInt32, startRecursive: Bool, to target: UInt32, targetRecursive: Bool) -> [UInt32]? {
        var parent: [UInt64: UInt64] = [:]
        var visited: Set<UInt64> = []
        var queue: [UInt64] = []
        let first = UInt64(start) << 1 | (startRecursive ? 1 : 0)
        visited.insert(first)
        queue.append(first)
        var head = 0
        while head < queue.count {
            let state = queue[head]; head += 1
            let node = UInt32(truncatingIfNeeded: state >> 1)
            let arrivedRecursive = state & 1 != 0
            guard let n = nodes[node] else { continue }
            for next in n.out {
                guard let edge = n.edges[next] else { continue }
                let allowed = arrivedRecursive ? edge.types & 0b0011 : edge.types
                if allowed == 0 { continue }
                let nextRecursive = allowed & 0b0101 == 0
                let nextState = UInt64(next) << 1 | (nextRecursive ? 1 : 0)
                if next == target {
                    if nextRecursive && targetRecursive { continue }
                    var path = [target]
                    var s = state
                    while true {
                        path.append(UInt32(truncatingIfNeeded: s >> 1))
                        guard let p = parent[s] else { break }
                        s = p
                    }
                    return path.reversed()
                }
                if visited.contains(nextState) || (nextRecursive && visited.contains(UInt64(next) << 1)) { continue }
                visited.insert(nextState)
                parent[nextState] = state
                queue.append(nextState)
            }
        }
        return nil
    }

    /// Nodes reachable from `start` (forward) or reaching it (backward), `start` included,
    /// with a parent map for path reconstruction.
    func closure(of start: UInt32, forward: Bool) -> (order: [UInt32], parent: [UInt32: UInt32]) {
        var order = [start]
        var parent: [UInt32: UInt32] = [:]
        var seen: Set<UInt32> = [start]
        var head = 0
        while head < order.count {
            let n = order[head]; head += 1
            guard let node = nodes[n] else { continue }
            for m in forward ? node.out : node.inbound where !seen.contains(m) {
                seen.insert(m); parent[m] = n; order.append(m)
            }
        }
        return (order, parent)
    }

    func pathTo(_ n: UInt32, parent: [UInt32: UInt32]) -> [UInt32] {
        var path = [n]
        var cur = n
        while let p = parent[cur] { path.append(p); cur = p }
        return path.reversed()
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

let graph = LockedBox(GraphState())
/// The validator's state word — bit 0: validation off; bit 1: statistics on; bits 2...:
/// generation (bumped on reset). A C global (`clockdep_state_word`), so the inlined fast path
/// reads it with one load and no accessor call.
enum StateWord {
    static func load() -> UInt { clockdep_state_word_load() }
    static func store(_ v: UInt) { clockdep_state_word_store(v) }
    static func bitwiseOr(_ v: UInt) { clockdep_state_word_or(v) }
    static func bitwiseAnd(_ v: UInt) { clockdep_state_word_and(v) }
}
