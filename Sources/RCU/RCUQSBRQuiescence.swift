public import CURCUQSBR

extension RCUQSBR {
    /// The reader a ``RCUFlavor/withReader(fileID:line:_:)`` scope of QSBR lends.
    public typealias Reader = RCUReader<RCUQSBR>

    /// Announces a quiescent state for the calling thread (liburcu's
    /// `rcu_quiescent_state`): it holds no reference obtained in an earlier section.
    ///
    /// Inside a read section it is refused and reported as
    /// ``RCUMisuse/Kind/offlineInReadSection`` (every build: QSBR's section depth
    /// is always counted). On a thread that is not online it does nothing: an
    /// offline thread is already quiescent, and announcing would bring it online.
    @inlinable
    public static func quiescentState(fileID: StaticString = #fileID, line: UInt = #line) {
        if curcu_qsbr_read_depth() > 0 {
            RCUMisuse.report(.offlineInReadSection, call: "quiescentState()", flavor: name, fileID: fileID, line: line)
            return
        }
        if isOnline { curcu_qsbr_quiescent_state() }
    }

    /// Runs `body` with the calling thread offline (`rcu_thread_offline` /
    /// `rcu_thread_online`) if it is online; grace periods do not wait for it
    /// meanwhile, and sections opened in `body` go online for their duration.
    ///
    /// Inside a read section going offline is refused and reported as
    /// ``RCUMisuse/Kind/offlineInReadSection``; `body` then runs with the thread
    /// still online (which keeps the section's references protected).
    public static func offline<Result, Failure: Error>(
        fileID: StaticString = #fileID, line: UInt = #line, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        if curcu_qsbr_read_depth() > 0 {
            RCUMisuse.report(.offlineInReadSection, call: "offline(_:)", flavor: name, fileID: fileID, line: line)
            return try body()
        }
        guard isOnline else { return try body() }
        curcu_qsbr_thread_offline()
        defer { curcu_qsbr_thread_online() }
        return try body()
    }

    /// Whether the calling thread is registered and online (grace periods wait for it).
    @inlinable
    public static var isOnline: Bool { curcu_qsbr_is_registered() && curcu_qsbr_is_online() }
}
