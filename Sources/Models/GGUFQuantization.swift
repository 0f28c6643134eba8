import Foundation
import Kernels
import ModelFormats

/// `stagebeam quantize`: a GGUF model written again with its weight matrices in another format.
///
/// Every matrix (a 2-dimensional `.weight` tensor, the token embedding included, as llama-quantize
/// does for a pure type) is decoded to f32 row by row and encoded with `WeightMatrix.Element.quantize`,
/// whose bytes equal ggml's reference quantizers; vectors (norms, biases, `rope_freqs`) are copied as
/// they are. A matrix whose rows are not whole 256-value super-blocks falls back as llama-quantize's
/// does (q4_K → q5_0, q5_K → q5_1, q6_K → q8_0), and to f16 when they are not whole 32-value blocks
/// either. The metadata is copied in file order, with `general.file_type` and
/// `general.quantization_version` set for the new type.
public enum GGUFQuantization {
    /// The formats `quantize` writes, by llama.cpp's names.
    public static let formats: [(name: String, element: WeightMatrix.Element)] = [
        ("F32", .f32), ("F16", .f16), ("BF16", .bf16), ("Q8_0", .q8_0), ("Q4_0", .q4_0), ("Q4_1", .q4_1), ("Q5_0", .q5_0),
        ("Q5_1", .q5_1), ("Q4_K", .q4_K), ("Q5_K", .q5_K), ("Q6_K", .q6_K)
    ]

    /// The format named `name` (any case), or nil.
    public static func format(named name: String) -> WeightMatrix.Element? {
        formats.first { $0.name.lowercased() == name.lowercased() }?.element
    }

    /// Writes `input`'s model to `output` with its matrices in `element`; returns each tensor's
    /// written type by name.
    @discardableResult
    public static func quantize(_ input: GGUFFile, to output: URL, as element: WeightMatrix.Element) throws -> [String: GGMLType] {
        var writer = GGUFWriter()
        for key in input.metadataKeys where key != "general.file_type" && key != "general.quantization_version" {
            writer.metadata.append((key, input.metadata[key]!))
        }
        writer.metadata.append(("general.file_type", .uint32(fileType(element))))
        if element.isQuantized { writer.metadata.append(("general.quantization_version", .uint32(2))) }

        var plans: [(info: GGUFTensorInfo, source: WeightMatrix.Element?, target: WeightMatrix.Element?)] = []
        for name in input.tensorNames {
            let info = input.tensors[name]!
            guard info.dimensions.count == 2, name.hasSuffix(".weight") else {
                plans.append((info, nil, nil))
                writer.tensors.append(.init(name: name, type: info.type, dimensions: info.dimensions))
                continue
            }
            guard let source = GGUFWeights.elements[info.type] else {
                throw ModelFormatError(
                    .unsupportedDType, "\(input.url.path): tensor '\(name)' is \(info.type.name), which this engine cannot decode")
            }
            let target = stored(element, columns: info.dimensions[0])
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

    /// The format a matrix of `columns` columns is stored in when `element` is asked for.
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

    /// llama.cpp's `llama_ftype` for a file whose matrices are all `element` (the K types as their
    /// `_S` variants, the closest it names).
    static func fileType(_ element: WeightMatrix.Element) -> UInt32 {
        switch element {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q4_K: 14
        case .q5_K: 16
        case .q6_K: 18
        case .bf16: 32
        }
    }
}
