import Foundation
import JSON
import ModelFormats

extension Tokenizer {
    /// The pre-tokenizer of each supported `tokenizer.ggml.pre` name: the regexes llama.cpp splits
    /// with for that name, as tokenizer.json steps (each split isolated, then the byte-level mapping).
    static func ggufPreTokenizer(named name: String) -> [String: Any]? {
        func split(_ regex: String) -> [String: Any] { ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated"] }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]
        let gpt2: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true]
        let llama3: [String: Any] = ["type": "Sequence", "pretokenizers": [split(SplitPattern.llama3Source), byteLevel]]
        let known: [String: [String: Any]] = [
            "default": gpt2,
            "gpt2": gpt2,
            "gpt-2": gpt2,
            "llama-bpe": llama3,
            "llama3": llama3,
            "llama-v3": llama3,
            "qwen2": ["type": "Sequence", "pretokenizers": [split(SplitPattern.qwen2Source), byteLevel]],
            // Each digit on its own, then GPT-2's regex.
            "smollm": ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], gpt2]]
        ]
        return known[name]
    }

    /// The `tokenizer.ggml.pre` names `ggufPreTokenizer(named:)` knows.
    public static let ggufPreTokenizerNames = ["default", "gpt-2", "gpt2", "llama-bpe", "llama-v3", "llama3", "qwen2", "smollm"]

    /// llama.cpp's token types (`llama_token_type`): control tokens are special added tokens,
    /// user-defined ones plain added tokens; both are matched whole in the text.
    enum GGUFTokenType: Int {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// The tokenizer a GGUF file's metadata describes (`tokenizer.ggml.*`): byte-level BPE
    /// (`tokenizer.ggml.model` = gpt2) with the pre-tokenizer named by `tokenizer.ggml.pre`, the
    /// tokens, their types, the merges, BOS/EOS, and the chat template (`tokenizer.chat_template`).
    /// Built as transformers builds it from the same file (`AutoTokenizer.from_pretrained(…, gguf_file=…)`).
    public convenience init(gguf file: GGUFFile) throws {
        let path = file.url.path
        func metadata<T>(_ read: () throws -> T) throws -> T {
            do { return try read() } catch let error as ModelFormatError { throw TokenizerError(.malformedJSON, error.message) }
        }
        guard let model = try metadata({ try file.optionalString("tokenizer.ggml.model") }) else {
            throw TokenizerError(.unreadableFile, "\(path) has no tokenizer (no tokenizer.ggml.model)")
        }
        guard model == "gpt2" else {
            throw TokenizerError(
                .unsupportedComponent, "\(path): tokenizer.ggml.model '\(model)' is not supported (only gpt2, byte-level BPE)")
        }
        let preName = try metadata({ try file.optionalString("tokenizer.ggml.pre") }) ?? "default"
        guard let preTokenizer = Self.ggufPreTokenizer(named: preName) else {
            throw TokenizerError(
                .unsupportedComponent,
                "\(path): tokenizer.ggml.pre '\(preName)' is not supported (supported: \(Self.ggufPreTokenizerNames.joined(separator: ", ")))"
            )
        }
        guard let tokens = try metadata({ try file.optionalStrings("tokenizer.ggml.tokens") }) else {
            throw TokenizerError(.malformedJSON, "\(path): tokenizer.ggml.tokens is missing")
        }
        let merges = try metadata({ try file.optionalStrings("tokenizer.ggml.merges") }) ?? []
        let types = try metadata({ try file.optionalIntegers("tokenizer.ggml.token_type") }) ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw TokenizerError(
                .inconsistentVocabulary, "\(path): \(types.count) token types for \(tokens.count) tokens")
        }
        func tokenId(_ key: String) throws -> Int? {
            guard let id = try metadata({ try file.optionalInteger(key) }) else { return nil }
            guard id >= 0, id < tokens.count else {
                throw TokenizerError(.inconsistentVocabulary, "\(path): \(key) \(id) is not a token id (0..<\(tokens.count))")
            }
            return id
        }
        let bos = try tokenId("tokenizer.ggml.bos_token_id")
        let eos = try tokenId("tokenizer.ggml.eos_token_id")

        // Tokens are spelled in GPT-2's byte alphabet; one written in plain text is respelled, as
        // transformers does, so that it stands for its UTF-8 bytes.
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            vocab[ByteLevel.bytes(fromTokenString: token) != nil ? token : ByteLevel.tokenString(fromBytes: Array(token.utf8))] = id
        }
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() where !types.isEmpty {
            switch GGUFTokenType(rawValue: types[id]) {
            // A control token outside the byte alphabet is a mislabel that transformers skips too.
            case .control where ByteLevel.bytes(fromTokenString: token) != nil:
                added.append(["id": id, "content": token, "special": true, "normalized": false])
            case .userDefined where vocab[token] != nil:
                added.append(["id": id, "content": token, "special": false, "normalized": false])
            default: break
            }
        }
        var json: [String: Any] = [
            "model": ["type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": false],
            "pre_tokenizer": preTokenizer,
            "decoder": ["type": "ByteLevel"],
            "added_tokens": added
        ]
        let addBos = try metadata({ try file.optionalBool("tokenizer.ggml.add_bos_token") }) ?? false
        let addEos = try metadata({ try file.optionalBool("tokenizer.ggml.add_eos_token") }) ?? false
        if (addBos && bos != nil) || (addEos && eos != nil) {
            var single: [[String: Any]] = []
            var specials: [String: Any] = [:]
            if addBos, let bos {
                single.append(["SpecialToken": ["id": tokens[bos], "type_id": 0]])
                specials[tokens[bos]] = ["id": tokens[bos], "ids": [bos], "tokens": [tokens[bos]]]
            }
            single.append(["Sequence": ["id": "A", "type_id": 0]])
            if addEos, let eos {
                single.append(["SpecialToken": ["id": tokens[eos], "type_id": 0]])
                specials[tokens[eos]] = ["id": tokens[eos], "ids": [eos], "tokens": [tokens[eos]]]
            }
            json["post_processor"] = ["type": "TemplateProcessing", "single": single, "special_tokens": specials]
        }

        var config = TokenizerConfig()
        config.bosToken = bos.map { tokens[$0] }
        config.eosToken = eos.map { tokens[$0] }
        config.chatTemplate = try metadata({ try file.optionalString("tokenizer.chat_template") })
        let data = try JSONSerialization.data(withJSONObject: json)
        let name = "\(file.url.lastPathComponent) (tokenizer.ggml.*)"
        try self.init(parts: TokenizerError.reading { try Parts(JSONObject.parse(data, name: name)) }, config: config)
    }
}
