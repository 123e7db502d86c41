import CReference

/// The object the read-cost loops dereference: one integer field, like
/// `struct creference_node` on the C side.
final class BenchNode: Sendable {
    let value: Int

    init(value: Int) {
        self.value = value
    }

    /// A node holding 1, a value the optimiser cannot see.
    ///
    /// Built from a literal, every `BenchNode.value` would be provably 1 and
    /// Swift's let-property propagation would delete the load from the read
    /// loops (it did: the loop returned `iterations` without reading the object).
    static func one() -> BenchNode {
        BenchNode(value: creference_opaque(1))
    }
}
