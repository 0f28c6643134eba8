import Foundation
import JSON

/// tokenizer.json's `normalizer`: none, NFC (Qwen2), or a `Sequence` of those.
struct Normalizer: Sendable {
    /// Whether NFC is applied (a sequence of NFCs is one NFC).
    let nfc: Bool

    init(json: JSONObject?) throws {
        guard let json else {
            nfc = false
            return
        }
        var nfc = false
        func visit(_ o: JSONObject) throws {
            let type = try o.string("type")
            switch type {
            case "NFC": nfc = true
            case "Sequence": for child in try o.objects("normalizers") { try visit(child) }
            default:
                throw TokenizerError(
                    .unsupportedComponent, "\(o.context): normalizer type \"\(type)\" is not supported (supported: NFC, Sequence)")
            }
        }
        try visit(json)
        self.nfc = nfc
    }

    /// The normalized bytes, or nil when normalization leaves them unchanged.
    func normalize(_ s: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard nfc else { return nil }
        // ASCII is already in NFC; most text is, so skip the String round trip for it.
        if !s.contains(where: { $0 >= 0x80 }) { return nil }
        let text = String(decoding: s, as: UTF8.self)
        return Array(text.precomposedStringWithCanonicalMapping.utf8)
    }

    func normalize(_ text: String) -> String {
        nfc ? text.precomposedStringWithCanonicalMapping : text
    }
}
