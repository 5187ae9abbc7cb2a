import NIOCore
import StrataRedis

/// libFuzzer entry point: the reply parser on arbitrary bytes.
///
/// Every input is parsed twice, whole and in pieces of a size the first byte picks. Neither may
/// crash, and both must give the same replies and the same error: a parser that answers
/// differently depending on how the bytes arrived would desynchronise a connection. The limits
/// are small so that every bound is reached by short inputs.
@_cdecl("LLVMFuzzerTestOneInput")
public func respFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let whole = parse(bytes, piece: max(bytes.count, 1))
    let pieces = parse(bytes, piece: Int(first % 7) + 1)
    // Compared as text: a NaN double equals itself there, and nowhere else.
    if "\(whole)" != "\(pieces)" {
        fatalError("whole: \(whole), in pieces of \(Int(first % 7) + 1): \(pieces)")
    }
    return 0
}

/// libFuzzer's driver, run from this module's entry point: SwiftPM links an executable's
/// `main` to `RESPFuzzer_main`, so libFuzzer's own `main` is not the one that runs.
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("RESPFuzzer_main")
func respFuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { data, size in respFuzzerTestOneInput(data, size) }
}

private func parse(_ bytes: [UInt8], piece: Int) -> (values: [RESPValue], error: RESPParsingError.Code?) {
    var limits = RESPParserLimits()
    limits.maxBulkLength = 4096
    limits.maxAggregateLength = 256
    limits.maxDepth = 8
    limits.maxLineLength = 512
    var parser = RESPParser(limits: limits)
    var buffer = ByteBuffer()
    var values: [RESPValue] = []
    var offset = 0
    while offset < bytes.count {
        let end = min(offset + piece, bytes.count)
        buffer.writeBytes(bytes[offset..<end])
        offset = end
        do {
            while let value = try parser.next(from: &buffer) { values.append(value) }
        } catch {
            return (values, error.code)
        }
    }
    return (values, nil)
}
