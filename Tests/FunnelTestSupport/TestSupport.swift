import Foundation
import FunnelModel

/// A private temporary directory, removed when the value is released.
public final class TemporaryDirectory {
    public let path: String

    public init() throws {
        var template = Array("\(NSTemporaryDirectory())/mailfunnel-test-XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw FunnelError.io(path: NSTemporaryDirectory(), operation: "mkdtemp", errno: errno)
        }
        path = String(cString: p)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    public func write(_ name: String, _ bytes: [UInt8]) throws {
        let full = file(name)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: full, contents: Data(bytes)) else {
            throw FunnelError.io(path: full, operation: "write", errno: errno)
        }
    }
}

/// Every regular file's content under a Maildir folder's new/ and cur/, as a sorted list (a multiset).
public func maildirContents(_ root: String, folder: String = "") throws -> [[UInt8]] {
    let dir = folder.isEmpty ? root : "\(root)/.\(folder)"
    var out: [[UInt8]] = []
    for sub in ["new", "cur"] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(sub)")) ?? []
        for name in names {
            out.append(Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(sub)/\(name)"))))
        }
    }
    return out.sorted { $0.lexicographicallyPrecedes($1) }
}

/// Makes a Maildir with the given messages; names are `<i>.test.host` with optional flags.
public func makeMaildir(_ root: String, messages: [(bytes: [UInt8], info: String?)]) throws {
    for sub in ["tmp", "new", "cur"] {
        try FileManager.default.createDirectory(atPath: "\(root)/\(sub)", withIntermediateDirectories: true)
    }
    for (i, m) in messages.enumerated() {
        let name = m.info.map { "cur/\(1_700_000_000 + i).M\(i)P1.testhost:2,\($0)" } ?? "new/\(1_700_000_000 + i).M\(i)P1.testhost"
        guard FileManager.default.createFile(atPath: "\(root)/\(name)", contents: Data(m.bytes)) else {
            throw FunnelError.io(path: name, operation: "write", errno: errno)
        }
    }
}

/// Varied test messages: LF and CRLF, 8-bit, no Message-ID, identical twins, a large one.
public func sampleMessages(count: Int, seed: UInt64 = 1) -> [[UInt8]] {
    var rng = SplitMix(seed: seed)
    var out: [[UInt8]] = []
    for i in 0..<count {
        let eol = i % 5 == 4 ? "\r\n" : "\n"
        var text = "From: sender\(i)@example.org\(eol)To: me@example.org\(eol)Subject: test \(i) é\(eol)"
        if i % 6 != 2 { text += "Message-ID: <m\(i)@test>\(eol)" }
        text += eol
        let lines = Int(rng.next() % 40) + 1
        for l in 0..<lines { text += "line \(l) of message \(i): \(rng.next())\(eol)" }
        if i % 9 == 8 { text += "From the desk of someone\(eol)" }
        out.append(Array(text.utf8))
    }
    if count >= 4 { out[3] = out[1] }  // byte-identical twins: both must arrive
    return out
}

/// Writes messages as an mboxrd file.
public func writeMbox(_ path: String, _ messages: [[UInt8]]) throws {
    var out: [UInt8] = []
    for (i, m) in messages.enumerated() {
        out += Array("From sender\(i)@example.org Sat Jan  3 01:05:\(String(format: "%02d", i % 60)) 2004\n".utf8)
        var lineStart = true
        var idx = 0
        while idx < m.count {
            if lineStart {
                var j = idx
                while j < m.count, m[j] == UInt8(ascii: ">") { j += 1 }
                if m[j...].starts(with: Array("From ".utf8)) { out.append(UInt8(ascii: ">")) }
            }
            out.append(m[idx])
            lineStart = m[idx] == UInt8(ascii: "\n")
            idx += 1
        }
        if m.last != UInt8(ascii: "\n") { out.append(UInt8(ascii: "\n")) }
        out.append(UInt8(ascii: "\n"))
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(out)) else {
        throw FunnelError.io(path: path, operation: "write", errno: errno)
    }
}

public struct SplitMix {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Waits, a bounded while, until `condition` holds; throws when it never does.
public func waitUntil(_ condition: () -> Bool) async throws {
    // Generous: tests that wait on child processes can hold the cooperative threads of a loaded
    // two-core machine for seconds.
    let deadline = ContinuousClock.now + .seconds(30)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut() }
        try await Task.sleep(for: .milliseconds(1))
    }
}

public struct TimedOut: Error {}
