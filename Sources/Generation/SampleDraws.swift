import Kernels

/// The vocabulary-wide work of a generation step, across the compute pool: for every row, the
/// token its sample draws from the row's logits and the log-normalizer of those logits (for the
/// token's log-probability), as two items. With 49,152 logits a row, this work took about a fifth
/// of the calling thread's time in a batch of 8 (q4_0, two threads) while the other threads spun.
/// A draw reads only its row's logits, its request's parameters and its own sample's random state,
/// and each thread draws with its own sampler's scratch, so every token is the one a serial loop
/// draws, whatever the threads. Allocates nothing per step.
final class SampleDraws: ParallelTask {
    /// One per pool thread (a sampler's scratch is written by every draw).
    private let samplers: [TokenSampler]
    private let vocabulary: Int
    /// Per row: the sample it advances, its logits, that sample's parameters, and the results.
    private let sampleIndex: UnsafeMutablePointer<Int>
    private let rowLogits: UnsafeMutablePointer<UnsafePointer<Float>?>
    private let parameters: UnsafeMutablePointer<SamplingParameters>
    let tokens: UnsafeMutablePointer<Int>
    let logNormalizers: UnsafeMutablePointer<Float>

    // The step being run.
    private var samples: UnsafeMutableBufferPointer<SampleState>?

    init(vocabularySize: Int, rows: Int, threads: Int) {
        vocabulary = vocabularySize
        samplers = (0..<threads).map { _ in TokenSampler(vocabularySize: vocabularySize) }
        sampleIndex = .allocate(capacity: rows)
        rowLogits = .allocate(capacity: rows)
        rowLogits.initialize(repeating: nil, count: rows)
        parameters = .allocate(capacity: rows)
        parameters.initialize(repeating: .greedy, count: rows)
        tokens = .allocate(capacity: rows)
        logNormalizers = .allocate(capacity: rows)
    }

    deinit {
        sampleIndex.deallocate()
        rowLogits.deallocate()
        parameters.deallocate()
        tokens.deallocate()
        logNormalizers.deallocate()
    }

    /// Makes row `row` of the next step the draw of sample `index` from `logits` with `sampling`.
    func setRow(_ row: Int, sample index: Int, logits: UnsafePointer<Float>, sampling: SamplingParameters) {
        sampleIndex[row] = index
        rowLogits[row] = logits
        parameters[row] = sampling
    }

    /// Draws the first `rows` rows, advancing the samples' random states; the results are in
    /// `tokens` and `logNormalizers`. The rows' logits must stay valid until it returns.
    func callAsFunction(rows: Int, samples: inout [SampleState], pool: ComputePool) {
        samples.withUnsafeMutableBufferPointer { samples in
            self.samples = samples
            pool.run(self, count: 2 * rows)
            self.samples = nil
        }
    }

    func run(chunk: Int, start: Int, end: Int) {
        guard let samples else { return }
        for item in start..<end {
            let row = item / 2
            let logits = rowLogits[row]!
            if item % 2 == 0 {
                let i = sampleIndex[row]
                tokens[row] = samples[i].seen.withUnsafeBufferPointer {
                    samplers[chunk].sample(logits: logits, parameters: parameters[row], seen: $0, random: &samples[i].random)
                }
            } else {
                logNormalizers[row] = logSumExp(logits, count: vocabulary)
            }
        }
    }
}
