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
