import Foundation
import Testing

@testable import ModelFormats

/// `Tests/Fixtures/gguf` (scripts/fixtures/make_gguf_fixtures.py).
let ggufFixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/gguf")

/// Builds GGUF bytes field by field, for files the fixtures script would never write.
struct GGUFBytes {
    var data = Data()

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        data.append(contentsOf: Array(s.utf8))
    }

    /// A version-3 file with `metadata` (key, type code, value bytes written by the closure) and one
    /// 2×32 tensor `t` of ggml type `type` at `offset`, followed by `dataBytes` bytes of data.
    static func file(
        version: UInt32 = 3, metadata: [(String, UInt32, (inout GGUFBytes) -> Void)] = [], type: UInt32 = 0,
        dimensions: [UInt64] = [32, 2], offset: UInt64 = 0, dataBytes: Int = 256
    ) -> Data {
        var b = GGUFBytes()
        b.data.append(contentsOf: Array("GGUF".utf8))
        b.u32(version)
        b.u64(1)
        b.u64(UInt64(metadata.count))
        for (key, code, write) in metadata {
            b.string(key)
            b.u32(code)
            write(&b)
        }
        b.string("t")
        b.u32(UInt32(dimensions.count))
        for d in dimensions { b.u64(d) }
        b.u32(type)
        b.u64(offset)
        while b.data.count % 32 != 0 { b.data.append(0) }
        b.data.append(Data(count: dataBytes))
        return b.data
    }
}

@Suite struct GGUFFileTests {
    @Test func readsHeaderMetadataAndTensors() throws {
        let file = try GGUFFile(url: ggufFixtures.appendingPathComponent("llama-f32.gguf"))
        #expect(file.version == 3)
        #expect(file.alignment == 32)
        #expect(file.dataStart % 32 == 0)
        #expect(try file.string("general.architecture") == "llama")
        #expect(try file.integer("llama.block_count") == 2)
        #expect(try file.optionalFloat("llama.rope.freq_base") == 500_000)
        #expect(try file.optionalStrings("tokenizer.ggml.tokens")?.count == file.tensors["token_embd.weight"]?.dimensions[1])
        #expect(try file.optionalBool("tokenizer.ggml.add_bos_token") == true)
        // 2 layers × 9 tensors, the embedding, the final norm and the (untied) output head.
        #expect(file.tensors.count == 21)
        let q = try #require(file.tensors["blk.1.attn_q.weight"])
        #expect(q.type == .f32 && q.shape == [256, 256] && q.byteRange.count == 256 * 256 * 4)
        #expect(q.byteRange.lowerBound % 32 == 0)
        // Every tensor lies inside the file, none overlapping another.
        let ranges = file.tensors.values.map(\.byteRange).sorted { $0.lowerBound < $1.lowerBound }
        #expect(ranges.last!.upperBound <= file.mapped.bytes.count)
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound <= $1.lowerBound })
    }

    @Test func configFromMetadata() throws {
        let llama = try TextModelConfig(gguf: GGUFFile(url: ggufFixtures.appendingPathComponent("llama-f32.gguf")))
        #expect(llama.modelType == "llama" && llama.hiddenSize == 256 && llama.intermediateSize == 256)
        #expect(llama.numHiddenLayers == 2 && llama.numAttentionHeads == 4 && llama.numKeyValueHeads == 2 && llama.headDim == 64)
        #expect(llama.rmsNormEps == 1e-5 && llama.ropeTheta == 500_000 && llama.maxPositionEmbeddings == 2048)
        #expect(!llama.tieWordEmbeddings && !llama.qkvBias)
        let qwen = try TextModelConfig(gguf: GGUFFile(url: ggufFixtures.appendingPathComponent("qwen2-f16.gguf")))
        #expect(qwen.modelType == "qwen2" && qwen.tieWordEmbeddings && qwen.qkvBias && !qwen.oProjBias)
        #expect(qwen.rmsNormEps == 1e-6 && qwen.ropeTheta == 1_000_000)
    }

    @Test func everyValueTypeIncludingNestedArrays() throws {
        let directory = try TemporaryDirectory()
        let data = GGUFBytes.file(metadata: [
            ("u8", 0, { $0.data.append(200) }), ("i8", 1, { $0.data.append(0xFF) }),
            ("u16", 2, { $0.data.append(contentsOf: [0x34, 0x12]) }), ("i16", 3, { $0.data.append(contentsOf: [0xFE, 0xFF]) }),
            ("u32", 4, { $0.u32(70000) }), ("i32", 5, { $0.u32(UInt32(bitPattern: -5)) }),
            ("f32", 6, { $0.u32(Float(1.5).bitPattern) }), ("bool", 7, { $0.data.append(1) }),
            ("str", 8, { $0.string("héllo") }), ("u64", 10, { $0.u64(1 << 40) }),
            ("i64", 11, { $0.u64(UInt64(bitPattern: -7)) }), ("f64", 12, { $0.u64(Double(0.25).bitPattern) }),
            (
                "nested", 9,
                { b in
                    b.u32(9)
                    b.u64(2)
                    for n in 0..<2 {
                        b.u32(4)
                        b.u64(UInt64(n + 1))
                        for i in 0...n { b.u32(UInt32(i)) }
                    }
                }
            )
        ])
        try directory.write("all.gguf", data)
        let file = try GGUFFile(url: directory.url.appendingPathComponent("all.gguf"))
        #expect(file.metadata["u8"] == .uint8(200) && file.metadata["i8"] == .int8(-1))
        #expect(file.metadata["u16"] == .uint16(0x1234) && file.metadata["i16"] == .int16(-2))
        #expect(file.metadata["u32"] == .uint32(70000) && file.metadata["i32"] == .int32(-5))
        #expect(file.metadata["f32"] == .float32(1.5) && file.metadata["bool"] == .bool(true))
        #expect(file.metadata["str"] == .string("héllo") && file.metadata["u64"] == .uint64(1 << 40))
        #expect(file.metadata["i64"] == .int64(-7) && file.metadata["f64"] == .float64(0.25))
        #expect(
            file.metadata["nested"]
                == .array(elementType: 9, [.array(elementType: 4, [.uint32(0)]), .array(elementType: 4, [.uint32(0), .uint32(1)])]))
        #expect(file.metadataKeys.first == "u8" && file.metadataKeys.count == 13)
        #expect(file.tensors["t"]?.shape == [2, 32])
        #expect(throws: ModelFormatError.self) { try file.string("u32") }
    }

    @Test func alignmentFromMetadata() throws {
        let directory = try TemporaryDirectory()
        try directory.write("a.gguf", GGUFBytes.file(metadata: [("general.alignment", 4, { $0.u32(64) })], offset: 64, dataBytes: 512))
        let file = try GGUFFile(url: directory.url.appendingPathComponent("a.gguf"))
        #expect(file.alignment == 64 && file.dataStart % 64 == 0)
        #expect(file.tensors["t"]!.byteRange.lowerBound == file.dataStart + 64)
        try directory.write("b.gguf", GGUFBytes.file(metadata: [("general.alignment", 4, { $0.u32(48) })]))
        expectError(.malformedHeader, mentioning: ["general.alignment", "power of two"]) {
            _ = try GGUFFile(url: directory.url.appendingPathComponent("b.gguf"))
        }
        try directory.write("c.gguf", GGUFBytes.file(offset: 16))
        expectError(.malformedHeader, mentioning: ["'t'", "offset 16", "multiple of 32"]) {
            _ = try GGUFFile(url: directory.url.appendingPathComponent("c.gguf"))
        }
    }

    @Test func hostileFilesGetErrorsNamingTheProblem() throws {
        let directory = try TemporaryDirectory()
        func open(_ data: Data) throws {
            try directory.write("x.gguf", data)
            _ = try GGUFFile(url: directory.url.appendingPathComponent("x.gguf"))
        }
        expectError(.malformedHeader, mentioning: ["not a GGUF file", "7b 22"]) { try open(Data("{\"a\": 1}".utf8)) }
        expectError(.malformedHeader, mentioning: ["not a GGUF file"]) { try open(Data()) }
        expectError(.malformedHeader, mentioning: ["version 1"]) { try open(GGUFBytes.file(version: 1)) }
        expectError(.unknownDType, mentioning: ["'t'", "ggml type 77"]) { try open(GGUFBytes.file(type: 77)) }
        expectError(.truncatedFile, mentioning: ["'t'", "file has"]) { try open(GGUFBytes.file(offset: 4096)) }
        expectError(.truncatedFile, mentioning: ["'t'"]) { try open(GGUFBytes.file(dimensions: [32, 1 << 20])) }
        expectError(.malformedHeader, mentioning: ["'t'", "5 dimensions"]) { try open(GGUFBytes.file(dimensions: [32, 1, 1, 1, 1])) }
        expectError(.malformedHeader, mentioning: ["'t'", "32-value blocks"]) { try open(GGUFBytes.file(type: 8, dimensions: [48, 2])) }
        expectError(.malformedHeader, mentioning: ["'k'", "value type 13"]) { try open(GGUFBytes.file(metadata: [("k", 13, { _ in })])) }
        expectError(.malformedHeader, mentioning: ["'b'", "bool holding 7"]) {
            try open(GGUFBytes.file(metadata: [("b", 7, { $0.data.append(7) })]))
        }
        expectError(.truncatedFile, mentioning: ["length of 's'"]) { try open(GGUFBytes.file(metadata: [("s", 8, { $0.u64(1 << 50) })])) }
        expectError(.truncatedFile, mentioning: ["'a'", "more than"]) {
            try open(
                GGUFBytes.file(metadata: [
                    (
                        "a", 9,
                        {
                            $0.u32(4); $0.u64(1 << 40)
                        }
                    )
                ]))
        }
        // A real file cut anywhere is refused, never read past its end.
        let whole = try Data(contentsOf: ggufFixtures.appendingPathComponent("tokenizer-gpt2.gguf"))
        for cut in [3, 10, 23, 40, 200, whole.count / 2, whole.count - 1] {
            #expect(throws: ModelFormatError.self, "cut at \(cut)") { try open(whole.prefix(cut)) }
        }
    }

    @Test func unsupportedArchitectureIsNamed() throws {
        let directory = try TemporaryDirectory()
        try directory.write("g.gguf", GGUFBytes.file(metadata: [("general.architecture", 8, { $0.string("gemma3") })]))
        expectError(.unsupportedArchitecture, mentioning: ["'gemma3'", "llama, qwen2"]) {
            _ = try TextModelConfig(gguf: GGUFFile(url: directory.url.appendingPathComponent("g.gguf")))
        }
    }
}
