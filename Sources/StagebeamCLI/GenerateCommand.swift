import ArgumentParser
import ChatTemplates
import Foundation
import Generation
import ModelFormats
import Tokenization

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt; n samples decode as one batch over one shared prefix.")

    @OptionGroup var engine: EngineOptions

    @Option(help: "The prompt (the user message, unless --raw).")
    var prompt: String

    @Flag(help: "Encode the prompt exactly as processor(text=prompt) (or tokenizer(prompt)) does in transformers, without a chat template.")
    var raw = false

    @Option(
        help:
            "An image (JPEG or PNG) for a vision model. With --raw the prompt must contain the image token (e.g. <image>); otherwise the chat template places it."
    )
    var image: String?

    @Option(help: "System message for the chat template.")
    var system: String?

    @Option(name: .customLong("max-tokens"), help: "Most new tokens per sample.")
    var maxTokens = 128

    @Option(help: "Sampling temperature; 0 is greedy. Default: generation_config.json's, else greedy (as transformers).")
    var temperature: Float?

    @Option(name: .customLong("top-p")) var topP: Float?
    @Option(name: .customLong("top-k")) var topK: Int?
    @Option(name: .customLong("min-p")) var minP: Float = 0
    @Option(name: .customLong("repetition-penalty")) var repetitionPenalty: Float?

    @Option(help: "Sampler seed of the first sample; sample i uses seed + i.")
    var seed: UInt64 = 0

    @Option(help: "Number of samples of the same prompt.")
    var n = 1

    @Option(help: "Stop after this string (repeatable); the text keeps it.")
    var stop: [String] = []

    @Flag(name: .customLong("ignore-eos"), help: "Do not stop at end-of-sequence tokens.")
    var ignoreEOS = false

    @Option(help: "Report the K most likely tokens at each step.")
    var logprobs = 0

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let model = try engine.loadModel()
        let generator = model.makeGenerator(kvCapacityTokens: engine.kvCapacity, kvCacheType: engine.kvCacheType)
        let tokenizer = generator.tokenizer
        let images = try image.map { [try engine.loadImage($0)] } ?? []
        // As transformers' processor tokenizes (and, for LLaVA, expands each image token to the image's rows).
        let promptTokens = raw ? generator.processorPromptTokens(prompt) : generator.expandImageTokens(try templatePrompt(tokenizer))
        let generationConfig = model.generationConfig
        let request = GenerationRequest(
            promptTokens: promptTokens,
            images: images,
            seeds: (0..<n).map { seed &+ UInt64($0) },
            sampling: sampling(defaults: generationConfig),
            maxNewTokens: maxTokens,
            stopStrings: stop,
            stopTokenIds: ignoreEOS ? [] : generator.eosTokenIds(generationConfig: generationConfig),
            topLogprobs: logprobs)
        let output = try generator.generate(request)
        if json {
            try printJSON(GenerateJSON(promptTokenIds: promptTokens, output: output))
        } else {
            for (i, sample) in output.samples.enumerated() {
                if n > 1 { print("--- sample \(i) (\(sample.finishReason.rawValue)) ---") }
                print(sample.text)
            }
        }
        let t = output.timings
        printError(
            String(
                format: "prompt %d tokens %.1f tok/s · generated %d tokens %.1f tok/s",
                t.prefillTokens, Double(t.prefillTokens) / max(t.prefillSeconds, 1e-9),
                t.decodeTokens, Double(t.decodeTokens) / max(t.decodeSeconds, 1e-9)))
    }

    private func templatePrompt(_ tokenizer: Tokenizer) throws -> [Int] {
        guard let template = try engine.chatTemplate() ?? tokenizer.chatTemplate else {
            throw ValidationError(
                "\(try engine.directory.path) has no chat template (tokenizer_config.json or tokenizer.chat_template): pass --chat-template FILE or --raw"
            )
        }
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: prompt, imageCount: image == nil ? 0 : 1))
        let text = try template.render(
            messages: messages, addGenerationPrompt: true,
            bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken)
        // The template writes the special tokens itself, as apply_chat_template(tokenize=True) assumes.
        return tokenizer.encode(text, addSpecialTokens: false)
    }

    private func sampling(defaults: GenerationConfig?) -> SamplingParameters {
        let sampled = defaults?.doSample ?? false
        return SamplingParameters(
            temperature: temperature ?? (sampled ? defaults?.temperature ?? 1 : 0),
            topK: topK ?? (sampled ? defaults?.topK ?? 0 : 0),
            topP: topP ?? (sampled ? defaults?.topP ?? 1 : 1),
            minP: minP,
            repetitionPenalty: repetitionPenalty ?? defaults?.repetitionPenalty ?? 1)
    }

}

/// The `--json` output of `generate`.
struct GenerateJSON: Encodable {
    struct Sample: Encodable {
        let token_ids: [Int]
        let text: String
        let finish_reason: String
        let cumulative_logprob: Double
        let logprobs: [[TokenLogprob]]?
    }
    let prompt_token_ids: [Int]
    let samples: [Sample]
    let timings: GenerationTimings

    init(promptTokenIds: [Int], output: GenerationOutput) {
        prompt_token_ids = promptTokenIds
        samples = output.samples.map {
            Sample(
                token_ids: $0.tokenIds, text: $0.text, finish_reason: $0.finishReason.rawValue,
                cumulative_logprob: $0.cumulativeLogprob, logprobs: $0.topLogprobs.isEmpty ? nil : $0.topLogprobs)
        }
        timings = output.timings
    }
}
