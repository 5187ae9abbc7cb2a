import HTTPTypes

extension HTTPFields {
    /// The value of the field `name`, as `subscript(_:)` reads it: one line as it is, several
    /// lines joined with `", "`, `nil` when absent (never used for `Cookie`, which joins with
    /// `"; "`).
    ///
    /// The subscript joins through a lazy sequence that is not specialised outside its module:
    /// a generic metadata lookup and a new string on every read, measured at about 3 µs of a
    /// cache miss. This one pass returns the line's own string.
    func combinedValue(_ name: HTTPField.Name) -> String? {
        var value: String?
        for field in self where field.name == name {
            if let earlier = value { value = earlier + ", " + field.value } else { value = field.value }
        }
        return value
    }

    /// How many lines the field `name` has.
    func lineCount(_ name: HTTPField.Name) -> Int {
        var count = 0
        for field in self where field.name == name { count += 1 }
        return count
    }
}
