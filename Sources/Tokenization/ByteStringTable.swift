/// An open-addressing hash map from byte strings to Int32, with every key stored in one arena.
///
/// Vocabularies are keyed by bytes, not `String` (whose `==` is canonical equivalence: "é" and "e\u{301}"
/// would collide), and lookups take a buffer pointer so that encoding allocates nothing per word.
struct ByteStringTable {
    private struct Slot {
        var offset: Int32 = 0
        var length: Int32 = -1 // -1: empty
        var value: Int32 = 0
        var hash: UInt32 = 0
    }

    private var arena: [UInt8] = []
    private var slots: [Slot]
    private var mask: Int
    private(set) var count = 0

    init(minimumCapacity: Int = 16) {
        var capacity = 16
        while capacity < minimumCapacity * 2 { capacity <<= 1 }
        slots = [Slot](repeating: Slot(), count: capacity)
        mask = capacity - 1
    }

    /// FNV-1a: keys are short (a word or a token), so a simple byte-at-a-time hash is fast enough.
    @inline(__always)
    private static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key {
            h = (h ^ UInt64(b)) &* 0x100_0000_01b3
        }
        return UInt32(truncatingIfNeeded: h ^ (h >> 32))
    }

    func find(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let h = Self.hash(key)
        return slots.withUnsafeBufferPointer { slots in
            arena.withUnsafeBufferPointer { arena in
                var i = Int(h) & mask
                while true {
                    let slot = slots[i]
                    if slot.length < 0 { return nil }
                    if slot.hash == h, Int(slot.length) == key.count,
                        key.count == 0 || memcmp(arena.baseAddress! + Int(slot.offset), key.baseAddress!, key.count) == 0
                    {
                        return slot.value
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    func find(_ key: [UInt8]) -> Int32? {
        key.withUnsafeBufferPointer { find($0) }
    }

    /// Inserts `key → value` unless the key is present; returns the value already stored, if any.
    @discardableResult
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, value: Int32) -> Int32? {
        if let existing = find(key) { return existing }
        if (count + 1) * 2 > slots.count { grow() }
        let h = Self.hash(key)
        let offset = Int32(arena.count)
        arena.append(contentsOf: key)
        place(Slot(offset: offset, length: Int32(key.count), value: value, hash: h))
        count += 1
        return nil
    }

    @discardableResult
    mutating func insert(_ key: [UInt8], value: Int32) -> Int32? {
        key.withUnsafeBufferPointer { insert($0, value: value) }
    }

    mutating func removeAll() {
        arena.removeAll(keepingCapacity: true)
        for i in slots.indices { slots[i] = Slot() }
        count = 0
    }

    private mutating func place(_ slot: Slot) {
        var i = Int(slot.hash) & mask
        while slots[i].length >= 0 { i = (i + 1) & mask }
        slots[i] = slot
    }

    private mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(), count: old.count * 2)
        mask = slots.count - 1
        for slot in old where slot.length >= 0 { place(slot) }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
