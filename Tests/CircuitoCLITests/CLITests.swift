import CircuitoCore
import CircuitoCrypto
import CircuitoServer
import CircuitoStorage
import CircuitoTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

// End-to-end tests of the `circuito` executable: each test runs the built binary in a fresh temporary
// directory, the way an operator would, and checks its output with the library's own parsers and proofs.

// MARK: - Finding and running the binary

enum CLI {
    /// The `circuito` executable next to this test bundle (same build products folder).
    static let binary: String? = locate()

    private static func locate() -> String? {
        if let given = ProcessInfo.processInfo.environment["CIRCUITO_BIN"], isExecutableFile(given) { return given }
        var starts: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { starts.append(exe) }
        if let first = CommandLine.arguments.first { starts.append(URL(fileURLWithPath: first).standardizedFileURL.path) }
        for start in starts {
            var folder = URL(fileURLWithPath: start).deletingLastPathComponent()
            while folder.path.count > 1 {
                for candidate in ["circuito", "debug/circuito", "release/circuito"] {
                    let path = folder.path + "/" + candidate
                    if isExecutableFile(path) { return path }
                }
                folder.deleteLastPathComponent()
            }
        }
        return nil
    }

    private static func isExecutableFile(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG && access(path, X_OK) == 0
    }

    /// A test that writes to a child's stdin must not die of SIGPIPE when the child exits early.
    static let ignoringSIGPIPE: Bool = {
        signal(SIGPIPE, SIG_IGN)
        return true
    }()
}

/// Everything read from one end of a pipe, on a thread of its own (so no pipe can fill up and deadlock).
final class PipeReader: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`.
    private let lock = NSLock()
    private var data: [UInt8] = []
    private var newlines = 0
    private let finished = DispatchSemaphore(value: 0)

    init(descriptor: Int32) {
        let thread = Thread { [self] in self.pump(descriptor) }
        thread.start()
    }

    private func pump(_ descriptor: Int32) {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            let piece = chunk[0..<count]
            let pieceNewlines = piece.reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
            lock.withLock {
                data += piece
                newlines += pieceNewlines
            }
        }
        close(descriptor)
        finished.signal()
    }

    var bytes: [UInt8] { lock.withLock { data } }
    var lineCount: Int { lock.withLock { newlines } }

    /// Waits for the writer side to close (the child and everything it started have exited).
    func waitForEnd(timeout: Double) -> Bool {
        guard finished.wait(timeout: .now() + timeout) == .success else { return false }
        finished.signal()
        return true
    }

    /// Waits until what arrived, as text, satisfies `condition`; false on timeout. What a child wrote before a point
    /// the test learns of otherwise (a file it made, a signal) may not be read by this reader's thread yet.
    func waitForText(timeout: Double, _ condition: (String) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition(String(decoding: bytes, as: UTF8.self)) {
            if Date() > deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// Waits until at least `count` complete lines have arrived; false on timeout. It sleeps between looks instead of
    /// blocking, so the test's thread stays free for other tests' tasks.
    func waitForLines(_ count: Int, timeout: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while lineCount < count {
            if Date() > deadline { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return true
    }
}

struct CLIResult {
    let status: Int32
    let signaled: Bool
    let timedOut: Bool
    let stdoutBytes: [UInt8]
    let stderrBytes: [UInt8]
    /// From the child's start until its exit was seen (or it was killed), by the thread that waited for it: not
    /// when the test's task ran again, which under the whole suite waits for a thread of the shared pool.
    let runTime: Duration

    var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
    var stderr: String { String(decoding: stderrBytes, as: UTF8.self) }
    /// Complete stdout lines (a last line without its newline is left out: it may be cut).
    var completeLines: [String] {
        var lines = stdoutBytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        lines.removeLast()  // what follows the last newline: empty, or an incomplete line
        return lines.filter { !$0.isEmpty }
    }
    var exitedNormally: Bool { !timedOut && !signaled }
    var succeeded: Bool { exitedNormally && status == 0 }
}

/// One run of `circuito`, with stdin, stdout and stderr on pipes. stdin can be fed all at once (and closed) or kept
/// open for the test to write to.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is only asked for its state, `stdout` and `stderr` are Sendable, and the one mutable
    // field is guarded by `stdinLock` (the waiting thread closes stdin while the test may still write to it).
    let process: Process
    let stdout: PipeReader
    let stderr: PipeReader
    private let stdinLock = NSLock()
    private var stdinDescriptor: Int32 = -1
    private let exited: DispatchSemaphore
    private let startedAt: ContinuousClock.Instant

    /// Runs `executable` (default: the `circuito` binary) with `arguments`, with `environment` added to this
    /// process's own.
    /// With `stderrOnTerminal`, the child's standard error is a pseudo-terminal (the progress lines' condition), read
    /// as its `stderr`; with `stdoutOnTerminal`, its standard output (whose LFs the terminal writes as CR LF). With `stderrOutputStopped` as well, that terminal's output is stopped (as by ^S) for good: the
    /// child's first write to standard error blocks, which holds it at a known point (`isBlockedWritingStderr`).
    /// A child inherits the signal mask of the thread that starts it, and a test's thread (a Dispatch worker) blocks
    /// SIGHUP, SIGINT, SIGTERM and most others: with `unblockedSignals` the child starts with none blocked, as a
    /// shell's child does, so that a signal the test sends acts on it as on a user's command.
    init(
        _ arguments: [String], stdin input: [UInt8]? = nil, keepStdinOpen: Bool = false, executable: String? = nil,
        environment: [String: String] = [:], stderrOnTerminal: Bool = false, stderrOutputStopped: Bool = false,
        stdoutOnTerminal: Bool = false, unblockedSignals: Bool = false
    ) throws {
        precondition(!stderrOutputStopped || stderrOnTerminal, "only a terminal's output can be stopped")
        _ = CLI.ignoringSIGPIPE
        let process = Process()
        self.process = process
        let binary = try executable ?? #require(CLI.binary, "the circuito executable was not found next to the test bundle")
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
        }
        // (Process closes every other descriptor in the child, so concurrent tests do not share pipe ends.)
        let inPipe = try ChildProcess.makePipe()
        let outPipe = try stdoutOnTerminal ? ChildProcess.makeTerminal() : ChildProcess.makePipe()
        let errPipe = try stderrOnTerminal ? ChildProcess.makeTerminal() : ChildProcess.makePipe()
        if stderrOutputStopped {
            try #require(tcflow(errPipe[1], TCOOFF) == 0, "tcflow: \(String(cString: strerror(errno)))")
        }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardInput = FileHandle(fileDescriptor: inPipe[0], closeOnDealloc: false)
        process.standardOutput = FileHandle(fileDescriptor: outPipe[1], closeOnDealloc: false)
        process.standardError = FileHandle(fileDescriptor: errPipe[1], closeOnDealloc: false)
        let exited = DispatchSemaphore(value: 0)
        self.exited = exited
        process.terminationHandler = { _ in exited.signal() }
        do {
            var previousMask = sigset_t()
            if unblockedSignals {
                var none = sigset_t()
                sigemptyset(&none)
                pthread_sigmask(SIG_SETMASK, &none, &previousMask)
            }
            // Process starts the child on this thread, with this thread's mask; the thread's own is put back at once.
            defer { if unblockedSignals { pthread_sigmask(SIG_SETMASK, &previousMask, nil) } }
            startedAt = ContinuousClock.now
            try process.run()
        } catch {
            for descriptor in inPipe + outPipe + errPipe { close(descriptor) }
            throw error
        }
        // The child has its copies; keep only our ends.
        close(inPipe[0])
        close(outPipe[1])
        close(errPipe[1])
        stdout = PipeReader(descriptor: outPipe[0])
        stderr = PipeReader(descriptor: errPipe[0])
        if let input {
            let descriptor = inPipe[1]
            Thread {
                _ = ChildProcess.writeAll(descriptor, input)
                close(descriptor)
            }.start()
        } else if keepStdinOpen {
            stdinLock.withLock { stdinDescriptor = inPipe[1] }
        } else {
            close(inPipe[1])
        }
    }

    var pid: Int32 { process.processIdentifier }

    /// The number of the `write` system call (`SYS_write`, which Swift does not import).
    #if arch(x86_64)
        static let writeSystemCall: Int? = 1
    #elseif arch(arm64)
        static let writeSystemCall: Int? = 64
    #else
        static let writeSystemCall: Int? = nil
    #endif

    /// Whether a thread of the child is in a `write` to its standard error (`/proc/PID/task/*/syscall` names the call
    /// a blocked thread is in, then its arguments): where one whose terminal's output is stopped stays.
    var isBlockedWritingStderr: Bool {
        guard let writeSystemCall = Self.writeSystemCall else { return false }
        let taskFolder = "/proc/\(pid)/task"
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: taskFolder)) ?? []
        return threads.contains { thread in
            let call = (try? String(contentsOfFile: "\(taskFolder)/\(thread)/syscall", encoding: .utf8)) ?? ""
            return call.hasPrefix("\(writeSystemCall) 0x2 ")
        }
    }

    /// The paths of the files the child has open (a file it has unlinked ends in " (deleted)").
    var openFiles: [String] {
        let folder = "/proc/\(pid)/fd"
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/\($0)") }
    }

    private static func makePipe() throws -> [Int32] {
        var descriptors: [Int32] = [-1, -1]
        try #require(pipe(&descriptors) == 0, "pipe: \(String(cString: strerror(errno)))")
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        return descriptors
    }

    /// A pseudo-terminal as [the side this process reads, the side the child writes], like a pipe's two ends; reads
    /// end (EIO) once the child and everything it started have closed theirs.
    private static func makeTerminal() throws -> [Int32] {
        var reading: Int32 = -1
        var writing: Int32 = -1
        try #require(openpty(&reading, &writing, nil, nil, nil) == 0, "openpty: \(String(cString: strerror(errno)))")
        for descriptor in [reading, writing] { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        return [reading, writing]
    }

    @discardableResult
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    func writeToStdin(_ text: String) {
        stdinLock.withLock {
            precondition(stdinDescriptor >= 0, "stdin was not kept open")
            ChildProcess.writeAll(stdinDescriptor, Array(text.utf8))
        }
    }

    func closeStdin() {
        stdinLock.withLock {
            if stdinDescriptor >= 0 {
                close(stdinDescriptor)
                stdinDescriptor = -1
            }
        }
    }

    /// Waits for the child (killing it after `timeout` seconds, which the result reports) and for its output, on a
    /// thread of its own: a test blocked here would hold one of the few threads every async test runs on (one per
    /// core), and two such tests stalled the rest of the suite past their time limits.
    func wait(timeout: Double = 120) async -> CLIResult {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: self.waitBlocking(timeout: timeout)) }.start()
        }
    }

    private func waitBlocking(timeout: Double) -> CLIResult {
        var timedOut = false
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(pid, SIGKILL)
            _ = exited.wait(timeout: .now() + 30)
        }
        let runTime = ContinuousClock.now - startedAt
        closeStdin()
        _ = stdout.waitForEnd(timeout: 30)
        _ = stderr.waitForEnd(timeout: 30)
        let finished = !process.isRunning
        return CLIResult(
            status: finished ? process.terminationStatus : -1,
            signaled: finished ? process.terminationReason == .uncaughtSignal : false,
            timedOut: timedOut || !finished, stdoutBytes: stdout.bytes, stderrBytes: stderr.bytes, runTime: runTime)
    }

    deinit {
        if process.isRunning { kill(pid, SIGKILL) }
        closeStdin()
    }
}

/// Bounds how many commands the tests run to completion at once (one per core, at least two). Since waiting for a
/// child no longer holds a thread, nothing else would stop every test of the target from starting its commands
/// together, and tests that time what a command does (a `--timeout`, a kill mid-way) would then run on a machine
/// loaded many times over. Long-lived children (servers, writers held open) are not counted: a test waits for them
/// while its own commands run.
actor ChildProcessSlots {
    static let shared = ChildProcessSlots(width: max(2, ProcessInfo.processInfo.activeProcessorCount))

    private let width: Int
    private var running = 0
    /// In arrival order; at most one per test running.
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(width: Int) {
        precondition(width > 0)
        self.width = width
    }

    /// Runs `body` once a slot is free; commands are let through in the order they asked.
    func run<Result: Sendable>(_ body: @Sendable () async throws -> Result) async throws -> Result {
        if running < width {
            running += 1
        } else {
            await withCheckedContinuation { waiting.append($0) }
        }
        assert(running <= width)
        defer {
            if waiting.isEmpty { running -= 1 } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }
}

/// Runs `executable` (default: `circuito`) with `arguments` to completion, bounded by `timeout` seconds, once a slot
/// of `ChildProcessSlots` is free.
func runToCompletion(
    _ arguments: [String], stdin: String? = nil, executable: String? = nil, environment: [String: String] = [:],
    stderrOnTerminal: Bool = false, stdoutOnTerminal: Bool = false, timeout: Double = 120
) async throws -> CLIResult {
    // The wait for a slot is the other tests' commands, not this test's: its own time limit leaves it out.
    let waits = SlotWaits.current
    waits?.began()
    return try await ChildProcessSlots.shared.run {
        waits?.ended()
        let child = try ChildProcess(
            arguments, stdin: stdin.map { Array($0.utf8) }, executable: executable, environment: environment,
            stderrOnTerminal: stderrOnTerminal, stdoutOnTerminal: stdoutOnTerminal)
        return await child.wait(timeout: timeout)
    }
}

/// Runs `circuito arguments…` to completion (bounded by `timeout`).
@discardableResult
func circuito(_ arguments: String..., stdin: String? = nil, timeout: Double = 120) async throws -> CLIResult {
    try await circuito(arguments, stdin: stdin, timeout: timeout)
}

/// `circuito(_:stdin:timeout:)` with the arguments in an array.
@discardableResult
func circuito(_ arguments: [String], stdin: String? = nil, timeout: Double = 120) async throws -> CLIResult {
    let result = try await runToCompletion(arguments, stdin: stdin, timeout: timeout)
    #expect(!result.timedOut, "circuito \(arguments.joined(separator: " ")) timed out after \(timeout) s")
    return result
}

// MARK: - Fixtures

/// A fresh temporary directory; call `remove()` (in a defer) when done.
struct Workspace {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("circuito-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { root + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    func write(_ name: String, lines: [String]) throws -> String {
        let path = self.path(name)
        try (lines.map { $0 + "\n" }.joined()).write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }
}

/// An actor id and the key it signs with.
struct TestActor {
    let id: String
    let key: Ed25519PrivateKey

    init(_ id: String, key: Ed25519PrivateKey = Ed25519PrivateKey()) {
        self.id = id
        self.key = key
    }

    var multikey: String { key.publicKey.multikey }

    /// One signed event as a JSON line.
    func sign(_ type: String = "actor.registered", id eventID: String, _ body: JSONObject) throws -> String {
        let event = try Event(
            id: eventID, type: type, actor: id, key: multikey,
            timestamp: Timestamp.format(millisecondsSince1970: Ledger.systemClockMilliseconds()), body: body)
        return CanonicalJSON.encodeString(SignedEvent(signing: event, with: key).json)
    }

    /// A signed `actor.registered` of `subject` by this actor.
    func register(_ subject: TestActor, role: String, name: String, organisation: String? = nil, eventID: String? = nil) throws -> String {
        try sign(id: eventID ?? "reg-\(subject.id)", registration(subject, role: role, name: name, organisation: organisation))
    }
}

func registration(_ subject: TestActor, role: String, name: String, organisation: String? = nil) -> JSONObject {
    var body: JSONObject = [
        "actor": .string(subject.id), "role": .string(role), "name": .string(name), "keys": [.string(subject.multikey)],
    ]
    if let organisation { body["organisation"] = .string(organisation) }
    return body
}

/// A ledger made by `circuito init` with an authority key written in-process.
struct TestLedger {
    let workspace: Workspace
    let directory: String
    let authority: TestActor
    let verifierKey: String

    init(origin: String = "cli.test/ledger", initArguments: [String] = []) async throws {
        workspace = try Workspace()
        authority = TestActor("authority")
        let keyPath = workspace.path("authority.key")
        try KeyFile.write(authority.key, to: keyPath)
        directory = workspace.path("ledger")
        let result = try await circuito(["init", "--data", directory, "--authority-key", keyPath, "--origin", origin] + initArguments)
        try #require(result.succeeded, "init failed: \(result.stderr)")
        verifierKey = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func remove() { workspace.remove() }

    /// `circuito append --batch 1` with its stdin kept open, once it has appended merchant-1's registration (seq 1):
    /// a writer that holds the ledger until its stdin is closed (it flushes a receipt after each batch).
    func startWriterHoldingTheLedger() async throws -> ChildProcess {
        let writer = try ChildProcess(["append", "--data", directory, "--batch", "1"], keepStdinOpen: true)
        writer.writeToStdin(try authority.register(TestActor("merchant-1"), role: "merchant", name: "One") + "\n")
        try #require(await writer.stdout.waitForLines(1, timeout: 60), "no receipt from the writer")
        return writer
    }

    /// `circuito append --data DIR [--batch N] FILE` with `lines` written to a new file.
    func append(_ lines: [String], batch: Int? = nil) async throws -> CLIResult {
        let file = try workspace.write("events-\(UUID().uuidString).jsonl", lines: lines)
        var arguments = ["append", "--data", directory]
        if let batch { arguments += ["--batch", String(batch)] }
        let result = try await runToCompletion(arguments + [file])
        #expect(!result.timedOut, "append timed out")
        return result
    }

    func root(size: UInt64? = nil) async throws -> TreeHead {
        try await rootOf(directory, size: size)
    }

    func export() async throws -> [String] {
        let result = try await circuito("export", "--data", directory)
        try #require(result.succeeded, "export failed: \(result.stderr)")
        return result.completeLines
    }

    func verify() async throws -> CLIResult { try await circuito("verify", "--data", directory) }
}

/// The address a `serve --listen 127.0.0.1:0` child prints, once it listens.
func listeningEndpoint(of server: ChildProcess) async -> String? {
    let deadline = Date().addingTimeInterval(60)
    while true {
        let text = String(decoding: server.stdout.bytes, as: UTF8.self)
        if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening tcp ") }) {
            return String(line.dropFirst("listening tcp ".count))
        }
        // Looks once more after the deadline: the sleep before this look can outlast it on a loaded machine.
        if !server.process.isRunning || Date() > deadline { return nil }
        try? await Task.sleep(for: .milliseconds(20))
    }
}

/// The signals a process ignores and catches, as `/proc/PID/status` gives them (`SigIgn`, `SigCgt`: bit n - 1 for
/// signal n).
struct SignalDispositions: CustomStringConvertible {
    let ignored: UInt64
    let caught: UInt64

    init(of pid: Int32) throws {
        let lines = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8).split(separator: "\n")
        func mask(_ name: String) throws -> UInt64 {
            let line = try #require(lines.first { $0.hasPrefix(name + ":") }, "no \(name) in /proc/\(pid)/status")
            return try #require(UInt64(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces), radix: 16))
        }
        ignored = try mask("SigIgn")
        caught = try mask("SigCgt")
    }

    func ignores(_ signal: Int32) -> Bool { ignored & (1 << UInt64(signal - 1)) != 0 }
    func catches(_ signal: Int32) -> Bool { caught & (1 << UInt64(signal - 1)) != 0 }
    var description: String { "SigIgn \(String(ignored, radix: 16)), SigCgt \(String(caught, radix: 16))" }
}

/// `circuito proof root` parsed, checking its keys.
struct TreeHead: Equatable {
    let size: UInt64
    let hash: [UInt8]
}

func rootOf(_ directory: String, size: UInt64? = nil) async throws -> TreeHead {
    var arguments = ["proof", "root", "--data", directory]
    if let size { arguments += ["--size", String(size)] }
    let result = try await runToCompletion(arguments)
    try #require(result.succeeded, "proof root failed: \(result.stderr)")
    let json = try JSONParser.parse(result.stdout.trimmingCharacters(in: .newlines))
    #expect(json.objectValue.map { Set($0.keys) } == ["root_hash", "tree_size"])
    let treeSize = try #require(json["tree_size"]?.integerValue)
    let hash = try #require(json["root_hash"]?.stringValue.flatMap(Base64.decode))
    #expect(hash.count == 32)
    return TreeHead(size: UInt64(treeSize), hash: hash)
}

struct PrintedReceipt: Equatable {
    let line: String
    let id: String
    let seq: UInt64
    let leafHash: [UInt8]
    let checkpoint: String

    init(line: String) throws {
        self.line = line
        let json = try JSONParser.parse(line)
        #expect(json.objectValue.map { Set($0.keys) } == ["checkpoint", "id", "leaf_hash", "recorded_at", "seq", "sig"], "not a receipt: \(line)")
        id = try #require(json["id"]?.stringValue, "receipt without id: \(line)")
        seq = UInt64(try #require(json["seq"]?.integerValue, "receipt without seq: \(line)"))
        leafHash = try #require(json["leaf_hash"]?.stringValue.flatMap(Base64.decode), "receipt without leaf_hash: \(line)")
        checkpoint = try #require(json["checkpoint"]?.stringValue, "receipt without checkpoint: \(line)")
    }

    /// The size line (the second) of the checkpoint note.
    var checkpointSize: UInt64? {
        let lines = checkpoint.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.count > 1 ? UInt64(lines[1]) : nil
    }
}

/// A refusal line `{"error":{"code":…,…},"line":N}`: (code, line).
func refusal(_ line: String) throws -> (code: String, line: Int64) {
    let json = try JSONParser.parse(line)
    let code = try #require(json["error"]?["code"]?.stringValue, "not a refusal: \(line)")
    let number = try #require(json["line"]?.integerValue, "refusal without line: \(line)")
    return (code, number)
}

func leafHash(_ line: String) -> [UInt8] { SHA256.hash(parts: [0x00], Array(line.utf8)) }

/// The seq in "verify failed at seq N: …", if any.
func failedSeq(_ stderr: String) -> UInt64? {
    guard let range = stderr.range(of: "verify failed at seq ") else { return nil }
    return UInt64(stderr[range.upperBound...].prefix { $0.isNumber })
}

func fileMode(_ path: String) -> mode_t? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    return status.st_mode & 0o777
}

// MARK: - 1. The whole flow

@Suite("circuito CLI", OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10)))
struct CLITests {
    @Test("verify says, after ok, from which seq records are dated later than the auditor's clock by more than ten minutes (a writer's clock that ran ahead), and nothing for a ledger written on time")
    func verifyNotesRecordsDatedAhead() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let onTime = try await ledger.append([try ledger.authority.register(TestActor("shop-1"), role: "merchant", name: "One")])
        try #require(onTime.succeeded, "\(onTime.stderr)")
        let before = try await ledger.verify()
        #expect(before.succeeded)
        #expect(!before.stderr.contains("note:"), "\(before.stderr)")
        do {
            // A writer whose clock read a year ahead.
            let ahead = Ledger.systemClockMilliseconds() + 366 * 86_400_000
            let writer = try Ledger.open(directory: ledger.directory, clock: { ahead })
            let signed = try SignedEvent(jsonBytes: Array(try ledger.authority.register(TestActor("shop-2"), role: "merchant", name: "Two").utf8))
            _ = try writer.append([try signed.verified()]).map { try $0.get() }
        }
        let after = try await ledger.verify()
        #expect(after.succeeded, "integrity holds: \(after.stderr)")
        #expect(after.stdout.hasPrefix("ok: 3 records"))
        #expect(after.stderr.contains("note: from seq 2 on, records carry a recorded_at"), "\(after.stderr)")
    }

    @Test("verify --verifier-key: the key circuito init printed passes; another ledger's key is integrity_failure, a text that is not a key invalid_key")
    func verifyPinsTheVerifierKey() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let pinned = try await circuito("verify", "--data", ledger.directory, "--verifier-key", ledger.verifierKey)
        #expect(pinned.succeeded && pinned.stdout.hasPrefix("ok: 1 records"), "\(pinned.stdout)\(pinned.stderr)")
        // A ledger of its own, signed throughout with its own checkpoint key, is not the one the auditor was given.
        let other = try await TestLedger()
        defer { other.remove() }
        let wrong = try await circuito("verify", "--data", other.directory, "--verifier-key", ledger.verifierKey)
        #expect(wrong.status == 1 && wrong.stdout.isEmpty, "\(wrong.stdout)")
        #expect(wrong.stderr.contains("verify failed: integrity_failure: the ledger's genesis names checkpoint key \(other.verifierKey), not the given \(ledger.verifierKey)"), "\(wrong.stderr)")
        let notAKey = try await circuito("verify", "--data", ledger.directory, "--verifier-key", "not-a-key")
        #expect(notAKey.status == 1 && notAKey.stderr.hasPrefix("error: invalid_key: \"not-a-key\" is not a note verifier key"), "\(notAKey.stderr)")
    }

    @Test("vault seal keeps itself out of core dumps (core size limit 0, soft and hard) before it reads the data or a key, where a dump would outlive the person's erasure")
    func vaultSealStaysOutOfCoreDumps() async throws {
        let binary = try #require(CLI.binary)
        let workspace = try Workspace()
        defer { workspace.remove() }
        // Started with a core limit, reading its data from a pipe left open: while it waits there, its limits are read.
        let script = """
            ulimit -c 1024 || exit 7
            mkfifo "$1/in"
            "$0" vault seal --vault "$1/vault" --beneficiary ben-1 < "$1/in" > "$1/sealed" &
            command=$!
            exec 3> "$1/in"
            waited=0
            while [ $waited -lt 100 ] && ! grep -Eq '^Max core file size +0 +0 ' /proc/$command/limits; do sleep 0.1; waited=$((waited + 1)); done
            grep '^Max core file size' /proc/$command/limits
            echo '{"note":"colloquio"}' >&3
            exec 3>&-
            wait $command
            """
        let run = try await runToCompletion(["-c", script, binary, workspace.root], executable: "/bin/sh", timeout: 60)
        #expect(run.exitedNormally && run.status == 0, "\(run.status): \(run.stderr)")
        let limit = run.stdout.split(separator: " ", omittingEmptySubsequences: true)
        #expect(limit.count >= 7 && limit[4] == "0" && limit[5] == "0", "\(run.stdout)")
        // It sealed all the same.
        let sealed = try String(contentsOfFile: workspace.path("sealed"), encoding: .utf8)
        #expect(try JSONParser.parse(Array(sealed.utf8.dropLast()))["alg"] == "xchacha20poly1305", "\(sealed)")
    }

    /// Runs `serve` on `ledger` in the background of a shell started with a core size limit (and `prefix`, which runs
    /// it: a capability bound), and, once it prints its verifier key, `client submit` with a signing key reading a
    /// pipe left open; prints each one's core size limit and the server's locked memory (/proc), then stops both.
    private func serveAndSubmitLimits(_ ledger: TestLedger, serveOptions: String, prefix: String = "") async throws -> CLIResult {
        let binary = try #require(CLI.binary)
        if access(ledger.workspace.path("op.key"), F_OK) != 0 { try KeyFile.write(TestActor("op").key, to: ledger.workspace.path("op.key")) }
        let script = """
            ulimit -c 1024 || exit 7
            folder="$2"
            # A second run in the same folder would otherwise find the last run's verifier-key line before the server
            # started in the background has truncated the file (under load that child opens it late), take that for
            # this server's, and find no endpoint in the file emptied meanwhile. Until the server creates them, the
            # files are missing, which grep -s takes quietly for no line yet.
            rm -f "$folder/serve.out" "$folder/serve.err"
            \(prefix) "$0" serve --data "$1" --listen 127.0.0.1:0 \(serveOptions) > "$folder/serve.out" 2> "$folder/serve.err" &
            server=$!
            trap 'kill $server 2> /dev/null' EXIT
            waited=0
            while [ $waited -lt 600 ] && kill -0 $server 2> /dev/null && ! grep -qs '^verifier-key' "$folder/serve.out"; do
                sleep 0.1; waited=$((waited + 1))
            done
            endpoint=$(sed -n 's/^listening tcp //p' "$folder/serve.out")
            if [ -z "$endpoint" ]; then
                # Not listening: what the server said, and how it ended if it did, for the test's message.
                kill -0 $server 2> /dev/null && echo "serve still running after $waited tenths of a second" >&2
                kill -0 $server 2> /dev/null || { wait $server; echo "serve ended with status $?" >&2; }
                cat "$folder/serve.out" "$folder/serve.err" >&2
                exit 8
            fi
            echo "serve $(grep '^Max core file size' /proc/$server/limits)"
            echo "serve $(grep '^VmLck' /proc/$server/status)"
            rm -f "$folder/events"
            mkfifo "$folder/events"
            "$0" client submit --server "$endpoint" --key "$folder/op.key" --actor op < "$folder/events" > /dev/null &
            submit=$!
            exec 3> "$folder/events"
            waited=0
            while [ $waited -lt 100 ] && ! grep -Eq '^Max core file size +0 +0 ' /proc/$submit/limits; do sleep 0.1; waited=$((waited + 1)); done
            echo "submit $(grep '^Max core file size' /proc/$submit/limits)"
            exec 3>&-
            wait $submit
            waited=0
            while [ -n "\(prefix)" ] && [ $waited -lt 100 ] && ! grep -qs 'serve: note' "$folder/serve.err"; do sleep 0.1; waited=$((waited + 1)); done
            kill -TERM $server
            wait $server
            cat "$folder/serve.err" >&2
            """
        return try await runToCompletion(["-c", script, binary, ledger.directory, ledger.workspace.root], executable: "/bin/sh", timeout: 120)
    }

    /// The core size limit's soft and hard values from a `Max core file size` line of /proc/PID/limits.
    private func coreLimit(_ output: String, of command: String) -> [Substring] {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix(command + " Max core file size") }) else { return [] }
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        return fields.count >= 7 ? [fields[5], fields[6]] : []
    }

    /// The server's locked memory in kB, from its `VmLck:` line of /proc/PID/status.
    private func lockedKilobytes(_ output: String) -> Int? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("serve VmLck:") }) else { return nil }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst(2).first.flatMap { Int($0) }
    }

    @Test("serve and client submit keep themselves out of core dumps before they read a key; the server's checkpoint key is locked in memory")
    func keyHoldersStayOutOfCoreDumps() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let run = try await serveAndSubmitLimits(ledger, serveOptions: "")
        #expect(run.exitedNormally && run.status == 0, "\(run.status): \(run.stdout)\(run.stderr)")
        #expect(coreLimit(run.stdout, of: "serve") == ["0", "0"], "\(run.stdout)")
        #expect(coreLimit(run.stdout, of: "submit") == ["0", "0"], "\(run.stdout)")
        // Root may lock memory whatever its limit; others within `ulimit -l`, which one guarded page fits.
        #expect((lockedKilobytes(run.stdout) ?? 0) > 0, "\(run.stdout)")
        #expect(!run.stderr.contains("serve: note"), "\(run.stderr)")
    }

    @Test("serve --allow-core-dumps keeps the core size limit it was started with; a server that may not lock memory says so once and serves")
    func serveMayAllowCoreDumps() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let allowed = try await serveAndSubmitLimits(ledger, serveOptions: "--allow-core-dumps")
        #expect(allowed.exitedNormally && allowed.status == 0, "\(allowed.status): \(allowed.stdout)\(allowed.stderr)")
        let serveLimit = coreLimit(allowed.stdout, of: "serve")
        #expect(serveLimit.count == 2 && serveLimit != ["0", "0"], "\(allowed.stdout)")
        #expect(coreLimit(allowed.stdout, of: "submit") == ["0", "0"], "\(allowed.stdout)")
        // Without CAP_IPC_LOCK (dropped from the bounding set, so the server's exec loses it) and with no locked
        // memory allowed, the lock fails: a note, once, and the server runs on.
        guard geteuid() == 0, access("/usr/bin/setpriv", X_OK) == 0 else { return }
        // A container may not let even root change its bounding set (no CAP_SETPCAP): then this part cannot be set up.
        let dropsCapability = try await runToCompletion(["--bounding-set", "-ipc_lock", "/bin/true"], executable: "/usr/bin/setpriv")
        guard dropsCapability.exitedNormally && dropsCapability.status == 0 else { return }
        let unlocked = try await serveAndSubmitLimits(ledger, serveOptions: "", prefix: "ulimit -l 0; /usr/bin/setpriv --bounding-set -ipc_lock")
        #expect(unlocked.exitedNormally && unlocked.status == 0, "\(unlocked.status): \(unlocked.stdout)\(unlocked.stderr)")
        #expect(coreLimit(unlocked.stdout, of: "serve") == ["0", "0"], "\(unlocked.stdout)")
        #expect(lockedKilobytes(unlocked.stdout) == 0, "\(unlocked.stdout)")
        let notes = unlocked.stderr.components(separatedBy: "serve: note: the signing keys could not be locked in memory").count - 1
        #expect(notes == 1, "\(unlocked.stderr)")
    }

    @Test("vault seal: staff seal a person's data for a referral, which the ledger takes and circuito case opens; the same key seals again, a value too large or not JSON is refused with no key made")
    func vaultSealMakesTheSealedMember() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let vault = ledger.workspace.path("vault")
        let person = #"{"name":"Maria Rossi","tax_code":"RSSMRA80A41L219X"}"#
        let sealed = try await circuito(["vault", "seal", "--vault", vault, "--beneficiary", "ben-1"], stdin: person)
        try #require(sealed.succeeded, "\(sealed.stderr)")
        #expect(fileMode(vault) == 0o700 && fileMode(vault + "/ben-1.key") == 0o600)
        let sealedValue = try JSONParser.parse(sealed.stdout.trimmingCharacters(in: .newlines))
        #expect(!sealed.stdout.contains("Maria"))
        let casa = TestActor("casa"), staff = TestActor("op")
        let appended = try await ledger.append([
            try ledger.authority.register(casa, role: "organisation", name: "Casa"),
            try casa.register(staff, role: "staff", name: "Op", organisation: "casa"),
            try staff.sign("case.referred", id: "refer-1", ["case": "c-1", "beneficiary": "ben-1", "household": "hh-1", "to": "casa", "sealed": sealedValue]),
        ])
        try #require(appended.succeeded && !appended.stdout.contains("error"), "\(appended.stdout)\(appended.stderr)")
        let history = try await circuito("case", "--data", ledger.directory, "--beneficiary", "ben-1", "--vault", vault)
        #expect(history.succeeded && history.stdout.contains(#""sealed":{"name":"Maria Rossi","tax_code":"RSSMRA80A41L219X"}"#), "\(history.stdout)\(history.stderr)")
        // A second value for the same person uses the key the vault holds: both open.
        let note = try await circuito(["vault", "seal", "--vault", vault, "--beneficiary", "ben-1"], stdin: #"{"note":"colloquio"}"#)
        let noteValue = try JSONParser.parse(note.stdout.trimmingCharacters(in: .newlines))
        let key = try #require(try KeyVault(existingDirectory: vault).key(for: "ben-1"))
        #expect(SealedData.open(noteValue, subject: "ben-1", key: key) == ["note": "colloquio"])
        // Refused before any key is made.
        let notJSON = try await circuito(["vault", "seal", "--vault", vault, "--beneficiary", "ben-2"], stdin: "Maria Rossi")
        #expect(notJSON.status == 1 && notJSON.stderr.hasPrefix("error: invalid_json: the data to seal"), "\(notJSON.stderr)")
        let tooLarge = try await circuito(["vault", "seal", "--vault", vault, "--beneficiary", "ben-2"], stdin: "\"" + String(repeating: "x", count: 20_000) + "\"")
        #expect(tooLarge.status == 1 && tooLarge.stderr.hasPrefix("error: too_large: the data to seal is 20002 bytes"), "\(tooLarge.stderr)")
        #expect(access(vault + "/ben-2.key", F_OK) != 0)
    }

    @Test("client case --vault opens the sealed personal data of the page with the vault's key, as circuito case does offline: unavailable without the key, erased on every page once the ledger records the erasure")
    func clientCaseOpensSealedDataWithTheVault() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let vault = ledger.workspace.path("vault")
        let sealed = try await circuito(["vault", "seal", "--vault", vault, "--beneficiary", "ben-1"], stdin: #"{"name":"Maria Rossi"}"#)
        try #require(sealed.succeeded, "\(sealed.stderr)")
        let sealedValue = try JSONParser.parse(sealed.stdout.trimmingCharacters(in: .newlines))
        let hub = TestActor("ciss38"), casa = TestActor("casa"), staff = TestActor("op")
        try KeyFile.write(staff.key, to: ledger.workspace.path("op.key"))
        let appended = try await ledger.append([
            try ledger.authority.register(hub, role: "organisation", name: "Hub"),
            try ledger.authority.register(casa, role: "organisation", name: "Casa"),
            try casa.register(staff, role: "staff", name: "Op", organisation: "casa"),
            try hub.sign("case.referred", id: "refer-1", ["case": "c-1", "beneficiary": "ben-1", "household": "hh-1", "to": "casa", "sealed": sealedValue]),
        ])
        try #require(appended.succeeded && !appended.stdout.contains("error"), "\(appended.stdout)\(appended.stderr)")
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let read = ["client", "case", "--server", endpoint, "--key", ledger.workspace.path("op.key"), "--actor", "op", "--beneficiary", "ben-1"]
        let plain = try await circuito(read)
        #expect(plain.succeeded && plain.stdout.contains(#""ciphertext":"#) && !plain.stdout.contains("Maria"), "\(plain.stdout)\(plain.stderr)")
        let opened = try await circuito(read + ["--vault", vault])
        #expect(opened.succeeded && opened.stdout.contains(#""sealed":{"name":"Maria Rossi"}"#), "\(opened.stdout)\(opened.stderr)")
        let otherVault = ledger.workspace.path("other-vault")
        try FileManager.default.createDirectory(atPath: otherVault, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        let withoutKey = try await circuito(read + ["--vault", otherVault])
        #expect(withoutKey.succeeded && withoutKey.stdout.contains(#""sealed":"unavailable""#), "\(withoutKey.stdout)\(withoutKey.stderr)")
        let missing = try await circuito(read + ["--vault", ledger.workspace.path("no-vault")])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("error: not_found: there is no key vault"), "\(missing.stderr)")
        let erasure = try await circuito(
            ["client", "submit", "--server", endpoint, "--key", ledger.workspace.path("op.key"), "--actor", "op"],
            stdin: #"{"type":"subject.erased","body":{"beneficiary":"ben-1","case":"c-1"}}"#)
        try #require(erasure.succeeded, "\(erasure.stdout)\(erasure.stderr)")
        let erased = try await circuito(read + ["--vault", vault])
        #expect(erased.succeeded && erased.stdout.contains(#""sealed":"erased""#) && !erased.stdout.contains("Maria"), "\(erased.stdout)\(erased.stderr)")
        // A page before the erasure's record: the person is erased all the same, and the key left in the vault is named.
        let firstPage = try await circuito(read + ["--vault", vault, "--limit", "1"])
        #expect(firstPage.succeeded && firstPage.stdout.contains(#""erased":true"#), "\(firstPage.stdout)\(firstPage.stderr)")
        #expect(firstPage.stdout.contains(#""sealed":"erased""#) && !firstPage.stdout.contains("Maria"), "\(firstPage.stdout)\(firstPage.stderr)")
        #expect(firstPage.stderr.contains("still holds its key") && firstPage.stderr.contains("circuito vault erase --vault \(vault) --beneficiary ben-1"), "\(firstPage.stderr)")
    }

    @Test("client settlement asks settlement.get as the signer: an unknown id is not_found, an unsigned ask a usage error of its own")
    func clientSettlement() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let unknown = try await circuito(
            "client", "settlement", "--server", endpoint, "--key", ledger.workspace.path("authority.key"), "--actor", "authority", "--id", "settle-none")
        #expect(unknown.status == 1 && unknown.stderr == "error: not_found: there is no settlement \"settle-none\"\n", "\(unknown.stderr)")
        let unsigned = try await circuito("client", "settlement", "--server", endpoint, "--id", "settle-none")
        #expect(unsigned.status == 1 && unsigned.stderr.hasPrefix("error: invalid_read_request: settlement.get is a signed read"), "\(unsigned.stderr)")
    }

    @Test("client cases: a Casa's operator lists the referrals waiting to be taken in charge, signed as itself; another organisation's is refused")
    func clientCasesListsTheReferralsMadeToTheCasa() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let hub = TestActor("ciss38"), casa = TestActor("casa"), staff = TestActor("op")
        try KeyFile.write(staff.key, to: ledger.workspace.path("op.key"))
        try KeyFile.write(hub.key, to: ledger.workspace.path("hub.key"))
        let sealed = SealedData.seal(["name": "Maria Rossi"], subject: "ben-1", key: SecretBox.newKey())
        let appended = try await ledger.append([
            try ledger.authority.register(hub, role: "organisation", name: "Hub"),
            try ledger.authority.register(casa, role: "organisation", name: "Casa"),
            try casa.register(staff, role: "staff", name: "Op", organisation: "casa"),
            try hub.sign("case.referred", id: "refer-1", ["case": "c-1", "beneficiary": "ben-1", "household": "hh-1", "to": "casa", "sealed": sealed]),
        ])
        try #require(appended.succeeded && !appended.stdout.contains("error"), "\(appended.stdout)\(appended.stderr)")
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let waiting = try await circuito(
            "client", "cases", "--server", endpoint, "--key", ledger.workspace.path("op.key"), "--actor", "op", "--holder", "casa", "--status", "referred")
        #expect(waiting.succeeded && waiting.stdout.hasPrefix(#"{"cases":[{"beneficiary":"ben-1","case":"c-1","erased":false,"holder":"casa","household":"hh-1","referred_at":4,"referred_by":"ciss38","status":"referred"}]"#), "\(waiting.stdout)\(waiting.stderr)")
        let refused = try await circuito(
            "client", "cases", "--server", endpoint, "--key", ledger.workspace.path("hub.key"), "--actor", "ciss38", "--holder", "casa")
        #expect(refused.status == 1 && refused.stderr == "error: not_authorised: organisation \"ciss38\" may not read the cases held by casa\n", "\(refused.stderr)")
    }

    /// A hub (ciss38, with its operator hub-op) that referred ben-1 and ben-2 to a Casa (casa, with its operator op)
    /// and sealed with its own vault, which also holds the key of ben-9, whom it never referred; the Casa erased
    /// ben-1, the authority ben-9. Served; the caller kills the server and removes the ledger.
    struct HubReferrals {
        let ledger: TestLedger
        let server: ChildProcess
        let endpoint: String
        let vault: String

        init() async throws {
            ledger = try await TestLedger()
            let hub = TestActor("ciss38"), hubStaff = TestActor("hub-op"), casa = TestActor("casa"), staff = TestActor("op")
            for (actor, file) in [(hub, "hub.key"), (hubStaff, "hub-op.key"), (staff, "op.key")] { try KeyFile.write(actor.key, to: ledger.workspace.path(file)) }
            vault = ledger.workspace.path("hub-vault")
            let hubVault = try KeyVault(directory: vault)
            var sealed: [String: JSONValue] = [:]
            for person in ["ben-1", "ben-2", "ben-9"] {
                sealed[person] = SealedData.seal(["name": "…"], subject: person, key: try hubVault.createKey(for: person))
            }
            let appended = try await ledger.append([
                try ledger.authority.register(hub, role: "organisation", name: "Hub"),
                try ledger.authority.register(casa, role: "organisation", name: "Casa"),
                try casa.register(staff, role: "staff", name: "Op", organisation: "casa"),
                try hub.register(hubStaff, role: "staff", name: "Hub op", organisation: "ciss38"),
                try hubStaff.sign("case.referred", id: "refer-1", ["case": "c-1", "beneficiary": "ben-1", "household": "hh-1", "to": "casa", "sealed": sealed["ben-1"] ?? .null]),
                try hubStaff.sign("case.referred", id: "refer-2", ["case": "c-2", "beneficiary": "ben-2", "household": "hh-2", "to": "casa", "sealed": sealed["ben-2"] ?? .null]),
                try staff.sign("subject.erased", id: "erase-1", ["beneficiary": "ben-1", "case": "c-1"]),
                try ledger.authority.sign("subject.erased", id: "erase-9", ["beneficiary": "ben-9"]),
            ])
            try #require(appended.succeeded && !appended.stdout.contains("error"), "\(appended.stdout)\(appended.stderr)")
            server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
            let endpoint = await listeningEndpoint(of: server)
            if endpoint == nil { kill(server.pid, SIGKILL) }
            self.endpoint = try #require(endpoint, "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        }

        func key(_ name: String) -> String { ledger.workspace.path(name) }

        func stop() {
            kill(server.pid, SIGKILL)
            ledger.remove()
        }
    }

    @Test("client cases --referred-by: a hub's operator follows its referrals, taken in charge or not, and sees a person erased; the Casa's operator may not read them")
    func hubFollowsItsReferrals() async throws {
        let hub = try await HubReferrals()
        defer { hub.stop() }
        let referrals = try await circuito("client", "cases", "--server", hub.endpoint, "--key", hub.key("hub-op.key"), "--actor", "hub-op", "--referred-by", "ciss38")
        #expect(referrals.succeeded && referrals.stdout == #"{"cases":[{"beneficiary":"ben-1","case":"c-1","erased":true,"holder":"casa","household":"hh-1","referred_at":5,"referred_by":"ciss38","status":"referred"},{"beneficiary":"ben-2","case":"c-2","erased":false,"holder":"casa","household":"hh-2","referred_at":6,"referred_by":"ciss38","status":"referred"}],"next_after":null,"referred_by":"ciss38"}"# + "\n", "\(referrals.stdout)\(referrals.stderr)")
        let refused = try await circuito("client", "cases", "--server", hub.endpoint, "--key", hub.key("op.key"), "--actor", "op", "--referred-by", "ciss38")
        #expect(refused.status == 1 && refused.stderr == "error: not_authorised: staff \"op\" may not read the cases referred by ciss38\n", "\(refused.stderr)")
        let both = try await circuito("client", "cases", "--server", hub.endpoint, "--key", hub.key("op.key"), "--actor", "op", "--holder", "casa", "--referred-by", "ciss38")
        #expect(both.status == 64 && both.stderr.contains("give either --holder or --referred-by"), "\(both.stderr)")
    }

    @Test("vault erase --server: a hub erases its copy of the key of each person it referred whom the server says is erased, and of nobody else; another organisation's staff makes it erase nothing")
    func hubErasesItsCopiesFromWhatTheServerSays() async throws {
        let hub = try await HubReferrals()
        defer { hub.stop() }
        let hubVault = try KeyVault(existingDirectory: hub.vault)
        let erase = ["vault", "erase", "--vault", hub.vault, "--server", hub.endpoint]
        // Read as the Casa's operator: refused, every key stays.
        let notHers = try await circuito(erase + ["--key", hub.key("op.key"), "--actor", "op", "--referred-by", "ciss38"])
        #expect(notHers.status == 1 && notHers.stderr.hasPrefix("error: not_authorised:") && notHers.stdout.isEmpty, "\(notHers.stderr)")
        #expect(try hubVault.subjects() == ["ben-1", "ben-2", "ben-9"])
        // The hub's operator: the key of the person it referred whom the Casa erased, and no other.
        let erased = try await circuito(erase + ["--key", hub.key("hub-op.key"), "--actor", "hub-op", "--referred-by", "ciss38"])
        #expect(erased.succeeded && erased.stdout == "erased: ben-1\n", "\(erased.stdout)\(erased.stderr)")
        #expect(erased.stderr.contains("1 of the 3 keys in \(hub.vault)") && erased.stderr.contains("among the 2 cases ciss38 referred"), "\(erased.stderr)")
        #expect(try hubVault.subjects() == ["ben-2", "ben-9"])
        let again = try await circuito(erase + ["--key", hub.key("hub-op.key"), "--actor", "hub-op", "--referred-by", "ciss38"])
        #expect(again.succeeded && again.stdout.isEmpty, "\(again.stdout)\(again.stderr)")
        // The second person erased later, through the server; the hub signing as itself reads its own referrals
        // (--referred-by defaults to --actor).
        let erasure = try await circuito(
            ["client", "submit", "--server", hub.endpoint, "--key", hub.key("op.key"), "--actor", "op"],
            stdin: #"{"type":"subject.erased","body":{"beneficiary":"ben-2","case":"c-2"}}"#)
        try #require(erasure.succeeded, "\(erasure.stdout)\(erasure.stderr)")
        let asHub = try await circuito(erase + ["--key", hub.key("hub.key"), "--actor", "ciss38"])
        #expect(asHub.succeeded && asHub.stdout == "erased: ben-2\n", "\(asHub.stdout)\(asHub.stderr)")
        // ben-9 is erased too, but the hub never referred them: the server tells the hub nothing of them, and their
        // key stays (whoever handed it to the hub tells it, Specs/events.md 5.6).
        #expect(try hubVault.subjects() == ["ben-9"])
        for arguments in [
            ["--server", hub.endpoint], ["--server", hub.endpoint, "--key", hub.key("hub.key")], ["--data", hub.ledger.directory, "--actor", "ciss38"],
            ["--data", hub.ledger.directory, "--server", hub.endpoint, "--key", hub.key("hub.key"), "--actor", "ciss38"],
        ] {
            let usage = try await circuito(["vault", "erase", "--vault", hub.vault] + arguments)
            #expect(usage.status == 64, "\(arguments): \(usage.stderr)")
        }
    }

    @Test("vault erase --server --holder: the Casa erases its copy of the key of each person it holds a case of whom the server says is erased, also once it has closed the case; the hub's operator may not read the Casa's list; --holder with --referred-by is a usage error")
    func casaErasesItsCopiesOfTheCasesItHolds() async throws {
        let hub = try await HubReferrals()
        defer { hub.stop() }
        // The Casa's own vault, with its copies of the keys handed on with the referrals (and one of someone else).
        let casaVaultDirectory = hub.ledger.workspace.path("casa-vault")
        let casaVault = try KeyVault(directory: casaVaultDirectory)
        for person in ["ben-1", "ben-2", "ben-9"] { _ = try casaVault.createKey(for: person) }
        let erase = ["vault", "erase", "--vault", casaVaultDirectory, "--server", hub.endpoint]
        let notTheirs = try await circuito(erase + ["--key", hub.key("hub-op.key"), "--actor", "hub-op", "--holder", "casa"])
        #expect(notTheirs.status == 1 && notTheirs.stderr.hasPrefix("error: not_authorised:") && notTheirs.stdout.isEmpty, "\(notTheirs.stderr)")
        #expect(try casaVault.subjects() == ["ben-1", "ben-2", "ben-9"])
        let both = try await circuito(erase + ["--key", hub.key("op.key"), "--actor", "op", "--holder", "casa", "--referred-by", "ciss38"])
        #expect(both.status == 64 && both.stderr.contains("give either --holder or --referred-by"), "\(both.stderr)")
        let withoutServer = try await circuito(["vault", "erase", "--vault", casaVaultDirectory, "--data", hub.ledger.directory, "--holder", "casa"])
        #expect(withoutServer.status == 64 && withoutServer.stderr.contains("go with --server"), "\(withoutServer.stderr)")
        #expect(try casaVault.subjects() == ["ben-1", "ben-2", "ben-9"])
        // The Casa's operator: ben-1, whom the Casa erased; not ben-2 (not erased) nor ben-9 (no case of the Casa).
        let erased = try await circuito(erase + ["--key", hub.key("op.key"), "--actor", "op", "--holder", "casa"])
        #expect(erased.succeeded && erased.stdout == "erased: ben-1\n", "\(erased.stdout)\(erased.stderr)")
        #expect(erased.stderr.contains("1 of the 3 keys in \(casaVaultDirectory)") && erased.stderr.contains("among the 2 cases casa holds"), "\(erased.stderr)")
        #expect(try casaVault.subjects() == ["ben-2", "ben-9"])
        // ben-2's case taken in charge and closed, then the person erased by the authority: the Casa, which no longer
        // reads that case's history, still learns it from the list of the cases it holds.
        for event in [
            #"{"type":"case.opened","body":{"case":"c-2"}}"#, #"{"type":"case.closed","body":{"case":"c-2","outcome":"withdrawn"}}"#,
        ] {
            let submitted = try await circuito(["client", "submit", "--server", hub.endpoint, "--key", hub.key("op.key"), "--actor", "op"], stdin: event)
            try #require(submitted.succeeded, "\(submitted.stdout)\(submitted.stderr)")
        }
        let erasure = try await circuito(
            ["client", "submit", "--server", hub.endpoint, "--key", hub.ledger.workspace.path("authority.key"), "--actor", "authority"],
            stdin: #"{"type":"subject.erased","body":{"beneficiary":"ben-2"}}"#)
        try #require(erasure.succeeded, "\(erasure.stdout)\(erasure.stderr)")
        let later = try await circuito(erase + ["--key", hub.key("op.key"), "--actor", "op", "--holder", "casa"])
        #expect(later.succeeded && later.stdout == "erased: ben-2\n", "\(later.stdout)\(later.stderr)")
        #expect(try casaVault.subjects() == ["ben-9"])
    }

    @Test("vault erase --server reads page after page, from each page's next_after, and stops with integrity_failure at a cursor that does not move on, keeping what it erased")
    func vaultEraseServerPagesAndRefusesACursorThatDoesNotMoveOn() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        try KeyFile.write(Ed25519PrivateKey(), to: workspace.path("hub.key"))
        let vault = workspace.path("vault")
        let hubVault = try KeyVault(directory: vault)
        for person in ["ben-1", "ben-2", "ben-3"] { _ = try hubVault.createKey(for: person) }
        // Three pages: ben-1 erased, then ben-2 erased and ben-3 not, then a next_after that goes back.
        let pages: [(cases: [JSONValue], next: JSONValue)] = [
            ([["beneficiary": "ben-1", "case": "c-1", "erased": true]], "c-1"),
            ([["beneficiary": "ben-2", "case": "c-2", "erased": true], ["beneficiary": "ben-3", "case": "c-3", "erased": false]], "c-3"),
            ([], "c-2"),
        ]
        let asked = Mutex<[JSONValue]>([])
        let (listener, port) = try ClientSubmitLostAnswerTests.serveOneConnection { readRequest, write in
            for page in pages {
                guard let request = readRequest() else { return }
                asked.withLock { $0.append(request["params"]?["request"]?["params"] ?? .null) }
                write(["jsonrpc": "2.0", "id": request["id"] ?? .null, "result": ["cases": .array(page.cases), "next_after": page.next, "referred_by": "ciss38"]])
            }
        }
        defer { close(listener) }
        let run = try await circuito("vault", "erase", "--vault", vault, "--server", "127.0.0.1:\(port)", "--key", workspace.path("hub.key"), "--actor", "ciss38")
        #expect(run.status == 1 && run.stdout == "erased: ben-1\nerased: ben-2\n", "\(run.stdout)\(run.stderr)")
        #expect(run.stderr == "error: integrity_failure: the server's case.list next_after \"c-2\" does not come after \"c-3\"\n", "\(run.stderr)")
        #expect(try hubVault.subjects() == ["ben-3"])
        #expect(asked.withLock { $0 } == [
            ["limit": 500, "referred_by": "ciss38"], ["after": "c-1", "limit": 500, "referred_by": "ciss38"],
            ["after": "c-3", "limit": 500, "referred_by": "ciss38"],
        ])
    }

    @Test("vault erase --server --timeout: a server that leaves a page unanswered stops the run with connection_failed once the timeout passes, keeping what it erased; --timeout is from 1 to 86400 and only with --server")
    func vaultEraseServerTimeout() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        try KeyFile.write(Ed25519PrivateKey(), to: workspace.path("hub.key"))
        let vault = workspace.path("vault")
        let hubVault = try KeyVault(directory: vault)
        for person in ["ben-1", "ben-2"] { _ = try hubVault.createKey(for: person) }
        // The first page, then silence: the second request is read and never answered, the connection kept open.
        let (listener, port) = try ClientSubmitLostAnswerTests.serveOneConnection { readRequest, write in
            guard let request = readRequest() else { return }
            write(["jsonrpc": "2.0", "id": request["id"] ?? .null, "result": ["cases": [["beneficiary": "ben-1", "case": "c-1", "erased": true]], "next_after": "c-1", "referred_by": "ciss38"]])
            _ = readRequest()
        }
        defer { close(listener) }
        let run = try await circuito("vault", "erase", "--vault", vault, "--server", "127.0.0.1:\(port)", "--key", workspace.path("hub.key"), "--actor", "ciss38", "--timeout", "1")
        #expect(run.status == 1 && run.stdout == "erased: ben-1\n", "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.hasPrefix("error: connection_failed: "), "\(run.stderr)")
        #expect(try hubVault.subjects() == ["ben-2"])
        let server = ["--server", "127.0.0.1:\(port)", "--key", workspace.path("hub.key"), "--actor", "ciss38"]
        for arguments in [server + ["--timeout", "0"], server + ["--timeout", "86401"], server + ["--timeout", "-1"], ["--beneficiary", "ben-2", "--timeout", "5"]] {
            let usage = try await circuito(["vault", "erase", "--vault", vault] + arguments)
            #expect(usage.status == 64 && usage.stderr.contains("--timeout"), "\(arguments): \(usage.stderr)")
        }
        #expect(try hubVault.subjects() == ["ben-2"])
        let help = try await circuito("vault", "erase", "--help")
        #expect(help.stdout.contains("--timeout <timeout>"), "\(help.stdout)")
    }

    @Test("client expired-lots --as-events gives the authority a tocoin.expired per expired lot, which client submit signs and sends; the lot collected, none is left")
    func clientExpiredLotsFeedsTheCollection() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let casa = TestActor("casa"), person = TestActor("ben-1")
        let authorityKey = ledger.workspace.path("authority.key")
        let appended = try await ledger.append([
            try ledger.authority.register(casa, role: "organisation", name: "Casa"),
            try casa.register(person, role: "beneficiary", name: "ben-1", organisation: "casa"),
            try ledger.authority.sign("policy.updated", id: "policy-1", [
                "categories": ["food"], "conversion_rate_cents_per_credit": 100, "lot_validity_days": 1, "monthly_conversion_cap_cents": 8000,
            ]),
            try ledger.authority.sign("program.funded", id: "fund-1", ["amount": 100_000, "reference": "Delibera 1"]),
            try casa.sign("dote.granted", id: "dote-1", ["beneficiary": "ben-1", "category": "food", "amount": 2500]),
        ])
        try #require(appended.succeeded && !appended.stdout.contains("error"), "\(appended.stdout)\(appended.stderr)")
        do {
            // A record written while the clock ran two days ahead: the ledger's time is past the dote's day.
            let ahead = Ledger.systemClockMilliseconds() + 2 * 86_400_000
            let writer = try Ledger.open(directory: ledger.directory, clock: { ahead })
            let signed = try SignedEvent(jsonBytes: Array(try ledger.authority.register(TestActor("shop-1"), role: "merchant", name: "One").utf8))
            _ = try writer.append([try signed.verified()]).map { try $0.get() }
        }
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0", "--accept-clock-behind"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let list = ["client", "expired-lots", "--server", endpoint, "--key", authorityKey, "--actor", "authority"]
        let events = try await circuito(list + ["--as-events"])
        #expect(events.succeeded && events.stdout == #"{"body":{"beneficiary":"ben-1","lot":5},"type":"tocoin.expired"}"# + "\n", "\(events.stdout)\(events.stderr)")
        let collected = try await circuito(["client", "submit", "--server", endpoint, "--key", authorityKey, "--actor", "authority"], stdin: events.stdout)
        #expect(collected.succeeded && collected.stdout.contains(#""seq":7"#), "\(collected.stdout)\(collected.stderr)")
        let left = try await circuito(list)
        #expect(left.succeeded && left.stdout.contains(#""lots":[],"next_after":null"#), "\(left.stdout)\(left.stderr)")
        let refused = try await circuito(
            ["client", "expired-lots", "--server", endpoint, "--key", authorityKey, "--actor", "authority", "--after", "ben-1"])
        #expect(refused.status == 1 && refused.stderr.hasPrefix("error: invalid_params: lots.expired parameter \"after\" must be"), "\(refused.stderr)")
    }

    @Test("client policy prints the policy in force, unsigned; before the first policy.updated it is not_found")
    func clientPolicy() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let none = try await circuito("client", "policy", "--server", endpoint)
        #expect(none.status == 1 && none.stderr == "error: not_found: the authority has recorded no policy.updated yet\n", "\(none.stderr)")
        let policy = #"{"type":"policy.updated","body":{"categories":["rent","eye_care","dental_care"],"conversion_rate_cents_per_credit":100,"lot_validity_days":30,"monthly_conversion_cap_cents":8000}}"#
        let submitted = try await circuito(
            ["client", "submit", "--server", endpoint, "--key", ledger.workspace.path("authority.key"), "--actor", "authority"], stdin: policy)
        try #require(submitted.succeeded, "\(submitted.stdout)\(submitted.stderr)")
        let printed = try await circuito("client", "policy", "--server", endpoint)
        #expect(
            printed.succeeded
                && printed.stdout == #"{"policy":{"categories":["rent","eye_care","dental_care"],"conversion_rate_cents_per_credit":100,"lot_validity_days":30,"monthly_conversion_cap_cents":8000,"since":1}}"# + "\n",
            "\(printed.stdout)\(printed.stderr)")
    }

    @Test("init without --origin gives each ledger an origin of its own: payment authorisations name their ledger by it")
    func defaultOriginsDiffer() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let authority = TestActor("authority")
        try KeyFile.write(authority.key, to: workspace.path("authority.key"))
        var origins: [String] = []
        for name in ["first", "second"] {
            let made = try await circuito("init", "--data", workspace.path(name), "--authority-key", workspace.path("authority.key"))
            try #require(made.succeeded, "\(made.stderr)")
            // The verifier key text is ORIGIN+KEYID+BASE64.
            origins.append(String(made.stdout.split(separator: "+").first ?? ""))
        }
        #expect(origins.allSatisfy { $0.hasPrefix("circuito.local/ledger-") && $0.utf8.count == "circuito.local/ledger-".utf8.count + 16 }, "\(origins)")
        #expect(origins[0] != origins[1], "two ledgers made with the defaults share the origin \(origins[0])")
    }

    @Test("case: an id registered with another role is not_found, even with a case recorded before it was registered")
    func caseOfAnIdRegisteredWithAnotherRole() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let casa = TestActor("casa"), staff = TestActor("op"), later = TestActor("x")
        let sealed = SealedData.seal(["name": "x"], subject: "x", key: SecretBox.newKey())
        let result = try await ledger.append([
            try ledger.authority.register(casa, role: "organisation", name: "Casa"),
            try casa.register(staff, role: "staff", name: "Op", organisation: "casa"),
            try staff.sign("case.referred", id: "refer-x", ["case": "c-x", "beneficiary": "x", "household": "hh-1", "to": "casa", "sealed": sealed]),
            try ledger.authority.register(later, role: "staff", name: "X", organisation: "casa"),
        ])
        try #require(result.succeeded && !result.stdout.contains("error"), "\(result.stdout)\(result.stderr)")
        let read = try await circuito("case", "--data", ledger.directory, "--beneficiary", "x")
        #expect(read.status == 1 && read.stdout.isEmpty, "\(read.stdout)")
        #expect(read.stderr.contains("error: not_found: the ledger knows no beneficiary \"x\": that id is registered as staff"), "\(read.stderr)")
    }

    @Test("output that cannot be written (a full disk) ends the command with storage_error and exit 1, never a quiet 0")
    func outputThatCannotBeWrittenFails() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let binary = try #require(CLI.binary)
        // /dev/full refuses every write with ENOSPC, as a full disk does. C's stdout fully buffered (a file), and
        // line-buffered and unbuffered (as `stdbuf` sets it: scripts/test.sh runs the suite so), where a line is
        // written, and refused, before the command ends.
        for buffering in ["", "stdbuf -oL ", "stdbuf -o0 "] {
            for command in ["export", "verify", "checkpoint --all"] {
                let line = "\(buffering)\"$0\" \(command) --data \"$1\" > /dev/full"
                let result = try await runToCompletion(["-c", line, binary, ledger.directory], executable: "/bin/sh")
                #expect(result.exitedNormally && result.status == 1, "\(line): \(result.status)")
                #expect(result.stderr.hasPrefix("error: storage_error: cannot write the output: "), "\(line): \(result.stderr)")
                #expect(result.stderr.hasSuffix("; what it printed is incomplete\n"), "\(line): \(result.stderr)")
            }
        }
        // Written where it can be, the same commands succeed.
        await #expect(try circuito("export", "--data", ledger.directory).succeeded)
    }

    @Test("a command started with standard output or input closed fails with Bad file descriptor and writes nothing into, nor reads from, the files it opened in their place")
    func closedStandardDescriptorsAreNotReused() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let binary = try #require(CLI.binary)
        // More than the 64 KiB the output is buffered in, so that the export writes while the ledger is open.
        let merchants = try (0..<200).map { try ledger.authority.register(TestActor("merchant-\($0)"), role: "merchant", name: "M\($0)") }
        try #require(try await ledger.append(merchants).succeeded)
        let exported = try await circuito("export", "--data", ledger.directory)
        try #require(exported.succeeded && exported.stdout.utf8.count > 64 * 1024, "\(exported.stderr)")
        func ledgerFiles() throws -> [String: [UInt8]] {
            var files: [String: [UInt8]] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: ledger.directory) {
                files[name] = Array(try #require(FileManager.default.contents(atPath: ledger.directory + "/" + name)))
            }
            return files
        }
        // A closed descriptor is the lowest free one, so the first file the command opened took it: the export was
        // written into lock.mdb, after its reader table, and the receipts of an append into writer.lock.
        let before = try ledgerFiles()
        let export = try await runToCompletion(
            ["-c", "exec \"$0\" export --data \"$1\" >&-", binary, ledger.directory], executable: "/bin/sh")
        #expect(export.exitedNormally && export.status == 1, "\(export.status): \(export.stderr)")
        #expect(export.stderr == "error: storage_error: cannot write the output: Bad file descriptor; what it printed is incomplete\n", "\(export.stderr)")
        let afterExport = try ledgerFiles()
        #expect(afterExport.keys.sorted() == before.keys.sorted())
        for (name, bytes) in afterExport {
            #expect(bytes.count == before[name]?.count, "\(name): \(before[name]?.count ?? -1) bytes, then \(bytes.count)")
        }

        // Read from standard input, so that the writer lock is the first file the append opens.
        let events = try ledger.workspace.write("events.jsonl", lines: [try ledger.authority.register(TestActor("one-more"), role: "merchant", name: "One")])
        let append = try await runToCompletion(
            ["-c", "exec \"$0\" append --data \"$1\" < \"$2\" >&-", binary, ledger.directory, events], executable: "/bin/sh")
        // The event is appended; its receipt is lost, which the exit status says.
        #expect(append.exitedNormally && append.status == 1, "\(append.status): \(append.stderr)")
        #expect(append.stderr.contains("cannot write the output: Bad file descriptor"), "\(append.stderr)")
        let afterAppend = try ledgerFiles()
        for name in ["writer.lock", "lock.mdb"] {
            #expect(afterAppend[name]?.count == before[name]?.count, "\(name): \(before[name]?.count ?? -1) bytes, then \(afterAppend[name]?.count ?? -1)")
        }
        let exportedAfterAppend = try await circuito("export", "--data", ledger.directory)
        #expect(exportedAfterAppend.stdout.split(separator: "\n").count == exported.stdout.split(separator: "\n").count + 1)

        // With its input closed, append read its events from writer.lock (the receipt the append above wrote there).
        let noInput = try await runToCompletion(
            ["-c", "exec \"$0\" append --data \"$1\" <&-", binary, ledger.directory], executable: "/bin/sh")
        #expect(noInput.exitedNormally && noInput.status == 1, "\(noInput.status): \(noInput.stderr)")
        #expect(noInput.stderr.contains("cannot read input: Bad file descriptor"), "\(noInput.stderr)")
        #expect(noInput.stdout.isEmpty, "\(noInput.stdout)")

        // A file that cannot be read is named (a folder given for the events' file), and nothing is appended.
        let folder = ledger.workspace.path("a-folder")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let fromFolder = try await circuito("append", "--data", ledger.directory, folder)
        #expect(fromFolder.status == 1 && fromFolder.stderr == "error: storage_error: cannot read \(folder): Is a directory\n", "\(fromFolder.stderr)")
        #expect(try await circuito("export", "--data", ledger.directory).stdout == exportedAfterAppend.stdout)
    }

    @Test("serve stops on SIGHUP (its terminal closed) as on SIGTERM, cleanly, where it died at once; started with SIGHUP ignored, as by nohup, it leaves it so and a hangup does not stop it")
    func serveStopsCleanlyOnHangup() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let binary = try #require(CLI.binary)
        let server = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"], unblockedSignals: true)
        _ = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        kill(server.pid, SIGHUP)
        let stopped = await server.wait(timeout: 60)
        #expect(stopped.succeeded, "status \(stopped.status), signalled \(stopped.signaled): \(stopped.stderr)")
        #expect(stopped.stderr.contains("stopped: \(ledger.directory) closed cleanly"), "\(stopped.stderr)")

        let underNohup = try ChildProcess(
            ["-c", "trap '' HUP; exec \"$0\" serve --data \"$1\" --listen 127.0.0.1:0", binary, ledger.directory], executable: "/bin/sh",
            unblockedSignals: true)
        defer { kill(underNohup.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: underNohup), "serve did not start: \(String(decoding: underNohup.stderr.bytes, as: UTF8.self))")
        // Ignored and not caught: the kernel drops a hangup when it is sent, so the server answers after it.
        let dispositions = try SignalDispositions(of: underNohup.pid)
        #expect(dispositions.ignores(SIGHUP) && !dispositions.catches(SIGHUP), "\(dispositions)")
        #expect(dispositions.catches(SIGTERM), "\(dispositions)")
        kill(underNohup.pid, SIGHUP)
        let info = try await circuito("client", "info", "--server", endpoint)
        #expect(info.succeeded, "\(info.stderr)")
        kill(underNohup.pid, SIGTERM)
        let ended = await underNohup.wait(timeout: 60)
        #expect(ended.succeeded && ended.stderr.contains("closed cleanly"), "status \(ended.status): \(ended.stderr)")
    }

    @Test("serve under a low file limit bounds its connections below it and says so (server.info gives the bound its refusals follow)")
    func serveKeepsItsConnectionsWithinTheFileLimit() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let binary = try #require(CLI.binary)
        // 400 files, soft and hard: 256 kept for the server's own, so 144 connections.
        let server = try ChildProcess(
            ["-c", "ulimit -Sn 400 && ulimit -Hn 400 && exec \"$0\" serve --data \"$1\" --listen 127.0.0.1:0", binary, ledger.directory],
            executable: "/bin/sh")
        defer { kill(server.pid, SIGTERM) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        // Written before the listening line, but to stderr, which another thread reads: it may not have read it yet.
        let warning = "serve: this process may open 400 files (ulimit -n): at most 144 connections, not 1024"
        let deadline = Date().addingTimeInterval(30)
        while !String(decoding: server.stderr.bytes, as: UTF8.self).contains(warning) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(String(decoding: server.stderr.bytes, as: UTF8.self).contains(warning), "\(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let info = try await circuito("client", "info", "--server", endpoint)
        try #require(info.succeeded, "\(info.stderr)")
        #expect(try JSONParser.parse(info.stdoutBytes)["limits"]?["maximum_connections"] == 144)
    }

    @Test("a replay killed while it runs leaves no scratch database in the temporary folder")
    func killedReplayLeavesNoScratch() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let ledger = workspace.path("ledger")
        let made = try await circuito("bench", "--events", "2000", "--connections", "4", "--data", ledger, timeout: 300)
        try #require(made.succeeded, "\(made.stderr)")
        let scratchParent = workspace.path("tmp")
        try FileManager.default.createDirectory(atPath: scratchParent, withIntermediateDirectories: false)
        for command in ["verify", "rebuild"] {
            // Its progress goes to a terminal whose output is stopped: the replay blocks in its first progress line,
            // after its first chunk (here its only one), its scratch environment open, and cannot end before it is
            // killed. Not a fixed wait, which a slow start outlasts (nothing to leave yet) and a fast replay ends
            // within.
            let replay = try ChildProcess(
                [command, "--data", ledger], environment: ["TMPDIR": scratchParent], stderrOnTerminal: true, stderrOutputStopped: true)
            let scratchPrefix = scratchParent + "/circuito-replay-"
            var held = false
            let deadline = Date().addingTimeInterval(60)
            while !held && replay.process.isRunning && Date() < deadline {
                held = replay.isBlockedWritingStderr && replay.openFiles.contains { $0.hasPrefix(scratchPrefix) }
                if !held { try await Task.sleep(for: .milliseconds(5)) }
            }
            kill(replay.pid, SIGKILL)
            let killed = await replay.wait(timeout: 60)
            try #require(held, "\(command) was not seen replaying with its scratch open within 60 s (status \(killed.status))")
            #expect(killed.signaled && killed.status == SIGKILL, "\(command) was not killed while it ran: \(killed.status)")
            let left = FileManager.default.subpaths(atPath: scratchParent) ?? []
            #expect(left == [], "\(command) left \(left)")
        }
    }

    @Test("serve on a port in use, or on a socket path that is a file, says which and why in words")
    func serveCannotListen() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        // A port this test holds.
        let (holder, port) = try loopbackListener(backlog: 1)
        defer { close(holder) }
        let inUse = try await circuito("serve", "--data", ledger.directory, "--listen", "127.0.0.1:\(port)")
        #expect(inUse.status == 1)
        #expect(inUse.stderr == "error: storage_error: cannot listen on 127.0.0.1:\(port): Address already in use\n", "\(inUse.stderr)")

        let file = ledger.workspace.path("not-a-socket")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: file))
        let wrongType = try await circuito("serve", "--data", ledger.directory, "--listen", "none", "--unix", file)
        #expect(wrongType.status == 1)
        #expect(wrongType.stderr == "error: storage_error: cannot listen on \(file): the socket path is there and is not a socket (it is left as it is)\n", "\(wrongType.stderr)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep me")
    }

    @Test("serve whose Unix socket cannot be made after its TCP listener opened (a folder on a full or read-only file system) stops with that error alone (no SwiftNIO report of work scheduled on an event loop already shut down, which it says will become a crash)")
    func serveWhoseSocketFailsAfterItsListener() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        // A path under a regular file: bind fails (ENOTDIR) as it does on a file system out of inodes (ENOSPC) or
        // mounted read-only (EROFS), once the TCP listener is open.
        let file = ledger.workspace.path("a-file")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: file))
        let failed = try await circuito("serve", "--data", ledger.directory, "--listen", "127.0.0.1:0", "--unix", file + "/s.sock")
        #expect(failed.status == 1)
        // Before the fix, SwiftNIO first wrote "ERROR: Cannot schedule tasks on an EventLoop that has already shut
        // down. This will be upgraded to a forced crash in future SwiftNIO versions."
        #expect(failed.stderr == "error: storage_error: cannot listen on 127.0.0.1:0 and \(file)/s.sock: Not a directory\n", "\(failed.stderr)")
        let verified = try await ledger.verify()
        #expect(verified.succeeded, "\(verified.stderr)")
    }

    /// Whether this process can run commands as another user (root, with `runuser`): how a test reads as an auditor
    /// given read access only.
    static let canRunAsAnotherUser = getuid() == 0 && access("/usr/sbin/runuser", X_OK) == 0

    @Test(
        "a reader with read access only (an auditor's) verifies and exports without writing lock.mdb, holding off writers; beside a writer it is refused",
        .enabled(if: canRunAsAnotherUser))
    func readerWithReadAccessOnly() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        // The auditor's copy of the program, and the ledger readable by everyone, writable by its owner only.
        let binary = ledger.workspace.path("circuito")
        try FileManager.default.copyItem(atPath: try #require(CLI.binary), toPath: binary)
        for (path, mode) in [(ledger.workspace.root, 0o755), (binary, 0o755), (ledger.directory, 0o755), (ledger.directory + "/data.mdb", 0o644)] {
            try #require(chmod(path, mode_t(mode)) == 0, "\(path)")
        }
        unlink(ledger.directory + "/lock.mdb")
        try #require(access(ledger.directory + "/writer.lock", F_OK) == 0)
        try #require(chmod(ledger.directory + "/writer.lock", 0o644) == 0)
        func asAuditor(_ arguments: [String]) async throws -> CLIResult {
            try await runToCompletion(["-u", "nobody", "--", binary] + arguments, executable: "/usr/sbin/runuser")
        }
        let verified = try await asAuditor(["verify", "--data", ledger.directory])
        #expect(verified.succeeded, "\(verified.stderr)")
        #expect(verified.stdout.hasPrefix("ok: 1 records"), "\(verified.stdout)")
        await #expect(try asAuditor(["export", "--data", ledger.directory]).completeLines.count == 1)
        // It wrote nothing: no lock file appeared.
        #expect(access(ledger.directory + "/lock.mdb", F_OK) != 0)

        // A writer holds writer.lock: reading without lock.mdb beside it is refused.
        let writerLock = open(ledger.directory + "/writer.lock", O_RDONLY)
        try #require(writerLock >= 0 && flock(writerLock, LOCK_EX | LOCK_NB) == 0)
        defer { close(writerLock) }
        let besideWriter = try await asAuditor(["verify", "--data", ledger.directory])
        #expect(besideWriter.status == 1)
        #expect(besideWriter.stderr.contains("error: ledger_locked: ") && besideWriter.stderr.contains("reading beside a writer needs write access"), "\(besideWriter.stderr)")
    }

    @Test("a data.mdb cut short (an interrupted copy) is refused with integrity_failure by every reader, never read past its end")
    func truncatedFileIsRefused() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let bytes = try #require(FileManager.default.contents(atPath: ledger.directory + "/data.mdb"))
        let cut = ledger.workspace.path("cut")
        try FileManager.default.createDirectory(atPath: cut, withIntermediateDirectories: false)
        // Its two meta pages whole: LMDB opens it, and its last page lies past the end.
        try bytes.prefix(8192).write(to: URL(fileURLWithPath: cut + "/data.mdb"))
        for command in [["verify"], ["export"], ["checkpoint"], ["rebuild"]] {
            let result = try await circuito(command + ["--data", cut])
            #expect(result.exitedNormally && result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: integrity_failure: \(cut)/data.mdb is 8192 bytes, but its pages reach "), "\(command): \(result.stderr)")
        }
    }

    @Test("a data.mdb whose meta pages record a last page whose end overflows 64 bits is refused with integrity_failure, not a crash")
    func lastPagePastAnyFileIsRefused() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        var bytes = try #require(FileManager.default.contents(atPath: ledger.directory + "/data.mdb"))
        // LMDB's meta pages are pages 0 and 1, of the system's page size; each holds mm_last_pg at byte 136 (a
        // 16-byte page header, magic, version, address, map size and two 48-byte database records before it).
        let pageBytes = sysconf(Int32(_SC_PAGESIZE))
        let lastPage = withUnsafeBytes(of: UInt64(1 << 62).littleEndian) { Array($0) }
        for meta in 0..<2 { bytes.replaceSubrange((meta * pageBytes + 136)..<(meta * pageBytes + 144), with: lastPage) }
        let damaged = ledger.workspace.path("damaged")
        try FileManager.default.createDirectory(atPath: damaged, withIntermediateDirectories: false)
        try bytes.write(to: URL(fileURLWithPath: damaged + "/data.mdb"))
        for command in [["verify"], ["export"]] {
            let result = try await circuito(command + ["--data", damaged])
            #expect(result.exitedNormally && result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: integrity_failure: \(damaged)/data.mdb is damaged: its meta page records last page 4611686018427387904"), "\(command): \(result.stderr)")
        }
    }

    /// Puts a value under `key` in `database` of the ledger in `directory`, as damage to the file could leave it
    /// (written through LMDB, so the rest of the file stays sound).
    private static func putDamagedEntry(_ directory: String, _ database: String, key: [UInt8]) throws {
        let environment = try LMDBEnvironment(path: directory, databaseNames: [database], create: false, writing: true)
        defer { environment.close() }
        try environment.write { (transaction) throws(LedgerError) in
            try transaction.put(database, key, Array("damaged".utf8))
        }
    }

    @Test("checkpoint --all of a checkpoints database holding a key past Int64 (a damaged file) is integrity_failure, not a crash")
    func checkpointKeyPastAnyLog() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        try Self.putDamagedEntry(ledger.directory, LedgerDatabase.checkpoints, key: BigEndianKey.encode(.max))
        let result = try await circuito(["checkpoint", "--all", "--data", ledger.directory])
        #expect(result.exitedNormally && result.status == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("error: integrity_failure: \(ledger.directory)/data.mdb is damaged: a checkpoint is stored for size 18446744073709551615"), "\(result.stderr)")
    }

    @Test("export --from 2^64 - 1 of a log holding a record under that key (a damaged file) is integrity_failure, not a crash")
    func exportFromTheLastKey() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        try Self.putDamagedEntry(ledger.directory, LedgerDatabase.log, key: BigEndianKey.encode(.max))
        let result = try await circuito(["export", "--data", ledger.directory, "--from", String(UInt64.max)])
        #expect(result.exitedNormally && result.status == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("error: integrity_failure: "), "\(result.stderr)")
    }

    @Test("readers given a folder whose data.mdb is empty or not LMDB's change nothing in it: no meta pages written, no lock file left")
    func readersLeaveAFolderThatIsNoLedgerAsItWas() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let empty = workspace.path("empty")
        let garbage = workspace.path("garbage")
        for folder in [empty, garbage] { #expect(mkdir(folder, 0o700) == 0) }
        #expect(FileManager.default.createFile(atPath: empty + "/data.mdb", contents: Data()))
        let noise = Data((0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        #expect(FileManager.default.createFile(atPath: garbage + "/data.mdb", contents: noise))
        for command in [["verify"], ["export"], ["report"], ["checkpoint"], ["backup", "--out", workspace.path("copy")]] {
            let onEmpty = try await circuito(command + ["--data", empty])
            #expect(onEmpty.status == 1 && onEmpty.stderr.hasPrefix("error: not_found: \(empty) holds no ledger"), "\(command): \(onEmpty.stderr)")
            let onGarbage = try await circuito(command + ["--data", garbage])
            #expect(onGarbage.status == 1 && onGarbage.stderr.hasPrefix("error: "), "\(command): \(onGarbage.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: empty) == ["data.mdb"], "\(command)")
            #expect(FileManager.default.contents(atPath: empty + "/data.mdb") == Data(), "\(command)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: garbage) == ["data.mdb"], "\(command)")
            #expect(FileManager.default.contents(atPath: garbage + "/data.mdb") == noise, "\(command)")
        }
        // A folder named data.mdb: no ledger, to a writer as to a reader (not "a ledger without its key").
        let folder = workspace.path("folder")
        #expect(mkdir(folder, 0o700) == 0 && mkdir(folder + "/data.mdb", 0o700) == 0)
        for command in [["append"], ["verify"]] {
            let refused = try await circuito(command + ["--data", folder], stdin: "")
            #expect(refused.status == 1 && refused.stderr.hasPrefix("error: not_found: \(folder) holds no ledger"), "\(command): \(refused.stderr)")
        }
    }

    @Test("a ledger a newer circuito stamped with a newer format version is refused by its writers and readers (ledger_format_too_new), which write nothing to it")
    func newerFormatIsRefused() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        // As a circuito of format version 2 would leave it.
        do {
            let environment = try LMDBEnvironment(path: ledger.directory, databaseNames: [], create: false, writing: true)
            try environment.write { (transaction) throws(LedgerError) in
                try transaction.put(LedgerFormat.databaseName, LedgerFormat.versionKey, Array("2".utf8))
            }
            environment.close()
        }
        let before = try #require(FileManager.default.contents(atPath: ledger.directory + "/data.mdb"))
        let event = try ledger.authority.register(TestActor("merchant-9"), role: "merchant", name: "Nine") + "\n"
        let commands: [[String]] = [
            ["append"], ["serve", "--listen", "127.0.0.1:0"], ["verify"], ["rebuild"], ["export"], ["report"], ["checkpoint"],
            ["backup", "--out", ledger.workspace.path("copy")],
        ]
        for command in commands {
            let refused = try await circuito(command + ["--data", ledger.directory], stdin: event)
            #expect(refused.exitedNormally && refused.status == 1, "\(command): \(refused.status) \(refused.stderr)")
            #expect(
                refused.stderr.hasPrefix("error: ledger_format_too_new: \(ledger.directory) holds a ledger of format version 2, written by a newer circuito; this circuito reads format version 1"),
                "\(command): \(refused.stderr)")
        }
        #expect(FileManager.default.contents(atPath: ledger.directory + "/data.mdb") == before)
        #expect(access(ledger.workspace.path("copy"), F_OK) != 0)
    }

    @Test("keygen, init, sign, append, verify, export, checkpoint and proofs agree with each other")
    func fullFlow() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }

        // keygen: a 0600 key file and its Multikey on stdout.
        var keyFiles: [String: String] = [:]
        var multikeys: [String: String] = [:]
        for name in ["authority", "org-1", "staff-1"] {
            let path = workspace.path("\(name).key")
            let result = try await circuito("keygen", "--out", path)
            try #require(result.succeeded, "keygen failed: \(result.stderr)")
            let multikey = result.stdout.trimmingCharacters(in: .newlines)
            #expect(result.stdout == multikey + "\n")
            #expect(multikey.hasPrefix("z6Mk") && multikey.count == 48)
            #expect(Multikey.decodePublicKey(multikey) != nil)
            #expect(fileMode(path) == 0o600)
            #expect(try KeyFile.read(path).publicKey.multikey == multikey)
            keyFiles[name] = path
            multikeys[name] = multikey
        }

        // init: prints the checkpoint verifier key origin+keyid+base64(0x01 ‖ key).
        let origin = "cli.test/flow"
        let directory = workspace.path("ledger")
        let initResult = try await circuito(
            "init", "--data", directory, "--authority-key", keyFiles["authority"]!, "--authority-id", "city", "--origin", origin)
        try #require(initResult.succeeded, "init failed: \(initResult.stderr)")
        let verifierKey = initResult.stdout.trimmingCharacters(in: .newlines)
        // The origin and the key id have no '+'; the base64 may.
        let fields = verifierKey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        try #require(fields.count == 3, "verifier key \(verifierKey)")
        #expect(fields[0] == origin)
        #expect(fields[1].count == 8 && fields[1].allSatisfy { $0.isHexDigit && !$0.isUppercase })
        let material = try #require(Base64.decode(String(fields[2])))
        #expect(material.count == 33 && material.first == 0x01)
        let verifier = try NoteVerifier(parsing: verifierKey)
        #expect(try KeyFile.read(directory + "/" + LedgerFiles.checkpointKey).publicKey == verifier.publicKey)

        // sign: unsigned registrations in, signed events out.
        let merchant = TestActor("merchant-1")
        let auditor = TestActor("auditor-1")
        let beneficiaries = (1...3).map { TestActor("beneficiary-\($0)") }
        func unsigned(_ body: JSONObject) -> String {
            CanonicalJSON.encodeString(["type": "actor.registered", "body": .object(body)])
        }
        func keyed(_ id: String, role: String, name: String, key: String, organisation: String? = nil) -> JSONObject {
            var body: JSONObject = ["actor": .string(id), "role": .string(role), "name": .string(name), "keys": [.string(key)]]
            if let organisation { body["organisation"] = .string(organisation) }
            return body
        }
        let firstInput = [
            unsigned(keyed("org-1", role: "organisation", name: "Food Bank", key: multikeys["org-1"]!)),
            unsigned(keyed("staff-1", role: "staff", name: "Ana", key: multikeys["staff-1"]!, organisation: "org-1")),
            unsigned(registration(merchant, role: "merchant", name: "Corner Shop")),
            unsigned(registration(auditor, role: "auditor", name: "Audit Office")),
            unsigned(registration(beneficiaries[0], role: "beneficiary", name: "Bea", organisation: "org-1")),
        ]
        let signResult = try await circuito(
            "sign", "--key", keyFiles["authority"]!, "--actor", "city", stdin: firstInput.joined(separator: "\n") + "\n")
        try #require(signResult.succeeded, "sign failed: \(signResult.stderr)")
        let firstSigned = signResult.completeLines
        try #require(firstSigned.count == firstInput.count)
        var eventIDs: [String] = []
        for line in firstSigned {
            let signed = try SignedEvent(jsonBytes: Array(line.utf8))
            _ = try signed.verified()
            #expect(signed.event.actor == "city")
            #expect(signed.event.key == multikeys["authority"])
            #expect(signed.event.type == "actor.registered")
            eventIDs.append(signed.event.id)
        }
        #expect(Set(eventIDs).count == eventIDs.count, "sign gives each event a fresh id")

        // append (file argument): receipts seq 1…5 in one batch, one checkpoint of size 6.
        let firstFile = try workspace.write("first.jsonl", lines: firstSigned)
        let firstAppend = try await circuito("append", "--data", directory, firstFile)
        #expect(firstAppend.succeeded, "append failed: \(firstAppend.stderr)")
        let firstReceipts = try firstAppend.completeLines.map(PrintedReceipt.init(line:))
        try #require(firstReceipts.count == 5)
        #expect(firstReceipts.map(\.seq) == [1, 2, 3, 4, 5])
        #expect(firstReceipts.map(\.id) == eventIDs)
        #expect(firstReceipts.allSatisfy { $0.checkpointSize == 6 && $0.checkpoint == firstReceipts[0].checkpoint })

        // A second append through stdin, signed by the staff member and the organisation: a second checkpoint.
        let staffSigned = try await circuito(
            "sign", "--key", keyFiles["staff-1"]!, "--actor", "staff-1",
            stdin: unsigned(registration(beneficiaries[1], role: "beneficiary", name: "Ben", organisation: "org-1")) + "\n")
        let orgSigned = try await circuito(
            "sign", "--key", keyFiles["org-1"]!, "--actor", "org-1",
            stdin: unsigned(registration(beneficiaries[2], role: "beneficiary", name: "Cy", organisation: "org-1")) + "\n")
        try #require(staffSigned.succeeded && orgSigned.succeeded, "\(staffSigned.stderr) \(orgSigned.stderr)")
        let secondAppend = try await circuito("append", "--data", directory, stdin: staffSigned.stdout + orgSigned.stdout)
        #expect(secondAppend.succeeded, "append failed: \(secondAppend.stderr)")
        let secondReceipts = try secondAppend.completeLines.map(PrintedReceipt.init(line:))
        try #require(secondReceipts.count == 2)
        #expect(secondReceipts.map(\.seq) == [6, 7])
        #expect(secondReceipts.allSatisfy { $0.checkpointSize == 8 })
        let receipts = firstReceipts + secondReceipts

        // Every receipt's checkpoint is a note signed by the verifier key, with the tree root at its size.
        for receipt in receipts {
            #expect(receipt.leafHash.count == 32)
            let checkpoint = try Checkpoint(parsing: try SignedNote.open(receipt.checkpoint, verifier: verifier))
            #expect(checkpoint.origin == origin)
            #expect(checkpoint.size == receipt.checkpointSize)
            await #expect(try rootOf(directory, size: checkpoint.size).hash == checkpoint.rootHash)
        }

        // verify
        let verify = try await circuito("verify", "--data", directory)
        #expect(verify.succeeded, "verify failed: \(verify.stderr)")
        #expect(verify.stdout.hasPrefix("ok: 8 records, 3 checkpoints checked, root "))

        // export: one line per record, each exactly the leaf bytes of its receipt.
        let exportResult = try await circuito("export", "--data", directory)
        try #require(exportResult.succeeded)
        #expect(exportResult.stdoutBytes.last == 0x0A)
        let exported = exportResult.completeLines
        try #require(exported.count == 8)
        for receipt in receipts {
            let line = exported[Int(receipt.seq)]
            #expect(leafHash(line) == receipt.leafHash, "seq \(receipt.seq)")
            let record = try Record(leafBytes: Array(line.utf8))
            #expect(record.sequenceNumber == receipt.seq)
            #expect(record.signedEvent.event.id == receipt.id)
        }
        #expect(try Record(leafBytes: Array(exported[0].utf8)).signedEvent.event.type == "ledger.genesis")
        // export --from: the same lines, from that seq on.
        let fromFive = try await circuito("export", "--data", directory, "--from", "5")
        try #require(fromFive.succeeded, "export --from failed: \(fromFive.stderr)")
        #expect(fromFive.completeLines == Array(exported[5...]))

        // checkpoint: the latest note, the last receipt's.
        let checkpointResult = try await circuito("checkpoint", "--data", directory)
        #expect(checkpointResult.succeeded)
        #expect(checkpointResult.stdout == secondReceipts.last!.checkpoint)
        // checkpoint --all: one per commit (genesis, then the two appends), in size order, each signed and each a
        // receipt's; the last is the latest.
        let allCheckpoints = try await circuito("checkpoint", "--data", directory, "--all")
        #expect(allCheckpoints.succeeded)
        let stored = try allCheckpoints.completeLines.map { try JSONParser.parse($0) }
        #expect(stored.map { $0["size"]?.integerValue } == [1, 6, 8])
        #expect(stored.last?["checkpoint"]?.stringValue == checkpointResult.stdout)
        for entry in stored {
            let note = try #require(entry["checkpoint"]?.stringValue)
            #expect(try Checkpoint(parsing: try SignedNote.open(note, verifier: verifier)).size == UInt64(try #require(entry["size"]?.integerValue)))
        }
        #expect(Set(receipts.map(\.checkpoint)).isSubset(of: Set(stored.compactMap { $0["checkpoint"]?.stringValue })))

        // proof root at the current size and at the first checkpoint's size.
        let currentRoot = try await rootOf(directory)
        #expect(currentRoot.size == 8)
        let firstCheckpoint = try Checkpoint(parsing: try SignedNote.open(firstReceipts[0].checkpoint, verifier: verifier))
        await #expect(try rootOf(directory, size: 6).hash == firstCheckpoint.rootHash)
        var roots: [UInt64: [UInt8]] = [:]
        for size in UInt64(1)...8 { roots[size] = try await rootOf(directory, size: size).hash }
        #expect(roots[8] == currentRoot.hash)

        // proof inclusion: every leaf in the current tree, and in an older one.
        let leafHashes = exported.map(leafHash)
        var inclusionCases: [(seq: UInt64, size: UInt64?)] = (0..<8).map { (UInt64($0), nil) }
        inclusionCases += [(2, 6), (5, 6)]
        for (seq, size) in inclusionCases {
            var arguments = ["proof", "inclusion", "--data", directory, "--seq", String(seq)]
            if let size { arguments += ["--size", String(size)] }
            let result = try await runToCompletion(arguments)
            try #require(result.succeeded, "inclusion proof failed: \(result.stderr)")
            let json = try JSONParser.parse(result.stdout.trimmingCharacters(in: .newlines))
            #expect(json.objectValue.map { Set($0.keys) } == ["hashes", "leaf_index", "tree_size"])
            let treeSize = UInt64(try #require(json["tree_size"]?.integerValue))
            #expect(json["leaf_index"]?.integerValue == Int64(seq))
            #expect(treeSize == size ?? 8)
            let proof = try #require(json["hashes"]?.arrayValue?.compactMap { $0.stringValue.flatMap(Base64.decode) })
            let root = try #require(roots[treeSize])
            #expect(MerkleProofs.verifyInclusion(
                leafHash: leafHashes[Int(seq)], leafIndex: seq, treeSize: treeSize, proof: proof, root: root), "seq \(seq) in \(treeSize)")
            // The same proof does not prove another leaf.
            #expect(!MerkleProofs.verifyInclusion(
                leafHash: leafHashes[Int((seq + 1) % treeSize)], leafIndex: seq, treeSize: treeSize, proof: proof, root: root))
        }

        // proof consistency between several sizes, including the two checkpoints.
        let consistencyCases: [(from: UInt64, to: UInt64?)] = [(6, nil), (1, 8), (3, 8), (4, 7), (5, 6), (8, 8)]
        for (from, to) in consistencyCases {
            var arguments = ["proof", "consistency", "--data", directory, "--from", String(from)]
            if let to { arguments += ["--to", String(to)] }
            let result = try await runToCompletion(arguments)
            try #require(result.succeeded, "consistency proof failed: \(result.stderr)")
            let json = try JSONParser.parse(result.stdout.trimmingCharacters(in: .newlines))
            #expect(json.objectValue.map { Set($0.keys) } == ["first_size", "hashes", "second_size"])
            let secondSize = UInt64(try #require(json["second_size"]?.integerValue))
            #expect(json["first_size"]?.integerValue == Int64(from))
            #expect(secondSize == to ?? 8)
            let proof = try #require(json["hashes"]?.arrayValue?.compactMap { $0.stringValue.flatMap(Base64.decode) })
            let firstRoot = try #require(roots[from])
            let secondRoot = try #require(roots[secondSize])
            #expect(MerkleProofs.verifyConsistency(
                firstSize: from, secondSize: secondSize, firstRoot: firstRoot, secondRoot: secondRoot, proof: proof),
                "\(from) → \(secondSize)")
            if from < secondSize {
                // A root that is not the first tree's does not pass.
                var wrongRoot = firstRoot
                wrongRoot[0] ^= 0x01
                #expect(!MerkleProofs.verifyConsistency(
                    firstSize: from, secondSize: secondSize, firstRoot: wrongRoot, secondRoot: secondRoot, proof: proof))
            }
        }

        // Out-of-range requests are refused with the common error line.
        let beyond = try await circuito("proof", "inclusion", "--data", directory, "--seq", "8")
        #expect(beyond.status == 1 && beyond.stderr.hasPrefix("error: invalid_range: "))
    }

    // MARK: - 2. Idempotency

    @Test("appending the same events again gives the same receipts; the same id with other content is refused")
    func idempotentAppend() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let actors = (1...5).map { TestActor("merchant-\($0)") }
        let lines = try actors.map { try ledger.authority.register($0, role: "merchant", name: "Shop \($0.id)") }

        let first = try await ledger.append(lines)
        #expect(first.succeeded, "append failed: \(first.stderr)")
        let firstReceipts = try first.completeLines.map(PrintedReceipt.init(line:))
        #expect(firstReceipts.map(\.seq) == [1, 2, 3, 4, 5])
        let rootAfterFirst = try await ledger.root()
        #expect(rootAfterFirst.size == 6)

        // The same file again, in smaller batches, and through stdin: byte-identical receipts, nothing written.
        let again = try await ledger.append(lines, batch: 2)
        #expect(again.succeeded, "append failed: \(again.stderr)")
        #expect(again.completeLines == first.completeLines)
        let viaStdin = try await circuito("append", "--data", ledger.directory, stdin: lines.joined(separator: "\n") + "\n")
        #expect(viaStdin.succeeded)
        #expect(viaStdin.completeLines == first.completeLines)
        await #expect(try ledger.root() == rootAfterFirst)

        // Same id as merchant-3's registration, other content: id_conflict, exit 1, ledger unchanged.
        let conflicting = try ledger.authority.register(
            TestActor("merchant-x"), role: "merchant", name: "Another shop", eventID: "reg-merchant-3")
        let conflict = try await ledger.append([conflicting])
        #expect(conflict.status == 1)
        let conflictLines = conflict.completeLines
        try #require(conflictLines.count == 1)
        let refused = try refusal(conflictLines[0])
        #expect(refused.code == "id_conflict")
        #expect(refused.line == 1)
        #expect(conflict.stderr.contains("1 event(s) refused"))
        await #expect(try ledger.root() == rootAfterFirst)

        // Mixed with a repeat: the repeat keeps its receipt, the conflict is refused, exit 1.
        let mixed = try await ledger.append([lines[0], conflicting])
        #expect(mixed.status == 1)
        let mixedLines = mixed.completeLines
        try #require(mixedLines.count == 2)
        #expect(mixedLines[0] == first.completeLines[0])
        #expect(try refusal(mixedLines[1]).code == "id_conflict")
        await #expect(try ledger.root() == rootAfterFirst)

        await #expect(try ledger.verify().succeeded)
    }

    // MARK: - 3. Refusals

    @Test("refused events write nothing and each names its code; valid events beside them are appended")
    func refusalsWriteNothing() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let merchant = TestActor("merchant-1")
        let setup = try await ledger.append([try ledger.authority.register(merchant, role: "merchant", name: "Corner Shop")])
        try #require(setup.succeeded, "setup failed: \(setup.stderr)")

        let ghost = TestActor("ghost")
        let unknownActor = try ghost.register(TestActor("someone"), role: "merchant", name: "Someone")
        let wrongRole = try merchant.register(TestActor("merchant-2"), role: "merchant", name: "Second Shop")
        var badSignature = try ledger.authority.register(TestActor("merchant-3"), role: "merchant", name: "Third Shop")
        let sigStart = try #require(badSignature.range(of: "\"sig\":\"")).upperBound
        // The first base64 character holds the first 6 bits of R: flip it to another valid character.
        badSignature.replaceSubrange(sigStart...sigStart, with: badSignature[sigStart] == "A" ? "B" : "A")
        let malformed = "{\"event\":{\"v\":1,"
        let withFloat = try ledger.authority.register(TestActor("merchant-4"), role: "merchant", name: "Fourth Shop")
            .replacingOccurrences(of: "\"name\":\"Fourth Shop\"", with: "\"name\":\"Fourth Shop\",\"weight\":1.5")
        #expect(withFloat.contains("1.5"))
        let cases: [(line: String, code: String)] = [
            (unknownActor, "unknown_actor"), (wrongRole, "role_not_permitted"), (badSignature, "invalid_signature"),
            (malformed, "invalid_json"), (withFloat, "non_integer_number"),
        ]

        let before = try await ledger.root()
        #expect(before.size == 2)
        let exportBefore = try await ledger.export()
        for (line, code) in cases {
            let result = try await ledger.append([line])
            #expect(result.status == 1, "\(code): exit \(result.status)")
            let output = result.completeLines
            try #require(output.count == 1, "\(code): \(result.stdout)")
            let refused = try refusal(output[0])
            #expect(refused.code == code)
            #expect(refused.line == 1)
            await #expect(try ledger.root() == before, "\(code) wrote something")
        }
        await #expect(try ledger.export() == exportBefore)

        // All of them in one file, with a valid event in the middle and a blank line: only that one is appended.
        let newcomer = TestActor("merchant-5")
        let valid = try ledger.authority.register(newcomer, role: "merchant", name: "Fifth Shop")
        let file = [cases[0].line, cases[1].line, "", valid, cases[2].line, cases[3].line, cases[4].line]
        let result = try await ledger.append(file)
        #expect(result.status == 1)
        #expect(result.stderr.contains("5 event(s) refused"))
        let output = result.completeLines
        try #require(output.count == 6, "\(result.stdout)")
        let expected: [(code: String, line: Int64)] = [
            ("unknown_actor", 1), ("role_not_permitted", 2), ("invalid_signature", 5), ("invalid_json", 6),
            ("non_integer_number", 7),
        ]
        let refusals = try [0, 1, 3, 4, 5].map { try refusal(output[$0]) }
        #expect(refusals.map(\.code) == expected.map(\.code))
        #expect(refusals.map(\.line) == expected.map(\.line))
        let receipt = try PrintedReceipt(line: output[2])
        #expect(receipt.id == "reg-merchant-5")
        #expect(receipt.seq == before.size)
        let after = try await ledger.root()
        #expect(after.size == before.size + 1)
        await #expect(try ledger.root(size: before.size) == before)
        let exported = try await ledger.export()
        #expect(Array(exported.prefix(exportBefore.count)) == exportBefore)
        #expect(exported.count == exportBefore.count + 1)
        #expect(leafHash(exported.last!) == receipt.leafHash)
        await #expect(try ledger.verify().succeeded)
    }

    // MARK: - 4. Key files

    @Test("a key file readable by others is refused with a chmod hint; keygen never overwrites")
    func keyFileRefusals() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let path = workspace.path("signer.key")
        let keygen = try await circuito("keygen", "--out", path)
        try #require(keygen.succeeded)
        let unsigned = "{\"type\":\"actor.registered\",\"body\":{}}\n"
        await #expect(try circuito("sign", "--key", path, "--actor", "someone", stdin: unsigned).succeeded)

        try #require(chmod(path, 0o644) == 0)
        let refused = try await circuito("sign", "--key", path, "--actor", "someone", stdin: unsigned)
        #expect(refused.status == 1)
        #expect(refused.stdout.isEmpty)
        #expect(refused.stderr.hasPrefix("error: key_file: "))
        #expect(refused.stderr.contains("chmod 600"))
        // Readable by its group alone: refused as well.
        try #require(chmod(path, 0o640) == 0)
        let groupReadable = try await circuito("sign", "--key", path, "--actor", "someone", stdin: unsigned)
        #expect(groupReadable.status == 1)
        #expect(groupReadable.stdout.isEmpty)
        #expect(groupReadable.stderr.hasPrefix("error: key_file: "), "\(groupReadable.stderr)")

        // A folder or a FIFO where the key file should be is refused for what it is (and a FIFO is not waited on).
        let folder = workspace.path("folder.key")
        try #require(mkdir(folder, 0o700) == 0)
        let fifo = workspace.path("fifo.key")
        try #require(mkfifo(fifo, 0o600) == 0)
        for notAFile in [folder, fifo] {
            let result = try await circuito("sign", "--key", notAFile, "--actor", "someone", stdin: unsigned)
            #expect(result.status == 1)
            #expect(result.stderr.hasPrefix("error: key_file: ") && result.stderr.contains("is not a regular file"), "\(notAFile): \(result.stderr)")
        }

        // A key file whose public key is not its private key's (a file pieced together from two keys) is refused.
        let mismatched = workspace.path("mismatched.key")
        let secret = Ed25519PrivateKey(), other = Ed25519PrivateKey()
        try (CanonicalJSON.encodeString([
            "publicKeyMultibase": .string(other.publicKey.multikey), "privateKeyMultibase": .string(Multikey.encodeSecret(secret)),
        ]) + "\n").write(toFile: mismatched, atomically: false, encoding: .utf8)
        try #require(chmod(mismatched, 0o600) == 0)
        let pieced = try await circuito("sign", "--key", mismatched, "--actor", "someone", stdin: unsigned)
        #expect(pieced.status == 1)
        #expect(pieced.stderr.hasPrefix("error: key_file: ") && pieced.stderr.contains("does not match"), "\(pieced.stderr)")

        // A key file past its bound of 4096 bytes is refused, not read.
        let padded = workspace.path("padded.key")
        let paddedKey = Ed25519PrivateKey()
        try (CanonicalJSON.encodeString([
            "comment": .string(String(repeating: "x", count: 5000)),
            "publicKeyMultibase": .string(paddedKey.publicKey.multikey), "privateKeyMultibase": .string(Multikey.encodeSecret(paddedKey)),
        ]) + "\n").write(toFile: padded, atomically: false, encoding: .utf8)
        try #require(chmod(padded, 0o600) == 0)
        let oversize = try await circuito("sign", "--key", padded, "--actor", "someone", stdin: unsigned)
        #expect(oversize.status == 1)
        #expect(oversize.stderr.hasPrefix("error: too_large: "), "\(oversize.stderr)")

        try #require(chmod(path, 0o600) == 0)
        let original = try #require(FileManager.default.contents(atPath: path))
        let overwrite = try await circuito("keygen", "--out", path)
        #expect(overwrite.status == 1)
        #expect(overwrite.stdout.isEmpty)
        #expect(overwrite.stderr.hasPrefix("error: key_file: "))
        #expect(FileManager.default.contents(atPath: path) == original)
        #expect(fileMode(path) == 0o600)
    }

    @Test("sign reads v as the ledger does: not an integer is invalid_event, another integer unsupported_version")
    func signVersion() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let path = workspace.path("signer.key")
        try await #require(try circuito("keygen", "--out", path).succeeded)
        let lines = [
            #"{"v":1,"type":"actor.registered","body":{}}"#, #"{"v":"1","type":"actor.registered","body":{}}"#,
            #"{"v":1.0,"type":"actor.registered","body":{}}"#, #"{"v":2,"type":"actor.registered","body":{}}"#,
        ]
        let signed = try await circuito("sign", "--key", path, "--actor", "someone", stdin: lines.joined(separator: "\n") + "\n")
        #expect(signed.status == 1)
        #expect(signed.stdout.split(separator: "\n").count == 1)
        #expect(signed.stderr.contains("error: line 2: invalid_event:"), "\(signed.stderr)")
        #expect(signed.stderr.contains("error: line 3: invalid_event:") || signed.stderr.contains("error: line 3: non_integer_number:"), "\(signed.stderr)")
        #expect(signed.stderr.contains("error: line 4: unsupported_version:"), "\(signed.stderr)")
    }

    @Test("sign quotes an actor or key that disagrees with its options as the JSON it read, cut at 80 characters")
    func signQuotesDisagreeingMembersAsJSON() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let path = workspace.path("signer.key")
        try await #require(try circuito("keygen", "--out", path).succeeded)
        let long = String(repeating: "x", count: 200)
        let lines = [
            #"{"actor":"other","type":"actor.registered","body":{}}"#,
            #"{"actor":5,"type":"actor.registered","body":{}}"#,
            #"{"key":"z6MkNotTheKey","type":"actor.registered","body":{}}"#,
            #"{"actor":{"name":""# + long + #""},"type":"actor.registered","body":{}}"#,
        ]
        let refused = try await circuito("sign", "--key", path, "--actor", "someone", stdin: lines.joined(separator: "\n") + "\n")
        #expect(refused.status == 1 && refused.stdout.isEmpty)
        #expect(refused.stderr.contains(#"error: line 1: invalid_event: event names actor "other" but is signed as "someone""#), "\(refused.stderr)")
        #expect(refused.stderr.contains(#"error: line 2: invalid_event: event names actor 5 but is signed as "someone""#), "\(refused.stderr)")
        #expect(refused.stderr.contains(#"error: line 3: invalid_key: event names key "z6MkNotTheKey", which is not the key in --key"#), "\(refused.stderr)")
        let shown = #"{"name":""# + String(repeating: "x", count: 80 - 9) + "…"
        #expect(refused.stderr.contains("error: line 4: invalid_event: event names actor \(shown) but is signed as \"someone\""), "\(refused.stderr)")
        // Swift's own description of the parsed value is not JSON (`string("other")`, `integer(5)`).
        #expect(!refused.stderr.contains("string(") && !refused.stderr.contains("integer("), "\(refused.stderr)")
    }

    @Test("an error message quoting input with control characters writes them escaped: one line per error, no terminal escapes")
    func errorMessagesEscapeControlCharacters() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let path = workspace.path("signer.key")
        try await #require(try circuito("keygen", "--out", path).succeeded)
        let line = #"{"type":"a.b","body":{},"id":"x\u001b[31mRED\n\r\u009bforged\u202e\u007f\u2066\u2069\u200e\u200f\u061c\u2028\u2029"}"#
        let refused = try await circuito("sign", "--key", path, "--actor", "someone", stdin: line + "\n")
        #expect(refused.status == 1 && refused.stdout.isEmpty)
        #expect(refused.stderr.hasPrefix("error: line 1: "), "\(refused.stderr)")
        // As badge verify shows what it quotes: controls and bidirectional overrides as \u{…}.
        #expect(refused.stderr.contains("x\\u{1B}[31mRED\\u{A}\\u{D}\\u{9B}forged\\u{202E}\\u{7F}\\u{2066}\\u{2069}\\u{200E}\\u{200F}\\u{61C}\\u{2028}\\u{2029}"), "\(refused.stderr)")
        #expect(!refused.stderr.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" } && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    }

    @Test("JSON on a terminal writes DEL, C1 controls and bidirectional overrides inside its strings as \\u escapes, the same JSON value; into a pipe, the canonical bytes")
    func jsonOnATerminalEscapesWhatWouldDriveIt() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let vault = ledger.workspace.path("vault")
        // Signers choose names and sealed data: raw, U+009B is CSI to some terminals, U+202E shows the rest reversed.
        let hidden = "Casa\u{9B}2J\u{202E}anretni\u{7F}"
        let escaped = #"Casa\u009b2J\u202eanretni\u007f"#
        let sealed = try await circuito(
            ["vault", "seal", "--vault", vault, "--beneficiary", "ben-1"], stdin: CanonicalJSON.encodeString(["nome": .string(hidden)]))
        try #require(sealed.succeeded, "\(sealed.stderr)")
        let casa = TestActor("casa"), staff = TestActor("op")
        let appended = try await ledger.append([
            try ledger.authority.register(casa, role: "organisation", name: hidden),
            try casa.register(staff, role: "staff", name: "Op", organisation: "casa"),
            try staff.sign("case.referred", id: "refer-1", [
                "case": "c-1", "beneficiary": "ben-1", "household": "hh-1", "to": "casa",
                "sealed": try JSONParser.parse(sealed.stdout.trimmingCharacters(in: .newlines)),
            ]),
        ])
        try #require(appended.succeeded && !appended.stdout.contains("error"), "\(appended.stdout)\(appended.stderr)")
        // export: the organisation's name as signed; case: the personal data opened from the vault.
        for arguments in [["export", "--data", ledger.directory], ["case", "--data", ledger.directory, "--beneficiary", "ben-1", "--vault", vault]] {
            let piped = try await circuito(arguments)
            #expect(piped.succeeded && piped.stdout.contains(hidden), "\(arguments[0]): \(piped.stdout.debugDescription)\(piped.stderr)")
            let onTerminal = try await runToCompletion(arguments, stdoutOnTerminal: true)
            #expect(onTerminal.succeeded, "\(arguments[0]): \(onTerminal.stderr)")
            // The terminal writes each LF as CR LF.
            let shown = onTerminal.stdout.replacingOccurrences(of: "\r\n", with: "\n")
            #expect(shown == piped.stdout.replacingOccurrences(of: hidden, with: escaped), "\(arguments[0]): \(shown.debugDescription)")
            #expect(!shown.unicodeScalars.contains { $0.value == 0x7F || $0.value == 0x9B || $0.value == 0x202E }, "\(arguments[0])")
            let shownValues = try shown.split(separator: "\n").map { try JSONParser.parse(String($0)) }
            let pipedValues = try piped.stdout.split(separator: "\n").map { try JSONParser.parse(String($0)) }
            #expect(!shownValues.isEmpty && shownValues == pipedValues, "\(arguments[0])")
        }
    }

    // MARK: - 5. Writer lock

    @Test("a second writer is refused with ledger_locked while the first holds the lock")
    func writerLock() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let first = try await ledger.startWriterHoldingTheLedger()

        let secondLine = try ledger.authority.register(TestActor("merchant-2"), role: "merchant", name: "Two")
        let second = try await circuito("append", "--data", ledger.directory, stdin: secondLine + "\n")
        #expect(second.status == 1)
        #expect(second.stdout.isEmpty)
        #expect(second.stderr.hasPrefix("error: ledger_locked: "), "\(second.stderr)")
        // Readers are not locked out.
        await #expect(try ledger.root().size == 2)

        first.writeToStdin(try ledger.authority.register(TestActor("merchant-3"), role: "merchant", name: "Three") + "\n")
        first.closeStdin()
        let firstResult = await first.wait()
        #expect(firstResult.succeeded, "first writer: \(firstResult.stderr)")
        #expect(try firstResult.completeLines.map { try PrintedReceipt(line: $0).seq } == [1, 2])

        // The lock is gone with its holder.
        let retry = try await circuito("append", "--data", ledger.directory, stdin: secondLine + "\n")
        #expect(retry.succeeded, "\(retry.stderr)")
        await #expect(try ledger.root().size == 4)
        await #expect(try ledger.verify().succeeded)
    }

    @Test("export, report and verify show their progress on a terminal and clear it; with standard error not a terminal, nothing")
    func progressOnATerminal() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let lines = try (1...5).map { try ledger.authority.register(TestActor("merchant-\($0)"), role: "merchant", name: "Shop \($0)") }
        await #expect(try ledger.append(lines).succeeded)
        for command in ["export", "report", "verify"] {
            let onTerminal = try await runToCompletion([command, "--data", ledger.directory], stderrOnTerminal: true)
            #expect(onTerminal.succeeded, "\(command): \(onTerminal.stderr)")
            #expect(onTerminal.stderr.contains("\(command): 6/6 records (100%)"), "\(command): \(onTerminal.stderr.debugDescription)")
            #expect(onTerminal.stderr.hasSuffix("\r\u{1B}[K"), "\(command) left its progress line: \(onTerminal.stderr.debugDescription)")
            let piped = try await circuito(command, "--data", ledger.directory)
            #expect(piped.succeeded && piped.stderr.isEmpty, "\(command): \(piped.stderr)")
            #expect(piped.stdout == onTerminal.stdout)
        }
    }

    @Test("backup copies a ledger that a writer holds; the copy verifies to the same root, without the key; a taken folder is refused")
    func backupWhileWriterHoldsTheLedger() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let writer = try await ledger.startWriterHoldingTheLedger()

        // The writer still holds the ledger (its stdin is open): a backup does not need the lock.
        let copy = ledger.workspace.path("backup")
        let backup = try await circuito("backup", "--data", ledger.directory, "--out", copy)
        #expect(backup.succeeded, "\(backup.stderr)")
        let head = try await rootOf(copy)
        #expect(head.size == 2)
        await #expect(head == (try ledger.root(size: 2)))
        var status = stat()
        #expect(stat(copy + "/data.mdb", &status) == 0)
        #expect(backup.stdout == "ok: 2 records, root \(Base64.encode(head.hash)), \(status.st_size) bytes in \(copy)\n")
        let audit = try await circuito("verify", "--data", copy)
        #expect(audit.succeeded, "\(audit.stderr)")
        #expect(audit.stdout.hasPrefix("ok: 2 records, 2 checkpoints checked, root \(Base64.encode(head.hash))"), "\(audit.stdout)")
        #expect(fileMode(copy) == 0o700)
        #expect(fileMode(copy + "/data.mdb") == 0o600)
        #expect(fileMode(copy + "/ledger.key") == nil)

        // Into a folder that is there: refused by name, nothing changed in it.
        let again = try await circuito("backup", "--data", ledger.directory, "--out", copy)
        #expect(again.status == 1)
        #expect(again.stdout.isEmpty)
        #expect(again.stderr.hasPrefix("error: invalid_range: \(copy) is there already"), "\(again.stderr)")
        await #expect(try rootOf(copy) == head)

        // Compacted, while the writer still holds the ledger: the same records and root, in no more bytes.
        let compacted = ledger.workspace.path("backup-compacted")
        let compact = try await circuito("backup", "--data", ledger.directory, "--out", compacted, "--compact")
        #expect(compact.succeeded, "\(compact.stderr)")
        var compactedStatus = stat()
        #expect(stat(compacted + "/data.mdb", &compactedStatus) == 0)
        #expect(compactedStatus.st_size <= status.st_size)
        #expect(compact.stdout == "ok: 2 records, root \(Base64.encode(head.hash)), \(compactedStatus.st_size) bytes in \(compacted)\n")
        let compactedAudit = try await circuito("verify", "--data", compacted)
        #expect(compactedAudit.succeeded, "\(compactedAudit.stderr)")

        writer.closeStdin()
        let written = await writer.wait()
        #expect(written.succeeded, "writer: \(written.stderr)")
    }

    @Test("a backup is written to again once the ledger's key is put beside it: refused without it, leaving the folder as it was; with it, the history goes on")
    func backupRestoredWithTheKey() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        await #expect(try ledger.append([try ledger.authority.register(TestActor("merchant-1"), role: "merchant", name: "One")]).succeeded)
        let copy = ledger.workspace.path("backup")
        await #expect(try circuito("backup", "--data", ledger.directory, "--out", copy).succeeded)
        let next = try ledger.authority.register(TestActor("merchant-2"), role: "merchant", name: "Two")
        let nextFile = try ledger.workspace.write("next.jsonl", lines: [next])

        // Without the key: refused by name, before anything is created in the copy's folder.
        let refused = try await circuito("append", "--data", copy, nextFile)
        #expect(refused.status == 1)
        #expect(refused.stdout.isEmpty)
        #expect(refused.stderr.hasPrefix("error: key_file: \(copy) holds a ledger but not its ledger.key"), "\(refused.stderr)")
        #expect(refused.stderr.contains("a backup holds none"), "\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: copy) == ["data.mdb"])
        await #expect(try rootOf(copy).size == 2)

        // With a copy of the key beside data.mdb, the copy is the ledger again: the same history, appended to.
        try FileManager.default.copyItem(atPath: ledger.directory + "/ledger.key", toPath: copy + "/ledger.key")
        let appended = try await circuito("append", "--data", copy, nextFile)
        #expect(appended.succeeded, "\(appended.stderr)")
        await #expect(try rootOf(copy).size == 3)
        await #expect(try rootOf(copy, size: 2) == (try ledger.root(size: 2)))
        let audit = try await circuito("verify", "--data", copy)
        #expect(audit.succeeded, "\(audit.stderr)")
        #expect(audit.stdout.hasPrefix("ok: 3 records"), "\(audit.stdout)")
    }

    @Test("authorise signs a payment authorisation for the ledger its --origin names, checked as the ledger checks it")
    func authorise() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let wallet = Ed25519PrivateKey()
        let walletFile = workspace.path("wallet.key")
        try KeyFile.write(wallet, to: walletFile)
        let arguments = ["authorise", "--key", walletFile, "--beneficiary", "ben-1", "--merchant", "shop", "--amount", "1250"]
        let signed = try await circuito(arguments + ["--origin", "cli.test/ledger", "--nonce", "n-1"])
        #expect(signed.succeeded, "\(signed.stderr)")
        let body = try #require(try JSONParser.parse(signed.stdout.trimmingCharacters(in: .newlines)).objectValue)
        let authorisation = try PaymentAuthorisation.verified(paymentBody: body)
        #expect(authorisation.origin == "cli.test/ledger")
        #expect(authorisation.key == wallet.publicKey.multikey)
        #expect(authorisation.beneficiary == "ben-1" && authorisation.merchant == "shop" && authorisation.amount == 1250 && authorisation.nonce == "n-1")
        // The signature covers the origin: the same authorisation for another ledger does not verify.
        var moved = try #require(body["authorisation"]?.objectValue)
        moved["origin"] = "other.example/ledger"
        var movedBody = body
        movedBody["authorisation"] = .object(moved)
        #expect(throws: LedgerError.self) { try PaymentAuthorisation.verified(paymentBody: movedBody) }
        // A version 1 authorisation, which named no ledger, is refused by its form.
        var versionOne = try #require(body["authorisation"]?.objectValue)
        versionOne["origin"] = nil
        var versionOneBody = body
        versionOneBody["authorisation"] = .object(versionOne)
        do {
            _ = try PaymentAuthorisation.verified(paymentBody: versionOneBody)
            Issue.record("a version 1 authorisation was taken")
        } catch {
            // Named as such, with what to do: a ledger an older circuito wrote holds them (Specs/events.md 1.7).
            #expect(error.code == .invalidBody && error.message.hasPrefix("payment authorisation names no \"origin\": a version 1 authorisation"), "\(error)")
            #expect(error.message.contains("circuito authorise --origin"), "\(error)")
        }
        // An origin of another type is refused as any member of the wrong type.
        versionOne["origin"] = 7
        versionOneBody["authorisation"] = .object(versionOne)
        #expect(throws: LedgerError(.invalidBody, "payment authorisation body needs \"origin\" as a string")) {
            try PaymentAuthorisation.verified(paymentBody: versionOneBody)
        }
        // Without --origin: a usage error; an origin no ledger can have: refused as the ledger would refuse it.
        let missing = try await circuito(arguments)
        #expect(missing.status == 64 && missing.stdout.isEmpty)
        #expect(missing.stderr.contains("--origin"), "\(missing.stderr)")
        let bad = try await circuito(arguments + ["--origin", "two words"])
        #expect(bad.status == 1 && bad.stdout.isEmpty)
        #expect(bad.stderr.hasPrefix("error: invalid_body: payment authorisation origin"), "\(bad.stderr)")
    }

    @Test("a negative number given as an option's value gets that option's own range error, not \"Missing value\"")
    func negativeOptionValues() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let cases: [(arguments: [String], message: String)] = [
            (["bench", "--events", "-5"], "--events must be 1 to"),
            (["demo", "--data", workspace.path("demo"), "--beneficiaries", "-3"], "--beneficiaries must be between"),
            (["append", "--data", workspace.path("none"), "--batch", "-2"], "--batch must be between"),
            (["serve", "--data", workspace.path("none"), "--idle-timeout-seconds", "-0.5"], "'-0.5' is invalid for '--idle-timeout-seconds"),
            (["init", "--data", workspace.path("none"), "--authority-key", workspace.path("authority.key"), "--map-size", "-1GiB"], "--map-size takes a whole number"),
        ]
        try await #require(try circuito("keygen", "--out", workspace.path("authority.key")).succeeded)
        for (arguments, message) in cases {
            let refused = try await circuito(arguments)
            #expect(refused.status != 0 && refused.stdout.isEmpty, "\(arguments)")
            #expect(refused.stderr.contains(message) && !refused.stderr.contains("Missing value"), "\(arguments): \(refused.stderr)")
        }
        #expect(access(workspace.path("demo"), F_OK) != 0, "a refused demo creates nothing")
        // A command that only groups others, run without one of them: a usage error naming them, not help and 0.
        // Its usage line is the group's own (it was the root's, "circuito <subcommand>", for every group).
        for group in [[], ["proof"], ["vault"], ["badge"], ["client"]] {
            let bare = try await circuito(group)
            #expect(bare.status == 64 && bare.stderr.contains("needs one of its subcommands: "), "\(group): \(bare.status) \(bare.stderr)")
            let path = (["circuito"] + group).joined(separator: " ")
            #expect(bare.stderr.contains("\nUsage: \(path) <subcommand>\n  See '\(path) --help' for more information.\n"), "\(group): \(bare.stderr)")
        }
        // An option with no value at all still says so.
        let missing = try await circuito(["bench", "--events"])
        #expect(missing.status != 0 && missing.stderr.contains("Missing value"), "\(missing.stderr)")
    }

    @Test("help: every client subcommand's overview and discussion read as prose, without runs of spaces inside a sentence (client case's --vault text had a line's indentation joined into it)")
    func clientHelpProse() async throws {
        let subcommands = [
            "info", "submit", "balance", "history", "case", "cases", "catalogue", "actor", "badge", "status-list", "checkpoint",
            "proof", "events", "report", "subscribe", "settlement", "policy", "expired-lots",
        ]
        for subcommand in subcommands {
            let help = try await circuito("client", subcommand, "--help")
            #expect(help.status == 0, "\(subcommand): \(help.stderr)")
            // The prose comes before the usage line; the option table after it aligns its columns with spaces.
            let prose = help.stdout.components(separatedBy: "\nUSAGE:").first ?? ""
            let runs = prose.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).contains("  ") }
            #expect(runs.isEmpty, "client \(subcommand) --help: \(runs)")
        }
    }

    @Test("vectors: a file that cannot be written is storage_error and exit 1, never a quiet 0; the others are written whole")
    func vectorsWriteFailure() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let out = workspace.path("vectors")
        #expect(mkdir(out, 0o755) == 0)
        // One vector's file is a way to a full disk.
        #expect(symlink("/dev/full", out + "/events.json") == 0)
        let refused = try await circuito(["vectors", "--out", out])
        #expect(refused.status == 1 && refused.stderr.hasPrefix("error: storage_error: cannot write \(out)/events.json"), "\(refused.stderr)")
        #expect(!refused.stdout.contains("events.json"), "\(refused.stdout)")
        unlink(out + "/events.json")
        let written = try await circuito(["vectors", "--out", out])
        #expect(written.status == 0, "\(written.stderr)")
        let expected = try #require(try SpecVectors.generate()["events.json"])
        #expect(try FileIO.readFile(out + "/events.json", maximumBytes: 1 << 24) == Array(expected.utf8))
    }

    @Test("a client's seq, size or position past 2^53 - 1, or a timeout under a second, is a usage error, nothing sent, never a crash")
    func clientNumberOptions() async throws {
        // No server at this address: an option that were sent would fail with connection_failed instead.
        let server = ["--server", "127.0.0.1:1"]
        let tooLarge = "9223372036854775808"
        let cases: [[String]] = [
            ["client", "proof", "--seq", tooLarge], ["client", "proof", "--seq", "0", "--size", tooLarge],
            ["client", "proof", "--from", "18446744073709551615"], ["client", "proof", "--from", "1", "--to", "9007199254740992"],
            ["client", "checkpoint", "--covering", tooLarge], ["client", "events", "--from", tooLarge],
            ["client", "subscribe", "--from", tooLarge], ["client", "history", "--account", "a", "--after", tooLarge],
            ["client", "case", "--beneficiary", "b", "--after", tooLarge], ["client", "submit", "--expected-size", tooLarge],
        ]
        for arguments in cases {
            let refused = try await circuito(arguments + server)
            #expect(refused.status == 64 && refused.stdout.isEmpty, "\(arguments): \(refused.status) \(refused.stderr)")
            #expect(refused.stderr.contains("must be a whole number from 0 to 9007199254740991"), "\(arguments): \(refused.stderr)")
        }
        for timeout in ["0", "-1", "86401"] {
            let refused = try await circuito(["client", "info", "--timeout", timeout] + server)
            #expect(refused.status == 64 && refused.stderr.contains("--timeout must be from 1 to 86400 seconds"), "\(timeout): \(refused.stderr)")
        }
        // Refused before the replica is made or the leader reached.
        let workspace = try Workspace()
        defer { workspace.remove() }
        for heartbeat in ["-1", "3601", "x"] {
            let refused = try await circuito([
                "follow", "--from", "127.0.0.1:1", "--data", workspace.path("replica"), "--key", workspace.path("none.key"), "--actor", "audit",
                "--heartbeat-seconds", heartbeat,
            ])
            #expect(refused.status == 64 && refused.stderr.contains("--heartbeat-seconds"), "\(heartbeat): \(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: workspace.path("replica")))
        }
        // The largest exact integer is taken and sent (and the missing server is what fails).
        let sent = try await circuito(["client", "proof", "--seq", "9007199254740991"] + server)
        #expect(sent.status == 1 && sent.stderr.hasPrefix("error: connection_failed"), "\(sent.stderr)")
    }

    @Test("a Unix socket path longer than an address holds is invalid_range for client and follow, as for serve --unix, and follow stops at once instead of retrying it")
    func clientAndFollowRefuseAnOverlongSocketPath() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let key = workspace.path("audit.key")
        #expect(try await circuito("keygen", "--out", key).status == 0)
        // 108 bytes: one more than sun_path holds with its NUL.
        let path = "/tmp/" + String(repeating: "s", count: 103)
        for server in [path, "unix:" + path] {
            let client = try await circuito("client", "info", "--server", server)
            #expect(client.status == 1 && client.stdout.isEmpty, "\(server): \(client.status) \(client.stderr)")
            #expect(client.stderr.hasPrefix("error: invalid_range: ") && client.stderr.contains("at most 107 bytes"), "\(client.stderr)")
        }
        // Taken for a connection failure, follow retried it (1, 2, 4 … 30 s apart) until stopped.
        let replica = workspace.path("replica")
        let follow = try await circuito(["follow", "--from", path, "--data", replica, "--key", key, "--actor", "audit"], timeout: 30)
        #expect(follow.exitedNormally && follow.status == 1, "\(follow.status) \(follow.stderr)")
        #expect(follow.stderr.hasPrefix("error: invalid_range: ") && follow.stderr.contains("at most 107 bytes"), "\(follow.stderr)")
        #expect(!FileManager.default.fileExists(atPath: replica), "follow made its replica folder before refusing the address")
    }

    @Test("a --verifier-key that is not one is refused naming the text given, for client submit and follow")
    func malformedVerifierKeyIsNamed() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let key = workspace.path("audit.key")
        #expect(try await circuito("keygen", "--out", key).status == 0)
        // No server there: the key is refused before anything connects.
        let runs = [
            try await circuito(["client", "submit", "--server", "127.0.0.1:1", "--verifier-key", "not-a-key"], stdin: ""),
            try await circuito([
                "follow", "--from", "127.0.0.1:1", "--data", workspace.path("replica"), "--key", key, "--actor", "audit",
                "--verifier-key", "not-a-key",
            ], timeout: 30),
        ]
        for run in runs {
            // Before: "a note verifier key is <name>+…", which named neither the option nor the text.
            #expect(run.status == 1 && run.stderr.hasPrefix("error: invalid_key: \"not-a-key\" is not a note verifier key"), "\(run.status) \(run.stderr)")
        }
    }

    // MARK: - 5c. Option checks

    @Test("serve: a bound out of its range is a usage error naming it, and --listen given a path or a bare port says what it takes, before the ledger is opened")
    func serveOptionChecks() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        // No ledger there: an option that got past its check would fail on opening it instead, with another message.
        let absent = workspace.path("none")
        let week = "must be 0 (never) to 604800 (a week)"
        let usageErrors: [(arguments: [String], message: String)] = [
            (["--maximum-frame-bytes", "1023"], "--maximum-frame-bytes must be at least 1024"),
            (["--maximum-connections", "0"], "--maximum-connections must be at least 1"),
            (["--maximum-in-flight", "0"], "--maximum-in-flight must be at least 1"),
            (["--maximum-commit-batch", "0"], "--maximum-commit-batch must be at least 1"),
            (["--maximum-subscriber-buffer", "0"], "--maximum-subscriber-buffer must be at least 1"),
            // Past these the server would crash: working out its file limit, or when a line arrives in parts.
            (["--maximum-connections", "1048577"], "--maximum-connections must be at most 1048576"),
            (["--maximum-connections", String(Int.max)], "--maximum-connections must be at most 1048576"),
            (["--maximum-frame-bytes", "1073741825"], "--maximum-frame-bytes must be at most 1073741824"),
            (["--maximum-frame-bytes", String(Int.max)], "--maximum-frame-bytes must be at most 1073741824"),
            (["--maximum-commit-batch", "4097"], "--maximum-commit-batch must be at most 4096"),
            (["--idle-timeout-seconds", "-1"], "--idle-timeout-seconds " + week),
            (["--idle-timeout-seconds", "604801"], "--idle-timeout-seconds " + week),
            (["--write-stall-timeout-seconds", "-1"], "--write-stall-timeout-seconds " + week),
            (["--write-stall-timeout-seconds", "604801"], "--write-stall-timeout-seconds " + week),
        ]
        for (arguments, message) in usageErrors {
            let refused = try await circuito(["serve", "--data", absent, "--listen", "127.0.0.1:0"] + arguments)
            #expect(refused.status == 64 && refused.stdout.isEmpty, "\(arguments): \(refused.status) \(refused.stderr)")
            #expect(refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
        let socketPath = workspace.path("s.sock")
        let listenRefusals: [(listen: String, message: String)] = [
            (socketPath, "--listen takes HOST:PORT, not \"\(socketPath)\"; use --unix for a socket path"),
            ("unix:s.sock", "--listen takes HOST:PORT, not \"unix:s.sock\"; use --unix for a socket path"),
            ("7411", "\"7411\" is not HOST:PORT (did you mean 127.0.0.1:7411?) or a Unix socket path"),
        ]
        for (listen, message) in listenRefusals {
            let refused = try await circuito(["serve", "--data", absent, "--listen", listen])
            #expect(refused.status == 1 && refused.stdout.isEmpty, "\(listen): \(refused.status)")
            #expect(refused.stderr == "error: invalid_range: \(message)\n", "\(listen): \(refused.stderr)")
        }
        #expect(access(absent, F_OK) != 0 && access(socketPath, F_OK) != 0, "a refused serve created a file")
    }

    @Test("serve takes each bound at its least and 0 as never for the timeouts; a commit batch under 256 events lowers what one submit_batch takes (server.info)")
    func serveBoundsAtTheirLeast() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let server = try ChildProcess([
            "serve", "--data", ledger.directory, "--listen", "127.0.0.1:0", "--maximum-frame-bytes", "1024", "--maximum-connections", "1",
            "--maximum-in-flight", "1", "--maximum-commit-batch", "100", "--maximum-subscriber-buffer", "1", "--idle-timeout-seconds", "0",
            "--write-stall-timeout-seconds", "0",
        ])
        defer { kill(server.pid, SIGTERM) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let info = try await circuito("client", "info", "--server", endpoint)
        try #require(info.succeeded, "\(info.stderr)")
        let limits = try #require(try JSONParser.parse(info.stdoutBytes)["limits"])
        #expect(limits["maximum_frame_bytes"] == 1024 && limits["maximum_connections"] == 1, "\(limits)")
        #expect(limits["maximum_in_flight_per_connection"] == 1 && limits["maximum_subscriber_buffer_records"] == 1, "\(limits)")
        // A batch request must fit in one commit: one of 256 events would never be taken by a writer of 100.
        #expect(limits["maximum_events_per_batch_request"] == 100, "\(limits)")
        #expect(limits["idle_timeout_seconds"] == .null && limits["write_stall_timeout_seconds"] == .null, "\(limits)")
    }

    @Test("an endless line is not buffered: sign reads 64 MiB of one line in bounded memory and refuses it as too_large")
    func longLineIsNotBuffered() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let key = workspace.path("signer.key")
        try KeyFile.write(Ed25519PrivateKey(), to: key)
        let signer = try ChildProcess(["sign", "--key", key, "--actor", "someone"], stdin: [UInt8](repeating: 0x78, count: 64 << 20) + [0x0A])
        // The most it held, read while it runs (the kernel keeps the peak); bounded, since a reader that kept the
        // line would also search it again on each read, and take many minutes.
        var peak: UInt64 = 0
        let deadline = Date().addingTimeInterval(120)
        while signer.process.isRunning && Date() < deadline {
            if let memory = ProcessMemory.read(pid: signer.pid) { peak = max(peak, memory.peakResidentBytes) }
            try await Task.sleep(for: .milliseconds(20))
        }
        let result = await signer.wait(timeout: 1)
        #expect(result.status == 1 && result.stderr.hasPrefix("error: line 1: too_large: "), "\(result.status) \(result.stderr)")
        #expect(peak > 0 && peak < 48 << 20, "sign held \(peak >> 20) MiB for a line of 64 MiB")
    }

    @Test("client proof: --seq and --from together, or neither, is a usage error, nothing sent")
    func clientProofNeedsOneKind() async throws {
        // No server at this address: a command that got past its check would fail with connection_failed instead.
        for options in [["--seq", "1", "--from", "1"], ["--seq", "1", "--to", "2", "--from", "1"], []] {
            let refused = try await circuito(["client", "proof", "--server", "127.0.0.1:1"] + options)
            #expect(refused.status == 64 && refused.stdout.isEmpty, "\(options): \(refused.status) \(refused.stderr)")
            #expect(refused.stderr.contains("give --seq (inclusion) or --from (consistency)"), "\(options): \(refused.stderr)")
        }
    }

    @Test("a signed read without its key, or with a key file that cannot be read, is named as such also when the server cannot be reached")
    func clientSignedReadNeedsItsKeyFirst() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        // No server at this address: the request is made before the connection, so its own error comes first.
        let server = ["--server", "127.0.0.1:1"]
        for arguments in [["client", "balance", "--account", "a"], ["client", "report"], ["client", "case", "--beneficiary", "b"]] {
            let refused = try await circuito(arguments + server)
            #expect(refused.status == 1 && refused.stderr.hasPrefix("error: invalid_read_request: "), "\(arguments): \(refused.stderr)")
        }
        let missing = workspace.path("missing.key")
        let unreadable = try await circuito(["client", "balance", "--account", "a", "--key", missing, "--actor", "r"] + server)
        #expect(unreadable.status == 1 && unreadable.stderr.hasPrefix("error: key_file: ") && unreadable.stderr.contains(missing), "\(unreadable.stderr)")
        // With its key, the missing server is what fails.
        let keyPath = workspace.path("reader.key")
        try KeyFile.write(Ed25519PrivateKey(), to: keyPath)
        let sent = try await circuito(["client", "balance", "--account", "a", "--key", keyPath, "--actor", "r"] + server)
        #expect(sent.status == 1 && sent.stderr.hasPrefix("error: connection_failed"), "\(sent.stderr)")
    }

    @Test("authorise: an amount or an expiry out of range is a usage error (exit 64) and nothing is signed; the bounds themselves are taken")
    func authoriseBounds() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let walletFile = workspace.path("wallet.key")
        try KeyFile.write(Ed25519PrivateKey(), to: walletFile)
        let arguments = ["authorise", "--key", walletFile, "--origin", "cli.test/ledger", "--beneficiary", "ben-1", "--merchant", "shop"]
        let amount = "--amount must be from 1 to \(Amounts.maximum) cents"
        let expiry = "--expires-in-seconds must be from 1 to 86400"
        let refusals: [(options: [String], message: String)] = [
            (["--amount", "0"], amount), (["--amount", "-5"], amount), (["--amount", String(Amounts.maximum + 1)], amount),
            (["--amount", "1", "--expires-in-seconds", "0"], expiry), (["--amount", "1", "--expires-in-seconds", "86401"], expiry),
        ]
        for (options, message) in refusals {
            let refused = try await circuito(arguments + options)
            #expect(refused.status == 64 && refused.stdout.isEmpty, "\(options): \(refused.status) \(refused.stderr)")
            #expect(refused.stderr.contains(message), "\(options): \(refused.stderr)")
        }
        for options in [["--amount", "1", "--expires-in-seconds", "1"], ["--amount", String(Amounts.maximum), "--expires-in-seconds", "86400"]] {
            let signed = try await circuito(arguments + options)
            #expect(signed.succeeded, "\(options): \(signed.stderr)")
            let body = try #require(try JSONParser.parse(signed.stdout.trimmingCharacters(in: .newlines)).objectValue)
            #expect(try PaymentAuthorisation.verified(paymentBody: body).amount == Int64(options[1]), "\(options)")
        }
    }

    @Test("append reads a line of exactly 65536 bytes and a last line without its newline; one byte more, or a much longer line, is too_large whole, never its tail taken as a line")
    func lineLengthBound() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let limit = EventLimits.maximumSignedEventBytes
        func registration(_ name: String) throws -> String {
            try ledger.authority.register(TestActor("merchant-\(name)"), role: "merchant", name: name)
        }
        func padded(_ line: String, to length: Int) -> String { line + String(repeating: " ", count: length - line.utf8.count) }
        // Spaces before an event: past the bound the reader drops what it buffered, and what is left of the line,
        // taken as one, would be that event.
        let longLine = String(repeating: " ", count: 4 * limit) + (try registration("Long"))
        let lines = [padded(try registration("Exact"), to: limit), padded(try registration("Over"), to: limit + 1), longLine]
        let appended = try await circuito(["append", "--data", ledger.directory], stdin: lines.joined(separator: "\n") + "\n" + (try registration("Last")))
        #expect(appended.status == 1, "\(appended.stderr)")
        let printed = appended.stdout.split(separator: "\n").map(String.init)
        try #require(printed.count == 4, "\(appended.stdout.prefix(2000))")
        #expect(try PrintedReceipt(line: printed[0]).seq == 1)
        for (index, line) in [(1, Int64(2)), (2, Int64(3))] {
            let refused = try refusal(printed[index])
            #expect(refused.code == "too_large" && refused.line == line, "\(printed[index].prefix(300))")
        }
        #expect(try PrintedReceipt(line: printed[3]).seq == 2)
        // The same long line last, without its newline.
        let unterminated = try await circuito(["append", "--data", ledger.directory], stdin: longLine)
        #expect(unterminated.status == 1 && unterminated.stdout.split(separator: "\n").count == 1, "\(unterminated.stdout.prefix(2000))")
        let refused = try refusal(unterminated.stdout.trimmingCharacters(in: .newlines))
        #expect(refused.code == "too_large" && refused.line == 1, "\(unterminated.stdout.prefix(300))")
        await #expect(try ledger.root().size == 3)
    }

    // MARK: - 5b. Map size

    @Test("a full map: append stops with map_full naming --map-size; run again with a larger one, it takes the rest; a reader of the smaller map is told to run again")
    func mapSize() async throws {
        let ledger = try await TestLedger(initArguments: ["--map-size", "1MiB"])
        defer { ledger.remove() }
        let lines = try (1...1500).map { try ledger.authority.register(TestActor("merchant-\($0)"), role: "merchant", name: "Shop \($0)") }

        // A bad size is refused before anything is written.
        for bad in ["16", "1.5GiB", "0MiB", "64TiB"] {
            let refused = try await circuito(["append", "--data", ledger.directory, "--map-size", bad], stdin: lines[0] + "\n")
            #expect(refused.status == 1 && refused.stdout.isEmpty)
            #expect(refused.stderr.hasPrefix("error: invalid_range: --map-size"), "\(bad): \(refused.stderr)")
        }
        await #expect(try ledger.root().size == 1)

        do {
            // This process's reader maps the 1 MiB the ledger records. (A writer told no size would take 16 GiB.)
            let reader = try LedgerReader.open(directory: ledger.directory)
            let full = try await circuito(["append", "--data", ledger.directory, "--map-size", "1MiB"], stdin: lines.joined(separator: "\n") + "\n")
            #expect(full.status == 1)
            #expect(full.stderr.hasPrefix("error: map_full: ") && full.stderr.contains("--map-size"), "\(full.stderr)")
            let written = try await ledger.root().size
            #expect(written > 1 && written < 1501, "the 1 MiB map took \(written) records")
            // Receipts were printed for exactly what was written.
            #expect(try full.completeLines.map { try PrintedReceipt(line: $0).seq } == Array(1..<written))
            #expect(try reader.size() == written)

            let file = try ledger.workspace.write("all.jsonl", lines: lines)
            let larger = try await circuito("append", "--data", ledger.directory, "--map-size", "16MiB", file)
            #expect(larger.succeeded, "\(larger.stderr)")
            #expect(try larger.completeLines.map { try PrintedReceipt(line: $0).seq } == Array(1...1500))
            await #expect(try ledger.root().size == 1501)
            await #expect(try ledger.verify().succeeded)

            // The records now lie beyond this process's map: a clear error, not a crash or a short read.
            do {
                _ = try reader.size()
                Issue.record("a reader past its map read the grown ledger")
            } catch {
                #expect(error.code == .storage && error.message.contains("run the command again"), "\(error)")
            }
        }
        // Run again (once the first reader is closed: one environment per file and process), it reads them all.
        #expect(try LedgerReader.open(directory: ledger.directory).size() == 1501)
    }
}

// MARK: - 6. Tampering

/// A ledger of genesis and 30 registrations "Tamper Target 1…30" (seq 1…30), appended in three calls of ten
/// (checkpoints at sizes 11, 21 and 31), and its exported lines.
struct TamperFixture {
    let ledger: TestLedger
    let exported: [String]

    init() async throws {
        let ledger = try await TestLedger()
        self.ledger = ledger
        for call in 0..<3 {
            let lines = try (1...10).map { offset in
                let number = call * 10 + offset
                return try ledger.authority.register(TestActor("target-\(number)"), role: "merchant", name: "Tamper Target \(number)")
            }
            let result = try await ledger.append(lines)
            try #require(result.succeeded, "append failed: \(result.stderr)")
        }
        let verify = try await ledger.verify()
        try #require(verify.succeeded, "verify before tampering: \(verify.stderr)")
        exported = try await ledger.export()
        try #require(exported.count == 31)
    }

    var dataFile: String { ledger.directory + "/data.mdb" }

    /// Overwrites bytes of the record at `seq` inside data.mdb: `edit` gets the leaf bytes and returns (offset in
    /// the leaf, new bytes). LMDB is copy-on-write, so pages freed by later commits may still hold an old copy of
    /// the record; every copy is changed the same way (only the live one matters to readers).
    func tamper(seq: Int, _ edit: ([UInt8]) throws -> (offset: Int, bytes: [UInt8])) async throws {
        let leaf = Array(exported[seq].utf8)
        let file = [UInt8](try #require(FileManager.default.contents(atPath: dataFile)))
        let occurrences = positions(of: leaf, in: file)
        try #require(!occurrences.isEmpty, "the record at seq \(seq) is not in data.mdb as its leaf bytes")
        let (offset, bytes) = try edit(leaf)
        try #require(offset >= 0 && offset + bytes.count <= leaf.count)
        try #require(Array(leaf[offset..<(offset + bytes.count)]) != bytes, "the edit changes nothing")
        var changed = file
        for occurrence in occurrences {
            changed.replaceSubrange((occurrence + offset)..<(occurrence + offset + bytes.count), with: bytes)
        }
        try Data(changed).write(to: URL(fileURLWithPath: dataFile))
        // The live copy was hit: export now shows the change.
        let after = try await ledger.export()
        var expected = leaf
        expected.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        #expect(Array(after[seq].utf8) == expected)
    }

    /// Offset of `needle` in `leaf`.
    static func offset(of needle: String, in leaf: [UInt8]) throws -> Int {
        let found = positions(of: Array(needle.utf8), in: leaf)
        try #require(found.count == 1, "\(needle) occurs \(found.count) times")
        return found[0]
    }

    /// recorded_at of the record at `seq` and its offset in the leaf.
    func recordedAt(seq: Int) throws -> (text: String, offset: Int) {
        let leaf = Array(exported[seq].utf8)
        let start = try Self.offset(of: "\"recorded_at\":\"", in: leaf) + "\"recorded_at\":\"".utf8.count
        let end = try #require(leaf[start...].firstIndex(of: UInt8(ascii: "\"")))
        return (String(decoding: leaf[start..<end], as: UTF8.self), start)
    }
}

func positions(of needle: [UInt8], in haystack: [UInt8]) -> [Int] {
    guard let first = needle.first, needle.count <= haystack.count else { return [] }
    var found: [Int] = []
    var index = 0
    let last = haystack.count - needle.count
    while index <= last {
        if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) { found.append(index) }
        index += 1
    }
    return found
}

@Suite("circuito verify finds tampering", OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10)))
struct TamperTests {
    @Test("verify --verifier-key refuses another ledger's copy before its replay: the key is named, not a damaged record further on")
    func pinnedKeyIsCheckedBeforeTheReplay() async throws {
        let fixture = try await TamperFixture()
        defer { fixture.ledger.remove() }
        try await fixture.tamper(seq: 17) { leaf in (try TamperFixture.offset(of: "\"Tamper Target 17\"", in: leaf) + 8, [UInt8(ascii: "X")]) }
        let other = try await TestLedger()
        defer { other.remove() }
        let verify = try await circuito("verify", "--data", fixture.ledger.directory, "--verifier-key", other.verifierKey)
        #expect(verify.status == 1 && verify.stdout.isEmpty)
        #expect(verify.stderr.hasPrefix("verify failed: integrity_failure: the ledger's genesis names checkpoint key \(fixture.ledger.verifierKey), not the given \(other.verifierKey)"), "\(verify.stderr)")
        // With its own key it replays, and finds the damage.
        let own = try await circuito("verify", "--data", fixture.ledger.directory, "--verifier-key", fixture.ledger.verifierKey)
        #expect(own.stderr.hasPrefix("verify failed at seq 17: integrity_failure: "), "\(own.stderr)")
    }

    @Test("one changed letter in a signed field fails verify at that record's seq")
    func signedFieldTampered() async throws {
        let fixture = try await TamperFixture()
        defer { fixture.ledger.remove() }
        try await fixture.tamper(seq: 17) { leaf in
            // "Tamper Target 17" → "Tamper Xarget 17"
            (try TamperFixture.offset(of: "\"Tamper Target 17\"", in: leaf) + 8, [UInt8(ascii: "X")])
        }
        let verify = try await fixture.ledger.verify()
        #expect(verify.status == 1)
        #expect(verify.stdout.isEmpty)
        // The stored leaf hash catches the change first; either way the record is named by its own seq.
        #expect(verify.stderr.hasPrefix("verify failed at seq 17: integrity_failure: "), "\(verify.stderr)")
    }

    @Test("an earlier recorded_at (one byte) fails verify at that record's seq")
    func recordedAtMadeEarlier() async throws {
        let fixture = try await TamperFixture()
        defer { fixture.ledger.remove() }
        let (text, offset) = try fixture.recordedAt(seq: 15)
        try #require(text.first == "2")
        // Year 2xxx → 1xxx: still a valid timestamp, covered only by the tree and checkpoints.
        try await fixture.tamper(seq: 15) { _ in (offset, [UInt8(ascii: "1")]) }
        let verify = try await fixture.ledger.verify()
        #expect(verify.status == 1)
        #expect(failedSeq(verify.stderr) == 15, "\(verify.stderr)")
    }

    @Test("a later recorded_at (one byte) fails verify naming that record's seq")
    func recordedAtMadeLater() async throws {
        let fixture = try await TamperFixture()
        defer { fixture.ledger.remove() }
        let (text, offset) = try fixture.recordedAt(seq: 15)
        try #require(text.first == "2")
        // Year 2xxx → 3xxx.
        try await fixture.tamper(seq: 15) { _ in (offset, [UInt8(ascii: "3")]) }
        let verify = try await fixture.ledger.verify()
        #expect(verify.status == 1)
        let reported = failedSeq(verify.stderr)
        #expect(reported != nil, "\(verify.stderr)")
        #expect(reported == 15, "\(verify.stderr)")
    }

    @Test("a recorded_at changed within the order (seen only by the tree) fails verify naming that record's seq")
    func recordedAtWithinOrder() async throws {
        let fixture = try await TamperFixture()
        defer { fixture.ledger.remove() }
        // seq 11 opens the second batch; give it seq 10's recorded_at (earlier, but not before seq 10's).
        let previous = try fixture.recordedAt(seq: 10)
        let target = try fixture.recordedAt(seq: 11)
        try #require(previous.text != target.text, "the two batches were recorded in the same millisecond")
        try #require(previous.text.utf8.count == target.text.utf8.count)
        try await fixture.tamper(seq: 11) { _ in (target.offset, Array(previous.text.utf8)) }
        let verify = try await fixture.ledger.verify()
        #expect(verify.status == 1)
        #expect(verify.stderr.contains("integrity_failure"), "\(verify.stderr)")
        let reported = failedSeq(verify.stderr)
        #expect(reported != nil, "\(verify.stderr)")
        #expect(reported == 11, "\(verify.stderr)")
    }
}

// MARK: - 7. kill -9 during append

@Suite("circuito append survives kill -9", OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10)))
struct CrashTests {
    @Test("receipts printed before SIGKILL are durable; a rerun completes the file idempotently")
    func killDuringAppend() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let eventCount = 3000
        let lines = try (1...eventCount).map { number in
            try ledger.authority.register(TestActor("crash-\(number)"), role: "merchant", name: "Crash Shop \(number)")
        }
        let ids = (1...eventCount).map { "reg-crash-\($0)" }
        let file = try ledger.workspace.write("crash.jsonl", lines: lines)
        let arguments = ["append", "--data", ledger.directory, "--batch", "8", file]

        // Receipts seen so far, by event id: later runs must give exactly the same line.
        var seen: [String: String] = [:]
        let indexByID = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
        func check(_ receipts: [PrintedReceipt]) async throws {
            for receipt in receipts {
                let index = try #require(indexByID[receipt.id], "unknown id \(receipt.id)")
                #expect(receipt.seq == UInt64(index + 1), "\(receipt.id) at seq \(receipt.seq)")
                if let earlier = seen[receipt.id] {
                    #expect(earlier == receipt.line, "receipt for \(receipt.id) changed")
                } else {
                    seen[receipt.id] = receipt.line
                }
            }
            let exported = try await ledger.export()
            for receipt in receipts {
                try #require(receipt.seq < UInt64(exported.count), "receipt seq \(receipt.seq) is not in the log (\(exported.count) records)")
                let line = exported[Int(receipt.seq)]
                #expect(leafHash(line) == receipt.leafHash, "seq \(receipt.seq)")
                #expect(try Record(leafBytes: Array(line.utf8)).signedEvent.event.id == receipt.id)
            }
        }

        // The events go in through stdin, which stays open: however fast the machine and however late the test
        // thread runs, the child cannot reach the end of its input before the kill. After the target, one more
        // piece is written and the kill follows at once, so the child is killed with events in flight.
        let streamingArguments = ["append", "--data", ledger.directory, "--batch", "8"]
        let pieceCount = 16
        for round in 1...2 {
            let recordsBefore = try await ledger.root().size - 1
            let target = Int(recordsBefore) + 200
            let child = try ChildProcess(streamingArguments, keepStdinOpen: true)
            var written = 0
            func writePiece() {
                let end = min(written + pieceCount, lines.count)
                guard written < end else { return }
                child.writeToStdin(lines[written..<end].joined(separator: "\n") + "\n")
                written = end
            }
            while child.stdout.lineCount < target && written < target + pieceCount {
                writePiece()
                _ = await child.stdout.waitForLines(min(target, written - pieceCount), timeout: 30)
            }
            let reached = await child.stdout.waitForLines(target, timeout: 120)
            writePiece()
            kill(child.pid, SIGKILL)
            let result = await child.wait()
            #expect(reached, "round \(round): only \(child.stdout.lineCount) receipts within the time limit")
            #expect(result.signaled && result.status == SIGKILL, "round \(round): append ended before the kill (status \(result.status))")
            let receipts = try result.completeLines.map(PrintedReceipt.init(line:))
            #expect(receipts.count >= target)
            #expect(receipts.count <= written, "round \(round): more receipts than events written")
            try await check(receipts)
            let verify = try await ledger.verify()
            #expect(verify.succeeded, "round \(round): verify after kill: \(verify.stderr)")
            let size = try await ledger.root().size
            #expect(size - 1 >= UInt64(receipts.count), "round \(round): fewer records than receipts")
        }

        // The same file once more: earlier events come back with their receipts, the rest are appended.
        let final = try await runToCompletion(arguments)
        #expect(final.succeeded, "final append: \(final.stderr)")
        let receipts = try final.completeLines.map(PrintedReceipt.init(line:))
        #expect(receipts.count == eventCount)
        #expect(receipts.map(\.id) == ids)
        try await check(receipts)
        await #expect(try ledger.root().size == UInt64(eventCount + 1))
        let verify = try await ledger.verify()
        #expect(verify.succeeded, "final verify: \(verify.stderr)")
    }
}
