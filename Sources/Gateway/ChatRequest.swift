import Cluster
import Foundation
import JSON
import Search
import Wire

/// A `POST /v1/chat/completions` body read into the job it asks for.
///
/// One user message: its text parts are the question and at most one `image_url` part the image (a
/// job answers one question about one image). Stage-level search options are extra body fields with
/// `stagebeam submit`'s names; a field left out is left unset in the job, so the coordinator's
/// default applies. `temperature`, `top_p` and `seed` are OpenAI's fields with the same meaning.
struct ChatRequest: Sendable {
    var model: String
    var stream: Bool
    /// `stream_options.include_usage`: a last chunk with no choices carries the usage.
    var streamUsage: Bool
    var submit: Stagebeam_V1_SubmitJob

    /// `imageDirectory`: where local image paths may point (nil: local paths are refused).
    init(body: Data, imageDirectory: URL?) throws(GatewayError) {
        let request: JSONObject
        do {
            request = try JSONObject.parse(body, name: "the request body")
        } catch {
            throw .badRequest(error.message)
        }
        do {
            model = try request.optionalString("model") ?? ""
            stream = try request.optionalBool("stream") ?? false
            streamUsage = try request.optionalObject("stream_options")?.optionalBool("include_usage") ?? false
            if let n = try request.optionalInt("n"), n != 1 {
                throw GatewayError.badRequest("\"n\" must be 1: a job returns one answer (got \(n))")
            }
            let messages = try request.objects("messages")
            guard messages.count == 1, try messages[0].string("role") == "user" else {
                throw GatewayError.badRequest(
                    "\"messages\" must hold exactly one message, of role \"user\": stagebeam answers one question "
                        + "(about at most one image) and takes no system or earlier turns (got \(messages.count) messages)")
            }
            let (question, image) = try Self.content(of: messages[0], imageDirectory: imageDirectory)
            guard !question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw GatewayError.badRequest("the user message has no text: the question is empty")
            }
            submit = try Self.job(request, question: question)
            if let image { submit.image = image }
        } catch let error as GatewayError {
            throw error
        } catch let error as JSONError {
            throw .badRequest(error.message)
        } catch {
            throw .badRequest("\(error)")
        }
    }

    /// The question (text parts joined by newlines) and the image of a user message.
    private static func content(of message: JSONObject, imageDirectory: URL?) throws -> (String, Data?) {
        if let text = message["content"]?.string { return (text, nil) }
        let parts = try message.objects("content")
        var texts: [String] = []
        var image: Data?
        for part in parts {
            switch try part.string("type") {
            case "text":
                texts.append(try part.string("text"))
            case "image_url":
                guard image == nil else { throw GatewayError.badRequest("the message holds more than one image; a job takes one") }
                // OpenAI's form is {"image_url": {"url": …}}; a bare string is accepted too.
                let url = try part["image_url"]?.string ?? part.object("image_url").string("url")
                image = try ImageSource.read(url, imageDirectory: imageDirectory)
            case let other:
                throw GatewayError.badRequest("content part type \"\(other)\" is not supported (only \"text\" and \"image_url\")")
            }
        }
        return (texts.joined(separator: "\n"), image)
    }

    /// The job: the question and the search options the body sets; the others stay unset, for the
    /// coordinator to fill from the model's recommended settings (`SearchSettings.submitJob`).
    private static func job(_ request: JSONObject, question: String) throws -> Stagebeam_V1_SubmitJob {
        var settings = SearchSettings()
        if let name = try request.optionalString("method") {
            guard let method = SearchMethod(rawValue: name) else { throw choices("method", name, SearchMethod.allCases.map(\.rawValue)) }
            settings.method = method
        }
        settings.beam = try positive(request, "beam")
        if let name = try request.optionalString("tournament") {
            guard let kind = TournamentKind(rawValue: name) else {
                throw choices("tournament", name, TournamentKind.allCases.map(\.rawValue))
            }
            settings.tournament = kind
        }
        if let name = try request.optionalString("judge_mode") {
            guard let mode = VerdictMode(rawValue: name) else { throw choices("judge_mode", name, VerdictMode.allCases.map(\.rawValue)) }
            settings.judgeMode = mode
        }
        if let names = try request.optionalArray("search_stages") {
            let allowed = Stage.allCases.map(\.rawValue)
            settings.searchStages = try names.map { value in
                guard let name = value.string else { throw GatewayError.badRequest("\"search_stages\" must be an array of stage names") }
                guard let stage = Stage(rawValue: name) else { throw choices("search_stages", name, allowed) }
                return stage
            }
            guard settings.searchStages?.isEmpty == false else {
                throw GatewayError.badRequest("\"search_stages\" must name at least one of \(allowed.joined(separator: ", "))")
            }
        }
        settings.maxStageTokens = try positive(request, "max_stage_tokens")
        settings.judgeMaxTokens = try positive(request, "judge_max_tokens")
        settings.judgeBothOrders = try request.optionalBool("judge_both_orders")
        settings.forceTags = try request.optionalBool("force_tags")
        settings.temperature = try request.optionalDouble("temperature")
        settings.topP = try request.optionalDouble("top_p")
        settings.judgeTemperature = try request.optionalDouble("judge_temperature")
        settings.candidates = try positive(request, "candidates")
        settings.keep = try positive(request, "keep")
        if let retraces = try request.optionalInt("retraces") {
            guard retraces >= 0, retraces <= Int(UInt32.max) else {
                throw GatewayError.badRequest("\"retraces\" must be ≥ 0, got \(retraces)")
            }
            settings.retraces = retraces
        }
        settings.rewardZ = try request.optionalDouble("z")
        settings.rewardMean = try request.optionalDouble("reward_mean")
        settings.rewardStd = try request.optionalDouble("reward_std")
        var seed: UInt64 = 0
        if let given = try request.optionalDouble("seed") {
            guard given >= 0, given == given.rounded(), given < 0x1p64 else {
                throw GatewayError.badRequest("\"seed\" must be an integer ≥ 0, got \(given)")
            }
            seed = UInt64(given)
        }
        var submit = settings.submitJob(question: question, seed: seed)
        submit.streamEvents = true
        // The record holds every winner's token count (the usage) and the staged text.
        submit.recordSearch = true
        return submit
    }

    private static func positive(_ request: JSONObject, _ key: String) throws -> Int? {
        guard let value = try request.optionalInt(key) else { return nil }
        guard value >= 1, value <= Int(UInt32.max) else { throw GatewayError.badRequest("\"\(key)\" must be ≥ 1, got \(value)") }
        return value
    }

    private static func choices(_ key: String, _ value: String, _ allowed: [String]) -> GatewayError {
        .badRequest("\"\(key)\" must be one of \(allowed.joined(separator: ", ")); got \"\(value)\"")
    }
}

/// Where an `image_url` may point: a data URL, or a local file under the gateway's image directory.
/// The gateway never fetches http(s) URLs: it would let any caller make it request any address.
enum ImageSource {
    static func read(_ url: String, imageDirectory: URL?) throws(GatewayError) -> Data {
        if url.hasPrefix("data:") { return try dataURL(url) }
        if url.hasPrefix("http://") || url.hasPrefix("https://") {
            throw .badRequest(
                "image_url \(url.prefix(80)): the gateway does not fetch URLs; send the image inline as a data URL "
                    + "(data:image/png;base64,…) or as a path under its --image-dir",
                code: "image_url_not_supported")
        }
        let path = url.hasPrefix("file://") ? String(url.dropFirst("file://".count)) : url
        guard path.hasPrefix("/") else {
            throw .badRequest("image_url \"\(url.prefix(80))\" is neither a data URL nor an absolute local path", code: "invalid_image_url")
        }
        guard let imageDirectory else {
            throw .badRequest(
                "image_url \(path): local images are refused unless the gateway runs with --image-dir (send a data URL)",
                code: "invalid_image_url")
        }
        // Symbolic links and ".." are resolved first, so the path cannot leave the directory.
        let file = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        let root = imageDirectory.standardizedFileURL.resolvingSymlinksInPath().path
        guard file.path.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw .badRequest("image_url \(path) is outside the gateway's image directory \(root)", code: "invalid_image_url")
        }
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw .badRequest("image_url \(path): no such readable file", code: "invalid_image_url")
        }
        return data
    }

    /// `data:[<type>];base64,<bytes>`.
    private static func dataURL(_ url: String) throws(GatewayError) -> Data {
        guard let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64") else {
            throw .badRequest("image_url: a data URL must be base64 (data:image/png;base64,…)", code: "invalid_image_url")
        }
        guard let data = Data(base64Encoded: String(url[url.index(after: comma)...]), options: .ignoreUnknownCharacters), !data.isEmpty
        else {
            throw .badRequest("image_url: the data URL's base64 payload does not decode", code: "invalid_image_url")
        }
        return data
    }
}
