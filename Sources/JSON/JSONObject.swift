import Foundation

/// A JSON object with typed accessors whose errors name where the key sits:
/// `tokenizer.json: pre_tokenizer.pretokenizers[0]: "pattern" must be an object`.
/// An absent key and a null one are the same to every `optional…` accessor.
public struct JSONObject: Sendable {
    public let fields: [String: JSONValue]
    /// Where this object sits, for error messages: "tokenizer.json: pre_tokenizer.pretokenizers[0]".
    public let context: String

    public init(_ fields: [String: JSONValue], context: String) {
        self.fields = fields
        self.context = context
    }

    /// Parses a whole file as one JSON object; `name` stands for it in errors (default: its path).
    public static func read(_ url: URL, name: String? = nil) throws(JSONError) -> JSONObject {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw JSONError(.unreadableFile, "cannot read \(url.path): \(error.localizedDescription)")
        }
        return try parse(data, name: name ?? url.path)
    }

    /// Parses `data` as one JSON object; `name` stands for it in errors.
    public static func parse(_ data: Data, name: String) throws(JSONError) -> JSONObject {
        guard case .object(let fields) = try JSONValue.parse(data, name: name) else {
            throw JSONError(.malformed, "\(name) must hold a JSON object at the top level")
        }
        return JSONObject(fields, context: name)
    }

    public var count: Int { fields.count }

    /// The value at `key`; nil when absent or null.
    public subscript(key: String) -> JSONValue? {
        guard let value = fields[key], value != .null else { return nil }
        return value
    }

    public func has(_ key: String) -> Bool { self[key] != nil }

    /// The error for `key` holding something other than `expected` (or nothing).
    public func wrongType(_ key: String, _ expected: String) -> JSONError {
        let found = fields[key].map { ", not \($0.kind)" } ?? " (it is missing)"
        return JSONError(.wrongType, "\(context): \"\(key)\" must be \(expected)\(found)")
    }

    private func required<T>(_ key: String, _ expected: String, _ read: (JSONValue) -> T?) throws(JSONError) -> T {
        guard let value = fields[key], let result = read(value) else { throw wrongType(key, expected) }
        return result
    }

    private func optional<T>(_ key: String, _ expected: String, _ read: (JSONValue) -> T?) throws(JSONError) -> T? {
        guard let value = self[key] else { return nil }
        guard let result = read(value) else { throw wrongType(key, expected) }
        return result
    }

    public func object(_ key: String) throws(JSONError) -> JSONObject {
        JSONObject(try required(key, "an object") { $0.object }, context: "\(context).\(key)")
    }

    public func optionalObject(_ key: String) throws(JSONError) -> JSONObject? {
        try optional(key, "an object") { $0.object }.map { JSONObject($0, context: "\(context).\(key)") }
    }

    public func array(_ key: String) throws(JSONError) -> [JSONValue] { try required(key, "an array") { $0.array } }

    public func optionalArray(_ key: String) throws(JSONError) -> [JSONValue]? { try optional(key, "an array") { $0.array } }

    /// An array of objects, each with its own place in later errors.
    public func objects(_ key: String) throws(JSONError) -> [JSONObject] {
        var result: [JSONObject] = []
        for (i, value) in try array(key).enumerated() {
            guard let fields = value.object else {
                throw JSONError(.wrongType, "\(context): \"\(key)[\(i)]\" must be an object, not \(value.kind)")
            }
            result.append(JSONObject(fields, context: "\(context).\(key)[\(i)]"))
        }
        return result
    }

    public func string(_ key: String) throws(JSONError) -> String { try required(key, "a string") { $0.string } }

    public func optionalString(_ key: String) throws(JSONError) -> String? { try optional(key, "a string") { $0.string } }

    /// Only JSON's true and false, not 0 and 1.
    public func optionalBool(_ key: String) throws(JSONError) -> Bool? { try optional(key, "true or false") { $0.bool } }

    public func double(_ key: String) throws(JSONError) -> Double { try required(key, "a number") { $0.number } }

    public func optionalDouble(_ key: String) throws(JSONError) -> Double? { try optional(key, "a number") { $0.number } }

    public func int(_ key: String) throws(JSONError) -> Int { try required(key, "an integer") { $0.integer } }

    public func optionalInt(_ key: String) throws(JSONError) -> Int? { try optional(key, "an integer") { $0.integer } }
}
