import Foundation
import Testing

@testable import Vision

/// Preprocessing against `AutoImageProcessor(...)(images=Image.open(file))["pixel_values"]`.
@Suite struct PreprocessorTests {
    static let cases = VisionFixture.processors.flatMap { p in
        let names = (try? VisionFixture.manifest(processor: p).images) ?? []
        return VisionFixture.images.filter { names.contains($0.name) }.map { Case(processor: p, image: $0) }
    }

    @Test func everyProcessorHasCases() {
        for p in VisionFixture.processors { #expect(Self.cases.contains { $0.processor == p }, "\(p)") }
    }

    struct Case: Sendable, CustomStringConvertible {
        let processor: String
        let image: VisionFixture.Image
        var description: String { "\(processor)/\(image.name)" }
    }

    @Test(arguments: cases)
    func pixelValuesMatchTransformers(_ c: Case) throws {
        let preprocessor = try Preprocessor(directory: VisionFixture.root.appendingPathComponent("pixels-\(c.processor)"))
        let result = try preprocessor(VisionFixture.bytes("images/\(c.image.file)"))
        let expected = try VisionFixture.floats("pixels-\(c.processor)/\(c.image.name).f32")
        try #require(result.values.count == expected.count, "\(c): \(result.height)×\(result.width)")
        // PNG and JPEG alike: the same decoded bytes, Pillow's resampling reproduced bit for bit.
        let differing = zip(result.values, expected).filter { $0 != $1 }.count
        #expect(differing == 0, "\(c): \(differing) of \(expected.count) values differ")
    }

    @Test func processorClassIsThePILBackend() throws {
        for processor in VisionFixture.processors {
            #expect(try VisionFixture.manifest(processor: processor).auto_image_processor_class.hasSuffix("Pil"))
        }
    }

    private func config(_ json: String) throws -> ImageProcessorConfig {
        try ImageProcessorConfig(json: Data(json.utf8), source: "test")
    }

    @Test func configDefaultsAndLegacyForms() throws {
        let legacy = try config(#"{"image_processor_type": "CLIPImageProcessor", "size": 336, "crop_size": 336}"#)
        #expect(legacy.size == .shortestEdge(336) && legacy.cropHeight == 336 && legacy.cropWidth == 336)
        #expect(legacy.resample == .bicubic && legacy.doCenterCrop && !legacy.doPad)
        let siglip = try config(#"{"image_processor_type": "SiglipImageProcessorFast", "resample": 2}"#)
        #expect(siglip.kind == .siglip && siglip.size == .exact(height: 224, width: 224) && !siglip.doCenterCrop)
        #expect(siglip.imageMean == [0.5, 0.5, 0.5] && siglip.resample == .bilinear)
    }

    @Test func badConfigsNameTheProblem() {
        let bad: [(String, String)] = [
            (#"{"image_processor_type": "ViTImageProcessor"}"#, "ViTImageProcessor"),
            (#"{"image_processor_type": "CLIPImageProcessor", "resample": 0}"#, "resample 0"),
            (#"{"image_processor_type": "CLIPImageProcessor", "do_pad": true}"#, "do_pad"),
            (#"{"image_processor_type": "CLIPImageProcessor", "image_std": [0.5, 0, 0.5]}"#, "image_std"),
            (#"{"image_processor_type": "CLIPImageProcessor", "do_resize": 1}"#, "do_resize"),
            (#"{"image_processor_type": "CLIPImageProcessor", "size": {"max_height": 3}}"#, "size"),
            (#"{"image_processor_type": "#, "not valid JSON"),
            (#"{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 0}}"#, "positive"),
            (#"{"image_processor_type": "SiglipImageProcessor", "size": {"height": 384, "width": -1}}"#, "positive")
        ]
        for (json, mention) in bad {
            #expect { try ImageProcessorConfig(json: Data(json.utf8), source: "cfg.json") } throws: { error in
                guard let error = error as? VisionError else { return false }
                return error.code == .badProcessorConfig && error.message.contains(mention) && error.message.contains("cfg.json")
            }
        }
    }

    @Test func missingConfigIsAClearError() {
        #expect { try Preprocessor(directory: URL(fileURLWithPath: "/nonexistent")) } throws: {
            ($0 as? VisionError)?.code == .badProcessorConfig
        }
    }

    /// transformers' resize arithmetic: int(size · long / short) for the longer edge.
    @Test func shortestEdgeSizes() throws {
        let p = Preprocessor(config: try config(#"{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 336}}"#))
        #expect(p.resizedSize(height: 480, width: 640) == (336, 448))
        #expect(p.resizedSize(height: 1000, width: 333) == (1009, 336))
        #expect(p.resizedSize(height: 336, width: 336) == (336, 336))
    }
}
