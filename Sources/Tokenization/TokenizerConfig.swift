import Foundation
import JSON

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
        switch json["chat_template"] {
        case nil:
            break
        case .string(let source):
            chatTemplate = source
        case .array(let list):
            let named = list.compactMap(\.object)
            if let entry = named.first(where: { $0["name"]?.string == "default" }), let source = entry["template"]?.string {
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
        switch json[key] {
        case nil: return nil
        case .string(let text): return text
        case .object(let object):
            guard let content = object["content"]?.string else {
                throw TokenizerError(.malformedJSON, "\(json.context): \"\(key)\" object has no \"content\" string")
            }
            return content
        default:
            throw TokenizerError(.malformedJSON, "\(json.context): \"\(key)\" must be a string or an object with \"content\"")
        }
    }
}
