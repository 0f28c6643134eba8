import Foundation
import Vision

/// A tiny random Llama 3.2 Vision checkpoint written by scripts/fixtures/make_mllama_fixtures.py and
/// what transformers computed on it (reference.json plus raw float32 files).
struct MllamaFixture: Decodable {
    struct Prompt: Decodable {
        let prompt: String
        let input_ids: [Int]
        let logits_shape: [Int]?
        let greedy_ids: [Int]
        // Image prompt only.
        let image: String?
        let pixel_shape: [Int]?
        let aspect_ratio_id: Int?
        let aspect_ratio_mask: [Int]?
        /// (tokens, max tiles): 1 where the token attends to the tile.
        let cross_attention_mask: [[Int]]?
        let cross_attention_states_shape: [Int]?
    }

    let image: Prompt
    let text: Prompt
    /// The image prompt through the plain `processor(text=prompt, images=image)` call (a second BOS).
    let raw: Prompt
    /// Plain `processor(text=prompt, ...)` calls on prompts without BOS text, which the processor rewrites
    /// (`build_string_from_input`); `image` (a JPEG with an EXIF orientation) when one was given.
    let raw_cases: [Prompt]
    let image_token_id: Int

    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/mllama")

    static let models = ["mllama-tiles4", "mllama-tiles3-llama3rope", "mllama-tiles2-bf16", "mllama-quantized"]

    static func directory(_ name: String) -> URL { root.appendingPathComponent(name) }

    static func load(_ name: String) throws -> MllamaFixture {
        try JSONDecoder().decode(MllamaFixture.self, from: Data(contentsOf: directory(name).appendingPathComponent("reference.json")))
    }

    /// A raw little-endian float32 file.
    static func floats(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
        }
    }

    static func imageBytes(_ file: String) throws -> Data { try Data(contentsOf: root.appendingPathComponent("images/\(file)")) }

    /// The processor's tiles of the image prompt.
    func referenceTiles(_ name: String) throws -> MllamaTiledImage {
        let shape = image.pixel_shape!, mask = image.aspect_ratio_mask!
        let grid = MllamaPreprocessor.arrangements(maxTiles: shape[0])[image.aspect_ratio_id! - 1]
        precondition(grid.high * grid.wide == mask.reduce(0, +))
        return MllamaTiledImage(
            tileSize: shape[2], maxTiles: shape[0], tilesHigh: grid.high, tilesWide: grid.wide,
            aspectRatioId: image.aspect_ratio_id!,
            values: try Self.floats(Self.directory(name).appendingPathComponent("pixel-values.f32")))
    }

    func logits(_ name: String, _ prompt: String) throws -> [Float] {
        try Self.floats(Self.directory(name).appendingPathComponent("\(prompt)-logits.f32"))
    }
}

/// Largest |a - b| over two equally long arrays.
func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) values against \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
