import HTTPTypes
import Strata
import StrataCompression
import Testing

@Suite struct NegotiationTests {
    @Test(
        arguments: [
            (nil, CodingChoice.identity),
            ("gzip", .coding(.gzip)),
            ("deflate", .coding(.deflate)),
            ("gzip, deflate", .coding(.gzip)),
            ("deflate, gzip", .coding(.gzip)),
            ("gzip;q=0.5, deflate;q=0.8", .coding(.deflate)),
            ("x-gzip", .coding(.gzip)),
            ("*", .coding(.gzip)),
            ("*;q=0.5, gzip;q=0", .coding(.deflate)),
            ("br", .identity),
            ("zstd;q=0.9", .identity),
            ("", .identity),
            ("identity;q=0", .notAcceptable),
            ("*;q=0", .notAcceptable),
            ("*;q=0, identity", .identity),
            ("gzip;q=0, deflate;q=0", .identity),
            ("gzip;q=abc, deflate", .coding(.deflate)),
            (";;;,,,gzip;q=", .identity),
            ("GZIP;Q=1", .coding(.gzip)),
        ] as [(String?, CodingChoice)])
    func negotiation(_ acceptEncoding: String?, _ expected: CodingChoice) {
        var fields = HTTPFields()
        if let acceptEncoding { fields[.acceptEncoding] = acceptEncoding }
        #expect(ContentCoding.negotiate(fields, preference: [.gzip, .deflate]) == expected)
    }

    @Test func everyCodingIsWeighed() {
        let all: [ContentCoding] = [.zstd, .brotli, .gzip, .deflate]
        #expect(ContentCoding.negotiate([.acceptEncoding: "gzip, br"], preference: all) == .coding(.brotli))
        #expect(ContentCoding.negotiate([.acceptEncoding: "zstd;q=0.5, br;q=0.6"], preference: all) == .coding(.brotli))
        #expect(
            ContentCoding.negotiate([.acceptEncoding: "gzip, deflate, br, zstd"], preference: all) == .coding(.zstd))
        #expect(ContentCoding.negotiate([.acceptEncoding: "*"], preference: all) == .coding(.zstd))
        #expect(ContentCoding(token: "BR") == .brotli)
    }

    @Test func preferenceBreaksTies() {
        #expect(
            ContentCoding.negotiate([.acceptEncoding: "gzip, deflate"], preference: [.deflate, .gzip])
                == .coding(.deflate))
    }

    @Test func configurationIsValidated() {
        var configuration = CompressionConfiguration()
        configuration.level = 11
        configuration.windowBits = 3
        configuration.codings = []
        configuration.contentTypes = ["json"]
        do {
            _ = try ResponseCompressionMiddleware<Strata.BasicContext>(configuration: configuration)
            Issue.record("expected an error")
        } catch {
            #expect(error.problems.count == 4)
        }
    }
}
