/// Validates UTF-8 incrementally, so a text message split across frames fails at the first
/// frame that holds an invalid sequence (RFC 6455 §8.1), not when the message ends.
struct UTF8Validator {
    /// Continuation bytes still expected by the sequence in progress.
    private var needed: UInt8 = 0
    /// The range the next continuation byte must be in (narrower after E0, ED, F0 and F4, which
    /// rule out overlong forms, surrogates and code points above U+10FFFF).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    /// Whether the bytes so far end on a character boundary.
    var isComplete: Bool { self.needed == 0 }

    /// Feeds `bytes`; `false` at the first byte that cannot be part of valid UTF-8.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            if self.needed == 0 {
                // ASCII runs eight bytes at a time.
                while index + 8 <= count,
                    bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                {
                    index += 8
                }
                guard index < count else { return true }
                let byte = bytes[index]
                index += 1
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: (self.needed, self.lower, self.upper) = (1, 0x80, 0xBF)
                case 0xE0: (self.needed, self.lower, self.upper) = (2, 0xA0, 0xBF)
                case 0xE1...0xEC, 0xEE...0xEF: (self.needed, self.lower, self.upper) = (2, 0x80, 0xBF)
                case 0xED: (self.needed, self.lower, self.upper) = (2, 0x80, 0x9F)
                case 0xF0: (self.needed, self.lower, self.upper) = (3, 0x90, 0xBF)
                case 0xF1...0xF3: (self.needed, self.lower, self.upper) = (3, 0x80, 0xBF)
                case 0xF4: (self.needed, self.lower, self.upper) = (3, 0x80, 0x8F)
                default: return false
                }
            } else {
                let byte = bytes[index]
                index += 1
                guard byte >= self.lower && byte <= self.upper else { return false }
                (self.lower, self.upper) = (0x80, 0xBF)
                self.needed -= 1
            }
        }
        return true
    }

    /// Whether `bytes` are, on their own, complete valid UTF-8.
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.feed(bytes) && validator.isComplete
    }
}
