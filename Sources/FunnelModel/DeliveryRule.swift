import MailMessage

/// Where and how a message is to be delivered, as the decision stage leaves it.
public struct Delivery: Sendable, Hashable {
    /// The target folder; nil: the account's (`folder`, `--into`, or the source mailbox's name).
    public var mailbox: String?
    /// The flags it is stored with; nil: those it carries from the source.
    public var flags: MessageFlags?

    public init(mailbox: String? = nil, flags: MessageFlags? = nil) {
        self.mailbox = mailbox
        self.flags = flags
    }

    /// Into the account's folder, with the source's flags: what happens when no rule says otherwise.
    public static let unchanged = Delivery()
}

/// What a rule makes of a message.
public enum RuleVerdict: Sendable, Hashable {
    /// Deliver it thus (the next rule may still change it).
    case deliver(Delivery)
    /// Do not deliver it; recorded as `skipped` with the reason, never retried.
    case skip(reason: String)
}

/// What a rule is told besides the message.
public struct DecisionContext: Sendable {
    /// The message's key at the source.
    public var key: SourceKey
    /// The target's identity (`MailSink.identity`), for reasons.
    public var target: String
    /// The largest message the target accepts (`MailSink.maxMessageSize`), nil when unlimited.
    public var sizeLimit: Int?

    public init(key: SourceKey, target: String, sizeLimit: Int?) {
        self.key = key
        self.target = target
        self.sizeLimit = sizeLimit
    }
}

/// One rule of the decision stage: a filter (a Sieve script, a spam verdict), or a limit of the
/// target. Rules run in order, each given what the one before decided; the first `skip` ends it.
/// A rule reads the spooled message and never changes it: its bytes are what the ledger hashed.
public protocol DeliveryRule: Sendable {
    /// Whether it may name a folder other than the account's. The next batch's intents are then
    /// committed in that batch's turn only, once its folders are readied at the target.
    var choosesFolders: Bool { get }

    func decide(_ message: SpooledMessage, _ context: DecisionContext, proposed: Delivery) async throws -> RuleVerdict
}

/// The target's size limit (IMAP APPENDLIMIT, SMTP SIZE): a message over it is skipped, since the
/// target would refuse it on every run.
public struct SizeLimitRule: DeliveryRule {
    public init() {}

    public var choosesFolders: Bool { false }

    public func decide(_ message: SpooledMessage, _ context: DecisionContext, proposed: Delivery) async throws -> RuleVerdict {
        if let limit = context.sizeLimit, message.size > limit {
            return .skip(reason: "\(message.size) bytes is larger than \(context.target) accepts (\(limit))")
        }
        return .deliver(proposed)
    }
}
