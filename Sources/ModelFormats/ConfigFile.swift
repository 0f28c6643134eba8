import Foundation
import JSON

/// Decodes a model's configuration file; every failure is a `ModelFormatError` naming the file.
func decodeConfig<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
    do {
        return try decodeJSONFile(T.self, from: url)
    } catch let error as JSONError {
        throw ModelFormatError(error.code == .unreadableFile ? .fileNotFound : .badConfig, error.message)
    } catch let error as ModelFormatError {
        throw ModelFormatError(error.code, "\(url.path): \(error.message)")
    }
}
