import Foundation
import Testing

@testable import ModelFormats

/// Broken checkpoints, built in a temporary directory: each must fail with the right code and a
/// message naming the tensor and/or file at fault.
@Suite struct ErrorTests {
    /// A directory holding `model.safetensors` made by `writer`.
    func single(
        _ writer: SafetensorsWriter, header: String? = nil, headerLength: UInt64? = nil,
        dropLast: Int = 0
    ) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        try dir.write("model.safetensors", writer.bytes(header: header, headerLength: headerLength).dropLast(dropLast))
        return dir
    }

    var twoTensors: SafetensorsWriter {
        var writer = SafetensorsWriter()
        writer.add("model.norm.weight", floats: [1, 2, 3, 4], shape: [4])
        writer.add("model.embed_tokens.weight", floats: Array(repeating: 0.5, count: 12), shape: [3, 4])
        return writer
    }

    @Test func validFileLoads() throws {
        let dir = try single(twoTensors)
        let checkpoint = try Checkpoint(directory: dir.url)
        #expect(checkpoint.tensorNames == ["model.embed_tokens.weight", "model.norm.weight"])
        #expect(checkpoint.contains("model.norm.weight") && !checkpoint.contains("lm_head.weight"))
        let norm = try checkpoint.floatTensor("model.norm.weight", shape: [4])
        #expect(Array(norm.buffer) == [1, 2, 3, 4])
        let file = try SafetensorsFile(url: dir.url.appendingPathComponent("model.safetensors"))
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.bytes(of: "model.embed_tokens.weight").count == 48)
    }

    @Test func truncatedFileNamesTensorAndFile() throws {
        let dir = try single(twoTensors, dropLast: 3)
        expectError(.truncatedFile, mentioning: ["model.embed_tokens.weight", "model.safetensors"]) {
            _ = try Checkpoint(directory: dir.url)
        }
    }

    @Test func tooShortForHeaderLength() throws {
        let dir = try TemporaryDirectory()
        try dir.write("model.safetensors", Data([1, 2, 3]))
        expectError(.truncatedFile, mentioning: ["model.safetensors"]) { _ = try Checkpoint(directory: dir.url) }
    }

    @Test func headerLengthBeyondFile() throws {
        let dir = try single(twoTensors, headerLength: 1 << 20)
        expectError(.truncatedFile, mentioning: ["model.safetensors", "header length 1048576"]) {
            _ = try Checkpoint(directory: dir.url)
        }
    }

    @Test func malformedJSONHeader() throws {
        let dir = try single(twoTensors, header: "{\"model.norm.weight\": {\"dtype\": \"F32\", ")
        expectError(.malformedHeader, mentioning: ["model.safetensors", "JSON"]) { _ = try Checkpoint(directory: dir.url) }
        let notObject = try single(twoTensors, header: "[1, 2]")
        expectError(.malformedHeader, mentioning: ["model.safetensors"]) { _ = try Checkpoint(directory: notObject.url) }
    }

    @Test func entryWithoutOffsets() throws {
        let dir = try single(twoTensors, header: "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [4]}}")
        expectError(.malformedHeader, mentioning: ["model.norm.weight", "model.safetensors", "data_offsets"]) {
            _ = try Checkpoint(directory: dir.url)
        }
    }

    @Test func unknownDType() throws {
        var writer = twoTensors
        writer.add("model.layers.0.q.weight", dtype: "F12", shape: [2], data: Data(count: 3))
        let dir = try single(writer)
        expectError(.unknownDType, mentioning: ["model.layers.0.q.weight", "model.safetensors", "F12"]) {
            _ = try Checkpoint(directory: dir.url)
        }
    }

    @Test func offsetsBeyondTheData() throws {
        var writer = twoTensors
        writer.add("lm_head.weight", shape: [2], offsets: [64, 10_064])
        let dir = try single(writer)
        expectError(.truncatedFile, mentioning: ["lm_head.weight", "model.safetensors", "10064"]) {
            _ = try Checkpoint(directory: dir.url)
        }
    }

    @Test func offsetsDisagreeWithShape() throws {
        var writer = twoTensors
        writer.add("lm_head.weight", shape: [3, 4], data: Data(count: 40))
        let dir = try single(writer)
        expectError(.malformedHeader, mentioning: ["lm_head.weight", "model.safetensors", "48 bytes", "40"]) {
            _ = try Checkpoint(directory: dir.url)
        }
        let reversed = try single(
            twoTensors,
            header: """
                {"model.norm.weight": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}
                """)
        expectError(.malformedHeader, mentioning: ["model.norm.weight", "data_offsets"]) { _ = try Checkpoint(directory: reversed.url) }
    }

    @Test func overlappingTensors() throws {
        var writer = twoTensors
        writer.add("lm_head.weight", shape: [2], offsets: [8, 16])
        let dir = try single(writer)
        expectError(.malformedHeader, mentioning: ["lm_head.weight", "model.norm.weight", "model.safetensors", "overlap"]) {
            _ = try Checkpoint(directory: dir.url)
        }
    }

    @Test func requestedShapeMismatch() throws {
        let dir = try single(twoTensors)
        let checkpoint = try Checkpoint(directory: dir.url)
        expectError(.shapeMismatch, mentioning: ["model.embed_tokens.weight", "model.safetensors", "[3, 4]", "[4, 3]"]) {
            _ = try checkpoint.floatTensor("model.embed_tokens.weight", shape: [4, 3])
        }
    }

    @Test func missingTensor() throws {
        let dir = try single(twoTensors)
        let checkpoint = try Checkpoint(directory: dir.url)
        expectError(.missingTensor, mentioning: ["lm_head.weight", dir.url.path, "model.safetensors"]) {
            _ = try checkpoint.floatTensor("lm_head.weight", shape: [3, 4])
        }
    }

    @Test func unexpectedTensorsAreListed() throws {
        let dir = try single(twoTensors)
        let checkpoint = try Checkpoint(directory: dir.url)
        _ = try checkpoint.floatTensor("model.norm.weight", shape: [4])
        expectError(.unexpectedTensors, mentioning: ["model.embed_tokens.weight", "model.safetensors"]) {
            try checkpoint.verifyAllConsumed()
        }
        try checkpoint.verifyAllConsumed(ignoring: { $0.hasPrefix("model.embed_tokens") })
    }

    @Test func integerTensorIsNotAFloatWeight() throws {
        var writer = twoTensors
        writer.add("model.layers.0.ids", dtype: "I32", shape: [2], data: Data(count: 8))
        let dir = try single(writer)
        let checkpoint = try Checkpoint(directory: dir.url)
        #expect(checkpoint.info("model.layers.0.ids")?.dtype == .i32)
        expectError(.unsupportedDType, mentioning: ["model.layers.0.ids", "model.safetensors", "I32"]) {
            _ = try checkpoint.floatTensor("model.layers.0.ids", shape: [2])
        }
    }

    @Test func misalignedF32IsCopied() throws {
        var writer = SafetensorsWriter()
        writer.add("a", dtype: "U8", shape: [1], data: Data([7]))
        writer.add("b", floats: [1.5, -2], shape: [2])
        // Pad the header so the data section starts 8-aligned; "b" then starts at an odd address.
        var header = writer.headerJSON
        while (8 + header.utf8.count) % 8 != 0 { header += " " }
        let dir = try single(writer, header: header)
        let checkpoint = try Checkpoint(directory: dir.url)
        let b = try checkpoint.floatTensor("b", shape: [2])
        #expect(!b.isMapped)
        #expect(Array(b.buffer) == [1.5, -2])
    }

    @Test func noWeightFiles() throws {
        let dir = try TemporaryDirectory()
        expectError(.fileNotFound, mentioning: [dir.url.path, "model.safetensors"]) { _ = try Checkpoint(directory: dir.url) }
    }

    // MARK: sharded

    /// Two shards and an index; `index` overrides the weight map.
    func sharded(index: [String: String]? = nil, writeSecond: Bool = true) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        var first = SafetensorsWriter()
        first.add("model.embed_tokens.weight", shape: [3, 4])
        var second = SafetensorsWriter()
        second.add("model.norm.weight", shape: [4])
        try dir.write("model-00001-of-00002.safetensors", first.bytes())
        if writeSecond { try dir.write("model-00002-of-00002.safetensors", second.bytes()) }
        let map =
            index ?? [
                "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                "model.norm.weight": "model-00002-of-00002.safetensors"
            ]
        let json = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 64], "weight_map": map])
        try dir.write(Checkpoint.indexFileName, json)
        return dir
    }

    @Test func shardedLoads() throws {
        let dir = try sharded()
        let checkpoint = try Checkpoint(directory: dir.url)
        #expect(checkpoint.info("model.norm.weight")?.file.lastPathComponent == "model-00002-of-00002.safetensors")
        _ = try checkpoint.floatTensor("model.norm.weight", shape: [4])
        _ = try checkpoint.floatTensor("model.embed_tokens.weight", shape: [3, 4])
        try checkpoint.verifyAllConsumed()
    }

    @Test func missingShardFile() throws {
        let dir = try sharded(writeSecond: false)
        expectError(.fileNotFound, mentioning: ["model-00002-of-00002.safetensors", "model.norm.weight", Checkpoint.indexFileName]) {
            _ = try Checkpoint(directory: dir.url)
        }
    }

    @Test func indexPointsToTheWrongShard() throws {
        let dir = try sharded(index: [
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "model.norm.weight": "model-00001-of-00002.safetensors"
        ])
        expectError(.missingTensor, mentioning: ["model.norm.weight", "model-00001-of-00002.safetensors", Checkpoint.indexFileName]) {
            _ = try Checkpoint(directory: dir.url)
        }
    }

    @Test func shardTensorMissingFromIndexIsStillReported() throws {
        let dir = try sharded(index: [
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00001-of-00002.safetensors"
        ])
        expectError(.missingTensor, mentioning: ["lm_head.weight"]) { _ = try Checkpoint(directory: dir.url) }
    }

    @Test func malformedIndex() throws {
        let dir = try sharded()
        try dir.write(Checkpoint.indexFileName, "{\"weight_map\": [1]}")
        expectError(.malformedHeader, mentioning: [Checkpoint.indexFileName, "weight_map"]) { _ = try Checkpoint(directory: dir.url) }
        try dir.write(Checkpoint.indexFileName, "not json")
        expectError(.malformedHeader, mentioning: [Checkpoint.indexFileName]) { _ = try Checkpoint(directory: dir.url) }
    }
}
