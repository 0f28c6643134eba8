import Foundation
import Kernels
import ModelFormats
import Vision

/// `LlavaForConditionalGeneration`: a CLIP or SigLIP vision tower, a two-layer projector
/// (`multi_modal_projector.linear_1` → activation → `linear_2`) and a Llama-family language model.
/// Image features are computed once per image and enter the language model as embedding rows at
/// the image-token positions; everything after that (KV cache, batching) is the text model's.
public final class LlavaModel: @unchecked Sendable {
    public let config: LlavaConfig
    public let language: LlamaModel
    public let vision: VisionTower
    /// The image processor the checkpoint was saved with.
    public let preprocessor: Preprocessor
    let projector1: WeightMatrix // linear_1.weight (textHidden, visionHidden · layers)
    let projector1Bias: FloatTensor?
    let projector2: WeightMatrix // linear_2.weight (textHidden, textHidden)
    let projector2Bias: FloatTensor?
    let projectorActivation: Activation
    let checkpoint: Checkpoint

    public var imageTokenId: Int { config.imageTokenId }
    /// Feature rows (image tokens) per image.
    public var imageTokenCount: Int { config.imageTokenCount }

    /// The tensor-name layouts LLaVA checkpoints come in (see `LlamaTensorNames`).
    static let visionPrefixes = ["vision_tower.", "vision_tower.vision_model.", "model.vision_tower.", "model.vision_tower.vision_model."]
    static let projectorPrefixes = ["multi_modal_projector.", "model.multi_modal_projector."]
    static let languageNames = [
        LlamaTensorNames(decoder: "language_model.model.", lmHead: "language_model.lm_head.weight"),
        LlamaTensorNames(decoder: "model.language_model.", lmHead: "lm_head.weight")
    ]

    public static func load(directory: URL, maxRows: Int = 128, maxLogitRows: Int = 64, pool: ComputePool = .shared) throws -> LlavaModel {
        try LlavaModel(directory: directory, maxRows: maxRows, maxLogitRows: maxLogitRows, pool: pool)
    }

    public init(directory: URL, maxRows: Int = 128, maxLogitRows: Int = 64, pool: ComputePool = .shared) throws {
        let config = try LlavaConfig.load(from: directory)
        let checkpoint = try Checkpoint(directory: directory)
        func find<T>(_ candidates: [T], _ probe: (T) -> String, _ what: String) throws -> T {
            guard let found = candidates.first(where: { checkpoint.contains(probe($0)) }) else {
                throw ModelFormatError(
                    .missingTensor,
                    "\(directory.path): no \(what) tensors under any known LLaVA layout (looked for \(candidates.map(probe).joined(separator: ", ")))"
                )
            }
            return found
        }
        let visionPrefix = try find(Self.visionPrefixes, { $0 + "embeddings.patch_embedding.weight" }, "vision tower")
        let projectorPrefix = try find(Self.projectorPrefixes, { $0 + "linear_1.weight" }, "projector")
        let names = try find(Self.languageNames, { $0.decoder + "embed_tokens.weight" }, "language model")
        guard let activation = Activation(rawValue: config.projectorHiddenAct) else {
            throw ModelError(
                .unsupportedConfiguration,
                "\(directory.path)/config.json: projector_hidden_act \"\(config.projectorHiddenAct)\" is not supported")
        }

        self.config = config
        self.checkpoint = checkpoint
        projectorActivation = activation
        language = try LlamaModel(
            config: config.textConfig, checkpoint: checkpoint, names: names,
            maxRows: maxRows, maxLogitRows: maxLogitRows, pool: pool)
        vision = try VisionTower(config: config.visionConfig, checkpoint: checkpoint, prefix: visionPrefix, pool: pool)
        let textHidden = config.textConfig.hiddenSize
        let inputWidth = config.visionConfig.hiddenSize * config.visionFeatureLayers.count
        projector1 = try checkpoint.weightMatrix(projectorPrefix + "linear_1.weight", rows: textHidden, columns: inputWidth)
        projector2 = try checkpoint.weightMatrix(projectorPrefix + "linear_2.weight", rows: textHidden, columns: textHidden)
        projector1Bias = config.projectorBias ? try checkpoint.floatTensor(projectorPrefix + "linear_1.bias", shape: [textHidden]) : nil
        projector2Bias = config.projectorBias ? try checkpoint.floatTensor(projectorPrefix + "linear_2.bias", shape: [textHidden]) : nil
        try checkpoint.verifyAllConsumed(ignoring: { LlamaWeights.isDerivedBuffer($0) || VisionWeights.isUnused($0, prefix: visionPrefix) })
        preprocessor = try Preprocessor(directory: directory)
    }

    /// Decodes, preprocesses and encodes image bytes (JPEG or PNG).
    public func imageFeatures(imageData: Data, maxPixels: Int = ImageDecoder.defaultMaxPixels) throws -> ImageFeatures {
        try imageFeatures(for: preprocessor(imageData, maxPixels: maxPixels))
    }

    /// The projected features of one preprocessed image: `imageTokenCount` rows of the language
    /// model's hidden size.
    public func imageFeatures(for image: PreprocessedImage) throws -> ImageFeatures {
        let side = config.visionConfig.imageSize
        guard image.height == side && image.width == side else {
            throw ModelError(
                .unsupportedConfiguration,
                "pixel values are \(image.height)×\(image.width); the vision tower takes \(side)×\(side) (does the image processor's crop/size match vision_config.image_size?)"
            )
        }
        let rows = imageTokenCount, textHidden = config.textConfig.hiddenSize
        let selectedWidth = config.visionConfig.hiddenSize * config.visionFeatureLayers.count
        let selected = UnsafeMutablePointer<Float>.allocate(capacity: rows * selectedWidth)
        let middle = UnsafeMutablePointer<Float>.allocate(capacity: rows * textHidden)
        defer { selected.deallocate(); middle.deallocate() }
        image.values.withUnsafeBufferPointer { pixels in
            vision.encode(
                pixels.baseAddress!, states: config.featureStateIndices,
                skipRows: config.selectStrategy == .default ? 1 : 0, into: selected)
        }
        linear(selected, rows: rows, weight: projector1, bias: projector1Bias?.pointer, into: middle, pool: language.pool)
        projectorActivation.apply(middle, count: rows * textHidden)
        var values = [Float](repeating: 0, count: rows * textHidden)
        values.withUnsafeMutableBufferPointer { out in
            linear(middle, rows: rows, weight: projector2, bias: projector2Bias?.pointer, into: out.baseAddress!, pool: language.pool)
        }
        return ImageFeatures(rows: rows, width: textHidden, values: values)
    }

    /// Replaces each image token of a tokenized prompt by `imageTokenCount` of them, as
    /// transformers' LlavaProcessor does to the text (`<image>` → `<image>` × n) before tokenizing.
    public func expandImageTokens(_ ids: [Int]) -> [Int] {
        ids.flatMap { $0 == imageTokenId ? Array(repeating: $0, count: imageTokenCount) : [$0] }
    }

    /// Binds an expanded prompt to its images' features.
    public func prompt(ids: [Int], images: [ImageFeatures]) throws -> MultimodalPrompt {
        try MultimodalPrompt(ids: ids, imageTokenId: imageTokenId, images: images)
    }

    /// Runs `prompt` into `sequence` of `cache` (whose slots the caller reserved from
    /// `firstPosition`) in chunks of the language model's `maxRows`, and returns the logits of
    /// its last position.
    public func prefill(
        _ prompt: MultimodalPrompt, sequence: PagedKVCache.SequenceID, firstPosition: Int,
        cache: PagedKVCache
    ) throws -> [Float] {
        var batch = ForwardBatch(capacity: language.maxRows)
        var logits: [Float] = []
        var start = 0
        while start < prompt.count {
            let end = min(prompt.count, start + language.maxRows)
            batch.removeAll()
            prompt.append(start..<end, to: &batch, sequence: sequence, firstPosition: firstPosition) { $0 == prompt.count - 1 }
            let out = try language.forward(batch, cache: cache)
            if end == prompt.count { logits = Array(out) }
            start = end
        }
        return logits
    }
}
