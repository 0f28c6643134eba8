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
