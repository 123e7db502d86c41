internal import Glibc
internal import CLockdepThread

/// A small pool of worker threads running ``WorkItem``s, annotated for the validator as the
/// kernel's workqueues are.
///
/// Each queue has a pseudo-lock (`wq:<name>`) and each work class one (`work:<name>`). A worker
/// holds both while it runs a callback; ``WorkItem/cancelSync(fileID:line:function:)``,
/// ``WorkItem/flush(fileID:line:function:)``, ``WorkItem/disableSync(fileID:line:function:)``
/// and ``flush(fileID:line:function:)`` take them as empty write sections. So cancelling or
/// flushing a work item while holding a lock its callback takes is the cycle
/// `lock -> work -> lock`, reported on the first run where it *could* deadlock, whether or not
/// the threads actually meet. After each callback, a worker that still holds a lock or a map
/// reports "workqueue leaked lock or RCU".
///
/// ```swift
/// let queue = WorkQueue("iommu", threads: 2)
/// let work = WorkItem("gdev_broken", on: queue) { group.mutex.withLock { quarantine() } }
/// _ = work.queue()
/// work.cancelSync()      // never while holding group.mutex
/// queue.shutdown()
/// ```
///
/// - Note: Worker threads keep the queue alive: call ``shutdown()`` when done.
///
/// ## fork()
///
/// A queue belongs to the process that created it: a child of `fork()` has none of its
/// worker threads (and its lock may be held by a parent thread that does not exist there), so
/// an item queued there would never run and a flush would wait forever. In a child, every call
/// on a queue created before the fork, or on one of its items, is reported as
/// ``LockdepReport/Kind/workQueueUsedAfterFork`` through ``Lockdep/reportHandler`` (naming the
/// queue, the call and its site) and refused whole: ``WorkItem/queue()`` returns `false`, the
/// waits return at once without waiting, and ``shutdown()`` joins nothing. This is so in every
/// build, not only where Lockdep's checks are compiled in. Create a new queue in the child.
public final class WorkQueue: @unchecked Sendable {
    /// The queue's name (its map is `wq:<name>`).
    public let name: String
    /// The queue's pseudo-lock.
    public let lockdepMap: LockdepMap
    /// The context callbacks run in (`.softirq` for "atomic" work: sleeping inside is reported).
    public let context: LockdepContext

    /// The queue's bookkeeping lock (never validated): guards the fields below and every
    /// item's state.
    let monitor = InternalLock()
    /// Signalled when an item is queued (or the queue stops): idle workers wait on it.
    let workQueued = InternalCondition()
    /// Broadcast when an item finishes: flushes and cancellations wait on it.
    let workFinished = InternalCondition()
    // Guarded by `monitor`.
    var pending: [WorkItem] = []
    var enqueued = 0
    var finished = 0
    var stopping = false
    var threads: [pthread_t] = []
    let threadCount: Int
    /// Where the queue was created, for reports.
    let declared: LockdepSite
    /// The fork generation (`clockdep_fork_generation`) of the process that created the
    /// queue and its workers: another value means the caller is in a child of `fork()`.
    let forkGeneration = clockdep_fork_generation_load()

    /// Creates a queue and starts its worker threads.
    ///
    /// - Parameters:
    ///   - name: The queue name; workers are named `<name>/<n>` in reports.
    ///   - threads: The number of worker threads (1 makes an ordered queue, whose item flushes
    ///     also wait for the whole queue, as the kernel's ordered workqueues).
    ///   - context: The context callbacks run in.
    ///   - fileID: The declaration site (default `#fileID`), the key of the queue's map class.
    ///   - line: The declaration site (default `#line`).
    public init(_ name: String, threads: Int = 2, context: LockdepContext = .process,
                fileID: StaticString = #fileID, line: UInt = #line) {
        self.name = name
        self.context = context
        self.threadCount = max(1, threads)
        self.declared = LockdepSite(fileID: fileID, line: line, function: "WorkQueue.init")
        self.lockdepMap = LockdepMap(class: LockClass("wq:\(name)", key: "wq:\(name)@\(fileID):\(line)"),
                                     options: [.completion])
        for index in 0..<threadCount {
            let box = Unmanaged.passRetained(WorkerStart(queue: self, index: index)).toOpaque()
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.queue.workerLoop(index: start.index)
                return nil
            }, box)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            self.threads.append(tid)
        }
    }

    /// Waits until every item queued before the call has finished (`flush_workqueue`).
    ///
    /// Sleeps: reported in atomic context. Holding a lock that a callback of this queue takes
    /// is reported as a cycle.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func flush(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        guard workersExist("WorkQueue.flush()", at: LockdepSite(fileID: fileID, line: line, function: function)) else { return }
        Lockdep.mightBlockTask("WorkQueue.flush()", alternative: "await the items' completion (continuations their callbacks resume)",
                               fileID: fileID, line: line, function: function)
        Lockdep.emptyWriteSection(lockdepMap, fileID: fileID, line: line, function: function)
        let onWorker = Self.currentQueue == ObjectIdentifier(self)
        monitor.withLock {
            let target = enqueued
            while finished < target && !onWorker { monitor.wait(for: workFinished) }
        }
    }

    /// Runs every pending item, then stops and joins the worker threads. Later `queue()` calls
    /// return `false`. In a child of `fork()`, reported and refused (the workers are the
    /// parent's; see the type's discussion).
    public func shutdown() {
        guard workersExist("WorkQueue.shutdown()", at: declared) else { return }
        let toJoin: [pthread_t] = monitor.withLock {
            stopping = true
            workQueued.broadcast()
            let t = threads
            threads = []
            return t
        }
        for tid in toJoin {
            // Called from one of the queue's own callbacks (an owner's last reference dropped on
            // its worker): that thread cannot join itself; it ends by itself once the loop sees
            // `stopping`, so detach it instead of leaking it.
            if pthread_equal(tid, pthread_self()) != 0 {
                pthread_detach(tid)
            } else {
                pthread_join(tid, nil)
            }
        }
    }

    // MARK: fork

    /// Whether the calling process is the one whose threads run this queue's items. In a
    /// child of `fork()` (the workers are the parent's), reports
    /// ``LockdepReport/Kind/workQueueUsedAfterFork`` and returns `false`: the caller refuses
    /// the call before it takes ``monitor``, which a parent thread may have held at the fork.
    /// One relaxed load and a compare otherwise.
    @inline(__always)
    func workersExist(_ call: @autoclosure () -> String, at site: @autoclosure () -> LockdepSite) -> Bool {
        if _fastPath(clockdep_fork_generation_load() == forkGeneration) { return true }
        reportUsedAfterFork(call(), site: site())
        return false
    }

    /// Builds and delivers the report (internal: a test rehearses it in the parent).
    @inline(never)
    func reportUsedAfterFork(_ call: String, site: LockdepSite) {
        let body = "called \(call) on workqueue \"\(name)\" (created at \(declared.fileID):\(declared.line)) at \(site)\n"
            + "in a child of fork(): the queue was created before the fork, in the parent, and its worker\n"
            + "threads do not exist in this process, so its items would never run and a wait for them would\n"
            + "never return. The call is refused. Create a new WorkQueue in the child.\n"
        Engine.simpleReport(ThreadState.current(), kind: .workQueueUsedAfterFork, title: "BUG: workqueue used after fork()",
                            node: nil, mode: 0, lockSite: nil, site: site, body: body)
    }

    // MARK: worker

    final class WorkerStart {
        let queue: WorkQueue
        let index: Int
        init(queue: WorkQueue, index: Int) { self.queue = queue; self.index = index }
    }

    static let _currentQueueKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static var currentQueue: ObjectIdentifier? {
        guard let raw = pthread_getspecific(_currentQueueKey) else { return nil }
        return ObjectIdentifier(Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue())
    }

    func workerLoop(index: Int) {
        Lockdep.currentThreadName = "\(name)/\(index)"
        pthread_setspecific(Self._currentQueueKey, Unmanaged.passUnretained(self as AnyObject).toOpaque())
        while true {
            let next: (item: WorkItem, container: AnyObject?)? = monitor.withLock {
                while true {
                    // An item queued again while it runs waits for that run to end: like the
                    // kernel's workqueues, one item never runs on two workers at once.
                    if let index = pending.firstIndex(where: { !$0.isRunning }) {
                        let item = pending.remove(at: index)
                        item.isWaitingToRun = false
                        item.runner = pthread_self()
                        item.isRunning = true
                        return (item, item.pinnedContainer)
                    }
                    if pending.isEmpty && stopping { return nil }
                    monitor.wait(for: workQueued)
                }
            }
            guard let next else { break }
            let item = next.item
            run(item, container: next.container)
            // Dropped outside the lock: the container's last reference may go here.
            let unpinned: AnyObject? = monitor.withLock {
                item.isRunning = false
                finished += 1
                if item.isWaitingToRun { workQueued.broadcast() }
                workFinished.broadcast()
                return item.isWaitingToRun ? nil : item.takePinnedContainer()
            }
            withExtendedLifetime(unpinned) {}
        }
        pthread_setspecific(Self._currentQueueKey, nil)
    }

    func run(_ item: WorkItem, container: AnyObject?) {
        Lockdep.withContext(context) {
            let depth = Lockdep.heldLockCount
            Lockdep.acquire(lockdepMap, mode: .write)
            Lockdep.acquire(item.lockdepMap, mode: .write)
            item.runCallback(container: container)
            Lockdep.release(item.lockdepMap)
            Lockdep.release(lockdepMap)
            #if LOCKDEP_CHECKS
            Engine.checkLeak(depth: depth, context: context, workName: item.lockdepMap.lockClass.name,
                             site: item.declared)
            #endif
        }
    }
}
