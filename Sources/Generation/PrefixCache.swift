import Models

/// Recently prefilled prompts kept in the KV cache, so a prompt that extends one of them (the next
/// stage of the same job, another judge call on the same question) prefills only its new tokens.
/// Entries are whole retained sequences; reusing one forks it, so the entry stays intact.
struct PrefixCache {
    struct Entry {
        /// Content hashes of the images behind the entry's image tokens: image tokens are all the
        /// same id, so equal ids alone would not mean equal keys and values.
        let images: [String]
        let tokens: [Int]
        let sequence: PagedKVCache.SequenceID
        var lastUse: Int
    }

    let capacity: Int
    private(set) var entries: [Entry] = []
    private var clock = 0

    init(capacity: Int) { self.capacity = capacity }

    /// The entry sharing the longest token prefix with `tokens` (and the same images), and that length.
    mutating func longestMatch(_ tokens: [Int], images: [String]) -> (sequence: PagedKVCache.SequenceID, length: Int)? {
        var best: (index: Int, length: Int)?
        for (i, entry) in entries.enumerated() where entry.images == images {
            let length = commonPrefixLength(entry.tokens, tokens)
            if length > (best?.length ?? 0) { best = (i, length) }
        }
        guard let best else { return nil }
        clock += 1
        entries[best.index].lastUse = clock
        return (entries[best.index].sequence, best.length)
    }

    /// Keeps `sequence` (holding exactly `tokens`) for reuse; returns sequences the caller must
    /// release: the least recently used beyond capacity, or an entry the new one supersedes.
    mutating func insert(_ tokens: [Int], images: [String], sequence: PagedKVCache.SequenceID) -> [PagedKVCache.SequenceID] {
        var released: [PagedKVCache.SequenceID] = []
        // An entry that is a prefix of the new one is redundant: the new one serves all its matches.
        entries.removeAll { entry in
            let redundant =
                entry.images == images && entry.tokens.count <= tokens.count
                && commonPrefixLength(entry.tokens, tokens) == entry.tokens.count
            if redundant { released.append(entry.sequence) }
            return redundant
        }
        clock += 1
        entries.append(Entry(images: images, tokens: tokens, sequence: sequence, lastUse: clock))
        while entries.count > capacity { released.append(removeLeastRecentlyUsed()) }
        return released
    }

    /// Drops the least recently used entry (to free KV blocks); nil when empty.
    mutating func evictOne() -> PagedKVCache.SequenceID? {
        entries.isEmpty ? nil : removeLeastRecentlyUsed()
    }

    private mutating func removeLeastRecentlyUsed() -> PagedKVCache.SequenceID {
        let index = entries.indices.min { entries[$0].lastUse < entries[$1].lastUse }!
        return entries.remove(at: index).sequence
    }
}

func commonPrefixLength(_ a: [Int], _ b: [Int]) -> Int {
    var n = 0
    let limit = min(a.count, b.count)
    while n < limit && a[n] == b[n] { n += 1 }
    return n
}
