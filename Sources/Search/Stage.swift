/// The four stages of a LLaVA-CoT answer, in the order the model writes them.
public enum Stage: String, CaseIterable, Codable, Sendable, Hashable, Comparable {
    case summary, caption, reasoning, conclusion

    /// Position in the answer: 0 for summary … 3 for conclusion.
    public var index: Int {
        switch self {
        case .summary: 0
        case .caption: 1
        case .reasoning: 2
        case .conclusion: 3
        }
    }

    public var tagName: String { rawValue.uppercased() }
    public var openingTag: String { "<\(tagName)>" }
    public var closingTag: String { "</\(tagName)>" }

    /// Every opening and closing tag of every stage: a candidate that writes any tag other than its
    /// own closing one has left its stage and is cut there.
    public static let allTags: [String] = allCases.flatMap { [$0.openingTag, $0.closingTag] }

    public static func < (lhs: Stage, rhs: Stage) -> Bool { lhs.index < rhs.index }
}
