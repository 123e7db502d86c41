/// Where a flavor's call_rcu callbacks run.
public enum RCUCallbackWorkers: Sendable, Equatable {
    /// One worker thread for the whole process (liburcu's default).
    case shared
    /// One worker per CPU; each thread's callbacks go to its CPU's worker.
    case perCPU
    /// A dedicated worker for the calling thread.
    case perThread
}

/// Errors from call_rcu worker set-up.
public struct RCUCallbackWorkerError: Error, Sendable, CustomStringConvertible {
    /// liburcu's return code (an errno value).
    public let code: Int32
    public let operation: String
    public var description: String { "\(operation) failed with error \(code)" }
}

extension RCUFlavor {
    /// Chooses the call_rcu worker(s): ``RCUCallbackWorkers/perThread`` for the
    /// calling thread, ``RCUCallbackWorkers/perCPU`` for every thread, and
    /// ``RCUCallbackWorkers/shared`` to undo both (the calling thread's
    /// dedicated worker and all per-CPU workers).
    ///
    /// Per-CPU workers cut contention on the callback queue when many threads
    /// retire objects; a dedicated worker isolates a thread's callbacks. Freed
    /// workers hand their pending callbacks to the shared one.
    ///
    /// Freeing workers waits for grace periods (liburcu hands their callbacks over
    /// after one), so the call is refused where ``RCUFlavor/synchronize(file:line:)-3fvwq`` is: inside
    /// any read section, on a call_rcu worker (which would wait for itself), and in a
    /// child of an unsafe fork.
    /// - Throws: ``RCUCallbackWorkerError`` when liburcu cannot create a worker.
    public static func useCallbackWorkers(
        _ workers: RCUCallbackWorkers, file: StaticString = #fileID, line: UInt = #line
    ) throws {
        guard mayWaitForGracePeriod(
            "useCallbackWorkers(_:)", inReadSection: .synchronizeInReadSection, inCallback: .synchronizeInCallback,
            file: file, line: line)
        else { return }
        let dedicated = primitiveThreadCallRCUData()
        switch workers {
        case .shared:
            primitiveSetThreadCallRCUData(nil)
            waitAllowed(barrier: false) {
                if let dedicated { primitiveFreeCallRCUData(dedicated) }
                primitiveFreePerCPUCallRCUData()
            }
        case .perCPU:
            let status = primitiveCreatePerCPUCallRCUData(flags: 0)
            guard status == 0 else {
                throw RCUCallbackWorkerError(code: status, operation: "create_all_cpu_call_rcu_data")
            }
        case .perThread:
            guard dedicated == nil else { return }
            guard let data = primitiveCreateCallRCUData(flags: 0, cpu: -1) else {
                throw RCUCallbackWorkerError(code: -1, operation: "create_call_rcu_data")
            }
            primitiveSetThreadCallRCUData(data)
        }
    }

    /// Whether the calling thread has a dedicated call_rcu worker.
    public static var hasDedicatedCallbackWorker: Bool { primitiveThreadCallRCUData() != nil }
}
