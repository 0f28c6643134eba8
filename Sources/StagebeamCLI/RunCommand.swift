import ArgumentParser
import Foundation
import LocalEngine
import Search

/// The method in one process: generator and judge are the local engine.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Answer a question with stage-level beam search (or a baseline) in this process.")

    @OptionGroup var engine: EngineOptions
    @OptionGroup var search: SearchOptions
    @OptionGroup var scoring: ScorerOptions

    @Option(help: "The question.")
    var question: String

    @Option(help: "An image (JPEG or PNG) the question is about; needs a vision model. The judge sees it too.")
    var image: String?

    @Flag(help: "Print the whole search record as JSON.")
    var json = false

    func run() async throws {
        let recommendations = try ModelRecommendations(model: engine.directory)
        if recommendations.requiresImage, image == nil {
            throw ValidationError(
                "\(try engine.directory.path) answers questions about an image only (its \(ModelRecommendations.fileName)): give --image")
        }
        let images = ImageStore()
        let imageRef = try image.map { path in
            let image = try engine.loadImage(path)
            images.put(image.data, hash: image.hash)
            return image.hash
        }
        let config = recommendations.config(choices: search.choices, seed: search.seed, scorer: scoring.scorerName)
        let selfReward = config.method.usesScorer && scoring.rewardModel == nil
        let local = try engine.makeLocalEngine(images: images, keepCandidates: selfReward)
        let beamSearch = try StageBeamSearch(
            generator: local.generator, judge: local.judge, templates: try search.templates(),
            scorer: config.method.usesScorer ? try engine.makeScorer(scoring, selfReward: local.scorer) : nil,
            rewardTemplates: try scoring.templates(), config: config)
        let progress: SearchEventSink? = json ? nil : { @Sendable event in printError(describe(event)) }
        let result = try await beamSearch.run(question: question, imageRef: imageRef, events: progress)
        if json {
            print(String(decoding: try result.jsonData(), as: UTF8.self))
        } else {
            print(result.text)
            print()
            print("answer: \(result.answer)")
            let c = result.counts
            printError(
                String(
                    format: "%@ · beam %d · %d candidates · %d judge calls · %d scored · %d retraces · %.1f s",
                    result.method.rawValue, result.beam, c.candidates, c.judgeCalls, c.scoredCandidates, c.retraces, result.seconds))
        }
    }
}

/// One line per search event, for a person watching.
func describe(_ event: SearchEvent) -> String {
    switch event {
    case .stageStarted(let stage):
        return "▸ \(stage.rawValue)"
    case .candidatesReady(let stage, _, let candidates):
        let flags = candidates.filter(\.forcedClose).count
        return "  \(candidates.count) \(stage.rawValue) candidates"
            + (flags > 0 ? " (\(flags) reached the stage's token budget; the search closed their tag)" : "")
    case .verdict(_, _, let match):
        return "  match \(match.match): \(match.a) vs \(match.b) → \(match.winner) (\(match.outcome.rawValue))"
    case .winner(let topic, _, let candidate):
        return "  \(topic.rawValue) winner: candidate \(candidate)"
    case .scored(let stage, _, let candidates, let scores):
        let listed = zip(candidates, scores).map { String(format: "%d: %.3f", $0, $1) }.joined(separator: ", ")
        return "  \(stage.rawValue) scores: \(listed)"
    case .survivors(let stage, _, let candidates):
        return "  \(stage.rawValue) survivors: \(candidates.map(String.init).joined(separator: ", "))"
    case .retraced(let retrace):
        return String(
            format: "  retrace %d: best %@ score %.3f < threshold %.3f; regenerated %d, best now %.3f", retrace.attempt,
            retrace.stage.rawValue, retrace.bestBefore, retrace.threshold, retrace.regenerated.count, retrace.bestAfter)
    }
}
