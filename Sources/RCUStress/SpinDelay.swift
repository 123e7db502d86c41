import Synchronization

/// liburcu's `loop_sleep(loops)`: a busy wait of `loops` iterations, used for the
/// reader and writer critical-section durations (`-c`, `-e`) and the writer delay (`-d`).
///
/// Each iteration is a relaxed atomic load the optimiser cannot remove (liburcu
/// uses `caa_cpu_relax()`, a `pause`, which Swift cannot emit directly).
enum SpinDelay {
    private static let spin = Atomic<Int>(0)

    /// Busy-waits for `loops` iterations; returns at once for 0.
    @inline(never)
    static func loop(_ loops: Int) {
        var remaining = loops
        while remaining > 0 {
            _ = spin.load(ordering: .relaxed)
            remaining -= 1
        }
    }
}
