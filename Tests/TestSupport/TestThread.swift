public import Foundation
public import Lockdep

/// A named thread a test starts and then joins: the one thread helper of every test target.
///
/// The name is set both as the pthread name (RCU's stall and misuse reports read it; Linux
/// keeps at most 15 bytes) and as Lockdep's name for the thread (its reports print it whole).
public final class TestThread: Sendable {
    private let done = DispatchSemaphore(value: 0)

    /// Starts `body` on a new thread called `name`, in Lockdep context `context`
    /// (`.hardirq` for ISR-like code).
    public init(named name: String, context: LockdepContext = .process, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [done] in
            Thread.current.name = name   // the pthread name, through pthread_setname_np
            Lockdep.currentThreadName = name
            if context == .process {
                body()
            } else {
                Lockdep.withContext(context) { body() }
            }
            done.signal()
        }
        thread.start()
    }

    /// Waits until the thread's body has returned.
    public func wait() { done.wait() }

    /// Waits at most until `deadline` for the body to return.
    public func wait(timeout deadline: DispatchTime) -> DispatchTimeoutResult { done.wait(timeout: deadline) }

    /// Waits up to `timeout` seconds; `false` if the body had not returned by then (a hang).
    @discardableResult
    public func join(timeout: Double = 20) -> Bool { done.wait(timeout: .now() + timeout) == .success }
}

/// Starts `body` on a new named thread; join it with `wait()` or `join(timeout:)`.
@discardableResult
public func startThread(
    named name: String, context: LockdepContext = .process, _ body: @escaping @Sendable () -> Void
) -> TestThread {
    TestThread(named: name, context: context, body)
}

/// Runs `body` on a new named thread and waits for it to finish.
public func onThread(named name: String, context: LockdepContext = .process, _ body: @escaping @Sendable () -> Void) {
    startThread(named: name, context: context, body).wait()
}
