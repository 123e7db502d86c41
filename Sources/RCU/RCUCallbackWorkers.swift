#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
    /// A dedicated worker lives as long as its thread: when the thread exits, its worker
    /// is freed (liburcu's `call_rcu_data_free`, after the thread's pointer to it is
    /// cleared and the thread unregistered, so the worker's last grace period cannot wait
    /// for it). Callbacks still pending go to the shared worker and run there. The
    /// exiting thread waits for the worker to stop: about 10 ms (liburcu's worker polls
    /// every 10 ms), and longer while a grace period it started is held up by a reader.
    /// In a forked child, where the worker thread does not exist, an exiting thread leaves
    /// a worker created before the fork unfreed instead.
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
            RCUDedicatedWorkers.forget(kind)
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
            // Nobody joins liburcu's workers: detached, a stopped one leaves no thread behind.
            pthread_detach(primitiveCallRCUThread(data))
            RCUDedicatedWorkers.freeAtThreadExit(kind, data)
        }
    }

    /// Frees the calling thread's dedicated worker `data`, created in process `process`,
    /// which the thread is exiting with.
    fileprivate static func freeDedicatedWorkerAtExit(_ data: OpaquePointer, createdIn process: pid_t) {
        // Another call (useCallbackWorkers(.shared)) may have freed it already.
        guard primitiveThreadCallRCUData() == data else { return }
        // Created before a fork() that liburcu's child hook did not clean up (no call_rcu
        // had installed it yet, or an unsafe fork skipped it): the worker thread does not
        // exist in this child, and call_rcu_data_free would wait for it to stop forever.
        // Its memory goes with the process.
        guard getpid() == process else { return }
        // liburcu asks for a grace period between unsetting a per-CPU worker and freeing it,
        // for call_rcu callers on other threads that may still hold it; only this thread
        // reaches its own, so unsetting it here is enough.
        primitiveSetThreadCallRCUData(nil)
        // A registered (qsbr: online) thread would hold up the worker's last grace period,
        // which call_rcu_data_free waits for. The thread is ending: it reads no more.
        primitiveUnregisterThread()
        primitiveFreeCallRCUData(data)
    }

    /// Whether the calling thread has a dedicated call_rcu worker.
    public static var hasDedicatedCallbackWorker: Bool { primitiveThreadCallRCUData() != nil }
}

/// The calling thread's dedicated call_rcu workers, one slot per flavor, freed by a
/// pthread key's destructor when the thread exits (liburcu never frees them: a thread
/// that exits with one leaves its worker thread running forever).
enum RCUDedicatedWorkers {
    /// A thread's workers; the key's value, retained while any slot is filled.
    final class Slots {
        /// Each worker with the process that created it (a forked child has none of them).
        var workers: [(data: OpaquePointer, process: pid_t)?] = Array(repeating: nil, count: RCUStallDetector.kinds.count)
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { value in
            guard let value else { return }
            let slots = Unmanaged<Slots>.fromOpaque(value).takeRetainedValue()
            for (index, worker) in slots.workers.enumerated() {
                guard let worker else { continue }
                RCUDedicatedWorkers.free(worker.data, createdIn: worker.process, of: RCUStallDetector.kinds[index])
            }
        }
        precondition(status == 0, "swift-rcu: pthread_key_create failed (\(status)): dedicated call_rcu workers cannot be freed at thread exit")
        return key
    }()

    private static func free(_ data: OpaquePointer, createdIn process: pid_t, of kind: RCUFlavorKind) {
        kind.flavorType.freeDedicatedWorkerAtExit(data, createdIn: process)
    }

    private static var slots: Slots? {
        pthread_getspecific(key).map { Unmanaged<Slots>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Arranges for `data`, the calling thread's new dedicated worker, to be freed when it exits.
    static func freeAtThreadExit(_ kind: RCUFlavorKind, _ data: OpaquePointer) {
        let current: Slots
        if let existing = slots {
            current = existing
        } else {
            current = Slots()
            pthread_setspecific(key, Unmanaged.passRetained(current).toOpaque())
        }
        current.workers[RCUStallDetector.index(of: kind)] = (data, getpid())
    }

    /// The calling thread's worker of `kind` was freed by other means.
    static func forget(_ kind: RCUFlavorKind) {
        slots?.workers[RCUStallDetector.index(of: kind)] = nil
    }
}
