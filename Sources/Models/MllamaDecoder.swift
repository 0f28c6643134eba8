import Kernels

/// Llama 3.2 Vision's decoder as a `TokenDecoder`: every forward pass shows its cross-attention
/// layers `image`, which the caller sets for the request being run (nil: a text-only prompt, the
/// cross-attention layers are skipped). One request at a time, as the decoder's scratch memory is.
public final class MllamaDecoder: TokenDecoder {
    public let model: MllamaModel
    /// The image context of the sequences the next forward passes belong to.
    public var image: MllamaImageContext?

    public init(_ model: MllamaModel) { self.model = model }

    public var maxRows: Int { model.text.maxRows }
    public var maxLogitRows: Int { model.text.maxLogitRows }
    public var vocabularySize: Int { model.text.vocabularySize }
    public var contextLength: Int { model.config.textConfig.maxPositionEmbeddings }
    public var eosTokenIds: [Int] { model.config.textConfig.eosTokenIds }
    public var pool: ComputePool { model.text.pool }
    public var weightBytes: Int { model.text.weightBytes }

    public func makeCache(capacityTokens: Int, type: KVCacheType) -> PagedKVCache {
        model.text.makeCache(capacityTokens: capacityTokens, type: type)
    }

    public func forward(_ batch: ForwardBatch, cache: PagedKVCache) throws -> UnsafeBufferPointer<Float> {
        try model.text.forward(batch, cache: cache, image: image)
    }
}
