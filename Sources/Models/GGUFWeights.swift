import Foundation
import Kernels
import ModelFormats
import Synchronization

/// A GGUF file's tensors under the Hugging Face names the models ask for. In a llama.cpp file
/// (`.llamaCpp`) llama.cpp's `token_embd`, `blk.N.attn_q`, `ffn_gate`, `output_norm`, `output` …
/// answer to `model.embed_tokens`, `model.layers.N.self_attn.q_proj`, `mlp.gate_proj`, `model.norm`,
/// `lm_head` …; in the weights file of a quantized checkpoint directory (`.huggingFace`,
/// `HuggingFaceQuantized`) every tensor keeps its Hugging Face name. Matrices are used where they lie
/// in the mapped file, in their stored ggml type.
final class GGUFWeights: WeightSource {
    /// How the file names the tensors.
    enum Naming: Sendable {
        case llamaCpp, huggingFace
    }

    let file: GGUFFile
    let naming: Naming
    private let consumed = Mutex<Set<String>>([])

    init(file: GGUFFile, naming: Naming = .llamaCpp) {
        self.file = file
        self.naming = naming
    }

    var location: URL { file.url }

    func contains(_ name: String) -> Bool { storedName(name).map { file.tensors[$0] != nil } ?? false }

    func floatTensor(_ name: String, shape: [Int]) throws -> FloatTensor {
        try file.floatTensor(try take(name), shape: shape)
    }

    func weightMatrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        let stored = try take(name)
        let info = try file.tensor(stored, shape: shape)
        guard let element = Self.elements[info.type] else {
            let supported = Self.elements.keys.map(\.name).sorted().joined(separator: ", ")
            throw ModelFormatError(
                .unsupportedDType,
                "\(file.url.path): tensor '\(stored)' is \(info.type.name), which this engine cannot multiply (supported: \(supported))")
        }
        let (rows, columns) = (shape[0], shape.dropFirst().reduce(1, *))
        guard element.blockSize == 1 || columns % element.blockSize == 0 else {
            throw ModelFormatError(
                .shapeMismatch, "\(file.url.path): tensor '\(stored)' has rows of \(columns) values, not whole \(info.type.name) blocks")
        }
        return WeightMatrix(base: file.bytes(of: info).baseAddress!, element: element, rows: rows, columns: columns)
    }

    func readRows(of matrix: WeightMatrix, rows: Range<Int>, into destination: UnsafeMutableRawPointer) throws {
        let start = matrix.base - UnsafeRawPointer(file.mapped.bytes.baseAddress!)
        try file.mapped.read((start + rows.lowerBound * matrix.rowBytes)..<(start + rows.upperBound * matrix.rowBytes), into: destination)
    }

    /// The `rope_freqs.weight` vector (`count` divisors of RoPE's inverse frequencies), or nil when
    /// the file has none.
    func ropeFrequencyDivisors(count: Int) throws -> [Float]? {
        let name = "rope_freqs.weight"
        guard file.tensors[name] != nil else { return nil }
        let tensor = try file.floatTensor(name, shape: [count])
        consumed.withLock { _ = $0.insert(name) }
        let divisors = Array(UnsafeBufferPointer(start: tensor.pointer, count: count))
        guard divisors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw ModelFormatError(.badConfig, "\(file.url.path): \(name) holds a divisor that is not a positive number")
        }
        return divisors
    }

    /// The ggml types matrices may have, and the kernels' element for each.
    static let elements: [GGMLType: WeightMatrix.Element] = [
        .f32: .f32, .f16: .f16, .bf16: .bf16, .q8_0: .q8_0, .q4_0: .q4_0, .q4_1: .q4_1, .q5_0: .q5_0, .q5_1: .q5_1,
        .q4_K: .q4_K, .q5_K: .q5_K, .q6_K: .q6_K
    ]

    /// Throws `unexpectedTensors` naming every tensor of the file the model did not take.
    func verifyAllConsumed(ignoring: (String) -> Bool = { _ in false }) throws {
        let taken = consumed.withLock { $0 }
        let left = file.tensorNames.filter { !taken.contains($0) && !ignoring($0) }
        guard left.isEmpty else {
            let listed = left.prefix(20).map { "'\($0)'" }.joined(separator: ", ")
            throw ModelFormatError(
                .unexpectedTensors,
                "\(left.count) tensor(s) in \(file.url.path) not used by the model: \(listed)\(left.count > 20 ? " …" : "")")
        }
    }

    /// The file's name of the tensor the model calls `name`.
    private func storedName(_ name: String) -> String? {
        switch naming {
        case .llamaCpp: Self.ggufName(name)
        case .huggingFace: name
        }
    }

    private func take(_ name: String) throws -> String {
        guard let stored = storedName(name) else {
            throw ModelFormatError(.missingTensor, "\(file.url.path): the model asks for '\(name)', which has no GGUF name")
        }
        guard file.tensors[stored] != nil else {
            throw ModelFormatError(
                .missingTensor, "\(file.url.path): no tensor '\(stored)'\(stored == name ? "" : " (the model's \(name))")")
        }
        consumed.withLock { _ = $0.insert(stored) }
        return stored
    }

    /// llama.cpp's name of a Hugging Face Llama/Qwen2 tensor.
    static func ggufName(_ name: String) -> String? {
        switch name {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let tail = String(rest[rest.index(after: dot)...])
        guard let suffix = (tail.hasSuffix(".weight") || tail.hasSuffix(".bias")) ? tail.split(separator: ".").last : nil else {
            return nil
        }
        let module = tail.dropLast(suffix.count + 1)
        guard let mapped = layerModules[String(module)] else { return nil }
        return "blk.\(layer).\(mapped).\(suffix)"
    }

    private static let layerModules = [
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"
    ]
}
