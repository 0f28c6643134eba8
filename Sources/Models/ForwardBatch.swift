/// The rows of one forward pass: each row is one token — or one input embedding, such as an image
/// feature — of one sequence at one position.
/// A prefill is many rows of one sequence; a batched decode step is one row of each of n sequences;
/// both can share a pass. Reused between steps, so building a batch allocates nothing.
public struct ForwardBatch: Sendable {
    public private(set) var tokens: [Int32] = []
    public private(set) var sequences: [PagedKVCache.SequenceID] = []
    public private(set) var positions: [Int32] = []
    /// Rows whose logits are wanted; logits come back in this order.
    public private(set) var logitRows: [Int32] = []
    /// Per row: offset of its embedding in `embeddingValues`, or -1 for a token row.
    public private(set) var embeddingOffsets: [Int32] = []
    /// The embeddings of embedding rows, `embeddingWidth` values each, copied in (so the batch
    /// stays a value with nothing borrowed).
    public private(set) var embeddingValues: [Float] = []
    public private(set) var embeddingWidth = 0

    public init(capacity: Int) {
        tokens.reserveCapacity(capacity)
        sequences.reserveCapacity(capacity)
        positions.reserveCapacity(capacity)
        logitRows.reserveCapacity(capacity)
        embeddingOffsets.reserveCapacity(capacity)
    }

    public var count: Int { tokens.count }

    public mutating func removeAll() {
        tokens.removeAll(keepingCapacity: true)
        sequences.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true)
        logitRows.removeAll(keepingCapacity: true)
        embeddingOffsets.removeAll(keepingCapacity: true)
        embeddingValues.removeAll(keepingCapacity: true)
        embeddingWidth = 0
    }

    public mutating func append(token: Int, sequence: PagedKVCache.SequenceID, position: Int, wantsLogits: Bool) {
        if wantsLogits { logitRows.append(Int32(tokens.count)) }
        tokens.append(Int32(truncatingIfNeeded: token))
        sequences.append(sequence)
        positions.append(Int32(position))
        embeddingOffsets.append(-1)
    }

    /// A row whose input is `embedding` (the model's hidden size wide) instead of a token's.
    public mutating func append(embedding: UnsafeBufferPointer<Float>, sequence: PagedKVCache.SequenceID, position: Int, wantsLogits: Bool)
    {
        precondition(embeddingWidth == 0 || embedding.count == embeddingWidth, "embedding rows of one batch differ in width")
        embeddingWidth = embedding.count
        if wantsLogits { logitRows.append(Int32(tokens.count)) }
        embeddingOffsets.append(Int32(embeddingValues.count))
        embeddingValues.append(contentsOf: embedding)
        tokens.append(-1)
        sequences.append(sequence)
        positions.append(Int32(position))
    }

    /// Where row `r`'s embedding starts in `embeddingValues`, or nil for a token row.
    public func embeddingStart(row r: Int) -> Int? {
        embeddingOffsets[r] < 0 ? nil : Int(embeddingOffsets[r])
    }
}
