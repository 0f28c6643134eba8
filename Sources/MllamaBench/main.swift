// mllama-bench: speed and memory of a Llama 3.2 Vision checkpoint on this machine — image encoding
// (tiling, vision encoder, cross-attention keys/values), prompt prefill, and decoding n candidates
// forked from the image prompt (the stage-level beam search pattern). Random prompt ids; the
// numbers depend on shapes, not on the weights. Run by scripts/bench/mllama.sh.
//
//   mllama-bench MODEL_DIR IMAGE [--threads N] [--prompt-tokens 128] [--gen-tokens 32] [--batch 1,4]
import Foundation
import Kernels
import Models
import Vision

struct Options {
    var model = "", image = ""
    var threads = ProcessInfo.processInfo.activeProcessorCount
    var promptTokens = 128, genTokens = 32
    var batches = [1, 4]

    init(_ arguments: [String]) {
        var positional: [String] = []
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        func number(_ text: String, _ name: String) -> Int {
            guard let n = Int(text), n > 0 else { fail("\(name) takes a positive integer, got '\(text)'") }
            return n
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--threads": threads = number(value(), "--threads")
            case "--prompt-tokens": promptTokens = number(value(), "--prompt-tokens")
            case "--gen-tokens": genTokens = number(value(), "--gen-tokens")
            case "--batch": batches = value().split(separator: ",").map { number(String($0), "--batch") }
            default: positional.append(arguments[i])
            }
            i += 1
        }
        guard positional.count == 2 else {
            fail("usage: mllama-bench MODEL_DIR IMAGE [--threads N] [--prompt-tokens 128] [--gen-tokens 32] [--batch 1,4]")
        }
        (model, image) = (positional[0], positional[1])
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("mllama-bench: \(message)\n".utf8))
    exit(2)
}

/// Peak resident set size of this process (getrusage reports KiB on Linux).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = Date()
    try body()
    return Date().timeIntervalSince(start)
}

func megabytes(_ bytes: Int) -> String { String(format: "%.0f MB", Double(bytes) / 1e6) }

func argmax(_ x: UnsafePointer<Float>, count: Int) -> Int {
    var best = 0
    for i in 1..<count where x[i] > x[best] { best = i }
    return best
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
ComputePool.shared = ComputePool(threads: options.threads)
do {
    var model: MllamaModel!
    let load = try seconds { model = try MllamaModel.load(directory: URL(fileURLWithPath: options.model), maxRows: 128, maxLogitRows: 64) }
    let text = model.text, vocabulary = text.vocabularySize
    print("model \(options.model) · \(options.threads) threads · loaded in \(String(format: "%.2f", load)) s")
    print(
        "decoder weights \(megabytes(text.weightBytes)) (as stored) · \(model.config.crossAttentionLayers.count) of \(model.config.textConfig.numHiddenLayers) layers cross-attend"
    )

    let bytes = try Data(contentsOf: URL(fileURLWithPath: options.image))
    var tiles: MllamaTiledImage!, states: MllamaImageStates!
    let tiling = try seconds { tiles = try model.preprocessor(bytes) }
    let encoding = try seconds { states = try model.imageStates(for: tiles) }
    print(
        String(
            format: "image: tiling %.2f s (%d×%d tiles), vision encoder + cross-attention K/V %.2f s, K/V held %@",
            tiling, tiles.tilesHigh, tiles.tilesWide, encoding, megabytes(states.byteCount)))

    // <|begin_of_text|>, <|image|>, then random ids: the image token where the chat template puts it, near the start.
    var random = SystemRandomNumberGenerator()
    let prompt =
        [model.config.textConfig.bosTokenId ?? 0, model.imageTokenId]
        + (2..<options.promptTokens).map { _ in Int.random(in: 0..<vocabulary, using: &random) }
    let context = try model.context(promptIds: prompt, image: states)
    let cache = text.makeCache(capacityTokens: options.promptTokens + options.batches.max()! * (options.genTokens + 16) + 64)
    let prefix = cache.createSequence()
    var logits: [Float] = []
    let prefill = try seconds {
        logits = try model.prefill(
            prompt, image: context, sequence: prefix, firstPosition: cache.append(prefix, count: prompt.count), cache: cache)
    }
    print(String(format: "prefill %d tokens: %.2f s, %.1f tok/s", prompt.count, prefill, Double(prompt.count) / prefill))

    print("batch  decode tok/s/seq  decode tok/s total")
    var batch = ForwardBatch(capacity: options.batches.max()!)
    let first = logits.withUnsafeBufferPointer { argmax($0.baseAddress!, count: vocabulary) }
    for size in options.batches {
        let sequences = (0..<size).map { _ in cache.fork(prefix) }
        var tokens = Array(repeating: first, count: size)
        // One untimed step pages in the weights; then genTokens timed steps.
        var elapsed = 0.0
        for step in 0...options.genTokens {
            batch.removeAll()
            for (i, sequence) in sequences.enumerated() {
                batch.append(token: tokens[i], sequence: sequence, position: try cache.append(sequence, count: 1), wantsLogits: true)
            }
            let start = Date()
            let out = try text.forward(batch, cache: cache, image: context)
            if step > 0 { elapsed += Date().timeIntervalSince(start) }
            for i in 0..<size { tokens[i] = argmax(out.baseAddress! + i * vocabulary, count: vocabulary) }
        }
        for sequence in sequences { cache.release(sequence) }
        let total = Double(size * options.genTokens) / elapsed
        print(String(format: "%5d  %16.2f  %18.2f", size, total / Double(size), total))
    }
    print("peak resident \(megabytes(peakResidentBytes()))")
} catch {
    fail("\(error)")
}
