// swift-tools-version:6.1
// Layers (dependencies point down only): see README.md and ../shared/DESIGN.md.
import PackageDescription

// Numeric code is optimized even in debug builds, so `swift test` runs real checkpoints at real speed.
// On x86-64 the Swift kernels are compiled for AVX2 + FMA + F16C (Haswell and later, every machine
// this runs on: Zen 3, Zen 4) — without it Swift lowers SIMD8 fused multiply-adds to scalar library
// calls. The quantized kernels are C (CKernels) with AVX2 and AVX-512 VNNI variants picked at run
// time; CKernels also refuses to start, with a message, on an x86-64 CPU without AVX2/FMA/F16C
// instead of letting it die of SIGILL. Other architectures get the compiler's default target.
// `#if arch` tests the machine that builds the package (native builds).
#if arch(x86_64)
    let targetCPU: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
    let targetCPU: [SwiftSetting] = []
#endif
let vectorized: [SwiftSetting] = targetCPU + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")

let package = Package(
    name: "stagebeam",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "stagebeam", targets: ["StagebeamCLI"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // 1.11 brought `LogHandler.log(event:)`, which `LineLogHandler` implements.
        .package(url: "https://github.com/apple/swift-log", from: "1.11.0")
    ],
    targets: [
        // C system libraries: module maps only; nothing above these imports C.
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CStb", providers: [.apt(["libstb-dev"])]),
        // Wire protocol (protobuf, generated code committed) and ZeroMQ transport.
        .target(
            name: "Wire", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Generated/stagebeam.proto.sha256"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .target(name: "Transport", dependencies: ["CZeroMQ", logging]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "Wire", logging]),
        // The process's log lines (text or JSON on standard error): a swift-log handler, chosen once
        // by the CLI. Transport, Cluster and Jobs log through swift-log's `Logger` alone and never
        // import this, so the format is the executable's choice, as swift-log intends.
        .target(name: "Logs", dependencies: [logging]),
        .testTarget(name: "LogsTests", dependencies: ["Logs", logging]),
        // Quantized dot products in C with per-function target attributes (Swift has none) and the
        // CPU check; no fused multiply-adds the source does not spell, so every variant gives the same bits.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-ffp-contract=off"]), .unsafeFlags(["-O2"], .when(configuration: .debug))]),
        .target(name: "Kernels", dependencies: ["CKernels"], swiftSettings: vectorized),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels"]),
        // Memory bandwidth and per-format `linear` throughput (scripts/bench/kernels.sh); not part of the CLI.
        .executableTarget(name: "KernelBench", dependencies: ["Kernels"], swiftSettings: vectorized),
        .target(name: "Models", dependencies: ["Kernels", "ModelFormats", "Vision"], swiftSettings: vectorized),
        .testTarget(name: "ModelsTests", dependencies: ["Models"]),
        .testTarget(name: "LlavaTests", dependencies: ["Models", "Vision", "Tokenization"]),
        .testTarget(name: "MllamaTests", dependencies: ["Models", "ModelFormats", "Vision", "Generation", "Tokenization"]),
        // Llama 3.2 Vision speed and memory (scripts/bench/mllama.sh); not part of the CLI.
        .executableTarget(name: "MllamaBench", dependencies: ["Models", "Kernels", "Vision"], swiftSettings: vectorized),
        // JPEG/PNG decoding (stb_image) and transformers-exact image preprocessing.
        .target(name: "Vision", dependencies: ["CStb", "ModelFormats"], swiftSettings: vectorized),
        .testTarget(name: "VisionTests", dependencies: ["Vision"]),
        .target(name: "ModelFormats"),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats"]),
        // tokenizer.json byte-level BPE, streaming decode, chat templates: depends on Foundation only.
        .target(name: "Tokenization"),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization"]),
        // n samples of one prompt: samplers, stop strings, batched decode over a shared prefix.
        .target(name: "Generation", dependencies: ["Models", "Tokenization"], swiftSettings: vectorized),
        .testTarget(name: "GenerationTests", dependencies: ["Generation"]),
        // The search's generator and judge interfaces implemented on the in-process engine.
        .target(name: "LocalEngine", dependencies: ["Generation", "Search"]),
        .testTarget(name: "LocalEngineTests", dependencies: ["LocalEngine"]),
        // Coordinator, workers, client and journal over the wire protocol and ZeroMQ transport.
        .target(
            name: "Cluster",
            dependencies: [
                "Wire", "Transport", "Search", "LocalEngine", "Generation", logging,
                .product(name: "SwiftProtobuf", package: "swift-protobuf")
            ]),
        .testTarget(
            name: "ClusterTests",
            dependencies: ["Cluster", "Wire", "Transport", "Search", logging, .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        // Bulk offline runs (batch) and capacity tests (loadtest) over a coordinator or in process.
        .target(
            name: "Jobs",
            dependencies: [
                "Cluster", "Search", "LocalEngine", "Wire", "Transport", logging, .product(name: "SwiftProtobuf", package: "swift-protobuf")
            ]),
        .testTarget(name: "JobsTests", dependencies: ["Jobs", "Cluster", "LocalEngine", "Search", "Wire"]),
        .executableTarget(
            name: "StagebeamCLI",
            dependencies: [
                "Cluster", "Generation", "Jobs", "LocalEngine", "Logs", "Search", "Wire", logging,
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),
        // Stage-level beam search, engine-agnostic: depends on Foundation only.
        .target(name: "Search"),
        .testTarget(name: "SearchTests", dependencies: ["Search"])
    ]
)
