import Testing

@testable import Search

@Suite struct VerdictParserTests {
    let parser = VerdictParser(first: "Response 1", second: "Response 2")

    @Test(arguments: [
        ("1", CallVerdict.first), ("2", .second), (" (2). ", .second), ("**1**", .first),
        ("The better response is Response 2.", .second),
        ("Response 1 has an error, so the better response is response 2", .second),
        ("Response 2 is wordy but Response 1 is wrong. Therefore: **Response 2**", .second),
        ("I prefer RESPONSE   1 because it is accurate", .first),
        ("Response 1 is better than Response 2 in every way", .unparsable),
        ("Both responses are fine.", .unparsable),
        ("", .unparsable), ("12", .unparsable), ("Response 12", .unparsable), ("1 or 2", .unparsable),
        ("😀 response 1 😀", .first)
    ])
    func parses(_ text: String, _ expected: CallVerdict) {
        #expect(parser.parse(text) == expected, "\(text)")
    }

    @Test func usesTheTemplateLabels() {
        let custom = VerdictParser(first: "Answer A", second: "Answer B")
        #expect(custom.parse("Clearly answer B.") == .second)
        #expect(custom.parse("Response 1") == .unparsable)
    }
}
