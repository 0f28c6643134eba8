// swift-tools-version:6.1
// Layers (dependencies point down only): see README.md and ../shared/DESIGN.md.
import PackageDescription

let vectorized: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]

let package = Package(
    name: "stagebeam",
    platforms: [.macOS(.v14)],
    products: [
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // C system libraries: module maps only; nothing above these imports C.
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        // Wire protocol (protobuf, generated code committed) and ZeroMQ transport.
        .target(
            name: "Wire", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Generated/stagebeam.proto.sha256"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .target(name: "Transport", dependencies: ["CZeroMQ"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "Wire"]),
        // Numeric code is compiled for x86-64 with AVX2 and FMA (DESIGN.md's machine kind); without it
        // Swift lowers SIMD8 fused multiply-adds to scalar library calls.
        .target(name: "Kernels", swiftSettings: vectorized),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .target(name: "Models", dependencies: ["Kernels", "ModelFormats"], swiftSettings: vectorized),
        .testTarget(name: "ModelsTests", dependencies: ["Models"]),
        .target(name: "ModelFormats"),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats"]),
        // tokenizer.json byte-level BPE, streaming decode, chat templates: depends on Foundation only.
        .target(name: "Tokenization"),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization"]),
        // Stage-level beam search, engine-agnostic: depends on Foundation only.
        .target(name: "Search"),
        .testTarget(name: "SearchTests", dependencies: ["Search"]),
    ]
)
