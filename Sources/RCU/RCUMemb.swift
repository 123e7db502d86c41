/// liburcu's memb flavor, the default: readers cost about a nanosecond
/// (a counter store; the writer pays with the `membarrier` system call).
///
/// Threads are registered on their first read section and stay registered
/// until they exit; nothing is required of readers.
public enum RCUMemb: RCUFlavor {}
