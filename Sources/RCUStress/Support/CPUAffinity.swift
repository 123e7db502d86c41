#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Pinning threads to CPUs (`-a CPU`), as liburcu's benchmarks do with `sched_setaffinity`.
enum CPUAffinity {
    /// The number of CPUs the system has configured (`_SC_NPROCESSORS_CONF`).
    static var configuredCPUs: Int {
        max(1, sysconf(Int32(_SC_NPROCESSORS_CONF)))
    }

    /// glibc's `sched_setaffinity(pid, size, mask)`, looked up at run time:
    /// Swift's Glibc module is built without `_GNU_SOURCE`, so neither it nor
    /// `pthread_setaffinity_np` is declared.
    private typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32

    private static let setAffinity: SetAffinity? = {
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "sched_setaffinity") else { return nil }
        return unsafeBitCast(symbol, to: SetAffinity.self)
    }()

    /// Pins the calling thread to `cpu` with `sched_setaffinity(0, ...)` (0: the calling thread).
    ///
    /// A failure (a CPU outside the process's allowed set) is reported on
    /// standard error and the thread stays unpinned: the run goes on, as liburcu's does.
    /// - Parameter cpu: A CPU number, `0 ..< configuredCPUs`.
    static func pinCurrentThread(to cpu: Int) {
        var set = cpu_set_t()
        withUnsafeMutableBytes(of: &set) { bytes in
            let bitsPerByte = 8
            guard cpu >= 0, cpu / bitsPerByte < bytes.count else { return }
            bytes[cpu / bitsPerByte] |= UInt8(1) << UInt8(cpu % bitsPerByte)
        }
        let status = setAffinity.map { call in withUnsafeBytes(of: &set) { call(0, $0.count, $0.baseAddress!) } } ?? -1
        if status != 0 {
            let message = "rcu-stress: could not pin a thread to CPU \(cpu): errno \(errno)\n"
            TerminalOutput.write(message, to: STDERR_FILENO)
        }
    }

    /// Hands out CPUs from a `-a` list in thread-creation order, wrapping around
    /// when there are more threads than CPUs listed (liburcu's `next_aff`).
    struct Assignment {
        let cpus: [Int]
        private var next = 0

        init(_ cpus: [Int]) { self.cpus = cpus }

        /// The CPU for the next thread created, or `nil` when no `-a` was given.
        mutating func nextCPU() -> Int? {
            guard !cpus.isEmpty else { return nil }
            defer { next += 1 }
            return cpus[next % cpus.count]
        }
    }
}
