import Foundation

/// A response read off the wire by a test.
public struct ParsedResponse {
    public var version: String
    public var status: Int
    public var headers: [(String, String)]
    public var body: String
    public var trailers: [(String, String)] = []

    public func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// Splits raw HTTP/1.1 response bytes (as text) into responses, following their framing.
/// Stops at the first incomplete response.
public func parseResponses(_ text: String, headRequests: Int = 0) -> [ParsedResponse] {
    var responses: [ParsedResponse] = []
    var rest = Substring(text)
    var headsLeft = headRequests
    while let headEnd = rest.range(of: "\r\n\r\n") {
        let lines = rest[..<headEnd.lowerBound].components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { break }
        var response = ParsedResponse(version: String(statusParts[0]), status: status, headers: [], body: "")
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            response.headers.append(
                (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        rest = rest[headEnd.upperBound...]
        let noBody = (100..<200).contains(status) || status == 204 || status == 304 || headsLeft > 0
        if headsLeft > 0 && !(100..<200).contains(status) { headsLeft -= 1 }
        if noBody {
        } else if let length = response.header("content-length").flatMap(Int.init) {
            guard rest.utf8.count >= length else { break }
            let end = rest.utf8.index(rest.startIndex, offsetBy: length)
            response.body = String(rest[..<end])
            rest = rest[end...]
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            var body = ""
            var complete = false
            while let lineEnd = rest.range(of: "\r\n") {
                let size = Int(rest[..<lineEnd.lowerBound].split(separator: ";")[0], radix: 16) ?? -1
                rest = rest[lineEnd.upperBound...]
                if size == 0 {
                    while let trailerEnd = rest.range(of: "\r\n") {
                        let line = rest[..<trailerEnd.lowerBound]
                        rest = rest[trailerEnd.upperBound...]
                        if line.isEmpty { complete = true; break }
                        if let colon = line.firstIndex(of: ":") {
                            response.trailers.append(
                                (
                                    String(line[..<colon]),
                                    line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                                ))
                        }
                    }
                    break
                }
                guard size > 0, rest.utf8.count >= size + 2 else { break }
                let end = rest.utf8.index(rest.startIndex, offsetBy: size)
                body += rest[..<end]
                rest = rest[rest.utf8.index(end, offsetBy: 2)...]
            }
            guard complete else { break }
            response.body = body
        } else {
            response.body = String(rest)
            rest = ""
        }
        responses.append(response)
    }
    return responses
}
