/// The ledger's `account`: one source delivered into one target, named by both identities.
///
/// Records are kept per source *and* target: the same old mailbox copied into a second place (a
/// backup, a new provider) gets everything there, because what one target holds says nothing of
/// another. An ad hoc import and a configured account with the same source and target share their
/// rows, so neither redelivers what the other did.
public enum LedgerAccount {
    /// Between the two identities; readable in the ledger file, and `status` takes the target from
    /// the run records rather than by splitting here.
    public static let separator = " → "

    public static func of(source: String, target: String) -> String {
        source + separator + target
    }

    /// The source part of a ledger account whose target is known.
    public static func source(of account: String, target: String) -> String {
        let suffix = separator + target
        return account.hasSuffix(suffix) ? String(account.dropLast(suffix.count)) : account
    }
}
