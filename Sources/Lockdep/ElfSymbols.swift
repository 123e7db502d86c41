internal import Glibc

/// The function symbols of a loaded image's file (its ELF `.symtab`), read the first time a
/// report names a frame in that image: an executable exports few of its own functions, so
/// `dladdr` alone names none of them. Immutable once read; the file stays mapped (the names
/// point into it) for the life of the process.
final class ElfSymbols: @unchecked Sendable {
    /// Link-time start address, size and name (an offset into `strings`) of each function,
    /// sorted by start.
    private let starts: [UInt]
    private let sizes: [UInt]
    private let nameOffsets: [UInt32]
    private let strings: UnsafeRawBufferPointer
    /// The whole file's mapping, unmapped when this table is dropped (a table read by two
    /// threads at once: the one not stored); names are copied out of it before they are returned.
    private let mapping: UnsafeRawBufferPointer
    /// An `ET_EXEC` executable runs at its link-time addresses; anything else (a PIE executable,
    /// a shared library) at link-time address plus load base.
    private let isFixedAddress: Bool

    /// Read images by path (`nil`: the file has no symbol table or could not be read). Its lock
    /// is one of Lockdep's fork hooks' (``ForkHooks``), which a first use registers.
    static var loaded: InternalLockedValue<[String: ElfSymbols?]> {
        ForkHooks.installLockdepHooks()
        return madeLoaded
    }

    private static let madeLoaded = InternalLockedValue<[String: ElfSymbols?]>([:])

    /// The function around `address` in the image at `path` loaded at `base`: its symbol name
    /// and run-time start address.
    static func function(in path: String, base: UInt, containing address: UInt) -> (name: String, start: UInt)? {
        let known = loaded.withLock { $0[path] }
        let table: ElfSymbols?
        if let known {
            table = known
        } else {
            // Read outside the lock (a few milliseconds for a large binary); two threads may
            // both read an image, and the first one stored is kept.
            let read = ElfSymbols(path: path)
            table = loaded.withLock { images in
                if let stored = images[path] { return stored }
                images.updateValue(read, forKey: path)
                return read
            }
        }
        return table?.function(containing: address, base: base)
    }

    private func function(containing address: UInt, base: UInt) -> (name: String, start: UInt)? {
        let linkAddress = isFixedAddress ? address : address &- base
        // The last function starting at or before the address.
        var low = 0, high = starts.count
        while low < high {
            let middle = (low + high) / 2
            if starts[middle] <= linkAddress { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        let index = low - 1
        guard linkAddress < starts[index] &+ max(sizes[index], 1) else { return nil }
        let offset = Int(nameOffsets[index])
        guard offset < strings.count else { return nil }
        // Up to the string table's end at most: a file changed or damaged since it was
        // written may lack the terminating NUL.
        // strnlen, not a byte-by-byte `prefix`: a report with a long chain names thousands of
        // frames, and an unspecialised generic loop per byte made that seconds in debug builds.
        guard let start = strings.baseAddress?.advanced(by: offset) else { return nil }
        let length = strnlen(start.assumingMemoryBound(to: CChar.self), strings.count - offset)
        let name = String(decoding: UnsafeRawBufferPointer(start: start, count: length), as: UTF8.self)
        return (name, isFixedAddress ? starts[index] : starts[index] &+ base)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: mapping.baseAddress), mapping.count) }

    /// Maps the file and indexes its `.symtab` functions; `nil` when it is not a 64-bit
    /// little-endian ELF file with a symbol table (a stripped binary has none).
    private init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_size > 64 else { return nil }
        let size = Int(status.st_size)
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else { return nil }
        let file = UnsafeRawBufferPointer(start: mapped, count: size)
        // Every offset and length the file gives is checked against its size without trapping:
        // the file may be damaged, or not the one that was loaded (replaced since).
        func field<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T? {
            guard offset >= 0, offset <= size - MemoryLayout<T>.size else { return nil }
            return T(littleEndian: file.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        /// `offset..<offset + length` when both fit in the file.
        func range(_ offset: UInt64, _ length: UInt64) -> Range<Int>? {
            guard let start = Int(exactly: offset), let count = Int(exactly: length),
                  start <= size, count <= size - start else { return nil }
            return start..<(start + count)
        }
        // "\x7fELF", ELFCLASS64, ELFDATA2LSB.
        guard file[0] == 0x7F, file[1] == 0x45, file[2] == 0x4C, file[3] == 0x46, file[4] == 2, file[5] == 1,
              let type = field(0x10, UInt16.self), let sectionTable = field(0x28, UInt64.self),
              let sectionSize = field(0x3A, UInt16.self), let sectionCount = field(0x3C, UInt16.self),
              sectionSize >= 64 else {
            munmap(mapped, size)
            return nil
        }
        // The section headers lie inside the file (at most 65535 of at most 65535 bytes each).
        guard let sectionHeaders = range(sectionTable, UInt64(sectionCount) * UInt64(sectionSize)) else {
            munmap(mapped, size)
            return nil
        }
        var symbols: (area: Range<Int>, entry: Int, link: Int)?
        for i in 0..<Int(sectionCount) {
            let header = sectionHeaders.lowerBound + i * Int(sectionSize)
            guard let kind = field(header + 4, UInt32.self), kind == 2 /* SHT_SYMTAB */,
                  let offset = field(header + 24, UInt64.self), let length = field(header + 32, UInt64.self),
                  let area = range(offset, length),
                  let link = field(header + 40, UInt32.self), let entry = field(header + 56, UInt64.self),
                  entry >= 24, entry <= UInt64(size) else { continue }
            symbols = (area, Int(entry), Int(link))
            break
        }
        let stringsHeader = symbols.map { sectionHeaders.lowerBound + $0.link * Int(sectionSize) } ?? -1
        guard let symbols, symbols.link < Int(sectionCount),
              let stringsOffset = field(stringsHeader + 24, UInt64.self),
              let stringsLength = field(stringsHeader + 32, UInt64.self),
              let stringsArea = range(stringsOffset, stringsLength) else {
            munmap(mapped, size)
            return nil
        }
        var functions: [(start: UInt, size: UInt, name: UInt32)] = []
        var entry = symbols.area.lowerBound
        while entry <= symbols.area.upperBound - 24 {
            // st_name, st_info (type in the low 4 bits: 2 is STT_FUNC), st_value, st_size.
            if let info = field(entry + 4, UInt8.self), info & 0xF == 2,
               let name = field(entry, UInt32.self), let value = field(entry + 8, UInt64.self), value != 0,
               let length = field(entry + 16, UInt64.self) {
                functions.append((UInt(value), UInt(length), name))
            }
            entry += symbols.entry
        }
        functions.sort { $0.start < $1.start }
        starts = functions.map(\.start)
        sizes = functions.map(\.size)
        nameOffsets = functions.map(\.name)
        strings = UnsafeRawBufferPointer(rebasing: file[stringsArea])
        mapping = file
        isFixedAddress = type == 2 // ET_EXEC
    }
}
