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
    kill(pid, SIGKILL)
    _ = waitpid(pid, &status, 0)
    return (status, false)
}
