import Foundation

/// A tiny random LLaVA checkpoint written by scripts/fixtures/make_vision_fixtures.py and what
/// transformers computed on it.
struct LlavaFixture: Decodable {
    let image: String
    let prompt: String
    let image_token_id: Int
    /// `tokenizer(prompt)`: one image token.
    let unexpanded_ids: [Int]
    /// `processor(text=prompt, images=image)["input_ids"]`.
    let input_ids: [Int]
    let pixel_values: [Float]
    let pixel_shape: [Int]
    /// `model.get_image_features(pixel_values)`: (image tokens, text hidden).
    let image_features: [[Float]]
    let logits: [[Float]]
    let greedy_ids: [Int]

    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/vision")

    static let names = ["llava-clip-llama", "llava-siglip-qwen2", "llava-clip-list-full"]

    static func directory(_ name: String) -> URL { root.appendingPathComponent(name) }

    static func load(_ name: String) throws -> LlavaFixture {
        try JSONDecoder().decode(LlavaFixture.self, from: Data(contentsOf: directory(name).appendingPathComponent("reference.json")))
    }

    func imageBytes() throws -> Data { try Data(contentsOf: Self.root.appendingPathComponent("images/\(image)")) }
}
