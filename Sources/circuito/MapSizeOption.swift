import ArgumentParser
import CircuitoCore
import CircuitoStorage

/// `--map-size` of the commands that write a ledger: how much the ledger may grow to (Specs/ledger.md 10.1).
struct MapSizeOption: ParsableArguments {
    @Option(
        name: .long,
        help: """
            The largest the ledger may grow to, in MiB, GiB or TiB (such as 32GiB); a commit beyond it is refused with \
            map_full. Default: 16GiB, or the largest size the ledger was ever opened with.
            """)
    var mapSize: String?

    /// `base` with the map size asked for, if any.
    func options(_ base: LMDBEnvironment.Options) throws(LedgerError) -> LMDBEnvironment.Options {
        guard let mapSize else { return base }
        var options = base
        options.mapSize = try LMDBEnvironment.mapSize(parsing: mapSize)
        return options
    }
}
