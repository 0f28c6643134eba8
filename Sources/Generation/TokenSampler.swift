import Foundation
import Kernels

/// Draws tokens from logits with the filters of `SamplingParameters`, using scratch memory sized
/// for the vocabulary once, so sampling allocates nothing per token.
public final class TokenSampler: @unchecked Sendable {
    public let vocabularySize: Int
    private let work: UnsafeMutablePointer<Float> // (vocab) processed scores, then probabilities
    private let order: UnsafeMutablePointer<Int32> // (vocab) candidate ids, best first once sorted

    public init(vocabularySize: Int) {
        self.vocabularySize = vocabularySize
        work = .allocate(capacity: vocabularySize)
        order = .allocate(capacity: vocabularySize)
    }

    deinit {
        work.deallocate()
        order.deallocate()
    }

    /// The next token for one sequence. `logits` (vocab) is left untouched; `seen` lists the distinct
    /// ids of the sequence so far (prompt and output), used only by the repetition penalty.
    public func sample(
        logits: UnsafePointer<Float>, parameters p: SamplingParameters,
        seen: UnsafeBufferPointer<Int32>, random: inout SeededRandom
    ) -> Int {
        let n = vocabularySize
        work.update(from: logits, count: n)
        if p.repetitionPenalty != 1 {
            for id in seen {
                let score = work[Int(id)]
                work[Int(id)] = score < 0 ? score * p.repetitionPenalty : score / p.repetitionPenalty
            }
        }
        if p.isGreedy { return argmax(work, count: n) }

        let inverseTemperature = 1 / p.temperature
        for i in 0..<n { work[i] *= inverseTemperature }

        // Candidates: the top k (sorted), or every id (in id order) when top-k is off.
        var count: Int
        var sorted = false
        if p.topK > 0 && p.topK < n {
            count = selectTop(work, count: n, k: p.topK, into: order)
            sorted = true
        } else {
            count = n
            for i in 0..<n { order[i] = Int32(i) }
        }

        // Probabilities over the candidates (work[id] becomes p(id) for every candidate id).
        var maximum = -Float.infinity
        for j in 0..<count { maximum = max(maximum, work[Int(order[j])]) }
        if sorted {
            var total: Float = 0
            for j in 0..<count { let id = Int(order[j]); let e = expf(work[id] - maximum); work[id] = e; total += e }
            for j in 0..<count { work[Int(order[j])] /= total }
        } else {
            // Every id, in id order: the vector exponential over the contiguous row.
            let total = exponentialSum(work, count: n, shift: maximum, terms: work)
            for i in 0..<n { work[i] /= total }
        }

        if p.topP < 1 {
            if !sorted {
                count = nucleusCandidates(count: count, topP: p.topP)
                sorted = true
            }
            // Keep the smallest best-first prefix whose mass reaches top-p (at least one token).
            var mass: Float = 0
            var kept = 0
            while kept < count {
                mass += work[Int(order[kept])]
                kept += 1
                if mass >= p.topP { break }
            }
            count = kept
        }
        if p.minP > 0 {
            var best: Float = 0
            for j in 0..<count { best = max(best, work[Int(order[j])]) }
            let threshold = p.minP * best
            var kept = 0
            for j in 0..<count where work[Int(order[j])] >= threshold { order[kept] = order[j]; kept += 1 }
            count = kept
        }

        var remaining: Float = 0
        for j in 0..<count { remaining += work[Int(order[j])] }
        var target = random.nextUnitFloat() * remaining
        for j in 0..<count {
            target -= work[Int(order[j])]
            if target < 0 { return Int(order[j]) }
        }
        return Int(order[count - 1]) // rounding left a sliver of mass unassigned
    }

    /// Narrows `order[0..<count]` to the ids that can be in a top-p nucleus and sorts them best first.
    /// Ids far below the best (p < 1e-6·p(best)) are skipped when the rest already hold top-p of the
    /// mass — then the nucleus cannot reach them — which saves sorting the whole vocabulary.
    private func nucleusCandidates(count: Int, topP: Float) -> Int {
        var best: Float = 0
        for j in 0..<count { best = max(best, work[Int(order[j])]) }
        let floor = best * 1e-6
        var kept = 0
        var keptMass: Float = 0
        for j in 0..<count where work[Int(order[j])] >= floor {
            keptMass += work[Int(order[j])]
            order[kept] = order[j]
            kept += 1
        }
        let candidates = keptMass >= topP ? kept : count
        if candidates == count && kept != count { for i in 0..<count { order[i] = Int32(i) } }
        heapSortBestFirst(order, count: candidates, by: work)
        return candidates
    }
}

/// Index of the largest value; the first one on ties (as torch.argmax).
public func argmax(_ values: UnsafePointer<Float>, count: Int) -> Int {
    var best = 0
    for i in 1..<count where values[i] > values[best] { best = i }
    return best
}

/// Writes the ids of the `k` largest values into `ids`, best first (lower id first on ties).
/// Returns how many were written (`min(k, count)`).
@discardableResult
public func selectTop(_ values: UnsafePointer<Float>, count: Int, k: Int, into ids: UnsafeMutablePointer<Int32>) -> Int {
    var filled = 0
    for i in 0..<count {
        let value = values[i]
        if filled == k && value <= values[Int(ids[k - 1])] { continue }
        var j = filled == k ? k - 1 : filled
        while j > 0 && values[Int(ids[j - 1])] < value { ids[j] = ids[j - 1]; j -= 1 }
        ids[j] = Int32(i)
        if filled < k { filled += 1 }
    }
    return filled
}

/// In-place heap sort of `ids` by `keys[id]` descending, then id ascending. No allocation.
func heapSortBestFirst(_ ids: UnsafeMutablePointer<Int32>, count: Int, by keys: UnsafePointer<Float>) {
    // "a sorts after b": the heap keeps the worst at the root, so the array ends best first.
    @inline(__always) func after(_ a: Int32, _ b: Int32) -> Bool {
        let ka = keys[Int(a)], kb = keys[Int(b)]
        return ka < kb || (ka == kb && a > b)
    }
    func siftDown(_ start: Int, _ end: Int) {
        var root = start
        while 2 * root + 1 < end {
            var child = 2 * root + 1
            if child + 1 < end && after(ids[child + 1], ids[child]) { child += 1 }
            guard after(ids[child], ids[root]) else { return }
            swap(root, child)
            root = child
        }
    }
    @inline(__always) func swap(_ i: Int, _ j: Int) { let t = ids[i]; ids[i] = ids[j]; ids[j] = t }
    guard count > 1 else { return }
    for start in stride(from: count / 2 - 1, through: 0, by: -1) { siftDown(start, count) }
    for end in stride(from: count - 1, to: 0, by: -1) {
        swap(0, end)
        siftDown(0, end)
    }
}
