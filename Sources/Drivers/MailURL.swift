import FunnelModel
import Foundation
import Logging
import MailMessage
import MailTransport

/// A source or target as the command line and the config name it:
/// `pop3://user@host[:port]`, `pop3s://…`, `imap://user@host[:port][/Folder]`, `imaps://…`,
/// `smtp://[user@]host[:port]`, `smtps://…`, `maildir:PATH`, `mbox:PATH`.
///
/// A user name holding `@` writes it as `%40`. Passwords never go in a URL (they would show in `ps`
/// and in shell history): they come from a file, a command or the environment.
public struct MailURL: Sendable, Equatable, CustomStringConvertible {
    public enum Scheme: String, Sendable, CaseIterable {
        case imap, imaps, pop3, pop3s, smtp, smtps, maildir, mbox

        public var isNetwork: Bool { self != .maildir && self != .mbox }
        public var defaultPort: Int {
            switch self {
            case .imap: return 143
            case .imaps: return 993
            case .pop3: return 110
            case .pop3s: return 995
            case .smtp: return 587
            case .smtps: return 465
            case .maildir, .mbox: return 0
            }
        }
    }

    public var scheme: Scheme
    public var user: String?
    public var host: String
    public var port: Int
    /// For maildir:/mbox: the file path; for imap: the folder (without the leading slash), if any.
    public var path: String
    /// mbox only: how `From ` lines were escaped (`mbox:PATH?format=mboxo`).
    public var mboxFormat: MboxFormat = .mboxrd
    /// Maildir only: how folder names are spelled on disk (`maildir:PATH?names=utf-8`).
    public var maildirNames: MaildirNames = .modifiedUTF7

    public static func parse(_ text: String) throws -> MailURL {
        guard let colon = text.firstIndex(of: ":") else {
            throw FunnelError.badURL(text, reason: "no scheme; expected one of \(Scheme.allCases.map { "\($0.rawValue):" }.joined(separator: " "))")
        }
        let schemeText = text[..<colon].lowercased()
        guard let scheme = Scheme(rawValue: schemeText) else {
            throw FunnelError.badURL(text, reason: "unknown scheme '\(schemeText)'; expected one of \(Scheme.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var rest = String(text[text.index(after: colon)...])
        if !scheme.isNetwork {
            if rest.hasPrefix("//") { rest.removeFirst(2) }
            var format = MboxFormat.mboxrd, names = MaildirNames.modifiedUTF7
            if let q = rest.range(of: "?names=", options: .backwards) {
                let value = String(rest[q.upperBound...]).lowercased()
                guard scheme == .maildir, let n = MaildirNames(rawValue: value == "utf8" ? "utf-8" : value) else {
                    throw FunnelError.badURL(text, reason: "unknown names '\(value)'; expected utf-8 or modified-utf-7 (maildir: only)")
                }
                names = n
                rest = String(rest[..<q.lowerBound])
            }
            if let q = rest.range(of: "?format=", options: .backwards) {
                let value = String(rest[q.upperBound...])
                guard scheme == .mbox, let f = MboxFormat(rawValue: value) else {
                    throw FunnelError.badURL(text, reason: "unknown format '\(value)'; expected mboxrd or mboxo (mbox: only)")
                }
                format = f
                rest = String(rest[..<q.lowerBound])
            }
            guard !rest.isEmpty else { throw FunnelError.badURL(text, reason: "no path after '\(scheme.rawValue):'") }
            var url = MailURL(scheme: scheme, user: nil, host: "", port: 0, path: rest.removingPercentEncoding ?? rest)
            url.mboxFormat = format
            url.maildirNames = names
            return url
        }
        guard rest.hasPrefix("//") else {
            throw FunnelError.badURL(text, reason: "expected '\(scheme.rawValue)://host'")
        }
        rest.removeFirst(2)
        var authority = rest
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = String(rest[..<slash])
            path = String(rest[rest.index(after: slash)...])
        }
        var user: String?
        if let at = authority.lastIndex(of: "@") {
            let userInfo = String(authority[..<at])
            authority = String(authority[authority.index(after: at)...])
            if userInfo.contains(":") {
                throw FunnelError.badURL(redacting: text, reason: "a password does not belong in a URL; use a password file, a password command or the environment")
            }
            guard let decoded = userInfo.removingPercentEncoding, !decoded.isEmpty else {
                throw FunnelError.badURL(text, reason: "bad user name '\(userInfo)'")
            }
            user = decoded
        }
        var host = authority
        var port = scheme.defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw FunnelError.badURL(text, reason: "unclosed '[' in IPv6 address") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") { port = try parsePort(String(after.dropFirst()), in: text) }
            else if !after.isEmpty { throw FunnelError.badURL(text, reason: "unexpected '\(after)' after the address") }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let c = host.lastIndex(of: ":") {
            port = try parsePort(String(host[host.index(after: c)...]), in: text)
            host = String(host[..<c])
        }
        guard !host.isEmpty else { throw FunnelError.badURL(text, reason: "no host name") }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_" }) else {
            throw FunnelError.badURL(text, reason: "bad host name '\(host)'")
        }
        if scheme == .pop3 || scheme == .pop3s || scheme == .smtp || scheme == .smtps, !path.isEmpty {
            throw FunnelError.badURL(text, reason: "\(scheme.rawValue): URLs take no folder")
        }
        if (scheme == .imap || scheme == .imaps || scheme == .pop3 || scheme == .pop3s) && user == nil {
            throw FunnelError.badURL(text, reason: "no user name; write \(scheme.rawValue)://USER@\(host)")
        }
        return MailURL(scheme: scheme, user: user, host: host, port: port, path: path.removingPercentEncoding ?? path)
    }

    private static func parsePort(_ s: String, in text: String) throws -> Int {
        guard let p = Int(s), (1...65535).contains(p) else {
            throw FunnelError.badURL(text, reason: "bad port '\(s)'; expected a number from 1 to 65535")
        }
        return p
    }

    /// The URL without its folder (the network drivers' ledger identity, `Driver.identity(of:)`).
    public var accountIdentity: String {
        var bare = self
        bare.path = ""
        return bare.description
    }

    /// The canonical form, without secrets; local paths made absolute.
    public var description: String {
        switch scheme {
        case .maildir, .mbox:
            return "\(scheme.rawValue):\(absolutePath(path))" + (mboxFormat == .mboxo ? "?format=mboxo" : "")
                + (maildirNames == .utf8 ? "?names=utf-8" : "")
        default:
            let u = user.map { ($0.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed.subtracting(CharacterSet(charactersIn: "@:"))) ?? $0) + "@" } ?? ""
            let h = host.contains(":") ? "[\(host)]" : host
            let p = port == scheme.defaultPort ? "" : ":\(port)"
            return "\(scheme.rawValue)://\(u)\(h)\(p)" + (path.isEmpty ? "" : "/\(path)")
        }
    }
}

extension FunnelError {
    /// A bad URL whose text held a password: the message shows it with the password blanked out.
    static func badURL(redacting text: String, reason: String) -> FunnelError {
        var shown = text
        if let schemeEnd = text.range(of: "://"), let at = text.range(of: "@", options: .backwards),
           let colon = text.range(of: ":", range: schemeEnd.upperBound..<at.lowerBound) {
            shown = String(text[..<colon.upperBound]) + "<redacted>" + String(text[at.lowerBound...])
        }
        return .badURL(shown, reason: reason)
    }
}
