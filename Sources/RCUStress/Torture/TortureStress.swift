#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCU
import Synchronization

/// One element of liburcu's stress test (`struct rcu_stress`): its age in
/// updates since it was unpublished, and `mbtest`, 0 while the updater
/// reinitialises it.
final class TortureStressElement: Sendable {
    let pipeCount = Atomic<Int>(0)
    let mbtest = Atomic<Int>(0)
    init() {}
}

/// liburcu's rcutorture stress mode (`stresstest` in tests/regression/rcutorture.h)
/// on the Swift API.
///
/// Ten elements (`RCU_STRESS_PIPE_LEN`) circulate. The updater takes the next
/// one, clears `mbtest`, resets its age, sets `mbtest`, publishes it, ages every
/// other element by one, then waits for a grace period: on odd updates with
/// `synchronize()`, on even ones by queueing a callback and waiting until it
/// runs (the call_rcu path through the run's callback workers). An element is
/// reused only after nine more grace periods. Five more updaters wait for grace
/// periods with a 1 ms pause between them, as liburcu's `rcu_fake_update_stress_test`.
///
/// Readers dereference the published element, count it as an `mberror` when
/// its `mbtest` is 0 (reinitialised under them), spin in a nested section, then
/// read its age ("rcu_stress_count"). With working RCU no age past 1 can be seen:
/// liburcu's test fails on `n_mberror` alone; this one also on any age past 1.
/// QSBR readers announce a quiescent state after every read and, every 4096,
/// go offline and wait for a grace period (`put_thread_online_delay`).
enum TortureStress<Flavor: RCUFlavor> {
    /// liburcu's `RCU_STRESS_PIPE_LEN`.
    static var pipeLength: Int { TortureElement.pipeLength }
    /// liburcu's five `rcu_fake_update_stress_test` threads.
    static var fakeUpdaters: Int { 5 }

    /// The published pointer and the elements, shared by the threads.
    final class Shared: Sendable {
        let pool: [TortureStressElement]
        let pointer: RCUPointer<TortureStressElement, Flavor>
        init() {
            pool = (0..<TortureStress.pipeLength).map { _ in TortureStressElement() }
            pool[0].mbtest.store(1, ordering: .relaxed)
            pointer = RCUPointer(pool[0])
        }
    }

    static func run(
        seconds: Double, readers: Int, workers: TortureCallbackWorkers, brokenWriter: Bool
    ) -> TortureResult {
        let shared = Shared()
        let counters = (0..<(readers + 1)).map { _ in PaddedCounter() }
        let results = TortureCollector()
        let probes = TortureProbes()
        let setup = TortureWorkerSetup<Flavor>(workers: workers, probes: probes)

        var bodies: [@Sendable (TortureGate) -> Void] = counters.prefix(readers).map { counter in
            { gate in results.add(reader: read(shared, gate, counter: counter)) }
        }
        let updaterCounter = counters[readers]
        // liburcu's updater uses the shared or per-CPU workers; here it also gets its own
        // worker in per-thread mode, so the mode's worker carries the stress test's callbacks.
        bodies.append { gate in
            setup.updaterBegins()
            results.add(writer: update(shared, gate, counter: updaterCounter, brokenWriter: brokenWriter))
            setup.updaterEnds()
        }
        for _ in 0..<fakeUpdaters {
            bodies.append { gate in
                setup.updaterBegins()
                fakeUpdate(gate)
                setup.updaterEnds()
            }
        }
        setup.beforeRun()
        var monitor = StressMonitor(unit: "reads", backlog: { Flavor.pendingCallbacks })
        let timing = TortureThreads.run(bodies, seconds: seconds, monitor: &monitor, counters: Array(counters.prefix(readers)))
        monitor.sample()
        Flavor.barrier()
        setup.afterRun()

        var total = results.total(flavor: Flavor.name)
        total.record(mode: .stress, workers: workers, readers: readers, updaters: 1 + fakeUpdaters, timing: timing,
                     monitor: monitor, probes: probes)
        total.brokenWriter = brokenWriter
        return total
    }

    /// `rcu_update_stress_test`.
    static func update(_ shared: Shared, _ gate: TortureGate, counter: PaddedCounter, brokenWriter: Bool) -> TortureResult {
        var result = TortureResult(flavor: Flavor.name)
        var current = 0
        var updates = 0
        gate.arriveAndWait()
        while !gate.shouldStop {
            let next = (current + 1) % pipeLength
            let element = shared.pool[next]
            element.mbtest.store(0, ordering: .relaxed)
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            element.pipeCount.store(0, ordering: .relaxed)
            element.mbtest.store(1, ordering: .relaxed)
            _ = shared.pointer.exchange(element)    // rcu_assign_pointer; the pool keeps the old one
            current = next
            for (index, other) in shared.pool.enumerated() where index != current {
                other.pipeCount.wrappingAdd(1, ordering: .relaxed)
            }
            if !brokenWriter {
                if updates & 1 == 1 {
                    Flavor.synchronize()
                } else {
                    let completion = TortureCompletion()
                    Flavor.retire { completion.signal() }
                    completion.wait()
                }
            }
            updates += 1
            counter.publish(updates)
        }
        result.gracePeriods = updates
        return result
    }

    /// `rcu_fake_update_stress_test`: more grace periods, 1 ms apart.
    static func fakeUpdate(_ gate: TortureGate) {
        gate.arriveAndWait()
        while !gate.shouldStop {
            Flavor.synchronize()
            _ = poll(nil, 0, 1)
        }
    }

    /// `rcu_read_stress_test`.
    static func read(_ shared: Shared, _ gate: TortureGate, counter: PaddedCounter) -> TortureResult {
        var result = TortureResult(flavor: Flavor.name)
        var reads = 0
        var garbage = 0
        Flavor.withReader { reader in
            TortureQuiescence<Flavor>.offline { gate.arriveAndWait() }
            while !gate.shouldStop {
                var age = 0
                reader.read { section in
                    shared.pointer.withValue(in: section) { element in
                        if element.mbtest.load(ordering: .relaxed) == 0 { result.mbErrors += 1 }
                        reader.read { _ in
                            for _ in 0..<100 { garbage &+= 1 }
                        }
                        age = element.pipeCount.load(ordering: .relaxed)
                    }
                }
                result.readerPipe[age < 0 || age > pipeLength ? pipeLength : age] += 1
                reads += 1
                TortureQuiescence<Flavor>.quiescentState()
                if reads % 0x1000 == 0 {
                    // put_thread_offline(); put_thread_online_delay() (synchronize_rcu for QSBR)
                    if Flavor.flavorDescription.isQSBR { Flavor.offlineIfQSBR { Flavor.synchronize() } }
                    counter.publish(reads)
                }
            }
        }
        result.reads = reads
        // Keep the nested section's work observable, as liburcu's global `garbage` is.
        if garbage == -1 { print("") }
        return result
    }
}
