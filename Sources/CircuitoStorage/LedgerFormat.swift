import CircuitoCore

/// The ledger format version, stamped in a named database of its own (`Specs/ledger.md` 10.2), outside the state
/// tables: a binary refuses a ledger stamped with a version newer than its own, before it reads or writes anything
/// else, since it would misread it or write to it what the newer rules refuse (`Specs/ledger.md` 8).
public enum LedgerFormat {
    /// The format version this binary reads and writes. Raise it whenever a change makes an older binary misread the
    /// stored layout or accept what the new rules refuse.
    public static let version = 1

    /// The named database that holds the stamp; not a state table, so `rebuild` does not compare it.
    public static let databaseName = "format"
    /// The stamp's one key in `databaseName`.
    public static let versionKey = Array("version".utf8)

    /// The stored value: the version in decimal ASCII digits, without sign or leading zero (`1`).
    static func encode(_ version: Int) -> [UInt8] {
        precondition(version >= 1, "format versions start at 1")
        return Array(String(version).utf8)
    }

    /// The version a stored value holds: 1 to 9 decimal digits without a leading zero (so at least 1, and no
    /// overflow). Anything else is a damaged ledger (`integrity_failure`).
    static func decode(_ bytes: [UInt8], path: String) throws(LedgerError) -> Int {
        let digitZero = UInt8(ascii: "0")
        let digitNine = UInt8(ascii: "9")
        guard (1...9).contains(bytes.count), bytes[0] != digitZero, bytes.allSatisfy({ (digitZero...digitNine).contains($0) }) else {
            let shown = String(decoding: bytes.prefix(32), as: UTF8.self)
            throw LedgerError(
                .integrity,
                "\(path)/data.mdb holds \"\(shown)\" as its ledger format version (database \(databaseName), key version), which is not one (decimal digits from 1): the ledger is damaged; restore it from a backup (circuito backup) or a follower")
        }
        return bytes.reduce(0) { $0 * 10 + Int($1 - digitZero) }
    }

    /// Refuses a ledger stamped with a newer version than this binary's.
    static func requireReadable(storedVersion: Int, path: String) throws(LedgerError) {
        guard storedVersion > version else { return }
        throw LedgerError(
            .ledgerFormatTooNew,
            "\(path) holds a ledger of format version \(storedVersion), written by a newer circuito; this circuito reads format version \(version) at most: use a newer circuito, of format version \(storedVersion) or later (nothing of the ledger was read or written)")
    }
}
