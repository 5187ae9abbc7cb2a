public import HTTPTypes

extension HTTPField.Name {
    /// Whether `other` is the same field name, as `==` says, with the lengths compared first.
    ///
    /// Most field names differ in length, and a length is read without a call: `==` on two
    /// different names calls into the String library every time (the longer names, such as
    /// `CDN-Cache-Control`, through its slowest path). Header lookups on a hot path compare one
    /// name against every field.
    @inlinable
    public func isSame(as other: HTTPField.Name) -> Bool {
        self.canonicalName.utf8.count == other.canonicalName.utf8.count && self.canonicalName == other.canonicalName
    }
}

extension HTTPFields {
    /// Whether a field named `name` is present: `contains(_:)` with ``HTTPField/Name/isSame(as:)``
    /// as the comparison, for hot paths.
    @inlinable
    public func has(_ name: HTTPField.Name) -> Bool {
        self.contains { $0.name.isSame(as: name) }
    }

    /// The elements of a comma-separated list field, across all its field lines, trimmed of
    /// whitespace, empty elements dropped. Commas inside quoted strings do not split.
    ///
    /// ```swift
    /// fields.listElements(.vary)  // ["Accept-Encoding", "Origin"]
    /// ```
    public func listElements(_ name: HTTPField.Name) -> [Substring] {
        var elements: [Substring] = []
        for field in self where field.name.isSame(as: name) {
            ListParser.forEachElement(field.value[...]) { elements.append($0) }
        }
        return elements
    }

    /// Calls `body` with each element of the comma-separated list field `name`, across all its
    /// field lines, trimmed, empty elements skipped, without allocating: the hot-path form of
    /// ``listElements(_:)``.
    public func forEachListElement(_ name: HTTPField.Name, _ body: (Substring) -> Void) {
        for field in self where field.name.isSame(as: name) {
            ListParser.forEachElement(field.value[...], body)
        }
    }

    /// The value of the field `name` as the `subscript(_:)` getter reads it: one line as it
    /// is, several lines joined with `", "`, `nil` when absent. Not for `Cookie`, whose lines
    /// join with `"; "`.
    ///
    /// The hot-path form of the getter, which joins through a lazy sequence not specialised
    /// outside swift-http-types: a generic metadata lookup and a new string on every read that
    /// finds the field (about 3 µs of a cache miss in perf). This one pass returns the line's
    /// own string.
    ///
    /// ```swift
    /// fields.combinedValue(.eTag)  // "\"v1\""
    /// ```
    public func combinedValue(_ name: HTTPField.Name) -> String? {
        var value: String?
        for field in self where field.name.isSame(as: name) {
            if let earlier = value { value = earlier + ", " + field.value } else { value = field.value }
        }
        return value
    }

    /// How many field lines named `name` there are.
    public func lineCount(_ name: HTTPField.Name) -> Int {
        var count = 0
        for field in self where field.name.isSame(as: name) { count += 1 }
        return count
    }

    /// Whether the list field `name` has an element equal to `element`, ignoring case (the part
    /// before any `=` or `;` is compared, so `max-age` finds `max-age=60`).
    public func containsListElement(_ element: String, in name: HTTPField.Name) -> Bool {
        for field in self where field.name.isSame(as: name) {
            var found = false
            ListParser.forEachElement(field.value[...]) { candidate in
                if !found, ListParser.elementName(candidate).equalsIgnoringASCIICase(element) { found = true }
            }
            if found { return true }
        }
        return false
    }

    /// Adds `element` to the comma-separated list field `name`, keeping every element already
    /// there: headers are merged, never overwritten.
    ///
    /// Nothing is added when an element with the same name is present. For `Vary`, `*` absorbs
    /// every other element.
    ///
    /// ```swift
    /// response.headerFields.appendListElement("Origin", to: .vary)
    /// ```
    public mutating func appendListElement(_ element: String, to name: HTTPField.Name) {
        guard let index = self.lastIndex(where: { $0.name.isSame(as: name) }) else {
            self.append(HTTPField(name: name, value: element))
            return
        }
        if name == .vary {
            if self.containsListElement("*", in: .vary) { return }
            if element == "*" {
                self[fields: .vary] = [HTTPField(name: .vary, value: "*")]
                return
            }
        }
        if self.containsListElement(String(ListParser.elementName(element[...])), in: name) { return }
        let existing = self[index].value
        let trimmed = existing.utf8.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        var field = self[index]
        field.value = trimmed ? element : existing + ", " + element
        self[index] = field
    }

    /// Removes every element named `element` (ignoring case) from the list field `name`, and the
    /// field itself when it becomes empty.
    public mutating func removeListElement(_ element: String, from name: HTTPField.Name) {
        guard self.contains(name) else { return }
        let kept = self.listElements(name).filter { !ListParser.elementName($0).equalsIgnoringASCIICase(element) }
        self[name] = kept.isEmpty ? nil : kept.joined(separator: ", ")
    }
}

/// Splits list-based field values (RFC 9110 §5.6.1).
enum ListParser {
    /// Calls `body` with each non-empty, trimmed element of `value`; commas inside quoted
    /// strings do not split. Walks the UTF-8 view: nothing is allocated.
    static func forEachElement(_ value: Substring, _ body: (Substring) -> Void) {
        let utf8 = value.utf8
        var start = utf8.startIndex
        var index = utf8.startIndex
        var inQuotes = false
        var escaped = false
        while index < utf8.endIndex {
            let byte = utf8[index]
            if escaped {
                escaped = false
            } else if inQuotes {
                if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inQuotes = false }
            } else if byte == UInt8(ascii: "\"") {
                inQuotes = true
            } else if byte == UInt8(ascii: ",") {
                let element = value[start..<index].trimmingOWS()
                if !element.isEmpty { body(element) }
                start = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        let element = value[start..<utf8.endIndex].trimmingOWS()
        if !element.isEmpty { body(element) }
    }

    /// The name part of a list element: before any `=` or `;`, trimmed.
    static func elementName(_ element: Substring) -> Substring {
        let end = element.firstIndex(where: { $0 == "=" || $0 == ";" }) ?? element.endIndex
        return element[..<end].trimmingOWS()
    }
}

extension Substring {
    /// Trims optional whitespace (space and tab, RFC 9110 §5.6.3) from both ends.
    public func trimmingOWS() -> Substring {
        // On the UTF-8 view: spaces and tabs are ASCII, and bytes need no grapheme breaking.
        let utf8 = self.utf8
        var start = utf8.startIndex
        var end = utf8.endIndex
        while start < end, utf8[start] == 0x20 || utf8[start] == 0x09 { start = utf8.index(after: start) }
        while start < end {
            let last = utf8.index(before: end)
            guard utf8[last] == 0x20 || utf8[last] == 0x09 else { break }
            end = last
        }
        return self[start..<end]
    }
}

extension StringProtocol {
    /// Compares with `other` ignoring ASCII case, without allocating.
    @inlinable
    public func equalsIgnoringASCIICase(_ other: some StringProtocol) -> Bool {
        let lhs = self.utf8
        let rhs = other.utf8
        guard lhs.count == rhs.count else { return false }
        for (a, b) in zip(lhs, rhs) {
            let la = a >= 65 && a <= 90 ? a | 0x20 : a
            let lb = b >= 65 && b <= 90 ? b | 0x20 : b
            if la != lb { return false }
        }
        return true
    }
}
