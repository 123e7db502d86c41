import Synchronization

/// One rcutorture element (`struct rcu_torture`): its age in grace periods
/// since it was unpublished (the "pipe count"), and whether it is allocated.
///
/// Freeing is explicit and observable: ARC keeps the storage alive (the pool
/// holds every element), so "freed" is the ``live`` flag going false when the
/// element leaves the pipe, and a reader that finds it false inside a read
/// section has dereferenced freed memory ("mberror").
final class TortureElement: Sendable {
    /// rcutorture's `RCU_TORTURE_PIPE_LEN`: grace periods an element ages before it is freed.
    static let pipeLength = 10

    let age = Atomic<Int>(0)
    let live = Atomic<Bool>(false)

    init() {}
}
