import CircuitoCore
@testable import CircuitoCrypto
import Glibc
import Synchronization
import Testing

/// What a secret's release left in its memory, seen through `SecretBytes`' release observer (never by reading memory
/// that was freed).
private final class ReleaseRecord: Sendable {
    let bytesAtRelease = Mutex<[UInt8]?>(nil)
}

/// Whether this process may lock memory whatever its limit (root, or CAP_IPC_LOCK): then every lock must succeed.
private var locksWithoutLimit: Bool { geteuid() == 0 }

@Suite("Secrets in memory: signing keys and sealed data's keys held apart, locked and wiped")
struct SecretMemoryTests {
    @Test("secret bytes read zero once wiped, and are zero when released, in guarded and in ordinary memory", arguments: [SecretBytes.Memory.guarded, .ordinary])
    func wipedOnRelease(memory: SecretBytes.Memory) {
        let record = ReleaseRecord()
        do {
            let secret = SecretBytes(count: 64, memory: memory, releaseObserver: { bytes in record.bytesAtRelease.withLock { $0 = Array(bytes) } }) { bytes in
                for index in bytes.indices { bytes[index] = 0xA5 }
            }
            #expect(secret.withUnsafeBytes { Array($0) } == [UInt8](repeating: 0xA5, count: 64))
            #expect(secret.isGuarded == (memory == .guarded))
            #expect(record.bytesAtRelease.withLock { $0 } == nil, "not released while held")
        }
        #expect(record.bytesAtRelease.withLock { $0 } == [UInt8](repeating: 0, count: 64), "released with its bytes wiped")
    }

    @Test("wiping zeroes the bytes in place")
    func wipeInPlace() {
        let secret = SecretBytes(copying: [1, 2, 3, 4], memory: .guarded)
        secret.wipe()
        #expect(secret.withUnsafeBytes { Array($0) } == [0, 0, 0, 0])
        var array: [UInt8] = [9, 8, 7]
        SecretBytes.wipe(&array)
        #expect(array == [0, 0, 0])
    }

    @Test("a signing key's secret is in guarded memory, locked where the process may lock it, and wiped when the last copy of the key goes")
    func signingKeyIsGuardedAndLocked() {
        let key = Ed25519PrivateKey()
        #expect(key.secretKey.isGuarded)
        #expect(key.secretKey.count == 64)
        if locksWithoutLimit { #expect(key.isLockedInMemory && SecretBytes.firstLockFailure == nil) }
        // Derived from a published seed: ordinary memory, never locked.
        let derived = SpecVectors.key("checkpoint")
        #expect(!derived.secretKey.isGuarded && !derived.isLockedInMemory)
    }

    @Test("keys in guarded and ordinary memory sign alike, as before: the seed round-trips through the key file's text and the signature checks")
    func signaturesUnchanged() throws {
        let seed = (0..<32).map { UInt8($0) }
        let guarded = try #require(Ed25519PrivateKey(seed: seed))
        let ordinary = try #require(Ed25519PrivateKey(seed: seed, memory: .ordinary))
        let message = Array("circuito".utf8)
        #expect(guarded.seed == seed && ordinary.seed == seed)
        #expect(guarded.publicKey == ordinary.publicKey)
        #expect(guarded.signature(for: message) == ordinary.signature(for: message))
        #expect(guarded.publicKey.isValidSignature(guarded.signature(for: message), for: message))
        let text = Multikey.encodeSecret(guarded)
        let decoded = try #require(Multikey.decodeSecretKey(text))
        #expect(decoded.seed == seed && decoded.secretKey.isGuarded)
        // RFC 8032 section 7.1, test 1: the same signature as libsodium has always given for this seed.
        let rfcSeed = hexBytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
        let rfcKey = try #require(Ed25519PrivateKey(seed: rfcSeed))
        #expect(rfcKey.publicKey.bytes == hexBytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
        #expect(rfcKey.signature(for: []) == hexBytes(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"))
    }

    @Test("a sealed value opens to exactly its plaintext, and a wrong key to nothing")
    func sealedDataOpens() {
        let key = SecretBox.newKey()
        let sealed = SealedData.seal(["name": "Maria Rossi"], subject: "ben-1", key: key)
        #expect(SealedData.open(sealed, subject: "ben-1", key: key) == ["name": "Maria Rossi"])
        #expect(SealedData.open(sealed, subject: "ben-1", key: SecretBox.newKey()) == nil)
        let nonce = [UInt8](repeating: 7, count: SecretBox.nonceByteCount)
        let ciphertext = SecretBox.seal([1, 2, 3], nonce: nonce, additionalData: [], key: key)
        #expect(SecretBox.open(ciphertext, nonce: nonce, additionalData: [], key: key) == [1, 2, 3])
    }
}

private func hexBytes(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16) ?? 0)
        index = next
    }
    return bytes
}
