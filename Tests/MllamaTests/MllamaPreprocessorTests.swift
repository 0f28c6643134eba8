import Foundation
import Testing
import Vision

/// Tiling against transformers' MllamaImageProcessorPil: every test image (wide, tall, tiny, large,
/// square, a thin strip) under three settings (4 tiles bilinear, 3 tiles bicubic, 2 tiles lanczos
/// without rescale). The images are PNGs decoded exactly, so pixel values must be bit-identical.
@Suite struct MllamaPreprocessorTests {
    struct Manifest: Decodable {
        struct Entry: Decodable {
            let aspect_ratio_id: Int
            let aspect_ratio_mask: [Int]
            let shape: [Int]
        }
        let auto_image_processor_class: String
        let images: [String: Entry]
    }

    static let tilings = ["tiles4-bilinear", "tiles3-bicubic", "tiles2-lanczos-unscaled"]

    @Test(arguments: tilings)
    func tilesEqualTransformers(_ tiling: String) throws {
        let directory = MllamaFixture.root.appendingPathComponent("tiling-\(tiling)")
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("manifest.json")))
        #expect(manifest.auto_image_processor_class == "MllamaImageProcessorPil")
        let preprocessor = try MllamaPreprocessor(directory: directory)
        try #require(manifest.images.count == 6)
        for (name, expected) in manifest.images.sorted(by: { $0.key < $1.key }) {
            let tiles = try preprocessor(MllamaFixture.imageBytes("\(name).png"))
            #expect(tiles.aspectRatioId == expected.aspect_ratio_id, "\(tiling)/\(name)")
            #expect(
                Array(repeating: 1, count: tiles.tileCount) + Array(repeating: 0, count: tiles.maxTiles - tiles.tileCount)
                    == expected.aspect_ratio_mask, "\(tiling)/\(name)")
            #expect([tiles.maxTiles, 3, tiles.tileSize, tiles.tileSize] == expected.shape, "\(tiling)/\(name)")
            let reference = try MllamaFixture.floats(directory.appendingPathComponent("\(name).f32"))
            #expect(tiles.values == reference, "\(tiling)/\(name): worst pixel difference \(maxDifference(tiles.values, reference))")
        }
    }

    /// Llama 3.2 Vision's own sizes (560 px tiles, 4 at most): `get_all_supported_aspect_ratios(4)`, and
    /// what `get_optimal_tiled_canvas` / `get_image_size_fit_to_canvas` return for a few photo sizes
    /// (values printed by transformers 5.24).
    @Test func gridAndSizeAtLlamaVisionScale() {
        let grids = MllamaPreprocessor.arrangements(maxTiles: 4).map { [$0.high, $0.wide] }
        #expect(grids == [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]])
        let cases: [(width: Int, height: Int, grid: [Int], id: Int, size: [Int])] = [
            (640, 480, [1, 2], 2, [480, 640]), (480, 640, [2, 1], 5, [640, 480]), (1000, 100, [1, 2], 2, [100, 1000]),
            (2000, 2000, [2, 2], 6, [1120, 1120]), (100, 50, [1, 1], 1, [280, 560]), (1121, 560, [1, 3], 3, [560, 1121])
        ]
        for c in cases {
            let grid = MllamaPreprocessor.tileGrid(height: c.height, width: c.width, maxTiles: 4, tileSize: 560)
            #expect([grid.high, grid.wide] == c.grid && grid.id == c.id, "\(c.width)×\(c.height)")
            let size = MllamaPreprocessor.sizeFittingCanvas(
                height: c.height, width: c.width, canvasHeight: grid.high * 560,
                canvasWidth: grid.wide * 560, tileSize: 560)
            #expect([size.0, size.1] == c.size, "\(c.width)×\(c.height)")
        }
    }

    @Test func badSettingsAreNamed() {
        let cases: [(String, String)] = [
            (#"{"image_processor_type": "CLIPImageProcessor"}"#, "CLIPImageProcessor"),
            (#"{"image_processor_type": "MllamaImageProcessor", "size": {"height": 28, "width": 30}}"#, "square"),
            (#"{"image_processor_type": "MllamaImageProcessor", "do_pad": false}"#, "do_pad"),
            (#"{"image_processor_type": "MllamaImageProcessor", "max_image_tiles": 0}"#, "max_image_tiles"),
            (#"{"image_processor_type": "MllamaImageProcessor", "resample": 0}"#, "resample 0"),
            (#"{"image_processor_type": "MllamaImageProcessor", "image_std": [1, 0, 1]}"#, "image_std"),
            (#"{"image_processor_type": "MllamaImageProcessor", "do_rescale": "yes"}"#, "do_rescale")
        ]
        for (json, mention) in cases {
            #expect { try MllamaImageProcessorConfig(json: Data(json.utf8), source: "test.json") } throws: {
                ($0 as? VisionError)?.code == .badProcessorConfig && "\($0)".contains(mention) && "\($0)".contains("test.json")
            }
        }
    }
}
