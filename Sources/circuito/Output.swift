import CircuitoCore
import CircuitoStorage
import Glibc
import Synchronization

/// Buffered standard output, flushed at batch boundaries (receipts must be out once their commit is durable).
/// A write that fails (a full disk, a closed pipe) is remembered, and the process then ends with an error
/// (`Circuito.main`): output cut short must never look like a whole export, signed file or list of receipts.
final class StandardOutput {
    private var buffer: [UInt8] = []
    static let flushThresholdBytes = 64 * 1024
    /// Why a write to standard output failed, the first time one did.
    private static let firstFailure = Mutex<String?>(nil)

    static var writeFailure: String? { firstFailure.withLock { $0 } }

    static func recordFailure(_ reason: String) {
        firstFailure.withLock { if $0 == nil { $0 = reason } }
    }

    func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= Self.flushThresholdBytes { flush() }
    }

    func write(bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.flushThresholdBytes { flush() }
    }

    /// Whether standard output is a terminal, where JSON is written `printableJSON`.
    static let isTerminal = isatty(1) == 1

    /// One JSON value and a LF: canonical JSON into a file or a pipe, which scripts and auditors read byte for byte;
    /// on a terminal `printableJSON`, the same value with what would drive the terminal escaped.
    func writeLine(_ value: JSONValue) {
        writeLine(json: CanonicalJSON.encode(value))
    }

    /// JSON text (a record's leaf bytes, an encoded value) and a LF, written as `writeLine(_:)` writes a value.
    func writeLine(json: some Collection<UInt8>) {
        if Self.isTerminal { buffer.append(contentsOf: printableJSON(json)) } else { buffer.append(contentsOf: json) }
        buffer.append(0x0A)
        if buffer.count >= Self.flushThresholdBytes { flush() }
    }

    func flush() {
        var offset = 0
        while offset < buffer.count {
            let written = buffer[offset...].withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                // Nothing more can be written there: the rest is dropped, and the command ends with this error.
                Self.recordFailure(String(cString: strerror(errno)))
                break
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }

    deinit { flush() }
}

/// One JSON value on standard output at once, as `StandardOutput.writeLine(_:)` writes it.
func printJSONLine(_ value: JSONValue) {
    let output = StandardOutput()
    output.writeLine(value)
    output.flush()
}

/// One line on standard error, written `printable`: a message may quote input (an id, a line read), which must not
/// forge lines of its own, drive the terminal or reorder what is shown.
func printError(_ text: String) {
    let line = Array((printable(text) + "\n").utf8)
    _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
}

func errorJSON(_ error: LedgerError) -> JSONValue {
    .object(["code": .string(error.code.name), "number": .integer(Int64(error.code.number)), "message": .string(error.message)])
}

/// Lines from a file descriptor, each at most `maximumLineBytes`; longer lines are reported, not buffered.
struct LineReader {
    enum Line {
        case text([UInt8])
        case tooLong
    }

    let descriptor: Int32
    /// What errors call it: the file's path, or "input" for standard input.
    let source: String
    let maximumLineBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var endOfInput = false
    private var skippingLongLine = false

    init(descriptor: Int32, source: String = "input", maximumLineBytes: Int) {
        self.descriptor = descriptor
        self.source = source
        self.maximumLineBytes = maximumLineBytes
    }

    /// The next line without its newline, or nil at the end of input.
    mutating func next() throws(LedgerError) -> Line? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start..<newline])
                start = newline + 1
                if skippingLongLine {
                    skippingLongLine = false
                    return .tooLong
                }
                if line.count > maximumLineBytes { return .tooLong }
                return .text(line)
            }
            if buffer.count - start > maximumLineBytes {
                // Drop what is buffered of an oversize line and remember to report it at its end.
                skippingLongLine = true
                buffer.removeAll(keepingCapacity: true)
                start = 0
            }
            if endOfInput {
                guard start < buffer.count || skippingLongLine else { return nil }
                let line = Array(buffer[start...])
                buffer.removeAll()
                start = 0
                if skippingLongLine {
                    skippingLongLine = false
                    return .tooLong
                }
                return .text(line)
            }
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw LedgerError(.storage, "cannot read \(source): \(String(cString: strerror(errno)))")
            }
            if count == 0 { endOfInput = true } else { buffer += chunk[0..<count] }
        }
    }
}
