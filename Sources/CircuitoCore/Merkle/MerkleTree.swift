import CircuitoCrypto

// The ledger's Merkle tree is exactly RFC 9162 (Certificate Transparency v2) section 2.1, so that any CT or
// tlog tool can check its roots and proofs. Storage keeps only complete subtrees; everything else is derived.

/// The RFC 9162 hashes, with their domain separation prefixes.
public enum MerkleHash {
    public static let byteCount = SHA256.byteCount

    /// MTH({}) = SHA-256 of empty input.
    public static let emptyRoot: [UInt8] = SHA256.hash([UInt8]())

    /// MTH({d}) = SHA-256(0x00 ‖ d).
    public static func leaf(_ leafBytes: [UInt8]) -> [UInt8] {
        SHA256.hash(parts: [0x00], leafBytes)
    }

    /// SHA-256(0x01 ‖ left ‖ right).
    public static func node(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        SHA256.hash(parts: [0x01], left, right)
    }
}

/// A complete subtree: the hash of leaves [index·2^level, (index+1)·2^level). Level 0 holds leaf hashes.
public struct MerkleNode: Sendable, Hashable {
    public let level: Int
    public let index: UInt64
    public let hash: [UInt8]

    public init(level: Int, index: UInt64, hash: [UInt8]) {
        self.level = level
        self.index = index
        self.hash = hash
    }
}

/// Where the hashes of complete subtrees are kept (LMDB in the ledger, a dictionary in tests).
public protocol MerkleNodeSource {
    /// The hash of the complete subtree at `(level, index)`. Throws if that subtree is not stored.
    func completeSubtreeHash(level: Int, index: UInt64) throws(LedgerError) -> [UInt8]
}

/// Complete subtrees kept in memory, for tests and small trees.
public struct InMemoryMerkleNodes: MerkleNodeSource, Sendable {
    private struct Position: Hashable, Sendable {
        let level: Int
        let index: UInt64
    }

    private var hashes: [Position: [UInt8]] = [:]

    public init() {}

    public var count: Int { hashes.count }

    public mutating func store(_ nodes: [MerkleNode]) {
        for node in nodes {
            hashes[Position(level: node.level, index: node.index)] = node.hash
        }
    }

    public func completeSubtreeHash(level: Int, index: UInt64) throws(LedgerError) -> [UInt8] {
        guard let hash = hashes[Position(level: level, index: index)] else {
            throw LedgerError(.notFound, "no Merkle node at level \(level), index \(index)")
        }
        return hash
    }
}

/// The right border of the tree: one complete subtree per set bit of `size`, largest (leftmost) first.
/// This is all an appender needs to keep in memory to compute new nodes and the current root.
public struct MerkleFrontier: Sendable, Equatable {
    public private(set) var size: UInt64
    /// Hashes of the complete subtrees covering [0, size), from the largest to the smallest.
    private var subtreeHashes: [[UInt8]]

    /// The empty tree.
    public init() {
        size = 0
        subtreeHashes = []
    }

    /// Rebuilds the frontier of a tree of `size` leaves from stored nodes: one lookup per set bit of `size`.
    public init(size: UInt64, source: some MerkleNodeSource) throws(LedgerError) {
        var hashes: [[UInt8]] = []
        for level in stride(from: UInt64.bitWidth - 1, through: 0, by: -1) where (size >> level) & 1 == 1 {
            // Bit `level` set: the subtree just left of the ones already taken is complete at this level.
            let index = (size >> level) - 1
            hashes.append(try MerkleProofs.storedHash(level: level, index: index, source: source))
        }
        self.size = size
        self.subtreeHashes = hashes
    }

    /// Adds a leaf (its `MerkleHash.leaf`) and returns every complete node the append creates: the leaf node
    /// and each parent it completes, bottom up, for the caller to store.
    public mutating func append(leafHash: [UInt8]) -> [MerkleNode] {
        precondition(leafHash.count == MerkleHash.byteCount, "a leaf hash is a SHA-256 digest")
        precondition(size < UInt64.max, "a Merkle tree holds fewer than 2^64 leaves")
        var hash = leafHash
        var level = 0
        var index = size
        var created = [MerkleNode(level: 0, index: index, hash: hash)]
        // Each trailing one bit of the old size is a complete left sibling waiting for this right subtree.
        while (size >> UInt64(level)) & 1 == 1 {
            guard let left = subtreeHashes.popLast() else {
                preconditionFailure("the frontier holds one hash per set bit of its size")
            }
            hash = MerkleHash.node(left, hash)
            level += 1
            index >>= 1
            created.append(MerkleNode(level: level, index: index, hash: hash))
        }
        subtreeHashes.append(hash)
        size += 1
        return created
    }

    /// The RFC 9162 root of the current tree: the frontier folded from the right.
    public var root: [UInt8] {
        guard var hash = subtreeHashes.last else { return MerkleHash.emptyRoot }
        for left in subtreeHashes.dropLast().reversed() {
            hash = MerkleHash.node(left, hash)
        }
        return hash
    }
}

/// Roots and proofs for any tree size up to what the source holds, and their verification (RFC 9162 2.1.3, 2.1.4).
public enum MerkleProofs {
    /// MTH(D[0:treeSize]).
    public static func root(treeSize: UInt64, source: some MerkleNodeSource) throws(LedgerError) -> [UInt8] {
        guard treeSize > 0 else { return MerkleHash.emptyRoot }
        return try subtreeHash(start: 0, end: treeSize, source: source)
    }

    /// PATH(leafIndex, D[0:treeSize]), bottom up (RFC 9162 2.1.3.1).
    public static func inclusionProof(
        leafIndex: UInt64, treeSize: UInt64, source: some MerkleNodeSource
    ) throws(LedgerError) -> [[UInt8]] {
        guard leafIndex < treeSize else {
            throw LedgerError(.invalidRange, "leaf index \(leafIndex) is not in a tree of size \(treeSize)")
        }
        // Walk down from the root, keeping the sibling at each split; PATH lists them bottom up.
        var topDown: [[UInt8]] = []
        var start: UInt64 = 0
        var end = treeSize
        while end - start > 1 {
            let split = start + largestPowerOfTwo(below: end - start)
            if leafIndex < split {
                topDown.append(try subtreeHash(start: split, end: end, source: source))
                end = split
            } else {
                topDown.append(try subtreeHash(start: start, end: split, source: source))
                start = split
            }
        }
        return topDown.reversed()
    }

    /// PROOF(firstSize, D[0:secondSize]) (RFC 9162 2.1.4.1). Empty when firstSize is 0 or equals secondSize.
    public static func consistencyProof(
        firstSize: UInt64, secondSize: UInt64, source: some MerkleNodeSource
    ) throws(LedgerError) -> [[UInt8]] {
        guard firstSize <= secondSize else {
            throw LedgerError(.invalidRange, "tree size \(firstSize) is larger than tree size \(secondSize)")
        }
        var proof: [[UInt8]] = []
        for subtree in consistencyProofSubtrees(firstSize: firstSize, secondSize: secondSize).reversed() {
            proof.append(try subtreeHash(start: subtree.start, end: subtree.end, source: source))
        }
        return proof
    }

    /// How many hashes PROOF(firstSize, D[0:secondSize]) holds, so that a verifier refuses a proof of any other
    /// length before reading its hashes. At most ⌈log2 secondSize⌉ + 1 (one per split on the way down, and the last
    /// subtree's); nil when firstSize > secondSize.
    public static func consistencyProofLength(firstSize: UInt64, secondSize: UInt64) -> Int? {
        guard firstSize <= secondSize else { return nil }
        return consistencyProofSubtrees(firstSize: firstSize, secondSize: secondSize).count
    }

    /// The subtrees D[start:end] whose hashes PROOF(firstSize, D[0:secondSize]) holds, top down (the proof lists
    /// them bottom up): SUBPROOF(m, D[start:end], wholeFirstTree) unrolled, one subtree kept per split. For
    /// firstSize ≤ secondSize; none when firstSize is 0 or equals secondSize.
    private static func consistencyProofSubtrees(firstSize: UInt64, secondSize: UInt64) -> [(start: UInt64, end: UInt64)] {
        precondition(firstSize <= secondSize, "consistency proof from \(firstSize) to \(secondSize)")
        guard firstSize > 0, firstSize < secondSize else { return [] }
        var topDown: [(start: UInt64, end: UInt64)] = []
        var start: UInt64 = 0
        var end = secondSize
        // True while D[start:end] starts at 0, so its first `firstSize` leaves are the whole first tree,
        // whose root the verifier already has.
        var wholeFirstTree = true
        // Each turn halves the range at least (the split is its largest power of two below): at most 64 turns.
        while firstSize != end {
            let split = start + largestPowerOfTwo(below: end - start)
            if firstSize <= split {
                topDown.append((split, end))
                end = split
            } else {
                topDown.append((start, split))
                start = split
                wholeFirstTree = false
            }
        }
        if !wholeFirstTree { topDown.append((start, end)) }
        return topDown
    }

    /// RFC 9162 2.1.3.2. False for any malformed input (wrong hash lengths, wrong proof length, bad index).
    public static func verifyInclusion(
        leafHash: [UInt8], leafIndex: UInt64, treeSize: UInt64, proof: [[UInt8]], root: [UInt8]
    ) -> Bool {
        guard leafIndex < treeSize, leafHash.count == MerkleHash.byteCount, root.count == MerkleHash.byteCount,
            proof.allSatisfy({ $0.count == MerkleHash.byteCount })
        else { return false }
        var firstNode = leafIndex
        var secondNode = treeSize - 1
        var hash = leafHash
        for sibling in proof {
            if secondNode == 0 { return false }
            if firstNode & 1 == 1 || firstNode == secondNode {
                hash = MerkleHash.node(sibling, hash)
                // A right-edge node has no right sibling at these levels: climb past them.
                while firstNode & 1 == 0 && firstNode != 0 {
                    firstNode >>= 1
                    secondNode >>= 1
                }
            } else {
                hash = MerkleHash.node(hash, sibling)
            }
            firstNode >>= 1
            secondNode >>= 1
        }
        return secondNode == 0 && hash == root
    }

    /// RFC 9162 2.1.4.2, plus the trivial cases the RFC leaves out: equal sizes need an empty proof and equal
    /// roots; a first size of 0 needs an empty proof and the empty tree's root. False for any malformed input.
    public static func verifyConsistency(
        firstSize: UInt64, secondSize: UInt64, firstRoot: [UInt8], secondRoot: [UInt8], proof: [[UInt8]]
    ) -> Bool {
        guard firstSize <= secondSize, firstRoot.count == MerkleHash.byteCount,
            secondRoot.count == MerkleHash.byteCount, proof.allSatisfy({ $0.count == MerkleHash.byteCount })
        else { return false }
        if firstSize == 0 { return proof.isEmpty && firstRoot == MerkleHash.emptyRoot }
        if firstSize == secondSize { return proof.isEmpty && firstRoot == secondRoot }
        guard !proof.isEmpty else { return false }

        var path = proof
        // A power-of-two first tree is a complete subtree of the second: its root is the proof's first node.
        if firstSize & (firstSize - 1) == 0 { path.insert(firstRoot, at: 0) }
        var firstNode = firstSize - 1
        var secondNode = secondSize - 1
        while firstNode & 1 == 1 {
            firstNode >>= 1
            secondNode >>= 1
        }
        var firstHash = path[0]
        var secondHash = path[0]
        for node in path.dropFirst() {
            if secondNode == 0 { return false }
            if firstNode & 1 == 1 || firstNode == secondNode {
                firstHash = MerkleHash.node(node, firstHash)
                secondHash = MerkleHash.node(node, secondHash)
                while firstNode & 1 == 0 && firstNode != 0 {
                    firstNode >>= 1
                    secondNode >>= 1
                }
            } else {
                secondHash = MerkleHash.node(secondHash, node)
            }
            firstNode >>= 1
            secondNode >>= 1
        }
        return firstHash == firstRoot && secondHash == secondRoot && secondNode == 0
    }

    // MARK: Subtree hashes

    /// MTH(D[start:end]). In every proof above, a range is either a complete aligned subtree (one lookup) or a
    /// suffix of the tree, which splits into a complete subtree and a shorter suffix: at most 64 lookups, and
    /// each proof needs at most one such suffix, so a proof costs O(log n) lookups without a memo.
    private static func subtreeHash(
        start: UInt64, end: UInt64, source: some MerkleNodeSource
    ) throws(LedgerError) -> [UInt8] {
        let count = end - start
        precondition(count > 0, "a Merkle subtree has at least one leaf")
        if count & (count - 1) == 0 && start % count == 0 {
            let level = count.trailingZeroBitCount
            return try storedHash(level: level, index: start >> UInt64(level), source: source)
        }
        let split = start + largestPowerOfTwo(below: count)
        let left = try subtreeHash(start: start, end: split, source: source)
        let right = try subtreeHash(start: split, end: end, source: source)
        return MerkleHash.node(left, right)
    }

    /// A stored node, checked to be a hash at all: storage handing back anything else is corrupt.
    fileprivate static func storedHash(
        level: Int, index: UInt64, source: some MerkleNodeSource
    ) throws(LedgerError) -> [UInt8] {
        let hash = try source.completeSubtreeHash(level: level, index: index)
        guard hash.count == MerkleHash.byteCount else {
            throw LedgerError(
                .integrity, "Merkle node at level \(level), index \(index) has \(hash.count) bytes, not 32")
        }
        return hash
    }

    /// The largest power of two strictly below `count` (RFC 9162's split point k); `count` must be at least 2.
    private static func largestPowerOfTwo(below count: UInt64) -> UInt64 {
        precondition(count >= 2, "only a range of two or more leaves splits")
        return 1 << UInt64(UInt64.bitWidth - 1 - (count - 1).leadingZeroBitCount)
    }
}
