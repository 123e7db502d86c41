public import CLockdepThread
import Synchronization

/// Swift concurrency as a Lockdep context: the cooperative pool has one thread per core, so a
/// task that blocks its thread for an unbounded time (a condition wait, a work flush, a grace
/// period) stalls every other task queued behind it. The kernel's analogue is "sleeping
/// function called from invalid context"; here the context is "running in a task", found by
/// asking the Swift runtime for the current task (a thread-local read).
///
/// Short lock sections in tasks stay allowed: taking a ``CheckedMutex`` briefly is the Swift
/// ecosystem's norm, and is not reported. A lock held *across* an `await` is reported when it
/// shows: the task releases it on another thread than it took it on, or another task takes it
/// on the thread where it is held. (A task that resumes on the same thread and releases the
/// lock before anything else takes it leaves no trace.) Tasks with a task-executor preference
/// run on threads their code chose, and may block them: their waits are not reported.
extension Lockdep {
    /// Whether blocking waits in tasks (``LockdepReport/Kind/blockingInTask``) and locks held
    /// across suspension points (``LockdepReport/Kind/lockHeldAcrossSuspension``) are reported.
    /// On by default where Lockdep's checks are compiled in (debug builds, or release with the
    /// `LockdepInRelease` trait); compiled out, nothing is checked whatever this says.
    ///
    /// - Note: With it on, every checked `lock()` (not `withLock`, whose body cannot suspend)
    ///   records the running task: a few loads, reading the runtime's thread-local current-task
    ///   slot directly where Lockdep can find it (x86-64 Linux), two runtime calls elsewhere.
    public static var checksTaskContext: Bool {
        get { TaskContext.enabled }
        set { clockdep_task_checks_store(newValue ? 1 : 0) }
    }

    /// Declares that the caller blocks its thread here for an unbounded time: reports
    /// ``LockdepReport/Kind/blockingInTask`` when the caller runs in a Swift task.
    ///
    /// Annotate your own blocking waits with it, naming the async call to use instead:
    ///
    /// ```swift
    /// func drain() {
    ///     Lockdep.mightBlockTask("Pool.drain()", alternative: "await pool.drained()")
    ///     semaphore.wait()
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - call: The blocking call, as the report names it.
    ///   - alternative: What a task should call instead, if anything.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public static func mightBlockTask(_ call: String, alternative: String? = nil, fileID: StaticString = #fileID,
                                      line: UInt = #line, function: StaticString = #function) {
        #if LOCKDEP_CHECKS
        TaskContext.checkBlocking(call, alternative: alternative,
                                  site: LockdepSite(fileID: fileID, line: line, function: function))
        #endif
    }
}

/// The task-context check's state and reports.
@usableFromInline
enum TaskContext {
    /// Whether the checks are on (a C global: one load).
    @inlinable @inline(__always)
    static var enabled: Bool { clockdep_task_checks_load() != 0 }

    /// The running task's identity if the task checks are on, else 0. With `thread`'s slot of
    /// the runtime's current task known, a few loads (and a call inside a task); otherwise
    /// the two runtime calls of ``currentTask``.
    @inlinable @inline(__always)
    static func currentTaskIfChecking(_ thread: UnsafeMutablePointer<ThreadState>?) -> UInt {
        guard enabled else { return 0 }
        if let slot = thread?.pointee.taskSlot, clockdep_task_slot_known(slot) != 0 {
            return UInt(clockdep_task_from_slot(slot))
        }
        return currentTask
    }

    /// The running task's identity, or 0 outside any task: the runtime's task number
    /// (unique for the process's life), not the task's address, which the runtime reuses as
    /// soon as a task ends. Every checked `lock()` records it (see ``currentTaskIfChecking(_:)``).
    @usableFromInline @inline(never)
    static var currentTask: UInt { UInt(clockdep_current_task()) }

    /// Whether the task has a task-executor preference: it runs on threads its code chose
    /// (a dedicated executor), not on the cooperative pool, and may block them.
    static var currentTaskHasOwnExecutor: Bool {
        withUnsafeCurrentTask { $0?.unownedTaskExecutor != nil }
    }

    /// The recursive acquire of an exclusive lock by a task on the thread that holds it, when
    /// another task took it there: that task holds the lock across a suspension point and
    /// this one would deadlock its thread. Reported; returns whether it was one (the caller
    /// then refuses the acquire, as it refuses every recursive one).
    @usableFromInline
    static func refuseAcquireOfSuspendedHold(classID: UInt32, ownerTask: UInt, call: StaticString,
                                             site: LockdepSite) -> Bool {
        guard enabled else { return false }
        let task = currentTask
        guard ownerTask != 0, task != ownerTask else { return false }
        let t = ThreadState.current()
        let r: LockdepReport = graph.withLock { g in
            let name = g.nodeName(classID << 3)
            let lock = LockdepReport.Lock(name: name, mode: .write, site: site, usage: g.usage(classID << 3))
            var body = "\(taskName(ownerTask)) took lock (\(name)) on thread \"\(t.pointee.name)\" and suspended (an await) "
            body += "without releasing it;\n\(task == 0 ? "code outside any task" : taskName(task)) now runs on the same thread "
            body += "and tries to take it with \(call) at:\n  \(site)\n"
            body += "Blocking would deadlock the thread. The acquire was refused: this code runs without the lock while "
            body += "the other task's critical section is suspended half-way.\n"
            body += "No lock may be held across an await: release it before, or use an async-aware primitive (an actor).\n"
            return Reports.make(.lockHeldAcrossSuspension, "WARNING: lock held across a suspension point!", t,
                                site: site, lock: lock, classes: [name], held: Engine.heldLocks(g, t, upTo: t.pointee.depth),
                                body: body)
        }
        Engine.deliverRefusal(r, t)
        return true
    }

    @usableFromInline
    static func checkBlocking(_ call: String, alternative: String?, site: LockdepSite) {
        guard enabled, Engine.validating else { return }
        let task = currentTask
        guard task != 0, !currentTaskHasOwnExecutor else { return }
        let t = ThreadState.current()
        guard t.pointee.recursion == 0 else { return }
        let r: LockdepReport = graph.withLock { g in
            let held = Engine.heldLocks(g, t, upTo: t.pointee.depth)
            var body = "\(call) blocks thread \"\(t.pointee.name)\", which runs a Swift task (\(taskName(task))):\n"
            body += clockdep_is_main_thread() != 0
                ? "it is the main thread, which runs the main actor's jobs: every main-actor task waits.\n"
                : "the cooperative pool has one thread per core, and every task queued behind this one waits.\n"
            body += "called at:\n  \(site)\n"
            if let alternative { body += "in a task, use instead: \(alternative)\n" }
            return Reports.make(.blockingInTask, "BUG: blocking call in async task context at \(site.fileName):\(site.line)",
                                t, site: site, lock: nil, classes: [], held: held, body: body)
        }
        Engine.deliver([r], t)
    }

    /// A release by a thread that does not hold the lock, made by the task that took it on
    /// another thread: the task held the lock across a suspension point. Reported (the
    /// release is refused, as every release by a non-holder is); returns whether it was one.
    @usableFromInline
    static func refuseReleaseAcrossSuspension(classID: UInt32, ownerWord: UInt, ownerTask: UInt, call: String,
                                              site: LockdepSite) -> Bool {
        guard ownerTask != 0, enabled, ownerTask == currentTask else { return false }
        let t = ThreadState.current()
        guard ownerWord >> 1 != t.pointee.serial else { return false }   // this thread holds it after all
        let r: LockdepReport = graph.withLock { g in
            let name = g.nodeName(classID << 3)
            let owner = g.threadNames[ownerWord >> 1] ?? "thread-\(ownerWord >> 1)"
            let lock = LockdepReport.Lock(name: name, mode: .write, site: site, usage: g.usage(classID << 3))
            var body = "\(taskName(ownerTask)) took lock (\(name)) on thread \"\(owner)\" and releases it with "
            body += "\(call) on thread \"\(t.pointee.name)\" at:\n  \(site)\n"
            body += "so it held the lock across a suspension point (an await): the task resumed on another thread.\n"
            body += "A pthread lock must be released by the thread that took it, and no lock may be held across an await:\n"
            body += "release it before the await, or use an async-aware primitive (an actor).\n"
            body += "(the release was not performed: thread \"\(owner)\" still holds the lock)\n"
            return Reports.make(.lockHeldAcrossSuspension, "WARNING: lock held across a suspension point!", t,
                                site: site, lock: lock, classes: [name], held: Engine.heldLocks(g, t, upTo: t.pointee.depth),
                                body: body, other: owner)
        }
        Engine.deliverRefusal(r, t)
        return true
    }

    static func taskName(_ task: UInt) -> String {
        "task 0x" + String(task, radix: 16)
    }
}
