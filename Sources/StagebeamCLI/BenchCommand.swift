import ArgumentParser
import Foundation
import Generation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prefill and decode speed (medians over repeats) for several batch sizes.")

    @OptionGroup var engine: EngineOptions

    @Option(name: .customLong("prompt-tokens")) var promptTokens = 128
    @Option(name: .customLong("gen-tokens")) var genTokens = 64
    @Option(help: "Comma-separated batch sizes (sequences decoded together).")
    var batch = "1,4,8"
    @Option(help: "Measurements per batch size; the median is reported.")
    var repeats = 3
    @Option(
        help: """
            A vision model: an image (JPEG or PNG) placed at the prompt's start, as chat templates put it; its \
            encoding is timed once (the first request, which also pages in the weights).
            """)
    var image: String?
    @Flag(help: "Print JSON instead of a table.")
    var json = false

    struct Row: Encodable {
        let batch: Int
        let prefill_tokens_per_second: Double
        let decode_tokens_per_second_per_sequence: Double
        let decode_tokens_per_second_aggregate: Double
    }

    struct Report: Encodable {
        let model: String
        let threads: Int
        let prompt_tokens: Int
        let gen_tokens: Int
        let weight_bytes: Int
        /// Decoding, preprocessing and encoding the image (with --image), in the first request.
        let image_seconds: Double?
        let peak_resident_bytes: Int
        let rows: [Row]
    }

    func run() throws {
        let sizes = batch.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--batch takes positive integers, e.g. 1,4,8") }
        let generator = try engine.makeGenerator(prefixCacheEntries: 0)
        let vocabulary = generator.model.vocabularySize
        // A fixed pseudo-random prompt: speed does not depend on which tokens they are.
        var random = SeededRandom(seed: 7)
        var prompt = (0..<promptTokens).map { _ in Int(random.next() % UInt64(vocabulary)) }
        var images: [PromptImage] = []
        if let image {
            guard let imageTokenId = generator.imageTokenId else {
                throw ValidationError("--image needs a vision model; \(try engine.directory.path) is a text model")
            }
            images = [try engine.loadImage(image)]
            prompt = generator.expandImageTokens([imageTokenId] + prompt.dropFirst())
        }
        var imageSeconds: Double?

        var rows: [Row] = []
        for size in sizes {
            var prefill: [Double] = [], perSequence: [Double] = [], aggregate: [Double] = []
            for repeatIndex in 0..<(repeats + 1) {
                let request = GenerationRequest(
                    promptTokens: prompt, images: images, seeds: (0..<size).map { UInt64($0) },
                    sampling: SamplingParameters(temperature: 1), maxNewTokens: genTokens)
                let t = try generator.generate(request).timings
                if imageSeconds == nil, !images.isEmpty { imageSeconds = t.imageSeconds }
                if repeatIndex == 0 { continue } // warm-up: page in the mapped weights
                prefill.append(Double(t.prefillTokens) / t.prefillSeconds)
                // Rows, not tokens: samples that happened to draw the same tokens would share rows
                // (at temperature 1 on this prompt they part at once), and the engine's rate is rows.
                let rate = Double(t.decodeRows) / t.decodeSeconds
                aggregate.append(rate)
                perSequence.append(rate / Double(size))
            }
            rows.append(
                Row(
                    batch: size, prefill_tokens_per_second: median(prefill),
                    decode_tokens_per_second_per_sequence: median(perSequence),
                    decode_tokens_per_second_aggregate: median(aggregate)))
            if !json { printError("batch \(size) done") }
        }
        let report = Report(
            model: try engine.directory.path, threads: generator.model.pool.threads, prompt_tokens: promptTokens,
            gen_tokens: genTokens, weight_bytes: generator.model.weightBytes, image_seconds: imageSeconds,
            peak_resident_bytes: peakResidentBytes(), rows: rows)
        if json { try printJSON(report) } else { printTable(report) }
    }

    private func printTable(_ report: Report) {
        print("model \(report.model) · \(report.threads) threads · prompt \(report.prompt_tokens) · generate \(report.gen_tokens)")
        print(
            String(
                format: "weights %.1f MB · peak resident %.1f MB", Double(report.weight_bytes) / 1e6,
                Double(report.peak_resident_bytes) / 1e6))
        if let seconds = report.image_seconds { print(String(format: "image decoding, preprocessing and encoding %.2f s", seconds)) }
        print("batch  prefill tok/s  decode tok/s/seq  decode tok/s total  vs batch 1")
        let base = report.rows.first?.decode_tokens_per_second_aggregate ?? 1
        for row in report.rows {
            print(
                String(
                    format: "%5d  %13.1f  %16.1f  %18.1f  %9.2fx", row.batch, row.prefill_tokens_per_second,
                    row.decode_tokens_per_second_per_sequence, row.decode_tokens_per_second_aggregate,
                    row.decode_tokens_per_second_aggregate / base))
        }
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// CPU time this process has used so far, user and system, all threads.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Peak resident set size of this process (getrusage reports KiB on Linux).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}
