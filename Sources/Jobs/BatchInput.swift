import Foundation
import JSON

/// A batch's input: its items, and the lines that could not become items (reported, then skipped).
///
/// Forms, told apart by the file (a `.tsv` name, a leading `[`) and then per record:
/// - JSON lines `{"id", "image"?, "question"}`;
/// - LLaVA-CoT-100k records `{"id", "image"?, "conversations": [{"from": "human", "value": …}, …]}`,
///   as JSON lines or one JSON array: the first human turn is the question; its `<image>` marker is
///   removed (the chat template places the image);
/// - VLMEvalKit's TSV (MMStar, MMBench): see `TSVInput`.
/// Image paths are relative to `imagesDirectory`, or to the input file's directory without one.
public struct BatchInput: Sendable {
    public enum Format: String, Sendable {
        case jsonLines = "jsonl", jsonArray = "json", tsv
    }

    public var format: Format
    public var items: [BatchItem]
    public var problems: [InputProblem]

    public static func read(_ url: URL, imagesDirectory: URL? = nil) throws -> BatchInput {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw JobsError(.badInput, "cannot read input \(url.path): \(error.localizedDescription)")
        }
        let base = imagesDirectory ?? url.deletingLastPathComponent()
        if url.pathExtension.lowercased() == "tsv" {
            return dedupe(TSVInput.parse(data), format: .tsv)
        }
        if data.first(where: { !Self.isSpace($0) }) == UInt8(ascii: "[") {
            guard let records = (try? JSONValue.parse(data, name: url.path))?.array else {
                throw JobsError(.badInput, "\(url.path) starts with '[' but is not a JSON array")
            }
            let parsed = records.enumerated().map { index, record in item(from: record, line: index + 1, base: base) }
            return dedupe(split(parsed), format: .jsonArray)
        }
        var parsed: [Result<BatchItem, InputProblem>] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy(Self.isSpace) { continue }
            guard let object = try? JSONValue.parse(Data(line), name: "line \(index + 1)") else {
                parsed.append(.failure(InputProblem(line: index + 1, reason: "not valid JSON")))
                continue
            }
            parsed.append(item(from: object, line: index + 1, base: base))
        }
        return dedupe(split(parsed), format: .jsonLines)
    }

    /// One JSON record (plain or LLaVA-CoT form) as an item.
    static func item(from record: JSONValue, line: Int, base: URL) -> Result<BatchItem, InputProblem> {
        func problem(_ reason: String) -> Result<BatchItem, InputProblem> { .failure(InputProblem(line: line, reason: reason)) }
        guard let object = record.object else { return problem("not a JSON object") }
        guard let id = identifier(object["id"]) else { return problem("no \"id\" (a non-empty string or an integer)") }
        var question: String
        if let turns = object["conversations"], turns != .null {
            guard let first = turns.array?.compactMap(\.object).first(where: { ["human", "user"].contains($0["from"]?.string) }),
                let value = first["value"]?.string
            else {
                return problem("\"conversations\" has no human turn with a string \"value\"")
            }
            question = value
        } else if let value = object["question"]?.string {
            question = value
        } else {
            return problem("no \"question\" string (or LLaVA-CoT \"conversations\")")
        }
        var imagePath: String?
        switch object["image"] {
        case nil, .null?: break
        case .string(let path)? where !path.isEmpty: imagePath = path
        case .string?: break
        default: return problem("\"image\" must be a file path string")
        }
        if question.contains(imageMarker) {
            guard imagePath != nil else { return problem("the question has an \(imageMarker) marker but the record names no image") }
            question = question.replacingOccurrences(of: imageMarker, with: "")
        }
        question = question.trimmingCharacters(in: .whitespacesAndNewlines)
        if question.isEmpty { return problem("the question is empty") }
        var image: ItemImage?
        if let imagePath {
            let url = imagePath.hasPrefix("/") ? URL(fileURLWithPath: imagePath) : base.appendingPathComponent(imagePath)
            guard FileManager.default.isReadableFile(atPath: url.path) else {
                return problem("image \(url.path) does not exist or is unreadable")
            }
            image = .file(url)
        }
        return .success(BatchItem(id: id, question: question, image: image, line: line))
    }

    static let imageMarker = "<image>"

    static func identifier(_ value: JSONValue?) -> String? {
        if let text = value?.string { return text.isEmpty ? nil : text }
        return value?.integer.map(String.init)
    }

    static func split(_ parsed: [Result<BatchItem, InputProblem>]) -> ([BatchItem], [InputProblem]) {
        var items: [BatchItem] = []
        var problems: [InputProblem] = []
        for entry in parsed {
            switch entry {
            case .success(let item): items.append(item)
            case .failure(let problem): problems.append(problem)
            }
        }
        return (items, problems)
    }

    /// Ids must be unique: they key the output (and resuming). Later duplicates are problems.
    static func dedupe(_ parsed: ([BatchItem], [InputProblem]), format: Format) -> BatchInput {
        var firstLine: [String: Int] = [:]
        var items: [BatchItem] = []
        var problems = parsed.1
        for item in parsed.0 {
            if let first = firstLine[item.id] {
                problems.append(InputProblem(line: item.line, reason: "duplicate id '\(item.id)' (first on line \(first))"))
            } else {
                firstLine[item.id] = item.line
                items.append(item)
            }
        }
        return BatchInput(format: format, items: items, problems: problems.sorted { $0.line < $1.line })
    }

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d
    }
}
