/// Finds stop strings in a growing byte stream, including ones split across tokens: after each
/// append only the window that could contain a new match is searched.
struct StopMatcher {
    private let stops: [[UInt8]]
    private let longest: Int

    init(_ stopStrings: [String]) {
        stops = stopStrings.map { Array($0.utf8) }.filter { !$0.isEmpty }
        longest = stops.map(\.count).max() ?? 0
    }

    var isEmpty: Bool { stops.isEmpty }

    /// After `text` grew from `previousCount` bytes, returns the end offset of the earliest stop
    /// string that ends in the new bytes, or nil.
    func match(in text: [UInt8], previousCount: Int) -> Int? {
        guard longest > 0, text.count > previousCount else { return nil }
        var earliest: Int?
        for stop in stops where stop.count <= text.count {
            var start = max(0, previousCount - stop.count + 1)
            while start + stop.count <= text.count {
                if text[start] == stop[0] && text[start..<(start + stop.count)].elementsEqual(stop) {
                    let end = start + stop.count
                    if earliest.map({ end < $0 }) ?? true { earliest = end }
                    break
                }
                start += 1
            }
        }
        return earliest
    }
}
