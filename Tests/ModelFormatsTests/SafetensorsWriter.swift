import Foundation

/// Writes safetensors files at test time, valid or deliberately broken, so that no broken binary
/// is committed. Tensors are laid out back to back in the order given.
struct SafetensorsWriter {
    struct Entry {
        var name: String
        var dtype: String
        var shape: [Int]
        var data: Data
        /// Written instead of the true [begin, end] when set.
        var offsets: [Int]?
    }

    var entries: [Entry] = []

    mutating func add(_ name: String, dtype: String = "F32", shape: [Int], data: Data? = nil, offsets: [Int]? = nil) {
        let bytes = data ?? Data(repeating: 0x3F, count: shape.reduce(4, *))
        entries.append(Entry(name: name, dtype: dtype, shape: shape, data: bytes, offsets: offsets))
    }

    mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        add(name, shape: shape, data: floats.withUnsafeBytes { Data($0) })
    }

    var headerJSON: String {
        var begin = 0
        var fields: [String] = ["\"__metadata__\":{\"format\":\"pt\"}"]
        for entry in entries {
            let offsets = entry.offsets ?? [begin, begin + entry.data.count]
            begin += entry.data.count
            fields.append("\"\(entry.name)\":{\"dtype\":\"\(entry.dtype)\",\"shape\":\(entry.shape),\"data_offsets\":\(offsets)}")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The file's bytes; `header` replaces the generated JSON header, `headerLength` the true length field.
    func bytes(header: String? = nil, headerLength: UInt64? = nil) -> Data {
        let json = Data((header ?? headerJSON).utf8)
        var length = (headerLength ?? UInt64(json.count)).littleEndian
        var file = Data(bytes: &length, count: 8)
        file.append(json)
        for entry in entries { file.append(entry.data) }
        return file
    }
}
