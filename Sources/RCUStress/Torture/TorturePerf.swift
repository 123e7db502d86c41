#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCU

/// liburcu's rcutorture performance modes (`perftest`, `rperftest`, `uperftest`
/// in tests/regression/rcutorture.h) on the Swift API.
///
/// Readers run empty read sections in batches of 1000 (`RCU_READ_RUN`), QSBR
/// readers announcing a quiescent state after each batch; updaters wait for
/// grace periods back to back. `perf` runs the readers and one updater, `rperf`
/// the readers alone, `uperf` updaters alone. Each updater sets up its
/// callback worker as the mode asks (per-thread: a worker of its own, freed
/// when it ends) and queues one probe callback before it ends; the run checks
/// after a barrier that every probe ran.
enum TorturePerf<Flavor: RCUFlavor> {
    /// liburcu's `RCU_READ_RUN`: read sections per batch.
    static var readRun: Int { 1000 }

    static func run(
        mode: TortureMode, seconds: Double, threads count: Int, workers: TortureCallbackWorkers
    ) -> TortureResult {
        let readers = mode == .uperf ? 0 : count
        let updaters = switch mode {
        case .perf: 1
        case .uperf: count
        default: 0
        }
        let counters = (0..<(readers + updaters)).map { _ in PaddedCounter() }
        let results = TortureCollector()
        let probes = TortureProbes()
        let setup = TortureWorkerSetup<Flavor>(workers: workers, probes: probes)

        var bodies: [@Sendable (TortureGate) -> Void] = counters.prefix(readers).map { counter in
            { gate in results.add(reader: read(gate, counter: counter)) }
        }
        bodies += counters.suffix(updaters).map { counter in
            { gate in
                setup.updaterBegins()
                results.add(updater: update(gate, counter: counter))
                setup.updaterEnds()
            }
        }
        setup.beforeRun()
        var monitor = StressMonitor(unit: readers > 0 ? "reads" : "updates", backlog: { Flavor.pendingCallbacks })
        let timing = TortureThreads.run(bodies, seconds: seconds, monitor: &monitor, counters: counters)
        monitor.sample()
        Flavor.barrier()
        setup.afterRun()

        var total = results.total(flavor: Flavor.name)
        total.record(mode: mode, workers: workers, readers: readers, updaters: updaters, timing: timing,
                     monitor: monitor, probes: probes)
        return total
    }

    /// `rcu_read_perf_test`: empty read sections, counted in batches.
    static func read(_ gate: TortureGate, counter: PaddedCounter) -> TortureResult {
        var result = TortureResult(flavor: Flavor.name)
        var reads = 0
        Flavor.withReader { reader in
            TortureQuiescence<Flavor>.offline { gate.arriveAndWait() }
            while !gate.shouldStop {
                for _ in 0..<readRun {
                    reader.read { _ in }
                }
                reads += readRun
                TortureQuiescence<Flavor>.quiescentState()
                counter.publish(reads)
            }
        }
        result.reads = reads
        return result
    }

    /// `rcu_update_perf_test`: grace periods back to back.
    static func update(_ gate: TortureGate, counter: PaddedCounter) -> TortureResult {
        var result = TortureResult(flavor: Flavor.name)
        gate.arriveAndWait()
        while !gate.shouldStop {
            Flavor.synchronize()
            result.gracePeriods += 1
            counter.publish(result.gracePeriods)
        }
        return result
    }
}
