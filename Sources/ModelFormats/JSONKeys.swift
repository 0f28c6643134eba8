import Foundation

/// A coding key for any JSON object key: configs are decoded by their snake_case names as written.
struct JSONKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == JSONKey {
    /// The value at `key`, or nil when the key is absent or null.
    func optional<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
        try decodeIfPresent(T.self, forKey: JSONKey(key))
    }

    func required<T: Decodable>(_ type: T.Type, _ key: String) throws -> T {
        try decode(T.self, forKey: JSONKey(key))
    }

    /// `eos_token_id` and friends: an int, a list of ints, or null/absent (empty list).
    func tokenIds(_ key: String) throws -> [Int] {
        if let one = try? optional(Int.self, key) { return [one] }
        return try optional([Int].self, key) ?? []
    }
}

/// Decodes a config file, turning decoding failures into `badConfig` errors that name the file
/// and the key path at fault.
func decodeConfig<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
    let data: Data
    do {
        data = try Data(contentsOf: url)
    } catch {
        throw ModelFormatError(.fileNotFound, "cannot read \(url.path): \(error.localizedDescription)")
    }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let error as ModelFormatError {
        throw ModelFormatError(error.code, "\(url.path): \(error.message)")
    } catch let DecodingError.keyNotFound(key, context) {
        throw ModelFormatError(.badConfig, "\(url.path): missing key '\(keyPath(context.codingPath + [key]))'")
    } catch let DecodingError.typeMismatch(type, context) {
        throw ModelFormatError(.badConfig, "\(url.path): key '\(keyPath(context.codingPath))' is not of type \(type)")
    } catch let DecodingError.valueNotFound(type, context) {
        throw ModelFormatError(.badConfig, "\(url.path): key '\(keyPath(context.codingPath))' is null, expected \(type)")
    } catch let DecodingError.dataCorrupted(context) {
        let at = context.codingPath.isEmpty ? "" : " at key '\(keyPath(context.codingPath))'"
        throw ModelFormatError(.badConfig, "\(url.path): invalid JSON\(at) (\(context.debugDescription))")
    } catch {
        throw ModelFormatError(.badConfig, "\(url.path): \(error)")
    }
}

private func keyPath(_ path: [any CodingKey]) -> String {
    path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
}
