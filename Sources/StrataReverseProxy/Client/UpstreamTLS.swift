#if TLS
import NIOSSL
#endif

/// What connections to `https://` upstreams use: one TLS context for the proxy, made once.
/// Empty in a build without the `TLS` trait, where no upstream can use TLS.
struct UpstreamTLS: Sendable {
    #if TLS
    let context: NIOSSLContext
    #endif
}

/// An `https://` upstream with no TLS context to connect with.
struct UpstreamTLSUnavailableError: Error, CustomStringConvertible {
    var description: String { "this upstream needs TLS, which this build does not have" }
}
