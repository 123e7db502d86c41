import Synchronization

/// The object `rcu-stress urcu` publishes: liburcu's `int *` holding 8.
///
/// Writers allocate a node holding ``live`` and publish it; once a grace period
/// has passed, the old node is *poisoned* (its value set to ``poison``, as
/// liburcu's writer does with `*old = 0`) and freed. The poisoning happens in
/// `deinit`, which runs when the last reference is dropped, so it is observable
/// despite ARC: the node is released exactly when the grace-period machinery
/// says no reader can hold it. A reader that finds ``poison`` in a node it
/// reached inside a read section has proof of a broken grace period.
///
/// The value is atomic so a reader racing a (broken) writer's poisoning is a
/// well-defined read, not a data race.
final class StressNode: Sendable {
    /// The value of a published node.
    static let live = 8
    /// The value of a node whose grace period has ended.
    static let poison = 0

    let value = Atomic<Int>(StressNode.live)

    init() {}

    /// Poisons the node now; a later `deinit` poisons it again (idempotent).
    func poisonNow() {
        value.store(Self.poison, ordering: .relaxed)
    }

    /// Makes a node live again (only the lock baselines, whose writers update in place).
    func makeLive() {
        value.store(Self.live, ordering: .relaxed)
    }

    /// Whether a reader may see this value in a published or grace-protected node.
    @inline(__always)
    var isLive: Bool {
        value.load(ordering: .relaxed) == Self.live
    }

    deinit {
        value.store(Self.poison, ordering: .relaxed)
    }
}

/// A batch of unpublished nodes retired together with one call_rcu (`-b BATCH`).
///
/// Its `deinit` runs on a call_rcu worker after a grace period that began after
/// every node in it was unpublished; it poisons each node before dropping it.
final class StressNodeBatch: Sendable {
    let nodes: [StressNode]

    init(_ nodes: [StressNode]) {
        self.nodes = nodes
    }

    deinit {
        for node in nodes { node.poisonNow() }
    }
}
