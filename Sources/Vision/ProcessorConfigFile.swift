import Foundation
import JSON

/// Where transformers reads a checkpoint's image-processor settings: the `image_processor` section of
/// `processor_config.json` (transformers 5 writes them there), else `preprocessor_config.json`.
/// The object's context names the file (and section) in errors.
func imageProcessorFields(in directory: URL) throws -> JSONObject {
    let processor = directory.appendingPathComponent("processor_config.json")
    let preprocessor = directory.appendingPathComponent("preprocessor_config.json")
    return try VisionError.readingConfig {
        if FileManager.default.fileExists(atPath: processor.path),
            let section = try JSONObject.read(processor).optionalObject("image_processor")
        {
            return JSONObject(section.fields, context: "\(processor.path) (image_processor)")
        }
        if FileManager.default.fileExists(atPath: preprocessor.path) {
            return try JSONObject.read(preprocessor)
        }
        throw VisionError(
            .badProcessorConfig,
            "\(directory.path) holds no image processor settings (neither processor_config.json with an image_processor section nor preprocessor_config.json)"
        )
    }
}

extension VisionError {
    /// Runs `body`, reporting a processor configuration that is unreadable, not JSON or of the wrong
    /// types as `badProcessorConfig` (the message, which names the file and key, unchanged).
    static func readingConfig<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as JSONError {
            throw VisionError(.badProcessorConfig, error.message)
        }
    }
}
