import Foundation

/// Turns a decoded image into a vision tower's input exactly as the transformers image processor
/// that `AutoImageProcessor` builds from the same configuration does. Without torchvision (as in
/// this project's reference environment) that is the PIL backend — `CLIPImageProcessorPil`,
/// `LlavaImageProcessorPil`, `SiglipImageProcessorPil` — whose steps are, in order: LLaVA's
/// pad-to-square, PIL resize, centre crop (zero-padding when too small), `uint8 · rescale_factor`
/// in float64 rounded to float32, then `(x - mean) / std` in float32.
public struct Preprocessor: Sendable {
    public let config: ImageProcessorConfig

    public init(config: ImageProcessorConfig) {
        self.config = config
    }

    /// The image processor of a model directory (see `ImageProcessorConfig.load`).
    public init(directory: URL) throws {
        self.init(config: try ImageProcessorConfig.load(from: directory))
    }

    /// Decodes and preprocesses image bytes.
    public func callAsFunction(_ data: Data, maxPixels: Int = ImageDecoder.defaultMaxPixels) throws -> PreprocessedImage {
        try process(ImageDecoder.decode(data, maxPixels: maxPixels))
    }

    public func process(_ decoded: RGBImage) -> PreprocessedImage {
        var image = decoded
        if config.doPad { image = padToSquare(image) }
        if config.doResize {
            let (height, width) = resizedSize(height: image.height, width: image.width)
            image = PillowResample.resize(image, width: width, height: height, filter: config.resample)
        }
        if config.doCenterCrop { image = centerCrop(image, height: config.cropHeight, width: config.cropWidth) }
        return normalized(image)
    }

    /// The (height, width) the resize step produces, as transformers computes it.
    func resizedSize(height: Int, width: Int) -> (Int, Int) {
        switch config.size {
        case .exact(let h, let w):
            return (h, w)
        case .shortestEdge(let size):
            // get_resize_output_image_size(default_to_square=False): int(size * long / short).
            let (short, long) = width <= height ? (width, height) : (height, width)
            let newLong = Int(Double(size * long) / Double(short))
            return width <= height ? (newLong, size) : (size, newLong)
        case .shortestLongest(let shortest, let longest):
            // get_size_with_aspect_ratio(image_size, shortest, longest).
            var size = shortest
            var raw: Double? = nil
            let minOriginal = Double(min(height, width)), maxOriginal = Double(max(height, width))
            if maxOriginal / minOriginal * Double(size) > Double(longest) {
                raw = Double(longest) * minOriginal / maxOriginal
                size = Int(raw!.rounded(.toNearestOrEven))
            }
            if (height <= width && height == size) || (width <= height && width == size) { return (height, width) }
            if width < height {
                return (Int((raw ?? Double(size)) * Double(height) / Double(width)), size)
            }
            return (size, Int((raw ?? Double(size)) * Double(width) / Double(height)))
        }
    }

    /// LLaVA's pad_to_square: centred on a square of `int(mean · 255)` per channel.
    func padToSquare(_ image: RGBImage) -> RGBImage {
        guard image.width != image.height else { return image }
        let side = max(image.width, image.height)
        let colour = config.imageMean.map { UInt8(clamping: Int($0 * 255)) }
        var out = RGBImage(width: side, height: side, fill: (colour[0], colour[1], colour[2]))
        let top = image.width > image.height ? (side - image.height) / 2 : 0
        let left = image.width > image.height ? 0 : (side - image.width) / 2
        let rowBytes = image.width * 3
        for y in 0..<image.height {
            let to = ((top + y) * side + left) * 3
            out.pixels.replaceSubrange(to..<(to + rowBytes), with: image.pixels[(y * rowBytes)..<((y + 1) * rowBytes)])
        }
        return out
    }

    /// numpy `center_crop`: the window starts at `(size - crop) // 2` (floor), and whatever falls
    /// outside the image is zero (the image is smaller than the crop).
    func centerCrop(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
        if image.height == height && image.width == width { return image }
        func floorHalf(_ x: Int) -> Int { x >= 0 ? x / 2 : -((-x + 1) / 2) }
        let top = floorHalf(image.height - height), left = floorHalf(image.width - width)
        var out = RGBImage(width: width, height: height, fill: (0, 0, 0))
        for y in 0..<height where (0..<image.height).contains(y + top) {
            for x in 0..<width where (0..<image.width).contains(x + left) {
                let from = ((y + top) * image.width + x + left) * 3, to = (y * width + x) * 3
                out.pixels[to] = image.pixels[from]; out.pixels[to + 1] = image.pixels[from + 1];
                out.pixels[to + 2] = image.pixels[from + 2]
            }
        }
        return out
    }

    /// Rescale (float64 product rounded to float32) and normalize (float32), channel-first.
    func normalized(_ image: RGBImage) -> PreprocessedImage {
        let plane = image.width * image.height
        var values = [Float](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            // numpy computes each level's value the same way: a 256-entry table is exact.
            let mean = Float(config.imageMean[c]), std = Float(config.imageStd[c])
            let table = (0..<256).map { level -> Float in
                let x = config.doRescale ? Float(Double(level) * config.rescaleFactor) : Float(level)
                return config.doNormalize ? (x - mean) / std : x
            }
            for i in 0..<plane { values[c * plane + i] = table[Int(image.pixels[3 * i + c])] }
        }
        return PreprocessedImage(height: image.height, width: image.width, values: values)
    }
}
