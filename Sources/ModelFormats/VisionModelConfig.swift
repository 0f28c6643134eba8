import Foundation
import JSON

/// The `vision_config` of a LLaVA checkpoint: a CLIP or SigLIP vision transformer. Keys left out
/// take the defaults of transformers' `CLIPVisionConfig` / `SiglipVisionConfig` (llava-hf configs
/// write only what differs from them).
public struct VisionModelConfig: Decodable, Sendable {
    public enum Family: String, Sendable {
        /// Class token, `pre_layrnorm`, bias-free patch convolution.
        case clip = "clip_vision_model"
        /// No class token, no pre-norm, patch convolution with a bias.
        case siglip = "siglip_vision_model"
    }

    public var family: Family
    public var hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads: Int
    public var numChannels, imageSize, patchSize: Int
    public var hiddenAct: String
    public var layerNormEps: Float

    /// Patches along each side of the (square) input.
    public var patchesPerSide: Int { imageSize / patchSize }
    public var patchCount: Int { patchesPerSide * patchesPerSide }
    public var hasClassToken: Bool { family == .clip }
    /// Rows of the encoder: the patches, plus the class token for CLIP.
    public var positionCount: Int { patchCount + (hasClassToken ? 1 : 0) }
    public var headDim: Int { hiddenSize / numAttentionHeads }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: JSONKey.self)
        let type = try c.optional(String.self, "model_type") ?? Family.clip.rawValue
        guard let family = Family(rawValue: type) else {
            throw ModelFormatError(
                .unsupportedArchitecture, "vision_config model_type '\(type)' is not supported (clip_vision_model, siglip_vision_model)")
        }
        self.family = family
        let clip = family == .clip
        hiddenSize = try c.optional(Int.self, "hidden_size") ?? 768
        intermediateSize = try c.optional(Int.self, "intermediate_size") ?? 3072
        numHiddenLayers = try c.optional(Int.self, "num_hidden_layers") ?? 12
        numAttentionHeads = try c.optional(Int.self, "num_attention_heads") ?? 12
        numChannels = try c.optional(Int.self, "num_channels") ?? 3
        imageSize = try c.optional(Int.self, "image_size") ?? 224
        patchSize = try c.optional(Int.self, "patch_size") ?? (clip ? 32 : 16)
        hiddenAct = try c.optional(String.self, "hidden_act") ?? (clip ? "quick_gelu" : "gelu_pytorch_tanh")
        layerNormEps = try c.optional(Float.self, "layer_norm_eps") ?? (clip ? 1e-5 : 1e-6)
        guard hiddenSize > 0, intermediateSize > 0, numHiddenLayers > 0, numAttentionHeads > 0, patchSize > 0, imageSize >= patchSize else {
            throw ModelFormatError(
                .badConfig,
                "vision_config: hidden_size, intermediate_size, num_hidden_layers, num_attention_heads and patch_size must be positive and image_size at least patch_size"
            )
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelFormatError(
                .badConfig, "vision_config: hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard numChannels == 3 else {
            throw ModelFormatError(.badConfig, "vision_config: num_channels \(numChannels) is not supported (images are RGB)")
        }
    }
}
