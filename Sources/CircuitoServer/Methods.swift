import CircuitoCore
import CircuitoCredentials
import CircuitoCrypto
import CircuitoStorage

/// Everything a method needs: the ledger's reader and writer, subscriptions, nonces, bounds and the clock.
struct ServerContext: Sendable {
    let reader: LedgerReader
    let writer: LedgerWriter
    let hub: SubscriptionHub
    let nonces: NonceStore
    let limits: ServerLimits
    let clock: @Sendable () -> Int64
    /// The monotonic clock the connections' session challenges live by (`ServerConfiguration.monotonicMilliseconds`).
    var monotonicMilliseconds: @Sendable () -> Int64 = monotonicClockMilliseconds
    /// Where the server's tasks run.
    let executor: ServerExecutor
    /// Organisation keys and contexts for signing badge credentials.
    let credentials: CredentialSigning
    /// The server's open connections and requests in flight (`server.info`'s `connections`).
    let connections: ConnectionRegistry
    /// Gives back the memory the allocator keeps after bursts (`server.info`'s `memory`); nil when the limits say never.
    var allocatorTrimmer: AllocatorTrimmer? = nil

    /// The method names: the protocol's contract (Specs/protocol.md).
    static let methods = [
        "submit", "submit_batch", "checkpoint", "events", "subscribe", "proof.inclusion", "proof.consistency",
        "account.balance", "account.history", "case.history", "catalogue.search", "badge.get", "actor.get", "report",
        "server.info", "badge.credential", "badge.status_list", "session.challenge", "session.open", "session.close",
        "settlement.get", "policy.get", "case.list", "lots.expired",
    ]

    static let protocolVersion = "circuito.rpc.v1"
    static let maximumEventsPerPage = 1000
    static let defaultPageEntries = 100
    /// Words a catalogue search may give: each is one index lookup.
    static let maximumSearchWords = 8

    /// Answers one request (not `subscribe`, which the connection handles since it streams). `session` is the
    /// read session of the connection it came on.
    func respond(_ request: RPCRequest, session: ReadSession) async -> Result<JSONValue, RPCError> {
        do throws(RPCError) {
            switch request.method {
            case "submit": return .success(try await submit(request.params))
            case "submit_batch": return .success(try await submitBatch(request.params))
            default: return respondToRead(request, session: session)
            }
        } catch {
            return .failure(error)
        }
    }

    /// Answers a read (not `submit`, `submit_batch` or `subscribe`) without suspending: `respond`'s reads, and the
    /// event loop's path for a lone short read (`RequestLineHandler`).
    func respondToRead(_ request: RPCRequest, session: ReadSession) -> Result<JSONValue, RPCError> {
        precondition(!request.isWrite, "a write goes through respond")
        do throws(RPCError) {
            return .success(try read(request, session: session))
        } catch {
            return .failure(error)
        }
    }

    private func read(_ request: RPCRequest, session: ReadSession) throws(RPCError) -> JSONValue {
        let method = request.method
        switch method {
        case "server.info": return try serverInfo(Params(request.params, method: method))
        case "checkpoint": return try checkpoint(Params(request.params, method: method))
        case "proof.inclusion": return try inclusionProof(Params(request.params, method: method))
        case "proof.consistency": return try consistencyProof(Params(request.params, method: method))
        case "catalogue.search": return try catalogueSearch(Params(request.params, method: method))
        case "badge.get": return try badge(Params(request.params, method: method))
        case "policy.get": return try policy(Params(request.params, method: method))
        case "badge.credential": return try badgeCredential(Params(request.params, method: method))
        case "badge.status_list": return try badgeStatusList(Params(request.params, method: method))
        case "actor.get": return try actor(request.params, session: session)
        case "session.challenge": return try sessionChallenge(Params(request.params, method: method), session: session)
        case "session.open": return try sessionOpen(request.params, session: session)
        case "session.close": return try sessionClose(Params(request.params, method: method), session: session)
        case "events", "report", "account.balance", "account.history", "case.history", "settlement.get", "case.list", "lots.expired":
            let (requester, _, inner) = try authenticate(request.params, method: method, session: session)
            let params = try Params(inner, method: method)
            switch method {
            case "events": return try events(params, requester: requester)
            case "report": return try report(params, requester: requester)
            case "account.balance": return try accountBalance(params, requester: requester)
            case "account.history": return try accountHistory(params, requester: requester)
            case "settlement.get": return try settlement(params, requester: requester)
            case "case.list": return try caseList(params, requester: requester)
            case "lots.expired": return try expiredLots(params, requester: requester)
            default: return try caseHistory(params, requester: requester)
            }
        case "subscribe": throw .invalidRequest("subscribe cannot be part of a batch")
        default: throw .methodNotFound(method)
        }
    }

    // MARK: Writes

    private func submit(_ params: JSONValue?) async throws(RPCError) -> JSONValue {
        let request = try Self.singleWrite(params)
        return try Self.submitAnswer(await writer.submit(request)).get()
    }

    /// A `submit`'s params as the writer's request: its signatures checked, its `expected_size` read.
    static func singleWrite(_ params: JSONValue?) throws(RPCError) -> WriteRequest {
        guard case .object(var members)? = params else {
            throw .invalidParams("submit takes a signed event {\"event\":{…},\"sig\":…} (and optionally \"expected_size\")")
        }
        let expectedSize = try Params(.object(members), method: "submit").optionalCount("expected_size")
        members["expected_size"] = nil
        let verified = try Self.verifiedEvent(.object(members))
        return .single(verified, expectedSize: expectedSize)
    }

    /// A `submit`'s result from what the writer answered.
    static func submitAnswer(_ written: Result<[Receipt], WriteRefusal>) -> Result<JSONValue, RPCError> {
        switch written {
        case .success(let receipts):
            guard let receipt = receipts.first else { return .failure(.internalError("the writer returned no receipt")) }
            return .success(receipt.json)
        case .failure(let refusal):
            return .failure(RPCError(refusal.error))
        }
    }

    private func submitBatch(_ params: JSONValue?) async throws(RPCError) -> JSONValue {
        let reader = try Params(params, method: "submit_batch")
        try reader.allowOnly(["events", "expected_size"])
        let expectedSize = try reader.optionalCount("expected_size")
        guard case .array(let items)? = reader.members["events"] else {
            throw .invalidParams("submit_batch needs \"events\": an array of signed events")
        }
        guard !items.isEmpty, items.count <= limits.maximumEventsPerBatchRequest else {
            throw .invalidParams("submit_batch takes 1 to \(limits.maximumEventsPerBatchRequest) events")
        }
        // Signature checks are independent: on all cores, before the single writer.
        let checked = Parallel.map(items) { item -> Result<VerifiedEvent, RPCError> in
            do throws(RPCError) { return .success(try Self.verifiedEvent(item)) } catch { return .failure(error) }
        }
        var events: [VerifiedEvent] = []
        for (index, result) in checked.enumerated() {
            switch result {
            case .success(let event): events.append(event)
            case .failure(let error):
                var data = error.data?.objectValue ?? [:]
                data["index"] = .integer(Int64(index))
                throw RPCError(code: error.code, message: "event \(index): \(error.message)", data: .object(data))
            }
        }
        switch await writer.submit(.batch(events, expectedSize: expectedSize)) {
        case .success(let receipts):
            return .object(["receipts": .array(receipts.map(\.json))])
        case .failure(let refusal):
            if let index = refusal.index {
                throw RPCError(LedgerError(refusal.error.code, "event \(index): \(refusal.error.message)"), extra: ["index": .integer(Int64(index))])
            }
            throw RPCError(refusal.error)
        }
    }

    /// Parses a signed event from params and checks its signature (and an embedded payment authorisation's).
    static func verifiedEvent(_ value: JSONValue) throws(RPCError) -> VerifiedEvent {
        do throws(LedgerError) {
            guard case .object = value else { throw LedgerError(.invalidEvent, "a signed event is a JSON object {\"event\":{…},\"sig\":…}") }
            // The request line is parsed already; the signed event's size bound is checked on its canonical form.
            return try SignedEvent(submitted: value).verified()
        } catch {
            throw RPCError(error)
        }
    }

    // MARK: Public reads

    private func serverInfo(_ params: Params) throws(RPCError) -> JSONValue {
        try params.allowOnly([])
        let size = try ledger { () throws(LedgerError) in try reader.size() }
        return .object([
            "protocol": .string(Self.protocolVersion), "origin": .string(reader.genesis.origin),
            "verifier_key": .string(writer.verifierKey), "size": .integer(Int64(size)),
            "methods": .array(Self.methods.map { .string($0) }),
            "limits": .object([
                "maximum_frame_bytes": .integer(Int64(limits.maximumFrameBytes)),
                "maximum_connections": .integer(Int64(limits.maximumConnections)),
                "maximum_in_flight_per_connection": .integer(Int64(limits.maximumInFlightPerConnection)),
                "maximum_unwritten_answer_bytes": .integer(Int64(limits.maximumUnwrittenAnswerBytes)),
                "maximum_in_flight_request_bytes": .integer(Int64(limits.maximumInFlightRequestBytes)),
                "maximum_unfinished_line_bytes": .integer(Int64(limits.maximumUnfinishedLineBytes)),
                "maximum_subscriptions_per_connection": .integer(Int64(limits.maximumSubscriptionsPerConnection)),
                "maximum_events_per_batch_request": .integer(Int64(limits.maximumEventsPerBatchRequest)),
                "maximum_subscriber_buffer_records": .integer(Int64(limits.maximumSubscriberBufferRecords)),
                "read_request_window_seconds": .integer(Int64(limits.readRequestWindowSeconds)),
                "maximum_remembered_nonces": .integer(Int64(limits.maximumRememberedNonces)),
                "maximum_remembered_nonces_per_actor": .integer(Int64(limits.maximumRememberedNoncesPerActor)),
                "idle_timeout_seconds": limits.idleTimeoutSeconds.map { .integer(Int64($0)) } ?? .null,
                "write_stall_timeout_seconds": limits.writeStallTimeoutSeconds.map { .integer(Int64($0)) } ?? .null,
                "maximum_queued_refusals_per_connection": .integer(Int64(limits.maximumQueuedRefusalsPerConnection)),
                "allocator_trim_interval_seconds": limits.allocatorTrimIntervalSeconds.map { .integer(Int64($0)) } ?? .null,
            ]),
            "writer": Self.writerJSON(writer.statistics),
            "connections": Self.connectionsJSON(connections.statistics),
            "reads": .object(["remembered_nonces": .integer(Int64(nonces.rememberedCount(nowMilliseconds: clock())))]),
            "memory": Self.memoryJSON(resident: AllocatorTrimmer.residentUnusedBytes(), trims: allocatorTrimmer?.statistics),
        ])
    }

    /// The process's own memory now and what the allocator trims gave back since the server started.
    static func memoryJSON(resident: (resident: Int, unused: Int)?, trims: AllocatorTrimmer.Statistics?) -> JSONValue {
        let trims = trims ?? AllocatorTrimmer.Statistics()
        return .object([
            "resident_anonymous_bytes": resident.map { .integer(Int64($0.resident)) } ?? .null,
            "resident_unused_bytes": resident.map { .integer(Int64($0.unused)) } ?? .null,
            "allocator_trims": .integer(Int64(clamping: trims.trims)),
            "allocator_returned_bytes": .integer(Int64(clamping: trims.returnedBytes)),
            "last_trim_microseconds": .integer(Int64(clamping: trims.lastTrimMicroseconds)),
        ])
    }

    /// A snapshot of the connection counters; `requests_in_flight` counts the `server.info` being answered.
    static func connectionsJSON(_ statistics: ConnectionStatistics) -> JSONValue {
        .object([
            "open": .integer(Int64(statistics.open)),
            "requests_in_flight": .integer(Int64(statistics.requestsInFlight)),
            "reads_answered_on_event_loop": .integer(Int64(clamping: statistics.readsAnsweredOnEventLoop)),
            "writes_taken_on_event_loop": .integer(Int64(clamping: statistics.writesTakenOnEventLoop)),
            "closed_idle": .integer(Int64(clamping: statistics.closedIdle)),
            "closed_unread": .integer(Int64(clamping: statistics.closedUnread)),
            "unwritten_answer_bytes": .integer(Int64(clamping: statistics.unwrittenAnswerBytes)),
            "in_flight_request_bytes": .integer(Int64(clamping: statistics.inFlightRequestBytes)),
            "unfinished_line_bytes": .integer(Int64(clamping: statistics.unfinishedLineBytes)),
            "subscriptions_ended_by_half_close": .integer(Int64(clamping: statistics.subscriptionsEndedByHalfClose)),
            "subscriptions": .integer(Int64(statistics.subscriptions)),
        ])
    }

    /// Cumulative since the server started; durations in whole microseconds.
    static func writerJSON(_ statistics: WriterStatistics) -> JSONValue {
        .object([
            "groups": .integer(Int64(clamping: statistics.groups)),
            "busy_microseconds": .integer(Int64(clamping: statistics.busyNanoseconds / 1000)),
            "planning_microseconds": .integer(Int64(clamping: statistics.planningNanoseconds / 1000)),
            "commits": .integer(Int64(clamping: statistics.appends.commits)),
            "records": .integer(Int64(clamping: statistics.appends.records)),
            "commit_microseconds": .integer(Int64(clamping: statistics.appends.commitNanoseconds / 1000)),
        ])
    }

    private func checkpoint(_ params: Params) throws(RPCError) -> JSONValue {
        try params.allowOnly(["covering"])
        let note: String
        if let covering = try params.optionalCount("covering") {
            note = try ledger { () throws(LedgerError) in try reader.checkpointCovering(sequenceNumber: covering) }
        } else {
            note = try ledger { () throws(LedgerError) in try reader.latestCheckpoint() }
        }
        let body = try ledger { () throws(LedgerError) in try SignedNote.open(note, verifier: try reader.checkpointVerifier()) }
        let checkpoint = try ledger { () throws(LedgerError) in try Checkpoint(parsing: body) }
        // No log reaches 2^63 records: a stored note that says so is damage, not a size to answer.
        guard let size = Int64(exactly: checkpoint.size) else {
            throw RPCError(LedgerError(.integrity, "the stored checkpoint names size \(checkpoint.size), past any log: the ledger is damaged"))
        }
        return .object(["checkpoint": .string(note), "size": .integer(size), "root_hash": .string(Base64.encode(checkpoint.rootHash))])
    }

    private func inclusionProof(_ params: Params) throws(RPCError) -> JSONValue {
        try params.allowOnly(["seq", "size"])
        let sequenceNumber = try params.count("seq")
        let requestedSize = try params.optionalCount("size")
        return try ledger { () throws(LedgerError) in
            var treeSize = try reader.size()
            if let requestedSize { treeSize = requestedSize }
            let hashes = try reader.inclusionProof(leafIndex: sequenceNumber, treeSize: treeSize)
            let leafHash = MerkleHash.leaf(try reader.leafBytes(sequenceNumber: sequenceNumber))
            return .object([
                "leaf_index": .integer(Int64(sequenceNumber)), "tree_size": .integer(Int64(treeSize)),
                "leaf_hash": .string(Base64.encode(leafHash)), "hashes": .array(hashes.map { .string(Base64.encode($0)) }),
            ])
        }
    }

    private func consistencyProof(_ params: Params) throws(RPCError) -> JSONValue {
        try params.allowOnly(["from", "to"])
        let firstSize = try params.count("from")
        let requestedSize = try params.optionalCount("to")
        return try ledger { () throws(LedgerError) in
            var secondSize = try reader.size()
            if let requestedSize { secondSize = requestedSize }
            let hashes = try reader.consistencyProof(firstSize: firstSize, secondSize: secondSize)
            return .object([
                "first_size": .integer(Int64(firstSize)), "second_size": .integer(Int64(secondSize)),
                "hashes": .array(hashes.map { .string(Base64.encode($0)) }),
            ])
        }
    }

    private func catalogueSearch(_ params: Params) throws(RPCError) -> JSONValue {
        try params.allowOnly(["kind", "category", "district", "provider", "text", "after", "limit"])
        let kind = try params.string("kind")
        guard CatalogueIndex.kinds.contains(kind) else {
            throw .invalidParams("catalogue.search kind must be one of \(CatalogueIndex.kinds.joined(separator: ", "))")
        }
        let text = try params.optionalString("text") ?? ""
        guard text.utf8.count <= 1000 else { throw .invalidParams("catalogue.search text is at most 1000 bytes") }
        // A filter that could never apply is refused rather than ignored: ignored, it would answer every entry (a
        // text of short words) or none (a facet the kind's entries lack), and the caller could not tell.
        let words = CatalogueIndex.candidateWords(text)
        guard text.isEmpty || !words.isEmpty else {
            throw .invalidParams("catalogue.search text has no word of at least 3 letters or digits, the shortest the index holds")
        }
        if let long = words.first(where: { $0.utf8.count > CatalogueIndex.maximumWordBytes }) {
            throw .invalidParams("catalogue.search text has a word of \(long.utf8.count) bytes; the index holds words of at most \(CatalogueIndex.maximumWordBytes)")
        }
        guard words.count <= Self.maximumSearchWords else {
            throw .invalidParams("catalogue.search text has \(words.count) different words; a search takes at most \(Self.maximumSearchWords)")
        }
        let facets = CatalogueIndex.facetsOfKind[kind] ?? []
        for facet in ["category", "district", "provider"] where !facets.contains(facet) {
            if try params.optionalString(facet) != nil {
                throw .invalidParams("catalogue.search of kind \(kind) cannot filter by \(facet): its entries have \(facets.joined(separator: " and ")) and words")
            }
        }
        let query = CatalogueQuery(
            kind: kind, category: try params.optionalIdentifier("category"), district: try params.optionalIdentifier("district"),
            provider: try params.optionalIdentifier("provider"), words: words,
            after: try params.optionalIdentifierCursor("after"), limit: try params.limit(default: Self.defaultPageEntries, maximum: LedgerQueryLimits.maximumPageEntries))
        let page = try ledger { () throws(LedgerError) in try reader.catalogueSearch(query) }
        return .object(["kind": .string(kind), "entries": .array(page.entries), "next_after": page.nextAfter.map { .string($0) } ?? .null])
    }

    private func badge(_ params: Params) throws(RPCError) -> JSONValue {
        try params.allowOnly(["badge"])
        let id = try params.identifier("badge")
        guard let found = try ledger({ () throws(LedgerError) in try reader.badge(id) }) else {
            throw RPCError(LedgerError(.notFound, "badge \"\(id)\" is not issued"))
        }
        return .object(["badge": found.badge, "badge_class": found.badgeClass ?? .null])
    }

    /// The policy in force: the programme's rules, no one's data, so public. Staff read the categories a dote may be
    /// earmarked for and the monthly cap before they grant or convert, a shop the categories it may be enrolled for.
    private func policy(_ params: Params) throws(RPCError) -> JSONValue {
        try params.allowOnly([])
        guard let policy = try ledger({ () throws(LedgerError) in try reader.currentPolicy() }) else {
            throw RPCError(LedgerError(.notFound, "the authority has recorded no policy.updated yet"))
        }
        return .object(["policy": policy])
    }

    /// The signed OpenBadgeCredential of an issued badge, built exactly as `circuito badge credential` builds it.
    private func badgeCredential(_ params: Params) throws(RPCError) -> JSONValue {
        try params.allowOnly(["badge", "suite"])
        let id = try params.identifier("badge")
        let suite = try CredentialSigning.suite(try params.optionalString("suite"))
        return try ledger { () throws(LedgerError) in
            let source = try reader.badgeCredentialSource(badgeID: id)
            try OpenBadgeCredentials.requireNotRevoked(source.badge)
            let (key, contexts) = try credentials.signing(for: source.issuer, offlineCommand: "circuito badge credential --data LEDGER --id \(id) --key ORGANISATION.key")
            return try OpenBadgeCredentials.issuedBadgeCredential(
                badge: source.badge, badgeClass: source.badgeClass, issuer: source.issuer,
                activations: source.activations, opportunities: source.opportunities, origin: source.origin,
                statusListIndex: source.statusListIndex, signingKey: key, suite: suite, contexts: contexts)
        }
    }

    /// An issuer's signed Bitstring Status List credential as of the last record.
    private func badgeStatusList(_ params: Params) throws(RPCError) -> JSONValue {
        try params.allowOnly(["issuer", "suite"])
        let issuer = try params.identifier("issuer")
        let suite = try CredentialSigning.suite(try params.optionalString("suite"))
        return try ledger { () throws(LedgerError) in
            let source = try reader.statusListSource(issuer: issuer)
            let (key, contexts) = try credentials.signing(for: source.issuer, offlineCommand: "circuito badge status-list --data LEDGER --issuer \(source.issuer.id) --key ORGANISATION.key")
            return try OpenBadgeCredentials.issuerStatusListCredential(
                issuer: source.issuer, issuedCount: source.issuedCount, revokedIndices: source.revokedIndices,
                validFrom: source.asOf, origin: source.origin, signingKey: key, suite: suite, contexts: contexts)
        }
    }

    /// Public for every actor but beneficiaries, whose records need a signed read.
    private func actor(_ rawParams: JSONValue?, session: ReadSession) throws(RPCError) -> JSONValue {
        var requester: ActorRecord?
        var params = rawParams
        // Public unless the actor is a beneficiary: the requester is known only when signed or in a session. Signed
        // params are checked as signed whoever the actor is; a session only when it is needed, so that one whose key
        // was revoked since takes nothing public away from its connection.
        if ReadAuthorisation.isSigned(rawParams) {
            let opened = try authenticate(rawParams, method: "actor.get", session: session)
            requester = opened.requester
            params = opened.params
        }
        let reader = try Params(params, method: "actor.get")
        try reader.allowOnly(["actor"])
        let id = try reader.identifier("actor")
        guard let record = try ledger({ () throws(LedgerError) in try self.reader.actorRecord(id) }) else {
            throw RPCError(LedgerError(.notFound, "actor \"\(id)\" is not registered"))
        }
        if record.role == .beneficiary {
            if requester == nil, session.opened != nil {
                requester = try authenticate(rawParams, method: "actor.get", session: session).requester
            }
            guard let requester else {
                throw RPCError(LedgerError(.notAuthorised, "a beneficiary's record is personal data: actor.get needs a signed read request"))
            }
            try authorise(try ledger { () throws(LedgerError) in try ReadPolicy.mayReadBeneficiary(id, requester, reader: self.reader) }, requester, "the record of \(id)")
        }
        return record.json
    }

    // MARK: Signed reads and sessions

    /// Who reads (signed params, or the connection's session): ReadAuthorisation.authenticate with this server's
    /// nonces, window and clock.
    func authenticate(_ params: JSONValue?, method: String, session: ReadSession) throws(RPCError) -> (requester: ActorRecord, key: String, params: JSONValue?) {
        try ReadAuthorisation.authenticate(
            params, method: method, session: session, reader: reader, nonces: nonces, windowSeconds: limits.readRequestWindowSeconds,
            nowMilliseconds: clock())
    }

    private func sessionChallenge(_ params: Params, session: ReadSession) throws(RPCError) -> JSONValue {
        try params.allowOnly([])
        let windowSeconds = limits.readRequestWindowSeconds
        let challenge = session.newChallenge(lifetimeMilliseconds: Int64(windowSeconds) * 1000)
        return .object(["challenge": .string(challenge), "expires_in_seconds": .integer(Int64(windowSeconds))])
    }

    private func sessionOpen(_ params: JSONValue?, session: ReadSession) throws(RPCError) -> JSONValue {
        guard let challenge = session.takeChallenge() else {
            throw RPCError(LedgerError(.invalidReadRequest, "no session challenge is pending on this connection: call session.challenge first (each challenge is used once, within \(limits.readRequestWindowSeconds) seconds)"))
        }
        // An attempt on a new challenge ends the session open, whatever its outcome: a connection whose switch to
        // another actor was refused must not go on reading as the actor before.
        _ = session.close()
        let signed = try ReadAuthorisation.open(
            params, method: "session.open", reader: reader, nonces: nonces, windowSeconds: limits.readRequestWindowSeconds, nowMilliseconds: clock(),
            challenge: challenge)
        try Params(signed.params, method: "session.open").allowOnly([])
        session.open(ReadSession.Opened(actor: signed.requester.id, key: signed.key))
        return .object(["actor": .string(signed.requester.id), "role": .string(signed.requester.role.rawValue), "key": .string(signed.key)])
    }

    private func sessionClose(_ params: Params, session: ReadSession) throws(RPCError) -> JSONValue {
        try params.allowOnly([])
        return .object(["closed": .bool(session.close())])
    }

    private func authorise(_ allowed: Bool, _ requester: ActorRecord, _ what: String) throws(RPCError) {
        guard allowed else {
            throw RPCError(LedgerError(.notAuthorised, "\(requester.role.rawValue) \"\(requester.id)\" may not read \(what)"))
        }
    }

    private func events(_ params: Params, requester: ActorRecord) throws(RPCError) -> JSONValue {
        try params.allowOnly(["from", "limit"])
        // Every param is read before the permission is checked (Specs/protocol.md 4.2): a malformed request is
        // invalid_params whoever signs it.
        let start = try params.optionalCount("from") ?? 0
        let limit = try params.limit(default: Self.defaultPageEntries, maximum: Self.maximumEventsPerPage)
        try authorise(ReadPolicy.mayReadLog(requester), requester, "the log")
        let page = try ledger { () throws(LedgerError) in try reader.recordsPage(from: start, limit: limit) }
        // As subscribe does: a start past the end is the caller's mistake, not an empty page to poll from.
        guard start <= page.size else {
            throw RPCError(LedgerError(.invalidRange, "from \(start) is past the end of the log (\(page.size) records)"))
        }
        let records = try page.records.map { (record) throws(RPCError) -> JSONValue in try Self.storedJSON(record.leafBytes) }
        let next = start + UInt64(page.records.count)
        return .object(["records": .array(records), "size": .integer(Int64(page.size)), "next": .integer(Int64(next))])
    }

    private func report(_ params: Params, requester: ActorRecord) throws(RPCError) -> JSONValue {
        try params.allowOnly([])
        try authorise(ReadPolicy.mayReadLog(requester), requester, "the programme report")
        let report = try ledger { () throws(LedgerError) in try reader.report() }
        return .object([
            "size": .integer(Int64(report.size)), "accounts": .object(JSONObject(report.systemBalances.mapValues { JSONValue.integer($0) })),
            "counts": .object(JSONObject(report.tableCounts.mapValues { JSONValue.integer(Int64($0)) })),
        ])
    }

    /// The `account` param, checked to name an account (`invalid_params` otherwise); its reader is checked apart,
    /// by `authoriseAccount`, once every param of the request has been read.
    private static func accountName(_ params: Params) throws(RPCError) -> String {
        let account = try params.string("account")
        let systemAccounts = [Account.issuance, Account.fund, Account.settlement]
        let holder = Self.accountHolder(account)
        guard holder.map({ Identifier.isValid($0.id) }) ?? systemAccounts.contains(account) else {
            throw .invalidParams("account is beneficiary:<id>, merchant:<id>, \(systemAccounts.joined(separator: ", "))")
        }
        return account
    }

    /// The actor a beneficiary's or merchant's account belongs to, read from its name; nil for the system accounts.
    private static func accountHolder(_ account: String) -> (role: Role, id: String)? {
        if account.hasPrefix("beneficiary:") { return (.beneficiary, String(account.dropFirst("beneficiary:".count))) }
        if account.hasPrefix("merchant:") { return (.merchant, String(account.dropFirst("merchant:".count))) }
        return nil
    }

    /// The permission to read `account` (`not_authorised`), then, for the authority and auditors, that its actor is
    /// registered (`not_found`).
    private func authoriseAccount(_ account: String, requester: ActorRecord) throws(RPCError) {
        let holder = Self.accountHolder(account)
        try authorise(try ledger { () throws(LedgerError) in try ReadPolicy.mayReadAccount(account, requester, reader: reader) }, requester, "account \(account)")
        if let holder { try requireRegistered(holder.id, as: holder.role, requester: requester) }
    }

    /// The authority and auditors may read any beneficiary or merchant, so for them an id that the ledger has not
    /// registered with that role is `not_found`: a mistyped id must not read as an empty account or history. Every
    /// other permitted reader is that actor itself or holds its case, so it is registered and costs no lookup; the
    /// refused ones were answered `not_authorised` before this, and learn nothing about which ids exist.
    private func requireRegistered(_ id: String, as role: Role, requester: ActorRecord) throws(RPCError) {
        guard requester.role == .authority || requester.role == .auditor else { return }
        guard let record = try ledger({ () throws(LedgerError) in try reader.actorRecord(id) }) else {
            throw RPCError(LedgerError(.notFound, "the ledger knows no \(role.rawValue) \(id.debugDescription): no event registers it"))
        }
        guard record.role == role else {
            throw RPCError(LedgerError(.notFound, "the ledger knows no \(role.rawValue) \(id.debugDescription): that id is registered as \(record.role.rawValue)"))
        }
    }

    /// The time an event sent now is recorded at: the clock, or the last recorded_at when the clock is behind it
    /// (Specs/ledger.md 5.3). What expiry and the month of a conversion are judged at in reads.
    private func ledgerTime() -> String {
        Timestamp.format(millisecondsSince1970: max(clock(), writer.lastRecordedAtMilliseconds))
    }

    private func accountBalance(_ params: Params, requester: ActorRecord) throws(RPCError) -> JSONValue {
        try params.allowOnly(["account"])
        let account = try Self.accountName(params)
        try authoriseAccount(account, requester: requester)
        let now = ledgerTime()
        let month = String(now.prefix(7))
        let balance = try ledger { () throws(LedgerError) in try reader.accountBalance(account, conversionsMonth: month) }
        var result: JSONObject = ["account": .string(account), "balance": .integer(balance.balance)]
        if let lots = balance.lots {
            result["lots"] = .array(lots.map(\.json))
            // Lots past their expiry stay in the balance until the authority's tocoin.expired collects them, but no
            // payment can spend them: say how much of the balance that is, so a till does not offer it.
            result["expired"] = .integer(lots.filter { $0.isExpired(at: now) }.reduce(0) { $0 + $1.remaining })
        }
        if let converted = balance.convertedCentsInMonth {
            // What the month's conversions already took of the policy's monthly cap, so that staff choose the badges
            // to convert now without learning it from a cap_exceeded.
            result["conversions"] = ["month": .string(month), "cents": .integer(converted)]
        }
        return .object(result)
    }

    private func accountHistory(_ params: Params, requester: ActorRecord) throws(RPCError) -> JSONValue {
        try params.allowOnly(["account", "after", "limit"])
        let account = try Self.accountName(params)
        let after = try params.optionalSequenceCursor("after")
        let limit = try params.limit(default: Self.defaultPageEntries, maximum: LedgerQueryLimits.maximumPageEntries)
        try authoriseAccount(account, requester: requester)
        let page = try ledger { () throws(LedgerError) in try reader.accountHistory(account, after: after, limit: limit) }
        let entries: [JSONValue] = page.entries.map { movement in
            .object([
                "seq": .integer(Int64(movement.sequenceNumber)), "amount": .integer(movement.amount),
                "id": .string(movement.eventID), "type": .string(movement.eventType),
            ])
        }
        return .object(["account": .string(account), "entries": .array(entries), "next_after": Self.cursor(page.nextAfter)])
    }

    /// A settlement, for the merchant that requested it, the authority and auditors: whether it was paid is not in
    /// the merchant's own account history (`settlement.paid` moves the settlement account, not the merchant's).
    private func settlement(_ params: Params, requester: ActorRecord) throws(RPCError) -> JSONValue {
        try params.allowOnly(["settlement"])
        let id = try params.identifier("settlement")
        let readsEverySettlement = ReadPolicy.mayReadLog(requester)
        // Other roles read none, whatever the id; a merchant its own, known only once the settlement is found (an
        // unknown id is not_found to it too: ids are one namespace any key can probe, Specs/ledger.md 9).
        try authorise(readsEverySettlement || requester.role == .merchant, requester, "settlements")
        guard let settlement = try ledger({ () throws(LedgerError) in try reader.settlement(id) }) else {
            throw RPCError(LedgerError(.notFound, "there is no settlement \"\(id)\""))
        }
        try authorise(readsEverySettlement || settlement["merchant"]?.stringValue == requester.id, requester, "settlement \"\(id)\"")
        return .object(["settlement": settlement])
    }

    /// The live lots past their expiry, for the authority, which collects each with `tocoin.expired`, and auditors.
    /// Without it the authority could find them only by reading every beneficiary's balance.
    private func expiredLots(_ params: Params, requester: ActorRecord) throws(RPCError) -> JSONValue {
        try params.allowOnly(["after", "limit"])
        let after = try params.optionalTextCursor("after").map { (text) throws(RPCError) in try Self.lotCursor(text) }
        let limit = try params.limit(default: Self.defaultPageEntries, maximum: LedgerQueryLimits.maximumPageEntries)
        try authorise(ReadPolicy.mayReadLog(requester), requester, "the expired lots")
        // Expired at the time a tocoin.expired sent now is recorded at, as account.balance's "expired".
        let now = ledgerTime()
        let page = try ledger { () throws(LedgerError) in try reader.expiredLots(at: now, after: after, limit: limit) }
        let next: JSONValue = page.nextAfter.map { .string("\($0.beneficiary)/\($0.lot)") } ?? .null
        return .object(["at": .string(now), "lots": .array(page.lots.map(\.json)), "next_after": next])
    }

    /// A lots.expired cursor, `<beneficiary>/<lot>` (an identifier holds no `/`), its lot in decimal digits as
    /// `next_after` writes it: `UInt64(_:)` alone also reads a sign and leading zeros (`+3`, `03`), spellings the
    /// spec does not give a cursor, which would make one position a cursor of several texts.
    static func lotCursor(_ text: String) throws(RPCError) -> (beneficiary: String, lot: UInt64) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, Identifier.isValid(String(parts[0])), Self.isPlainDecimal(parts[1]), let lot = UInt64(parts[1]),
            lot <= UInt64(JSONValue.maximumExactInteger)
        else {
            throw .invalidParams("lots.expired parameter \"after\" must be <beneficiary>/<lot>, the next_after of the page before")
        }
        return (String(parts[0]), lot)
    }

    /// Decimal digits without a sign or a leading zero (`0` itself is one digit), the one spelling of a number.
    private static func isPlainDecimal(_ text: Substring) -> Bool {
        guard let first = text.utf8.first, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return false }
        return first != UInt8(ascii: "0") || text.utf8.count == 1
    }

    /// The statuses a case goes through (Specs/events.md 5).
    static let caseStatuses = ["referred", "open", "closed"]

    /// The members of a case its referrer reads (`case.list` with `referred_by`): what it wrote itself in the
    /// referral, and how the referral went (taken in charge, a plan agreed, closed and how), never what the plan
    /// holds. `goals` are opportunity categories such as `disability` or `family`: in clear under a pseudonym, but
    /// the referrer holds the person's key and knows who they are, so the plan stays with the holder. An allow-list,
    /// so that a member a later event adds to the case is not shown to referrers unless it is named here.
    static let caseMembersShownToReferrer: Set<String> = [
        "beneficiary", "case", "holder", "household", "referred_at", "referred_by", "status", "opened_at", "plan_agreed_at", "closed_at",
        "outcome",
    ]

    /// The cases one organisation holds (`holder`), or the cases one organisation referred (`referred_by`), for that
    /// organisation, its staff, the authority and auditors. A Casa finds here the referrals a hub made to it, which
    /// otherwise it learnt of only from outside the ledger; a hub finds here whether each of its referrals was taken
    /// in charge and how it closed. Both find whether the person was erased, so that each erases its own copy of
    /// their key. Each lists only what the organisation was given, recorded or referred itself.
    private func caseList(_ params: Params, requester: ActorRecord) throws(RPCError) -> JSONValue {
        try params.allowOnly(["holder", "referred_by", "status", "after", "limit"])
        // Exactly one of the two: a list of the cases both held by one and referred by another would be a third
        // read, with a permission of its own.
        let holder = try params.optionalIdentifier("holder")
        let referrer = try params.optionalIdentifier("referred_by")
        guard (holder == nil) != (referrer == nil) else {
            throw .invalidParams("case.list takes exactly one of \"holder\" (the cases an organisation holds) and \"referred_by\" (the cases it referred)")
        }
        let status = try params.optionalString("status")
        if let status, !Self.caseStatuses.contains(status) {
            throw .invalidParams("case.list status must be one of \(Self.caseStatuses.joined(separator: ", "))")
        }
        let after = try params.optionalIdentifierCursor("after")
        let limit = try params.limit(default: Self.defaultPageEntries, maximum: LedgerQueryLimits.maximumPageEntries)
        let ownOrganisation: String? = switch requester.role {
        case .organisation: requester.id
        case .staff: requester.organisation
        default: nil
        }
        let organisation = holder ?? referrer ?? ""
        let what = holder != nil ? "the cases held by \(organisation)" : "the cases referred by \(organisation)"
        // Refused before the id is looked up: a reader that may not read the list learns nothing of which ids exist.
        try authorise(ReadPolicy.mayReadLog(requester) || ownOrganisation == organisation, requester, what)
        try requireRegistered(organisation, as: .organisation, requester: requester)
        let page = try ledger { () throws(LedgerError) -> LedgerPage<ListedCase> in
            if holder != nil { return try reader.casesHeld(by: organisation, status: status, after: after, limit: limit) }
            return try reader.casesReferred(by: organisation, status: status, after: after, limit: limit)
        }
        // Each case says whether its person was erased: the holder was handed their key with the referral, and the
        // referrer kept one, and each must erase its copy (the holder also once the case is closed and case.history
        // is no longer its to read). The holder sees the whole case, the referrer only the referral's members.
        let cases: [JSONValue] = page.entries.map { (listed) -> JSONValue in
            var shown = listed.record.objectValue ?? [:]
            if holder == nil { shown = shown.filter { Self.caseMembersShownToReferrer.contains($0.key) } }
            shown["erased"] = .bool(listed.subjectErased)
            return .object(shown)
        }
        return .object([holder != nil ? "holder" : "referred_by": .string(organisation), "cases": .array(cases), "next_after": page.nextAfter.map { .string($0) } ?? .null])
    }

    private func caseHistory(_ params: Params, requester: ActorRecord) throws(RPCError) -> JSONValue {
        try params.allowOnly(["beneficiary", "after", "limit"])
        let beneficiary = try params.identifier("beneficiary")
        let after = try params.optionalSequenceCursor("after")
        let limit = try params.limit(default: Self.defaultPageEntries, maximum: LedgerQueryLimits.maximumPageEntries)
        try authorise(try ledger { () throws(LedgerError) in try ReadPolicy.mayReadBeneficiary(beneficiary, requester, reader: reader) }, requester, "the case history of \(beneficiary)")
        // A person not registered has a history too when the ledger recorded something about them (a referral the
        // holder reads, the authority's erasure of a walk-in): only an id with neither is unknown, as offline
        // `circuito case` has it.
        let knownByHistoryOnly = try ledger { () throws(LedgerError) -> Bool in
            guard try reader.actorRecord(beneficiary) == nil else { return false }
            return try !reader.caseHistory(beneficiary: beneficiary, after: nil, limit: 1).entries.isEmpty
        }
        if !knownByHistoryOnly { try requireRegistered(beneficiary, as: .beneficiary, requester: requester) }
        let page = try ledger { () throws(LedgerError) in try reader.caseHistory(beneficiary: beneficiary, after: after, limit: limit) }
        let records = try page.entries.map { (record) throws(RPCError) -> JSONValue in try Self.storedJSON(record.leafBytes) }
        // Read after the page, so that a page holding the erasure never comes with false: a reader opening the
        // sealed values of an earlier page with a key left in a vault learns that the person was erased.
        let erased = try ledger { () throws(LedgerError) in try reader.isErased(subject: beneficiary) }
        return .object([
            "beneficiary": .string(beneficiary), "erased": .bool(erased), "records": .array(records), "next_after": Self.cursor(page.nextAfter),
        ])
    }

    // MARK: Helpers

    /// A seq cursor as JSON: the integer, or null at the end.
    static func cursor(_ text: String?) -> JSONValue {
        guard let text, let value = Int64(text) else { return .null }
        return .integer(value)
    }

    static func storedJSON(_ bytes: [UInt8]) throws(RPCError) -> JSONValue {
        do throws(LedgerError) { return try JSONParser.parse(bytes) } catch {
            throw RPCError(LedgerError(.integrity, "a stored record is damaged: \(error.message)"))
        }
    }

    /// Runs a ledger read, turning its refusal into the ledger's error code.
    func ledger<Value>(_ body: () throws(LedgerError) -> Value) throws(RPCError) -> Value {
        do throws(LedgerError) { return try body() } catch { throw RPCError(error) }
    }
}

/// The organisation keys a server was given for signing badge credentials, and the contexts to process them with.
struct CredentialSigning: Sendable {
    let keys: [Ed25519PrivateKey]
    let contexts: JSONLDContextStore?

    /// The configured key that is an active key of `issuer` now; the library re-checks it against the registry.
    /// `offlineCommand` is the `circuito badge` command that makes the same credential with the organisation's own key.
    func signing(for issuer: ActorRecord, offlineCommand: String) throws(LedgerError) -> (Ed25519PrivateKey, JSONLDContextStore) {
        guard let key = keys.first(where: { issuer.keys[$0.publicKey.multikey] == .active }) else {
            throw LedgerError(.keyFile, "this server holds no active key of organisation \"\(issuer.id)\"; make it with the organisation's key instead: \(offlineCommand)")
        }
        guard let contexts else {
            throw LedgerError(.keyFile, "this server was started without JSON-LD contexts (--contexts)")
        }
        return (key, contexts)
    }

    /// `rdfc`, `jcs` or the full suite name; `eddsa-rdfc-2022` when absent.
    static func suite(_ name: String?) throws(RPCError) -> EdDSACryptosuite {
        switch name {
        case nil, "rdfc", "eddsa-rdfc-2022": return .rdfc2022
        case "jcs", "eddsa-jcs-2022": return .jcs2022
        case let other?: throw RPCError(LedgerError(.invalidBody, "suite \"\(other)\" is not rdfc, jcs, eddsa-rdfc-2022 or eddsa-jcs-2022"))
        }
    }
}
