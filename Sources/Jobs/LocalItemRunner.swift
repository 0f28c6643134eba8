import Cluster
import Foundation
import LocalEngine
import Search
import Wire
import WorkerHost

/// Runs items in this process on the local engine (`stagebeam batch --model DIR`): the same search
/// `stagebeam run` does, so an item's answer equals a cluster's for the same seed.
public struct LocalItemRunner: ItemRunner {
    let generator: any CandidateGenerator
    let judge: any Judge
    let images: ImageStore
    let templates: JudgeTemplates
    let settings: BatchJobSettings

    public init(
        generator: any CandidateGenerator, judge: any Judge, images: ImageStore, templates: JudgeTemplates,
        settings: BatchJobSettings
    ) {
        self.generator = generator
        self.judge = judge
        self.images = images
        self.templates = templates
        self.settings = settings
    }

    public func run(_ item: BatchItem, seed: UInt64) async -> ItemOutcome {
        let start = ContinuousClock.now
        let config = settings.config(seed: seed)
        let result: Stagebeam_V1_JobResult
        do {
            var imageRef: String?
            if let image = item.image {
                let data = try image.load()
                let hash = ContentHash.sha256Hex(data)
                images.put(data, hash: hash)
                imageRef = hash
            }
            defer { if let imageRef { images.release(imageRef) } }
            let search = try StageBeamSearch(generator: generator, judge: judge, templates: templates, config: config)
            let record = try await search.run(question: item.question, imageRef: imageRef)
            result = try Stagebeam_V1_JobResult(jobID: "", search: record, redispatched: 0, queueMs: 0, totalMs: milliseconds(since: start))
        } catch {
            let failure =
                switch error {
                case let error as JobsError: ClusterError(.badImage, error.description)
                case let error as SearchError: ClusterError(.invalidArgument, "\(error)")
                // Engine errors get the codes a worker would answer with (prompt_too_long, …).
                default: WorkerEngine.wireError(error, requestID: "", jobID: "")
                }
            result = Stagebeam_V1_JobResult(jobID: "", failure: failure, redispatched: 0, queueMs: 0, totalMs: milliseconds(since: start))
        }
        return ItemOutcome(
            item: item, seed: seed, config: settings.reported(seed: seed), result: result, includeSearch: settings.recordSearch)
    }
}
