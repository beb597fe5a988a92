import FunnelModel

/// One end of an account as the user gave it, before it names a mailbox the engine can open.
public struct GivenEndpoint: Sendable {
    /// What was typed: a URL (`imaps://jean@imap.example.org/INBOX`, `maildir:~/Mail`); once
    /// discovery is here, also an address alone (`jean.dupont@orange.fr`).
    public var text: String
    /// What else was said about it: the secret, extra trust, the TLS choice.
    public var settings: EndpointSettings

    public init(_ text: String, settings: EndpointSettings) {
        self.text = text
        self.settings = settings
    }
}

/// An end of an account the engine can open: what `Endpoints` turns into a source or a sink.
public struct ResolvedEndpoint: Sendable {
    public var url: MailURL
    public var settings: EndpointSettings

    public init(url: MailURL, settings: EndpointSettings) {
        self.url = url
        self.settings = settings
    }
}

/// From what the user gave to what it names. Asked once for each end of a job, before anything
/// is opened; may ask the network (discovery does), so it is async. Its errors say what was given
/// and what is wrong with it.
public protocol EndpointResolver: Sendable {
    func resolve(_ given: GivenEndpoint, as role: EndpointRole) async throws -> ResolvedEndpoint
}

/// What the user gave is a URL, and names the mailbox as it is.
public struct URLResolver: EndpointResolver {
    public init() {}

    public func resolve(_ given: GivenEndpoint, as role: EndpointRole) async throws -> ResolvedEndpoint {
        ResolvedEndpoint(url: try MailURL.parse(given.text), settings: given.settings)
    }
}
