import Foundation
import NIOCore
import StrataCompression
import StrataTestSupport
import StrataTesting
import Testing

@testable import CompressionExample

/// The compression example over a real socket, with curl decoding.
@Suite struct CompressionExampleTests {
    @Test func bigEventsAndUploadWorkThroughCurl() async throws {
        try await withLiveServer(responder: try buildResponder(interval: .milliseconds(10))) { port in
            let curl = try ExternalProcess.curl()
            let big = try await ExternalProcess.run(
                curl, ["-sS", "--compressed", "-D", "-", "http://127.0.0.1:\(port)/big"])
            // curl offers every coding it decodes; the example prefers the first this build has.
            #expect(big.stdout.lowercased().contains("content-encoding: \(ContentCoding.available[0].rawValue)"))
            #expect(big.stdout.hasSuffix(String(buffer: bigPage)))

            let events = try await ExternalProcess.run(
                curl, ["-sS", "--compressed", "-N", "http://127.0.0.1:\(port)/events"])
            #expect(events.stdout.components(separatedBy: "data: ").count - 1 == 5)

            let upload = try await ExternalProcess.run(
                "/bin/sh",
                [
                    "-c",
                    "head -c 800000 /dev/urandom | base64 -w0 | head -c 1000000 | gzip | \(curl) -sS --data-binary @- -H 'Content-Encoding: gzip' http://127.0.0.1:\(port)/upload",
                ]
            )
            #expect(upload.stdout == "1000000\n", "\(upload.stderr)")
        }
    }
}
