import Models
import Testing

@Suite struct PagedKVCacheTests {
    func cache(blocks: Int) -> PagedKVCache {
        PagedKVCache(layers: 1, kvHeads: 1, headDim: 2, capacityTokens: blocks * 4, blockSize: 4)
    }

    func write(_ cache: PagedKVCache, _ sequence: PagedKVCache.SequenceID, position: Int, value: Float) {
        let block = cache.blocks(of: sequence)[position / cache.blockSize]
        cache.keyBase(block: block, layer: 0, head: 0)[(position % cache.blockSize) * 2] = value
    }

    func read(_ cache: PagedKVCache, _ sequence: PagedKVCache.SequenceID, position: Int) -> Float {
        let block = cache.blocks(of: sequence)[position / cache.blockSize]
        return cache.keyBase(block: block, layer: 0, head: 0)[(position % cache.blockSize) * 2]
    }

    @Test func forkSharesBlocksAndCopiesOnlyThePartialOne() throws {
        let cache = cache(blocks: 8)
        let parent = cache.createSequence()
        _ = try cache.append(parent, count: 6) // one full block + 2 tokens of the second
        for p in 0..<6 { write(cache, parent, position: p, value: Float(p)) }
        #expect(cache.usedBlocks == 2)

        let child = cache.fork(parent)
        #expect(cache.usedBlocks == 2, "a fork copies nothing")
        #expect(try cache.append(child, count: 1) == 6)
        write(cache, child, position: 6, value: 60)
        #expect(cache.usedBlocks == 3, "the shared partial block is copied before the child writes")
        #expect(cache.blocks(of: child)[0] == cache.blocks(of: parent)[0], "full blocks stay shared")
        #expect(cache.blocks(of: child)[1] != cache.blocks(of: parent)[1])
        for p in 0..<6 { #expect(read(cache, child, position: p) == Float(p)) }

        _ = try cache.append(parent, count: 1)
        write(cache, parent, position: 6, value: 99)
        #expect(read(cache, child, position: 6) == 60, "parent writes do not leak into the child")
    }

    @Test func trimAndReleaseReturnBlocks() throws {
        let cache = cache(blocks: 4)
        let a = cache.createSequence()
        _ = try cache.append(a, count: 10)
        #expect(cache.usedBlocks == 3)
        cache.trim(a, to: 4)
        #expect(cache.usedBlocks == 1 && cache.length(of: a) == 4)
        let b = cache.fork(a)
        cache.release(a)
        #expect(cache.usedBlocks == 1, "a block still referenced by the fork stays")
        cache.release(b)
        #expect(cache.usedBlocks == 0)
    }

    @Test func fullCacheThrowsAndKeepsState() throws {
        let cache = cache(blocks: 2)
        let a = cache.createSequence()
        _ = try cache.append(a, count: 8)
        #expect(throws: PagedKVCache.CacheFull.self) { try cache.append(a, count: 1) }
        #expect(cache.length(of: a) == 8)
    }
}
