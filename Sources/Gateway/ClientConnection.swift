import Hummingbird
import NIOCore
import Synchronization

/// The gateway's request context: Hummingbird's basic one, plus the request's connection, so that
/// a handler waiting for a job can tell when its HTTP client goes away.
struct GatewayRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Calls `onGone` once when the client's side of a connection ends: it closed its socket (the
/// server allows half-closed connections, so that reads as the input closing) or the connection
/// dropped. Placed first in the pipeline, where these events start, and passes everything on.
/// A client that half-closes on purpose while it waits for its answer reads as gone too; HTTP
/// clients do not (curl, the openai package and browsers close both sides together).
final class ClientGoneHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    private let onGone: @Sendable () -> Void
    /// Set by the first of the two events: a client that closes its socket usually brings both (the
    /// input closing, then the connection going inactive), and its job is cancelled once.
    private let gone = Atomic(false)

    init(onGone: @escaping @Sendable () -> Void) { self.onGone = onGone }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent { clientGone() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientGone()
        context.fireChannelInactive()
    }

    private func clientGone() {
        if !gone.exchange(true, ordering: .relaxed) { onGone() }
    }
}
