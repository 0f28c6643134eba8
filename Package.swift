// swift-tools-version:6.1
// Layers (dependencies point down only): see docs/modules.md. Every `import` in a target is declared
// here, so the layering is checked by the build.
import PackageDescription

// Numeric code is optimized even in debug builds, so `swift test` runs real checkpoints at real speed.
// On x86-64 it is compiled for AVX2 + FMA + F16C (Haswell and later; every machine stagebeam is run on
// has them): without them Swift lowers SIMD8 fused multiply-adds to scalar library calls. The matmul
// kernels are C (CKernels) with AVX2 and AVX-512 VNNI variants picked at run time; CKernels also refuses
// to start, with a message, on an x86-64 CPU without AVX2/FMA/F16C instead of letting it die of SIGILL.
#if arch(x86_64)
    let cpuFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
    let cpuFlags: [SwiftSetting] = []
#endif
let vectorized: [SwiftSetting] = cpuFlags + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let protobuf: Target.Dependency = .product(name: "SwiftProtobuf", package: "swift-protobuf")
let nio: [Target.Dependency] = ["NIOCore", "NIOPosix", "NIOHTTP1"].map { .product(name: $0, package: "swift-nio") }

let package = Package(
    name: "stagebeam",
    // Linux only: the engine maps files and the transport polls sockets through Glibc.
    products: [
        .executable(name: "stagebeam", targets: ["StagebeamCLI"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // 1.11 brought `LogHandler.log(event:)`, which `LineLogHandler` implements.
        .package(url: "https://github.com/apple/swift-log", from: "1.11.0"),
        // The metrics/readiness HTTP server (Cluster's MetricsServer): NIOPosix + NIOHTTP1 only.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        // The OpenAI-compatible HTTP gateway's server.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // The HTTP client of workers backed by an OpenAI-compatible server (WorkerHost's OpenAIClient).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0")
    ],
    targets: [
        // C system libraries: module maps only; nothing above these imports C.
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CStb", providers: [.apt(["libstb-dev"])]),
        // OpenSSL's libcrypto: SHA-256 with the CPU's SHA extensions, for model identities.
        .systemLibrary(name: "CCrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CTurboJPEG", providers: [.apt(["libturbojpeg0-dev"])]),

        // Compute: batch-invariant SIMD kernels over mapped weights, and the thread pool they share.
        // Matmul kernels in C with per-function target attributes (Swift has none) and the CPU check; no
        // fused multiply-adds the source does not spell, so every variant gives the same bits.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-ffp-contract=off"]), .unsafeFlags(["-O2"], .when(configuration: .debug))]),
        .target(name: "Kernels", dependencies: ["CKernels"], swiftSettings: vectorized),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels"]),
        // Reading JSON: one untyped value with typed, path-naming accessors, and typed files via Codable.
        .target(name: "JSON"),
        // Checkpoint files and configurations: safetensors and GGUF (mapped), config.json decoding.
        .target(name: "ModelFormats", dependencies: ["JSON"]),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats"]),
        // JPEG (libjpeg-turbo) and PNG (stb_image) decoding as Pillow decodes them, EXIF orientation,
        // and transformers-exact image preprocessing.
        .target(name: "Vision", dependencies: ["CStb", "CTurboJPEG", "JSON"], swiftSettings: vectorized),
        .testTarget(name: "VisionTests", dependencies: ["Vision"]),
        // Hugging Face chat templates: a Jinja subset rendered as transformers renders it.
        .target(name: "ChatTemplates"),
        // tokenizer.json (or a GGUF file's tokenizer.ggml.*) byte-level BPE, special tokens, streaming decode;
        // the tokenizer as GGUF keys (SHA-256 from CCrypto names the pre-tokenizer as llama.cpp's converter does).
        .target(name: "Tokenization", dependencies: ["CCrypto", "ChatTemplates", "JSON", "ModelFormats"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "ChatTemplates", "ModelFormats"]),
        // Architectures (Llama/Qwen2 text, CLIP/SigLIP towers, LLaVA, Mllama) and the KV cache.
        .target(name: "Models", dependencies: ["CKernels", "Kernels", "ModelFormats", "Vision"], swiftSettings: vectorized),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Kernels", "ModelFormats", "ModelTestSupport"]),
        // Test helpers shared by model suites (a weight source de-quantizing another).
        .target(name: "ModelTestSupport", dependencies: ["Models", "Kernels", "ModelFormats"], path: "Tests/ModelTestSupport"),
        .testTarget(name: "LlavaTests", dependencies: ["Models", "ModelFormats", "Vision", "Tokenization", "ChatTemplates"]),
        .testTarget(
            name: "MllamaTests",
            dependencies: ["Models", "ModelFormats", "Vision", "Generation", "Tokenization", "ChatTemplates", "ModelTestSupport"]),
        // n samples of one prompt: samplers, stop strings, batched decode over a shared prefix.
        .target(
            name: "Generation", dependencies: ["JSON", "Kernels", "ModelFormats", "Models", "Tokenization"], swiftSettings: vectorized),
        .testTarget(name: "GenerationTests", dependencies: ["Generation", "Kernels", "Models", "Tokenization", "ModelFormats"]),
        // Stage-level beam search, engine-agnostic: depends on Foundation (and the JSON reader) only.
        .target(name: "Search", dependencies: ["JSON"]),
        .testTarget(name: "SearchTests", dependencies: ["Search"]),
        // The search's generator and judge interfaces implemented on the in-process engine.
        .target(name: "LocalEngine", dependencies: ["Generation", "Search", "Tokenization", "ChatTemplates"]),
        .testTarget(
            name: "LocalEngineTests", dependencies: ["LocalEngine", "Generation", "Models", "Search", "Tokenization", "ChatTemplates"]),

        // Wire protocol (protobuf, generated code committed) and ZeroMQ transport.
        .target(name: "Wire", dependencies: [protobuf], exclude: ["Generated/stagebeam.proto.sha256"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .target(name: "Transport", dependencies: ["CZeroMQ", logging]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "Wire", logging]),
        // The process's log lines (text or JSON on standard error): a swift-log handler, chosen once
        // by the CLI. Transport, Cluster and Jobs log through swift-log's `Logger` alone and never
        // import this, so the format is the executable's choice, as swift-log intends.
        .target(name: "Logs", dependencies: [logging]),
        .testTarget(name: "LogsTests", dependencies: ["Logs", logging]),
        // Coordinator (jobs, dispatch, journal), client, and the protocol pieces workers share. Holds no
        // model and links no engine.
        .target(name: "Cluster", dependencies: ["CCrypto", "Wire", "Transport", "Search", logging, protobuf] + nio),
        .testTarget(
            name: "ClusterTests", dependencies: ["Cluster", "ClusterTestSupport", "Wire", "Transport", "Search", logging, protobuf]),
        // What the cluster and jobs tests share: the stagebeam executable as child processes, a local cluster.
        .target(name: "ClusterTestSupport", dependencies: ["Cluster", "Search", "Wire"], path: "Tests/ClusterTestSupport"),
        // A worker process: serves generate and judge requests from the coordinator on the in-process engine,
        // or on an inference server behind an OpenAI-compatible API.
        .target(
            name: "WorkerHost",
            dependencies: [
                "Cluster", "Wire", "Transport", "Search", "LocalEngine", "Generation", "ModelFormats", "Tokenization",
                "ChatTemplates", "Vision", logging, .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")
            ]),
        // The server-backed worker against an in-process OpenAI-compatible server that injects failures.
        .testTarget(
            name: "WorkerHostTests",
            dependencies: [
                "WorkerHost", "ClusterTestSupport", "Cluster", "Wire", "Search", "LocalEngine", "Generation", "Tokenization",
                .product(name: "Hummingbird", package: "hummingbird")
            ]),
        // The OpenAI-compatible HTTP API in front of a coordinator: chat completions answered by a job.
        .target(
            name: "Gateway",
            dependencies: [
                "Cluster", "JSON", "Search", "Transport", "Wire", logging, .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio")
            ]
        ),
        // The clients as users run them (the gateway over HTTP, the C client) against local clusters.
        .testTarget(name: "ClientsTests", dependencies: ["ClusterTestSupport"]),
        // Bulk offline runs (batch), capacity tests (loadtest) and evaluation, over a coordinator or in process.
        .target(
            name: "Jobs", dependencies: ["Cluster", "WorkerHost", "JSON", "Search", "LocalEngine", "Wire", "Transport", logging, protobuf]),
        .testTarget(name: "JobsTests", dependencies: ["Jobs", "Cluster", "ClusterTestSupport", "LocalEngine", "Search", "Wire"]),
        .executableTarget(
            name: "StagebeamCLI",
            dependencies: [
                "Cluster", "Gateway", "WorkerHost", "Generation", "Jobs", "Kernels", "LocalEngine", "Logs", "ModelFormats", "Models",
                "Search", "Tokenization", "ChatTemplates", "Transport", "Wire", logging,
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ])
    ]
)
