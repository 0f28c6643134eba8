import Foundation
import Generation
import ModelFormats
import Models
import Testing

/// The loader registry: a directory by config.json's model_type, a GGUF file by general.architecture.
@Suite struct ModelLoaderTests {
    static let gguf = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gguf")

    @Test func directoriesAndGGUFFilesLoadByArchitecture() throws {
        let qwen = try ModelLoader.load(ModelFixture.directory("qwen2"))
        #expect(qwen.architecture == "qwen2")
        guard case .text = qwen.network else { Issue.record("qwen2 is a text model"); return }
        #expect(qwen.generationConfig?.eosTokenIds.isEmpty == false)

        let llama = try ModelLoader.load(Self.gguf.appendingPathComponent("llama-f32.gguf"))
        #expect(llama.architecture == "llama")
        guard case .text(let model) = llama.network else { Issue.record("a GGUF llama is a text model"); return }
        #expect(model.config.numHiddenLayers == 2)
        // EOS and end-of-turn both stop generation.
        let stops = Set(llama.generationConfig?.eosTokenIds ?? [])
        #expect(stops == [llama.tokenizer.id(forToken: "<|end_of_text|>")!, llama.tokenizer.id(forToken: "<|eot_id|>")!])
        #expect(ModelLoader.isGGUF(Self.gguf.appendingPathComponent("llama-f32.gguf")))
        #expect(!ModelLoader.isGGUF(ModelFixture.directory("qwen2")))
    }

    /// Tokenizer, chat template and decoder from the one file, end to end through the generator.
    @Test(arguments: ["llama-f32", "qwen2-f16"])
    func greedyGenerationFromAGGUFFileAlone(name: String) throws {
        struct Reference: Decodable {
            struct Prompt: Decodable {
                let text: String
                let input_ids: [Int]
                let greedy_ids: [Int]
                let greedy_margins: [Float]
            }
            let prompts: [Prompt]
        }
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: Self.gguf.appendingPathComponent(name + ".json")))
        let loaded = try ModelLoader.load(Self.gguf.appendingPathComponent(name + ".gguf"), options: .init(maxRows: 64, maxLogitRows: 4))
        let generator = loaded.makeGenerator(kvCapacityTokens: 1024)
        for prompt in reference.prompts {
            let tokens = generator.tokenizer.encode(prompt.text)
            #expect(tokens == prompt.input_ids)
            let output = try generator.generate(
                GenerationRequest(promptTokens: tokens, seeds: [0], sampling: .greedy, maxNewTokens: prompt.greedy_ids.count))
            // The reference's greedy steps are all decided by margins far above f32 noise here.
            #expect(prompt.greedy_margins.min()! > 1e-3)
            #expect(output.samples[0].tokenIds == prompt.greedy_ids, "\(name) \(prompt.text.debugDescription)")
        }
    }

    @Test func unknownArchitecturesAndFilesAreNamed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(#"{"model_type": "gemma3", "architectures": ["Gemma3ForCausalLM"]}"#.utf8)
            .write(to: directory.appendingPathComponent("config.json"))
        #expect {
            try ModelLoader.load(directory)
        } throws: { error in
            let message = "\(error)"
            return (error as? ModelFormatError)?.code == .unsupportedArchitecture && message.contains("'gemma3'")
                && message.contains("llava") && message.contains("mllama")
        }
        // A reward model (a sequence classifier) has no language-model head: the loader names the flag it belongs to.
        try Data(
            #"{"model_type": "llama", "architectures": ["LlamaForSequenceClassification"], "hidden_size": 64, "num_labels": 1}"#.utf8
        ).write(to: directory.appendingPathComponent("config.json"))
        #expect {
            try ModelLoader.load(directory)
        } throws: { error in
            let message = "\(error)"
            return (error as? ModelFormatError)?.code == .unsupportedArchitecture && message.contains("LlamaForSequenceClassification")
                && message.contains("--reward-model")
        }
        let text = directory.appendingPathComponent("notes.txt")
        try Data("not a model".utf8).write(to: text)
        #expect { try ModelLoader.load(text) } throws: { "\($0)".contains("not a GGUF file") }
        #expect { try ModelLoader.load(directory.appendingPathComponent("absent")) } throws: { "\($0)".contains("no model at") }

        var gguf = try Data(contentsOf: Self.gguf.appendingPathComponent("tokenizer-gpt2.gguf"))
        let key = try #require(gguf.range(of: Data("general.architecture".utf8)))
        gguf.replaceSubrange(key.upperBound + 12..<key.upperBound + 17, with: Data("llamb".utf8))
        let patched = directory.appendingPathComponent("arch.gguf")
        try gguf.write(to: patched)
        #expect { try ModelLoader.load(patched) } throws: { "\($0)".contains("'llamb'") && "\($0)".contains("llama, qwen2") }
    }

    /// A Llama 3.2 Vision checkpoint quantized into a directory (`stagebeam quantize`) loads by its
    /// config.json like the checkpoint it came from; its weights file given alone is refused with
    /// the directory to give instead.
    @Test func quantizedCheckpointDirectoriesLoad() throws {
        let source = Self.gguf.deletingLastPathComponent().appendingPathComponent("mllama/mllama-quantized")
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("loader-mllama-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        try HuggingFaceQuantized.write(directory: source, to: output, as: .pure(.q8_0))
        let loaded = try ModelLoader.load(output)
        guard case .mllama = loaded.network else { Issue.record("a quantized Llama 3.2 Vision directory is an mllama model"); return }
        #expect(loaded.architecture == "mllama")
        #expect {
            try ModelLoader.load(output.appendingPathComponent(HuggingFaceQuantized.weightsFileName))
        } throws: { "\($0)".contains("give the directory") && "\($0)".contains(output.path) }
    }
}
