/// How a request's sequences are shared among workers with free credits.
enum CreditSplit {
    /// Splits `count` sequences across workers in proportion to their free credits (`free`, one entry
    /// per worker), never giving a worker more than its free credits. Returns one share per worker;
    /// the shares add up to `min(count, sum(free))` — what does not fit waits for credits.
    ///
    /// Shares are the floors of the proportional amounts; the sequences left over go one each to the
    /// workers with the largest fractional parts (ties: earlier worker), so the split is deterministic.
    static func split(_ count: Int, free: [Int]) -> [Int] {
        precondition(count >= 0 && free.allSatisfy { $0 >= 0 }, "counts must be non-negative")
        let total = free.reduce(0, +)
        guard total > count else { return free }
        var shares = free.map { count * $0 / total }
        let left = count - shares.reduce(0, +)
        // Largest remainder first; a share below its worker's credit always has room for one more,
        // because count < total makes every proportional share strictly less than the worker's credit.
        let order = free.indices.sorted { a, b in
            let ra = count * free[a] % total, rb = count * free[b] % total
            return ra != rb ? ra > rb : a < b
        }
        for i in order.prefix(left) { shares[i] += 1 }
        return shares
    }

    /// Spreads `count` matches as evenly as the workers' free credits allow (`free`, one entry per
    /// worker, in order of preference): one each round-robin, so `count` matches on `count` or more
    /// workers go one per worker, to the first ones. The shares add up to `min(count, sum(free))`.
    static func spread(_ count: Int, free: [Int]) -> [Int] {
        precondition(count >= 0 && free.allSatisfy { $0 >= 0 }, "counts must be non-negative")
        var shares = [Int](repeating: 0, count: free.count)
        var left = min(count, free.reduce(0, +))
        while left > 0 {
            for i in free.indices where left > 0 && shares[i] < free[i] {
                shares[i] += 1
                left -= 1
            }
        }
        return shares
    }
}
