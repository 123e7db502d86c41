import CURCUCommon

/// Collects the readers a C `for_each_blocking_reader` visits, so no Swift
/// closure runs while the shim holds its registry lock.
enum BlockingReaderVisit {
    final class Box {
        var readers: [(tid: Int, name: String)] = []
    }

    static func collect(
        _ forEach: (curcu_reader_visitor, UnsafeMutableRawPointer?) -> Void
    ) -> [(tid: Int, name: String)] {
        let box = Box()
        withExtendedLifetime(box) {
            forEach({ context, tid, name in
                let box = Unmanaged<Box>.fromOpaque(context!).takeUnretainedValue()
                box.readers.append((tid, String(cString: name)))
            }, Unmanaged.passUnretained(box).toOpaque())
        }
        return box.readers
    }
}
