extension Lockdep {
    /// Disables the given interrupts until the matching ``enableInterrupts(_:fileID:line:)``: the unscoped
    /// form of ``withInterruptsDisabled(_:_:)`` (`local_irq_disable` / `local_bh_disable`), for
    /// code whose disabled section does not nest with its locks (disable, lock, enable, unlock).
    ///
    /// Calls nest: interrupts are enabled again when every disable has been matched.
    ///
    /// - Parameter interrupts: Which interrupts to disable (default ``Interrupts/hardirq``).
    @inlinable
    public static func disableInterrupts(_ interrupts: Interrupts = .hardirq) {
        #if LOCKDEP_CHECKS
        _disableInterruptsUnscoped(interrupts == .hardirq)
        #endif
    }

    /// Matches one ``disableInterrupts(_:)`` (`local_irq_enable` / `local_bh_enable`).
    ///
    /// When this enables the interrupts again, every lock the thread holds is marked as taken
    /// with them enabled, as the kernel's `mark_held_locks` does: enabling interrupts under a
    /// lock used in that interrupt context is an inconsistent lock state.
    ///
    /// An enable that matches no disable is reported (``LockdepReport/Kind/assertionFailed``)
    /// and ignored: counted, it would leave the next disable without effect.
    ///
    /// - Parameters:
    ///   - interrupts: Which interrupts to enable (default ``Interrupts/hardirq``).
    ///   - fileID: The call site, for the report of an unmatched enable (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    @inlinable
    public static func enableInterrupts(
        _ interrupts: Interrupts = .hardirq, fileID: StaticString = #fileID, line: UInt = #line
    ) {
        #if LOCKDEP_CHECKS
        _enableInterrupts(interrupts == .hardirq, site: LockdepSite(fileID: fileID, line: line))
        #endif
    }
}
