#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLockdepThread
import Lockdep
import Synchronization

/// The lock that serialises the writers of an RCU container, as named by its
/// creator: the update-side lock of the kernel's `list_add_rcu` family.
///
/// RCU lets readers run concurrently with one writer; writers must still
/// exclude each other. A container created with a writer lock checks, on every
/// mutation, that the calling thread holds it (the kernel's
/// `lockdep_assert_held`), and reports a mutation without it as
/// ``RCUMisuse/Kind/mutationWithoutLock``.
///
/// The locks that can guard a container are the package's own, whose holder is
/// exact in every build: ``RCUWriterMutex`` and Lockdep's `CheckedMutex`,
/// `CheckedSpinLock` and `CheckedRWLock` (held for write). ``RCUList``'s
/// initialisers take those types, so a lock that could answer wrongly, and let two
/// writers in, cannot be given to one.
public protocol RCUWriterLock: Sendable {
    /// Whether the calling thread holds this lock.
    var isHeldByCurrentThread: Bool { get }
}

/// A pthread mutex that records its owner thread, so RCU containers can check
/// that their writers hold it.
///
/// ```swift
/// let lock = RCUWriterMutex()
/// let devices = RCUList<Device, RCUMemb>(lock: lock)
/// lock.withLock { _ = devices.append(device) }    // append returns the node; unused here
/// ```
///
/// Not recursive, and checked in every build (one relaxed load of the owner
/// word per call):
/// - Locking it again on the thread that holds it, which would deadlock, is
///   reported as ``RCUMisuse/Kind/recursiveLock`` and refused: nothing blocks
///   and the thread keeps its one hold. A refused ``lock(fileID:line:)`` is
///   matched by its ``unlock(fileID:line:)``, which is then a no-op, so the
///   outer hold survives the inner pair. A refused ``withLock(fileID:line:_:)``
///   does not acquire or release anything: it runs `body` under the hold the
///   thread already has (exclusive: no other thread can be in a critical section
///   of this mutex), as a recursive mutex would. An outer `withLock` releases
///   the mutex when its body ends even if the body left a refused `lock()`
///   unmatched.
/// - Unlocking it from a thread that does not hold it, which would let a
///   second writer in, is reported as ``RCUMisuse/Kind/unlockNotHeld`` and
///   refused: the mutex stays held by its owner.
///
/// By default a misuse report stops the process (``RCUMisuse/ReportHandler/trap``);
/// "refused" is what happens with a custom handler.
///
/// ThreadSanitizer sees it (unlike `Synchronization.Mutex` on Linux).
///
/// - Note: A thread that exits holding the mutex leaves it held for good. The owner is
///   recorded as an identity no other thread of the process is given (not the
///   `pthread_t`, which glibc hands to the next thread it creates), so no later thread
///   is taken for it.
/// - Note: In a `fork()` child, locking a mutex that another thread of the parent held at the
///   fork stops the process with a message saying so, instead of waiting for ever for a thread
///   that does not exist there (the container may be half-written too). Make new containers
///   in the child. A mutex the forking thread held is still held by it in the child (that
///   thread goes on there): other threads wait for its `unlock()`, as in the parent.
public final class RCUWriterMutex: RCUWriterLock, @unchecked Sendable {
    /// Not error-checking in debug builds: `owner` refuses what that would, and a forking
    /// thread's hold stays its own in the child, where its kernel thread id is another.
    private let mutex = InternalLock(checksOwner: false)
    /// The holder's `clockdep_thread_identity()`, 0 when unlocked.
    private let owner = Atomic<UInt>(0)
    /// The fork generation (`clockdep_fork_generation`) of the process whose thread holds it.
    private let ownerForkGeneration = Atomic<UInt>(0)
    /// The holder's refused nested `lock()` calls not yet matched by an `unlock()`.
    /// Only the holder reads or writes it, while it holds `mutex`.
    private var refusedLocks = 0

    /// Creates an unlocked mutex.
    public init() {}

    /// Acquires the mutex, blocking until it is free.
    ///
    /// Called by the thread that holds the mutex, it reports
    /// ``RCUMisuse/Kind/recursiveLock`` and returns at once without a second
    /// acquisition (the thread still holds the mutex once); the matching
    /// ``unlock(fileID:line:)`` then releases nothing.
    /// - Parameters:
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    public func lock(fileID: StaticString = #fileID, line: UInt = #line) {
        let me = clockdep_thread_identity()
        let holder = owner.load(ordering: .relaxed)
        if holder == me {
            Self.report(.recursiveLock, "lock()", fileID: fileID, line: line)
            refusedLocks += 1
            return
        }
        if _slowPath(holder != 0) { stopIfHeldAcrossFork(fileID: fileID, line: line) }
        mutex.lock()
        ownerForkGeneration.store(UInt(clockdep_fork_generation_load()), ordering: .relaxed)
        owner.store(me, ordering: .relaxed)
    }

    /// In a `fork()` child, a writer lock that another parent thread held at the fork (not the
    /// one that forked, which goes on here) has no holder left to release it, and the container
    /// it guards may be half-written: waiting would hang for ever, and going on unlocked would
    /// write into that state. So the process stops here, saying why (containers made in the
    /// child work).
    private func stopIfHeldAcrossFork(fileID: StaticString, line: UInt) {
        guard ownerForkGeneration.load(ordering: .relaxed) != UInt(clockdep_fork_generation_load()) else { return }
        // The thread that forked goes on in the child: a lock it held is its to release.
        guard owner.load(ordering: .relaxed) != clockdep_fork_thread_identity_load() else { return }
        fatalError("""
            RCUWriterMutex.lock() at \(fileID):\(line) in a fork() child: a thread of the parent \
            process held this writer lock at the fork. That thread does not exist here, so the lock \
            would never be released, and the container it guards may be half-written. Create new \
            containers in the child (or fork only while no writer holds the lock).
            """)
    }

    /// Releases the mutex.
    ///
    /// Called by a thread that does not hold the mutex, it reports
    /// ``RCUMisuse/Kind/unlockNotHeld`` and returns without releasing it.
    /// The unlock matching a refused nested ``lock(fileID:line:)`` releases nothing.
    /// - Parameters:
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    public func unlock(fileID: StaticString = #fileID, line: UInt = #line) {
        guard owner.load(ordering: .relaxed) == clockdep_thread_identity() else {
            Self.report(.unlockNotHeld, "unlock()", fileID: fileID, line: line)
            return
        }
        if refusedLocks > 0 {
            refusedLocks -= 1
            return
        }
        owner.store(0, ordering: .relaxed)
        mutex.unlock()
    }

    /// Runs `body` with the mutex held.
    ///
    /// Called by the thread that already holds the mutex, it reports
    /// ``RCUMisuse/Kind/recursiveLock`` and runs `body` under that hold,
    /// without acquiring or releasing anything.
    /// - Parameters:
    ///   - fileID: The call site, for misuse reports (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    ///   - body: The critical section.
    /// - Returns: What `body` returns.
    public func withLock<Result, Failure: Error>(
        fileID: StaticString = #fileID, line: UInt = #line, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        if owner.load(ordering: .relaxed) == clockdep_thread_identity() {
            Self.report(.recursiveLock, "withLock(_:)", fileID: fileID, line: line)
            return try body()
        }
        lock(fileID: fileID, line: line)
        defer {
            // The critical section is scoped: a nested lock() that `body` left unmatched
            // (refused and reported) does not keep the mutex held past it.
            if owner.load(ordering: .relaxed) == clockdep_thread_identity() { refusedLocks = 0 }
            unlock(fileID: fileID, line: line)
        }
        return try body()
    }

    /// Whether the calling thread holds the mutex.
    /// - Complexity: O(1), one relaxed load.
    public var isHeldByCurrentThread: Bool {
        owner.load(ordering: .relaxed) == clockdep_thread_identity()
    }

    private static func report(_ kind: RCUMisuse.Kind, _ call: String, fileID: StaticString, line: UInt) {
        RCUMisuse.report(kind, call: "RCUWriterMutex.\(call)", flavor: "none", fileID: fileID, line: line)
    }
}
