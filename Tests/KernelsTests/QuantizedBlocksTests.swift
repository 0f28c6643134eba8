import Foundation
import Kernels
import Testing

/// GGUF block formats against llama.cpp's quantizers and gguf-py's decoder
/// (Tests/Fixtures/quant, made by scripts/fixtures/make_quant_fixtures.py).
@Suite struct QuantizedBlocksTests {
    static let quantized: [WeightMatrix.Element] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]
    static let columns = 512

    static func fixture(_ name: String) throws -> Data {
        try Data(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/quant/\(name)"))
    }

    static func floats(_ name: String) throws -> [Float] {
        try fixture(name).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Every row of `blocks` decoded by `widenRow`.
    static func widened(_ blocks: Data, _ element: WeightMatrix.Element) -> [Float] {
        let rows = blocks.count / element.rowBytes(columns: columns)!
        var out = [Float](repeating: .nan, count: rows * columns)
        blocks.withUnsafeBytes { raw in
            let matrix = WeightMatrix(base: raw.baseAddress!, element: element, rows: rows, columns: columns)
            out.withUnsafeMutableBufferPointer { out in
                for r in 0..<rows { matrix.widenRow(r, into: out.baseAddress! + r * columns) }
            }
        }
        return out
    }

    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    @Test(arguments: quantized)
    func decodingEqualsGgufPyBitForBit(element: WeightMatrix.Element) throws {
        for prefix in ["\(element)", "\(element).random"] {
            let expected = try Self.floats("\(prefix).dequantized.f32")
            let decoded = Self.widened(try Self.fixture("\(prefix).blocks"), element)
            #expect(Self.bits(decoded) == Self.bits(expected), "\(prefix)")
        }
    }

    @Test(arguments: quantized)
    func quantizingEqualsLlamaCppByteForByte(element: WeightMatrix.Element) throws {
        let input = try Self.floats("input.f32")
        let expected = try Self.fixture("\(element).blocks")
        let rowBytes = element.rowBytes(columns: Self.columns)!
        var written = Data(count: expected.count)
        input.withUnsafeBufferPointer { x in
            written.withUnsafeMutableBytes { out in
                for r in 0..<(input.count / Self.columns) {
                    element.quantize(x.baseAddress! + r * Self.columns, count: Self.columns, into: out.baseAddress! + r * rowBytes)
                }
            }
        }
        let differing = (0..<(expected.count / element.blockBytes)).filter { block in
            let bytes = (block * element.blockBytes)..<((block + 1) * element.blockBytes)
            return written[bytes] != expected[bytes]
        }
        #expect(differing.isEmpty, "blocks that differ from llama.cpp's: \(differing)")
    }

    @Test func rowSizes() {
        #expect(WeightMatrix.Element.q8_0.rowBytes(columns: 576) == 18 * 34)
        #expect(WeightMatrix.Element.q4_K.rowBytes(columns: 576) == nil)
        #expect(WeightMatrix.Element.q6_K.rowBytes(columns: 1536) == 6 * 210)
        #expect(WeightMatrix.Element.bf16.rowBytes(columns: 7) == 14)
    }

    @Test func halfFormatsRoundLikeGgml() {
        let values: [Float] = [1, -2.5, 3.14159, 1e-8, 65504, 1.00390625, .infinity]
        var bf16 = [UInt16](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { WeightMatrix.Element.bf16.quantize($0.baseAddress!, count: values.count, into: &bf16) }
        // 1.00390625 is halfway between two bf16 values: ties go to the even one, 1.0.
        #expect(bf16 == [0x3f80, 0xc020, 0x4049, 0x322c, 0x4780, 0x3f80, 0x7f80])
    }
}
