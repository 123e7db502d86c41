/// What one `urcu` reader thread counted.
struct UrcuReaderResult: Sendable {
    var reads = 0
    /// Reads that found a poisoned node: a grace period ended under the reader.
    var poisoned = 0
    var latency = ReadLatency()
}

/// Collects the threads' results (each thread appends once, when it ends).
final class UrcuResultCollector: @unchecked Sendable {
    private let lock = BaselineMutex()
    private var readers: [UrcuReaderResult] = []
    private var writes: [Int] = []

    func add(_ reader: UrcuReaderResult) {
        lock.withLock { readers.append(reader) }
    }

    func add(writes count: Int) {
        lock.withLock { writes.append(count) }
    }

    /// The readers' results merged, and the writers' total.
    func totals() -> (reader: UrcuReaderResult, writes: Int) {
        lock.withLock {
            var total = UrcuReaderResult()
            for reader in readers {
                total.reads += reader.reads
                total.poisoned += reader.poisoned
                total.latency.merge(reader.latency)
            }
            return (total, writes.reduce(0, +))
        }
    }
}
