internal import CLockdepThread
internal import Glibc

/// A call stack captured for a report: return addresses when captured, names only when the
/// report prints it.
struct CallStack {
    let frames: [UInt]

    static let empty = CallStack(frames: [])
}

/// Cheap return-address capture and late symbolisation (only used on the slow path of a new
/// dependency, and when a report is printed), and the thread-name and stderr helpers reports use.
enum Backtrace {
    typealias BacktraceFn = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int32) -> Int32
    typealias DemangleFn = @convention(c) (UnsafePointer<CChar>?, Int, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<Int>?, UInt32) -> UnsafeMutablePointer<CChar>?
    static let backtraceFn: BacktraceFn? = lookup("backtrace")
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
    static func capture(skip: Int = 2, limit: Int = 24) -> CallStack {
        guard let fn = backtraceFn else { return .empty }
        var buffer = [UnsafeMutableRawPointer?](repeating: nil, count: limit + skip)
        let n = Int(fn(&buffer, Int32(buffer.count)))
        guard n > skip else { return .empty }
        return CallStack(frames: buffer[skip..<n].map { UInt(bitPattern: $0) })
    }

    /// Names a captured stack, a line per frame: the function (demangled) and the offset into
    /// it (`IOMMU.Registry.makeWork() -> () + 0x34`), found in its image file's symbol table, or
    /// among the image's exported symbols when the file has none (stripped); the image and
    /// offset when neither names it. Lockdep's own
    /// frames on top are left out but the outermost, the lock call the user made (the kernel's
    /// traces start at the lock function too).
    static func symbolicate(_ stack: CallStack) -> [String] {
        let named = stack.frames.map(name)
        let firstOutside = named.firstIndex { !$0.isLockdep } ?? named.count
        return named[max(0, firstOutside - 1)...].map(\.text)
    }

    /// One frame's line, and whether it is one of this module's functions.
    static func name(_ address: UInt) -> (text: String, isLockdep: Bool) {
        // A return address points after the call: look up the call's last byte.
        let lookup = address &- 1
        var path: UnsafePointer<CChar>?, symbol: UnsafePointer<CChar>?
        var base: UInt = 0, symbolAddress: UInt = 0
        guard let pointer = UnsafeRawPointer(bitPattern: lookup),
              clockdep_image_of(pointer, &path, &base, &symbol, &symbolAddress) != 0 else {
            return ("0x" + String(address, radix: 16), false)
        }
        // The file's symbol table first: it has every function with its size, where dladdr's
        // answer is the nearest exported symbol below, which may be a function that ended before.
        let found: (name: String, start: UInt)?
        if let path, let hit = ElfSymbols.function(in: String(cString: path), base: base, containing: lookup) {
            found = hit
        } else if let symbol {
            found = (String(cString: symbol), symbolAddress)
        } else {
            found = nil
        }
        guard let found else {
            let image = path.map { String(cString: $0).split(separator: "/").last.map(String.init) ?? "?" } ?? "?"
            return ("\(image) +0x" + String(address &- base, radix: 16), false)
        }
        return ("\(demangle(found.name)) + 0x" + String(address &- found.start, radix: 16),
                found.name.hasPrefix("$s7Lockdep"))
    }

    /// A Swift symbol's readable name; any other name as it is.
    static func demangle(_ mangled: String) -> String {
        guard mangled.hasPrefix("$s"), let fn = demangleFn else { return mangled }
        return mangled.withCString { cstr in
            guard let out = fn(cstr, strlen(cstr), nil, nil, 0) else { return mangled }
            defer { free(out) }
            return String(cString: out)
        }
    }
}
