#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A joinable POSIX thread running one closure: the stress harnesses' reader
/// and writer threads (liburcu's benchmarks use `pthread_create` the same way).
///
/// Unlike `Foundation.Thread` it can be joined, and it can be pinned to a CPU
/// before the closure runs (``CPUAffinity``).
final class StressThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: @Sendable () -> Void
    private var joined = false

    /// Starts a thread running `body`.
    ///
    /// - Parameters:
    ///   - cpu: The CPU to pin the thread to before `body` runs, or `nil` to leave it unpinned.
    ///   - body: The thread's work.
    init(cpu: Int? = nil, _ body: @escaping @Sendable () -> Void) {
        self.body = {
            if let cpu { CPUAffinity.pinCurrentThread(to: cpu) }
            body()
        }
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            let this = Unmanaged<StressThread>.fromOpaque(context!).takeRetainedValue()
            this.body()
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed: \(status)")
    }

    /// Waits for the thread to finish. Idempotent.
    func join() {
        guard !joined else { return }
        joined = true
        let status = pthread_join(thread, nil)
        precondition(status == 0, "pthread_join failed: \(status)")
    }
}
