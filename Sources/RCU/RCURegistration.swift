/// Thread registration: automatic, and revocable only where no reader depends on it.
extension RCUFlavor {
    /// Registers the calling thread as a reader (idempotent).
    ///
    /// Never needed for correctness: read sections and reader scopes register the
    /// thread themselves. A registered ``RCUQSBR`` thread is left offline, so an
    /// idle thread never stalls grace periods.
    public static func registerThread() {
        guard !primitiveIsThreadRegistered else { return }
        primitiveRegisterThread()
        operations.pointee.thread_offline()     // qsbr: an idle registered thread stays offline
    }

    /// Unregisters the calling thread (idempotent; threads that exit are
    /// unregistered automatically): grace periods stop scanning it.
    ///
    /// Refused, with an ``RCUMisuse``, where a reader still depends on the
    /// registration: inside a read section (``RCUMisuse/Kind/unregisterInReadSection``),
    /// inside a ``withReader(fileID:line:_:)`` scope
    /// (``RCUMisuse/Kind/unregisterWhileReaderActive``), and on a call_rcu worker
    /// (``RCUMisuse/Kind/unregisterInCallback``: liburcu registered that thread
    /// itself). A later read section registers the thread again.
    public static func unregisterThread(fileID: StaticString = #fileID, line: UInt = #line) {
        let misuse: RCUMisuse.Kind? =
            primitiveIsInReadSectionWithoutRegistering ? .unregisterInReadSection
            : primitiveReaderScopes > 0 ? .unregisterWhileReaderActive
            : primitiveIsInCallback ? .unregisterInCallback : nil
        if let misuse {
            RCUMisuse.report(misuse, call: "unregisterThread()", flavor: name, fileID: fileID, line: line)
            return
        }
        primitiveUnregisterThread()
    }
}
