import Foundation

/// A load test's report as one self-contained HTML page (inline SVG, no scripts or links): the runs'
/// table, latency against throughput across the runs, and per-worker utilisation per run.
public enum LoadHTML {
    public static func page(_ report: LoadReport) -> String {
        let runs = report.runs.sorted { $0.jobsPerSecond < $1.jobsPerSecond }
        let latency = lineChart(
            title: "Job latency vs throughput", xLabel: "jobs/s finished", yLabel: "latency (s)",
            series: [
                ("p50", "#1b9e77", runs.map { ($0.jobsPerSecond, $0.latency.p50) }),
                ("p90", "#d95f02", runs.map { ($0.jobsPerSecond, $0.latency.p90) }),
                ("p99", "#7570b3", runs.map { ($0.jobsPerSecond, $0.latency.p99) })
            ],
            bound: report.latencyBound)
        var body = "<h1>stagebeam load test</h1>\n"
        body += "<p>coordinator <code>\(escape(report.coordinator))</code> · started \(escape(report.started)) · SLO \(escape(report.slo))"
        if let rate = report.saturationRate { body += String(format: " · saturation at %.3g jobs/s offered", rate) }
        if let reason = report.stopReason { body += " · stopped: \(escape(reason))" }
        body += "</p>\n" + table(report) + "\n" + latency + "\n" + utilisationChart(report.runs)
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>stagebeam load test</title>
            <style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}\
            td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}svg{margin:1em 0;display:block}</style>
            </head><body>
            \(body)
            </body></html>

            """
    }

    static func table(_ report: LoadReport) -> String {
        let header = "<tr>" + LoadTable.columns.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
        let rows = report.runs.map { "<tr>" + LoadTable.cells($0).map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }
        var stages = ""
        for run in report.runs {
            let cells = ["summary", "caption", "reasoning", "conclusion", "answer"].compactMap { stage in
                run.stageLatency[stage].map { String(format: "%@ p50 %.3f s / p99 %.3f s", stage, $0.p50, $0.p99) }
            }
            stages += "<li>\(escape(run.name)): \(escape(cells.joined(separator: " · ")))</li>"
        }
        return "<table>\(header)\(rows.joined())</table>\n<h2>Per-stage latency (generate + judge)</h2><ul>\(stages)</ul>"
    }

    static func lineChart(
        title: String, xLabel: String, yLabel: String, series: [(String, String, [(Double, Double)])],
        bound: Double?
    ) -> String {
        let width = 640.0, height = 360.0, left = 60.0, right = 110.0, top = 30.0, bottom = 45.0
        let points = series.flatMap(\.2)
        let maxX = max(points.map(\.0).max() ?? 1, 1e-9) * 1.1
        let maxY = max(max(points.map(\.1).max() ?? 1, bound ?? 0), 1e-9) * 1.1
        func x(_ value: Double) -> Double { left + value / maxX * (width - left - right) }
        func y(_ value: Double) -> Double { height - bottom - value / maxY * (height - top - bottom) }
        var svg = String(format: "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" role=\"img\">", width, height)
        svg += "<title>\(escape(title))</title><text x=\"\(left)\" y=\"18\" font-size=\"14\">\(escape(title))</text>"
        svg += axes(
            width: width, height: height, left: left, right: right, top: top, bottom: bottom, maxX: maxX, maxY: maxY, xLabel: xLabel,
            yLabel: yLabel)
        if let seconds = bound {
            svg += String(
                format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e7298a\" stroke-dasharray=\"6 4\"/>",
                left, y(seconds), width - right, y(seconds))
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#e7298a\">SLO %.3g s</text>", width - right + 4,
                y(seconds) + 4, seconds)
        }
        for (i, (name, colour, data)) in series.enumerated() {
            let path = data.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(path)\"/>"
            for point in data {
                svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>", x(point.0), y(point.1), colour)
            }
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"%@\">%@</text>", width - right + 4, top + 16 * Double(i + 1),
                colour, name)
        }
        return svg + "</svg>"
    }

    /// Per run, one bar per worker: the fraction of status samples in which it had work in flight.
    static func utilisationChart(_ runs: [LoadRunResult]) -> String {
        let workers = Set(runs.flatMap { $0.workers.map(\.worker) }).sorted()
        guard !workers.isEmpty else { return "<p>No worker utilisation samples (the coordinator's status was not reachable).</p>" }
        let colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
        let width = 640.0, height = 300.0, left = 60.0, right = 110.0, top = 30.0, bottom = 60.0
        let group = (width - left - right) / Double(max(runs.count, 1))
        let bar = group * 0.8 / Double(workers.count)
        func y(_ fraction: Double) -> Double { height - bottom - fraction * (height - top - bottom) }
        var svg = String(format: "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" role=\"img\">", width, height)
        svg +=
            "<title>Worker utilisation</title><text x=\"\(left)\" y=\"18\" font-size=\"14\">Worker utilisation (busy fraction of status samples)</text>"
        svg += axes(
            width: width, height: height, left: left, right: right, top: top, bottom: bottom, maxX: nil, maxY: 1, xLabel: "run",
            yLabel: "busy")
        for (r, run) in runs.enumerated() {
            let x0 = left + Double(r) * group + group * 0.1
            for (w, worker) in workers.enumerated() {
                let busy = run.workers.first { $0.worker == worker }?.busy ?? 0
                svg += String(
                    format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"><title>%@ %@: %.0f%%</title></rect>",
                    x0 + Double(w) * bar, y(busy), bar, y(0) - y(busy), colours[w % colours.count], escape(run.name), escape(worker),
                    busy * 100)
            }
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%@</text>", x0 + group * 0.4,
                height - bottom + 14, escape(run.name))
        }
        for (w, worker) in workers.enumerated() {
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"%@\">%@</text>", width - right + 4, top + 16 * Double(w + 1),
                colours[w % colours.count], escape(worker))
        }
        return svg + "</svg>"
    }

    static func axes(
        width: Double, height: Double, left: Double, right: Double, top: Double, bottom: Double, maxX: Double?, maxY: Double,
        xLabel: String, yLabel: String
    ) -> String {
        var svg = String(
            format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", left, height - bottom, width - right,
            height - bottom)
        svg += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", left, top, left, height - bottom)
        for tick in 0...4 {
            let value = maxY * Double(tick) / 4
            let y = height - bottom - Double(tick) / 4 * (height - top - bottom)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.3g</text>", left - 4, y + 3, value)
            if let maxX {
                let x = left + Double(tick) / 4 * (width - left - right)
                svg += String(
                    format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%.3g</text>", x, height - bottom + 14,
                    maxX * Double(tick) / 4)
            }
        }
        svg += String(
            format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%@</text>", (left + width - right) / 2, height - 8,
            escape(xLabel))
        svg += String(
            format: "<text x=\"14\" y=\"%.1f\" font-size=\"12\" transform=\"rotate(-90 14 %.1f)\" text-anchor=\"middle\">%@</text>",
            (top + height - bottom) / 2, (top + height - bottom) / 2, escape(yLabel))
        return svg
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
