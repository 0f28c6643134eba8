import JSON

/// tokenizer.json's `pre_tokenizer`, as the list of steps it amounts to. Supported: `Split` with the
/// Llama-3, Qwen2 or GPT-2 pattern (behavior `Isolated`), `ByteLevel` (its regex is GPT-2's; the byte
/// mapping itself is implicit here, since the vocabulary is keyed by raw bytes), `Digits` with
/// individual digits, and `Sequence`.
struct PreTokenizer: Sendable {
    enum Step: Sendable {
        case split(SplitPattern)
        /// ByteLevel's `add_prefix_space`: a piece that does not start with a space gets one.
        case prefixSpace
    }

    let steps: [Step]

    init(json: JSONObject?) throws {
        var steps: [Step] = []
        func visit(_ o: JSONObject) throws {
            let type = try o.string("type")
            switch type {
            case "Sequence":
                for child in try o.objects("pretokenizers") { try visit(child) }
            case "Digits":
                guard try o.optionalBool("individual_digits") == true else {
                    throw TokenizerError(
                        .unsupportedComponent, "\(o.context): Digits without individual_digits is not supported")
                }
                steps.append(.split(.digits))
            case "ByteLevel":
                if try o.optionalBool("add_prefix_space") ?? true { steps.append(.prefixSpace) }
                if try o.optionalBool("use_regex") ?? true { steps.append(.split(.gpt2)) }
            case "Split":
                let pattern = try o.object("pattern")
                let source: String
                if let regex = try pattern.optionalString("Regex") {
                    source = regex
                } else if let literal = try pattern.optionalString("String") {
                    throw TokenizerError(
                        .unsupportedComponent,
                        "\(o.context): Split on the literal string \"\(literal)\" is not supported (only the Llama-3, Qwen2 and GPT-2 regexes)"
                    )
                } else {
                    throw TokenizerError(.malformedJSON, "\(o.context): Split pattern has neither \"Regex\" nor \"String\"")
                }
                guard let split = SplitPattern(source: source) else {
                    throw TokenizerError(
                        .unsupportedComponent,
                        "\(o.context): Split regex \(source) is not one of the supported patterns (Llama-3, Qwen2, GPT-2)")
                }
                let behavior = try o.optionalString("behavior") ?? "Isolated"
                guard behavior == "Isolated" else {
                    throw TokenizerError(
                        .unsupportedComponent, "\(o.context): Split behavior \"\(behavior)\" is not supported (only Isolated)")
                }
                if try o.optionalBool("invert") == true {
                    throw TokenizerError(.unsupportedComponent, "\(o.context): Split with invert=true is not supported")
                }
                steps.append(.split(split))
            default:
                throw TokenizerError(
                    .unsupportedComponent,
                    "\(o.context): pre-tokenizer type \"\(type)\" is not supported (supported: Split, ByteLevel, Digits, Sequence)")
            }
        }
        if let json { try visit(json) }
        self.steps = steps
    }

    /// Calls `emit` with each pre-token (raw bytes) of one piece of text, in order.
    func run(_ s: UnsafeBufferPointer<UInt8>, _ emit: (UnsafeBufferPointer<UInt8>) -> Void) {
        run(step: 0, s, emit)
    }

    private func run(step: Int, _ s: UnsafeBufferPointer<UInt8>, _ emit: (UnsafeBufferPointer<UInt8>) -> Void) {
        if s.isEmpty { return } // the library drops empty pieces before each step
        guard step < steps.count else { return emit(s) }
        switch steps[step] {
        case .split(let pattern):
            pattern.split(s) { range in run(step: step + 1, UnsafeBufferPointer(rebasing: s[range]), emit) }
        case .prefixSpace:
            if s[0] == 0x20 { return run(step: step + 1, s, emit) }
            var spaced: [UInt8] = [0x20]
            spaced.append(contentsOf: s)
            spaced.withUnsafeBufferPointer { run(step: step + 1, $0, emit) }
        }
    }
}
