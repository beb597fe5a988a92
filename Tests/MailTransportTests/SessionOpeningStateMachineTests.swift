@testable import MailTransport
import Testing

/// Recorded openings played through `SessionOpeningStateMachine`: each event of a transcript fed in
/// turn, and the action it gives checked, for IMAP (capabilities maybe in the greeting), POP3
/// (CAPA) and SMTP (EHLO), with and without STARTTLS. The handshake itself is the one step the
/// scripted-server tests cannot take; here it is an event like the others.
struct SessionOpeningStateMachineTests {
    typealias Machine = SessionOpeningStateMachine

    enum Event: Sendable, CustomStringConvertible {
        case connected
        case greeting(announcedCapabilities: Bool, offersStartTLS: Bool)
        case capabilities(offersStartTLS: Bool)
        case startTLSAccepted(unparsedBytes: Int)
        case tlsEstablished
        case loggedIn

        var description: String {
            switch self {
            case .connected: return "connected"
            case let .greeting(a, s): return "greeting(announced: \(a), STARTTLS: \(s))"
            case let .capabilities(s): return "capabilities(STARTTLS: \(s))"
            case let .startTLSAccepted(n): return "startTLSAccepted(\(n) bytes)"
            case .tlsEstablished: return "tlsEstablished"
            case .loggedIn: return "loggedIn"
            }
        }

        func apply(to machine: inout Machine) -> Machine.Action {
            switch self {
            case .connected: return machine.connected()
            case let .greeting(a, s): return machine.receivedGreeting(announcedCapabilities: a, offersStartTLS: s)
            case let .capabilities(s): return machine.receivedCapabilities(offersStartTLS: s)
            case let .startTLSAccepted(n): return machine.startTLSAccepted(unparsedBytes: n)
            case .tlsEstablished: return machine.tlsEstablished()
            case .loggedIn: return machine.loggedIn()
            }
        }
    }

    struct Transcript: Sendable, CustomTestStringConvertible {
        var name: String
        var requiresStartTLS: Bool
        var query: Machine.CapabilityQuery
        var logsIn: Bool
        var steps: [(Event, Machine.Action)]
        var testDescription: String { name }
    }

    static let transcripts: [Transcript] = [
        Transcript(name: "IMAP, capabilities in the greeting, no login (connect)", requiresStartTLS: false, query: .unlessAnnounced,
                   logsIn: false, steps: [
                       (.connected, .readGreeting),
                       (.greeting(announcedCapabilities: true, offersStartTLS: false), .opened),
                   ]),
        Transcript(name: "IMAP, a bare greeting, then CAPABILITY and a login", requiresStartTLS: false, query: .unlessAnnounced,
                   logsIn: true, steps: [
                       (.connected, .readGreeting),
                       (.greeting(announcedCapabilities: false, offersStartTLS: false), .askCapabilities),
                       (.capabilities(offersStartTLS: false), .logIn),
                       (.loggedIn, .opened),
                   ]),
        Transcript(name: "IMAP STARTTLS: no CAPABILITY before it, one after", requiresStartTLS: true, query: .unlessAnnounced,
                   logsIn: true, steps: [
                       (.connected, .readGreeting),
                       (.greeting(announcedCapabilities: true, offersStartTLS: true), .sendStartTLS),
                       (.startTLSAccepted(unparsedBytes: 0), .startTLSHandshake),
                       (.tlsEstablished, .askCapabilities),
                       (.capabilities(offersStartTLS: false), .logIn),
                       (.loggedIn, .opened),
                   ]),
        Transcript(name: "IMAP STARTTLS not offered in the greeting", requiresStartTLS: true, query: .unlessAnnounced,
                   logsIn: true, steps: [
                       (.connected, .readGreeting),
                       (.greeting(announcedCapabilities: true, offersStartTLS: false), .refuse(.startTLSNotOffered)),
                   ]),
        Transcript(name: "IMAP STARTTLS not offered by CAPABILITY", requiresStartTLS: true, query: .unlessAnnounced,
                   logsIn: true, steps: [
                       (.connected, .readGreeting),
                       (.greeting(announcedCapabilities: false, offersStartTLS: false), .askCapabilities),
                       (.capabilities(offersStartTLS: false), .refuse(.startTLSNotOffered)),
                   ]),
        Transcript(name: "POP3 asks CAPA even after a greeting", requiresStartTLS: false, query: .always, logsIn: true, steps: [
            (.connected, .readGreeting),
            (.greeting(announcedCapabilities: true, offersStartTLS: true), .askCapabilities),
            (.capabilities(offersStartTLS: true), .logIn),
            (.loggedIn, .opened),
        ]),
        Transcript(name: "POP3 STLS, then CAPA again", requiresStartTLS: true, query: .always, logsIn: true, steps: [
            (.connected, .readGreeting),
            (.greeting(announcedCapabilities: false, offersStartTLS: false), .askCapabilities),
            (.capabilities(offersStartTLS: true), .sendStartTLS),
            (.startTLSAccepted(unparsedBytes: 0), .startTLSHandshake),
            (.tlsEstablished, .askCapabilities),
            (.capabilities(offersStartTLS: false), .logIn),
            (.loggedIn, .opened),
        ]),
        Transcript(name: "POP3 bytes after STLS's +OK", requiresStartTLS: true, query: .always, logsIn: true, steps: [
            (.connected, .readGreeting),
            (.greeting(announcedCapabilities: false, offersStartTLS: false), .askCapabilities),
            (.capabilities(offersStartTLS: true), .sendStartTLS),
            (.startTLSAccepted(unparsedBytes: 1), .refuse(.plaintextAfterStartTLS)),
        ]),
        Transcript(name: "SMTP EHLO is said again after STARTTLS", requiresStartTLS: true, query: .always, logsIn: true, steps: [
            (.connected, .readGreeting),
            (.greeting(announcedCapabilities: false, offersStartTLS: false), .askCapabilities),
            (.capabilities(offersStartTLS: true), .sendStartTLS),
            (.startTLSAccepted(unparsedBytes: 0), .startTLSHandshake),
            (.tlsEstablished, .askCapabilities),
            // A server that still lists STARTTLS under TLS is not asked twice.
            (.capabilities(offersStartTLS: true), .logIn),
            (.loggedIn, .opened),
        ]),
        Transcript(name: "SMTP bytes after STARTTLS's 220", requiresStartTLS: true, query: .always, logsIn: false, steps: [
            (.connected, .readGreeting),
            (.greeting(announcedCapabilities: false, offersStartTLS: false), .askCapabilities),
            (.capabilities(offersStartTLS: true), .sendStartTLS),
            (.startTLSAccepted(unparsedBytes: 27), .refuse(.plaintextAfterStartTLS)),
        ]),
        Transcript(name: "SMTP without credentials, STARTTLS offered and not asked for", requiresStartTLS: false, query: .always,
                   logsIn: false, steps: [
                       (.connected, .readGreeting),
                       (.greeting(announcedCapabilities: false, offersStartTLS: false), .askCapabilities),
                       (.capabilities(offersStartTLS: true), .opened),
                   ]),
    ]

    @Test(arguments: transcripts) func playsTheTranscript(_ transcript: Transcript) {
        var machine = Machine(requiresStartTLS: transcript.requiresStartTLS, capabilityQuery: transcript.query,
                              logsIn: transcript.logsIn)
        for (event, expected) in transcript.steps {
            #expect(event.apply(to: &machine) == expected, "after \(event)")
        }
        let last = transcript.steps.last!.1
        switch last {
        case .opened: #expect(machine.state == .opened)
        case .refuse: #expect(machine.state == .refused)
        default: Issue.record("a transcript that ends with \(last)")
        }
    }
}
