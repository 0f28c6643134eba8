import Testing

@testable import Search

@Suite struct UnitCutterTests {
    func cut(
        _ raw: String, _ stage: Stage = .summary, start: Bool = true, force: Bool = true,
        sentences: [String] = []
    ) -> UnitCut {
        UnitCutter.cut(raw, stage: stage, atStageStart: start, forceTags: force, sentenceEnds: sentences)
    }

    @Test func closedAtItsTag() {
        #expect(cut(" plan it </SUMMARY>") == UnitCut(text: " plan it ", ending: .closed, trimmedTail: false))
    }

    @Test func neverClosedIsForcedClose() {
        #expect(cut(" rambles on and on") == UnitCut(text: " rambles on and on", ending: .forcedClose, trimmedTail: false))
        #expect(cut("") == UnitCut(text: "", ending: .forcedClose, trimmedTail: false))
    }

    @Test func laterTagsAreCutAway() {
        #expect(cut(" plan </SUMMARY>\n\n<CAPTION> a cat </CAPTION>") == UnitCut(text: " plan ", ending: .closed, trimmedTail: true))
        // Skips ahead without closing: cut at the foreign tag, closed by the search.
        #expect(cut(" plan <CAPTION> a cat", .summary) == UnitCut(text: " plan ", ending: .forcedClose, trimmedTail: true))
        #expect(cut(" think </CONCLUSION>", .reasoning) == UnitCut(text: " think ", ending: .forcedClose, trimmedTail: false))
    }

    @Test func repeatedOpeningTag() {
        // Forced tag already in the prefix and the model writes it again: dropped.
        #expect(cut("  <SUMMARY> plan </SUMMARY>") == UnitCut(text: " plan ", ending: .closed, trimmedTail: false))
        // In the middle of the text it is a restart: cut there.
        #expect(cut(" plan <SUMMARY> again </SUMMARY>") == UnitCut(text: " plan ", ending: .forcedClose, trimmedTail: true))
        // Not at the stage start (a later sentence): also a restart.
        #expect(cut("<SUMMARY> x", start: false).ending == .forcedClose)
    }

    @Test func withoutForcedTagsLeadingTextIsDropped() {
        #expect(cut("Sure! <SUMMARY> plan </SUMMARY>", force: false) == UnitCut(text: " plan ", ending: .closed, trimmedTail: false))
        #expect(cut("no tag at all </SUMMARY>", force: false) == UnitCut(text: "no tag at all ", ending: .closed, trimmedTail: false))
    }

    @Test func sentences() {
        let ends = [". ", ".\n", "? "]
        #expect(
            cut(" Pi is 3.14 here. Then more", sentences: ends) == UnitCut(text: " Pi is 3.14 here.", ending: .sentence, trimmedTail: true))
        #expect(cut(" Last one.</SUMMARY>", sentences: ends) == UnitCut(text: " Last one.", ending: .closed, trimmedTail: false))
        #expect(cut(" Why? ", sentences: ends) == UnitCut(text: " Why?", ending: .sentence, trimmedTail: false))
        #expect(cut(" no end yet", sentences: ends).ending == .forcedClose)
    }

    @Test func unicodeAndGarbage() {
        // A combining accent right after the tag forms one Character with ">" — the byte search still finds it.
        #expect(cut(" café 😀 </SUMMARY>\u{301}tail") == UnitCut(text: " café 😀 ", ending: .closed, trimmedTail: true))
        #expect(cut("</SUMMARY>") == UnitCut(text: "", ending: .closed, trimmedTail: false))
        #expect(cut("<<</SUM</SUMMARY") == UnitCut(text: "<<</SUM</SUMMARY", ending: .forcedClose, trimmedTail: false))
        #expect(cut("\u{0}\u{FFFD}日本語. ", sentences: [". "]).text == "\u{0}\u{FFFD}日本語.")
    }
}
