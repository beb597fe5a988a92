import FunnelModel
import Crypto
import Foundation
import MailMessage
#if canImport(Glibc)
import Glibc
#endif

/// A Maildir++ tree: INBOX at the root, folder `A/B` (or `A.B`) in `.A.B`, each with tmp/, new/, cur/.
/// - SeeAlso: https://cr.yp.to/proto/maildir.html, Courier's Maildir++
struct Maildir {
    let root: String

    /// The directory holding a mailbox's tmp/new/cur.
    func directory(of mailbox: String) -> String {
        if mailbox.isEmpty || mailbox.uppercased() == "INBOX" { return root }
        let dotted = mailbox.replacingOccurrences(of: "/", with: ".")
        return root + "/." + dotted
    }

    /// The mailbox names under the root: INBOX, then Maildir++ folders, sorted, with `/` as the
    /// hierarchy separator (`.Old.Stuff` is `Old/Stuff`), as every source names them.
    func mailboxes() throws -> [String] {
        var names = ["INBOX"]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for entry in entries.sorted() where entry.hasPrefix(".") && entry != "." && entry != ".." {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(root)/\(entry)/cur", isDirectory: &isDir), isDir.boolValue {
                names.append(entry.dropFirst().replacingOccurrences(of: ".", with: "/"))
            }
        }
        return names
    }

    /// True when `path` looks like a Maildir (has cur/ and new/).
    static func looksLikeMaildir(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path + "/cur", isDirectory: &isDir) && isDir.boolValue
            && FileManager.default.fileExists(atPath: path + "/new", isDirectory: &isDir) && isDir.boolValue
    }

    /// Splits a file name into its unique part and its info (the flags after `:2,`).
    static func split(_ name: String) -> (unique: String, info: Substring?) {
        for separator in [":2,", "!2,"] {
            if let r = name.range(of: separator) {
                return (String(name[..<r.lowerBound]), name[r.upperBound...])
            }
        }
        if let colon = name.firstIndex(of: ":") { return (String(name[..<colon]), nil) }
        return (name, nil)
    }
}

/// Creates a directory and its parents with mode 0700, as mail stores are private.
func makeDirectory(_ path: String) throws {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
        guard isDir.boolValue else { throw FunnelError.io(path: path, operation: "create directory (a file is in the way)", errno: EEXIST) }
        return
    }
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    } catch {
        throw FunnelError.io(path: path, operation: "create directory", errno: (error as NSError).code == 0 ? EIO : Int32((error as NSError).code))
    }
}
