import Foundation
import JSON

/// Search settings where every field may be unset: a layer of defaults. A search's configuration is
/// `SearchConfig()` with the model's recommended settings laid over it, then the caller's own choices
/// (command-line flags, a job's fields) over those.
public struct SearchSettings: Codable, Sendable, Hashable {
    public var method: SearchMethod?
    public var beam: Int?
    public var searchStages: [Stage]?
    public var tournament: TournamentKind?
    public var judgeMode: VerdictMode?
    public var judgeBothOrders: Bool?
    public var maxStageTokens: Int?
    public var judgeMaxTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var judgeTemperature: Double?
    public var forceTags: Bool?
    public var candidates: Int?
    public var keep: Int?
    public var retraces: Int?
    public var rewardZ: Double?
    public var rewardMean: Double?
    public var rewardStd: Double?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case method, beam, tournament, temperature
        case searchStages = "search_stages"
        case judgeMode = "judge_mode"
        case judgeBothOrders = "judge_both_orders"
        case maxStageTokens = "max_stage_tokens"
        case judgeMaxTokens = "judge_max_tokens"
        case topP = "top_p"
        case judgeTemperature = "judge_temperature"
        case forceTags = "force_tags"
        case candidates, keep, retraces
        case rewardZ = "reward_z"
        case rewardMean = "reward_mean"
        case rewardStd = "reward_std"
    }

    /// `config` with every field set here replacing its value (top-p applies to candidates and judge).
    public func applied(to config: SearchConfig) -> SearchConfig {
        var config = config
        if let method { config.method = method }
        if let beam { config.beam = beam }
        if let searchStages { config.searchStages = searchStages }
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
        if let candidates { config.candidates = candidates }
        if let keep { config.keep = keep }
        if let retraces { config.retraces = retraces }
        if let rewardZ { config.rewardZ = rewardZ }
        if let rewardMean { config.rewardMean = rewardMean }
        if let rewardStd { config.rewardStd = rewardStd }
        return config
    }
}

/// What a model directory says about its own use, in `stagebeam.json` beside `config.json`:
///
///     {"requires_image": true,
///      "search": {"method": "stage", "beam": 4, "judge_mode": "generate", "judge_temperature": 0}}
///
/// `search` holds the settings its accuracy figures were measured with; commands and the coordinator
/// use them for every option a user or a job leaves unset. `methods` may hold settings for one method
/// only, laid over `search` when that method runs (a candidate temperature that suits a stage search
/// of the reasoning alone, say, without changing the samples best-of-N or SWIRES were calibrated on):
///
///     "methods": {"stage": {"search_stages": ["reasoning"], "temperature": 1.2}}
///
/// `reward_calibration` (written by
/// `stagebeam calibrate`) holds the distribution of a scorer's rewards per stage, from which `swires`
/// takes its thresholds:
///
///     "reward_calibration": {"scorer": "self-reward", "dataset": "val.jsonl", "questions": 40,
///       "stages": {"reasoning": {"mean": -1.2, "std": 0.8, "count": 160}, ...}} A model without the file has no
/// recommendations: `SearchConfig`'s defaults (the reference implementation's) apply.
public struct ModelRecommendations: Codable, Sendable, Hashable {
    /// The model only ever learned questions about an image: a question without one is refused.
    public var requiresImage: Bool
    public var search: SearchSettings
    /// Settings for one method, by its name (`stage`, `best-of-n`, …), over `search`.
    public var methods: [String: SearchSettings]
    public var rewardCalibration: RewardCalibration?

    public init(
        requiresImage: Bool = false, search: SearchSettings = SearchSettings(), methods: [String: SearchSettings] = [:],
        rewardCalibration: RewardCalibration? = nil
    ) {
        self.requiresImage = requiresImage
        self.search = search
        self.methods = methods
        self.rewardCalibration = rewardCalibration
    }

    public static let fileName = "stagebeam.json"

    enum CodingKeys: String, CodingKey {
        case requiresImage = "requires_image"
        case search, methods
        case rewardCalibration = "reward_calibration"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requiresImage = try c.decodeIfPresent(Bool.self, forKey: .requiresImage) ?? false
        search = try c.decodeIfPresent(SearchSettings.self, forKey: .search) ?? SearchSettings()
        methods = try c.decodeIfPresent([String: SearchSettings].self, forKey: .methods) ?? [:]
        if let name = methods.keys.sorted().first(where: { SearchMethod(rawValue: $0) == nil }) {
            throw DecodingError.dataCorruptedError(
                forKey: .methods, in: c,
                debugDescription: "'\(name)' is not a search method (\(SearchMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        rewardCalibration = try c.decodeIfPresent(RewardCalibration.self, forKey: .rewardCalibration)
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
    /// The calibration applies only to the scorer it was measured with (`scorer`: its `RewardCalibration.scorer` name).
    public func config(choices: SearchSettings, scorer: String = RewardCalibration.selfReward) -> SearchConfig {
        var recommended = search.applied(to: SearchConfig())
        if let forMethod = methods[(choices.method ?? recommended.method).rawValue] { recommended = forMethod.applied(to: recommended) }
        var config = choices.applied(to: recommended)
        if let rewardCalibration, rewardCalibration.scorer == scorer { config.rewardCalibration = rewardCalibration }
        return config
    }
}

/// The distribution of one scorer's rewards, per stage, on a validation set (`stagebeam calibrate`).
public struct RewardCalibration: Codable, Sendable, Hashable {
    public struct Figures: Codable, Sendable, Hashable {
        public var mean: Double
        /// Population standard deviation.
        public var std: Double
        /// Rewards measured.
        public var count: Int

        public init(mean: Double, std: Double, count: Int) {
            self.mean = mean
            self.std = std
            self.count = count
        }

        /// Mean and population standard deviation of `values` (which must not be empty).
        public init(of values: [Double]) {
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            self.init(mean: mean, std: variance.squareRoot(), count: values.count)
        }
    }

    /// The scorer's name: `selfReward`, or `reward-model:` and the reward model's directory name.
    public var scorer: String
    /// The validation file, as given to `stagebeam calibrate`.
    public var dataset: String
    public var questions: Int
    /// By stage name (`reasoning`, `conclusion`, …).
    public var stages: [String: Figures]

    public init(scorer: String, dataset: String, questions: Int, stages: [String: Figures]) {
        self.scorer = scorer
        self.dataset = dataset
        self.questions = questions
        self.stages = stages
    }

    /// The self-reward scorer's name.
    public static let selfReward = "self-reward"
    /// The paper's z: a reward above mean + 0.2533·std is in the top 40% of a normal distribution.
    public static let defaultZ = 0.2533
}
