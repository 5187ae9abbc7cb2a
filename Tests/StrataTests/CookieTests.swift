import HTTPTypes
import Strata
import Testing

@Suite struct CookieTests {
    @Test func serialisesEveryAttribute() throws {
        let cookie = try Cookie(
            name: "__Host-id", value: "abc", expires: 784_111_777, maxAge: 60, path: "/",
            secure: true, httpOnly: true, sameSite: .lax, partitioned: true
        )
        #expect(
            cookie.setCookieValue
                == "__Host-id=abc; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax; Partitioned"
        )
    }

    @Test func prefixRulesAreEnforced() {
        #expect(throws: CookieError.self) { try Cookie(name: "__Secure-a", value: "1") }
        #expect(throws: CookieError.self) {
            try Cookie(
                name: "__Host-a", value: "1", path: "/", secure: true, httpOnly: false, sameSite: nil,
                partitioned: false
            ).validateWithDomain()
        }
        #expect(throws: CookieError.self) { try Cookie(name: "__Host-a", value: "1", path: "/x", secure: true) }
        #expect(throws: CookieError.self) { try Cookie(name: "__host-a", value: "1", secure: true) }
        #expect(throws: CookieError.self) { try Cookie(name: "a", value: "1", sameSite: Cookie.SameSite.none) }
        #expect(throws: CookieError.self) { try Cookie(name: "a", value: "1", partitioned: true) }
    }

    @Test(arguments: ["a b", "a;b", "a,b", "a\\b", "\u{7F}", "é"])
    func invalidValuesAreRefused(_ value: String) {
        #expect(throws: CookieError.self) { try Cookie(name: "a", value: value) }
    }

    @Test func invalidNamesAreRefused() {
        #expect(throws: CookieError.self) { try Cookie(name: "", value: "1") }
        #expect(throws: CookieError.self) { try Cookie(name: "a=b", value: "1") }
    }

    @Test func parsesSetCookie() throws {
        let cookie = try #require(
            Cookie(
                setCookieValue:
                    "id=42; Path=/; Secure; HttpOnly; SameSite=strict; Max-Age=10; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Unknown=1"
            ))
        #expect(cookie.name == "id")
        #expect(cookie.value == "42")
        #expect(cookie.path == "/")
        #expect(cookie.secure && cookie.httpOnly)
        #expect(cookie.sameSite == .strict)
        #expect(cookie.maxAge == 10)
        #expect(cookie.expires == 784_111_777)
        #expect(Cookie(setCookieValue: "novalue") == nil)
        #expect(Cookie(setCookieValue: "=x") == nil)
    }

    @Test func parsesRequestCookies() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .cookie, value: "a=1; b=\"two\"; broken; =x"))
        fields.append(HTTPField(name: .cookie, value: "a=3"))
        let cookies = fields.cookies
        #expect(cookies["a"] == "1")
        #expect(cookies["b"] == "two")
        #expect(cookies.pairs.count == 3)
        #expect(cookies["broken"] == nil)
    }

    @Test func httpDatesRoundTripInAllThreeForms() {
        #expect(HTTPDate.format(secondsSince1970: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 25:49:37 GMT") == nil)
        #expect(HTTPDate.parse("yesterday") == nil)
        // A slice is read in place, in every form.
        #expect(HTTPDate.parse("> Sun, 06 Nov 1994 08:49:37 GMT".dropFirst(2)) == 784_111_777)
        #expect(HTTPDate.parse("> Sun Nov  6 08:49:37 1994".dropFirst(2)) == 784_111_777)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMX") == nil)
        #expect(HTTPDate.parse("Sun, 06 Xyz 1994 08:49:37 GMT") == nil)
        #expect(HTTPDate.format(secondsSince1970: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(secondsSince1970: 951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
    }

    @Test func theFixdateFastPathAgreesWithTheFormatterOverTwoCenturies() {
        var seconds: Int64 = -2_208_988_800  // 1900
        while seconds < 4_102_444_800 {  // 2100
            #expect(HTTPDate.parse(HTTPDate.format(secondsSince1970: seconds)) == seconds)
            seconds += 86_400 * 7 + 3_661
        }
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMX") == nil)
        #expect(HTTPDate.parse("Sun, 06 Xyz 1994 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 32 Nov 1994 08:49:37 GMT") == nil)
    }
}

extension Cookie {
    /// A `__Host-` cookie with a Domain, built without the initialiser's check, then validated.
    fileprivate func validateWithDomain() throws(CookieError) {
        var copy = self
        copy.domain = "example.com"
        try copy.validate()
    }
}
