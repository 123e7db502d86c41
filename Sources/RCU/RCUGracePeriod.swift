extension RCUFlavor {
    /// Waits until every read-side critical section that was open when it was
    /// called has ended (liburcu's `synchronize_rcu`).
    ///
    /// Refused, with an ``RCUMisuse``, wherever the wait could never end or could
    /// deadlock: inside a read section of any flavor
    /// (``RCUMisuse/Kind/synchronizeInReadSection`` for this flavor's own,
    /// ``RCUMisuse/Kind/gracePeriodInOtherFlavorSection`` for another's), on a
    /// call_rcu worker, and in a child of an unsafe fork. An online ``RCUQSBR``
    /// thread waits offline. A wait longer than ``RCUStallDetector/threshold`` is
    /// reported with the threads that hold it up.
    ///
    /// - Complexity: About a microsecond for memb when no reader is in a section;
    ///   otherwise as long as the longest pre-existing section.
    public static func synchronize(fileID: StaticString = #fileID, line: UInt = #line) {
        guard mayWaitForGracePeriod(
            "synchronize()", inReadSection: .synchronizeInReadSection, inCallback: .synchronizeInCallback,
            fileID: fileID, line: line)
        else { return }
        synchronizeAllowed()
    }

    /// A grace period that `mayWaitForGracePeriod` allowed, numbered in the flavor's
    /// sequence: it also ends the cookies taken before it started, and wakes their waiters.
    ///
    /// Dispatched once to a body specialised for the flavor: a generic caller outside the
    /// module (an inlined ``RCUPointer/replaceAndSynchronize(with:fileID:line:)-3kjai``)
    /// calls this unspecialised, and every write pays what the body costs. The dispatch
    /// compares metatypes (a few instructions): `kind`, unspecialised, builds the flavor's
    /// description through its witness (about 43 instructions a call).
    @usableFromInline
    static func synchronizeAllowed() {
        if Self.self == RCUMemb.self {
            RCUMemb.synchronizeAllowedSpecialized()
        } else if Self.self == RCUQSBR.self {
            RCUQSBR.synchronizeAllowedSpecialized()
        } else if Self.self == RCUBulletproof.self {
            RCUBulletproof.synchronizeAllowedSpecialized()
        } else if Self.self == RCUMemoryBarrier.self {
            RCUMemoryBarrier.synchronizeAllowedSpecialized()
        } else {
            synchronizeAllowedSpecialized()
        }
    }

    @inline(__always)
    static func synchronizeAllowedSpecialized() {
        RCUGracePeriodSequence.withSequence(of: kind) { sequence in
            let ticket = sequence.issue()
            waitAllowed(barrier: false, primitiveSynchronize)
            sequence.complete(ticket)
        }
    }

    /// Waits until every callback queued so far (``retire(_:)-(AnyObjectSendable)``, ``RCUPointer``
    /// replacements, `call_rcu`) has run (liburcu's `rcu_barrier`).
    ///
    /// Use it before tearing down what callbacks touch, and in tests to count
    /// reclaimed objects. It is slow (about 10 ms even when nothing is queued).
    /// Refused where ``RCUFlavor/synchronize(fileID:line:)-1jddf`` is.
    ///
    /// Callbacks that a callback queues while the barrier waits (a `deinit` that retires
    /// another object) may still be pending when it returns: they queue behind the
    /// barrier's own marker. ``RCUFlavor/barrier(untilQuiet:fileID:line:)-8fmjj`` waits for such chains.
    public static func barrier(fileID: StaticString = #fileID, line: UInt = #line) {
        guard mayWaitForGracePeriod(
            "barrier()", inReadSection: .barrierInReadSection, inCallback: .barrierInCallback,
            fileID: fileID, line: line)
        else { return }
        waitAllowed(barrier: true, primitiveBarrier)
    }

    /// Whether the calling thread may wait for a grace period here. Refused (reported,
    /// `false`) inside a read section of any flavor, on any call_rcu worker, and in a
    /// child of an unsafe fork: there the wait could never end, or could deadlock with
    /// another flavor's writers. RCU's checks come before Lockdep's annotation, so
    /// ``RCUMisuse/reportHandler`` alone decides what happens to an RCU misuse, in
    /// every build.
    ///
    /// The common case, nothing to refuse and no Lockdep annotation compiled in, is one
    /// call without arguments (``gracePeriodWaitIsPlain()``); the checked path, which
    /// names the call and the site, runs only when it is not.
    @inlinable
    @inline(__always)
    static func mayWaitForGracePeriod(
        _ call: StaticString, inReadSection: RCUMisuse.Kind, inCallback: RCUMisuse.Kind,
        fileID: StaticString, line: UInt
    ) -> Bool {
        if _fastPath(gracePeriodWaitIsPlain()) { return true }
        return mayWaitForGracePeriodChecked(call, inReadSection: inReadSection, inCallback: inCallback, fileID: fileID, line: line)
    }

    /// Whether a grace-period wait here needs neither a refusal nor a Lockdep annotation.
    /// Dispatched once to a body specialised for the flavor, as ``synchronizeAllowed()`` is.
    @usableFromInline
    static func gracePeriodWaitIsPlain() -> Bool {
        if Self.self == RCUMemb.self { return RCUMemb.waitIsPlain }
        if Self.self == RCUQSBR.self { return RCUQSBR.waitIsPlain }
        if Self.self == RCUBulletproof.self { return RCUBulletproof.waitIsPlain }
        if Self.self == RCUMemoryBarrier.self { return RCUMemoryBarrier.waitIsPlain }
        return waitIsPlain
    }

    /// Whether nothing on this thread refuses a grace-period wait; with Lockdep's checks
    /// compiled in, never (every wait takes the checked path, which annotates it).
    @inline(__always)
    static var waitIsPlain: Bool {
        #if LOCKDEP_CHECKS
        return false
        #else
        // isInAnyReadSection covers this flavor's own sections too.
        return !RCUThreadState.isInAnyReadSection && !RCUThreadState.isInAnyCallback && staleReadersAfterFork <= 0
        #endif
    }

    /// The checked path of ``mayWaitForGracePeriod(_:inReadSection:inCallback:fileID:line:)``.
    @usableFromInline
    static func mayWaitForGracePeriodChecked(
        _ call: StaticString, inReadSection: RCUMisuse.Kind, inCallback: RCUMisuse.Kind,
        fileID: StaticString, line: UInt
    ) -> Bool {
        let misuse: RCUMisuse.Kind? =
            primitiveIsInReadSectionWithoutRegistering ? inReadSection
            : RCUThreadState.isInAnyReadSection ? .gracePeriodInOtherFlavorSection
            : RCUThreadState.isInAnyCallback ? inCallback
            : staleReadersAfterFork > 0 ? .gracePeriodAfterUnsafeFork : nil
        if let misuse {
            RCUMisuse.report(misuse, call: "\(call)", flavor: name, fileID: fileID, line: line)
            return false
        }
        lockdepGracePeriodWait(call, fileID, line)
        return true
    }

    /// Runs a wait that `mayWaitForGracePeriod` allowed, under the stall detector. An
    /// online QSBR thread (outside any section, or the wait was refused) waits offline:
    /// it holds nothing, and liburcu's qsbr `rcu_barrier` would otherwise return at once,
    /// taking the online thread for a reader in a section.
    @inline(__always)
    static func waitAllowed(barrier: Bool, _ wait: () -> Void) {
        if RCUQSBR.isOnline {
            RCUQSBR.offline { RCUStallDetector.watch(Self.self, barrier: barrier, wait) }
        } else {
            RCUStallDetector.watch(Self.self, barrier: barrier, wait)
        }
    }
}

/// The calling thread's state across the four flavors.
enum RCUThreadState {
    /// Whether the thread is inside a read section of any flavor. bp's is asked only of a
    /// registered thread: liburcu's bp check registers the thread it asks about, and would
    /// make every waiting thread a bp reader that bp's grace periods then scan.
    static var isInAnyReadSection: Bool {
        RCUMemb.primitiveIsInReadSection || RCUQSBR.primitiveIsInReadSection
            || RCUBulletproof.primitiveIsInReadSectionWithoutRegistering
            || RCUMemoryBarrier.primitiveIsInReadSection
    }

    /// Whether the thread is a call_rcu worker running a callback of any flavor.
    static var isInAnyCallback: Bool {
        RCUMemb.primitiveIsInCallback || RCUQSBR.primitiveIsInCallback
            || RCUBulletproof.primitiveIsInCallback || RCUMemoryBarrier.primitiveIsInCallback
    }
}
