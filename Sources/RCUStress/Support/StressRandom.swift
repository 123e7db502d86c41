/// The harness's one pseudo-random generator (xorshift64*), one per thread: a few
/// instructions and no shared state, so it does not show up in the reads it drives
/// (registry devices, container keys, the lock graph's random dependencies).
struct StressRandom {
    private var state: UInt64

    /// Creates a generator; distinct seeds give distinct streams (0 is mapped to a constant).
    init(seed: UInt64) {
        state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed &* 0x9E37_79B9_7F4A_7C15
    }

    /// The next 64 random bits.
    @inline(__always)
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    /// A random index in `0..<count` (multiply-shift: no division on the hot path).
    @inline(__always)
    mutating func index(below count: Int) -> Int {
        Int(truncatingIfNeeded: ((next() >> 32) &* UInt64(count)) >> 32)
    }
}
