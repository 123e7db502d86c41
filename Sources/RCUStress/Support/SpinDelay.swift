import CReference

/// liburcu's `loop_sleep(loops)`: a busy wait of `loops` iterations, used for the
/// reader and writer critical-section durations (`-c`, `-e`) and the writer delay (`-d`).
///
/// Each iteration is liburcu's `caa_cpu_relax()` (a `pause` on x86, through the
/// inline `creference_cpu_relax`), so a delay of N loops lasts as long as test_urcu's.
/// Callers test for 0 first, as test_urcu does (`if (caa_unlikely(rduration))`), so
/// a run without delays never calls it.
enum SpinDelay {
    /// Busy-waits for `loops` iterations; returns at once for 0.
    @inline(never)
    static func loop(_ loops: Int) {
        var remaining = loops
        while remaining > 0 {
            creference_cpu_relax()
            remaining &-= 1
        }
    }
}
