import Testing

@testable import Jobs
@testable import Search

/// The answer rule (last [a-z0-9] run of the conclusion) and the format rule (four closed, non-empty stages).
struct GradingTests {
    @Test func thePredictedAnswerIsTheLastRunOfLettersAndDigits() {
        #expect(Grading.predictedAnswer(conclusion: "So the answer is 3.") == "3")
        #expect(Grading.predictedAnswer(conclusion: "Answer: Red.") == "red")
        #expect(Grading.predictedAnswer(conclusion: "There are 12 apples") == "apples")
        #expect(Grading.predictedAnswer(conclusion: "It is the 3rd one!!") == "one")
        #expect(Grading.predictedAnswer(conclusion: "dark-blue") == "blue")
        // Non-ASCII letters end a run: only [a-z0-9] count.
        #expect(Grading.predictedAnswer(conclusion: "Ответ: 7") == "7")
        #expect(Grading.predictedAnswer(conclusion: "café") == "caf")
        #expect(Grading.predictedAnswer(conclusion: "") == nil)
        #expect(Grading.predictedAnswer(conclusion: "?!") == nil)
    }

    @Test func correctWhenTheLastWordEqualsTheReferenceLowercasedAndTrimmed() {
        #expect(Grading.isCorrect(conclusion: "So the answer is 3.", reference: "3"))
        #expect(Grading.isCorrect(conclusion: "The sky is BLUE.", reference: " Blue\n"))
        #expect(!Grading.isCorrect(conclusion: "There are 13.", reference: "3"))
        #expect(!Grading.isCorrect(conclusion: "3 is the answer.", reference: "3"))
        #expect(!Grading.isCorrect(conclusion: "", reference: ""))
    }

    static func stage(_ stage: Stage, _ body: String, forcedClose: Bool = false) -> StageRecord {
        StageRecord(
            stage: stage, text: stage.openingTag + body + stage.closingTag, forcedClose: forcedClose, units: [],
            generateSeconds: 0, judgeSeconds: 0)
    }

    static let valid = Stage.allCases.map { stage($0, "Text of \($0.rawValue).") }

    @Test func formatValidNeedsFourStagesInOrderEachNonEmptyAndClosedByTheModel() {
        #expect(Grading.isFormatValid(Self.valid))
        var forced = Self.valid
        forced[2].forcedClose = true
        #expect(!Grading.isFormatValid(forced))
        var empty = Self.valid
        empty[1] = Self.stage(.caption, " \n ")
        #expect(!Grading.isFormatValid(empty))
        #expect(!Grading.isFormatValid(Array(Self.valid.dropLast())))
        #expect(!Grading.isFormatValid([Self.valid[1], Self.valid[0], Self.valid[2], Self.valid[3]]))
        // A body that starts with a combining mark is not empty.
        var combining = Self.valid
        combining[0] = Self.stage(.summary, "\u{301}")
        #expect(Grading.isFormatValid(combining))
    }
}
