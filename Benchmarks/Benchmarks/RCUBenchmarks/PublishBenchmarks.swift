import Benchmark
import RCU

/// "Publish": `RCUPointer.replace(with:)`, the writer's publish of a new
/// object (one allocation, an atomic exchange and a call_rcu enqueue of the
/// old object), per flavor. The callbacks run on liburcu's call_rcu thread;
/// each benchmark waits for them (`barrier()`) outside the measurement.
func registerPublishBenchmarks() {
    publish(RCUMemb.self)
    publish(RCUQSBR.self)
    publish(RCUBulletproof.self)
    publish(RCUMemoryBarrier.self)
}

private func publish<Flavor: RCUFlavor>(_ flavor: Flavor.Type) {
    Benchmark("Publish.\(Flavor.name).replace", configuration: BenchmarkDefaults.scaled(.kilo)) { benchmark in
        let pointer = RCUPointer<BenchNode, Flavor>(BenchNode(value: 0))
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            pointer.replace(with: BenchNode(value: index))
        }
        benchmark.stopMeasurement()
        Flavor.barrier()
    }
}
