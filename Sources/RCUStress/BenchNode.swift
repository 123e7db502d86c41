/// The object the read-cost loops dereference: one integer field, like
/// `struct creference_node` on the C side.
final class BenchNode: Sendable {
    let value: Int

    init(value: Int) {
        self.value = value
    }
}
