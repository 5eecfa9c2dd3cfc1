import CircuitoCore
import CircuitoCrypto
import Foundation
import Testing

@testable import CircuitoCredentials

/// A valid 2×2 RGB PNG made in code: IHDR, one IDAT (zlib stream of the filtered rows), IEND.
func smallPNG(extraChunks: [PNGBaking.Chunk] = []) -> [UInt8] {
    let width: UInt32 = 2
    let height: UInt32 = 2
    let header = PNGBaking.bigEndian(width) + PNGBaking.bigEndian(height) + [8, 2, 0, 0, 0]
    // Each row: filter type 0, then RGB pixels.
    let rows: [UInt8] = [0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 0, 255, 255, 255, 255]
    return PNGBaking.encode(
        [PNGBaking.Chunk(type: "IHDR", data: header)] + extraChunks
            + [PNGBaking.Chunk(type: "IDAT", data: ZLib.compress(rows)), PNGBaking.Chunk(type: "IEND", data: [])])
}

@Suite("OpenBadges: baked PNG and SVG badges")
struct OpenBadgesBakingTests {
    static let credentialText = #"{"@context":["https://www.w3.org/ns/credentials/v2"],"name":"Città ]]> badge","type":["VerifiableCredential"]}"#

    @Test("PNG: an uncompressed iTXt openbadgecredential chunk before IEND, with a valid CRC; extract gives it back")
    func png() throws {
        let image = smallPNG()
        #expect(BadgeBaking.kind(of: image) == .png)
        let baked = try BadgeBaking.bake(credential: Self.credentialText, into: image)
        let chunks = try PNGBaking.chunks(baked)
        #expect(chunks.map(\.type) == ["IHDR", "IDAT", "iTXt", "IEND"])
        let text = chunks[2].data
        #expect(Array(text.prefix(20)) == Array("openbadgecredential".utf8) + [0])
        #expect(Array(text[20..<24]) == [0, 0, 0, 0])  // not compressed, method 0, empty language tag and translation
        #expect(try BadgeBaking.extract(from: baked) == Self.credentialText)
        // The image data is untouched and still decodes.
        #expect(try ZLib.decompress(chunks[1].data, maximumOutputBytes: 100).count == 14 + 1)
        // Re-baking replaces the credential instead of adding a second chunk.
        let rebaked = try BadgeBaking.bake(credential: "{\"v\":2}", into: baked)
        #expect(try PNGBaking.chunks(rebaked).filter { $0.type == "iTXt" }.count == 1)
        #expect(try BadgeBaking.extract(from: rebaked) == "{\"v\":2}")
    }

    @Test("PNG: other iTXt chunks are kept; a compressed credential chunk from another baker is read")
    func pngOtherChunks() throws {
        let comment = PNGBaking.Chunk(type: "iTXt", data: Array("Comment".utf8) + [0, 0, 0, 0, 0] + Array("hello".utf8))
        let compressed = PNGBaking.Chunk(
            type: "iTXt", data: Array("openbadgecredential".utf8) + [0, 1, 0, 0, 0] + ZLib.compress(Array(Self.credentialText.utf8)))
        let image = smallPNG(extraChunks: [comment, compressed])
        #expect(try BadgeBaking.extract(from: image) == Self.credentialText)
        let baked = try BadgeBaking.bake(credential: "{}", into: image)
        #expect(try PNGBaking.chunks(baked).map(\.type) == ["IHDR", "iTXt", "IDAT", "iTXt", "IEND"])
        #expect(try BadgeBaking.extract(from: baked) == "{}")
    }

    @Test("PNG: baking over credential chunks that cannot be read (broken compressed data, text not UTF-8) replaces them all")
    func pngUnreadableCredentialChunks() throws {
        let keyword = Array("openbadgecredential".utf8)
        let brokenCompressed = PNGBaking.Chunk(type: "iTXt", data: keyword + [0, 1, 0, 0, 0] + Array("not zlib at all".utf8))
        let notUTF8 = PNGBaking.Chunk(type: "iTXt", data: keyword + [0, 0, 0, 0, 0] + [0xFF, 0xFE, 0x80])
        for broken in [brokenCompressed, notUTF8] {
            let image = smallPNG(extraChunks: [broken])
            #expect(throws: LedgerError.self) { try BadgeBaking.extract(from: image) }
            let baked = try BadgeBaking.bake(credential: Self.credentialText, into: image)
            #expect(try PNGBaking.chunks(baked).map(\.type) == ["IHDR", "IDAT", "iTXt", "IEND"])
            #expect(try BadgeBaking.extract(from: baked) == Self.credentialText)
        }
    }

    @Test("SVG: crafted content (unclosed comments, end tags without their >) is refused in one pass, not scanned again per tag")
    func svgCraftedContentIsLinear() throws {
        // 32 kB of each. A scan to the end of the document per "<" read about n²/8 bytes (n/8 passes over it; on
        // 2 MB, hours); one pass reads each byte a few times. The scans count what they read, so the test does not
        // depend on how long a loaded machine takes.
        let head = #"<svg xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0"><openbadges:credential>"#
        for repeated in ["<!--", "</openbadges:credential", "<![CDATA[x]]>", "<?", "<!DOCTYPE [", "<a b='"] {
            let count = 32_000 / repeated.utf8.count
            let image = Array((head + String(repeating: repeated, count: count)).utf8)
            var bytesRead = 0
            do {
                _ = try SVGBaking.extract(from: image, bytesRead: &bytesRead)
                Issue.record("\(repeated): a credential was read from an element that never ends")
            } catch {
                #expect(error.code == .imageInvalid, "\(repeated): \(error)")
            }
            #expect(bytesRead <= 3 * image.count, "\(repeated): \(bytesRead) bytes read over a document of \(image.count)")
            // Baking finds no credential element to replace and puts its own first, where extract finds it.
            bytesRead = 0
            let baked = try SVGBaking.bake(text: "{}", into: image, bytesRead: &bytesRead)
            #expect(bytesRead <= 3 * image.count, "\(repeated): \(bytesRead) bytes read over a document of \(image.count)")
            #expect(try BadgeBaking.extract(from: baked) == "{}", "\(repeated)")
        }
        // Each prefix bound to the namespace is a scan of the document: a tag binding many is refused, and a
        // prefix bound twice is read once.
        let namespace = SVGBaking.namespace
        let manyPrefixes = "<svg " + (0..<5).map { "xmlns:p\($0)=\"\(namespace)\"" }.joined(separator: " ") + "><p0:credential>{}</p0:credential></svg>"
        do {
            _ = try BadgeBaking.extract(from: Array(manyPrefixes.utf8))
            Issue.record("a tag binding five prefixes was read")
        } catch {
            #expect(error.code == .imageInvalid && error.message.contains("more than 4 prefixes"), "\(error)")
        }
        let twice = "<svg xmlns:a=\"\(namespace)\" xmlns:a=\"\(namespace)\" xmlns:b=\"\(namespace)\" xmlns:c=\"\(namespace)\" xmlns:d=\"\(namespace)\"><b:credential>{\"v\":1}</b:credential></svg>"
        #expect(try BadgeBaking.extract(from: Array(twice.utf8)) == #"{"v":1}"#)
    }

    @Test("PNG: damaged files are refused, an image without a credential says so")
    func pngRefusals() throws {
        let image = smallPNG()
        var badCRC = image
        badCRC[badCRC.count - 1] ^= 0xFF
        #expect(throws: LedgerError.self) { try BadgeBaking.bake(credential: "{}", into: badCRC) }
        #expect(throws: LedgerError.self) { try BadgeBaking.bake(credential: "{}", into: Array(image.dropLast(12))) }
        #expect(throws: LedgerError.self) { try BadgeBaking.bake(credential: "{}", into: image + [0]) }
        do throws(LedgerError) {
            _ = try BadgeBaking.extract(from: image)
            Issue.record("an unbaked PNG gave a credential")
        } catch {
            #expect(error.code == .imageInvalid)
            #expect(error.message.contains("openbadgecredential"))
        }
        #expect(throws: LedgerError.self) { try BadgeBaking.bake(credential: "{}", into: Array("GIF89a".utf8)) }
    }

    static let svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!-- a comment mentioning <svg> first -->
        <!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" data-note="a > b">
          <circle cx="5" cy="5" r="4"/>
        </svg>
        """

    @Test("SVG: namespace on the svg tag, the credential element right after it in CDATA; the rest unchanged")
    func svg() throws {
        let image = Array(Self.svg.utf8)
        #expect(BadgeBaking.kind(of: image) == .svg)
        let baked = try BadgeBaking.bake(credential: Self.credentialText, into: image)
        let text = String(decoding: baked, as: UTF8.self)
        #expect(text.contains(#"data-note="a > b" xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0"><openbadges:credential><![CDATA["#))
        #expect(text.hasSuffix("<circle cx=\"5\" cy=\"5\" r=\"4\"/>\n</svg>"))
        #expect(try BadgeBaking.extract(from: baked) == Self.credentialText)
        // Re-baking replaces the element and does not repeat the namespace.
        let rebaked = String(decoding: try BadgeBaking.bake(credential: "{\"v\":2}", into: baked), as: UTF8.self)
        #expect(rebaked.components(separatedBy: "<openbadges:credential>").count == 2)
        #expect(rebaked.components(separatedBy: "xmlns:openbadges=").count == 2)
        #expect(try BadgeBaking.extract(from: Array(rebaked.utf8)) == "{\"v\":2}")
    }

    @Test("SVG: self-closing svg, another prefix for the namespace, the specification's indented form, entities")
    func svgVariants() throws {
        let selfClosing = try BadgeBaking.bake(credential: "{}", into: Array(#"<svg xmlns="http://www.w3.org/2000/svg"/>"#.utf8))
        #expect(String(decoding: selfClosing, as: UTF8.self)
            == #"<svg xmlns="http://www.w3.org/2000/svg" xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0"><openbadges:credential><![CDATA[{}]]></openbadges:credential></svg>"#)
        let specification = """
            <svg xmlns="http://www.w3.org/2000/svg" xmlns:ob="https://purl.imsglobal.org/ob/v3p0" viewBox="0 0 512 512">
              <ob:credential>
                <![CDATA[
                  {"name": "x"}
                ]]>
              </ob:credential>
            </svg>
            """
        #expect(try BadgeBaking.extract(from: Array(specification.utf8)) == #"{"name": "x"}"#)
        let entities = #"<svg xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0"><openbadges:credential>{&quot;a&quot;:&#x31;}</openbadges:credential></svg>"#
        #expect(try BadgeBaking.extract(from: Array(entities.utf8)) == #"{"a":1}"#)
        let jwt = #"<svg xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0"><openbadges:credential verify="a.b.c"></openbadges:credential></svg>"#
        #expect(try BadgeBaking.extract(from: Array(jwt.utf8)) == "a.b.c")
        // Re-baking under the other prefix replaces that element.
        let rebaked = String(decoding: try BadgeBaking.bake(credential: "{}", into: Array(specification.utf8)), as: UTF8.self)
        #expect(!rebaked.contains("ob:credential"))
        #expect(try BadgeBaking.extract(from: Array(rebaked.utf8)) == "{}")
        #expect(throws: LedgerError.self) { try BadgeBaking.extract(from: Array(#"<svg xmlns="http://www.w3.org/2000/svg"></svg>"#.utf8)) }
        #expect(throws: LedgerError.self) { try BadgeBaking.bake(credential: "{}", into: Array("<html></html>".utf8)) }
    }

    @Test("a signed credential survives baking into PNG and SVG and still verifies")
    func signedCredentialRoundTrip() throws {
        let store = try JSONLDTestFiles.contextStore()
        let credential = try BadgeFixture.credential(.rdfc2022)
        let text = CanonicalJSON.encodeString(credential)
        for image in [smallPNG(), Array(Self.svg.utf8)] {
            let extracted = try BadgeBaking.extract(from: try BadgeBaking.bake(credential: text, into: image))
            let parsed = try JSONParser.parse(Array(extracted.utf8))
            #expect(parsed == credential)
            let report = CredentialVerifier.verify(credential: parsed, statusList: nil, at: BadgeFixture.during, contexts: store)
            #expect(report.isValid(allowingUncheckedStatus: true))
        }
    }
}
