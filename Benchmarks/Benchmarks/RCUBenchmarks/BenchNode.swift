/// The object published and retired by the benchmarks: one integer, like
/// the `urcu` stress node.
final class BenchNode: Sendable {
    let value: Int

    init(value: Int) {
        self.value = value
    }
}
