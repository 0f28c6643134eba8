import ChatTemplates
import Foundation
import JSON

/// A Hugging Face byte-level BPE tokenizer (Llama-3, Qwen2, GPT-2 layouts) read from tokenizer.json,
/// giving the same ids as the `tokenizers` library.
///
/// Encoding: added tokens are cut out of the text first (raw-text tokens, then normalized-text tokens),
/// every other piece is normalized, pre-tokenized by a hand-written scanner, and each pre-token is
/// merged by BPE (cached per word). Thread-safe: encodes are serialized on one lock, which guards
/// the word cache and the merge scratch space.
public final class Tokenizer: @unchecked Sendable {
    private let model: BPEModel
    private let normalizer: Normalizer
    private let preTokenizer: PreTokenizer
    private let postProcessor: PostProcessor
    private let rawTokens: AddedTokenMatcher
    private let normalizedTokens: AddedTokenMatcher
    private let addedTokenIds: ByteStringTable
    private let addedTokenContent: [Int32: String]

    /// id → bytes, as the ByteLevel decoder produces them (length -1: no such id).
    private let tokenStart: [Int32]
    private let tokenLength: [Int32]
    private let tokenArena: [UInt8]

    private let lock = NSLock()
    private var scratch = BPEScratch()
    private var wordCache = WordCache()

    /// Max id + 1 over the vocabulary and the added tokens.
    public let vocabularySize: Int
    /// Ids of the added tokens marked `special`.
    public let specialTokenIds: Set<Int>
    /// From tokenizer_config.json (nil when absent or when a tokenizer.json file was given).
    public let bosToken: String?
    public let eosToken: String?
    /// The model's chat template: chat_template.jinja, else tokenizer_config.json's `chat_template`
    /// (a string, or the entry named "default" of a list), else chat_template.json.
    public let chatTemplate: ChatTemplate?
    /// Why the model's chat template is unusable, when it has one that failed to parse.
    public let chatTemplateError: TokenizerError?

    /// `url` is a model directory (reads tokenizer.json, and tokenizer_config.json when present) or a
    /// tokenizer.json file.
    public convenience init(contentsOf url: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TokenizerError(.unreadableFile, "no tokenizer at \(url.path)")
        }
        if !isDirectory.boolValue {
            try self.init(parts: TokenizerError.reading { try Parts(JSONObject.read(url)) }, config: TokenizerConfig())
            return
        }
        let file = url.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw TokenizerError(.unreadableFile, "\(url.path) has no tokenizer.json")
        }
        try self.init(
            parts: TokenizerError.reading { try Parts(JSONObject.read(file)) },
            config: TokenizerError.reading { try TokenizerConfig(directory: url) })
    }

    /// A tokenizer from the bytes of a tokenizer.json file and, optionally, of tokenizer_config.json.
    public convenience init(tokenizerJSON: Data, tokenizerConfigJSON: Data? = nil) throws {
        let config = try tokenizerConfigJSON.map { data in
            try TokenizerConfig(json: TokenizerError.reading { try JSONObject.parse(data, name: "tokenizer_config.json") })
        }
        try self.init(
            parts: TokenizerError.reading { try Parts(JSONObject.parse(tokenizerJSON, name: "tokenizer.json")) },
            config: config ?? TokenizerConfig())
    }

    /// What tokenizer.json describes, read and checked.
    struct Parts {
        var model: BPEModel
        var normalizer: Normalizer
        var preTokenizer: PreTokenizer
        var postProcessor: PostProcessor
        var added: [AddedToken]

        init(_ json: JSONObject) throws {
            for key in ["truncation", "padding"] where json.has(key) {
                throw TokenizerError(
                    .unsupportedComponent, "\(json.context): \"\(key)\" is set; encoding never truncates or pads here, so it must be null")
            }
            model = try BPEModel(json: json.object("model"), path: json.context)
            normalizer = try Normalizer(json: json.optionalObject("normalizer"))
            preTokenizer = try PreTokenizer(json: json.optionalObject("pre_tokenizer"))
            postProcessor = try PostProcessor(json: json.optionalObject("post_processor"))
            try Tokenizer.checkDecoder(json.optionalObject("decoder"), context: json.context)
            added = try json.has("added_tokens") ? json.objects("added_tokens").map(AddedToken.init(json:)) : []
        }
    }

    init(parts: Parts, config: TokenizerConfig) throws {
        (model, normalizer, preTokenizer, postProcessor) = (parts.model, parts.normalizer, parts.preTokenizer, parts.postProcessor)
        let added = parts.added
        var raw = AddedTokenMatcher()
        var normalized = AddedTokenMatcher()
        var addedIds = ByteStringTable(minimumCapacity: added.count)
        for token in added {
            addedIds.insert(Array(token.content.utf8), value: token.id)
            if token.normalized {
                normalized.add(token, pattern: normalizer.normalize(token.content))
            } else {
                raw.add(token, pattern: token.content)
            }
        }
        rawTokens = raw
        normalizedTokens = normalized
        addedTokenIds = addedIds
        addedTokenContent = Dictionary(added.map { ($0.id, $0.content) }, uniquingKeysWith: { _, last in last })
        specialTokenIds = Set(added.filter(\.special).map { Int($0.id) })

        // id → bytes. Added tokens take precedence, decoded as the ByteLevel decoder does: through the
        // byte map when every character is in it, else as their UTF-8 text.
        let size = max(model.maxId, added.map { Int($0.id) }.max() ?? -1) + 1
        var start = [Int32](repeating: 0, count: size)
        var length = [Int32](repeating: -1, count: size)
        var arena: [UInt8] = []
        func store(_ id: Int32, _ bytes: [UInt8]) {
            start[Int(id)] = Int32(arena.count)
            length[Int(id)] = Int32(bytes.count)
            arena += bytes
        }
        for (id, bytes) in model.tokenBytes { store(id, bytes) }
        for token in added {
            store(token.id, ByteLevel.bytes(fromTokenString: token.content) ?? Array(token.content.utf8))
        }
        tokenStart = start
        tokenLength = length
        tokenArena = arena
        vocabularySize = size

        bosToken = config.bosToken
        eosToken = config.eosToken
        var template: ChatTemplate?
        var templateError: TokenizerError?
        if let source = config.chatTemplate {
            do {
                template = try ChatTemplate(source: source)
            } catch let error as ChatTemplateError {
                templateError = TokenizerError(templateError: error)
            }
        }
        chatTemplate = template
        chatTemplateError = templateError ?? config.chatTemplateError
    }

    private static func checkDecoder(_ decoder: JSONObject?, context: String) throws {
        guard let decoder else {
            throw TokenizerError(.unsupportedComponent, "\(context): \"decoder\" is missing (byte-level BPE needs the ByteLevel decoder)")
        }
        let type = try decoder.string("type")
        guard type == "ByteLevel" else {
            throw TokenizerError(.unsupportedComponent, "\(decoder.context): decoder type \"\(type)\" is not supported (only ByteLevel)")
        }
    }

    // MARK: Encoding

    /// Token ids of `text`; equals the `tokenizers` library's `encode(text, add_special_tokens=…).ids`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        if addSpecialTokens { ids += postProcessor.prefix }
        var text = text
        text.withUTF8 { utf8 in
            lock.lock()
            defer { lock.unlock() }
            rawTokens.split(utf8) { range, token in
                if let token {
                    ids.append(token.id)
                } else {
                    encodeUnmatched(UnsafeBufferPointer(rebasing: utf8[range]), into: &ids)
                }
            }
        }
        if addSpecialTokens { ids += postProcessor.suffix }
        return ids.map(Int.init)
    }

    /// Text between raw-text added tokens: normalize, cut out normalized added tokens, then BPE.
    private func encodeUnmatched(_ piece: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        func splitNormalized(_ s: UnsafeBufferPointer<UInt8>) {
            if normalizedTokens.isEmpty { return encodePlain(s, into: &ids) }
            normalizedTokens.split(s) { range, token in
                if let token {
                    ids.append(token.id)
                } else {
                    encodePlain(UnsafeBufferPointer(rebasing: s[range]), into: &ids)
                }
            }
        }
        if let normalized = normalizer.normalize(piece) {
            normalized.withUnsafeBufferPointer { splitNormalized($0) }
        } else {
            splitNormalized(piece)
        }
    }

    private func encodePlain(_ s: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        preTokenizer.run(s) { word in
            if wordCache.append(word, to: &ids) { return }
            let before = ids.count
            model.tokenize(word, into: &ids, scratch: &scratch)
            wordCache.insert(word, ids[before...])
        }
    }

    // MARK: Decoding

    /// Text of `ids` as the ByteLevel decoder gives it: the bytes of all tokens joined, invalid UTF-8
    /// replaced by U+FFFD. Unknown ids are skipped, as the library does.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            if skipSpecialTokens, specialTokenIds.contains(id) { continue }
            withTokenBytes(id) { bytes.append(contentsOf: $0) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Raw bytes a token stands for (byte-level decoded; special and added tokens: their text).
    /// Empty for an unknown id.
    public func tokenBytes(_ id: Int) -> [UInt8] {
        withTokenBytes(id) { Array($0) }
    }

    /// Calls `body` with the bytes of token `id` (empty for an unknown id), without copying them.
    public func withTokenBytes<R>(_ id: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        guard id >= 0, id < vocabularySize, tokenLength[id] >= 0 else {
            return try body(UnsafeBufferPointer(start: nil, count: 0))
        }
        return try tokenArena.withUnsafeBufferPointer { arena in
            try body(UnsafeBufferPointer(rebasing: arena[Int(tokenStart[id])..<Int(tokenStart[id] + tokenLength[id])]))
        }
    }

    /// Id of a token given as an added token's text or as a vocabulary entry in byte-level form ("Ġthe").
    public func id(forToken token: String) -> Int? {
        if let id = addedTokenIds.find(Array(token.utf8)) { return Int(id) }
        guard let bytes = ByteLevel.bytes(fromTokenString: token), let id = model.vocabulary.find(bytes) else { return nil }
        return Int(id)
    }

    /// The vocabulary entry of `id` in byte-level form ("Ġthe"), or an added token's text.
    public func token(forId id: Int) -> String? {
        if let content = addedTokenContent[Int32(truncatingIfNeeded: id)] { return content }
        guard id >= 0, id <= Int(Int32.max), let bytes = model.tokenBytes[Int32(id)] else { return nil }
        return ByteLevel.tokenString(fromBytes: bytes)
    }
}

/// Pre-token → ids, so that repeated words skip the merge loop. Keys and values live in two arenas;
/// the whole cache is dropped when it grows past its budget.
private struct WordCache {
    private var index = ByteStringTable(minimumCapacity: 4096)
    private var ranges: [(start: Int32, count: Int32)] = []
    private var ids: [Int32] = []
    private static let maxWordBytes = 64
    private static let maxEntries = 50_000

    /// Appends the cached ids of `word`; false when it is not cached.
    func append(_ word: UnsafeBufferPointer<UInt8>, to out: inout [Int32]) -> Bool {
        guard word.count <= Self.maxWordBytes, let i = index.find(word) else { return false }
        let r = ranges[Int(i)]
        out += ids[Int(r.start)..<Int(r.start + r.count)]
        return true
    }

    mutating func insert(_ word: UnsafeBufferPointer<UInt8>, _ result: ArraySlice<Int32>) {
        guard word.count <= Self.maxWordBytes else { return }
        if ranges.count >= Self.maxEntries {
            index.removeAll()
            ranges.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
        }
        index.insert(word, value: Int32(ranges.count))
        ranges.append((Int32(ids.count), Int32(result.count)))
        ids += result
    }
}
