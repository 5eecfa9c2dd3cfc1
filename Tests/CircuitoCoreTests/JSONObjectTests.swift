import Testing

@testable import CircuitoCore

@Suite("JSON objects: members in RFC 8785 order")
struct JSONObjectTests {
    @Test func lookupsInsertionsAndRemovals() throws {
        var object: JSONObject = ["name": "Casa", "actor": "casa", "role": "organisation"]
        #expect(object.keys == ["actor", "name", "role"])
        #expect(object["organisation"] == nil)
        #expect(object["name"] == "Casa")
        object["organisation"] = "city"
        object["b"] = 1
        #expect(object.keys == ["actor", "b", "name", "organisation", "role"])
        object["b"] = nil
        #expect(object.removeValue(forKey: "role") == "organisation")
        #expect(object.keys == ["actor", "name", "organisation"])
        #expect(object.values == ["casa", "Casa", "city"])
    }
}

extension JSONObjectTests {
    @Test func parsedMembersAreSortedWhateverTheirInputOrder() throws {
        let parsed = try JSONParser.parse(Array(#"{"role":1,"actor":2,"b":{"z":true,"a":null}}"#.utf8))
        guard case .object(let object) = parsed else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == ["actor", "b", "role"])
        #expect(object["b"]?.objectValue?.keys == ["a", "z"])
        #expect(object["b"]?["a"] == .null)
        #expect(object["b"]?["missing"] == Optional<JSONValue>.none)
        #expect(CanonicalJSON.encodeString(parsed) == #"{"actor":2,"b":{"a":null,"z":true},"role":1}"#)
    }

    @Test func duplicatesAreRefusedInSortedAndUnsortedInput() {
        for text in [#"{"a":1,"a":2}"#, #"{"b":1,"a":2,"b":3}"#, #"{"c":1,"a":2,"b":3,"a":4}"#, #"{"a":1,"\u0061":2}"#] {
            #expect(throws: LedgerError.self, "\(text)") { try JSONParser.parse(Array(text.utf8)) }
        }
    }

    /// Keys are code unit sequences: normalization variants are different keys, kept in UTF-16 order.
    @Test func keysAreComparedAsCodeUnitsInUTF16Order() throws {
        let parsed = try JSONParser.parse(Array(#"{"\u00e9":1,"e\u0301":2}"#.utf8))
        #expect(parsed.objectValue?.count == 2)
        #expect(parsed["\u{E9}"] == 1)
        #expect(parsed["e\u{301}"] == 2)
        // U+FB01 (one UTF-16 unit, 0xFB01) sorts after U+1F600 (surrogates 0xD83D 0xDE00), unlike in code point order.
        var object: JSONObject = ["\u{FB01}": 1, "\u{1F600}": 2, "z": 3]
        #expect(object.keys == ["z", "\u{1F600}", "\u{FB01}"])
        object["\u{E000}"] = 4
        #expect(object.keys == ["z", "\u{1F600}", "\u{E000}", "\u{FB01}"])
    }

    @Test func derivedObjectsKeepTheOrder() {
        let object: JSONObject = ["c": 3, "a": 1, "b": 2]
        #expect(object.mapValues { .integer(($0.integerValue ?? 0) * 10) }.values == [10, 20, 30])
        #expect(object.filter { $0.key != "b" }.keys == ["a", "c"])
        #expect(object.merging(["d": 4, "a": 0]) { _, new in new } == ["a": 0, "b": 2, "c": 3, "d": 4])
        #expect(JSONObject(["x": 1, "w": 2] as [String: JSONValue]).keys == ["w", "x"])
        #expect(object.dictionary == ["a": 1, "b": 2, "c": 3])
        #expect(Array(object.map(\.key)) == ["a", "b", "c"])
    }
}

extension JSONObjectTests {
    @Test func aLaterDuplicateReplacesTheEarlierOne() {
        let object = JSONObject([("b", 1), ("a", 2), ("b", 3)])
        #expect(object.keys == ["a", "b"])
        #expect(object["b"] == 3)
        // Beyond the insertion bound the members are sorted at once: the same result.
        let count = JSONObject.maximumMembersInsertedInOrder + 5
        let many = (0..<count).reversed().map { ("key-\(100 + $0)", JSONValue.integer(Int64($0))) } + [("key-100", JSONValue.integer(-1))]
        let large = JSONObject(many)
        #expect(large.count == count)
        #expect(large.keys == (0..<count).map { "key-\(100 + $0)" })
        #expect(large["key-100"] == -1)
        #expect(large["key-101"] == 1)
    }
}
