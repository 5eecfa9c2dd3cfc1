import CircuitoCore

/// Baked badges (Open Badges 3.0, section "Baked Badge"): a credential carried inside its badge image.
///
/// - PNG: an `iTXt` chunk with keyword `openbadgecredential`, uncompressed, empty language tag and translated
///   keyword, holding the credential's JSON; inserted just before `IEND`.
/// - SVG: `xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0"` on the `<svg>` tag and, directly after it,
///   `<openbadges:credential><![CDATA[…]]></openbadges:credential>` holding the JSON.
///
/// Baking an image that already carries a credential replaces it (the specification lets the baker choose), so
/// a badge image can be re-baked with a fresh credential.
public enum BadgeBaking {
    public enum ImageKind: String, Sendable {
        case png, svg
    }

    /// The largest image accepted, so that a hostile file cannot exhaust memory.
    public static let maximumImageBytes = 32 << 20

    public static func kind(of image: [UInt8]) -> ImageKind? {
        if image.starts(with: PNGBaking.signature) { return .png }
        // An SVG is XML text: allow a byte order mark and leading white space before "<".
        var text = image[...]
        if text.starts(with: [0xEF, 0xBB, 0xBF]) { text = text.dropFirst(3) }
        text = text.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        guard text.first == UInt8(ascii: "<") else { return nil }
        var bytesRead = 0
        return SVGBaking.findSVGStartTag(Array(image), bytesRead: &bytesRead) != nil ? .svg : nil
    }

    /// `image` with `credential` (the credential's JSON text) baked in.
    public static func bake(credential: String, into image: [UInt8]) throws(LedgerError) -> [UInt8] {
        guard image.count <= maximumImageBytes else {
            throw LedgerError(.imageInvalid, "the image is larger than \(maximumImageBytes) bytes")
        }
        switch kind(of: image) {
        case .png?: return try PNGBaking.bake(text: credential, into: image)
        case .svg?:
            var bytesRead = 0
            return try SVGBaking.bake(text: credential, into: image, bytesRead: &bytesRead)
        case nil: throw LedgerError(.imageInvalid, "the image is neither a PNG nor an SVG")
        }
    }

    /// The credential text baked into `image`.
    public static func extract(from image: [UInt8]) throws(LedgerError) -> String {
        guard image.count <= maximumImageBytes else {
            throw LedgerError(.imageInvalid, "the image is larger than \(maximumImageBytes) bytes")
        }
        switch kind(of: image) {
        case .png?: return try PNGBaking.extract(from: image)
        case .svg?:
            var bytesRead = 0
            return try SVGBaking.extract(from: image, bytesRead: &bytesRead)
        case nil: throw LedgerError(.imageInvalid, "the image is neither a PNG nor an SVG")
        }
    }
}

/// PNG chunks (ISO/IEC 15948): length (4 bytes, big-endian), type (4 ASCII letters), data, CRC-32 of type ‖ data.
public enum PNGBaking {
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let keyword = "openbadgecredential"
    /// Text of compressed iTXt chunks is inflated up to this size (baking never compresses; others might).
    static let maximumTextBytes = 16 << 20

    public struct Chunk: Sendable, Hashable {
        public let type: String
        public let data: [UInt8]

        public init(type: String, data: [UInt8]) {
            self.type = type
            self.data = data
        }

        /// The chunk's bytes as they appear in the file.
        public var encoded: [UInt8] {
            let typeBytes = Array(type.utf8)
            return bigEndian(UInt32(data.count)) + typeBytes + data + bigEndian(CRC32.checksum(typeBytes + data))
        }
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32($0))) } }

    /// The chunks of a PNG, each CRC checked; the file must start with the signature, begin with IHDR and end
    /// with IEND. (The loop reads at least 12 bytes per chunk, so the file length bounds it.)
    public static func chunks(_ image: [UInt8]) throws(LedgerError) -> [Chunk] {
        guard image.starts(with: signature) else { throw LedgerError(.imageInvalid, "not a PNG (signature missing)") }
        var chunks: [Chunk] = []
        var position = signature.count
        while position < image.count {
            guard image.count - position >= 12 else { throw LedgerError(.imageInvalid, "PNG chunk header cut short") }
            let length = Int((0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(image[position + $1]) })
            guard length <= 0x7FFF_FFFF, image.count - position - 12 >= length else {
                throw LedgerError(.imageInvalid, "PNG chunk at byte \(position) is longer than the file")
            }
            let typeBytes = Array(image[(position + 4)..<(position + 8)])
            guard typeBytes.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                throw LedgerError(.imageInvalid, "PNG chunk at byte \(position) has an invalid type")
            }
            let data = Array(image[(position + 8)..<(position + 8 + length)])
            let crcStart = position + 8 + length
            let storedCRC = (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(image[crcStart + $1]) }
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard storedCRC == CRC32.checksum(typeBytes + data) else {
                throw LedgerError(.imageInvalid, "PNG chunk \(type) at byte \(position) fails its CRC")
            }
            chunks.append(Chunk(type: type, data: data))
            position = crcStart + 4
            if type == "IEND" { break }
        }
        guard chunks.first?.type == "IHDR" else { throw LedgerError(.imageInvalid, "the PNG does not start with IHDR") }
        guard chunks.last?.type == "IEND", position == image.count else {
            throw LedgerError(.imageInvalid, "the PNG does not end with IEND")
        }
        return chunks
    }

    public static func encode(_ chunks: [Chunk]) -> [UInt8] {
        signature + chunks.flatMap(\.encoded)
    }

    /// An uncompressed iTXt chunk: keyword, NUL, compression flag 0, method 0, empty language tag, NUL, empty
    /// translated keyword, NUL, UTF-8 text.
    public static func textChunk(_ text: String) -> Chunk {
        Chunk(type: "iTXt", data: Array(keyword.utf8) + [0, 0, 0, 0, 0] + Array(text.utf8))
    }

    static func bake(text: String, into image: [UInt8]) throws(LedgerError) -> [UInt8] {
        // Every chunk with the credential's keyword goes, readable or not: one left behind (its text not UTF-8, its
        // compressed data broken) would come first when the image is read, and hide the new credential.
        var chunks = try chunks(image).filter { !isCredentialChunk($0) }
        chunks.insert(textChunk(text), at: chunks.count - 1)
        return encode(chunks)
    }

    static func extract(from image: [UInt8]) throws(LedgerError) -> String {
        for chunk in try chunks(image) {
            if let text = try credentialText(of: chunk) { return text }
        }
        throw LedgerError(.imageInvalid, "the PNG has no iTXt chunk with keyword \(keyword)")
    }

    /// An `iTXt` chunk with the credential keyword, whatever its text.
    static func isCredentialChunk(_ chunk: Chunk) -> Bool {
        guard chunk.type == "iTXt", let keywordEnd = chunk.data.firstIndex(of: 0) else { return false }
        return chunk.data[0..<keywordEnd].elementsEqual(keyword.utf8)
    }

    /// The text of an `iTXt` chunk with the credential keyword; nil for any other chunk.
    static func credentialText(of chunk: Chunk) throws(LedgerError) -> String? {
        guard chunk.type == "iTXt" else { return nil }
        let data = chunk.data
        guard let keywordEnd = data.firstIndex(of: 0), Array(data[0..<keywordEnd]) == Array(keyword.utf8) else { return nil }
        guard data.count >= keywordEnd + 3 else { throw LedgerError(.imageInvalid, "the \(keyword) chunk is cut short") }
        // The PNG specification defines flags 0 (uncompressed) and 1 (zlib) only: another flag is not read as text.
        let compressionFlag = data[keywordEnd + 1]
        guard compressionFlag <= 1 else {
            throw LedgerError(.imageInvalid, "unknown iTXt compression flag \(compressionFlag)")
        }
        let compressed = compressionFlag == 1
        // Language tag and translated keyword: two NUL-terminated fields, skipped.
        var position = keywordEnd + 3
        for _ in 0..<2 {
            guard let end = data[position...].firstIndex(of: 0) else {
                throw LedgerError(.imageInvalid, "the \(keyword) chunk's header fields are not terminated")
            }
            position = end + 1
        }
        var text = Array(data[position...])
        if compressed {
            guard data[keywordEnd + 2] == 0 else { throw LedgerError(.imageInvalid, "unknown iTXt compression method") }
            // The zlib stream is part of the image (its text field), so broken data is a broken image, named as
            // such whatever the decoder found; as a status list's GZIP is status_list_invalid.
            do {
                text = try ZLib.decompress(text, maximumOutputBytes: maximumTextBytes)
            } catch {
                throw LedgerError(.imageInvalid, "the \(keyword) chunk's compressed text does not decompress: \(error.message)")
            }
        }
        guard let string = String(validating: text, as: UTF8.self) else {
            throw LedgerError(.imageInvalid, "the \(keyword) chunk's text is not UTF-8")
        }
        return string
    }
}

/// SVG baking on the document's text: the tags involved are found with a small scanner that skips comments,
/// processing instructions, CDATA and DOCTYPE declarations and respects quoted attribute values, so the rest of the
/// image is left byte for byte as it was.
/// The SVG scans count the bytes they read (`bytesRead`, added to by every scan that moves through the document):
/// a crafted document must not make them go back over it (a scan to the end of the document per "<" once took
/// minutes on a small image), and tests hold the count to a few passes over the document, where a time limit would
/// also count the time a loaded machine left the test waiting.
public enum SVGBaking {
    public static let namespace = "https://purl.imsglobal.org/ob/v3p0"
    static let prefix = "openbadges"

    /// The range of the first `<svg …>` start tag (from "<" to ">" inclusive) and whether it is self-closing.
    static func findSVGStartTag(_ bytes: [UInt8], bytesRead: inout Int) -> (range: Range<Int>, selfClosing: Bool)? {
        var position = 0
        // Each turn moves past one markup construct or character, so the loop ends within the document.
        while position < bytes.count {
            guard bytes[position] == UInt8(ascii: "<") else {
                position += 1
                bytesRead += 1
                continue
            }
            if let end = skipSpecial(bytes, at: position, bytesRead: &bytesRead) {
                position = end
                continue
            }
            let end = tagEnd(bytes, from: position, bytesRead: &bytesRead)
            guard let end else { return nil }
            if elementName(bytes, tagStart: position) == "svg" {
                return (position..<(end + 1), bytes[end - 1] == UInt8(ascii: "/"))
            }
            position = end + 1
        }
        return nil
    }

    /// For comments, processing instructions, CDATA sections and declarations starting at `position`, the index
    /// just after them; nil for an ordinary tag.
    static func skipSpecial(_ bytes: [UInt8], at position: Int, bytesRead: inout Int) -> Int? {
        func after(_ terminator: String, from start: Int, bytesRead: inout Int) -> Int {
            let needle = Array(terminator.utf8)
            return firstIndex(of: needle, in: bytes, from: start, bytesRead: &bytesRead).map { $0 + needle.count } ?? bytes.count
        }
        let rest = bytes[position...]
        if rest.starts(with: Array("<!--".utf8)) { return after("-->", from: position + 4, bytesRead: &bytesRead) }
        if rest.starts(with: Array("<![CDATA[".utf8)) { return after("]]>", from: position + 9, bytesRead: &bytesRead) }
        if rest.starts(with: Array("<?".utf8)) { return after("?>", from: position + 2, bytesRead: &bytesRead) }
        if rest.starts(with: Array("<!".utf8)) {
            // A DOCTYPE may hold an internal subset in brackets.
            var depth = 0
            var index = position + 2
            defer { bytesRead += index - position }
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "]"): depth -= 1
                case UInt8(ascii: ">") where depth <= 0: return index + 1
                default: break
                }
                index += 1
            }
            return bytes.count
        }
        return nil
    }

    /// The index of the ">" closing the tag that starts at `start`, skipping quoted attribute values.
    static func tagEnd(_ bytes: [UInt8], from start: Int, bytesRead: inout Int) -> Int? {
        var quote: UInt8?
        var index = start + 1
        defer { bytesRead += index - start }
        while index < bytes.count {
            let byte = bytes[index]
            if let open = quote {
                if byte == open { quote = nil }
            } else if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                quote = byte
            } else if byte == UInt8(ascii: ">") {
                return index
            }
            index += 1
        }
        return nil
    }

    static func elementName(_ bytes: [UInt8], tagStart: Int) -> String {
        let name = bytes[(tagStart + 1)...].prefix { byte in
            !(byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "/"))
        }
        return String(decoding: name, as: UTF8.self)
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int, bytesRead: inout Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        defer { bytesRead += index - start + needle.count }
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0] && haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    /// The attributes of a start tag as (name, value) pairs, values with entities left as written.
    static func attributes(_ tag: ArraySlice<UInt8>) -> [(name: String, value: String)] {
        var result: [(String, String)] = []
        let bytes = Array(tag)
        var index = 1 + (bytes.dropFirst().prefix { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D && $0 != UInt8(ascii: ">") }).count
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        while index < bytes.count {
            while index < bytes.count && isSpace(bytes[index]) { index += 1 }
            let nameStart = index
            while index < bytes.count && !isSpace(bytes[index]) && bytes[index] != UInt8(ascii: "=") && bytes[index] != UInt8(ascii: ">") && bytes[index] != UInt8(ascii: "/") {
                index += 1
            }
            let name = String(decoding: bytes[nameStart..<index], as: UTF8.self)
            while index < bytes.count && isSpace(bytes[index]) { index += 1 }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "="), !name.isEmpty else {
                index += 1
                continue
            }
            index += 1
            while index < bytes.count && isSpace(bytes[index]) { index += 1 }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else { continue }
            let quote = bytes[index]
            let valueStart = index + 1
            index = valueStart
            while index < bytes.count && bytes[index] != quote { index += 1 }
            result.append((name, String(decoding: bytes[valueStart..<min(index, bytes.count)], as: UTF8.self)))
            index += 1
        }
        return result
    }

    /// The element range (start tag to end tag inclusive) of the first `<prefix:credential>` after `from`.
    static func findCredentialElement(
        _ bytes: [UInt8], prefix: String, from start: Int, bytesRead: inout Int
    ) -> (element: Range<Int>, startTag: Range<Int>, content: Range<Int>)? {
        let name = prefix + ":credential"
        var position = start
        while position < bytes.count {
            guard bytes[position] == UInt8(ascii: "<") else {
                position += 1
                bytesRead += 1
                continue
            }
            if let end = skipSpecial(bytes, at: position, bytesRead: &bytesRead) {
                position = end
                continue
            }
            guard let end = tagEnd(bytes, from: position, bytesRead: &bytesRead) else { return nil }
            if elementName(bytes, tagStart: position) == name {
                let startTag = position..<(end + 1)
                if bytes[end - 1] == UInt8(ascii: "/") { return (startTag, startTag, (end + 1)..<(end + 1)) }
                // The content runs to the matching end tag; CDATA sections inside are skipped as a whole. Every
                // scan here moves `index` forward past what it read, or ends the search, so the whole is linear: a
                // scan to the end of the document that then went back (for each "<!--" of the content, or each end
                // tag without its ">") made a small crafted image take minutes.
                var index = end + 1
                let closing = Array("</\(name)".utf8)
                let cdataStart = Array("<![CDATA[".utf8)
                while index < bytes.count {
                    guard bytes[index] == UInt8(ascii: "<") else {
                        index += 1
                        bytesRead += 1
                        continue
                    }
                    if bytes[index...].starts(with: cdataStart) {
                        guard let special = skipSpecial(bytes, at: index, bytesRead: &bytesRead) else { return nil }
                        index = special
                        continue
                    }
                    if bytes[index...].starts(with: closing) {
                        // No ">" after this one means none after any later one either.
                        guard let closeEnd = tagEnd(bytes, from: index, bytesRead: &bytesRead) else { return nil }
                        return (position..<(closeEnd + 1), startTag, (end + 1)..<index)
                    }
                    index += 1
                    bytesRead += 1
                }
                return nil
            }
            position = end + 1
        }
        return nil
    }

    /// Distinct prefixes a document binds to the Open Badges namespace that are read, at most this many: each is a
    /// scan of the document, and a crafted <svg> tag could bind hundreds of thousands.
    static let maximumBoundPrefixes = 4

    /// The distinct prefixes the start tag binds to the namespace, in the tag's order; more than
    /// `maximumBoundPrefixes` is `image_invalid`.
    static func prefixesBound(in startTag: ArraySlice<UInt8>) throws(LedgerError) -> [String] {
        var prefixes: [String] = []
        for attribute in attributes(startTag) where attribute.name.hasPrefix("xmlns:") && attribute.value == namespace {
            let prefix = String(attribute.name.dropFirst(6))
            guard !prefixes.contains(prefix) else { continue }
            guard prefixes.count < maximumBoundPrefixes else {
                throw LedgerError(.imageInvalid, "the <svg> tag binds the Open Badges namespace to more than \(maximumBoundPrefixes) prefixes")
            }
            prefixes.append(prefix)
        }
        return prefixes
    }

    static func bake(text: String, into image: [UInt8], bytesRead: inout Int) throws(LedgerError) -> [UInt8] {
        var bytes = image
        guard let svgTag = findSVGStartTag(bytes, bytesRead: &bytesRead) else { throw LedgerError(.imageInvalid, "the SVG has no <svg> start tag") }
        // Remove a credential baked before, under whichever prefixes the document binds to the namespace.
        let boundPrefixes = try prefixesBound(in: bytes[svgTag.range])
        for boundPrefix in boundPrefixes {
            // One element per prefix is allowed; a few more are removed too, without looping forever.
            for _ in 0..<8 {
                guard let old = findCredentialElement(bytes, prefix: boundPrefix, from: svgTag.range.upperBound, bytesRead: &bytesRead) else {
                    break
                }
                bytes.removeSubrange(old.element)
            }
        }
        // CDATA cannot hold "]]>": split the text there into two sections (readers join them again).
        let cdata = "<![CDATA[" + text.split(separator: "]]>", omittingEmptySubsequences: false).joined(separator: "]]]]><![CDATA[>") + "]]>"
        let element = Array("<\(prefix):credential>\(cdata)</\(prefix):credential>".utf8)
        var tag = Array(bytes[svgTag.range])
        var insertion = element
        if svgTag.selfClosing {
            // <svg …/> becomes <svg …>credential</svg>.
            tag.removeLast(2)
            tag.append(UInt8(ascii: ">"))
            insertion += Array("</svg>".utf8)
        }
        if !boundPrefixes.contains(prefix) {
            if attributes(bytes[svgTag.range]).contains(where: { $0.name == "xmlns:\(prefix)" }) {
                throw LedgerError(.imageInvalid, "the SVG binds the prefix \(prefix) to another namespace")
            }
            let attribute = Array(" xmlns:\(prefix)=\"\(namespace)\"".utf8)
            tag.insert(contentsOf: attribute, at: tag.count - 1)
        }
        bytes.replaceSubrange(svgTag.range, with: tag + insertion)
        return bytes
    }

    static func extract(from image: [UInt8], bytesRead: inout Int) throws(LedgerError) -> String {
        guard let svgTag = findSVGStartTag(image, bytesRead: &bytesRead) else { throw LedgerError(.imageInvalid, "the SVG has no <svg> start tag") }
        // Any prefix the <svg> tag binds to the namespace will do (ours is "openbadges"); the first element wins.
        let prefixes = try prefixesBound(in: image[svgTag.range])
        guard !prefixes.isEmpty else {
            throw LedgerError(.imageInvalid, "the SVG does not declare the Open Badges namespace \(namespace)")
        }
        var found: [(element: Range<Int>, startTag: Range<Int>, content: Range<Int>)] = []
        for prefix in prefixes {
            if let element = findCredentialElement(image, prefix: prefix, from: svgTag.range.upperBound, bytesRead: &bytesRead) {
                found.append(element)
            }
        }
        guard let element = found.min(by: { $0.element.lowerBound < $1.element.lowerBound }) else {
            throw LedgerError(.imageInvalid, "the SVG has no <\(prefixes[0]):credential> element")
        }
        // The element holds the credential: bytes that are not UTF-8, in its text or its `verify` attribute, are
        // refused (decoding them would put U+FFFD in their place, a credential other than the one baked).
        guard String(validating: image[element.element], as: UTF8.self) != nil else {
            throw LedgerError(.imageInvalid, "the credential element is not UTF-8")
        }
        // A VC-JWT credential sits in the `verify` attribute; an embedded-proof credential is the element's text.
        if let verify = attributes(image[element.startTag]).first(where: { $0.name == "verify" }) {
            return decodeEntities(verify.value)
        }
        return try text(of: image[element.content], bytesRead: &bytesRead)
    }

    /// The character data of element content: CDATA sections verbatim, other text with entities decoded;
    /// leading and trailing white space trimmed (the specification's example indents the JSON).
    static func text(of content: ArraySlice<UInt8>, bytesRead: inout Int) throws(LedgerError) -> String {
        let bytes = Array(content)
        var output: [UInt8] = []
        var plain: [UInt8] = []
        var index = 0
        func flushPlain() {
            output += Array(decodeEntities(String(decoding: plain, as: UTF8.self)).utf8)
            plain.removeAll()
        }
        while index < bytes.count {
            if bytes[index...].starts(with: Array("<![CDATA[".utf8)) {
                flushPlain()
                let start = index + 9
                guard let end = firstIndex(of: Array("]]>".utf8), in: bytes, from: start, bytesRead: &bytesRead) else {
                    throw LedgerError(.imageInvalid, "an unterminated CDATA section in the credential element")
                }
                output += bytes[start..<end]
                index = end + 3
            } else if bytes[index...].starts(with: Array("<!--".utf8)) {
                index = firstIndex(of: Array("-->".utf8), in: bytes, from: index + 4, bytesRead: &bytesRead).map { $0 + 3 } ?? bytes.count
            } else {
                plain.append(bytes[index])
                index += 1
                bytesRead += 1
            }
        }
        flushPlain()
        // UTF-8: `extract` checked the element, and CDATA sections, comments and entities end on ASCII characters.
        let text = String(decoding: output, as: UTF8.self)
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        return String(text.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var output = ""
        var rest = Substring(text)
        while let ampersand = rest.firstIndex(of: "&") {
            output += rest[..<ampersand]
            let afterAmpersand = rest.index(after: ampersand)
            guard let semicolon = rest[afterAmpersand...].prefix(12).firstIndex(of: ";") else {
                output += "&"
                rest = rest[afterAmpersand...]
                continue
            }
            let name = rest[afterAmpersand..<semicolon]
            let named: [Substring: String] = ["lt": "<", "gt": ">", "amp": "&", "quot": "\"", "apos": "'"]
            if let replacement = named[name] {
                output += replacement
            } else if name.hasPrefix("#x"), let value = UInt32(name.dropFirst(2), radix: 16), let scalar = Unicode.Scalar(value) {
                output.unicodeScalars.append(scalar)
            } else if name.hasPrefix("#"), let value = UInt32(name.dropFirst()), let scalar = Unicode.Scalar(value) {
                output.unicodeScalars.append(scalar)
            } else {
                output += "&" + name + ";"
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return output + rest
    }
}
