/// Collects the readers a C `for_each_blocking_reader` visits, so no Swift
/// closure runs while the shim holds its registry lock.
@usableFromInline
enum BlockingReaderVisit {
    typealias Visitor = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafePointer<CChar>?) -> Void

    final class Box {
        var readers: [(tid: Int, name: String)] = []
    }

    static func collect(
        _ forEach: (Visitor?, UnsafeMutableRawPointer?) -> Void
    ) -> [(tid: Int, name: String)] {
        let box = Box()
        withExtendedLifetime(box) {
            forEach({ context, tid, name in
                let box = Unmanaged<Box>.fromOpaque(context!).takeUnretainedValue()
                box.readers.append((tid, name.map { String(cString: $0) } ?? "?"))
            }, Unmanaged.passUnretained(box).toOpaque())
        }
        return box.readers
    }
}
