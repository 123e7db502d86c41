internal import Glibc
internal import Runtime

/// A call stack captured for a report: return addresses when captured, names and source
/// lines only when the report prints it.
struct CallStack {
    let captured: Runtime.Backtrace?

    static let empty = CallStack(captured: nil)
}

/// Cheap return-address capture and late symbolisation (only used on the slow path of a new
/// dependency, and when a report is printed), and the thread-name and stderr helpers reports use.
enum Backtrace {
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

    /// The loaded images, captured once: a capture given a map only records return addresses
    /// (about 3 µs), where one without captures the map each time (hundreds of µs).
    /// Symbolication reads the images afresh, so a library loaded later is still named.
    static let imagesAtStart = ImageMap.capture()

    /// Captures up to `limit` return addresses, skipping `skip` innermost frames.
    static func capture(skip: Int = 2, limit: Int = 24) -> CallStack {
        CallStack(captured: try? Runtime.Backtrace.capture(limit: limit, offset: skip, top: 0, images: imagesAtStart))
    }

    /// Names a captured stack, a line per frame: the function (demangled) and offset, and the
    /// source file and line where the image has debug information (`main() + 52 at
    /// /src/App/main.swift:12:5`); an image and address where it has no symbols.
    static func symbolicate(_ stack: CallStack) -> [String] {
        guard let captured = stack.captured else { return [] }
        guard let named = captured.symbolicated(with: ImageMap.capture()) else {
            return captured.frames.map { "\($0)" }
        }
        // Lockdep's own frames on top, but the outermost (the lock call the user made), as the
        // kernel's traces start at lock_acquire's caller's lock function.
        let frames = named.frames
        let firstOutside = frames.firstIndex { !isLockdepFrame($0) } ?? frames.count
        return frames[max(0, firstOutside - 1)...].map { frame in
            guard let symbol = frame.symbol else { return "\(frame.captured.adjustedProgramCounter)" }
            let place = symbol.sourceLocation.map { " at \($0)" } ?? ""
            return "\(symbol.name) + \(symbol.offset)\(place)"
        }
    }

    /// A frame in this module (its mangled name's module is `Lockdep`).
    static func isLockdepFrame(_ frame: SymbolicatedBacktrace.Frame) -> Bool {
        frame.symbol?.rawName.hasPrefix("$s7Lockdep") ?? false
    }
}
