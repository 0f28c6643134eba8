import Foundation
import JSON

/// The settings of a transformers image processor as saved in `processor_config.json` (its
/// `image_processor` section, where transformers 5 writes them; read first, as transformers does) or
/// `preprocessor_config.json`. Keys left out take the defaults of the processor class named by
/// `image_processor_type`; legacy integer `size`/`crop_size` are read as transformers' `get_size_dict` does.
public struct ImageProcessorConfig: Sendable, Equatable {
    /// The processor families whose PIL-backend behaviour is reproduced.
    public enum Kind: String, Sendable {
        /// CLIPImageProcessor: resize, centre crop, rescale, normalize.
        case clip
        /// LlavaImageProcessor: CLIP's steps, preceded by pad-to-square when `do_pad` is set.
        case llava
        /// SiglipImageProcessor: resize to a fixed size (no crop), rescale, normalize.
        case siglip
    }

    /// Target of the resize step.
    public enum Size: Sendable, Equatable {
        /// Shorter edge to this length, aspect kept (truncating the longer edge, as torchvision does).
        case shortestEdge(Int)
        /// Shorter edge to `shortest` unless the longer would exceed `longest`.
        case shortestLongest(shortest: Int, longest: Int)
        case exact(height: Int, width: Int)
    }

    public var kind: Kind
    public var doResize: Bool
    public var size: Size
    public var resample: ResamplingFilter
    public var doCenterCrop: Bool
    public var cropHeight: Int
    public var cropWidth: Int
    public var doRescale: Bool
    public var rescaleFactor: Double
    public var doNormalize: Bool
    public var imageMean: [Double]
    public var imageStd: [Double]
    /// LLaVA: pad to a square of the mean colour before resizing.
    public var doPad: Bool

    static let openAIMean = [0.48145466, 0.4578275, 0.40821073]
    static let openAIStd = [0.26862954, 0.26130258, 0.27577711]

    /// Reads the configuration of the model directory `directory`.
    public static func load(from directory: URL) throws -> ImageProcessorConfig {
        try ImageProcessorConfig(fields: imageProcessorFields(in: directory))
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
        let type = try json.optionalString("image_processor_type") ?? ""
        let base = type.hasSuffix("Fast") ? String(type.dropLast(4)) : type.hasSuffix("Pil") ? String(type.dropLast(3)) : type
        switch base {
        case "CLIPImageProcessor", "CLIPFeatureExtractor": kind = .clip
        case "LlavaImageProcessor": kind = .llava
        case "SiglipImageProcessor": kind = .siglip
        default:
            throw fail("image_processor_type '\(type)' is not supported (CLIPImageProcessor, LlavaImageProcessor, SiglipImageProcessor)")
        }

        doResize = try json.optionalBool("do_resize") ?? true
        size = try Self.size(json["size"], kind: kind, fail: fail)
        let filter = try json.optionalInt("resample") ?? ResamplingFilter.bicubic.rawValue
        guard let resample = ResamplingFilter(rawValue: filter) else {
            throw fail("resample \(filter) is not supported (1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming; 0 nearest is not)")
        }
        self.resample = resample
        // SigLIP's processor class does not crop unless told to.
        doCenterCrop = try json.optionalBool("do_center_crop") ?? (kind != .siglip)
        (cropHeight, cropWidth) = try Self.cropSize(json["crop_size"], fail: fail) ?? (224, 224)
        doRescale = try json.optionalBool("do_rescale") ?? true
        rescaleFactor = try json.optionalDouble("rescale_factor") ?? 1 / 255
        doNormalize = try json.optionalBool("do_normalize") ?? true
        imageMean = try Self.channels(
            json["image_mean"], "image_mean", default: kind == .siglip ? [0.5, 0.5, 0.5] : Self.openAIMean, fail: fail)
        imageStd = try Self.channels(
            json["image_std"], "image_std", default: kind == .siglip ? [0.5, 0.5, 0.5] : Self.openAIStd, fail: fail)
        guard imageStd.allSatisfy({ $0 != 0 }) else { throw fail("image_std has a zero entry") }
        let sizes: [Int]
        switch size {
        case .shortestEdge(let edge): sizes = [edge]
        case .shortestLongest(let shortest, let longest): sizes = [shortest, longest]
        case .exact(let height, let width): sizes = [height, width]
        }
        guard (sizes + [cropHeight, cropWidth]).allSatisfy({ $0 > 0 }) else {
            throw fail("size and crop_size must be positive (size \(sizes), crop_size \(cropHeight)×\(cropWidth))")
        }
        guard rescaleFactor.isFinite else { throw fail("rescale_factor must be finite") }
        doPad = try json.optionalBool("do_pad") ?? false
        if doPad && kind != .llava {
            throw fail("do_pad is only supported for LlavaImageProcessor (pad to square)")
        }
        if let convert = try json.optionalBool("do_convert_rgb"), !convert {
            throw fail("do_convert_rgb false is not supported: decoded images are always RGB")
        }
    }

    private static func size(_ raw: JSONValue?, kind: Kind, fail: (String) -> VisionError) throws -> Size {
        // The class defaults: CLIP/LLaVA {"shortest_edge": 224}, SigLIP {"height": 224, "width": 224}.
        switch raw {
        case nil, .null?:
            return kind == .siglip ? .exact(height: 224, width: 224) : .shortestEdge(224)
        case .number(let size)?:
            // get_size_dict(int, default_to_square=False), as all three classes set it.
            return .shortestEdge(Int(size))
        case .array(let pair)? where pair.count == 2:
            guard case .number(let height) = pair[0], case .number(let width) = pair[1] else { break }
            return .exact(height: Int(height), width: Int(width))
        case .object(let dict)?:
            let entry = { (key: String) -> Int? in if case .number(let n)? = dict[key] { Int(n) } else { nil } }
            if let shortest = entry("shortest_edge") {
                if let longest = entry("longest_edge") { return .shortestLongest(shortest: shortest, longest: longest) }
                return .shortestEdge(shortest)
            }
            if let height = entry("height"), let width = entry("width") { return .exact(height: height, width: width) }
            throw fail("size keys \(dict.keys.sorted()) are not supported (shortest_edge, shortest_edge + longest_edge, or height + width)")
        default: break
        }
        throw fail("size must be an int, a [height, width] pair or an object")
    }

    private static func cropSize(_ raw: JSONValue?, fail: (String) -> VisionError) throws -> (Int, Int)? {
        switch raw {
        case nil, .null?: return nil
        case .number(let size)?: return (Int(size), Int(size))
        case .object(let dict)?:
            if case .number(let height)? = dict["height"], case .number(let width)? = dict["width"] { return (Int(height), Int(width)) }
        default: break
        }
        throw fail("crop_size must be an int or {height, width}")
    }

    private static func channels(_ raw: JSONValue?, _ key: String, default value: [Double], fail: (String) -> VisionError) throws
        -> [Double]
    {
        switch raw {
        case nil, .null?: return value
        case .number(let x)?: return [x, x, x]
        case .array(let list)? where list.count == 3:
            let numbers = list.compactMap { if case .number(let x) = $0 { x } else { nil } }
            if numbers.count == 3 { return numbers }
        default: break
        }
        throw fail("\(key) must be a number or a list of 3 numbers")
    }
}
