"""LLM relevance labels: candidate pools from the miners, judges, the grading prompt, the resumable journal and
the agreement with human judgements (``mpr annotate``)."""
