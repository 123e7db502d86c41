import Lockdep
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CURCUCommon
internal import CLockdepThread
import Synchronization

/// A flavor's grace periods as a numbered sequence, for polled cookies and for waits that
/// suspend a task instead of blocking a thread (liburcu 0.13.2 has neither).
///
/// Every grace period this package starts takes a ticket, `issued + 1`, before it starts,
/// and raises `completed` to its ticket when it ends. A cookie is `issued + 1` read at
/// some moment: any grace period with a ticket at least that large started after the
/// moment, so once `completed` reaches the cookie, a full grace period has elapsed since.
/// Tickets can complete out of order (several call_rcu workers, blocking `synchronize()`
/// calls on several threads); `completed` is their maximum, which keeps the rule exact:
/// a larger ticket was issued later still.
///
/// Tasks waiting on cookies share one *driver*: a call_rcu callback, at most one in flight,
/// whose running ends the grace period of its ticket. Waiters that arrive while it is in
/// flight are served by the next driver, queued when it runs, so any number of waiters
/// costs one grace period per batch, as the kernel batches `synchronize_rcu()` callers.
final class RCUGracePeriodSequence: @unchecked Sendable {
    struct State {
        /// Suspended tasks by the cookie they wait for, then by waiter number (for
        /// cancellation). Cookies are few (about one per grace period), so finding the
        /// ready ones is short under the lock however many tasks wait.
        var waiters: [UInt64: [UInt64: Continuation]] = [:]
        /// The ticket of the driver in flight; 0 when none is.
        var driverTicket: UInt64 = 0
        /// Someone needs a grace period that starts after the driver in flight started.
        var driverWanted = false
        /// Tasks waiting for an `await barrier()`, each with the number of the first barrier
        /// to start after it registered; and whether a barrier thread serves them.
        var barrierWaiters: [UInt64: (barrier: Int, continuation: Continuation)] = [:]
        var barrierThreadRunning = false
        var barriersStarted = 0
    }

    let kind: RCUFlavorKind
    /// Tickets handed out: grace periods started (or about to start) by this package.
    let issued = Atomic<UInt64>(0)
    /// The largest ticket whose grace period has ended.
    let completed = Atomic<UInt64>(0)
    /// Numbers waiters, for cancellation to find its own.
    private let waiterNumbers = Atomic<UInt64>(0)
    /// Tasks listed in `state.waiters`, counted before they check the cookie under the lock,
    /// so ``complete(_:)`` can skip the lock when nobody waits (see there for the ordering).
    private let waiterCount = Atomic<Int>(0)
    /// Waiters and the driver. Replaced only by the `fork()` child handler (see ``resetInForkedChild()``).
    nonisolated(unsafe) var state = InternalLockedValue(State())

    private init(_ kind: RCUFlavorKind) { self.kind = kind }

    /// A barrier on `Flavor`, where waiting is allowed (opened from the existential kind).
    private static func barrier<Flavor: RCUFlavor>(_: Flavor.Type) {
        Flavor.waitAllowed(barrier: true) { Flavor.primitiveBarrier() }
    }

    /// One sequence per flavor, at ``RCUStallDetector/index(of:)``: one load of their slot
    /// once made. Made inside ``ForkHooks/makeOnce(_:_:)``: registering the child hook in an
    /// unbracketed initializer missed a fork being prepared meanwhile, whose child then kept
    /// a parent thread's lock on a sequence's waiters.
    @inline(__always)
    private static var sequences: RCUPerFlavorObjects<RCUGracePeriodSequence> {
        RCUPerFlavorObjects(slot: CLOCKDEP_ONCE_RCU_GRACE_PERIOD_SEQUENCES) { made }
    }

    nonisolated(unsafe) private static let made: UnsafeMutableRawPointer = {
        ForkHooks.register(prepare: nil, parent: nil, child: { RCUGracePeriodSequence.resetInForkedChild(RCUGracePeriodSequence.sequences) })
        // Rehearsed on spare sequences, so the child runs only code the parent has run (see ForkHooks).
        resetInForkedChild(RCUPerFlavorObjects(making: RCUGracePeriodSequence.init))
        return RCUPerFlavorObjects(making: RCUGracePeriodSequence.init).raw
    }()

    @inline(__always)
    static func of(_ kind: RCUFlavorKind) -> RCUGracePeriodSequence {
        sequences[kind].takeUnretainedValue()
    }

    /// Calls `body` with `kind`'s sequence, without a retain and release around it (every
    /// blocking grace period goes through here; the sequences live as long as the process).
    @inline(__always)
    static func withSequence<Result>(of kind: RCUFlavorKind, _ body: (RCUGracePeriodSequence) -> Result) -> Result {
        sequences[kind]._withUnsafeGuaranteedRef(body)
    }

    // MARK: tickets and cookies

    /// The cookie for "now": the ticket of the first grace period to start from here on.
    @inline(__always)
    var cookie: UInt64 { issued.load(ordering: .sequentiallyConsistent) &+ 1 }

    /// Whether a grace period with a ticket at least `cookie` has ended. Acquiring: what the
    /// grace period's end made safe (freeing what readers could see) is safe after `true`.
    @inline(__always)
    func hasCompleted(_ cookie: UInt64) -> Bool {
        completed.load(ordering: .acquiring) >= cookie
    }

    /// Takes the ticket of a grace period about to start.
    func issue() -> UInt64 {
        issued.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
    }

    /// Records that the grace period of `ticket` has ended, and wakes the waiters it serves.
    ///
    /// Every blocking `synchronize()` ends here, so the common case, nobody waiting, takes
    /// no lock. No waiter is missed: a waiter counts itself in `waiterCount`, then reads
    /// `completed`; this raises `completed`, then reads `waiterCount`; all four accesses
    /// are sequentially consistent, so at least one side sees the other's write. If this
    /// side reads 0, the waiter's read comes later and finds `completed` raised, so it
    /// does not suspend; otherwise this side takes the lock and wakes it.
    @inline(__always)
    func complete(_ ticket: UInt64) {
        raiseCompleted(to: ticket)
        guard waiterCount.load(ordering: .sequentiallyConsistent) != 0 else { return }
        wakeReady()
    }

    @inline(never)
    private func wakeReady() {
        let ready = state.withLock { takeReady(&$0) }
        Self.resume(ready)
    }

    @inline(__always)
    private func raiseCompleted(to ticket: UInt64) {
        var current = completed.load(ordering: .relaxed)
        while current < ticket {
            let (exchanged, now) = completed.compareExchange(
                expected: current, desired: ticket, ordering: .sequentiallyConsistent)
            if exchanged { break }
            current = now
        }
    }

    private func takeReady(_ s: inout State) -> [[UInt64: Continuation]] {
        guard !s.waiters.isEmpty else { return [] }
        let done = completed.load(ordering: .acquiring)
        let cookies = s.waiters.keys.filter { $0 <= done }
        let ready = cookies.map { s.waiters.removeValue(forKey: $0)! }
        waiterCount.subtract(ready.reduce(0) { $0 + $1.count }, ordering: .relaxed)
        return ready
    }

    typealias Continuation = UnsafeContinuation<Void, any Error>

    /// Resumes woken waiters. A few at once; more through a task that yields after every
    /// 16, so that a wake-up burst joins the pool's queue in slices and other tasks
    /// (already queued, or woken by a timer meanwhile) run between them instead of
    /// behind all of them.
    private static func resume(_ ready: [[UInt64: Continuation]]) {
        let count = ready.reduce(0) { $0 + $1.count }
        guard count > 16 else {
            for batch in ready { for continuation in batch.values { continuation.resume() } }
            return
        }
        Task {
            var resumed = 0
            for batch in ready {
                for continuation in batch.values {
                    continuation.resume()
                    resumed += 1
                    if resumed % 16 == 0 { await Task.yield() }
                }
            }
        }
    }

    // MARK: the driver

    /// Makes sure a grace period that serves `cookie` is started or will be: the driver in
    /// flight if its ticket is at least `cookie`, else the next one. Returns the ticket of
    /// a driver the caller must queue (after unlocking).
    private func demand(_ cookie: UInt64, _ s: inout State) -> UInt64? {
        if s.driverTicket != 0 {
            if s.driverTicket < cookie { s.driverWanted = true }
            return nil
        }
        let ticket = issue()
        s.driverTicket = ticket
        return ticket
    }

    /// `start_poll_synchronize_rcu()`: the cookie for now, with a grace period that serves it started.
    func start() -> UInt64 {
        let cookie = self.cookie
        if let ticket = state.withLock({ demand(cookie, &$0) }) { queueDriver(ticket) }
        return cookie
    }

    /// Queues the driver callback for `ticket`.
    private func queueDriver(_ ticket: UInt64) {
        let context = Unmanaged.passRetained(DriverTicket(self, ticket)).toOpaque()
        kind.flavorType.flavorDescription.call(Self.driverCallback, context)
    }

    final class DriverTicket {
        let sequence: RCUGracePeriodSequence
        let ticket: UInt64
        init(_ sequence: RCUGracePeriodSequence, _ ticket: UInt64) {
            self.sequence = sequence
            self.ticket = ticket
        }
    }

    /// Runs on a call_rcu worker a grace period after its driver was queued.
    static let driverCallback: RCUCallbackFunction = { context in
        RCUCallbackContext.run {
            let driver = Unmanaged<DriverTicket>.fromOpaque(context!).takeRetainedValue()
            driver.sequence.driverRan(driver.ticket)
        }
    }

    private func driverRan(_ ticket: UInt64) {
        raiseCompleted(to: ticket)
        let (ready, next): ([[UInt64: Continuation]], UInt64?) = state.withLock { s in
            let ready = takeReady(&s)
            // A driver from before a fork() (liburcu runs it in the child) is not the child's.
            guard s.driverTicket == ticket else { return (ready, nil) }
            s.driverTicket = 0
            guard s.driverWanted || !s.waiters.isEmpty else { return (ready, nil) }
            s.driverWanted = false
            return (ready, demand(cookie, &s))
        }
        if let next { queueDriver(next) }
        Self.resume(ready)
    }

    // MARK: waiting tasks

    /// Suspends the calling task until a grace period that started after `cookie` was taken
    /// has ended, starting one if none is coming. Cancelling the task ends the wait at once
    /// with `CancellationError`; the grace period goes on for everyone else.
    func wait(for cookie: UInt64) async throws(CancellationError) {
        if hasCompleted(cookie) { return }
        let id = waiterNumbers.wrappingAdd(1, ordering: .relaxed).newValue
        do {
            try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: Continuation) in
                    let (start, outcome) = state.withLock { s -> (UInt64?, Result<Void, any Error>?) in
                        // Cancelled before registering: the handler found nothing to remove.
                        if Task.isCancelled { return (nil, .failure(CancellationError())) }
                        // Counted before the check, for complete()'s lock-free test.
                        waiterCount.add(1, ordering: .sequentiallyConsistent)
                        if completed.load(ordering: .sequentiallyConsistent) >= cookie {
                            waiterCount.subtract(1, ordering: .relaxed)
                            return (nil, .success(()))
                        }
                        s.waiters[cookie, default: [:]][id] = continuation
                        return (demand(cookie, &s), nil)
                    }
                    if let start { queueDriver(start) }
                    if let outcome { continuation.resume(with: outcome) }
                }
            } onCancel: {
                let waiter = state.withLock { s in
                    defer { if s.waiters[cookie]?.isEmpty == true { s.waiters[cookie] = nil } }
                    let removed = s.waiters[cookie]?.removeValue(forKey: id)
                    if removed != nil { waiterCount.subtract(1, ordering: .relaxed) }
                    return removed
                }
                waiter?.resume(throwing: CancellationError())
            }
        } catch {
            throw CancellationError()
        }
    }

    /// Suspends the calling task until every callback queued before the call has run
    /// (`rcu_barrier()`). One thread per flavor, started on demand, runs liburcu's blocking
    /// barrier for every task waiting when it starts one: the tasks' threads never block.
    func barrier() async throws(CancellationError) {
        let id = waiterNumbers.wrappingAdd(1, ordering: .relaxed).newValue
        do {
            try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: Continuation) in
                    let (startThread, cancelled) = state.withLock { s -> (Bool, Bool) in
                        if Task.isCancelled { return (false, true) }
                        s.barrierWaiters[id] = (s.barriersStarted + 1, continuation)
                        defer { s.barrierThreadRunning = true }
                        return (!s.barrierThreadRunning, false)
                    }
                    if cancelled { continuation.resume(throwing: CancellationError()) }
                    if startThread { startBarrierThread() }
                }
            } onCancel: {
                let waiter = state.withLock { $0.barrierWaiters.removeValue(forKey: id) }
                waiter?.continuation.resume(throwing: CancellationError())
            }
        } catch {
            throw CancellationError()
        }
    }

    private func startBarrierThread() {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            Unmanaged<RCUGracePeriodSequence>.fromOpaque(context!).takeRetainedValue().barrierLoop()
            return nil
        }, context)
        precondition(status == 0, "swift-rcu: cannot start the \(kind.name) barrier thread (pthread_create: \(status))")
        pthread_detach(thread)
    }

    /// Runs barriers while tasks wait for one; each barrier serves every task registered
    /// before it started. Waiters stay listed until then, so a cancelled one can leave at once.
    private func barrierLoop() {
        _ = curcu_set_current_thread_name("rcu-bar-\(kind.name)")   // pthread names hold 15 characters
        while true {
            let barrier: Int? = state.withLock { s in
                guard !s.barrierWaiters.isEmpty else {
                    s.barrierThreadRunning = false
                    return nil
                }
                s.barriersStarted += 1
                return s.barriersStarted
            }
            guard let barrier else { return }
            Self.barrier(kind.flavorType)
            let served = state.withLock { s in
                let served = s.barrierWaiters.filter { $0.value.barrier <= barrier }
                for id in served.keys { s.barrierWaiters[id] = nil }
                return served.values.map(\.continuation)
            }
            for continuation in served { continuation.resume() }
        }
    }

    // MARK: fork

    /// In a child of `fork()`: the driver and barrier threads of the parent are gone (a driver
    /// callback still queued is run by liburcu in the child, and ignored by ticket), and the
    /// lock may be held by a thread that did not survive. The counters carry over, so cookies
    /// taken before the fork keep their meaning. The waiters are the parent's tasks, which do
    /// not run in the child: the old state is leaked with them rather than resumed.
    private static func resetInForkedChild(_ sequences: RCUPerFlavorObjects<RCUGracePeriodSequence>) {
        sequences.forEach { sequence in
            _ = Unmanaged.passRetained(sequence.state)
            sequence.state = InternalLockedValue(State())
            sequence.waiterCount.store(0, ordering: .relaxed)
        }
    }
}
