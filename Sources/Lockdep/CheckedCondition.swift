public import Glibc

/// A condition variable used with a ``CheckedMutex``, checked by the validator.
///
/// Waiting sleeps, so it is reported in atomic context. While waiting, the mutex is released
/// and re-acquired for the validator exactly as for pthreads (the re-acquire is validated
/// against the locks still held). Waiting without holding the mutex is reported and does not
/// wait.
///
/// ```swift
/// mutex.lock()
/// while queue.isEmpty { condition.wait(mutex) }
/// mutex.unlock()
/// ```
public struct CheckedCondition: @unchecked Sendable {
    @usableFromInline let storage: LockStorage<pthread_cond_t>

    /// Creates a condition variable.
    ///
    /// - Parameters:
    ///   - name: A name for reports; defaults to `"condition@File.swift:line"`.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    ///   - function: The declaration site (default `#function`).
    public init(_ name: String? = nil, fileID: StaticString = #fileID, line: UInt = #line,
                function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        let cls = LockClass(name ?? "condition@\(site.fileName):\(line)", fileID: fileID, line: line)
        storage = .make(cls, declared: site, primitive: pthread_cond_t()) { p in
            // Timed waits measure on the monotonic clock: a wall-clock step does not stretch or cut them.
            var attr = pthread_condattr_t()
            pthread_condattr_init(&attr)
            pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
            pthread_cond_init(p, &attr)
            pthread_condattr_destroy(&attr)
        }
    }

    /// Waits until signalled. The caller must hold `mutex`; it is held again on return.
    /// Spurious wake-ups happen: wait in a loop on a predicate.
    ///
    /// - Parameters:
    ///   - mutex: The mutex guarding the predicate, held by the caller.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    @inlinable
    public func wait(_ mutex: CheckedMutex, fileID: StaticString = #fileID, line: UInt = #line,
                     function: StaticString = #function) {
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        guard let hold = _beforeWait(mutex, call: "CheckedCondition.wait(_:)", site: site) else { return }
        pthread_cond_wait(storage.primitivePointer, mutex.storage.primitivePointer)
        _afterWait(mutex, hold, site: site)
    }

    /// Waits until signalled or until `timeout` has passed.
    ///
    /// Any value is valid: the deadline saturates, so `Duration.seconds(Int64.max)` waits
    /// until signalled, and zero (or a negative timeout) only releases and re-takes the mutex.
    /// The time is measured on `CLOCK_MONOTONIC`.
    ///
    /// - Parameters:
    ///   - mutex: The mutex guarding the predicate, held by the caller.
    ///   - timeout: The longest wait.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    /// - Returns: `false` if the wait timed out.
    @inlinable
    public func wait(_ mutex: CheckedMutex, timeout: Duration, fileID: StaticString = #fileID,
                     line: UInt = #line, function: StaticString = #function) -> Bool {
        var ts = monotonicDeadline(after: timeout)
        let site = LockdepSite(fileID: fileID, line: line, function: function)
        guard let hold = _beforeWait(mutex, call: "CheckedCondition.wait(_:timeout:)", site: site) else { return false }
        let rc = pthread_cond_timedwait(storage.primitivePointer, mutex.storage.primitivePointer, &ts)
        _afterWait(mutex, hold, site: site)
        return rc == 0
    }

    /// Wakes one waiter.
    @inlinable
    public func signal() { pthread_cond_signal(storage.primitivePointer) }

    /// Wakes every waiter.
    @inlinable
    public func broadcast() { pthread_cond_broadcast(storage.primitivePointer) }

    /// The caller's hold of `mutex`, set aside while a wait releases it: the lock's owner word
    /// and its holder's refused nested acquires leave the lock (another thread holds it
    /// meanwhile, and its release must not consume them) and come back when the wait has
    /// taken it again.
    @usableFromInline
    struct _SetAsideHold {
        @usableFromInline let refusals: Int
        #if LOCKDEP_CHECKS
        @inlinable init(refusals: Int) { self.refusals = refusals }
        #else
        @usableFromInline let owner: UInt
        @inlinable init(refusals: Int, owner: UInt) {
            self.refusals = refusals
            self.owner = owner
        }
        #endif
    }

    /// Before a wait: the caller must hold `mutex`. A wait by a thread that does not is
    /// reported (as its release would be) and refused: `nil`.
    @inlinable
    func _beforeWait(_ mutex: CheckedMutex, call: StaticString, site: LockdepSite) -> _SetAsideHold? {
        let word = mutex.storage.ownerWord()
        #if LOCKDEP_CHECKS
        Engine.mightSleep(site)
        TaskContext.checkBlocking("\(call)",
                                  alternative: "a continuation resumed where the condition is signalled, or an AsyncStream",
                                  site: site)
        guard Engine.release(classID: mutex.storage.classID, instance: mutex.storage.instance, ownerWord: word,
                             site: site) else { return nil }
        let hold = _SetAsideHold(refusals: mutex.storage.takeRefusals())
        mutex.storage.clearOwner(word)
        #else
        let me = LockStorage<pthread_mutex_t>.currentThread
        guard word & ~1 == me else {
            Engine.refusedRelease(classID: mutex.storage.classID, instance: mutex.storage.instance,
                                  heldByAnother: word != 0, call: call, site: site)
            return nil
        }
        let hold = _SetAsideHold(refusals: mutex.storage.takeRefusals(), owner: me)
        mutex.storage.clearOwnerThread()
        #endif
        return hold
    }

    /// After a wait, which has taken `mutex` again: the hold set aside comes back.
    @inlinable
    func _afterWait(_ mutex: CheckedMutex, _ hold: _SetAsideHold, site: LockdepSite) {
        #if LOCKDEP_CHECKS
        let token = Engine.acquire(classID: mutex.storage.classID, subclass: 0, instance: mutex.storage.instance,
                                   mode: .write, flags: 0, nest: nil, site: site)
        mutex.storage.setOwner(token)
        #else
        mutex.storage.setOwner(thread: hold.refusals == 0 ? hold.owner : hold.owner | 1)
        #endif
        mutex.storage.restoreRefusals(hold.refusals)
    }
}
