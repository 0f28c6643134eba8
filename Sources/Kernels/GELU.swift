import Foundation

/// The activations of vision towers and multimodal projectors, by their transformers names
/// (`hidden_act`, `projector_hidden_act`), applied in place.
public enum Activation: String, Sendable {
    /// Exact GELU: `x/2 · (1 + erf(x/√2))`.
    case gelu
    /// Tanh-approximated GELU (SigLIP): `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
    case geluTanh = "gelu_pytorch_tanh"
    /// The same approximation under its older name.
    case geluNew = "gelu_new"
    /// CLIP's `x · sigmoid(1.702 x)`.
    case quickGelu = "quick_gelu"
    case silu

    public func apply(_ x: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .gelu:
            for i in 0..<count { let v = x[i]; x[i] = 0.5 * v * (1 + erff(v * Float(0.5).squareRoot())) }
        case .geluTanh, .geluNew:
            let c = (2 / Float.pi).squareRoot()
            for i in 0..<count { let v = x[i]; x[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v))) }
        case .quickGelu:
            for i in 0..<count { let v = x[i]; x[i] = v / (1 + expf(-1.702 * v)) }
        case .silu:
            for i in 0..<count { let v = x[i]; x[i] = v / (1 + expf(-v)) }
        }
    }
}
