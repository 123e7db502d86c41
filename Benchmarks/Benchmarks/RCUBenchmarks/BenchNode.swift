import RCU

/// The object published and retired by the benchmarks: one integer, like
/// the `urcu` stress node.
final class BenchNode: Sendable {
    let value: Int

    init(value: Int) {
        self.value = value
    }
}

/// A node that finishes its own reclamation (`retire(reclaiming:)`): `reclaim()` is the
/// work a retired closure would do.
final class ReclaimedBenchNode: RCUReclaimable {
    let value: Int

    init(value: Int) {
        self.value = value
    }

    func reclaim() { precondition(value >= 0) }
}
