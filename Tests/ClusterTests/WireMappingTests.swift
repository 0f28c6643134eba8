import Search
import Testing

@testable import Cluster

@Suite struct WireMappingTests {
    @Test func submittedConfigurationSurvivesTheWire() {
        var config = SearchConfig()
        config.method = .bestOfN
        config.beam = 6
        config.tournament = .bracket
        config.judgeMode = .generate
        config.judgeBothOrders = true
        config.maxStageTokens = 96
        config.judgeMaxTokens = 200
        config.seed = 11
        config.judgeSampling = .greedy
        config.forceTags = false
        config.searchStages = [.caption, .reasoning]
        let back = SearchConfig(submit: config.submitJob(question: "How many?"))
        #expect(back.searchStages == [.caption, .reasoning])
        #expect(back.method == .bestOfN && back.beam == 6 && back.tournament == .bracket)
        #expect(back.judgeMode == .generate && back.judgeBothOrders && !back.forceTags && back.seed == 11)
        #expect(back.maxStageTokens == 96 && back.judgeMaxTokens == 200 && back.judgeSampling == .greedy)
    }

    @Test func unsetBudgetsTakeTheDefaults() {
        let back = SearchConfig(submit: .init())
        #expect(back.searchStages == Stage.allCases && SearchSettings(submit: .init()).searchStages == nil)
        #expect(back.maxStageTokens == SearchConfig().maxStageTokens)
        #expect(back.judgeMaxTokens == SearchConfig().judgeMaxTokens && back.judgeSampling == .reference)
    }
}
