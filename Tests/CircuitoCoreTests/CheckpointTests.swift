import CircuitoCore
import CircuitoCrypto
import Testing

@Suite struct CheckpointTests {
    // MARK: Go's golang.org/x/mod/sumdb/note documentation example (also note_test.go)

    static let peterVerifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let peterSignerKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let text =
        "If you think cryptography is the answer to your problem,\n" + "then you don't know what your problem is.\n"
    static let peterSignature =
        "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    static let note = text + "\n" + peterSignature
    // A second signer on the same text, from note_test.go.
    static let enochVerifierKey = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
    static let enochSignature =
        "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

    static func refusal(_ body: () throws(LedgerError) -> Void) -> LedgerError.Code? {
        do {
            try body()
            return nil
        } catch {
            return error.code
        }
    }

    static func openingRefusal(_ note: String, _ verifier: NoteVerifier) -> LedgerError.Code? {
        refusal { () throws(LedgerError) in _ = try SignedNote.open(note, verifier: verifier) }
    }

    // MARK: Keys

    @Test func goExampleKeys() throws {
        let verifier = try NoteVerifier(parsing: Self.peterVerifierKey)
        #expect(verifier.name == "PeterNeumann")
        #expect(verifier.keyID == 0xc74f_20a3)
        #expect(verifier.verifierKey == Self.peterVerifierKey)

        let signer = try NoteSigner(parsing: Self.peterSignerKey)
        #expect(signer.name == "PeterNeumann")
        #expect(signer.keyID == 0xc74f_20a3)
        #expect(signer.signerKey == Self.peterSignerKey)
        #expect(signer.verifier == verifier)
    }

    @Test func everyManglingOfAKeyIsRefused() {
        // As Go's TestNewVerifier and TestNewSigner: every proper substring, every single byte incremented.
        for (key, parse) in [
            (Self.peterVerifierKey, { (text: String) throws(LedgerError) in _ = try NoteVerifier(parsing: text) }),
            (Self.peterSignerKey, { (text: String) throws(LedgerError) in _ = try NoteSigner(parsing: text) }),
        ] {
            let bytes = Array(key.utf8)
            for start in 0...bytes.count {
                for end in (start + 1)..<(bytes.count + 1) where start != 0 || end != bytes.count {
                    let mangled = String(decoding: bytes[start..<end], as: UTF8.self)
                    #expect(Self.refusal { () throws(LedgerError) in try parse(mangled) } == .invalidKey, "\(mangled)")
                }
            }
            for position in bytes.indices {
                var changed = bytes
                changed[position] &+= 1
                let mangled = String(decoding: changed, as: UTF8.self)
                #expect(Self.refusal { () throws(LedgerError) in try parse(mangled) } == .invalidKey, "\(mangled)")
            }
        }
        // Wrong key length and unknown algorithm, each with a matching key id (from Go's tests).
        for key in [
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            #expect(Self.refusal { () throws(LedgerError) in _ = try NoteVerifier(parsing: key) } == .invalidKey)
        }
    }

    @Test func keyNamesFollowGosRules() {
        let key = Ed25519PrivateKey()
        for name in ["", "a b", "a+b", "a\u{00A0}b", "a\u{2003}b", "a\tb", "a\u{01}b", "line\n"] {
            #expect(
                Self.refusal { () throws(LedgerError) in _ = try NoteSigner(name: name, privateKey: key) } == .invalidKey)
            #expect(
                Self.refusal { () throws(LedgerError) in _ = try NoteVerifier(name: name, publicKey: key.publicKey) }
                    == .invalidKey)
        }
        #expect(throws: Never.self) { try NoteSigner(name: "ledger.example/log-1", privateKey: key) }
        #expect(throws: Never.self) { try NoteSigner(name: "Ω-ledger", privateKey: key) }
    }

    @Test func generatedKeysRoundTrip() throws {
        let signer = try NoteSigner(name: "ledger.example/circuito", privateKey: Ed25519PrivateKey())
        let reparsed = try NoteSigner(parsing: signer.signerKey)
        #expect(reparsed.keyID == signer.keyID)
        #expect(reparsed.privateKey.seed == signer.privateKey.seed)
        let verifier = try NoteVerifier(parsing: signer.verifier.verifierKey)
        #expect(verifier == signer.verifier)
        let text = "hello\n"
        #expect(try SignedNote.open(try SignedNote.sign(text: text, signer: signer), verifier: verifier) == text)
    }

    // MARK: Signing and opening

    @Test func signingReproducesGosNote() throws {
        let signer = try NoteSigner(parsing: Self.peterSignerKey)
        #expect(try SignedNote.sign(text: Self.text, signer: signer) == Self.note)
    }

    @Test func openingGosNote() throws {
        let peter = try NoteVerifier(parsing: Self.peterVerifierKey)
        let enoch = try NoteVerifier(parsing: Self.enochVerifierKey)
        #expect(try SignedNote.open(Self.note, verifier: peter) == Self.text)

        // Other signers' lines are ignored, in either order, and each signer's own line opens the note.
        let cosigned = Self.text + "\n" + Self.peterSignature + Self.enochSignature
        #expect(try SignedNote.open(cosigned, verifier: peter) == Self.text)
        #expect(try SignedNote.open(cosigned, verifier: enoch) == Self.text)
        let reversed = Self.text + "\n" + Self.enochSignature + Self.peterSignature
        #expect(try SignedNote.open(reversed, verifier: peter) == Self.text)

        // Repeated valid lines are fine, up to Go's limit of 100 signature lines.
        let repeated = Self.text + "\n" + String(repeating: Self.peterSignature, count: 100)
        #expect(try SignedNote.open(repeated, verifier: peter) == Self.text)
        let tooMany = Self.text + "\n" + String(repeating: Self.peterSignature, count: 101)
        #expect(Self.openingRefusal(tooMany, peter) == .invalidSignature)
    }

    @Test func anotherKeyCannotOpenIt() throws {
        let enoch = try NoteVerifier(parsing: Self.enochVerifierKey)
        #expect(Self.openingRefusal(Self.note, enoch) == .invalidSignature)
        // Same name, different key: a different key id, so no line of the note is by that key.
        let impostor = try NoteVerifier(name: "PeterNeumann", publicKey: Ed25519PrivateKey().publicKey)
        #expect(Self.openingRefusal(Self.note, impostor) == .invalidSignature)
    }

    @Test func everyChangedByteIsRefused() throws {
        let peter = try NoteVerifier(parsing: Self.peterVerifierKey)
        let bytes = Array(Self.note.utf8)
        for position in bytes.indices {
            for change: UInt8 in [0x01, 0x20] {
                var changed = bytes
                changed[position] ^= change
                let note = String(decoding: changed, as: UTF8.self)
                #expect(Self.openingRefusal(note, peter) == .invalidSignature, "byte \(position) ^ \(change)")
            }
        }
    }

    @Test func malformedNotesAreRefused() throws {
        let peter = try NoteVerifier(parsing: Self.peterVerifierKey)
        let signature = Self.peterSignature
        let malformed: [String] = [
            // Go's TestOpen list (less the invalid UTF-8 case, which a Swift String cannot hold).
            Self.text,
            Self.text + "\n",
            Self.text + "\n" + signature.dropLast(),
            "\u{01}" + Self.text + "\n" + signature,
            Self.text + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
            Self.text + "\n" + signature + "Unexpected line.\n",
            // A corrupted signature by the right key (Go's "invalid signature" case).
            Self.text + "\n" + signature.prefix(60) + "ABCD" + signature.dropFirst(60),
            // Other malformations: a bad line from another signer, no blank line, carriage returns, empty.
            Self.text + "\n" + signature + "— EnochRoot not-base64!\n",
            Self.text + "\n" + signature + "— EnochRoot AAAA\n",
            Self.text + "\n" + signature + "\n",
            Self.text + signature,
            Self.text.replacingNewlines(with: "\r\n") + "\r\n" + signature,
            Self.text + "\n" + "- PeterNeumann" + signature.dropFirst(14),
            Self.text + "\n" + signature.replacingFirstSpace(with: "  "),
            "",
            "\n\n",
        ]
        for note in malformed {
            #expect(Self.openingRefusal(note, peter) == .invalidSignature, "\(note)")
        }
    }

    @Test("a line by the verifier's key that does not verify spoils the note, even beside one that does, in either order: every line by the key must verify")
    func oneBadLineByTheKeyIsRefused() throws {
        let peter = try NoteVerifier(parsing: Self.peterVerifierKey)
        let signature = Self.peterSignature
        // Four base64 characters of the signature replaced: same key id, same length, another signature.
        let corrupted = String(signature.prefix(60)) + "ABCD" + String(signature.dropFirst(64))
        #expect(corrupted != signature && corrupted.count == signature.count)
        for lines in [[signature, corrupted], [corrupted, signature], [signature, corrupted, signature]] {
            let note = Self.text + "\n" + lines.joined()
            #expect(Self.openingRefusal(note, peter) == .invalidSignature, "\(note)")
        }
        // The same lines by the key, all valid, open the note.
        #expect(try SignedNote.open(Self.text + "\n" + signature + signature, verifier: peter) == Self.text)
    }

    @Test func signingRefusesTextsANoteCannotCarry() throws {
        let signer = try NoteSigner(parsing: Self.peterSignerKey)
        for text in ["", "no final newline", "tab\there\n", "carriage\r\n"] {
            #expect(
                Self.refusal { () throws(LedgerError) in _ = try SignedNote.sign(text: text, signer: signer) }
                    == .invalidSignature, "\(text)")
        }
        // A text may hold blank lines: the signature block is after the last one.
        let verifier = signer.verifier
        for text in ["\n", "a\n\nb\n", "trailing blank\n\n", "— looks like a signature\n"] {
            #expect(try SignedNote.open(try SignedNote.sign(text: text, signer: signer), verifier: verifier) == text)
        }
    }

    // MARK: Checkpoints

    static let root8: [UInt8] = [
        0x5d, 0xc9, 0xda, 0x79, 0xa7, 0x06, 0x59, 0xa9, 0xad, 0x55, 0x9c, 0xb7, 0x01, 0xde, 0xd9, 0xa2,
        0xab, 0x9d, 0x82, 0x3a, 0xad, 0x2f, 0x49, 0x60, 0xcf, 0xe3, 0x70, 0xef, 0xf4, 0x60, 0x43, 0x28,
    ]

    @Test func checkpointBodyRoundTrip() throws {
        let checkpoint = try Checkpoint(origin: "ledger.example/circuito", size: 8, rootHash: Self.root8)
        let body = "ledger.example/circuito\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
        #expect(checkpoint.body == body)
        #expect(try Checkpoint(parsing: body) == checkpoint)

        let empty = try Checkpoint(origin: "o", size: 0, rootHash: MerkleHash.emptyRoot)
        #expect(empty.body == "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
        #expect(try Checkpoint(parsing: empty.body) == empty)

        let largest = try Checkpoint(origin: "Ω log", size: UInt64.max, rootHash: Self.root8)
        #expect(try Checkpoint(parsing: largest.body) == largest)
    }

    @Test func malformedCheckpointBodiesAreRefused() {
        let root = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="
        let bodies = [
            "",
            "\n",
            "o\n8\n\(root)",
            "o\n8\n\(root)\n\n",
            "o\n8\n\(root)\nextension line\n",
            "o\n8\n",
            "\n8\n\(root)\n",
            "o\n08\n\(root)\n",
            "o\n00\n\(root)\n",
            "o\n+8\n\(root)\n",
            "o\n-1\n\(root)\n",
            "o\n 8\n\(root)\n",
            "o\n8 \n\(root)\n",
            "o\n\n\(root)\n",
            "o\n0x8\n\(root)\n",
            "o\n١\n\(root)\n",
            "o\n18446744073709551616\n\(root)\n",
            "o\n8\n\(root.dropLast())\n",
            "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n",
            "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz-Nw7_RgQyg=\n",
            "o\n8\n \(root)\n",
            "o\n8\nAAAA\(root)\n",
            "o\n8\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuA==\n",
            "o\r\n8\r\n\(root)\r\n",
            "o\u{01}\n8\n\(root)\n",
        ]
        for body in bodies {
            #expect(
                Self.refusal { () throws(LedgerError) in _ = try Checkpoint(parsing: body) } == .invalidBody, "\(body)")
        }
        for origin in ["", "two\nlines", "tab\t"] {
            #expect(
                Self.refusal { () throws(LedgerError) in
                    _ = try Checkpoint(origin: origin, size: 1, rootHash: Self.root8)
                } == .invalidBody)
        }
        #expect(
            Self.refusal { () throws(LedgerError) in _ = try Checkpoint(origin: "o", size: 1, rootHash: [1, 2, 3]) }
                == .invalidBody)
    }

    @Test func signedCheckpointEndToEnd() throws {
        let signer = try NoteSigner(name: "ledger.example/circuito", privateKey: Ed25519PrivateKey())
        let checkpoint = try Checkpoint(origin: signer.name, size: 8, rootHash: Self.root8)
        let note = try SignedNote.sign(text: checkpoint.body, signer: signer)
        #expect(try Checkpoint(parsing: try SignedNote.open(note, verifier: signer.verifier)) == checkpoint)
    }
}

extension String {
    fileprivate func replacingNewlines(with replacement: String) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: replacement)
    }

    fileprivate func replacingFirstSpace(with replacement: String) -> String {
        guard let space = firstIndex(of: " ") else { return self }
        return String(self[..<space]) + replacement + self[index(after: space)...]
    }
}
