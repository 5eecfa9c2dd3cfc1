import CircuitoCore

/// The JSON-LD context documents a processor may use, keyed by their URL.
///
/// JSON-LD processing in Circuito never touches the network: a context URL that is not in the store is an error,
/// never a fetch. Fetching would let whoever controls (or intercepts) the context URL change what a signed
/// credential means, and would make verification depend on being online.
///
/// The store holds parsed documents only; reading files is the caller's job (the library does no I/O). The
/// contexts Circuito ships with are listed in `bundledFileNames`; build the store with `init(bundledFiles:)` from
/// their bytes, or with `init(documents:)` from already parsed JSON.
public struct JSONLDContextStore: Sendable {
    /// Context URL → file name of the bundled copy (in the shared `contexts` directory).
    public static let bundledFileNames: [String: String] = [
        "https://www.w3.org/ns/credentials/v2": "w3c-ns-credentials-v2.jsonld",
        "https://www.w3.org/ns/credentials/examples/v2": "w3c-ns-credentials-examples-v2.jsonld",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": "ob-v3p0-context-3.0.3.json",
        "https://w3id.org/security/data-integrity/v2": "w3id-data-integrity-v2.jsonld",
        "https://w3id.org/security/multikey/v1": "w3id-multikey-v1.jsonld",
    ]

    /// URL → the whole context document (a map with an `@context` entry).
    private let documents: JSONObject

    /// A store of already parsed context documents, keyed by URL. Each document must be a JSON object with an
    /// `@context` entry; that is checked when the context is used.
    public init(documents: JSONObject) {
        self.documents = documents
    }

    /// A store of the bundled contexts from the bytes of their files, keyed by file name (as in
    /// `bundledFileNames`). Every bundled file must be given; a missing or unparsable one is an error.
    public init(bundledFiles: [String: [UInt8]]) throws(LedgerError) {
        var documents: JSONObject = [:]
        for (url, fileName) in Self.bundledFileNames {
            guard let bytes = bundledFiles[fileName] else {
                throw LedgerError(.invalidBody, "bundled JSON-LD context file \(fileName) (for \(url)) is missing")
            }
            let document: JSONValue
            do {
                document = try JSONParser.parse(bytes)
            } catch {
                throw LedgerError(
                    .invalidBody, "bundled JSON-LD context file \(fileName) is not valid JSON: \(error.message)")
            }
            guard document["@context"] != nil else {
                throw LedgerError(.invalidBody, "bundled JSON-LD context file \(fileName) has no top-level @context")
            }
            documents[url] = document
        }
        self.documents = documents
    }

    /// The URLs this store can resolve, sorted.
    public var urls: [String] { documents.keys.sorted() }

    public func contains(_ url: String) -> Bool { documents[url] != nil }

    /// The `@context` entry of the document for `url`. Unknown URLs are refused, never fetched.
    func context(for url: String) throws(LedgerError) -> JSONValue {
        guard let document = documents[url] else {
            throw LedgerError(
                .invalidBody,
                "JSON-LD context \(url) is not bundled; contexts are never fetched from the network")
        }
        guard case .object(let members) = document, let context = members["@context"] else {
            throw LedgerError(
                .invalidBody, "JSON-LD invalid remote context: the document for \(url) has no top-level @context")
        }
        return context
    }
}
