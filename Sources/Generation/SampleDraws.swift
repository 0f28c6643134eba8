import Kernels

/// The vocabulary-wide work of a decode step, across the compute pool: for every row of the step's
/// logits, the token its sample draws and the log-normalizer of its logits (for the token's
/// log-probability), as two items. With 49,152 logits a row, this work took about a fifth of the
/// calling thread's time in a batch of 8 (q4_0, two threads) while the other threads spun. A
/// draw reads only its row's logits, its request's parameters and its own sample's random state,
/// and each thread draws with its own sampler's scratch, so every token is the one a serial loop
/// draws, whatever the threads. Allocates nothing per step.
final class SampleDraws: ParallelTask {
    /// One per pool thread (a sampler's scratch is written by every draw).
    private let samplers: [TokenSampler]
    private let vocabulary: Int
    /// Per row: the sample it advances, that sample's parameters, and the results.
    private let sampleIndex: UnsafeMutablePointer<Int>
    private let parameters: UnsafeMutablePointer<SamplingParameters>
    let tokens: UnsafeMutablePointer<Int>
    let logNormalizers: UnsafeMutablePointer<Float>

    // The step being run.
    private var logits: UnsafePointer<Float>?
    private var samples: UnsafeMutableBufferPointer<SampleState>?

    init(vocabularySize: Int, rows: Int, threads: Int) {
        vocabulary = vocabularySize
        samplers = (0..<threads).map { _ in TokenSampler(vocabularySize: vocabularySize) }
        sampleIndex = .allocate(capacity: rows)
        parameters = .allocate(capacity: rows)
        parameters.initialize(repeating: .greedy, count: rows)
        tokens = .allocate(capacity: rows)
        logNormalizers = .allocate(capacity: rows)
    }

    deinit {
        sampleIndex.deallocate()
        parameters.deallocate()
        tokens.deallocate()
        logNormalizers.deallocate()
    }

    /// Makes row `row` of the next step the draw of sample `index` with `sampling`.
    func setRow(_ row: Int, sample index: Int, sampling: SamplingParameters) {
        sampleIndex[row] = index
        parameters[row] = sampling
    }

    /// Draws the first `rows` rows of `logits` (rows × vocabulary), advancing the samples' random
    /// states; the results are in `tokens` and `logNormalizers`.
    func callAsFunction(rows: Int, logits: UnsafePointer<Float>, samples: inout [SampleState], pool: ComputePool) {
        samples.withUnsafeMutableBufferPointer { samples in
            (self.logits, self.samples) = (logits, samples)
            pool.run(self, count: 2 * rows)
            (self.logits, self.samples) = (nil, nil)
        }
    }

    func run(chunk: Int, start: Int, end: Int) {
        guard let logits, let samples else { return }
        for item in start..<end {
            let row = item / 2
            let rowLogits = logits + row * vocabulary
            if item % 2 == 0 {
                let i = sampleIndex[row]
                tokens[row] = samples[i].seen.withUnsafeBufferPointer {
                    samplers[chunk].sample(logits: rowLogits, parameters: parameters[row], seen: $0, random: &samples[i].random)
                }
            } else {
                logNormalizers[row] = logSumExp(rowLogits, count: vocabulary)
            }
        }
    }
}
