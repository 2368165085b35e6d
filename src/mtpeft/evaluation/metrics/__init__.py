"""Official metrics of the five SemEval tasks, each equal to its task's official scorer.

One module per task family; each module's docstring names the official code it follows and
every place where it knowingly departs from it (always a clear error instead of a silent
skip, never a different number):

* :mod:`~mtpeft.evaluation.metrics.disorders` -- 2014 T7 and 2015 T14 disorder spans and CUIs;
* :mod:`~mtpeft.evaluation.metrics.temporal` -- 2016 T12 through ``anafora.evaluate``;
* :mod:`~mtpeft.evaluation.metrics.ranking` -- 2017 T3 subtask A (``ev.py``);
* :mod:`~mtpeft.evaluation.metrics.persuasion` -- 2021 T6 subtask 2 (partial-credit span F1);
* :mod:`~mtpeft.evaluation.metrics.tagging` -- seqeval entity F1 for token-tagging tasks.

Metrics take :class:`~mtpeft.tasks.document.Document` objects (or folders, for Anafora) and
return plain ``dict[str, float]``; reading files is :mod:`mtpeft.evaluation.score`'s job.
"""
