import ClusterTestSupport
import Foundation
import Testing

@testable import Cluster

@Suite struct ModelIdentityTests {
    /// A model directory with a safetensors file of `weightBytes` bytes of data and the small files
    /// beside it; returns its URL.
    private func makeModel(in scratch: Scratch, weightBytes: Int = 3 << 20) throws -> URL {
        let model = scratch.url.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        let header = Array(#"{"w":{"dtype":"U8","shape":[\#(weightBytes)],"data_offsets":[0,\#(weightBytes)]}}"#.utf8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
        bytes += (0..<weightBytes).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try Data(bytes).write(to: model.appendingPathComponent("model.safetensors"))
        for (name, text) in [
            ("config.json", #"{"model_type":"llama"}"#), ("tokenizer.json", "{}"), ("chat_template.jinja", "{{ messages }}"),
            ("preprocessor_config.json", #"{"size":336}"#), ("README.md", "A model card.")
        ] {
            try text.write(to: model.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return model
    }

    private func identity(_ model: URL, chatTemplate: String? = nil) throws -> String {
        try ModelIdentity.compute(model: model, chatTemplate: chatTemplate, useCache: false)
    }

    /// Every byte of the weights counts (a byte between the old hash's 4 KiB samples too), and so do
    /// the chat template, the processor config, a replacing chat template and an f16 KV cache; the
    /// model card, the directory's name and naming the default f32 cache do not.
    @Test func identityCoversEveryByteThatChangesAnAnswer() throws {
        let scratch = try Scratch()
        let model = try makeModel(in: scratch)
        let original = try identity(model)
        #expect(original.count == 64)
        #expect(try identity(model) == original)

        let weights = model.appendingPathComponent("model.safetensors")
        var bytes = try Data(contentsOf: weights)
        bytes[bytes.count / 2 + 5000] ^= 0x01
        try bytes.write(to: weights)
        #expect(try identity(model) != original, "one flipped weight byte")
        bytes[bytes.count / 2 + 5000] ^= 0x01
        try bytes.write(to: weights)
        #expect(try identity(model) == original)

        for name in ["chat_template.jinja", "preprocessor_config.json"] {
            let url = model.appendingPathComponent(name)
            let text = try String(contentsOf: url, encoding: .utf8)
            try (text + "\n").write(to: url, atomically: true, encoding: .utf8)
            #expect(try identity(model) != original, "\(name) changed by one line")
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        #expect(try identity(model, chatTemplate: "{{ other }}") != original)
        #expect(try ModelIdentity.compute(model: model, kvCacheType: "f16", useCache: false) != original)
        #expect(try ModelIdentity.compute(model: model, kvCacheType: "f32", useCache: false) == original)
        try "Another card.".write(to: model.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let moved = scratch.url.appendingPathComponent("renamed")
        try FileManager.default.moveItem(at: model, to: moved)
        #expect(try identity(moved) == original)

        #expect(try identity(URL(fileURLWithPath: Repo.model("llama-gqa"))) != identity(URL(fileURLWithPath: Repo.model("qwen2"))))
    }

    /// A model that is one file (e.g. GGUF) is identified by its bytes.
    @Test func aSingleFileModelIsItsBytes() throws {
        let scratch = try Scratch()
        let file = scratch.url.appendingPathComponent("model.gguf")
        try Data("GGUF and some tensors".utf8).write(to: file)
        let first = try identity(file)
        try Data("GGUF and other tensors".utf8).write(to: file)
        #expect(try identity(file) != first)
    }

    /// The digests are cached beside the model by file size and modification time: a file whose
    /// size and time are unchanged is not read again, one whose time changed is.
    @Test func digestsAreCachedBySizeAndModificationTime() throws {
        let scratch = try Scratch()
        let model = try makeModel(in: scratch)
        let weights = model.appendingPathComponent("model.safetensors")
        // A whole second: a time set through `Date` comes back exact.
        let modified = Date(timeIntervalSince1970: 1_700_000_000)
        try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: weights.path)
        let cached = try ModelIdentity.compute(model: model, cacheDirectory: scratch.url.appendingPathComponent("cache"))
        #expect(FileManager.default.fileExists(atPath: model.appendingPathComponent(ModelIdentityCache.fileName).path))
        #expect(try identity(model) == cached, "the cache file is not part of the model")

        var bytes = try Data(contentsOf: weights)
        bytes[100_000] ^= 0xFF
        try bytes.write(to: weights)
        try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: weights.path)
        #expect(try ModelIdentity.compute(model: model) == cached, "same size and time: the cached digest")
        try FileManager.default.setAttributes([.modificationDate: modified.addingTimeInterval(1)], ofItemAtPath: weights.path)
        #expect(try ModelIdentity.compute(model: model) != cached)
    }

    @Test func directoryWithoutWeightsIsAnError() throws {
        let scratch = try Scratch()
        #expect(throws: ClusterError.self) { try ModelIdentity.compute(model: scratch.url) }
    }
}
