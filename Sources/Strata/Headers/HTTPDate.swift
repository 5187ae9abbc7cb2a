/// Formats and parses HTTP dates (RFC 9110 §5.6.7).
public enum HTTPDate {
    private static let dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let monthNames = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]

    /// Each month's three letters as one number, for reading them without allocating.
    private static let monthCodes: [UInt32] = Self.monthNames.map { name in
        name.utf8.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Formats `secondsSince1970` as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func format(secondsSince1970: Int64) -> String {
        let days = Self.floorDivide(secondsSince1970, 86_400)
        let secondOfDay = Int(secondsSince1970 - days * 86_400)
        let (year, month, day) = Self.civil(fromDays: days)
        let weekday = Int((days % 7 + 11) % 7)  // 1970-01-01 was a Thursday
        var text = Self.dayNames[weekday] + ", "
        text += Self.twoDigits(day) + " " + Self.monthNames[month - 1] + " " + String(year) + " "
        text += Self.twoDigits(secondOfDay / 3600) + ":" + Self.twoDigits(secondOfDay / 60 % 60) + ":"
        text += Self.twoDigits(secondOfDay % 60) + " GMT"
        return text
    }

    /// Parses an HTTP date in any of the three forms a recipient must accept (IMF-fixdate,
    /// RFC 850, asctime); `nil` when `text` is none of them.
    public static func parse(_ text: some StringProtocol) -> Int64? {
        // The fixed form is read from the string's own bytes: one call through the generic
        // parameter, then concrete code (walking a generic UTF-8 view byte by byte cost ~1 us).
        if let fixed = text.utf8.withContiguousStorageIfAvailable({ Self.parseIMFFixdate($0) }) {
            if let fixed { return fixed }
        } else if text.utf8.count == 29, let fixed = Array(text.utf8).withUnsafeBufferPointer(Self.parseIMFFixdate) {
            return fixed
        }
        let parts = String(text).split(whereSeparator: { (c: Character) in c == " " || c == "," }).map(String.init)
        var day: Int?
        var month: Int?
        var year: Int?
        var time: (Int, Int, Int)?
        switch parts.count {
        case 6 where parts[5] == "GMT":  // Sun, 06 Nov 1994 08:49:37 GMT
            day = Int(parts[1])
            month = Self.monthNames.firstIndex(of: parts[2]).map { $0 + 1 }
            year = parts[3].count == 4 ? Int(parts[3]) : nil
            time = Self.parseTime(parts[4])
        case 4 where parts[3] == "GMT":  // Sunday, 06-Nov-94 08:49:37 GMT
            let dateParts = parts[1].split(separator: "-").map(String.init)
            guard dateParts.count == 3, dateParts[2].count == 2, let shortYear = Int(dateParts[2]) else { return nil }
            day = Int(dateParts[0])
            month = Self.monthNames.firstIndex(of: dateParts[1]).map { $0 + 1 }
            year = shortYear < 70 ? 2000 + shortYear : 1900 + shortYear
            time = Self.parseTime(parts[2])
        case 5:  // Sun Nov  6 08:49:37 1994
            month = Self.monthNames.firstIndex(of: parts[1]).map { $0 + 1 }
            day = Int(parts[2])
            time = Self.parseTime(parts[3])
            year = parts[4].count == 4 ? Int(parts[4]) : nil
        default:
            return nil
        }
        guard let day, let month, let year, let time, (1...31).contains(day), time.0 < 24, time.1 < 60, time.2 < 61
        else { return nil }
        let days = Self.days(fromCivil: year, month, day)
        return days * 86_400 + Int64(time.0 * 3600 + time.1 * 60 + min(time.2, 59))
    }

    /// The form senders must use, `Sun, 06 Nov 1994 08:49:37 GMT`, read from its bytes without
    /// allocating; `nil` sends anything else to the general parser.
    private static func parseIMFFixdate(_ raw: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard raw.count == 29 else { return nil }
        func digit(_ index: Int) -> Int? {
            let byte = raw[index]
            return byte >= 0x30 && byte <= 0x39 ? Int(byte - 0x30) : nil
        }
        func number(_ index: Int, _ count: Int) -> Int? {
            var value = 0
            for offset in 0..<count {
                guard let next = digit(index + offset) else { return nil }
                value = value * 10 + next
            }
            return value
        }
        guard raw[3] == UInt8(ascii: ","), raw[4] == 0x20, raw[7] == 0x20, raw[11] == 0x20, raw[16] == 0x20,
            raw[19] == UInt8(ascii: ":"), raw[22] == UInt8(ascii: ":"), raw[25] == 0x20,
            raw[26] == UInt8(ascii: "G"), raw[27] == UInt8(ascii: "M"), raw[28] == UInt8(ascii: "T"),
            let day = number(5, 2), let year = number(12, 4), let hour = number(17, 2),
            let minute = number(20, 2), let second = number(23, 2),
            (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        let code = UInt32(raw[8]) << 16 | UInt32(raw[9]) << 8 | UInt32(raw[10])
        guard let month = Self.monthCodes.firstIndex(of: code) else { return nil }
        let days = Self.days(fromCivil: year, month + 1, day)
        return days * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59))
    }

    private static func parseTime(_ text: String) -> (Int, Int, Int)? {
        let parts = text.split(separator: ":")
        guard parts.count == 3, parts.allSatisfy({ $0.count == 2 }),
            let hour = Int(parts[0]), let minute = Int(parts[1]), let second = Int(parts[2])
        else { return nil }
        return (hour, minute, second)
    }

    private static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0" + String(value) : String(value)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : (a - b + 1) / b
    }

    // Howard Hinnant's days-from-civil algorithms, proleptic Gregorian calendar.
    static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = Self.floorDivide(y, 400)
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = Self.floorDivide(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
