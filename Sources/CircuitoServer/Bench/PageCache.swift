import CircuitoCore
import CircuitoStorage
import Glibc

/// What the kernel's page cache held of the `--base` copy when the bench's server started on it, and whether the
/// bench read the copy in first.
///
/// LMDB's copy (`mdb_env_copy2`, which `--base` uses for a consistent snapshot) writes the new file with `O_DIRECT`,
/// so none of its pages are cached, and the server maps its file without read-ahead (`Specs/ledger.md` 10.1): each
/// page it touches first is then a read from the disk. A server that has been running on its ledger, or appended
/// it, finds those pages cached. So by default the bench reads the copy once, in order, before the server starts,
/// and a run at 1 M records measures the ledger's size rather than the disk's random reads; `--cold-base` leaves the
/// copy as LMDB wrote it, as after a restart with nothing cached. The copy is read without read-ahead, page by page:
/// read-ahead would cache it in large folios, which the server's own faults and writes never make, and each 4 KiB
/// page write into one costs the kernel a walk over the whole folio. With the file cached, the kernel also maps the
/// cached neighbours of each page the server touches (fault-around), so its VmRSS grows faster than on a cold copy.
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

/// The page cache's hold on one file: measured with `mincore` over a read-only map (mapping a file touches none of
/// its pages), and filled by reading the file in order.
public enum PageCache {
    /// Bytes per `read` when reading a file in.
    static let readChunkBytes = 1 << 20
    /// Larger files are not measured or read: the bench's ledgers stay far below (an LMDB map of 16 GiB by default).
    static let maximumFileBytes: UInt64 = 1 << 40

    /// The file's size and the share of its pages the page cache holds (1 for an empty file: nothing is missing).
    public static func cachedShare(path: String) throws(LedgerError) -> (bytes: UInt64, share: Double) {
        let descriptor = try openForReading(path)
        defer { close(descriptor) }
        let bytes = try size(of: descriptor, path: path)
        guard bytes > 0 else { return (0, 1) }
        let length = Int(bytes)
        guard let map = mmap(nil, length, PROT_READ, MAP_SHARED, descriptor, 0), map != MAP_FAILED else {
            throw LedgerError(.storage, "cannot map \(path) to see what the page cache holds: \(String(cString: strerror(errno)))")
        }
        defer { munmap(map, length) }
        let pageBytes = max(1, sysconf(Int32(_SC_PAGESIZE)))
        let pageCount = (length + pageBytes - 1) / pageBytes
        var resident = [UInt8](repeating: 0, count: pageCount)
        let status = resident.withUnsafeMutableBufferPointer { buffer in mincore(map, length, buffer.baseAddress) }
        guard status == 0 else {
            throw LedgerError(.storage, "cannot see what the page cache holds of \(path): \(String(cString: strerror(errno)))")
        }
        // The lowest bit of each byte tells whether that page is resident.
        let cachedPages = resident.reduce(0) { $0 + Int($1 & 1) }
        return (bytes, Double(cachedPages) / Double(pageCount))
    }

    /// Reads the whole file once, in order, so that the page cache holds it (as far as memory allows); the bytes read.
    public static func read(path: String) throws(LedgerError) -> UInt64 {
        let descriptor = try openForReading(path)
        defer { close(descriptor) }
        let bytes = try size(of: descriptor, path: path)
        // No read-ahead for this descriptor: each read brings in just its own pages, as single pages, as the
        // server's own faults would. Read-ahead would cache the file in large folios, and a server whose 4 KiB
        // page writes land in those spends several times the CPU per commit (BaseCopyCache).
        _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_RANDOM)
        var buffer = [UInt8](repeating: 0, count: readChunkBytes)
        var total: UInt64 = 0
        // Each pass reads a chunk or ends; the bound allows a few interrupted reads beyond the file's chunks.
        let maximumPasses = Int(bytes / UInt64(readChunkBytes)) + 64
        for _ in 0..<maximumPasses {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, readChunkBytes) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw LedgerError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { return total }
            total += UInt64(count)
        }
        // Still reading: the file grew under the bench, which no run does to its own copy.
        throw LedgerError(.storage, "\(path) kept growing while the bench read it")
    }

    static func openForReading(_ path: String) throws(LedgerError) -> Int32 {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw LedgerError(.storage, "cannot open \(path): \(String(cString: strerror(errno)))") }
        return descriptor
    }

    static func size(of descriptor: Int32, path: String) throws(LedgerError) -> UInt64 {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw LedgerError(.storage, "cannot read the size of \(path): \(String(cString: strerror(errno)))") }
        let bytes = UInt64(max(0, status.st_size))
        guard bytes <= maximumFileBytes else { throw LedgerError(.storage, "\(path) is larger than \(maximumFileBytes) bytes") }
        return bytes
    }
}
