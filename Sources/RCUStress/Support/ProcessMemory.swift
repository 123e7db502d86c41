#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's resident memory, from `/proc/self/status` (Linux).
enum ProcessMemory {
    /// Peak resident set size in bytes (`VmHWM`), or from `getrusage` when /proc is unavailable.
    static var peakResidentBytes: Int {
        if let kilobytes = statusField("VmHWM:") { return kilobytes * 1024 }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    /// Current resident set size in bytes (`VmRSS`), or 0 when unavailable.
    static var residentBytes: Int {
        (statusField("VmRSS:") ?? 0) * 1024
    }

    /// The number in kilobytes after `name` in `/proc/self/status`.
    static func statusField(_ name: String) -> Int? {
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 256)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard line.hasPrefix(name) else { continue }
            return Int(line.dropFirst(name.count).filter { $0.isNumber })
        }
        return nil
    }
}
