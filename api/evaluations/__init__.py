"""The evaluation service of the API: what a request names becomes confined paths (``sources``),
stored rows and report files become answers (``views``), reports become PNG curves (``curves``)."""
