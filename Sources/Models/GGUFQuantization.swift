import Foundation
import Kernels
import ModelFormats

/// `stagebeam quantize`: a GGUF model written again with its weight matrices in another format.
///
/// Every matrix (a 2-dimensional `.weight` tensor, the token embedding included) is decoded to f32
/// row by row and encoded with `WeightMatrix.Element.quantize`, whose bytes equal ggml's reference
/// quantizers; vectors (norms, biases, `rope_freqs`) are copied as they are. Which format each
/// matrix gets is `MatrixFormats`' choice (one format for all, or one of llama-quantize's mixes).
/// The metadata is copied in file order, with `general.file_type` and
/// `general.quantization_version` set for the new type.
public enum GGUFQuantization {
    /// What `quantize` writes: every matrix in one format (llama-quantize `--pure`), or one of
    /// llama-quantize's mixes, which keep the tensors that matter most in more bits.
    public enum FileType: Sendable, Equatable {
        case pure(WeightMatrix.Element)
        /// Q4_K, with Q6_K for the output matrix (or the tied embedding) and for `attn_v` and
        /// `ffn_down` in the layers llama-quantize's `use_more_bits` picks.
        case q4_K_M
        /// The same with Q5_K.
        case q5_K_M
    }

    /// The file types `quantize` writes, by llama.cpp's names.
    public static let fileTypes: [(name: String, type: FileType)] = [
        ("F32", .pure(.f32)), ("F16", .pure(.f16)), ("BF16", .pure(.bf16)), ("Q8_0", .pure(.q8_0)), ("Q4_0", .pure(.q4_0)),
        ("Q4_1", .pure(.q4_1)), ("Q5_0", .pure(.q5_0)), ("Q5_1", .pure(.q5_1)), ("Q4_K", .pure(.q4_K)), ("Q5_K", .pure(.q5_K)),
        ("Q6_K", .pure(.q6_K)), ("Q4_K_M", .q4_K_M), ("Q5_K_M", .q5_K_M)
    ]

    /// The file type named `name` (any case), or nil.
    public static func fileType(named name: String) -> FileType? {
        fileTypes.first { $0.name.lowercased() == name.lowercased() }?.type
    }

    /// Writes `input`'s model to `output` with its matrices in `fileType`; returns each tensor's
    /// written type by name.
    @discardableResult
    public static func quantize(_ input: GGUFFile, to output: URL, as fileType: FileType) throws -> [String: GGMLType] {
        var writer = GGUFWriter()
        for key in input.metadataKeys where key != "general.file_type" && key != "general.quantization_version" {
            writer.metadata.append((key, input.metadata[key]!))
        }
        writer.metadata += fileTypeMetadata(fileType)

        let matrices = input.tensorNames.filter { isMatrix(name: $0, dimensions: input.tensors[$0]!.dimensions.count) }
        let formats = MatrixFormats(fileType, matrixNames: matrices)
        var plans: [(info: GGUFTensorInfo, source: WeightMatrix.Element?, target: WeightMatrix.Element?)] = []
        for name in input.tensorNames {
            let info = input.tensors[name]!
            guard isMatrix(name: name, dimensions: info.dimensions.count) else {
                plans.append((info, nil, nil))
                writer.tensors.append(.init(name: name, type: info.type, dimensions: info.dimensions))
                continue
            }
            guard let source = GGUFWeights.elements[info.type] else {
                throw ModelFormatError(
                    .unsupportedDType, "\(input.url.path): tensor '\(name)' is \(info.type.name), which this engine cannot decode")
            }
            let target = formats.element(for: name, columns: info.dimensions[0])
            plans.append((info, source, target))
            writer.tensors.append(.init(name: name, type: ggmlType(target), dimensions: info.dimensions))
        }

        let widest = plans.map { $0.info.dimensions[0] }.max() ?? 0
        let row = UnsafeMutablePointer<Float>.allocate(capacity: widest)
        defer { row.deallocate() }
        try writer.write(to: output) { index, buffer in
            let (info, source, target) = plans[index]
            let bytes = input.bytes(of: info)
            guard let source, let target, source != target else {
                buffer.copyMemory(from: bytes)
                return
            }
            let (rows, columns) = (info.dimensions[1], info.dimensions[0])
            let matrix = WeightMatrix(base: bytes.baseAddress!, element: source, rows: rows, columns: columns)
            let rowBytes = target.rowBytes(columns: columns)!
            for r in 0..<rows {
                matrix.widenRow(r, into: row)
                target.quantize(row, count: columns, into: buffer.baseAddress! + r * rowBytes)
            }
        }
        return Dictionary(uniqueKeysWithValues: writer.tensors.map { ($0.name, $0.type) })
    }

    /// Whether a tensor is a matrix `quantize` re-encodes: 2-dimensional and named `….weight`, as
    /// llama-quantize decides (norms are vectors here, so its `_norm.weight` exclusion never applies).
    static func isMatrix(name: String, dimensions: Int) -> Bool {
        dimensions == 2 && name.hasSuffix(".weight")
    }

    /// `general.file_type` (llama.cpp's `llama_ftype`) and `general.quantization_version` (2, the
    /// block layouts of ggml since 2023; gguf-py and llama-quantize write it into every file).
    static func fileTypeMetadata(_ fileType: FileType) -> [(key: String, value: GGUFValue)] {
        let code: UInt32
        switch fileType {
        case .q4_K_M: code = 15
        case .q5_K_M: code = 17
        case .pure(let element):
            // The K types as their `_S` variants, the closest llama.cpp names.
            switch element {
            case .f32: code = 0
            case .f16: code = 1
            case .q4_0: code = 2
            case .q4_1: code = 3
            case .q8_0: code = 7
            case .q5_0: code = 8
            case .q5_1: code = 9
            case .q4_K: code = 14
            case .q5_K: code = 16
            case .q6_K: code = 18
            case .bf16: code = 32
            }
        }
        return [("general.file_type", .uint32(code)), ("general.quantization_version", .uint32(2))]
    }

    /// The format a matrix of `columns` columns is stored in when `element` is asked for: rows that
    /// are not whole blocks fall back as llama-quantize's do (Q4_K → Q5_0, Q5_K → Q5_1, anything
    /// else → Q8_0), and to F16 when they are not whole 32-value blocks either.
    static func stored(_ element: WeightMatrix.Element, columns: Int) -> WeightMatrix.Element {
        if element.rowBytes(columns: columns) != nil { return element }
        let fallback: WeightMatrix.Element =
            switch element {
            case .q4_K: .q5_0
            case .q5_K: .q5_1
            default: .q8_0
            }
        return fallback.rowBytes(columns: columns) != nil ? fallback : .f16
    }

    static func ggmlType(_ element: WeightMatrix.Element) -> GGMLType {
        GGUFWeights.elements.first { $0.value == element }!.key
    }
}

/// Which format each matrix of a model gets for a file type, by llama.cpp's tensor names
/// (`token_embd`, `output`, `blk.N.attn_v`, `blk.N.ffn_down`, …), following llama-quantize's rules
/// (`llama_tensor_get_type`, without an importance matrix) for the mixes:
/// - `output.weight`, or `token_embd.weight` when there is no `output.weight` (tied embeddings):
///   Q6_K, or Q8_0 when its rows are not whole 256-value blocks;
/// - `attn_v` and `ffn_down` of layer i of n: Q6_K where `use_more_bits(i, n)` holds (the first
///   and last eighth of the layers, and every third one between), else the mix's base type;
/// - every other matrix (the untied token embedding included): the base type (Q4_K or Q5_K);
/// then every choice falls back by row width (`GGUFQuantization.stored`).
public struct MatrixFormats {
    let fileType: GGUFQuantization.FileType
    let tiedEmbeddings: Bool
    let attentionValueLayers: Int
    let feedForwardDownLayers: Int

    /// `matrixNames`: every matrix of the model, to count the layers and see whether the output
    /// matrix is its own tensor.
    public init(_ fileType: GGUFQuantization.FileType, matrixNames: [String]) {
        self.fileType = fileType
        tiedEmbeddings = !matrixNames.contains("output.weight")
        attentionValueLayers = matrixNames.filter { $0.hasSuffix(".attn_v.weight") }.count
        feedForwardDownLayers = matrixNames.filter { $0.hasSuffix(".ffn_down.weight") }.count
    }

    /// The format of the matrix `name` whose rows hold `columns` values.
    public func element(for name: String, columns: Int) -> WeightMatrix.Element {
        let base: WeightMatrix.Element
        switch fileType {
        case .pure(let element): return GGUFQuantization.stored(element, columns: columns)
        case .q4_K_M: base = .q4_K
        case .q5_K_M: base = .q5_K
        }
        var chosen = base
        if name == "output.weight" || (tiedEmbeddings && name == "token_embd.weight") {
            chosen = columns % base.blockSize == 0 ? .q6_K : .q8_0
        } else if name.hasSuffix(".attn_v.weight"), let layer = Self.layer(of: name),
            Self.useMoreBits(layer: layer, of: attentionValueLayers)
        {
            chosen = .q6_K
        } else if name.hasSuffix(".ffn_down.weight"), let layer = Self.layer(of: name),
            Self.useMoreBits(layer: layer, of: feedForwardDownLayers)
        {
            chosen = .q6_K
        }
        return GGUFQuantization.stored(chosen, columns: columns)
    }

    /// llama-quantize's `use_more_bits`: the first and last eighth of the layers, and every third
    /// layer between them.
    static func useMoreBits(layer i: Int, of n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    /// N of a `blk.N.…` name.
    static func layer(of name: String) -> Int? {
        let parts = name.split(separator: ".")
        guard parts.count > 2, parts[0] == "blk" else { return nil }
        return Int(parts[1])
    }
}
