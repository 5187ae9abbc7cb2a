import Strata
import StrataCORS
import Testing

@Suite struct CORSConfigurationTests {
    func problems(_ configure: (inout CORSConfiguration) -> Void) -> [CORSConfigurationError.Problem.Code] {
        var configuration = CORSConfiguration(allowedOrigins: ["https://app.example.com"])
        configure(&configuration)
        do {
            _ = try CORSPolicy(configuration)
            return []
        } catch {
            return error.problems.map(\.code)
        }
    }

    @Test func aSimpleConfigurationIsValid() {
        #expect(self.problems { _ in }.isEmpty)
    }

    @Test func everyProblemIsReportedTogether() {
        let codes = self.problems {
            $0.allowedOrigins = ["*", "http://evil.example", "https://*.com", "not an origin"]
            $0.allowsCredentials = true
            $0.allowedMethods = ["*", "CONNECT", "bad method", "patch"]
            $0.allowedRequestHeaders = ["*", "Cookie", "Sec-Fetch-Mode", "bad header"]
            $0.exposedHeaders = ["*", "Set-Cookie"]
            $0.maxAge = 100_000
            $0.preflightSuccessStatus = 302
        }
        for expected: CORSConfigurationError.Problem.Code in [
            .wildcardWithCredentials, .insecureOrigin, .publicSuffixWildcard, .malformedOrigin, .forbiddenMethod,
            .invalidMethod, .forbiddenHeaderName, .invalidHeaderName, .maxAgeOutOfRange, .invalidPreflightStatus,
        ] {
            #expect(codes.contains(expected), "missing \(expected)")
        }
        #expect(codes.filter { $0 == .wildcardWithCredentials }.count == 4)
    }

    @Test func theLoudOptOutsAllowWhatTheyName() {
        #expect(
            self.problems {
                $0.allowedOrigins = ["http://intranet.example", "https://*.github.io"]
                $0.allowsCredentials = true
                $0.dangerouslyAllowInsecureOrigins = true
                $0.dangerouslyAllowPublicSuffixWildcards = true
            }.isEmpty)
        #expect(
            self.problems {
                $0.allowedOrigins = ["http://localhost:*", "http://127.0.0.1:8080"]; $0.allowsCredentials = true
            }.isEmpty)
        #expect(
            self.problems {
                $0.allowedOrigins = ["https://*.co.uk"]; $0.allowsCredentials = true
            } == [.publicSuffixWildcard])
        #expect(self.problems { $0.allowedOrigins = ["https://*.co.uk"] }.isEmpty)
    }

    @Test func noOriginAtAllIsAProblem() {
        #expect(self.problems { $0.allowedOrigins = [] } == [.noOrigins])
        #expect(
            self.problems {
                $0.allowedOrigins = []; $0.originPredicate = { _ in true }
            }.isEmpty)
        #expect(self.problems { $0.allowedOrigins = ["null"] } == [.malformedOrigin, .noOrigins])
    }

    @Test func privateNetworkAccessNeedsNamedSecureOrigins() {
        #expect(
            self.problems {
                $0.allowedOrigins = ["*"]; $0.allowsPrivateNetworkAccess = true
            } == [.privateNetworkWithWildcard])
        #expect(
            self.problems {
                $0.allowedOrigins = ["http://a.example"]; $0.allowsPrivateNetworkAccess = true
            } == [.insecureOrigin])
    }

    @Test func theNormalisedConfigurationCanBeReadBack() throws {
        var configuration = CORSConfiguration(allowedOrigins: ["HTTPS://App.Example.com:443", "https://*.Example.org"])
        configuration.allowedMethods = ["put", "GET", "PATCH"]
        configuration.allowedRequestHeaders = ["X-Custom", "content-type"]
        configuration.exposedHeaders = ["X-Total", "Content-Length", "x-total"]
        configuration.maxAge = 600
        let policy = try CORSPolicy(configuration)
        #expect(policy.origins.patterns.map(\.description) == ["HTTPS://App.Example.com:443", "https://*.Example.org"])
        #expect(policy.origins.allows("https://app.example.com"))
        #expect(policy.allowedMethods == ["PUT", "PATCH"])
        #expect(policy.allowedRequestHeaders == ["x-custom", "content-type"])
        #expect(policy.exposedHeaders == "x-total")
        #expect(policy.maxAge == "600")
    }
}
