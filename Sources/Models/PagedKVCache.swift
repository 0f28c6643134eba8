/// How a KV cache stores keys and values: f32 (the default, whose logits equal transformers' on an
/// f32 reference) or f16 (half the memory and half the bytes attention reads, as llama.cpp's default
/// cache: each key and value rounded to nearest f16 once when stored).
public enum KVCacheType: String, CaseIterable, Sendable {
    case f32, f16

    /// Bytes per stored element.
    public var bytes: Int { self == .f32 ? 4 : 2 }
}

/// Keys and values of many sequences in fixed-size blocks, shared copy-on-write.
///
/// A sequence is a list of blocks plus a length. `fork` gives a new sequence the same blocks
/// (reference-counted, nothing copied), so n candidates continue one prefix that was computed and
/// stored once. Appending to a sequence whose last block is shared copies just that block first.
/// `trim` cuts a sequence back (e.g. to retry from an earlier point) and `release` frees it.
///
/// Layout of one block: (layers, kvHeads, blockSize, headDim) for keys and the same for values,
/// so one head's keys within a block are contiguous for the attention dot products. Elements are
/// `Float` or f16 bits (`UInt16`), as `type` says.
/// Memory is reserved up front for `capacityTokens` but only touched pages become resident.
public final class PagedKVCache: @unchecked Sendable {
    public struct SequenceID: Hashable, Sendable { public let raw: Int }

    public let layers: Int, kvHeads: Int, headDim: Int
    public let blockSize: Int
    public let capacityBlocks: Int
    public let type: KVCacheType
    /// Elements in one block of keys (or of values).
    let blockStride: Int
    let keys: UnsafeMutableRawPointer
    let values: UnsafeMutableRawPointer

    private var referenceCounts: [Int32]
    private var freeBlocks: [Int32]
    private var sequences: [Int: SequenceState] = [:]
    private var nextSequence = 0

    struct SequenceState {
        var blocks: [Int32]
        var length: Int
    }

    public init(layers: Int, kvHeads: Int, headDim: Int, capacityTokens: Int, blockSize: Int = 16, type: KVCacheType = .f32) {
        self.layers = layers
        self.type = type
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.blockSize = blockSize
        self.capacityBlocks = max(1, (capacityTokens + blockSize - 1) / blockSize)
        self.blockStride = layers * kvHeads * blockSize * headDim
        let bytes = capacityBlocks * blockStride * type.bytes
        keys = .allocate(byteCount: bytes, alignment: 64)
        values = .allocate(byteCount: bytes, alignment: 64)
        switch type {
        case .f32:
            keys.bindMemory(to: Float.self, capacity: capacityBlocks * blockStride)
            values.bindMemory(to: Float.self, capacity: capacityBlocks * blockStride)
        case .f16:
            keys.bindMemory(to: UInt16.self, capacity: capacityBlocks * blockStride)
            values.bindMemory(to: UInt16.self, capacity: capacityBlocks * blockStride)
        }
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
            let blockBytes = blockStride * type.bytes
            (keys + Int(copy) * blockBytes).copyMemory(from: keys + Int(shared) * blockBytes, byteCount: blockBytes)
            (values + Int(copy) * blockBytes).copyMemory(from: values + Int(shared) * blockBytes, byteCount: blockBytes)
            unreference(shared)
            state.blocks[partialBlock] = copy
        }
        while state.blocks.count < neededBlocks { state.blocks.append(takeFreeBlock()) }
        state.length = newLength
        return start
    }

    /// The blocks holding `sequence`'s tokens, in order (the last may be partly filled).
    public func blocks(of sequence: SequenceID) -> [Int32] { state(sequence).blocks }

    /// Element offset of (block, layer, kvHead)'s `blockSize × headDim` keys (or values).
    @inline(__always)
    func offset(block: Int32, layer: Int, head: Int) -> Int {
        Int(block) * blockStride + (layer * kvHeads + head) * blockSize * headDim
    }

    /// Start of the keys of (block, layer, kvHead) in an f32 cache.
    @inline(__always)
    public func keyBase(block: Int32, layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        precondition(type == .f32, "an f16 cache's keys are read by sb_attention_half")
        return keys.assumingMemoryBound(to: Float.self) + offset(block: block, layer: layer, head: head)
    }

    /// Start of the values of (block, layer, kvHead) in an f32 cache.
    @inline(__always)
    public func valueBase(block: Int32, layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        precondition(type == .f32, "an f16 cache's values are read by sb_attention_half")
        return values.assumingMemoryBound(to: Float.self) + offset(block: block, layer: layer, head: head)
    }

    /// An f16 cache's keys and values of (block 0, layer, kvHead), as `sb_attention_half` takes them.
    @inline(__always)
    func halfBases(layer: Int, head: Int) -> (keys: UnsafePointer<UInt16>, values: UnsafePointer<UInt16>) {
        precondition(type == .f16, "an f32 cache has no f16 elements")
        let at = offset(block: 0, layer: layer, head: head)
        return (
            UnsafePointer(keys.assumingMemoryBound(to: UInt16.self) + at), UnsafePointer(values.assumingMemoryBound(to: UInt16.self) + at)
        )
    }

    /// Writes one position's keys and values for `layer` — `kvHeads × headDim` floats each, head
    /// after head, as a projection leaves them — at `position` of `sequence` (reserved with
    /// `append`), rounding to f16 in an f16 cache.
    public func store(keys key: UnsafePointer<Float>, values value: UnsafePointer<Float>, sequence: SequenceID, position: Int, layer: Int) {
        let block = state(sequence).blocks[position / blockSize], slot = (position % blockSize) * headDim
        for head in 0..<kvHeads {
            let at = offset(block: block, layer: layer, head: head) + slot, from = head * headDim
            switch type {
            case .f32:
                (keys.assumingMemoryBound(to: Float.self) + at).update(from: key + from, count: headDim)
                (values.assumingMemoryBound(to: Float.self) + at).update(from: value + from, count: headDim)
            case .f16:
                let (k, v) = (keys.assumingMemoryBound(to: UInt16.self) + at, values.assumingMemoryBound(to: UInt16.self) + at)
                for i in 0..<headDim {
                    k[i] = Float16(key[from + i]).bitPattern
                    v[i] = Float16(value[from + i]).bitPattern
                }
            }
        }
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
