import JSON

/// tokenizer.json's `post_processor`, for a single sequence: the special tokens `TemplateProcessing`
/// puts around it (Llama-3's `<|begin_of_text|>`). `ByteLevel` only adjusts offsets, so it changes no
/// ids; `Sequence` chains processors.
struct PostProcessor: Sendable {
    /// Ids before and after the sequence, when special tokens are added.
    let prefix: [Int32]
    let suffix: [Int32]

    init(json: JSONObject?) throws {
        var prefix: [Int32] = []
        var suffix: [Int32] = []
        func visit(_ o: JSONObject) throws {
            let type = try o.string("type")
            switch type {
            case "ByteLevel":
                break
            case "Sequence":
                for child in try o.objects("processors") { try visit(child) }
            case "TemplateProcessing":
                guard prefix.isEmpty, suffix.isEmpty else {
                    throw TokenizerError(.unsupportedComponent, "\(o.context): more than one TemplateProcessing")
                }
                let specials = try o.object("special_tokens")
                var seenSequence = false
                for (i, item) in try o.array("single").enumerated() {
                    let where_ = "\(o.context).single[\(i)]"
                    guard let item = item.object else {
                        throw TokenizerError(.malformedJSON, "\(where_) must be an object")
                    }
                    if let sequence = item["Sequence"]?.object {
                        guard sequence["id"]?.string == "A", !seenSequence else {
                            throw TokenizerError(
                                .unsupportedComponent, "\(where_): a single-sequence template may only hold sequence A, once")
                        }
                        seenSequence = true
                    } else if let special = item["SpecialToken"]?.object, let name = special["id"]?.string {
                        let entry = try specials.object(name)
                        let ids = try entry.array("ids").map { value -> Int32 in
                            guard let id = value.integer, id >= 0, id <= Int(Int32.max) else {
                                throw TokenizerError(.malformedJSON, "\(entry.context).ids must hold non-negative integers")
                            }
                            return Int32(id)
                        }
                        if seenSequence { suffix += ids } else { prefix += ids }
                    } else {
                        throw TokenizerError(.malformedJSON, "\(where_) is neither a Sequence nor a SpecialToken")
                    }
                }
                guard seenSequence else {
                    throw TokenizerError(.malformedJSON, "\(o.context).single never places sequence A")
                }
            default:
                throw TokenizerError(
                    .unsupportedComponent,
                    "\(o.context): post-processor type \"\(type)\" is not supported (supported: TemplateProcessing, ByteLevel, Sequence)")
            }
        }
        if let json { try visit(json) }
        self.prefix = prefix
        self.suffix = suffix
    }
}
