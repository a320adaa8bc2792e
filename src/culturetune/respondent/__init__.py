"""The positive control: a respondent LoRA trained on synthetic Likert items
(docs/respondent.md)."""
