import Foundation
import Kernels
import ModelFormats
import Vision

/// `MllamaForConditionalGeneration` (Llama 3.2 Vision, the architecture of the published LLaVA-CoT
/// model): a tiled vision encoder, a linear projector (`multi_modal_projector`) and a decoder with
/// cross-attention layers. An image is encoded once into `MllamaImageStates` (the cross-attention
/// keys and values of every cross layer); prompts then run through `text` with an
/// `MllamaImageContext` naming those states and the `<|image|>` token's position. The prompt itself
/// keeps its one `<|image|>` token: unlike LLaVA, nothing is expanded.
public final class MllamaModel: @unchecked Sendable {
    public let config: MllamaConfig
    public let text: MllamaTextModel
    public let vision: MllamaVisionModel
    /// The image processor the checkpoint was saved with.
    public let preprocessor: MllamaPreprocessor
    let projector: WeightMatrix // multi_modal_projector.weight (textHidden, visionOutputDim)
    let projectorBias: FloatTensor // multi_modal_projector.bias (textHidden)
    /// Its tensors: the safetensors, or the weights file of a quantized checkpoint (`HuggingFaceQuantized`).
    let checkpoint: any WeightSource

    public var imageTokenId: Int { config.imageTokenId }

    /// The two tensor-name layouts: the hub's and transformers 5's files, and transformers 4.52–4.x's.
    static let layouts: [(vision: String, projector: String, language: LlamaTensorNames)] = [
        (
            "vision_model.", "multi_modal_projector.",
            LlamaTensorNames(decoder: "language_model.model.", lmHead: "language_model.lm_head.weight")
        ),
        (
            "model.vision_model.", "model.multi_modal_projector.",
            LlamaTensorNames(decoder: "model.language_model.", lmHead: "lm_head.weight")
        )
    ]

    public static func load(directory: URL, maxRows: Int = 128, maxLogitRows: Int = 64, pool: ComputePool = .shared) throws -> MllamaModel {
        try MllamaModel(directory: directory, maxRows: maxRows, maxLogitRows: maxLogitRows, pool: pool)
    }

    public convenience init(directory: URL, maxRows: Int = 128, maxLogitRows: Int = 64, pool: ComputePool = .shared) throws {
        try self.init(
            directory: directory, checkpoint: HuggingFaceQuantized.weights(in: directory), maxRows: maxRows, maxLogitRows: maxLogitRows,
            pool: pool)
    }

    /// The model of the checkpoint in `directory` (its configuration and processor) with its tensors
    /// read from `checkpoint`.
    init(directory: URL, checkpoint: any WeightSource, maxRows: Int, maxLogitRows: Int, pool: ComputePool) throws {
        let config = try MllamaConfig.load(from: directory)
        guard let layout = Self.layouts.first(where: { checkpoint.contains($0.vision + "patch_embedding.weight") }) else {
            throw ModelFormatError(
                .missingTensor,
                "\(directory.path): no vision encoder tensors under any known Llama 3.2 Vision layout (looked for \(Self.layouts.map { $0.vision + "patch_embedding.weight" }.joined(separator: ", ")))"
            )
        }
        self.config = config
        self.checkpoint = checkpoint
        text = try MllamaTextModel(
            config: config, checkpoint: checkpoint, directory: directory, names: layout.language,
            maxRows: maxRows, maxLogitRows: maxLogitRows, pool: pool)
        vision = try MllamaVisionModel(
            config: config.visionConfig, checkpoint: checkpoint, directory: directory, prefix: layout.vision, pool: pool)
        let textHidden = config.textConfig.hiddenSize
        projector = try checkpoint.weightMatrix(layout.projector + "weight", rows: textHidden, columns: config.visionConfig.visionOutputDim)
        projectorBias = try checkpoint.floatTensor(layout.projector + "bias", shape: [textHidden])
        try checkpoint.verifyAllConsumed(ignoring: LlamaWeights.isDerivedBuffer)
        preprocessor = try MllamaPreprocessor(directory: directory)
    }

    /// Decodes, tiles and encodes image bytes (JPEG or PNG) into the states the cross-attention
    /// layers read.
    public func imageStates(imageData: Data, maxPixels: Int = ImageDecoder.defaultMaxPixels) throws -> MllamaImageStates {
        try imageStates(for: preprocessor(imageData, maxPixels: maxPixels))
    }

    public func imageStates(for image: MllamaTiledImage) throws -> MllamaImageStates {
        let states = try visionStates(for: image)
        return states.withUnsafeBufferPointer {
            text.imageStates(
                $0.baseAddress!, visionRows: vision.outputRows, tileCount: image.tileCount, tileRows: config.visionConfig.tileRows)
        }
    }

    /// The projected vision output (transformers' `cross_attention_states`): (maxTiles · tileRows, text hidden).
    public func visionStates(for image: MllamaTiledImage) throws -> [Float] {
        let rows = vision.outputRows, textHidden = config.textConfig.hiddenSize
        let encoded = UnsafeMutablePointer<Float>.allocate(capacity: rows * config.visionConfig.visionOutputDim)
        defer { encoded.deallocate() }
        try vision.encode(image, into: encoded)
        var states = [Float](repeating: 0, count: rows * textHidden)
        states.withUnsafeMutableBufferPointer {
            linear(encoded, rows: rows, weight: projector, bias: projectorBias.pointer, into: $0.baseAddress!, pool: text.pool)
        }
        return states
    }

    /// The image context of a tokenized prompt that will sit at cache positions `firstPosition...`: nil
    /// for a prompt without `<|image|>` (given no image); otherwise `image` bound to the position of its
    /// one `<|image|>` token.
    public func context(promptIds ids: [Int], image: MllamaImageStates?, firstPosition: Int = 0) throws -> MllamaImageContext? {
        let positions = ids.indices.filter { ids[$0] == imageTokenId }
        switch (positions.count, image) {
        case (0, nil): return nil
        case (1, let image?): return MllamaImageContext(states: image, imagePosition: firstPosition + positions[0])
        case (0, _?):
            throw ModelError(.unsupportedConfiguration, "an image was given but the prompt has no <|image|> token (id \(imageTokenId))")
        case (1, nil):
            throw ModelError(.unsupportedConfiguration, "the prompt has an <|image|> token (id \(imageTokenId)) but no image was given")
        default:
            throw ModelError(
                .unsupportedConfiguration, "the prompt has \(positions.count) <|image|> tokens; one image per prompt is supported")
        }
    }

    /// Runs `ids` into `sequence` of `cache` (whose slots the caller reserved from `firstPosition`) in
    /// chunks of `text.maxRows`, and returns the logits of the last position.
    public func prefill(
        _ ids: [Int], image: MllamaImageContext?, sequence: PagedKVCache.SequenceID, firstPosition: Int,
        cache: PagedKVCache
    ) throws -> [Float] {
        var batch = ForwardBatch(capacity: text.maxRows)
        var logits: [Float] = []
        var start = 0
        while start < ids.count {
            let end = min(ids.count, start + text.maxRows)
            batch.removeAll()
            for p in start..<end {
                batch.append(token: ids[p], sequence: sequence, position: firstPosition + p, wantsLogits: p == ids.count - 1)
            }
            let out = try text.forward(batch, cache: cache, image: image)
            if end == ids.count { logits = Array(out) }
            start = end
        }
        return logits
    }
}
