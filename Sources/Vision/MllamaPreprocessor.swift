import Foundation
import JSON

/// An image cut into the tiles a Llama 3.2 Vision encoder takes: `pixel_values[0, 0]`,
/// `aspect_ratio_ids[0, 0]` and `aspect_ratio_mask[0, 0]` of transformers' `MllamaImageProcessor`.
public struct MllamaTiledImage: Sendable {
    /// Side of one (square) tile in pixels.
    public let tileSize: Int
    /// Tiles the values hold: the processor's `max_image_tiles`, the unused ones zero.
    public let maxTiles: Int
    /// The tile grid the image was resized into.
    public let tilesHigh: Int, tilesWide: Int
    /// 1 + the grid's index in the processor's arrangement list (0 means "no image").
    public let aspectRatioId: Int
    /// (maxTiles, 3, tileSize, tileSize) row-major; tile t is grid row t / tilesWide, column t % tilesWide.
    public let values: [Float]

    public init(tileSize: Int, maxTiles: Int, tilesHigh: Int, tilesWide: Int, aspectRatioId: Int, values: [Float]) {
        precondition(
            values.count == maxTiles * 3 * tileSize * tileSize,
            "MllamaTiledImage: \(values.count) values for \(maxTiles) tiles of 3×\(tileSize)×\(tileSize)")
        precondition(tilesHigh * tilesWide <= maxTiles, "MllamaTiledImage: a \(tilesHigh)×\(tilesWide) grid in \(maxTiles) tiles")
        self.tileSize = tileSize
        self.maxTiles = maxTiles
        self.tilesHigh = tilesHigh
        self.tilesWide = tilesWide
        self.aspectRatioId = aspectRatioId
        self.values = values
    }

    /// Tiles holding the image; the rest are padding (`aspect_ratio_mask` is 1 for the first `tileCount`).
    public var tileCount: Int { tilesHigh * tilesWide }
}

/// transformers' `MllamaImageProcessor` as `AutoImageProcessor` builds it without torchvision —
/// `MllamaImageProcessorPil` — step for step: choose the tile grid (`get_optimal_tiled_canvas`),
/// resize with PIL keeping the aspect ratio (`get_image_size_fit_to_canvas`), pad right and bottom
/// with black, rescale and normalize, split into tiles, pad to `max_image_tiles` tiles with zeros.
public struct MllamaPreprocessor: Sendable {
    public let config: MllamaImageProcessorConfig

    public init(config: MllamaImageProcessorConfig) {
        self.config = config
    }

    public init(directory: URL) throws {
        self.init(config: try MllamaImageProcessorConfig.load(from: directory))
    }

    /// Decodes and tiles image bytes (JPEG or PNG).
    public func callAsFunction(_ data: Data, maxPixels: Int = ImageDecoder.defaultMaxPixels) throws -> MllamaTiledImage {
        process(try ImageDecoder.decode(data, maxPixels: maxPixels))
    }

    public func process(_ image: RGBImage) -> MllamaTiledImage {
        let tile = config.tileSize
        let grid = Self.tileGrid(height: image.height, width: image.width, maxTiles: config.maxImageTiles, tileSize: tile)
        let (height, width) = Self.sizeFittingCanvas(
            height: image.height, width: image.width,
            canvasHeight: grid.high * tile, canvasWidth: grid.wide * tile, tileSize: tile)
        let resized = PillowResample.resize(image, width: width, height: height, filter: config.resample)
        let table = levelTable()
        let plane = tile * tile
        var values = [Float](repeating: 0, count: config.maxImageTiles * 3 * plane)
        // Pixels right of and below the resized image are black (level 0) before normalizing.
        for t in 0..<(grid.high * grid.wide) {
            let top = (t / grid.wide) * tile, left = (t % grid.wide) * tile
            for c in 0..<3 {
                let channel = t * 3 * plane + c * plane
                for y in 0..<tile {
                    for x in 0..<tile {
                        let (sy, sx) = (top + y, left + x)
                        let level = sy < height && sx < width ? Int(resized.pixels[(sy * width + sx) * 3 + c]) : 0
                        values[channel + y * tile + x] = table[c][level]
                    }
                }
            }
        }
        return MllamaTiledImage(
            tileSize: tile, maxTiles: config.maxImageTiles, tilesHigh: grid.high, tilesWide: grid.wide,
            aspectRatioId: grid.id, values: values)
    }

    /// Per channel, the value of each 8-bit level: numpy's `uint8 · rescale_factor` in float64 rounded to
    /// float32, then `(x - mean) / std` in float32 (a table is exact: every pixel of a level gets the same).
    func levelTable() -> [[Float]] {
        (0..<3).map { c in
            let mean = Float(config.imageMean[c]), std = Float(config.imageStd[c])
            return (0..<256).map { level -> Float in
                let x = config.doRescale ? Float(Double(level) * config.rescaleFactor) : Float(level)
                return config.doNormalize ? (x - mean) / std : x
            }
        }
    }

    /// `get_all_supported_aspect_ratios`: every (tiles high, tiles wide) grid of at most `maxTiles` tiles,
    /// in transformers' order (its aspect-ratio ids are 1 + the index here).
    public static func arrangements(maxTiles: Int) -> [(high: Int, wide: Int)] {
        var grids: [(high: Int, wide: Int)] = []
        for high in 1...maxTiles {
            for wide in 1...maxTiles where high * wide <= maxTiles { grids.append((high, wide)) }
        }
        return grids
    }

    /// `get_optimal_tiled_canvas`: the grid needing the least upscaling, or failing that the least
    /// downscaling (scale = the smaller of the two axes'); ties go to the smaller area, then to the first.
    public static func tileGrid(height: Int, width: Int, maxTiles: Int, tileSize: Int) -> (high: Int, wide: Int, id: Int) {
        let grids = arrangements(maxTiles: maxTiles)
        let scales = grids.map { grid -> Double in
            let scaleHeight = Double(grid.high * tileSize) / Double(height)
            let scaleWidth = Double(grid.wide * tileSize) / Double(width)
            return scaleWidth > scaleHeight ? scaleHeight : scaleWidth
        }
        let upscales = scales.filter { $0 >= 1 }
        let selected = upscales.min() ?? scales.filter { $0 < 1 }.max()!
        var best: Int?
        for i in grids.indices where scales[i] == selected {
            if best == nil || grids[i].high * grids[i].wide < grids[best!].high * grids[best!].wide { best = i }
        }
        return (grids[best!].high, grids[best!].wide, best! + 1)
    }

    /// `get_image_size_fit_to_canvas`: the (height, width) to resize to — each side first clipped into
    /// tileSize...canvas side, then the tighter scale applied to the other side (floored, at least 1).
    public static func sizeFittingCanvas(height: Int, width: Int, canvasHeight: Int, canvasWidth: Int, tileSize: Int) -> (Int, Int) {
        let targetWidth = min(max(width, tileSize), canvasWidth)
        let targetHeight = min(max(height, tileSize), canvasHeight)
        let scaleHeight = Double(targetHeight) / Double(height)
        let scaleWidth = Double(targetWidth) / Double(width)
        if scaleWidth < scaleHeight {
            return (min(max(Int((Double(height) * scaleWidth).rounded(.down)), 1), targetHeight), targetWidth)
        }
        return (targetHeight, min(max(Int((Double(width) * scaleHeight).rounded(.down)), 1), targetWidth))
    }
}

/// The settings of a `MllamaImageProcessor` (processor_config.json's `image_processor` section, read
/// first as transformers does, or preprocessor_config.json). Keys left out take the class defaults.
public struct MllamaImageProcessorConfig: Sendable, Equatable {
    /// `size.height` (= `size.width`): the side of a tile.
    public var tileSize: Int
    public var maxImageTiles: Int
    public var resample: ResamplingFilter
    public var doRescale: Bool
    public var rescaleFactor: Double
    public var doNormalize: Bool
    public var imageMean: [Double]
    public var imageStd: [Double]

    public static func load(from directory: URL) throws -> MllamaImageProcessorConfig {
        try MllamaImageProcessorConfig(fields: imageProcessorFields(in: directory))
    }

    /// Decodes one image-processor JSON object (the text of a preprocessor_config.json); `source`
    /// names it in errors.
    public init(json: Data, source: String) throws {
        try self.init(fields: VisionError.readingConfig { try JSONObject.parse(json, name: source) })
    }

    init(fields json: JSONObject) throws {
        self = try VisionError.readingConfig { try Self(checking: json) }
    }

    private init(checking json: JSONObject) throws {
        func fail(_ message: String) -> VisionError { VisionError(.badProcessorConfig, "\(json.context): \(message)") }
        /// A present key whose value `read` cannot take is an error naming the key and `what` it must be.
        func value<T>(_ key: String, _ what: String, _ read: (JSONValue) -> T?) throws -> T? {
            guard let raw = json[key] else { return nil }
            guard let value = read(raw) else { throw json.wrongType(key, what) }
            return value
        }
        func bool(_ key: String) throws -> Bool? { try json.optionalBool(key) }
        func number(_ key: String) throws -> Double? { try json.optionalDouble(key) }
        func int(_ key: String) throws -> Int? { try json.optionalInt(key) }

        let type = try json.optionalString("image_processor_type") ?? ""
        guard ["MllamaImageProcessor", "MllamaImageProcessorFast", "MllamaImageProcessorPil"].contains(type) else {
            throw fail("image_processor_type '\(type)' is not a Llama 3.2 Vision processor (MllamaImageProcessor)")
        }
        // The processor class refuses these too.
        guard try bool("do_resize") ?? true, try bool("do_pad") ?? true else {
            throw fail("MllamaImageProcessor needs do_resize and do_pad (tiling always resizes and pads)")
        }
        guard try bool("do_convert_rgb") ?? true else { throw fail("do_convert_rgb false is not supported: decoded images are always RGB") }
        let size =
            try value("size", "a {height, width} object") { raw -> (Int, Int)? in
                guard case .object(let dict) = raw, case .number(let h)? = dict["height"], case .number(let w)? = dict["width"] else {
                    return nil
                }
                return (Int(h), Int(w))
            } ?? (224, 224)
        guard size.0 == size.1, size.0 > 0 else { throw fail("size must be a positive square (height = width), got \(size.0)×\(size.1)") }
        tileSize = size.0
        maxImageTiles = try int("max_image_tiles") ?? 4
        guard maxImageTiles > 0 else { throw fail("max_image_tiles must be positive, got \(maxImageTiles)") }
        let filter = try int("resample") ?? ResamplingFilter.bilinear.rawValue
        guard let resample = ResamplingFilter(rawValue: filter) else {
            throw fail("resample \(filter) is not supported (1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming; 0 nearest is not)")
        }
        self.resample = resample
        doRescale = try bool("do_rescale") ?? true
        rescaleFactor = try number("rescale_factor") ?? 1 / 255
        guard rescaleFactor.isFinite else { throw fail("rescale_factor must be finite") }
        doNormalize = try bool("do_normalize") ?? true
        func channels(_ key: String) throws -> [Double] {
            try value(key, "a number or a list of 3 numbers") { raw -> [Double]? in
                switch raw {
                case .number(let x): return [x, x, x]
                case .array(let list) where list.count == 3:
                    let numbers = list.compactMap { if case .number(let x) = $0 { x } else { nil } }
                    return numbers.count == 3 ? numbers : nil
                default: return nil
                }
            } ?? [0.5, 0.5, 0.5] // IMAGENET_STANDARD_MEAN / _STD
        }
        imageMean = try channels("image_mean")
        imageStd = try channels("image_std")
        guard imageStd.allSatisfy({ $0 != 0 }) else { throw fail("image_std has a zero entry") }
    }
}
