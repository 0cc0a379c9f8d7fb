"""Teacher annotation of records (description, keywords, warm-up answers) over an OpenAI-compatible endpoint."""
