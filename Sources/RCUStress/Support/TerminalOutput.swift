#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Unbuffered writes to a file descriptor: the progress line (redrawn in place
/// with `\r`) and warnings, without touching C's `stdout`/`stderr` globals.
enum TerminalOutput {
    /// Writes `text` to `descriptor` in full.
    static func write(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// Standard error, unbuffered: the subcommands' failure lines.
enum CurrentError {
    static func print(_ line: String) {
        TerminalOutput.write(line + "\n", to: STDERR_FILENO)
    }
}
