import Foundation
import Generation
import Kernels
import Models
import Tokenization

/// The model fixtures of Tests/Fixtures/models (see scripts/fixtures/make_model_fixtures.py).
enum ModelFixture {
    struct Reference: Decodable {
        struct Prompt: Decodable {
            let text: String
            let input_ids: [Int]
            let greedy_ids: [Int]
        }
        let prompts: [Prompt]
    }

    static func directory(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/models/\(name)")
    }

    static func reference(_ name: String) throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: directory(name).appendingPathComponent("reference.json")))
    }

    /// Read through the library's model loader, as the CLI and the worker read models.
    static func generator(
        _ name: String, prefixCacheEntries: Int = 8, kvCapacity: Int = 4096, kvCacheType: KVCacheType = .f32,
        pool: ComputePool = .shared
    ) throws -> TextGenerator {
        try ModelLoader.load(directory(name), options: ModelLoader.Options(maxRows: 64, maxLogitRows: 16, pool: pool))
            .makeGenerator(kvCapacityTokens: kvCapacity, kvCacheType: kvCacheType, prefixCacheEntries: prefixCacheEntries)
    }
}
