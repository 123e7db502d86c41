public import Foundation
public import Lockdep
#if canImport(Glibc)
import Glibc
#endif

/// A named thread a test starts and then joins: the one thread helper of every test target.
///
/// The name is the pthread name: RCU's stall and misuse reports read it, and Lockdep's name for
/// the thread defaults to it (Linux keeps at most 15 bytes). Lockdep's own name is not set: its
/// setter takes Lockdep's graph lock, which another thread of a forking parent may have held.
public final class TestThread: Sendable {
    private let done = DispatchSemaphore(value: 0)

    /// Starts `body` on a new thread called `name`, in Lockdep context `context`
    /// (`.hardirq` for ISR-like code).
    public init(named name: String, context: LockdepContext = .process, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [done] in
            setCurrentThreadName(name)
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

/// Sets the calling thread's pthread name (its first 15 bytes: Linux keeps no more).
/// `pthread_setname_np` is a GNU extension the Glibc module does not declare: found with dlsym.
func setCurrentThreadName(_ name: String) {
    _ = setName?(pthread_self(), String(decoding: name.utf8.prefix(15), as: UTF8.self))
}

private typealias SetThreadName = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32
private let setName: SetThreadName? = dlsym(dlopen(nil, RTLD_LAZY), "pthread_setname_np")
    .map { unsafeBitCast($0, to: SetThreadName.self) }

/// Starts `body` on a new joinable pthread named `name`. `pthread_join` returns after the
/// thread's key destructors ran (RCU's and Lockdep's thread-exit cleanup), where
/// ``TestThread/wait()`` returns when the body does.
public func startJoinableThread(named name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    let context = Unmanaged.passRetained(JoinableBody {
        setCurrentThreadName(name)
        body()
    }).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { context in
        Unmanaged<JoinableBody>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }, context)
    precondition(status == 0, "pthread_create failed: \(status)")
    return thread
}

/// Runs `body` on a new pthread named `name` and joins it (after its key destructors).
public func runOnJoinedThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    pthread_join(startJoinableThread(named: name, body), nil)
}

/// Starts threads, one at a time, each joined, until one is given `target` as its `pthread_t`,
/// and runs `body` on that one. Returns whether one was.
public func onThreadReusing(_ target: pthread_t, named name: String, attempts: Int = 64,
                             _ body: @escaping @Sendable () -> Void) -> Bool {
    for _ in 0..<attempts {
        let ran = Locked(false)
        pthread_join(startJoinableThread(named: name) {
            guard pthread_equal(pthread_self(), target) != 0 else { return }
            Lockdep.currentThreadName = name
            ran.value = true
            body()
        }, nil)
        if ran.value { return true }
    }
    return false
}

private final class JoinableBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}
