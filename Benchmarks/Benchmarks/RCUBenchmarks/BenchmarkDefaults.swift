import Benchmark

/// Shared settings: short runs, and p90 tolerances generous enough for the
/// shared 2-core machines these run on (see scripts/benchmark-check.sh).
enum BenchmarkDefaults {
    /// Wall-clock and throughput may drift 50% at p90 before a run counts as
    /// a regression: on shared machines a neighbour's build moves them by tens
    /// of percent. Relative only: package-benchmark fails a metric that exceeds
    /// either tolerance, and an absolute one cannot fit metrics from 1 ns to 1 ms.
    static var timeTolerance: BenchmarkThresholds {
        BenchmarkThresholds(relative: [.p90: 50.0])
    }

    /// Allocation counts are deterministic: any extra malloc per iteration is a regression.
    static var mallocTolerance: BenchmarkThresholds {
        BenchmarkThresholds(relative: [.p90: 0.0], absolute: [.p90: 2])
    }

    /// The configuration every suite starts from.
    static var configuration: Benchmark.Configuration {
        .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            timeUnits: .nanoseconds,
            warmupIterations: 3,
            scalingFactor: .one,
            maxDuration: .seconds(1),
            maxIterations: 1_000,
            thresholds: [
                .wallClock: timeTolerance,
                .throughput: timeTolerance,
                .mallocCountTotal: mallocTolerance,
            ]
        )
    }

    /// `configuration` with a different scaling factor (operations per measured iteration).
    static func scaled(_ factor: BenchmarkScalingFactor) -> Benchmark.Configuration {
        var configuration = configuration
        configuration.scalingFactor = factor
        return configuration
    }
}

// Benchmark names use "." and "_", never "/" or spaces: package-benchmark 1.38.1
// writes threshold files with "/" and " " replaced by "_" but looks them up by the
// raw name, so a name with either could never be checked.
