import CircuitoCore
import CircuitoCrypto
import Testing

@Suite struct MerkleTreeTests {
    // MARK: Published reference data

    // RFC 6962 reference leaves and tree heads, from transparency-dev/merkle testonly/constants.go (the same values
    // as google/certificate-transparency's merkle_tree_test). Index = tree size.
    static let referenceLeaves = [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
    ].map(bytes(hex:))

    static let referenceRoots = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]

    // Complete subtree hashes of the 8-leaf reference tree, by level then index (testonly/constants.go NodeHashes).
    static let referenceNodes = [
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        [
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        [
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ]

    // Published proofs over the reference leaves (transparency-dev/merkle proof/verify_test.go; its leaf numbers
    // are 1-based, these indices are 0-based).
    static let referenceInclusionProofs: [(leafIndex: UInt64, treeSize: UInt64, proof: [String])] = [
        (0, 8, [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ]),
        (5, 8, [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ]),
        (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (1, 5, [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ]),
        (0, 1, []),
    ]

    static let referenceConsistencyProofs: [(firstSize: UInt64, secondSize: UInt64, proof: [String])] = [
        (1, 1, []),
        (1, 8, [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ]),
        (6, 8, [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ]),
        (2, 5, [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ]),
        (6, 7, [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ]),
    ]

    // MARK: Independent reference implementation

    /// RFC 9162 2.1 written out directly over a list of entries: no node source, no frontier, no shared code.
    enum Reference {
        static func mth(_ entries: [[UInt8]]) -> [UInt8] {
            switch entries.count {
            case 0: return SHA256.hash([UInt8]())
            case 1: return SHA256.hash([0x00] + entries[0])
            default:
                let k = split(entries.count)
                return SHA256.hash([0x01] + mth(Array(entries[..<k])) + mth(Array(entries[k...])))
            }
        }

        static func path(_ m: Int, _ entries: [[UInt8]]) -> [[UInt8]] {
            let n = entries.count
            if n == 1 { return [] }
            let k = split(n)
            if m < k { return path(m, Array(entries[..<k])) + [mth(Array(entries[k...]))] }
            return path(m - k, Array(entries[k...])) + [mth(Array(entries[..<k]))]
        }

        static func proof(_ m: Int, _ entries: [[UInt8]]) -> [[UInt8]] {
            subproof(m, entries, true)
        }

        static func subproof(_ m: Int, _ entries: [[UInt8]], _ wholeTree: Bool) -> [[UInt8]] {
            let n = entries.count
            if m == n { return wholeTree ? [] : [mth(entries)] }
            let k = split(n)
            if m <= k { return subproof(m, Array(entries[..<k]), wholeTree) + [mth(Array(entries[k...]))] }
            return subproof(m - k, Array(entries[k...]), false) + [mth(Array(entries[..<k]))]
        }

        /// The largest power of two smaller than n.
        static func split(_ n: Int) -> Int {
            var k = 1
            while k * 2 < n { k *= 2 }
            return k
        }
    }

    // MARK: Helpers

    static func bytes(hex: String) -> [UInt8] {
        let digits = Array(hex.utf8).map { character -> UInt8 in
            character <= 0x39 ? character - 0x30 : character - 0x61 + 10
        }
        return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// A tree of `entries`, every node it created stored, and the frontier after each size.
    static func build(_ entries: [[UInt8]]) -> (nodes: InMemoryMerkleNodes, frontiers: [MerkleFrontier]) {
        var nodes = InMemoryMerkleNodes()
        var frontier = MerkleFrontier()
        var frontiers = [frontier]
        for entry in entries {
            nodes.store(frontier.append(leafHash: MerkleHash.leaf(entry)))
            frontiers.append(frontier)
        }
        return (nodes, frontiers)
    }

    /// 64 distinct entries of varying length.
    static let manyEntries: [[UInt8]] = (0..<64).map { index in
        [UInt8](repeating: UInt8(index), count: index % 5) + [UInt8(index), UInt8(truncatingIfNeeded: index &* 7)]
    }

    static func flipped(_ proof: [[UInt8]], element: Int, byte: Int = 0) -> [[UInt8]] {
        var copy = proof
        copy[element][byte] ^= 0x08
        return copy
    }

    // MARK: Published values

    @Test func hashesAndEmptyRoot() {
        #expect(Self.hex(MerkleHash.emptyRoot) == Self.referenceRoots[0])
        #expect(Self.hex(MerkleHash.leaf([])) == Self.referenceRoots[1])
        #expect(MerkleFrontier().root == MerkleHash.emptyRoot)
        #expect(MerkleFrontier().size == 0)
    }

    @Test func referenceRootsForEveryPrefix() throws {
        let (nodes, frontiers) = Self.build(Self.referenceLeaves)
        for size in 0...Self.referenceLeaves.count {
            let expected = Self.referenceRoots[size]
            #expect(Self.hex(frontiers[size].root) == expected, "frontier root, size \(size)")
            #expect(Self.hex(try MerkleProofs.root(treeSize: UInt64(size), source: nodes)) == expected)
            // The reference implementation itself agrees with the published values.
            #expect(Self.hex(Reference.mth(Array(Self.referenceLeaves[..<size]))) == expected)
        }
    }

    @Test func appendCreatesThePublishedNodes() throws {
        var frontier = MerkleFrontier()
        var created: [MerkleNode] = []
        for (index, leaf) in Self.referenceLeaves.enumerated() {
            let nodes = frontier.append(leafHash: MerkleHash.leaf(leaf))
            // The leaf plus one parent per trailing one bit of the old size.
            #expect(nodes.count == 1 + (~index).trailingZeroBitCount)
            created += nodes
        }
        let expected = Self.referenceNodes.enumerated().flatMap { level, hashes in
            hashes.enumerated().map { index, hash in
                MerkleNode(level: level, index: UInt64(index), hash: Self.bytes(hex: hash))
            }
        }
        #expect(Set(created) == Set(expected))
        #expect(created.count == expected.count)
    }

    @Test func publishedInclusionProofs() throws {
        let (nodes, _) = Self.build(Self.referenceLeaves)
        for vector in Self.referenceInclusionProofs {
            let proof = try MerkleProofs.inclusionProof(
                leafIndex: vector.leafIndex, treeSize: vector.treeSize, source: nodes)
            #expect(proof.map(Self.hex) == vector.proof, "leaf \(vector.leafIndex) of \(vector.treeSize)")
            #expect(
                MerkleProofs.verifyInclusion(
                    leafHash: MerkleHash.leaf(Self.referenceLeaves[Int(vector.leafIndex)]),
                    leafIndex: vector.leafIndex, treeSize: vector.treeSize, proof: vector.proof.map(Self.bytes),
                    root: Self.bytes(hex: Self.referenceRoots[Int(vector.treeSize)])))
        }
    }

    @Test func publishedConsistencyProofs() throws {
        let (nodes, _) = Self.build(Self.referenceLeaves)
        for vector in Self.referenceConsistencyProofs {
            let proof = try MerkleProofs.consistencyProof(
                firstSize: vector.firstSize, secondSize: vector.secondSize, source: nodes)
            #expect(proof.map(Self.hex) == vector.proof, "\(vector.firstSize) to \(vector.secondSize)")
            #expect(
                MerkleProofs.verifyConsistency(
                    firstSize: vector.firstSize, secondSize: vector.secondSize,
                    firstRoot: Self.bytes(hex: Self.referenceRoots[Int(vector.firstSize)]),
                    secondRoot: Self.bytes(hex: Self.referenceRoots[Int(vector.secondSize)]),
                    proof: vector.proof.map(Self.bytes)))
        }
    }

    // MARK: Every shape up to 64 leaves, against the reference implementation

    @Test func rootsAndFrontiersMatchTheReference() throws {
        let (nodes, frontiers) = Self.build(Self.manyEntries)
        for size in 0...Self.manyEntries.count {
            let expected = Reference.mth(Array(Self.manyEntries[..<size]))
            #expect(frontiers[size].root == expected, "size \(size)")
            #expect(frontiers[size].size == UInt64(size))
            #expect(try MerkleProofs.root(treeSize: UInt64(size), source: nodes) == expected)
            let rebuilt = try MerkleFrontier(size: UInt64(size), source: nodes)
            #expect(rebuilt == frontiers[size], "rebuilt frontier, size \(size)")
            #expect(rebuilt.root == expected)
        }
    }

    @Test func rebuiltFrontierKeepsAppending() throws {
        let (nodes, frontiers) = Self.build(Self.manyEntries)
        for size in 0..<Self.manyEntries.count {
            var rebuilt = try MerkleFrontier(size: UInt64(size), source: nodes)
            var appended = frontiers[size]
            let leafHash = MerkleHash.leaf(Self.manyEntries[size])
            #expect(rebuilt.append(leafHash: leafHash) == appended.append(leafHash: leafHash))
            #expect(rebuilt == frontiers[size + 1])
        }
    }

    @Test func inclusionProofsMatchTheReferenceAndOnlyTheyVerify() throws {
        let (nodes, _) = Self.build(Self.manyEntries)
        let roots = (0...Self.manyEntries.count).map { Reference.mth(Array(Self.manyEntries[..<$0])) }
        for n in 1...Self.manyEntries.count {
            let entries = Array(Self.manyEntries[..<n])
            let size = UInt64(n)
            for m in 0..<n {
                let index = UInt64(m)
                let proof = try MerkleProofs.inclusionProof(leafIndex: index, treeSize: size, source: nodes)
                #expect(proof == Reference.path(m, entries), "leaf \(m) of \(n)")
                let leafHash = MerkleHash.leaf(entries[m])
                func verifies(
                    leafHash: [UInt8] = leafHash, index: UInt64 = index, proof: [[UInt8]] = proof,
                    root: [UInt8] = roots[n]
                ) -> Bool {
                    MerkleProofs.verifyInclusion(
                        leafHash: leafHash, leafIndex: index, treeSize: size, proof: proof, root: root)
                }
                #expect(verifies())

                var refused: [Bool] = []
                for element in proof.indices {
                    refused.append(!verifies(proof: Self.flipped(proof, element: element)))
                    refused.append(!verifies(proof: Self.flipped(proof, element: element, byte: 31)))
                }
                let wrongIndices = [index &+ 1, index &- 1, index ^ 2, index ^ 1, size, UInt64.max]
                for wrongIndex in wrongIndices where wrongIndex != index {
                    refused.append(!verifies(index: wrongIndex))
                }
                if !proof.isEmpty {
                    refused.append(!verifies(proof: Array(proof.dropLast())))
                    refused.append(!verifies(proof: Array(proof.dropFirst())))
                }
                refused.append(!verifies(proof: proof + [roots[n]]))
                refused.append(!verifies(proof: proof + [MerkleHash.emptyRoot]))
                refused.append(!verifies(proof: [leafHash] + proof))
                refused.append(!verifies(proof: proof + [[]]))
                refused.append(!verifies(root: roots[n - 1]))
                refused.append(!verifies(root: Self.flipped([roots[n]], element: 0)[0]))
                refused.append(!verifies(leafHash: MerkleHash.leaf(entries[m] + [0])))
                refused.append(!verifies(leafHash: entries[m]))
                // A proof for this tree is too short for a tree twice the size: sn must reach 0 exactly.
                refused.append(
                    !MerkleProofs.verifyInclusion(
                        leafHash: leafHash, leafIndex: index, treeSize: 2 * size, proof: proof, root: roots[n]))
                #expect(refused.allSatisfy { $0 }, "corrupted inclusion proof verified: leaf \(m) of \(n)")
            }
        }
    }

    @Test func consistencyProofsMatchTheReferenceAndOnlyTheyVerify() throws {
        let (nodes, _) = Self.build(Self.manyEntries)
        let roots = (0...Self.manyEntries.count).map { Reference.mth(Array(Self.manyEntries[..<$0])) }
        for n in 1...Self.manyEntries.count {
            let entries = Array(Self.manyEntries[..<n])
            for m in 1...n {
                let proof = try MerkleProofs.consistencyProof(
                    firstSize: UInt64(m), secondSize: UInt64(n), source: nodes)
                #expect(proof == Reference.proof(m, entries), "\(m) to \(n)")
                func verifies(
                    proof: [[UInt8]] = proof, firstRoot: [UInt8] = roots[m], secondRoot: [UInt8] = roots[n]
                ) -> Bool {
                    MerkleProofs.verifyConsistency(
                        firstSize: UInt64(m), secondSize: UInt64(n), firstRoot: firstRoot, secondRoot: secondRoot,
                        proof: proof)
                }
                #expect(verifies())

                var refused: [Bool] = []
                for element in proof.indices {
                    refused.append(!verifies(proof: Self.flipped(proof, element: element)))
                    refused.append(!verifies(proof: Self.flipped(proof, element: element, byte: 17)))
                }
                if !proof.isEmpty {
                    refused.append(!verifies(proof: Array(proof.dropLast())))
                    refused.append(!verifies(proof: Array(proof.dropFirst())))
                    refused.append(!verifies(proof: [proof[0]] + proof))
                }
                refused.append(!verifies(proof: proof + [roots[m]]))
                refused.append(!verifies(proof: proof + [roots[n]]))
                refused.append(!verifies(proof: [roots[m]] + proof))
                refused.append(!verifies(proof: proof + [[]]))
                refused.append(!verifies(firstRoot: Self.flipped([roots[m]], element: 0)[0]))
                refused.append(!verifies(secondRoot: Self.flipped([roots[n]], element: 0)[0]))
                refused.append(!verifies(firstRoot: roots[m - 1]))
                if m < n {
                    refused.append(!verifies(firstRoot: roots[n], secondRoot: roots[m]))
                    refused.append(!verifies(secondRoot: roots[n - 1]))
                }
                refused.append(
                    !MerkleProofs.verifyConsistency(
                        firstSize: UInt64(m), secondSize: UInt64(2 * n), firstRoot: roots[m], secondRoot: roots[n],
                        proof: proof))
                #expect(refused.allSatisfy { $0 }, "corrupted consistency proof verified: \(m) to \(n)")
            }
        }
    }

    @Test("a consistency proof's length follows from its two sizes alone: the count a follower checks before it decodes a hash is the proof's, and at most ⌈log2 n⌉ + 1")
    func consistencyProofLengthIsTheProofs() throws {
        let (nodes, _) = Self.build(Self.manyEntries)
        for n in 0...Self.manyEntries.count {
            for m in 0...n {
                let proof = try MerkleProofs.consistencyProof(firstSize: UInt64(m), secondSize: UInt64(n), source: nodes)
                let length = MerkleProofs.consistencyProofLength(firstSize: UInt64(m), secondSize: UInt64(n))
                #expect(length == proof.count, "\(m) to \(n)")
                // ⌈log2 n⌉ for n ≥ 1: the bit width of n − 1.
                let bound = n <= 1 ? 1 : UInt64.bitWidth - UInt64(n - 1).leadingZeroBitCount + 1
                #expect((length ?? .max) <= bound, "\(m) to \(n): \(length ?? -1) hashes")
            }
        }
        #expect(MerkleProofs.consistencyProofLength(firstSize: 6, secondSize: 5) == nil)
        // At the top of the range the walk still ends, within ⌈log2 (2^64 − 1)⌉ + 1 = 65.
        for (m, n) in [(UInt64(1), UInt64.max), (.max - 1, .max), (1 << 63 + 1, .max), (3, 1 << 63 + 1)] {
            let length = MerkleProofs.consistencyProofLength(firstSize: m, secondSize: n) ?? 0
            #expect(length > 0 && length <= 65, "\(m) to \(n): \(length) hashes")
        }
    }

    @Test("an inclusion proof longer than its tree's path is refused, even when the hashes past the path lead to the root given: the root of a larger tree that holds the smaller one as a right subtree")
    func inclusionProofPastThePathIsRefused() throws {
        let (nodes, _) = Self.build(Self.manyEntries)
        let other = MerkleHash.leaf([0xee])
        for n in 1...16 {
            let size = UInt64(n)
            let root = try MerkleProofs.root(treeSize: size, source: nodes)
            for m in 0..<n {
                let index = UInt64(m)
                let leafHash = MerkleHash.leaf(Self.manyEntries[m])
                let proof = try MerkleProofs.inclusionProof(leafIndex: index, treeSize: size, source: nodes)
                // Once the path reaches the root, a further hash would make the root of a tree in which this one is
                // the right half: a claim about another tree, not about this one at this size.
                #expect(
                    !MerkleProofs.verifyInclusion(
                        leafHash: leafHash, leafIndex: index, treeSize: size, proof: proof + [other],
                        root: MerkleHash.node(other, root)), "leaf \(m) of \(n)")
            }
        }
    }

    @Test("a consistency proof longer than its two sizes give is refused, even when the hashes past it lead to both roots given: those of larger trees holding these as right subtrees")
    func consistencyProofPastItsSizesIsRefused() throws {
        let (nodes, _) = Self.build(Self.manyEntries)
        let other = MerkleHash.leaf([0xee])
        for n in 2...16 {
            let secondRoot = try MerkleProofs.root(treeSize: UInt64(n), source: nodes)
            for m in 1..<n {
                let firstRoot = try MerkleProofs.root(treeSize: UInt64(m), source: nodes)
                let proof = try MerkleProofs.consistencyProof(firstSize: UInt64(m), secondSize: UInt64(n), source: nodes)
                #expect(
                    !MerkleProofs.verifyConsistency(
                        firstSize: UInt64(m), secondSize: UInt64(n), firstRoot: MerkleHash.node(other, firstRoot),
                        secondRoot: MerkleHash.node(other, secondRoot), proof: proof + [other]), "\(m) to \(n)")
            }
        }
    }

    // MARK: Arguments and hostile input

    @Test func badArgumentsAreRefused() throws {
        let (nodes, _) = Self.build(Self.manyEntries)
        let leafBeyond = #expect(throws: LedgerError.self) {
            try MerkleProofs.inclusionProof(leafIndex: 5, treeSize: 5, source: nodes)
        }
        #expect(leafBeyond?.code == .invalidRange)
        let emptyTree = #expect(throws: LedgerError.self) {
            try MerkleProofs.inclusionProof(leafIndex: 0, treeSize: 0, source: nodes)
        }
        #expect(emptyTree?.code == .invalidRange)
        let backwards = #expect(throws: LedgerError.self) {
            try MerkleProofs.consistencyProof(firstSize: 6, secondSize: 5, source: nodes)
        }
        #expect(backwards?.code == .invalidRange)
        #expect(try MerkleProofs.consistencyProof(firstSize: 0, secondSize: 5, source: nodes) == [])
        #expect(try MerkleProofs.consistencyProof(firstSize: 0, secondSize: 0, source: nodes) == [])
        #expect(try MerkleProofs.consistencyProof(firstSize: 7, secondSize: 7, source: nodes) == [])
        #expect(try MerkleProofs.root(treeSize: 0, source: nodes) == MerkleHash.emptyRoot)

        // A size beyond what is stored: the source's refusal comes through, nothing traps.
        #expect(throws: LedgerError.self) { try MerkleProofs.root(treeSize: 65, source: nodes) }
        #expect(throws: LedgerError.self) {
            try MerkleProofs.inclusionProof(leafIndex: 3, treeSize: 100, source: nodes)
        }
        #expect(throws: LedgerError.self) { try MerkleFrontier(size: 1000, source: nodes) }
    }

    @Test func aSourceReturningAnImpossibleHashIsAnIntegrityFailure() {
        struct ShortHashes: MerkleNodeSource {
            func completeSubtreeHash(level: Int, index: UInt64) throws(LedgerError) -> [UInt8] {
                [UInt8](repeating: 1, count: 31)
            }
        }
        let root = #expect(throws: LedgerError.self) { try MerkleProofs.root(treeSize: 5, source: ShortHashes()) }
        #expect(root?.code == .integrity)
        let frontier = #expect(throws: LedgerError.self) { try MerkleFrontier(size: 5, source: ShortHashes()) }
        #expect(frontier?.code == .integrity)
    }

    @Test func verificationRefusesTrivialAndMalformedInput() {
        let hash = MerkleHash.leaf([1])
        let other = MerkleHash.leaf([2])
        let empty = MerkleHash.emptyRoot
        // Inclusion: no leaf in an empty tree, indices out of range, wrong lengths.
        #expect(!MerkleProofs.verifyInclusion(leafHash: hash, leafIndex: 0, treeSize: 0, proof: [], root: hash))
        #expect(!MerkleProofs.verifyInclusion(leafHash: hash, leafIndex: 1, treeSize: 1, proof: [], root: hash))
        #expect(MerkleProofs.verifyInclusion(leafHash: hash, leafIndex: 0, treeSize: 1, proof: [], root: hash))
        #expect(!MerkleProofs.verifyInclusion(leafHash: hash, leafIndex: 0, treeSize: 1, proof: [], root: other))
        #expect(!MerkleProofs.verifyInclusion(leafHash: [], leafIndex: 0, treeSize: 1, proof: [], root: []))
        #expect(!MerkleProofs.verifyInclusion(leafHash: hash, leafIndex: 0, treeSize: 1, proof: [hash], root: hash))
        #expect(
            !MerkleProofs.verifyInclusion(
                leafHash: hash, leafIndex: UInt64.max - 1, treeSize: UInt64.max,
                proof: Array(repeating: other, count: 200), root: hash))
        #expect(
            !MerkleProofs.verifyInclusion(
                leafHash: hash, leafIndex: UInt64.max - 1, treeSize: UInt64.max, proof: [], root: hash))

        // Consistency: the sizes that are always consistent still need the right roots and an empty proof.
        func consistent(
            _ first: UInt64, _ second: UInt64, _ firstRoot: [UInt8], _ secondRoot: [UInt8], _ proof: [[UInt8]]
        ) -> Bool {
            MerkleProofs.verifyConsistency(
                firstSize: first, secondSize: second, firstRoot: firstRoot, secondRoot: secondRoot, proof: proof)
        }
        #expect(consistent(0, 0, empty, empty, []))
        #expect(consistent(0, 9, empty, hash, []))
        #expect(!consistent(0, 9, hash, hash, []))
        #expect(!consistent(0, 9, empty, hash, [hash]))
        #expect(consistent(4, 4, hash, hash, []))
        #expect(!consistent(4, 4, hash, other, []))
        #expect(!consistent(4, 4, hash, hash, [hash]))
        #expect(!consistent(2, 1, hash, hash, []))
        #expect(!consistent(1, 2, hash, other, []))
        #expect(!consistent(1, 2, [], other, [hash]))
        #expect(!consistent(1, 2, hash, other, [Array(hash.dropLast())]))
        #expect(!consistent(UInt64.max - 1, UInt64.max, hash, other, Array(repeating: other, count: 200)))
        #expect(!consistent(1 << 63, UInt64.max, hash, other, [other]))
    }

    // MARK: Cost

    /// Counts lookups; hashes are synthetic (distinct per position), as only the access pattern matters here.
    final class CountingSource: MerkleNodeSource {
        var lookups = 0

        func completeSubtreeHash(level: Int, index: UInt64) throws(LedgerError) -> [UInt8] {
            lookups += 1
            return [UInt8(level)] + withUnsafeBytes(of: index.bigEndian) { Array($0) }
                + [UInt8](repeating: 0xab, count: 23)
        }
    }

    @Test func proofsCostLogarithmicLookups() throws {
        let sizes: [UInt64] = [
            1_000_000, 999_999, 1 << 20, (1 << 20) - 1, (1 << 19) + 1, 3, 2, 1, 1 << 63, (1 << 63) + 1, UInt64.max,
        ]
        for size in sizes {
            // At most two lookups per level: one sibling per split, plus one right-edge suffix's parts.
            let levels = UInt64.bitWidth - size.leadingZeroBitCount
            let bound = min(2 * levels + 2, 4 * 64)
            let source = CountingSource()

            _ = try MerkleProofs.root(treeSize: size, source: source)
            #expect(source.lookups <= levels, "root of \(size)")

            source.lookups = 0
            _ = try MerkleFrontier(size: size, source: source)
            #expect(source.lookups == size.nonzeroBitCount, "frontier of \(size)")

            for index in [0, 1, size / 3, size / 2, size &- 2, size - 1] where index < size {
                source.lookups = 0
                _ = try MerkleProofs.inclusionProof(leafIndex: index, treeSize: size, source: source)
                #expect(source.lookups <= bound, "inclusion of \(index) in \(size): \(source.lookups) lookups")
            }
            let firstSizes = [1, 2, 3, size / 3, size / 2 + 1, size - 1, size]
            for firstSize in firstSizes where firstSize >= 1 && firstSize <= size {
                source.lookups = 0
                _ = try MerkleProofs.consistencyProof(firstSize: firstSize, secondSize: size, source: source)
                #expect(source.lookups <= bound, "consistency \(firstSize) to \(size): \(source.lookups) lookups")
            }
        }
    }

    @Test func frontierWorksAtTheTopOfTheRange() throws {
        let source = CountingSource()
        var frontier = try MerkleFrontier(size: (1 << 63) - 1, source: source)
        let created = frontier.append(leafHash: MerkleHash.leaf([]))
        // The new leaf completes a subtree at every level up to 2^63 leaves.
        #expect(created.count == 64)
        #expect(created.last?.level == 63 && created.last?.index == 0)
        #expect(frontier.size == 1 << 63)

        var last = try MerkleFrontier(size: UInt64.max - 1, source: source)
        #expect(last.append(leafHash: MerkleHash.leaf([])).count == 1)
        #expect(last.size == UInt64.max)
        #expect(last.root.count == 32)
    }
}

