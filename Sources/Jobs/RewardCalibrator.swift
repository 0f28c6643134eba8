import Foundation
import Search

/// What `stagebeam calibrate` measured: each stage's reward distribution, and how well the
/// conclusion's rewards separate right answers from wrong ones.
public struct CalibrationReport: Sendable {
    public var calibration: RewardCalibration
    /// Conclusion candidates that were right and wrong (graded against the reference).
    public var rightConclusions = 0
    public var wrongConclusions = 0
    /// Probability that a right conclusion outscores a wrong one of the same question (ties count
    /// half): 0.5 is chance, 1 perfect. nil when no question had both.
    public var conclusionAUC: Double?
    /// Questions whose best-scored conclusion (the search's answer) is right.
    public var topScoredCorrect = 0
    public var seconds = 0.0
}

extension Evaluator {
    /// Runs `stage-beam` with `config`'s M and N on every item and gathers every candidate's reward.
    /// AUC pairs only conclusions of the same question, so that a question's difficulty, which moves
    /// all of its rewards, does not count as separation.
    public func calibrate(
        _ items: [EvalItem], config: SearchConfig, scorerName: String, dataset: String, progress: BatchProgress?
    ) async throws -> CalibrationReport {
        var itemConfig = config
        itemConfig.method = .stageBeam
        var rewards: [Stage: [Double]] = [:]
        var pairs = 0.0, wins = 0.0
        var report = CalibrationReport(
            calibration: RewardCalibration(scorer: scorerName, dataset: dataset, questions: items.count, stages: [:]))
        let start = ContinuousClock.now
        for item in items {
            itemConfig.seed = ItemSeed.seed(batch: config.seed, id: item.id)
            let search = try StageBeamSearch(
                generator: generator, judge: nil, scorer: scorer, rewardTemplates: rewardTemplates, config: itemConfig)
            let result = try await withImage(item.image, item: item.id) { imageRef in
                try await search.run(question: item.question, imageRef: imageRef)
            }
            for record in result.stages {
                rewards[record.stage, default: []] += (record.units[0].scores ?? []).filter(\.isFinite)
            }
            let conclusion = result.stages[Stage.conclusion.index].units[0]
            let scored = zip(conclusion.candidates, conclusion.scores ?? []).map {
                (right: Grading.isCorrect(conclusion: $0.text, reference: item.answer), score: $1)
            }
            report.rightConclusions += scored.filter(\.right).count
            report.wrongConclusions += scored.filter { !$0.right }.count
            for right in scored where right.right {
                for wrong in scored where !wrong.right {
                    pairs += 1
                    wins += right.score > wrong.score ? 1 : right.score == wrong.score ? 0.5 : 0
                }
            }
            if Grading.isCorrect(conclusion: result.answer, reference: item.answer) { report.topScoredCorrect += 1 }
            progress?.finished(succeeded: true)
        }
        for (stage, values) in rewards where !values.isEmpty {
            report.calibration.stages[stage.rawValue] = RewardCalibration.Figures(of: values)
        }
        report.conclusionAUC = pairs > 0 ? wins / pairs : nil
        report.seconds = milliseconds(since: start) / 1000
        return report
    }
}
