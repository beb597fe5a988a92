import FuzzSupport
import NIOCore
import POP3Core

/// The POP3 response parser, told what to expect as a client would (the input's choice bytes pick
/// each next expectation): never a trap, the same events (body bytes joined) whole or in pieces.
func parse(_ chunks: [ByteBuffer], expecting plan: [POP3ResponseParser.Expectation]) -> (events: [POP3Event], failed: Bool) {
    var parser = POP3ResponseParser()
    var k = 0
    var current = plan[0]
    parser.expect(current)
    var buffer = ByteBuffer()
    var events: [POP3Event] = []
    for var chunk in chunks {
        buffer.writeBuffer(&chunk)
        do {
            while let e = try parser.next(&buffer) {
                if case var .bodyBytes(more) = e, case var .bodyBytes(b)? = events.last {
                    b.writeBuffer(&more)
                    events[events.count - 1] = .bodyBytes(b)
                } else {
                    events.append(e)
                }
                let ended: Bool
                switch (current, e) {
                case (_, .err), (.single, .ok), (.sasl, .ok), (.sasl, .challenge), (.lines, .end), (.body, .end): ended = true
                default: ended = false
                }
                if ended {
                    k += 1
                    current = plan[k % plan.count]
                    parser.expect(current)
                }
            }
        } catch {
            return (events, true)
        }
    }
    return (events, false)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let kinds: [POP3ResponseParser.Expectation] = [.single, .lines, .body, .sasl]
    let plan = input.choices.isEmpty ? [.single] : input.choices.map { kinds[Int($0) % kinds.count] }
    let whole = parse(input.whole, expecting: plan), pieces = parse(input.pieces, expecting: plan)
    if whole.failed != pieces.failed || whole.events != pieces.events {
        violated("POP3: whole \(whole.failed ? "failed" : "read") \(whole.events.count) events, in pieces \(pieces.failed ? "failed" : "read") \(pieces.events.count)")
    }
    return 0
}
