import CURCUMemb
import CURCUQSBR
import CURCUBP
import CURCUMB
import Lockdep
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
///
/// A report also names what the blocking threads are doing when the watchdog can
/// tell: a blocking reader that is itself waiting for another flavor's grace period
/// (a chain of waits, and a cross-flavor deadlock when it comes back to the waiter:
/// ``Stall/waitChain``), and a call_rcu worker stuck in one callback, with the
/// Lockdep-checked lock it waits for and that lock's holder
/// (``Stall/runningCallbacks``).
public enum RCUStallDetector {
    /// One stall: who waits, for how long, and who is in the way.
    public struct Stall: Sendable, CustomStringConvertible {
        /// The flavor whose grace period is stalled.
        public let flavor: String
        /// What is stalled: `synchronize()`, `barrier()` (also `deferBarrier()`) or `call_rcu backlog`.
        public let call: String
        /// The waiting thread (name, kernel tid); empty for a backlog stall.
        public let waiterName: String
        public let waiterID: Int
        /// How long it has waited so far, counted from when the watchdog first saw the
        /// wait: up to a quarter of ``RCUStallDetector/threshold`` (at most 250 ms) less than the real wait.
        public let waited: Duration
        /// Callbacks queued and not yet run when the stall was seen.
        public let pendingCallbacks: Int
        /// The registered threads holding up the grace period.
        public let blockingReaders: [Reader]
        /// When a thread holding up this grace period is itself waiting for a grace period of
        /// another flavor: the chain of such waits, starting at the waiter (empty otherwise).
        public let waitChain: [ChainLink]
        /// Whether ``waitChain`` leads back to the waiter: a cross-flavor deadlock that no
        /// amount of waiting ends.
        public let isDeadlock: Bool
        /// For `barrier()` and backlog stalls: this flavor's call_rcu workers that have been
        /// running one callback since the watchdog's previous look or longer.
        public let runningCallbacks: [RunningCallback]

        /// A thread holding up a grace period.
        public struct Reader: Sendable, Equatable {
            public let threadID: Int
            public let name: String
        }

        /// A thread in a chain of grace-period waits: it holds up `holdsUp`'s grace
        /// periods (inside a read section, or an online qsbr reader) while it waits in
        /// `call` for a grace period of `waitsFor`.
        public struct ChainLink: Sendable, Equatable {
            public let threadID: Int
            public let name: String
            /// The flavor whose grace periods this thread holds up (empty when it holds up none).
            public let holdsUp: String
            /// The flavor whose grace period it waits for.
            public let waitsFor: String
            /// `synchronize()` or `barrier()`.
            public let call: String
        }

        /// A call_rcu worker that has been running one callback for `running`.
        public struct RunningCallback: Sendable, Equatable {
            public let workerID: Int
            public let workerName: String
            /// How long the callback has run, counted from when the watchdog first saw it.
            public let running: Duration
            /// The Lockdep-checked lock the callback is blocked on, if any (checks compiled in).
            public let blockedOn: BlockedLock?
        }

        /// A checked lock a thread is blocked on, and its holder.
        public struct BlockedLock: Sendable, Equatable {
            /// The lock's class name.
            public let lockName: String
            /// The holder's name and kernel tid (0 when the holder has never waited for a grace period).
            public let holderName: String
            public let holderID: Int
        }

        public var description: String {
            let readers = blockingReaders.isEmpty
                ? "no registered reader found in the way (an unregistered thread, or one that has just left)"
                : blockingReaders.map { "\"\($0.name)\" (tid \($0.threadID))" }.joined(separator: ", ")
            let waiter = waiterID == 0 ? "" : " on thread \"\(waiterName)\" (tid \(waiterID))"
            let hint = flavor == "qsbr"
                ? "each must call quiescentState() or go offline" : "each is inside a read-side critical section"
            var text = "INFO: rcu_\(flavor) detected stall: \(call)\(waiter) has made no progress for \(waited); "
                + "\(pendingCallbacks) callbacks pending; blocking readers: \(readers) (\(hint))"
            if !waitChain.isEmpty {
                let links = waitChain.map { link in
                    let role = link.holdsUp.isEmpty ? ""
                        : link.holdsUp == "qsbr" ? " (online qsbr reader)" : " (in \(link.holdsUp) section)"
                    return "tid \(link.threadID) \"\(link.name)\"\(role) waits for \(link.waitsFor) grace period "
                        + "in \(link.call)"
                }
                text += "; wait chain: " + links.joined(separator: "; ")
                    + (isDeadlock ? ": cross-flavor deadlock (each waits for a grace period the other holds up)" : "")
            }
            for callback in runningCallbacks {
                text += "; call_rcu worker \"\(callback.workerName)\" (tid \(callback.workerID)) has been running "
                    + "one callback for \(callback.running)"
                if let lock = callback.blockedOn {
                    let holder = lock.holderID == 0
                        ? "\"\(lock.holderName)\"" : "\"\(lock.holderName)\" (tid \(lock.holderID))"
                    text += ", blocked on lock \(lock.lockName) held by \(holder)"
                    if lock.holderID != 0 && lock.holderID == waiterID {
                        text += ", the thread waiting in \(call): deadlock"
                    }
                }
            }
            return text
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
        /// Bumped when a call_rcu callback starts (odd) and ends (even) on this thread;
        /// only by the slot's thread.
        let callbackSequence = Atomic<Int>(0)
        /// The index in ``flavors`` of the flavor whose call_rcu worker this thread is
        /// (-1: none found; `Int.min`: not asked yet).
        let callbackFlavor = Atomic<Int>(.min)
        let thread = pthread_self()
        let id = CurrentThread.id
        // The watchdog's view, guarded by `state`'s lock.
        var lastSequence = 0
        var since = ContinuousClock.now
        var reported = false
        var lastCallbackSequence = 0
        var callbackSince = ContinuousClock.now
    }

    /// A wait or backlog that crossed the threshold.
    struct Found {
        let flavor: any RCUFlavor.Type
        let call: String
        let waiterName: String
        let waiterID: Int
        let waited: Duration
    }

    /// A thread seen waiting for a grace period.
    struct Waiting {
        let flavor: Int
        let call: String
        let name: String
    }

    /// A call_rcu worker seen in the same callback at two looks or more.
    struct BusyWorker {
        let flavor: Int
        let thread: pthread_t
        let id: Int
        let name: String
        let running: Duration
    }

    /// What the watchdog saw at one look, for the reports of that look.
    struct Snapshot {
        var waiting: [Int: Waiting] = [:]
        var busyWorkers: [BusyWorker] = []
        /// Slot threads and their tids, to give a lock holder its tid.
        var threads: [(thread: pthread_t, id: Int)] = []
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
    ///
    /// Any value is accepted: values below one millisecond (zero and negative ones included)
    /// are raised to one millisecond; very large ones (up to `Duration`'s largest) mean "never
    /// report". The watchdog looks every quarter of the threshold, at least every 250 ms, so a
    /// new threshold takes effect within 250 ms.
    public static var threshold: Duration {
        get { state.withLock { $0.threshold } }
        set { state.withLock { $0.threshold = max(newValue, .milliseconds(1)) } }
    }

    /// The watchdog's sleep between looks: a quarter of the threshold, within 1...250 ms
    /// (so no arithmetic on a huge threshold, and a lowered threshold applies soon).
    static func lookInterval(threshold: Duration) -> Duration {
        min(max(threshold / 4, .milliseconds(1)), .milliseconds(250))
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
        return makeSlot()
    }

    /// Makes and registers this thread's slot without starting the watchdog (a call_rcu worker's first callback).
    @inline(never)
    static func makeSlot() -> UnsafeMutableRawPointer {
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
            let interval = lookInterval(threshold: state.withLock { $0.threshold })
            // Within 1...250 ms: `components` cannot overflow and the product fits a UInt32.
            let micros = interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000
            usleep(UInt32(clamping: micros))
            let (stalls, snapshot) = findStalls()
            for stall in stalls {
                report(stall, snapshot)
            }
        }
    }

    /// Marks and returns the waits and backlogs that crossed the threshold since the last
    /// look, with what the look saw of waiting threads and busy call_rcu workers.
    private static func findStalls() -> ([Found], Snapshot) {
        let now = ContinuousClock.now
        let progress = flavors.map { ($0.name, $0.pendingCallbacks, $0.completedCallbacks) }
        return state.withLock { state in
            var stalls: [Found] = []
            var snapshot = Snapshot()
            for slot in state.slots {
                // The thread cannot exit while this lock is held (its key destructor takes it).
                snapshot.threads.append((slot.thread, slot.id))
                let running = slot.callbackSequence.load(ordering: .acquiring)
                if running & 1 == 1 && running == slot.lastCallbackSequence {
                    snapshot.busyWorkers.append(BusyWorker(
                        flavor: slot.callbackFlavor.load(ordering: .relaxed), thread: slot.thread, id: slot.id,
                        name: CurrentThread.name(of: slot.thread), running: now - slot.callbackSince))
                } else if running != slot.lastCallbackSequence {
                    slot.lastCallbackSequence = running
                    slot.callbackSince = now
                }
                let sequence = slot.sequence.load(ordering: .acquiring)
                guard sequence & 1 == 1, sequence == slot.lastSequence else {
                    // Not waiting, or a new wait since the last look.
                    slot.lastSequence = sequence
                    slot.since = now
                    slot.reported = false
                    continue
                }
                let what = slot.what.load(ordering: .relaxed)
                let call = what & 1 == 1 ? "barrier()" : "synchronize()"
                let name = CurrentThread.name(of: slot.thread)
                snapshot.waiting[slot.id] = Waiting(flavor: what / 2, call: call, name: name)
                guard !slot.reported, now - slot.since > state.threshold else { continue }
                slot.reported = true
                stalls.append(Found(
                    flavor: flavors[what / 2], call: call, waiterName: name, waiterID: slot.id, waited: now - slot.since))
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
            return (stalls, snapshot)
        }
    }

    /// Follows the waits from `found`'s waiter: a thread holding up the stalled grace
    /// period that is itself waiting for another flavor's, and so on; a chain that comes
    /// back to the waiter is a deadlock.
    static func waitChain(
        from found: Found, _ snapshot: Snapshot, readers: (Int) -> [Stall.Reader]
    ) -> (links: [Stall.ChainLink], isDeadlock: Bool) {
        guard found.waiterID != 0, let start = snapshot.waiting[found.waiterID] else { return ([], false) }
        var links: [Stall.ChainLink] = []
        var visited: Set<Int> = [found.waiterID]
        var flavor = start.flavor
        for _ in 0..<flavors.count {
            let blockers = readers(flavor)
            if links.count > 0 && blockers.contains(where: { $0.threadID == found.waiterID }) {
                // Back at the waiter, which holds up `flavor`'s grace periods.
                let first = Stall.ChainLink(
                    threadID: found.waiterID, name: start.name, holdsUp: flavors[flavor].name,
                    waitsFor: flavors[start.flavor].name, call: start.call)
                return ([first] + links, true)
            }
            guard let next = blockers.first(where: {
                !visited.contains($0.threadID) && snapshot.waiting[$0.threadID].map { $0.flavor != flavor } == true
            }), let wait = snapshot.waiting[next.threadID] else { break }
            visited.insert(next.threadID)
            links.append(Stall.ChainLink(
                threadID: next.threadID, name: next.name, holdsUp: flavors[flavor].name,
                waitsFor: flavors[wait.flavor].name, call: wait.call))
            flavor = wait.flavor
        }
        guard !links.isEmpty else { return ([], false) }
        let first = Stall.ChainLink(
            threadID: found.waiterID, name: start.name, holdsUp: "", waitsFor: flavors[start.flavor].name, call: start.call)
        return ([first] + links, false)
    }

    private static func report(_ found: Found, _ snapshot: Snapshot) {
        var readersByFlavor: [Int: [Stall.Reader]] = [:]
        func readers(_ index: Int) -> [Stall.Reader] {
            if let known = readersByFlavor[index] { return known }
            var found: [Stall.Reader] = []
            flavors[index].forEachBlockingReader { tid, name in found.append(.init(threadID: tid, name: name)) }
            readersByFlavor[index] = found
            return found
        }
        let flavorIndex = flavors.firstIndex { $0.name == found.flavor.name } ?? 0
        let chain = waitChain(from: found, snapshot, readers: readers)
        let callbacks: [Stall.RunningCallback] = found.call == "synchronize()" ? [] : snapshot.busyWorkers
            .filter { $0.flavor == flavorIndex || $0.flavor < 0 }
            .map { worker in
                let blocked = Lockdep.pendingAcquire(of: worker.thread).map { acquire in
                    Stall.BlockedLock(
                        lockName: acquire.lockName, holderName: acquire.holderName,
                        holderID: acquire.holder.flatMap { holder in
                            snapshot.threads.first { pthread_equal($0.thread, holder) != 0 }?.id
                        } ?? 0)
                }
                return Stall.RunningCallback(
                    workerID: worker.id, workerName: worker.name, running: worker.running, blockedOn: blocked)
            }
        let stall = Stall(
            flavor: found.flavor.name, call: found.call, waiterName: found.waiterName, waiterID: found.waiterID,
            waited: found.waited, pendingCallbacks: found.flavor.pendingCallbacks, blockingReaders: readers(flavorIndex),
            waitChain: chain.links, isDeadlock: chain.isDeadlock, runningCallbacks: callbacks)
        switch state.withLock({ $0.handler }) {
        case .printToStandardError:
            CurrentThread.printError(stall.description)
        case .custom(let handle):
            handle(stall)
        }
    }

    /// Runs one call_rcu callback with this thread's callback sequence odd, so the watchdog
    /// can name a worker stuck in a callback. Two plain stores and a thread-local load.
    @inline(__always)
    static func runningCallback(_ callback: () -> Void) {
        let raw = curcu_wait_slot() ?? makeSlot()
        Unmanaged<WaitSlot>.fromOpaque(raw)._withUnsafeGuaranteedRef { slot in
            if _slowPath(slot.callbackFlavor.load(ordering: .relaxed) == .min) {
                slot.callbackFlavor.store(callbackFlavorIndex(), ordering: .relaxed)
            }
            let start = slot.callbackSequence.load(ordering: .relaxed)
            slot.callbackSequence.store(start &+ 1, ordering: .releasing)
            callback()
            slot.callbackSequence.store(start &+ 2, ordering: .releasing)
        }
    }

    /// Which flavor's call_rcu worker the calling thread is (asked once per worker thread).
    @inline(never)
    private static func callbackFlavorIndex() -> Int {
        curcu_memb_in_callback() ? 0 : curcu_qsbr_in_callback() ? 1 : curcu_bp_in_callback() ? 2
            : curcu_mb_in_callback() ? 3 : -1
    }
}
