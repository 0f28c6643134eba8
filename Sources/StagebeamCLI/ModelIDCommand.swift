import ArgumentParser
import Cluster
import Foundation
import Models

/// A model's identity, as workers announce it: what `coordinator --model-id` takes.
struct ModelIDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model-id",
        abstract: "Print a model's identity (the SHA-256 of every file that changes an answer), as its workers announce it.")

    @Option(help: "The model directory (or a model that is one file).")
    var model: String
    @Option(name: .customLong("chat-template"), help: "The chat template file the workers pass as --chat-template.")
    var chatTemplate: String?
    @Option(name: .customLong("kv-type"), help: "The KV cache type the workers pass as --kv-type (f32 or f16).")
    var kvCacheType: KVCacheType = .f32
    @Flag(name: .customLong("no-cache"), help: "Hash every file again instead of using cached digests (for timing).")
    var noCache = false

    func run() throws {
        let template = try chatTemplate.map { try readText($0, what: "--chat-template") }
        let start = ContinuousClock.now
        let identity = try ModelIdentity.compute(
            model: URL(fileURLWithPath: model), chatTemplate: template, kvCacheType: kvCacheType.rawValue, useCache: !noCache)
        print(identity)
        printError(String(format: "%.3f s", milliseconds(ContinuousClock.now - start) / 1000))
    }
}
