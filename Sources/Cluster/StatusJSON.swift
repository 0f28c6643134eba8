import SwiftProtobuf
import Wire

extension Stagebeam_V1_StatusReply {
    /// The protobuf JSON form (lowerCamelCase field names), for `stagebeam status --json`.
    public func jsonText() throws -> String {
        var options = JSONEncodingOptions()
        options.alwaysPrintInt64sAsNumbers = true
        return try jsonString(options: options)
    }
}
