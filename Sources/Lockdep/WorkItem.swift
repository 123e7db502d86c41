internal import Glibc

/// A unit of deferred work run by a ``WorkQueue`` worker (the kernel's `work_struct`).
///
/// An item is pending at most once: ``queue()`` returns `false` while it is already pending.
/// Its class (`work:<name>`, keyed by the declaration site) is a pseudo-lock the worker holds
/// while running the callback; the synchronous operations take it as an empty write section,
/// so a cancel, flush or disable under a lock the callback takes is reported as a cycle.
public final class WorkItem: LockdepLock, @unchecked Sendable {
    /// The item's pseudo-lock (one per item, sharing the class of its declaration site).
    public let lockdepMap: LockdepMap
    /// The queue the item runs on.
    public let workQueue: WorkQueue
    /// The callback: on its own, or given the container it is embedded in.
    enum Callback {
        case plain(@Sendable () -> Void)
        case contained(@Sendable (AnyObject) -> Void)
    }

    let callback: Callback
    let declared: LockdepSite
    /// The object the item is embedded in, if any: unowned, so an idle item never keeps it
    /// alive (no cycle through the callback, and no weak-reference side table per item).
    private unowned let container: AnyObject?

    // Guarded by workQueue.monitor.
    /// The container, held strongly from ``queue()`` until the run ends or a cancel removes
    /// the item, so the callback never reaches a deallocated one.
    var pinnedContainer: AnyObject?
    var isWaitingToRun = false
    var isRunning = false
    var runner = pthread_t()
    var disableDepth = 0

    /// Creates a work item.
    ///
    /// - Parameters:
    ///   - name: The work class name; the map is `work:<name>`.
    ///   - queue: The queue it runs on.
    ///   - lockClass: An explicit class for the map; `nil` makes (or joins) the class of this
    ///     declaration site (as `INIT_WORK` does).
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    ///   - body: The callback, run on a worker thread.
    public convenience init(_ name: String, on queue: WorkQueue, class lockClass: LockClass? = nil, fileID: StaticString = #fileID,
                            line: UInt = #line, function: StaticString = #function, _ body: @escaping @Sendable () -> Void) {
        self.init(name, queue, lockClass, container: nil, .plain(body), fileID, line, function)
    }

    /// Creates a work item embedded in `container`, the kernel's `container_of` pattern: the
    /// callback is given the container instead of capturing it.
    ///
    /// The item holds `container` unowned while idle, so storing the item in the container
    /// makes no reference cycle, and strongly from ``queue()`` until its run ends (or a cancel
    /// removes it), so the callback always gets a live object. Queueing the item after the
    /// container was deallocated is a runtime trap, never a use after free.
    ///
    /// One callback can serve every item of a kind, as one work function serves every
    /// `work_struct` initialised with it: make the closure once and pass it to each item, and
    /// making an item allocates no closure context.
    ///
    /// ```swift
    /// let quarantineWork: @Sendable (GroupDevice) -> Void = { gdev in
    ///     gdev.group.mutex.withLock { quarantine(gdev) }
    /// }
    /// gdev.brokenWork = WorkItem("gdev_broken", on: queue, container: gdev, quarantineWork)
    /// ```
    ///
    /// - Parameters:
    ///   - name: The work class name; the map is `work:<name>`.
    ///   - queue: The queue it runs on.
    ///   - lockClass: An explicit class for the map; `nil` makes (or joins) the class of this
    ///     declaration site (as `INIT_WORK` does).
    ///   - container: The object the item belongs to.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    ///   - body: The callback, run on a worker thread with the container.
    public convenience init<Container: AnyObject & Sendable>(
        _ name: String, on queue: WorkQueue, class lockClass: LockClass? = nil, container: Container,
        fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function,
        _ body: @escaping @Sendable (Container) -> Void
    ) {
        // Stored as a callback on `AnyObject` without a wrapping closure (which would allocate a
        // context per item): a function of one class reference has the same representation and
        // calling convention whatever the class (a class-bound generic parameter is passed
        // directly, like `AnyObject`), and the item only ever passes it `container`.
        let erased = unsafeBitCast(body, to: (@Sendable (AnyObject) -> Void).self)
        self.init(name, queue, lockClass, container: container, .contained(erased), fileID, line, function)
    }

    private init(_ name: String, _ queue: WorkQueue, _ lockClass: LockClass?, container: AnyObject?,
                 _ callback: Callback, _ fileID: StaticString, _ line: UInt, _ function: StaticString) {
        self.workQueue = queue
        self.callback = callback
        self.container = container
        self.declared = LockdepSite(fileID: fileID, line: line, function: function)
        self.lockdepMap = LockdepMap(class: lockClass ?? LockClass("work:\(name)", fileID: fileID, line: line),
                                     options: [.completion])
    }

    /// Runs the callback (on a worker, with the container pinned at dequeue).
    func runCallback(container: AnyObject?) {
        switch callback {
        case let .plain(body): body()
        case let .contained(body): body(container.unsafelyUnwrapped)
        }
    }

    /// The class of the item's map.
    public var lockClass: LockClass { lockdepMap.lockClass }
    /// The identity of the item's map.
    public var lockdepInstance: UnsafeRawPointer { lockdepMap.lockdepInstance }

    /// Whether the item is queued and not yet started (the kernel's `work_pending()`).
    /// In a child of `fork()`, reported and `false` (see ``WorkQueue``'s discussion).
    public var isPending: Bool {
        guard workQueue.workersExist("WorkItem.isPending", at: declared) else { return false }
        return workQueue.monitor.withLock { isWaitingToRun }
    }

    /// Queues the item (`queue_work`).
    ///
    /// - Returns: `false` if it was already pending, is disabled, or the queue is shut down; in
    ///   a child of `fork()`, reported and `false` (see ``WorkQueue``'s discussion).
    @discardableResult
    public func queue() -> Bool {
        let q = workQueue
        guard q.workersExist("WorkItem.queue() (work declared at \(declared))", at: declared) else { return false }
        return q.monitor.withLock {
            guard disableDepth == 0, !isWaitingToRun, !q.stopping else { return false }
            isWaitingToRun = true
            if pinnedContainer == nil { pinnedContainer = container }
            q.enqueued += 1
            q.pending.append(self)
            q.workQueued.signal()
            return true
        }
    }

    /// Cancels the item and waits for a running callback to finish (`cancel_work_sync`).
    ///
    /// Sleeps. Holding a lock the callback takes is reported as a circular dependency
    /// (`lock -> work:<name> -> lock`) even if the callback is not running.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether the item was pending (in a child of `fork()`, reported and `false`:
    ///   see ``WorkQueue``'s discussion).
    @discardableResult
    public func cancelSync(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        guard workQueue.workersExist("WorkItem.cancelSync()", at: LockdepSite(fileID: fileID, line: line, function: function))
        else { return false }
        Lockdep.mightBlockTask("WorkItem.cancelSync()", alternative: "await the work's completion (a continuation the callback resumes)", fileID: fileID, line: line, function: function)
        Lockdep.emptyWriteSection(lockdepMap, fileID: fileID, line: line, function: function)
        return cancelAndWait()
    }

    /// Waits for the item to finish if it is pending or running (`flush_work`).
    ///
    /// Sleeps; holding a lock the callback takes is reported as a cycle.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether it had to wait (in a child of `fork()`, reported and `false`: see
    ///   ``WorkQueue``'s discussion).
    @discardableResult
    public func flush(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        guard workQueue.workersExist("WorkItem.flush()", at: LockdepSite(fileID: fileID, line: line, function: function))
        else { return false }
        Lockdep.mightBlockTask("WorkItem.flush()", alternative: "await the work's completion (a continuation the callback resumes)", fileID: fileID, line: line, function: function)
        if workQueue.threadCount == 1 {
            Lockdep.emptyWriteSection(workQueue.lockdepMap, fileID: fileID, line: line, function: function)
        }
        Lockdep.emptyWriteSection(lockdepMap, fileID: fileID, line: line, function: function)
        let q = workQueue
        let me = pthread_self()
        return q.monitor.withLock {
            var waited = false
            while (isWaitingToRun || isRunning) && !(isRunning && pthread_equal(runner, me) != 0) {
                waited = true
                q.monitor.wait(for: q.workFinished)
            }
            return waited
        }
    }

    /// Disables the item: cancels it, waits for a running callback, and makes later `queue()`
    /// calls return `false` until ``enable()`` (`disable_work_sync`).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: Whether the item was pending (in a child of `fork()`, reported and `false`:
    ///   see ``WorkQueue``'s discussion).
    @discardableResult
    public func disableSync(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) -> Bool {
        guard workQueue.workersExist("WorkItem.disableSync()", at: LockdepSite(fileID: fileID, line: line, function: function))
        else { return false }
        Lockdep.mightBlockTask("WorkItem.disableSync()", alternative: "await the work's completion (a continuation the callback resumes)", fileID: fileID, line: line, function: function)
        workQueue.monitor.withLock { disableDepth += 1 }
        Lockdep.emptyWriteSection(lockdepMap, fileID: fileID, line: line, function: function)
        return cancelAndWait()
    }

    /// Re-enables an item disabled by ``disableSync(fileID:line:function:)`` (`enable_work`).
    ///
    /// - Returns: Whether the item is now enabled (every disable was balanced); in a child of
    ///   `fork()`, reported and `false` (see ``WorkQueue``'s discussion).
    @discardableResult
    public func enable() -> Bool {
        guard workQueue.workersExist("WorkItem.enable() (work declared at \(declared))", at: declared) else { return false }
        return workQueue.monitor.withLock {
            if disableDepth > 0 { disableDepth -= 1 }
            return disableDepth == 0
        }
    }

    func cancelAndWait() -> Bool {
        let q = workQueue
        let me = pthread_self()
        // The container's last reference may go with `unpinned`: dropped after unlocking.
        let (wasPending, unpinned): (Bool, AnyObject?) = q.monitor.withLock {
            let wasPending = isWaitingToRun
            var unpinned: AnyObject?
            if isWaitingToRun, let i = q.pending.firstIndex(where: { $0 === self }) {
                q.pending.remove(at: i)
                isWaitingToRun = false
                if !isRunning { unpinned = takePinnedContainer() }
                q.finished += 1
                q.workFinished.broadcast()
            }
            while isRunning && pthread_equal(runner, me) == 0 { q.monitor.wait(for: q.workFinished) }
            return (wasPending, unpinned)
        }
        withExtendedLifetime(unpinned) {}
        return wasPending
    }

    /// Ends the pin (under `workQueue.monitor`); the caller drops it after unlocking.
    func takePinnedContainer() -> AnyObject? {
        defer { pinnedContainer = nil }
        return pinnedContainer
    }
}
