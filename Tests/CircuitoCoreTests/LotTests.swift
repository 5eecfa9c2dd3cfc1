import Testing

@testable import CircuitoCore

@Suite("Lots: their canonical bytes written directly, and read directly when stored in that form")
struct LotTests {
    static let lots: [Lot] = [
        Lot(id: 0, beneficiary: "ben-1", category: "general", amount: 1, remaining: 1, expiresAt: "2027-01-01T00:00:00.000Z", source: "evt-1"),
        Lot(id: 4_096, beneficiary: "bench.ben-000042", category: "alimentari", amount: 250_000, remaining: 0, expiresAt: "2026-12-31T23:59:59.999Z", source: "bench.evt-00001234"),
        Lot(id: UInt64(JSONValue.maximumExactInteger), beneficiary: "b", category: "c", amount: JSONValue.maximumExactInteger, remaining: -5, expiresAt: "x", source: "s"),
        // Texts the direct reader leaves to the parser: escapes, controls, non-ASCII.
        Lot(id: 7, beneficiary: "ben \"quoted\"", category: "caffè", amount: 10, remaining: 10, expiresAt: "2027-01-01T00:00:00.000Z", source: "a\\b\n\u{1}"),
        Lot(id: 8, beneficiary: "", category: "", amount: 0, remaining: 0, expiresAt: "", source: ""),
    ]

    @Test("canonicalBytes are the canonical form of the lot's JSON", arguments: lots)
    func canonicalBytesEqualTheEncoder(lot: Lot) {
        #expect(lot.canonicalBytes == CanonicalJSON.encode(lot.json))
    }

    @Test("a stored lot reads back as itself, directly or through the parser", arguments: lots.filter(\.holdsWhatTheRulesAllow))
    func storedBytesRoundTrip(lot: Lot) throws {
        #expect(try Lot(storedBytes: lot.canonicalBytes) == lot)
        #expect(try Lot(storedBytes: lot.canonicalBytes) == (try Lot(json: try JSONParser.parse(lot.canonicalBytes))))
    }

    @Test("a stored lot outside 0 < amount ≤ 10^12, 0 ≤ remaining ≤ amount is damaged, directly or through the parser")
    func boundsOfAStoredLot() throws {
        let lot = Self.lots[1]
        for good in [lot.with(amount: 1, remaining: 0), lot.with(amount: Amounts.maximum, remaining: Amounts.maximum), lot.with(amount: 2, remaining: 1)] {
            #expect(try Lot(storedBytes: good.canonicalBytes) == good)
            #expect(try Lot(json: good.json) == good)
        }
        let damaged = Self.lots.filter { !$0.holdsWhatTheRulesAllow } + [
            lot.with(amount: 0, remaining: 0), lot.with(amount: -1, remaining: 0), lot.with(amount: Amounts.maximum + 1, remaining: 1),
            lot.with(amount: 10, remaining: 11), lot.with(amount: 10, remaining: -1),
        ]
        #expect(damaged.count == 7)
        for lot in damaged {
            #expect(throws: LedgerError.self) { try Lot(storedBytes: lot.canonicalBytes) }
            #expect(throws: LedgerError.self) { try Lot(json: lot.json) }
            do { _ = try Lot(storedBytes: lot.canonicalBytes) } catch { #expect(error.code == .integrity, "\(lot)") }
            do { _ = try Lot(json: lot.json) } catch { #expect(error.code == .integrity, "\(lot)") }
        }
    }

    @Test func theDirectReaderTakesOnlyTheCanonicalLayout() {
        let lot = Self.lots[1]
        #expect(StoredLotReader.read(lot.canonicalBytes) == lot)
        // Escapes and non-ASCII texts, other layouts and number forms: left to the parser.
        #expect(StoredLotReader.read(Self.lots[3].canonicalBytes) == nil)
        let text = String(decoding: lot.canonicalBytes, as: UTF8.self)
        for variant in [
            text.replacingOccurrences(of: ",", with: ", "),
            text.replacingOccurrences(of: #""amount":250000"#, with: #""amount":250000.0"#),
            text.replacingOccurrences(of: #""amount":250000"#, with: #""amount":0250000"#),
            text.replacingOccurrences(of: #""remaining":0"#, with: #""remaining":-0"#),
            text.replacingOccurrences(of: #""remaining":0"#, with: #""remaining":1234567890123456789"#),
            text.replacingOccurrences(of: #""remaining":0"#, with: #""remaining":9007199254740992"#),
            text.replacingOccurrences(of: "}", with: #","extra":1}"#),
            text + " ",
            String(text.dropLast()),
        ] {
            #expect(StoredLotReader.read(Array(variant.utf8)) == nil, "\(variant)")
        }
    }

    @Test func otherFormsReadAsTheParserReadsThem() throws {
        let lot = Self.lots[1]
        let text = String(decoding: lot.canonicalBytes, as: UTF8.self)
        // Whitespace, an extra member: what the parser and Lot(json:) make of them.
        for variant in [
            text.replacingOccurrences(of: ",", with: ", "),
            text.replacingOccurrences(of: "}", with: #","extra":1}"#),
        ] {
            let bytes = Array(variant.utf8)
            #expect(try Lot(storedBytes: bytes) == (try Lot(json: try JSONParser.parse(bytes))), "\(variant)")
        }
        // Damage is damage either way: the parser's error.
        // Past ±(2^53 − 1) the parser reads a Double, so the lot is damaged on both paths.
        for damaged in [
            String(text.dropLast()), text.replacingOccurrences(of: #""lot":4096"#, with: #""lot":-1"#), "{}",
            text.replacingOccurrences(of: #""amount":250000"#, with: #""amount":9007199254740992"#),
            text.replacingOccurrences(of: #""amount":250000"#, with: #""amount":999999999999999999"#),
        ] {
            #expect(throws: LedgerError.self) { try Lot(storedBytes: Array(damaged.utf8)) }
            do {
                _ = try Lot(storedBytes: Array(damaged.utf8))
            } catch {
                #expect(error.code == .integrity, "\(damaged)")
            }
        }
    }
}
