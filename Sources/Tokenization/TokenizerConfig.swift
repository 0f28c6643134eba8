import Foundation

/// What this module reads from a model directory besides tokenizer.json: the BOS/EOS token texts and
/// the chat template source.
struct TokenizerConfig {
    var bosToken: String?
    var eosToken: String?
    var chatTemplate: String?
    var chatTemplateError: TokenizerError?

    init() {}

    init(json: JSONObject) throws {
        bosToken = try Self.tokenText(json, "bos_token")
        eosToken = try Self.tokenText(json, "eos_token")
        switch json.storage["chat_template"] {
        case nil, is NSNull:
            break
        case let source as String:
            chatTemplate = source
        case let list as [Any]:
            let named = list.compactMap { $0 as? [String: Any] }
            if let entry = named.first(where: { $0["name"] as? String == "default" }), let source = entry["template"] as? String {
                chatTemplate = source
            } else {
                chatTemplateError = TokenizerError(
                    .malformedJSON, "\(json.context): chat_template is a list without an entry named \"default\"")
            }
        default:
            throw TokenizerError(.malformedJSON, "\(json.context): \"chat_template\" must be a string or a list of {name, template}")
        }
    }

    /// Reads tokenizer_config.json when present, and the template files transformers also reads:
    /// chat_template.jinja (which wins over tokenizer_config.json) and chat_template.json (a fallback).
    init(directory: URL) throws {
        let config = directory.appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: config.path) {
            try self.init(json: JSONObject.read(config))
        } else {
            self.init()
        }
        let jinja = directory.appendingPathComponent("chat_template.jinja")
        let processorJSON = directory.appendingPathComponent("chat_template.json")
        if FileManager.default.fileExists(atPath: jinja.path) {
            do {
                chatTemplate = try String(contentsOf: jinja, encoding: .utf8)
                chatTemplateError = nil
            } catch {
                throw TokenizerError(.unreadableFile, "cannot read \(jinja.path): \(error.localizedDescription)")
            }
        } else if chatTemplate == nil, chatTemplateError == nil, FileManager.default.fileExists(atPath: processorJSON.path) {
            chatTemplate = try JSONObject.read(processorJSON).optionalString("chat_template")
        }
    }

    /// A special token is written as its text, or as an AddedToken object {"content": ...}.
    private static func tokenText(_ json: JSONObject, _ key: String) throws -> String? {
        switch json.storage[key] {
        case nil, is NSNull: return nil
        case let text as String: return text
        case let object as [String: Any]:
            guard let content = object["content"] as? String else {
                throw TokenizerError(.malformedJSON, "\(json.context): \"\(key)\" object has no \"content\" string")
            }
            return content
        default:
            throw TokenizerError(.malformedJSON, "\(json.context): \"\(key)\" must be a string or an object with \"content\"")
        }
    }
}
