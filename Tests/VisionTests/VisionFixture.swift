import Foundation

/// Images and reference outputs written by scripts/fixtures/make_vision_fixtures.py.
enum VisionFixture {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/vision")

    struct Image: Decodable, Sendable, CustomStringConvertible {
        let name: String
        let file: String
        let width: Int
        let height: Int
        var description: String { name }
    }

    /// images/manifest.json: the images, and the Pillow (and its libjpeg-turbo) that decoded them.
    struct ImageManifest: Decodable {
        let pillow_version: String
        let libjpeg_turbo_version: String
        let images: [Image]
    }

    static let imageManifest: ImageManifest? = {
        let url = root.appendingPathComponent("images/manifest.json")
        return try? JSONDecoder().decode(ImageManifest.self, from: Data(contentsOf: url))
    }()

    static let images = imageManifest?.images ?? []

    static let processors = [
        "clip", "siglip", "llava-pad", "clip-lanczos-pad", "clip-longest-edge", "siglip-hamming", "siglip-box-unscaled"
    ]

    /// The processor's manifest.json: the class AutoImageProcessor built and the images run through it.
    struct ProcessorManifest: Decodable {
        let auto_image_processor_class: String
        let images: [String]
    }

    static func manifest(processor: String) throws -> ProcessorManifest {
        try JSONDecoder().decode(ProcessorManifest.self, from: bytes("pixels-\(processor)/manifest.json"))
    }

    static func bytes(_ path: String) throws -> Data {
        try Data(contentsOf: root.appendingPathComponent(path))
    }

    static func floats(_ path: String) throws -> [Float] {
        let data = try bytes(path)
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }
}
