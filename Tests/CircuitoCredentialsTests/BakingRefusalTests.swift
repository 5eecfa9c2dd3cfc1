import CircuitoCore
import Testing

@testable import CircuitoCredentials

/// A baked image handed to `circuito badge verify` or `extract` may come from anyone: each refusal of PNG and SVG
/// reading is driven here with a crafted image, as `image_invalid` with a message naming what was wrong.
@Suite("OpenBadges: crafted PNG and SVG images are refused by name")
struct BakingRefusalTests {
    /// Expects `work` refused with `code` and a message containing `detail`.
    static func expectRefused<Result>(
        _ detail: String, code: LedgerError.Code = .imageInvalid, sourceLocation: SourceLocation = #_sourceLocation,
        _ work: () throws -> Result
    ) {
        do {
            let result = try work()
            Issue.record("accepted, gave \(result)", sourceLocation: sourceLocation)
        } catch let error as LedgerError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(detail), "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("refused with \(error), not a LedgerError", sourceLocation: sourceLocation)
        }
    }

    static let keyword = Array(PNGBaking.keyword.utf8)

    static func header(width: UInt32 = 1) -> PNGBaking.Chunk {
        PNGBaking.Chunk(type: "IHDR", data: PNGBaking.bigEndian(width) + PNGBaking.bigEndian(1) + [8, 0, 0, 0, 0])
    }

    static let end = PNGBaking.Chunk(type: "IEND", data: [])

    @Test("images over 32 MiB and images that are neither PNG nor SVG are refused before they are read")
    func sizeAndKind() throws {
        let large = smallPNG() + [UInt8](repeating: 0, count: BadgeBaking.maximumImageBytes)
        Self.expectRefused("larger than \(BadgeBaking.maximumImageBytes) bytes") { try BadgeBaking.extract(from: large) }
        Self.expectRefused("larger than \(BadgeBaking.maximumImageBytes) bytes") { try BadgeBaking.bake(credential: "{}", into: large) }
        for image in [[], Array("GIF89a".utf8), Array("  <html><body/></html>".utf8), Array(PNGBaking.signature.prefix(7))] {
            Self.expectRefused("neither a PNG nor an SVG") { try BadgeBaking.extract(from: image) }
        }
        // An <svg> tag inside a DOCTYPE's internal subset that never closes, or one that never ends, is no start tag.
        for text in ["<!DOCTYPE svg [ <svg xmlns=\"http://www.w3.org/2000/svg\"></svg>", "<svg xmlns:ob=\"\(SVGBaking.namespace)\"", "<!-- <svg> never closed"] {
            Self.expectRefused("neither a PNG nor an SVG") { try BadgeBaking.extract(from: Array(text.utf8)) }
        }
        Self.expectRefused("not a PNG (signature missing)") { try PNGBaking.chunks(Array("GIF89a".utf8)) }
        // A byte order mark and white space may come before an SVG.
        #expect(BadgeBaking.kind(of: [0xEF, 0xBB, 0xBF] + Array(" \r\n\t<svg/>".utf8)) == .svg)
    }

    @Test("PNG chunk structure: headers cut short, lengths past the end, invalid types, CRCs, IHDR first, IEND last")
    func pngChunks() throws {
        let signature = PNGBaking.signature
        Self.expectRefused("the PNG does not start with IHDR") { try BadgeBaking.extract(from: signature) }
        Self.expectRefused("PNG chunk header cut short") { try BadgeBaking.extract(from: signature + [0, 0, 0, 0, 0x49]) }
        // A length beyond the file, and one beyond 2^31 − 1 (which PNG forbids).
        var tooLong = PNGBaking.encode([Self.header(), Self.end])
        tooLong[11] = 200
        Self.expectRefused("PNG chunk at byte 8 is longer than the file") { try BadgeBaking.extract(from: tooLong) }
        tooLong.replaceSubrange(8..<12, with: [0xFF, 0xFF, 0xFF, 0xF0])
        Self.expectRefused("PNG chunk at byte 8 is longer than the file") { try BadgeBaking.extract(from: tooLong) }
        for type in ["IH1R", "IH R", "IHD\u{7F}"] {
            Self.expectRefused("has an invalid type") {
                try BadgeBaking.extract(from: PNGBaking.encode([PNGBaking.Chunk(type: type, data: []), Self.end]))
            }
        }
        var badCRC = PNGBaking.encode([Self.header(), Self.end])
        badCRC[8 + 8 + 13] ^= 0x01
        Self.expectRefused("PNG chunk IHDR at byte 8 fails its CRC") { try BadgeBaking.extract(from: badCRC) }
        let text = PNGBaking.textChunk("{}")
        Self.expectRefused("does not start with IHDR") { try BadgeBaking.extract(from: PNGBaking.encode([text, Self.header(), Self.end])) }
        Self.expectRefused("does not end with IEND") { try BadgeBaking.extract(from: PNGBaking.encode([Self.header(), text])) }
        Self.expectRefused("does not end with IEND") {
            try BadgeBaking.extract(from: PNGBaking.encode([Self.header(), text, Self.end]) + [0])
        }
        // A well-formed image of the same chunks is read: the refusals above are for what each changed.
        #expect(try BadgeBaking.extract(from: PNGBaking.encode([Self.header(), text, Self.end])) == "{}")
    }

    @Test("PNG credential chunks: cut short, fields not terminated, unknown compression method, broken zlib, text not UTF-8")
    func pngCredentialChunks() throws {
        func image(_ data: [UInt8]) -> [UInt8] {
            PNGBaking.encode([Self.header(), PNGBaking.Chunk(type: "iTXt", data: data), Self.end])
        }
        Self.expectRefused("the openbadgecredential chunk is cut short") { try BadgeBaking.extract(from: image(Self.keyword + [0, 0])) }
        Self.expectRefused("header fields are not terminated") { try BadgeBaking.extract(from: image(Self.keyword + [0, 0, 0])) }
        Self.expectRefused("header fields are not terminated") {
            try BadgeBaking.extract(from: image(Self.keyword + [0, 0, 0] + Array("en".utf8) + [0] + Array("badge".utf8)))
        }
        let compressed = ZLib.compress(Array("{}".utf8))
        Self.expectRefused("unknown iTXt compression method") {
            try BadgeBaking.extract(from: image(Self.keyword + [0, 1, 1, 0, 0] + compressed))
        }
        Self.expectRefused("the openbadgecredential chunk's compressed text does not decompress: invalid zlib data") {
            try BadgeBaking.extract(from: image(Self.keyword + [0, 1, 0, 0, 0] + Array(compressed.dropLast(1))))
        }
        Self.expectRefused("text is not UTF-8") { try BadgeBaking.extract(from: image(Self.keyword + [0, 0, 0, 0, 0, 0x7B, 0xC3, 0x7D])) }
        // A language tag and translated keyword are skipped; compressed text is read.
        let tagged = Self.keyword + [0, 1, 0] + Array("it".utf8) + [0] + Array("credenziale".utf8) + [0] + compressed
        #expect(try BadgeBaking.extract(from: image(tagged)) == "{}")
        // Other text chunks, and an iTXt chunk without a keyword terminator, are not the credential.
        let others = PNGBaking.encode([
            Self.header(), PNGBaking.Chunk(type: "iTXt", data: Self.keyword), PNGBaking.Chunk(type: "tEXt", data: Self.keyword + [0] + Array("{}".utf8)),
            Self.end,
        ])
        Self.expectRefused("the PNG has no iTXt chunk with keyword openbadgecredential") { try BadgeBaking.extract(from: others) }
    }

    /// The compressed text is the image's own content, so data that does not decompress is a broken image,
    /// `image_invalid` (Specs/credentials.md 6), with the decoder's reason after it; it was `compressed_data_invalid`.
    @Test("PNG: a credential chunk whose compressed text does not decompress is image_invalid, naming the decoder's reason")
    func pngCompressedTextBroken() throws {
        func extract(_ zlibStream: [UInt8]) throws -> String {
            try BadgeBaking.extract(
                from: PNGBaking.encode([Self.header(), PNGBaking.Chunk(type: "iTXt", data: Self.keyword + [0, 1, 0, 0, 0] + zlibStream), Self.end]))
        }
        let stream = ZLib.compress(Array("{}".utf8))
        #expect(try extract(stream) == "{}")
        var badAdler = stream
        badAdler[badAdler.count - 1] ^= 0x01
        var badHeader = stream
        badHeader[1] ^= 0x01
        let cases: [([UInt8], String)] = [
            ([], "invalid zlib data: too short"),
            (badHeader, "invalid zlib data: the header is not DEFLATE with a valid check"),
            (Array(stream.prefix(2)) + [0x07, 0, 0, 0, 0], "invalid DEFLATE data: block type 3 is reserved"),
            (badAdler, "invalid zlib data: the Adler-32 does not match the data"),
        ]
        for (zlibStream, reason) in cases {
            Self.expectRefused("the openbadgecredential chunk's compressed text does not decompress: " + reason) { try extract(zlibStream) }
        }
        // Text that expands past 16 MiB: a zero, then matches of 258 at distance 1, in one fixed block.
        var writer = Deflate.BitWriter()
        writer.write(1, count: 1)
        writer.write(1, count: 2)
        Deflate.writeFixedLiteralLength(0x20, to: &writer)
        for _ in 0...(PNGBaking.maximumTextBytes / 258) { Deflate.writeMatch(length: 258, distance: 1, to: &writer) }
        Deflate.writeFixedLiteralLength(256, to: &writer)
        Self.expectRefused("does not decompress: compressed data expands beyond \(PNGBaking.maximumTextBytes) bytes") {
            try extract(Array(stream.prefix(2)) + writer.finish() + [0, 0, 0, 0])
        }
    }

    /// The PNG specification defines compression flags 0 and 1 only; another flag was read as uncompressed text.
    @Test("PNG: a credential chunk with a compression flag other than 0 or 1 is refused")
    func pngCompressionFlag() throws {
        for flag: UInt8 in [2, 0x80, 0xFF] {
            let chunk = PNGBaking.Chunk(type: "iTXt", data: Self.keyword + [0, flag, 0, 0, 0] + Array("{}".utf8))
            Self.expectRefused("unknown iTXt compression flag \(flag)") {
                try BadgeBaking.extract(from: PNGBaking.encode([Self.header(), chunk, Self.end]))
            }
            // Baking replaces such a chunk as it does any credential chunk it cannot read.
            let baked = try? BadgeBaking.bake(credential: "{}", into: PNGBaking.encode([Self.header(), chunk, Self.end]))
            #expect(baked.flatMap { try? BadgeBaking.extract(from: $0) } == "{}")
        }
    }

    static let namespace = SVGBaking.namespace

    @Test("SVG: no namespace, no credential element, the openbadges prefix bound elsewhere")
    func svgRefusals() throws {
        Self.expectRefused("does not declare the Open Badges namespace") {
            try BadgeBaking.extract(from: Array(#"<svg xmlns:openbadges="https://example.org/other"><openbadges:credential>{}</openbadges:credential></svg>"#.utf8))
        }
        Self.expectRefused("the SVG has no <ob:credential> element") {
            try BadgeBaking.extract(from: Array(#"<svg xmlns:ob="\#(Self.namespace)"><openbadges:credential>{}</openbadges:credential></svg>"#.utf8))
        }
        // An element that never ends, and one whose end tag has no ">".
        Self.expectRefused("has no <ob:credential> element") {
            try BadgeBaking.extract(from: Array(#"<svg xmlns:ob="\#(Self.namespace)"><ob:credential>{}"#.utf8))
        }
        Self.expectRefused("has no <ob:credential> element") {
            try BadgeBaking.extract(from: Array(#"<svg xmlns:ob="\#(Self.namespace)"><ob:credential>{}</ob:credential"#.utf8))
        }
        // Baking would add xmlns:openbadges, but the tag binds that prefix to another namespace.
        Self.expectRefused("binds the prefix openbadges to another namespace") {
            try BadgeBaking.bake(credential: "{}", into: Array(#"<svg xmlns:openbadges="https://example.org/other"></svg>"#.utf8))
        }
        // A self-closing element holds an empty credential; the first element in the document wins.
        let svg = #"<svg xmlns:b="\#(Self.namespace)" xmlns:a="\#(Self.namespace)"><a:credential/><b:credential>{}</b:credential></svg>"#
        #expect(try BadgeBaking.extract(from: Array(svg.utf8)) == "")
    }

    @Test("SVG: text outside CDATA has its entities decoded; comments, even one never closed, are not text")
    func svgPlainText() throws {
        let head = Array(#"<svg xmlns:ob="\#(Self.namespace)"><ob:credential"#.utf8)
        let tail = Array("</ob:credential></svg>".utf8)
        // Text outside CDATA with entities, a comment, and an unterminated comment that ends the text.
        let plain = Array(">&#123;&quot;a&quot;:&#x31;}<!-- a comment --> <!-- never closed".utf8)
        #expect(try BadgeBaking.extract(from: head + plain + tail) == #"{"a":1}"#)
        // Unknown entities and references to no character stay as written; an "&" without ";" soon after is text.
        let unknownEntities = Array(">&nbsp;&#xD800;&lt;AT&T and more text".utf8)
        #expect(try BadgeBaking.extract(from: head + unknownEntities + tail) == "&nbsp;&#xD800;<AT&T and more text")
    }

    /// The element's text is the credential's JSON: bytes that are not UTF-8 were refused only inside CDATA, and
    /// outside it (or in a `verify` attribute) became U+FFFD, a credential other than the one baked.
    @Test("SVG: a credential element that is not UTF-8 is refused, in CDATA, in plain text and in the verify attribute")
    func svgTextNotUTF8() throws {
        let head = Array(#"<svg xmlns:ob="\#(Self.namespace)"><ob:credential"#.utf8)
        let tail = Array("</ob:credential></svg>".utf8)
        for element in [
            Array("><![CDATA[{\"a\":\"".utf8) + [0xFF] + Array("\"}]]>".utf8),
            Array(">{\"a\":\"".utf8) + [0xFF] + Array("\"}".utf8),
            Array(" verify=\"a.".utf8) + [0xC3] + Array(".c\">".utf8),
        ] {
            Self.expectRefused("not UTF-8") { try BadgeBaking.extract(from: head + element + tail) }
        }
    }
}
