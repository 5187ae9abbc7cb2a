import Benchmark
import NIOCore
import StrataRedis

/// Mallocs and time of the Redis reply parser: a 64-byte bulk string, and a 100-element array
/// of them (an `MGET` of 100 keys), each parsed from a buffer that already holds it.
func respParserBenchmarks() {
    let value = String(repeating: "v", count: 64)
    let bulk = ByteBuffer(string: "$64\r\n\(value)\r\n")
    let array = ByteBuffer(string: "*100\r\n" + String(repeating: "$64\r\n\(value)\r\n", count: 100))

    Benchmark("RESP: parse a 64-byte bulk string") { benchmark in
        for _ in benchmark.scaledIterations {
            var parser = RESPParser()
            var buffer = bulk
            blackHole(try parser.next(from: &buffer))
        }
    }

    Benchmark("RESP: parse a 100-element array") { benchmark in
        for _ in benchmark.scaledIterations {
            var parser = RESPParser()
            var buffer = array
            blackHole(try parser.next(from: &buffer))
        }
    }
}
