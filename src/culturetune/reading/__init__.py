"""Reading a model's answers: the survey, the model check, and the validity views."""
