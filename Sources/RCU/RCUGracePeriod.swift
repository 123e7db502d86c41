extension RCUFlavor {
    /// Waits until every read-side critical section that was open when it was
    /// called has ended (liburcu's `synchronize_rcu`).
    ///
    /// Called inside a read section of this flavor it would wait for itself:
    /// that is reported as ``RCUMisuse/Kind/synchronizeInReadSection`` and the
    /// wait is skipped. A wait longer than ``RCUStallDetector/threshold`` is
    /// reported with the threads that hold it up.
    ///
    /// - Complexity: About a microsecond for memb when no reader is in a section;
    ///   otherwise as long as the longest pre-existing section.
    public static func synchronize(file: StaticString = #fileID, line: UInt = #line) {
        waitForGracePeriod(
            "synchronize()", inReadSection: .synchronizeInReadSection, inCallback: .synchronizeInCallback,
            file: file, line: line, primitiveSynchronize)
    }

    /// Waits until every callback queued so far (``retire(_:)-(AnyObjectSendable)``, ``RCUPointer``
    /// replacements, `call_rcu`) has run (liburcu's `rcu_barrier`).
    ///
    /// Use it before tearing down what callbacks touch, and in tests to count
    /// reclaimed objects. It is slow (about 10 ms even when nothing is queued).
    /// Calling it inside a read section or from a callback is reported as a
    /// misuse and skipped.
    public static func barrier(file: StaticString = #fileID, line: UInt = #line) {
        waitForGracePeriod(
            "barrier()", inReadSection: .barrierInReadSection, inCallback: .barrierInCallback,
            file: file, line: line, primitiveBarrier)
    }

    /// Whether the calling thread may wait for a grace period here: refused (reported,
    /// `false`) inside a read section of this flavor, on a call_rcu worker, and in a
    /// child of an unsafe fork, where the wait could never end. RCU's own checks come
    /// before Lockdep's annotation, so ``RCUMisuse/setHandler(_:)`` alone decides what
    /// happens to an RCU misuse, in every build.
    static func mayWaitForGracePeriod(
        _ call: StaticString, inReadSection: RCUMisuse.Kind, inCallback: RCUMisuse.Kind,
        file: StaticString, line: UInt
    ) -> Bool {
        let misuse: RCUMisuse.Kind? =
            primitiveIsInReadSection ? inReadSection
            : primitiveIsInCallback ? inCallback
            : staleReadersAfterFork > 0 ? .gracePeriodAfterUnsafeFork : nil
        if let misuse {
            RCUMisuse.report(misuse, call: "\(call)", flavor: name, file: file, line: line)
            return false
        }
        lockdepGracePeriodWait(call, file, line)
        return true
    }

    /// A checked wait: refused where it could never end, else run under the stall detector.
    private static func waitForGracePeriod(
        _ call: StaticString, inReadSection: RCUMisuse.Kind, inCallback: RCUMisuse.Kind,
        file: StaticString, line: UInt, _ wait: () -> Void
    ) {
        guard mayWaitForGracePeriod(call, inReadSection: inReadSection, inCallback: inCallback, file: file, line: line)
        else { return }
        // liburcu's qsbr rcu_barrier returns at once on an online thread (it takes it for a
        // reader in a section): an online thread outside a section waits offline.
        if kind == .qsbr && RCUQSBR.isOnline {
            RCUQSBR.offline { RCUStallDetector.watch(Self.self, barrier: inCallback == .barrierInCallback, wait) }
        } else {
            RCUStallDetector.watch(Self.self, barrier: inCallback == .barrierInCallback, wait)
        }
    }
}
