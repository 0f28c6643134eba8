/// The self-reward wording shipped with stagebeam, in the file format `RewardTemplates(contentsOf:)`
/// reads (embedded in the binary for the reason given beside `defaultJudgeTemplatesJSON`). The
/// built-in model never saw this turn in training: its scores are an untrained model's
/// (models/stagebeam-shapes/README.md measures how well they separate right from wrong).
public let defaultRewardTemplatesJSON = #"""
    {
      "version": 1,
      "verification": "{criterion} Question: {question} Answer yes or no.",
      "verdictPrefix": "Correct:",
      "choices": [" yes", " no"],
      "criteria": {
        "summary": "Is the SUMMARY above a sound plan for answering the question, without solving it?",
        "caption": "Does the CAPTION above describe every object of the image that matters, with no mistakes?",
        "reasoning": "Is the REASONING above correct, step by step, against the caption and the question?",
        "conclusion": "Does the CONCLUSION above answer the question correctly?",
        "answer": "Is the answer above correct?"
      }
    }
    """#
