import Lockdep
import CLockdepThread
import CURCUCommon
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A misuse of the RCU API that would otherwise deadlock, corrupt state or
/// free memory under a reader: which call, which rule, which thread, where.
///
/// By default a misuse is printed to standard error and traps. Tests and
/// tools set ``RCUMisuse/reportHandler`` to a custom handler; the offending
/// operation is then skipped (never half-done) and the call returns.
public struct RCUMisuse: Sendable, CustomStringConvertible {
    /// The rule that was broken.
    public enum Kind: String, Sendable, CaseIterable {
        /// `synchronize()` inside a read section of the same flavor: waits for itself forever.
        case synchronizeInReadSection
        /// `barrier()` inside a read section: waits for callbacks that wait for this reader.
        case barrierInReadSection
        /// `barrier()` from a call_rcu callback: the worker would wait for itself.
        case barrierInCallback
        /// `synchronize()` from a call_rcu callback: stalls every other callback.
        case synchronizeInCallback
        /// A QSBR thread going offline (or reporting a quiescent state) inside a read section.
        case offlineInReadSection
        /// `deferBarrier()` inside a read section (it waits for a grace period).
        case deferInReadSection
        /// A grace-period wait inside a read section of another flavor: it blocks that
        /// section, and can deadlock with that flavor's writers.
        case gracePeriodInOtherFlavorSection
        /// Unregistering a thread that is inside a read section.
        case unregisterInReadSection
        /// A grace-period wait in a child of `fork()` whose parent had other registered reader threads.
        case gracePeriodAfterUnsafeFork
        /// An RCU container mutated without the writer lock it was created with.
        case mutationWithoutLock
        /// An element removed (or replaced) from an RCU container it is no longer in.
        case removedTwice
        /// An element handed to an RCU container that does not hold it (another container's, or never added).
        case foreignElement
        /// Unregistering a thread while a reader (`withReader`) of the flavor is open on it.
        case unregisterWhileReaderActive
        /// Unregistering a call_rcu worker thread, which liburcu registered itself.
        case unregisterInCallback
        /// A reader used on a thread other than its scope's (debug builds). A diagnostic:
        /// the section still runs, protected, counted on the thread that runs it.
        case readerOnAnotherThread
        /// A non-recursive writer lock taken again by the thread that holds it.
        case recursiveLock
        /// A writer lock released by a thread that does not hold it.
        case unlockNotHeld
    }

    /// The rule that was broken.
    public let kind: Kind
    /// The API call that broke it, e.g. `synchronize()`.
    public let call: String
    /// The flavor's name (`memb`, `qsbr`, `bp`, `mb`).
    public let flavor: String
    /// The calling thread's name (pthread name; empty when unnamed).
    public let threadName: String
    /// The calling thread's kernel thread id.
    public let threadID: Int
    /// Where the call was made.
    public let fileID: String
    public let line: Int

    public var description: String {
        let thread = threadName.isEmpty ? "tid \(threadID)" : "\"\(threadName)\" (tid \(threadID))"
        return "RCU misuse: \(call) \(Self.explanation(kind)) [flavor \(flavor), thread \(thread), at \(fileID):\(line)]"
    }

    static func explanation(_ kind: Kind) -> String {
        switch kind {
        case .synchronizeInReadSection:
            "called inside an RCU read-side critical section: the grace period would wait for this reader forever"
        case .barrierInReadSection:
            "called inside an RCU read-side critical section: the callbacks it waits for need this reader to finish"
        case .barrierInCallback:
            "called from a call_rcu callback: the call_rcu worker would wait for itself"
        case .synchronizeInCallback:
            "called from a call_rcu callback: it blocks the worker and every callback queued behind it"
        case .offlineInReadSection:
            "called inside an RCU read-side critical section: a QSBR reader may only go quiescent or offline between sections"
        case .deferInReadSection:
            "called inside an RCU read-side critical section: it waits for a grace period"
        case .gracePeriodInOtherFlavorSection:
            "called inside a read-side critical section of another RCU flavor: waiting there blocks that section and can deadlock with its writers"
        case .unregisterInReadSection:
            "called inside an RCU read-side critical section: the reader would vanish while holding references"
        case .gracePeriodAfterUnsafeFork:
            "called in a child of fork() whose parent had other registered reader threads: liburcu still lists them, so no grace period can end"
        case .mutationWithoutLock:
            "called without holding the container's writer lock: concurrent writers would corrupt it"
        case .removedTwice:
            "called for an element that was already removed: the operation is ignored"
        case .foreignElement:
            "called with an element this container does not hold (another container's, or one never added): the operation is ignored"
        case .unregisterWhileReaderActive:
            "called while a reader of this flavor is open on the thread: its sections would stop being waited for"
        case .unregisterInCallback:
            "called from a call_rcu callback: the worker thread belongs to liburcu, which registered it"
        case .readerOnAnotherThread:
            "called on a thread other than the one the reader's scope belongs to (the reader reached it through a closure run elsewhere): the section runs, counted on this thread"
        case .recursiveLock:
            "called by the thread that already holds the lock: a non-recursive lock would deadlock"
        case .unlockNotHeld:
            "called by a thread that does not hold the lock: another writer would be let in"
        }
    }

    /// What happens to a misuse (the shape ``RCUStallDetector`` and Lockdep share).
    public enum ReportHandler: Sendable {
        /// Print to standard error and stop the process (the default).
        case trap
        /// Hand the misuse to a function; the offending operation is refused (skipped),
        /// except after ``Kind/readerOnAnotherThread``, a diagnostic whose section runs. A
        /// misuse the handler commits itself is not handed to it again: it is printed to
        /// standard error in one line and refused.
        case custom(@Sendable (RCUMisuse) -> Void)
    }

    /// Made inside ``ForkHooks/makeOnce(_:_:)`` (one load of its slot after): registering the
    /// hooks in an unbracketed initializer missed a fork being prepared meanwhile, whose child
    /// then kept the lock a parent thread held.
    static var handler: InternalLockedValue<ReportHandler> {
        let raw = clockdep_fork_once_value(CLOCKDEP_ONCE_RCU_MISUSE_HANDLER)
            ?? ForkHooks.makeOnce(CLOCKDEP_ONCE_RCU_MISUSE_HANDLER) { madeHandler }
        return Unmanaged<InternalLockedValue<ReportHandler>>.fromOpaque(raw).takeUnretainedValue()
    }

    nonisolated(unsafe) private static let madeHandler: UnsafeMutableRawPointer = {
        // A child of fork() has only the forking thread: a lock another thread held at the
        // fork would stay held, and the child's first report or handler change would hang.
        ForkHooks.register(
            prepare: { RCUMisuse.handler.lock.lock() },
            parent: { RCUMisuse.handler.lock.unlock() },
            child: { RCUMisuse.handler.lock.reinitializeInForkedChild() })
        return Unmanaged.passRetained(InternalLockedValue<ReportHandler>(.trap)).toOpaque()
    }()

    /// Where misuses are reported: ``ReportHandler/trap`` (the default) or a
    /// ``ReportHandler/custom(_:)`` function. Takes effect for every thread at its next report.
    public static var reportHandler: ReportHandler {
        get { handler.withLock { $0 } }
        set { handler.withLock { $0 = newValue } }
    }

    /// Reports a misuse of `call` by the calling thread. Returns only when a custom handler is installed.
    @usableFromInline
    static func report(_ kind: Kind, call: String, flavor: String, fileID: StaticString, line: UInt) {
        let misuse = RCUMisuse(
            kind: kind, call: call, flavor: flavor,
            threadName: CurrentThread.name, threadID: CurrentThread.id,
            fileID: "\(fileID)", line: Int(line))
        switch handler.withLock({ $0 }) {
        case .trap:
            CurrentThread.printError(misuse.description)
            fatalError(misuse.description, file: fileID, line: line)
        case .custom(let handle):
            // A handler runs inside the offending call (often inside its read section): a
            // misuse it commits itself would call it again, without end. That one is refused
            // with one line instead.
            if pthread_getspecific(handlerActiveKey) != nil {
                CurrentThread.printError("\(misuse.description) (refused; inside a report handler)")
                return
            }
            pthread_setspecific(handlerActiveKey, UnsafeRawPointer(bitPattern: 1))
            defer { pthread_setspecific(handlerActiveKey, nil) }
            handle(misuse)
        }
    }

    /// Set (non-nil) on a thread while it runs a custom handler.
    private static let handlerActiveKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "swift-rcu: pthread_key_create failed (\(status)) for misuse reports")
        return key
    }()
}

/// The calling thread's identity, for diagnostics.
enum CurrentThread {
    static var id: Int { curcu_current_tid() }

    static var name: String { name(of: pthread_self()) }

    /// The pthread name of a live thread ("" when unnamed or unknown).
    static func name(of thread: pthread_t) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buffer in
            guard curcu_thread_name(thread, buffer.baseAddress!, buffer.count) == 0 else { return "" }
            return String(cString: buffer.baseAddress!)
        }
    }

    static func printError(_ message: String) {
        curcu_print_error(message + "\n")
    }
}
