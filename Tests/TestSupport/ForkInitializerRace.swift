import CLockdepThread
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What ``raceFirstUseWithFork(firstUse:child:)`` saw.
public struct FirstUseForkRace: Sendable {
    /// Whether the first use had finished (and held its lock) before the fork was made: it
    /// must not, since it began while the fork was being prepared.
    public var firstUseBeforeFork: Bool
    /// The child's wait status, and whether it ended by itself (false: hung, then killed).
    public var childStatus: Int32
    public var childEnded: Bool
    /// Whether the first use (and its lock's release) finished in the parent after the fork.
    public var firstUseFinished: Bool

    /// `nil` when the child exited 0 by itself, else what became of it.
    public var childFailure: String? {
        if !childEnded { return "the child hung (killed)" }
        if childStatus & 0x7F == SIGALRM { return "the child hung (its alarm ended it)" }
        if childStatus & 0x7F != 0 { return "the child was killed by signal \(childStatus & 0x7F)" }
        if childStatus != 0 { return "the child exited \((childStatus >> 8) & 0xFF)" }
        return nil
    }
}

/// Flags the race's threads share.
private final class RaceFlags: Sendable {
    let stallHeld = Atomic<Bool>(false)
    let releaseStall = Atomic<Bool>(false)
    let childPID = Atomic<Int32>(0)
    let forked = Atomic<Bool>(false)
    let firstUseHolding = Atomic<Bool>(false)
    let releaseFirstUse = Atomic<Bool>(false)
    let firstUseDone = Atomic<Bool>(false)
}

/// The mutex of the test's own fork hook triple, which holds a fork in its prepare step.
nonisolated(unsafe) private let forkStall: UnsafeMutablePointer<pthread_mutex_t> = {
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(mutex, nil)
    return mutex
}()

private let forkStallRegistered: Void = {
    _ = forkStall
    clockdep_fork_register(
        { pthread_mutex_lock(forkStall) },
        { pthread_mutex_unlock(forkStall) },
        { pthread_mutex_init(forkStall, nil) })
}()

private func wait(for flag: borrowing Atomic<Bool>, upTo limit: Duration) -> Bool {
    let deadline = ContinuousClock.now + limit
    while !flag.load(ordering: .acquiring) {
        if ContinuousClock.now >= deadline { return false }
        usleep(1_000)
    }
    return true
}

/// Makes the first use of a one-time value race a `fork()` whose prepare step has already
/// looked at every fork hook triple registered so far, the race an unbracketed initializer
/// that registers a hook loses. Call it in a fresh process (only the test's threads), before
/// anything uses the value.
///
/// A test triple registered here (after every triple the process has so far) holds the fork
/// in its prepare step, on a mutex another thread holds, once the prepare step has passed
/// every later triple. Meanwhile another thread runs `firstUse`: the first use of the value,
/// which then takes the lock its fork hooks guard and returns a function that releases it. 
/// The fork is let go after `firstUse` returns or after a second, whichever is first; the
/// child (one thread, an alarm of 5 s) runs `child`, which uses that lock and returns its exit
/// status. A hook registered by the first use that missed the fork leaves the child the
/// lock held by a thread it does not have: the child hangs.
public func raceFirstUseWithFork(firstUse: @escaping @Sendable () -> (@Sendable () -> Void),
                                 child: @escaping @Sendable () -> Int32) -> FirstUseForkRace {
    // A fork with the hooks the process has, so the fork path is code the parent has run.
    let rehearsal = forkChildren(1, timeout: .seconds(10)) {}
    precondition(rehearsal.exitedZero == 1, "the rehearsal fork failed")
    _ = forkStallRegistered
    let flags = RaceFlags()

    let stall = Thread {
        pthread_mutex_lock(forkStall)
        flags.stallHeld.store(true, ordering: .releasing)
        while !flags.releaseStall.load(ordering: .acquiring) { usleep(1_000) }
        pthread_mutex_unlock(forkStall)
    }
    stall.start()
    precondition(wait(for: flags.stallHeld, upTo: .seconds(10)), "the stall thread did not start")

    let forker = Thread {
        let pid = fork()
        if pid == 0 {
            alarm(5)
            _exit(child())
        }
        flags.childPID.store(pid, ordering: .relaxed)
        flags.forked.store(true, ordering: .releasing)
    }
    forker.start()
    // The fork is being prepared; its prepare step reaches the stall (all later triples
    // looked at) within microseconds: 200 ms is ample.
    let preparing = ContinuousClock.now + .seconds(10)
    while clockdep_fork_is_preparing() == 0 && ContinuousClock.now < preparing { usleep(1_000) }
    usleep(200_000)

    let user = Thread {
        let release = firstUse()
        flags.firstUseHolding.store(true, ordering: .releasing)
        while !flags.releaseFirstUse.load(ordering: .acquiring) { usleep(1_000) }
        release()
        flags.firstUseDone.store(true, ordering: .releasing)
    }
    user.start()
    let firstUseBeforeFork = wait(for: flags.firstUseHolding, upTo: .seconds(1))

    flags.releaseStall.store(true, ordering: .releasing)
    precondition(wait(for: flags.forked, upTo: .seconds(30)), "fork() did not return")
    let (status, ended) = waitForChild(flags.childPID.load(ordering: .relaxed), timeout: .seconds(15))
    flags.releaseFirstUse.store(true, ordering: .releasing)
    let finished = wait(for: flags.firstUseDone, upTo: .seconds(10))
    return FirstUseForkRace(firstUseBeforeFork: firstUseBeforeFork, childStatus: status, childEnded: ended,
                            firstUseFinished: finished)
}
