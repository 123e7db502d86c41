/// The thread choreography shared by every `urcu` flavor and baseline, after
/// liburcu's test_urcu `main`: create the readers, then the writers (pinning
/// each to the next `-a` CPU), let them all go at once, wait the duration
/// while sampling, stop them, join them and add up their counts.
enum UrcuHarness {
    /// A thread's work: its index among all threads (readers first), the shared
    /// control, and where to leave its result.
    typealias ThreadBody = @Sendable (_ index: Int, _ control: StressControl, _ results: UrcuResultCollector) -> Void

    /// Runs `config.readers` copies of `reader` and `config.writers` copies of `writer`.
    ///
    /// - Parameters:
    ///   - config: The run's parameters.
    ///   - backlog: The call_rcu backlog to sample (0 for the lock baselines).
    ///   - watchesBacklog: Whether the run queues callbacks (`-b`), so the main thread
    ///     samples the backlog while it waits. Otherwise, unless it draws the progress
    ///     line on a terminal, it sleeps through the run, as test_urcu's `main` does.
    ///   - reader: A reader thread's loop.
    ///   - writer: A writer thread's loop.
    ///   - afterJoin: Runs once every thread has ended (an RCU flavor waits for its callbacks here).
    /// - Returns: The run's totals.
    static func run(
        _ config: UrcuConfiguration, backlog: @escaping () -> Int, watchesBacklog: Bool,
        reader: @escaping ThreadBody, writer: @escaping ThreadBody, afterJoin: () -> Void = {}
    ) -> UrcuResult {
        let timerOverhead = MonotonicClock.timerOverheadNanoseconds()
        let control = StressControl(threads: config.threads)
        let results = UrcuResultCollector()
        var affinity = CPUAffinity.Assignment(config.cpus)
        if config.verbose {
            print("running test for \(config.duration) seconds, \(config.readers) readers, \(config.writers) writers.")
            print("Writer delay : \(config.writerDelay) loops.")
            print("Reader duration : \(config.readDuration) loops.")
        }
        var threads: [StressThread] = []
        for index in 0..<config.readers {
            let cpu = affinity.nextCPU()
            threads.append(StressThread(cpu: cpu) {
                if config.verbose { print("thread_begin reader \(index)\(cpu.map { ", cpu \($0)" } ?? "")") }
                reader(index, control, results)
                if config.verbose { print("thread_end reader \(index)") }
            })
        }
        for index in config.readers..<config.threads {
            let cpu = affinity.nextCPU()
            threads.append(StressThread(cpu: cpu) {
                if config.verbose { print("thread_begin writer \(index - config.readers)\(cpu.map { ", cpu \($0)" } ?? "")") }
                writer(index, control, results)
                if config.verbose { print("thread_end writer \(index - config.readers)") }
            })
        }
        var monitor = StressMonitor(unit: "ops", backlog: backlog)
        control.go.store(true, ordering: .releasing)
        let elapsed =
            watchesBacklog || monitor.showsProgress
            ? monitor.wait(seconds: config.duration, counters: control.counters)
            : StressMonitor.sleep(seconds: config.duration)
        control.stop.store(true, ordering: .releasing)
        threads.forEach { $0.join() }
        monitor.sample()
        afterJoin()
        let totals = results.totals()
        if config.verbose {
            print("total number of reads : \(totals.reader.reads), writes \(totals.writes)")
        }
        return UrcuResult(
            config: config, elapsedSeconds: elapsed, reader: totals.reader, writes: totals.writes,
            backlogPeak: monitor.backlogPeak, residentPeak: max(monitor.residentPeak, ProcessMemory.peakResidentBytes),
            timerOverheadNanoseconds: timerOverhead)
    }
}
