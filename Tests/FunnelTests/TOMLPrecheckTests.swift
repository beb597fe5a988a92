@testable import Funnel
import Testing

/// What the TOML precheck lets through to toml++ and what it stops (see `TOMLPrecheck`).
struct TOMLPrecheckTests {
    /// Brackets inside strings, multi-line or not, and after comments are no headers.
    @Test(arguments: [
        "x = \"\"\"\n[not a header\n\"\"\"\n[daemon]\n",
        "x = '''\n  [ nor this\n'''\n",
        "x = \"a \\\"\"\"\" \n[daemon]\n",
        "x = \"\\\"\"\"\"\"\n[ inside ]\n\"\"\"\n",
        "# a comment with ''' in it\n[daemon]\n",
        "x = 'it''s'\n[daemon]\n",
        "x = \"\"\"one \\\"\"\" still open\n[ inside\n\"\"\"\n",
    ])
    func bracketsInStringsAreNoHeaders(_ text: String) {
        #expect(TOMLPrecheck.malformedHeaderLine(text) == nil)
    }

    @Test(arguments: [
        ("x = \"\"\"\nclosed\"\"\"\n[\n", 3),
        ("x = '''a'''\n[ # no name\n", 2),
        ("# \"\"\" in a comment\n[\n", 2),
    ])
    func aHeaderAfterAClosedStringIsChecked(_ text: String, _ line: Int) {
        #expect(TOMLPrecheck.malformedHeaderLine(text) == line)
    }
}
