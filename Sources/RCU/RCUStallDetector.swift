import CURCUMemb
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Names the threads that hold up grace periods, instead of a silent hang or
/// an unbounded call_rcu backlog.
///
/// A watchdog thread (started on the first `synchronize()` or `barrier()`, or
/// by ``enable()``) reports a ``Stall`` when a grace-period wait, or the
/// call_rcu backlog of a flavor, makes no progress for longer than
/// ``threshold``. The classic cause is a QSBR reader that never reports a
/// quiescent state; a memb reader stuck inside a read section is the other.
public enum RCUStallDetector {
    /// One stall: who waits, for how long, and who is in the way.
    public struct Stall: Sendable, CustomStringConvertible {
        /// The flavor whose grace period is stalled.
        public let flavor: String
        /// What is stalled: `synchronize()`, `barrier()` or `call_rcu backlog`.
        public let call: String
        /// The waiting thread (name, kernel tid); empty for a backlog stall.
        public let waiterName: String
        public let waiterID: Int
        /// How long it has waited so far, counted from when the watchdog first saw the
        /// wait: up to a quarter of ``RCUStallDetector/threshold`` less than the real wait.
        public let waited: Duration
        /// Callbacks queued and not yet run when the stall was seen.
        public let pendingCallbacks: Int
        /// The registered threads holding up the grace period.
        public let blockingReaders: [Reader]

        /// A thread holding up a grace period.
        public struct Reader: Sendable, Equatable {
            public let threadID: Int
            public let name: String
        }

        public var description: String {
            let readers = blockingReaders.isEmpty
                ? "no registered reader found in the way (an unregistered thread, or one that has just left)"
                : blockingReaders.map { "\"\($0.name)\" (tid \($0.threadID))" }.joined(separator: ", ")
            let waiter = waiterID == 0 ? "" : " on thread \"\(waiterName)\" (tid \(waiterID))"
            let hint = flavor == "qsbr"
                ? "each must call quiescentState() or go offline" : "each is inside a read-side critical section"
            return "INFO: rcu_\(flavor) detected stall: \(call)\(waiter) has made no progress for \(waited); "
                + "\(pendingCallbacks) callbacks pending; blocking readers: \(readers) (\(hint))"
        }
    }

    /// Where stalls go.
    public enum Handler: Sendable {
        /// Print to standard error (the default).
        case printToStandardError
        /// Hand each stall to a function.
        case custom(@Sendable (Stall) -> Void)
    }

    /// A thread's grace-period waits, as the watchdog sees them.
    ///
    /// The waiting thread only bumps ``sequence`` (odd while it waits) on its own
    /// slot, found through a C thread-local: no lock, clock, allocation, atomic
    /// read-modify-write or reference count per wait, which matters for flavors whose
    /// grace period is a hundred nanoseconds (mb). The watchdog notices a wait
    /// that keeps the same odd sequence for longer than the threshold.
    final class WaitSlot: @unchecked Sendable {
        /// Bumped when a wait starts (odd) and when it ends (even); only by the slot's
        /// thread, so plain release stores suffice.
        let sequence = Atomic<Int>(0)
        /// The waiting call, written before the odd bump: an index into ``flavors``
        /// times 2, plus 1 for `barrier()`.
        let what = Atomic<Int>(0)
        let thread = pthread_self()
        let id = CurrentThread.id
        // The watchdog's view, guarded by `state`'s lock.
        var lastSequence = 0
        var since = ContinuousClock.now
        var reported = false
    }

    /// A wait or backlog that crossed the threshold.
    struct Found {
        let flavor: any RCUFlavor.Type
        let call: String
        let waiterName: String
        let waiterID: Int
        let waited: Duration
    }

    struct Backlog {
        var completed: Int
        var since: ContinuousClock.Instant
        var reported: Bool
    }

    struct State {
        var threshold: Duration = .seconds(2)
        var handler: Handler = .printToStandardError
        /// One slot per thread that has waited; a slot leaves when its thread exits.
        var slots: [WaitSlot] = []
        var backlogs: [String: Backlog] = [:]
        var running = false
    }

    static let state = Locked(State())
    static let flavors: [any RCUFlavor.Type] = [RCUMemb.self, RCUQSBR.self, RCUBulletproof.self, RCUMemoryBarrier.self]

    /// How long a grace period or the backlog may make no progress before it is reported (default 2 s).
    public static var threshold: Duration {
        get { state.withLock { $0.threshold } }
        set { state.withLock { $0.threshold = newValue } }
    }

    /// Installs where stalls are reported; returns the previous handler.
    @discardableResult
    public static func setHandler(_ handler: Handler) -> Handler {
        state.withLock { state in
            let previous = state.handler
            state.handler = handler
            return previous
        }
    }

    /// Starts the watchdog thread if it is not running.
    public static func enable() {
        let start = state.withLock { state in
            defer { state.running = true }
            return !state.running
        }
        guard start else { return }
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { _ in
            RCUStallDetector.watchdogLoop()
            return nil
        }, nil)
        precondition(status == 0, "swift-rcu: cannot start the RCU stall watchdog thread (pthread_create: \(status))")
        pthread_detach(thread)
    }

    /// Runs a grace-period wait under the watchdog's eye.
    static func watch<Flavor: RCUFlavor>(_: Flavor.Type, barrier: Bool, _ wait: () -> Void) {
        Unmanaged<WaitSlot>.fromOpaque(curcu_wait_slot() ?? makeCurrentSlot())._withUnsafeGuaranteedRef { slot in
            slot.what.store(flavorIndex(Flavor.self) * 2 + (barrier ? 1 : 0), ordering: .relaxed)
            let start = slot.sequence.load(ordering: .relaxed)
            slot.sequence.store(start &+ 1, ordering: .releasing)
            wait()
            slot.sequence.store(start &+ 2, ordering: .releasing)
        }
    }

    /// `Flavor`'s index in ``flavors`` (a constant once specialised).
    @inline(__always)
    private static func flavorIndex<Flavor: RCUFlavor>(_: Flavor.Type) -> Int {
        Flavor.self == RCUMemb.self ? 0
            : Flavor.self == RCUQSBR.self ? 1
            : Flavor.self == RCUBulletproof.self ? 2
            : Flavor.self == RCUMemoryBarrier.self ? 3
            : flavors.firstIndex { ObjectIdentifier($0) == ObjectIdentifier(Flavor.self) } ?? 0
    }

    /// The key whose value is the current thread's slot (+1 reference); its destructor
    /// removes the slot when the thread exits, under the lock the watchdog reads thread
    /// names under, so the watchdog never names a thread that has gone.
    private static let slotKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { value in
            guard let value else { return }
            curcu_set_wait_slot(nil)
            let slot = Unmanaged<WaitSlot>.fromOpaque(value).takeRetainedValue()
            RCUStallDetector.state.withLock { $0.slots.removeAll { $0 === slot } }
        }
        precondition(status == 0, "swift-rcu: pthread_key_create failed for the stall detector: \(status)")
        return key
    }()

    /// Makes and registers this thread's slot on its first wait (which also starts the
    /// watchdog); the thread-local and the key's value hold one reference.
    @inline(never)
    private static func makeCurrentSlot() -> UnsafeMutableRawPointer {
        enable()
        let slot = WaitSlot()
        state.withLock { $0.slots.append(slot) }
        let retained = Unmanaged.passRetained(slot).toOpaque()
        pthread_setspecific(slotKey, retained)
        curcu_set_wait_slot(retained)
        return retained
    }

    private static func watchdogLoop() {
        _ = curcu_set_current_thread_name("rcu-stall-wdog")
        while true {
            let interval = state.withLock { $0.threshold } / 4
            let micros = max(1_000, interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
            usleep(UInt32(clamping: micros))
            for stall in findStalls() {
                report(stall)
            }
        }
    }

    /// Marks and returns the waits and backlogs that crossed the threshold since the last look.
    private static func findStalls() -> [Found] {
        let now = ContinuousClock.now
        let progress = flavors.map { ($0.name, $0.pendingCallbacks, $0.completedCallbacks) }
        return state.withLock { state in
            var stalls: [Found] = []
            for slot in state.slots {
                let sequence = slot.sequence.load(ordering: .acquiring)
                guard sequence & 1 == 1, sequence == slot.lastSequence else {
                    // Not waiting, or a new wait since the last look.
                    slot.lastSequence = sequence
                    slot.since = now
                    slot.reported = false
                    continue
                }
                guard !slot.reported, now - slot.since > state.threshold else { continue }
                slot.reported = true
                let what = slot.what.load(ordering: .relaxed)
                // The thread cannot exit while this lock is held (its key destructor takes it).
                stalls.append(Found(
                    flavor: flavors[what / 2], call: what & 1 == 1 ? "barrier()" : "synchronize()",
                    waiterName: CurrentThread.name(of: slot.thread), waiterID: slot.id, waited: now - slot.since))
            }
            for (index, (name, pending, completed)) in progress.enumerated() {
                var backlog = state.backlogs[name] ?? Backlog(completed: completed, since: now, reported: false)
                if pending == 0 || completed != backlog.completed {
                    backlog = Backlog(completed: completed, since: now, reported: false)
                } else if !backlog.reported && now - backlog.since > state.threshold {
                    backlog.reported = true
                    stalls.append(Found(
                        flavor: flavors[index], call: "call_rcu backlog", waiterName: "", waiterID: 0,
                        waited: now - backlog.since))
                }
                state.backlogs[name] = backlog
            }
            return stalls
        }
    }

    private static func report(_ found: Found) {
        var readers: [Stall.Reader] = []
        found.flavor.forEachBlockingReader { tid, name in readers.append(.init(threadID: tid, name: name)) }
        let stall = Stall(
            flavor: found.flavor.name, call: found.call, waiterName: found.waiterName, waiterID: found.waiterID,
            waited: found.waited, pendingCallbacks: found.flavor.pendingCallbacks, blockingReaders: readers)
        switch state.withLock({ $0.handler }) {
        case .printToStandardError:
            CurrentThread.printError(stall.description)
        case .custom(let handle):
            handle(stall)
        }
    }
}
