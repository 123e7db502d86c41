#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCU
import Synchronization

/// Where a torture run starts and stops its threads.
///
/// Threads block (a condition variable, not a spin) until every one is ready,
/// so creating and registering hundreds of threads is not slowed by the ones
/// already waiting, and the run's duration is measured from the moment all of
/// them are released. They then run until ``stop``.
final class TortureGate: Sendable {
    private let start = StressCondition((ready: 0, open: false))
    private let stopFlag = Atomic<Bool>(false)

    /// A thread says it is ready, then sleeps until ``go()``.
    func arriveAndWait() {
        start.update { $0.ready += 1 }
        start.wait { $0.open }
    }

    /// The main thread waits until `count` threads have arrived.
    func waitUntilReady(_ count: Int) {
        start.wait { $0.ready >= count }
    }

    /// Releases every waiting thread.
    func go() {
        start.update { $0.open = true }
    }

    /// Tells the threads to finish.
    func stop() { stopFlag.store(true, ordering: .releasing) }

    /// Whether the run is over (a relaxed load: checked once per iteration).
    @inline(__always)
    var shouldStop: Bool { stopFlag.load(ordering: .relaxed) }
}

/// A one-shot completion the stress updater waits on while its call_rcu
/// callback is pending (liburcu's `call_rcu_test_cond`).
final class TortureCompletion: Sendable {
    private let done = StressCondition(false)

    func signal() { done.update { $0 = true } }

    func wait() { done.wait { $0 } }
}

/// How long a run's phases took, in seconds.
struct TortureTiming: Sendable {
    /// Creating, registering and readying every thread.
    var start = 0.0
    /// From release to the stop flag.
    var run = 0.0
    /// From the scheduled end of the run (release + duration) to the last join.
    var stop = 0.0
}

/// Thread start and stop for every torture mode.
enum TortureThreads {
    /// Online CPUs (`_SC_NPROCESSORS_ONLN`).
    static var onlineCPUs: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Threads a run may start per online CPU.
    ///
    /// rcutorture's threads never block, so every one must be scheduled once to
    /// see the stop flag, and a grace period waits for every reader preempted in
    /// a section: start and stop grow with threads per CPU. At this cap on 2 CPUs
    /// (128 threads, release build, shared machine), start took at most 0.11 s and
    /// stop at most 0.66 s over every flavor in the kernel, perf and stress modes.
    static let maxThreadsPerCPU = 64

    /// The most threads a run may start on this machine.
    static var maxThreads: Int { min(Urcu.maxThreads, maxThreadsPerCPU * onlineCPUs) }

    /// Starts one thread per body, waits until each has called
    /// ``TortureGate/arriveAndWait()``, releases them, waits `seconds` while the
    /// monitor samples, stops them and joins them.
    static func run(
        _ bodies: [@Sendable (TortureGate) -> Void], seconds: Double,
        monitor: inout StressMonitor, counters: [PaddedCounter]
    ) -> TortureTiming {
        let gate = TortureGate()
        var timing = TortureTiming()
        let created = MonotonicClock.nanoseconds()
        let threads = bodies.map { body in StressThread { body(gate) } }
        gate.waitUntilReady(bodies.count)
        timing.start = Double(MonotonicClock.nanoseconds() - created) / 1e9
        let released = MonotonicClock.nanoseconds()
        gate.go()
        timing.run = monitor.wait(seconds: seconds, counters: counters)
        gate.stop()
        threads.forEach { $0.join() }
        // From the scheduled end: a main thread woken late among spinning threads counts as stop time.
        timing.stop = Double(MonotonicClock.nanoseconds() - released) / 1e9 - seconds
        return timing
    }
}

/// The flavor-specific duties of a torture thread, in generic code.
enum TortureQuiescence<Flavor: RCUFlavor> {
    /// QSBR's quiescent state (`rcu_quiescent_state`); nothing for the other flavors.
    @inline(__always)
    static func quiescentState() {
        Flavor.quiescentStateIfQSBR()
    }

    /// Runs `body` offline for QSBR (`put_thread_offline`), as is for the other flavors.
    static func offline(_ body: () -> Void) {
        Flavor.offlineIfQSBR(body)
    }
}
