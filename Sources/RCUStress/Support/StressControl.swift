import CReference
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// The flags and counters the stress threads share with the main thread.
///
/// Threads wait for ``go`` (so they all start together, as in liburcu's
/// benchmarks), then run until ``stop``. Each thread publishes its running
/// count in its own cache line now and then, for the progress line; the final
/// counts travel back in the threads' results.
final class StressControl: Sendable {
    let go = Atomic<Bool>(false)
    let stop = Atomic<Bool>(false)
    /// One running count per thread, readers first.
    let counters: [PaddedCounter]

    init(threads: Int) {
        counters = (0..<threads).map { _ in PaddedCounter() }
    }

    /// Waits until the main thread says go, yielding the CPU between looks: with more threads
    /// than CPUs, pure spinners starve the main thread still creating the others (63 readers
    /// on 2 CPUs took 1.5 s to start in a debug build). What is timed starts at go.
    func waitForGo() {
        while !go.load(ordering: .acquiring) { sched_yield() }
    }

    /// Whether the run is over (a relaxed load: checked once per read).
    @inline(__always)
    var shouldStop: Bool { stop.load(ordering: .relaxed) }
}

/// A counter alone in its cache line (with the class header, 128 bytes), so
/// threads publishing their counts do not slow each other down.
final class PaddedCounter: Sendable {
    let value = Atomic<Int>(0)
    /// While not 0, the address of the running count in the owning thread's thread-local
    /// (an `urcu` reader's, kept as test_urcu keeps it), read instead of ``value``.
    let threadLocal = Atomic<UInt>(0)
    private let padding: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// The running count, for the progress line.
    var running: Int {
        if let count = UnsafePointer<UInt>(bitPattern: threadLocal.load(ordering: .acquiring)) {
            return Int(creference_urcu_reads_at(count))
        }
        return value.load(ordering: .relaxed)
    }

    /// Publishes `count` (relaxed: only the progress line reads it).
    @inline(__always)
    func publish(_ count: Int) {
        value.store(count, ordering: .relaxed)
    }
}
