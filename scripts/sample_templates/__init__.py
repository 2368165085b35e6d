"""Templates of the synthetic samples written by ``scripts/make_samples.py``.

Every text here was written for this project (no corpus text is copied). Each module exposes
``make_documents(rng, n, split)`` returning :class:`mtpeft.tasks.document.Document` objects that
the official-format writers of ``mtpeft.tasks.formats`` then write.
"""
