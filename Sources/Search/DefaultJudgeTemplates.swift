/// The judge templates shipped with stagebeam, in the file format `JudgeTemplates(contentsOf:)` reads.
/// Embedded in the binary rather than shipped as a SwiftPM resource: a resource bundle has to sit next
/// to the executable, which an installed or copied `stagebeam` binary easily loses. A user who wants
/// different wording writes this text to a file, edits it, and passes `--judge-templates FILE`.
///
/// The criteria follow the reference implementation's intent (docs/architecture.md), in our own words. The
/// question comes again after the two responses: a check that restates what is asked reads it from
/// nearby rather than from before both responses, whose own wording of it may be wrong.
public let defaultJudgeTemplatesJSON = #"""
    {
      "version": 1,
      "labels": ["Response 1", "Response 2"],
      "prompt": "Compare two candidate responses to the question below (about the attached image, if there is one).\n\nQuestion: {question}\n\n{hints}What makes a response better: {criterion}\n\nResponse 1:\n{candidate1}\n\nResponse 2:\n{candidate2}\n\nThe question again: {question}\n\nThink briefly about which response better meets the criterion, then end with exactly one sentence: \"The better response is Response 1.\" or \"The better response is Response 2.\"",
      "hint": "For reference, the {stage} already chosen for this answer:\n{text}\n\n",
      "verdictPrefix": "The better response is Response",
      "choices": [" 1", " 2"],
      "criteria": {
        "summary": {
          "criterion": "Both responses are the SUMMARY: a short plan for answering. The better one understands what the question asks and outlines a sound way to solve it, without carrying out the calculations or stating the final answer.",
          "hints": []
        },
        "caption": {
          "criterion": "Both responses are the CAPTION: a description of the image. The better one describes, thoroughly and accurately, the parts of the image that matter for the question, and invents nothing.",
          "hints": []
        },
        "reasoning": {
          "criterion": "Both responses are the REASONING: step-by-step work towards the answer. First check each response for mistakes against the question and the chosen caption. The better one is correct; if neither is, the one with fewer and smaller errors.",
          "hints": ["caption"]
        },
        "conclusion": {
          "criterion": "Both responses are the CONCLUSION: the final answer shown to the user. The better one follows from the chosen reasoning, is consistent with the caption, and answers the question directly; a response that refuses or avoids answering is always worse.",
          "hints": ["caption", "reasoning"]
        },
        "answer": {
          "criterion": "Both responses are complete answers in four stages (SUMMARY, CAPTION, REASONING, CONCLUSION). The better one describes the image accurately, reasons without errors, and ends with a conclusion that answers the question correctly.",
          "hints": []
        }
      }
    }
    """#
