import HTTPTypes
import Logging
import NIOCore
import Strata
import StrataTesting
import Testing

/// Appends its name to a response field, so the order of a stack is visible.
struct TagMiddleware<Context: MiddlewareContext>: HTTPMiddleware {
    let name: String

    func handle(
        _ request: ServerRequest,
        context: Context,
        next: (ServerRequest, Context) async throws -> ServerResponse
    ) async throws -> ServerResponse {
        var request = request
        request.headerFields.append(HTTPField(name: .init("X-In")!, value: self.name))
        var response = try await next(request, context)
        response.headerFields.appendListElement(self.name, to: .vary)
        return response
    }
}

enum SeenKey: RequestValueKey { typealias Value = [String] }

@Suite struct MiddlewareStackTests {
    let echoInbound = ClosureResponder<BasicContext> { request, context in
        context.values[SeenKey.self] = request.headerFields[values: .init("X-In")!]
        let seen = request.headerFields[values: .init("X-In")!].joined(separator: ",")
        return ServerResponse(status: .ok, body: ResponseBody(string: seen))
    }

    @Test func firstListedSeesTheRequestFirstAndTheResponseLast() async throws {
        let stack = MiddlewareStack(BasicContext.self) {
            TagMiddleware<BasicContext>(name: "a")
            TagMiddleware<BasicContext>(name: "b")
            TagMiddleware<BasicContext>(name: "c")
        }
        let response = try await TestClient(responder: stack.wrapping(self.echoInbound)).execute(.get, "/")
        #expect(response.bodyString == "a,b,c")
        #expect(response.headerFields[.vary] == "c, b, a")
    }

    struct RefusedConfiguration: Error {}

    @Test func aMiddlewareThatRefusesItsConfigurationFailsTheStack() throws {
        func make(_ valid: Bool) throws -> TagMiddleware<BasicContext> {
            guard valid else { throw RefusedConfiguration() }
            return TagMiddleware<BasicContext>(name: "ok")
        }
        #expect(throws: RefusedConfiguration.self) {
            try MiddlewareStack(BasicContext.self) {
                try make(true)
                try make(false)
            }
        }
        _ = try MiddlewareStack(BasicContext.self) { try make(true) }
    }

    @Test func conditionalMiddlewares() async throws {
        for flag in [true, false] {
            let stack = MiddlewareStack(BasicContext.self) {
                TagMiddleware<BasicContext>(name: "a")
                if flag {
                    TagMiddleware<BasicContext>(name: "yes")
                } else {
                    TagMiddleware<BasicContext>(name: "no")
                }
                if flag { TagMiddleware<BasicContext>(name: "opt") }
            }
            let response = try await TestClient(responder: stack.wrapping(self.echoInbound)).execute(.get, "/")
            #expect(response.bodyString == (flag ? "a,yes,opt" : "a,no"))
        }
    }

    @Test func requestValuesAreSharedByEveryCopyOfTheContext() async throws {
        let context = BasicContext(source: ContextSource(logger: .init(label: "t")))
        let copy = context
        copy.values[SeenKey.self] = ["x"]
        #expect(context.values[SeenKey.self] == ["x"])
        context.values.modify(SeenKey.self) { $0?.append("y") }
        #expect(copy.values[SeenKey.self] == ["x", "y"])
    }

    @Test func thrownErrorsBecomeResponsesWithoutDetail() async throws {
        struct Secret: Error { let password = "hunter2" }
        let failing = ClosureResponder<BasicContext> { _, _ in throw Secret() }
        let response = try await TestClient(responder: failing).execute(.get, "/")
        #expect(response.status == .internalServerError)
        #expect(!response.bodyString.contains("hunter2"))
        let forbidden = ClosureResponder<BasicContext> { _, _ in
            throw HTTPError(.forbidden, headerFields: [.retryAfter: "5"], message: "no entry")
        }
        let second = try await TestClient(responder: forbidden).execute(.get, "/")
        #expect(second.status == .forbidden)
        #expect(second.bodyString == "no entry")
        #expect(second.headerFields[.retryAfter] == "5")
    }
}
