/// Rows of cells as fixed-width columns for the console: the first row is the header, a rule of
/// dashes goes under it, columns are two spaces apart and the last one is not padded.
enum ConsoleTable {
    static func render(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { row in
            (zip(row.dropLast(), widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) } + [row.last!])
                .joined(separator: "  ")
        }
        lines.insert(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "), at: 1)
        return lines.joined(separator: "\n")
    }
}
