import ArgumentParser
import CircuitoCore
import CircuitoServer
import CircuitoStorage

struct FollowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follow",
        abstract: "Mirror a running ledger live into DIR, verifying every record and checkpoint as `verify` does.",
        discussion: """
            Subscribes (as --actor, an auditor or the authority, signing with --key) from the replica's own size. \
            Each record is checked as `verify` checks it and each new checkpoint against the last with a \
            consistency proof; on any mismatch it stops with exit status 1 and writes nothing of the bad commit. \
            A lost connection is retried. SIGINT, SIGTERM or SIGHUP (unless started ignoring \
            it, as by nohup) stop it after the current commit. The replica DIR passes \
            `circuito verify` at any time once it holds a record; a run that commits none (its first subscription \
            refused, stopped before the first commit) removes the LMDB files it made there.
            """)

    @Option(name: .long, help: "The leader: HOST:PORT, or a Unix socket path (unix:PATH, a path with a /, or a name without a :).")
    var from: String
    @Option(name: .long, help: "The replica directory (created if missing, in a folder that exists).")
    var data: String
    @Option(name: .long, help: "Secret key file of the auditor the subscription is signed as.")
    var key: String
    @Option(name: .long, help: "Actor id of that auditor.")
    var actor: String
    @Option(name: .long, help: "The leader's checkpoint verifier key (NAME+KEYID+BASE64); refuse a ledger naming another.")
    var verifierKey: String?
    @Option(name: .long, help: "Ask the leader for a heartbeat every N seconds (1 to 3600) while it has nothing to send, and reconnect when it sends nothing for three of them; 0: ask for none.")
    var heartbeatSeconds: Int = 30
    @OptionGroup var storage: MapSizeOption

    func validate() throws {
        let range = SubscriptionHeartbeat.secondsRange
        guard heartbeatSeconds == 0 || range.contains(heartbeatSeconds) else {
            throw ValidationError("--heartbeat-seconds must be 0 (none) or from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    func run() throws {
        let stop = StopSignal()
        let follower: Follower
        do throws(LedgerError) {
            var configuration = Follower.Configuration(
                leader: try Endpoint(parsing: from), directory: data, actor: actor, key: try readSigningKey(key), pinnedVerifierKey: verifierKey)
            configuration.storageOptions = try storage.options(configuration.storageOptions)
            configuration.heartbeatSeconds = heartbeatSeconds == 0 ? nil : heartbeatSeconds
            follower = try Follower(configuration)
        } catch {
            throw failure(error)
        }
        printError("following \(from) into \(data) from seq \(follower.replica.size)")
        do throws(Follower.Failure) {
            try follower.run(
                shouldStop: { stop.isRequested },
                progress: { size in printError("replica at \(size) records") },
                log: { printError($0) })
        } catch {
            if follower.replica.removeIfEmpty() { printError("nothing was committed to the replica: the LMDB files this run made in \(data) are removed") }
            switch error {
            case .local(let storage): printError("error: \(storage.code.name): the replica's storage: \(storage.message)")
            case .mismatch, .refused: printError("error: follow refused: \(error)")
            }
            throw ExitCode(1)
        }
        printError("stopped at \(follower.replica.size) records")
        if follower.replica.removeIfEmpty() { printError("nothing was committed to the replica: the LMDB files this run made in \(data) are removed") }
    }
}
