import JSON

/// Byte-level BPE (tokenizer.json `model.type == "BPE"`): the vocabulary keyed by raw bytes, the merge
/// ranks, and the merge loop of the `tokenizers` library (lowest rank first, leftmost on ties).
final class BPEModel {
    /// Raw bytes → id.
    let vocabulary: ByteStringTable
    /// Id of each single byte (-1 when the vocabulary lacks it).
    let byteIds: [Int32]
    /// (left id, right id) → (rank, merged id).
    let merges: MergeTable
    /// Llama-3 sets this: a word that is itself in the vocabulary is one token, whatever the merges say.
    let ignoreMerges: Bool
    /// Used for a byte the vocabulary lacks; without it such bytes are dropped (as the library does).
    let unknownId: Int32?
    /// id → raw bytes, for every id of the model vocabulary.
    let tokenBytes: [Int32: [UInt8]]
    let maxId: Int

    init(json model: JSONObject, path: String) throws {
        let type = try model.optionalString("type") ?? "BPE"
        guard type == "BPE" else {
            throw TokenizerError(.unsupportedComponent, "\(path): model type \"\(type)\" is not supported (only byte-level \"BPE\")")
        }
        if let dropout = try model.optionalDouble("dropout"), dropout != 0 {
            throw TokenizerError(.unsupportedComponent, "\(path): BPE dropout \(dropout) is not supported at inference")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = try model.optionalString(key), !value.isEmpty {
                throw TokenizerError(.unsupportedComponent, "\(path): BPE \(key) \"\(value)\" is not supported (not byte-level BPE)")
            }
        }
        if try model.optionalBool("byte_fallback") == true {
            throw TokenizerError(
                .unsupportedComponent, "\(path): BPE byte_fallback is not supported (SentencePiece-style BPE, not byte-level)")
        }
        ignoreMerges = try model.optionalBool("ignore_merges") ?? false

        // Vocabulary: token strings are in GPT-2's byte-level alphabet; key them by the bytes they stand for.
        let vocab = try model.object("vocab")
        var table = ByteStringTable(minimumCapacity: vocab.count)
        var bytesById: [Int32: [UInt8]] = [:]
        bytesById.reserveCapacity(vocab.count)
        var maxId = -1
        for (token, value) in vocab.fields {
            guard let id = value.integer, id >= 0, id <= Int(Int32.max) else {
                throw TokenizerError(.malformedJSON, "\(path): model.vocab[\"\(token)\"] is not a non-negative integer id")
            }
            guard let bytes = ByteLevel.bytes(fromTokenString: token) else {
                // Outside the byte-level alphabet (text pasted into a vocabulary): no byte sequence
                // spells it, so encoding never yields it; the ByteLevel decoder gives its UTF-8 text.
                bytesById[Int32(id)] = Array(token.utf8)
                maxId = max(maxId, id)
                continue
            }
            if let other = table.insert(bytes, value: Int32(id)) {
                throw TokenizerError(
                    .inconsistentVocabulary, "\(path): vocabulary tokens for ids \(other) and \(id) stand for the same bytes")
            }
            bytesById[Int32(id)] = bytes
            maxId = max(maxId, id)
        }
        vocabulary = table
        tokenBytes = bytesById
        self.maxId = maxId
        byteIds = (0..<256).map { table.find([UInt8($0)]) ?? -1 }

        if let unk = try model.optionalString("unk_token") {
            guard let bytes = ByteLevel.bytes(fromTokenString: unk), let id = table.find(bytes) else {
                throw TokenizerError(.inconsistentVocabulary, "\(path): unk_token \"\(unk)\" is not in the vocabulary")
            }
            unknownId = id
        } else {
            unknownId = nil
        }

        // Merges: a list of [left, right] pairs, or (older files) a list of "left right" strings.
        let list = try model.array("merges")
        var merges = MergeTable(capacity: list.count)
        for (rank, entry) in list.enumerated() {
            let left: String, right: String
            if let pair = entry.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                (left, right) = (a, b)
            } else if let line = entry.string {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError(.malformedJSON, "\(path): merge #\(rank) \"\(line)\" is not two tokens separated by one space")
                }
                (left, right) = (String(parts[0]), String(parts[1]))
            } else {
                throw TokenizerError(.malformedJSON, "\(path): merge #\(rank) is neither a [left, right] pair nor a \"left right\" string")
            }
            guard let lb = ByteLevel.bytes(fromTokenString: left), let rb = ByteLevel.bytes(fromTokenString: right),
                let l = table.find(lb), let r = table.find(rb)
            else {
                throw TokenizerError(
                    .inconsistentVocabulary, "\(path): merge #\(rank) (\"\(left)\", \"\(right)\") names a token missing from the vocabulary"
                )
            }
            guard let merged = table.find(lb + rb) else {
                throw TokenizerError(
                    .inconsistentVocabulary, "\(path): merge #\(rank) result \"\(left)\(right)\" is missing from the vocabulary")
            }
            merges.insert(left: l, right: r, rank: UInt32(rank), merged: merged)
        }
        self.merges = merges
    }

    /// Appends the ids of one pre-tokenized word (raw bytes) to `out`.
    func tokenize(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch: inout BPEScratch) {
        if word.isEmpty { return }
        if ignoreMerges, let id = vocabulary.find(word) {
            out.append(id)
            return
        }
        scratch.reset(capacity: word.count)
        for b in word {
            let id = byteIds[Int(b)]
            if id >= 0 {
                scratch.appendSymbol(id)
            } else if let unknownId {
                scratch.appendSymbol(unknownId)
            }
        }
        scratch.mergeAll(merges)
        scratch.appendLiveSymbols(to: &out)
    }
}

/// Reusable working memory for the merge loop: a doubly linked list of symbols over arrays, and a binary
/// min-heap of candidate merges ordered by (rank, position). Kept between words so that encoding does
/// not allocate per word.
struct BPEScratch {
    private var ids: [Int32] = []
    private var prev: [Int32] = []
    private var next: [Int32] = []
    private var alive: [Bool] = []
    private var heap: [(rank: UInt32, pos: Int32, merged: Int32)] = []

    mutating func reset(capacity: Int) {
        ids.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        alive.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
        ids.reserveCapacity(capacity)
    }

    mutating func appendSymbol(_ id: Int32) {
        let i = Int32(ids.count)
        ids.append(id)
        prev.append(i - 1)
        next.append(i + 1)
        alive.append(true)
    }

    @inline(__always)
    private static func less(_ a: (rank: UInt32, pos: Int32, merged: Int32), _ b: (rank: UInt32, pos: Int32, merged: Int32)) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos
    }

    private mutating func push(_ item: (rank: UInt32, pos: Int32, merged: Int32)) {
        heap.append(item)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !Self.less(heap[i], heap[parent]) { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func pop() -> (rank: UInt32, pos: Int32, merged: Int32)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, Self.less(heap[l], heap[m]) { m = l }
                if r < heap.count, Self.less(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return top
    }

    @inline(__always)
    private static func lookup(_ merges: MergeTable, _ left: Int32, _ right: Int32) -> (rank: UInt32, merged: Int32)? {
        merges.find(left: left, right: right)
    }

    /// The `tokenizers` merge loop: repeatedly apply the lowest-ranked merge among adjacent pairs
    /// (leftmost first on equal rank), skipping queue entries made stale by earlier merges.
    mutating func mergeAll(_ merges: MergeTable) {
        let n = Int32(ids.count)
        if n < 2 { return }
        for i in 0..<(n - 1) {
            if let m = Self.lookup(merges, ids[Int(i)], ids[Int(i + 1)]) { push((m.rank, i, m.merged)) }
        }
        while let top = pop() {
            let pos = Int(top.pos)
            guard alive[pos], next[pos] < n else { continue }
            let right = Int(next[pos])
            // Stale entry: the pair at `pos` changed since it was queued.
            guard let current = Self.lookup(merges, ids[pos], ids[right]), current.merged == top.merged else { continue }
            ids[pos] = top.merged
            alive[right] = false
            next[pos] = next[right]
            if next[right] < n { prev[Int(next[right])] = Int32(pos) }
            if prev[pos] >= 0, let m = Self.lookup(merges, ids[Int(prev[pos])], ids[pos]) {
                push((m.rank, prev[pos], m.merged))
            }
            if next[pos] < n, let m = Self.lookup(merges, ids[pos], ids[Int(next[pos])]) {
                push((m.rank, Int32(pos), m.merged))
            }
        }
    }

    func appendLiveSymbols(to out: inout [Int32]) {
        for i in ids.indices where alive[i] { out.append(ids[i]) }
    }
}

/// Open-addressing map from a pair of ids to (rank, merged id): the merge loop's innermost lookup,
/// cheaper than a `Dictionary` (no SipHash, one array probe).
struct MergeTable {
    private static let empty = UInt64.max
    private var keys: [UInt64]
    private var values: [UInt64]
    private let mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Keeps the first (lowest) rank when a pair is listed twice, as the library does.
    mutating func insert(left: Int32, right: Int32, rank: UInt32, merged: Int32) {
        let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
        var i = slot(key)
        while keys[i] != Self.empty {
            if keys[i] == key { return }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = UInt64(rank) << 32 | UInt64(UInt32(merged))
    }

    @inline(__always)
    func find(left: Int32, right: Int32) -> (rank: UInt32, merged: Int32)? {
        let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
        return keys.withUnsafeBufferPointer { keys in
            var i = slot(key)
            while true {
                let k = keys[i]
                if k == key {
                    let v = values[i]
                    return (UInt32(v >> 32), Int32(truncatingIfNeeded: v))
                }
                if k == Self.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }
}
