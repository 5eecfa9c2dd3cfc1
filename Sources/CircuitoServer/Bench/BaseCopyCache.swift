import CircuitoCore
import CircuitoStorage
import Glibc

/// What the kernel's page cache held of the `--base` copy when the bench's server started on it, and whether the
/// bench read the copy in first.
///
/// LMDB's copy (`mdb_env_copyfd2` into a file opened with `O_DIRECT`, which `--base` uses for a consistent snapshot) writes the new file with `O_DIRECT`,
/// so none of its pages are cached, and the server maps its file without read-ahead (`Specs/ledger.md` 10.1): each
/// page it touches first is then a read from the disk. A server that has been running on its ledger, or appended
/// it, finds those pages cached. So by default the bench reads the copy once, in order, before the server starts,
/// and a run at 1 M records measures the ledger's size rather than the disk's random reads; `--cold-base` leaves the
/// copy as LMDB wrote it, as after a restart with nothing cached. The copy is read in single pages, never by
/// read-ahead (`PageCache.read`): read-ahead would cache it in large folios, which the server's own faults and writes
/// never make, and each 4 KiB page write into one costs the kernel a walk over the whole folio. With the file cached,
/// the kernel also maps the cached neighbours of each page the server touches (fault-around), so its VmRSS grows
/// faster than on a cold copy.
public struct BaseCopyCache: Sendable, Equatable {
    /// The copy's `data.mdb`.
    public let bytes: UInt64
    /// The share of its pages in the page cache right after the copy.
    public let cachedShareAfterCopy: Double
    /// Seconds the bench took to read it in; nil when it was left as copied (`--cold-base`).
    public let readSeconds: Double?
    /// The share in the page cache when the server started.
    public let cachedShareAtStart: Double
}
