import ArgumentParser
import Foundation
import Tokenization

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text to token ids, as the Hugging Face tokenizers library does.")

    @Option(help: "A model directory or a tokenizer.json file.")
    var tokenizer: String

    @Option(help: "Text to encode.")
    var text: String?

    @Option(help: "File whose contents (UTF-8) to encode.")
    var file: String?

    @Flag(name: .customLong("no-special"), help: "Do not add the post-processor's special tokens (BOS).")
    var noSpecial = false

    @Flag(help: "Print {\"ids\": [...]} instead of one id per line.")
    var json = false

    func validate() throws {
        if (text == nil) == (file == nil) { throw ValidationError("pass exactly one of --text and --file") }
    }

    func run() throws {
        let tokenizer = try Tokenizer(contentsOf: URL(fileURLWithPath: self.tokenizer))
        let input = try text ?? readText(file!, what: "--file")
        let ids = tokenizer.encode(input, addSpecialTokens: !noSpecial)
        if json {
            try printJSON(["ids": ids])
        } else {
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
