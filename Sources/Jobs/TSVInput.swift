import Foundation

/// VLMEvalKit's TSV benchmark form (MMStar, MMBench, …): a header row naming columns, among them
/// `index`, `question`, `image` (base64; a value of at most 64 characters names another row's
/// `index` whose image it shares, as VLMEvalKit resolves it), optional `hint`, option columns `A`, `B`,
/// … and `answer`.
///
/// The question becomes the prompt VLMEvalKit's `ImageMCQDataset.build_prompt` writes:
/// `Hint: {hint}\n` (when present), `Question: {question}\n`, then when any option is present
/// `Options:\n`, one `{letter}. {text}\n` per option in letter order, and
/// `Please select the correct answer from the options above. \n`.
/// A field counts as absent where pandas would read NaN (empty, `NA`, `nan`, `None`, …).
enum TSVInput {
    static func parse(_ data: Data) -> ([BatchItem], [InputProblem]) {
        let rows = records(data)
        guard let header = rows.first else { return ([], [InputProblem(line: 1, reason: "the TSV file is empty")]) }
        let columns = Dictionary(header.fields.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let missing = ["index", "question", "image"].filter { columns[$0] == nil }
        if !missing.isEmpty {
            return (
                [],
                [
                    InputProblem(
                        line: 1,
                        reason:
                            "the TSV header lacks column(s) \(missing.joined(separator: ", ")) (has \(header.fields.joined(separator: ", ")))"
                    )
                ]
            )
        }
        let optionLetters = (UInt8(ascii: "A")...UInt8(ascii: "Z")).map { String(UnicodeScalar($0)) }.filter { columns[$0] != nil }
        let body = rows.dropFirst()
        // First pass: every row's own image field, so that references can be resolved in any order.
        var imageByIndex: [String: String] = [:]
        for row in body where row.fields.count == header.fields.count {
            imageByIndex[row.fields[columns["index"]!]] = row.fields[columns["image"]!]
        }
        var items: [BatchItem] = []
        var problems: [InputProblem] = []
        for row in body {
            guard row.fields.count == header.fields.count else {
                problems.append(InputProblem(line: row.line, reason: "\(row.fields.count) fields, the header has \(header.fields.count)"))
                continue
            }
            func field(_ name: String) -> String? {
                guard let column = columns[name] else { return nil }
                let value = row.fields[column]
                return isMissing(value) ? nil : value
            }
            guard let index = field("index") else {
                problems.append(InputProblem(line: row.line, reason: "empty index"))
                continue
            }
            guard let question = field("question") else {
                problems.append(InputProblem(line: row.line, reason: "empty question"))
                continue
            }
            guard var encoded = field("image") else {
                problems.append(InputProblem(line: row.line, reason: "empty image"))
                continue
            }
            if encoded.count <= 64 {
                guard let target = imageByIndex[encoded], target.count > 64 else {
                    problems.append(
                        InputProblem(
                            line: row.line, reason: "image '\(encoded)' is neither base64 image data nor the index of a row with an image"))
                    continue
                }
                encoded = target
            }
            guard let image = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters), !image.isEmpty else {
                problems.append(InputProblem(line: row.line, reason: "image is not valid base64"))
                continue
            }
            let options = optionLetters.compactMap { letter in field(letter).map { (letter, $0) } }
            items.append(
                BatchItem(
                    id: index, question: prompt(question: question, hint: field("hint"), options: options),
                    image: .bytes(image), reference: field("answer"), line: row.line))
        }
        return (items, problems)
    }

    static func prompt(question: String, hint: String?, options: [(String, String)]) -> String {
        var prompt = ""
        if let hint { prompt += "Hint: \(hint)\n" }
        prompt += "Question: \(question)\n"
        if !options.isEmpty {
            prompt += "Options:\n"
            for (letter, text) in options { prompt += "\(letter). \(text)\n" }
            prompt += "Please select the correct answer from the options above. \n"
        }
        return prompt
    }

    /// pandas' default NA strings (`read_csv`'s `na_values`), which VLMEvalKit's `pd.isna` then skips.
    static let missingValues: Set<String> = [
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
        "NULL", "NaN", "None", "n/a", "nan", "null"
    ]

    static func isMissing(_ value: String) -> Bool { missingValues.contains(value) }

    struct Record {
        var line: Int
        var fields: [String]
    }

    /// Tab-separated records as pandas reads them: a field that starts with `"` is quoted (it may
    /// hold tabs and newlines; `""` is a quote); `\r\n` ends a record like `\n`; blank lines are skipped.
    static func records(_ data: Data) -> [Record] {
        let bytes = [UInt8](data)
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1
        var recordLine = 1
        var i = 0
        var quoted = false
        var fieldStart = true
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            fieldStart = true
        }
        func endRecord() {
            endField()
            if !(fields.count == 1 && fields[0].isEmpty) { records.append(Record(line: recordLine, fields: fields)) }
            fields.removeAll()
        }
        while i < bytes.count {
            let byte = bytes[i]
            if byte == 0x0a { line += 1 }
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "\"") {
                        field.append(byte)
                        i += 1
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(byte)
                }
            } else if byte == UInt8(ascii: "\""), fieldStart {
                quoted = true
                fieldStart = false
            } else if byte == 0x09 {
                endField()
            } else if byte == 0x0a {
                if field.last == 0x0d { field.removeLast() }
                endRecord()
                recordLine = line
            } else {
                field.append(byte)
                fieldStart = false
            }
            i += 1
        }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }
}
