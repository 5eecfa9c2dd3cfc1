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
    ],
    targets: [
        // C libraries from Debian (liblmdb-dev, libsodium-dev), found through pkg-config.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),

        // Hashing, signatures and key encodings over libsodium. No I/O.
        .target(name: "CircuitoCrypto", dependencies: ["CSodium"]),
        // The pure core: JSON, canonical form, events, rules, Merkle math, checkpoints. No I/O.
        .target(name: "CircuitoCore", dependencies: ["CircuitoCrypto"]),
        // LMDB storage, the ledger directory, key files.
        .target(name: "CircuitoStorage", dependencies: ["CircuitoCore", "CircuitoCrypto", "CLMDB"]),
        .executableTarget(
            name: "circuito",
            dependencies: [
                "CircuitoCore", "CircuitoCrypto", "CircuitoStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "CircuitoCoreTests", dependencies: ["CircuitoCore", "CircuitoCrypto"]),
        .testTarget(name: "CircuitoStorageTests", dependencies: ["CircuitoStorage", "CircuitoCore", "CircuitoCrypto", "CLMDB"]),
        .testTarget(
            name: "CircuitoCLITests",
            dependencies: ["circuito", "CircuitoStorage", "CircuitoCore", "CircuitoCrypto"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
