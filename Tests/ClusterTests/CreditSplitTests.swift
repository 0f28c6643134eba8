import Testing

@testable import Cluster

@Suite struct CreditSplitTests {
    @Test func sharesFollowFreeCreditsAndNeverExceedThem() {
        #expect(CreditSplit.split(4, free: [8, 8]) == [2, 2])
        #expect(CreditSplit.split(3, free: [2, 2]) == [2, 1])
        #expect(CreditSplit.split(6, free: [1, 2, 3]) == [1, 2, 3])
        #expect(CreditSplit.split(5, free: [2, 2]) == [2, 2]) // one waits for credits
        #expect(CreditSplit.split(0, free: [3]) == [0])
        #expect(CreditSplit.split(3, free: []) == [])
        for count in 0...12 {
            for free in [[1, 1, 1], [4, 1], [2, 0, 5], [7], [3, 3, 3, 3]] {
                let shares = CreditSplit.split(count, free: free)
                #expect(shares.reduce(0, +) == min(count, free.reduce(0, +)))
                #expect(zip(shares, free).allSatisfy { $0 <= $1 && $0 >= 0 })
            }
        }
    }
}
