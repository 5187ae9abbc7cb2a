import Strata
import Testing

@Suite struct OriginTests {
    @Test(arguments: [
        ("https://example.com", "https://example.com"),
        ("HTTPS://EXAMPLE.com:443", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("http://example.com:8080", "http://example.com:8080"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
    ])
    func originsAreNormalised(_ text: String, _ expected: String) {
        #expect(Origin(text)?.serialized == expected)
    }

    @Test(arguments: [
        "null", "example.com", "https://", "https://example.com/", "https://example.com/path",
        "https://user@example.com",
        "https://example.com:99999", "https://example.com:", "https://exa mple.com", "1http://example.com",
        "https://example.com?x", "https://[zz]", "https://[127.0.0.1]",
    ])
    func malformedOriginsAreRejected(_ text: String) {
        #expect(Origin(text) == nil)
    }

    @Test func subdomainPatternsMatchWholeLabels() throws {
        let pattern = try OriginPattern("https://*.example.com")
        #expect(pattern.matches(try #require(Origin("https://a.example.com"))))
        #expect(pattern.matches(try #require(Origin("https://a.b.example.com"))))
        #expect(!pattern.matches(try #require(Origin("https://example.com"))))
        #expect(!pattern.matches(try #require(Origin("https://evil-example.com"))))
        #expect(!pattern.matches(try #require(Origin("https://a.example.com.evil.com"))))
        #expect(!pattern.matches(try #require(Origin("http://a.example.com"))))
        #expect(!pattern.matches(try #require(Origin("https://a.example.com:8443"))))
    }

    @Test func anyPortPatterns() throws {
        let pattern = try OriginPattern("http://localhost:*")
        #expect(pattern.matches(try #require(Origin("http://localhost:3000"))))
        #expect(pattern.matches(try #require(Origin("http://localhost"))))
        #expect(!pattern.matches(try #require(Origin("https://localhost:3000"))))
        #expect(!pattern.matches(try #require(Origin("http://localhost.evil.com:3000"))))
    }

    @Test(arguments: [
        "null", "https://*example.com", "https://ex*ample.com", "https://*.*.example.com", "https://*.example.com:*",
        "example.com", "https://*.127.0.0.1", "https://example.com/",
    ])
    func badPatternsAreRefused(_ text: String) {
        #expect(throws: OriginPatternError.self) { try OriginPattern(text) }
    }

    @Test func matcherNeverAllowsNullThroughAPattern() throws {
        let matcher = OriginMatcher([try OriginPattern("*")])
        #expect(matcher.allows("https://anything.example"))
        #expect(!matcher.allows("null"))
        #expect(OriginMatcher([], allowsNull: true).allows("null"))
        #expect(!matcher.allows("garbage"))
    }
}
