import CircuitoCore
import Glibc

/// The page cache's hold on one file: measured with `mincore` over a read-only map (mapping a file touches none of
/// its pages), and filled by reading the file in order.
public enum PageCache {
    /// Bytes per `read` when reading a file in.
    static let readChunkBytes = 1 << 20
    /// Chunks `read` asks the kernel for ahead of the one it reads, so that the disk has work queued.
    static let prefetchChunkCount = 8
    /// How often `read` reports its progress.
    static let progressIntervalBytes: UInt64 = 64 << 20
    /// Larger files are not measured or read: no ledger can be larger than the largest map.
    static let maximumFileBytes = UInt64(LMDBEnvironment.maximumMapSizeBytes)

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

    /// Reads the file once, in order, as long as it was when opened (a writer may append meanwhile: what it writes is
    /// cached by its own writes), so that the page cache holds it as far as memory allows; the bytes read. `progress`
    /// is told the bytes read so far and that length after every `progressIntervalBytes`.
    ///
    /// The pages are brought in by `POSIX_FADV_WILLNEED`, a few chunks ahead of the reads, never by read-ahead: on
    /// Linux 6.x with ext4 read-ahead caches a file in large folios (up to 2 MiB; a plain `read` did so too while
    /// another process mapped the file), whereas a server's own faults (it maps its ledger without read-ahead) and
    /// writes leave single pages, and every 4 KiB page a commit later writes into a large folio costs the kernel a
    /// walk over the whole folio (`Specs/ledger.md` 10.4). The hint reads exactly the pages asked for, as single
    /// pages; the `read` that follows finds them cached, or waits for them.
    public static func read(
        path: String, progress: (_ readBytes: UInt64, _ totalBytes: UInt64) -> Void = { _, _ in }
    ) throws(LedgerError) -> UInt64 {
        let descriptor = try openForReading(path)
        defer { close(descriptor) }
        let bytes = try size(of: descriptor, path: path)
        _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_RANDOM)
        let chunkBytes = UInt64(readChunkBytes)
        func prefetch(_ chunk: UInt64) { askFor(chunk: chunk, of: descriptor, bytes: bytes) }
        for chunk in 0..<UInt64(prefetchChunkCount) { prefetch(chunk) }
        var buffer = [UInt8](repeating: 0, count: readChunkBytes)
        var total: UInt64 = 0
        // Each pass reads a chunk or ends; the bound allows a few interrupted reads beyond the file's chunks.
        let maximumPasses = Int(bytes / chunkBytes) + 64
        for _ in 0..<maximumPasses where total < bytes {
            // Whole chunks are read (only the last is short), so the chunk being read is total / chunkBytes.
            prefetch(total / chunkBytes + UInt64(prefetchChunkCount))
            let wanted = Int(min(chunkBytes, bytes - total))
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, wanted) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw LedgerError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))") }
            // Shorter than it was: LMDB never shrinks its file, but whatever did, what is there has been read.
            if count == 0 { return total }
            let before = total
            total += UInt64(count)
            if total / progressIntervalBytes != before / progressIntervalBytes || total == bytes { progress(total, bytes) }
        }
        return total
    }

    /// Asks the kernel to bring the whole file into the page cache (`POSIX_FADV_WILLNEED`, chunk by chunk, as long as
    /// the file is when opened) and returns at once, while the reads go on: for a reader about to scan a file it maps
    /// without read-ahead, so that its faults find the pages cached, or being read, in single pages (see `read`).
    /// The bytes asked for.
    public static func prefetch(path: String) throws(LedgerError) -> UInt64 {
        let descriptor = try openForReading(path)
        defer { close(descriptor) }
        let bytes = try size(of: descriptor, path: path)
        // One hint per chunk; bounded by the length when opened.
        for chunk in 0..<(bytes / UInt64(readChunkBytes) + 1) { askFor(chunk: chunk, of: descriptor, bytes: bytes) }
        return bytes
    }

    /// Asks the kernel to read chunk `chunk` of a file `bytes` long (`POSIX_FADV_WILLNEED`: exactly those pages, in
    /// single pages, without waiting); nothing past the end.
    static func askFor(chunk: UInt64, of descriptor: Int32, bytes: UInt64) {
        let chunkBytes = UInt64(readChunkBytes)
        let start = chunk * chunkBytes
        guard start < bytes else { return }
        _ = posix_fadvise(descriptor, off_t(start), off_t(min(chunkBytes, bytes - start)), POSIX_FADV_WILLNEED)
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
