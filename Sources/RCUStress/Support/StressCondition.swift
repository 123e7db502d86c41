#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A state behind the harness's mutex, with a condition variable to sleep on until it
/// changes: threads that wait for a start or a completion block instead of spinning.
final class StressCondition<State>: @unchecked Sendable {
    private let mutex = BaselineMutex()
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var state: State

    init(_ state: State) {
        self.state = state
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        let status = pthread_cond_init(condition, nil)
        precondition(status == 0, "pthread_cond_init failed: \(status)")
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    /// Changes the state and wakes every waiter.
    func update(_ body: (inout State) -> Void) {
        mutex.withLock {
            body(&state)
            pthread_cond_broadcast(condition)
        }
    }

    /// Sleeps until `isDone` holds for the state.
    func wait(until isDone: (State) -> Bool) {
        mutex.withLock {
            while !isDone(state) { mutex.wait(on: condition) }
        }
    }
}
