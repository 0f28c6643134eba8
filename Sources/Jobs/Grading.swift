import Foundation
import Search

/// How `stagebeam eval` scores one answer.
///
/// **Correct**: the predicted answer is the last word of the CONCLUSION stage's text — the text
/// lowercased, then its last maximal run of ASCII `[a-z0-9]` characters ("So the answer is 3." → "3",
/// "Answer: Red." → "red"); the answer is correct iff that equals the reference answer lowercased and
/// trimmed. No run at all is never correct.
///
/// **Format valid**: all four stages are present in order, each non-empty after trimming, and each
/// stage's chosen text closed its tag itself (not closed by the search when the candidate ran out of
/// budget or wrote another stage's tag: `StageRecord.forcedClose`).
public enum Grading {
    public static func predictedAnswer(conclusion: String) -> String? {
        let scalars = Array(conclusion.lowercased().unicodeScalars)
        func isWordScalar(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || ("0"..."9").contains(s) }
        guard let last = scalars.lastIndex(where: isWordScalar) else { return nil }
        var first = last
        while first > 0, isWordScalar(scalars[first - 1]) { first -= 1 }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }

    public static func isCorrect(conclusion: String, reference: String) -> Bool {
        predictedAnswer(conclusion: conclusion) == reference.lowercased().trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public static func isFormatValid(_ stages: [StageRecord]) -> Bool {
        guard stages.map(\.stage) == Stage.allCases else { return false }
        return stages.allSatisfy { record in
            // `text` is opening tag + body + closing tag; cut by bytes so a combining mark after a tag stays in the body.
            let utf8 = record.text.utf8.dropFirst(record.stage.openingTag.utf8.count).dropLast(record.stage.closingTag.utf8.count)
            let body = String(decoding: utf8, as: UTF8.self)
            return !record.forcedClose && !body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        }
    }
}
