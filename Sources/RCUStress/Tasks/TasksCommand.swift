#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import Dispatch
import Lockdep
import RCU
import Synchronization

/// `rcu-stress tasks`: RCU writers as Swift tasks on the cooperative pool, awaiting grace
/// periods against blocking on them, in one run.
struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "Writers as tasks: await synchronize() against blocking synchronize(), with a ping task timing the pool.",
        discussion: """
            A reader thread holds read sections of --section-ms back to back. Then, for each \
            mode, --tasks tasks on the default cooperative pool each run --iterations rounds of \
            "wait for a grace period" (with --retire: "retire an object, then wait"): \
            `try await synchronize()` (async) or the blocking `synchronize()` (blocking). Meanwhile a ping task sleeps 1 ms in a \
            loop; its delay is how much later than 1 ms it ran again, which is how long a task \
            waits for a pool thread. The spawning loop yields after every 64 tasks. Prints per \
            mode: wall time, grace-period waits per \
            second, grace periods started (RCUFlavor.gracePeriodsStarted), and the ping \
            delay's p50/p99/max. Lockdep's task-context check, which reports the blocking \
            form, is switched off for the blocking mode. --json prints one object per mode.
            """
    )

    enum Mode: String, CaseIterable, ExpressibleByArgument {
        case async, blocking, both
    }

    @Option(help: "The flavor: memb, qsbr, bp or mb.")
    var flavor: FlavorChoice = .memb

    @Option(help: "async, blocking, or both (async first).")
    var mode: Mode = .both

    @Option(help: "Writer tasks per mode.")
    var tasks = 10_000

    @Option(help: "Grace-period waits per task.")
    var iterations = 1

    @Flag(help: "Retire an object before each wait (the writer's loop), adding the call_rcu worker's reclamation to the run.")
    var retire = false

    @Option(help: "Length of each of the reader thread's back-to-back read sections, in milliseconds (0: no reader).")
    var sectionMs = 1

    @OptionGroup var output: JSONOutputOption

    func validate() throws {
        try flavor.validate(accepting: FlavorChoice.oneFlavor)
        guard tasks > 0 else { throw ValidationError("--tasks must be a positive number, not \(tasks).") }
        guard iterations > 0 else { throw ValidationError("--iterations must be a positive number, not \(iterations).") }
        guard (0...60_000).contains(sectionMs) else {
            throw ValidationError("--section-ms must be within 0...60000 (a minute), not \(sectionMs).")
        }
    }

    /// The other subcommands block their threads on purpose; this one runs its tasks on the
    /// pool while the main thread, outside any task, waits for them.
    func run() throws {
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let command = self
        Task.detached {
            do {
                switch command.flavor.flavor {
                case .memb?: try await command.run(RCUMemb.self)
                case .qsbr?: try await command.run(RCUQSBR.self)
                case .bp?: try await command.run(RCUBulletproof.self)
                case .mb?: try await command.run(RCUMemoryBarrier.self)
                case nil: preconditionFailure("validate() accepts one flavor only")
                }
                outcome.withLock { $0 = .success(()) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0 }?.get()
    }

    private func run<F: RCUFlavor>(_: F.Type) async throws {
        let reader = sectionMs > 0 ? BusyReader<F>(sectionMicroseconds: UInt32(sectionMs) * 1000) : nil
        defer { reader?.stop() }
        if !output.json {
            print("flavor \(F.name), \(tasks) tasks x \(iterations) wait(s)\(retire ? ", each after a retire" : ""), "
                  + "reader sections \(sectionMs) ms back to back\n")
            print("mode        seconds   waits/s   grace periods   ping delay p50      p99      max  (ms)")
        }
        let modes: [Mode] = mode == .both ? [.async, .blocking] : [mode]
        for mode in modes {
            let result = try await TasksPhase<F>(
                blocking: mode == .blocking, tasks: tasks, iterations: iterations, retire: retire
            ).run()
            print(output.json ? result.json(flavor: F.name, mode: mode.rawValue, sectionMs: sectionMs, retire: retire)
                  : result.row(mode.rawValue))
        }
        try await F.barrier()
    }
}

/// One mode's run: the writer tasks and the ping task.
struct TasksPhase<F: RCUFlavor> {
    let blocking: Bool
    let tasks: Int
    let iterations: Int
    let retire: Bool

    struct Result {
        let seconds: Double
        let waits: Int
        let gracePeriods: UInt64
        let ping: ReadLatency

        func row(_ mode: String) -> String {
            Columns.left(mode, 8) + Columns.right(String(format: "%.3f", seconds), 10)
                + Columns.right(String(Int(Double(waits) / seconds)), 10) + Columns.right(String(gracePeriods), 16)
                + Columns.right(ms(50), 17) + Columns.right(ms(99), 9) + Columns.right(maxMs, 9)
        }

        func json(flavor: String, mode: String, sectionMs: Int, retire: Bool) -> String {
            var line = JSONLine()
            line.add("flavor", flavor)
            line.add("mode", mode)
            line.add("section_ms", sectionMs)
            line.add("retire", retire)
            line.add("waits", waits)
            line.add("seconds", seconds)
            line.add("grace_periods", gracePeriods)
            line.add("ping_samples", ping.samples)
            line.add("ping_p50_ns", ping.nanoseconds(atPercentile: 50))
            line.add("ping_p99_ns", ping.nanoseconds(atPercentile: 99))
            line.add("ping_max_ns", ping.maxNanoseconds)
            return line.text
        }

        private func ms(_ percentile: Double) -> String {
            ping.nanoseconds(atPercentile: percentile).map { String(format: "%.3f", Double($0) / 1e6) } ?? "-"
        }

        private var maxMs: String { ping.maxNanoseconds.map { String(format: "%.3f", Double($0) / 1e6) } ?? "-" }
    }

    func run() async throws -> Result {
        let stop = StopFlag()
        let ping = Task {
            var delays = ReadLatency()
            while !stop.isSet {
                let start = MonotonicClock.nanoseconds()
                try? await Task.sleep(for: .milliseconds(1))
                delays.record(nanoseconds: (MonotonicClock.nanoseconds() &- start) &- 1_000_000)
            }
            return delays
        }
        let startedBefore = F.gracePeriodsStarted
        let start = MonotonicClock.nanoseconds()
        if blocking {
            // The demonstration of what the check reports; not a finding of this run.
            let checking = Lockdep.checksTaskContext
            Lockdep.checksTaskContext = false
            defer { Lockdep.checksTaskContext = checking }
            await withTaskGroup(of: Void.self) { group in
                for task in 0..<tasks {
                    group.addTask {
                        for _ in 0..<iterations {
                            if retire { F.retire(TaskNode()) }
                            Self.blockingSynchronize()
                        }
                    }
                    if task % 64 == 63 { await Task.yield() }   // as below
                }
            }
        } else {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<tasks {
                    group.addTask {
                        for _ in 0..<iterations {
                            if retire { F.retire(TaskNode()) }
                            try await F.synchronize()
                        }
                    }
                    // Spawn in slices, as a server spawning work in bulk should: a loop that
                    // never yields floods the pool's queue itself, and the ping would time it.
                    if task % 64 == 63 { await Task.yield() }
                }
                try await group.waitForAll()
            }
        }
        let seconds = Double(MonotonicClock.nanoseconds() &- start) / 1e9
        stop.set()
        return Result(seconds: seconds, waits: tasks * iterations, gracePeriods: F.gracePeriodsStarted - startedBefore,
                      ping: await ping.value)
    }

    /// The blocking form, which a task only reaches through a synchronous function.
    private static func blockingSynchronize() { F.synchronize() }
}

/// What each round retires.
final class TaskNode: Sendable {}

final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

/// A thread that holds read sections of `F` back to back until stopped.
struct BusyReader<F: RCUFlavor> {
    private let stopFlag = StopFlag()
    private let thread: StressThread

    /// Returns once the reader is inside its first section, so that no wait of the run
    /// can finish before the reader has started.
    init(sectionMicroseconds: UInt32) {
        let stopFlag = stopFlag
        let inside = DispatchSemaphore(value: 0)
        thread = StressThread {
            var first = true
            while !stopFlag.isSet {
                F.read { _ in
                    if first { inside.signal() }
                    first = false
                    _ = usleep(sectionMicroseconds)
                }
            }
        }
        inside.wait()
    }

    func stop() {
        stopFlag.set()
        thread.join()
    }
}
