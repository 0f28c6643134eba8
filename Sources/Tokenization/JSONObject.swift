import Foundation

/// A JSON object read with `JSONSerialization`, with typed accessors whose errors name the key and file.
struct JSONObject {
    let storage: [String: Any]
    /// Where this object sits, for error messages: "tokenizer.json: pre_tokenizer.pretokenizers[0]".
    let context: String

    init(_ storage: [String: Any], context: String) {
        self.storage = storage
        self.context = context
    }

    /// Parses a whole file as one JSON object.
    static func read(_ url: URL) throws -> JSONObject {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw TokenizerError(.unreadableFile, "cannot read \(url.path): \(error.localizedDescription)")
        }
        return try parse(data, name: url.lastPathComponent)
    }

    static func parse(_ data: Data, name: String) throws -> JSONObject {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw TokenizerError(.malformedJSON, "\(name) is not valid JSON: \(error.localizedDescription)")
        }
        guard let object = value as? [String: Any] else {
            throw TokenizerError(.malformedJSON, "\(name) must hold a JSON object at the top level")
        }
        return JSONObject(object, context: name)
    }

    var count: Int { storage.count }

    func has(_ key: String) -> Bool {
        if let v = storage[key], !(v is NSNull) { return true }
        return false
    }

    private func wrongType(_ key: String, _ expected: String) -> TokenizerError {
        TokenizerError(.malformedJSON, "\(context): \"\(key)\" must be \(expected)")
    }

    func object(_ key: String) throws -> JSONObject {
        guard let v = storage[key] as? [String: Any] else { throw wrongType(key, "an object") }
        return JSONObject(v, context: "\(context).\(key)")
    }

    func optionalObject(_ key: String) throws -> JSONObject? {
        guard has(key) else { return nil }
        return try object(key)
    }

    func array(_ key: String) throws -> [Any] {
        guard let v = storage[key] as? [Any] else { throw wrongType(key, "an array") }
        return v
    }

    func objects(_ key: String) throws -> [JSONObject] {
        try array(key).enumerated().map { i, v in
            guard let o = v as? [String: Any] else { throw wrongType("\(key)[\(i)]", "an object") }
            return JSONObject(o, context: "\(context).\(key)[\(i)]")
        }
    }

    func string(_ key: String) throws -> String {
        guard let v = storage[key] as? String else { throw wrongType(key, "a string") }
        return v
    }

    func optionalString(_ key: String) throws -> String? {
        guard has(key) else { return nil }
        return try string(key)
    }

    /// JSON booleans come back as NSNumber; only accept real booleans, not 0/1.
    func optionalBool(_ key: String) throws -> Bool? {
        guard has(key) else { return nil }
        guard let n = storage[key] as? NSNumber, Self.isBoolean(n) else {
            throw wrongType(key, "true or false")
        }
        return n.boolValue
    }

    static func isBoolean(_ n: NSNumber) -> Bool {
        String(cString: n.objCType) == "c"
    }

    func optionalDouble(_ key: String) throws -> Double? {
        guard has(key) else { return nil }
        guard let n = storage[key] as? NSNumber else { throw wrongType(key, "a number") }
        return n.doubleValue
    }

    func int(_ key: String) throws -> Int {
        guard let n = storage[key] as? NSNumber, !Self.isBoolean(n), let v = storage[key] as? Int else {
            throw wrongType(key, "an integer")
        }
        return v
    }
}
