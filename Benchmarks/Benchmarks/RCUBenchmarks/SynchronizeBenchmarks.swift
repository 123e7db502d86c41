import Benchmark
import RCU

/// "Synchronize": `Flavor.synchronize()`, a full grace period with no
/// reader in a section (memb ~1 us with sys_membarrier), per flavor.
func registerSynchronizeBenchmarks() {
    synchronize(RCUMemb.self)
    synchronize(RCUQSBR.self)
    synchronize(RCUBulletproof.self)
    synchronize(RCUMemoryBarrier.self)
}

private func synchronize<Flavor: RCUFlavor>(_ flavor: Flavor.Type) {
    var configuration = BenchmarkDefaults.scaled(.one)
    configuration.maxIterations = 10_000
    // With no reader, an mb or qsbr grace period is 100-210 ns here from run to run (two
    // cache-line round trips): 50% would flag the machine, not the code.
    let tolerance = BenchmarkThresholds(relative: [.p90: 150.0])
    configuration.thresholds?[.wallClock] = tolerance
    configuration.thresholds?[.throughput] = tolerance
    Benchmark("Synchronize.\(Flavor.name)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            Flavor.synchronize()
        }
    }
}
