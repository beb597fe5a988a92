import NIOCore
import SMTPCore
import Testing

func replies(_ wire: String, chunk: Int = .max) throws -> [SMTPReply] {
    let parser = SMTPReplyParser()
    var buffer = ByteBuffer()
    let bytes = Array(wire.utf8)
    var out: [SMTPReply] = []
    var i = 0
    repeat {
        let end = min(bytes.count, i + chunk)
        buffer.writeBytes(bytes[i..<end])
        i = end
        while let r = try parser.next(&buffer) { out.append(r) }
    } while i < bytes.count
    return out
}

struct SMTPCoreTests {
    static let ehlo = "250-localhost\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"

    @Test(arguments: [1, 2, 7, 1000])
    func parsesMultilineReplies(chunk: Int) throws {
        let r = try replies("220 mail.example.org ESMTP Postfix\r\n" + Self.ehlo + "250 2.1.0 Ok\r\n550 5.7.1 <x@y>: Relay access denied\r\n421 4.4.2 timeout\r\n", chunk: chunk)
        #expect(r.count == 5)
        #expect(r[0] == SMTPReply(code: 220, lines: ["mail.example.org ESMTP Postfix"]))
        #expect(r[1].lines == ["localhost", "PIPELINING", "SIZE 52428800", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "CHUNKING"])
        #expect(r[2] == SMTPReply(code: 250, enhanced: "2.1.0", lines: ["Ok"]))
        #expect(r[3].isPermanent && r[3].enhanced == "5.7.1" && r[3].text == "<x@y>: Relay access denied")
        #expect(r[4].isTransient)
    }

    /// Real servers put more than one space before the enhanced code; the text is what follows it.
    @Test(arguments: [
        ("250  2.0.0 OK queued\r\n", "2.0.0", "OK queued"),
        ("250 2.0.0  OK queued\r\n", "2.0.0", "OK queued"),
        ("550   5.7.1 Relay denied\r\n", "5.7.1", "Relay denied"),
        ("250-2.1.0 Sender ok\r\n250 more\r\n", "2.1.0", "Sender ok more"),
        ("452 4.5.3 Too many recipients\r\n", "4.5.3", "Too many recipients"),
        ("250 2.0.0\r\n", "2.0.0", ""),
    ] as [(String, String?, String)])
    func enhancedCodesAfterAnyNumberOfSpaces(_ wire: String, code: String?, text: String) throws {
        let r = try replies(wire)
        #expect(r.count == 1)
        #expect(r[0].enhanced == code)
        #expect(r[0].text == text)
    }

    /// An enhanced code is one only when its class is the reply's: `210 4.4.2` does not say 4xx.
    @Test(arguments: [
        ("210 4.4.2 text\r\n", "4.4.2 text"),
        ("450 2.0.0 text\r\n", "2.0.0 text"),
        ("550 4.7.1 text\r\n", "4.7.1 text"),
        ("250 3.0.0 text\r\n", "3.0.0 text"),
        ("250 2.0000.0 text\r\n", "2.0000.0 text"),
        ("250 2..0 text\r\n", "2..0 text"),
        ("250 22.0.0 text\r\n", "22.0.0 text"),
        ("250 2.0.0.1 text\r\n", "2.0.0.1 text"),
        ("250 2.a.0 text\r\n", "2.a.0 text"),
    ] as [(String, String)])
    func notEveryDottedNumberIsAnEnhancedCode(_ wire: String, text: String) throws {
        let r = try replies(wire)
        #expect(r[0].enhanced == nil)
        #expect(r[0].text == text)
    }

    @Test func needMoreBytesConsumesNothing() throws {
        let parser = SMTPReplyParser()
        var b = ByteBuffer(string: "250-first\r\n250 sec")
        #expect(try parser.next(&b) == nil)
        #expect(b.readableBytes == 18)
    }

    @Test(arguments: ["HELLO\r\n", "250-a\r\n251 b\r\n", "25\r\n", "250_x\r\n", "999 nope\r\n"])
    func refusesMalformedReplies(_ wire: String) {
        #expect(throws: SMTPReplyParser.ParseError.self) { try replies(wire) }
    }

    @Test func limits() {
        #expect(throws: SMTPReplyParser.ParseError.self) { try replies("250 " + String(repeating: "x", count: 9000) + "\r\n") }
        #expect(throws: SMTPReplyParser.ParseError.self) { try replies(String(repeating: "250-x\r\n", count: 300) + "250 y\r\n") }
    }

    @Test(arguments: [1, 3, 100])
    func dotStuffsAcrossChunks(chunk: Int) {
        let message = Array("Subject: t\r\n\r\n.starts with a dot\r\nmiddle . dot\r\n..two\r\n.".utf8)
        var stuffer = DotStuffer()
        var out: [UInt8] = []
        var i = 0
        while i < message.count {
            let end = min(message.count, i + chunk)
            out += stuffer.stuff(ByteBuffer(bytes: message[i..<end])).readableBytesView
            i = end
        }
        out += stuffer.terminator().readableBytesView
        #expect(String(decoding: out, as: UTF8.self) == "Subject: t\r\n\r\n..starts with a dot\r\nmiddle . dot\r\n...two\r\n..\r\n.\r\n")
    }
}
