import Search
import Wire

/// The names roles and stages go by in logs and metric labels, shared by the coordinator and workers.
extension Stagebeam_V1_Role {
    public var logName: String {
        switch self {
        case .generate: "generate"
        case .judge: "judge"
        case .reward: "reward"
        default: "unknown"
        }
    }
}

extension Stagebeam_V1_Stage {
    public var logName: String { JudgeTopic(wire: self)?.rawValue ?? "starting" }
}

/// A duration in milliseconds, as the protocol's timing fields and the logs carry them.
public func milliseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1000 + Double(attoseconds) * 1e-15
}
