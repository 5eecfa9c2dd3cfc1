import CircuitoCore
import CircuitoStorage
import Dispatch
import Foundation

/// One request of a load phase: the params (sent as they are) and the request of the same connection, if any,
/// that must be answered first.
public struct BenchRequest: Sendable {
    public let params: [UInt8]
    /// Index, within the same connection's list, of a request whose answer, and every earlier request's, must arrive
    /// before this is sent (requests in flight together may be answered in any order; a badge needs all its
    /// activations, not only the last).
    public let dependency: Int?
    /// What the request counts for in the phase's figures: the events of a `submit_batch`, otherwise 1.
    public let itemCount: Int

    public init(params: [UInt8], dependency: Int? = nil, itemCount: Int = 1) {
        precondition(itemCount >= 1, "a request carries at least one item")
        self.params = params
        self.dependency = dependency
        self.itemCount = itemCount
    }
}

/// What a load phase measured. `sent`, `accepted` and `refusals` count items: the events of a write (a `submit_batch`
/// carries several, accepted or refused together), one per read; the latency is per accepted request.
public struct LoadOutcome: Sendable {
    /// Items the phase was given to send, over all connections.
    public var asked = 0
    public var sent = 0
    /// Requests sent (a `submit_batch` counts once, however many events it carries).
    public var requestsSent = 0
    public var accepted = 0
    /// Requests each connection made before the phase's own (`session.challenge` and `session.open`), answered.
    public var setupRequests = 0
    /// Refusals by the ledger's error code name (`insufficient_funds`, `overloaded`, …).
    public var refusals: [String: Int] = [:]
    /// Connection failures (refused connect, broken or timed-out connection), one line each.
    public var failures: [String] = []
    /// Of the answers that accepted their request: a refusal (an `overloaded` read, say) is answered faster than the
    /// work asked for, so it would only flatter the figures; refusals are counted apart. Each runs from just before
    /// the write of the window holding the request to the read of its answer (a closed loop: the time a request waited
    /// in the bench for room in its window or for its dependency is not in it).
    public var latency = LatencyHistogram()
    /// From the first request sent to the last answer read, over all connections.
    public var elapsedNanoseconds: UInt64 = 0
    /// From the first request sent to the moment the first connection that sent any had its last answer: the part
    /// of the phase during which every connection still had requests to send. Beneficiaries are drawn at random, so
    /// connections carry unequal shares of the mix, and after this the phase runs on fewer connections than asked.
    public var allConnectionsBusyNanoseconds: UInt64 = 0
    /// Items accepted within `allConnectionsBusyNanoseconds`.
    public var acceptedWhileAllConnectionsBusy = 0
    /// True when the phase's deadline stopped it before every request was sent.
    public var stoppedByDeadline = false

    public var refused: Int { refusals.values.reduce(0, +) }

    /// Whether every item asked for was accepted: none refused, none left unsent at the deadline, no connection
    /// failed. The figures of a phase that is not whole describe another load than the one asked for.
    public var whole: Bool { accepted == asked && !stoppedByDeadline && failures.isEmpty }

    /// Accepted requests per second of the phase.
    public var acceptedPerSecond: Double {
        elapsedNanoseconds == 0 ? 0 : Double(accepted) * 1e9 / Double(elapsedNanoseconds)
    }

    /// Accepted items per second while every connection was busy (nil when that part is empty).
    public var acceptedPerSecondWhileAllConnectionsBusy: Double? {
        allConnectionsBusyNanoseconds == 0 ? nil : Double(acceptedWhileAllConnectionsBusy) * 1e9 / Double(allConnectionsBusyNanoseconds)
    }

    /// The share of the phase during which every connection was busy (nil for a phase of no length).
    public var allConnectionsBusyShare: Double? {
        elapsedNanoseconds == 0 ? nil : Double(allConnectionsBusyNanoseconds) / Double(elapsedNanoseconds)
    }
}

/// Drives a server over K connections, one thread each, closed loop: each connection keeps at most
/// `pipelineDepth` requests waiting and sends a request only once every request up to the one it depends on has been
/// answered.
/// Requests are sent in order per connection; the phase ends when all are answered, or at the deadline (nothing is
/// sent after it; answers already due are still read, within the socket timeout).
public enum LoadDriver {
    public struct Options: Sendable {
        public var endpoint: Endpoint
        public var method: String
        public var pipelineDepth: Int
        /// Read timeout of each socket: a server silent this long fails the connection.
        public var socketTimeoutSeconds: Int
        /// Nothing is sent after this many seconds from the start.
        public var deadlineSeconds: Int
        /// When set, each connection first opens a read session (unmeasured, before the common start): this gives
        /// the signed `session.open` params of connection `number` for the connection's challenge.
        public var sessionOpen: (@Sendable (_ number: Int, _ challenge: String) -> JSONValue)?
        /// What starts the connections' threads: the system's; tests make a chosen start fail.
        var threads: ThreadStarter = .system

        public init(endpoint: Endpoint, method: String, pipelineDepth: Int = 1, socketTimeoutSeconds: Int = 60, deadlineSeconds: Int = 600) {
            self.endpoint = endpoint
            self.method = method
            self.pipelineDepth = pipelineDepth
            self.socketTimeoutSeconds = socketTimeoutSeconds
            self.deadlineSeconds = deadlineSeconds
        }
    }

    /// Runs one phase: `connections[i]` is the ordered list of requests of connection i.
    public static func run(_ connections: [[BenchRequest]], options: Options) -> LoadOutcome {
        let count = connections.count
        let results = Locked([ConnectionResult?](repeating: nil, count: count))
        let connected = DispatchGroup()
        let finished = DispatchGroup()
        let gate = Gate()
        for (number, requests) in connections.enumerated() {
            connected.enter()
            finished.enter()
            // Small stacks: the loop needs little, and there may be many connections.
            do throws(LedgerError) {
                try options.threads.start("bench-conn-\(number)", stackSizeBytes: 1 << 20) {
                    let result = runConnection(requests, number: number, options: options, connected: connected, gate: gate)
                    results.withLock { $0[number] = result }
                    finished.leave()
                }
            } catch {
                // A connection without its thread (the process is at a limit of threads) is a failed one.
                var result = ConnectionResult()
                result.failure = "\(error.code.name): \(error.message)"
                results.withLock { $0[number] = result }
                connected.leave()
                finished.leave()
            }
        }
        // Start every connection at once, after all have connected (or failed to).
        connected.wait()
        let deadline = monotonicNanoseconds() + UInt64(max(1, options.deadlineSeconds)) * 1_000_000_000
        gate.open(deadline: deadline)
        finished.wait()
        var outcome = LoadOutcome()
        outcome.asked = connections.reduce(0) { total, requests in requests.reduce(total) { $0 + $1.itemCount } }
        var first = UInt64.max
        var last: UInt64 = 0
        // The first of the connections that sent anything to have its last answer.
        var firstFinished = UInt64.max
        let connectionResults = results.withLock { $0 }
        for result in connectionResults {
            guard let result else { continue }
            outcome.sent += result.sent
            outcome.requestsSent += result.requestsSent
            outcome.accepted += result.accepted
            outcome.setupRequests += result.setupRequests
            for (code, number) in result.refusals { outcome.refusals[code, default: 0] += number }
            if let failure = result.failure { outcome.failures.append(failure) }
            outcome.latency.merge(result.latency)
            outcome.stoppedByDeadline = outcome.stoppedByDeadline || result.stoppedByDeadline
            if result.sent > 0 {
                first = min(first, result.firstSent)
                last = max(last, result.lastAnswered)
                firstFinished = min(firstFinished, result.lastAnswered)
            }
        }
        outcome.elapsedNanoseconds = last > first ? last - first : 0
        if firstFinished != .max, firstFinished > first {
            outcome.allConnectionsBusyNanoseconds = firstFinished - first
            for result in connectionResults {
                guard let result else { continue }
                // Each connection's answers are in the order it read them, so its times only grow.
                for (time, items) in result.acceptedAnswers {
                    guard time <= firstFinished else { break }
                    outcome.acceptedWhileAllConnectionsBusy += items
                }
            }
        }
        return outcome
    }

    /// Opens once for every waiting connection thread, with the common deadline.
    final class Gate: @unchecked Sendable {
        // @unchecked: `deadline` is written once before the semaphore opens and read after.
        private let condition = NSCondition()
        private var deadline: UInt64?

        func open(deadline: UInt64) {
            condition.lock()
            self.deadline = deadline
            condition.broadcast()
            condition.unlock()
        }

        func wait() -> UInt64 {
            condition.lock()
            defer { condition.unlock() }
            while deadline == nil { condition.wait() }
            return deadline ?? 0
        }
    }

    struct ConnectionResult: Sendable {
        var sent = 0
        var requestsSent = 0
        var accepted = 0
        var setupRequests = 0
        var refusals: [String: Int] = [:]
        var failure: String?
        var latency = LatencyHistogram()
        var firstSent: UInt64 = 0
        var lastAnswered: UInt64 = 0
        /// When each accepted answer was read, and the items it accepted, in the order read.
        var acceptedAnswers: [(time: UInt64, items: Int)] = []
        var stoppedByDeadline = false
    }

    static func runConnection(_ requests: [BenchRequest], number: Int, options: Options, connected: DispatchGroup, gate: Gate) -> ConnectionResult {
        var result = ConnectionResult()
        let connection: BenchConnection
        do throws(LedgerError) {
            connection = try BenchConnection(options.endpoint, timeoutSeconds: options.socketTimeoutSeconds)
            if let sessionOpen = options.sessionOpen {
                let challenge = try call(connection, method: "session.challenge", params: .object([:]))
                result.setupRequests += 1
                guard case .string(let text)? = challenge["challenge"] else {
                    throw LedgerError(.integrity, "session.challenge answered without a challenge")
                }
                _ = try call(connection, method: "session.open", params: sessionOpen(number, text))
                result.setupRequests += 1
            }
        } catch {
            connected.leave()
            _ = gate.wait()
            result.failure = "\(error.code.name): \(error.message)"
            return result
        }
        connected.leave()
        let deadline = gate.wait()
        let count = requests.count
        var sentAt = [UInt64](repeating: 0, count: count)
        var answered = [Bool](repeating: false, count: count)
        // The requests before this index are all answered.
        var answeredPrefix = 0
        var next = 0
        var inFlight = 0
        let methodBytes = Array(options.method.utf8)
        var window: [UInt8] = []
        window.reserveCapacity(64 * 1024)
        var windowStart = 0
        do throws(LedgerError) {
            while true {
                // Fill the window: in order, up to the depth, stopping at an unanswered dependency.
                window.removeAll(keepingCapacity: true)
                windowStart = next
                if monotonicNanoseconds() < deadline {
                    while next < count && inFlight < options.pipelineDepth {
                        if let dependency = requests[next].dependency, dependency >= answeredPrefix { break }
                        appendLine(to: &window, identifier: next, method: methodBytes, params: requests[next].params)
                        next += 1
                        inFlight += 1
                    }
                } else if next < count {
                    result.stoppedByDeadline = true
                }
                if !window.isEmpty {
                    let now = monotonicNanoseconds()
                    if result.sent == 0 { result.firstSent = now }
                    for index in windowStart..<next {
                        sentAt[index] = now
                        result.sent += requests[index].itemCount
                    }
                    result.requestsSent += next - windowStart
                    try connection.send(window)
                }
                if inFlight == 0 { break }
                let open = try connection.receiveLines { (line) throws(LedgerError) in
                    let now = monotonicNanoseconds()
                    let (identifier, refusal) = try parseAnswer(line)
                    guard identifier >= 0, identifier < count, !answered[identifier], sentAt[identifier] != 0 else {
                        throw LedgerError(.integrity, "the server answered request \(identifier), which is not waiting")
                    }
                    answered[identifier] = true
                    while answeredPrefix < count && answered[answeredPrefix] { answeredPrefix += 1 }
                    inFlight -= 1
                    result.lastAnswered = now
                    if let refusal {
                        result.refusals[refusal, default: 0] += requests[identifier].itemCount
                    } else {
                        result.accepted += requests[identifier].itemCount
                        result.acceptedAnswers.append((now, requests[identifier].itemCount))
                        result.latency.record(nanoseconds: now - sentAt[identifier])
                    }
                }
                guard open else {
                    throw LedgerError(.connectionFailed, "\(options.endpoint) closed the connection with \(inFlight) requests unanswered")
                }
            }
        } catch {
            result.failure = "\(error.code.name): \(error.message)"
        }
        return result
    }

    /// One request answered before the measured phase, its result parsed (an error is a failure of the connection).
    static func call(_ connection: BenchConnection, method: String, params: JSONValue) throws(LedgerError) -> JSONValue {
        var line: [UInt8] = []
        appendLine(to: &line, identifier: 0, method: Array(method.utf8), params: CanonicalJSON.encode(params))
        try connection.send(line)
        var answer: JSONValue?
        var failure: LedgerError?
        // One request, so one answer line; reads until it arrives (each read waits at most the socket timeout).
        for _ in 0..<1024 where answer == nil && failure == nil {
            let open = try connection.receiveLines { (line) throws(LedgerError) in
                guard answer == nil else { return }
                do throws(LedgerError) { answer = try JSONParser.parse(Array(line)) } catch { failure = error }
            }
            guard open else { throw LedgerError(.connectionFailed, "\(connection.endpoint) closed the connection during \(method)") }
        }
        if let failure { throw LedgerError(.invalidJSON, "the answer to \(method) is not JSON: \(failure.message)") }
        guard let answer else { throw LedgerError(.connectionFailed, "no answer to \(method)") }
        if let error = answer["error"] {
            throw LedgerError(.connectionFailed, "\(method) was refused: \(error["message"]?.stringValue ?? "no message")")
        }
        guard let result = answer["result"] else { throw LedgerError(.integrity, "the answer to \(method) has no result") }
        return result
    }

    static let linePrefix: [UInt8] = Array("{\"id\":".utf8)
    static let lineMethod: [UInt8] = Array(",\"jsonrpc\":\"2.0\",\"method\":\"".utf8)
    static let lineParams: [UInt8] = Array("\",\"params\":".utf8)
    static let lineEnd: [UInt8] = Array("}\n".utf8)

    /// `{"id":N,"jsonrpc":"2.0","method":M,"params":P}` and a newline (the canonical form, keys in order).
    static func appendLine(to buffer: inout [UInt8], identifier: Int, method: [UInt8], params: [UInt8]) {
        buffer += linePrefix
        buffer += Array(String(identifier).utf8)
        buffer += lineMethod
        buffer += method
        buffer += lineParams
        buffer += params
        buffer += lineEnd
    }

    static let answerPrefix: [UInt8] = Array("{\"id\":".utf8)

    /// The request id of an answer and, for an error, its code name. The server writes canonical JSON, so a
    /// result starts with `{"id":`; anything else (an error starts with `{"error":`) is parsed in full.
    static func parseAnswer(_ line: ArraySlice<UInt8>) throws(LedgerError) -> (identifier: Int, refusal: String?) {
        if line.starts(with: answerPrefix) {
            var value = 0
            var digits = 0
            for byte in line.dropFirst(answerPrefix.count) {
                guard byte >= 0x30, byte <= 0x39 else { break }
                value = value &* 10 &+ Int(byte - 0x30)
                digits += 1
                guard digits <= 18 else { break }
            }
            if digits > 0 && digits <= 18 { return (value, nil) }
        }
        let message: JSONValue
        do throws(LedgerError) { message = try JSONParser.parse(Array(line)) } catch {
            throw LedgerError(.invalidJSON, "the server sent a line that is not JSON: \(error.message)")
        }
        guard case .integer(let identifier)? = message["id"] else {
            let text = message["error"]?["message"]?.stringValue ?? "an answer without a request id"
            throw LedgerError(.integrity, "the server answered with no request id: \(text)")
        }
        guard let error = message["error"] else { return (Int(identifier), nil) }
        return (Int(identifier), error["data"]?["code"]?.stringValue ?? "code \(error["code"]?.integerValue ?? 0)")
    }
}
