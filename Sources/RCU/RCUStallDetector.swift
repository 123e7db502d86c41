import CURCUCommon
import Lockdep
import CLockdepThread
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Names the threads that hold up grace periods, instead of a silent hang or
/// an unbounded call_rcu backlog.
///
/// A watchdog thread (started on the first `synchronize()` or `barrier()`, blocking or
/// awaited, or by ``enable()``) reports a ``Stall`` when a grace-period wait, or the
/// call_rcu backlog of a flavor, makes no progress for longer than
/// ``threshold``. An awaited wait is reported as its flavor's call_rcu backlog stall:
/// the task waits for a callback, not on a thread. The classic cause is a QSBR reader that never reports a
/// quiescent state; a memb reader stuck inside a read section is the other.
///
/// A `barrier()` or backlog report also names the call_rcu workers that hold it
/// up: one stuck in a callback, with the Lockdep-checked lock it waits for and that
/// lock's holder (``Stall/runningCallbacks``), and one whose thread exited inside a
/// callback, which no amount of waiting brings back (``Stall/exitedWorkers``).
///
/// In a child of `fork()` the watchdog starts again on the child's first wait,
/// with the parent's threshold and handler.
///
/// A ``ReportHandler/custom(_:)`` handler runs on a thread of its own, never on the
/// watchdog's: a handler that blocks (a `synchronize()` or `barrier()` in it waits for
/// the very stall it was handed to end) cannot stop the watchdog from looking.
public enum RCUStallDetector {
    /// One stall: who waits, for how long, and who is in the way.
    public struct Stall: Sendable, CustomStringConvertible {
        /// The flavor whose grace period is stalled.
        public let kind: RCUFlavorKind
        /// liburcu's name for that flavor (`kind.name`).
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
        /// For `barrier()` and backlog stalls: this flavor's call_rcu workers that have been
        /// running one callback since the watchdog's previous look or longer.
        public let runningCallbacks: [RunningCallback]
        /// For `barrier()` and backlog stalls: this flavor's call_rcu workers whose thread
        /// exited inside a callback (`Thread.exit()` or `pthread_exit` there). The callbacks
        /// queued to such a worker never run, and every later `barrier()` waits for it forever.
        public let exitedWorkers: [ExitedWorker]

        /// A thread holding up a grace period.
        public struct Reader: Sendable, Equatable {
            public let threadID: Int
            public let name: String
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

        /// A call_rcu worker whose thread exited inside a callback: its name and kernel tid
        /// when it exited.
        public struct ExitedWorker: Sendable, Equatable {
            public let workerID: Int
            public let workerName: String
        }

        public var description: String {
            let readers = blockingReaders.isEmpty
                ? "no registered reader found in the way (an unregistered thread, or one that has just left)"
                : blockingReaders.map { "\"\($0.name)\" (tid \($0.threadID))" }.joined(separator: ", ")
            let waiter = waiterID == 0 ? "" : " on thread \"\(waiterName)\" (tid \(waiterID))"
            let hint = kind.flavorType.flavorDescription.isQSBR
                ? "each must call quiescentState() or go offline" : "each is inside a read-side critical section"
            var text = "INFO: rcu_\(flavor) detected stall: \(call)\(waiter) has made no progress for \(waited); "
                + "\(pendingCallbacks) callbacks pending; blocking readers: \(readers) (\(hint))"
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
            for worker in exitedWorkers {
                text += "; call_rcu worker \"\(worker.workerName)\" (tid \(worker.workerID)) exited inside a "
                    + "\(flavor) callback (Thread.exit() or pthread_exit in the callback): the callbacks queued "
                    + "to it never run and barrier() never returns"
            }
            return text
        }
    }

    /// Where stalls go (the shape ``RCUMisuse`` and Lockdep share).
    public enum ReportHandler: Sendable {
        /// Print each stall to standard error and keep going (the default; the kernel's RCU
        /// CPU stall warnings do the same).
        case reportAndContinue
        /// Hand each stall to a function, on a thread of its own (`rcu-stall-rpt`), one
        /// stall at a time in the order found.
        ///
        /// The function may block, even wait for a grace period (which waits for the stall
        /// it was handed to end): that holds up the report thread only. The watchdog keeps
        /// looking; when the function has not returned within ``RCUStallDetector/threshold``
        /// it says so on standard error, once per call, and prints the stalls it finds until
        /// the function returns instead of queueing them behind it.
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
        /// The waiting call, written before the odd bump: the flavor's ``index(of:)``
        /// times 2, plus 1 for `barrier()`.
        let what = Atomic<Int>(0)
        /// Bumped when a call_rcu callback starts (odd) and ends (even) on this thread;
        /// only by the slot's thread. Still odd when the thread exits: it exited inside a callback.
        let callbackSequence = Atomic<Int>(0)
        /// The ``index(of:)`` of the flavor whose call_rcu worker this thread is
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
        let kind: RCUFlavorKind
        let call: String
        let waiterName: String
        let waiterID: Int
        let waited: Duration
    }

    /// A call_rcu worker seen in the same callback at two looks or more.
    struct BusyWorker {
        /// The flavor's ``index(of:)``, -1 when unknown.
        let flavor: Int
        let thread: pthread_t
        let id: Int
        let name: String
        let running: Duration
    }

    /// A call_rcu worker whose thread exited inside a callback.
    struct ExitedWorker {
        /// The flavor's ``index(of:)``, -1 when unknown.
        let flavor: Int
        let worker: Stall.ExitedWorker
    }

    /// What the watchdog saw at one look, for the reports of that look.
    struct Snapshot {
        var busyWorkers: [BusyWorker] = []
        var exitedWorkers: [ExitedWorker] = []
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
        var handler: ReportHandler = .reportAndContinue
        /// One slot per thread that has waited or run a callback; a slot leaves when its thread exits.
        var slots: [WaitSlot] = []
        /// By flavor ``index(of:)``.
        var backlogs: [Int: Backlog] = [:]
        /// Workers lost for good; kept for every later barrier or backlog report of their flavor.
        var exitedWorkers: [ExitedWorker] = []
        var running = false
    }

    /// The detector's state; its first use registers the `fork()` hooks that take its lock
    /// (registered when the watchdog first started, a fork while another thread set the
    /// threshold or handler earlier left the child that lock held for ever).
    static var state: InternalLockedValue<State> {
        if clockdep_fork_once_value(CLOCKDEP_ONCE_RCU_STALL_DETECTOR) == nil { installForkHandlers() }
        return lockedState
    }

    /// Written only by the `fork()` child handler, when the child's only thread runs it: the
    /// lock inherited from the parent may be held by a thread that does not exist in the
    /// child, so the child gets a new one.
    nonisolated(unsafe) private static var lockedState = InternalLockedValue(State())

    /// Hands stalls to a custom handler on the report thread, so that a handler that
    /// blocks holds up that thread, not the watchdog.
    final class Reporter: @unchecked Sendable {
        let lock = InternalLock()
        /// Signalled when a stall is added to `pending`.
        let queued = InternalCondition()
        // Guarded by `lock`.
        var pending: [Stall] = []
        var threadStarted = false
        /// When the handler call in progress began (nil: none in progress).
        var busySince: ContinuousClock.Instant?
        /// Whether the watchdog has said that the call in progress is stuck.
        var stuckNoticed = false
    }

    /// The report thread's mailbox. Replaced only by the `fork()` child handler (the
    /// report thread is the parent's; the child starts its own on its first custom report).
    nonisolated(unsafe) static var reporter = Reporter()

    /// Stalls the watchdog found, and the times it said a custom handler had not returned
    /// within the threshold (what tests observe: the watchdog looks on while a handler blocks).
    static let stallsFound = Atomic<Int>(0)
    static let stuckHandlerNotices = Atomic<Int>(0)

    /// The threshold and handler the parent had at `fork()`, for the child's fresh state.
    /// Written by the atfork prepare handler, which glibc runs under its fork lock.
    nonisolated(unsafe) private static var carriedOverFork: (threshold: Duration, handler: ReportHandler)?

    /// The flavors the watchdog looks at, each at its ``index(of:)``.
    static let kinds = RCUFlavorKind.allCases

    /// A flavor's index in ``kinds`` (a constant once a generic caller is specialised).
    @inline(__always)
    static func index(of kind: RCUFlavorKind) -> Int { kind.rawValue }

    /// The flavor type of a kind, for its counters and blocking readers.
    static func flavor(_ kind: RCUFlavorKind) -> any RCUFlavor.Type { kind.flavorType }

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

    /// Where stalls are reported: ``ReportHandler/reportAndContinue`` (the default) or a
    /// ``ReportHandler/custom(_:)`` function. Takes effect at the watchdog's next report.
    public static var reportHandler: ReportHandler {
        get { state.withLock { $0.handler } }
        set { state.withLock { $0.handler = newValue } }
    }

    /// Starts the watchdog thread if it is not running.
    ///
    /// - Note: In a child of `fork()` the watchdog thread does not exist; the child starts
    ///   its own on its first grace-period wait (or call to this function).
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

    /// Installs the `fork()` handlers once, at the state's first use, inside
    /// ``ForkHooks/makeOnce(_:_:)`` (not to miss a fork being prepared meanwhile).
    @inline(never)
    private static func installForkHandlers() {
        _ = ForkHooks.makeOnce(CLOCKDEP_ONCE_RCU_STALL_DETECTOR) { forkHandlers }
    }

    nonisolated(unsafe) private static let forkHandlers: UnsafeMutableRawPointer = {
        ForkHooks.register(
            // The prepare hook also touches `reporter`, so the child hook's first use of it
            // is not its initialization (see ForkHooks: the child runs only code the parent has run).
            prepare: {
                RCUStallDetector.carriedOverFork = RCUStallDetector.lockedState.withLock { ($0.threshold, $0.handler) }
                _ = RCUStallDetector.reporter
            },
            parent: { RCUStallDetector.carriedOverFork = nil },
            child: { RCUStallDetector.resetInForkedChild() })
        return UnsafeMutableRawPointer(bitPattern: 1)!
    }()

    /// In a child of `fork()`, where only the forking thread exists: the watchdog thread is
    /// gone, and so are the threads of every slot. Starts over with the parent's threshold
    /// and handler, so the watchdog starts again on the next wait; the forking thread's
    /// slot is dropped too (it makes a new one on its next wait, which starts the watchdog).
    private static func resetInForkedChild() {
        let carried = carriedOverFork ?? (State().threshold, State().handler)
        carriedOverFork = nil
        // Leaked on purpose: its lock may be held by a thread that did not survive the fork.
        _ = Unmanaged.passRetained(lockedState)
        lockedState = InternalLockedValue(State(threshold: carried.threshold, handler: carried.handler))
        _ = Unmanaged.passRetained(reporter)   // leaked too: its lock may be held by the parent's report thread
        reporter = Reporter()
        guard let raw = curcu_wait_slot() else { return }
        curcu_set_wait_slot(nil)
        pthread_setspecific(slotKey, nil)
        let slot = Unmanaged<WaitSlot>.fromOpaque(raw)
        // Forked from inside a callback, the slot is still in use when the callback returns: keep it alive.
        if slot.takeUnretainedValue().callbackSequence.load(ordering: .relaxed) & 1 == 0 {
            slot.release()
        }
    }

    /// Runs a grace-period wait under the watchdog's eye.
    @inline(__always)
    static func watch<Flavor: RCUFlavor>(_: Flavor.Type, barrier: Bool, _ wait: () -> Void) {
        Unmanaged<WaitSlot>.fromOpaque(curcu_wait_slot() ?? makeCurrentSlot())._withUnsafeGuaranteedRef { slot in
            slot.what.store(index(of: Flavor.kind) * 2 + (barrier ? 1 : 0), ordering: .relaxed)
            let start = slot.sequence.load(ordering: .relaxed)
            slot.sequence.store(start &+ 1, ordering: .releasing)
            wait()
            slot.sequence.store(start &+ 2, ordering: .releasing)
        }
    }

    /// The key whose value is the current thread's slot (+1 reference); its destructor
    /// removes the slot when the thread exits, under the lock the watchdog reads thread
    /// names under, so the watchdog never names a thread that has gone. A call_rcu
    /// worker that exits inside a callback is recorded for later reports.
    private static let slotKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { value in
            guard let value else { return }
            curcu_set_wait_slot(nil)
            let slot = Unmanaged<WaitSlot>.fromOpaque(value).takeRetainedValue()
            let inCallback = slot.callbackSequence.load(ordering: .relaxed) & 1 == 1
            let exited = inCallback
                ? ExitedWorker(
                    flavor: slot.callbackFlavor.load(ordering: .relaxed),
                    worker: .init(workerID: slot.id, workerName: CurrentThread.name))
                : nil
            RCUStallDetector.state.withLock { state in
                state.slots.removeAll { $0 === slot }
                if let exited { state.exitedWorkers.append(exited) }
            }
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
            let threshold = state.withLock { $0.threshold }
            let interval = lookInterval(threshold: threshold)
            // Within 1...250 ms: `components` cannot overflow and the product fits a UInt32.
            let micros = interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000
            usleep(UInt32(clamping: micros))
            let (stalls, snapshot) = findStalls()
            stallsFound.add(stalls.count, ordering: .relaxed)
            for stall in stalls {
                report(stall, snapshot, threshold: threshold)
            }
            noticeStuckHandler(threshold: threshold)
        }
    }

    /// Says once per handler call, on standard error, that a custom handler has not returned
    /// within the threshold: it blocks, and stalls found meanwhile are printed instead.
    private static func noticeStuckHandler(threshold: Duration) {
        let r = reporter
        let stuck: Duration? = r.lock.withLock {
            guard let since = r.busySince, !r.stuckNoticed else { return nil }
            let running = ContinuousClock.now - since
            guard running > threshold else { return nil }
            r.stuckNoticed = true
            return running
        }
        guard let stuck else { return }
        stuckHandlerNotices.add(1, ordering: .relaxed)
        CurrentThread.printError(
            "swift-rcu: the RCUStallDetector custom report handler has not returned for \(stuck): it blocks "
            + "(a synchronize() or barrier() in it waits for the stall it was handed to end, or a lock). It runs on "
            + "its own thread (rcu-stall-rpt), so the watchdog keeps looking; stalls found until it returns are "
            + "printed here instead.")
    }

    /// Queues `stall` for the report thread (starting it the first time), or prints it when
    /// the handler call in progress has not returned within the threshold.
    private static func handToReporter(_ stall: Stall, threshold: Duration) {
        let r = reporter
        let (start, stuckFor): (Bool, Duration?) = r.lock.withLock {
            if let since = r.busySince, ContinuousClock.now - since > threshold {
                return (false, ContinuousClock.now - since)
            }
            r.pending.append(stall)
            r.queued.signal()
            defer { r.threadStarted = true }
            return (!r.threadStarted, nil)
        }
        if let stuckFor {
            CurrentThread.printError(
                "\(stall.description) (not handed to the custom stall handler: its call in progress has not returned for \(stuckFor))")
            return
        }
        guard start else { return }
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { raw in
            RCUStallDetector.reporterLoop(Unmanaged<Reporter>.fromOpaque(raw!).takeRetainedValue())
            return nil
        }, Unmanaged.passRetained(r).toOpaque())
        precondition(status == 0, "swift-rcu: cannot start the RCU stall report thread (pthread_create: \(status))")
        pthread_detach(thread)
    }

    /// The report thread: hands each queued stall to the handler set at that moment.
    private static func reporterLoop(_ r: Reporter) {
        _ = curcu_set_current_thread_name("rcu-stall-rpt")
        while true {
            let stall: Stall = r.lock.withLock {
                while r.pending.isEmpty { r.lock.wait(for: r.queued) }
                r.busySince = .now
                r.stuckNoticed = false
                return r.pending.removeFirst()
            }
            switch state.withLock({ $0.handler }) {
            case .reportAndContinue:
                CurrentThread.printError(stall.description)
            case .custom(let handle):
                handle(stall)
            }
            r.lock.withLock { r.busySince = nil }
        }
    }

    /// Marks and returns the waits and backlogs that crossed the threshold since the last
    /// look, with what the look saw of busy and exited call_rcu workers.
    private static func findStalls() -> ([Found], Snapshot) {
        let now = ContinuousClock.now
        let progress = kinds.map { kind in
            let flavor = flavor(kind)
            return (pending: flavor.pendingCallbacks, completed: flavor.completedCallbacks)
        }
        return state.withLock { state in
            var stalls: [Found] = []
            var snapshot = Snapshot(exitedWorkers: state.exitedWorkers)
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
                guard !slot.reported, now - slot.since > state.threshold else { continue }
                slot.reported = true
                let what = slot.what.load(ordering: .relaxed)
                stalls.append(Found(
                    kind: kinds[what / 2], call: what & 1 == 1 ? "barrier()" : "synchronize()",
                    waiterName: CurrentThread.name(of: slot.thread), waiterID: slot.id, waited: now - slot.since))
            }
            for (index, (pending, completed)) in progress.enumerated() {
                var backlog = state.backlogs[index] ?? Backlog(completed: completed, since: now, reported: false)
                if pending == 0 || completed != backlog.completed {
                    backlog = Backlog(completed: completed, since: now, reported: false)
                } else if !backlog.reported && now - backlog.since > state.threshold {
                    backlog.reported = true
                    stalls.append(Found(
                        kind: kinds[index], call: "call_rcu backlog", waiterName: "", waiterID: 0,
                        waited: now - backlog.since))
                }
                state.backlogs[index] = backlog
            }
            return (stalls, snapshot)
        }
    }

    private static func report(_ found: Found, _ snapshot: Snapshot, threshold: Duration) {
        let flavor = flavor(found.kind)
        let flavorIndex = index(of: found.kind)
        var readers: [Stall.Reader] = []
        flavor.forEachBlockingReader { tid, name in readers.append(.init(threadID: tid, name: name)) }
        // A synchronize() does not wait for callbacks; a barrier() and the backlog do.
        let waitsForCallbacks = found.call != "synchronize()"
        let callbacks: [Stall.RunningCallback] = !waitsForCallbacks ? [] : snapshot.busyWorkers
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
        let exited = !waitsForCallbacks ? [] : snapshot.exitedWorkers
            .filter { $0.flavor == flavorIndex || $0.flavor < 0 }
            .map(\.worker)
        let stall = Stall(
            kind: found.kind, flavor: found.kind.name, call: found.call, waiterName: found.waiterName,
            waiterID: found.waiterID, waited: found.waited, pendingCallbacks: flavor.pendingCallbacks,
            blockingReaders: readers, runningCallbacks: callbacks, exitedWorkers: exited)
        switch state.withLock({ $0.handler }) {
        case .reportAndContinue:
            CurrentThread.printError(stall.description)
        case .custom:
            handToReporter(stall, threshold: threshold)
        }
    }

    /// Runs one call_rcu callback with this thread's callback sequence odd, so the watchdog
    /// can name a worker stuck in a callback, and the slot's key destructor a worker whose
    /// thread exits inside one. Two plain stores and a thread-local load.
    @inline(__always)
    static func runningCallback(_ callback: () -> Void) {
        let raw = curcu_wait_slot() ?? makeSlot()
        Unmanaged<WaitSlot>.fromOpaque(raw)._withUnsafeGuaranteedRef { slot in
            if _slowPath(slot.callbackFlavor.load(ordering: .relaxed) == .min) {
                slot.callbackFlavor.store(firstCallbackOnThisThread(), ordering: .relaxed)
            }
            let start = slot.callbackSequence.load(ordering: .relaxed)
            slot.callbackSequence.store(start &+ 1, ordering: .releasing)
            callback()
            slot.callbackSequence.store(start &+ 2, ordering: .releasing)
        }
    }

    /// The ``index(of:)`` of the flavor whose call_rcu worker the calling thread is, -1 for
    /// none (asked once per worker thread). The worker is named for what it is,
    /// `call_rcu-<flavor>`, in reports here and in Lockdep's: liburcu's worker threads
    /// otherwise carry the name of whichever thread happened to start them.
    @inline(never)
    private static func firstCallbackOnThisThread() -> Int {
        guard let kind = kinds.first(where: { flavor($0).isInCallback }) else { return -1 }
        _ = curcu_set_current_thread_name("call_rcu-\(kind.name)")
        return index(of: kind)
    }
}
