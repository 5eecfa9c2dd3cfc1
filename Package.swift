// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Circuito",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "circuito", targets: ["circuito"]),
        .library(name: "CircuitoCore", targets: ["CircuitoCore"]),
        .library(name: "CircuitoStorage", targets: ["CircuitoStorage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // 2.101: the subscription stream's flush barrier relies on how its async writer hands writes to the loop (Subscriptions.swift).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // C libraries from Debian (liblmdb-dev, libsodium-dev), found through pkg-config.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),

        // SHA-256's compression with the x86 SHA extensions (our own C, no library), used when the processor has them.
        .target(name: "CSHA256"),
        // glibc's malloc_trim, which Swift's Glibc module does not declare (our own C, no library).
        .target(name: "CAllocator"),
        // prctl, which Swift cannot call (it is variadic): keeping a process that opens personal data out of core dumps.
        .target(name: "CProcess"),
        // Hashing, signatures and key encodings over libsodium. No I/O.
        .target(name: "CircuitoCrypto", dependencies: ["CSodium", "CSHA256"]),
        // The pure core: JSON, canonical form, events, rules, Merkle math, checkpoints. No I/O.
        .target(name: "CircuitoCore", dependencies: ["CircuitoCrypto"]),
        // LMDB storage, the ledger directory, key files.
        .target(name: "CircuitoStorage", dependencies: ["CircuitoCore", "CircuitoCrypto", "CLMDB"]),
        // Open Badges 3.0 credentials: JSON-LD to RDF, RDFC-1.0, Data Integrity EdDSA suites. No I/O.
        .target(name: "CircuitoCredentials", dependencies: ["CircuitoCore", "CircuitoCrypto"]),
        // The socket API: JSON-RPC 2.0 over TCP and Unix sockets on SwiftNIO, group commit, subscriptions.
        .target(
            name: "CircuitoServer",
            dependencies: [
                "CircuitoCore", "CircuitoCrypto", "CircuitoStorage", "CircuitoCredentials", "CAllocator",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "circuito",
            dependencies: [
                "CircuitoCore", "CircuitoCrypto", "CircuitoStorage", "CircuitoCredentials", "CircuitoServer", "CProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // What several test targets share (a seeded generator); not a test target itself.
        .target(name: "CircuitoTestSupport", path: "Tests/CircuitoTestSupport"),
        .testTarget(name: "CircuitoCoreTests", dependencies: ["CircuitoCore", "CircuitoCrypto", "CircuitoTestSupport"]),
        .testTarget(name: "CircuitoStorageTests", dependencies: ["CircuitoStorage", "CircuitoCore", "CircuitoCrypto", "CLMDB", "CircuitoTestSupport"]),
        .testTarget(name: "CircuitoCredentialsTests", dependencies: ["CircuitoCredentials", "CircuitoCore", "CircuitoCrypto", "CircuitoTestSupport"]),
        .testTarget(
            name: "CircuitoServerTests",
            dependencies: [
                "CircuitoServer", "CircuitoStorage", "CircuitoCore", "CircuitoCrypto", "CircuitoCredentials", "CSodium", "CircuitoTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "CircuitoCLITests",
            dependencies: ["circuito", "CircuitoServer", "CircuitoStorage", "CircuitoCore", "CircuitoCrypto", "CircuitoTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
