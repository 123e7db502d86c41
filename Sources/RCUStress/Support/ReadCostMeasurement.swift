/// A read loop returned a sum that does not match the values it should have read.
struct ReadCostError: Error, CustomStringConvertible {
    let description: String
}

/// Minimum-of-rounds timing of read loops that alternate within one process.
///
/// The machines this runs on are shared: other processes steal cycles in
/// bursts. Alternating the loops round by round exposes each to the same
/// noise, and the minimum over rounds is the run least disturbed by it.
struct ReadCostMeasurement {
    /// Read sections per loop run.
    let iterations: Int
    /// Timed runs of each loop.
    let rounds: Int

    /// Runs `loop(side, iterations)` for every side in turn, `rounds` times,
    /// after one untimed warm-up run of each side.
    ///
    /// - Parameters:
    ///   - sides: The number of loops compared; `loop` gets `0..<sides`.
    ///   - loop: Runs `iterations` reads of a `BenchNode` holding 1 and returns their sum.
    /// - Returns: The minimum nanoseconds per read of each side.
    /// - Throws: ``ReadCostError`` if a sum is not `iterations` (a broken loop).
    func nanosecondsPerRead(
        sides: Int, _ loop: (_ side: Int, _ iterations: Int) -> Int
    ) throws(ReadCostError) -> [Double] {
        for side in 0..<sides {
            _ = loop(side, max(1, iterations / 10))
        }
        var best = Array(repeating: Double.infinity, count: sides)
        let clock = ContinuousClock()
        for _ in 0..<rounds {
            for side in 0..<sides {
                var sum = 0
                let elapsed = clock.measure { sum = loop(side, iterations) }
                guard sum == iterations else {
                    throw ReadCostError(description: "read loop \(side) summed \(sum), expected \(iterations)")
                }
                best[side] = min(best[side], Self.nanoseconds(elapsed) / Double(iterations))
            }
        }
        return best
    }

    static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}
