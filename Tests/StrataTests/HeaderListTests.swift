import HTTPTypes
import Strata
import Testing

@Suite struct HeaderListTests {
    @Test func appendKeepsEveryMiddlewaresElement() {
        var fields: HTTPFields = [.vary: "Accept-Encoding"]
        fields.appendListElement("Origin", to: .vary)
        fields.appendListElement("origin", to: .vary)
        #expect(fields[.vary] == "Accept-Encoding, Origin")
        #expect(fields.listElements(.vary) == ["Accept-Encoding", "Origin"])
    }

    @Test func appendCreatesTheFieldWhenMissing() {
        var fields = HTTPFields()
        fields.appendListElement("Origin", to: .vary)
        #expect(fields[.vary] == "Origin")
    }

    @Test func varyStarAbsorbsEverything() {
        var fields: HTTPFields = [.vary: "Origin"]
        fields.appendListElement("*", to: .vary)
        #expect(fields[.vary] == "*")
        fields.appendListElement("Accept-Encoding", to: .vary)
        #expect(fields[.vary] == "*")
    }

    @Test func elementsAcrossSeveralFieldLinesAndQuotes() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .cacheControl, value: "max-age=60, private=\"a, b\""))
        fields.append(HTTPField(name: .cacheControl, value: " no-transform ,, "))
        #expect(fields.listElements(.cacheControl) == ["max-age=60", "private=\"a, b\"", "no-transform"])
        #expect(fields.containsListElement("MAX-AGE", in: .cacheControl))
        #expect(!fields.containsListElement("no-store", in: .cacheControl))
    }

    @Test func combinedValueReadsAsTheSubscriptDoes() {
        var fields: HTTPFields = [.eTag: "\"v1\"", .age: "5"]
        fields.append(HTTPField(name: .age, value: "7"))
        #expect(fields.combinedValue(.eTag) == "\"v1\"")
        #expect(fields.combinedValue(.age) == "5, 7")
        #expect(fields.combinedValue(.age) == fields[.age])
        #expect(fields.combinedValue(.expires) == nil)
        #expect(fields.lineCount(.age) == 2)
        #expect(fields.lineCount(.eTag) == 1)
        #expect(fields.lineCount(.expires) == 0)
    }

    @Test func nameChecksAgreeWithEqualityAndContains() throws {
        // Same length, different names; long names (stored out of line) against short ones;
        // a name spelled in another case is the same name.
        let names: [HTTPField.Name] = [
            .eTag, .age, .date, .vary, .cacheControl, .lastModified, .contentLength, .transferEncoding,
            .proxyAuthorization, try #require(HTTPField.Name("CDN-Cache-Control")),
            try #require(HTTPField.Name("cdn-cache-control")), try #require(HTTPField.Name("Strata-Cache-Control")),
            try #require(HTTPField.Name("X-Caf")), try #require(HTTPField.Name("X-Abc")),
        ]
        for lhs in names {
            for rhs in names { #expect(lhs.isSame(as: rhs) == (lhs == rhs), "\(lhs) against \(rhs)") }
        }
        var fields: HTTPFields = [.eTag: "\"v1\"", .transferEncoding: "chunked"]
        fields.append(HTTPField(name: try #require(HTTPField.Name("cdn-cache-control")), value: "max-age=5"))
        for name in names { #expect(fields.has(name) == fields.contains(name), "\(name)") }
        #expect(fields.has(try #require(HTTPField.Name("CDN-Cache-Control"))))
        #expect(!fields.has(.cacheControl))
    }

    @Test func appendDoesNotDuplicateDirectiveNames() {
        var fields: HTTPFields = [.cacheControl: "max-age=60"]
        fields.appendListElement("max-age=30", to: .cacheControl)
        fields.appendListElement("no-transform", to: .cacheControl)
        #expect(fields[.cacheControl] == "max-age=60, no-transform")
    }

    @Test func removeElement() {
        var fields: HTTPFields = [.connection: "keep-alive, Upgrade"]
        fields.removeListElement("upgrade", from: .connection)
        #expect(fields[.connection] == "keep-alive")
        fields.removeListElement("keep-alive", from: .connection)
        #expect(fields[.connection] == nil)
    }

    @Test func qualityListParsesWeightsAndWildcards() {
        let list = QualityList("gzip;q=0.8, br, identity;q=0, *;q=0.1")
        #expect(list.quality(of: "GZIP") == 800)
        #expect(list.quality(of: "br") == 1000)
        #expect(list.quality(of: "identity") == 0)
        #expect(list.quality(of: "zstd") == 100)
    }

    @Test(arguments: ["gzip;q=2", "gzip;q=0.1234", "gzip;q=abc", "gzip;q=", "gzip;q=1.001", ";q=1", "g zip", "gzip;=1"])
    func malformedElementsAreDropped(_ value: String) {
        let list = QualityList(value)
        #expect(list.quality(of: "gzip") == nil)
    }

    @Test(arguments: [
        ("gzip;q=0.8, br, identity;q=0, *;q=0.1", "gzip=800 br=1000 identity=0 *=100"),
        ("gzip ; q=1.000 , deflate;q=0.", "gzip=1000 deflate=0"),
        ("br;level=3;Q=0.25, gzip;q=1.", "br=250 gzip=1000"),
        ("gzip;;q=0.5", "gzip=500"),
        ("gzip;q=2, gzip;q=0.1234, gzip;q=abc, gzip;q=, gzip;q, gzip;=1, ;q=1, g zip", ""),
        ("text/html;q=0.5, \"quoted\", zstd", "text/html=500 zstd=1000"),
    ])
    func theAllocationFreeWalkReadsValuesAndWeights(_ value: String, _ expected: String) {
        var seen: [String] = []
        QualityList.forEachElement(in: [.acceptEncoding: value], name: .acceptEncoding) { element, quality in
            seen.append("\(element)=\(quality)")
        }
        #expect(seen.joined(separator: " ") == expected)
    }

    @Test func qualityListKeepsOtherParametersAndSurvivesGarbage() {
        let list = QualityList(",,, ;;; , text/html;level=1;q=0.5, \"quoted\"")
        #expect(list.elements.count == 1)
        #expect(list.elements.first?.parameters["level"] == "1")
        #expect(list.elements.first?.quality == 500)
    }
}
