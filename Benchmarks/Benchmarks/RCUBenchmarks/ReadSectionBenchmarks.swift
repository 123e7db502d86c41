import Benchmark
import RCU

/// "ReadSection": one read-side critical section that dereferences a
/// published pointer, per flavor, through a `withReader` scope's reader (for qsbr:
/// online for the whole scope) and through the generic `Flavor.read`.
/// Expected: ~1 ns memb, under 1 ns for qsbr in a scope, ~1.5 ns bp, ~50 ns mb; no allocation.
func registerReadSectionBenchmarks() {
    readSection(RCUMemb.self)
    readSection(RCUQSBR.self)
    readSection(RCUBulletproof.self)
    readSection(RCUMemoryBarrier.self)
}

private func readSection<Flavor: RCUFlavor>(_ flavor: Flavor.Type) {
    // mb sections cost a fence each: fewer per measured iteration.
    let factor: BenchmarkScalingFactor = Flavor.kind == .memoryBarrier ? .kilo : .mega
    Benchmark("ReadSection.\(Flavor.name).RCUReader", configuration: BenchmarkDefaults.scaled(factor)) { benchmark in
        let pointer = RCUPointer<BenchNode, Flavor>(BenchNode(value: 1))
        var sum = 0
        Flavor.withReader { reader in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                reader.read { section in
                    pointer.withValue(in: section) { sum &+= $0.value }
                }
            }
            benchmark.stopMeasurement()
        }
        blackHole(sum)
    }
    Benchmark("ReadSection.\(Flavor.name).generic", configuration: BenchmarkDefaults.scaled(factor)) { benchmark in
        let pointer = RCUPointer<BenchNode, Flavor>(BenchNode(value: 1))
        var sum = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            Flavor.read { section in
                pointer.withValue(in: section) { sum &+= $0.value }
            }
        }
        benchmark.stopMeasurement()
        blackHole(sum)
    }
}
