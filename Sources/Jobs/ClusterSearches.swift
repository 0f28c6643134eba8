import Cluster
import Foundation
import Search
import Wire

/// Evaluation items run as jobs on a coordinator, each job's search record read back, so that
/// `stagebeam eval --coordinator` reports a cluster's answers and time breakdown the way it reports
/// this process's.
public struct ClusterSearches: Sendable {
    let client: Client
    /// A judge-templates file's bytes sent with every job (nil: the built-in wording).
    let judgeTemplatesJSON: Data?

    public init(client: Client, judgeTemplatesJSON: Data?) {
        self.client = client
        self.judgeTemplatesJSON = judgeTemplatesJSON
    }

    public func search(_ item: EvalItem, config: SearchConfig) async throws -> SearchResult {
        var submit = config.submitJob(question: item.question)
        submit.recordSearch = true
        if let judgeTemplatesJSON { submit.judgeTemplatesJson = judgeTemplatesJSON }
        do {
            if let url = item.image { submit.image = try ItemImage.file(url).load() }
            let result = try await client.submit(submit)
            guard result.status == .succeeded else { throw ClusterError(result.error) }
            return try SearchResult(jsonData: result.searchRecordJson)
        } catch {
            throw JobsError(.itemFailed, "item \(item.id): \(error)")
        }
    }
}
