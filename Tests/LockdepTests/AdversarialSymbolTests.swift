import Foundation
import XCTest
@testable import Lockdep

/// Report stacks named from image files (ElfSymbols, Backtrace) attacked: damaged or hostile
/// files where an image's file should be, and a program started by a relative name.
final class AdversarialSymbolTests: LockdepTestCase {
    /// A small ELF64 file: header, two section headers (.symtab, .strtab), the symbols, the
    /// string table, then `trailing` bytes. Every field a damaged file could get wrong can be set.
    struct ElfFile {
        var type: UInt16 = 2   // ET_EXEC: link-time addresses are run-time addresses
        var sectionTable: UInt64 = 64
        var sectionCount: UInt16 = 2
        var symbolsOffset: UInt64?
        var symbolsLength: UInt64?
        var symbolEntrySize: UInt64 = 24
        var stringsLink: UInt32 = 1
        var stringsOffset: UInt64?
        var stringsLength: UInt64?
        /// (name offset, start, size) of each function symbol.
        var functions: [(name: UInt32, start: UInt64, size: UInt64)] = [(1, 0x1000, 0x100)]
        var strings: [UInt8] = Array("\0abc".utf8)
        var trailing: [UInt8] = []

        func bytes() -> [UInt8] {
            var out = [UInt8](repeating: 0, count: 64 + 2 * 64)
            func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
                withUnsafeBytes(of: value.littleEndian) { out.replaceSubrange(offset..<offset + $0.count, with: $0) }
            }
            out[0] = 0x7F; out[1] = 0x45; out[2] = 0x4C; out[3] = 0x46; out[4] = 2; out[5] = 1; out[6] = 1
            put(type, at: 0x10)
            put(sectionTable, at: 0x28)
            put(UInt16(64), at: 0x3A)
            put(sectionCount, at: 0x3C)
            let symbolsStart = out.count
            let symbolsSize = (functions.count + 1) * 24
            let stringsStart = symbolsStart + symbolsSize
            // .symtab's header, then .strtab's.
            put(UInt32(2), at: 64 + 4)
            put(symbolsOffset ?? UInt64(symbolsStart), at: 64 + 24)
            put(symbolsLength ?? UInt64(symbolsSize), at: 64 + 32)
            put(stringsLink, at: 64 + 40)
            put(symbolEntrySize, at: 64 + 56)
            put(UInt32(3), at: 128 + 4)
            put(stringsOffset ?? UInt64(stringsStart), at: 128 + 24)
            put(stringsLength ?? UInt64(strings.count), at: 128 + 32)
            out += [UInt8](repeating: 0, count: 24)   // the null symbol
            for function in functions {
                let entry = out.count
                out += [UInt8](repeating: 0, count: 24)
                put(function.name, at: entry)
                out[entry + 4] = 0x12   // STB_GLOBAL, STT_FUNC
                put(function.start, at: entry + 8)
                put(function.size, at: entry + 16)
            }
            return out + strings + trailing
        }

        /// Writes the file under a fresh name (images are cached by path).
        func write() -> String {
            let path = NSTemporaryDirectory() + "adversary-elf-\(getpid())-\(UUID().uuidString)"
            precondition(FileManager.default.createFile(atPath: path, contents: Data(bytes())))
            return path
        }
    }

    func name(at address: UInt, in file: ElfFile) -> String? {
        let path = file.write()
        defer { unlink(path) }
        return ElfSymbols.function(in: path, base: 0, containing: address)?.name
    }

    func testWellFormedFileNamesItsFunction() {
        let path = ElfFile().write()
        defer { unlink(path) }
        let found = ElfSymbols.function(in: path, base: 0, containing: 0x1010)
        XCTAssertEqual(found?.name, "abc")
        XCTAssertEqual(found?.start, 0x1000)
        XCTAssertNil(ElfSymbols.function(in: path, base: 0, containing: 0x1100), "past the function's end")
    }

    /// Offsets and lengths near the top of UInt64 once trapped converting to Int or adding:
    /// a report naming a frame crashed the process. Each damaged file is now no symbol table.
    func testDamagedOffsetsAndLengthsAreRefusedNotTrapped() {
        let huge: UInt64 = 0xFFFF_FFFF_FFFF_FF00
        var damaged: [(String, ElfFile)] = []
        var file = ElfFile(); file.sectionTable = huge; damaged.append(("section table offset", file))
        file = ElfFile(); file.sectionTable = UInt64(Int.max) - 8; damaged.append(("section table near Int.max", file))
        file = ElfFile(); file.symbolsOffset = huge; damaged.append(("symbols offset", file))
        file = ElfFile(); file.symbolsLength = huge; damaged.append(("symbols length", file))
        file = ElfFile(); file.symbolsOffset = 100; file.symbolsLength = UInt64(Int.max); damaged.append(("symbols end overflows", file))
        file = ElfFile(); file.symbolEntrySize = huge; damaged.append(("symbol entry size", file))
        file = ElfFile(); file.symbolEntrySize = UInt64(Int.max); damaged.append(("symbol entry size Int.max", file))
        file = ElfFile(); file.stringsOffset = huge; damaged.append(("strings offset", file))
        file = ElfFile(); file.stringsOffset = 100; file.stringsLength = UInt64(Int.max); damaged.append(("strings end overflows", file))
        file = ElfFile(); file.stringsLink = .max; damaged.append(("strings link", file))
        file = ElfFile(); file.sectionCount = .max; damaged.append(("section count", file))
        for (what, file) in damaged {
            XCTAssertNil(name(at: 0x1010, in: file), what)
        }
        // A huge entry size that still fits the file reads the first symbol only.
        file = ElfFile(); file.symbolEntrySize = 1 << 20
        XCTAssertNil(name(at: 0x1010, in: file), "an entry size past the file is refused")
    }

    /// A name runs to its NUL inside the string table, never past the table's end (a damaged
    /// table may lack the last NUL: the name once took in the bytes after it, up to the
    /// file's end or off the mapping).
    func testNameStopsAtTheStringTableEnd() {
        var file = ElfFile()
        file.trailing = Array("XYZ\0".utf8)
        XCTAssertEqual(name(at: 0x1010, in: file), "abc")
        file.functions = [(3, 0x1000, 0x100)]   // the table's last byte
        XCTAssertEqual(name(at: 0x1010, in: file), "c")
        file.functions = [(4, 0x1000, 0x100)]   // its end
        XCTAssertNil(name(at: 0x1010, in: file))
    }

    /// Many threads name frames of the same fresh image at once: one table is kept, the others
    /// dropped (and unmapped); every thread gets the name.
    func testManyThreadsReadOneImageAtOnce() {
        let path = ElfFile().write()
        defer { unlink(path) }
        let wrong = Locked(0)
        let threads = (0..<8).map { index in
            startThread(named: "adv-symbols-\(index)") {
                for _ in 0..<50 where ElfSymbols.function(in: path, base: 0, containing: 0x1010)?.name != "abc" {
                    wrong.withLock { $0 += 1 }
                }
            }
        }
        threads.forEach { $0.wait() }
        XCTAssertEqual(wrong.withLock { $0 }, 0)
    }

    // MARK: The main program started by a relative name

    static let childVariable = "ADVERSARY_SYMBOL_CHILD"
    static let relativeName = "adversary-relative-argv0"

    /// glibc's dladdr names the main program by argv[0]: a program started by a relative or
    /// bare name (found on PATH) whose directory then changed named its own frames from
    /// whatever file had that name there. The test binary runs itself with a relative argv[0]
    /// in a directory holding a decoy ELF file of that name whose one function covers every
    /// address; the child names one of its own frames.
    func testMainProgramStartedByARelativeNameNamesItsOwnFrames() throws {
        let directory = NSTemporaryDirectory() + "adversary-argv0-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var decoy = ElfFile()
        decoy.type = 3   // ET_DYN: addresses relative to the load base
        decoy.functions = [(1, 1, UInt64(Int.max))]
        decoy.strings = Array("\0decoyFunction\0".utf8)
        XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/" + Self.relativeName, contents: Data(decoy.bytes())))

        let test = "LockdepTests.AdversarialSymbolTests/testChildNamesItsOwnFrame"
        let arguments = [Self.relativeName, test]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.childVariable] = directory
        let environmentStrings = environment.map { "\($0.key)=\($0.value)" }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environmentStrings.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, "/proc/self/exe", nil, nil, argv, envp)
        XCTAssertEqual(spawned, 0)
        guard spawned == 0 else { return }
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child, &status, 0), child)
        // Exited (low 7 bits 0) with status 0: the child's test passed.
        XCTAssertEqual(status & 0x7F, 0, "the child was killed by signal \(status & 0x7F)")
        XCTAssertEqual((status >> 8) & 0xFF, 0, "the child's test failed: see its output above")
    }

    /// Runs only in the child of the test above.
    func testChildNamesItsOwnFrame() throws {
        guard let directory = ProcessInfo.processInfo.environment[Self.childVariable] else {
            throw XCTSkip("runs in the child process of testMainProgramStartedByARelativeNameNamesItsOwnFrames")
        }
        XCTAssertEqual(CommandLine.arguments.first, Self.relativeName)
        XCTAssertEqual(chdir(directory), 0)
        let lines = adversaryKnownFrame()
        XCTAssertTrue(lines.contains { $0.contains("adversaryKnownFrame") }, "\(lines)")
        XCTAssertFalse(lines.contains { $0.contains("decoyFunction") }, "\(lines)")
    }

    @inline(never)
    func adversaryKnownFrame() -> [String] {
        Backtrace.symbolicate(Backtrace.capture(skip: 0))
    }
}
