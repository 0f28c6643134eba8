import CCrypto
import Foundation
import ModelFormats

/// A model directory's tokenizer (tokenizer.json, tokenizer_config.json, config.json, chat template
/// files) as the `tokenizer.ggml.*` and `tokenizer.chat_template` keys llama.cpp's converter writes
/// for a byte-level BPE (`gpt2`) tokenizer: every token up to the model's vocabulary size (ids the
/// tokenizer lacks as `[PAD<id>]`, type unused), their types (special added tokens, and added ones
/// spelled `<|…|>`, as control tokens; other added tokens user-defined), the merges, the special
/// token ids, whether BOS/EOS are added, and the chat template.
public struct GGUFTokenizerExport {
    /// The keys, in the converter's order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// `tokenizer.ggml.pre`.
    public let preTokenizerName: String
    /// How the name was found (for the command's report).
    public let preTokenizerSource: String

    /// The text llama.cpp's converter encodes to recognise a tokenizer: the SHA-256 of its ids,
    /// written as a Python list, names the pre-tokenizer (`get_vocab_base_pre`).
    static let checkText =
        "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\u{1f680} (normal) \u{1f636}\u{200d}\u{1f32b}\u{fe0f} (multiple emojis concatenated) \u{2705} \u{1f999}\u{1f999} 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 \u{1780}\u{17b6}\u{1793}\u{17cb}\u{178f}\u{17c2}\u{1796}\u{17b7}\u{179f}\u{17c1}\u{179f}\u{17a2}\u{17b6}\u{1785}\u{1f601} ?\u{6211}\u{60f3}\u{5728}apple\u{5de5}\u{4f5c}1314151\u{5929}\u{ff5e} ------======= \u{43d}\u{435}\u{449}\u{43e} \u{43d}\u{430} \u{411}\u{44a}\u{43b}\u{433}\u{430}\u{440}\u{441}\u{43a}\u{438} ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"

    /// The converter's table, for the pre-tokenizers both llama.cpp and this engine run: the hash of
    /// `checkText`'s ids → `tokenizer.ggml.pre`, with the checkpoint each hash was taken from.
    static let knownHashes: [String: (name: String, from: String)] = [
        "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": ("llama-bpe", "meta-llama/Meta-Llama-3-8B"),
        "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": ("qwen2", "Qwen/Qwen1.5-7B"),
        "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": ("qwen2", "Qwen/Qwen3-Embedding-0.6B"),
        "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": ("smollm", "HuggingFaceTB/SmolLM-135M"),
        "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": ("gpt-2", "openai-community/gpt2"),
        "0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4": ("gpt-2", "evilfreelancer/ruGPT3XL")
    ]

    /// Reads the tokenizer of the model in `directory`, whose vocabulary has `vocabularySize`
    /// entries (config.json's `vocab_size`).
    ///
    /// `tokenizer.ggml.pre` is chosen as the converter chooses it, by the hash of `checkText`'s ids.
    /// A tokenizer trained anew (so in no table) is accepted when its pre-tokenizer is, step for
    /// step, the one llama.cpp runs under a name (Llama 3's or Qwen2's split, GPT-2's, SmolLM's);
    /// anything else is an error naming the hash and the pre-tokenizer.
    public init(directory: URL, vocabularySize: Int) throws {
        let tokenizer = try Tokenizer(contentsOf: directory)
        let json = try Self.readObject(directory.appendingPathComponent("tokenizer.json"))
        guard let model = json["model"] as? [String: Any], model["type"] as? String == "BPE",
            let vocab = model["vocab"] as? [String: Int]
        else {
            throw TokenizerError(.unsupportedComponent, "\(directory.path)/tokenizer.json: quantize writes byte-level BPE tokenizers only")
        }

        let hash = Self.sha256Hex("[" + tokenizer.encode(Self.checkText).map(String.init).joined(separator: ", ") + "]")
        let steps = Self.steps(of: json["pre_tokenizer"] as? [String: Any])
        if let known = Self.knownHashes[hash] {
            (preTokenizerName, preTokenizerSource) = (known.name, "recognised as \(known.from)'s tokenizer")
        } else if let steps,
            let name = ["llama-bpe", "qwen2", "smollm", "gpt-2"].first(where: {
                Self.steps(of: Tokenizer.ggufPreTokenizer(named: $0)) == steps
            })
        {
            (preTokenizerName, preTokenizerSource) = (name, "not a published tokenizer; its pre-tokenizer is \(name)'s, step for step")
        } else {
            throw TokenizerError(
                .unsupportedComponent,
                "\(directory.path)/tokenizer.json: pre-tokenizer not recognised (hash \(hash) of the check text's ids is in no "
                    + "table, and its steps \(steps ?? ["(unsupported)"]) are none of llama-bpe, qwen2, smollm, gpt-2), so llama.cpp "
                    + "would not split text as the tokenizer does")
        }

        // Tokens and their types.
        var byId: [Int: String] = [:]
        for (token, id) in vocab { byId[id] = token }
        let added = (json["added_tokens"] as? [[String: Any]] ?? []).compactMap { entry -> (id: Int, content: String, special: Bool)? in
            guard let id = entry["id"] as? Int, let content = entry["content"] as? String else { return nil }
            return (id, content, entry["special"] as? Bool ?? false)
        }
        let addedById = Dictionary(added.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        for token in added { byId[token.id] = token.content }
        guard let largest = byId.keys.max(), largest < vocabularySize else {
            throw TokenizerError(
                .inconsistentVocabulary,
                "\(directory.path): token id \(byId.keys.max() ?? -1) is not below the model's vocab_size \(vocabularySize)")
        }
        var tokens: [GGUFValue] = []
        var types: [GGUFValue] = []
        for id in 0..<vocabularySize {
            guard let token = byId[id] else {
                tokens.append(.string("[PAD\(id)]"))
                types.append(.int32(Int32(Tokenizer.GGUFTokenType.unused.rawValue)))
                continue
            }
            var type = Tokenizer.GGUFTokenType.normal
            var text = token
            if let entry = addedById[id] {
                if entry.special || (token.hasPrefix("<|") && token.hasSuffix("|>")) {
                    type = .control
                } else {
                    type = .userDefined
                    text = token.replacingOccurrences(of: "\u{2581}", with: " ")
                }
            }
            tokens.append(.string(text))
            types.append(.int32(Int32(type.rawValue)))
        }
        let merges: [GGUFValue] = try (model["merges"] as? [Any] ?? []).map { merge in
            if let text = merge as? String { return .string(text) }
            guard let pair = merge as? [String], pair.count == 2 else {
                throw TokenizerError(.malformedJSON, "\(directory.path)/tokenizer.json: a merge is neither \"a b\" nor [a, b]")
            }
            // A space inside a part would split the pair: the converter writes it as U+0120.
            return .string(pair.map { $0.replacingOccurrences(of: " ", with: "\u{120}") }.joined(separator: " "))
        }
        // GGUF array element types: 8 = string, 5 = int32.
        var metadata: [(key: String, value: GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(preTokenizerName)),
            ("tokenizer.ggml.tokens", .array(elementType: 8, tokens)), ("tokenizer.ggml.token_type", .array(elementType: 5, types)),
            ("tokenizer.ggml.merges", .array(elementType: 8, merges))
        ]

        // Special tokens: tokenizer_config.json's texts (as added tokens), then config.json's ids.
        let configFile = directory.appendingPathComponent("tokenizer_config.json")
        let tokenizerConfig = FileManager.default.fileExists(atPath: configFile.path) ? try Self.readObject(configFile) : nil
        let modelConfig = try Self.readObject(directory.appendingPathComponent("config.json"))
        let textConfig = modelConfig["text_config"] as? [String: Any]
        let keys = [
            ("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id"), ("sep", "seperator_token_id"),
            ("pad", "padding_token_id"), ("cls", "cls_token_id"), ("mask", "mask_token_id")
        ]
        var specialIds: [String: Int] = [:]
        for (kind, key) in keys {
            let text = Self.tokenText(tokenizerConfig?["\(kind)_token"])
            var id = text.flatMap { text in added.first { $0.content == text }?.id }
            if id == nil { id = (modelConfig["\(kind)_token_id"] ?? textConfig?["\(kind)_token_id"]) as? Int }
            guard let id, id >= 0, id < vocabularySize else { continue }
            specialIds[kind] = id
            metadata.append(("tokenizer.ggml.\(key)", .uint32(UInt32(id))))
        }

        // Whether BOS/EOS are added: the post-processor's template, else tokenizer_config.json.
        var addBos: Bool?
        var addEos: Bool?
        var addSep: Bool?
        let postProcessor = json["post_processor"] as? [String: Any]
        for processor in postProcessor.map({ $0["processors"] as? [[String: Any]] ?? [$0] }) ?? [] {
            switch processor["type"] as? String {
            case "ByteLevel":
                addBos = addBos ?? false
                addEos = addEos ?? false
            case "TemplateProcessing":
                let single = processor["single"] as? [[String: Any]] ?? []
                func special(_ item: [String: Any]?) -> String? { (item?["SpecialToken"] as? [String: Any])?["id"] as? String }
                var (first, last): (String?, String?) = (nil, nil)
                if single.count > 1 {
                    first = special(single.first)
                    last = special(single.last)
                    if let first { addBos = specialIds["bos"].map { byId[$0] == first } ?? false }
                    if let last { addEos = specialIds["eos"].map { byId[$0] == last } ?? false }
                }
                // A pair template "…A <separator> B…": whether the separator is added (sep or eos).
                var pair = ArraySlice(processor["pair"] as? [[String: Any]] ?? [])
                if first != nil, special(pair.first) == first { pair = pair.dropFirst() }
                if last != nil, special(pair.last) == last { pair = pair.dropLast() }
                func sequence(_ item: [String: Any]?) -> String? { (item?["Sequence"] as? [String: Any])?["id"] as? String }
                if sequence(pair.first) == "A", sequence(pair.last) == "B", pair.count > 2 {
                    let separators = [specialIds["sep"], specialIds["eos"]].compactMap { $0.flatMap { byId[$0] } }
                    let middle = pair.dropFirst().dropLast()
                    addSep = middle.contains { special($0).map(separators.contains) ?? false } && last == nil
                }
            default: break
            }
        }
        addBos = addBos ?? tokenizerConfig?["add_bos_token"] as? Bool
        addEos = addEos ?? tokenizerConfig?["add_eos_token"] as? Bool
        if let addBos { metadata.append(("tokenizer.ggml.add_bos_token", .bool(addBos))) }
        if let addEos { metadata.append(("tokenizer.ggml.add_eos_token", .bool(addEos))) }
        if let addSep { metadata.append(("tokenizer.ggml.add_sep_token", .bool(addSep))) }

        // The chat template: tokenizer_config.json's, else chat_template.jinja, else chat_template.json's.
        if tokenizerConfig != nil, let template = try Self.chatTemplate(tokenizerConfig!, directory: directory) {
            metadata.append(("tokenizer.chat_template", .string(template)))
        }
        self.metadata = metadata
    }

    /// A pre-tokenizer as the steps llama.cpp distinguishes (splits by regex, digits, GPT-2's byte-level
    /// regex or none), or nil when it has a step or an option llama.cpp's named pre-tokenizers lack.
    static func steps(of preTokenizer: [String: Any]?) -> [String]? {
        guard let preTokenizer else { return nil }
        switch preTokenizer["type"] as? String {
        case "Sequence":
            guard let parts = preTokenizer["pretokenizers"] as? [[String: Any]] else { return nil }
            var all: [String] = []
            for part in parts {
                guard let steps = steps(of: part) else { return nil }
                all += steps
            }
            return all
        case "Split":
            guard let pattern = (preTokenizer["pattern"] as? [String: Any])?["Regex"] as? String,
                preTokenizer["behavior"] as? String == "Isolated", preTokenizer["invert"] as? Bool ?? false == false
            else { return nil }
            return ["split \(pattern)"]
        case "Digits":
            return ["digits individual=\(preTokenizer["individual_digits"] as? Bool ?? false)"]
        case "ByteLevel":
            guard preTokenizer["add_prefix_space"] as? Bool ?? false == false else { return nil }
            return (preTokenizer["use_regex"] as? Bool ?? true) ? ["gpt2 regex"] : []
        default:
            return nil
        }
    }

    static func chatTemplate(_ config: [String: Any], directory: URL) throws -> String? {
        switch config["chat_template"] {
        case let source as String: return source
        case let list as [[String: Any]]: return list.first { $0["name"] as? String == "default" }?["template"] as? String
        default: break
        }
        let jinja = directory.appendingPathComponent("chat_template.jinja")
        if let data = FileManager.default.contents(atPath: jinja.path) {
            guard let text = String(data: data, encoding: .utf8) else {
                throw TokenizerError(.malformedJSON, "\(jinja.path) is not UTF-8 text")
            }
            return text
        }
        let json = directory.appendingPathComponent("chat_template.json")
        guard FileManager.default.fileExists(atPath: json.path) else { return nil }
        return try readObject(json)["chat_template"] as? String
    }

    static func tokenText(_ value: Any?) -> String? {
        (value as? String) ?? ((value as? [String: Any])?["content"] as? String)
    }

    static func readObject(_ url: URL) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TokenizerError(.unreadableFile, "cannot read \(url.path)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TokenizerError(.malformedJSON, "\(url.path) is not a JSON object")
        }
        return object
    }

    static func sha256Hex(_ text: String) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var size: UInt32 = 0
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &size, EVP_sha256(), nil) }
        return digest.map { String(format: "%02x", $0) }.joined()
    }
}
