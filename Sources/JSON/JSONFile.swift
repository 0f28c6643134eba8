import Foundation

/// Decodes a typed JSON file (a model's config.json and the like). A file that cannot be read, is not
/// JSON or does not have the type's keys throws a `JSONError` naming the file and the key path at fault
/// ("config.json: missing key 'text_config.hidden_size'"); an error the type's own decoder throws (a
/// value it refuses) comes through unchanged, for the caller to name the file.
public func decodeJSONFile<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
    let data: Data
    do {
        data = try Data(contentsOf: url)
    } catch {
        throw JSONError(.unreadableFile, "cannot read \(url.path): \(error.localizedDescription)")
    }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let DecodingError.keyNotFound(key, context) {
        throw JSONError(.wrongType, "\(url.path): missing key '\(keyPath(context.codingPath + [key]))'")
    } catch let DecodingError.typeMismatch(type, context) {
        throw JSONError(.wrongType, "\(url.path): key '\(keyPath(context.codingPath))' is not of type \(type)")
    } catch let DecodingError.valueNotFound(type, context) {
        throw JSONError(.wrongType, "\(url.path): key '\(keyPath(context.codingPath))' is null, expected \(type)")
    } catch let DecodingError.dataCorrupted(context) where context.codingPath.isEmpty {
        throw JSONError(.malformed, "\(url.path) is not valid JSON (\(context.debugDescription))")
    } catch let DecodingError.dataCorrupted(context) {
        throw JSONError(.wrongType, "\(url.path): key '\(keyPath(context.codingPath))': \(context.debugDescription)")
    }
}

private func keyPath(_ path: [any CodingKey]) -> String {
    path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
}

/// A coding key for any JSON object key: configs are decoded by their snake_case names as written.
public struct JSONKey: CodingKey {
    public let stringValue: String
    public var intValue: Int? { nil }
    public init(_ string: String) { stringValue = string }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == JSONKey {
    /// The value at `key`, or nil when the key is absent or null.
    public func optional<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
        try decodeIfPresent(T.self, forKey: JSONKey(key))
    }

    public func required<T: Decodable>(_ type: T.Type, _ key: String) throws -> T {
        try decode(T.self, forKey: JSONKey(key))
    }

    /// `eos_token_id` and friends: an int, a list of ints, or null/absent (empty list).
    public func tokenIds(_ key: String) throws -> [Int] {
        if let one = try? optional(Int.self, key) { return [one] }
        return try optional([Int].self, key) ?? []
    }
}
