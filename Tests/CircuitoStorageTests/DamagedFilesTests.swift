import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import Foundation
import Glibc
import Testing

/// Files in a ledger's or a vault's folder that are not what their names say, and replica commits a leader should
/// never send: refusals no other suite reached (found by code coverage). Each checks the code and that nothing was
/// changed by the refused call.
@Suite("Storage: files that are not what their names say, and commits a replica refuses")
struct DamagedFilesTests {
    static func code(_ body: () throws(LedgerError) -> Void) -> LedgerError.Code? {
        do {
            try body()
            return nil
        } catch {
            return error.code
        }
    }

    @Test("a ledger whose ledger.key holds another key, or is no key file, is refused key_file on opening; with its own key back it opens whole")
    func swappedCheckpointKey() throws {
        let temporary = TemporaryLedger()
        do {
            let ledger = try temporary.create()
            _ = try ledger.append([try temporary.registration("shop-1")])
        }
        let keyPath = temporary.directory + "/" + LedgerFiles.checkpointKey
        let original = try FileIO.readFile(keyPath, maximumBytes: 4096)
        func replaceKeyFile(_ text: String) throws {
            #expect(unlink(keyPath) == 0)
            #expect(FileManager.default.createFile(atPath: keyPath, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]))
        }
        #expect(unlink(keyPath) == 0)
        try KeyFile.write(Ed25519PrivateKey(), to: keyPath)
        var opening: LedgerError?
        do throws(LedgerError) {
            _ = try Ledger.open(directory: temporary.directory)
        } catch {
            opening = error
        }
        #expect(opening?.code == .keyFile && opening?.message.contains("is not the checkpoint key named in genesis") == true, "\(String(describing: opening))")
        // A JSON file of another kind under the key's name (a vault key, say) is no key either.
        try replaceKeyFile(#"{"alg":"xchacha20poly1305","key":"AAAA","subject":"ben"}"#)
        #expect(Self.code { () throws(LedgerError) in _ = try Ledger.open(directory: temporary.directory) } == .keyFile)
        try replaceKeyFile(String(decoding: original, as: UTF8.self))
        let reopened = try Ledger.open(directory: temporary.directory)
        #expect(try reopened.reader.size() == 2)
    }

    @Test("a replica is never opened in a leader's folder: invalid_range, and the leader's ledger stays as it was")
    func replicaInLeaderFolder() throws {
        let temporary = TemporaryLedger()
        do { _ = try temporary.create() }
        let before = try FileManager.default.contentsOfDirectory(atPath: temporary.directory).sorted()
        var refusal: LedgerError?
        do throws(LedgerError) {
            _ = try ReplicaLedger.open(directory: temporary.directory)
        } catch {
            refusal = error
        }
        #expect(refusal?.code == .invalidRange && refusal?.message.contains("leader's ledger") == true, "\(String(describing: refusal))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.directory).sorted() == before)
        #expect(try Ledger.open(directory: temporary.directory).reader.size() == 1)
    }

    @Test("a replica commit of more than 8192 records, or one that does not end at a checkpoint, is refused before any record is parsed, and writes nothing")
    func replicaCommitBounds() throws {
        let temporary = TemporaryLedger()
        let folder = temporary.directory + "-replica"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Not a record: the bounds are checked before any record is parsed, which would refuse it with another code.
        let leaf = Array("not a record".utf8)
        let replica = try ReplicaLedger.open(directory: folder)
        func failure(_ leaves: [[UInt8]], _ checkpoints: [(size: UInt64, note: String)]) -> LedgerError? {
            do throws(LedgerReplay.Failure) {
                try replica.append(leaves: leaves, checkpoints: checkpoints)
                return nil
            } catch {
                return error.error
            }
        }
        let tooMany = failure(Array(repeating: leaf, count: ReplicaLedger.maximumRecordsPerAppend + 1), [])
        #expect(tooMany?.code == .tooLarge, "\(String(describing: tooMany))")
        // At the bound the commit is taken in, and refused for its first record, which is no record.
        let atTheBound = UInt64(ReplicaLedger.maximumRecordsPerAppend)
        do throws(LedgerReplay.Failure) {
            try replica.append(leaves: Array(repeating: leaf, count: Int(atTheBound)), checkpoints: [(size: atTheBound, note: "x")])
            Issue.record("records that are not records were taken")
        } catch {
            #expect(error.sequenceNumber == 0 && error.error.code != .tooLarge, "\(error)")
        }
        let noCheckpoint = failure([leaf], [])
        #expect(noCheckpoint?.code == .integrity && noCheckpoint?.message.contains("without the leader's checkpoint for size 1") == true, "\(String(describing: noCheckpoint))")
        let shortCheckpoint = failure([leaf, leaf], [(size: 1, note: "x")])
        #expect(shortCheckpoint?.code == .integrity, "\(String(describing: shortCheckpoint))")
        #expect(replica.size == 0)
        #expect(replica.removeIfEmpty())
    }

    @Test("a file under a subject's vault key name that is not JSON is key_file: neither read as a key nor erased")
    func vaultKeyNotJSON() throws {
        let temporary = TemporaryLedger()
        let vault = try KeyVault(directory: temporary.directory)
        let path = temporary.directory + "/ben-1.key"
        let text = "-----BEGIN PRIVATE KEY-----\nnot a vault key\n"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]))
        #expect(Self.code { () throws(LedgerError) in _ = try vault.key(for: "ben-1") } == .keyFile)
        #expect(Self.code { () throws(LedgerError) in _ = try vault.erase(subject: "ben-1") } == .keyFile)
        #expect(FileManager.default.contents(atPath: path) == Data(text.utf8))
    }

    @Test("a vault path that is a file is refused storage_error and the file is left as it was")
    func vaultPathIsAFile() throws {
        let temporary = TemporaryLedger()
        #expect(FileManager.default.createFile(atPath: temporary.directory, contents: Data("notes\n".utf8), attributes: [.posixPermissions: 0o644]))
        var refusal: LedgerError?
        do throws(LedgerError) {
            _ = try KeyVault(directory: temporary.directory)
        } catch {
            refusal = error
        }
        #expect(refusal?.code == .storage && refusal?.message.contains("is not a folder") == true, "\(String(describing: refusal))")
        #expect(FileManager.default.contents(atPath: temporary.directory) == Data("notes\n".utf8))
    }
}
