/// Keys and values of many sequences in fixed-size blocks, shared copy-on-write.
///
/// A sequence is a list of blocks plus a length. `fork` gives a new sequence the same blocks
/// (reference-counted, nothing copied), so n candidates continue one prefix that was computed and
/// stored once. Appending to a sequence whose last block is shared copies just that block first.
/// `trim` cuts a sequence back (e.g. to retry from an earlier point) and `release` frees it.
///
/// Layout of one block: (layers, kvHeads, blockSize, headDim) for keys and the same for values,
/// so one head's keys within a block are contiguous for the attention dot products.
/// Memory is reserved up front for `capacityTokens` but only touched pages become resident.
public final class PagedKVCache: @unchecked Sendable {
    public struct SequenceID: Hashable, Sendable { public let raw: Int }

    public let layers: Int, kvHeads: Int, headDim: Int
    public let blockSize: Int
    public let capacityBlocks: Int
    /// Floats in one block of keys (or of values).
    let blockStride: Int
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    private var referenceCounts: [Int32]
    private var freeBlocks: [Int32]
    private var sequences: [Int: SequenceState] = [:]
    private var nextSequence = 0

    struct SequenceState {
        var blocks: [Int32]
        var length: Int
    }

    public init(layers: Int, kvHeads: Int, headDim: Int, capacityTokens: Int, blockSize: Int = 16) {
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.blockSize = blockSize
        self.capacityBlocks = max(1, (capacityTokens + blockSize - 1) / blockSize)
        self.blockStride = layers * kvHeads * blockSize * headDim
        keys = .allocate(capacity: capacityBlocks * blockStride)
        values = .allocate(capacity: capacityBlocks * blockStride)
        referenceCounts = Array(repeating: 0, count: capacityBlocks)
        freeBlocks = (0..<Int32(capacityBlocks)).reversed()
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    public var freeTokenCapacity: Int { freeBlocks.count * blockSize }
    public var tokenCapacity: Int { capacityBlocks * blockSize }
    public var usedBlocks: Int { capacityBlocks - freeBlocks.count }
    public var liveSequences: Int { sequences.count }

    public func createSequence() -> SequenceID {
        let id = SequenceID(raw: nextSequence)
        nextSequence += 1
        sequences[id.raw] = SequenceState(blocks: [], length: 0)
        return id
    }

    /// A new sequence sharing all of `parent`'s tokens.
    public func fork(_ parent: SequenceID) -> SequenceID {
        let state = self.state(parent)
        for block in state.blocks { referenceCounts[Int(block)] += 1 }
        let id = SequenceID(raw: nextSequence)
        nextSequence += 1
        sequences[id.raw] = state
        return id
    }

    public func length(of sequence: SequenceID) -> Int { state(sequence).length }

    /// Drops the tokens at positions `length...`.
    public func trim(_ sequence: SequenceID, to length: Int) {
        var state = takeState(sequence)
        defer { sequences[sequence.raw] = state }
        precondition(length >= 0 && length <= state.length, "trim beyond the sequence")
        let keep = (length + blockSize - 1) / blockSize
        for block in state.blocks[keep...] { unreference(block) }
        state.blocks.removeLast(state.blocks.count - keep)
        state.length = length
    }

    public func release(_ sequence: SequenceID) {
        guard let state = sequences.removeValue(forKey: sequence.raw) else { return }
        for block in state.blocks { unreference(block) }
    }

    /// Makes room for `count` more tokens and returns the position of the first. The blocks that will
    /// be written are exclusively this sequence's afterwards (shared ones are copied).
    public func append(_ sequence: SequenceID, count: Int) throws(CacheFull) -> Int {
        var state = takeState(sequence)
        defer { sequences[sequence.raw] = state }
        let start = state.length
        let newLength = start + count
        let neededBlocks = (newLength + blockSize - 1) / blockSize
        let partialBlock = start % blockSize != 0 ? start / blockSize : nil
        let copyNeeded = partialBlock.map { referenceCounts[Int(state.blocks[$0])] > 1 } ?? false
        let required = neededBlocks - state.blocks.count + (copyNeeded ? 1 : 0)
        guard required <= freeBlocks.count else {
            throw CacheFull(requestedTokens: count, freeTokens: freeTokenCapacity, capacityTokens: tokenCapacity)
        }
        if let partialBlock, copyNeeded {
            let shared = state.blocks[partialBlock]
            let copy = takeFreeBlock()
            (keys + Int(copy) * blockStride).update(from: keys + Int(shared) * blockStride, count: blockStride)
            (values + Int(copy) * blockStride).update(from: values + Int(shared) * blockStride, count: blockStride)
            unreference(shared)
            state.blocks[partialBlock] = copy
        }
        while state.blocks.count < neededBlocks { state.blocks.append(takeFreeBlock()) }
        state.length = newLength
        return start
    }

    /// The blocks holding `sequence`'s tokens, in order (the last may be partly filled).
    public func blocks(of sequence: SequenceID) -> [Int32] { state(sequence).blocks }

    /// Start of the keys of (block, layer, kvHead): `blockSize × headDim` floats.
    @inline(__always)
    public func keyBase(block: Int32, layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        keys + Int(block) * blockStride + (layer * kvHeads + head) * blockSize * headDim
    }

    @inline(__always)
    public func valueBase(block: Int32, layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        values + Int(block) * blockStride + (layer * kvHeads + head) * blockSize * headDim
    }

    public struct CacheFull: Error, CustomStringConvertible, Sendable {
        public let requestedTokens: Int
        public let freeTokens: Int
        public let capacityTokens: Int
        public var description: String {
            "KV cache full: \(requestedTokens) more tokens requested, room for \(freeTokens); the KV cache holds \(capacityTokens) (raise --kv-capacity or lower the batch)"
        }
    }

    private func state(_ sequence: SequenceID) -> SequenceState {
        guard let state = sequences[sequence.raw] else { preconditionFailure("unknown or released KV sequence \(sequence.raw)") }
        return state
    }

    /// Removes the state from the table so it is uniquely referenced and mutates in place: the hot
    /// path (one token appended) then allocates nothing. Callers put it back.
    private func takeState(_ sequence: SequenceID) -> SequenceState {
        guard let state = sequences.removeValue(forKey: sequence.raw) else {
            preconditionFailure("unknown or released KV sequence \(sequence.raw)")
        }
        return state
    }

    private func takeFreeBlock() -> Int32 {
        let block = freeBlocks.removeLast()
        referenceCounts[Int(block)] = 1
        return block
    }

    private func unreference(_ block: Int32) {
        referenceCounts[Int(block)] -= 1
        if referenceCounts[Int(block)] == 0 { freeBlocks.append(block) }
    }
}
