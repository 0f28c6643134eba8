import Foundation

/// Any JSON value, booleans and numbers kept distinct. The one representation of untyped JSON in
/// stagebeam: files are parsed by `JSONValue.parse` (Foundation's JSONSerialization, about 6× faster
/// than decoding this enum with JSONDecoder on a 150k-token tokenizer.json) and read through
/// `JSONObject`'s typed accessors; typed files decode with `decodeJSONFile`.
public enum JSONValue: Codable, Equatable, Sendable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let value = try? c.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? c.decode(Double.self) {
            self = .number(value)
        } else if let value = try? c.decode(String.self) {
            self = .string(value)
        } else if let value = try? c.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let value): try c.encode(value)
        case .number(let value): try c.encode(value)
        case .string(let value): try c.encode(value)
        case .array(let value): try c.encode(value)
        case .object(let value): try c.encode(value)
        }
    }
}

extension JSONValue {
    /// Parses `data`; `name` (a file name or path) is named in the error.
    public static func parse(_ data: Data, name: String) throws(JSONError) -> JSONValue {
        let any: Any
        do {
            any = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            // Foundation's own description says only "not in the correct format"; its debug
            // description says where ("Unexpected end of file during JSON parse.").
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "malformed"
            throw JSONError(.malformed, "\(name) is not valid JSON (\(detail))")
        }
        return JSONValue(foundation: any)
    }

    /// A JSONSerialization result as a value. Its NSNumbers hold JSON booleans as the `c` (char)
    /// objCType, which is how they are told apart from 0 and 1.
    init(foundation any: Any) {
        switch any {
        case let text as String: self = .string(text)
        case let number as NSNumber:
            self = String(cString: number.objCType) == "c" ? .bool(number.boolValue) : .number(number.doubleValue)
        case let list as [Any]: self = .array(list.map(JSONValue.init(foundation:)))
        case let object as [String: Any]: self = .object(object.mapValues(JSONValue.init(foundation:)))
        default: self = .null
        }
    }

    /// What the value is, for error messages.
    public var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    public var string: String? { if case .string(let text) = self { text } else { nil } }
    public var number: Double? { if case .number(let number) = self { number } else { nil } }
    public var bool: Bool? { if case .bool(let flag) = self { flag } else { nil } }
    public var array: [JSONValue]? { if case .array(let list) = self { list } else { nil } }
    public var object: [String: JSONValue]? { if case .object(let fields) = self { fields } else { nil } }
    /// A number with no fractional part that fits an Int.
    public var integer: Int? {
        guard case .number(let number) = self, number == number.rounded(), abs(number) < 9e15 else { return nil }
        return Int(number)
    }
}
