public import CURCUQSBR

extension RCUQSBR {
    /// The calling thread's membership of the QSBR flavor: while a `Reader`
    /// exists the thread is registered and online, and its read sections cost
    /// no instruction at all.
    ///
    /// QSBR's contract is explicit participation: between read sections the
    /// thread calls ``quiescentState(file:line:)`` (or stays ``offline(_:)``
    /// while it blocks), or every grace period waits for it. Forgetting is
    /// reported by ``RCUStallDetector``, naming the thread.
    ///
    /// ```swift
    /// let reader = RCUQSBR.Reader()
    /// while running {
    ///     reader.read { section in table.withValue(in: section) { use($0) } }
    ///     reader.quiescentState()
    /// }
    /// ```
    ///
    /// A `Reader` is noncopyable and not `Sendable`: it belongs to the thread
    /// that created it, and unregisters that thread when it is destroyed.
    public struct Reader: ~Copyable {
        @usableFromInline let ownsRegistration: Bool

        /// Registers the calling thread with QSBR (online), if it is not already.
        public init() {
            ownsRegistration = !RCUQSBR.isThreadRegistered
            RCUQSBR.registerThread()
            RCUStallDetector.enable()
        }

        deinit {
            if ownsRegistration { RCUQSBR.unregisterThread() }
        }

        /// Runs `body` inside a QSBR read section, which is free: the thread's
        /// registration is proven by this `Reader`. Debug builds track nesting
        /// so a quiescent state inside a section is reported.
        @inlinable
        @inline(__always)
        public func read<Result, Failure: Error>(
            _ body: (borrowing RCUReadSection<RCUQSBR>) throws(Failure) -> Result
        ) throws(Failure) -> Result {
            #if DEBUG
            curcu_qsbr_depth_enter()
            defer { curcu_qsbr_depth_exit() }
            #endif
            curcu_qsbr_read_lock_registered()
            defer { curcu_qsbr_read_unlock_registered() }
            return try body(RCUReadSection<RCUQSBR>())
        }

        /// Announces that this thread holds no reference obtained in an earlier section.
        @inlinable
        public func quiescentState(file: StaticString = #fileID, line: UInt = #line) {
            RCUQSBR.quiescentState(file: file, line: line)
        }

        /// Runs `body` with the thread offline: grace periods do not wait for it.
        /// Use it around anything that blocks (I/O, sleeping locks, waits).
        public func offline<Result, Failure: Error>(
            file: StaticString = #fileID, line: UInt = #line, _ body: () throws(Failure) -> Result
        ) throws(Failure) -> Result {
            try RCUQSBR.offline(file: file, line: line, body)
        }
    }

    /// Announces a quiescent state for the calling thread (liburcu's
    /// `rcu_quiescent_state`). Inside a read section it is reported as
    /// ``RCUMisuse/Kind/offlineInReadSection`` and skipped.
    @inlinable
    public static func quiescentState(file: StaticString = #fileID, line: UInt = #line) {
        if curcu_qsbr_read_depth() > 0 {
            RCUMisuse.report(.offlineInReadSection, call: "quiescentState()", flavor: name, file: file, line: line)
            return
        }
        curcu_qsbr_quiescent_state()
    }

    /// Runs `body` with the calling thread offline (`rcu_thread_offline` /
    /// `rcu_thread_online`). Inside a read section it is reported as
    /// ``RCUMisuse/Kind/offlineInReadSection`` and `body` runs without going offline.
    public static func offline<Result, Failure: Error>(
        file: StaticString = #fileID, line: UInt = #line, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        if curcu_qsbr_read_depth() > 0 {
            RCUMisuse.report(.offlineInReadSection, call: "offline(_:)", flavor: name, file: file, line: line)
            return try body()
        }
        guard isThreadRegistered else { return try body() }
        curcu_qsbr_thread_offline()
        defer { curcu_qsbr_thread_online() }
        return try body()
    }

    /// Whether the calling thread is registered and online.
    public static var isOnline: Bool { curcu_qsbr_is_online() }
}
