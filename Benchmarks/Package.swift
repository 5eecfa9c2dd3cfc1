// swift-tools-version:6.1
// Micro-benchmarks (ordo-one/benchmark). A package of its own so that building and testing Circuito does not build
// the benchmark tooling. Run: cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "CircuitoBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Circuito", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "CircuitoBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CircuitoCore", package: "Circuito"),
                .product(name: "CircuitoStorage", package: "Circuito"),
            ],
            path: "Benchmarks/CircuitoBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)
