#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Nanosecond timestamps from `CLOCK_MONOTONIC` (vDSO, about 20 ns a call).
enum MonotonicClock {
    /// The current monotonic time in nanoseconds.
    @inline(__always)
    static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// The median cost of one back-to-back pair of ``nanoseconds()`` calls: what a
    /// sampled latency includes besides the timed code itself.
    static func timerOverheadNanoseconds(samples: Int = 10_001) -> UInt64 {
        var deltas = [UInt64]()
        deltas.reserveCapacity(samples)
        for _ in 0..<samples {
            let start = nanoseconds()
            deltas.append(nanoseconds() &- start)
        }
        deltas.sort()
        return deltas[deltas.count / 2]
    }
}
