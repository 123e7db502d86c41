import Benchmark
import RCU

/// "Retire": `Flavor.retire(_:)`, handing an unpublished object to call_rcu
/// (~60 ns: one small allocation and a wait-free enqueue), per flavor.
/// The objects are created before the measurement, so only the retire is timed.
func registerRetireBenchmarks() {
    retire(RCUMemb.self)
    retire(RCUQSBR.self)
    retire(RCUBulletproof.self)
    retire(RCUMemoryBarrier.self)
    retireWithWork(RCUMemb.self)
}

private func retire<Flavor: RCUFlavor>(_ flavor: Flavor.Type) {
    Benchmark("Retire.\(Flavor.name).retire", configuration: BenchmarkDefaults.scaled(.kilo)) { benchmark in
        var objects = (0..<benchmark.scaledIterations.count).map { BenchNode(value: $0) }
        benchmark.startMeasurement()
        while let object = objects.popLast() {
            Flavor.retire(object)
        }
        benchmark.stopMeasurement()
        Flavor.barrier()
    }
}

/// Work at the end of the grace period, two ways: a closure capturing the object (its box
/// and liburcu's node: 2 allocations; a closure of one object reference needs no context)
/// against `retire(reclaiming:)` (the node only). The malloc counts are checked exactly.
private func retireWithWork<Flavor: RCUFlavor>(_ flavor: Flavor.Type) {
    Benchmark("Retire.\(Flavor.name).closure", configuration: BenchmarkDefaults.scaled(.kilo)) { benchmark in
        var objects = (0..<benchmark.scaledIterations.count).map { ReclaimedBenchNode(value: $0) }
        benchmark.startMeasurement()
        while let object = objects.popLast() {
            Flavor.retire { object.reclaim() }
        }
        benchmark.stopMeasurement()
        Flavor.barrier()
    }
    Benchmark("Retire.\(Flavor.name).reclaiming", configuration: BenchmarkDefaults.scaled(.kilo)) { benchmark in
        var objects = (0..<benchmark.scaledIterations.count).map { ReclaimedBenchNode(value: $0) }
        benchmark.startMeasurement()
        while let object = objects.popLast() {
            Flavor.retire(reclaiming: object)
        }
        benchmark.stopMeasurement()
        Flavor.barrier()
    }
}
