/// The rows of one forward pass: each row is one token of one sequence at one position.
/// A prefill is many rows of one sequence; a batched decode step is one row of each of n sequences;
/// both can share a pass. Reused between steps, so building a batch allocates nothing.
public struct ForwardBatch: Sendable {
    public private(set) var tokens: [Int32] = []
    public private(set) var sequences: [PagedKVCache.SequenceID] = []
    public private(set) var positions: [Int32] = []
    /// Rows whose logits are wanted; logits come back in this order.
    public private(set) var logitRows: [Int32] = []

    public init(capacity: Int) {
        tokens.reserveCapacity(capacity)
        sequences.reserveCapacity(capacity)
        positions.reserveCapacity(capacity)
        logitRows.reserveCapacity(capacity)
    }

    public var count: Int { tokens.count }

    public mutating func removeAll() {
        tokens.removeAll(keepingCapacity: true)
        sequences.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true)
        logitRows.removeAll(keepingCapacity: true)
    }

    public mutating func append(token: Int, sequence: PagedKVCache.SequenceID, position: Int, wantsLogits: Bool) {
        if wantsLogits { logitRows.append(Int32(tokens.count)) }
        tokens.append(Int32(truncatingIfNeeded: token))
        sequences.append(sequence)
        positions.append(Int32(position))
    }
}
