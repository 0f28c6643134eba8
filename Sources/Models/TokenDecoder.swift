import Kernels

/// What a generator drives: a decoder running batches of token rows over a paged KV cache and
/// returning the logits of the rows that want them. `LlamaModel` is one; `MllamaDecoder` adapts
/// Llama 3.2 Vision's decoder (whose cross-attention layers also need the request's image).
public protocol TokenDecoder: AnyObject {
    /// Most rows one `forward` may carry (longer prefills are split by the caller).
    var maxRows: Int { get }
    /// Most rows whose logits one `forward` may return.
    var maxLogitRows: Int { get }
    /// Logits per row.
    var vocabularySize: Int { get }
    /// Positions a sequence may reach: the model's trained context.
    var contextLength: Int { get }
    /// config.json's `eos_token_id`.
    var eosTokenIds: [Int] { get }
    var pool: ComputePool { get }
    /// Bytes of weights one decode step reads.
    var weightBytes: Int { get }
    func makeCache(capacityTokens: Int, type: KVCacheType) -> PagedKVCache
    func forward(_ batch: ForwardBatch, cache: PagedKVCache) throws -> UnsafeBufferPointer<Float>
}

extension LlamaModel: TokenDecoder {
    public var contextLength: Int { config.maxPositionEmbeddings }
    public var eosTokenIds: [Int] { config.eosTokenIds }
}
