/// A FIFO of multipart messages with O(1) push, pop and push-to-front.
struct FrameQueue {
    private var items: [[[UInt8]]] = []
    private var head = 0

    var count: Int { items.count - head }
    var first: [[UInt8]]? { head < items.count ? items[head] : nil }

    mutating func append(_ frames: [[UInt8]]) { items.append(frames) }

    mutating func prepend(_ frames: [[UInt8]]) {
        if head > 0 {
            head -= 1
            items[head] = frames
        } else {
            items.insert(frames, at: 0)
        }
    }

    mutating func removeFirst() {
        items[head] = [] // release the frames now, not at the next compaction
        head += 1
        // Compact once the consumed prefix dominates, keeping pops amortised O(1).
        if head > 32 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}
