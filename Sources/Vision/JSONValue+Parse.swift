import Foundation
import ModelFormats

extension JSONValue {
    static func parse(_ data: Data, source: String) throws -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw VisionError(.badProcessorConfig, "\(source): not valid JSON (\(error))")
        }
    }
}

/// Where transformers reads a checkpoint's image-processor settings: the `image_processor` section of
/// `processor_config.json` (transformers 5 writes them there), else `preprocessor_config.json`.
/// Returns the settings object and a name for it in errors.
func imageProcessorFields(in directory: URL) throws -> (fields: [String: JSONValue], source: String) {
    let processor = directory.appendingPathComponent("processor_config.json")
    let preprocessor = directory.appendingPathComponent("preprocessor_config.json")
    if let object = try jsonObject(at: processor), case .object(let section)? = object["image_processor"] {
        return (section, "\(processor.path) (image_processor)")
    }
    if let object = try jsonObject(at: preprocessor) {
        return (object, preprocessor.path)
    }
    throw VisionError(
        .badProcessorConfig,
        "\(directory.path) holds no image processor settings (neither processor_config.json with an image_processor section nor preprocessor_config.json)"
    )
}

/// The JSON object in `data`; `source` names it in errors.
func jsonObject(_ data: Data, source: String) throws -> [String: JSONValue] {
    guard case .object(let object) = try JSONValue.parse(data, source: source) else {
        throw VisionError(.badProcessorConfig, "\(source): not a JSON object")
    }
    return object
}

/// The JSON object in the file at `url`, or nil when there is no such file.
private func jsonObject(at url: URL) throws -> [String: JSONValue]? {
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    return try jsonObject(Data(contentsOf: url), source: url.path)
}
