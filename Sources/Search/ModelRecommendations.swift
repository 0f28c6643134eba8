import Foundation
import JSON

/// Search settings where every field may be unset: a layer of defaults. A search's configuration is
/// `SearchConfig()` with the model's recommended settings laid over it, then the caller's own choices
/// (command-line flags, a job's fields) over those.
public struct SearchSettings: Codable, Sendable, Hashable {
    public var method: SearchMethod?
    public var beam: Int?
    public var tournament: TournamentKind?
    public var judgeMode: VerdictMode?
    public var judgeBothOrders: Bool?
    public var maxStageTokens: Int?
    public var judgeMaxTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var judgeTemperature: Double?
    public var forceTags: Bool?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case method, beam, tournament, temperature
        case judgeMode = "judge_mode"
        case judgeBothOrders = "judge_both_orders"
        case maxStageTokens = "max_stage_tokens"
        case judgeMaxTokens = "judge_max_tokens"
        case topP = "top_p"
        case judgeTemperature = "judge_temperature"
        case forceTags = "force_tags"
    }

    /// `config` with every field set here replacing its value (top-p applies to candidates and judge).
    public func applied(to config: SearchConfig) -> SearchConfig {
        var config = config
        if let method { config.method = method }
        if let beam { config.beam = beam }
        if let tournament { config.tournament = tournament }
        if let judgeMode { config.judgeMode = judgeMode }
        if let judgeBothOrders { config.judgeBothOrders = judgeBothOrders }
        if let maxStageTokens { config.maxStageTokens = maxStageTokens }
        if let judgeMaxTokens { config.judgeMaxTokens = judgeMaxTokens }
        if let temperature { config.sampling.temperature = temperature }
        if let topP {
            config.sampling.topP = topP
            config.judgeSampling.topP = topP
        }
        if let judgeTemperature { config.judgeSampling.temperature = judgeTemperature }
        if let forceTags { config.forceTags = forceTags }
        return config
    }
}

/// What a model directory says about its own use, in `stagebeam.json` beside `config.json`:
///
///     {"requires_image": true,
///      "search": {"method": "stage", "beam": 4, "judge_mode": "generate", "judge_temperature": 0}}
///
/// `search` holds the settings its accuracy figures were measured with; commands and the coordinator
/// use them for every option a user or a job leaves unset. A model without the file has no
/// recommendations: `SearchConfig`'s defaults (the reference implementation's) apply.
public struct ModelRecommendations: Codable, Sendable, Hashable {
    /// The model only ever learned questions about an image: a question without one is refused.
    public var requiresImage: Bool
    public var search: SearchSettings

    public init(requiresImage: Bool = false, search: SearchSettings = SearchSettings()) {
        self.requiresImage = requiresImage
        self.search = search
    }

    public static let fileName = "stagebeam.json"

    enum CodingKeys: String, CodingKey {
        case requiresImage = "requires_image"
        case search
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requiresImage = try c.decodeIfPresent(Bool.self, forKey: .requiresImage) ?? false
        search = try c.decodeIfPresent(SearchSettings.self, forKey: .search) ?? SearchSettings()
    }

    /// The recommendations of the model at `path` (a directory, or a single-file model beside which a
    /// `stagebeam.json` may lie); none when there is no such file.
    public init(model path: URL) throws {
        let file = Self.file(ofModel: path)
        guard FileManager.default.fileExists(atPath: file.path) else {
            self.init()
            return
        }
        do {
            self = try decodeJSONFile(Self.self, from: file)
        } catch let error as JSONError {
            throw SearchError(.invalidConfiguration, error.message)
        }
    }

    /// Where the recommendations of the model at `path` (a directory, or a single-file model) are kept.
    public static func file(ofModel path: URL) -> URL {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory)
        return isDirectory.boolValue
            ? path.appendingPathComponent(fileName) : path.deletingLastPathComponent().appendingPathComponent(fileName)
    }

    /// Recommendations from the bytes of a stagebeam.json (as workers announce them).
    public init(json: Data) throws {
        do {
            self = try JSONDecoder().decode(Self.self, from: json)
        } catch {
            throw SearchError(.invalidConfiguration, "\(Self.fileName) is not a valid recommendations file: \(error)")
        }
    }

    /// The search a caller gets: the defaults, then these recommendations, then the caller's `choices`.
    public func config(choices: SearchSettings) -> SearchConfig {
        choices.applied(to: search.applied(to: SearchConfig()))
    }
}
