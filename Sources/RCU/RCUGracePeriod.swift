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

    /// The checks both waits share: Lockdep's view, then the waits that could never
    /// end (inside a read section, on a callback worker, in a child of an unsafe
    /// fork: reported and skipped), then the wait under the stall detector.
    private static func waitForGracePeriod(
        _ call: StaticString, inReadSection: RCUMisuse.Kind, inCallback: RCUMisuse.Kind,
        file: StaticString, line: UInt, _ wait: () -> Void
    ) {
        lockdepGracePeriodWait(call, file, line)
        let misuse: RCUMisuse.Kind? =
            primitiveIsInReadSection ? inReadSection
            : primitiveIsInCallback ? inCallback
            : staleReadersAfterFork > 0 ? .gracePeriodAfterUnsafeFork : nil
        if let misuse {
            RCUMisuse.report(misuse, call: "\(call)", flavor: name, file: file, line: line)
            return
        }
        RCUStallDetector.watch(Self.self, barrier: inCallback == .barrierInCallback, wait)
    }
}
