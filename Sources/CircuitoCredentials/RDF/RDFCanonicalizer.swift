import CircuitoCore
import CircuitoCrypto

/// W3C RDF Dataset Canonicalization, RDFC-1.0 (https://www.w3.org/TR/rdf-canon/).
///
/// Gives every blank node a canonical label (`c14n0`, `c14n1`, …) that depends only on the dataset's
/// structure, so that isomorphic datasets serialize to identical canonical N-Quads.
public enum RDFCanonicalizer {
    public enum HashAlgorithm: Sendable { case sha256, sha384 }

    public struct Result: Sendable {
        /// The canonical N-Quads document: one line per distinct quad, sorted in code point order.
        public let canonicalNQuads: String
        /// Input blank node label → canonical label (c14nN).
        public let issuedIdentifiers: [String: String]
    }

    /// Canonicalizes a dataset (duplicate quads count once, as a dataset is a set).
    ///
    /// - Parameter maximumWork: a bound on the calls of Hash N-Degree Quads, the quads they read and the permutations
    ///   they try. Poison graphs (large cliques of indistinguishable blank nodes) need factorially many; past the
    ///   bound this throws
    ///   `LedgerError(.tooLarge, …)` instead of running for hours (RDFC-1.0 section 6, "Dataset Poisoning"). The
    ///   heaviest W3C test needs a few thousand units; in an optimized build one unit costs a few microseconds, so
    ///   callers facing untrusted input may want a bound well below the default.
    /// - Throws: `.invalidBody` for a quad that is not RDF (a literal subject, a non-IRI predicate, a literal
    ///   graph name); `.tooLarge` as above, or when Hash N-Degree Quads would recurse more than 64 levels deep
    ///   (a long chain of indistinguishable blank nodes), which protects the stack.
    public static func canonicalize(
        _ quads: [RDFQuad], hashAlgorithm: HashAlgorithm = .sha256, maximumWork: Int = 1_000_000
    ) throws(LedgerError) -> Result {
        var workDone = WorkDone()
        return try canonicalize(quads, hashAlgorithm: hashAlgorithm, maximumWork: maximumWork, workDone: &workDone)
    }

    /// The work a canonicalization did, counted where it is done rather than where the bound charges for it, so that
    /// tests can tell how far a refused one went.
    struct WorkDone: Sendable {
        var hashNDegreeQuadsCalls = 0
        /// The quads of their nodes that those calls read.
        var quadsRead = 0
        var permutationsTried = 0

        /// In the work bound's units.
        var units: Int { hashNDegreeQuadsCalls + quadsRead + permutationsTried }
    }

    /// `canonicalize`, also giving the work done, whether it finished or was refused.
    static func canonicalize(
        _ quads: [RDFQuad], hashAlgorithm: HashAlgorithm = .sha256, maximumWork: Int = 1_000_000, workDone: inout WorkDone
    ) throws(LedgerError) -> Result {
        var state = try CanonicalizationState(quads: quads, hashAlgorithm: hashAlgorithm, maximumWork: maximumWork)
        defer { workDone = state.workDone }
        return try state.canonicalize()
    }
}

/// A term as the algorithm needs it: blank nodes by number (their index in `labels`), everything else already in
/// its canonical N-Quads form.
private enum InternalTerm {
    case blankNode(Int)
    case fixed(String)
}

private struct InternalQuad {
    let subject: InternalTerm
    /// Predicates are always IRIs; kept bare (without "<>") for Hash Related Blank Node.
    let predicateIRI: String
    /// Equal predicates share a number, which keys the Hash Related Blank Node cache.
    let predicateNumber: Int
    let object: InternalTerm
    let graph: InternalTerm?
}

/// Identifier Issuer (RDFC-1.0 section 4.3): hands out prefix0, prefix1, … and remembers the order.
///
/// Hash N-Degree Quads copies issuers for every permutation, so they hold plain numbers (cheap to copy) and build
/// the identifier text on demand.
private struct IdentifierIssuer {
    let prefix: String
    /// Blank node number → the number in its issued identifier.
    private var issued: [Int: Int] = [:]
    /// Blank nodes in the order they received their identifiers.
    private(set) var issuedOrder: [Int] = []

    init(prefix: String) {
        self.prefix = prefix
    }

    /// The blank node's identifier, issuing the next one if it has none yet.
    @discardableResult
    mutating func issue(_ blankNode: Int) -> String {
        if let existing = issued[blankNode] { return prefix + String(existing) }
        let number = issuedOrder.count
        issued[blankNode] = number
        issuedOrder.append(blankNode)
        return prefix + String(number)
    }

    func identifier(for blankNode: Int) -> String? {
        issued[blankNode].map { prefix + String($0) }
    }

    /// The N in the blank node's identifier prefixN, if issued.
    func issuedNumber(for blankNode: Int) -> Int? {
        issued[blankNode]
    }

    func hasIdentifier(for blankNode: Int) -> Bool {
        issued[blankNode] != nil
    }
}

/// The canonicalization state (RDFC-1.0 section 4.2) plus the work budget.
private struct CanonicalizationState {
    /// Each level of Hash N-Degree Quads recursion takes up to about 4 KiB of stack in a debug build (less when
    /// optimized), so 64 levels stay well inside even a 512 KiB thread stack; ordinary data needs only a few.
    static let maximumRecursionDepth = 64

    private let hashAlgorithm: RDFCanonicalizer.HashAlgorithm
    /// Input blank node labels, indexed by blank node number, in order of first appearance.
    private var labels: [String] = []
    private var quads: [InternalQuad] = []
    /// The blank node to quads map: quad indices per blank node number.
    private var quadsByBlankNode: [[Int]] = []
    /// Hash First Degree Quads depends only on the dataset, so each is computed once.
    private var firstDegreeHashes: [String?] = []
    /// Per blank node, a number shared by exactly the blank nodes with the same first degree hash.
    private var firstDegreeHashNumbers: [Int?] = []
    private var canonicalIssuer = IdentifierIssuer(prefix: "c14n")
    /// Hash Related Blank Node results by their input's parts (see `RelatedHashKey`).
    private var relatedHashes: [RelatedHashKey: String] = [:]
    private var remainingWork: Int
    private(set) var workDone = RDFCanonicalizer.WorkDone()

    init(quads input: [RDFQuad], hashAlgorithm: RDFCanonicalizer.HashAlgorithm, maximumWork: Int) throws(LedgerError) {
        self.hashAlgorithm = hashAlgorithm
        self.remainingWork = maximumWork
        // Blank node labels are compared by code points (see `ExactText`), as RDF does.
        var numbers: [ExactText: Int] = [:]
        var predicateNumbers: [ExactText: Int] = [:]
        var seenQuads = Set<RDFQuad>()

        func internalTerm(_ term: RDFTerm) -> InternalTerm {
            guard term.kind == .blankNode else { return .fixed(NQuads.serializedTerm(term)) }
            let key = ExactText(term.value)
            if let number = numbers[key] { return .blankNode(number) }
            let number = labels.count
            numbers[key] = number
            labels.append(term.value)
            quadsByBlankNode.append([])
            return .blankNode(number)
        }

        func predicateNumber(_ iri: String) -> Int {
            let key = ExactText(iri)
            if let number = predicateNumbers[key] { return number }
            let number = predicateNumbers.count
            predicateNumbers[key] = number
            return number
        }

        for (index, quad) in input.enumerated() {
            guard quad.subject.kind != .literal else {
                throw LedgerError(.invalidBody, "quad \(index): a literal cannot be a subject")
            }
            guard quad.predicate.kind == .iri else {
                throw LedgerError(.invalidBody, "quad \(index): the predicate must be an IRI")
            }
            guard quad.graph?.kind != .literal else {
                throw LedgerError(.invalidBody, "quad \(index): a literal cannot name a graph")
            }
            guard seenQuads.insert(quad).inserted else { continue }
            let quadIndex = quads.count
            let internalQuad = InternalQuad(
                subject: internalTerm(quad.subject),
                predicateIRI: quad.predicate.value,
                predicateNumber: predicateNumber(quad.predicate.value),
                object: internalTerm(quad.object),
                graph: quad.graph.map(internalTerm))
            quads.append(internalQuad)
            // Section 4.4.3 step 2: each quad is listed once per distinct blank node it mentions.
            var mentioned: [Int] = []
            for case .blankNode(let number)? in [internalQuad.subject, internalQuad.object, internalQuad.graph]
            where !mentioned.contains(number) {
                mentioned.append(number)
                quadsByBlankNode[number].append(quadIndex)
            }
        }
        firstDegreeHashes = Array(repeating: nil, count: labels.count)
        firstDegreeHashNumbers = Array(repeating: nil, count: labels.count)
    }

    // MARK: Canonicalization algorithm (section 4.4.3)

    mutating func canonicalize() throws(LedgerError) -> RDFCanonicalizer.Result {
        // Step 3: group blank nodes by their first degree hash, keeping first-appearance order within a group.
        var blankNodesByHash: [String: [Int]] = [:]
        var hashNumbers: [String: Int] = [:]
        for blankNode in labels.indices {
            let hash = hashFirstDegreeQuads(blankNode)
            blankNodesByHash[hash, default: []].append(blankNode)
            if hashNumbers[hash] == nil {
                hashNumbers[hash] = hashNumbers.count
            }
            firstDegreeHashNumbers[blankNode] = hashNumbers[hash]
        }

        // Step 4: a hash shared by no other blank node identifies its node outright.
        let sortedHashes = blankNodesByHash.keys.sorted()
        for hash in sortedHashes {
            guard let group = blankNodesByHash[hash], group.count == 1 else { continue }
            canonicalIssuer.issue(group[0])
            blankNodesByHash[hash] = nil
        }

        // Step 5: the remaining groups are told apart by their n-degree neighbourhoods.
        for hash in sortedHashes {
            guard let group = blankNodesByHash[hash] else { continue }
            let pending = group.filter { !canonicalIssuer.hasIdentifier(for: $0) }
            let temporaryIssuers = pending.map { blankNode in
                var temporaryIssuer = IdentifierIssuer(prefix: "b")
                temporaryIssuer.issue(blankNode)
                return temporaryIssuer
            }
            // Fail fast: the canonical issuer does not change within this loop, so each call below will charge at
            // least what `minimumWork` predicts; when that already exceeds the budget, stop before starting.
            var predictedWork = 0
            for (blankNode, temporaryIssuer) in zip(pending, temporaryIssuers) {
                predictedWork = saturatingSum(predictedWork, minimumWork(blankNode, issuer: temporaryIssuer))
            }
            guard predictedWork <= remainingWork else { throw workBoundExceeded() }

            var hashPathList: [(hash: String, issuer: IdentifierIssuer)] = []
            for (blankNode, temporaryIssuer) in zip(pending, temporaryIssuers) {
                hashPathList.append(try hashNDegreeQuads(blankNode, issuer: temporaryIssuer, depth: 1))
            }
            // A stable sort: equal hashes mean indistinguishable nodes, and first appearance breaks the tie.
            let orderedResults = hashPathList.enumerated().sorted { left, right in
                if left.element.hash != right.element.hash {
                    return left.element.hash < right.element.hash
                }
                return left.offset < right.offset
            }
            for result in orderedResults {
                for blankNode in result.element.issuer.issuedOrder {
                    canonicalIssuer.issue(blankNode)
                }
            }
        }

        // Step 6: relabel, serialize, sort.
        var lines: [String] = []
        lines.reserveCapacity(quads.count)
        for quad in quads {
            lines.append(
                NQuads.line(
                    subject: canonicalForm(quad.subject),
                    predicate: "<" + quad.predicateIRI + ">",
                    object: canonicalForm(quad.object),
                    graph: quad.graph.map(canonicalForm)))
        }
        lines.sort(by: precedesInCodePointOrder)

        var issuedIdentifiers: [String: String] = [:]
        for blankNode in labels.indices {
            guard let identifier = canonicalIssuer.identifier(for: blankNode) else {
                preconditionFailure("every blank node receives a canonical identifier")
            }
            issuedIdentifiers[labels[blankNode]] = identifier
        }
        return RDFCanonicalizer.Result(canonicalNQuads: lines.joined(), issuedIdentifiers: issuedIdentifiers)
    }

    private func canonicalForm(_ term: InternalTerm) -> String {
        switch term {
        case .fixed(let text):
            return text
        case .blankNode(let blankNode):
            guard let identifier = canonicalIssuer.identifier(for: blankNode) else {
                preconditionFailure("every blank node receives a canonical identifier")
            }
            return "_:" + identifier
        }
    }

    // MARK: Hash First Degree Quads (section 4.6.3)

    /// Hashes the quads that mention `blankNode`, written with that node as `_:a` and every other blank node as
    /// `_:z`: a fingerprint of the node's immediate surroundings.
    private mutating func hashFirstDegreeQuads(_ blankNode: Int) -> String {
        if let cached = firstDegreeHashes[blankNode] { return cached }
        func form(_ term: InternalTerm) -> String {
            switch term {
            case .fixed(let text): text
            case .blankNode(let other): other == blankNode ? "_:a" : "_:z"
            }
        }
        var lines: [String] = []
        for quadIndex in quadsByBlankNode[blankNode] {
            let quad = quads[quadIndex]
            lines.append(
                NQuads.line(
                    subject: form(quad.subject),
                    predicate: "<" + quad.predicateIRI + ">",
                    object: form(quad.object),
                    graph: quad.graph.map(form)))
        }
        lines.sort(by: precedesInCodePointOrder)
        let hash = hashHex(lines.joined())
        firstDegreeHashes[blankNode] = hash
        return hash
    }

    // MARK: Hash Related Blank Node (section 4.7.3)

    /// `issuer` is always a temporary ("b") issuer here.
    private mutating func hashRelatedBlankNode(
        _ related: Int, quad: InternalQuad, issuer: IdentifierIssuer, position: RelatedHashKey.Position
    ) -> String {
        // The input is position, predicate and the related node's identifier; the same few combinations recur
        // across permutations, so their hashes are remembered (up to a cap, so that memory stays bounded).
        let identity: RelatedHashKey.Identity
        if let number = canonicalIssuer.issuedNumber(for: related) {
            identity = .canonical(number)
        } else if let number = issuer.issuedNumber(for: related) {
            identity = .temporary(number)
        } else {
            guard let hashNumber = firstDegreeHashNumbers[related] else {
                preconditionFailure("first degree hashes are all known before Hash N-Degree Quads runs")
            }
            identity = .firstDegree(hashNumber)
        }
        let key = RelatedHashKey(position: position, predicate: position == .graph ? -1 : quad.predicateNumber, identity: identity)
        if let known = relatedHashes[key] { return known }

        var input = position.rawValue
        if position != .graph {
            input += "<" + quad.predicateIRI + ">"
        }
        switch identity {
        case .canonical(let number): input += "_:" + canonicalIssuer.prefix + String(number)
        case .temporary(let number): input += "_:" + issuer.prefix + String(number)
        case .firstDegree: input += hashFirstDegreeQuads(related)
        }
        let hash = hashHex(input)
        if relatedHashes.count < 100_000 {
            relatedHashes[key] = hash
        }
        return hash
    }

    // MARK: Hash N-Degree Quads (section 4.8.3)

    /// Hashes `blankNode` together with the shortest (in code point order) labelling of its related blank nodes,
    /// recursing into nodes not yet labelled. Returns the hash and the issuer holding that labelling.
    private mutating func hashNDegreeQuads(
        _ blankNode: Int, issuer startIssuer: IdentifierIssuer, depth: Int
    ) throws(LedgerError) -> (hash: String, issuer: IdentifierIssuer) {
        // A long chain of look-alike blank nodes recurses once per link; refuse before the stack runs out.
        guard depth <= Self.maximumRecursionDepth else {
            throw LedgerError(
                .tooLarge,
                "RDF canonicalization recursion deeper than \(Self.maximumRecursionDepth) (a long chain of indistinguishable blank nodes)")
        }
        var issuer = startIssuer
        workDone.hashNDegreeQuadsCalls += 1
        workDone.quadsRead += quadsByBlankNode[blankNode].count
        let relatedByHash = relatedBlankNodesByHash(blankNode, issuer: issuer)
        // Every permutation of every group is visited (pruning only shortens a visit), so the whole cost is
        // known here and charged at once, with the node's quads just read.
        try spendWork(cost(of: relatedByHash, quadsRead: quadsByBlankNode[blankNode].count))

        // Step 5: for each group, find the permutation giving the smallest path.
        var dataToHash = ""
        for relatedHash in relatedByHash.keys.sorted() {
            dataToHash += relatedHash
            var chosenPath = ""
            var chosenIssuer: IdentifierIssuer?
            // Blank node numbers are distinct, so stepping through their lexicographic permutations from the
            // sorted order visits every permutation once.
            var permutation = (relatedByHash[relatedHash] ?? []).sorted()
            repeat {
                workDone.permutationsTried += 1
                if let (path, issuerCopy) = try pathForPermutation(
                    permutation, issuer: issuer, chosenPath: chosenPath, depth: depth)
                {
                    if chosenIssuer == nil || path < chosenPath {
                        chosenPath = path
                        chosenIssuer = issuerCopy
                    }
                }
            } while advanceToNextPermutation(&permutation)
            guard let chosenIssuer else { preconditionFailure("the first permutation is never skipped") }
            dataToHash += chosenPath
            issuer = chosenIssuer
        }
        return (hashHex(dataToHash), issuer)
    }

    /// Steps 5.4.1–5.4.5 for one permutation; nil when the path is already known to lose against `chosenPath`.
    private mutating func pathForPermutation(
        _ permutation: [Int], issuer: IdentifierIssuer, chosenPath: String, depth: Int
    ) throws(LedgerError) -> (path: String, issuer: IdentifierIssuer)? {
        var issuerCopy = issuer
        var path = ""
        var recursionList: [Int] = []
        func loses(_ path: String) -> Bool {
            !chosenPath.isEmpty && path.utf8.count >= chosenPath.utf8.count && chosenPath < path
        }
        for related in permutation {
            if let canonical = canonicalIssuer.identifier(for: related) {
                path += "_:" + canonical
            } else {
                if !issuerCopy.hasIdentifier(for: related) {
                    recursionList.append(related)
                }
                path += "_:" + issuerCopy.issue(related)
            }
            if loses(path) { return nil }
        }
        for related in recursionList {
            let result = try hashNDegreeQuads(related, issuer: issuerCopy, depth: depth + 1)
            path += "_:" + issuerCopy.issue(related)
            path += "<" + result.hash + ">"
            issuerCopy = result.issuer
            if loses(path) { return nil }
        }
        return (path, issuerCopy)
    }

    /// Steps 1–3 of Hash N-Degree Quads: the blank nodes related to `blankNode`, grouped by Hash Related Blank
    /// Node, each group in order of first appearance.
    private mutating func relatedBlankNodesByHash(_ blankNode: Int, issuer: IdentifierIssuer) -> [String: [Int]] {
        var relatedByHash: [String: [Int]] = [:]
        for quadIndex in quadsByBlankNode[blankNode] {
            let quad = quads[quadIndex]
            for (term, position) in [(quad.subject, .subject), (quad.object, .object), (quad.graph, .graph)]
                as [(InternalTerm?, RelatedHashKey.Position)]
            {
                guard case .blankNode(let related)? = term, related != blankNode else { continue }
                let hash = hashRelatedBlankNode(related, quad: quad, issuer: issuer, position: position)
                if !(relatedByHash[hash]?.contains(related) ?? false) {
                    relatedByHash[hash, default: []].append(related)
                }
            }
        }
        return relatedByHash
    }

    // MARK: Work bound

    /// One call, one unit per quad of the node it reads, and one per permutation tried; recursive calls charge for
    /// themselves. The quads count: a node with many (literals, or other blank nodes under few hashes) costs its
    /// reading at every call, and six look-alike nodes of 1,000 literals each, reached from every permutation of
    /// two others, took 5 s within a bound that counted calls and permutations only.
    private func cost(of relatedByHash: [String: [Int]], quadsRead: Int) -> Int {
        var total = saturatingSum(1, quadsRead)
        for group in relatedByHash.values {
            total = saturatingSum(total, factorial(group.count))
        }
        return total
    }

    /// What `hashNDegreeQuads(blankNode, issuer:)` will charge at the least, from its cheap first steps.
    private mutating func minimumWork(_ blankNode: Int, issuer: IdentifierIssuer) -> Int {
        cost(of: relatedBlankNodesByHash(blankNode, issuer: issuer), quadsRead: quadsByBlankNode[blankNode].count)
    }

    private mutating func spendWork(_ units: Int) throws(LedgerError) {
        guard units <= remainingWork else { throw workBoundExceeded() }
        remainingWork -= units
    }

    private func workBoundExceeded() -> LedgerError {
        LedgerError(
            .tooLarge,
            "RDF canonicalization exceeds its work bound (too many indistinguishable blank nodes, as in a poison graph)")
    }

    private func hashHex(_ text: String) -> String {
        switch hashAlgorithm {
        case .sha256: SHA256.hash(Array(text.utf8)).hexString
        case .sha384: SHA384.hash(Array(text.utf8)).hexString
        }
    }
}

private func factorial(_ count: Int) -> Int {
    var product = 1
    for factor in stride(from: 2, through: max(count, 1), by: 1) {
        product = saturatingProduct(product, factor)
    }
    return product
}

private func saturatingSum(_ left: Int, _ right: Int) -> Int {
    let (sum, overflow) = left.addingReportingOverflow(right)
    return overflow ? Int.max : sum
}

private func saturatingProduct(_ left: Int, _ right: Int) -> Int {
    let (product, overflow) = left.multipliedReportingOverflow(by: right)
    return overflow ? Int.max : product
}

/// Rearranges `elements` (distinct) into the next permutation in lexicographic order; false after the last one.
private func advanceToNextPermutation(_ elements: inout [Int]) -> Bool {
    guard elements.count > 1 else { return false }
    var pivot = elements.count - 2
    while pivot >= 0 && elements[pivot] >= elements[pivot + 1] {
        pivot -= 1
    }
    guard pivot >= 0 else { return false }
    var successor = elements.count - 1
    while elements[successor] <= elements[pivot] {
        successor -= 1
    }
    elements.swapAt(pivot, successor)
    elements[(pivot + 1)...].reverse()
    return true
}

/// Code point order, which RDFC-1.0 uses throughout. UTF-8 byte order is code point order, whereas Swift's
/// `String <` compares canonical equivalents. (Hashes, identifiers and paths are ASCII, where the two agree,
/// so those are compared with the faster `<`.)
private func precedesInCodePointOrder(_ left: String, _ right: String) -> Bool {
    left.utf8.lexicographicallyPrecedes(right.utf8)
}

/// What Hash Related Blank Node's input is made of; equal keys give equal inputs and so equal hashes.
private struct RelatedHashKey: Hashable {
    enum Position: String {
        case subject = "s", object = "o", graph = "g"
    }

    enum Identity: Hashable {
        /// c14nN
        case canonical(Int)
        /// bN from the temporary issuer
        case temporary(Int)
        /// No identifier yet: the blank node's first degree hash stands in (numbered, equal hashes equal numbers).
        case firstDegree(Int)
    }

    let position: Position
    /// The predicate's number, or -1 for the graph position, whose input leaves the predicate out.
    let predicate: Int
    let identity: Identity
}

/// A string key compared by code points rather than by Swift's canonical equivalence.
private struct ExactText: Hashable {
    let text: String

    init(_ text: String) {
        self.text = text
    }

    static func == (left: ExactText, right: ExactText) -> Bool {
        left.text.utf8.elementsEqual(right.text.utf8)
    }

    func hash(into hasher: inout Hasher) {
        for byte in text.utf8 {
            hasher.combine(byte)
        }
    }
}
