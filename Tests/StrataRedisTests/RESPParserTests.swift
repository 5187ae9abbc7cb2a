import NIOCore
import StrataRedis
import Testing

/// The reply parser, fed valid replies whole and byte by byte, and malformed or oversized ones.
@Suite struct RESPParserTests {
    static let valid: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString(ByteBuffer(string: "OK"))),
        ("-ERR wrong\r\n", .error(ByteBuffer(string: "ERR wrong"))),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(.max)),
        ("$5\r\nhe\r\no\r\n", .bulkString(ByteBuffer(string: "he\r\no"))),
        ("$0\r\n\r\n", .bulkString(ByteBuffer())),
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("_\r\n", .null),
        ("#t\r\n", .boolean(true)),
        (",3.5\r\n", .double(3.5)),
        (",-inf\r\n", .double(-.infinity)),
        ("(12345678901234567890\r\n", .bigNumber(ByteBuffer(string: "12345678901234567890"))),
        ("=8\r\ntxt:abcd\r\n", .verbatimString(ByteBuffer(string: "abcd"))),
        ("!3\r\nbad\r\n", .error(ByteBuffer(string: "bad"))),
        ("*0\r\n", .array([])),
        (
            "*3\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n$-1\r\n",
            .array([
                .integer(1), .array([.simpleString(ByteBuffer(string: "a")), .bulkString(ByteBuffer(string: "b"))]),
                .null,
            ])
        ),
        (
            "%2\r\n+k\r\n:1\r\n+m\r\n~1\r\n#f\r\n",
            .map([
                RESPMapEntry(key: .simpleString(ByteBuffer(string: "k")), value: .integer(1)),
                RESPMapEntry(key: .simpleString(ByteBuffer(string: "m")), value: .set([.boolean(false)])),
            ])
        ),
        (
            ">2\r\n+message\r\n$2\r\nhi\r\n",
            .push([.simpleString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "hi"))])
        ),
        // An attribute is read and dropped: the value after it is the reply.
        ("|1\r\n+ttl\r\n:3\r\n:7\r\n", .integer(7)),
    ]

    @Test func everyValidReplyParsesWholeAndByteByByte() throws {
        for (text, expected) in Self.valid {
            var parser = RESPParser()
            var whole = ByteBuffer(string: text)
            #expect(try parser.next(from: &whole) == expected, "\(text.debugDescription)")
            #expect(whole.readableBytes == 0)

            // Every prefix: nothing until the last byte, then the same value.
            var byteByByte = RESPParser()
            var buffer = ByteBuffer()
            var results: [RESPValue] = []
            for byte in text.utf8 {
                buffer.writeInteger(byte)
                if let value = try byteByByte.next(from: &buffer) { results.append(value) }
            }
            #expect(results == [expected], "\(text.debugDescription) byte by byte")
        }
    }

    /// A reply at the top of the buffer may take the one-pass path for `+`, `:` and `$`; inside
    /// an array it always takes the general one. Both must read every input alike: the same
    /// value, or the same refusal.
    @Test(arguments: [
        "+OK\r\n", "+\r\n", "+a\rb\r\n", ":0\r\n", ":-0\r\n", ":+7\r\n", ":\r\n", ":1a\r\n",
        ":9223372036854775808\r\n", "$0\r\n\r\n", "$05\r\nhello\r\n", "$+2\r\nhi\r\n", "$-0\r\n\r\n",
        "$-1\r\n", "$-2\r\n", "$2\r\nhix\r\n", "$2\r\nhi\rx", "$12345678901\r\nx\r\n", "$\r\n",
        "$1 \r\nx\r\n", "+OK\n", "+OK\rX", ":12\r",
    ])
    func theOnePassPathAndTheGeneralPathAgree(text: String) throws {
        func parse(_ bytes: String) -> Result<RESPValue?, RESPParsingError> {
            var parser = RESPParser()
            var buffer = ByteBuffer(string: bytes)
            return Result { () throws(RESPParsingError) -> RESPValue? in try parser.next(from: &buffer) }
        }
        let top = parse(text)
        let nested = parse("*1\r\n" + text)
        switch (top, nested) {
        case (.success(let value), .success(let array)):
            #expect(array == value.map { .array([$0]) }, "\(text.debugDescription)")
        case (.failure(let error), .failure(let arrayError)):
            #expect(error.code == arrayError.code, "\(text.debugDescription)")
        default:
            Issue.record("\(text.debugDescription): \(top) at the top, \(nested) inside an array")
        }
    }

    @Test func repliesBackToBackComeOutInOrder() throws {
        var parser = RESPParser()
        var buffer = ByteBuffer(string: Self.valid.map(\.0).joined())
        var results: [RESPValue] = []
        while let value = try parser.next(from: &buffer) { results.append(value) }
        #expect(results == Self.valid.map(\.1))
    }

    @Test func aLargeArrayInManyReadsIsBuiltOnce() throws {
        var text = "*10000\r\n"
        for index in 0..<10000 { text += ":\(index)\r\n" }
        var parser = RESPParser()
        var buffer = ByteBuffer()
        var value: RESPValue?
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + 1000)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            if let parsed = try parser.next(from: &buffer) { value = parsed }
        }
        #expect(value?.elements?.count == 10000)
        #expect(value?.elements?.last == .integer(9999))
    }

    @Test(arguments: [
        ("?what\r\n", RESPParsingError.Code.unknownType),
        (":12a\r\n", .invalidNumber),
        (":\r\n", .invalidNumber),
        (":99999999999999999999\r\n", .invalidNumber),
        ("$-2\r\n", .invalidNumber),
        ("$3\r\nabcd\r\n", .missingCRLF),
        ("+OK\rX", .missingCRLF),
        ("#x\r\n", .invalidNumber),
        (",1.2.3.x\r\n", .invalidNumber),
        ("(12a\r\n", .invalidNumber),
        ("*-5\r\n", .invalidNumber),
        ("_x\r\n", .invalidNumber),
        ("=2\r\nab\r\n", .invalidNumber),
    ])
    func malformedRepliesFailWithATypedError(_ text: String, _ code: RESPParsingError.Code) {
        var parser = RESPParser()
        var buffer = ByteBuffer(string: text)
        #expect(throws: RESPParsingError.self, "\(text.debugDescription)") { _ = try parser.next(from: &buffer) }
        var again = RESPParser()
        var buffer2 = ByteBuffer(string: text)
        do {
            _ = try again.next(from: &buffer2)
        } catch {
            #expect(error.code == code, "\(text.debugDescription): \(error)")
        }
    }

    @Test func oversizedRepliesFailOnTheirHeaderWithoutWaitingForTheBytes() {
        var limits = RESPParserLimits()
        limits.maxBulkLength = 1024
        limits.maxAggregateLength = 100
        limits.maxDepth = 3
        limits.maxLineLength = 64
        let cases: [(String, RESPParsingError.Code)] = [
            ("$1025\r\n", .bulkTooLarge),
            ("$600000000\r\n", .bulkTooLarge),
            ("*101\r\n", .aggregateTooLarge),
            ("%101\r\n", .aggregateTooLarge),
            ("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", .nestedTooDeeply),
            ("+" + String(repeating: "a", count: 100), .lineTooLong),
            ("+" + String(repeating: "a", count: 65) + "\r\n", .lineTooLong),
        ]
        for (text, code) in cases {
            var parser = RESPParser(limits: limits)
            var buffer = ByteBuffer(string: text)
            do {
                let value = try parser.next(from: &buffer)
                Issue.record("\(text.prefix(20).debugDescription) parsed as \(String(describing: value))")
            } catch {
                #expect(error.code == code, "\(text.prefix(20).debugDescription)")
            }
        }
        // The default bulk limit is Redis' own 512 MiB.
        var parser = RESPParser()
        var buffer = ByteBuffer(string: "$536870913\r\n")
        #expect(throws: RESPParsingError.self) { _ = try parser.next(from: &buffer) }
    }

    @Test func randomGarbageNeverCrashesAndNeverYieldsAValueFromNothing() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("+-:$*%~_#,(=!|>\r\n0123456789abc-".utf8)
        for _ in 0..<5000 {
            var parser = RESPParser()
            var buffer = ByteBuffer(
                bytes: (0..<Int.random(in: 1...40, using: &generator)).map { _ in
                    alphabet.randomElement(using: &generator) ?? 0
                })
            let before = buffer.readableBytes
            do {
                while let _ = try parser.next(from: &buffer) {}
            } catch {}
            #expect(buffer.readableBytes <= before)
        }
    }

    @Test func theClusterSlotOfTheSpecificationsVectors() {
        // CRC16-XMODEM check value and the documented vectors.
        #expect(HashSlot(key: "123456789").rawValue == 0x31C3 & 0x3FFF)
        #expect(HashSlot(key: [0xd5, 0xa6] as [UInt8]).rawValue == 16382)
        #expect(HashSlot(key: "foo").rawValue == 12182)
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "{user1000}.followers"))
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "user1000"))
        // An empty tag hashes the whole key; only the first {...} counts.
        #expect(HashSlot(key: "foo{}{bar}") == HashSlot(key: Array("foo{}{bar}".utf8)))
        #expect(HashSlot(key: "foo{{bar}}zap") == HashSlot(key: "{bar"))
        #expect(HashSlot(key: "foo{bar}{zap}") == HashSlot(key: "bar"))
    }
}
