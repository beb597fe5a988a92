import FunnelModel
import Crypto
import IMAPCore
import Foundation
import MailMessage
#if canImport(Glibc)
import Glibc
#endif

/// A Maildir++ tree: INBOX at the root, folder `A/B` (or `A.B`) in `.A.B`, each with tmp/, new/, cur/.
/// Names are in modified UTF-7 on disk, as Courier and Dovecot write them (`Reçus` is
/// `.Re&AOc-us`), or in UTF-8 as Dovecot's `UTF-8` layout option does (`maildir:PATH?names=utf-8`).
/// - SeeAlso: https://cr.yp.to/proto/maildir.html, Courier's Maildir++
struct Maildir {
    let root: String
    var names: MaildirNames = .modifiedUTF7

    /// The directory holding a mailbox's tmp/new/cur. A folder already there under the other
    /// spelling (MailFunnel wrote UTF-8 names before it wrote modified UTF-7) is the one used.
    func directory(of mailbox: String) -> String {
        if mailbox.isEmpty || mailbox.uppercased() == "INBOX" { return root }
        let parts = mailbox.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let wanted = root + "/." + parts.map { names == .utf8 ? $0 : ModifiedUTF7.encode($0) }.joined(separator: ".")
        let other = root + "/." + parts.map { names == .utf8 ? ModifiedUTF7.encode($0) : $0 }.joined(separator: ".")
        if wanted != other, !Self.looksLikeMaildir(wanted), Self.looksLikeMaildir(other) { return other }
        return wanted
    }

    /// A mailbox name from its directory's name (without the leading dot).
    func mailboxName(_ entry: Substring) -> String {
        entry.split(separator: ".", omittingEmptySubsequences: false).map { part in
            // Not modified UTF-7 (raw UTF-8, or a stray '&'): the name as it is written.
            names == .utf8 ? String(part) : ModifiedUTF7.decode(String(part)) ?? String(part)
        }.joined(separator: "/")
    }

    /// The mailbox names under the root: INBOX, then Maildir++ folders, sorted, with `/` as the
    /// hierarchy separator (`.Old.Stuff` is `Old/Stuff`), as every source names them.
    func mailboxes() throws -> [String] {
        var names = ["INBOX"]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for entry in entries.sorted() where entry.hasPrefix(".") && entry != "." && entry != ".." {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(root)/\(entry)/cur", isDirectory: &isDir), isDir.boolValue {
                names.append(mailboxName(entry.dropFirst()))
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

/// How a Maildir++ tree spells folder names on disk.
public enum MaildirNames: String, Sendable {
    /// Modified UTF-7 (RFC 3501): Courier, Dovecot's default, every Maildir++ reader.
    case modifiedUTF7 = "modified-utf-7"
    /// UTF-8: Dovecot with `:UTF-8` in its mail_location.
    case utf8 = "utf-8"
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
