import FuzzSupport
import MailMessage
import NIOCore

/// The header scanner on any message: never a trap, the same fields and Message-ID whether the
/// message comes whole or in pieces.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    var whole = HeaderScanner(), pieces = HeaderScanner()
    for b in input.whole { whole.consume(b) }
    for b in input.pieces { pieces.consume(b) }
    let a = whole.fields.map { "\($0.name):\($0.value)" }, b = pieces.fields.map { "\($0.name):\($0.value)" }
    if a != b { violated("headers: whole read \(a.count) fields, pieces \(b.count)") }
    if whole.messageID != pieces.messageID { violated("headers: Message-ID \(String(describing: whole.messageID)) vs \(String(describing: pieces.messageID))") }
    return 0
}
