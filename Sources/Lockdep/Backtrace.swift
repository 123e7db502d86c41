internal import Glibc

/// Cheap return-address capture and late symbolisation (only used on the slow path of a new
/// dependency, and when a report is printed).
enum Backtrace {
    typealias BacktraceFn = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int32) -> Int32
    typealias SymbolsFn = @convention(c) (UnsafePointer<UnsafeMutableRawPointer?>?, Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    typealias DemangleFn = @convention(c) (UnsafePointer<CChar>?, Int, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<Int>?, UInt32) -> UnsafeMutablePointer<CChar>?

    static let backtraceFn: BacktraceFn? = lookup("backtrace")
    static let symbolsFn: SymbolsFn? = lookup("backtrace_symbols")
    static let demangleFn: DemangleFn? = lookup("swift_demangle")

    typealias GetNameFn = @convention(c) (pthread_t, UnsafeMutablePointer<CChar>?, Int) -> Int32
    static let getNameFn: GetNameFn? = lookup("pthread_getname_np")

    /// The pthread name of the calling thread, if it has one.
    static func threadName() -> String? {
        guard let fn = getNameFn else { return nil }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fn(pthread_self(), &buffer, 64) == 0 else { return nil }
        let n = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return n.isEmpty ? nil : n
    }

    /// Writes to standard error without touching the `stderr` global.
    static func writeStandardError(_ text: String) {
        var text = text
        text.withUTF8 { buf in
            var offset = 0
            while offset < buf.count {
                let n = write(2, buf.baseAddress! + offset, buf.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    static func lookup<F>(_ name: String) -> F? {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(sym, to: F.self)
    }

    /// Captures up to `limit` return addresses, skipping `skip` innermost frames.
    static func capture(skip: Int = 2, limit: Int = 24) -> [UInt] {
        guard let fn = backtraceFn else { return [] }
        var buffer = [UnsafeMutableRawPointer?](repeating: nil, count: limit + skip)
        let n = Int(fn(&buffer, Int32(buffer.count)))
        guard n > skip else { return [] }
        return buffer[skip..<n].map { UInt(bitPattern: $0) }
    }

    /// Symbolises addresses into readable frame lines (demangled where possible).
    static func symbolicate(_ frames: [UInt]) -> [String] {
        guard !frames.isEmpty, let fn = symbolsFn else { return frames.map { "0x" + String($0, radix: 16) } }
        let pointers = frames.map { UnsafeMutableRawPointer(bitPattern: $0) }
        guard let symbols = pointers.withUnsafeBufferPointer({ fn($0.baseAddress, Int32($0.count)) }) else {
            return frames.map { "0x" + String($0, radix: 16) }
        }
        defer { free(symbols) }
        var lines: [String] = []
        for i in 0..<frames.count {
            guard let cstr = symbols[i] else { continue }
            lines.append(demangleLine(String(cString: cstr)))
        }
        return lines
    }

    /// `/path/bin(mangled+0x12) [0x...]` -> `demangled +0x12`.
    static func demangleLine(_ line: String) -> String {
        guard let open = line.firstIndex(of: "("), let close = line[open...].firstIndex(of: ")") else { return line }
        let inner = line[line.index(after: open)..<close]
        if inner.isEmpty || inner.hasPrefix("+") {
            let path = line[..<open]
            let binary = path.split(separator: "/").last.map(String.init) ?? String(path)
            return binary + " " + inner
        }
        let parts = inner.split(separator: "+", maxSplits: 1)
        guard let mangled = parts.first, !mangled.isEmpty else {
            return line
        }
        let offset = parts.count > 1 ? " +" + parts[1] : ""
        var name = String(mangled)
        if let demangle = demangleFn {
            name.withCString { cstr in
                if let out = demangle(cstr, strlen(cstr), nil, nil, 0) {
                    name = String(cString: out)
                    free(out)
                }
            }
        }
        return name + offset
    }
}
