import HTTPTypes
import NIOCore
import Strata
import StrataCORS
import StrataServer
import StrataTestSupport
import StrataTesting
import Testing

func apiRouter() -> Router<BasicContext> {
    let router = Router<BasicContext>()
    router.get("/api/data") { _, _ in
        ServerResponse(
            status: .ok, headerFields: [.contentType: "application/json", HTTPField.Name("X-Total")!: "3"],
            body: .init(string: "{\"items\":3}"))
    }
    router.put("/api/data") { request, _ in
        let body = try await request.body.collect(upTo: 1024)
        return ServerResponse(status: .ok, body: .init(buffer: body))
    }
    router.get("/api/fail") { _, _ in throw HTTPError(.conflict, message: "busy") }
    router.on("/api/options", method: .options) { _, _ in
        ServerResponse(status: .ok, body: .init(string: "handler options"))
    }
    return router
}

func client(_ configure: (inout CORSConfiguration) -> Void) throws -> TestClient<some HTTPResponder<BasicContext>> {
    var configuration = CORSConfiguration(allowedOrigins: [
        "https://app.example.com", "https://*.example.org", "http://localhost:*",
    ])
    configure(&configuration)
    let cors = try CORSMiddleware<BasicContext>(configuration: configuration)
    return TestClient(
        responder: MiddlewareStack(BasicContext.self) {
            AppendVary<BasicContext>("Accept-Encoding")
            cors
        }.wrapping(apiRouter()))
}

let requestMethod = HTTPField.Name.accessControlRequestMethod
let requestHeaders = HTTPField.Name.accessControlRequestHeaders

@Suite struct ActualRequestTests {
    @Test func allowedOriginGetsItsOriginBackAndVary() async throws {
        let response = try await client { _ in }.execute(
            .get, "/api/data", headerFields: [.origin: "https://app.example.com"])
        #expect(response.status == .ok)
        #expect(response.headerFields[.accessControlAllowOrigin] == "https://app.example.com")
        #expect(response.headerFields[.accessControlAllowCredentials] == nil)
        #expect(response.headerFields[.vary] == "Origin, Accept-Encoding")
    }

    @Test func disallowedOriginReachesTheHandlerWithoutCORSHeaders() async throws {
        let response = try await client { _ in }.execute(
            .get, "/api/data", headerFields: [.origin: "https://evil-example.org"])
        #expect(response.status == .ok)
        #expect(response.bodyString == "{\"items\":3}")
        #expect(response.headerFields[.accessControlAllowOrigin] == nil)
        #expect(response.headerFields[.vary] == "Origin, Accept-Encoding")
    }

    @Test func requestsWithoutOriginStillVary() async throws {
        let response = try await client { _ in }.execute(.get, "/api/data")
        #expect(response.headerFields[.accessControlAllowOrigin] == nil)
        #expect(response.headerFields.listElements(.vary).contains("Origin"))
    }

    @Test func patternsAndNormalisationApply() async throws {
        let cors = try client { _ in }
        for (origin, allowed) in [
            ("https://deep.sub.example.org", true), ("https://example.org", false), ("http://localhost:5173", true),
            ("HTTPS://APP.EXAMPLE.COM", true), ("https://app.example.com:443", true), ("null", false),
            ("garbage", false),
        ] {
            let response = try await cors.execute(.get, "/api/data", headerFields: [.origin: origin])
            #expect((response.headerFields[.accessControlAllowOrigin] == origin) == allowed, "\(origin)")
        }
    }

    @Test func credentialsAndExposedHeadersOnActualResponses() async throws {
        let response = try await client {
            $0.allowsCredentials = true
            $0.exposedHeaders = ["X-Total"]
        }.execute(.get, "/api/data", headerFields: [.origin: "https://app.example.com"])
        #expect(response.headerFields[.accessControlAllowOrigin] == "https://app.example.com")
        #expect(response.headerFields[.accessControlAllowCredentials] == "true")
        #expect(response.headerFields[.accessControlExposeHeaders] == "x-total")
    }

    @Test func errorsAndNotFoundGetCORSHeadersToo() async throws {
        let cors = try client { $0.exposedHeaders = ["X-Total"] }
        let failed = try await cors.execute(.get, "/api/fail", headerFields: [.origin: "https://app.example.com"])
        #expect(failed.status == .conflict)
        #expect(failed.headerFields[.accessControlAllowOrigin] == "https://app.example.com")
        #expect(failed.headerFields[.accessControlExposeHeaders] == "x-total")
        let missing = try await cors.execute(.get, "/nowhere", headerFields: [.origin: "https://app.example.com"])
        #expect(missing.status == .notFound)
        #expect(missing.headerFields[.accessControlAllowOrigin] == "https://app.example.com")
    }

    @Test func anyOriginWithoutCredentialsIsStarAndDoesNotVary() async throws {
        let cors = try client {
            $0.allowedOrigins = ["*"]; $0.exposedHeaders = ["*"]
        }
        let response = try await cors.execute(.get, "/api/data", headerFields: [.origin: "https://whoever.example"])
        #expect(response.headerFields[.accessControlAllowOrigin] == "*")
        #expect(response.headerFields[.accessControlExposeHeaders] == "*")
        #expect(response.headerFields[.vary] == "Accept-Encoding")
    }

    @Test func optionsWithoutRequestMethodIsAnActualRequest() async throws {
        let response = try await client { _ in }.execute(
            .options, "/api/options", headerFields: [.origin: "https://app.example.com"])
        #expect(response.bodyString == "handler options")
        #expect(response.headerFields[.accessControlAllowOrigin] == "https://app.example.com")
        #expect(response.headerFields[.accessControlAllowMethods] == nil)
    }

    @Test func predicateSeesOnlyTheOriginValue() async throws {
        let cors = try client {
            $0.allowedOrigins = []; $0.originPredicate = { $0.hasSuffix(".trusted.example") }
        }
        let yes = try await cors.execute(.get, "/api/data", headerFields: [.origin: "https://a.trusted.example"])
        #expect(yes.headerFields[.accessControlAllowOrigin] == "https://a.trusted.example")
        let no = try await cors.execute(.get, "/api/data", headerFields: [.origin: "https://a.example"])
        #expect(no.headerFields[.accessControlAllowOrigin] == nil)
    }

    @Test func reconfigurationSwapsThePolicyAndRefusesBadOnes() async throws {
        let middleware = try CORSMiddleware<BasicContext>(configuration: .init(allowedOrigins: ["https://a.example"]))
        let client = TestClient(responder: middleware.wrapping(apiRouter()))
        #expect(
            try await client.execute(.get, "/api/data", headerFields: [.origin: "https://b.example"]).headerFields[
                .accessControlAllowOrigin] == nil)
        try middleware.reconfigure(.init(allowedOrigins: ["https://b.example"]))
        #expect(
            try await client.execute(.get, "/api/data", headerFields: [.origin: "https://b.example"]).headerFields[
                .accessControlAllowOrigin] == "https://b.example")
        #expect(throws: CORSConfigurationError.self) { try middleware.reconfigure(.init(allowedOrigins: ["nope"])) }
        #expect(middleware.policy.origins.allows("https://b.example"))
    }
}

@Suite struct PreflightTests {
    @Test func successfulPreflightIs204WithEveryGrant() async throws {
        let response = try await client {
            $0.allowedMethods = ["PUT"]
            $0.allowedRequestHeaders = ["X-Custom", "Content-Type"]
            $0.maxAge = 600
        }.execute(
            .options, "/api/data",
            headerFields: [
                .origin: "https://app.example.com", requestMethod: "PUT", requestHeaders: "content-type,x-custom",
            ])
        #expect(response.status == .noContent)
        #expect(response.headerFields[.accessControlAllowOrigin] == "https://app.example.com")
        #expect(response.headerFields[.accessControlAllowMethods] == "PUT")
        #expect(response.headerFields[.accessControlAllowHeaders] == "content-type,x-custom")
        #expect(response.headerFields[.accessControlMaxAge] == "600")
        #expect(
            response.headerFields.listElements(.vary) == [
                "Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers", "Accept-Encoding",
            ])
        #expect(response.body.readableBytes == 0)
    }

    @Test(arguments: [
        ("https://evil.example", "PUT", "x-custom", "origin"),
        ("https://app.example.com", "DELETE", "", "method"),
        ("https://app.example.com", "put", "", "lower-case put is normalised, so allowed"),
        ("https://app.example.com", "PUT", "x-other", "header"),
        ("https://app.example.com", "PUT", "authorization", "authorization"),
        ("https://app.example.com", "PU T", "", "malformed method"),
        ("https://app.example.com", "PUT", "x-custom, bad header", "malformed header"),
    ])
    func failedPreflightsGetNoCORSHeaders(_ origin: String, _ method: String, _ headers: String, _ label: String)
        async throws
    {
        let response = try await client {
            $0.allowedMethods = ["PUT"]
            $0.allowedRequestHeaders = ["X-Custom"]
        }.execute(
            .options, "/api/data", headerFields: [.origin: origin, requestMethod: method, requestHeaders: headers])
        if label.hasPrefix("lower-case") {
            #expect(response.status == .noContent)
            #expect(response.headerFields[.accessControlAllowMethods] == "PUT")
            return
        }
        #expect(response.status == .forbidden, "\(label)")
        #expect(response.headerFields[.accessControlAllowOrigin] == nil, "\(label)")
        #expect(response.headerFields[.accessControlAllowMethods] == nil, "\(label)")
        #expect(response.headerFields.listElements(.vary).contains("Origin"), "\(label)")
    }

    @Test func requestedHeadersInAnyFormAreGrantedInCanonicalForm() async throws {
        let cors = try client { $0.allowedRequestHeaders = ["X-Custom", "Content-Type"] }
        var fields: HTTPFields = [.origin: "https://app.example.com", requestMethod: "GET"]
        fields.append(HTTPField(name: requestHeaders, value: " Content-Type ,, X-CUSTOM"))
        fields.append(HTTPField(name: requestHeaders, value: "x-custom"))
        let response = try await cors.execute(.options, "/", headerFields: fields)
        #expect(response.status == .noContent)
        #expect(response.headerFields[.accessControlAllowHeaders] == "content-type,x-custom,x-custom")
    }

    @Test func safelistedMethodsNeedNoConfiguration() async throws {
        let response = try await client { $0.allowedRequestHeaders = ["x-custom"] }.execute(
            .options, "/api/data",
            headerFields: [
                .origin: "https://app.example.com", requestMethod: "GET", requestHeaders: "x-custom",
            ])
        #expect(response.status == .noContent)
    }

    @Test func starHeadersDoNotCoverAuthorization() async throws {
        let cors = try client { $0.allowedRequestHeaders = ["*"] }
        let any = try await cors.execute(
            .options, "/api/data",
            headerFields: [.origin: "https://app.example.com", requestMethod: "GET", requestHeaders: "x-anything"])
        #expect(any.status == .noContent)
        #expect(any.headerFields[.accessControlAllowHeaders] == "x-anything")
        let auth = try await cors.execute(
            .options, "/api/data",
            headerFields: [.origin: "https://app.example.com", requestMethod: "GET", requestHeaders: "authorization"])
        #expect(auth.status == .forbidden)
        let listed = try client { $0.allowedRequestHeaders = ["*", "Authorization"] }
        #expect(
            try await listed.execute(
                .options, "/",
                headerFields: [
                    .origin: "https://app.example.com", requestMethod: "GET", requestHeaders: "authorization",
                ]
            ).status == .noContent)
    }

    @Test func methodsAreCaseSensitiveBeyondTheNormalisedSix() async throws {
        let cors = try client { $0.allowedMethods = ["PATCH"] }
        #expect(
            try await cors.execute(
                .options, "/", headerFields: [.origin: "https://app.example.com", requestMethod: "PATCH"]
            ).status == .noContent)
        #expect(
            try await cors.execute(
                .options, "/", headerFields: [.origin: "https://app.example.com", requestMethod: "patch"]
            ).status == .forbidden)
    }

    @Test func successStatusAndPassingPreflightsOn() async throws {
        let status = try client {
            $0.preflightSuccessStatus = 200; $0.allowedMethods = ["PUT"]
        }
        #expect(
            try await status.execute(
                .options, "/", headerFields: [.origin: "https://app.example.com", requestMethod: "PUT"]
            ).status == .ok)
        let passing = try client {
            $0.passesPreflightToNext = true; $0.allowedMethods = ["PUT"]
        }
        let response = try await passing.execute(
            .options, "/api/options", headerFields: [.origin: "https://app.example.com", requestMethod: "PUT"])
        #expect(response.bodyString == "handler options")
        #expect(response.headerFields[.accessControlAllowMethods] == "PUT")
        #expect(response.headerFields[.accessControlAllowOrigin] == "https://app.example.com")
    }

    @Test func privateNetworkAccessOnlyWhenEnabled() async throws {
        let flag = HTTPField.Name("Access-Control-Request-Private-Network")!
        let allow = HTTPField.Name("Access-Control-Allow-Private-Network")!
        let off = try client { _ in }
        #expect(
            try await off.execute(
                .options, "/", headerFields: [.origin: "https://app.example.com", requestMethod: "GET", flag: "true"]
            ).status == .forbidden)
        let on = try client {
            $0.allowsPrivateNetworkAccess = true; $0.allowedOrigins = ["https://app.example.com"]
        }
        let response = try await on.execute(
            .options, "/", headerFields: [.origin: "https://app.example.com", requestMethod: "GET", flag: "true"])
        #expect(response.status == .noContent)
        #expect(response.headerFields[allow] == "true")
        #expect(response.headerFields.listElements(.vary).contains("Access-Control-Request-Private-Network"))
    }

    @Test func credentialedPreflightNamesTheOrigin() async throws {
        let response = try await client { $0.allowsCredentials = true }.execute(
            .options, "/", headerFields: [.origin: "https://app.example.com", requestMethod: "POST"])
        #expect(response.headerFields[.accessControlAllowOrigin] == "https://app.example.com")
        #expect(response.headerFields[.accessControlAllowCredentials] == "true")
        let star = try await client { $0.allowedOrigins = ["*"] }.execute(
            .options, "/", headerFields: [.origin: "https://x.example", requestMethod: "POST"])
        #expect(star.headerFields[.accessControlAllowOrigin] == "*")
    }
}
