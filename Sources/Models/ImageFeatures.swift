/// The projected features of one image: (rows, width) row-major, width = the language model's
/// hidden size. Computed once per image (`LlavaModel.imageFeatures`) and cached by the caller,
/// e.g. keyed by the image bytes' hash; each row becomes one image-token position of a prompt.
public struct ImageFeatures: Sendable {
    public let rows: Int
    public let width: Int
    public let values: [Float]

    public init(rows: Int, width: Int, values: [Float]) {
        precondition(values.count == rows * width, "ImageFeatures: \(values.count) values for \(rows)×\(width)")
        self.rows = rows
        self.width = width
        self.values = values
    }
}

/// A prompt whose image-token positions are bound to image feature rows: what a LLaVA prefill runs.
public struct MultimodalPrompt: Sendable {
    public let ids: [Int]
    public let images: [ImageFeatures]
    /// Per position: (image, row) for an image token, nil for a text token.
    let sources: [(image: Int32, row: Int32)?]

    /// Binds the image tokens of `ids` (already expanded) to `images` in order; the counts must agree.
    public init(ids: [Int], imageTokenId: Int, images: [ImageFeatures]) throws {
        var sources: [(image: Int32, row: Int32)?] = []
        sources.reserveCapacity(ids.count)
        var image = 0, row = 0
        for id in ids {
            guard id == imageTokenId else { sources.append(nil); continue }
            guard image < images.count else {
                let needed = images.reduce(0) { $0 + $1.rows }
                throw ModelError(
                    .unsupportedConfiguration,
                    "the prompt has more image tokens (\(ids.filter { $0 == imageTokenId }.count)) than its \(images.count) image(s) have feature rows (\(needed))"
                )
            }
            sources.append((Int32(image), Int32(row)))
            row += 1
            if row == images[image].rows { image += 1; row = 0 }
        }
        guard image == images.count && row == 0 else {
            let needed = images.reduce(0) { $0 + $1.rows }
            throw ModelError(
                .unsupportedConfiguration,
                "the prompt has \(ids.filter { $0 == imageTokenId }.count) image tokens but its \(images.count) image(s) have \(needed) feature rows (expand each image token to the image's row count first)"
            )
        }
        self.ids = ids
        self.images = images
        self.sources = sources
    }

    public var count: Int { ids.count }

    /// Appends positions `range` of the prompt to `batch` for `sequence`, position p of the prompt
    /// at cache position `firstPosition + p`.
    public func append(
        _ range: Range<Int>, to batch: inout ForwardBatch, sequence: PagedKVCache.SequenceID,
        firstPosition: Int, wantsLogits: (Int) -> Bool
    ) {
        for p in range {
            if let source = sources[p] {
                let features = images[Int(source.image)]
                features.values.withUnsafeBufferPointer { values in
                    let row = UnsafeBufferPointer(
                        rebasing: values[(Int(source.row) * features.width)..<((Int(source.row) + 1) * features.width)])
                    batch.append(embedding: row, sequence: sequence, position: firstPosition + p, wantsLogits: wantsLogits(p))
                }
            } else {
                batch.append(token: ids[p], sequence: sequence, position: firstPosition + p, wantsLogits: wantsLogits(p))
            }
        }
    }
}
