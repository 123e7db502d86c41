import ArgumentParser
import RCU

/// `rcu-stress torture --callback-workers`: where the run's call_rcu callbacks
/// run (liburcu's `callrcu_global`, `callrcu_percpu`, `callrcu_perthread`).
enum TortureCallbackWorkers: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// The one process-wide worker (``RCUCallbackWorkers/shared``).
    case global
    /// A worker per CPU, created before the threads and freed after them (``RCUCallbackWorkers/perCPU``).
    case perCPU = "per-cpu"
    /// A worker for each updater thread, freed when it ends (``RCUCallbackWorkers/perThread``).
    case perThread = "per-thread"
    /// The three in turn.
    case all

    /// The choices this one stands for, in report order.
    var choices: [TortureCallbackWorkers] {
        self == .all ? [.global, .perCPU, .perThread] : [self]
    }

    /// liburcu's argument for it.
    var liburcuName: String {
        switch self {
        case .global: "callrcu_global"
        case .perCPU: "callrcu_percpu"
        case .perThread: "callrcu_perthread"
        case .all: "all"
        }
    }
}

/// Callback-worker set-up and teardown around a run and in each updater, with
/// the checks that the mode took effect.
struct TortureWorkerSetup<Flavor: RCUFlavor>: Sendable {
    let workers: TortureCallbackWorkers
    let probes: TortureProbes

    /// Before the threads start (`create_all_cpu_call_rcu_data`).
    func beforeRun() {
        guard workers == .perCPU else { return }
        do { try Flavor.useCallbackWorkers(.perCPU) } catch { probes.workerError("\(error)") }
    }

    /// After every thread has ended (`free_all_cpu_call_rcu_data`).
    func afterRun() {
        guard workers == .perCPU else { return }
        do { try Flavor.useCallbackWorkers(.shared) } catch { probes.workerError("\(error)") }
    }

    /// An updater's start (`create_call_rcu_data` + `set_thread_call_rcu_data`).
    func updaterBegins() {
        guard workers == .perThread else { return }
        do {
            try Flavor.useCallbackWorkers(.perThread)
            if Flavor.hasDedicatedCallbackWorker { probes.dedicatedWorkerStarted() }
        } catch {
            probes.workerError("\(error)")
        }
    }

    /// An updater's end: a probe callback queued on the thread's worker, then
    /// the worker freed (`call_rcu_data_free`), which hands the probe on.
    func updaterEnds() {
        let probes = probes
        probes.queued()
        Flavor.retire { probes.ran() }
        guard workers == .perThread else { return }
        do {
            try Flavor.useCallbackWorkers(.shared)
            if Flavor.hasDedicatedCallbackWorker { probes.workerError("a dedicated worker survived useCallbackWorkers(.shared)") }
        } catch {
            probes.workerError("\(error)")
        }
    }
}

/// Counts of the callback-worker checks, shared by a run's threads.
final class TortureProbes: @unchecked Sendable {
    private let lock = BaselineMutex()
    private var queuedCount = 0
    private var ranCount = 0
    private var dedicated = 0
    private var errors: [String] = []

    func queued() { lock.withLock { queuedCount += 1 } }
    func ran() { lock.withLock { ranCount += 1 } }
    func dedicatedWorkerStarted() { lock.withLock { dedicated += 1 } }
    func workerError(_ message: String) { lock.withLock { errors.append(message) } }

    /// Probe callbacks queued but not run (read after a barrier).
    var lost: Int { lock.withLock { queuedCount - ranCount } }
    var dedicatedWorkers: Int { lock.withLock { dedicated } }
    var workerErrors: [String] { lock.withLock { errors } }
}
