import Drivers
import Funnel
import FunnelModel
import TransferEngine
import Testing

/// Names short aliases for URLs, as discovery will name an address's servers: a resolver other
/// than the URL one, through the same seam.
struct AliasResolver: EndpointResolver {
    let aliases: [String: String]

    func resolve(_ given: GivenEndpoint, as role: EndpointRole) async throws -> ResolvedEndpoint {
        guard let url = aliases[given.text] else { return try await URLResolver().resolve(given, as: role) }
        var settings = given.settings
        if role == .source { settings.tls = "starttls" }
        return ResolvedEndpoint(url: try MailURL.parse(url), settings: settings)
    }
}

struct EndpointResolverTests {
    func settings(_ variable: String) -> EndpointSettings {
        var s = EndpointSettings(passwordVariable: variable)
        s.caFile = "/etc/ssl/extra.pem"
        return s
    }

    @Test func aURLNamesItselfAndKeepsWhatElseWasSaid() async throws {
        let r = try await URLResolver().resolve(GivenEndpoint("imaps://jean@imap.example.org/Archive", settings: settings("V")),
                                                as: .target)
        #expect(r.url.scheme == .imaps && r.url.host == "imap.example.org" && r.url.user == "jean" && r.url.path == "Archive")
        #expect(r.settings.caFile == "/etc/ssl/extra.pem" && r.settings.passwordVariable == "V")
    }

    @Test func aBadURLSaysWhatWasGiven() async throws {
        await #expect {
            _ = try await URLResolver().resolve(GivenEndpoint("imaps://", settings: settings("V")), as: .source)
        } throws: { error in
            guard case let FunnelError.badURL(text, _) = error else { return false }
            return text == "imaps://"
        }
    }

    @Test func aJobIsBuiltFromWhatTheResolverNames() async throws {
        let resolver = AliasResolver(aliases: ["old": "pop3://jean@pop.example.org", "home": "imaps://me@mail.example.org/Old"])
        let job = try await ImportJob.resolving(source: GivenEndpoint("old", settings: settings("S")),
                                                target: GivenEndpoint("home", settings: settings("T")), options: TransferOptions(),
                                                resolver: resolver)
        #expect(job.source.description == "pop3://jean@pop.example.org")
        #expect(job.name == job.source.description)
        #expect(job.sourceSettings.tls == "starttls" && job.sourceSettings.passwordVariable == "S")
        #expect(job.targetSettings.tls == nil && job.targetSettings.passwordVariable == "T")
        // The IMAP target's folder is where everything goes, as for a URL typed in full.
        #expect(job.options.targetMailbox == "Old")
        let plain = try await ImportJob.resolving(source: GivenEndpoint("maildir:/tmp/in", settings: settings("S")),
                                                  target: GivenEndpoint("home", settings: settings("T")), options: TransferOptions(),
                                                  resolver: resolver)
        #expect(plain.source.scheme == .maildir && plain.sourceSettings.tls == nil)
    }
}
