/// A point in a flavor's sequence of grace periods: the kernel's
/// `get_state_synchronize_rcu()` cookie.
///
/// Take one cheaply when you unpublish something, check later whether a full grace period
/// has elapsed since (``hasElapsed``), and wait only if it has not
/// (``RCUFlavor/synchronize(since:fileID:line:)-42k1x``, or `try await` the async overload):
///
/// ```swift
/// let old = config.replace(with: newConfig)          // unpublished: new readers cannot reach it
/// let cookie = RCUMemb.startGracePeriod()
/// // ... other work, while the grace period runs ...
/// try await RCUMemb.synchronize(since: cookie)       // returns at once if it has already ended
/// recycle(old)                                       // no reader can still hold it
/// ```
///
/// Cookies compare in the order they were taken. A cookie belongs to its flavor's type: a
/// memb cookie says nothing about qsbr readers, and the compiler keeps them apart.
public struct RCUGracePeriodCookie<Flavor: RCUFlavor>: Sendable, Hashable, Comparable {
    /// The ticket of the first grace period that started after the cookie was taken.
    let ticket: UInt64

    init(ticket: UInt64) { self.ticket = ticket }

    /// Whether a full grace period has elapsed since the cookie was taken: every read
    /// section that had begun by then has ended (`poll_state_synchronize_rcu()`).
    ///
    /// Only grace periods this package starts count: ``RCUFlavor/startGracePeriod()``, an
    /// awaited or blocking `synchronize()`, and the waits on cookies. A cookie from
    /// ``RCUFlavor/gracePeriodCookie()`` with nothing of the kind after it stays `false`.
    /// After `true`, what the grace period made safe is safe on the calling thread (the
    /// check acquires the grace period's end).
    ///
    /// - Complexity: One atomic load.
    public var hasElapsed: Bool { RCUGracePeriodSequence.of(Flavor.kind).hasCompleted(ticket) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.ticket < rhs.ticket }
}

extension RCUFlavor {
    /// Grace periods this package has started for the flavor since the process started:
    /// one per blocking `synchronize()` (liburcu may serve concurrent ones with one grace
    /// period), and one per batch of awaited waits or ``startGracePeriod()`` calls.
    /// Grace periods liburcu's call_rcu workers run for ``retire(_:)-(AnyObjectSendable)``
    /// are not counted.
    ///
    /// - Complexity: One atomic load.
    public static var gracePeriodsStarted: UInt64 {
        RCUGracePeriodSequence.of(kind).issued.load(ordering: .relaxed)
    }

    /// The cookie for now, starting nothing (`get_state_synchronize_rcu()`): it elapses with
    /// the first grace period that starts after this call and ends.
    ///
    /// - Complexity: One atomic load.
    public static func gracePeriodCookie() -> RCUGracePeriodCookie<Self> {
        RCUGracePeriodCookie(ticket: RCUGracePeriodSequence.of(kind).cookie)
    }

    /// The cookie for now, with a grace period that serves it started
    /// (`start_poll_synchronize_rcu()`): ``RCUGracePeriodCookie/hasElapsed`` turns `true`
    /// about one grace period later, with no thread waiting for it.
    ///
    /// Callers share grace periods: while one is in flight, every call asks for the single
    /// next one. Never waits; valid anywhere, inside read sections and callbacks included.
    ///
    /// - Complexity: An atomic load and a short lock; the first caller of a batch also
    ///   queues one call_rcu callback.
    public static func startGracePeriod() -> RCUGracePeriodCookie<Self> {
        RCUGracePeriodCookie(ticket: RCUGracePeriodSequence.of(kind).start())
    }

    /// Waits, blocking the thread, until a full grace period has elapsed since `cookie` was
    /// taken; returns at once if one already has (`cond_synchronize_rcu()`).
    ///
    /// Refused where ``RCUFlavor/synchronize(fileID:line:)-1jddf`` is, whether or not it would have had to wait.
    public static func synchronize(
        since cookie: RCUGracePeriodCookie<Self>, fileID: StaticString = #fileID, line: UInt = #line
    ) {
        guard mayWaitForGracePeriod(
            "synchronize(since:)", inReadSection: .synchronizeInReadSection, inCallback: .synchronizeInCallback,
            fileID: fileID, line: line)
        else { return }
        if cookie.hasElapsed { return }
        synchronizeAllowed()
    }
}
