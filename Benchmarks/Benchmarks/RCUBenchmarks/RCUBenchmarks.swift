import Benchmark

/// The suites, registered in report order. package-benchmark's generated
/// `main` calls this closure once to collect them.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = BenchmarkDefaults.configuration
    registerReadSectionBenchmarks()
    registerPublishBenchmarks()
    registerRetireBenchmarks()
    registerHashMapBenchmarks()
    registerSynchronizeBenchmarks()
    registerLockBenchmarks()
}
