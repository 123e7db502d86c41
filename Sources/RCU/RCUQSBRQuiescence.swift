public import CURCUQSBR

extension RCUQSBR {
    /// A registered, online QSBR reader thread; see ``RCUReader``.
    public typealias Reader = RCUReader<RCUQSBR>

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

    /// Brings a registered, offline thread online (`rcu_thread_online`); for ``RCUReader``.
    static func threadOnline() { curcu_qsbr_thread_online() }

    /// Takes a registered thread offline (`rcu_thread_offline`); for ``RCUReader``.
    static func threadOffline() { curcu_qsbr_thread_offline() }
}
