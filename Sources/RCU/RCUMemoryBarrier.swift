/// liburcu's mb flavor: readers issue full memory barriers (two a section),
/// so grace periods need no signal or system call. Useful where `membarrier`
/// is unavailable and as the slow baseline in benchmarks.
///
/// Threads are registered on their first read section and stay registered until they exit.
public enum RCUMemoryBarrier: RCUFlavor {}
