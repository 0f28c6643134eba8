import Search
import Wire

// Conversions between the search's types and their wire forms. Wire numbers are floats where the
// search keeps doubles: the engine samples with `Float` values, so Float(Double(x)) loses nothing
// it would use.

extension Sampling {
    public init(wire: Stagebeam_V1_Sampling) {
        self.init(temperature: Double(wire.temperature), topP: wire.topP == 0 ? 1 : Double(wire.topP), topK: Int(wire.topK))
    }

    public var wire: Stagebeam_V1_Sampling {
        var sampling = Stagebeam_V1_Sampling()
        sampling.temperature = Float(temperature)
        sampling.topP = Float(topP)
        sampling.topK = UInt32(clamping: topK)
        return sampling
    }
}

extension JudgeTopic {
    public init?(wire: Stagebeam_V1_Stage) {
        switch wire {
        case .summary: self = .summary
        case .caption: self = .caption
        case .reasoning: self = .reasoning
        case .conclusion: self = .conclusion
        case .answer: self = .answer
        default: return nil
        }
    }

    public var wire: Stagebeam_V1_Stage {
        switch self {
        case .summary: .summary
        case .caption: .caption
        case .reasoning: .reasoning
        case .conclusion: .conclusion
        case .answer: .answer
        }
    }
}

extension Stage {
    public var wire: Stagebeam_V1_Stage { JudgeTopic(self).wire }

    /// The stage a wire value names; nil for an unset value or a whole answer.
    public init?(wire: Stagebeam_V1_Stage) {
        guard let topic = JudgeTopic(wire: wire), let stage = Stage(rawValue: topic.rawValue) else { return nil }
        self = stage
    }
}

extension FinishReason {
    public init(wire: Stagebeam_V1_FinishReason) {
        switch wire {
        case .stop: self = .stop
        case .eos: self = .eos
        default: self = .length // length, and a full context, both mean "out of room"
        }
    }

    public var wire: Stagebeam_V1_FinishReason {
        switch self {
        case .stop: .stop
        case .eos: .eos
        case .length: .length
        }
    }
}

extension VerdictMode {
    public var wire: Stagebeam_V1_VerdictMode { self == .logprob ? .logprob : .generate }
}

extension SearchMethod {
    /// The method a job names; nil when it leaves the method unset.
    public init?(wire: Stagebeam_V1_Method) {
        switch wire {
        case .stage: self = .stage
        case .bestOfN: self = .bestOfN
        case .sentence: self = .sentence
        case .greedy: self = .greedy
        case .stageBeam: self = .stageBeam
        case .swires: self = .swires
        default: return nil
        }
    }

    public var wire: Stagebeam_V1_Method {
        switch self {
        case .stage: .stage
        case .bestOfN: .bestOfN
        case .sentence: .sentence
        case .greedy: .greedy
        case .stageBeam: .stageBeam
        case .swires: .swires
        }
    }
}

extension SearchConfig {
    /// The configuration a submitted job asks for; zero/unset fields take the search's defaults.
    /// Not yet validated: `StageBeamSearch` does that.
    public init(submit: Stagebeam_V1_SubmitJob) {
        self.init()
        method = SearchMethod(wire: submit.method) ?? .stage
        if submit.beam > 0 { beam = Int(submit.beam) }
        if !submit.searchStages.isEmpty { searchStages = submit.searchStages.compactMap(Stage.init(wire:)) }
        tournament = submit.tournament == .bracket ? .bracket : .random
        if submit.maxStageTokens > 0 { maxStageTokens = Int(submit.maxStageTokens) }
        if submit.maxVerdictTokens > 0 { judgeMaxTokens = Int(submit.maxVerdictTokens) }
        seed = submit.seed
        judgeBothOrders = submit.judgeBothOrders
        judgeMode = submit.verdictMode == .generate ? .generate : .logprob
        if case .forceTags(let forced)? = submit.forceTagsPresence { forceTags = forced } else { forceTags = true }
        if submit.hasSampling { sampling = Sampling(wire: submit.sampling) }
        if submit.hasJudgeSampling { judgeSampling = Sampling(wire: submit.judgeSampling) }
        if submit.candidates > 0 { candidates = Int(submit.candidates) }
        if submit.keep > 0 { keep = Int(submit.keep) }
        if case .retraces(let count)? = submit.retracesPresence { retraces = Int(count) }
        if case .rewardZ(let z)? = submit.rewardZPresence { rewardZ = z }
        if submit.hasRewardDistribution {
            rewardMean = submit.rewardDistribution.mean
            rewardStd = submit.rewardDistribution.std
        }
        if submit.hasRewardCalibration { rewardCalibration = RewardCalibration(wire: submit.rewardCalibration) }
    }

    /// The wire form of a job with this configuration.
    public func submitJob(question: String) -> Stagebeam_V1_SubmitJob {
        var submit = Stagebeam_V1_SubmitJob()
        submit.question = question
        write(into: &submit)
        return submit
    }

    /// Sets every search field of `submit` to this configuration's (the seed included).
    func write(into submit: inout Stagebeam_V1_SubmitJob) {
        submit.method = method.wire
        submit.beam = UInt32(clamping: beam)
        submit.searchStages = searchStages.map(\.wire)
        submit.tournament = tournament == .bracket ? .bracket : .random
        submit.maxStageTokens = UInt32(clamping: maxStageTokens)
        submit.maxVerdictTokens = UInt32(clamping: judgeMaxTokens)
        submit.seed = seed
        submit.judgeBothOrders = judgeBothOrders
        submit.verdictMode = judgeMode.wire
        submit.forceTags = forceTags
        submit.sampling = sampling.wire
        submit.judgeSampling = judgeSampling.wire
        submit.candidates = UInt32(clamping: candidates)
        submit.keep = UInt32(clamping: keep)
        submit.retraces = UInt32(clamping: retraces)
        submit.rewardZ = rewardZ
        if let rewardMean, let rewardStd {
            submit.rewardDistribution.mean = rewardMean
            submit.rewardDistribution.std = rewardStd
        } else {
            submit.clearRewardDistribution()
        }
        if let rewardCalibration { submit.rewardCalibration = rewardCalibration.wire } else { submit.clearRewardCalibration() }
    }
}

extension RewardCalibration {
    public init(wire: Stagebeam_V1_RewardCalibration) {
        var stages: [String: Figures] = [:]
        for figures in wire.stages {
            guard let topic = JudgeTopic(wire: figures.stage) else { continue }
            stages[topic.rawValue] = Figures(mean: figures.mean, std: figures.std, count: Int(figures.count))
        }
        self.init(scorer: wire.scorer, dataset: wire.dataset, questions: Int(wire.questions), stages: stages)
    }

    /// The wire form; stages are written in the order the model writes them.
    public var wire: Stagebeam_V1_RewardCalibration {
        var calibration = Stagebeam_V1_RewardCalibration()
        calibration.scorer = scorer
        calibration.dataset = dataset
        calibration.questions = UInt32(clamping: questions)
        calibration.stages = JudgeTopic.allCases.compactMap { topic in
            guard let figures = stages[topic.rawValue] else { return nil }
            var wire = Stagebeam_V1_RewardStageFigures()
            wire.stage = topic.wire
            wire.mean = figures.mean
            wire.std = figures.std
            wire.count = UInt32(clamping: figures.count)
            return wire
        }
        return calibration
    }
}

extension SearchSettings {
    /// The search fields a submitted job sets; the unset ones (see SubmitJob in the schema) stay nil.
    public init(submit: Stagebeam_V1_SubmitJob) {
        self.init()
        method = SearchMethod(wire: submit.method)
        if submit.beam > 0 { beam = Int(submit.beam) }
        if !submit.searchStages.isEmpty { searchStages = submit.searchStages.compactMap(Stage.init(wire:)) }
        switch submit.tournament {
        case .random: tournament = .random
        case .bracket: tournament = .bracket
        default: break
        }
        switch submit.verdictMode {
        case .logprob: judgeMode = .logprob
        case .generate: judgeMode = .generate
        default: break
        }
        if submit.judgeBothOrders { judgeBothOrders = true }
        if submit.maxStageTokens > 0 { maxStageTokens = Int(submit.maxStageTokens) }
        if submit.maxVerdictTokens > 0 { judgeMaxTokens = Int(submit.maxVerdictTokens) }
        if case .forceTags(let forced)? = submit.forceTagsPresence { forceTags = forced }
        if submit.hasSampling {
            temperature = Double(submit.sampling.temperature)
            if submit.sampling.topP > 0 { topP = Double(submit.sampling.topP) }
        }
        if submit.hasJudgeSampling { judgeTemperature = Double(submit.judgeSampling.temperature) }
        if submit.candidates > 0 { candidates = Int(submit.candidates) }
        if submit.keep > 0 { keep = Int(submit.keep) }
        if case .retraces(let count)? = submit.retracesPresence { retraces = Int(count) }
        if case .rewardZ(let z)? = submit.rewardZPresence { rewardZ = z }
        if submit.hasRewardDistribution {
            rewardMean = submit.rewardDistribution.mean
            rewardStd = submit.rewardDistribution.std
        }
    }

    /// A job asking for these settings, with only the set fields written; the coordinator fills the
    /// rest from the cluster model's recommendations.
    public func submitJob(question: String, seed: UInt64) -> Stagebeam_V1_SubmitJob {
        var submit = Stagebeam_V1_SubmitJob()
        submit.question = question
        submit.seed = seed
        if let method {
            submit.method = method.wire
        }
        if let beam { submit.beam = UInt32(clamping: max(beam, 0)) }
        if let searchStages { submit.searchStages = searchStages.map(\.wire) }
        if let tournament { submit.tournament = tournament == .bracket ? .bracket : .random }
        if let judgeMode { submit.verdictMode = judgeMode.wire }
        if let judgeBothOrders { submit.judgeBothOrders = judgeBothOrders }
        if let maxStageTokens { submit.maxStageTokens = UInt32(clamping: max(maxStageTokens, 0)) }
        if let judgeMaxTokens { submit.maxVerdictTokens = UInt32(clamping: max(judgeMaxTokens, 0)) }
        if let forceTags { submit.forceTags = forceTags }
        // A sampling message carries its temperature as given: a client that sets only top-p sends
        // the reference's temperature with it (see SubmitJob.sampling in the schema).
        if temperature != nil || topP != nil {
            submit.sampling.temperature = Float(temperature ?? Sampling.reference.temperature)
            submit.sampling.topP = Float(topP ?? 0)
        }
        if let judgeTemperature {
            submit.judgeSampling.temperature = Float(judgeTemperature)
            submit.judgeSampling.topP = Float(topP ?? 0)
        }
        if let candidates { submit.candidates = UInt32(clamping: max(candidates, 0)) }
        if let keep { submit.keep = UInt32(clamping: max(keep, 0)) }
        if let retraces { submit.retraces = UInt32(clamping: max(retraces, 0)) }
        if let rewardZ { submit.rewardZ = rewardZ }
        // The mean without the std (or the reverse) is refused by the search's validation: sent as
        // NaN, so the coordinator names the problem instead of silently dropping one.
        if rewardMean != nil || rewardStd != nil {
            submit.rewardDistribution.mean = rewardMean ?? .nan
            submit.rewardDistribution.std = rewardStd ?? .nan
        }
        return submit
    }
}

extension ModelRecommendations {
    /// `submit` with every search field set: its own where it sets one, else these recommendations',
    /// else the search's defaults. The question, image, seed and the other fields are kept.
    ///
    /// `scorer`: the scorer of the cluster's reward workers (`Ready.reward_scorer`); a reward
    /// calibration measured with it fills `reward_calibration` when the job gives no reward mean
    /// and std of its own. A calibration the job carries already (a resubmission) is kept.
    public func filled(_ submit: Stagebeam_V1_SubmitJob, scorer: String = RewardCalibration.selfReward) -> Stagebeam_V1_SubmitJob {
        var config = config(choices: SearchSettings(submit: submit), scorer: scorer)
        if submit.hasRewardCalibration { config.rewardCalibration = RewardCalibration(wire: submit.rewardCalibration) }
        if config.rewardMean != nil || config.method != .swires { config.rewardCalibration = nil }
        config.seed = submit.seed
        var filled = submit
        config.write(into: &filled)
        return filled
    }
}

extension Stagebeam_V1_JudgeMatchResult {
    /// The answer a single-match `result` gives, as one match's answer.
    public init(_ result: Stagebeam_V1_JudgeResult) {
        self.init()
        choice = result.choice
        verdictText = result.verdictText
        probabilityFirst = result.probabilityFirst
        probabilitySecond = result.probabilitySecond
        logprobFirst = result.logprobFirst
        logprobSecond = result.logprobSecond
        promptTokens = result.promptTokens
        reusedPrefixTokens = result.reusedPrefixTokens
        generatedTokens = result.generatedTokens
        prefillMs = result.prefillMs
        decodeMs = result.decodeMs
    }
}

extension MeasuredReply {
    /// The search's reply to a request of `mode` from a worker's answer to its match, with the
    /// worker's cost; a prompt too long for the context (`answer.error`) is the judge's answer too.
    init(_ answer: Stagebeam_V1_JudgeMatchResult, mode: VerdictMode) {
        if answer.hasError {
            self.init(reply: .promptTooLong(message: answer.error.message), cost: nil)
            return
        }
        self.init(
            reply: mode == .logprob
                ? .choiceLogprobs(first: answer.logprobFirst, second: answer.logprobSecond) : .verdict(text: answer.verdictText),
            cost: ComputeCost(
                prefillSeconds: answer.prefillMs / 1000, decodeSeconds: answer.decodeMs / 1000,
                promptTokens: Int(answer.promptTokens), reusedPromptTokens: Int(answer.reusedPrefixTokens),
                generatedTokens: Int(answer.generatedTokens)))
    }
}
