#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Benchmark
import Lockdep

/// "Lock": an uncontended lock/unlock pair on one thread, a plain
/// `pthread_mutex_t` against Lockdep's `CheckedMutex` (chain cached after the
/// warm-up). In a plain release build Lockdep's checks are compiled out and the
/// two are the same machine code; with `LOCKDEP_IN_RELEASE=1` (the
/// `LockdepInRelease` trait) the checked pair's target is <= 2x the plain one.
func registerLockBenchmarks() {
    let suffix = Lockdep.checksCompiledIn ? "checks-on" : "checks-off"
    Benchmark("Lock.pthread_mutex_pair", configuration: BenchmarkDefaults.scaled(.mega)) { benchmark in
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            pthread_mutex_lock(mutex)
            pthread_mutex_unlock(mutex)
        }
        benchmark.stopMeasurement()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    Benchmark("Lock.CheckedMutex_pair.\(suffix)", configuration: BenchmarkDefaults.scaled(.mega)) { benchmark in
        let mutex = CheckedMutex("benchmark.checked")
        mutex.lock()
        mutex.unlock()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            mutex.lock()
            mutex.unlock()
        }
        benchmark.stopMeasurement()
    }
}
