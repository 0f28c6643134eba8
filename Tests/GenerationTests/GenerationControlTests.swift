import Generation
import Synchronization
import Testing

@Suite struct GenerationControlTests {
    /// Text reports read the samples without changing them: the tokens are those of the same
    /// request unwatched, and each sample's pieces concatenate to its text. Stopping ends the
    /// samples at the next step and frees their cache blocks.
    @Test func reportsTextAndStopsWithoutChangingTokens() throws {
        let generator = try ModelFixture.generator("llama-gqa")
        let prompt = try ModelFixture.reference("llama-gqa").prompts[1].input_ids
        let sampling = SamplingParameters(temperature: 0.9, topK: 50, topP: 0.95)
        let seeds: [UInt64] = [21, 22, 23]
        func request(_ control: GenerationControl? = nil) -> GenerationRequest {
            GenerationRequest(promptTokens: prompt, seeds: seeds, sampling: sampling, maxNewTokens: 40, control: control)
        }
        let plain = try generator.generate(request())

        let pieces = Mutex<[SampleText]>([])
        let watched = try generator.generate(request(GenerationControl(textInterval: .zero) { texts in pieces.withLock { $0 += texts } }))
        #expect(watched.samples.map(\.tokenIds) == plain.samples.map(\.tokenIds))
        let received = pieces.withLock { $0 }
        #expect(received.count > seeds.count, "several pieces per sample")
        for (index, sample) in watched.samples.enumerated() {
            #expect(received.filter { $0.index == index }.map(\.text).joined() == sample.text, "sample \(index)")
            #expect(received.last { $0.index == index }?.tokenCount == sample.tokenIds.count)
        }

        let blocks = generator.cache.usedBlocks
        let stopping = Mutex<GenerationControl?>(nil)
        let control = GenerationControl(textInterval: .zero) { _ in stopping.withLock { $0?.stop() } }
        stopping.withLock { $0 = control }
        let stopped = try generator.generate(request(control))
        #expect(control.isStopped)
        #expect(stopped.samples.allSatisfy { $0.tokenIds.count <= 2 }, "\(stopped.samples.map(\.tokenIds.count))")
        #expect(generator.cache.usedBlocks == blocks, "the stopped samples' blocks are free")
    }
}
