import CircuitoCore
import CircuitoStorage
import Glibc

/// What durable page writes cost on the disk that holds the ledger: LMDB's commit writes each page it changed where
/// its copy-on-write tree put it (pages freed by earlier commits, scattered over the file) and then syncs, so its
/// time follows the cost of a scattered 4 KiB page more than the number of events. Measured in a file of its own in
/// the ledger's folder: rounds of `pagesPerRound` pages written at random places (or one after the other), then one
/// `fdatasync`; the median round over its pages.
public struct DiskProbe: Sendable, Equatable {
    /// One 4 KiB page written at a random place of the file and synced, per page of a round.
    public let randomPageMicroseconds: Double
    /// The same pages written one after the other.
    public let contiguousPageMicroseconds: Double

    static let pageBytes = 4096
    static let fileBytes = 64 << 20
    static let pagesPerRound = 100
    static let rounds = 15

    /// The type of the file system that holds `directory`, as `/proc/mounts` names it (`ext4`, `tmpfs`, …: the
    /// mount whose point is the longest prefix of the folder's real path), or nil when it cannot be read. "tmpfs" and
    /// "ramfs" keep nothing across a reboot, so no commit on them is durable.
    public static func fileSystem(of directory: String) -> String? {
        guard let resolved = realpath(directory, nil) else { return nil }
        let path = String(cString: resolved)
        free(resolved)
        guard let mounts = ProcessMemory.readSmallFile("/proc/mounts", maximumChunks: 256) else { return nil }
        var best: (point: String, type: String)?
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            // Spaces in a mount point are written as \040.
            let point = String(fields[1]).replacing("\\040", with: " ")
            let inside = point == "/" || path == point || path.hasPrefix(point + "/")
            if inside, point.count >= (best?.point.count ?? -1) { best = (point, String(fields[2])) }
        }
        return best?.type
    }

    public static func measure(directory: String) throws(LedgerError) -> DiskProbe {
        let path = directory + "/disk-probe.tmp"
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LedgerError(.storage, "cannot create \(path) to measure the disk: \(String(cString: strerror(errno)))")
        }
        defer {
            close(descriptor)
            unlink(path)
        }
        // Written in full first, so that the rounds rewrite allocated blocks, as LMDB rewrites its freed pages.
        var generator = SystemRandomNumberGenerator()
        let block = [UInt8]((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        for index in 0..<(fileBytes >> 20) { try write(descriptor, block, at: index << 20, path: path) }
        try sync(descriptor, path: path)
        let page = Array(block[0..<pageBytes])
        let pageCount = fileBytes / pageBytes
        var randomRounds: [Double] = []
        var contiguousRounds: [Double] = []
        for _ in 0..<rounds {
            var randomPages = Set<Int>()
            while randomPages.count < pagesPerRound { randomPages.insert(Int.random(in: 0..<pageCount, using: &generator)) }
            randomRounds.append(try round(descriptor, page, pages: randomPages.sorted(), path: path))
            let first = Int.random(in: 0..<(pageCount - pagesPerRound), using: &generator)
            contiguousRounds.append(try round(descriptor, page, pages: Array(first..<(first + pagesPerRound)), path: path))
        }
        return DiskProbe(
            randomPageMicroseconds: median(randomRounds) / Double(pagesPerRound),
            contiguousPageMicroseconds: median(contiguousRounds) / Double(pagesPerRound))
    }

    /// Microseconds to write `pages` and sync them.
    static func round(_ descriptor: Int32, _ page: [UInt8], pages: [Int], path: String) throws(LedgerError) -> Double {
        let start = monotonicNanoseconds()
        for number in pages { try write(descriptor, page, at: number * pageBytes, path: path) }
        try sync(descriptor, path: path)
        return Double(monotonicNanoseconds() - start) / 1000
    }

    static func write(_ descriptor: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(LedgerError) {
        precondition(!bytes.isEmpty, "the probe writes whole pages")
        var written = 0
        // A regular file takes a whole pwrite or fails; the bound only guards against a file that keeps taking less.
        for _ in 0..<64 where written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                pwrite(descriptor, buffer.baseAddress.map { $0 + written }, bytes.count - written, off_t(offset + written))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw LedgerError(.storage, "cannot write \(path): \(String(cString: strerror(errno)))") }
            written += count
        }
        guard written == bytes.count else { throw LedgerError(.storage, "cannot write \(path): short writes") }
    }

    static func sync(_ descriptor: Int32, path: String) throws(LedgerError) {
        guard fdatasync(descriptor) == 0 else { throw LedgerError(.storage, "cannot sync \(path): \(String(cString: strerror(errno)))") }
    }

    static func median(_ values: [Double]) -> Double {
        precondition(!values.isEmpty, "a median of no values")
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
