import CircuitoCore

/// W3C N-Quads (RDF 1.1): a parser for the full line-based syntax and a serializer for the canonical
/// form that RDFC-1.0 hashes and outputs.
public enum NQuads {
    /// Parses an N-Quads document. Accepts everything the grammar allows (comments, blank lines, CR or LF line
    /// ends, optional whitespace between terms, `\u`/`\U`/ECHAR escapes) and refuses the rest with
    /// `LedgerError(.invalidBody, …)` naming the line.
    public static func parse(_ text: String) throws(LedgerError) -> [RDFQuad] {
        var parser = NQuadsParser(scalars: Array(text.unicodeScalars))
        return try parser.parseDocument()
    }

    /// The canonical N-Quads line for one quad, including the trailing "\n".
    public static func serialize(_ quad: RDFQuad) -> String {
        line(
            subject: serializedTerm(quad.subject),
            predicate: serializedTerm(quad.predicate),
            object: serializedTerm(quad.object),
            graph: quad.graph.map(serializedTerm))
    }

    /// The lines of `quads` in the given order, concatenated.
    public static func serialize(_ quads: [RDFQuad]) -> String {
        var text = ""
        for quad in quads {
            text += serialize(quad)
        }
        return text
    }

    // MARK: Canonical form, shared with the canonicalizer

    static func line(subject: String, predicate: String, object: String, graph: String?) -> String {
        var text = subject
        text += " "
        text += predicate
        text += " "
        text += object
        if let graph {
            text += " "
            text += graph
        }
        text += " .\n"
        return text
    }

    static func serializedTerm(_ term: RDFTerm) -> String {
        switch term.kind {
        case .iri:
            return "<" + term.value + ">"
        case .blankNode:
            return "_:" + term.value
        case .literal:
            var text = "\"" + escapedLiteral(term.value) + "\""
            if let language = term.language {
                text += "@" + language
            } else if let datatype = term.datatype, datatype != RDFVocabulary.xsdString {
                text += "^^<" + datatype + ">"
            }
            return text
        }
    }

    /// Canonical literal escaping (RDFC-1.0 section 4.1 / N-Quads canonical form): the seven characters with a
    /// short escape use it, other controls (U+0000–U+001F, U+007F) use `\u` with four uppercase hex digits,
    /// everything else is written as itself.
    static func escapedLiteral(_ value: String) -> String {
        var needsEscape = false
        for scalar in value.unicodeScalars where scalar.value < 0x20 || scalar == "\"" || scalar == "\\" || scalar.value == 0x7F {
            needsEscape = true
            break
        }
        guard needsEscape else { return value }
        // Built as UTF-8 bytes: appending to a `String.UnicodeScalarView` with `append(contentsOf:)` copied the whole
        // text at each escape, quadratic in a literal's line breaks or quotes. Every escaped character is ASCII, and
        // no byte of a multi-byte UTF-8 sequence is, so the other bytes are copied as they are.
        let backslash = UInt8(ascii: "\\")
        let digits = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(value.utf8.count + 16)
        for byte in value.utf8 {
            switch byte {
            case 0x08: bytes += [backslash, UInt8(ascii: "b")]
            case 0x09: bytes += [backslash, UInt8(ascii: "t")]
            case 0x0A: bytes += [backslash, UInt8(ascii: "n")]
            case 0x0C: bytes += [backslash, UInt8(ascii: "f")]
            case 0x0D: bytes += [backslash, UInt8(ascii: "r")]
            case 0x22: bytes += [backslash, UInt8(ascii: "\"")]
            case 0x5C: bytes += [backslash, backslash]
            case 0x00...0x1F, 0x7F:
                bytes += [backslash, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")]
                bytes += [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
            default:
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A hand-written recursive-descent reader over Unicode scalars, following the N-Quads grammar
/// (https://www.w3.org/TR/n-quads/#sec-grammar) production by production.
private struct NQuadsParser {
    let scalars: [Unicode.Scalar]
    var position = 0
    var line = 1

    init(scalars: [Unicode.Scalar]) {
        self.scalars = scalars
    }

    private var current: Unicode.Scalar? {
        position < scalars.count ? scalars[position] : nil
    }

    private func failure(_ message: String) -> LedgerError {
        LedgerError(.invalidBody, "N-Quads line \(line): \(message)")
    }

    mutating func parseDocument() throws(LedgerError) -> [RDFQuad] {
        var quads: [RDFQuad] = []
        while true {
            skipSpaceAndComment()
            guard let scalar = current else { break }
            if scalar == "\n" || scalar == "\r" {
                consumeLineEnd()
                continue
            }
            quads.append(try parseStatement())
            skipSpaceAndComment()
            if let scalar = current, scalar != "\n" && scalar != "\r" {
                throw failure("expected the end of the line after \".\"")
            }
        }
        return quads
    }

    /// EOL ::= [#xD#xA]+ ; CR LF counts as one line end, a lone CR or LF as one each.
    private mutating func consumeLineEnd() {
        if current == "\r" {
            position += 1
            if current == "\n" { position += 1 }
        } else {
            position += 1
        }
        line += 1
    }

    /// Spaces and tabs between terms, and a "#" comment running to the end of the line.
    private mutating func skipSpaceAndComment() {
        while let scalar = current {
            if scalar == " " || scalar == "\t" {
                position += 1
            } else if scalar == "#" {
                while let commentScalar = current, commentScalar != "\n" && commentScalar != "\r" {
                    position += 1
                }
            } else {
                break
            }
        }
    }

    private mutating func parseStatement() throws(LedgerError) -> RDFQuad {
        let subject: RDFTerm
        switch current {
        case "<": subject = try parseIRI()
        case "_": subject = try parseBlankNode()
        default: throw failure("expected an IRI or a blank node as subject")
        }
        skipSpaceAndComment()
        guard current == "<" else { throw failure("expected an IRI as predicate") }
        let predicate = try parseIRI()
        skipSpaceAndComment()
        let object: RDFTerm
        switch current {
        case "<": object = try parseIRI()
        case "_": object = try parseBlankNode()
        case "\"": object = try parseLiteral()
        default: throw failure("expected an IRI, a blank node or a literal as object")
        }
        skipSpaceAndComment()
        var graph: RDFTerm?
        switch current {
        case "<": graph = try parseIRI()
        case "_": graph = try parseBlankNode()
        case ".": break
        default: throw failure("expected a graph name or \".\"")
        }
        skipSpaceAndComment()
        guard current == "." else { throw failure("expected \".\" at the end of the statement") }
        position += 1
        return RDFQuad(subject: subject, predicate: predicate, object: object, graph: graph)
    }

    /// IRIREF ::= '<' ([^#x00-#x20<>"{}|^`\] | UCHAR)* '>' ; N-Quads IRIs must be absolute.
    private mutating func parseIRI() throws(LedgerError) -> RDFTerm {
        precondition(current == "<", "caller checked the opening bracket")
        position += 1
        var value = String.UnicodeScalarView()
        while true {
            guard let scalar = current else { throw failure("unterminated IRI") }
            position += 1
            if scalar == ">" { break }
            var character = scalar
            if scalar == "\\" {
                character = try parseUnicodeEscape()
            }
            // Also checked after unescaping: an escaped space or ">" would not survive serialization.
            if Self.isForbiddenInIRI(character) {
                throw failure("character U+\(hexadecimal(character.value)) is not allowed in an IRI")
            }
            value.append(character)
        }
        let text = String(value)
        guard Self.hasScheme(value) else { throw failure("IRI <\(text)> is not absolute") }
        return .iri(text)
    }

    private static func isForbiddenInIRI(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value <= 0x20 { return true }
        return "<>\"{}|^`\\".unicodeScalars.contains(scalar)
    }

    /// scheme ::= ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"  (RFC 3986 section 3.1)
    private static func hasScheme(_ value: String.UnicodeScalarView) -> Bool {
        var index = value.startIndex
        guard index < value.endIndex, isLetter(value[index]) else { return false }
        index = value.index(after: index)
        while index < value.endIndex {
            let scalar = value[index]
            if scalar == ":" { return true }
            guard isLetter(scalar) || isDigit(scalar) || scalar == "+" || scalar == "-" || scalar == "." else { return false }
            index = value.index(after: index)
        }
        return false
    }

    /// UCHAR after its backslash: `u` and 4 hex digits or `U` and 8, naming a Unicode scalar (no surrogates).
    private mutating func parseUnicodeEscape() throws(LedgerError) -> Unicode.Scalar {
        let digitCount: Int
        switch current {
        case "u": digitCount = 4
        case "U": digitCount = 8
        default: throw failure("invalid escape sequence")
        }
        position += 1
        var value: UInt32 = 0
        for _ in 0..<digitCount {
            guard let scalar = current, let digit = hexadecimalDigitValue(scalar) else {
                throw failure("\\u and \\U need \(digitCount) hexadecimal digits")
            }
            value = value << 4 | digit
            position += 1
        }
        guard let scalar = Unicode.Scalar(value) else {
            throw failure("escape names U+\(hexadecimal(value)), which is not a Unicode scalar value")
        }
        return scalar
    }

    /// STRING_LITERAL_QUOTE ('^^' IRIREF | LANGTAG)?
    private mutating func parseLiteral() throws(LedgerError) -> RDFTerm {
        precondition(current == "\"", "caller checked the opening quote")
        position += 1
        var value = String.UnicodeScalarView()
        while true {
            guard let scalar = current else { throw failure("unterminated string literal") }
            position += 1
            switch scalar {
            case "\"":
                return try parseLiteralSuffix(lexicalForm: String(value))
            case "\n", "\r":
                throw failure("line end inside a string literal")
            case "\\":
                value.append(try parseStringEscape())
            default:
                value.append(scalar)
            }
        }
    }

    /// ECHAR ::= '\' [tbnrf"'\]  or UCHAR.
    private mutating func parseStringEscape() throws(LedgerError) -> Unicode.Scalar {
        guard let scalar = current else { throw failure("unterminated string literal") }
        let replacement: Unicode.Scalar
        switch scalar {
        case "t": replacement = "\t"
        case "b": replacement = "\u{08}"
        case "n": replacement = "\n"
        case "r": replacement = "\r"
        case "f": replacement = "\u{0C}"
        case "\"": replacement = "\""
        case "'": replacement = "'"
        case "\\": replacement = "\\"
        case "u", "U": return try parseUnicodeEscape()
        default: throw failure("invalid escape sequence \\\(scalar)")
        }
        position += 1
        return replacement
    }

    private mutating func parseLiteralSuffix(lexicalForm: String) throws(LedgerError) -> RDFTerm {
        if current == "@" {
            position += 1
            return .literal(lexicalForm, language: try parseLanguageTag())
        }
        if current == "^" {
            position += 1
            guard current == "^" else { throw failure("expected \"^^\" before a datatype") }
            position += 1
            guard current == "<" else { throw failure("expected a datatype IRI after \"^^\"") }
            let datatype = try parseIRI().value
            // rdf:langString is only for literals that carry a language tag (RDF 1.1 Concepts section 3.3).
            if datatype == RDFVocabulary.rdfLangString {
                throw failure("rdf:langString literal without a language tag")
            }
            return .literal(lexicalForm, datatype: datatype)
        }
        return .literal(lexicalForm)
    }

    /// LANGTAG ::= '@' [a-zA-Z]+ ('-' [a-zA-Z0-9]+)*   (after the "@")
    private mutating func parseLanguageTag() throws(LedgerError) -> String {
        let start = position
        while let scalar = current, isLetter(scalar) { position += 1 }
        guard position > start else { throw failure("empty language tag") }
        while current == "-" {
            position += 1
            let subtagStart = position
            while let scalar = current, isLetter(scalar) || isDigit(scalar) { position += 1 }
            guard position > subtagStart else { throw failure("empty language subtag") }
        }
        var tag = String.UnicodeScalarView()
        tag.append(contentsOf: scalars[start..<position])
        return String(tag)
    }

    /// BLANK_NODE_LABEL ::= '_:' (PN_CHARS_U | [0-9]) ((PN_CHARS | '.')* PN_CHARS)?
    private mutating func parseBlankNode() throws(LedgerError) -> RDFTerm {
        precondition(current == "_", "caller checked the underscore")
        position += 1
        guard current == ":" else { throw failure("expected \"_:\" to start a blank node") }
        position += 1
        guard let first = current, isBlankNodeStart(first) else { throw failure("invalid blank node label") }
        let start = position
        position += 1
        while let scalar = current, isBlankNodeCharacter(scalar) || scalar == "." {
            position += 1
        }
        // A label cannot end with ".": give trailing dots back, they end the statement.
        while scalars[position - 1] == "." {
            position -= 1
        }
        var label = String.UnicodeScalarView()
        label.append(contentsOf: scalars[start..<position])
        return .blankNode(String(label))
    }
}

// MARK: Character classes of the N-Quads grammar

private func isLetter(_ scalar: Unicode.Scalar) -> Bool {
    ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
}

private func isDigit(_ scalar: Unicode.Scalar) -> Bool {
    ("0"..."9").contains(scalar)
}

private func hexadecimalDigitValue(_ scalar: Unicode.Scalar) -> UInt32? {
    switch scalar {
    case "0"..."9": scalar.value - 0x30
    case "a"..."f": scalar.value - 0x61 + 10
    case "A"..."F": scalar.value - 0x41 + 10
    default: nil
    }
}

private func hexadecimal(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// PN_CHARS_BASE
private func isNameStartBase(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x41...0x5A, 0x61...0x7A, 0x00C0...0x00D6, 0x00D8...0x00F6, 0x00F8...0x02FF, 0x0370...0x037D,
        0x037F...0x1FFF, 0x200C...0x200D, 0x2070...0x218F, 0x2C00...0x2FEF, 0x3001...0xD7FF, 0xF900...0xFDCF,
        0xFDF0...0xFFFD, 0x10000...0xEFFFF:
        true
    default:
        false
    }
}

/// PN_CHARS_U | [0-9]
private func isBlankNodeStart(_ scalar: Unicode.Scalar) -> Bool {
    isNameStartBase(scalar) || scalar == "_" || scalar == ":" || isDigit(scalar)
}

/// PN_CHARS
private func isBlankNodeCharacter(_ scalar: Unicode.Scalar) -> Bool {
    if isBlankNodeStart(scalar) || scalar == "-" { return true }
    switch scalar.value {
    case 0x00B7, 0x0300...0x036F, 0x203F...0x2040: return true
    default: return false
    }
}
