@testable import CircuitoServer
import Synchronization
import Testing

/// A stand-in for glibc's allocator as the trimmer sees it: bytes handed out, bytes freed and still resident, and
/// bytes resident outside the allocator (thread stacks, which no trim gives back). A trim gives back the freed bytes;
/// bytes freed by other threads while it runs (after it passed their arena) stay resident.
final class ScriptedAllocator: Sendable {
    private struct Memory {
        var inUseBytes = 0
        var freeResidentBytes = 0
        var outsideBytes = 0
        var freedDuringNextTrimBytes = 0
        var trims = 0
    }

    private let memory: Mutex<Memory>

    init(inUseBytes: Int, outsideBytes: Int) {
        memory = Mutex(Memory(inUseBytes: inUseBytes, outsideBytes: outsideBytes))
    }

    func allocate(_ bytes: Int) {
        memory.withLock { memory in
            let reused = min(bytes, memory.freeResidentBytes)
            memory.freeResidentBytes -= reused
            memory.inUseBytes += bytes
        }
    }

    func free(_ bytes: Int) {
        memory.withLock { memory in
            memory.inUseBytes -= bytes
            memory.freeResidentBytes += bytes
        }
    }

    /// Memory outside the allocator grows (another thread's stack).
    func growOutside(_ bytes: Int) { memory.withLock { $0.outsideBytes += bytes } }

    /// `bytes` are freed while the next trim runs, too late for it.
    func freeDuringNextTrim(_ bytes: Int) { memory.withLock { $0.freedDuringNextTrimBytes = bytes } }

    var residentBytes: Int { memory.withLock { $0.inUseBytes + $0.freeResidentBytes + $0.outsideBytes } }
    var trims: Int { memory.withLock { $0.trims } }

    var allocator: AllocatorTrimmer.Allocator {
        AllocatorTrimmer.Allocator(
            residentUnusedBytes: { [self] in
                memory.withLock { memory in
                    let resident = memory.inUseBytes + memory.freeResidentBytes + memory.outsideBytes
                    return (resident, resident - memory.inUseBytes)
                }
            },
            trim: { [self] in
                memory.withLock { memory in
                    memory.trims += 1
                    memory.freeResidentBytes = 0
                    memory.inUseBytes -= memory.freedDuringNextTrimBytes
                    memory.freeResidentBytes += memory.freedDuringNextTrimBytes
                    memory.freedDuringNextTrimBytes = 0
                }
            })
    }

    /// A trimmer of this allocator whose timer does not fire during a test: the test calls `check` itself.
    func trimmer() -> AllocatorTrimmer { AllocatorTrimmer(intervalMilliseconds: 3_600_000, allocator: allocator) }
}

@Suite("The allocator trimmer's rule, on a scripted allocator")
struct AllocatorTrimmerTests {
    static let mebibyte = 1 << 20

    @Test("memory freed while a trim runs goes back at the next check, not only once as much again is freed")
    func memoryFreedDuringATrimGoesBackAtTheNextCheck() {
        // The CI rehearsal's burst: 120 MiB of lines, freed as their connections close. The trim that 40 MiB freed
        // set off ran while more of them closed; it took the 56 MiB freed meanwhile for the level it could not go
        // below, and the last 24 MiB were not growth enough past that to trim again: 84 MiB stayed for good.
        let scripted = ScriptedAllocator(inUseBytes: 4 * Self.mebibyte, outsideBytes: 4 * Self.mebibyte)
        let trimmer = scripted.trimmer()
        defer { trimmer.stop() }
        scripted.allocate(120 * Self.mebibyte)
        trimmer.check()
        #expect(scripted.trims == 0)
        scripted.free(40 * Self.mebibyte)
        scripted.freeDuringNextTrim(56 * Self.mebibyte)
        trimmer.check()
        #expect(scripted.trims == 1)
        scripted.free(24 * Self.mebibyte)
        for _ in 1...3 { trimmer.check() }
        #expect(scripted.residentBytes == 8 * Self.mebibyte, "\(scripted.residentBytes >> 20) MiB resident")
        #expect(scripted.trims == 2)
        #expect(trimmer.statistics.trims == 2)
        // Settled: the next checks leave it alone.
        for _ in 1...3 { trimmer.check() }
        #expect(scripted.trims == 2)
    }

    @Test("memory a trim cannot give back is tried once more, then taken as the level to grow from: no trim at every check")
    func memoryATrimCannotGiveBackIsTriedOnceMore() {
        let scripted = ScriptedAllocator(inUseBytes: 4 * Self.mebibyte, outsideBytes: 4 * Self.mebibyte)
        let trimmer = scripted.trimmer()
        defer { trimmer.stop() }
        scripted.growOutside(40 * Self.mebibyte)
        for _ in 1...5 { trimmer.check() }
        #expect(scripted.trims == 2)
        #expect(scripted.residentBytes == 48 * Self.mebibyte)
        // Growth past that level is trimmed as before.
        scripted.allocate(40 * Self.mebibyte)
        scripted.free(40 * Self.mebibyte)
        for _ in 1...3 { trimmer.check() }
        #expect(scripted.trims == 3)
        #expect(scripted.residentBytes == 48 * Self.mebibyte)
    }

    @Test("an idle server, and one whose memory is in use, are not trimmed")
    func idleOrInUseIsNotTrimmed() {
        let scripted = ScriptedAllocator(inUseBytes: 4 * Self.mebibyte, outsideBytes: 4 * Self.mebibyte)
        let trimmer = scripted.trimmer()
        defer { trimmer.stop() }
        for _ in 1...3 { trimmer.check() }
        scripted.allocate(200 * Self.mebibyte)
        for _ in 1...3 { trimmer.check() }
        // Freed, less than the threshold: left for reuse.
        scripted.free(30 * Self.mebibyte)
        for _ in 1...3 { trimmer.check() }
        #expect(scripted.trims == 0)
        #expect(trimmer.statistics.trims == 0)
    }
}
