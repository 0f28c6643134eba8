import Foundation
import JSON
import Search

/// One question of an evaluation set, with its reference answer.
public struct EvalItem: Sendable, Equatable {
    public var id: String
    public var question: String
    public var image: URL?
    public var answer: String
    /// The kind of question ("count", "color", …): accuracy is also reported per family.
    public var family: String?
}

/// One held-out judge comparison: `better` should beat `worse` on `topic`.
public struct JudgePair: Sendable, Equatable {
    public var id: String
    public var question: String
    public var image: URL?
    public var topic: JudgeTopic
    /// Earlier stages' text shown to the judge, as the search would show its chosen stages.
    public var hints: [Stage: String]
    public var better: String
    public var worse: String
}

/// Reads evaluation files: JSON lines, blank lines ignored. Unlike a batch input, a bad line stops
/// the evaluation (a score over a silently shrunk set would mislead): the error names the file and line.
///
/// - dataset: `{"id", "question", "answer", "image"?, "family"?}`
/// - judge pairs: `{"id", "question", "topic", "better", "worse", "image"?, "hints"?: {stage: text}}`
///
/// `id`, `question` and `image` follow the batch input's rules (`BatchInput.item`): an image path is
/// relative to the file's directory (or absolute) and must exist.
public enum EvalDataset {
    public static func items(_ url: URL) throws -> [EvalItem] {
        try records(url) { object, item, fail in
            guard let answer = BatchInput.identifier(object["answer"]) else {
                throw fail("no \"answer\" (a non-empty string or an integer)")
            }
            var family: String?
            switch object["family"] {
            case nil, .null?: break
            case .string(let name)?: family = name
            default: throw fail("\"family\" must be a string")
            }
            return EvalItem(id: item.id, question: item.question, image: item.image?.url, answer: answer, family: family)
        }
    }

    public static func judgePairs(_ url: URL) throws -> [JudgePair] {
        try records(url) { object, item, fail in
            let topics = JudgeTopic.allCases.map(\.rawValue).joined(separator: ", ")
            guard let topic = object["topic"]?.string.flatMap(JudgeTopic.init(rawValue:)) else {
                throw fail("\"topic\" must be one of \(topics)")
            }
            guard let better = object["better"]?.string, let worse = object["worse"]?.string else {
                throw fail("\"better\" and \"worse\" must be strings")
            }
            var hints: [Stage: String] = [:]
            switch object["hints"] {
            case nil, .null?: break
            case .object(let table)?:
                for (name, text) in table {
                    guard let stage = Stage(rawValue: name), let text = text.string else {
                        throw fail("\"hints\" maps stage names (summary, caption, reasoning, conclusion) to strings; got \"\(name)\"")
                    }
                    hints[stage] = text
                }
            default: throw fail("\"hints\" must be an object")
            }
            return JudgePair(
                id: item.id, question: item.question, image: item.image?.url, topic: topic, hints: hints,
                better: better, worse: worse)
        }
    }

    /// Each non-blank line as a JSON object, given to `parse` with its common fields read as a batch
    /// item and a way to make an error naming the file and line. Ids must be unique (they key the seeds).
    static func records<T: Identifiable>(
        _ url: URL, _ parse: (_ object: [String: JSONValue], _ item: BatchItem, _ fail: (String) -> JobsError) throws -> T
    ) throws -> [T] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw JobsError(.badInput, "cannot read \(url.path): \(error.localizedDescription)")
        }
        var records: [T] = []
        var firstLine: [T.ID: Int] = [:]
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy(BatchInput.isSpace) { continue }
            func fail(_ reason: String) -> JobsError { JobsError(.badInput, "\(url.path) line \(index + 1): \(reason)") }
            guard let value = try? JSONValue.parse(Data(line), name: "line \(index + 1)"), let object = value.object else {
                throw fail("not a JSON object")
            }
            let record: T
            switch BatchInput.item(from: value, line: index + 1, base: url.deletingLastPathComponent()) {
            case .success(let item): record = try parse(object, item, fail)
            case .failure(let problem): throw fail(problem.reason)
            }
            if let first = firstLine[record.id] { throw fail("duplicate id \(record.id) (first on line \(first))") }
            firstLine[record.id] = index + 1
            records.append(record)
        }
        return records
    }
}

extension EvalItem: Identifiable {}
extension JudgePair: Identifiable {}

extension ItemImage {
    /// The file, for images read from a path (the only kind JSON lines have).
    var url: URL? {
        if case .file(let url) = self { return url }
        return nil
    }
}
