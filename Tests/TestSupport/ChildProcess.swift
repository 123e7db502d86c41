#if canImport(Glibc)
public import Glibc
#endif

/// Waits up to `timeout` for the child process `pid` to end, and kills it (SIGKILL) if it has
/// not: returns its wait status, and whether it ended by itself (false: it hung).
public func waitForChild(_ pid: pid_t, timeout: Duration) -> (status: Int32, ended: Bool) {
    var status: Int32 = 0
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if waitpid(pid, &status, WNOHANG) == pid { return (status, true) }
        usleep(1_000)
    }
    printStacks(of: pid)
    kill(pid, SIGKILL)
    _ = waitpid(pid, &status, 0)
    return (status, false)
}

/// Prints every thread's stack of the hung process `pid` on standard error, with gdb when the
/// machine has it: a hung child in a test run then says where it waits, not only that it did.
public func printStacks(of pid: pid_t) {
    let gdb = "/usr/bin/gdb"
    guard access(gdb, X_OK) == 0 else { return }
    let arguments = [gdb, "-nx", "-batch", "-iex", "set complaints 0", "-iex", "set auto-load off",
                     "-p", "\(pid)", "-ex", "thread apply all bt"]
    var cArguments = arguments.map { strdup($0) } + [nil]
    defer { cArguments.forEach { free($0) } }
    var child: pid_t = 0
    // gdb's stacks (its standard output) go to this process's standard error, the test log;
    // its own complaints about the test binary's debug info go nowhere.
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, 2, 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    defer { posix_spawn_file_actions_destroy(&actions) }
    let banner = "== stacks of hung child \(pid):\n"
    _ = banner.withCString { write(2, $0, strlen($0)) }
    guard posix_spawn(&child, gdb, &actions, nil, &cArguments, environ) == 0 else { return }
    _ = waitForGdb(child, timeout: .seconds(60))
}

private func waitForGdb(_ pid: pid_t, timeout: Duration) -> Bool {
    var status: Int32 = 0
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if waitpid(pid, &status, WNOHANG) == pid { return true }
        usleep(10_000)
    }
    kill(pid, SIGKILL)
    _ = waitpid(pid, &status, 0)
    return false
}

/// The environment variable that marks a fresh test process (``spawnFreshTestProcess(_:timeout:)``).
public let freshTestProcessVariable = "SWIFT_RCU_FRESH_TEST_PROCESS"

/// Whether this process is a fresh test process started for one test.
public var inFreshTestProcess: Bool { getenv(freshTestProcessVariable) != nil }

/// Runs the test named `test` (`Module.Class/method`) in a fresh process of this test binary,
/// marked with ``freshTestProcessVariable``, and waits up to `timeout` for it (then kills it):
/// its wait status and whether it ended by itself, or `nil` if it could not be started.
public func spawnFreshTestProcess(_ test: String, timeout: Duration) -> (status: Int32, ended: Bool)? {
    var environment: [String] = []
    var entry = environ
    while let string = entry.pointee {
        environment.append(String(cString: string))
        entry += 1
    }
    environment.append("\(freshTestProcessVariable)=1")
    let arguments: [String] = [CommandLine.arguments[0], test]
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var child: pid_t = 0
    guard posix_spawn(&child, "/proc/self/exe", nil, nil, argv, envp) == 0, child > 0 else { return nil }
    return waitForChild(child, timeout: timeout)
}

/// Runs the test named `test` (`Module.Class/method`) in a fresh process
/// (``spawnFreshTestProcess(_:timeout:)``), waiting up to `timeout`: `nil` when it passed (it
/// ended by itself with status 0), else what went wrong, for the caller's XCTFail (this
/// module does not import XCTest).
public func failureOfFreshTestProcess(_ test: String, timeout: Duration) -> String? {
    guard let (status, ended) = spawnFreshTestProcess(test, timeout: timeout) else {
        return "\(test): the fresh process could not be started"
    }
    if !ended { return "\(test): the fresh process hung (killed after \(timeout))" }
    if status & 0x7F != 0 { return "\(test): killed by signal \(status & 0x7F) (14: SIGALRM, a hang)" }
    if status != 0 { return "\(test) failed in its fresh process (exit status \((status >> 8) & 0xFF))" }
    return nil
}

/// What became of the children ``forkChildren(_:until:alarm:timeout:pause:alsoAccepting:child:)``
/// forked.
public struct ForkedChildren: Sendable {
    /// How many children were forked.
    public internal(set) var forked = 0
    /// Children that had not ended when the parent's wait ran out (killed), or that their
    /// alarm ended (SIGALRM).
    public internal(set) var hung = 0
    /// Children that exited 0.
    public internal(set) var exitedZero = 0
    /// The wait statuses of the children that ended otherwise (those in `alsoAccepting` aside).
    public internal(set) var failedStatuses: [Int32] = []
    /// How many children failed (``failedStatuses``).
    public var failed: Int { failedStatuses.count }
}

/// Forks `count` children one after another (fewer if `deadline` passes first), each running
/// `child` (after `alarm(alarmSeconds)` when given) and then `_exit(0)` unless `child` exited;
/// waits up to `timeout` for each (``waitForChild(_:timeout:)``: a hung one's stacks are
/// printed, then it is killed), pauses `pause` after each, and counts how they ended: hung,
/// exited 0, another status in `alsoAccepting` (counted nowhere), or failed.
public func forkChildren(_ count: Int, until deadline: ContinuousClock.Instant? = nil, alarm alarmSeconds: UInt32? = nil,
                         timeout: Duration, pause: Duration = .zero, alsoAccepting: Set<Int32> = [],
                         child: () -> Void) -> ForkedChildren {
    var children = ForkedChildren()
    while children.forked < count, deadline.map({ ContinuousClock.now < $0 }) ?? true {
        children.forked += 1
        let pid = fork()
        if pid == 0 {
            if let alarmSeconds { alarm(alarmSeconds) }
            child()
            _exit(0)
        }
        let (status, ended) = waitForChild(pid, timeout: timeout)
        if !ended || status & 0x7F == SIGALRM {
            children.hung += 1
        } else if status == 0 {
            children.exitedZero += 1
        } else if !alsoAccepting.contains(status) {
            children.failedStatuses.append(status)
        }
        if pause > .zero { usleep(useconds_t(pause / .microseconds(1))) }
    }
    return children
}
