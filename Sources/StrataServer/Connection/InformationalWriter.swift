import HTTPTypes
import NIOCore
import Strata
import Synchronization

/// Sends a connection's 1xx informational responses, only while a request is being handled and
/// its final response has not started, and never to an HTTP/1.0 client.
final class InformationalWriter: InformationalResponseSender {
    private let outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>
    /// Whether the current request may still get informational responses.
    private let open = Mutex(false)

    init(outbound: NIOAsyncChannelOutboundWriter<ServerOutboundPart>) {
        self.outbound = outbound
    }

    /// A request starts: it may get informational responses unless its client is HTTP/1.0.
    func begin(_ info: RequestHeadInfo) {
        self.open.withLock { $0 = !info.isHTTP10 }
    }

    /// The final response is about to be written.
    func end() {
        self.open.withLock { $0 = false }
    }

    @discardableResult
    func sendInformational(_ response: HTTPResponse) async throws -> Bool {
        let code = response.status.code
        guard (102..<200).contains(code), code != 101, self.open.withLock({ $0 }) else { return false }
        // Framing fields mean nothing on a 1xx: the encoder leaves them out.
        try await self.outbound.write(.head(.informational(response)))
        return true
    }
}
