import CircuitoCore
import CircuitoCrypto
@testable import CircuitoServer
import CircuitoStorage
import Foundation
import Glibc
import Testing

/// The bench's own logic: its histogram, its mix (valid in every order the driver may produce), its answer parsing.
@Suite(.timeLimit(.minutes(5))) struct BenchTests {
    // MARK: Histogram

    @Test func smallValuesAreExact() {
        var histogram = LatencyHistogram()
        for value in 1...100 { histogram.record(nanoseconds: UInt64(value)) }
        #expect(histogram.count == 100)
        #expect(histogram.valueAt(percentile: 50) == 50)
        #expect(histogram.valueAt(percentile: 99) == 99)
        #expect(histogram.valueAt(percentile: 100) == 100)
        #expect(histogram.valueAt(percentile: 0) == 1)
        #expect(histogram.minimumNanoseconds == 1)
        #expect(histogram.maximumNanoseconds == 100)
        #expect(histogram.meanNanoseconds == 50.5)
    }

    /// The definition the README gives: nearest rank, ⌈p/100 × n⌉, over every value, on the smallest samples too.
    @Test func percentilesAreNearestRankOnSmallSamples() {
        func histogram(_ values: [UInt64]) -> LatencyHistogram {
            var histogram = LatencyHistogram()
            for value in values { histogram.record(nanoseconds: value) }
            return histogram
        }
        let one = histogram([5])
        #expect([50.0, 90, 99, 100].map { one.valueAt(percentile: $0) } == [5, 5, 5, 5])
        let two = histogram([7, 3])
        #expect([50.0, 90, 99, 100].map { two.valueAt(percentile: $0) } == [3, 7, 7, 7])
        let ninetyNine = histogram((1...99).map { UInt64($0) })
        #expect([50.0, 90, 99].map { ninetyNine.valueAt(percentile: $0) } == [50, 90, 99])
        let hundredAndOne = histogram((1...101).map { UInt64($0) })
        #expect([50.0, 90, 99].map { hundredAndOne.valueAt(percentile: $0) } == [51, 91, 100])
        // Above 128 ns a value is given as the top of its bucket: never below it, at most 1/64 above, and never
        // past the largest value recorded.
        let milliseconds = histogram([1_000_000, 1_010_000])
        let median = milliseconds.valueAt(percentile: 50)
        #expect(median >= 1_000_000 && Double(median) <= 1_000_000 * (1 + 1.0 / 64) && median < 1_010_000)
        #expect(milliseconds.valueAt(percentile: 99) == 1_010_000)
    }

    @Test func percentilesAreWithinTheBucketPrecision() {
        var histogram = LatencyHistogram()
        // 1 µs … 10 ms in 1 µs steps.
        for step in 1...10_000 { histogram.record(nanoseconds: UInt64(step) * 1_000) }
        for (percentile, exact) in [(50.0, 5_000_000.0), (90.0, 9_000_000.0), (99.0, 9_900_000.0), (99.9, 9_990_000.0)] {
            let value = Double(histogram.valueAt(percentile: percentile))
            #expect(value >= exact, "p\(percentile) is never below the true value")
            #expect(value <= exact * (1 + 1.0 / 64), "p\(percentile) is within one bucket")
        }
        #expect(histogram.valueAt(percentile: 100) == 10_000_000)
    }

    @Test func everyValueFallsInItsBucket() {
        var random = DemoRandom(seed: 7)
        for _ in 0..<10_000 {
            let value = random.next() >> UInt64(random.below(64))
            let bucket = LatencyHistogram.bucket(of: value)
            #expect(bucket >= 0 && bucket < LatencyHistogram.bucketCount)
            #expect(value <= LatencyHistogram.upperBound(of: bucket))
            if bucket > 0 { #expect(value > LatencyHistogram.upperBound(of: bucket - 1)) }
        }
        #expect(LatencyHistogram.bucket(of: .max) == LatencyHistogram.bucketCount - 1)
        #expect(LatencyHistogram.upperBound(of: LatencyHistogram.bucketCount - 1) == .max)
    }

    @Test func mergingEqualsRecordingEverything() {
        var all = LatencyHistogram()
        var first = LatencyHistogram()
        var second = LatencyHistogram()
        var random = DemoRandom(seed: 11)
        for index in 0..<5_000 {
            let value = UInt64(random.below(50_000_000))
            all.record(nanoseconds: value)
            if index % 3 == 0 { first.record(nanoseconds: value) } else { second.record(nanoseconds: value) }
        }
        first.merge(second)
        #expect(first == all)
        #expect(LatencyHistogram().valueAt(percentile: 99) == 0)
    }

    // MARK: The mix

    /// A circuit and its mix, signed, with a genesis for the same authority.
    static func circuit(beneficiaries: Int = 16, mixEvents: Int) throws -> (genesis: VerifiedEvent, setup: [PresignedEvent], mix: [PresignedEvent], counts: [BenchEventKind: Int]) {
        let authority = BenchSigner(id: "citta", key: try BenchCircuit.actorKey(seed: 3, tag: "t", actor: "authority"))
        let checkpoint = Ed25519PrivateKey()
        let now = Ledger.systemClockMilliseconds()
        let genesisEvent = try Event(
            id: "genesis", type: "ledger.genesis", actor: "citta", key: authority.key.publicKey.multikey,
            timestamp: Timestamp.format(millisecondsSince1970: now),
            body: [
                "origin": "bench.test/ledger",
                "authority": .object(["actor": "citta", "name": "Città", "keys": .array([.string(authority.key.publicKey.multikey)])]),
                "checkpoint_key": .string(checkpoint.publicKey.multikey), "currency": ["code": "TOC", "decimals": 2],
            ])
        var circuit = try BenchCircuit(
            options: .init(seed: 3, tag: "t", beneficiaryCount: beneficiaries, expectedMixEvents: mixEvents, startMilliseconds: now, origin: "bench.test/ledger"),
            authority: authority)
        let setup = try circuit.sign(try circuit.setup())
        let mix = try circuit.sign(try circuit.mix(count: mixEvents))
        return (try SignedEvent(signing: genesisEvent, with: authority.key).verified(), setup, mix, circuit.counts)
    }

    /// Applies events in order with the rulebook; returns the refusals.
    static func apply(_ events: [PresignedEvent], to state: inout MemoryLedgerState, from size: inout UInt64) throws -> [String] {
        var refusals: [String] = []
        let recordedAt = Timestamp.format(millisecondsSince1970: Ledger.systemClockMilliseconds())
        for event in events {
            let verified = try SignedEvent(jsonBytes: event.signedEvent).verified()
            do throws(LedgerError) {
                state.apply(try Rulebook.check(verified, at: LogPosition(sequenceNumber: size, recordedAt: recordedAt), state: state))
                size += 1
            } catch {
                refusals.append("\(event.kind) #\(event.index): \(error.code.name): \(error.message)")
            }
        }
        return refusals
    }

    @Test func theMixIsValidInGenerationOrder() throws {
        let (genesis, setup, mix, counts) = try Self.circuit(mixEvents: 1_200)
        var state = MemoryLedgerState()
        state.apply(try Rulebook.check(genesis, at: LogPosition(sequenceNumber: 0, recordedAt: Timestamp.format(millisecondsSince1970: Ledger.systemClockMilliseconds())), state: state))
        var size: UInt64 = 1
        #expect(try Self.apply(setup, to: &state, from: &size) == [])
        #expect(try Self.apply(mix, to: &state, from: &size) == [])
        // Roughly the demo's shares: payments, then activations and what they lead to.
        let payments = counts[.payment] ?? 0
        let activations = counts[.activation] ?? 0
        #expect(payments > 400 && payments < 650)
        #expect(activations > 350 && activations < 600)
        #expect((counts[.badge] ?? 0) > 60)
        #expect((counts[.conversion] ?? 0) > 15)
        #expect(mix.allSatisfy { $0.verifySignatures() })
        #expect(mix.filter { $0.kind == .payment }.allSatisfy { $0.signatureCount == 2 })
    }

    /// The server may interleave connections in any way; each connection's own order is kept. Replaying the
    /// connections one after the other (the most extreme interleaving) must be as valid as generation order.
    @Test func theMixIsValidInAnyInterleavingOfConnections() throws {
        let (genesis, setup, mix, _) = try Self.circuit(mixEvents: 1_000)
        for connections in [3, 16] {
            var state = MemoryLedgerState()
            state.apply(try Rulebook.check(genesis, at: LogPosition(sequenceNumber: 0, recordedAt: Timestamp.format(millisecondsSince1970: Ledger.systemClockMilliseconds())), state: state))
            var size: UInt64 = 1
            #expect(try Self.apply(setup, to: &state, from: &size) == [])
            var lists = [[PresignedEvent]](repeating: [], count: connections)
            for event in mix { lists[(event.beneficiary ?? 0) % connections].append(event) }
            for list in lists.reversed() {
                #expect(try Self.apply(list, to: &state, from: &size) == [])
            }
        }
    }

    @Test func dependenciesStayWithinTheirConnection() throws {
        let (_, _, mix, _) = try Self.circuit(mixEvents: 600)
        let byIndex = Dictionary(uniqueKeysWithValues: mix.map { ($0.index, $0) })
        for event in mix {
            guard let dependency = event.dependency, let earlier = byIndex[dependency] else { continue }
            #expect(earlier.index < event.index)
            #expect(earlier.beneficiary == event.beneficiary)
        }
        let lists = BenchRunner.split(mix, connections: 5)
        #expect(lists.reduce(0) { $0 + $1.count } == mix.count)
        var dependent = 0
        for list in lists {
            for (position, request) in list.enumerated() {
                guard let dependency = request.dependency else { continue }
                #expect(dependency < position)
                dependent += 1
            }
        }
        #expect(dependent > 0)
    }

    /// Each event's beneficiary is drawn at random, so beneficiary i on connection i mod K left the connections
    /// unequal (in this mix of 2 000 events of 40 beneficiaries, of 31 to 61 events each, over 16 connections: 163
    /// events on the heaviest against 82 on the lightest) and the phase ended on fewer connections than asked. Spread
    /// by their events (147 against 105 there, whole beneficiaries of 2 or 3 a connection allowing no better), no two
    /// connections differ by more than the largest beneficiary's events; every beneficiary is on one connection.
    @Test func connectionsCarryNearlyEqualSharesOfTheMix() throws {
        let (_, _, mix, _) = try Self.circuit(beneficiaries: 40, mixEvents: 2_000)
        var eventsOfBeneficiary: [Int: Int] = [:]
        for event in mix { eventsOfBeneficiary[event.beneficiary ?? -1, default: 0] += 1 }
        let largest = try #require(eventsOfBeneficiary.values.max())
        for connections in [1, 7, 16] {
            let lists = BenchRunner.split(mix, connections: connections)
            let sizes = lists.map(\.count)
            #expect(sizes.reduce(0, +) == mix.count)
            let spread = (sizes.max() ?? 0) - (sizes.min() ?? 0)
            // Each beneficiary goes to the least loaded connection, so no two differ by more than one beneficiary.
            #expect(spread <= largest, "\(connections) connections: \(sizes), a beneficiary has \(largest) events at most")
            // Every beneficiary's events on one connection, and every connection carrying some.
            let assignment = BenchRunner.connectionOfBeneficiary(mix, connections: connections)
            #expect(Set(assignment.values).count == connections)
            for (connection, list) in lists.enumerated() {
                let expected = mix.filter { assignment[$0.beneficiary ?? -1] == connection }.map(\.signedEvent)
                #expect(list.map(\.params) == expected)
            }
        }
    }

    @Test("the bound passes over a small mix until its minimum time is up, counting every event checked; a bad signature stops it")
    func theBoundRepeatsPassesUntilItsMinimumTime() throws {
        let (_, _, mix, _) = try Self.circuit(mixEvents: 40)
        let signaturesPerPass = mix.reduce(0) { $0 + $1.signatureCount }
        let minimumSeconds = 0.3
        let start = Date()
        let bound = BenchRunner.verificationBound(mix, minimumSeconds: minimumSeconds)
        #expect(Date().timeIntervalSince(start) >= minimumSeconds)
        #expect(bound.allValid)
        // 40 events take milliseconds a pass, even in a debug build: far more than one pass fits in 0.3 s.
        #expect(bound.passes > 1)
        #expect(bound.eventsChecked == bound.passes * mix.count)
        #expect(abs(bound.signaturesPerSecond / bound.eventsPerSecond - Double(signaturesPerPass) / Double(mix.count)) < 1e-9)
        #expect(bound.eventsPerSecond > 0)

        // One event whose signature does not verify: invalid, after the first pass.
        let good = mix[0]
        var signature = good.signature
        signature[0] ^= 0x01
        let tampered = PresignedEvent(
            index: good.index, kind: good.kind, beneficiary: good.beneficiary, dependency: good.dependency,
            signedEvent: good.signedEvent, eventRange: good.eventRange, signature: signature, publicKey: good.publicKey,
            authorisation: good.authorisation)
        let refused = BenchRunner.verificationBound([tampered] + mix.dropFirst(), minimumSeconds: 10)
        #expect(!refused.allValid)
        #expect(refused.passes == 1)
        #expect(BenchRunner.verificationBound([]).eventsChecked == 0)
    }

    @Test func batchesKeepEachConnectionsOrderAndWaitForTheirDependencies() throws {
        let (_, _, mix, _) = try Self.circuit(mixEvents: 600)
        let lists = BenchRunner.split(mix, connections: 5)
        #expect(BenchRunner.batched(lists, eventsPerRequest: 1).map { $0.map(\.params) } == lists.map { $0.map(\.params) })
        let eventsPerRequest = 8
        let batches = BenchRunner.batched(lists, eventsPerRequest: eventsPerRequest)
        var dependentGroups = 0
        for (list, groups) in zip(lists, batches) {
            #expect(groups.count == (list.count + eventsPerRequest - 1) / eventsPerRequest)
            #expect(groups.reduce(0) { $0 + $1.itemCount } == list.count)
            for (groupIndex, group) in groups.enumerated() {
                let members = Array(list[(groupIndex * eventsPerRequest)..<min(list.count, (groupIndex + 1) * eventsPerRequest)])
                #expect(group.itemCount == members.count)
                // The params are the members' signed events, in order, as one submit_batch.
                let parsed = try JSONParser.parse(group.params)
                #expect(parsed == .object(["events": .array(try members.map { try JSONParser.parse($0.params) })]))
                // A member that waits for an event needs everything before that event accepted: the group is sent
                // only once every group up to the one holding it is answered (the driver waits for every request up
                // to a dependency), or every group before it when the event is in the group itself (its order in the
                // commit keeps the rest). Never after itself or a later group; a group with no such member waits for
                // nothing.
                let dependencies = members.compactMap(\.dependency)
                #expect(dependencies.allSatisfy { $0 < (groupIndex + 1) * eventsPerRequest })
                if dependencies.isEmpty || (groupIndex == 0 && dependencies.allSatisfy { $0 / eventsPerRequest == 0 }) {
                    #expect(group.dependency == nil)
                } else {
                    let needed = dependencies.map { $0 / eventsPerRequest == groupIndex ? groupIndex - 1 : $0 / eventsPerRequest }
                    #expect(group.dependency == needed.max())
                    #expect(group.dependency.map { $0 < groupIndex } == true)
                    dependentGroups += 1
                }
            }
        }
        #expect(dependentGroups > 0)
    }

    /// A server that answers the first two requests in reverse order: the third, which depends on the second, must
    /// wait for the first's answer too (in flight together, answers may come in any order, and what depends on an
    /// event needs everything before it).
    @Test func aDependentRequestWaitsForEveryRequestBeforeItsDependency() throws {
        let folder = TemporaryFolder()
        let path = folder.path + "/out-of-order.sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (offset, byte) in path.utf8.enumerated() { buffer[offset] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(listener, 1) == 0)
        // What the server saw, in order: "received N" and "answered N".
        let log = Locked<[String]>([])
        let server = Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var pending: [UInt8] = []
            /// The next request's id, waiting at most `milliseconds` for it.
            func nextRequest(milliseconds: Int32) -> Int? {
                while true {
                    if let newline = pending.firstIndex(of: 0x0A) {
                        let line = Array(pending[..<newline])
                        pending.removeFirst(newline + 1)
                        guard case .integer(let id)? = (try? JSONParser.parse(line))?["id"] else { return nil }
                        log.withLock { $0.append("received \(id)") }
                        return Int(id)
                    }
                    var descriptor = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
                    guard poll(&descriptor, 1, milliseconds) == 1 else { return nil }
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let count = read(connection, &buffer, buffer.count)
                    guard count > 0 else { return nil }
                    pending += buffer[..<count]
                }
            }
            func answer(_ id: Int) {
                log.withLock { $0.append("answered \(id)") }
                let line = Array("{\"id\":\(id),\"jsonrpc\":\"2.0\",\"result\":{}}\n".utf8)
                _ = line.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            }
            guard let first = nextRequest(milliseconds: 5_000), let second = nextRequest(milliseconds: 5_000) else { return }
            answer(max(first, second))
            // Time for a third request to come, were the driver to send it now.
            if let early = nextRequest(milliseconds: 300) {
                answer(min(first, second))
                answer(early)
                return
            }
            answer(min(first, second))
            if let third = nextRequest(milliseconds: 5_000) { answer(third) }
        }
        server.start()
        let requests = [BenchRequest(params: Array("{}".utf8)), BenchRequest(params: Array("{}".utf8)), BenchRequest(params: Array("{}".utf8), dependency: 1)]
        let outcome = LoadDriver.run([requests], options: .init(endpoint: .unix(path: path), method: "test", pipelineDepth: 3, deadlineSeconds: 30))
        #expect(outcome.failures == [])
        #expect(outcome.accepted == 3)
        #expect(log.withLock { $0 } == ["received 0", "received 1", "answered 1", "answered 0", "received 2", "answered 2"])
    }

    // MARK: Protocol and memory

    @Test func answersAreReadCheaplyAndErrorsInFull() throws {
        let result = Array("{\"id\":42,\"jsonrpc\":\"2.0\",\"result\":{\"seq\":7}}".utf8)
        #expect(try LoadDriver.parseAnswer(result[...]) == (42, nil))
        let refusal = Array("{\"error\":{\"code\":3001,\"data\":{\"code\":\"insufficient_funds\"},\"message\":\"no \\\"id\\\":1 here\"},\"id\":9,\"jsonrpc\":\"2.0\"}".utf8)
        #expect(try LoadDriver.parseAnswer(refusal[...]) == (9, "insufficient_funds"))
        let anonymous = Array("{\"error\":{\"code\":6004,\"data\":{\"code\":\"overloaded\"},\"message\":\"full\"},\"id\":null,\"jsonrpc\":\"2.0\"}".utf8)
        #expect(throws: LedgerError.self) { try LoadDriver.parseAnswer(anonymous[...]) }
        var line: [UInt8] = []
        LoadDriver.appendLine(to: &line, identifier: 5, method: Array("submit".utf8), params: Array("{\"a\":1}".utf8))
        let parsed = try JSONParser.parse(Array(line.dropLast()))
        #expect(parsed == .object(["id": 5, "jsonrpc": "2.0", "method": "submit", "params": ["a": 1]]))
        #expect(CanonicalJSON.encode(parsed) + [0x0A] == line)
    }

    @Test func signedEventsAreCanonical() throws {
        let (_, _, mix, _) = try Self.circuit(mixEvents: 50)
        for event in mix {
            let parsed = try JSONParser.parse(event.signedEvent)
            #expect(CanonicalJSON.encode(parsed) == event.signedEvent)
            #expect(Array(event.signedEvent[event.eventRange]) == (try SignedEvent(jsonBytes: event.signedEvent)).event.canonicalBytes)
        }
    }

    @Test("a file's resident pages are summed over its mappings in smaps, and nothing of other files")
    func mappedFilePagesAreSummedFromSmaps() throws {
        let text = """
            55d0c0000000-55d0c0100000 r-xp 00000000 fd:01 1000                       /usr/bin/circuito
            Size:               1024 kB
            Rss:                 800 kB
            7f0000000000-7f0040000000 r--s 00000000 fd:01 2000                       /tmp/ledger/data.mdb
            Size:            1048576 kB
            Rss:              150000 kB
            Anonymous:             0 kB
            7f0040000000-7f0040001000 rw-s 40000000 fd:01 2000                       /tmp/ledger/data.mdb
            Rss:                   4 kB
            7f0050000000-7f0050100000 rw-p 00000000 00:00 0
            Rss:                1000 kB
            AnonHugePages:         0 kB
            VmFlags: rd wr mr mw me ac sd
            """
        #expect(ProcessMemory.parse(smaps: text, pathSuffix: "/data.mdb") == (150_000 + 4) * 1024)
        #expect(ProcessMemory.parse(smaps: text, pathSuffix: "/nothing.mdb") == 0)

        // This process: a file of four pages mapped and read is four pages of its resident memory, under that name.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("circuito-smaps-\(UUID().uuidString).mdb").path
        defer { unlink(path) }
        let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
        try Data(repeating: 7, count: 4 * pageBytes).write(to: URL(fileURLWithPath: path))
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        let map = try #require(mmap(nil, 4 * pageBytes, PROT_READ, MAP_SHARED, descriptor, 0))
        try #require(map != MAP_FAILED)
        defer { munmap(map, 4 * pageBytes) }
        var sum = 0
        for page in 0..<4 { sum += Int(map.load(fromByteOffset: page * pageBytes, as: UInt8.self)) }
        #expect(sum == 28)
        let suffix = "/" + URL(fileURLWithPath: path).lastPathComponent
        #expect(ProcessMemory.mappedResidentBytes(pid: getpid(), pathSuffix: suffix) == UInt64(4 * pageBytes))
    }

    @Test func processStatusIsParsed() throws {
        let status = "Name:\tcircuito\nVmPeak:\t  900000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   70000 kB\nRssAnon:\t   50000 kB\nRssFile:\t   20000 kB\nThreads:\t9\n"
        #expect(ProcessMemory.parse(status: status) == ProcessMemory(residentBytes: 70_000 * 1024, peakResidentBytes: 81_234 * 1024, anonymousResidentBytes: 50_000 * 1024))
        #expect(ProcessMemory.parse(status: "Name:\tx\n") == nil)
        #expect(ProcessMemory.read(pid: getpid())?.residentBytes ?? 0 > 0)
        // The command name may hold spaces and parentheses: the fields are counted after the last ")".
        let stat = "4242 (circuito (serve) x) S 1 4242 4242 0 -1 4194560 2048 0 0 0 1250 375 0 0 20 0 9 0 100 0 0\n"
        let times = ProcessCPUTimes.parse(stat: stat, ticksPerSecond: 100)
        #expect(times == ProcessCPUTimes(userSeconds: 12.5, systemSeconds: 3.75))
        let later = ProcessCPUTimes(userSeconds: 13.0, systemSeconds: 4.25)
        #expect(later.systemShare(since: try #require(times)) == 0.5)
        #expect(later.systemShare(since: later) == nil)
        #expect(ProcessCPUTimes.parse(stat: "4242 (circuito) S 1 2 3\n", ticksPerSecond: 100) == nil)
        #expect(ProcessCPUTimes.read(pid: getpid()) != nil)
        let diskstats = """
             254       0 vda 2680152 74452 137632482 4295448 85136486 506543 1172297320 146860844 0 2871464 151528721 502203 11 413661672 125780 2448779 246648
             254       1 vda1 1200 0 9600 30 77 2 1234 50 0 40 80 0 0 0 0 0 0
               7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
            """
        #expect(BlockDeviceWrites.parse(diskstats: diskstats, major: 254, minor: 0) == BlockDeviceWrites(requests: 85_136_486, bytes: 1_172_297_320 * 512))
        #expect(BlockDeviceWrites.parse(diskstats: diskstats, major: 254, minor: 1) == BlockDeviceWrites(requests: 77, bytes: 1234 * 512))
        #expect(BlockDeviceWrites.parse(diskstats: diskstats, major: 8, minor: 0) == nil)
        // tmpfs is on no block device.
        #expect(BlockDeviceWrites.read(folder: "/dev/shm") == nil)
        #expect(ProcessMemory.ownCPUSeconds() > 0)
    }

    @Test func hostCPUTimesAreParsedWithTheirSteal() throws {
        let stat = "cpu  682140 2383 101689 1149351 22473 0 14236 59197 11 0\ncpu0 341070 1191 50844 574675 11236 0 7118 29598 0 0\nintr 1 2 3\n"
        let times = try #require(HostCPUTimes.parse(stat: stat))
        // Guest time (11) is inside user already: not counted twice.
        #expect(times == HostCPUTimes(totalTicks: 682140 + 2383 + 101689 + 1149351 + 22473 + 0 + 14236 + 59197, stealTicks: 59197))
        let later = HostCPUTimes(totalTicks: times.totalTicks + 400, stealTicks: times.stealTicks + 100)
        #expect(later.since(times) == HostCPUInterval(totalTicks: 400, stealTicks: 100))
        #expect(later.since(times).stealShare == 0.25)
        #expect((later.since(times) + HostCPUInterval(totalTicks: 600, stealTicks: 0)).stealShare == 0.1)
        // Nothing elapsed, or counters that went back: no share, not a division by zero or a wrap-around.
        #expect(times.since(times).stealShare == nil)
        #expect(times.since(later) == HostCPUInterval(totalTicks: 0, stealTicks: 0))
        // Not the aggregate line, or a kernel without the steal column.
        #expect(HostCPUTimes.parse(stat: "cpu0 1 2 3 4 5 6 7 8\n") == nil)
        #expect(HostCPUTimes.parse(stat: "cpu  1 2 3 4 5 6 7\n") == nil)
        #expect(HostCPUTimes.parse(stat: "cpu  1 2 3 4 x 6 7 8\n") == nil)
        // This machine's own.
        let now = try #require(HostCPUTimes.read())
        #expect(now.totalTicks > 0 && now.stealTicks <= now.totalTicks)
    }

    @Test func contextSwitchesAreCountedOverEveryThread() throws {
        let status = "Name:\tcircuito\nThreads:\t9\nvoluntary_ctxt_switches:\t1500\nnonvoluntary_ctxt_switches:\t  25\n"
        #expect(ProcessContextSwitches.parse(status: status) == 1525)
        #expect(ProcessContextSwitches.parse(status: "Name:\tx\nvoluntary_ctxt_switches:\t3\n") == nil)
        // A process of one long-lived thread that sleeps over and over: each sleep switches it off its core, and is
        // counted. (Not this test process: the tests running beside it start and end threads, and the switches of a
        // thread that has ended are no longer counted, so its total may go down.)
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sh")
        sleeper.arguments = ["-c", "while :; do sleep 0.01; done"]
        try sleeper.run()
        defer {
            sleeper.terminate()
            sleeper.waitUntilExit()
        }
        let before = try #require(ProcessContextSwitches.read(pid: sleeper.processIdentifier))
        usleep(100_000)
        let after = try #require(ProcessContextSwitches.read(pid: sleeper.processIdentifier))
        #expect(after > before)
        #expect(ProcessContextSwitches.read(pid: -1) == nil)
    }

    @Test("a thread's name reaches the kernel, cut to its 15 bytes")
    func threadNamesReachTheKernel() throws {
        let names = Locked<[String]>([])
        let done = DispatchSemaphore(value: 0)
        Thread {
            for name in ["circuito-test", "circuito-name-longer-than-15"] {
                let taken = KernelThreadName.setForCurrentThread(name)
                let descriptor = open("/proc/thread-self/comm", O_RDONLY)
                var buffer = [UInt8](repeating: 0, count: 64)
                let count = descriptor >= 0 ? read(descriptor, &buffer, buffer.count) : -1
                if descriptor >= 0 { close(descriptor) }
                let shown = count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : "unreadable"
                names.withLock { $0.append("\(taken) \(shown)") }
            }
            done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(names.withLock { $0 } == ["true circuito-test\n", "true circuito-name-l\n"])
    }

    @Test("the server's CPU by its threads' parts: stat lines parsed, names mapped, shares of what each used since")
    func serverThreadCPUIsSharedByPart() throws {
        // The name may hold spaces and parentheses; utime and stime are fields 14 and 15.
        let stat = "4242 (odd) name) S 1 4242 4242 0 -1 4194368 120 0 0 0 37 5 0 0 20 0 9 0 100 0 0\n"
        #expect(ServerThreadCPU.parseTicks(stat: stat) == 42)
        #expect(ServerThreadCPU.parseTicks(stat: "4242 (x) S 1 2") == nil)
        #expect(ServerThreadCPU.part(ofThreadNamed: "circuito-commit") == .committer)
        #expect(ServerThreadCPU.part(ofThreadNamed: "circuito-plan") == .planner)
        #expect(ServerThreadCPU.part(ofThreadNamed: "circuito-srv-1") == .requestThreads)
        #expect(ServerThreadCPU.part(ofThreadNamed: "NIO-ELT-1-#2") == .eventLoops)
        // Dispatch's workers, as the kernel keeps their names: where a submit_batch's signature checks run.
        for worker in ["oot.default-qos", "r-initiated-qos", "-qos.overcommit"] {
            #expect(ServerThreadCPU.part(ofThreadNamed: worker) == .dispatchWorkers, "\(worker)")
        }
        for unnamed in ["circuito-head", "circuito", "qos-monitor"] {
            #expect(ServerThreadCPU.part(ofThreadNamed: unnamed) == .other, "\(unnamed)")
        }
        let before = ServerThreadCPU(threads: [1: .init(part: .committer, ticks: 10), 2: .init(part: .planner, ticks: 5)])
        let after = ServerThreadCPU(threads: [
            1: .init(part: .committer, ticks: 40), 2: .init(part: .planner, ticks: 15), 3: .init(part: .eventLoops, ticks: 10),
        ])
        #expect(after.shares(since: before) == [.committer: 0.6, .planner: 0.2, .eventLoops: 0.2, .requestThreads: 0, .dispatchWorkers: 0, .other: 0])
        #expect(before.shares(since: before) == nil, "no tick elapsed")

        // This process: a thread named as the committer burns CPU between two readings, and is found by its name.
        let burned = DispatchSemaphore(value: 0)
        let read = DispatchSemaphore(value: 0)
        let first = try #require(ServerThreadCPU.read(pid: getpid()))
        let sink = Locked<UInt64>(0)
        Thread {
            KernelThreadName.setForCurrentThread("circuito-commit")
            let ownTicks = { ProcessMemory.readSmallFile("/proc/thread-self/stat").flatMap { ServerThreadCPU.parseTicks(stat: $0) } ?? 0 }
            let startTicks = ownTicks()
            let start = monotonicNanoseconds()
            var sum: UInt64 = 0
            // Bounded: until its own counter grew by five ticks (50 ms of CPU), or after 10 s.
            while ownTicks() < startTicks + 5, monotonicNanoseconds() - start < 10_000_000_000 {
                for value in 0..<100_000 { sum &+= UInt64(value) &* 2_654_435_761 }
            }
            sink.withLock { $0 = sum }
            burned.signal()
            read.wait()
        }.start()
        #expect(burned.wait(timeout: .now() + 20) == .success)
        let second = try #require(ServerThreadCPU.read(pid: getpid()))
        read.signal()
        let shares = try #require(second.shares(since: first))
        #expect((shares[.committer] ?? 0) > 0, "\(shares)")
        #expect(abs(shares.values.reduce(0, +) - 1) < 1e-9)
    }

    @Test("a replay's progress: one line per tenth of the records, none at the end or for an empty ledger")
    func replayProgressReportsEachTenthOnce() {
        let lines = Locked<[String]>([])
        var progress = ReplayProgress(verb: "verify", report: { line in lines.withLock { $0.append(line) } })
        for checked in stride(from: UInt64(0), through: 1_000, by: 37) { progress.advance(checked: checked, total: 1_000) }
        progress.advance(checked: 1_000, total: 1_000)
        #expect(lines.withLock { $0 } == [
            "verify: 111/1000 records", "verify: 222/1000 records", "verify: 333/1000 records", "verify: 407/1000 records",
            "verify: 518/1000 records", "verify: 629/1000 records", "verify: 703/1000 records", "verify: 814/1000 records",
            "verify: 925/1000 records",
        ])
        var empty = ReplayProgress(verb: "rebuild", report: { line in lines.withLock { $0.append(line) } })
        empty.advance(checked: 0, total: 0)
        #expect(lines.withLock { $0.count } == 9)
    }

    @Test("the loopback probe counts at least one round trip even when its warm-up takes all its time (a loaded machine, packets lost on the loopback)")
    func theLoopbackProbeCountsARoundTripAfterASlowWarmUp() throws {
        // No time at all: the warm-up has used it up by the time the first counted round trip would start.
        let probe = try LoopbackProbe.measure(maximumSeconds: 0)
        #expect(probe.roundTrips == 1)
    }

    @Test("the loopback probe echoes over a real socket pair and reports ordered percentiles of the round trips it counted")
    func theLoopbackProbeMeasuresRoundTrips() throws {
        let probe = try LoopbackProbe.measure()
        #expect(probe.roundTrips >= 1 && probe.roundTrips <= LoopbackProbe.maximumRoundTrips)
        #expect(probe.medianMicroseconds > 0)
        #expect(probe.percentile99Microseconds >= probe.medianMicroseconds)
        // A round trip of 512 bytes over loopback takes microseconds, far less than the probe's read timeout.
        #expect(probe.percentile99Microseconds < Double(LoopbackProbe.readTimeoutSeconds) * 1e6)
    }

    @Test func theDiskProbeMeasuresInItsOwnFileAndRemovesIt() throws {
        let folder = TemporaryFolder()
        let probe = try DiskProbe.measure(directory: folder.path)
        #expect(probe.randomPageMicroseconds > 0 && probe.randomPageMicroseconds.isFinite)
        #expect(probe.contiguousPageMicroseconds > 0 && probe.contiguousPageMicroseconds.isFinite)
        #expect(access(folder.path + "/disk-probe.tmp", F_OK) != 0, "the probe's file is removed")
        // A folder it cannot write in is an error, not a figure.
        #expect(throws: LedgerError.self) { try DiskProbe.measure(directory: folder.path + "/missing") }
        // The file system under a folder, as /proc/mounts lists it: a ledger in memory (tmpfs) is named as such.
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        if mounts.split(separator: "\n").contains(where: { $0.split(separator: " ").dropFirst().prefix(2) == ["/dev/shm", "tmpfs"] }) {
            #expect(DiskProbe.fileSystem(of: "/dev/shm") == "tmpfs")
        }
        #expect(DiskProbe.fileSystem(of: folder.path) != nil)
        #expect(DiskProbe.fileSystem(of: folder.path + "/missing") == nil)
        #expect(DiskProbe.median([3, 1, 2]) == 2)
        #expect(DiskProbe.median([4, 1, 3, 2]) == 2.5)
    }

    // MARK: End to end

    /// A new ledger served on a local port, with a bench circuit of 24 beneficiaries set up on it and 800 events of
    /// its mix signed (not sent).
    struct CircuitOnServer {
        let folder = TemporaryFolder()
        let server: LedgerServer
        let endpoint: Endpoint
        let circuit: BenchCircuit
        let setup: [PresignedEvent]
        let mix: [PresignedEvent]

        init(seed: UInt64) async throws {
            let directory = folder.path + "/ledger"
            let authority = BenchSigner(id: "citta-di-torino", key: try BenchCircuit.actorKey(seed: seed, tag: "bench", actor: "authority"))
            try BenchRunner.createLedger(directory: directory, authority: authority)
            server = try await LedgerServer.start(ServerConfiguration(directory: directory, tcpHost: "127.0.0.1", tcpPort: 0))
            endpoint = Endpoint.tcp(host: "127.0.0.1", port: server.tcpPort ?? 0)
            var circuit = try BenchCircuit(
                options: .init(seed: seed, tag: "bench", beneficiaryCount: 24, expectedMixEvents: 800, startMilliseconds: Ledger.systemClockMilliseconds()),
                authority: authority)
            setup = try circuit.sign(try circuit.setup())
            mix = try circuit.sign(try circuit.mix(count: 800))
            self.circuit = circuit
            try BenchRunner.appendInBatches(setup, connections: 1, endpoint: endpoint, timeoutSeconds: 60, what: "setup")
        }

        /// Waits (at most 10 s) until the server counts no request in flight. A request answered by a connection's
        /// task is counted until its answer is written, so the client can hold the setup's last answer while the
        /// server still counts it, and a request sent then is not taken on the event loop.
        func waitUntilIdle() async throws {
            var waitedMilliseconds = 0
            while server.requestsInFlight > 0 && waitedMilliseconds < 10_000 {
                try await Task.sleep(for: .milliseconds(1))
                waitedMilliseconds += 1
            }
            #expect(server.requestsInFlight == 0, "the setup's requests were still counted in flight after 10 s")
        }
    }

    /// The driver against a real server: the circuit in batches, then the mix over several pipelined connections,
    /// every event accepted.
    @Test func theDriverAppendsTheWholeMix() async throws {
        let fixture = try await CircuitOnServer(seed: 5)
        let (server, endpoint, circuit, setup, mix) = (fixture.server, fixture.endpoint, fixture.circuit, fixture.setup, fixture.mix)
        let outcome = LoadDriver.run(BenchRunner.split(mix, connections: 6), options: .init(endpoint: endpoint, method: "submit", pipelineDepth: 4, deadlineSeconds: 120))
        #expect(outcome.failures == [])
        #expect(outcome.refusals == [:])
        #expect(outcome.accepted == mix.count)
        #expect(outcome.latency.count == UInt64(mix.count))
        #expect(outcome.asked == mix.count && outcome.whole)
        #expect(try server.size() == UInt64(1 + setup.count + mix.count))

        // Balance queries in read sessions: each connection opens one as a beneficiary, then reads unsigned.
        let wallets = circuit.beneficiaryWallets
        let queries = BenchRunner.sessionBalanceQueries(60, wallets: wallets, connections: 3)
        #expect(queries.map(\.count) == [20, 20, 20])
        var options = LoadDriver.Options(endpoint: endpoint, method: "account.balance", pipelineDepth: 2, deadlineSeconds: 60)
        options.sessionOpen = { number, challenge in
            ReadAuthorisation.sign(
                method: "session.open", params: [:], actor: wallets[number].id, key: wallets[number].key,
                nowMilliseconds: Ledger.systemClockMilliseconds(), nonce: challenge)
        }
        let sessionOutcome = LoadDriver.run(queries, options: options)
        #expect(sessionOutcome.failures == [])
        #expect(sessionOutcome.refusals == [:])
        #expect(sessionOutcome.accepted == 60)
        // Each connection's session.challenge and session.open, counted apart from the queries.
        #expect(sessionOutcome.setupRequests == 6 && sessionOutcome.sent == 60)
        // Without a session the same params are refused; with a session opened by the wrong key, no connection starts.
        let unsigned = LoadDriver.run(queries, options: .init(endpoint: endpoint, method: "account.balance", pipelineDepth: 2, deadlineSeconds: 60))
        #expect(unsigned.refusals == ["invalid_read_request": 60])
        // Refusals are answered faster than reads: they stay out of the latency, and the phase is not whole.
        #expect(unsigned.latency.count == 0 && unsigned.asked == 60 && !unsigned.whole)
        let refusedPhase = PhaseReport(name: "account.balance", outcome: unsigned)
        #expect(!refusedPhase.whole && refusedPhase.shortfall == ["60 refused (invalid_read_request 60)"])
        options.sessionOpen = { number, challenge in
            ReadAuthorisation.sign(
                method: "session.open", params: [:], actor: wallets[number].id, key: wallets[number + 1].key,
                nowMilliseconds: Ledger.systemClockMilliseconds(), nonce: challenge)
        }
        let wrongKey = LoadDriver.run(queries, options: options)
        #expect(wrongKey.failures.count == 3)
        #expect(wrongKey.sent == 0)
        // Only the answered setup requests count: each challenge, none of the refused openings.
        #expect(wrongKey.setupRequests == 3)
        // Through the fixture: it, and the ledger's folder with it, live until the server is shut down.
        await fixture.server.shutdown()
    }

    /// One connection, one request in flight: the server is idle whenever the next `submit` arrives (it lets go of
    /// a request's count before it writes the answer), so every one is taken on the event loop, and the bench's
    /// share over two `server.info`s says so.
    /// The counters of `server.info` come from the server the bench measures (`--connect HOST:PORT`, any server): a
    /// `writer.commits` of -(2^63 - 1) before a phase and 2^63 - 1 after it overflowed the difference (a trap), as
    /// did a `connections` counter so. Counters no server counts give no figures.
    @Test func countersNoServerCountsGiveNoFigures() {
        let counters = ["commits", "records", "busy_microseconds", "commit_microseconds"]
        let before = JSONValue.object(JSONObject(counters.map { ($0, JSONValue.integer($0 == "commits" ? -Int64.max : 0)) }))
        let after = JSONValue.object(JSONObject(counters.map { ($0, JSONValue.integer(Int64.max)) }))
        #expect(WriterFigures.difference(from: before, to: after, phaseMicroseconds: 1_000_000) == nil)
        let counter = "writes_taken_on_event_loop"
        #expect(BenchRunner.eventLoopShare(from: [counter: .integer(-Int64.max)], to: [counter: .integer(Int64.max)], counter: counter, requests: 10) == nil)
        #expect(BenchRunner.eventLoopShare(from: [counter: .integer(-1)], to: [counter: .integer(10)], counter: counter, requests: 10) == nil)
        // Counters a server does count still give their figures.
        let counted = WriterFigures.difference(
            from: .object(JSONObject(counters.map { ($0, JSONValue.integer(10)) })), to: .object(JSONObject(counters.map { ($0, JSONValue.integer(30)) })),
            phaseMicroseconds: 40)
        #expect(counted?.commits == 20 && counted?.records == 20 && counted?.busyShare == 0.5)
        #expect(BenchRunner.eventLoopShare(from: [counter: .integer(0)], to: [counter: .integer(5)], counter: counter, requests: 10) == 0.5)
    }

    /// A server (`--connect`) that counted 2^62 records in one commit, and 2^63 - 1 µs inside LMDB's commit in 1 µs
    /// busy, makes figures past 2^63 once scaled for writing: converting them to Int64 trapped as the report was
    /// written. They are written in full.
    @Test func figuresPastSixtyFourBitsAreWrittenInFull() throws {
        let counters = ["commits", "records", "busy_microseconds", "commit_microseconds"]
        let after: [String: Int64] = ["commits": 1, "records": 1 << 62, "busy_microseconds": 1, "commit_microseconds": Int64.max]
        var report = BenchReport()
        report.append = PhaseReport(name: "append", outcome: LoadOutcome())
        report.writer = WriterFigures.difference(
            from: .object(JSONObject(counters.map { ($0, JSONValue.integer(0)) })),
            to: .object(JSONObject(counters.map { ($0, JSONValue.integer(after[$0] ?? 0)) })), phaseMicroseconds: 1)
        report.appendRequestsOnEventLoopShare = BenchRunner.eventLoopShare(
            from: ["writes_taken_on_event_loop": 0], to: ["writes_taken_on_event_loop": .integer(Int64.max)],
            counter: "writes_taken_on_event_loop", requests: 1)
        let json = try JSONParser.parse(Array(report.jsonText.utf8))
        #expect(json["writer_events_per_commit"] == .number(4_611_686_018_427_387_904))
        #expect(json["writer_commit_share"] == .number(9_223_372_036_854_775_808))
        #expect(report.text.contains("4611686018427387904.0 events on average"), "\(report.text)")
        #expect(BenchReport.format(4_611_686_018_427_387_904, decimals: 1) == "4611686018427387904.0")
        // Figures within 64 bits are written as before.
        #expect(BenchReport.format(2.345, decimals: 2) == "2.35" && BenchReport.format(-0.5, decimals: 0) == "-1")
    }

    @Test func oneClientsWritesAreTakenOnTheEventLoop() async throws {
        let fixture = try await CircuitOnServer(seed: 7)
        let (server, endpoint, mix) = (fixture.server, fixture.endpoint, fixture.mix)
        try await fixture.waitUntilIdle()
        let before = try BenchRunner.serverInfo(endpoint)
        let writesBefore = server.writesTakenOnEventLoop
        let sample = Array(mix.prefix(200))
        let outcome = LoadDriver.run(BenchRunner.split(sample, connections: 1), options: .init(endpoint: endpoint, method: "submit", pipelineDepth: 1, deadlineSeconds: 120))
        #expect(outcome.failures == [] && outcome.refusals == [:] && outcome.accepted == sample.count)
        #expect(server.writesTakenOnEventLoop - writesBefore == sample.count)
        let after = try BenchRunner.serverInfo(endpoint)
        #expect(BenchRunner.eventLoopShare(from: before.connections, to: after.connections, counter: "writes_taken_on_event_loop", requests: outcome.sent) == 1)
        // Without the counter (an older server), or for no requests, there is no share.
        #expect(BenchRunner.eventLoopShare(from: nil, to: after.connections, counter: "writes_taken_on_event_loop", requests: 1) == nil)
        #expect(BenchRunner.eventLoopShare(from: before.connections, to: after.connections, counter: "writes_taken_on_event_loop", requests: 0) == nil)
        await fixture.server.shutdown()
    }

    /// One connection, one request in flight: every read of the bench's read phases finds the server idle and is
    /// answered on the event loop, and so is each phase's closing `server.info`: the bench's share is exactly 1 for
    /// signed queries, for queries in a session (its opening counted) and for proofs.
    @Test func oneClientsReadsAreAnsweredOnTheEventLoop() async throws {
        let fixture = try await CircuitOnServer(seed: 8)
        let (server, endpoint, circuit) = (fixture.server, fixture.endpoint, fixture.circuit)
        try await fixture.waitUntilIdle()
        let wallets = circuit.beneficiaryWallets
        func options(_ method: String) -> LoadDriver.Options {
            .init(endpoint: endpoint, method: method, pipelineDepth: 1, deadlineSeconds: 60)
        }
        var before = try BenchRunner.serverInfo(endpoint)
        let readsBefore = server.readsAnsweredOnEventLoop
        let signed = LoadDriver.run(BenchRunner.balanceQueries(40, wallets: wallets, seed: 8, connections: 1), options: options("account.balance"))
        #expect(signed.failures == [] && signed.refusals == [:] && signed.accepted == 40)
        // The 40 queries and the server.info below.
        var after = try BenchRunner.serverInfo(endpoint)
        #expect(server.readsAnsweredOnEventLoop - readsBefore == 41)
        #expect(BenchRunner.readShare(from: before.connections, to: after.connections, outcome: signed) == 1)

        before = after
        var sessionOptions = options("account.balance")
        sessionOptions.sessionOpen = { number, challenge in
            ReadAuthorisation.sign(
                method: "session.open", params: [:], actor: wallets[number].id, key: wallets[number].key,
                nowMilliseconds: Ledger.systemClockMilliseconds(), nonce: challenge)
        }
        let inSession = LoadDriver.run(BenchRunner.sessionBalanceQueries(40, wallets: wallets, connections: 1), options: sessionOptions)
        #expect(inSession.failures == [] && inSession.refusals == [:] && inSession.accepted == 40 && inSession.setupRequests == 2)
        after = try BenchRunner.serverInfo(endpoint)
        #expect(BenchRunner.readShare(from: before.connections, to: after.connections, outcome: inSession) == 1)

        before = after
        let proofRequests = [(0..<40).map { BenchRequest(params: Array("{\"seq\":\($0)}".utf8)) }]
        let proofs = LoadDriver.run(proofRequests, options: options("proof.inclusion"))
        #expect(proofs.failures == [] && proofs.refusals == [:] && proofs.accepted == 40)
        after = try BenchRunner.serverInfo(endpoint)
        #expect(BenchRunner.readShare(from: before.connections, to: after.connections, outcome: proofs) == 1)
        // Without the counters (an older server) there is no share.
        #expect(BenchRunner.readShare(from: nil, to: after.connections, outcome: proofs) == nil)
        await fixture.server.shutdown()
    }

    /// Connections carry unequal shares of the mix (beneficiaries are drawn at random), so the phase ends on fewer
    /// connections than it started with: one connection of 3 events beside one of the rest finishes long before the
    /// other. The phase's figures say for how long every connection was busy, and how many events were accepted then.
    @Test func theDriverSaysHowLongEveryConnectionWasBusy() async throws {
        let fixture = try await CircuitOnServer(seed: 8)
        var lists = BenchRunner.split(fixture.mix, connections: 2)
        // A prefix of a connection's list is a valid order of its own (every dependency comes before its event).
        lists[0] = Array(lists[0].prefix(3))
        let outcome = LoadDriver.run(lists, options: .init(endpoint: fixture.endpoint, method: "submit", pipelineDepth: 1, deadlineSeconds: 120))
        #expect(outcome.failures == [] && outcome.refusals == [:])
        #expect(outcome.accepted == 3 + lists[1].count)
        // The short connection's three answers, and the few of the other's that came meanwhile.
        #expect(outcome.acceptedWhileAllConnectionsBusy >= 3 && outcome.acceptedWhileAllConnectionsBusy < outcome.accepted / 2)
        #expect(outcome.allConnectionsBusyNanoseconds > 0 && outcome.allConnectionsBusyNanoseconds < outcome.elapsedNanoseconds / 2)
        let share = try #require(outcome.allConnectionsBusyShare)
        #expect(share > 0 && share < 0.5)
        let phase = PhaseReport(name: "append", outcome: outcome)
        #expect(phase.allConnectionsBusyShare == share && phase.perSecondWhileAllConnectionsBusy != nil)
        var report = BenchReport()
        report.connections = 2
        report.append = phase
        let json = try JSONParser.parse(Array(report.jsonText.utf8))
        #expect(json["all_connections_busy_share"] == .number((share * 1000).rounded() / 1000))
        #expect(JSONFigure.number(json["throughput_all_connections_busy_events_per_second"]) ?? 0 > 0)
        #expect(report.text.contains("  every connection busy for "), "\(report.text)")
        // A phase that sent nothing has no such part.
        #expect(LoadOutcome().allConnectionsBusyShare == nil && LoadOutcome().acceptedPerSecondWhileAllConnectionsBusy == nil)
        await fixture.server.shutdown()
    }

    /// With `--connect` the server is anyone's: the refusal codes and failure messages it sends reach the text summary
    /// on standard output, which must show them, not let them drive the terminal or forge lines of the report.
    @Test func textShowsWhatTheServerSentEscaped() throws {
        var outcome = LoadOutcome()
        outcome.refusals["\u{1B}[2Jcleared"] = 1
        outcome.failures = ["connection_failed: x\u{1B}]0;title\u{07}\r\nnote: forged\u{202E}"]
        var report = BenchReport()
        report.append = PhaseReport(name: "append", outcome: outcome)
        report.notes = ["the disk was not measured: \u{9B}31mred"]
        let text = report.text
        #expect(!text.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) || $0.value == 0x202E }, "\(text.debugDescription)")
        #expect(text.contains("\\u{1B}[2Jcleared 1"), "\(text)")
        #expect(text.contains("  connection failure: connection_failed: x\\u{1B}]0;title\\u{7}\\u{D}\\u{A}note: forged\\u{202E}"), "\(text)")
        #expect(text.contains("note: the disk was not measured: \\u{9B}31mred"), "\(text)")
        #expect(!text.split(whereSeparator: \.isNewline).contains { $0.hasPrefix("note: forged") }, "\(text)")
    }

    /// An empty set of latencies has no percentile: the JSON says null, not 0 ms, which would read as a measured (and
    /// perfect) latency; the text says that no answer was accepted.
    @Test func noAnswerGivesNoLatency() throws {
        var report = BenchReport()
        report.append = PhaseReport(name: "append", outcome: LoadOutcome())
        let json = try JSONParser.parse(Array(report.jsonText.utf8))
        for name in ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms"] {
            #expect(json[name] == .null, "\(name): \(String(describing: json[name]))")
        }
        #expect(report.text.contains("  latency: no answer accepted"), "\(report.text)")
        // One answer of 1.5 ms: every percentile is that answer.
        var outcome = LoadOutcome()
        outcome.latency.record(nanoseconds: 1_500_000)
        report.append = PhaseReport(name: "append", outcome: outcome)
        let answered = try JSONParser.parse(Array(report.jsonText.utf8))
        for name in ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms"] {
            #expect(answered[name] == .number(1.5), "\(name): \(String(describing: answered[name]))")
        }
    }

    /// The same mix in submit_batch requests of up to 16 events: every event accepted, counted as events, with one
    /// latency per request.
    @Test func theDriverAppendsTheMixInBatches() async throws {
        let fixture = try await CircuitOnServer(seed: 6)
        let (server, endpoint, setup, mix) = (fixture.server, fixture.endpoint, fixture.setup, fixture.mix)
        let batches = BenchRunner.batched(BenchRunner.split(mix, connections: 5), eventsPerRequest: 16)
        let outcome = LoadDriver.run(batches, options: .init(endpoint: endpoint, method: "submit_batch", pipelineDepth: 4, deadlineSeconds: 120))
        #expect(outcome.failures == [])
        #expect(outcome.refusals == [:])
        #expect(outcome.sent == mix.count && outcome.accepted == mix.count)
        #expect(outcome.latency.count == UInt64(batches.reduce(0) { $0 + $1.count }))
        #expect(outcome.latency.count < UInt64(mix.count))
        // Requests count once however many events they carry (the event-loop share divides by them).
        #expect(outcome.requestsSent == batches.reduce(0) { $0 + $1.count })
        #expect(try server.size() == UInt64(1 + setup.count + mix.count))
        // Through the fixture: it, and the ledger's folder with it, live until the server is shut down.
        await fixture.server.shutdown()
    }
}

/// A JSON figure written with or without a fraction.
private enum JSONFigure {
    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .integer(let integer)?: return Double(integer)
        case .number(let number)?: return number
        default: return nil
        }
    }
}
