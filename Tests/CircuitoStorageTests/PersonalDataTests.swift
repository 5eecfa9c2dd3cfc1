import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import Foundation
import Testing

@Suite("Personal data: sealed, readable with the vault, erased for good")
struct PersonalDataTests {
    @Test("a person's cases are found behind a long history: only referrals count toward the bound")
    func casesBehindALongHistory() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        let casa = Ed25519PrivateKey(), staff = Ed25519PrivateKey(), other = Ed25519PrivateKey()
        func append(_ events: [VerifiedEvent]) throws {
            for result in try ledger.append(events) { _ = try result.get() }
        }
        try append([
            try temporary.event("actor.registered", ["actor": "casa", "role": "organisation", "name": "Casa", "keys": .array([.string(casa.publicKey.multikey)])]),
            try temporary.event("actor.registered", ["actor": "other-org", "role": "organisation", "name": "Other", "keys": .array([.string(other.publicKey.multikey)])]),
        ])
        try append([
            try temporary.event("actor.registered", by: "casa", key: casa, ["actor": "op", "role": "staff", "name": "Operator", "organisation": "casa", "keys": .array([.string(staff.publicKey.multikey)])]),
            try temporary.event("actor.registered", by: "casa", key: casa, ["actor": "ben", "role": "beneficiary", "name": "ben", "organisation": "casa", "keys": .array([.string(Ed25519PrivateKey().publicKey.multikey)])]),
        ])
        let key = SecretBox.newKey()
        try append([
            try temporary.event("case.referred", by: "op", key: staff, ["case": "c-1", "beneficiary": "ben", "household": "hh", "to": "casa", "sealed": SealedData.seal(["n": 1], subject: "ben", key: key)]),
            try temporary.event("case.opened", by: "op", key: staff, ["case": "c-1"]),
        ])
        // Years of notes: more history entries than the bound on referrals.
        let noteCount = LedgerQueryLimits.maximumCaseLookups + 100
        for start in stride(from: 0, to: noteCount, by: 1000) {
            try append(try (start..<min(start + 1000, noteCount)).map { _ in
                try temporary.event("case.note_added", by: "op", key: staff, ["case": "c-1", "sealed": SealedData.seal(["n": 2], subject: "ben", key: key)])
            })
        }
        // Then the Casa refers them onward: the new holder's case is found.
        try append([try temporary.event("case.referred", by: "op", key: staff, ["case": "c-2", "beneficiary": "ben", "household": "hh", "to": "other-org", "sealed": SealedData.seal(["n": 3], subject: "ben", key: key)])])
        let cases = try ledger.reader.cases(of: "ben")
        #expect(cases.compactMap { $0["case"]?.stringValue } == ["c-1", "c-2"])
        // One page of the history holds at most 1000 events, whatever is asked for.
        #expect(try ledger.reader.caseHistory(beneficiary: "ben", vault: nil, limit: 5000).count == 1000)
    }

    @Test("case history opens sealed fields; after subject.erased and the vault erase, reads say erased and no file holds the plaintext")
    func erasure() throws {
        let temporary = TemporaryLedger()
        let ledger = try temporary.create()
        let vault = try KeyVault(directory: temporary.directory + "/vault")
        let organisation = Ed25519PrivateKey(), staff = Ed25519PrivateKey()
        let plaintextName = "Giuseppina Esposito-Marchetti"
        let plaintextTaxCode = "SPSGPP71C45L219Q"
        func append(_ events: [VerifiedEvent]) throws {
            for result in try ledger.append(events) { _ = try result.get() }
        }
        try append([
            try temporary.event("actor.registered", ["actor": "casa", "role": "organisation", "name": "Casa", "keys": .array([.string(organisation.publicKey.multikey)])]),
        ])
        try append([
            try temporary.event("actor.registered", by: "casa", key: organisation, ["actor": "op", "role": "staff", "name": "Operator", "organisation": "casa", "keys": .array([.string(staff.publicKey.multikey)])]),
        ])
        let subjectKey = try vault.createKey(for: "ben-42")
        let referral = SealedData.seal(["name": .string(plaintextName), "tax_code": .string(plaintextTaxCode), "reason": "housing"], subject: "ben-42", key: subjectKey)
        try append([
            try temporary.event("case.referred", by: "op", key: staff, ["case": "case-42", "beneficiary": "ben-42", "household": "hh-42", "to": "casa", "sealed": referral]),
        ])
        try append([try temporary.event("case.opened", by: "op", key: staff, ["case": "case-42"])])
        try append([
            try temporary.event("case.note_added", by: "op", key: staff, ["case": "case-42", "sealed": SealedData.seal(["note": .string("Met \(plaintextName) at the desk")], subject: "ben-42", key: subjectKey)]),
        ])

        let before = try ledger.reader.caseHistory(beneficiary: "ben-42", vault: vault, limit: 100)
        #expect(before.map { $0["type"]?.stringValue } == ["case.referred", "case.opened", "case.note_added"])
        #expect(before[0]["body"]?["sealed"]?["name"]?.stringValue == plaintextName)
        // No plaintext anywhere in the ledger's own files even before erasure: only ciphertext is recorded.
        #expect(try filesContaining(plaintextName, under: temporary.directory, excluding: "vault").isEmpty)

        // The Casa took ben-42 in through its own referral and has not registered them: that gives it no standing to
        // erase them (Specs/events.md 1.4, 5.6); the authority records the erasure.
        let byTheCasa = try ledger.append([try temporary.event("subject.erased", by: "op", key: staff, ["beneficiary": "ben-42", "case": "case-42"])])
        #expect(byTheCasa[0].failureCode == .notCaseHolder)
        try append([try temporary.event("subject.erased", ["beneficiary": "ben-42"])])
        #expect(try vault.erase(subject: "ben-42"))
        #expect(try vault.key(for: "ben-42") == nil)

        let after = try ledger.reader.caseHistory(beneficiary: "ben-42", vault: vault, limit: 100)
        #expect(after.count == 4)
        #expect(after[0]["body"]?["sealed"] == "erased")
        #expect(after[2]["body"]?["sealed"] == "erased")
        // Even someone holding the ciphertext and a copy of the vault directory cannot read it now.
        for needle in [plaintextName, plaintextTaxCode, "housing"] {
            #expect(try filesContaining(needle, under: temporary.directory, excluding: nil).isEmpty, "\(needle) found on disk")
        }
        // The log, the tree and every signature still verify, and the projections still rebuild.
        let report = try LedgerReplay.run(ledger.reader, compareProjections: true)
        #expect(report.recordCount == 7)
        // No more personal data may be recorded for the subject.
        let late = try ledger.append([try temporary.event("case.note_added", by: "op", key: staff, ["case": "case-42", "sealed": referral])])
        #expect(late[0].failureCode == .subjectErased)
    }

    /// A new ledger with the organisation "casa" and its staff member "op", whose key is returned.
    private static func ledgerWithCaseWorker(_ temporary: TemporaryLedger) throws -> (Ledger, Ed25519PrivateKey) {
        let ledger = try temporary.create()
        let casa = Ed25519PrivateKey(), staff = Ed25519PrivateKey()
        for event in [
            try temporary.event("actor.registered", ["actor": "casa", "role": "organisation", "name": "Casa", "keys": .array([.string(casa.publicKey.multikey)])]),
            try temporary.event("actor.registered", by: "casa", key: casa, ["actor": "op", "role": "staff", "name": "Operator", "organisation": "casa", "keys": .array([.string(staff.publicKey.multikey)])]),
        ] {
            for result in try ledger.append([event]) { _ = try result.get() }
        }
        return (ledger, staff)
    }

    @Test("a case history holds that beneficiary's records only, never those of the next id in key order; after skips up to its seq")
    func caseHistoryIsOnePersons() throws {
        let temporary = TemporaryLedger()
        let (ledger, staff) = try Self.ledgerWithCaseWorker(temporary)
        func append(_ events: [VerifiedEvent]) throws {
            for result in try ledger.append(events) { _ = try result.get() }
        }
        // Two people whose ids differ in their last character only: their keys are alike up to the number.
        let key = SecretBox.newKey()
        for (number, beneficiary) in ["ben-1", "ben-2"].enumerated() {
            try append([
                try temporary.event("case.referred", by: "op", key: staff, [
                    "case": .string("c-\(number)"), "beneficiary": .string(beneficiary), "household": "hh", "to": "casa",
                    "sealed": SealedData.seal(["n": 1], subject: beneficiary, key: key),
                ]),
            ])
            try append([try temporary.event("case.opened", by: "op", key: staff, ["case": .string("c-\(number)")])])
        }
        let first = try ledger.reader.caseHistory(beneficiary: "ben-1", vault: nil, limit: 100)
        #expect(first.map { $0["type"]?.stringValue } == ["case.referred", "case.opened"])
        #expect(first.allSatisfy { $0["body"]?["case"] != "c-1" }, "\(first)")
        let second = try ledger.reader.caseHistory(beneficiary: "ben-2", vault: nil, limit: 100)
        #expect(second.map { $0["body"]?["case"] } == ["c-1", "c-1"])
        // From after a seq: the records after it.
        let firstSeq = try #require(first.first?["seq"]?.integerValue)
        let rest = try ledger.reader.caseHistory(beneficiary: "ben-1", vault: nil, after: UInt64(firstSeq), limit: 100)
        #expect(rest.map { $0["type"]?.stringValue } == ["case.opened"])
    }

    @Test("a page of a case history stops before its records pass the byte bound (at least one record), and its cursor goes on from there")
    func caseHistoryPagesAreBoundedInBytes() throws {
        let temporary = TemporaryLedger()
        let (ledger, staff) = try Self.ledgerWithCaseWorker(temporary)
        func append(_ events: [VerifiedEvent]) throws {
            for result in try ledger.append(events) { _ = try result.get() }
        }
        let key = SecretBox.newKey()
        for number in 0..<6 {
            try append([
                try temporary.event("case.referred", by: "op", key: staff, [
                    "case": .string("c-\(number)"), "beneficiary": "ben-1", "household": "hh", "to": "casa",
                    "sealed": SealedData.seal(["n": .integer(Int64(number))], subject: "ben-1", key: key),
                ]),
            ])
        }
        let whole = try ledger.reader.caseHistory(beneficiary: "ben-1", after: nil, limit: 100)
        #expect(whole.entries.count == 6)
        #expect(whole.nextAfter == nil)
        let recordBytes = whole.entries.map(\.leafBytes.count)
        /// Every page under `maximumBytes`, followed by its cursor: the sizes of the pages.
        func pageSizes(maximumBytes: Int) throws -> [Int] {
            var sizes: [Int] = []
            var sequenceNumbers: [UInt64] = []
            var after: UInt64?
            for _ in 0..<10 {
                let page = try ledger.reader.caseHistory(beneficiary: "ben-1", after: after, limit: 100, maximumBytes: maximumBytes)
                sizes.append(page.entries.count)
                sequenceNumbers += page.entries.map(\.sequenceNumber)
                #expect(page.entries.count == 1 || page.entries.map(\.leafBytes.count).reduce(0, +) <= maximumBytes)
                guard let next = page.nextAfter else { break }
                let cursor: UInt64 = try #require(UInt64(next, radix: 10), "cursor \(next)")
                after = cursor
            }
            // Nothing lost or repeated across the pages.
            #expect(sequenceNumbers == whole.entries.map(\.sequenceNumber))
            return sizes
        }
        // One byte: a record a page, never none.
        #expect(try pageSizes(maximumBytes: 1) == [1, 1, 1, 1, 1, 1])
        // Exactly two records' bytes: two a page.
        #expect(try pageSizes(maximumBytes: recordBytes[0] + recordBytes[1]) == [2, 2, 2])
        #expect(try pageSizes(maximumBytes: recordBytes.reduce(0, +)) == [6])
    }

    @Test("the vault's folder and keys are its owner's alone; a key file is read, replaced or erased only when it is that subject's vault key")
    func vaultFiles() throws {
        let temporary = TemporaryLedger()
        let directory = temporary.directory
        func code(_ body: () throws(LedgerError) -> Void) -> LedgerError.Code? {
            do {
                try body()
                return nil
            } catch {
                return error.code
            }
        }
        func mode(_ path: String) -> mode_t? {
            var status = stat()
            guard stat(path, &status) == 0 else { return nil }
            return status.st_mode & 0o777
        }
        let keyPath = directory + "/ben-1.key"
        // Opened to write, a folder open to others is made private.
        #expect(mkdir(directory, 0o755) == 0)
        #expect(chmod(directory, 0o755) == 0)
        let vault = try KeyVault(directory: directory)
        #expect(mode(directory) == 0o700)
        let key = try vault.createKey(for: "ben-1")
        #expect(mode(keyPath) == 0o600)
        // A subject's key is never replaced: the data sealed under it would be lost.
        #expect(code { () throws(LedgerError) in try vault.createKey(for: "ben-1") } == .keyFile)
        #expect(try vault.key(for: "ben-1") == key)

        // Opened to read, a folder its group may read is refused; so is a key its group may read.
        #expect(chmod(directory, 0o750) == 0)
        #expect(code { () throws(LedgerError) in _ = try KeyVault(existingDirectory: directory) } == .keyFile)
        #expect(chmod(directory, 0o700) == 0)
        let reader = try KeyVault(existingDirectory: directory)
        #expect(chmod(keyPath, 0o640) == 0)
        #expect(code { () throws(LedgerError) in _ = try reader.key(for: "ben-1") } == .keyFile)
        #expect(chmod(keyPath, 0o600) == 0)

        // Another subject's key under this name, or a key of the wrong length, is damaged, not a key to use.
        let copied = try #require(FileManager.default.contents(atPath: keyPath))
        #expect(FileManager.default.createFile(atPath: directory + "/ben-2.key", contents: copied, attributes: [.posixPermissions: 0o600]))
        #expect(code { () throws(LedgerError) in _ = try reader.key(for: "ben-2") } == .keyFile)
        let short = CanonicalJSON.encodeString(["alg": .string(SealedData.algorithm), "key": .string(Base64.encode([UInt8](repeating: 1, count: 16))), "subject": "ben-3"])
        #expect(FileManager.default.createFile(atPath: directory + "/ben-3.key", contents: Data(short.utf8), attributes: [.posixPermissions: 0o600]))
        #expect(code { () throws(LedgerError) in _ = try reader.key(for: "ben-3") } == .keyFile)
        // A file that is not this subject's vault key is never erased.
        #expect(code { () throws(LedgerError) in _ = try vault.erase(subject: "ben-2") } == .keyFile)
        #expect(FileManager.default.contents(atPath: directory + "/ben-2.key") == copied)

        // Erasure overwrites the key before it unlinks it: another name for the same file (a hard link) is left
        // holding zeros, not the key.
        let otherName = directory + "/ben-1.link"
        #expect(link(keyPath, otherName) == 0)
        #expect(try vault.erase(subject: "ben-1"))
        #expect(access(keyPath, F_OK) != 0)
        let left = try #require(FileManager.default.contents(atPath: otherName))
        #expect(left.count == copied.count && left.allSatisfy { $0 == 0 })
    }

    /// Paths of the files under `directory` whose bytes contain `needle` (as UTF-8).
    func filesContaining(_ needle: String, under directory: String, excluding: String?) throws -> [String] {
        let needleBytes = Array(needle.utf8)
        var found: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let relative = enumerator?.nextObject() as? String {
            if let excluding, relative.hasPrefix(excluding) { continue }
            let path = directory + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            if bytes.count >= needleBytes.count, (0...(bytes.count - needleBytes.count)).contains(where: { bytes[$0..<($0 + needleBytes.count)].elementsEqual(needleBytes) }) {
                found.append(relative)
            }
        }
        return found
    }
}
