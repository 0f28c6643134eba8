import ClusterTestSupport
import Foundation
import Testing

@testable import Cluster

@Suite struct ModelHashTests {
    /// The hash names a model's content: stable for one directory, different for another model, and
    /// different when a single weight byte changes (the tiny fixtures are sampled whole).
    @Test func hashFollowsContent() throws {
        let llama = URL(fileURLWithPath: Repo.model("llama-gqa"))
        let hash = try ModelHash.compute(directory: llama)
        #expect(hash.count == 64)
        #expect(try ModelHash.compute(directory: llama) == hash)
        #expect(try ModelHash.compute(directory: URL(fileURLWithPath: Repo.model("qwen2"))) != hash)

        let scratch = try Scratch()
        let copy = scratch.url.appendingPathComponent("llama-copy")
        try FileManager.default.copyItem(at: llama, to: copy)
        #expect(try ModelHash.compute(directory: copy) == hash, "the directory's name is not content")
        let weights = copy.appendingPathComponent("model.safetensors")
        var bytes = try Data(contentsOf: weights)
        bytes[bytes.count - 1000] ^= 0x01
        try bytes.write(to: weights)
        #expect(try ModelHash.compute(directory: copy) != hash)
    }

    @Test func directoryWithoutWeightsIsAnError() throws {
        let scratch = try Scratch()
        #expect(throws: ClusterError.self) { try ModelHash.compute(directory: scratch.url) }
    }
}
