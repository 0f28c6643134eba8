// swift-tools-version:6.1
// Layers (dependencies point down only): see README.md and ../shared/DESIGN.md.
import PackageDescription

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
        .target(name: "ModelFormats"),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats"]),
    ]
)
