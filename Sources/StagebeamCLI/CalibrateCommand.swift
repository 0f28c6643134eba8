import ArgumentParser
import Foundation
import Jobs
import LocalEngine
import Search

/// Measures a scorer's reward distribution per stage on a validation file and records it in the
/// model's recommendations, where `swires` finds its thresholds.
struct CalibrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Measure the mean and std of a scorer's rewards per stage and write them into the model's stagebeam.json.",
        discussion: """
            Runs stage-beam (--candidates M, --keep N, the model's recommended settings otherwise) on every question \
            of a validation file (the eval dataset format) and records, per stage, the mean and population standard \
            deviation of every candidate's reward, under "reward_calibration" in the model's stagebeam.json (or \
            --output). swires then passes a stage when a candidate scores at least mean + z·std. Also prints how well \
            the conclusion's rewards separate right answers from wrong ones (AUC within each question). Use a \
            validation split, never the test split.
            """)

    @OptionGroup var engine: EngineOptions
    @Option(help: "Validation dataset JSONL (the eval format: id, question, answer, image).")
    var dataset: String
    @Option(help: "Only the first K questions.")
    var limit: Int?
    @OptionGroup var tuning: SearchTuningOptions
    @OptionGroup var scoring: ScorerOptions
    @Option(help: "Write the recommendations here instead of the model's stagebeam.json.")
    var output: String?
    @Flag(name: .customLong("dry-run"), help: "Print the figures; write nothing.")
    var dryRun = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be ≥ 1") }
    }

    func run() async throws {
        let datasetURL = URL(fileURLWithPath: dataset)
        let items = Array(try EvalDataset.items(datasetURL).prefix(limit ?? .max))
        guard !items.isEmpty else { throw ValidationError("\(datasetURL.path) has no items") }
        let model = try engine.directory
        let recommendations = try ModelRecommendations(model: model)
        let config = recommendations.config(choices: tuning.choices, seed: tuning.seed, scorer: scoring.scorerName)

        let images = ImageStore()
        let local = try engine.makeLocalEngine(images: images, keepCandidates: scoring.rewardModel == nil)
        let evaluator = Evaluator(
            generator: local.generator, judge: local.judge, images: images, templates: .builtIn,
            scorer: try engine.makeScorer(scoring, selfReward: local.scorer), rewardTemplates: try scoring.templates())
        printError(
            "calibrate \(scoring.scorerName) · stage-beam M \(config.candidates) N \(config.keep) · \(items.count) question(s) from \(datasetURL.path)"
        )
        let progress = BatchProgress(
            total: items.count, alreadyDone: 0, terminal: isatty(STDERR_FILENO) == 1, interval: .seconds(10),
            write: { FileHandle.standardError.write(Data($0.utf8)) })
        let report = try await evaluator.calibrate(
            items, config: config, scorerName: scoring.scorerName, dataset: datasetURL.lastPathComponent, progress: progress)
        progress.end()

        for stage in Stage.allCases {
            guard let figures = report.calibration.stages[stage.rawValue] else { continue }
            print(
                String(
                    format: "%@ mean %8.4f  std %7.4f  n %d  threshold (z %.4f) %8.4f",
                    stage.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0), figures.mean, figures.std,
                    figures.count, config.rewardZ, figures.mean + config.rewardZ * figures.std))
        }
        let auc = report.conclusionAUC.map { String(format: "%.3f", $0) } ?? "n/a"
        let share = Double(report.rightConclusions) / Double(max(1, report.rightConclusions + report.wrongConclusions))
        print(
            String(
                format:
                    "conclusions: %d right, %d wrong (%.1f%% right); AUC right vs wrong within a question: %@; best-scored answer right on %d/%d; %.1f s",
                report.rightConclusions, report.wrongConclusions, share * 100, auc, report.topScoredCorrect, items.count, report.seconds))
        if dryRun { return }
        let destination = output.map { URL(fileURLWithPath: $0) } ?? ModelRecommendations.file(ofModel: model)
        try write(report.calibration, over: ModelRecommendations.file(ofModel: model), to: destination)
        printError("wrote reward_calibration to \(destination.path)")
    }

    /// The recommendations file at `source` (if any) with its `reward_calibration` replaced, written to `destination`.
    func write(_ calibration: RewardCalibration, over source: URL, to destination: URL) throws {
        var object: [String: Any] = [:]
        if FileManager.default.fileExists(atPath: source.path) {
            guard let existing = try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as? [String: Any] else {
                throw ValidationError("\(source.path) is not a JSON object")
            }
            object = existing
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        object["reward_calibration"] = try JSONSerialization.jsonObject(with: encoder.encode(calibration))
        var data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        data.append(UInt8(ascii: "\n"))
        do {
            try data.write(to: destination, options: .atomic)
        } catch {
            throw ValidationError("cannot write \(destination.path): \(error.localizedDescription)")
        }
    }
}
